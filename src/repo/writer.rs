//! Writing a backup: files are chunked, chunks the repository lacks are compressed into packs,
//! packs upload with bounded concurrency, and the manifest is written last.

use std::collections::{HashMap, HashSet};

use futures::stream::{FuturesOrdered, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::chunker::{chunk_file, Chunk};
use super::format::{kinds, ChunkId, FileEntry, Manifest, PackIndex, Totals, FORMAT_VERSION};
use super::index::ChunkIndex;
use super::lock::{self, LockGuard};
use super::pack::{encode_chunk, FinishedPack, PackBuilder};
use super::{index_key, manifest_key, pack_key, RepoError, Repository};
use crate::progress::Progress;

/// Packs uploading at once: bounds memory (16 MiB each) and connections.
const UPLOADS_IN_FLIGHT: usize = 3;
/// Chunks buffered between the reading thread and the packer.
const CHUNK_QUEUE: usize = 4;
/// Chunks being compressed at once (on the blocking pool).
const COMPRESSING_IN_FLIGHT: usize = 4;

pub struct BackupWriter {
    repo: Repository,
    index: ChunkIndex,
    /// Chunks stored by this backup so far.
    written: HashSet<ChunkId>,
    /// The parent backup's files by path.
    parent: HashMap<String, FileEntry>,
    /// Packs found (by HEAD, at their indexed size) or found missing during this backup: a
    /// chunk is reused only from a pack that is there, so a lost pack cannot hide behind its
    /// index and make a backup that cannot be restored.
    present: HashMap<Arc<str>, bool>,
    pack: PackBuilder,
    uploads: JoinSet<Result<PackIndex, RepoError>>,
    slots: Arc<Semaphore>,
    totals: Totals,
    /// Every pack this writer uploaded, with its index.
    written_packs: Vec<PackIndex>,
    lock: Option<LockGuard>,
}

/// Everything in a manifest that the writer does not compute itself.
pub struct ManifestInfo {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub source: super::format::Source,
    pub capture: super::format::Capture,
    pub database: serde_json::Value,
    pub checks: Vec<super::format::CheckResult>,
}

impl BackupWriter {
    /// Take a shared lock and load the chunk index, for a backup.
    pub async fn begin(repo: &Repository) -> Result<Self, RepoError> {
        Self::begin_as(repo, "backup").await
    }

    /// [`Self::begin`] for `operation` (what the lock says holds it: `copy`).
    pub async fn begin_as(repo: &Repository, operation: &str) -> Result<Self, RepoError> {
        let lock = lock::acquire(repo, false, operation).await?;
        let index = match ChunkIndex::load(repo).await {
            Ok(index) => index,
            Err(err) => {
                lock.release().await;
                return Err(err);
            }
        };
        Ok(Self {
            repo: repo.clone(),
            index,
            written: HashSet::new(),
            parent: HashMap::new(),
            present: HashMap::new(),
            pack: PackBuilder::default(),
            uploads: JoinSet::new(),
            slots: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT)),
            totals: Totals::default(),
            written_packs: Vec::new(),
            lock: Some(lock),
        })
    }

    /// Store one file; returns its manifest entry. `rel` is the path recorded in the manifest.
    pub async fn add_file(
        &mut self,
        path: &Path,
        rel: &str,
        progress: &dyn Progress,
    ) -> Result<FileEntry, RepoError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| RepoError::io(format!("cannot read {}", path.display()), e))?;
        if let Some(entry) = self.unchanged(rel, &meta).await? {
            progress.advance(entry.size);
            return Ok(entry);
        }
        let (chunks, reader) = chunk_file(
            PathBuf::from(path),
            self.repo.config.chunker,
            CHUNK_QUEUE,
            self.repo.store.shared_keys(),
        );
        let ids = self.store_chunks(chunks, progress).await?;
        let digest = reader
            .await
            .map_err(|e| RepoError::io("reading task", std::io::Error::other(e)))?
            .map_err(|e| RepoError::io(format!("cannot read {}", path.display()), e))?;
        self.account_file(digest.size);
        Ok(FileEntry {
            path: rel.to_string(),
            size: digest.size,
            mode: file_mode(&meta),
            mtime: meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now()),
            hash: digest.hash,
            chunks: ids,
        })
    }

    /// Store the chunks of one file as they arrive (ids as this repository names them),
    /// those it lacks compressed into packs; their ids, in order. The caller accounts for the
    /// file itself once it knows the file was read whole.
    pub async fn store_chunks(
        &mut self,
        mut chunks: mpsc::Receiver<Chunk>,
        progress: &dyn Progress,
    ) -> Result<Vec<ChunkId>, RepoError> {
        let keys = self.repo.store.shared_keys();
        let mut ids: Vec<ChunkId> = Vec::new();
        // Chunks compress on the blocking pool, several at once, and join the pack in order.
        let mut compressing = FuturesOrdered::new();
        let mut reading = true;
        while reading || !compressing.is_empty() {
            let take_more = reading && compressing.len() < COMPRESSING_IN_FLIGHT;
            tokio::select! {
                chunk = chunks.recv(), if take_more => {
                    let Some(chunk) = chunk else {
                        reading = false;
                        continue;
                    };
                    let raw = chunk.data.len() as u64;
                    progress.advance(raw);
                    self.totals.chunks += 1;
                    ids.push(chunk.id);
                    // Known from now on, so a chunk repeated within this backup is stored once.
                    if self.stored(&chunk.id).await? || !self.written.insert(chunk.id) {
                        continue;
                    }
                    let (id, keys) = (chunk.id, keys.clone());
                    compressing.push_back(async move {
                        let encoded = tokio::task::spawn_blocking(move || encode_chunk(&chunk.data, &chunk.id, keys.as_deref()))
                            .await
                            .map_err(|e| RepoError::io("compression task", std::io::Error::other(e)))?
                            .map_err(|e| RepoError::io("zstd", e))?;
                        Ok::<_, RepoError>((id, encoded, raw))
                    });
                }
                Some(done) = compressing.next(), if !compressing.is_empty() => {
                    let (id, (encoded, encoding), raw) = done?;
                    self.totals.new_chunks += 1;
                    self.totals.new_bytes += raw;
                    self.totals.stored_bytes += encoded.len() as u64;
                    self.pack.add(id, &encoded, raw, encoding);
                    if self.pack.is_full() {
                        self.flush_pack().await?;
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Take `entry` as it is when every chunk of it is stored here (accounted as a file of
    /// this backup); whether it was.
    pub async fn reuse(&mut self, entry: &FileEntry) -> Result<bool, RepoError> {
        for id in &entry.chunks {
            if !self.stored(id).await? {
                return Ok(false);
            }
        }
        self.totals.files += 1;
        self.totals.logical_bytes += entry.size;
        self.totals.chunks += entry.chunks.len() as u64;
        Ok(true)
    }

    /// The parent backup's entry for `rel`, when the file is evidently the same (size, mtime
    /// and mode unchanged, every chunk still stored): restic's rule, so an unchanged
    /// re-backup reads nothing. Chroma's writes always move a file's mtime.
    async fn unchanged(
        &mut self,
        rel: &str,
        meta: &std::fs::Metadata,
    ) -> Result<Option<FileEntry>, RepoError> {
        let Some(parent) = self.parent.get(rel).filter(|p| same_file(p, meta)).cloned() else {
            return Ok(None);
        };
        Ok(self.reuse(&parent).await?.then_some(parent))
    }

    /// Whether chunk `id` is already stored in a pack that exists. The first time a pack is
    /// met it is checked with one HEAD; a missing one is dropped from the index, and its index
    /// file deleted (it describes nothing now), so its chunks are stored again.
    async fn stored(&mut self, id: &ChunkId) -> Result<bool, RepoError> {
        let Some(location) = self.index.get(id) else {
            return Ok(false);
        };
        let pack = location.pack.clone();
        if let Some(present) = self.present.get(&pack) {
            return Ok(*present);
        }
        let indexed = self.index.packs.get(&*pack).map(|p| p.pack_size);
        let size = self.repo.store.size(&pack_key(&pack)).await?;
        let present = size.is_some() && size == indexed;
        if !present {
            tracing::warn!(
                "pack {pack} is {}: its chunks are stored again",
                match size {
                    None => "missing".to_string(),
                    Some(size) => format!("{size} bytes, not the {indexed:?} its index says"),
                }
            );
            self.index.remove_pack(&pack);
            if size.is_none() {
                self.repo.store.delete(&index_key(&pack)).await?;
            }
        }
        self.present.insert(pack, present);
        Ok(present)
    }

    /// Files of an earlier backup of the same source, to skip reading unchanged ones.
    pub fn set_parent(&mut self, parent: &Manifest) {
        self.parent = parent
            .files
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect();
    }

    /// Close the current pack and start uploading it (pack first, then its index).
    async fn flush_pack(&mut self) -> Result<(), RepoError> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let pack = std::mem::take(&mut self.pack).finish(self.repo.store.keys());
        // Wait for a free slot; surface the first failed upload early.
        let permit = loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                break permit;
            }
            if let Some(done) = self.uploads.join_next().await {
                let index =
                    done.map_err(|e| RepoError::io("upload task", std::io::Error::other(e)))??;
                self.written_packs.push(index);
            }
        };
        let store = self.repo.store.clone();
        self.uploads.spawn(async move {
            let FinishedPack { name, bytes, index } = pack;
            store.put(&pack_key(&name), bytes).await?;
            store.put_sealed(&index_key(&name), &index).await?;
            drop(permit);
            Ok(index)
        });
        Ok(())
    }

    async fn drain_uploads(&mut self) -> Result<(), RepoError> {
        while let Some(done) = self.uploads.join_next().await {
            let index =
                done.map_err(|e| RepoError::io("upload task", std::io::Error::other(e)))??;
            self.written_packs.push(index);
        }
        Ok(())
    }

    /// Finish and upload the last pack and wait for every upload: what was stored is in the
    /// repository, not yet referenced by any backup. The packs this writer uploaded.
    pub async fn finish_packs(&mut self) -> Result<&[PackIndex], RepoError> {
        self.flush_pack().await?;
        self.drain_uploads().await?;
        Ok(&self.written_packs)
    }

    /// Write `manifest` (whose chunks must all be stored): only now does the backup exist.
    pub async fn commit_manifest(mut self, manifest: Manifest) -> Result<Manifest, RepoError> {
        self.finish_packs().await?;
        self.repo
            .store
            .put_sealed(&manifest_key(&manifest.id), &manifest)
            .await?;
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
        Ok(manifest)
    }

    /// Finish the packs, then write the manifest: only now does the backup exist.
    pub async fn commit(
        mut self,
        info: ManifestInfo,
        files: Vec<FileEntry>,
    ) -> Result<Manifest, RepoError> {
        self.finish_packs().await?;
        let manifest = Manifest {
            kind: kinds::MANIFEST.to_string(),
            version: FORMAT_VERSION,
            checksum: String::new(),
            id: info.id,
            created_at: info.created_at,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: lock::hostname(),
            tags: info.tags,
            source: info.source,
            capture: info.capture,
            database: info.database,
            checks: info.checks,
            files,
            totals: self.totals.clone(),
            copied_from: None,
        };
        self.commit_manifest(manifest).await
    }

    /// Give up: uploads already finished stay (a later backup reuses them, prune reclaims them);
    /// no manifest is written.
    pub async fn abort(mut self) {
        self.uploads.abort_all();
        while self.uploads.join_next().await.is_some() {}
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
    }

    /// The keys chunks are named and sealed with here (an encrypted repository's).
    pub fn keys(&self) -> Option<Arc<super::crypto::Keys>> {
        self.repo.store.shared_keys()
    }

    /// Count a file whose chunks [`Self::store_chunks`] stored, once it was read whole.
    pub fn account_file(&mut self, size: u64) {
        self.totals.files += 1;
        self.totals.logical_bytes += size;
    }

    /// Statistics so far (for retries of a hot capture).
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn reset_totals(&mut self) {
        self.totals = Totals::default();
    }
}

/// Restic's rule for a file that is evidently the one `recorded`: the same size, mtime and mode.
/// (Chroma's writes always move a file's mtime.)
pub fn same_file(recorded: &FileEntry, meta: &std::fs::Metadata) -> bool {
    let mtime = meta.modified().ok().map(DateTime::<Utc>::from);
    recorded.size == meta.len() && Some(recorded.mtime) == mtime && recorded.mode == file_mode(meta)
}

fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Every regular file under `root`, sorted, as (absolute path, `/`-separated relative path).
pub fn walk(root: &Path) -> Result<Vec<(PathBuf, String)>, RepoError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| RepoError::io(format!("cannot list {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| RepoError::io(format!("cannot list {}", dir.display()), e))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| RepoError::io(format!("cannot stat {}", path.display()), e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .expect("walked paths are under the root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((path, rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}
