//! Chroma's persistent directory read offline: `chroma.sqlite3` through rusqlite and the HNSW
//! segment files directly, with the checks every backup passes before it is committed and
//! every restore passes before it is swapped in.
//!
//! Facts this relies on (Chroma 1.x, verified on 1.5.9): one directory per vector segment
//! holding `header.bin` (hnswlib's header behind a u32 format version), `data_level0.bin`
//! (`cur_element_count * size_data_per_element` bytes), `length.bin` (4 bytes per element),
//! `link_lists.bin` and `index_metadata.pickle` (a dict with `total_elements_added` and
//! `id_to_label`). Writes land in `embeddings_queue` first and reach the HNSW files every
//! `sync_threshold` records; `max_seq_id` holds each segment's watermark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::schema::{self, Generation};
use crate::repo::format::CheckResult;

pub use super::schema::SQLITE_FILE;
/// The files of a flushed HNSW segment directory besides its metadata.
pub const HNSW_FILES: [&str; 4] = [
    "header.bin",
    "data_level0.bin",
    "length.bin",
    "link_lists.bin",
];
/// Written with the first flush: the id map and the count of elements added.
pub const HNSW_METADATA_FILE: &str = "index_metadata.pickle";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path} is not a Chroma persistent directory: {reason}")]
    NotChroma { path: String, reason: String },
    #[error("{path} was written by a Chroma vecdrill does not support: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
}

impl crate::exit::Classify for LayoutError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::NotChroma { .. } | Self::Unsupported { .. } => crate::exit::BAD_INPUT,
            Self::Sqlite { .. } => crate::exit::FAILED,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NotChroma { .. } => {
                Some("point at the directory Chroma was started with (`chroma run --path DIR`)".into())
            }
            Self::Unsupported { .. } => Some(
                "nothing is wrong with the data: upgrade vecdrill to a release that reads this Chroma (vecdrill reads Chroma 0.4 to 1.5)".into(),
            ),
            Self::Sqlite { .. } => Some(
                "the database file is damaged or not Chroma's: check it with `vecdrill backup` or restore a backup".into(),
            ),
        }
    }
}

/// What a Chroma directory holds, as recorded in a backup manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChromaLayout {
    pub journal_mode: String,
    /// Highest applied schema migration per migration set: a backup whose schema is newer
    /// than the target's was made by a newer Chroma.
    pub schema: BTreeMap<String, i64>,
    /// The Chroma releases that write this schema ("0.5.x-0.6.x"); absent in manifests
    /// written before vecdrill recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroma_versions: Option<String>,
    pub collections: Vec<CollectionInfo>,
    /// The newest row of the log: where this copy stands in it, what a shipped log chain
    /// continues from (see `shipped`). None when nothing was ever logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<super::wal::LogHead>,
    /// Whether `log_head` was read (manifests written before vecdrill read it lack both).
    #[serde(default)]
    pub log_recorded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub id: String,
    pub name: String,
    pub dimension: Option<i64>,
    /// Records Chroma will answer for once it has replayed its log: the metadata segment's
    /// rows plus the effect of log entries past its watermark.
    pub count: u64,
    /// Rows already in the metadata segment.
    #[serde(default)]
    pub applied_count: u64,
    pub metadata_segment: Option<String>,
    pub vector_segment: Option<String>,
    /// Watermarks: the last log position each segment has applied.
    pub metadata_seq_id: Option<i64>,
    pub vector_seq_id: Option<i64>,
    /// Write-ahead log entries still held for this collection, and their range.
    pub log_entries: u64,
    pub log_min_seq_id: Option<i64>,
    pub log_max_seq_id: Option<i64>,
    /// Log entries past the vector index's watermark: what Chroma replays into it on start.
    pub log_pending: u64,
    /// Probe queries with their exact neighbours, recorded by a backup (none in manifests
    /// written before vecdrill recorded them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ExactProbe>,
}

/// One probe query recorded in a backup: the vector of stored record `record`, and the ids of
/// its `k` nearest records by the collection's distance (itself first), exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactProbe {
    pub record: String,
    pub neighbours: Vec<String>,
    /// Each neighbour's distance, nearest first: a server must answer a neighbour at its
    /// distance (else its vector is not the backup's), and may answer another record at the
    /// farthest one (a tie).
    pub distances: Vec<f32>,
}

fn open(path: &Path) -> Result<Connection, LayoutError> {
    let file = path.join(SQLITE_FILE);
    if !file.is_file() {
        return Err(LayoutError::NotChroma {
            path: path.display().to_string(),
            reason: format!("no {SQLITE_FILE}"),
        });
    }
    Connection::open_with_flags(
        &file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| LayoutError::Sqlite {
        path: file.display().to_string(),
        source,
    })
}

/// The schema generation of the database in `dir`, or why vecdrill cannot read it.
pub fn generation(dir: &Path) -> Result<Generation, LayoutError> {
    let conn = open(dir)?;
    let schema = migrations(&conn, dir)?;
    generation_of(&schema, dir)
}

pub fn generation_of(
    schema: &BTreeMap<String, i64>,
    dir: &Path,
) -> Result<Generation, LayoutError> {
    Generation::of(schema).map_err(|reason| LayoutError::Unsupported {
        path: dir.display().to_string(),
        reason,
    })
}

/// Highest applied migration per migration set.
fn migrations(conn: &Connection, dir: &Path) -> Result<BTreeMap<String, i64>, LayoutError> {
    let err = |source| LayoutError::Sqlite {
        path: dir.join(SQLITE_FILE).display().to_string(),
        source,
    };
    let mut schema = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT dir, MAX(version) FROM migrations GROUP BY dir")
        .map_err(err)?;
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(err)?
    {
        let (set, version) = row.map_err(err)?;
        schema.insert(set, version);
    }
    Ok(schema)
}

pub fn inspect(dir: &Path) -> Result<ChromaLayout, LayoutError> {
    let conn = open(dir)?;
    let err = |source| LayoutError::Sqlite {
        path: dir.join(SQLITE_FILE).display().to_string(),
        source,
    };
    let journal_mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(err)?;
    let schema = migrations(&conn, dir)?;
    let generation = generation_of(&schema, dir)?;
    let mut collections = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, name, dimension FROM collections ORDER BY name")
        .map_err(err)?;
    let rows: Vec<(String, String, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for (id, name, dimension) in rows {
        let segment = |scope: &str| -> Result<Option<String>, LayoutError> {
            conn.query_row(
                "SELECT id FROM segments WHERE collection = ?1 AND scope = ?2",
                [&id, scope],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)
        };
        let (metadata_segment, vector_segment) = (segment("METADATA")?, segment("VECTOR")?);
        let watermark = |segment: &Option<String>| -> Result<Option<i64>, LayoutError> {
            match segment {
                None => Ok(None),
                Some(s) => conn
                    .query_row(
                        "SELECT seq_id FROM max_seq_id WHERE segment_id = ?1",
                        [s],
                        |r| Ok(schema::seq_id(r.get_ref(0)?)?),
                    )
                    .optional()
                    .map_err(err),
            }
        };
        let applied_count: u64 = match &metadata_segment {
            Some(s) => conn
                .query_row(
                    "SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1",
                    [s],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(err)? as u64,
            None => 0,
        };
        let topic = format!("%/{id}");
        let metadata_seq_id = watermark(&metadata_segment)?;
        let count = pending_effect(
            &conn,
            &topic,
            metadata_seq_id.unwrap_or(0),
            metadata_segment.as_deref(),
            applied_count,
        )
        .map_err(err)?;
        let (log_entries, log_min, log_max): (i64, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT COUNT(*), MIN(seq_id), MAX(seq_id) FROM embeddings_queue WHERE topic LIKE ?1",
                [&topic],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(err)?;
        let vector_seq_id = if generation.vector_watermark_in_pickle() {
            // Unflushed (no pickle yet): nothing applied, the whole log is pending.
            vector_segment.as_ref().and_then(|segment| {
                let pickle = dir.join(segment).join(HNSW_METADATA_FILE);
                pickle
                    .is_file()
                    .then(|| super::hnsw_metadata::read(&pickle).ok()?.max_seq_id)
                    .flatten()
            })
        } else {
            watermark(&vector_segment)?
        };
        let log_pending: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM embeddings_queue WHERE topic LIKE ?1 AND seq_id > ?2",
                rusqlite::params![&topic, vector_seq_id.unwrap_or(0)],
                |r| r.get(0),
            )
            .map_err(err)?;
        collections.push(CollectionInfo {
            metadata_seq_id,
            applied_count,
            vector_seq_id,
            log_pending: log_pending as u64,
            id,
            name,
            dimension,
            count,
            metadata_segment,
            vector_segment,
            log_entries: log_entries as u64,
            log_min_seq_id: log_min,
            log_max_seq_id: log_max,
            probes: Vec::new(),
        });
    }
    let log_head = super::wal::head(&conn).map_err(err)?;
    Ok(ChromaLayout {
        journal_mode,
        schema,
        chroma_versions: Some(generation.versions().to_string()),
        collections,
        log_head,
        log_recorded: true,
    })
}

/// Chroma's write-ahead log operations (`embeddings_queue.operation`).
const OP_ADD: i64 = 0;
const OP_UPSERT: i64 = 2;
const OP_DELETE: i64 = 3;

/// The record count once the log entries past the metadata watermark are applied: the last
/// operation on each id decides whether it adds a record or removes one.
fn pending_effect(
    conn: &Connection,
    topic: &str,
    watermark: i64,
    segment: Option<&str>,
    applied: u64,
) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare(
        "SELECT q.operation, EXISTS(SELECT 1 FROM embeddings e WHERE e.segment_id = ?3 AND e.embedding_id = q.id), MAX(q.seq_id)
         FROM embeddings_queue q WHERE q.topic LIKE ?1 AND q.seq_id > ?2 GROUP BY q.id",
    )?;
    let mut count = applied as i64;
    let rows = stmt.query_map(
        rusqlite::params![topic, watermark, segment.unwrap_or("")],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)),
    )?;
    for row in rows {
        match row? {
            (OP_ADD | OP_UPSERT, false) => count += 1,
            (OP_DELETE, true) => count -= 1,
            _ => {}
        }
    }
    Ok(count.max(0) as u64)
}

/// The fields of hnswlib's header that the checks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswHeader {
    pub format_version: u32,
    pub max_elements: u64,
    pub cur_element_count: u64,
    pub size_data_per_element: u64,
    pub label_offset: u64,
    pub offset_data: u64,
}

impl HnswHeader {
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let u64_at = |at: usize| {
            bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        let format_version = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        Some(Self {
            format_version,
            max_elements: u64_at(12)?,
            cur_element_count: u64_at(20)?,
            size_data_per_element: u64_at(28)?,
            label_offset: u64_at(36)?,
            offset_data: u64_at(44)?,
        })
    }

    /// Vectors are f32 between `offset_data` and `label_offset`.
    pub fn dimension(&self) -> Option<u64> {
        self.label_offset
            .checked_sub(self.offset_data)
            .map(|b| b / 4)
    }
}

/// Check one HNSW segment directory for internal consistency; returns the element count.
pub fn check_hnsw(
    segment_dir: &Path,
    expected_dimension: Option<i64>,
    with_metadata: bool,
) -> Result<u64, String> {
    let read =
        |name: &str| std::fs::read(segment_dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let size = |name: &str| {
        std::fs::metadata(segment_dir.join(name))
            .map(|m| m.len())
            .map_err(|e| format!("{name}: {e}"))
    };
    let header = HnswHeader::parse(&read("header.bin")?).ok_or("header.bin is too short")?;
    if header.cur_element_count > header.max_elements {
        return Err(format!(
            "header.bin says {} elements but room for only {}",
            header.cur_element_count, header.max_elements
        ));
    }
    // The data files must hold every element the header counts. They may hold more: Chroma
    // writes elements ahead of the header (seen on 1.5.9 with 100 records, below the
    // 1000-record sync threshold: data for 100 elements, a header saying 0); on start it
    // trusts the header and replays the rest from the log.
    let data = size("data_level0.bin")?;
    let expected_data = header.cur_element_count * header.size_data_per_element;
    if data < expected_data {
        return Err(format!(
            "data_level0.bin is {data} bytes; header.bin implies {expected_data} ({} elements x {})",
            header.cur_element_count, header.size_data_per_element
        ));
    }
    let lengths = size("length.bin")?;
    if lengths < header.cur_element_count * 4 {
        return Err(format!(
            "length.bin is {lengths} bytes; expected {}",
            header.cur_element_count * 4
        ));
    }
    size("link_lists.bin")?;
    if let (Some(expected), Some(found)) = (expected_dimension, header.dimension()) {
        if expected as u64 != found {
            return Err(format!(
                "header.bin holds {found}-d vectors; the collection is {expected}-d"
            ));
        }
    }
    if !with_metadata {
        return Ok(header.cur_element_count);
    }
    if header.cur_element_count == 0 && !segment_dir.join(HNSW_METADATA_FILE).exists() {
        // Nothing flushed yet: Chroma writes the metadata with the first sync.
        return Ok(0);
    }
    let metadata = super::hnsw_metadata::read(&segment_dir.join(HNSW_METADATA_FILE))?;
    if let Some(added) = metadata.total_elements_added {
        if added != header.cur_element_count {
            return Err(format!(
                "index_metadata.pickle counts {added} elements; header.bin {}",
                header.cur_element_count
            ));
        }
    }
    // Deleted records leave the id map but keep their (marked) element: fewer ids than
    // elements is normal, more is not.
    if let Some(ids) = metadata.ids {
        if ids > header.cur_element_count {
            return Err(format!(
                "index_metadata.pickle maps {ids} ids; header.bin holds {} elements",
                header.cur_element_count
            ));
        }
    }
    Ok(header.cur_element_count)
}

/// Which checks to run. A backup runs them all. A restore writes bytes proven identical
/// (BLAKE3, chunk by chunk) to a backup that passed them all, so it re-runs only the cheap
/// structural ones, as a guard against a mismatched manifest.
#[derive(Debug, Clone, Copy)]
pub struct CheckPlan {
    /// SQLite's `integrity_check` (in two halves on two cores), which reads the whole database.
    pub integrity: bool,
    /// Parse `index_metadata.pickle` and compare it with `header.bin`.
    pub hnsw_metadata: bool,
}

impl CheckPlan {
    pub const FULL: Self = Self {
        integrity: true,
        hnsw_metadata: true,
    };
    /// A restored copy: every chunk was proven to be the bytes its manifest records, but a
    /// manifest can be forged and resealed (a file renamed away), so the vector index is read
    /// as a backup reads it. The whole-database integrity check, seconds on a large database,
    /// is not repeated: its bytes are the ones a backup checked.
    pub const RESTORED: Self = Self {
        integrity: false,
        hnsw_metadata: true,
    };
}

/// Every check in `plan`, each reported (a failing check does not hide the others), and the
/// layout it read. The integrity check, the longest, runs on threads of its own beside the
/// others.
pub fn run_checks(
    dir: &Path,
    plan: CheckPlan,
) -> (Vec<CheckResult>, Result<ChromaLayout, LayoutError>) {
    let database = dir.join(SQLITE_FILE);
    let (integrity, (mut checks, layout)) = std::thread::scope(|scope| {
        let integrity = plan.integrity.then(|| {
            scope.spawn(|| {
                let began = std::time::Instant::now();
                let result = super::integrity::check(&database);
                tracing::info!(elapsed = ?began.elapsed(), "integrity_check done");
                result
            })
        });
        let layout_checks = layout_checks(dir, plan);
        let integrity = integrity.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the integrity check panicked".into()))
        });
        (integrity, layout_checks)
    });
    if let Some(result) = integrity {
        checks.insert(0, CheckResult::of("sqlite_integrity", result));
    }
    (checks, layout)
}

/// The layout, then per collection its HNSW files and whether its log can replay onto them.
fn layout_checks(
    dir: &Path,
    plan: CheckPlan,
) -> (Vec<CheckResult>, Result<ChromaLayout, LayoutError>) {
    let mut checks = Vec::new();
    let mut push = |name: String, result| checks.push(CheckResult::of(name, result));
    let layout = match inspect(dir) {
        Ok(layout) => layout,
        Err(err) => {
            push("layout".into(), Err(err.to_string()));
            return (checks, Err(err));
        }
    };
    for collection in &layout.collections {
        let mut elements = Some(0);
        if let Some(segment) = &collection.vector_segment {
            let segment_dir = dir.join(segment);
            let result = if segment_dir.is_dir() {
                check_hnsw(&segment_dir, collection.dimension, plan.hnsw_metadata).map(|n| {
                    elements = Some(n);
                    let against = if plan.hnsw_metadata {
                        "header.bin and index_metadata.pickle"
                    } else {
                        "header.bin"
                    };
                    format!("{n} elements, consistent with {against}")
                })
            } else if collection.vector_seq_id.unwrap_or(0) > 0 {
                Err(format!(
                    "segment directory {segment} is missing but the index has applied writes"
                ))
            } else {
                Ok("no segment files yet (nothing flushed)".into())
            };
            if result.is_err() {
                elements = None;
            }
            push(format!("hnsw:{}", collection.name), result);
        }
        if let Some(elements) = elements {
            push(
                format!("log_replay:{}", collection.name),
                log_replayable(collection, elements),
            );
        }
    }
    (checks, Ok(layout))
}

/// Every record must be in the vector index or still in the write-ahead log past the index's
/// watermark, or Chroma cannot rebuild it on start. (Deleted records stay counted in the
/// index, so the index plus the pending log may exceed the count, never fall short.)
fn log_replayable(c: &CollectionInfo, hnsw_elements: u64) -> Result<String, String> {
    let available = hnsw_elements + c.log_pending;
    if available >= c.count {
        Ok(format!(
            "{} records: {hnsw_elements} in the index + {} log entries to replay",
            c.count, c.log_pending
        ))
    } else {
        Err(format!(
            "{} records but only {hnsw_elements} in the index and {} in the log: {} vectors cannot be rebuilt",
            c.count,
            c.log_pending,
            c.count - available
        ))
    }
}

/// Processes holding `dir/chroma.sqlite3` open (Linux /proc), as "pid (command)".
pub fn holders(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    // By the file itself (device and inode), not its path: a server in a container opened it
    // under the path its own mounts give it.
    let Ok(target) = std::fs::metadata(dir.join(SQLITE_FILE)) else {
        return Vec::new();
    };
    let target = (target.dev(), target.ino());
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == target));
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} ({})", command.trim()));
        }
    }
    found
}

/// The newest modification time of anything in the directory: the age of the local data for
/// `restore --if-newer`.
pub fn data_time(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).ok()?.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if let Ok(modified) = meta.modified() {
                newest = Some(newest.map_or(modified, |n: std::time::SystemTime| n.max(modified)));
            }
        }
    }
    newest
}
