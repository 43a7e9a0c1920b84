//! `restore`: restore a backup into the target's data directory (stop the service first).
//! The restored backup's age at the disaster mark is the drill's RPO.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::chroma::protect::{self, RestoreOutcome, RestoreRequest};
use crate::targets::chroma::{pitr, shipped};
use crate::targets::protect::StagedStep;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// Backup id, unique prefix, or `latest`.
    #[serde(default = "super::latest")]
    backup: String,
    #[serde(default)]
    repo: Option<String>,
    /// Where to restore; defaults to `target.data_dir`.
    #[serde(default)]
    to: Option<PathBuf>,
    /// Keep what was there as a safety copy (the default).
    #[serde(default = "yes")]
    keep_safety_copy: bool,
    /// How many safety copies of the data directory to keep, this one's included.
    #[serde(default = "one")]
    keep_safety_copies: usize,
    /// Whose backups `latest` means (`HOST:PATH` as `vecdrill list` shows it); by default the
    /// target's own, or the repository's only source.
    #[serde(default)]
    source: Option<String>,
    /// Restore a Chroma target as it was at this moment instead (RFC 3339, e.g. a fault
    /// step's `${steps.ID.at}`): the base backup before it plus the log `follow` shipped.
    #[serde(default)]
    at: Option<String>,
    /// With `at`: that much earlier; the moment restored is the last whole second that ends
    /// by then (so `before: 1s` loses nothing written more than a second before `at`).
    #[serde(default)]
    before: Option<HumanDuration>,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Restore {
    /// The moment `at` (less `before`) names, and the chain that restores it.
    async fn point_in_time(
        &self,
        repo: &crate::repo::Repository,
        to: &std::path::Path,
        source: crate::repo::SourceChoice,
        at: &str,
    ) -> Result<pitr::PointInTime, StepError> {
        let at = crate::duration::parse_moment(at, chrono::Utc::now())
            .map_err(|e| StepError::Setup(format!("`at`: {e}")))?;
        let back = self.before.map_or(chrono::Duration::zero(), |b| {
            chrono::Duration::from_std(b.as_duration()).unwrap_or_default()
        });
        // The last whole second that ends by `at - before`.
        let moment = shipped::whole_second(at - back) - chrono::Duration::seconds(1);
        let choice = RestoreRequest::choice_for(to, source);
        Ok(pitr::choose(repo, &choice, moment).await?)
    }
}

pub const KIND: StepKind = StepKind {
    name: "restore",
    summary: "restore `backup` (latest), or the target as it was `at` a moment (with `follow`), into the data directory, keeping a safety copy",
    outputs: &["backup", "created_at", "safety_copy", "files", "bytes"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
    other_repos: &[],
    restores_data: true,
    platform_time: true,
    measures: &[Objective::Rpo],
    build: super::build::<Restore>,
};

#[async_trait]
impl Step for Restore {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let repo = ctx.open_repo(self.repo.as_deref()).await?;
        let to = ctx.data_dir(self.to.as_deref())?;
        let source = ctx.source_choice(self.source.clone());
        let point = match &self.at {
            Some(at) => Some(self.point_in_time(&repo, &to, source.clone(), at).await?),
            None => None,
        };
        // A Chroma base a follower took gets its purge switch back; with `at`, the shipped
        // log is replayed into it.
        let replay = Some(Arc::new(pitr::ChromaStaging::new(
            repo.clone(),
            point.clone(),
        )));
        let request = RestoreRequest {
            backup: point
                .as_ref()
                .map_or(self.backup.clone(), |p| p.chain.base.id.clone()),
            source,
            to,
            keep_safety_copies: if self.keep_safety_copy {
                self.keep_safety_copies.max(1)
            } else {
                0
            },
            if_newer: false,
            dry_run: false,
            then: replay.clone().map(|r| r as Arc<dyn StagedStep>),
        };
        match protect::restore(protect::RestoreSource::Repo(&repo), &request, &NoProgress).await? {
            RestoreOutcome::Restored {
                backup,
                created_at,
                safety_copy,
                files,
                bytes,
                ..
            } => {
                ctx.memory.restored = Some((backup.clone(), created_at));
                if let Some(replayed) = replay.and_then(|r| r.replayed()) {
                    // The data is as new as the moment's newest logged write (to the second).
                    let newest = replayed.newest_row.unwrap_or(created_at);
                    ctx.memory.restored = Some((format!("{backup} + log"), newest));
                    ctx.memory.point_in_time = Some(replayed.at + chrono::Duration::seconds(1));
                }
                Ok(outputs! {
                    "backup" => backup,
                    "created_at" => created_at.to_rfc3339(),
                    "safety_copy" => safety_copy.map(|p| p.display().to_string()),
                    "files" => files,
                    "bytes" => bytes,
                })
            }
            other => Err(StepError::Check(format!(
                "nothing was restored: {}",
                serde_json::to_string(&other).unwrap_or_default()
            ))),
        }
    }
}
