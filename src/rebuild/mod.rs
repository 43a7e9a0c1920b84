//! Rebuild a collection from its source documents: read them ([`source`]), embed them through
//! an OpenAI-compatible endpoint ([`embed`]), upsert them with their text and metadata.
//!
//! Rounds of `concurrency x embed_batch` documents: ids already in the collection are
//! skipped (so a rebuild interrupted by a rate limit resumes without paying twice), the rest
//! are embedded in parallel requests and upserted together.

pub mod embed;
pub mod source;
pub mod spec;

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{json, Value};

use crate::exit::{self, Classify};
use crate::progress::{Progress, Unit};
use crate::targets::chroma::{ChromaClient, ChromaError};
use embed::{EmbedError, EmbeddingClient};
use source::{Document, DocumentReader, FieldMap, SourceError, SourceSpec};

#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub collection: String,
    pub source: SourceSpec,
    pub fields: FieldMap,
    /// Texts per embedding request.
    pub embed_batch: usize,
    /// Embedding requests in flight.
    pub concurrency: usize,
    /// Chroma configuration for a collection that does not exist yet (`{"hnsw": {...}}`).
    pub configuration: Option<Value>,
    /// Re-embed documents whose id is already stored (default: skip them).
    pub reembed_existing: bool,
    /// Fail (exit 1) when the collection counts fewer records at the end.
    pub expected_min: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuildSummary {
    pub collection: String,
    pub source: String,
    pub read: u64,
    pub embedded: u64,
    pub skipped_existing: u64,
    pub count_after: u64,
    pub dimension: Option<usize>,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub embed_requests: u64,
    pub embed_retries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Chroma(#[from] ChromaError),
    #[error("collection {collection:?} counts {count} records after the rebuild; at least {min} were expected")]
    BelowMinimum {
        collection: String,
        count: u64,
        min: u64,
    },
}

impl Classify for RebuildError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Source(SourceError::Read { .. }) => exit::RUNTIME,
            Self::Source(_) => exit::BAD_INPUT,
            Self::Embed(e) => e.exit_code(),
            Self::Chroma(e) => e.exit_code(),
            Self::BelowMinimum { .. } => exit::FAILED,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Source(SourceError::Malformed { .. }) => Some(
                "fix that line of the source (documents before it are stored), then run the same rebuild again".into(),
            ),
            Self::Source(_) => None,
            Self::Embed(e) => e.hint(),
            Self::Chroma(e) => e.hint(),
            Self::BelowMinimum { .. } => {
                Some("the source holds fewer documents than expected: check it before trusting this collection".into())
            }
        }
    }
}

pub async fn rebuild(
    chroma: &ChromaClient,
    embedder: &EmbeddingClient,
    options: &RebuildOptions,
    progress: &dyn Progress,
) -> Result<RebuildSummary, RebuildError> {
    let began = std::time::Instant::now();
    let mut reader = DocumentReader::open(&options.source, options.fields.clone()).await?;
    let collection = chroma
        .get_or_create_configured(&options.collection, None, options.configuration.clone())
        .await?;
    let embed_batch = options.embed_batch.max(1);
    let round = (embed_batch * options.concurrency.max(1)).min(chroma.max_batch_size().await?);
    let mut summary = RebuildSummary {
        collection: options.collection.clone(),
        source: reader.name().to_string(),
        read: 0,
        embedded: 0,
        skipped_existing: 0,
        count_after: 0,
        dimension: None,
        seconds: 0.0,
        rows_per_second: 0.0,
        embed_requests: 0,
        embed_retries: 0,
    };
    progress.start("rebuilding", None, Unit::Items);
    loop {
        let documents = reader.next_batch(round).await?;
        if documents.is_empty() {
            break;
        }
        let read = documents.len() as u64;
        summary.read += read;
        let documents = unique_by_id(documents);
        let documents = if options.reembed_existing {
            documents
        } else {
            let before = documents.len();
            let fresh = without_stored(chroma, &collection.id, documents).await?;
            summary.skipped_existing += (before - fresh.len()) as u64;
            fresh
        };
        if !documents.is_empty() {
            let embeddings = embed_all(embedder, &documents, embed_batch).await?;
            summary.dimension = embeddings.first().map(Vec::len).or(summary.dimension);
            summary.embedded += documents.len() as u64;
            upsert(chroma, &collection.id, documents, embeddings).await?;
        }
        progress.advance(read);
    }
    progress.finish();
    summary.count_after = chroma.count(&collection.id).await?;
    summary.seconds = began.elapsed().as_secs_f64();
    summary.rows_per_second = if summary.seconds > 0.0 {
        summary.embedded as f64 / summary.seconds
    } else {
        0.0
    };
    summary.embed_requests = embedder
        .stats
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    summary.embed_retries = embedder
        .stats
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    if let Some(min) = options.expected_min {
        if summary.count_after < min {
            return Err(RebuildError::BelowMinimum {
                collection: options.collection.clone(),
                count: summary.count_after,
                min,
            });
        }
    }
    Ok(summary)
}

/// Chroma refuses a batch with repeated ids: the last occurrence wins, as an upsert would.
fn unique_by_id(documents: Vec<Document>) -> Vec<Document> {
    let mut seen = HashSet::new();
    let mut kept: Vec<Document> = documents
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.id.clone()))
        .collect();
    kept.reverse();
    kept
}

async fn without_stored(
    chroma: &ChromaClient,
    collection_id: &str,
    documents: Vec<Document>,
) -> Result<Vec<Document>, ChromaError> {
    let ids: Vec<String> = documents.iter().map(|d| d.id.clone()).collect();
    let stored: HashSet<String> = chroma
        .get_by_ids(collection_id, &ids, &[])
        .await?
        .ids
        .into_iter()
        .collect();
    Ok(documents
        .into_iter()
        .filter(|d| !stored.contains(&d.id))
        .collect())
}

/// Embed in requests of `batch` texts, all at once, results in document order.
async fn embed_all(
    embedder: &EmbeddingClient,
    documents: &[Document],
    batch: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let requests = documents.chunks(batch).map(|chunk| {
        let texts: Vec<String> = chunk.iter().map(|d| d.text.clone()).collect();
        async move { embedder.embed(&texts).await }
    });
    let answers = futures::future::try_join_all(requests).await?;
    Ok(answers.into_iter().flatten().collect())
}

async fn upsert(
    chroma: &ChromaClient,
    collection_id: &str,
    documents: Vec<Document>,
    embeddings: Vec<Vec<f32>>,
) -> Result<(), ChromaError> {
    let has_metadata = documents.iter().any(|d| d.metadata.is_some());
    let mut body = json!({
        "ids": documents.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        "embeddings": embeddings,
        "documents": documents.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
    });
    if has_metadata {
        body["metadatas"] = documents.iter().map(|d| d.metadata.clone()).collect();
    }
    chroma.upsert(collection_id, &body).await
}

/// The configuration that makes a new collection use `space` (`l2`, `cosine` or `ip`).
pub fn configuration_for_space(space: Option<&str>) -> Option<Value> {
    space.map(|space| json!({ "hnsw": { "space": space } }))
}

/// The API key from the environment variable `name`; absent or empty is no key.
pub fn api_key_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|k| !k.is_empty())
}
