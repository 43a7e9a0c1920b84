//! `rebuild`: re-create a collection from its source documents and an embedding endpoint.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::progress::NoProgress;
use crate::rebuild::embed::{EmbedSettings, EmbeddingClient};
use crate::rebuild::source::{FieldMap, SourceSpec};
use crate::rebuild::{self, RebuildOptions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebuild {
    collection: String,
    /// FILE.jsonl, FILE.csv, sqlite:PATH or postgres://...
    source: String,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default = "default_id")]
    id_field: String,
    #[serde(default = "default_text")]
    text_field: String,
    #[serde(default)]
    metadata_fields: Vec<String>,
    embed_url: String,
    model: String,
    #[serde(default = "default_key_env")]
    api_key_env: String,
    #[serde(default = "default_embed_batch")]
    embed_batch: usize,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_attempts")]
    attempts: u32,
    #[serde(default)]
    space: Option<String>,
    #[serde(default)]
    reembed_existing: bool,
    #[serde(default)]
    expected_min: Option<u64>,
}

fn default_id() -> String {
    FieldMap::default().id_field
}
fn default_text() -> String {
    FieldMap::default().text_field
}
fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}
fn default_embed_batch() -> usize {
    64
}
fn default_concurrency() -> usize {
    4
}
fn default_attempts() -> u32 {
    6
}

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
    build: super::build::<Rebuild>,
};

#[async_trait]
impl Step for Rebuild {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let source = SourceSpec::parse(&self.source, self.table.as_deref(), self.query.as_deref())
            .map_err(|e| StepError::Setup(e.to_string()))?;
        let options = RebuildOptions {
            collection: self.collection.clone(),
            source,
            fields: FieldMap {
                id_field: self.id_field.clone(),
                text_field: self.text_field.clone(),
                metadata_fields: self.metadata_fields.clone(),
            },
            embed_batch: self.embed_batch,
            concurrency: self.concurrency,
            configuration: rebuild::configuration_for_space(self.space.as_deref()),
            reembed_existing: self.reembed_existing,
            expected_min: self.expected_min,
        };
        let embedder = EmbeddingClient::new(EmbedSettings {
            url: self.embed_url.clone(),
            model: self.model.clone(),
            api_key: rebuild::api_key_from_env(&self.api_key_env),
            attempts: self.attempts,
            timeout: Duration::from_secs(120),
        });
        let summary = rebuild::rebuild(ctx.chroma, &embedder, &options, &NoProgress).await?;
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
