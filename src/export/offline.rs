//! Export with no server: from a Chroma persistent directory, or from a backup (only the
//! database file and the selected collections' segment files are fetched, into a scratch
//! directory that is removed afterwards).

use std::path::Path;

use serde_json::json;

use super::format::{CollectionHeader, ExportWriter, Header, Record};
use super::{CollectionSummary, Selection, TransferError, TransferSummary};
use crate::progress::{Progress, Unit};
use crate::repo::format::Manifest;
use crate::repo::index::ChunkIndex;
use crate::repo::{restore, Repository};
use crate::targets::chroma::layout::{self, SQLITE_FILE};
use crate::targets::chroma::offline::{OfflineCollection, OfflineDatabase};
use crate::targets::chroma::protect;

/// Export from a persistent directory. The directory must not be written to meanwhile (a
/// stopped server, or a copy).
pub fn export_dir(
    dir: &Path,
    selection: &Selection,
    out: &Path,
    progress: &dyn Progress,
) -> Result<TransferSummary, TransferError> {
    // A running server rewrites the HNSW files and purges the log behind them: reading them
    // meanwhile can miss vectors. Export through its API instead.
    let holders = layout::holders(dir);
    if !holders.is_empty() {
        return Err(TransferError::InUse {
            path: dir.display().to_string(),
            holders: holders.join(", "),
        });
    }
    let source = json!({ "kind": "chroma-dir", "path": dir.display().to_string() });
    export_database(dir, selection, out, source, progress)
}

/// Export from a backup in a repository, fetching only what the selection needs.
pub async fn export_backup(
    repo: &Repository,
    backup: &str,
    selection: &Selection,
    out: &Path,
    scratch_parent: &Path,
    progress: &dyn Progress,
) -> Result<TransferSummary, TransferError> {
    let manifest = repo.manifest(backup).await?;
    let wanted = files_for(&manifest, selection)?;
    let scratch = tempfile_dir(scratch_parent)?;
    let index = ChunkIndex::load(repo).await?;
    restore::materialise(repo, &index, &wanted, scratch.path(), progress).await?;
    let source = json!({
        "kind": "backup",
        "repo": repo.store.url(),
        "backup": manifest.id,
        "created_at": manifest.created_at,
    });
    export_database(scratch.path(), selection, out, source, progress)
}

/// The manifest reduced to the database file and the selected collections' segments.
fn files_for(manifest: &Manifest, selection: &Selection) -> Result<Manifest, TransferError> {
    let layout = protect::described(manifest).ok_or_else(|| {
        TransferError::Offline(format!(
            "backup {} does not describe its collections",
            manifest.id
        ))
    })?;
    if let Selection::Named(names) = selection {
        if let Some(missing) = names
            .iter()
            .find(|n| !layout.collections.iter().any(|c| &c.name == *n))
        {
            return Err(TransferError::NoSuchCollection {
                name: missing.clone(),
                source_name: format!("backup {}", manifest.id),
            });
        }
    }
    let segments: Vec<String> = layout
        .collections
        .iter()
        .filter(|c| selection.includes(&c.name))
        .filter_map(|c| c.vector_segment.clone())
        .collect();
    let mut reduced = manifest.clone();
    reduced.files.retain(|f| {
        f.path == SQLITE_FILE
            || segments
                .iter()
                .any(|s| f.path.starts_with(&format!("{s}/")))
    });
    reduced.totals.logical_bytes = reduced.files.iter().map(|f| f.size).sum();
    Ok(reduced)
}

fn tempfile_dir(parent: &Path) -> Result<tempfile::TempDir, TransferError> {
    std::fs::create_dir_all(parent)
        .and_then(|_| {
            tempfile::Builder::new()
                .prefix(".vecdrill-export-")
                .tempdir_in(parent)
        })
        .map_err(|e| {
            TransferError::Offline(format!(
                "cannot make a scratch directory in {}: {e}",
                parent.display()
            ))
        })
}

fn export_database(
    dir: &Path,
    selection: &Selection,
    out: &Path,
    source: serde_json::Value,
    progress: &dyn Progress,
) -> Result<TransferSummary, TransferError> {
    let began = std::time::Instant::now();
    let database = OfflineDatabase::open(dir)?;
    let mut chosen: Vec<&OfflineCollection> = database
        .collections()
        .iter()
        .filter(|c| selection.includes(&c.info.name))
        .collect();
    if let Selection::Named(names) = selection {
        if let Some(missing) = names
            .iter()
            .find(|n| !chosen.iter().any(|c| &c.info.name == *n))
        {
            return Err(TransferError::NoSuchCollection {
                name: missing.clone(),
                source_name: dir.display().to_string(),
            });
        }
    }
    chosen.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let mut writer = ExportWriter::create(out, &Header::new(source))?;
    progress.start(
        "exporting",
        Some(chosen.iter().map(|c| c.info.count).sum()),
        Unit::Items,
    );
    let mut summaries = Vec::new();
    for collection in chosen {
        match export_collection(&database, collection, &mut writer, progress) {
            Ok(records) => summaries.push(CollectionSummary {
                name: collection.info.name.clone(),
                records,
                count: collection.info.count,
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

fn export_collection(
    database: &OfflineDatabase,
    collection: &OfflineCollection,
    writer: &mut ExportWriter,
    progress: &dyn Progress,
) -> Result<u64, TransferError> {
    let info = &collection.info;
    writer.begin_collection(&CollectionHeader {
        name: info.name.clone(),
        id: Some(info.id.clone()),
        configuration: collection.configuration.clone(),
        metadata: collection.metadata.clone(),
        dimension: info.dimension.map(|d| d as u64),
        count: info.count,
    })?;
    let written = database.for_each_record(collection, |record| {
        progress.advance(1);
        writer
            .record(&Record {
                id: record.id,
                embedding: record.embedding,
                document: record.document,
                metadata: record.metadata,
                uri: record.uri,
            })
            .map_err(TransferError::from)
    })?;
    if written != info.count {
        return Err(TransferError::Offline(format!(
            "collection {:?}: the database counts {} records but {written} could be read",
            info.name, info.count
        )));
    }
    Ok(written)
}
