//! The backup repository: content-defined chunks addressed by BLAKE3, compressed with zstd,
//! packed into pack objects, described by one manifest per backup, on any object store.
//!
//! This layer knows files and bytes, not databases: the Chroma capture hands it a directory
//! and a description, and gets a [`format::Manifest`] back.
//!
//! Crash safety rests on the write order: packs, then their index files, then the manifest.
//! A backup killed midway leaves packs nobody references (reclaimed by `prune`), never a
//! manifest that points at missing data.

use std::sync::Arc;

use chrono::Utc;

use crate::exit::{self, Classify};

pub mod archive;
pub mod chunker;
pub mod format;
pub mod index;
pub mod lock;
pub mod pack;
pub mod prune;
pub mod restorable;
pub mod restore;
pub mod store;
pub mod verify;
pub mod writer;

use format::{kinds, ChunkerParams, Encoding, Manifest, RepoConfig, FORMAT_VERSION};
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("bad repository URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url} is not a vecdrill repository (no `config` object)")]
    NotARepository { url: String },
    #[error(
        "{what} was written by a newer vecdrill (format {found}, this one reads up to {supported})"
    )]
    NewerFormat {
        what: String,
        found: u32,
        supported: u32,
    },
    #[error("object store {op} of {key} failed: {source}")]
    Store {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("object {key} is missing from the repository")]
    ObjectMissing { key: String },
    #[error("{what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("no backup {id:?} in the repository")]
    BackupNotFound { id: String },
    #[error("the repository has no backups yet")]
    Empty,
    #[error("the repository is locked by {holder}")]
    Locked { holder: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl RepoError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Classify for RepoError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Corrupt { .. } | Self::ObjectMissing { .. } => exit::FAILED,
            Self::BadUrl { .. }
            | Self::NotARepository { .. }
            | Self::BackupNotFound { .. }
            | Self::Empty => exit::BAD_INPUT,
            Self::NewerFormat { .. } => exit::BAD_INPUT,
            Self::Store { .. } | Self::Locked { .. } | Self::Io { .. } => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NotARepository { .. } => Some("check --repo (or VECDRILL_REPO); `vecdrill backup` creates a repository on first use".into()),
            Self::BackupNotFound { .. } | Self::Empty => Some("`vecdrill list --repo URL` shows the backups".into()),
            Self::Corrupt { .. } | Self::ObjectMissing { .. } => Some(
                "run `vecdrill verify --repo URL --read-data` to find every damaged backup; restore an older backup that verifies".into(),
            ),
            Self::Locked { .. } => Some(
                "another backup or prune is running; wait for it. A lock whose process on this host has ended is taken over at once; one from another host expires 30 minutes after its last refresh".into(),
            ),
            Self::NewerFormat { .. } => Some("upgrade vecdrill to read this repository".into()),
            Self::Store { .. } => Some("check the object store's credentials (AWS_*, GOOGLE_*, AZURE_*) and that it is reachable".into()),
            _ => None,
        }
    }
}

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    pub store: Arc<Store>,
    pub config: RepoConfig,
}

pub const CONFIG_KEY: &str = "config";

pub fn manifest_key(id: &str) -> String {
    format!("snapshots/{id}.json")
}

pub fn pack_key(pack: &str) -> String {
    format!("packs/{}/{pack}", pack.get(..2).unwrap_or("__"))
}

pub fn index_key(pack: &str) -> String {
    format!("index/{pack}.json")
}

impl Repository {
    /// Open an existing repository.
    pub async fn open(url: &str) -> Result<Self, RepoError> {
        let store = Arc::new(Store::open(url)?);
        let config: RepoConfig = match store.get_sealed(CONFIG_KEY).await {
            Ok(config) => config,
            Err(RepoError::ObjectMissing { .. }) => {
                return Err(RepoError::NotARepository {
                    url: url.to_string(),
                })
            }
            Err(other) => return Err(other),
        };
        check_version(
            &config.kind,
            kinds::CONFIG,
            config.version,
            "the repository config",
        )?;
        config.validate().map_err(|detail| RepoError::Corrupt {
            what: "the repository config".into(),
            detail,
        })?;
        Ok(Self { store, config })
    }

    /// Open, creating the repository on first use.
    pub async fn open_or_create(url: &str) -> Result<Self, RepoError> {
        match Self::open(url).await {
            Err(RepoError::NotARepository { .. }) => {}
            other => return other,
        }
        let store = Arc::new(Store::open(url)?);
        let config = RepoConfig {
            kind: kinds::CONFIG.to_string(),
            version: FORMAT_VERSION,
            checksum: String::new(),
            id: random_id(),
            created_at: Utc::now(),
            created_by: format!("vecdrill {}", env!("CARGO_PKG_VERSION")),
            chunker: ChunkerParams::default(),
            encoding: Encoding::Zstd,
            encryption: "none".into(),
        };
        store.put_sealed(CONFIG_KEY, &config).await?;
        tracing::info!(url, "created repository {}", config.id);
        Ok(Self { store, config })
    }

    /// Every backup, oldest first. Unreadable manifests are reported, not skipped silently.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, RepoError> {
        let listed = self.store.list("snapshots").await?;
        let mut manifests = Vec::with_capacity(listed.len());
        for object in listed.iter().filter(|o| o.key.ends_with(".json")) {
            manifests.push(self.load_manifest(&object.key).await?);
        }
        manifests.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(manifests)
    }

    /// A backup by id, unique id prefix, or `latest`.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, RepoError> {
        if id == "latest" {
            return self.manifests().await?.pop().ok_or(RepoError::Empty);
        }
        // Nothing else can name a backup; an id never reaches a key unchecked.
        if !format::is_valid_id(id) {
            return Err(RepoError::BackupNotFound { id: id.to_string() });
        }
        match self.load_manifest(&manifest_key(id)).await {
            Ok(manifest) => return Ok(manifest),
            Err(RepoError::ObjectMissing { .. }) => {}
            Err(other) => return Err(other),
        }
        let mut matches: Vec<Manifest> = self
            .manifests()
            .await?
            .into_iter()
            .filter(|m| m.id.starts_with(id))
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(RepoError::BackupNotFound { id: id.to_string() }),
            n => Err(RepoError::BackupNotFound {
                id: format!("{id} (ambiguous: {n} backups start with it)"),
            }),
        }
    }
}

impl Repository {
    /// The manifest stored at `key` (`snapshots/<id>.json`): sealed, of a known version, and
    /// describing a backup whose id is the name it is stored under, since ids become names on
    /// disk and a forged one must never reach a path.
    async fn load_manifest(&self, key: &str) -> Result<Manifest, RepoError> {
        let manifest: Manifest = self.store.get_sealed(key).await?;
        check_version(&manifest.kind, kinds::MANIFEST, manifest.version, key)?;
        let name = stored_name(key, "snapshots");
        manifest
            .validate(Some(name))
            .map_err(|detail| RepoError::Corrupt {
                what: key.to_string(),
                detail,
            })?;
        Ok(manifest)
    }
}

/// The name a JSON object is stored under in `dir` (`<dir>/<name>.json`), which the id it
/// carries must equal.
pub(crate) fn stored_name<'a>(key: &'a str, dir: &str) -> &'a str {
    key.strip_prefix(dir)
        .and_then(|k| k.strip_prefix('/'))
        .and_then(|k| k.strip_suffix(".json"))
        .unwrap_or(key)
}

pub(crate) fn check_version(
    kind: &str,
    expected: &str,
    version: u32,
    what: &str,
) -> Result<(), RepoError> {
    if kind != expected {
        return Err(RepoError::Corrupt {
            what: what.to_string(),
            detail: format!("its type is {kind:?}, expected {expected:?}"),
        });
    }
    if version > FORMAT_VERSION {
        return Err(RepoError::NewerFormat {
            what: what.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// 16 random bytes, hex: ids for repositories, locks; backups use a time-ordered id.
pub fn random_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Backup ids sort by time and stay unique: `20261122T201500Z-1a2b3c4d`.
pub fn backup_id(at: chrono::DateTime<Utc>) -> String {
    format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &random_id()[..8])
}
