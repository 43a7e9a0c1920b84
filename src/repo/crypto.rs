//! An encrypted repository's keys and what they do: seal and open its objects and chunks
//! (XChaCha20-Poly1305, RustCrypto's), and name its chunks and packs by keyed BLAKE3, so that
//! nothing stored reveals the plaintext, and nothing changed by someone without the key goes
//! unnoticed. Every key is derived from one random master key, which the key files wrap
//! ([`super::keyfile`]).
//!
//! ```text
//! sealed object   "VDEN" | version 1 | cipher 1 | nonce (24) | ciphertext | tag (16)
//!                 associated data: the six header bytes, then the object's name
//! sealed chunk    nonce (24) | ciphertext | tag (16)
//!                 associated data: the chunk's (keyed) id
//! ```

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The first bytes of every sealed object.
pub const OBJECT_MAGIC: &[u8; 4] = b"VDEN";
const OBJECT_VERSION: u8 = 1;
/// The cipher byte: XChaCha20-Poly1305 (the only one so far).
const CIPHER_XCHACHA20_POLY1305: u8 = 1;
const HEADER_BYTES: usize = 6;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// What sealing adds to an object.
pub const OBJECT_OVERHEAD: usize = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
/// What sealing adds to a chunk.
pub const CHUNK_OVERHEAD: usize = NONCE_BYTES + TAG_BYTES;
/// The length of a master key.
pub const MASTER_KEY_BYTES: usize = 32;

/// Why sealed bytes did not open. Never says more than which check failed: the bytes were
/// made by someone without the key, damaged, or are not sealed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("it is not an encrypted object (no VDEN header): it was not written with the repository's key")]
    NotSealed,
    #[error("it was sealed by a newer vecdrill (envelope version {version}, cipher {cipher})")]
    Newer { version: u8, cipher: u8 },
    #[error("it is too short to hold a sealed payload")]
    TooShort,
    #[error("it does not authenticate with the repository's key: it was changed, damaged or written without the key")]
    Forged,
}

/// The keys of one repository, derived from its master key. `Debug` shows none of them.
pub struct Keys {
    master: Zeroizing<[u8; MASTER_KEY_BYTES]>,
    objects: XChaCha20Poly1305,
    chunks: XChaCha20Poly1305,
    chunk_ids: Zeroizing<[u8; 32]>,
    pack_names: Zeroizing<[u8; 32]>,
    key_macs: Zeroizing<[u8; 32]>,
    archives: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(…)")
    }
}

/// A subkey for one purpose: BLAKE3's key derivation with a context string of its own.
fn derive(context: &str, master: &[u8; MASTER_KEY_BYTES]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(context, master))
}

impl Keys {
    /// A new repository's keys, from a fresh random master key.
    pub fn generate() -> Self {
        let mut master = Zeroizing::new([0u8; MASTER_KEY_BYTES]);
        OsRng.fill_bytes(master.as_mut());
        Self::from_master(master)
    }

    pub fn from_master(master: Zeroizing<[u8; MASTER_KEY_BYTES]>) -> Self {
        let cipher = |context: &str| {
            XChaCha20Poly1305::new_from_slice(derive(context, &master).as_ref())
                .expect("a 32-byte key")
        };
        Self {
            objects: cipher("vecdrill 2026-11 repository objects"),
            chunks: cipher("vecdrill 2026-11 repository chunks"),
            chunk_ids: derive("vecdrill 2026-11 chunk ids", &master),
            pack_names: derive("vecdrill 2026-11 pack names", &master),
            key_macs: derive("vecdrill 2026-11 key file macs", &master),
            archives: derive("vecdrill 2026-11 archives", &master),
            master,
        }
    }

    /// The master key, for a key file to wrap.
    pub fn master(&self) -> &[u8; MASTER_KEY_BYTES] {
        &self.master
    }

    /// `plain` sealed as the object stored under `name` (a sealed object moved to another
    /// name does not open there).
    pub fn seal_object(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let header = object_header();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = object_aad(&header, name);
        let sealed = self
            .objects
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length vecdrill writes");
        let mut out = Vec::with_capacity(OBJECT_OVERHEAD + plain.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of the object stored under `name`, when it authenticates.
    pub fn open_object(&self, name: &str, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let header = stored.get(..HEADER_BYTES).ok_or(CryptoError::NotSealed)?;
        if &header[..4] != OBJECT_MAGIC {
            return Err(CryptoError::NotSealed);
        }
        let (version, cipher) = (header[4], header[5]);
        if version != OBJECT_VERSION || cipher != CIPHER_XCHACHA20_POLY1305 {
            return Err(CryptoError::Newer { version, cipher });
        }
        let rest = &stored[HEADER_BYTES..];
        if rest.len() < NONCE_BYTES + TAG_BYTES {
            return Err(CryptoError::TooShort);
        }
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let aad = object_aad(header.try_into().expect("six bytes"), name);
        self.objects
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Forged)
    }

    /// A chunk's stored bytes sealed, bound to its id (a chunk moved under another id does
    /// not open there).
    pub fn seal_chunk(&self, id: &[u8; 32], stored: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .chunks
            .encrypt(
                &nonce,
                Payload {
                    msg: stored,
                    aad: id,
                },
            )
            .expect("XChaCha20-Poly1305 seals any chunk vecdrill writes");
        let mut out = Vec::with_capacity(CHUNK_OVERHEAD + stored.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open_chunk(&self, id: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < CHUNK_OVERHEAD {
            return Err(CryptoError::TooShort);
        }
        let (nonce, sealed) = sealed.split_at(NONCE_BYTES);
        self.chunks
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: id,
                },
            )
            .map_err(|_| CryptoError::Forged)
    }

    /// A chunk's id: keyed, so that it tells nothing of the chunk to anyone without the key,
    /// yet the same for the same bytes (deduplication works as before).
    pub fn chunk_id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.chunk_ids, data).as_bytes()
    }

    /// A hasher for whole files, keyed like chunk ids.
    pub fn file_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.chunk_ids)
    }

    /// A pack's name: the keyed hash of its bytes, which authenticates every one of them.
    pub fn pack_name(&self, pack: &[u8]) -> String {
        blake3::keyed_hash(&self.pack_names, pack)
            .to_hex()
            .to_string()
    }

    /// The cipher of one archive, named by its random `salt` (each archive its own key).
    pub fn archive_cipher(&self, salt: &[u8; 32]) -> XChaCha20Poly1305 {
        let key = Zeroizing::new(*blake3::keyed_hash(&self.archives, salt).as_bytes());
        XChaCha20Poly1305::new_from_slice(key.as_ref()).expect("a 32-byte key")
    }

    /// A key file's authentication code, which only the master key's holder can make.
    pub fn key_mac(&self, bytes: &[u8]) -> String {
        blake3::keyed_hash(&self.key_macs, bytes)
            .to_hex()
            .to_string()
    }
}

fn object_header() -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(OBJECT_MAGIC);
    header[4] = OBJECT_VERSION;
    header[5] = CIPHER_XCHACHA20_POLY1305;
    header
}

fn object_aad(header: &[u8; HEADER_BYTES], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_BYTES + name.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// `n` random bytes from the operating system, for salts and ids.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_opens_under_its_own_name_only_and_every_changed_byte_is_caught() {
        let keys = Keys::generate();
        let plain = br#"{"type":"manifest","id":"x"}"#;
        let sealed = keys.seal_object("snapshots/x.json", plain);
        assert_eq!(&sealed[..4], OBJECT_MAGIC);
        assert_eq!(sealed.len(), plain.len() + OBJECT_OVERHEAD);
        assert_eq!(
            keys.open_object("snapshots/x.json", &sealed).unwrap(),
            plain
        );
        // Moved to another name (a swap of two manifests): refused.
        assert_eq!(
            keys.open_object("snapshots/y.json", &sealed),
            Err(CryptoError::Forged)
        );
        // Any one byte changed, anywhere.
        for at in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[at] ^= 0x01;
            assert!(
                keys.open_object("snapshots/x.json", &changed).is_err(),
                "byte {at}"
            );
        }
        // Cut short, or plaintext JSON resealed by someone without the key.
        assert!(keys
            .open_object("snapshots/x.json", &sealed[..sealed.len() - 1])
            .is_err());
        assert_eq!(
            keys.open_object("snapshots/x.json", plain),
            Err(CryptoError::NotSealed)
        );
        assert_eq!(
            keys.open_object("snapshots/x.json", &sealed[..10]),
            Err(CryptoError::TooShort)
        );
        // Another repository's keys open nothing.
        assert_eq!(
            Keys::generate().open_object("snapshots/x.json", &sealed),
            Err(CryptoError::Forged)
        );
    }

    #[test]
    fn a_newer_envelope_is_named_as_such() {
        let keys = Keys::generate();
        let mut sealed = keys.seal_object("config", b"{}");
        sealed[4] = 2;
        assert_eq!(
            keys.open_object("config", &sealed),
            Err(CryptoError::Newer {
                version: 2,
                cipher: 1
            })
        );
    }

    #[test]
    fn a_chunk_is_bound_to_its_id() {
        let keys = Keys::generate();
        let data = b"some chunk bytes, compressed or not";
        let id = keys.chunk_id(data);
        let sealed = keys.seal_chunk(&id, data);
        assert_eq!(sealed.len(), data.len() + CHUNK_OVERHEAD);
        assert_eq!(keys.open_chunk(&id, &sealed).unwrap(), data);
        let other = keys.chunk_id(b"another chunk");
        assert_eq!(keys.open_chunk(&other, &sealed), Err(CryptoError::Forged));
        let mut changed = sealed.clone();
        changed[30] ^= 0x80;
        assert_eq!(keys.open_chunk(&id, &changed), Err(CryptoError::Forged));
        assert_eq!(
            keys.open_chunk(&id, &sealed[..20]),
            Err(CryptoError::TooShort)
        );
        // Two seals of the same chunk differ (fresh nonces), and both open.
        let again = keys.seal_chunk(&id, data);
        assert_ne!(again, sealed);
        assert_eq!(keys.open_chunk(&id, &again).unwrap(), data);
    }

    #[test]
    fn keyed_ids_deduplicate_within_a_repository_and_tell_nothing_outside_it() {
        let (a, b) = (Keys::generate(), Keys::generate());
        let data = b"the same bytes";
        assert_eq!(a.chunk_id(data), a.chunk_id(data));
        assert_ne!(a.chunk_id(data), b.chunk_id(data));
        assert_ne!(a.chunk_id(data), *blake3::hash(data).as_bytes());
        let mut hasher = a.file_hasher();
        hasher.update(data);
        assert_eq!(*hasher.finalize().as_bytes(), a.chunk_id(data));
        assert_ne!(a.pack_name(data), blake3::hash(data).to_hex().to_string());
        assert_ne!(a.pack_name(data), b.pack_name(data));
        assert_ne!(a.key_mac(data), b.key_mac(data));
        // The same master key makes the same keys.
        let again = Keys::from_master(Zeroizing::new(*a.master()));
        assert_eq!(again.chunk_id(data), a.chunk_id(data));
        let sealed = a.seal_object("config", data);
        assert_eq!(again.open_object("config", &sealed).unwrap(), data);
    }

    #[test]
    fn debug_shows_no_key() {
        let keys = Keys::generate();
        let shown = format!("{keys:?}");
        assert_eq!(shown, "Keys(…)");
    }
}
