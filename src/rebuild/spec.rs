//! What a rebuild needs, as a scenario step writes it (`with:`) and as the command line fills
//! it, turned into the options and the embedding client in one place.

use std::time::Duration;

use serde::Deserialize;

use super::embed::{EmbedSettings, EmbeddingClient};
use super::source::{FieldMap, SourceError, SourceSpec};
use super::{api_key_from_env, configuration_for_space, RebuildOptions};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildSpec {
    pub collection: String,
    /// FILE.jsonl, FILE.csv, sqlite:PATH or postgres://...
    pub source: String,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default = "default_id")]
    pub id_field: String,
    #[serde(default = "default_text")]
    pub text_field: String,
    #[serde(default)]
    pub metadata_fields: Vec<String>,
    pub embed_url: String,
    pub model: String,
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    #[serde(default = "default_embed_batch")]
    pub embed_batch: usize,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default)]
    pub space: Option<String>,
    #[serde(default)]
    pub reembed_existing: bool,
    #[serde(default)]
    pub expected_min: Option<u64>,
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

impl RebuildSpec {
    /// The rebuild's options and its embedding client (API key read from the environment).
    pub fn prepare(&self) -> Result<(RebuildOptions, EmbeddingClient), SourceError> {
        let source = SourceSpec::parse(&self.source, self.table.as_deref(), self.query.as_deref())?;
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
            configuration: configuration_for_space(self.space.as_deref()),
            reembed_existing: self.reembed_existing,
            expected_min: self.expected_min,
        };
        let embedder = EmbeddingClient::new(EmbedSettings {
            url: self.embed_url.clone(),
            model: self.model.clone(),
            api_key: api_key_from_env(&self.api_key_env),
            attempts: self.attempts,
            timeout: Duration::from_secs(120),
        });
        Ok((options, embedder))
    }
}
