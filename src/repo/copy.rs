//! Copying backups from one repository into another (restic's `copy`): a second, off-site
//! copy of the same backups, not a second backup taken at another moment.
//!
//! A copy keeps the backup's id, time, source, capture, checks and the contents of every file;
//! what changes is how the destination names and seals them. Chunk ids and file hashes are
//! keyed in an encrypted repository, so between repositories that name chunks differently
//! every file is read back from the source (checked as a restore checks it) and its chunks
//! re-named and re-sealed for the destination, cut where the source cut them. Only chunks the
//! destination lacks are uploaded, and a file the destination already holds is not read at
//! all: where both name chunks alike, when its chunks are all there; elsewhere, when an
//! earlier copy of the same source holds the same file.
//!
//! The destination's manifest is written last, after everything it refers to has been
//! checked there (every chunk indexed, every pack present at its size, every pack this copy
//! wrote read back and every chunk in it re-hashed): a copy killed at any moment leaves packs
//! no backup refers to, never a listed backup that cannot be restored. The log a follower
//! shipped after the backup goes with it, and the source records where the copy is.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use super::chunker::Chunk;
use super::format::{kinds, ChunkId, CopiedFrom, CopyRecord, FileEntry, Manifest, FORMAT_VERSION};
use super::index::ChunkIndex;
use super::restorable::{locate, problems, read_file_in_order};
use super::writer::BackupWriter;
use super::{
    load_stored, lock, log_chain_dir, manifest_key, pack_key, verify, RepoError, Repository,
};
use crate::progress::{NoProgress, Progress, Unit};

pub const COPIES_DIR: &str = "copies";

/// Chunks between the source's reader, the re-naming and the destination's writer.
const CHUNK_QUEUE: usize = 4;

/// What copying one backup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    pub backup: String,
    /// The destination held the backup already: nothing but a missing log was copied.
    pub already_there: bool,
    pub files: u64,
    /// Files taken as the destination already held them, without reading the source (an
    /// empty file is neither read nor reused).
    pub files_reused: u64,
    /// Files read back from the source.
    pub files_read: u64,
    /// Plain bytes read back from the source.
    pub bytes_read: u64,
    pub chunks: u64,
    /// Chunks the destination lacked, and the bytes uploaded for them (compressed, sealed).
    pub new_chunks: u64,
    pub uploaded_bytes: u64,
    /// Packs written by this copy, each read back from the destination and every chunk in it
    /// re-hashed before the backup was listed there.
    pub packs_read_back: u64,
    pub log_segments: u64,
    pub seconds: f64,
    /// Why the backup was not copied (damaged in the source, or its copy did not verify).
    pub failed: Option<String>,
}

/// Where copies go and how they are recorded.
pub struct Destination<'a> {
    pub repo: &'a Repository,
    /// Its URL, as the source's copy records name it (credentials are removed here).
    pub url: &'a str,
}

/// Copy `manifests` (oldest first) from `from` into `to`, one after the other. A shared lock
/// on the source keeps a prune from removing what is being read; the destination is locked
/// as a backup locks it.
pub async fn copy_backups(
    from: &Repository,
    to: &Destination<'_>,
    manifests: &[Manifest],
    progress: &dyn Progress,
) -> Result<Vec<CopyReport>, RepoError> {
    let lock = lock::acquire(from, false, "copy").await?;
    let result = copy_locked(from, to, manifests, progress).await;
    lock.release().await;
    result
}

async fn copy_locked(
    from: &Repository,
    to: &Destination<'_>,
    manifests: &[Manifest],
    progress: &dyn Progress,
) -> Result<Vec<CopyReport>, RepoError> {
    let index = ChunkIndex::load(from).await?;
    let naming = Naming::of(from, to.repo);
    // The destination's backups, read once, for the earlier copies re-named files are taken
    // from; each new copy joins them.
    let mut held = match naming {
        Naming::Different => to.repo.readable_manifests().await?,
        Naming::Same => Vec::new(),
    };
    let mut reports = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let started = std::time::Instant::now();
        let copied = match existing_copy(to.repo, &manifest.id).await {
            Ok(Some(_)) => Ok(CopyReport::already_there(manifest)),
            Ok(None) => {
                let earlier = match naming {
                    Naming::Same => EarlierCopy::default(),
                    Naming::Different => EarlierCopy::find(from, &held, manifest).await?,
                };
                copy_one(from, to.repo, &index, naming, &earlier, manifest, progress)
                    .await
                    .map(|(report, copy)| {
                        if naming == Naming::Different {
                            held.push(copy);
                            held.sort_by_key(|m| m.created_at);
                        }
                        report
                    })
            }
            Err(err) => Err(err),
        };
        let mut report = match copied {
            Ok(report) => report,
            // One damaged backup (in the source, or its copy) keeps the others from nothing:
            // it is reported, and the copy fails once the rest is done.
            Err(err @ RepoError::Corrupt { .. }) => {
                tracing::debug!("backup {} not copied: {err}", manifest.id);
                reports.push(CopyReport {
                    failed: Some(err.to_string()),
                    ..CopyReport::not_copied(manifest)
                });
                continue;
            }
            Err(err) => return Err(err),
        };
        report.log_segments = copy_log(from, to.repo, &manifest.id).await?;
        record_copy(from, to, &manifest.id).await?;
        report.seconds = started.elapsed().as_secs_f64();
        reports.push(report);
    }
    Ok(reports)
}

/// Whether two repositories name chunks and files alike (both unencrypted, or sharing a
/// key): then an entry of one is an entry of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    Same,
    Different,
}

impl Naming {
    fn of(a: &Repository, b: &Repository) -> Self {
        const PROBE: &[u8] = b"vecdrill copy: do these repositories name chunks alike?";
        let chunk = |r: &Repository| ChunkId::in_repo(r.store.keys(), PROBE);
        let file = |r: &Repository| {
            let mut hasher = r
                .store
                .keys()
                .map_or_else(blake3::Hasher::new, |k| k.file_hasher());
            *hasher.update(PROBE).finalize().as_bytes()
        };
        if chunk(a) == chunk(b) && file(a) == file(b) {
            Self::Same
        } else {
            Self::Different
        }
    }
}

/// Of `manifests`, the ids the source's copy records say were copied into `to` and that `to`
/// no longer holds.
pub async fn removed_since_copied(
    from: &Repository,
    to: &Repository,
    manifests: &[Manifest],
) -> Result<Vec<String>, RepoError> {
    let records = copies(from).await?;
    let held: HashSet<String> = to.stored_backup_ids().await?.into_iter().collect();
    Ok(manifests
        .iter()
        .filter(|m| {
            records
                .get(&m.id)
                .is_some_and(|records| records.iter().any(|r| r.repository == to.config.id))
                && !held.contains(&m.id)
        })
        .map(|m| m.id.clone())
        .collect())
}

/// The destination's backup `id`, when it holds one (readable) already. One it holds damaged
/// is not overwritten: that is for a person to look at.
async fn existing_copy(to: &Repository, id: &str) -> Result<Option<Manifest>, RepoError> {
    match load_stored::<Manifest>(&to.store, &manifest_key(id)).await {
        Ok(manifest) => Ok(Some(manifest)),
        Err(RepoError::ObjectMissing { .. }) => Ok(None),
        Err(err) => Err(RepoError::Corrupt {
            what: format!("the destination's backup {id}"),
            detail: format!(
                "{err}; it is not overwritten: remove it there (`vecdrill forget --repo URL {id}`) or copy elsewhere"
            ),
        }),
    }
}

impl CopyReport {
    fn already_there(manifest: &Manifest) -> Self {
        Self {
            already_there: true,
            files_reused: manifest.files.len() as u64,
            ..Self::not_copied(manifest)
        }
    }

    /// A backup whose manifest cannot be read: not copied, and why.
    pub fn unreadable(damaged: &super::DamagedManifest) -> Self {
        Self {
            backup: damaged.backup_id().to_string(),
            failed: Some(format!(
                "its manifest {} cannot be read: {}",
                damaged.key, damaged.problem
            )),
            ..Self::default()
        }
    }

    fn not_copied(manifest: &Manifest) -> Self {
        Self {
            backup: manifest.id.clone(),
            files: manifest.files.len() as u64,
            chunks: manifest.totals.chunks,
            ..Self::default()
        }
    }
}

async fn copy_one(
    from: &Repository,
    to: &Repository,
    index: &ChunkIndex,
    naming: Naming,
    earlier: &EarlierCopy,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> Result<(CopyReport, Manifest), RepoError> {
    // A backup that cannot be restored here is not copied anywhere.
    if let Some(problem) = problems(manifest, index).into_iter().next() {
        return Err(RepoError::Corrupt {
            what: format!("backup {} in the source", manifest.id),
            detail: format!("{problem}; `vecdrill verify` on the source says more"),
        });
    }
    let mut writer = BackupWriter::begin_as(to, "copy").await?;
    let (files, mut report) = match copy_files(
        from,
        &mut writer,
        index,
        naming,
        earlier,
        manifest,
        progress,
    )
    .await
    {
        Ok(copied) => copied,
        Err(err) => {
            writer.abort().await;
            return Err(err);
        }
    };
    let origin = CopiedFrom {
        repository: from.config.id.clone(),
        copied_at: Utc::now(),
    };
    let copy = commit_verified(to, writer, manifest, files, origin, &mut report).await?;
    Ok((report, copy))
}

/// Every file of `manifest` stored in the destination: its entries there, and the report so far.
async fn copy_files(
    from: &Repository,
    writer: &mut BackupWriter,
    index: &ChunkIndex,
    naming: Naming,
    earlier: &EarlierCopy,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> Result<(Vec<FileEntry>, CopyReport), RepoError> {
    let mut report = CopyReport::not_copied(manifest);
    progress.start("copying", Some(manifest.totals.logical_bytes), Unit::Bytes);
    let mut files = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let known = match naming {
            Naming::Same => Some(file.clone()),
            Naming::Different => earlier.entry_for(file),
        };
        if let Some(entry) = known {
            if writer.reuse(&entry).await? {
                progress.advance(file.size);
                report.files_reused += u64::from(!entry.chunks.is_empty());
                files.push(entry);
                continue;
            }
        }
        let entry = copy_file(from, writer, index, file, progress).await?;
        report.files_read += 1;
        report.bytes_read += file.size;
        files.push(entry);
    }
    progress.finish();
    Ok((files, report))
}

/// Read `file` back from the source (each chunk checked against its id, the whole against its
/// hash) and store its chunks in the destination as the destination names them.
async fn copy_file(
    from: &Repository,
    writer: &mut BackupWriter,
    index: &ChunkIndex,
    file: &FileEntry,
    progress: &dyn Progress,
) -> Result<FileEntry, RepoError> {
    let what = format!("file {} in the source", file.path);
    let located = locate(index, file).map_err(|problem| RepoError::Corrupt {
        what: problem.object,
        detail: problem.problem,
    })?;
    let (plain_tx, mut plain_rx) = mpsc::channel::<Vec<u8>>(CHUNK_QUEUE);
    let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>(CHUNK_QUEUE);
    let keys = writer.keys();
    let reading = async {
        let plain_tx = plain_tx;
        read_file_in_order(from, file, located, &what, &plain_tx, progress).await
    };
    let naming = async move {
        let mut whole = keys
            .as_deref()
            .map_or_else(blake3::Hasher::new, |k| k.file_hasher());
        let mut size = 0u64;
        while let Some(data) = plain_rx.recv().await {
            whole.update(&data);
            size += data.len() as u64;
            let id = ChunkId::in_repo(keys.as_deref(), &data);
            if chunk_tx.send(Chunk { id, data }).await.is_err() {
                break;
            }
        }
        (ChunkId(*whole.finalize().as_bytes()), size)
    };
    let storing = writer.store_chunks(chunk_rx, &NoProgress);
    let (read, (hash, size), stored) = tokio::join!(reading, naming, storing);
    // A failed writer makes the reader fail too ("copy aborted"): its error is the cause.
    let chunks = stored?;
    read?;
    if size != file.size {
        return Err(RepoError::Corrupt {
            what,
            detail: format!(
                "it read back as {size} bytes, the backup recorded {}",
                file.size
            ),
        });
    }
    writer.account_file(size);
    Ok(FileEntry {
        hash,
        chunks,
        ..file.clone()
    })
}

/// Check the copy in the destination, then list it there by writing its manifest.
async fn commit_verified(
    to: &Repository,
    mut writer: BackupWriter,
    original: &Manifest,
    files: Vec<FileEntry>,
    origin: CopiedFrom,
    report: &mut CopyReport,
) -> Result<Manifest, RepoError> {
    let written = match writer.finish_packs().await {
        Ok(written) => written.to_vec(),
        Err(err) => {
            writer.abort().await;
            return Err(err);
        }
    };
    let totals = writer.totals().clone();
    let copy = Manifest {
        kind: kinds::MANIFEST.to_string(),
        version: FORMAT_VERSION,
        checksum: String::new(),
        files,
        totals,
        copied_from: Some(origin),
        ..original.clone()
    };
    let checked = check_in_destination(to, &copy, &written).await;
    if let Err(err) = checked {
        writer.abort().await;
        return Err(err);
    }
    report.new_chunks = copy.totals.new_chunks;
    report.uploaded_bytes = copy.totals.stored_bytes;
    report.packs_read_back = written.len() as u64;
    writer.commit_manifest(copy).await
}

/// Whether `copy` restores from the destination as it stands: what `verify` checks of it,
/// and every pack this copy wrote read back whole.
async fn check_in_destination(
    to: &Repository,
    copy: &Manifest,
    written: &[super::format::PackIndex],
) -> Result<(), RepoError> {
    let failed = |detail: String| RepoError::Corrupt {
        what: format!("the copy of backup {} in the destination", copy.id),
        detail: format!("{detail}; it was not listed there, and copying again retries it"),
    };
    copy.validate(Some(&copy.id)).map_err(&failed)?;
    let report = verify::verify(
        to,
        std::slice::from_ref(copy),
        false,
        &|_| Vec::new(),
        &NoProgress,
    )
    .await?;
    if let Some(problem) = report.problems.first() {
        return Err(failed(problem.to_string()));
    }
    for pack in written {
        let bytes = to
            .store
            .get(&pack_key(&pack.pack), super::format::limits::PACK_BYTES)
            .await?;
        verify::check_pack(to, &pack.pack, bytes, pack.entries.clone())
            .await?
            .map_err(|err| failed(err.to_string()))?;
    }
    Ok(())
}

/// For repositories that name chunks differently: the destination's copy of an earlier
/// backup of the same source, by path, with the source's entry it was made from. A file whose
/// source entry is unchanged since then is that copy's entry, and is not read again.
#[derive(Default)]
struct EarlierCopy {
    files: HashMap<String, (FileEntry, FileEntry)>,
}

impl EarlierCopy {
    /// `held`: the destination's backups, oldest first.
    async fn find(
        from: &Repository,
        held: &[Manifest],
        manifest: &Manifest,
    ) -> Result<Self, RepoError> {
        let newest = held
            .iter()
            .rev()
            .filter(|c| c.source_label() == manifest.source_label() && c.id != manifest.id)
            .find(|c| c.created_at <= manifest.created_at);
        let Some(copy) = newest else {
            return Ok(Self::default());
        };
        let original = match load_stored::<Manifest>(&from.store, &manifest_key(&copy.id)).await {
            Ok(original) => original,
            // Pruned from the source since: nothing to compare with.
            Err(RepoError::ObjectMissing { .. }) => return Ok(Self::default()),
            Err(err) => return Err(err),
        };
        let copied: HashMap<&str, &FileEntry> =
            copy.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let files = original
            .files
            .iter()
            .filter_map(|o| {
                let c = copied.get(o.path.as_str())?;
                (c.size == o.size).then(|| (o.path.clone(), (o.clone(), (*c).clone())))
            })
            .collect();
        Ok(Self { files })
    }

    /// The destination's entry for source entry `file`, when an earlier copy holds it.
    fn entry_for(&self, file: &FileEntry) -> Option<FileEntry> {
        let (original, copied) = self.files.get(&file.path)?;
        (original.hash == file.hash && original.chunks == file.chunks).then(|| FileEntry {
            mode: file.mode,
            mtime: file.mtime,
            ..copied.clone()
        })
    }
}

/// Copy the log shipped after backup `id` that the destination lacks, in order, after the
/// backup itself (a destination's prune removes a chain whose backup it does not hold). The
/// segments copied.
async fn copy_log(from: &Repository, to: &Repository, id: &str) -> Result<u64, RepoError> {
    let dir = log_chain_dir(id);
    // Only what a follower writes there (`<dir>/<number>.json`): any other name in the source
    // is not carried into the destination.
    let is_segment = |key: &str| {
        key.strip_prefix(&dir)
            .and_then(|k| k.strip_prefix('/'))
            .and_then(|k| k.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut segments: Vec<String> = from
        .store
        .list(&dir)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| is_segment(k))
        .collect();
    if segments.is_empty() {
        return Ok(0);
    }
    let there: std::collections::HashSet<String> = to
        .store
        .list(&dir)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    // Zero-padded numbers: name order is chain order, so a copy killed midway leaves a
    // chain that runs without a hole as far as it goes.
    segments.sort();
    let mut copied = 0;
    for key in segments.iter().filter(|k| !there.contains(*k)) {
        // A chain is only believed as far as it runs without a hole: one that cannot be read
        // here ends what is copied, and is no reason to fail the backup's copy.
        let plain = match from.store.get_plain(key).await {
            Ok(plain) => plain,
            Err(err @ RepoError::Corrupt { .. }) => {
                tracing::warn!("the log after backup {id} is copied up to {key}, which is damaged in the source: {err}");
                break;
            }
            Err(err) => return Err(err),
        };
        to.store.put_plain(key, plain).await?;
        copied += 1;
    }
    Ok(copied)
}

/// Note in the source that backup `id` has a copy in the destination.
async fn record_copy(from: &Repository, to: &Destination<'_>, id: &str) -> Result<(), RepoError> {
    let key = copy_record_key(&format!("{id}/{}", to.repo.config.id));
    // One that says the copy was removed there (or cannot be read) is written again.
    if load_stored::<CopyRecord>(&from.store, &key)
        .await
        .is_ok_and(|r| r.removed_there_at.is_none())
    {
        return Ok(());
    }
    let record = CopyRecord {
        kind: kinds::COPY.to_string(),
        version: FORMAT_VERSION,
        checksum: String::new(),
        backup: id.to_string(),
        repository: to.repo.config.id.clone(),
        url: crate::redaction::redact_url(to.url),
        copied_at: Utc::now(),
        removed_there_at: None,
    };
    from.store
        .put_sealed(&copy_record_key(&record.name()), &record)
        .await
}

/// Note in the source that backups `ids`, copied into `to` before, are gone from there: `list`
/// stops saying they are there.
pub async fn record_removed_there(
    from: &Repository,
    to: &Repository,
    ids: &[String],
) -> Result<(), RepoError> {
    for id in ids {
        let key = copy_record_key(&format!("{id}/{}", to.config.id));
        let Ok(mut record) = load_stored::<CopyRecord>(&from.store, &key).await else {
            continue;
        };
        if record.removed_there_at.is_none() {
            record.removed_there_at = Some(Utc::now());
            from.store.put_sealed(&key, &record).await?;
        }
    }
    Ok(())
}

fn copy_record_key(name: &str) -> String {
    format!("{COPIES_DIR}/{name}.json")
}

/// Where each backup of `repo` is known to have copies, by backup id. A record that cannot be
/// read says nothing: it is left out, with a warning.
pub async fn copies(repo: &Repository) -> Result<HashMap<String, Vec<CopyRecord>>, RepoError> {
    records_under(repo, COPIES_DIR).await
}

/// Where backup `id` of `repo` is known to have copies.
pub async fn copies_of(repo: &Repository, id: &str) -> Result<Vec<CopyRecord>, RepoError> {
    Ok(records_under(repo, &copies_dir(id))
        .await?
        .remove(id)
        .unwrap_or_default())
}

async fn records_under(
    repo: &Repository,
    dir: &str,
) -> Result<HashMap<String, Vec<CopyRecord>>, RepoError> {
    let (listed, oversized): (Vec<_>, Vec<_>) = repo
        .store
        .list(dir)
        .await?
        .into_iter()
        .partition(|object| object.size <= MAX_RECORD_BYTES);
    // A record is a few hundred bytes: a large object there is not read (16 are read at once).
    for object in oversized {
        tracing::warn!(
            "ignoring copy record {}: it is {} bytes, more than {MAX_RECORD_BYTES}",
            object.key,
            object.size
        );
    }
    let mut loading = futures::stream::iter(listed.into_iter().map(|object| async move {
        (
            load_stored::<CopyRecord>(&repo.store, &object.key).await,
            object.key,
        )
    }))
    .buffer_unordered(16);
    let mut copies: HashMap<String, Vec<CopyRecord>> = HashMap::new();
    while let Some((loaded, key)) = loading.next().await {
        match loaded {
            Ok(record) => copies
                .entry(record.backup.clone())
                .or_default()
                .push(record),
            Err(err @ (RepoError::Corrupt { .. } | RepoError::NewerFormat { .. })) => {
                tracing::warn!("ignoring copy record {key}: {err}")
            }
            Err(RepoError::ObjectMissing { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    for records in copies.values_mut() {
        records.sort_by(|a, b| a.url.cmp(&b.url));
    }
    Ok(copies)
}

/// Largest copy record read (one holds two ids, a URL and a time).
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// The copy records of backup `id` go with it (see `prune`).
pub fn copies_dir(id: &str) -> String {
    format!("{COPIES_DIR}/{id}")
}
