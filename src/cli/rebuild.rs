//! `rebuild`: a collection from its source documents and an embedding endpoint.

use clap::Args;
use vecdrill::exit;
use vecdrill::rebuild::{self, spec::RebuildSpec};
use vecdrill::targets::chroma::ChromaClient;

use super::{print_json, progress::for_terminal, Failure};

#[derive(Args)]
pub struct RebuildArgs {
    /// The Chroma server to rebuild into.
    #[arg(long)]
    pub url: String,
    /// The collection to rebuild (created when missing).
    #[arg(long)]
    pub collection: String,
    /// Documents: FILE.jsonl, FILE.csv, sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long)]
    pub source: String,
    /// For sqlite:/postgres:// sources: the table holding the documents.
    #[arg(long, conflicts_with = "query")]
    pub table: Option<String>,
    /// For sqlite:/postgres:// sources: a query returning the documents.
    #[arg(long)]
    pub query: Option<String>,
    /// The field (or column) holding each document's id.
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// The field (or column) holding the text to embed.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Fields stored as metadata (comma-separated); default: every other field.
    #[arg(long, value_delimiter = ',')]
    pub metadata_fields: Vec<String>,
    /// OpenAI-compatible embedding endpoint (POST /v1/embeddings), e.g. https://api.openai.com.
    #[arg(long)]
    pub embed_url: String,
    /// Embedding model name, e.g. text-embedding-3-small.
    #[arg(long)]
    pub model: String,
    /// The environment variable holding the API key (never logged).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Texts per embedding request.
    #[arg(long, default_value_t = 64)]
    pub embed_batch: usize,
    /// Embedding requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Attempts per embedding request (429 and 5xx are retried with backoff).
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
    /// Distance for a new collection: l2, cosine or ip (default: Chroma's, l2).
    #[arg(long)]
    pub space: Option<String>,
    /// Embed again documents whose id is already stored (default: skip them).
    #[arg(long)]
    pub reembed_existing: bool,
    /// Exit 1 when the collection counts fewer records at the end.
    #[arg(long)]
    pub expected_min: Option<u64>,
    /// Print the rebuild summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn rebuild(args: RebuildArgs) -> Result<i32, Failure> {
    let spec = RebuildSpec {
        collection: args.collection.clone(),
        source: args.source.clone(),
        table: args.table.clone(),
        query: args.query.clone(),
        id_field: args.id_field.clone(),
        text_field: args.text_field.clone(),
        metadata_fields: args.metadata_fields.clone(),
        embed_url: args.embed_url.clone(),
        model: args.model.clone(),
        api_key_env: args.api_key_env.clone(),
        embed_batch: args.embed_batch,
        concurrency: args.concurrency,
        attempts: args.attempts,
        space: args.space.clone(),
        reembed_existing: args.reembed_existing,
        expected_min: args.expected_min,
    };
    let (options, embedder) = spec.prepare().map_err(|e| Failure {
        message: e.to_string(),
        hint: None,
        code: exit::BAD_INPUT,
    })?;
    let progress = for_terminal(args.json);
    let summary = rebuild::rebuild(
        &ChromaClient::new(&args.url),
        &embedder,
        &options,
        progress.as_ref(),
    )
    .await?;
    if args.json {
        print_json(&summary);
    } else {
        say!(
            "rebuilt {:?} from {}: {} documents read, {} embedded, {} already stored; count {} ({:.0} rows/s, {} embedding requests, {} retried)",
            summary.collection,
            summary.source,
            summary.read,
            summary.embedded,
            summary.skipped_existing,
            summary.count_after,
            summary.rows_per_second,
            summary.embed_requests,
            summary.embed_retries
        );
    }
    Ok(exit::SUCCESS)
}
