//! `repair index` (restic's): the pack indexes written again from the packs. Each pack ends in
//! a trailer repeating its index (see [`super::pack`]), so an index that was lost, damaged or
//! forged is written again from its pack's trailer (sealed in an encrypted repository), or
//! with `--read-all-packs` from the whole pack checked against its name. The trailer alone is
//! not bound to the pack's name: a chunk located through it is still checked against its id
//! when read (a sealed one by its tag), so a pack copied over another gives back true chunks
//! or an error, never wrong data.
//!
//! Nothing that can still tell something is removed: an index whose pack is gone is kept (it
//! names what is lost, and finds the pack again if it is put back), and a damaged pack or an
//! object under `packs/` where no pack belongs is named and left. Only an index that cannot
//! be read, of a pack that is not there, is removed: it blocks `prune` and tells nothing.
//!
//! Under the exclusive lock: no backup writes a pack and its index meanwhile, so a pack
//! without an index here is one a dead backup left or one whose index was lost, never one
//! being written.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::format::{kinds, limits, PackIndex, FORMAT_VERSION};
use super::index::ChunkIndex;
use super::pack::{check_trailer, open_pack, read_trailer, trailer_range, FOOTER_BYTES};
use super::{index_key, lock, pack_key, pack_named, stored_name, RepoError, Repository};

/// Packs read at once: with `--read-all-packs`, each is held whole (at most the format's pack
/// size) until its trailer is read.
const PACKS_AT_ONCE: usize = 3;

/// One object `repair index` wrote, removed or could not mend, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repaired {
    /// The object, as a key in the repository.
    pub object: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexRepair {
    pub dry_run: bool,
    /// Packs in the repository, and how many of them were read whole.
    pub packs: usize,
    pub packs_read: usize,
    /// Indexes written from their packs (`index/<pack>.json`).
    pub rebuilt: Vec<Repaired>,
    /// Indexes that cannot be read, of packs that are gone: nothing can be read through them.
    pub removed: Vec<Repaired>,
    /// Packs that do not check against their names or trailers: left as they are.
    pub damaged: Vec<Repaired>,
    /// Packs an index names that are gone: their indexes are kept (they name what is lost,
    /// and a pack put back is found through them again).
    pub missing: Vec<Repaired>,
    /// Objects under `packs/` not where vecdrill keeps a pack: left as they are.
    pub strays: Vec<Repaired>,
}

impl IndexRepair {
    /// Whether every pack an index names is there and every pack is indexed from a trailer
    /// that checks.
    pub fn whole(&self) -> bool {
        self.damaged.is_empty() && self.missing.is_empty()
    }
}

/// Rebuild every index that is missing, unreadable or not of its pack's size (with
/// `read_all_packs`, also every one that differs from its pack's trailer), name damaged and
/// missing packs and strays, and remove the unreadable indexes of packs that are not there.
/// With `dry_run`, say what would be written and removed, and change nothing.
pub async fn repair_index(
    repo: &Repository,
    read_all_packs: bool,
    dry_run: bool,
) -> Result<IndexRepair, RepoError> {
    let guard = lock::acquire(repo, true, "repair index").await?;
    let result = repair_locked(repo, read_all_packs, dry_run).await;
    guard.release().await;
    result
}

async fn repair_locked(
    repo: &Repository,
    read_all_packs: bool,
    dry_run: bool,
) -> Result<IndexRepair, RepoError> {
    let index = ChunkIndex::load_quietly(repo).await?;
    let unreadable: BTreeMap<&str, &str> = index
        .unreadable
        .iter()
        .map(|(key, why)| (stored_name(key, "index"), why.as_str()))
        .collect();
    let mut packs = BTreeMap::new();
    let mut strays = Vec::new();
    for object in repo.store.list("packs").await? {
        // Only objects where vecdrill puts packs are packs; anything else is named, and left.
        match pack_named(&object.key) {
            Some(name) => {
                packs.insert(name.to_string(), object.size);
            }
            None => strays.push(Repaired {
                why: stray_advice(&object.key),
                object: object.key,
            }),
        }
    }
    let mut repair = IndexRepair {
        dry_run,
        packs: packs.len(),
        strays,
        ..IndexRepair::default()
    };
    let mut to_read = Vec::new();
    for (name, &size) in &packs {
        let why = match (index.packs.get(name), unreadable.get(name.as_str())) {
            (Some(indexed), _) if indexed.pack_size != size => {
                format!(
                    "the pack is {size} bytes, its index said {}",
                    indexed.pack_size
                )
            }
            (Some(_), _) if !read_all_packs => continue,
            (Some(_), _) => "its index differed from the pack's trailer".to_string(),
            (None, Some(unreadable_why)) => {
                format!("its index could not be read: {unreadable_why}")
            }
            (None, None) => "it had no index".to_string(),
        };
        to_read.push((name.as_str(), size, why));
    }
    repair.packs_read = to_read.len();
    // A few packs at once (each at most the format's pack size in memory), in pack order.
    let mut read = futures::stream::iter(to_read.into_iter().map(|(name, size, why)| async move {
        (
            name,
            why,
            rebuild_from_pack(repo, name, size, read_all_packs).await,
        )
    }))
    .buffered(PACKS_AT_ONCE);
    while let Some((name, why, rebuilt)) = read.next().await {
        let rebuilt = match rebuilt {
            Ok(rebuilt) => rebuilt,
            Err(NoIndex::Damaged(problem)) => {
                repair.damaged.push(Repaired {
                    object: pack_key(name),
                    why: problem,
                });
                continue;
            }
            Err(NoIndex::Failed(err)) => return Err(err),
        };
        let unchanged = index.packs.get(name).is_some_and(|indexed| {
            indexed.pack_size == rebuilt.pack_size && indexed.entries == rebuilt.entries
        });
        if unchanged {
            continue;
        }
        let chunks = rebuilt.entries.len();
        if !dry_run {
            repo.store.put_sealed(&index_key(name), &rebuilt).await?;
        }
        repair.rebuilt.push(Repaired {
            object: index_key(name),
            why: format!("{why}; {chunks} chunk(s) indexed from the pack"),
        });
    }
    for (name, indexed) in &index.packs {
        if !packs.contains_key(name) {
            repair.missing.push(Repaired {
                object: pack_key(name),
                why: format!(
                    "{} names it, with {} chunk(s): they cannot be read unless the pack comes back; the index is kept",
                    index_key(name),
                    indexed.entries.len()
                ),
            });
        }
    }
    // Nothing can be read through these: not even which chunks they held.
    for name in unreadable.keys().filter(|name| !packs.contains_key(**name)) {
        if !dry_run {
            repo.store.delete(&index_key(name)).await?;
        }
        repair.removed.push(Repaired {
            object: index_key(name),
            why: format!(
                "it cannot be read and its pack {} is not there",
                pack_key(name)
            ),
        });
    }
    Ok(repair)
}

/// What to say of an object under `packs/` that is not where vecdrill keeps a pack: where it
/// belongs, when it is named as a pack is.
fn stray_advice(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or_default();
    if super::format::is_digest(name) {
        format!("not where vecdrill keeps a pack: if it is one moved by hand, it belongs at {}; left as it is", pack_key(name))
    } else {
        "not a pack (not named as vecdrill names packs); left as it is".into()
    }
}

/// Why a pack gave no index: its own damage (named, and the repair goes on) or the store
/// failing (the repair stops).
enum NoIndex {
    Damaged(String),
    Failed(RepoError),
}

impl From<RepoError> for NoIndex {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Corrupt { detail, .. } => Self::Damaged(detail),
            RepoError::ObjectMissing { .. } => {
                Self::Damaged("it went missing while it was read".into())
            }
            other => Self::Failed(other),
        }
    }
}

/// Pack `name`'s index (the pack is `size` bytes as listed), from its trailer alone, or with
/// `whole` from the whole pack checked against its name first. The trailer alone is enough to
/// locate chunks: every chunk read is checked against its id (a sealed one by its tag), and
/// `verify --read-data` reads every pack whole.
async fn rebuild_from_pack(
    repo: &Repository,
    name: &str,
    size: u64,
    whole: bool,
) -> Result<PackIndex, NoIndex> {
    let key = pack_key(name);
    let keys = repo.store.keys();
    if size > limits::PACK_BYTES {
        return Err(NoIndex::Damaged(format!(
            "it is {size} bytes, more than the format's maximum of {}",
            limits::PACK_BYTES
        )));
    }
    let (entries, pack_size, footer) = if whole {
        let bytes = repo.store.get(&key, limits::PACK_BYTES).await?;
        let entries = open_pack(name, &bytes, keys)?;
        let footer = bytes.slice(bytes.len() - FOOTER_BYTES as usize..);
        (entries, bytes.len() as u64, footer)
    } else {
        if size <= FOOTER_BYTES {
            return Err(NoIndex::Damaged(format!(
                "it is {size} bytes: too short to hold a trailer"
            )));
        }
        let footer = repo
            .store
            .get_range(&key, size - FOOTER_BYTES..size)
            .await?;
        let range = trailer_range(&footer, size).map_err(NoIndex::Damaged)?;
        if range.is_empty() {
            return Err(NoIndex::Damaged("its trailer is empty".into()));
        }
        let trailer = repo.store.get_range(&key, range).await?;
        let entries = read_trailer(&trailer, keys).map_err(NoIndex::Damaged)?;
        (entries, size, footer)
    };
    check_trailer(&entries, &footer, pack_size, keys)
        .map_err(|why| NoIndex::Damaged(format!("its trailer cannot be an index: {why}")))?;
    let rebuilt = PackIndex {
        kind: kinds::INDEX.to_string(),
        version: FORMAT_VERSION,
        checksum: String::new(),
        pack: name.to_string(),
        pack_size,
        entries,
    };
    // Held to the format before anything trusts its numbers (offsets slice packs, lengths
    // size buffers), as a stored index is.
    rebuilt
        .validate(name)
        .map_err(|why| NoIndex::Damaged(format!("its trailer cannot be an index: {why}")))?;
    Ok(rebuilt)
}
