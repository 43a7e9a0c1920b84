//! `import`: load an export file into the target server (resumable; counts checked).

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::export::import::{self, ImportOptions};
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Import {
    /// The export file.
    #[serde(rename = "in")]
    input: PathBuf,
    /// Collections to import; every collection in the file when omitted.
    #[serde(default)]
    collections: Vec<String>,
    #[serde(default = "default_batch")]
    batch_size: usize,
}

fn default_batch() -> usize {
    ImportOptions::default().batch_size
}

pub const KIND: StepKind = StepKind {
    name: "import",
    summary: "import the export file `in` into the target (all collections, or `collections`)",
    outputs: &["collections", "records", "rows_per_second"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Import>,
};

#[async_trait]
impl Step for Import {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let options = ImportOptions {
            selection: crate::export::Selection::of(&self.collections),
            batch_size: self.batch_size,
            ..ImportOptions::default()
        };
        let summary = import::import(ctx.chroma()?, &self.input, &options, &NoProgress).await?;
        Ok(outputs! {
            "collections" => summary.collections.len(),
            "records" => summary.records,
            "rows_per_second" => summary.rows_per_second,
        })
    }
}
