//! Content-defined chunking of one file, on a blocking thread, with bounded memory: chunks are
//! handed over a small channel as they are cut, each with its BLAKE3 id.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::format::{ChunkId, ChunkerParams};

pub struct Chunk {
    pub id: ChunkId,
    pub data: Vec<u8>,
}

/// What the chunking thread reports when the file is done.
pub struct FileDigest {
    pub hash: ChunkId,
    pub size: u64,
}

/// Chunks of `path` arrive on the returned channel (at most `depth` buffered); the join handle
/// yields the whole-file digest or the read error.
/// With `keys` (an encrypted repository), chunk ids and the file's digest are keyed.
pub fn chunk_file(
    path: PathBuf,
    params: ChunkerParams,
    depth: usize,
    keys: Option<std::sync::Arc<super::crypto::Keys>>,
) -> (
    mpsc::Receiver<Chunk>,
    tokio::task::JoinHandle<std::io::Result<FileDigest>>,
) {
    let (tx, rx) = mpsc::channel(depth.max(1));
    let handle = tokio::task::spawn_blocking(move || {
        let file = File::open(&path)?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let chunker = fastcdc::v2020::StreamCDC::new(
            reader,
            params.min_size as usize,
            params.avg_size as usize,
            params.max_size as usize,
        );
        let keys = keys.as_deref();
        let mut whole = keys.map_or_else(blake3::Hasher::new, |k| k.file_hasher());
        let mut size = 0u64;
        for chunk in chunker {
            let chunk = chunk.map_err(|e| match e {
                fastcdc::v2020::Error::IoError(io) => io,
                other => std::io::Error::other(other.to_string()),
            })?;
            whole.update(&chunk.data);
            size += chunk.data.len() as u64;
            let id = ChunkId::in_repo(keys, &chunk.data);
            if tx
                .blocking_send(Chunk {
                    id,
                    data: chunk.data,
                })
                .is_err()
            {
                // The receiver gave up (an upload failed); stop reading.
                return Err(std::io::Error::other("backup aborted"));
            }
        }
        Ok(FileDigest {
            hash: ChunkId(*whole.finalize().as_bytes()),
            size,
        })
    });
    (rx, handle)
}
