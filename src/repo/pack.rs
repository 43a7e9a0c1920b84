//! Pack objects: many encoded chunks in one object, so a large database is hundreds of PUTs,
//! not hundreds of thousands.
//!
//! ```text
//! [chunk 0 encoded][chunk 1 encoded]...[trailer][u32 LE trailer length]["VDPK"][version]
//! ```
//! The trailer (the PackEntry list as JSON) repeats the pack's index so a lost index file can
//! be rebuilt from the pack. A pack is named by the BLAKE3 of its bytes, so any change to it
//! is detectable. In an encrypted repository (version byte 2) each chunk is sealed, the
//! trailer is a sealed object, and the name is the keyed BLAKE3 (see [`super::crypto`]).

use bytes::Bytes;

use super::crypto::Keys;
use super::format::{kinds, ChunkId, Encoding, PackEntry, PackIndex, FORMAT_VERSION};
use super::RepoError;

/// The version byte of a pack of sealed chunks.
const ENCRYPTED_PACK_VERSION: u8 = 2;
/// The name a pack's sealed trailer is sealed under.
const TRAILER_NAME: &str = "pack-trailer";

/// Packs are closed once they reach this size.
pub const PACK_TARGET_SIZE: usize = 16 * 1024 * 1024;
const MAGIC: &[u8; 4] = b"VDPK";
/// Level 1: embeddings are mostly incompressible floats, where higher levels cost time and
/// gain almost nothing; the SQLite file still compresses well at 1.
const ZSTD_LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread, reused: a fresh one per chunk costs an allocation
    /// of its tables (and the page faults to touch them) every time.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// The same for decompression: creating a context per chunk was 4% of a restore's CPU.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A chunk as stored, and how: compressed, then (with `keys`) sealed, bound to its id.
pub fn encode_chunk(
    data: &[u8],
    id: &ChunkId,
    keys: Option<&Keys>,
) -> std::io::Result<(Vec<u8>, Encoding)> {
    let compressed = COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(data)
    })?;
    Ok(match keys {
        Some(keys) => (
            keys.seal_chunk(&id.0, &compressed),
            Encoding::ZstdXchacha20poly1305,
        ),
        None => (compressed, Encoding::Zstd),
    })
}

/// Decode a stored chunk and check it is the chunk it claims to be. A repository's chunks are
/// all sealed or all not: a plaintext chunk in an encrypted repository was not written with
/// its key, and is refused.
/// How much of a decoded chunk is checked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Its id re-hashed whatever else vouches for it (`verify`).
    Always,
    /// Its id re-hashed where nothing else vouches for it: a sealed chunk's tag already binds
    /// it to its id, and a restore hashes every file whole as well.
    Unsealed,
}

pub fn decode_chunk(
    entry: &PackEntry,
    stored: &[u8],
    what: &str,
    keys: Option<&Keys>,
    recheck: Recheck,
) -> Result<Vec<u8>, RepoError> {
    let corrupt = |detail: String| RepoError::Corrupt {
        what: what.to_string(),
        detail,
    };
    let opened;
    let compressed = match (entry.encoding, keys) {
        (Encoding::Zstd, None) => stored,
        (Encoding::ZstdXchacha20poly1305, Some(keys)) => {
            opened = keys
                .open_chunk(&entry.id.0, stored)
                .map_err(|e| corrupt(format!("chunk {}: {e}", entry.id)))?;
            &opened[..]
        }
        (Encoding::Zstd, Some(_)) => {
            return Err(corrupt(format!(
                "chunk {} is stored unencrypted in an encrypted repository: it was not written with the repository's key",
                entry.id
            )))
        }
        (Encoding::ZstdXchacha20poly1305, None) => {
            return Err(corrupt(format!(
                "chunk {} is encrypted in a repository that is not",
                entry.id
            )))
        }
    };
    let data = DECOMPRESSOR
        .with_borrow_mut(|slot| {
            let decompressor = match slot {
                Some(decompressor) => decompressor,
                None => slot.insert(zstd::bulk::Decompressor::new()?),
            };
            decompressor.decompress(compressed, entry.raw_length as usize)
        })
        .map_err(|e| corrupt(format!("chunk {} does not decompress: {e}", entry.id)))?;
    let vouched = recheck == Recheck::Unsealed && entry.encoding == Encoding::ZstdXchacha20poly1305;
    if data.len() as u64 != entry.raw_length
        || (!vouched && ChunkId::in_repo(keys, &data) != entry.id)
    {
        return Err(corrupt(format!(
            "chunk {} does not match its hash",
            entry.id
        )));
    }
    Ok(data)
}

pub struct PackBuilder {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    /// Room for a full pack plus one largest chunk, so the buffer never doubles (and a backup
    /// never holds 2x the pack size per pack in memory).
    fn default() -> Self {
        Self {
            bytes: Vec::with_capacity(PACK_TARGET_SIZE + MAX_CHUNK_ALLOWANCE),
            entries: Vec::new(),
        }
    }
}

/// A chunk is at most 1 MiB (the chunker's maximum), plus zstd's worst-case overhead.
const MAX_CHUNK_ALLOWANCE: usize = 1024 * 1024 + 64 * 1024;

pub struct FinishedPack {
    pub name: String,
    pub bytes: Bytes,
    pub index: PackIndex,
}

impl PackBuilder {
    pub fn add(&mut self, id: ChunkId, encoded: &[u8], raw_length: u64, encoding: Encoding) {
        self.entries.push(PackEntry {
            id,
            offset: self.bytes.len() as u64,
            length: encoded.len() as u64,
            raw_length,
            encoding,
        });
        self.bytes.extend_from_slice(encoded);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= PACK_TARGET_SIZE
    }

    /// The pack, sealed and named with `keys` in an encrypted repository.
    pub fn finish(mut self, keys: Option<&Keys>) -> FinishedPack {
        let trailer = serde_json::to_vec(&self.entries).expect("pack entries always encode");
        let trailer = match keys {
            Some(keys) => keys.seal_object(TRAILER_NAME, &trailer),
            None => trailer,
        };
        self.bytes.extend_from_slice(&trailer);
        self.bytes
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(MAGIC);
        self.bytes.push(match keys {
            Some(_) => ENCRYPTED_PACK_VERSION,
            None => FORMAT_VERSION as u8,
        });
        let name = pack_name(keys, &self.bytes);
        let index = PackIndex {
            kind: kinds::INDEX.to_string(),
            version: FORMAT_VERSION,
            checksum: String::new(),
            pack: name.clone(),
            pack_size: self.bytes.len() as u64,
            entries: self.entries,
        };
        FinishedPack {
            name,
            bytes: Bytes::from(self.bytes),
            index,
        }
    }
}

/// A pack's name: the BLAKE3 of its bytes, keyed in an encrypted repository.
fn pack_name(keys: Option<&Keys>, bytes: &[u8]) -> String {
    match keys {
        Some(keys) => keys.pack_name(bytes),
        None => blake3::hash(bytes).to_hex().to_string(),
    }
}

/// A pack's last bytes, after its trailer: the trailer's length (u32 LE), the magic and the
/// version byte.
pub const FOOTER_BYTES: u64 = 9;

/// Where the trailer of a pack of `size` bytes lies, read from its footer (its last
/// [`FOOTER_BYTES`]): `Err` says why there is none.
pub fn trailer_range(footer: &[u8], size: u64) -> Result<std::ops::Range<u64>, String> {
    let Some(end) = size
        .checked_sub(FOOTER_BYTES)
        .filter(|_| footer.len() as u64 == FOOTER_BYTES && &footer[4..8] == MAGIC)
    else {
        return Err("no pack trailer".into());
    };
    let len = u32::from_le_bytes(footer[..4].try_into().expect("4 bytes"));
    let start = end
        .checked_sub(u64::from(len))
        .ok_or("trailer length out of range")?;
    Ok(start..end)
}

/// The index entries a pack's trailer holds (opened with `keys` in an encrypted repository).
/// They are not yet checked against the pack: see [`PackIndex::validate`].
pub fn read_trailer(trailer: &[u8], keys: Option<&Keys>) -> Result<Vec<PackEntry>, String> {
    let opened;
    let trailer = match keys {
        Some(keys) => {
            opened = keys
                .open_object(TRAILER_NAME, trailer)
                .map_err(|e| format!("its trailer: {e}"))?;
            &opened[..]
        }
        None => trailer,
    };
    serde_json::from_slice(trailer).map_err(|e| format!("unreadable trailer: {e}"))
}

/// What a trailer must hold to be taken as its pack's index, beyond the format's sizes that
/// [`PackIndex::validate`] checks: the repository's version byte in the `footer`, at least one
/// chunk, in offset order, each whole before the trailer, none overlapping another or listed
/// twice, each encoded as the repository encodes chunks. A pack vecdrill wrote always does.
pub fn check_trailer(
    entries: &[PackEntry],
    footer: &[u8],
    pack_size: u64,
    keys: Option<&Keys>,
) -> Result<(), String> {
    let (version, encoding) = match keys {
        Some(_) => (ENCRYPTED_PACK_VERSION, Encoding::ZstdXchacha20poly1305),
        None => (FORMAT_VERSION as u8, Encoding::Zstd),
    };
    let found = footer.last().copied().unwrap_or_default();
    if found != version {
        return Err(format!(
            "its version byte is {found}, a pack of this repository's has {version}"
        ));
    }
    let trailer_start = trailer_range(footer, pack_size)?.start;
    if entries.is_empty() {
        return Err("it lists no chunk".into());
    }
    let mut end = 0u64;
    let mut listed = std::collections::HashSet::with_capacity(entries.len());
    for entry in entries {
        let problem = if entry.encoding != encoding {
            "is not encoded as this repository encodes chunks"
        } else if entry.offset < end {
            "overlaps the chunk before it"
        } else if entry.offset.saturating_add(entry.length) > trailer_start {
            "runs into the trailer"
        } else if !listed.insert(entry.id) {
            "is listed twice"
        } else {
            end = entry.offset + entry.length;
            continue;
        };
        return Err(format!("chunk {} {problem}", entry.id));
    }
    Ok(())
}

/// Check a whole pack against its name and read its trailer.
pub fn open_pack(
    name: &str,
    bytes: &[u8],
    keys: Option<&Keys>,
) -> Result<Vec<PackEntry>, RepoError> {
    let corrupt = |detail: String| RepoError::Corrupt {
        what: format!("pack {name}"),
        detail,
    };
    if pack_name(keys, bytes) != name {
        return Err(corrupt(match keys {
            Some(_) => "its content does not match its name (keyed BLAKE3): it was changed, or written without the repository's key",
            None => "its content does not match its name (BLAKE3)",
        }.into()));
    }
    let size = bytes.len() as u64;
    let footer = &bytes[bytes.len().saturating_sub(FOOTER_BYTES as usize)..];
    let range = trailer_range(footer, size).map_err(corrupt)?;
    read_trailer(&bytes[range.start as usize..range.end as usize], keys).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_round_trips_and_a_flipped_byte_is_caught() {
        let encrypted = Keys::generate();
        for keys in [None, Some(&encrypted)] {
            let mut builder = PackBuilder::default();
            let chunks: Vec<Vec<u8>> = vec![vec![7u8; 5000], b"hello pack".to_vec()];
            for data in &chunks {
                let id = ChunkId::in_repo(keys, data);
                let (stored, encoding) = encode_chunk(data, &id, keys).unwrap();
                builder.add(id, &stored, data.len() as u64, encoding);
            }
            let pack = builder.finish(keys);
            let entries = open_pack(&pack.name, &pack.bytes, keys).unwrap();
            assert_eq!(entries, pack.index.entries);
            // The trailer alone, as `repair index` reads it: two ranged reads.
            let size = pack.bytes.len() as u64;
            let footer = &pack.bytes[(size - FOOTER_BYTES) as usize..];
            let range = trailer_range(footer, size).unwrap();
            let trailer = &pack.bytes[range.start as usize..range.end as usize];
            assert_eq!(read_trailer(trailer, keys).unwrap(), entries);
            assert_eq!(check_trailer(&entries, footer, size, keys), Ok(()));
            let other_keys = Keys::generate();
            let other = if keys.is_some() {
                None
            } else {
                Some(&other_keys)
            };
            assert!(check_trailer(&entries, footer, size, other).is_err());
            let twice = [entries.clone(), entries.clone()].concat();
            assert!(check_trailer(&twice, footer, size, keys).is_err());
            let mut reversed = entries.clone();
            reversed.reverse();
            assert!(check_trailer(&reversed, footer, size, keys)
                .unwrap_err()
                .contains("overlaps"));
            let mut into_trailer = entries.clone();
            into_trailer.last_mut().unwrap().length += 1;
            assert!(check_trailer(&into_trailer, footer, size, keys)
                .unwrap_err()
                .contains("runs into the trailer"));
            assert!(check_trailer(&[], footer, size, keys).is_err());
            for (entry, data) in entries.iter().zip(&chunks) {
                let stored =
                    &pack.bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
                assert_eq!(
                    &decode_chunk(entry, stored, "test", keys, Recheck::Always).unwrap(),
                    data
                );
            }
            let mut damaged = pack.bytes.to_vec();
            damaged[3] ^= 0x01;
            assert!(open_pack(&pack.name, &damaged, keys).is_err());
            let entry = &entries[0];
            let stored = &damaged[entry.offset as usize..(entry.offset + entry.length) as usize];
            assert!(decode_chunk(entry, stored, "test", keys, Recheck::Always).is_err());
        }
    }

    #[test]
    fn a_forged_footer_never_points_outside_the_pack() {
        let footer = |len: u32| [&len.to_le_bytes()[..], MAGIC, &[1]].concat();
        assert_eq!(trailer_range(&footer(10), 100), Ok(81..91));
        assert_eq!(trailer_range(&footer(91), 100), Ok(0..91));
        assert!(trailer_range(&footer(92), 100).is_err());
        assert!(trailer_range(&footer(u32::MAX), 100).is_err());
        assert!(trailer_range(&footer(0), 8).is_err());
        assert!(trailer_range(b"short", 100).is_err());
        let mut wrong_magic = footer(10);
        wrong_magic[5] ^= 1;
        assert!(trailer_range(&wrong_magic, 100).is_err());
        assert!(read_trailer(b"[{", None).is_err());
        assert!(read_trailer(b"[]", Some(&Keys::generate())).is_err());
    }

    #[test]
    fn an_encrypted_pack_shows_no_plaintext_and_opens_only_with_its_keys() {
        let keys = Keys::generate();
        let data = b"a document only its owner may read ".repeat(100);
        let id = ChunkId::in_repo(Some(&keys), &data);
        let (stored, encoding) = encode_chunk(&data, &id, Some(&keys)).unwrap();
        let mut builder = PackBuilder::default();
        builder.add(id, &stored, data.len() as u64, encoding);
        let pack = builder.finish(Some(&keys));
        let bytes = &pack.bytes[..];
        let shows = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!shows(b"a document only"));
        assert!(!shows(id.to_hex().as_bytes()));
        assert!(
            !shows(&[0x28, 0xb5, 0x2f, 0xfd]),
            "no zstd frame in the clear"
        );
        assert_ne!(pack.name, blake3::hash(bytes).to_hex().to_string());
        assert!(open_pack(&pack.name, bytes, None).is_err());
        assert!(open_pack(&pack.name, bytes, Some(&Keys::generate())).is_err());
        // A plaintext chunk in an encrypted repository (or the other way) is refused.
        let plain_id = ChunkId::of(&data);
        let (plain, zstd) = encode_chunk(&data, &plain_id, None).unwrap();
        let entry = PackEntry {
            id: plain_id,
            offset: 0,
            length: plain.len() as u64,
            raw_length: data.len() as u64,
            encoding: zstd,
        };
        assert!(
            decode_chunk(&entry, &plain, "test", Some(&keys), Recheck::Always)
                .unwrap_err()
                .to_string()
                .contains("unencrypted in an encrypted repository")
        );
    }
}
