//! Import an export file into a Chroma server: collections are created with their
//! configuration and metadata, records are upserted in batches (a few in flight), and counts
//! are checked at the end of every collection.
//!
//! Upsert makes the import resumable: running it again after an interruption rewrites the
//! records already there and adds the rest, so nothing is duplicated or missed. A malformed
//! line stops the import there: the records before it are written, nothing after it.

use std::path::Path;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};

use super::format::{CollectionHeader, ExportReader, Item, Record};
use super::{CollectionSummary, Selection, TransferError, TransferSummary};
use crate::progress::{Progress, Unit};
use crate::targets::chroma::{schema, ChromaClient, ChromaError};

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub selection: Selection,
    /// Import the (single) selected collection under this name.
    pub rename: Option<String>,
    /// Records per upsert; the server's maximum when larger.
    pub batch_size: usize,
    /// Upserts in flight at once.
    pub parallel: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            selection: Selection::All,
            rename: None,
            batch_size: 1000,
            parallel: 4,
        }
    }
}

/// Chroma's upsert body; a field whose entries are all null is left out.
#[derive(Debug, Default, Serialize)]
struct Batch {
    ids: Vec<String>,
    embeddings: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    documents: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadatas: Option<Vec<Option<Map<String, Value>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uris: Option<Vec<Option<String>>>,
}

impl Batch {
    fn from_records(records: Vec<Record>) -> Self {
        fn column<T>(values: Vec<Option<T>>) -> Option<Vec<Option<T>>> {
            values.iter().any(Option::is_some).then_some(values)
        }
        let mut batch = Batch::default();
        let (mut documents, mut metadatas, mut uris) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            batch.ids.push(record.id);
            batch.embeddings.push(record.embedding);
            documents.push(record.document);
            metadatas.push(record.metadata.filter(|m| !m.is_empty()));
            uris.push(record.uri);
        }
        batch.documents = column(documents);
        batch.metadatas = column(metadatas);
        batch.uris = column(uris);
        batch
    }
}

/// The collection being imported.
struct Target {
    name: String,
    id: String,
    records: u64,
    pending: Vec<Record>,
}

pub async fn import(
    client: &ChromaClient,
    path: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<TransferSummary, TransferError> {
    let one_named = matches!(&options.selection, Selection::Named(names) if names.len() == 1);
    if options.rename.is_some() && !one_named {
        return Err(TransferError::Input(
            "--as renames one collection: name exactly one with --collection".into(),
        ));
    }
    let began = std::time::Instant::now();
    let batch_size = options.batch_size.clamp(1, client.max_batch_size().await?);
    let mut reader = ExportReader::open(path)?;
    let mut in_flight = FuturesUnordered::new();
    let mut target: Option<Target> = None;
    let mut summaries = Vec::new();
    let mut failure: Option<TransferError> = None;
    loop {
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(err) => {
                // Write what came before the bad line, then stop.
                failure = Some(err.into());
                break;
            }
        };
        match item {
            Item::Collection(header) => {
                if !options.selection.includes(&header.name) {
                    continue;
                }
                let name = options
                    .rename
                    .clone()
                    .unwrap_or_else(|| header.name.clone());
                let id = create(client, &name, &header).await?;
                progress.start(&name, Some(header.count), Unit::Items);
                target = Some(Target {
                    name,
                    id,
                    records: 0,
                    pending: Vec::with_capacity(batch_size),
                });
            }
            Item::Record(record) => {
                let Some(current) = target.as_mut() else {
                    continue;
                };
                current.pending.push(record);
                current.records += 1;
                if current.pending.len() >= batch_size {
                    let records = std::mem::take(&mut current.pending);
                    progress.advance(records.len() as u64);
                    in_flight.push(send(client.clone(), current.id.clone(), records));
                    while in_flight.len() >= options.parallel.max(1) {
                        in_flight.next().await.expect("an upsert is in flight")?;
                    }
                }
            }
            Item::CollectionEnd { .. } => {
                let Some(mut current) = target.take() else {
                    continue;
                };
                flush(client, &mut current, &mut in_flight).await?;
                progress.finish();
                summaries.push(check_count(client, &current).await?);
            }
        }
    }
    if let Some(mut current) = target.take() {
        flush(client, &mut current, &mut in_flight).await?;
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    progress.finish();
    if let Some(err) = failure {
        return Err(err);
    }
    if let Selection::Named(names) = &options.selection {
        if let Some(missing) = names
            .iter()
            .find(|n| !summaries.iter().any(|s| &s.name == *n))
        {
            if options.rename.is_none() {
                return Err(TransferError::NoSuchCollection {
                    name: missing.clone(),
                    source_name: reader.file().to_string(),
                });
            }
        }
    }
    Ok(TransferSummary::new(reader.file(), summaries, began))
}

/// Create the collection as exported, or use the one already there (a resumed import). An
/// existing collection of another dimension is refused before anything is written.
async fn create(
    client: &ChromaClient,
    name: &str,
    header: &CollectionHeader,
) -> Result<String, TransferError> {
    // A 0.x server takes the settings as `hnsw:*` metadata keys, and no configuration.
    let collection = if client.settings_in_metadata().await? {
        let metadata = schema::as_metadata(header.configuration.as_ref(), header.metadata.as_ref());
        client
            .get_or_create_configured(name, metadata.map(Value::Object), None)
            .await?
    } else {
        client
            .get_or_create_configured(
                name,
                header.metadata.clone().map(Value::Object),
                header.configuration.clone(),
            )
            .await?
    };
    if let (Some(have), Some(want)) = (collection.dimension, header.dimension) {
        if have != want {
            return Err(TransferError::Offline(format!(
                "collection {name:?} already exists on {} with {have}-d embeddings; the file's are {want}-d",
                client.url()
            )));
        }
    }
    Ok(collection.id)
}

async fn send(client: ChromaClient, id: String, records: Vec<Record>) -> Result<(), ChromaError> {
    client.upsert(&id, &Batch::from_records(records)).await
}

async fn flush<F>(
    client: &ChromaClient,
    current: &mut Target,
    in_flight: &mut FuturesUnordered<F>,
) -> Result<(), TransferError>
where
    F: std::future::Future<Output = Result<(), ChromaError>>,
{
    if !current.pending.is_empty() {
        let records = std::mem::take(&mut current.pending);
        send(client.clone(), current.id.clone(), records).await?;
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    Ok(())
}

/// The server must count at least the file's records; more means the collection held others.
async fn check_count(
    client: &ChromaClient,
    current: &Target,
) -> Result<CollectionSummary, TransferError> {
    let count = client.count(&current.id).await?;
    if count < current.records {
        return Err(TransferError::CountMismatch {
            name: current.name.clone(),
            count,
            expected: current.records,
        });
    }
    if count > current.records {
        tracing::warn!(
            collection = %current.name,
            count,
            imported = current.records,
            "the collection holds records that are not in the file"
        );
    }
    Ok(CollectionSummary {
        name: current.name.clone(),
        records: current.records,
        count,
    })
}
