//! `backup`: back up the target's data directory into the scenario's repository.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::progress::NoProgress;
use crate::repo::Repository;
use crate::targets::chroma::capture::CaptureMode;
use crate::targets::chroma::protect::{self, BackupOutcome, BackupRequest};
use crate::targets::faiss_redis::{self, FaissRedisRequest};
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
    targets: &[TargetKind::Chroma, TargetKind::FaissRedis],
    needs_repo: true,
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
        let repo = Repository::open_or_create(&ctx.repo_url(self.repo.as_deref())?).await?;
        let outcome = if ctx.target.kind == TargetKind::FaissRedis {
            self.faiss_redis(&repo, ctx).await?
        } else {
            self.chroma(&repo, ctx).await?
        };
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

impl Backup {
    async fn chroma(
        &self,
        repo: &Repository,
        ctx: &mut StepContext<'_>,
    ) -> Result<BackupOutcome, StepError> {
        let request = BackupRequest {
            dir: ctx.data_dir(self.data_dir.as_deref())?,
            mode: Some(self.mode),
            tags: self.tags.clone(),
            max_write_stall: self.max_write_stall.as_duration(),
            staging_parent: None,
            min_interval: None,
            read_all: false,
        };
        let service = match self.mode {
            CaptureMode::Cold => Some(ctx.service()?),
            _ => None,
        };
        Ok(protect::backup(repo, &request, service, &NoProgress).await?)
    }

    /// The target's index files and Redis (`target.faiss`, `url`, `redis_prefixes`).
    async fn faiss_redis(
        &self,
        repo: &Repository,
        ctx: &StepContext<'_>,
    ) -> Result<BackupOutcome, StepError> {
        let target = ctx.target;
        let request = FaissRedisRequest {
            faiss: target.faiss.clone(),
            redis_url: Some(target.url.clone()),
            prefixes: target.redis_prefixes.clone(),
            rdb_path: target.redis_rdb.clone(),
            tags: self.tags.clone(),
            pre: None,
            post: None,
            save_timeout: self
                .max_write_stall
                .as_duration()
                .max(Duration::from_secs(300)),
            min_interval: None,
        };
        Ok(faiss_redis::backup(repo, &request, &NoProgress).await?)
    }
}
