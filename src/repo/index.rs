//! Where every stored chunk is: the union of all `index/*.json` files, loaded at the start of a
//! backup (to skip chunks the repository already has), a restore, a verify or a prune.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use super::format::{ChunkId, PackEntry, PackIndex};
use super::store::Store;
use super::{RepoError, Repository};

#[derive(Debug, Clone)]
pub struct Location {
    pub pack: Arc<str>,
    pub entry: PackEntry,
}

#[derive(Debug, Default)]
pub struct ChunkIndex {
    pub chunks: HashMap<ChunkId, Location>,
    /// Every pack with an index, by name.
    pub packs: HashMap<String, PackIndex>,
    /// Second locations of chunks stored twice, until [`Self::load`] has chosen between them.
    alternates: Vec<Location>,
    /// Index objects that cannot be read (damaged, forged, of a newer format), with why: the
    /// chunks they would locate are missing from this index. A restore or a backup goes on
    /// without them (every chunk read is checked against its id anyway); `prune`, which must
    /// know every pack's contents before deleting any, refuses.
    pub unreadable: Vec<(String, String)>,
}

impl ChunkIndex {
    /// Every readable pack index, each unreadable one named in a warning and kept in
    /// [`Self::unreadable`].
    pub async fn load(repo: &Repository) -> Result<Self, RepoError> {
        let this = Self::load_quietly(repo).await?;
        for (key, why) in &this.unreadable {
            tracing::warn!("pack index {key} cannot be read, its chunks are left out: {why}");
        }
        Ok(this)
    }

    /// [`Self::load`] without the warnings, for `verify`, which reports them as problems.
    pub async fn load_quietly(repo: &Repository) -> Result<Self, RepoError> {
        let listed = repo.store.list("index").await?;
        let store = repo.store.clone();
        let loaded: Vec<(String, Result<PackIndex, RepoError>)> = futures::stream::iter(
            listed
                .into_iter()
                .filter(|object| is_index_key(&object.key))
                .map(|object| {
                    let store = store.clone();
                    async move {
                        let index = load_pack_index(&store, &object.key).await;
                        (object.key, index)
                    }
                }),
        )
        .buffer_unordered(16)
        .collect()
        .await;
        let mut this = Self::default();
        for (key, index) in loaded {
            match index {
                Ok(index) => this.insert(index),
                // Said without the key, which the caller names.
                Err(RepoError::Corrupt { detail, .. }) => this.unreadable.push((key, detail)),
                Err(err @ (RepoError::NewerFormat { .. } | RepoError::ObjectMissing { .. })) => {
                    this.unreadable.push((key, err.to_string()))
                }
                Err(err) => return Err(err),
            }
        }
        this.unreadable.sort();
        this.prefer_intact(&repo.store).await?;
        Ok(this)
    }

    /// [`Self::load`] for what must see every pack's contents (`prune`): an unreadable index
    /// is an error naming it.
    pub async fn load_complete(repo: &Repository) -> Result<Self, RepoError> {
        let this = Self::load_quietly(repo).await?;
        match this.unreadable.first() {
            None => Ok(this),
            Some((key, why)) => Err(RepoError::Corrupt {
                what: key.clone(),
                detail: format!(
                    "{why} ({} unreadable pack index(es)); nothing was removed: which chunks its pack holds is unknown",
                    this.unreadable.len()
                ),
            }),
        }
    }

    /// A chunk can be stored twice: a backup that found its pack missing or damaged stores it
    /// again (and a pack found at the wrong size keeps its index, for its other chunks), or two
    /// backups stored it at once. Read it from a pack that exists at its indexed size: one HEAD
    /// per pack holding such a chunk, nothing for the rest.
    pub async fn prefer_intact(&mut self, store: &Store) -> Result<(), RepoError> {
        let mut intact: HashMap<Arc<str>, bool> = HashMap::new();
        for alternate in std::mem::take(&mut self.alternates) {
            let Some(chosen) = self.chunks.get(&alternate.entry.id).map(|l| l.pack.clone()) else {
                continue;
            };
            if !self.is_intact(store, &chosen, &mut intact).await?
                && self.is_intact(store, &alternate.pack, &mut intact).await?
            {
                self.chunks.insert(alternate.entry.id, alternate);
            }
        }
        Ok(())
    }

    async fn is_intact(
        &self,
        store: &Store,
        pack: &Arc<str>,
        known: &mut HashMap<Arc<str>, bool>,
    ) -> Result<bool, RepoError> {
        if let Some(intact) = known.get(pack) {
            return Ok(*intact);
        }
        let indexed = self.packs.get(&**pack).map(|p| p.pack_size);
        let intact = indexed.is_some() && store.size(&super::pack_key(pack)).await? == indexed;
        known.insert(pack.clone(), intact);
        Ok(intact)
    }

    /// Add one pack's index; its entries must have passed [`PackIndex::validate`].
    pub fn insert(&mut self, index: PackIndex) {
        let pack: Arc<str> = Arc::from(index.pack.as_str());
        for entry in &index.entries {
            let location = Location {
                pack: pack.clone(),
                entry: *entry,
            };
            match self.chunks.entry(entry.id) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(location);
                }
                std::collections::hash_map::Entry::Occupied(_) => self.alternates.push(location),
            }
        }
        self.packs.insert(index.pack.clone(), index);
    }

    /// Forget a pack and every chunk located in it.
    pub fn remove_pack(&mut self, pack: &str) {
        self.packs.remove(pack);
        self.chunks.retain(|_, location| &*location.pack != pack);
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.chunks.contains_key(id)
    }

    pub fn get(&self, id: &ChunkId) -> Option<&Location> {
        self.chunks.get(id)
    }
}

/// Whether `key` is a pack index's name (`index/<pack>.json`): anything else under `index/`
/// (an editor's or a file manager's droppings) is not vecdrill's, and is left alone.
fn is_index_key(key: &str) -> bool {
    key.strip_prefix("index/")
        .and_then(|name| name.strip_suffix(".json"))
        .is_some_and(super::format::is_digest)
}

/// The pack index stored at `key` (`index/<pack>.json`): sealed, of a known version, naming the
/// pack it is stored for, with every chunk inside that pack and within the format's sizes. Its
/// numbers are trusted from here on (offsets slice packs, lengths size buffers).
pub async fn load_pack_index(store: &Store, key: &str) -> Result<PackIndex, RepoError> {
    super::load_stored(store, key).await
}
