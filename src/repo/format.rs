//! The repository's stored files. Each JSON file names its `type` and `version`, so a later
//! vecdrill can read old repositories and an older one refuses a newer file instead of
//! misreading it. The layout and the pack format are documented in the README
//! ("Repository format").
//!
//! ```text
//! config                        RepoConfig     (written once, at creation)
//! snapshots/<backup-id>.json    Manifest       (written last: a backup exists once this exists)
//! index/<blake3>.json           PackIndex      (one per pack, written after its pack)
//! packs/<2 hex>/<blake3>        pack           (compressed chunks + trailer)
//! locks/<lock-id>.json          LockFile
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the repository layout and of every file type below.
pub const FORMAT_VERSION: u32 = 1;

/// Format maxima. Every size read from storage is checked against these before anything is
/// allocated for it, so a forged number is reported as corruption instead of exhausting memory.
pub mod limits {
    /// A chunk's plain length: the largest maximum FastCDC 2020 accepts.
    pub const CHUNK_BYTES: u64 = 16 << 20;
    /// A chunk as stored: above zstd's worst-case expansion of the largest chunk, sealed.
    pub const STORED_CHUNK_BYTES: u64 = CHUNK_BYTES + CHUNK_BYTES / 64 + 64;
    /// A pack object: the target size, one more largest chunk and the trailer, with room.
    pub const PACK_BYTES: u64 = 64 << 20;
    /// A JSON file (config, index, manifest, lock).
    pub const JSON_BYTES: u64 = 256 << 20;
    /// A key file (a few hundred bytes): tried before anything is known of the repository.
    pub const KEY_FILE_BYTES: u64 = 64 << 10;
    /// An id (backup, repository, lock).
    pub const ID_CHARS: usize = 64;
    /// A recorded file path, in bytes.
    pub const PATH_BYTES: usize = 4096;
}

/// Whether `id` may name a stored object: 1 to 64 ASCII letters, digits, `-` or `_`. Ids become
/// object keys and parts of names on disk, so nothing else (no `/`, no `.`) is accepted.
pub fn is_valid_id(id: &str) -> bool {
    (1..=limits::ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `hex` is a BLAKE3 digest as the repository writes it: 64 lowercase hex digits.
pub fn is_digest(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why `rel` is not a plain relative path that stays inside the directory it is joined to, if
/// it is not: it must be `/`-separated names, none empty, `.` or `..`, with no NUL byte.
pub fn unsafe_path(rel: &str) -> Option<&'static str> {
    if rel.len() > limits::PATH_BYTES {
        return Some("it is longer than 4096 bytes");
    }
    if rel.contains('\0') {
        return Some("it contains a NUL byte");
    }
    rel.split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
        .then_some("it is not a plain relative path")
}

/// BLAKE3 hash of a chunk's plain bytes, hex-encoded: the chunk's name everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The id of `data` in a repository: keyed in an encrypted one (see [`super::crypto`]).
    pub fn in_repo(keys: Option<&super::crypto::Keys>, data: &[u8]) -> Self {
        match keys {
            Some(keys) => Self(keys.chunk_id(data)),
            None => Self::of(data),
        }
    }

    pub fn to_hex(self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        blake3::Hash::from_hex(text)
            .ok()
            .map(|h| Self(*h.as_bytes()))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ChunkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("bad chunk id {text:?}")))
    }
}

/// How chunk bytes are stored: compressed, and in an encrypted repository then sealed (see
/// [`super::crypto`]). Each pack entry names its own, so existing repositories stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Zstd,
    ZstdXchacha20poly1305,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// See [`Sealed`].
    #[serde(default)]
    pub checksum: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub chunker: ChunkerParams,
    pub encoding: Encoding,
    /// `none`, or `repokey`: every object sealed under a master key that `keys/` wraps.
    pub encryption: String,
    /// An encrypted repository's config, sealed under its key (base64), so that the plaintext
    /// fields above, which are read before the key is known, cannot be changed unnoticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<String>,
}

/// The `encryption` of an unencrypted repository, and of an encrypted one.
pub const ENCRYPTION_NONE: &str = "none";
pub const ENCRYPTION_REPOKEY: &str = "repokey";
/// An encrypted repository's config is version 2, so that a vecdrill that cannot decrypt
/// refuses it instead of writing plaintext into it.
pub const ENCRYPTED_CONFIG_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    pub algorithm: ChunkerAlgorithm,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChunkerAlgorithm {
    Fastcdc2020,
}

impl Default for ChunkerParams {
    /// 256 KiB average. SQLite scatters a small write over many pages (B-tree indexes, the
    /// full-text index), so chunks much larger than this turn a small change into most of
    /// the file. A 10 GB database is then about 40,000 chunks, packed into about 640 objects.
    fn default() -> Self {
        Self {
            algorithm: ChunkerAlgorithm::Fastcdc2020,
            min_size: 64 * 1024,
            avg_size: 256 * 1024,
            max_size: 1024 * 1024,
        }
    }
}

/// Where each chunk of one pack lives inside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackIndex {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// See [`Sealed`].
    #[serde(default)]
    pub checksum: String,
    /// BLAKE3 of the whole pack object: its name under `packs/`.
    pub pack: String,
    pub pack_size: u64,
    pub entries: Vec<PackEntry>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackEntry {
    pub id: ChunkId,
    pub offset: u64,
    /// Stored (encoded) length in the pack.
    pub length: u64,
    /// Plain length after decoding.
    pub raw_length: u64,
    pub encoding: Encoding,
}

/// One backup: what was captured, how, and where every byte is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// See [`Sealed`].
    #[serde(default)]
    pub checksum: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub tool_version: String,
    pub hostname: String,
    pub tags: Vec<String>,
    /// What was backed up: `chroma` (a persistent directory) for now.
    pub source: Source,
    pub capture: Capture,
    /// Database-specific description (Chroma version, collections, watermarks).
    pub database: serde_json::Value,
    /// Checks run on the captured files before this manifest was written.
    pub checks: Vec<CheckResult>,
    pub files: Vec<FileEntry>,
    /// In this repository: files, bytes and chunks of the backup; the new ones are what
    /// writing it here added (by `copy`, for a copy).
    pub totals: Totals,
    /// Set on a backup `vecdrill copy` brought here from another repository: its id, time,
    /// source, capture, checks and files' contents are the original's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<CopiedFrom>,
}

/// Where a copied backup came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopiedFrom {
    /// The id of the repository it was copied from.
    pub repository: String,
    pub copied_at: DateTime<Utc>,
}

/// That backup `backup` has a copy in repository `repository`: kept in the repository it was
/// copied from (`copies/<backup>/<repository>.json`), so that `list` and `info` there can say
/// where its copies are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// See [`Sealed`].
    #[serde(default)]
    pub checksum: String,
    pub backup: String,
    /// The id of the repository holding the copy.
    pub repository: String,
    /// Its URL as given to `copy`, credentials removed.
    pub url: String,
    pub copied_at: DateTime<Utc>,
    /// When a later copy into that repository found the backup gone from there (its own
    /// retention, or a person): the record stays, so catching up does not send it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_there_at: Option<DateTime<Utc>>,
}

impl CopyRecord {
    /// The name it is stored under, below `copies/`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.backup, self.repository)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capture {
    /// `offline` (no server running), `cold` (service stopped) or `hot` (read lock held).
    pub mode: String,
    /// How long writers were held off (hot) or the service was down (cold), in ms.
    pub write_stall_ms: f64,
    pub attempts: u32,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl CheckResult {
    /// A check that passed with `Ok(detail)` or failed with `Err(detail)`.
    pub fn of(name: impl Into<String>, result: Result<String, String>) -> Self {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        Self {
            name: name.into(),
            passed,
            detail,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backed-up directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    pub mtime: DateTime<Utc>,
    /// BLAKE3 of the whole file.
    pub hash: ChunkId,
    pub chunks: Vec<ChunkId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    /// Sum of file sizes.
    pub logical_bytes: u64,
    pub chunks: u64,
    /// Chunks this backup had to store (the rest were already in the repository).
    pub new_chunks: u64,
    /// Plain bytes of the new chunks.
    pub new_bytes: u64,
    /// Bytes of the new chunks as stored (after compression).
    pub stored_bytes: u64,
}

/// A lock held while a backup writes (shared) or a prune deletes (exclusive).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub exclusive: bool,
    pub operation: String,
    pub hostname: String,
    pub pid: u32,
    /// Which set of process ids `pid` belongs to: the kernel's boot id and the pid namespace.
    /// Only a lock of this same set can be judged dead by its pid (a host name is not enough:
    /// two containers may share one). Absent in locks of older versions.
    #[serde(default)]
    pub pid_space: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A JSON file that carries the BLAKE3 of its own bytes (as written with `"checksum": ""`), so
/// that a flipped byte anywhere in it is detected, even one that leaves valid JSON behind. The
/// check works on the stored bytes, not on a re-encoding, so it does not depend on how floats
/// or maps round-trip.
pub trait Sealed: Serialize + serde::de::DeserializeOwned + Clone {
    fn checksum_mut(&mut self) -> &mut String;

    fn seal(&self) -> Vec<u8> {
        let mut value = self.clone();
        value.checksum_mut().clear();
        let text = String::from_utf8(encode(&value)).expect("JSON is UTF-8");
        let digest = blake3::hash(text.as_bytes()).to_hex().to_string();
        text.replacen(EMPTY_CHECKSUM, &format!("\"checksum\": \"{digest}\""), 1)
            .into_bytes()
    }

    /// Parse and check; `Err` says what is wrong.
    fn unseal(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let value: Self =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON of its type: {e}"))?;
        let at = text.find("\"checksum\": \"").ok_or("it has no checksum")?;
        let digest_at = at + "\"checksum\": \"".len();
        let claimed = text
            .get(digest_at..digest_at + 64)
            .ok_or("its checksum is cut short")?;
        let rest = text
            .get(digest_at + 64..)
            .and_then(|r| r.strip_prefix('"'))
            .ok_or("its checksum is malformed")?;
        let unsealed = format!("{}{EMPTY_CHECKSUM}{rest}", &text[..at]);
        if blake3::hash(unsealed.as_bytes()).to_hex().as_str() != claimed {
            return Err("its checksum does not match its content".into());
        }
        Ok(value)
    }
}

const EMPTY_CHECKSUM: &str = "\"checksum\": \"\"";

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("repository files always encode")
}

impl Sealed for RepoConfig {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Sealed for PackIndex {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// The evidence that a backup restores: `vecdrill prove`'s verdict on it, kept beside it in
/// the repository (`proofs/<backup-id>.json`, the newest proof of each backup), so that it
/// travels with the repository whoever reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// See [`Sealed`].
    #[serde(default)]
    pub checksum: String,
    pub backup: String,
    pub proven_at: DateTime<Utc>,
    pub passed: bool,
    /// Downloading and restoring into the sandbox.
    pub restore_ms: Option<f64>,
    /// The server's start until it answered healthy.
    pub start_to_healthy_ms: Option<f64>,
    /// From before the restore to healthy: what a restore from this repository takes today.
    pub rto_ms: Option<f64>,
    /// The counts the restored server answered with, per collection.
    pub counts: BTreeMap<String, u64>,
    /// The mean recall of the backup's probe queries against their exact neighbours (none:
    /// the backup recorded no probes, or the proof did not get that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// What failed, when it did.
    pub failure: Option<String>,
    pub hostname: String,
    pub tool_version: String,
    /// The proof's run (its report directory's name, and its id in the history).
    pub run_id: String,
}

impl Proof {
    /// Whether the proof is one of this format, of the backup it is stored as.
    pub fn validate(&self, stored_as: &str) -> Result<(), String> {
        if self.backup != stored_as || !is_valid_id(&self.backup) {
            return Err(format!("it names backup {:?}", self.backup));
        }
        Ok(())
    }
}

/// A sealed JSON object of the format stored under a directory by its name (`DIR/NAME.json`):
/// what it must call itself and how it checks itself against the name it is stored as.
pub trait Stored: Sealed {
    /// Its `type`.
    const KIND: &'static str;
    /// Its directory.
    const DIR: &'static str;
    fn kind_and_version(&self) -> (&str, u32);
    /// Its own checks, naming itself `stored_as`.
    fn check(&self, stored_as: &str) -> Result<(), String>;
}

impl Stored for Proof {
    const KIND: &'static str = kinds::PROOF;
    const DIR: &'static str = "proofs";
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        self.validate(stored_as)
    }
}

impl Sealed for CopyRecord {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Stored for CopyRecord {
    const KIND: &'static str = kinds::COPY;
    const DIR: &'static str = "copies";
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        if !is_valid_id(&self.backup) || !is_valid_id(&self.repository) || self.name() != stored_as
        {
            return Err(format!(
                "it records backup {:?} in repository {:?}, not what its name says ({stored_as:?})",
                self.backup, self.repository
            ));
        }
        Ok(())
    }
}

impl Stored for Manifest {
    const KIND: &'static str = kinds::MANIFEST;
    const DIR: &'static str = "snapshots";
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        self.validate(Some(stored_as))
    }
}

impl Stored for PackIndex {
    const KIND: &'static str = kinds::INDEX;
    const DIR: &'static str = "index";
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        self.validate(stored_as)
    }
}

impl Sealed for Proof {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Sealed for Manifest {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl RepoConfig {
    pub fn encrypted(&self) -> bool {
        self.encryption == ENCRYPTION_REPOKEY
    }

    /// The fields the authenticated copy covers, as one text.
    pub fn authenticated_text(&self) -> String {
        let mut copy = self.clone();
        copy.checksum.clear();
        copy.authenticated = None;
        serde_json::to_string(&copy).expect("a config always encodes")
    }

    /// Why this config cannot be used, if it cannot. Chunker sizes outside FastCDC 2020's
    /// ranges would make the chunker panic, so a forged config is refused before a backup.
    pub fn validate(&self) -> Result<(), String> {
        let ChunkerParams {
            min_size,
            avg_size,
            max_size,
            ..
        } = self.chunker;
        let in_range = (64..=1 << 20).contains(&min_size)
            && (256..=4 << 20).contains(&avg_size)
            && (1024..=limits::CHUNK_BYTES as u32).contains(&max_size)
            && min_size <= avg_size
            && avg_size <= max_size;
        if !in_range {
            return Err(format!(
                "its chunker sizes (min {min_size}, average {avg_size}, max {max_size}) are out of range"
            ));
        }
        if !is_valid_id(&self.id) {
            return Err(format!("its id {:?} is not a valid id", self.id));
        }
        Ok(())
    }
}

impl PackIndex {
    /// Why this index, read from `index/<name>.json`, cannot be trusted, if it cannot: it must
    /// name that same pack, and every chunk must lie inside the pack within the format's sizes.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if !is_digest(&self.pack) || self.pack != name {
            return Err(format!(
                "it describes pack {:?}, but is stored as the index of {name:?}",
                self.pack
            ));
        }
        if self.pack_size > limits::PACK_BYTES {
            return Err(format!(
                "its pack size {} is over the format's maximum {}",
                self.pack_size,
                limits::PACK_BYTES
            ));
        }
        for entry in &self.entries {
            let end = entry.offset.checked_add(entry.length);
            // Every encoding stores at least a byte (a zstd frame has a header).
            if entry.raw_length > limits::CHUNK_BYTES
                || entry.length == 0
                || entry.length > limits::STORED_CHUNK_BYTES
                || end.is_none_or(|end| end > self.pack_size)
            {
                return Err(format!(
                    "chunk {} (offset {}, length {}, plain length {}) does not fit in the pack ({} bytes) or the format",
                    entry.id, entry.offset, entry.length, entry.raw_length, self.pack_size
                ));
            }
        }
        Ok(())
    }
}

impl Manifest {
    /// The source this backup is of, as `list` shows it and `--source` names it: the host it
    /// was taken on and the path (or the FAISS + Redis set) it was taken of.
    pub fn source_label(&self) -> String {
        format!("{}:{}", self.hostname, self.source.path)
    }

    /// Why this manifest cannot describe a backup, if it cannot: a valid id (the one its object
    /// is named after, when `stored_as` is given), safe and distinct file paths, and totals
    /// that agree with its files. Whether its chunks exist is the index's question.
    pub fn validate(&self, stored_as: Option<&str>) -> Result<(), String> {
        if !is_valid_id(&self.id) {
            return Err(format!("its id {:?} is not a valid backup id", self.id));
        }
        if let Some(name) = stored_as.filter(|name| *name != self.id) {
            return Err(format!(
                "its id {:?} is not the name it is stored under ({name:?})",
                self.id
            ));
        }
        let mut paths = std::collections::BTreeSet::new();
        let (mut bytes, mut chunks) = (0u64, 0u64);
        for file in &self.files {
            if let Some(why) = unsafe_path(&file.path) {
                return Err(format!("file path {:?}: {why}", file.path));
            }
            if !paths.insert(file.path.as_str()) {
                return Err(format!("file {:?} is listed twice", file.path));
            }
            bytes = bytes
                .checked_add(file.size)
                .ok_or("its file sizes overflow")?;
            chunks += file.chunks.len() as u64;
        }
        // A file may not also be a directory of another (`a` and `a/b`).
        for path in &paths {
            let as_dir = format!("{path}/");
            if paths
                .range(as_dir.as_str()..)
                .next()
                .is_some_and(|next| next.starts_with(&as_dir))
            {
                return Err(format!("file {path:?} is also a directory of another file"));
            }
        }
        let totals = (
            self.totals.files,
            self.totals.logical_bytes,
            self.totals.chunks,
        );
        if totals != (self.files.len() as u64, bytes, chunks) {
            return Err(format!(
                "its totals ({} files, {} bytes, {} chunks) disagree with its file list ({} files, {bytes} bytes, {chunks} chunks)",
                totals.0,
                totals.1,
                totals.2,
                self.files.len()
            ));
        }
        Ok(())
    }
}

/// File types, for the `type` field and error messages.
pub mod kinds {
    pub const CONFIG: &str = "vecdrill-repo-config";
    pub const INDEX: &str = "vecdrill-pack-index";
    pub const MANIFEST: &str = "vecdrill-manifest";
    pub const LOCK: &str = "vecdrill-lock";
    pub const PROOF: &str = "vecdrill-proof";
    pub const COPY: &str = "vecdrill-copy";
}

/// Tags are kept as a sorted list; this builds it from user input.
pub fn normalise_tags(tags: &[String]) -> Vec<String> {
    let set: BTreeMap<&str, ()> = tags
        .iter()
        .map(|t| (t.trim(), ()))
        .filter(|(t, _)| !t.is_empty())
        .collect();
    set.into_keys().map(str::to_string).collect()
}
