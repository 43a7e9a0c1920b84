//! `backup`: back up the target's data directory into the scenario's repository.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::commands::backup::{backup, BackupOptions, BackupSettings};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::chroma::capture::CaptureMode;
use crate::targets::protect::BackupOutcome;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// `cold` (stop, copy, start: the default in a drill, which owns the service), `hot`, or
    /// `offline` (nothing is running).
    #[serde(default = "default_mode")]
    mode: CaptureMode,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default = "default_stall")]
    max_write_stall: HumanDuration,
    /// After the backup, keep only the newest N of this source (`vecdrill backup --keep-last`).
    #[serde(default)]
    keep_last: Option<usize>,
}

fn default_mode() -> CaptureMode {
    CaptureMode::Cold
}

fn default_stall() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

pub const KIND: StepKind = StepKind {
    name: "backup",
    summary: "back up `data_dir` (FAISS + Redis: `target.faiss` and Redis) into the repository (`mode`, `tags`)",
    outputs: &[
        "id",
        "created_at",
        "files",
        "logical_bytes",
        "new_bytes",
        "stored_bytes",
        "write_stall_ms",
    ],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Backup>,
};

#[async_trait]
impl Step for Backup {
    fn restarts_service(&self) -> bool {
        self.mode == CaptureMode::Cold
    }

    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let repo = ctx.open_or_create_repo(self.repo.as_deref()).await?;
        // The target's data directory is the step's to override (and, for a kind that backs
        // it up, required: the target says so when there is none).
        let data_dir = ctx.data_dir(self.data_dir.as_deref()).ok();
        let source = ctx
            .target
            .config()
            .backup_source(data_dir, self.mode)
            .map_err(StepError::Setup)?;
        let cold = source.stops_service();
        let options = BackupOptions {
            source,
            settings: BackupSettings {
                tags: self.tags.clone(),
                max_write_stall: self.max_write_stall.as_duration(),
                min_interval: None,
            },
            keep_last: self.keep_last,
        };
        let service = if cold { Some(ctx.service()?) } else { None };
        let outcome = backup(&repo, &options, service, &NoProgress).await?.outcome;
        let BackupOutcome::Created { manifest } = outcome else {
            return Err(StepError::Check("the backup was skipped".into()));
        };
        let t = &manifest.totals;
        Ok(outputs! {
            "id" => manifest.id,
            "created_at" => manifest.created_at.to_rfc3339(),
            "files" => t.files,
            "logical_bytes" => t.logical_bytes,
            "new_bytes" => t.new_bytes,
            "stored_bytes" => t.stored_bytes,
            "write_stall_ms" => manifest.capture.write_stall_ms,
        })
    }
}
