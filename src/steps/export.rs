//! `export`: write collections from the target server to an export file.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::export::api::{self, ApiExportOptions};
use crate::export::Selection;
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// The export file (`.zst` for compressed).
    out: PathBuf,
    /// Collections to export; every collection when omitted.
    #[serde(default)]
    collections: Vec<String>,
    /// Export from another Chroma server than the target (an upgrade's old one).
    #[serde(default)]
    url: Option<String>,
}

pub const KIND: StepKind = StepKind {
    name: "export",
    summary: "export `collections` (default: all) from the target (or the server at `url`) to the file `out`",
    outputs: &["collections", "records", "rows_per_second", "file"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Export>,
};

#[async_trait]
impl Step for Export {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let summary = api::export(
            &ctx.chroma_at(self.url.as_deref())?,
            &Selection::of(&self.collections),
            &self.out,
            ApiExportOptions::default(),
            &NoProgress,
        )
        .await?;
        Ok(outputs! {
            "collections" => summary.collections.len(),
            "records" => summary.records,
            "rows_per_second" => summary.rows_per_second,
            "file" => summary.file,
        })
    }
}
