//! Export from a running Chroma server: pages of `get` fetched several at a time and written
//! in order, so memory holds at most `parallel` pages whatever the collection's size.

use std::path::Path;

use futures::stream::{FuturesOrdered, StreamExt};
use serde_json::{json, Value};

use super::format::{CollectionHeader, ExportWriter, Header, Record};
use super::{CollectionSummary, Selection, TransferError, TransferSummary};
use crate::progress::{Progress, Unit};
use crate::targets::chroma::client::RecordPage;
use crate::targets::chroma::{ChromaClient, Collection};

const INCLUDE: [&str; 4] = ["embeddings", "documents", "metadatas", "uris"];

#[derive(Debug, Clone, Copy)]
pub struct ApiExportOptions {
    /// Records per `get` request.
    pub page_size: u64,
    /// Requests in flight at once.
    pub parallel: usize,
}

impl Default for ApiExportOptions {
    fn default() -> Self {
        Self {
            page_size: 1000,
            parallel: 4,
        }
    }
}

pub async fn export(
    client: &ChromaClient,
    selection: &Selection,
    out: &Path,
    options: ApiExportOptions,
    progress: &dyn Progress,
) -> Result<TransferSummary, TransferError> {
    let began = std::time::Instant::now();
    let version = client.version_label().await?;
    let collections = select(client, selection).await?;
    let mut counts = Vec::with_capacity(collections.len());
    for collection in &collections {
        counts.push(client.count(&collection.id).await?);
    }
    let source = json!({ "kind": "chroma-api", "url": client.url(), "chroma_version": version });
    let mut writer = ExportWriter::create(out, &Header::new(source))?;
    progress.start("exporting", Some(counts.iter().sum()), Unit::Items);
    let mut summaries = Vec::new();
    for (collection, count) in collections.iter().zip(counts) {
        match export_collection(client, collection, count, options, &mut writer, progress).await {
            Ok(records) => summaries.push(CollectionSummary {
                name: collection.name.clone(),
                records,
                count,
            }),
            Err(err) => {
                progress.finish();
                writer.abandon();
                return Err(err);
            }
        }
    }
    writer.finish()?;
    progress.finish();
    Ok(TransferSummary::new(
        &out.display().to_string(),
        summaries,
        began,
    ))
}

async fn select(
    client: &ChromaClient,
    selection: &Selection,
) -> Result<Vec<Collection>, TransferError> {
    match selection {
        Selection::All => {
            let mut all = client.list_collections().await?;
            all.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(all)
        }
        Selection::Named(names) => {
            let mut found = Vec::new();
            for name in names {
                found.push(client.collection(name).await?);
            }
            Ok(found)
        }
    }
}

/// The collection as the export file describes it.
pub fn collection_header(collection: &Collection, count: u64) -> CollectionHeader {
    let metadata = match &collection.metadata {
        Some(Value::Object(map)) => Some(map.clone()),
        _ => None,
    };
    CollectionHeader {
        name: collection.name.clone(),
        id: Some(collection.id.clone()),
        configuration: crate::targets::chroma::schema::api_settings(
            collection.configuration_json.as_ref(),
            metadata.as_ref(),
        ),
        metadata,
        dimension: collection.dimension,
        count,
    }
}

async fn export_collection(
    client: &ChromaClient,
    collection: &Collection,
    count: u64,
    options: ApiExportOptions,
    writer: &mut ExportWriter,
    progress: &dyn Progress,
) -> Result<u64, TransferError> {
    writer.begin_collection(&collection_header(collection, count))?;
    let page_size = options.page_size.max(1);
    let fetch = |offset: u64| async move {
        client
            .get_page(&collection.id, offset, page_size, &INCLUDE)
            .await
    };
    let mut pages = FuturesOrdered::new();
    let mut next_offset = 0u64;
    let mut written = 0u64;
    loop {
        // Keep `parallel` pages in flight up to the count; past it, one at a time until a
        // short page (records added while exporting are exported too).
        while pages.len() < options.parallel.max(1) && next_offset < count {
            pages.push_back(fetch(next_offset));
            next_offset += page_size;
        }
        if pages.is_empty() {
            pages.push_back(fetch(next_offset));
            next_offset += page_size;
        }
        let page = pages.next().await.expect("a page was queued")?;
        let fetched = page.ids.len() as u64;
        written += write_page(page, writer)?;
        progress.advance(fetched);
        if fetched < page_size && pages.is_empty() {
            break;
        }
    }
    if written != count {
        tracing::warn!(
            collection = %collection.name,
            count,
            written,
            "the collection changed while it was exported"
        );
    }
    Ok(written)
}

fn write_page(page: RecordPage, writer: &mut ExportWriter) -> Result<u64, TransferError> {
    let n = page.ids.len();
    let mut embeddings = page.embeddings.unwrap_or_default().into_iter();
    let mut documents = page.documents.unwrap_or_default().into_iter();
    let mut metadatas = page.metadatas.unwrap_or_default().into_iter();
    let mut uris = page.uris.unwrap_or_default().into_iter();
    for id in page.ids {
        let record = Record {
            id,
            embedding: embeddings.next().unwrap_or_default(),
            document: documents.next().flatten(),
            metadata: match metadatas.next().flatten() {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            },
            uri: uris.next().flatten(),
        };
        writer.record(&record)?;
    }
    Ok(n as u64)
}
