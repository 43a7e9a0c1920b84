//! `verify`: prove a backup is complete (and with `read_data`, intact byte for byte).

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::progress::NoProgress;
use crate::repo::Repository;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// A backup id, `latest` (the default) or `all`.
    #[serde(default = "super::latest")]
    backup: String,
    #[serde(default)]
    read_data: bool,
    #[serde(default)]
    repo: Option<String>,
}

pub const KIND: StepKind = StepKind {
    name: "verify",
    summary:
        "verify `backup` (latest | all | ID) in the repository; `read_data` re-hashes everything",
    outputs: &["backups", "chunks", "packs", "problems"],
    needs_service: false,
    targets: &[TargetKind::Chroma, TargetKind::FaissRedis],
    needs_repo: true,
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Verify>,
};

#[async_trait]
impl Step for Verify {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let repo = Repository::open(&ctx.repo_url(self.repo.as_deref())?).await?;
        let (manifests, damaged) = match self.backup.as_str() {
            "all" => {
                let backups = repo.scan().await?;
                (backups.manifests, backups.damaged)
            }
            id => (vec![repo.manifest(id).await?], Vec::new()),
        };
        let mut report = crate::repo::verify::verify(
            &repo,
            &manifests,
            self.read_data,
            &crate::targets::missing_recorded_files,
            &NoProgress,
        )
        .await?;
        report.add_damaged(&damaged);
        // What `vecdrill verify` reads back too, so the step and the command agree.
        let read_back = crate::targets::read_back_checks(
            &repo,
            &manifests,
            self.read_data,
            &[],
            report.passed(),
            &NoProgress,
        )
        .await?;
        let failed: Vec<String> = read_back
            .iter()
            .filter(|(_, c)| !c.passed)
            .map(|(backup, c)| format!("backup {backup} {}: {}", c.name, c.detail))
            .collect();
        let out = outputs! {
            "backups" => report.backups.len(),
            "chunks" => report.chunks,
            "packs" => report.packs,
            "problems" => report.problems.len() + failed.len(),
        };
        if report.passed() && failed.is_empty() {
            return Ok(out);
        }
        if report.passed() {
            return Err(StepError::Mismatch {
                message: format!("{} check(s) failed; first: {}", failed.len(), failed[0]),
                outputs: out,
            });
        }
        let first = &report.problems[0];
        Err(StepError::Mismatch {
            message: format!(
                "{} problem(s); first: backup {} file {}: {} {}",
                report.problems.len(),
                first.backup.as_deref().unwrap_or("-"),
                first.file.as_deref().unwrap_or("-"),
                first.object,
                first.problem
            ),
            outputs: out,
        })
    }
}
