//! Whether a backup can be restored, decided in one place for `verify` and `restore`:
//! - from its manifest and the pack indexes ([`problems`]): every chunk of every file is
//!   indexed, and a file's chunks add up to its recorded size;
//! - from the data ([`read_file`]): each file read back in order, chunk by chunk, decodes to
//!   chunks matching their BLAKE3 ids and to a whole file matching its recorded BLAKE3.
//!
//! The manifest is sealed with a checksum anyone can recompute, so neither half trusts it to
//! agree with itself: a chunk list swapped, reordered or shortened is caught by the sizes or
//! by the whole-file hash, before a restore swaps anything in.

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use super::format::{FileEntry, Manifest};
use super::index::{ChunkIndex, Location};
use super::pack::{decode_chunk, Recheck};
use super::{pack_key, RepoError, Repository};
use crate::progress::Progress;

/// Ranged reads in flight for one file.
const FETCHES_IN_FLIGHT: usize = 4;
/// Longest single ranged read, and most plain bytes one read decodes to (one larger chunk
/// is read alone): what a file in flight holds in memory, times [`FETCHES_IN_FLIGHT`].
const MAX_RUN_BYTES: u64 = 4 * 1024 * 1024;

/// Something that keeps a backup from restoring intact.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The backup that cannot be restored intact, if the problem touches one.
    pub backup: Option<String>,
    pub file: Option<String>,
    /// The damaged or missing object.
    pub object: String,
    pub problem: String,
}

impl std::fmt::Display for Problem {
    /// `backup B file F: OBJECT: PROBLEM`, without the backup or file it does not touch.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(backup) = &self.backup {
            write!(f, "backup {backup} ")?;
        }
        if let Some(file) = &self.file {
            write!(f, "file {file} ")?;
        }
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// Each chunk of `file` with where it is stored and where it goes in the file; an error says
/// why the file cannot be put together.
pub fn locate(index: &ChunkIndex, file: &FileEntry) -> Result<Vec<(Location, u64)>, Problem> {
    let problem = |object: String, problem: String| Problem {
        backup: None,
        file: Some(file.path.clone()),
        object,
        problem,
    };
    let mut located = Vec::with_capacity(file.chunks.len().min(1 << 16));
    let mut offset = 0u64;
    for id in &file.chunks {
        let location = index.get(id).ok_or_else(|| {
            let why = match index.unreadable.first() {
                None => "not in any pack index (a pack or its index is missing; `vecdrill repair index` writes an index again from a pack that is still there)".to_string(),
                Some((key, _)) => format!(
                    "not in any readable pack index (a pack or its index is missing, or in one of the {} that cannot be read, first {key}; `vecdrill repair index` writes indexes again from packs that are still there)",
                    index.unreadable.len()
                ),
            };
            problem(format!("chunk {id}"), why)
        })?;
        located.push((location.clone(), offset));
        offset = offset.saturating_add(location.entry.raw_length);
    }
    if offset != file.size {
        return Err(problem(
            format!("file {}", file.path),
            format!(
                "its chunks add up to {offset} bytes, the backup recorded {}",
                file.size
            ),
        ));
    }
    Ok(located)
}

/// What keeps `manifest` from restoring, read from the manifest and the indexes alone.
pub fn problems(manifest: &Manifest, index: &ChunkIndex) -> Vec<Problem> {
    manifest
        .files
        .iter()
        .filter_map(|file| locate(index, file).err())
        .map(|problem| Problem {
            backup: Some(manifest.id.clone()),
            ..problem
        })
        .collect()
}

/// Receives each decoded chunk of a file with its offset in the file, on a blocking thread,
/// in any order.
pub type ChunkSink = Arc<dyn Fn(u64, &[u8]) -> Result<(), RepoError> + Send + Sync>;

/// Read `file` back from `located` (see [`locate`]): every chunk fetched, decoded, checked
/// against its id and handed to `sink`; then the whole file, hashed in order, checked against
/// its recorded BLAKE3. Ranged reads of adjacent chunks are coalesced (about one request per
/// pack, since a file's chunks were packed in order) and decoded on several cores at once.
pub async fn read_file(
    repo: &Repository,
    file: &FileEntry,
    located: Vec<(Location, u64)>,
    what: &str,
    sink: ChunkSink,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    read_checked(repo, file, located, what, sink, None, progress).await
}

/// [`read_file`], handing every decoded chunk to `in_order` too, in file order (for a copy
/// into another repository, which must cut the file into the same chunks). The whole-file
/// check comes after the last chunk is sent: whoever stores them must not commit before
/// this returns `Ok`.
pub async fn read_file_in_order(
    repo: &Repository,
    file: &FileEntry,
    located: Vec<(Location, u64)>,
    what: &str,
    in_order: &tokio::sync::mpsc::Sender<Vec<u8>>,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    let no_writes: ChunkSink = Arc::new(|_, _| Ok(()));
    read_checked(
        repo,
        file,
        located,
        what,
        no_writes,
        Some(in_order),
        progress,
    )
    .await
}

async fn read_checked(
    repo: &Repository,
    file: &FileEntry,
    located: Vec<(Location, u64)>,
    what: &str,
    sink: ChunkSink,
    in_order: Option<&tokio::sync::mpsc::Sender<Vec<u8>>>,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    let corrupt = |detail: String| RepoError::Corrupt {
        what: what.to_string(),
        detail,
    };
    let mut runs = futures::stream::iter(coalesce(located).into_iter().map(|run| {
        let (store, what, sink) = (repo.store.clone(), what.to_string(), sink.clone());
        let keys = repo.store.shared_keys();
        async move {
            let start = run[0].0.entry.offset;
            let end = run
                .last()
                .map(|(l, _)| l.entry.offset + l.entry.length)
                .unwrap_or(start);
            let key = pack_key(&run[0].0.pack);
            let corrupt = |detail: String| RepoError::Corrupt {
                what: what.clone(),
                detail,
            };
            let stored = match store.get_range(&key, start..end).await {
                Ok(stored) => stored,
                Err(RepoError::ObjectMissing { key }) => {
                    return Err(corrupt(format!("pack {key} is missing")))
                }
                // A range past the end of a pack is the pack's fault, not the store's.
                Err(other) => match store.size(&key).await {
                    Ok(Some(size)) if size < end => {
                        return Err(corrupt(format!(
                            "pack {key} is {size} bytes, shorter than its index says"
                        )))
                    }
                    _ => return Err(other),
                },
            };
            tokio::task::spawn_blocking(move || {
                let mut plain = Vec::with_capacity(run.len());
                for (l, file_offset) in &run {
                    let at = (l.entry.offset - start) as usize;
                    let bytes = stored
                        .get(at..at + l.entry.length as usize)
                        .ok_or_else(|| RepoError::Corrupt {
                            what: what.clone(),
                            detail: format!("pack {} is shorter than its index says", l.pack),
                        })?;
                    let chunk =
                        decode_chunk(&l.entry, bytes, &what, keys.as_deref(), Recheck::Unsealed)?;
                    sink(*file_offset, &chunk)?;
                    plain.push(chunk);
                }
                Ok::<_, RepoError>(plain)
            })
            .await
            .map_err(|e| RepoError::io("decode task", std::io::Error::other(e)))?
        }
    }))
    .buffered(FETCHES_IN_FLIGHT);
    // Runs arrive in file order (decoded on several threads at once): the whole-file hash is
    // taken on a blocking thread of its own, one run after the other.
    let mut hasher = repo
        .store
        .keys()
        .map_or_else(blake3::Hasher::new, |k| k.file_hasher());
    while let Some(plain) = runs.next().await {
        let run = plain?;
        progress.advance(run.iter().map(|c| c.len() as u64).sum());
        let plain;
        (hasher, plain) = tokio::task::spawn_blocking(move || {
            run.iter().for_each(|chunk| {
                hasher.update(chunk);
            });
            (hasher, run)
        })
        .await
        .map_err(|e| RepoError::io("hash task", std::io::Error::other(e)))?;
        if let Some(in_order) = in_order {
            for chunk in plain {
                in_order
                    .send(chunk)
                    .await
                    .map_err(|_| RepoError::io(what, std::io::Error::other("copy aborted")))?;
            }
        }
    }
    if hasher.finalize().as_bytes() != &file.hash.0 {
        return Err(corrupt(
            "its chunks put together do not match the file's recorded BLAKE3 hash".into(),
        ));
    }
    Ok(())
}

/// Group consecutive chunks (each with its offset in the file) that sit back to back in the
/// same pack, up to [`MAX_RUN_BYTES`] stored and plain.
fn coalesce(located: Vec<(Location, u64)>) -> Vec<Vec<(Location, u64)>> {
    let mut runs: Vec<Vec<(Location, u64)>> = Vec::new();
    let mut plain = 0u64;
    for (location, offset) in located {
        if let Some(run) = runs.last_mut() {
            let (last, _) = run.last().expect("runs are never empty");
            let (first, _) = &run[0];
            let adjacent = last.pack == location.pack
                && last.entry.offset + last.entry.length == location.entry.offset;
            // Only measured for adjacent chunks, which lie after the run's first.
            if adjacent
                && location.entry.offset + location.entry.length - first.entry.offset
                    <= MAX_RUN_BYTES
                && plain + location.entry.raw_length <= MAX_RUN_BYTES
            {
                plain += location.entry.raw_length;
                run.push((location, offset));
                continue;
            }
        }
        plain = location.entry.raw_length;
        runs.push(vec![(location, offset)]);
    }
    runs
}
