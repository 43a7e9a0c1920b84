//! Pack objects: many encoded chunks in one object, so a large database is hundreds of PUTs,
//! not hundreds of thousands.
//!
//! ```text
//! [chunk 0 encoded][chunk 1 encoded]...[trailer JSON: PackEntry list][u32 LE trailer length]["VDPK"][1]
//! ```
//! The trailer repeats the pack's index so a lost index file can be rebuilt from the pack.
//! A pack is named by the BLAKE3 of its bytes, so any change to it is detectable.

use bytes::Bytes;

use super::format::{kinds, ChunkId, Encoding, PackEntry, PackIndex, FORMAT_VERSION};
use super::RepoError;

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

pub fn encode_chunk(data: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(data)
    })
}

/// Decode a stored chunk and check it is the chunk it claims to be.
pub fn decode_chunk(entry: &PackEntry, stored: &[u8], what: &str) -> Result<Vec<u8>, RepoError> {
    let corrupt = |detail: String| RepoError::Corrupt {
        what: what.to_string(),
        detail,
    };
    let data = match entry.encoding {
        Encoding::Zstd => DECOMPRESSOR
            .with_borrow_mut(|slot| {
                let decompressor = match slot {
                    Some(decompressor) => decompressor,
                    None => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                decompressor.decompress(stored, entry.raw_length as usize)
            })
            .map_err(|e| corrupt(format!("chunk {} does not decompress: {e}", entry.id)))?,
    };
    if data.len() as u64 != entry.raw_length || ChunkId::of(&data) != entry.id {
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
    pub fn add(&mut self, id: ChunkId, encoded: &[u8], raw_length: u64) {
        self.entries.push(PackEntry {
            id,
            offset: self.bytes.len() as u64,
            length: encoded.len() as u64,
            raw_length,
            encoding: Encoding::Zstd,
        });
        self.bytes.extend_from_slice(encoded);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= PACK_TARGET_SIZE
    }

    pub fn finish(mut self) -> FinishedPack {
        let trailer = serde_json::to_vec(&self.entries).expect("pack entries always encode");
        self.bytes.extend_from_slice(&trailer);
        self.bytes
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(MAGIC);
        self.bytes.push(FORMAT_VERSION as u8);
        let name = blake3::hash(&self.bytes).to_hex().to_string();
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

/// Check a whole pack against its name and read its trailer.
pub fn open_pack(name: &str, bytes: &[u8]) -> Result<Vec<PackEntry>, RepoError> {
    let what = format!("pack {name}");
    let corrupt = |detail: &str| RepoError::Corrupt {
        what: what.clone(),
        detail: detail.to_string(),
    };
    if blake3::hash(bytes).to_hex().as_str() != name {
        return Err(corrupt("its content does not match its name (BLAKE3)"));
    }
    let n = bytes.len();
    if n < 9 || &bytes[n - 5..n - 1] != MAGIC {
        return Err(corrupt("no pack trailer"));
    }
    let len = u32::from_le_bytes(bytes[n - 9..n - 5].try_into().expect("4 bytes")) as usize;
    let start = (n - 9)
        .checked_sub(len)
        .ok_or_else(|| corrupt("trailer length out of range"))?;
    serde_json::from_slice(&bytes[start..n - 9])
        .map_err(|e| corrupt(&format!("unreadable trailer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_round_trips_and_a_flipped_byte_is_caught() {
        let mut builder = PackBuilder::default();
        let chunks: Vec<Vec<u8>> = vec![vec![7u8; 5000], b"hello pack".to_vec()];
        for data in &chunks {
            builder.add(
                ChunkId::of(data),
                &encode_chunk(data).unwrap(),
                data.len() as u64,
            );
        }
        let pack = builder.finish();
        let entries = open_pack(&pack.name, &pack.bytes).unwrap();
        assert_eq!(entries, pack.index.entries);
        for (entry, data) in entries.iter().zip(&chunks) {
            let stored = &pack.bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
            assert_eq!(&decode_chunk(entry, stored, "test").unwrap(), data);
        }
        let mut damaged = pack.bytes.to_vec();
        damaged[3] ^= 0x01;
        assert!(open_pack(&pack.name, &damaged).is_err());
        let entry = &entries[0];
        let stored = &damaged[entry.offset as usize..(entry.offset + entry.length) as usize];
        assert!(decode_chunk(entry, stored, "test").is_err());
    }
}
