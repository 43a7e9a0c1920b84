//! `restore`: restore a backup into the target's data directory (stop the service first).
//! The restored backup's age at the disaster mark is the drill's RPO.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::chroma::protect::{self, RestoreOutcome, RestoreRequest};
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
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

pub const KIND: StepKind = StepKind {
    name: "restore",
    summary: "restore `backup` (latest) into the data directory, keeping a safety copy",
    outputs: &["backup", "created_at", "safety_copy", "files", "bytes"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
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
        let request = RestoreRequest {
            backup: self.backup.clone(),
            source: ctx.source_choice(self.source.clone()),
            to,
            keep_safety_copies: if self.keep_safety_copy {
                self.keep_safety_copies.max(1)
            } else {
                0
            },
            if_newer: false,
            dry_run: false,
            then: None,
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
