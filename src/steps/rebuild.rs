//! `rebuild`: re-create a collection from its source documents and an embedding endpoint.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::progress::NoProgress;
use crate::rebuild::{self, spec::RebuildSpec};

/// The step's `with:` is a [`RebuildSpec`].
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Rebuild(RebuildSpec);

pub const KIND: StepKind = StepKind {
    name: "rebuild",
    summary: "re-embed the documents of `source` through `embed_url` into `collection`",
    outputs: &[
        "read",
        "embedded",
        "skipped_existing",
        "count_after",
        "rows_per_second",
        "embed_retries",
    ],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Rebuild>,
};

#[async_trait]
impl Step for Rebuild {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let (options, embedder) = self
            .0
            .prepare()
            .map_err(|e| StepError::Setup(e.to_string()))?;
        let summary = rebuild::rebuild(ctx.chroma()?, &embedder, &options, &NoProgress).await?;
        Ok(outputs! {
            "read" => summary.read,
            "embedded" => summary.embedded,
            "skipped_existing" => summary.skipped_existing,
            "count_after" => summary.count_after,
            "rows_per_second" => summary.rows_per_second,
            "embed_retries" => summary.embed_retries,
        })
    }
}
