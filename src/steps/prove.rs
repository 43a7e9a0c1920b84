//! `prove`: prove a backup restorable, as `vecdrill prove` does (restored into a sandbox,
//! served by a real server, counts checked, timed), and keep the verdict beside it. The proof
//! is a drill of its own, which the runner above runs for this step ([`Prover`]).

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::repo::format::{Manifest, Proof};
use crate::repo::Repository;
use crate::targets::spec::TargetKind;

/// How a proof runs: its server, and what it must meet.
#[derive(Debug, Clone)]
pub struct ProveSettings {
    /// The server command, with `{dir}` and `{port}`; none: the default Chroma's.
    pub server_command: Option<String>,
    /// The recovery time to meet (restore plus start to healthy).
    pub rto: Option<HumanDuration>,
    /// Each collection's least mean recall of the backup's probe queries.
    pub min_recall: f64,
    /// Prove the source as it was at the end of this whole second instead (a Chroma backup
    /// and the log shipped after it; see `restore --at`).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for ProveSettings {
    fn default() -> Self {
        Self {
            server_command: None,
            rto: None,
            min_recall: super::DEFAULT_MIN_RECALL,
            at: None,
        }
    }
}

/// Runs a proof for a step: the drill runner, which can run a drill inside a step.
#[async_trait]
pub trait Prover: Send + Sync {
    /// Prove `manifest`'s backup of `repo` (at `repo_url`); the proof kept, and the proof's
    /// run directory.
    async fn prove(
        &self,
        repo: &Repository,
        repo_url: &str,
        manifest: &Manifest,
        settings: &ProveSettings,
    ) -> Result<(Proof, String), StepError>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prove {
    /// Backup id, unique prefix, or `latest`.
    #[serde(default = "super::latest")]
    backup: String,
    #[serde(default)]
    repo: Option<String>,
    /// Whose backups `latest` means (`HOST:PATH` as `vecdrill list` shows it).
    #[serde(default)]
    source: Option<String>,
    /// The server command, with `{dir}` and `{port}`; by default the chroma of .venv or PATH.
    #[serde(default)]
    server_cmd: Option<String>,
    /// The recovery time the proof must meet (restore plus start to healthy).
    #[serde(default)]
    rto: Option<HumanDuration>,
    /// Each collection's least mean recall of the backup's probe queries (0.25).
    #[serde(
        default = "default_min_recall",
        deserialize_with = "super::neighbours::min_recall"
    )]
    min_recall: f64,
}

fn default_min_recall() -> f64 {
    super::DEFAULT_MIN_RECALL
}

pub const KIND: StepKind = StepKind {
    name: "prove",
    summary:
        "prove `backup` (latest) restorable in a sandbox with a real server, and keep the verdict",
    outputs: &[
        "backup",
        "passed",
        "rto_ms",
        "restore_ms",
        "start_to_healthy_ms",
        "run_dir",
    ],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Prove>,
};

#[async_trait]
impl Step for Prove {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let prover = ctx
            .prover
            .ok_or_else(|| StepError::Setup("no proof can run here".into()))?;
        let repo = ctx.open_repo(self.repo.as_deref()).await?;
        let manifest = repo
            .backup(&self.backup, &ctx.source_choice(self.source.clone()))
            .await?;
        let url = ctx.repo_url(self.repo.as_deref())?;
        let settings = ProveSettings {
            server_command: self.server_cmd.clone(),
            rto: self.rto,
            min_recall: self.min_recall,
            at: None,
        };
        let (proof, run_dir) = prover.prove(&repo, &url, &manifest, &settings).await?;
        let out = outputs! {
            "backup" => proof.backup.clone(),
            "passed" => proof.passed,
            "rto_ms" => proof.rto_ms,
            "restore_ms" => proof.restore_ms,
            "start_to_healthy_ms" => proof.start_to_healthy_ms,
            "run_dir" => run_dir,
        };
        if proof.passed {
            Ok(out)
        } else {
            Err(StepError::Mismatch {
                message: format!(
                    "backup {} is not proven: {}",
                    proof.backup,
                    proof.failure.as_deref().unwrap_or("the proof failed")
                ),
                outputs: out,
            })
        }
    }
}
