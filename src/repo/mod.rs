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
pub mod copy;
pub mod crypto;
pub mod format;
pub mod index;
pub mod keyfile;
pub mod keyring;
pub mod lock;
pub mod pack;
pub mod password;
pub mod prune;
pub mod repair;
pub mod restorable;
pub mod restore;
pub mod sealed_stream;
pub mod store;
pub mod verify;
pub mod writer;

use format::{kinds, ChunkerParams, Encoding, Manifest, RepoConfig, FORMAT_VERSION};
use password::{PasswordSources, Prompt};
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("bad repository URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url} is not a vecdrill repository (no `config` object)")]
    NotARepository { url: String },
    #[error("{url}: the bucket (or container) it names does not exist")]
    NoSuchPlace { url: String },
    #[error("{url}: the object store refused the {op} of {key}: its credentials are wrong or may not do that")]
    Refused {
        url: String,
        op: &'static str,
        key: String,
    },
    #[error(
        "{what} was written by a newer vecdrill (format {found}, this one reads up to {supported})"
    )]
    NewerFormat {
        what: String,
        found: u32,
        supported: u32,
    },
    #[error("object store {op} of {key} failed: {}", store::described(source))]
    Store {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("object {key} is missing from the repository")]
    ObjectMissing { key: String },
    #[error("{what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    /// Chunks backups use that no pack index locates, while packs without an index exist.
    #[error("the pack indexes are incomplete: {detail}")]
    IncompleteIndex { detail: String },
    #[error("no backup {id:?} in the repository")]
    BackupNotFound { id: String },
    #[error("{prefix:?} is ambiguous: {count} backups start with it: {shown}")]
    AmbiguousBackup {
        prefix: String,
        count: usize,
        shown: String,
    },
    #[error("the repository has no backups yet")]
    Empty,
    #[error("the repository is locked by {holder}")]
    Locked { holder: String },
    #[error("the repository holds backups of {} sources, so `latest` needs one named: {}", sources.len(), sources.join("; "))]
    SeveralSources { sources: Vec<String> },
    #[error("no backup of source {named:?} in the repository (its sources: {})", sources.join("; "))]
    NoSuchSource { named: String, sources: Vec<String> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("the password opens none of the {tried} key(s) of {url}{}", unusable_note(.unusable))]
    WrongPassword {
        url: String,
        tried: usize,
        /// Key files that could not be tried (damaged, planted), each with why.
        unusable: Vec<String>,
    },
    #[error("{url} is already a vecdrill repository")]
    AlreadyARepository { url: String },
    #[error("{url} is not encrypted: it has no keys")]
    NotEncrypted { url: String },
    #[error("no key {prefix:?}: {detail}")]
    NoSuchKey { prefix: String, detail: String },
    #[error("{reason}")]
    KeyRefused { reason: String, instead: String },
    #[error("{what} is not supported yet")]
    NotYet { what: String, instead: String },
}

/// The key files a password was not tried on, when there are any: the password may be right
/// and its key file the damaged one.
fn unusable_note(unusable: &[String]) -> String {
    if unusable.is_empty() {
        return String::new();
    }
    format!(
        "; {} key file(s) could not be tried: {}",
        unusable.len(),
        unusable.join("; ")
    )
}

impl RepoError {
    /// Whether a full disk (ENOSPC) is what failed, anywhere down the chain of causes.
    pub fn is_disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }

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
            Self::Corrupt { .. } | Self::ObjectMissing { .. } | Self::IncompleteIndex { .. } => {
                exit::FAILED
            }
            Self::BadUrl { .. }
            | Self::NotARepository { .. }
            | Self::NoSuchPlace { .. }
            | Self::BackupNotFound { .. }
            | Self::AmbiguousBackup { .. }
            | Self::SeveralSources { .. }
            | Self::NoSuchSource { .. }
            | Self::Empty => exit::BAD_INPUT,
            Self::NewerFormat { .. } => exit::BAD_INPUT,
            Self::Password(e) => e.exit_code(),
            Self::WrongPassword { .. }
            | Self::AlreadyARepository { .. }
            | Self::NotEncrypted { .. }
            | Self::NoSuchKey { .. }
            | Self::KeyRefused { .. }
            | Self::NotYet { .. } => exit::BAD_INPUT,
            Self::Store { .. } | Self::Refused { .. } | Self::Locked { .. } | Self::Io { .. } => {
                exit::RUNTIME
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NoSuchPlace { .. } => Some("create the bucket first (vecdrill creates the objects in it, not the bucket), or check the repository URL for a typo".into()),
            Self::Refused { .. } => Some("check the credentials the store is given (AWS_*, GOOGLE_*, AZURE_*) and that they may list, read, write and delete under the repository's prefix; -v shows the store's answer".into()),
            Self::NotARepository { .. } => Some("check --repo (or VECDRILL_REPO); `vecdrill backup` creates a repository on first use".into()),
            Self::BackupNotFound { .. } | Self::Empty => Some("`vecdrill list --repo URL` shows the backups".into()),
            Self::AmbiguousBackup { .. } => Some("give more of the id (`vecdrill list --repo URL` shows them whole)".into()),
            Self::SeveralSources { .. } | Self::NoSuchSource { .. } => Some("name a source with --source as `vecdrill list` shows it (HOST:PATH, or the path alone), or name a backup by its id".into()),
            Self::IncompleteIndex { .. } => Some(REPAIR_INDEX_HINT.into()),
            Self::Corrupt { what, .. } if what.starts_with("index") => {
                Some(REPAIR_INDEX_HINT.into())
            }
            Self::Corrupt { .. } | Self::ObjectMissing { .. } => Some(
                "run `vecdrill verify --repo URL --read-data` to find every damaged backup; restore an older backup that verifies".into(),
            ),
            Self::Locked { .. } => Some(
                "another backup or prune is running; wait for it. A lock whose process on this host has ended is taken over at once; one from another host expires 30 minutes after its last refresh".into(),
            ),
            Self::NewerFormat { .. } => Some("upgrade vecdrill to read this repository".into()),
            Self::Password(e) => e.hint(),
            Self::WrongPassword { .. } => Some(format!("check the password given for it: {}", password::WHERE_PASSWORDS_GO)),
            Self::AlreadyARepository { .. } => Some("use it as it is, or give another --repo".into()),
            Self::NotYet { instead, .. } | Self::KeyRefused { instead, .. } => Some(instead.clone()),
            Self::NotEncrypted { .. } => Some("keys belong to encrypted repositories (`vecdrill init` makes one; `vecdrill info` says whether a repository is)".into()),
            Self::NoSuchKey { .. } => Some("`vecdrill key list --repo URL` shows the keys".into()),
            _ if self.is_disk_full() => Some(exit::DISK_FULL_HINT.into()),
            Self::Store { .. } => Some("the object store kept failing after its retries (-v shows them): check its credentials (AWS_*, GOOGLE_*, AZURE_*), that it is reachable and healthy, and run the command again; what was committed before is intact".into()),
            _ => None,
        }
    }
}

/// What to do about pack indexes that are missing or cannot be read.
const REPAIR_INDEX_HINT: &str = "`vecdrill repair index --repo URL` writes pack indexes again from their packs; a pack it finds damaged or missing holds chunks that are lost: `vecdrill verify --repo URL` names the backups that used them, and once those are forgotten (`vecdrill forget`) nothing is waiting on them";

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    pub store: Arc<Store>,
    pub config: RepoConfig,
    /// The key file whose password opened an encrypted repository.
    pub key_id: Option<String>,
}

pub const CONFIG_KEY: &str = "config";

pub fn manifest_key(id: &str) -> String {
    format!("snapshots/{id}.json")
}

pub fn proof_key(backup: &str) -> String {
    format!("proofs/{backup}.json")
}

/// Where the log shipped after backup `id` is kept (a Chroma follower's segments): it belongs
/// to the backup and goes with it.
pub fn log_chain_dir(id: &str) -> String {
    format!("{LOGS_DIR}/{id}")
}

pub const LOGS_DIR: &str = "logs";
pub const FOLLOW_DIR: &str = "follow";

/// The follower's state of the chain continuing backup `id`.
pub fn follow_state_key(id: &str) -> String {
    format!("{FOLLOW_DIR}/{id}.json")
}

pub fn pack_key(pack: &str) -> String {
    format!("packs/{}/{pack}", pack.get(..2).unwrap_or("__"))
}

/// The pack stored at `key`, when `key` is where vecdrill stores a pack ([`pack_key`]).
pub fn pack_named(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    (format::is_digest(name) && key == pack_key(name)).then_some(name)
}

/// What a terminal is asked for repository `url`'s password: the same words each time, so an
/// answer remembered for the process (see the command line's prompts) is found again.
pub fn password_question(url: &str) -> String {
    format!("enter the password of repository {url}: ")
}

pub fn index_key(pack: &str) -> String {
    format!("index/{pack}.json")
}

/// At most this many key files are tried for a password (restic's bound too): a repository
/// with thousands of forged key files cannot make opening it run Argon2 thousands of times.
pub(crate) const MAX_KEYS_TRIED: usize = 20;

/// Whether a new repository is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Every object sealed under a master key that password-wrapped key files hold.
    RepoKey,
    None,
}

impl Repository {
    /// Open an existing repository, taking an encrypted one's password from the environment.
    pub async fn open(url: &str) -> Result<Self, RepoError> {
        Self::open_with(url, &PasswordSources::from_env(None, None), None).await
    }

    /// Open an existing repository; an encrypted one is unlocked with the password `sources`
    /// give (asked for only then). A wrong password is found after reading only `config`
    /// and `keys/`, before anything else is read or written.
    pub async fn open_with(
        url: &str,
        sources: &PasswordSources,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Self, RepoError> {
        let store = Arc::new(Store::open(url, false)?);
        let config: RepoConfig = match store
            .get_clear(CONFIG_KEY, format::limits::JSON_BYTES)
            .await
        {
            Ok(config) => config,
            Err(RepoError::ObjectMissing { .. }) => {
                return Err(RepoError::NotARepository {
                    url: url.to_string(),
                })
            }
            Err(other) => return Err(other),
        };
        // An encrypted repository's config is version 2 (so that an older vecdrill, which
        // cannot decrypt, refuses it); its other files are of the same format 1.
        let readable = if config.encrypted() {
            format::ENCRYPTED_CONFIG_VERSION
        } else {
            FORMAT_VERSION
        };
        check_version_up_to(
            &config.kind,
            kinds::CONFIG,
            config.version,
            readable,
            "the repository config",
        )?;
        config.validate().map_err(|detail| RepoError::Corrupt {
            what: "the repository config".into(),
            detail,
        })?;
        let mut repo = Self {
            store,
            config,
            key_id: None,
        };
        if repo.config.encrypted() {
            let password = sources
                .resolve(&password_question(url), prompt)
                .map_err(|err| err.of_repository(url))?;
            let (keys, key_id) = repo.unlock(url, password.as_bytes()).await?;
            repo.check_authenticated(&keys)?;
            repo.store.unlock(Arc::new(keys));
            tracing::debug!("unlocked {url} with key {}", keyfile::key_key(&key_id));
            repo.key_id = Some(key_id);
        } else if repo.has_own_keys().await? {
            // Replaced by someone without the key: an unencrypted config beside its key files.
            return Err(RepoError::Corrupt {
                what: "the repository config".into(),
                detail: "it says the repository is not encrypted, yet keys/ holds key files of this repository: it was replaced".into(),
            });
        }
        Ok(repo)
    }

    /// Whether `keys/` holds a key file of this repository (one left by an `init` killed
    /// before its config was written names another repository).
    async fn has_own_keys(&self) -> Result<bool, RepoError> {
        for object in keyfile::stored(&self.store)
            .await?
            .iter()
            .take(MAX_KEYS_TRIED)
        {
            if let Ok(file) = keyfile::read(&self.store, object).await? {
                if file.repository == self.config.id {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The keys one of the key files gives for `password`, and that file's id.
    async fn unlock(
        &self,
        url: &str,
        password: &[u8],
    ) -> Result<(crypto::Keys, String), RepoError> {
        let mut tried = 0;
        let mut invalid = Vec::new();
        for object in keyfile::stored(&self.store)
            .await?
            .iter()
            .take(MAX_KEYS_TRIED)
        {
            let name = stored_name(object, keyfile::KEYS_DIR);
            let file = match keyfile::read(&self.store, object).await? {
                Ok(file) => file,
                Err(detail) => {
                    invalid.push(format!("{object}: {detail}"));
                    continue;
                }
            };
            if let Err(detail) = file.validate(name) {
                invalid.push(format!("{object}: {detail}"));
                continue;
            }
            tried += 1;
            match file.open(password, &self.config.id) {
                Ok(keys) => return Ok((keys, file.id)),
                Err(keyfile::KeyError::WrongPassword) => {}
                Err(keyfile::KeyError::Invalid(detail)) => {
                    invalid.push(format!("{object}: {detail}"))
                }
            }
        }
        if tried == 0 {
            return Err(RepoError::Corrupt {
                what: "keys/".into(),
                detail: if invalid.is_empty() {
                    "the repository is encrypted and holds no key file".into()
                } else {
                    format!("no key file can be used: {}", invalid.join("; "))
                },
            });
        }
        Err(RepoError::WrongPassword {
            url: url.to_string(),
            tried,
            unusable: invalid,
        })
    }

    /// An encrypted repository's config must match the copy sealed under its key: its
    /// plaintext fields (read before the key was known) cannot have been changed unnoticed.
    fn check_authenticated(&self, keys: &crypto::Keys) -> Result<(), RepoError> {
        let corrupt = |detail: String| RepoError::Corrupt {
            what: CONFIG_KEY.into(),
            detail,
        };
        let sealed = self
            .config
            .authenticated
            .as_deref()
            .ok_or_else(|| corrupt("it has no authenticated copy".into()))?;
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| corrupt("its authenticated copy is not base64".into()))?;
        let copy = keys
            .open_object(CONFIG_KEY, &sealed)
            .map_err(|e| corrupt(format!("its authenticated copy: {e}")))?;
        if copy != self.config.authenticated_text().as_bytes() {
            return Err(corrupt(
                "its fields differ from its authenticated copy: it was changed without the key"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Create a repository at `url` (refused where one is); an encrypted one with one key,
    /// for the password `sources` give.
    pub async fn init(
        url: &str,
        encryption: Encryption,
        sources: &PasswordSources,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Self, RepoError> {
        // Where it goes, before the password is asked (twice, at a terminal): a repository
        // already there, or a bucket that is not, is said at once. Nothing is created yet.
        match Store::open(url, false) {
            Ok(store) => match store.get(CONFIG_KEY, format::limits::JSON_BYTES).await {
                Ok(_) => {
                    return Err(RepoError::AlreadyARepository {
                        url: url.to_string(),
                    })
                }
                Err(RepoError::ObjectMissing { .. }) => {}
                Err(err) => return Err(err),
            },
            // A local directory that does not exist yet.
            Err(RepoError::NotARepository { .. }) => {}
            Err(err) => return Err(err),
        }
        // The password first: a missing one leaves nothing behind.
        let password = match encryption {
            Encryption::RepoKey => Some(sources.resolve_new(
                &format!("enter a password for the new repository {url}: "),
                prompt,
            )?),
            Encryption::None => None,
        };
        let store = Arc::new(Store::open(url, true)?);
        if store.size(CONFIG_KEY).await?.is_some() {
            return Err(RepoError::AlreadyARepository {
                url: url.to_string(),
            });
        }
        let mut config = RepoConfig {
            kind: kinds::CONFIG.to_string(),
            version: FORMAT_VERSION,
            checksum: String::new(),
            id: random_id(),
            created_at: Utc::now(),
            created_by: format!("vecdrill {}", env!("CARGO_PKG_VERSION")),
            chunker: ChunkerParams::default(),
            encoding: Encoding::Zstd,
            encryption: format::ENCRYPTION_NONE.into(),
            authenticated: None,
        };
        let mut keys = None;
        let mut key_id = None;
        if let Some(password) = password {
            let made = crypto::Keys::generate();
            config.version = format::ENCRYPTED_CONFIG_VERSION;
            config.encryption = format::ENCRYPTION_REPOKEY.into();
            use base64::Engine;
            config.authenticated = Some(
                base64::engine::general_purpose::STANDARD
                    .encode(made.seal_object(CONFIG_KEY, config.authenticated_text().as_bytes())),
            );
            let key = keyfile::KeyFile::create(
                &made,
                &config.id,
                password.as_bytes(),
                keyfile::KdfParams::DEFAULT,
            );
            // The key first: a config that says "encrypted" always has a key beside it.
            store.put_clear(&keyfile::key_key(&key.id), &key).await?;
            keys = Some(made);
            key_id = Some(key.id);
        }
        store.put_clear(CONFIG_KEY, &config).await?;
        // Two processes creating the same repository at once: the config read back decides,
        // and the one whose config lost opens the winner's (its own key file, naming a
        // repository that does not exist, is never tried).
        let stored: RepoConfig = store
            .get_clear(CONFIG_KEY, format::limits::JSON_BYTES)
            .await?;
        if stored.id != config.id {
            return Self::open_with(url, sources, prompt).await;
        }
        // Unencrypted on purpose (`init --encryption none`) needs no warning; created so on
        // first use, it does (see `open_or_create_as`).
        tracing::info!(
            url,
            "created {} repository {}",
            if config.encrypted() {
                "encrypted"
            } else {
                "unencrypted"
            },
            config.id
        );
        if let Some(keys) = keys {
            store.unlock(Arc::new(keys));
        }
        Ok(Self {
            store,
            config,
            key_id,
        })
    }

    /// Open, creating the repository on first use: encrypted when a password is given (from
    /// the environment), else not.
    pub async fn open_or_create(url: &str) -> Result<Self, RepoError> {
        let sources = PasswordSources::from_env(None, None);
        Self::open_or_create_with(url, &sources, None).await
    }

    pub async fn open_or_create_with(
        url: &str,
        sources: &PasswordSources,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Self, RepoError> {
        Self::open_or_create_as(url, sources, prompt, false).await
    }

    /// [`Self::open_or_create_with`], creating it encrypted also when `encrypted` asks so
    /// without a password source (then `prompt` asks for a new password).
    pub async fn open_or_create_as(
        url: &str,
        sources: &PasswordSources,
        prompt: Option<Prompt<'_>>,
        encrypted: bool,
    ) -> Result<Self, RepoError> {
        match Self::open_with(url, sources, prompt).await {
            Err(RepoError::NotARepository { .. }) => {}
            other => return other,
        }
        let encryption = if encrypted || sources.given() {
            Encryption::RepoKey
        } else {
            Encryption::None
        };
        match Self::init(url, encryption, sources, prompt).await {
            // Created meanwhile by another process: use it.
            Err(RepoError::AlreadyARepository { .. }) => {
                Self::open_with(url, sources, prompt).await
            }
            Ok(repo) if !repo.encrypted() => {
                tracing::warn!(
                    "created repository {} at {url} unencrypted: whoever can read its store reads every document and vector (`vecdrill init` with a password makes an encrypted one)",
                    repo.config.id
                );
                Ok(repo)
            }
            other => other,
        }
    }

    /// Whether the repository is encrypted.
    pub fn encrypted(&self) -> bool {
        self.config.encrypted()
    }

    /// The ids the backups are stored under, from one listing (none read: damaged ones too).
    pub async fn stored_backup_ids(&self) -> Result<Vec<String>, RepoError> {
        Ok(self
            .store
            .list("snapshots")
            .await?
            .iter()
            .filter(|o| o.key.ends_with(".json"))
            .map(|o| stored_name(&o.key, "snapshots").to_string())
            .collect())
    }

    /// Every backup, oldest first, and every manifest that cannot be read. One damaged
    /// manifest must not hide the others: listing, verifying, backing up and restoring another
    /// backup go on, each saying what it could not read.
    pub async fn scan(&self) -> Result<Backups, RepoError> {
        let listed = self.store.list("snapshots").await?;
        let mut backups = Backups::default();
        for object in listed.iter().filter(|o| o.key.ends_with(".json")) {
            match self.load_manifest(&object.key).await {
                Ok(manifest) => backups.manifests.push(manifest),
                Err(err @ (RepoError::Corrupt { .. } | RepoError::NewerFormat { .. })) => {
                    backups.damaged.push(DamagedManifest {
                        key: object.key.clone(),
                        problem: err.to_string(),
                    })
                }
                // Deleted (by a prune) between the listing and the read.
                Err(RepoError::ObjectMissing { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        backups
            .manifests
            .sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(backups)
    }

    /// Every backup, oldest first, for what needs them all (a prune that must know every chunk
    /// in use): a damaged manifest is an error.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, RepoError> {
        let backups = self.scan().await?;
        match backups.damaged.into_iter().next() {
            Some(damaged) => Err(RepoError::Corrupt {
                what: damaged.key,
                detail: damaged.problem,
            }),
            None => Ok(backups.manifests),
        }
    }

    /// Every readable backup, oldest first, each damaged manifest logged as a warning: for a
    /// backup choosing its parent, which must not be stopped by an old damaged one.
    pub async fn readable_manifests(&self) -> Result<Vec<Manifest>, RepoError> {
        let backups = self.scan().await?;
        for damaged in &backups.damaged {
            tracing::warn!(
                "skipping damaged manifest {}: {}",
                damaged.key,
                damaged.problem
            );
        }
        Ok(backups.manifests)
    }

    /// A backup by id or unique id prefix, or `latest` of the only source (see [`Self::backup`]).
    pub async fn manifest(&self, id: &str) -> Result<Manifest, RepoError> {
        self.backup(id, &SourceChoice::default()).await
    }

    /// A backup by id, unique id prefix, or `latest`: the newest backup of the source `choice`
    /// picks, never of another one. A repository may hold several sources (two Chroma
    /// directories, a FAISS + Redis store): `latest` there needs a source named, or matched by
    /// the directory being restored, or it is refused, listing them.
    pub async fn backup(&self, id: &str, choice: &SourceChoice) -> Result<Manifest, RepoError> {
        if id == "latest" {
            let backups = self.scan().await?;
            let latest = choice.latest(&backups.manifests)?;
            // Ids begin with their time (to the second): a damaged manifest from the newest
            // readable one's second or later may be the real latest, and restoring an older
            // one in its place would mislead. One whose name tells no time may be too.
            let may_be_newer = |name: &str| match (id_time(name), latest.map(|l| id_time(&l.id))) {
                (Some(damaged), Some(Some(newest))) => damaged >= newest,
                _ => true,
            };
            if let Some(newer) = backups.damaged.iter().find(|d| may_be_newer(d.backup_id())) {
                let than = match latest {
                    Some(latest) => format!("backup {}", latest.id),
                    None => "every readable backup (there is none)".into(),
                };
                return Err(RepoError::Corrupt {
                    what: newer.key.clone(),
                    detail: format!(
                        "{}; it may be newer than {than}, so `latest` is not decided: name a backup (`vecdrill list`)",
                        newer.problem
                    ),
                });
            }
            return latest.cloned().ok_or(RepoError::Empty);
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
        // A prefix is matched against the names the manifests are stored under, so a damaged
        // manifest elsewhere does not stand in the way.
        let stored = self.stored_backup_ids().await?;
        if stored.is_empty() {
            return Err(RepoError::Empty);
        }
        let mut matches: Vec<String> = stored
            .into_iter()
            .filter(|name| name.starts_with(id))
            .collect();
        if matches.len() == 1 {
            return self.load_manifest(&manifest_key(&matches.remove(0))).await;
        }
        match matches.len() {
            0 => Err(RepoError::BackupNotFound { id: id.to_string() }),
            n => {
                matches.sort();
                let shown = matches
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if n > 10 { ", …" } else { "" };
                Err(RepoError::AmbiguousBackup {
                    prefix: id.to_string(),
                    count: n,
                    shown: format!("{shown}{more}"),
                })
            }
        }
    }
}

/// The time a backup id begins with (`YYYYMMDDTHHMMSSZ`, see [`backup_id`]), when it does.
fn id_time(id: &str) -> Option<&str> {
    let time = id.get(..16)?;
    let shape = time.bytes().enumerate().all(|(i, b)| match i {
        8 => b == b'T',
        15 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    shape.then_some(time)
}

/// Which source's backups `latest` chooses among.
#[derive(Debug, Clone, Default)]
pub struct SourceChoice {
    /// Named by the user (`--source`): `HOST:PATH` as `list` shows it, or the path alone.
    pub named: Option<String>,
    /// The directory being restored (or backed up), canonical: its own backups when it has any.
    pub path: Option<String>,
    /// Only sources of this kind (`chroma`, `faiss_redis`).
    pub kind: Option<String>,
}

impl SourceChoice {
    pub fn named(named: Option<String>) -> Self {
        Self {
            named,
            ..Self::default()
        }
    }

    /// Whether `named` (as `--source` gives it) names the source of `manifest`.
    pub fn names(named: &str, manifest: &Manifest) -> bool {
        manifest.source.path == named || manifest.source_label() == named
    }

    /// `manifests` of the source named (`--source`), or all when none is: a name no backup
    /// has is an error listing the sources there are, not an empty answer.
    pub fn all_of_named(&self, mut manifests: Vec<Manifest>) -> Result<Vec<Manifest>, RepoError> {
        let Some(named) = &self.named else {
            return Ok(manifests);
        };
        let sources = sources_of(&manifests.iter().collect::<Vec<_>>());
        manifests.retain(|m| Self::names(named, m));
        if manifests.is_empty() && !sources.is_empty() {
            return Err(RepoError::NoSuchSource {
                named: named.clone(),
                sources,
            });
        }
        Ok(manifests)
    }

    /// The newest of `manifests` (oldest first) from the one source this choice picks.
    pub fn latest<'m>(&self, manifests: &'m [Manifest]) -> Result<Option<&'m Manifest>, RepoError> {
        let of_kind: Vec<&Manifest> = manifests
            .iter()
            .filter(|m| self.kind.as_ref().is_none_or(|k| &m.source.kind == k))
            .collect();
        let candidates: Vec<&Manifest> = match (&self.named, &self.path) {
            (Some(named), _) => {
                let found: Vec<&Manifest> = of_kind
                    .iter()
                    .copied()
                    .filter(|m| Self::names(named, m))
                    .collect();
                if found.is_empty() {
                    return Err(RepoError::NoSuchSource {
                        named: named.clone(),
                        sources: sources_of(&of_kind),
                    });
                }
                found
            }
            (None, Some(path)) => {
                let own: Vec<&Manifest> = of_kind
                    .iter()
                    .copied()
                    .filter(|m| &m.source.path == path)
                    .collect();
                // A directory with no backups of its own (a new machine, another path) may
                // still take the only source's.
                if own.is_empty() {
                    of_kind
                } else {
                    own
                }
            }
            (None, None) => of_kind,
        };
        let sources = sources_of(&candidates);
        if sources.len() > 1 {
            return Err(RepoError::SeveralSources { sources });
        }
        Ok(candidates.last().copied())
    }
}

/// The distinct sources of `manifests`, as `list` shows them, in order of first backup.
fn sources_of(manifests: &[&Manifest]) -> Vec<String> {
    let mut sources: Vec<String> = Vec::new();
    for label in manifests.iter().map(|m| m.source_label()) {
        if !sources.contains(&label) {
            sources.push(label);
        }
    }
    sources
}

/// What [`Repository::scan`] found.
#[derive(Debug, Default)]
pub struct Backups {
    /// Readable backups, oldest first.
    pub manifests: Vec<Manifest>,
    pub damaged: Vec<DamagedManifest>,
}

/// A manifest that cannot be read, with why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DamagedManifest {
    pub key: String,
    pub problem: String,
}

impl DamagedManifest {
    /// The id of the backup it would describe: the name it is stored under.
    pub fn backup_id(&self) -> &str {
        stored_name(&self.key, "snapshots")
    }
}

impl Repository {
    /// The manifest stored at `key` (`snapshots/<id>.json`): sealed, of a known version, and
    /// describing a backup whose id is the name it is stored under, since ids become names on
    /// disk and a forged one must never reach a path.
    /// Keep `proof` as the newest proof of its backup.
    pub async fn put_proof(&self, proof: &format::Proof) -> Result<(), RepoError> {
        self.store
            .put_sealed(&proof_key(&proof.backup), proof)
            .await
    }

    /// The newest proof of every backup that has one, by backup id. A proof that cannot be
    /// read proves nothing: it is left out, with a warning.
    pub async fn proofs(
        &self,
    ) -> Result<std::collections::BTreeMap<String, format::Proof>, RepoError> {
        let mut proofs = std::collections::BTreeMap::new();
        for object in self.store.list("proofs").await? {
            if let Some(proof) = self.read_proof(&object.key).await? {
                proofs.insert(proof.backup.clone(), proof);
            }
        }
        Ok(proofs)
    }

    /// The newest proof of backup `id`, if it has one that can be read.
    pub async fn proof(&self, id: &str) -> Result<Option<format::Proof>, RepoError> {
        self.read_proof(&proof_key(id)).await
    }

    async fn read_proof(&self, key: &str) -> Result<Option<format::Proof>, RepoError> {
        match load_stored::<format::Proof>(&self.store, key).await {
            Ok(proof) => Ok(Some(proof)),
            Err(err @ (RepoError::Corrupt { .. } | RepoError::NewerFormat { .. })) => {
                tracing::warn!("ignoring proof {key}: {err}");
                Ok(None)
            }
            Err(RepoError::ObjectMissing { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn load_manifest(&self, key: &str) -> Result<Manifest, RepoError> {
        load_stored(&self.store, key).await
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

/// The object stored at `key` (`T::DIR/NAME.json`): sealed, of a known version, passing its
/// own checks as the object named NAME.
pub(crate) async fn load_stored<T: format::Stored>(
    store: &Store,
    key: &str,
) -> Result<T, RepoError> {
    let value: T = store.get_sealed(key).await?;
    let (kind, version) = value.kind_and_version();
    check_version(kind, T::KIND, version, key)?;
    value
        .check(stored_name(key, T::DIR))
        .map_err(|detail| RepoError::Corrupt {
            what: key.to_string(),
            detail,
        })?;
    Ok(value)
}

pub(crate) fn check_version(
    kind: &str,
    expected: &str,
    version: u32,
    what: &str,
) -> Result<(), RepoError> {
    check_version_up_to(kind, expected, version, FORMAT_VERSION, what)
}

/// A file of type `expected` this vecdrill reads up to version `supported`.
fn check_version_up_to(
    kind: &str,
    expected: &str,
    version: u32,
    supported: u32,
    what: &str,
) -> Result<(), RepoError> {
    if kind != expected {
        return Err(RepoError::Corrupt {
            what: what.to_string(),
            detail: format!("its type is {kind:?}, expected {expected:?}"),
        });
    }
    if version > supported {
        return Err(RepoError::NewerFormat {
            what: what.to_string(),
            found: version,
            supported,
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
