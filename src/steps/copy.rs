//! `copy`: copy backups of the drill's repository into a second one (an off-site copy), as
//! `vecdrill copy` does; a later `restore` with `repo:` restores from the copy.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::commands::copy::{copy, CopyTo};
use crate::commands::Backups;
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// The repository copied into (created on first use, with the run's password when it has
    /// one).
    to: String,
    /// A backup id, `latest` (the default) or `all`.
    #[serde(default = "super::latest")]
    backup: String,
    /// The repository copied from: the scenario's by default.
    #[serde(default)]
    repo: Option<String>,
    /// Whose backups `latest` and `all` mean (`HOST:PATH` as `vecdrill list` shows it); by
    /// default the target's own, or the repository's only source.
    #[serde(default)]
    source: Option<String>,
}

pub const KIND: StepKind = StepKind {
    name: "copy",
    summary: "copy `backup` (latest | all | ID) into the repository `to`, verified there",
    outputs: &[
        "backup",
        "copied",
        "already_there",
        "removed_there",
        "new_chunks",
        "uploaded_bytes",
    ],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: true,
    other_repos: &["to"],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Copy>,
};

#[async_trait]
impl Step for Copy {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let from = ctx.open_repo(self.repo.as_deref()).await?;
        let selection = Backups::of_step(&self.backup);
        let to = CopyTo {
            url: &self.to,
            password: ctx.passwords,
            prompt: None,
            keep_last: None,
        };
        let choice = ctx.source_choice(self.source.clone());
        let outcome = copy(&from, &selection, &choice, &to, &NoProgress).await?;
        let copied = outcome
            .copies
            .iter()
            .filter(|c| !c.already_there && c.failed.is_none())
            .count();
        let out = outputs! {
            "backup" => outcome.copies.last().map(|c| c.backup.clone()).unwrap_or_default(),
            "copied" => copied,
            "already_there" => outcome.copies.iter().filter(|c| c.already_there).count(),
            "removed_there" => outcome.removed_there.len(),
            "new_chunks" => outcome.copies.iter().map(|c| c.new_chunks).sum::<u64>(),
            "uploaded_bytes" => outcome.copies.iter().map(|c| c.uploaded_bytes).sum::<u64>(),
        };
        match outcome.failures().first() {
            None => Ok(out),
            Some(first) => Err(StepError::Mismatch {
                message: format!(
                    "{} backup(s) not copied; first: {first}",
                    outcome.failures().len()
                ),
                outputs: out,
            }),
        }
    }
}
