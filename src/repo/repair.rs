//! `repair index` (restic's): the pack indexes written again from the packs. Each pack ends in
//! a trailer repeating its index (see [`super::pack`]), so an index that was lost, damaged or
//! forged is written again from its pack's trailer (sealed in an encrypted repository), or
//! with `--read-all-packs` from the whole pack checked against its name. An index whose pack is
//! gone describes nothing that can be read, and is removed. A pack whose trailer (or, read
//! whole, whose content) does not check is named and left as it is: nothing here deletes data.
//!
//! Under the exclusive lock: no backup writes a pack and its index meanwhile, so a pack
//! without an index here is one a dead backup left or one whose index was lost, never one
//! being written.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::Serialize;

use super::format::{kinds, limits, PackIndex, FORMAT_VERSION};
use super::index::ChunkIndex;
use super::pack::{open_pack, read_trailer, trailer_range, FOOTER_BYTES};
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
    /// Indexes of packs that are gone.
    pub removed: Vec<Repaired>,
    /// Packs that do not check against their names or trailers: left as they are.
    pub damaged: Vec<Repaired>,
}

impl IndexRepair {
    /// Whether every pack is now indexed from a pack that checks.
    pub fn whole(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Rebuild every index that is missing, unreadable or not of its pack's size (with
/// `read_all_packs`, also every one that differs from its pack's trailer), and remove the
/// indexes of packs that are gone. With `dry_run`, say so and change nothing.
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
    for object in repo.store.list("packs").await? {
        // Only objects where vecdrill puts packs: anything else there is not a pack.
        if let Some(name) = pack_named(&object.key) {
            packs.insert(name.to_string(), object.size);
        }
    }
    let mut repair = IndexRepair {
        dry_run,
        packs: packs.len(),
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
    drop(read);
    let gone: BTreeSet<&str> = index
        .packs
        .keys()
        .map(String::as_str)
        .chain(unreadable.keys().copied())
        .filter(|name| !packs.contains_key(*name))
        .collect();
    for name in gone {
        if !dry_run {
            repo.store.delete(&index_key(name)).await?;
        }
        repair.removed.push(Repaired {
            object: index_key(name),
            why: format!("its pack {} is gone", pack_key(name)),
        });
    }
    Ok(repair)
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
    let (entries, pack_size) = if whole {
        let bytes = repo.store.get(&key, limits::PACK_BYTES).await?;
        (open_pack(name, &bytes, keys)?, bytes.len() as u64)
    } else {
        let footer_at = size.saturating_sub(FOOTER_BYTES);
        let footer = repo.store.get_range(&key, footer_at..size).await?;
        let range = trailer_range(&footer, size).map_err(NoIndex::Damaged)?;
        let trailer = repo.store.get_range(&key, range).await?;
        (
            read_trailer(&trailer, keys).map_err(NoIndex::Damaged)?,
            size,
        )
    };
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
