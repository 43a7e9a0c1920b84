//! `verify`: prove a backup is complete (and with `read_data`, intact byte for byte).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::commands::verify::{verify, Backups, VerifyOptions};
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::spec::TargetKind;

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
    /// Whose backups `latest` means (`HOST:PATH` as `vecdrill list` shows it); by default the
    /// target's own, or the repository's only source.
    #[serde(default)]
    source: Option<String>,
    /// FAISS + Redis: index file name → the Redis key prefix whose count must equal the index's
    /// vector count (`vecdrill verify --expect-match`).
    #[serde(default)]
    expect_match: BTreeMap<String, String>,
}

pub const KIND: StepKind = StepKind {
    name: "verify",
    summary:
        "verify `backup` (latest | all | ID) in the repository; `read_data` re-hashes everything",
    outputs: &["backups", "chunks", "packs", "problems"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Verify>,
};

#[async_trait]
impl Step for Verify {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let repo = ctx.open_repo(self.repo.as_deref()).await?;
        let options = VerifyOptions {
            backups: Backups::of_step(&self.backup),
            source: ctx.source_choice(self.source.clone()),
            read_data: self.read_data,
            expect_match: self.expect_match.clone().into_iter().collect(),
        };
        let verification = verify(&repo, &options, &NoProgress).await?;
        let failures = verification.failures();
        let out = outputs! {
            "backups" => verification.report.backups.len(),
            "chunks" => verification.report.chunks,
            "packs" => verification.report.packs,
            "problems" => failures.len(),
        };
        match failures.first() {
            None => Ok(out),
            Some(first) => Err(StepError::Mismatch {
                message: format!("{} problem(s); first: {first}", failures.len()),
                outputs: out,
            }),
        }
    }
}
