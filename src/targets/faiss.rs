//! FAISS index files, read in Rust: the type, dimension and `ntotal` of an index, and a walk
//! of its whole structure so a truncated or padded file is caught before it is trusted.
//!
//! faiss writes an index as a four-character code naming its class, the common header
//! (`d: i32, ntotal: i64, two i64 placeholders, is_trained: u8, metric_type: i32` and, for
//! metrics above inner product, `metric_arg: f32`), then the class's own fields; vectors are
//! a `u64` length followed by the elements. The walk covers the flat, IVF (flat and PQ), HNSW
//! (flat) and ID-map indexes and their nesting; for any other class the header is read and
//! the structure reported as not walked.
//!
//! A file is read where the walk needs it, never whole: its small fields one by one, its
//! arrays skipped and later streamed in blocks (probe queries, id digests), so memory stays
//! a few megabytes for an index of any size.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaissIndexInfo {
    /// The faiss class, e.g. `IndexHNSWFlat`, or `IndexIDMap` over its inner index.
    #[serde(rename = "type")]
    pub kind: String,
    pub dimension: u32,
    pub ntotal: u64,
    pub metric: String,
    /// The class inside an ID map, an IVF quantizer or HNSW storage, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<String>,
    /// Whether every byte of the file was accounted for by the walk.
    pub structure_checked: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaissError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("cannot read {file}: {message}")]
    Read { file: String, message: String },
}

/// Inspect one index file.
pub fn inspect(path: &Path) -> Result<FaissIndexInfo, FaissError> {
    let (file, source) = open(path)?;
    walk(&source)
        .map(|(info, _)| info)
        .map_err(|message| FaissError::Invalid { file, message })
}

pub fn inspect_bytes(bytes: &[u8]) -> Result<FaissIndexInfo, String> {
    walk(&bytes).map(|(info, _)| info)
}

/// Bytes at offsets: an open file, or a whole index in memory.
trait Source {
    fn size(&self) -> u64;
    fn read_at(&self, at: u64, into: &mut [u8]) -> std::io::Result<()>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, at: u64, into: &mut [u8]) -> std::io::Result<()> {
        let slice = usize::try_from(at)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(into.len())?))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        into.copy_from_slice(slice);
        Ok(())
    }
}

/// A file and its size when opened.
struct FileSource(std::fs::File, u64);

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.1
    }

    fn read_at(&self, at: u64, into: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, into, at)
    }
}

fn open(path: &Path) -> Result<(String, FileSource), FaissError> {
    let file = path.display().to_string();
    let failed = |e: std::io::Error| FaissError::Read {
        file: file.clone(),
        message: e.to_string(),
    };
    // Not opened unless a regular file: a FIFO would hang the open, a device has no size.
    if !std::fs::metadata(path).map_err(failed)?.is_file() {
        return Err(failed(std::io::Error::other("not a regular file")));
    }
    let opened = std::fs::File::open(path).map_err(failed)?;
    let size = opened.metadata().map_err(failed)?.len();
    Ok((file, FileSource(opened, size)))
}

/// Bytes read per block when streaming an array.
const BLOCK: usize = 1 << 20;

/// `n` elements of `size` bytes from `at`, in blocks of whole elements, to `sink`.
fn stream(
    source: &dyn Source,
    at: u64,
    n: u64,
    size: usize,
    mut sink: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let per_block = (BLOCK / size.max(1)).max(1) as u64;
    let mut buffer = vec![0u8; (per_block.min(n) as usize) * size];
    let mut done = 0u64;
    while done < n {
        let count = per_block.min(n - done);
        let bytes = &mut buffer[..count as usize * size];
        source.read_at(at + done * size as u64, bytes)?;
        sink(bytes);
        done += count;
    }
    Ok(())
}

/// What a backup records of an index's content, to compare a restored one with: for a flat
/// index (or an ID map over one) probe queries with their exact neighbours; for an ID map, a
/// digest of its ids; for an IVF index, a digest of the ids its inverted lists hold, list by
/// list. Other indexes (HNSW numbers its vectors by position): nothing beyond their
/// [`FaissIndexInfo`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexContent {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<FlatProbe>,
    /// BLAKE3 of the ID map's ids as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids_blake3: Option<String>,
    /// BLAKE3 of an IVF index's inverted lists' ids, each list's count before its ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_ids_blake3: Option<String>,
}

impl IndexContent {
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty() && self.ids_blake3.is_none() && self.list_ids_blake3.is_none()
    }
}

/// One probe query of a flat index: its `query`th stored vector, and the labels of its exact
/// nearest neighbours by the index's metric, nearest first (ties by position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatProbe {
    pub query: u64,
    pub neighbours: Vec<i64>,
}

/// Probe queries per flat index, and neighbours per probe.
const PROBES: usize = 10;
const NEIGHBOURS: usize = 10;

/// Inspect one index file and read what a backup records of its content.
pub fn inspect_content(path: &Path) -> Result<(FaissIndexInfo, IndexContent), FaissError> {
    let (file, source) = open(path)?;
    let (info, spans) = walk(&source).map_err(|message| FaissError::Invalid {
        file: file.clone(),
        message,
    })?;
    let content = content(&source, &info, &spans).map_err(|e| FaissError::Read {
        file,
        message: e.to_string(),
    })?;
    Ok((info, content))
}

fn content(
    source: &dyn Source,
    info: &FaissIndexInfo,
    spans: &Spans,
) -> std::io::Result<IndexContent> {
    let digest = |spans: &[(u64, u64)], with_counts: bool| -> std::io::Result<String> {
        let mut digest = blake3::Hasher::new();
        for &(at, n) in spans {
            if with_counts {
                digest.update(&n.to_le_bytes());
            }
            stream(source, at, n, 8, |bytes| {
                digest.update(bytes);
            })?;
        }
        Ok(digest.finalize().to_hex().to_string())
    };
    let flat_on_top = info.kind.starts_with("IndexFlat")
        || (info.kind.starts_with("IndexIDMap")
            && info
                .inner
                .as_deref()
                .is_some_and(|i| i.starts_with("IndexFlat")));
    let probes = match (&spans.flat, flat_on_top) {
        (Some(flat), true) => flat_probes(source, flat, spans.ids)?,
        _ => Vec::new(),
    };
    Ok(IndexContent {
        probes,
        ids_blake3: spans.ids.map(|ids| digest(&[ids], false)).transpose()?,
        list_ids_blake3: (spans.list_ids.as_deref())
            .map(|lists| digest(lists, true))
            .transpose()?,
    })
}

/// The first `PROBES` vectors of a flat index as queries, each with its exact `NEIGHBOURS`
/// nearest (squared L2, or the largest inner product), labelled by the ID map's ids (`ids`:
/// their offset and count) when there is one, else by position. One streaming pass.
fn flat_probes(
    source: &dyn Source,
    flat: &FlatSpan,
    ids: Option<(u64, u64)>,
) -> std::io::Result<Vec<FlatProbe>> {
    let d = flat.d as usize;
    let floats = |bytes: &[u8], into: &mut Vec<f32>| {
        into.clear();
        into.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
    };
    let n = flat.ntotal;
    let inner_product = flat.metric == "inner_product";
    let mut first = vec![0u8; PROBES.min(n as usize) * d * 4];
    source.read_at(flat.at, &mut first)?;
    let queries: Vec<Vec<f32>> = first
        .chunks_exact(d * 4)
        .map(|bytes| {
            let mut query = Vec::with_capacity(d);
            floats(bytes, &mut query);
            query
        })
        .collect();
    // Each query's nearest so far, sorted by (score, position).
    let mut nearest: Vec<Vec<(f32, u64)>> = vec![Vec::with_capacity(NEIGHBOURS + 1); queries.len()];
    let mut i = 0u64;
    let mut v = Vec::with_capacity(d);
    stream(source, flat.at, n, d * 4, |block| {
        for vector in block.chunks_exact(d * 4) {
            floats(vector, &mut v);
            for (query, best) in queries.iter().zip(&mut nearest) {
                let score = if inner_product {
                    -query.iter().zip(&v).map(|(a, b)| a * b).sum::<f32>()
                } else {
                    query.iter().zip(&v).map(|(a, b)| (a - b) * (a - b)).sum()
                };
                let before = |c: &(f32, u64)| c.0.total_cmp(&score).then(c.1.cmp(&i)).is_lt();
                let at = best.partition_point(before);
                if at < NEIGHBOURS {
                    best.insert(at, (score, i));
                    best.truncate(NEIGHBOURS);
                }
            }
            i += 1;
        }
    })?;
    let label = |position: u64| -> std::io::Result<i64> {
        match ids {
            Some((at, count)) if position < count => {
                let mut id = [0u8; 8];
                source.read_at(at + position * 8, &mut id)?;
                Ok(i64::from_le_bytes(id))
            }
            _ => Ok(position as i64),
        }
    };
    nearest
        .into_iter()
        .enumerate()
        .map(|(q, best)| {
            Ok(FlatProbe {
                query: q as u64,
                neighbours: best
                    .iter()
                    .map(|(_, i)| label(*i))
                    .collect::<std::io::Result<_>>()?,
            })
        })
        .collect()
}

/// Where a walk found a flat index's vectors and an ID map's ids.
#[derive(Default)]
struct Spans {
    flat: Option<FlatSpan>,
    /// Offset and count of the ids.
    ids: Option<(u64, u64)>,
    /// Offset and count of each inverted list's ids, in list order.
    list_ids: Option<Vec<(u64, u64)>>,
}

struct FlatSpan {
    at: u64,
    d: u32,
    ntotal: u64,
    metric: String,
}

fn walk(source: &dyn Source) -> Result<(FaissIndexInfo, Spans), String> {
    let mut reader = Reader {
        source,
        at: 0,
        spans: Spans::default(),
    };
    let walked = reader.index()?;
    if walked.structure_checked && reader.at != source.size() {
        return Err(format!(
            "{} bytes after the end of the {} index (the file is not one faiss index)",
            source.size() - reader.at,
            walked.kind
        ));
    }
    Ok((walked, reader.spans))
}

struct Reader<'a> {
    source: &'a dyn Source,
    at: u64,
    spans: Spans,
}

struct Header {
    d: u32,
    ntotal: u64,
    metric: String,
}

impl Reader<'_> {
    /// Pass over `n` bytes, which the file must hold.
    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.source.size());
        let Some(end) = end else {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {} but the file is {} bytes",
                self.at,
                self.source.size()
            ));
        };
        self.at = end;
        Ok(())
    }

    fn field<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let at = self.at;
        self.skip(N as u64, what)?;
        let mut bytes = [0u8; N];
        self.source
            .read_at(at, &mut bytes)
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(bytes)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.field::<1>(what)?[0])
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.field(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.field(what)?))
    }

    fn fourcc(&mut self) -> Result<String, String> {
        let code = self.field::<4>("the index type code")?;
        Ok(String::from_utf8_lossy(&code).into_owned())
    }

    /// A faiss vector: `u64` element count, then the elements.
    fn vector(&mut self, element: u64, what: &str) -> Result<u64, String> {
        let n = self.u64(what)?;
        let bytes = n
            .checked_mul(element)
            .ok_or_else(|| format!("{what}: impossible length {n}"))?;
        self.skip(bytes, what)?;
        Ok(n)
    }

    fn header(&mut self) -> Result<Header, String> {
        let d = self.i32("the dimension")?;
        let ntotal = self.u64("ntotal")?;
        self.u64("a reserved field")?;
        self.u64("a reserved field")?;
        self.u8("is_trained")?;
        let metric = self.i32("the metric")?;
        if metric > 1 {
            self.skip(4, "the metric argument")?;
        }
        // A million dimensions is beyond any embedding: a larger one is a forged header,
        // which would size every vector buffer.
        if d <= 0 || d > (1 << 20) || ntotal > (1 << 48) {
            return Err(format!(
                "implausible header: dimension {d}, ntotal {ntotal}"
            ));
        }
        Ok(Header {
            d: d as u32,
            ntotal,
            metric: match metric {
                0 => "inner_product".into(),
                1 => "l2".into(),
                other => format!("metric {other}"),
            },
        })
    }

    fn index(&mut self) -> Result<FaissIndexInfo, String> {
        let code = self.fourcc()?;
        let info = |kind: &str, h: &Header, inner: Option<String>, checked: bool| FaissIndexInfo {
            kind: kind.into(),
            dimension: h.d,
            ntotal: h.ntotal,
            metric: h.metric.clone(),
            inner,
            structure_checked: checked,
        };
        match code.as_str() {
            "IxF2" | "IxFI" | "IxFl" => {
                let h = self.header()?;
                let at = self.at + 8;
                let floats = self.vector(4, "the vectors")?;
                if floats != h.ntotal * u64::from(h.d) {
                    return Err(format!(
                        "the flat index holds {floats} floats; ntotal {} x dimension {} needs {}",
                        h.ntotal,
                        h.d,
                        h.ntotal * u64::from(h.d)
                    ));
                }
                let kind = match code.as_str() {
                    "IxF2" => "IndexFlatL2",
                    "IxFI" => "IndexFlatIP",
                    _ => "IndexFlat",
                };
                self.spans.flat.get_or_insert(FlatSpan {
                    at,
                    d: h.d,
                    ntotal: h.ntotal,
                    metric: h.metric.clone(),
                });
                Ok(info(kind, &h, None, true))
            }
            "IxMp" | "IxM2" => {
                let h = self.header()?;
                let inner = self.index()?;
                let at = self.at + 8;
                let ids = self.vector(8, "the id map")?;
                self.spans.ids.get_or_insert((at, ids));
                if ids != h.ntotal || inner.ntotal != h.ntotal {
                    return Err(format!(
                        "the id map holds {ids} ids and its index {} vectors; ntotal is {}",
                        inner.ntotal, h.ntotal
                    ));
                }
                let kind = if code == "IxM2" {
                    "IndexIDMap2"
                } else {
                    "IndexIDMap"
                };
                Ok(info(kind, &h, Some(inner.kind), inner.structure_checked))
            }
            "IHNf" => {
                let h = self.header()?;
                self.hnsw(h.ntotal)?;
                let storage = self.index()?;
                if storage.ntotal != h.ntotal {
                    return Err(format!(
                        "the HNSW graph has {} nodes but its storage {} vectors",
                        h.ntotal, storage.ntotal
                    ));
                }
                Ok(info(
                    "IndexHNSWFlat",
                    &h,
                    Some(storage.kind),
                    storage.structure_checked,
                ))
            }
            "IwFl" | "IwPQ" => {
                let h = self.header()?;
                let nlist = self.u64("nlist")?;
                self.u64("nprobe")?;
                let quantizer = self.index()?;
                if quantizer.ntotal != nlist && quantizer.ntotal != 0 {
                    return Err(format!(
                        "the IVF quantizer has {} centroids; nlist is {nlist}",
                        quantizer.ntotal
                    ));
                }
                self.direct_map()?;
                let code_size = if code == "IwPQ" {
                    self.u8("by_residual")?;
                    let code_size = self.u64("code_size")?;
                    self.u64("pq.d")?;
                    self.u64("pq.M")?;
                    self.u64("pq.nbits")?;
                    self.vector(4, "the PQ centroids")?;
                    Some(code_size)
                } else {
                    None
                };
                let stored = self.inverted_lists(nlist, code_size)?;
                if stored != h.ntotal {
                    return Err(format!(
                        "the inverted lists hold {stored} vectors; ntotal is {}",
                        h.ntotal
                    ));
                }
                let kind = if code == "IwPQ" {
                    "IndexIVFPQ"
                } else {
                    "IndexIVFFlat"
                };
                Ok(info(
                    kind,
                    &h,
                    Some(quantizer.kind),
                    quantizer.structure_checked,
                ))
            }
            "null" => Err("an empty (null) index".into()),
            other if other.chars().all(|c| c.is_ascii_alphanumeric()) => {
                let h = self.header()?;
                Ok(info(&format!("faiss:{other}"), &h, None, false))
            }
            other => Err(format!(
                "not a faiss index (starts with \"{}\")",
                other.escape_debug()
            )),
        }
    }

    fn hnsw(&mut self, ntotal: u64) -> Result<(), String> {
        self.vector(8, "HNSW assign_probas")?;
        self.vector(4, "HNSW cum_nneighbor_per_level")?;
        let levels = self.vector(4, "HNSW levels")?;
        let offsets = self.vector(8, "HNSW offsets")?;
        self.vector(4, "HNSW neighbors")?;
        for field in [
            "entry_point",
            "max_level",
            "efConstruction",
            "efSearch",
            "upper_beam",
        ] {
            self.i32(field)?;
        }
        if levels != ntotal || offsets != ntotal + 1 {
            return Err(format!(
                "the HNSW graph describes {levels} nodes ({offsets} offsets); ntotal is {ntotal}"
            ));
        }
        Ok(())
    }

    fn direct_map(&mut self) -> Result<(), String> {
        let kind = self.u8("the direct map type")?;
        self.vector(8, "the direct map")?;
        if kind == 2 {
            self.vector(16, "the direct map hashtable")?;
        }
        Ok(())
    }

    /// `ilar` array inverted lists; returns the number of vectors they hold.
    fn inverted_lists(
        &mut self,
        nlist: u64,
        expected_code_size: Option<u64>,
    ) -> Result<u64, String> {
        let code = self.fourcc()?;
        if code == "il00" {
            return Ok(0);
        }
        if code != "ilar" {
            return Err(format!("inverted lists of type {code:?} are not supported"));
        }
        let lists = self.u64("the list count")?;
        let code_size = self.u64("the code size")?;
        if lists != nlist || expected_code_size.is_some_and(|c| c != code_size) {
            return Err(format!(
                "inverted lists: {lists} lists of {code_size}-byte codes do not match the index"
            ));
        }
        let layout = self.fourcc()?;
        let n = self.u64("the list sizes")?;
        let mut sizes = Vec::new();
        for _ in 0..n {
            sizes.push(self.u64("a list size")?);
        }
        let counts: Vec<u64> = match layout.as_str() {
            "full" => sizes,
            "sprs" => sizes
                .chunks(2)
                .map(|p| p.get(1).copied().unwrap_or(0))
                .collect(),
            other => return Err(format!("inverted list layout {other:?} is not supported")),
        };
        // Each list: its codes, then its ids.
        let mut total = 0u64;
        let mut list_ids = Vec::with_capacity(counts.len().min(1 << 16));
        for count in counts {
            let size = |each: u64| count.checked_mul(each).ok_or("an impossible list size");
            self.skip(size(code_size)?, "an inverted list's codes")?;
            list_ids.push((self.at, count));
            self.skip(size(8)?, "an inverted list's ids")?;
            total = total.checked_add(count).ok_or("an impossible list size")?;
        }
        self.spans.list_ids = Some(list_ids);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat L2 index of `vectors` as faiss writes it, optionally inside an ID map.
    fn flat_l2(vectors: &[[f32; 2]], ids: Option<&[i64]>) -> Vec<u8> {
        let header = |code: &[u8], n: usize| {
            let mut bytes = code.to_vec();
            bytes.extend_from_slice(&2i32.to_le_bytes());
            bytes.extend_from_slice(&(n as i64).to_le_bytes());
            bytes.extend_from_slice(&[0u8; 16]);
            bytes.push(1);
            bytes.extend_from_slice(&1i32.to_le_bytes());
            bytes
        };
        let mut flat = header(b"IxF2", vectors.len());
        flat.extend_from_slice(&(vectors.len() as u64 * 2).to_le_bytes());
        for x in vectors.iter().flatten() {
            flat.extend_from_slice(&x.to_le_bytes());
        }
        let Some(ids) = ids else { return flat };
        let mut map = header(b"IxMp", vectors.len());
        map.extend_from_slice(&flat);
        map.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        for id in ids {
            map.extend_from_slice(&id.to_le_bytes());
        }
        map
    }

    /// An IVF flat L2 index of 2-d vectors, one inverted list per entry of `lists` (each
    /// element a vector and its id), over a flat quantizer of as many centroids.
    fn ivf_flat(lists: &[Vec<([f32; 2], i64)>]) -> Vec<u8> {
        let ntotal: usize = lists.iter().map(Vec::len).sum();
        let centroids: Vec<[f32; 2]> = (0..lists.len()).map(|i| [i as f32, 0.0]).collect();
        let mut bytes = b"IwFl".to_vec();
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&(ntotal as i64).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 16]);
        bytes.push(1);
        bytes.extend_from_slice(&1i32.to_le_bytes());
        for n in [lists.len() as u64, 1] {
            bytes.extend_from_slice(&n.to_le_bytes()); // nlist, nprobe
        }
        bytes.extend_from_slice(&flat_l2(&centroids, None));
        bytes.push(0); // no direct map
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(b"ilar");
        for n in [lists.len() as u64, 8] {
            bytes.extend_from_slice(&n.to_le_bytes()); // lists, code size
        }
        bytes.extend_from_slice(b"full");
        bytes.extend_from_slice(&(lists.len() as u64).to_le_bytes());
        for list in lists {
            bytes.extend_from_slice(&(list.len() as u64).to_le_bytes());
        }
        for list in lists {
            for (vector, _) in list {
                bytes.extend(vector.iter().flat_map(|x| x.to_le_bytes()));
            }
            for (_, id) in list {
                bytes.extend_from_slice(&id.to_le_bytes());
            }
        }
        bytes
    }

    #[test]
    fn an_ivf_index_records_the_ids_of_its_lists_in_order() {
        let lists = vec![
            vec![([0.1, 0.0], 0), ([0.2, 0.0], 1)],
            vec![([1.1, 0.0], 2)],
        ];
        let bytes = ivf_flat(&lists);
        let (info, _) = walk(&bytes.as_slice()).unwrap();
        assert_eq!((info.kind.as_str(), info.ntotal), ("IndexIVFFlat", 3));
        assert!(info.structure_checked);
        let recorded = content_of(&bytes);
        assert!(recorded.list_ids_blake3.is_some() && recorded.probes.is_empty());
        assert_eq!(content_of(&ivf_flat(&lists)), recorded);
        // Another id, the same ids in another order, or an id moved to another list.
        let mut other = lists.clone();
        other[1][0].1 = 7;
        let mut swapped = lists.clone();
        swapped[0].swap(0, 1);
        let moved = vec![vec![lists[0][0]], vec![lists[0][1], lists[1][0]]];
        for changed in [other, swapped, moved] {
            assert_ne!(
                content_of(&ivf_flat(&changed)).list_ids_blake3,
                recorded.list_ids_blake3
            );
        }
    }

    /// Bytes in memory that remember the largest read asked of them.
    struct Counted<'a>(&'a [u8], std::cell::Cell<usize>);

    impl Source for Counted<'_> {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, at: u64, into: &mut [u8]) -> std::io::Result<()> {
            self.1.set(self.1.get().max(into.len()));
            self.0.read_at(at, into)
        }
    }

    #[test]
    fn an_index_is_read_in_bounded_blocks_whatever_its_size() {
        // 400,000 vectors in an ID map: 3.2 MB of vectors and 3.2 MB of ids.
        let line: Vec<[f32; 2]> = (0..400_000).map(|i| [i as f32, 0.0]).collect();
        let ids: Vec<i64> = (0..400_000).map(|i| 1_000_000 + i).collect();
        let bytes = flat_l2(&line, Some(&ids));
        let counted = Counted(&bytes, Default::default());
        let (info, spans) = walk(&counted).unwrap();
        assert_eq!(info.ntotal, 400_000);
        let content = content(&counted, &info, &spans).unwrap();
        assert!(
            counted.1.get() <= BLOCK,
            "a read of {} bytes",
            counted.1.get()
        );
        // The same answers as a reading of the whole: nearest of 3 are 3, 2, 4, 1, 5 ...
        assert_eq!(
            content.probes[3].neighbours[..3],
            [1_000_003, 1_000_002, 1_000_004]
        );
        assert_eq!(
            content.ids_blake3.unwrap(),
            blake3::hash(&bytes[bytes.len() - ids.len() * 8..])
                .to_hex()
                .to_string()
        );
    }

    fn content_of(bytes: &[u8]) -> IndexContent {
        let (info, spans) = walk(&bytes).unwrap();
        content(&bytes, &info, &spans).unwrap()
    }

    #[test]
    fn a_flat_index_records_exact_neighbours_by_label_and_an_id_map_its_ids() {
        // On a line: 0, 1, 3, 7, 15: each point's nearest are its neighbours on the line.
        let line: Vec<[f32; 2]> = [0.0, 1.0, 3.0, 7.0, 15.0]
            .iter()
            .map(|x| [*x, 0.0])
            .collect();
        let plain = content_of(&flat_l2(&line, None));
        assert_eq!(plain.probes.len(), 5);
        assert_eq!(plain.probes[0].neighbours, vec![0, 1, 2, 3, 4]);
        assert_eq!(plain.probes[3].neighbours, vec![3, 2, 1, 0, 4]);
        assert_eq!(plain.ids_blake3, None);

        let ids = [10, 11, 12, 13, 14];
        let mapped = content_of(&flat_l2(&line, Some(&ids)));
        assert_eq!(mapped.probes[3].neighbours, vec![13, 12, 11, 10, 14]);
        assert!(mapped.ids_blake3.is_some());
        // Other ids, or a vector moved: the content differs.
        let renumbered = content_of(&flat_l2(&line, Some(&[10, 11, 12, 13, 99])));
        assert_ne!(renumbered.ids_blake3, mapped.ids_blake3);
        let mut moved = line.clone();
        moved[2] = [6.0, 0.0];
        assert_ne!(content_of(&flat_l2(&moved, None)).probes, plain.probes);
    }
}
