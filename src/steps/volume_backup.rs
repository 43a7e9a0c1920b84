//! `volume_backup_create`, `volume_backup_list`, `volume_backup_restore`,
//! `volume_backup_delete`: Railway volume backups of the target's service, each waited for.
//! A restore's phases (copy workflow, commit, redeploy) are outputs, so the report splits the
//! recovery time into platform time and the verification after it.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::platform::railway::RailwayService;

fn railway<'a>(ctx: &'a mut StepContext<'_>) -> Result<&'a mut RailwayService, StepError> {
    ctx.service()?.railway().ok_or_else(|| {
        StepError::Setup("volume backups need `target.service` of `kind: railway`".into())
    })
}

fn failed(err: crate::platform::railway::client::RailwayError) -> StepError {
    StepError::Check(err.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    /// Backup name (default `vecdrill-<UTC time>`).
    #[serde(default)]
    name: Option<String>,
}

pub const CREATE: StepKind = StepKind {
    name: "volume_backup_create",
    summary: "create a Railway volume backup (`name`) and wait until it is listed",
    outputs: &["id", "name", "created_at"],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Create>,
};

#[async_trait]
impl Step for Create {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("vecdrill-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
        let backup = railway(ctx)?.create_backup(&name).await.map_err(failed)?;
        Ok(outputs! {
            "id" => backup.id,
            "name" => backup.name,
            "created_at" => backup.created_at.to_rfc3339(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {}

pub const LIST: StepKind = StepKind {
    name: "volume_backup_list",
    summary: "list the Railway volume backups of the service, newest first",
    outputs: &["backups", "count", "latest"],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<List>,
};

#[async_trait]
impl Step for List {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let backups = railway(ctx)?.backups().await.map_err(failed)?;
        Ok(outputs! {
            "count" => backups.len(),
            "latest" => backups.first().map(|b| b.id.clone()),
            "backups" => &backups,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// Backup id, name or `latest`.
    #[serde(default = "super::latest")]
    backup: String,
    /// Commit even when the environment already had staged changes (they deploy too).
    #[serde(default)]
    allow_staged: bool,
}

pub const RESTORE: StepKind = StepKind {
    name: "volume_backup_restore",
    summary: "restore a Railway volume backup (`backup`: id, name or latest), commit it, wait for the redeploy",
    outputs: &[
        "backup",
        "created_at",
        "deployment",
        "volume_instance",
        "workflow_ms",
        "commit_ms",
        "deploy_ms",
    ],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: true,
    platform_time: true,
    measures: &[Objective::Rpo],
    build: super::build::<Restore>,
};

#[async_trait]
impl Step for Restore {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let report = railway(ctx)?
            .restore_backup(&self.backup, self.allow_staged)
            .await
            .map_err(failed)?;
        // The restored data is as old as the backup: the drill's RPO.
        ctx.memory.restored = Some((report.backup.id.clone(), report.backup.created_at));
        Ok(outputs! {
            "backup" => report.backup.id,
            "created_at" => report.backup.created_at.to_rfc3339(),
            "deployment" => report.deployment,
            "volume_instance" => report.volume_instance,
            "workflow_ms" => report.workflow_ms,
            "commit_ms" => report.commit_ms,
            "deploy_ms" => report.deploy_ms,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// Backup id, name or `latest`.
    backup: String,
}

pub const DELETE: StepKind = StepKind {
    name: "volume_backup_delete",
    summary: "delete a Railway volume backup (`backup`: id, name or latest) and wait",
    outputs: &["backup"],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Delete>,
};

#[async_trait]
impl Step for Delete {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let backup = railway(ctx)?
            .delete_backup(&self.backup)
            .await
            .map_err(failed)?;
        Ok(outputs! { "backup" => backup.id })
    }
}
