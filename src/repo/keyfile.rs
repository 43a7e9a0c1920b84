//! Key files: `keys/<key-id>.json`, each the repository's master key wrapped under a key that
//! Argon2id derives from one password. A repository has one key file per password; adding,
//! changing or removing a password writes or removes a key file and never touches the data.
//!
//! ```json
//! { "type": "vecdrill-key", "version": 1, "checksum": "<BLAKE3 of the file>",
//!   "id": "<32 hex, its name>", "repository": "<the repository's id>",
//!   "created_at": "…", "hostname": "…", "username": "…",
//!   "kdf": { "algorithm": "argon2id", "version": 19, "memory_kib": 65536, "iterations": 3,
//!            "parallelism": 1, "salt": "<base64, 32 bytes>" },
//!   "cipher": "xchacha20poly1305",
//!   "wrapped": "<base64: nonce (24) | master key encrypted (32) | tag (16)>",
//!   "mac": "<keyed BLAKE3 under the master key of every field above but checksum>" }
//! ```
//!
//! The wrapping binds the key's id, the repository and the KDF parameters (a file with any of
//! them changed does not open), every size is bounded before Argon2 allocates anything (a
//! forged file cannot exhaust memory), and the `mac` lets whoever holds the master key prove
//! that no other key file was changed.

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{random_bytes, Keys, MASTER_KEY_BYTES};
use super::format::Sealed;

pub const KEY_TYPE: &str = "vecdrill-key";
pub const KEY_VERSION: u32 = 1;
const CIPHER: &str = "xchacha20poly1305";
const WRAPPED_BYTES: usize = 24 + MASTER_KEY_BYTES + 16;
const SALT_BYTES: usize = 32;

/// Argon2id's cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// What a new key costs to open: OWASP's first recommendation for Argon2id (19 MiB,
    /// 2 passes, 1 lane), about 30 ms here. Every command pays it once, so it is weighed
    /// against a restore's time (RFC 9106's 64 MiB x 3 took 150 ms, a fifth of the bench's
    /// whole restore); a key file keeps its own parameters, so keys made stronger still open.
    pub const DEFAULT: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Cheap parameters, for tests only.
    pub const FOR_TESTS: Self = Self {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

/// The bounds a key file's parameters are checked against before anything is allocated: up
/// to 16 times the default's memory and a few times its passes, so that a planted key file
/// cannot make opening the repository take gigabytes or minutes.
const MEMORY_KIB: std::ops::RangeInclusive<u32> = 8..=(1024 * 1024);
const ITERATIONS: std::ops::RangeInclusive<u32> = 1..=16;
const PARALLELISM: std::ops::RangeInclusive<u32> = 1..=8;
const SALT: std::ops::RangeInclusive<usize> = 16..=64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub algorithm: String,
    pub version: u32,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub checksum: String,
    pub id: String,
    pub repository: String,
    pub created_at: DateTime<Utc>,
    pub hostname: String,
    pub username: String,
    pub kdf: Kdf,
    pub cipher: String,
    pub wrapped: String,
    pub mac: String,
}

impl Sealed for KeyFile {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// Why a key file did not give the master key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The file is sound and the password is not its.
    #[error("the password does not open it")]
    WrongPassword,
    /// The file is not a key file vecdrill can use.
    #[error("{0}")]
    Invalid(String),
}

/// Where key file `id` is stored.
/// Every key file object (`keys/*.json`) in `store`, sorted by name.
pub async fn stored(store: &super::store::Store) -> Result<Vec<String>, super::RepoError> {
    let mut objects: Vec<String> = store
        .list(KEYS_DIR)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".json"))
        .collect();
    objects.sort();
    Ok(objects)
}

/// The key file stored as `object`, or why it cannot be read as one (a store failure is an
/// error).
pub async fn read(
    store: &super::store::Store,
    object: &str,
) -> Result<Result<KeyFile, String>, super::RepoError> {
    match store
        .get_clear(object, super::format::limits::KEY_FILE_BYTES)
        .await
    {
        Ok(file) => Ok(Ok(file)),
        Err(super::RepoError::Corrupt { detail, .. }) => Ok(Err(detail)),
        Err(super::RepoError::ObjectMissing { .. }) => Ok(Err("it was removed meanwhile".into())),
        Err(other) => Err(other),
    }
}

pub fn key_key(id: &str) -> String {
    format!("{KEYS_DIR}/{id}.json")
}

pub const KEYS_DIR: &str = "keys";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl KeyFile {
    /// A new key file of `repository` that opens with `password`.
    pub fn create(keys: &Keys, repository: &str, password: &[u8], params: KdfParams) -> Self {
        let id = hex(&random_bytes::<16>());
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            version: 0x13,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            salt: B64.encode(random_bytes::<SALT_BYTES>()),
        };
        let kek = derive_kek(&kdf, password).expect("vecdrill's own parameters are in bounds");
        let cipher = XChaCha20Poly1305::new_from_slice(kek.as_ref()).expect("a 32-byte key");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = wrap_aad(&id, repository, &kdf);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: keys.master(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals 32 bytes");
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&sealed);
        let mut file = Self {
            kind: KEY_TYPE.into(),
            version: KEY_VERSION,
            checksum: String::new(),
            id,
            repository: repository.into(),
            created_at: Utc::now(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            username: username(),
            kdf,
            cipher: CIPHER.into(),
            wrapped: B64.encode(wrapped),
            mac: String::new(),
        };
        file.mac = keys.key_mac(file.authenticated_text().as_bytes());
        file
    }

    /// Whether the file is a key file of this format, named `stored_as`, with parameters in
    /// bounds (checked before any key is derived).
    pub fn validate(&self, stored_as: &str) -> Result<(), String> {
        if self.kind != KEY_TYPE {
            return Err(format!("it is a {:?}, not a key file", self.kind));
        }
        if self.version > KEY_VERSION {
            return Err(format!(
                "it is a version {} key file, written by a newer vecdrill: upgrade vecdrill",
                self.version
            ));
        }
        if self.id != stored_as {
            return Err(format!("it names itself {:?}", self.id));
        }
        let kdf = &self.kdf;
        if kdf.algorithm != "argon2id" || kdf.version != 0x13 {
            return Err(format!(
                "its key derivation is {} version {}, not argon2id version 19",
                kdf.algorithm, kdf.version
            ));
        }
        let bounded = |what: &str, value: u32, range: &std::ops::RangeInclusive<u32>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "its {what} {value} is outside {}..={}",
                    range.start(),
                    range.end()
                ))
            }
        };
        bounded("memory_kib", kdf.memory_kib, &MEMORY_KIB)?;
        bounded("iterations", kdf.iterations, &ITERATIONS)?;
        bounded("parallelism", kdf.parallelism, &PARALLELISM)?;
        // Argon2 needs at least 8 KiB a lane.
        if kdf.memory_kib < 8 * kdf.parallelism {
            return Err("its memory_kib is below 8 per lane".into());
        }
        let salt = decode_bounded(&kdf.salt, *SALT.end()).map_err(|e| format!("its salt {e}"))?;
        if !SALT.contains(&salt.len()) {
            return Err(format!("its salt is {} bytes, not 16 to 64", salt.len()));
        }
        if self.cipher != CIPHER {
            return Err(format!("its cipher is {:?}, not {CIPHER}", self.cipher));
        }
        let wrapped = decode_bounded(&self.wrapped, WRAPPED_BYTES)
            .map_err(|e| format!("its wrapped key {e}"))?;
        if wrapped.len() != WRAPPED_BYTES {
            return Err(format!(
                "its wrapped key is {} bytes, not {WRAPPED_BYTES}",
                wrapped.len()
            ));
        }
        Ok(())
    }

    /// The repository's keys, when `password` is this file's and the file is of `repository`.
    pub fn open(&self, password: &[u8], repository: &str) -> Result<Keys, KeyError> {
        self.validate(&self.id.clone()).map_err(KeyError::Invalid)?;
        if self.repository != repository {
            return Err(KeyError::Invalid(format!(
                "it is a key of repository {}, not of {repository}",
                self.repository
            )));
        }
        let kek = derive_kek(&self.kdf, password).map_err(KeyError::Invalid)?;
        let wrapped = B64
            .decode(&self.wrapped)
            .map_err(|_| KeyError::Invalid("its wrapped key is not base64".into()))?;
        let (nonce, sealed) = wrapped.split_at(24);
        let cipher = XChaCha20Poly1305::new_from_slice(kek.as_ref()).expect("a 32-byte key");
        let aad = wrap_aad(&self.id, &self.repository, &self.kdf);
        let master = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| KeyError::WrongPassword)?,
        );
        let master: [u8; MASTER_KEY_BYTES] = master
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Invalid("its wrapped key is not 32 bytes".into()))?;
        Ok(Keys::from_master(Zeroizing::new(master)))
    }

    /// Whether the file is as the holder of the master key wrote it (its `mac`).
    pub fn authentic(&self, keys: &Keys) -> bool {
        keys.key_mac(self.authenticated_text().as_bytes()) == self.mac
    }

    /// Every field the `mac` covers, unambiguously joined.
    fn authenticated_text(&self) -> String {
        format!(
            "{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}",
            self.kind,
            self.version,
            self.id,
            self.repository,
            self.created_at.to_rfc3339(),
            self.hostname,
            self.username,
            kdf_text(&self.kdf),
            self.cipher,
            self.wrapped
        )
    }
}

/// Who is making the key: `$USER`, else the name of the process's user.
fn username() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_default()
}

/// Base64 `text` decoded, when it is at most `limit` bytes once decoded (checked on the
/// text's length before decoding).
fn decode_bounded(text: &str, limit: usize) -> Result<Vec<u8>, String> {
    if text.len() > limit.div_ceil(3) * 4 {
        return Err(format!("is longer than {limit} bytes"));
    }
    B64.decode(text).map_err(|_| "is not base64".to_string())
}

fn kdf_text(kdf: &Kdf) -> String {
    format!(
        "{} v{} m={} t={} p={} salt={}",
        kdf.algorithm, kdf.version, kdf.memory_kib, kdf.iterations, kdf.parallelism, kdf.salt
    )
}

fn wrap_aad(id: &str, repository: &str, kdf: &Kdf) -> Vec<u8> {
    format!("vecdrill key v1\0{id}\0{repository}\0{}", kdf_text(kdf)).into_bytes()
}

/// The key-encryption key: Argon2id of `password` with the file's parameters.
fn derive_kek(kdf: &Kdf, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
    let salt = B64
        .decode(&kdf.salt)
        .map_err(|_| "its salt is not base64".to_string())?;
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| format!("its key derivation parameters are refused: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, &salt, kek.as_mut())
        .map_err(|e| format!("its key cannot be derived: {e}"))?;
    Ok(kek)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(keys: &Keys) -> KeyFile {
        KeyFile::create(keys, "repo-1", b"correct horse", KdfParams::FOR_TESTS)
    }

    #[test]
    fn the_right_password_opens_the_master_key_and_a_wrong_one_does_not() {
        let keys = Keys::generate();
        let file = key(&keys);
        file.validate(&file.id).unwrap();
        let opened = file.open(b"correct horse", "repo-1").unwrap();
        assert_eq!(opened.master(), keys.master());
        assert!(file.authentic(&keys));
        assert_eq!(
            file.open(b"correct horsE", "repo-1").err(),
            Some(KeyError::WrongPassword)
        );
        assert!(matches!(
            file.open(b"correct horse", "repo-2"),
            Err(KeyError::Invalid(_))
        ));
    }

    #[test]
    fn the_file_round_trips_sealed_and_a_flipped_byte_is_caught() {
        let keys = Keys::generate();
        let file = key(&keys);
        let bytes = file.seal();
        let text = String::from_utf8(bytes.clone()).unwrap();
        for field in [
            "\"type\": \"vecdrill-key\"",
            "\"version\": 1",
            "\"algorithm\": \"argon2id\"",
            "\"memory_kib\": 64",
            "\"cipher\": \"xchacha20poly1305\"",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        let read = KeyFile::unseal(&bytes).unwrap();
        assert_eq!(
            read.open(b"correct horse", "repo-1").unwrap().master(),
            keys.master()
        );
        let at = text.find("\"hostname\"").unwrap() + 14;
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        assert!(KeyFile::unseal(&changed).is_err());
    }

    #[test]
    fn changed_parameters_binding_or_wrapped_bytes_do_not_open() {
        let keys = Keys::generate();
        let file = key(&keys);
        let mut iterations = file.clone();
        iterations.kdf.iterations = 2;
        assert!(iterations.open(b"correct horse", "repo-1").is_err());
        let mut renamed = file.clone();
        renamed.id = "0".repeat(32);
        assert!(renamed.open(b"correct horse", "repo-1").is_err());
        // Rebound to another repository (and resealed by someone without the key).
        let mut rebound = file.clone();
        rebound.repository = "repo-2".into();
        assert!(rebound.open(b"correct horse", "repo-2").is_err());
        // Edited by someone without the master key: the mac says so.
        let mut edited = file.clone();
        edited.hostname = "elsewhere".into();
        assert!(!edited.authentic(&keys));
        assert!(file.authentic(&keys));
    }

    #[test]
    fn forged_parameters_are_refused_before_anything_is_allocated() {
        let keys = Keys::generate();
        let file = key(&keys);
        let mut huge = file.clone();
        huge.kdf.memory_kib = u32::MAX;
        let err = huge.validate(&huge.id).unwrap_err();
        assert!(err.contains("memory_kib"), "{err}");
        assert!(matches!(
            huge.open(b"correct horse", "repo-1"),
            Err(KeyError::Invalid(_))
        ));
        let mut passes = file.clone();
        passes.kdf.iterations = 1_000_000;
        assert!(passes
            .validate(&passes.id)
            .unwrap_err()
            .contains("iterations"));
        let mut salt = file.clone();
        salt.kdf.salt = B64.encode([0u8; 4]);
        assert!(salt.validate(&salt.id).unwrap_err().contains("salt"));
        let mut long = file.clone();
        long.wrapped = "A".repeat(1 << 20);
        assert!(long.validate(&long.id).unwrap_err().contains("wrapped"));
        let mut newer = file.clone();
        newer.version = 2;
        assert!(newer
            .validate(&newer.id)
            .unwrap_err()
            .contains("newer vecdrill"));
        assert!(file
            .validate("another-name")
            .unwrap_err()
            .contains("names itself"));
    }
}
