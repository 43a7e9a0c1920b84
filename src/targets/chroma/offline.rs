//! Reading records out of a Chroma persistent directory with no server running, as Chroma
//! itself would answer `get`:
//!
//! - ids, documents, uris and metadata from the metadata segment in `chroma.sqlite3`
//!   (`embeddings` + `embedding_metadata` + `embedding_metadata_array`), merge-joined in row
//!   order so memory stays flat;
//! - vectors from the HNSW segment files (`data_level0.bin`, labels from
//!   `index_metadata.pickle`; cosine indexes store unit vectors and `length.bin` the norms
//!   hnswlib multiplies back);
//! - then the write-ahead log (`embeddings_queue`) past each segment's watermark, replayed
//!   the way Chroma replays it on start (add, update, upsert, delete, in sequence order).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use super::layout::{self, CollectionInfo, HnswHeader, LayoutError, SQLITE_FILE};
use super::schema::{self, Columns, Generation};

/// `embeddings_queue.operation` values.
const OP_ADD: i64 = 0;
const OP_UPDATE: i64 = 1;
const OP_UPSERT: i64 = 2;
const OP_DELETE: i64 = 3;
/// Metadata keys Chroma uses for a record's document and uri.
const DOCUMENT_KEY: &str = "chroma:document";
const URI_KEY: &str = "chroma:uri";

/// One record as `get` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineRecord {
    pub id: String,
    pub embedding: Vec<f32>,
    pub document: Option<String>,
    pub uri: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// A collection as the API describes it.
#[derive(Debug, Clone)]
pub struct OfflineCollection {
    pub info: CollectionInfo,
    pub metadata: Option<Map<String, Value>>,
    /// In the API's `configuration_json` shape (`{"hnsw": {...}}`).
    pub configuration: Option<Value>,
    pub space: String,
}

pub struct OfflineDatabase {
    dir: PathBuf,
    conn: Connection,
    generation: Generation,
    columns: Columns,
    collections: Vec<OfflineCollection>,
}

impl OfflineDatabase {
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let described = layout::inspect(dir)?;
        let file = dir.join(SQLITE_FILE);
        let sqlite_err = |source| LayoutError::Sqlite {
            path: file.display().to_string(),
            source,
        };
        let conn = Connection::open_with_flags(
            &file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        let mut collections = Vec::new();
        let generation = layout::generation_of(&described.schema, dir)?;
        let columns = Columns::probe(&conn).map_err(sqlite_err)?;
        for info in described.collections {
            let metadata = collection_metadata(&conn, &info.id, columns).map_err(sqlite_err)?;
            let (configuration, space) =
                configuration(&conn, &info.id, columns, metadata.as_ref()).map_err(sqlite_err)?;
            collections.push(OfflineCollection {
                info,
                metadata,
                configuration,
                space,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            conn,
            generation,
            columns,
            collections,
        })
    }

    pub fn collections(&self) -> &[OfflineCollection] {
        &self.collections
    }

    /// Every record of `collection`, in the order Chroma's `get` pages them, to `sink`.
    pub fn for_each_record<E: From<String>>(
        &self,
        collection: &OfflineCollection,
        sink: impl FnMut(OfflineRecord) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.records(collection, None, sink)
    }

    /// The records of `collection` that `wanted` (given each one's position in paging order
    /// and its id) keeps, to `sink`, in that order. Only the kept records' metadata, labels
    /// and vectors are read, so a sample of a large collection costs a walk of its ids. How
    /// many were kept.
    pub fn for_each_record_where<E: From<String>>(
        &self,
        collection: &OfflineCollection,
        mut wanted: impl FnMut(u64, &str) -> bool,
        sink: impl FnMut(OfflineRecord) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.records(collection, Some(&mut wanted), sink)
    }

    fn records<E: From<String>>(
        &self,
        collection: &OfflineCollection,
        wanted: Option<&mut Selector<'_>>,
        mut sink: impl FnMut(OfflineRecord) -> Result<(), E>,
    ) -> Result<u64, E> {
        let info = &collection.info;
        let cosine = collection.space == "cosine";
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            E::from(format!("collection {:?}: {what}: {e}", info.name))
        };
        // One read of the log from the lower watermark; each segment replays its own part.
        let (vector_mark, metadata_mark) = (
            info.vector_seq_id.unwrap_or(0),
            info.metadata_seq_id.unwrap_or(0),
        );
        // 1.x answers a logged cosine vector as its index would hold it; 0.x answers it raw.
        let normalised = cosine && self.generation.answers_logged_cosine_normalised();
        let log = read_log(
            &self.conn,
            &format!("%/{}", info.id),
            vector_mark.min(metadata_mark),
            normalised,
        )
        .map_err(|e| fail("write-ahead log", &e))?;
        let past = |mark: i64| log.iter().filter(move |e| e.seq > mark);
        let mut metadata_overlay = replay_metadata(past(metadata_mark));
        let segment = info.metadata_segment.clone().unwrap_or_default();
        let mut rows = StoredRecords::new(&self.conn, &segment, self.columns.metadata_arrays)
            .map_err(|e| fail("sqlite", &e))?;
        // A selection is settled first, by ids alone: stored rows, then the records only the
        // log knows of, in the order they were logged.
        let selection = match wanted {
            None => None,
            Some(wanted) => {
                let mut at = 0u64;
                // A stored row not selected takes what the log does to it along.
                let stored = rows
                    .ids_where(&mut |id| {
                        at += 1;
                        let keep = wanted(at - 1, id);
                        if !keep {
                            metadata_overlay.remove(id);
                        }
                        keep
                    })
                    .map_err(|e| fail("sqlite", &e))?;
                let stored_ids: HashSet<&str> = stored.iter().map(|(_, id)| id.as_str()).collect();
                let mut logged = Vec::new();
                for record in logged_only(&mut metadata_overlay, |id| !stored_ids.contains(id)) {
                    at += 1;
                    if wanted(at - 1, &record.id) {
                        logged.push(record);
                    }
                }
                Some((stored, logged))
            }
        };
        // Labels are read for the selected records and those the log writes, else for all.
        let labelled: Option<HashSet<String>> = selection.as_ref().map(|(stored, logged)| {
            let selected = (stored.iter().map(|(_, id)| id)).chain(logged.iter().map(|r| &r.id));
            selected
                .chain(past(vector_mark).map(|e| &e.id))
                .cloned()
                .collect()
        });
        let vectors = match &info.vector_segment {
            Some(segment) => VectorIndex::open(&self.dir.join(segment), cosine, labelled.as_ref())
                .map_err(|e| fail("vector index", &e))?,
            None => VectorIndex::default(),
        };
        let vector_overlay = replay_vectors(past(vector_mark), &vectors);
        let vector_of = |id: &str| -> Result<Vec<f32>, E> {
            match vector_overlay.get(id) {
                Some(Some(v)) => Ok(v.clone()),
                Some(None) => Err(E::from(format!(
                    "collection {:?}: record {id:?} was deleted from the vector index but not from the metadata",
                    info.name
                ))),
                None => vectors
                    .vector(id)
                    .map_err(|e| fail(&format!("record {id:?}"), &e)),
            }
        };
        let mut written = 0u64;
        let mut emit = |record: Option<OfflineRecord>| -> Result<(), E> {
            if let Some(mut record) = record {
                record.embedding = vector_of(&record.id)?;
                sink(record)?;
                written += 1;
            }
            Ok(())
        };
        match selection {
            Some((stored, logged)) => {
                for page in stored.chunks(PAGE_ROWS as usize) {
                    let records = rows
                        .with_fields(page.to_vec())
                        .map_err(|e| fail("sqlite", &e))?;
                    for record in records {
                        emit(match metadata_overlay.remove(&record.id) {
                            Some(change) => change.apply(Some(record)),
                            None => Some(record),
                        })?;
                    }
                }
                for record in logged {
                    emit(Some(record))?;
                }
            }
            None => {
                while let Some(record) = rows.next_record().map_err(|e| fail("sqlite", &e))? {
                    emit(match metadata_overlay.remove(&record.id) {
                        Some(change) => change.apply(Some(record)),
                        None => Some(record),
                    })?;
                }
                for record in logged_only(&mut metadata_overlay, |_| true) {
                    emit(Some(record))?;
                }
            }
        }
        Ok(written)
    }
}

impl OfflineDatabase {
    /// Every vector `collection` answers searches over, with its record's id: the index's in
    /// its storage order, then those only the log holds (past the index's watermark) by id.
    /// No metadata is read: a scan for exact neighbours costs a sequential read of the index.
    pub fn for_each_vector(
        &self,
        collection: &OfflineCollection,
        mut sink: impl FnMut(&str, &[f32]) -> Result<(), String>,
    ) -> Result<(), String> {
        let info = &collection.info;
        let cosine = collection.space == "cosine";
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("collection {:?}: {what}: {e}", info.name)
        };
        let vectors = match &info.vector_segment {
            Some(segment) => VectorIndex::open(&self.dir.join(segment), cosine, None)
                .map_err(|e| fail("vector index", &e))?,
            None => VectorIndex::default(),
        };
        let mark = info.vector_seq_id.unwrap_or(0);
        let normalised = cosine && self.generation.answers_logged_cosine_normalised();
        let log = read_log(&self.conn, &format!("%/{}", info.id), mark, normalised)
            .map_err(|e| fail("write-ahead log", &e))?;
        let overlay = replay_vectors(log.iter(), &vectors);
        let id_of: HashMap<u64, &str> = vectors
            .id_to_label
            .iter()
            .map(|(id, label)| (u64::from(*label), id.as_str()))
            .collect();
        vectors.for_each(|label, vector| match id_of.get(&label) {
            // Replaced or deleted by the log: its own entry below says which.
            Some(id) if !overlay.contains_key(*id) => sink(id, vector),
            _ => Ok(()),
        })?;
        let mut logged: Vec<(&String, &Vec<f32>)> = overlay
            .iter()
            .filter_map(|(id, v)| v.as_ref().map(|v| (id, v)))
            .collect();
        logged.sort_by_key(|(id, _)| *id);
        for (id, vector) in logged {
            sink(id, vector)?;
        }
        Ok(())
    }
}

/// Which records a reading keeps, given each one's position in paging order and its id.
type Selector<'a> = dyn FnMut(u64, &str) -> bool + 'a;

/// The collection's configuration and distance space (see [`schema::settings`]).
fn configuration(
    conn: &Connection,
    id: &str,
    columns: Columns,
    metadata: Option<&Map<String, Value>>,
) -> rusqlite::Result<(Option<Value>, String)> {
    let column = |present: bool, name: &str| if present { name } else { "NULL" }.to_string();
    let (config, schema_json): (Option<String>, Option<String>) = conn.query_row(
        &format!(
            "SELECT {}, {} FROM collections WHERE id = ?1",
            column(columns.config_json, "config_json_str"),
            column(columns.schema_json, "schema_str"),
        ),
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(schema::settings(
        config.as_deref(),
        schema_json.as_deref(),
        metadata,
    ))
}

fn collection_metadata(
    conn: &Connection,
    id: &str,
    columns: Columns,
) -> rusqlite::Result<Option<Map<String, Value>>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT key, str_value, int_value, float_value, {} FROM collection_metadata
         WHERE collection_id = ?1 ORDER BY key",
        if columns.collection_bool {
            "bool_value"
        } else {
            "NULL"
        }
    ))?;
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, typed_value(r, 1)?)))?;
    let map: Map<String, Value> = rows.collect::<Result<_, _>>()?;
    Ok((!map.is_empty()).then_some(map))
}

/// The one non-null value of a (string, int, float, bool) column group starting at `first`.
fn typed_value(row: &rusqlite::Row, first: usize) -> rusqlite::Result<Value> {
    if let Some(s) = row.get::<_, Option<String>>(first)? {
        return Ok(Value::String(s));
    }
    if let Some(i) = row.get::<_, Option<i64>>(first + 1)? {
        return Ok(Value::from(i));
    }
    if let Some(f) = row.get::<_, Option<f64>>(first + 2)? {
        return Ok(Value::from(f));
    }
    if let Some(b) = row.get::<_, Option<i64>>(first + 3)? {
        return Ok(Value::Bool(b != 0));
    }
    Ok(Value::Null)
}

/// Rows of the metadata segment in row order, each with its metadata, documents and uris.
struct StoredRecords<'c> {
    records: rusqlite::Statement<'c>,
    scalars: rusqlite::Statement<'c>,
    arrays: rusqlite::Statement<'c>,
    segment: String,
    after: i64,
    buffered: std::vec::IntoIter<OfflineRecord>,
}

/// Rows read per query: bounds memory on any collection size.
const PAGE_ROWS: i64 = 2000;

impl<'c> StoredRecords<'c> {
    /// `arrays`: whether the database has `embedding_metadata_array` (metadb 6).
    fn new(conn: &'c Connection, segment: &str, arrays: bool) -> rusqlite::Result<Self> {
        Ok(Self {
            // `+segment_id`: walk the table in id order from `?2` (each page a range seek);
            // with the (segment_id, embedding_id) index SQLite sorts the whole segment again
            // for every page (1.5 s of 1.6 for a 50-record sample of 200,000).
            records: conn.prepare(
                "SELECT id, embedding_id FROM embeddings WHERE +segment_id = ?1 AND id > ?2
                 ORDER BY id LIMIT ?3",
            )?,
            scalars: conn.prepare(
                "SELECT id, key, string_value, int_value, float_value, bool_value
                 FROM embedding_metadata WHERE id BETWEEN ?1 AND ?2 ORDER BY id, key",
            )?,
            arrays: conn.prepare(if arrays {
                "SELECT id, key, string_value, int_value, float_value, bool_value
                 FROM embedding_metadata_array WHERE id BETWEEN ?1 AND ?2 ORDER BY id, rowid"
            } else {
                "SELECT 0, '', NULL, NULL, NULL, NULL WHERE ?1 > ?2"
            })?,
            segment: segment.to_string(),
            after: -1,
            buffered: Vec::new().into_iter(),
        })
    }

    /// The next page of rows (row id, record id) in row order; empty at the end.
    fn next_page(&mut self) -> rusqlite::Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String)> = self
            .records
            .query_map(
                rusqlite::params![self.segment, self.after, PAGE_ROWS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        if let Some(last) = rows.last() {
            self.after = last.0;
        }
        Ok(rows)
    }

    /// The next stored record, with its metadata.
    fn next_record(&mut self) -> rusqlite::Result<Option<OfflineRecord>> {
        loop {
            if let Some(record) = self.buffered.next() {
                return Ok(Some(record));
            }
            let page = self.next_page()?;
            if page.is_empty() {
                return Ok(None);
            }
            self.buffered = self.with_fields(page)?.into_iter();
        }
    }

    /// The rows `wanted` keeps, asked of every row's id in order; no metadata is read.
    fn ids_where(
        &mut self,
        wanted: &mut dyn FnMut(&str) -> bool,
    ) -> rusqlite::Result<Vec<(i64, String)>> {
        let mut kept = Vec::new();
        loop {
            let page = self.next_page()?;
            if page.is_empty() {
                return Ok(kept);
            }
            kept.extend(page.into_iter().filter(|(_, id)| wanted(id)));
        }
    }

    /// `rows` with their metadata: read for the range they span (a page), or one by one when
    /// only a few of a page were kept.
    fn with_fields(&mut self, rows: Vec<(i64, String)>) -> rusqlite::Result<Vec<OfflineRecord>> {
        let ranges: Vec<(i64, i64)> = if rows.len() * 8 >= PAGE_ROWS as usize {
            rows.first()
                .zip(rows.last())
                .map(|(a, b)| (a.0, b.0))
                .into_iter()
                .collect()
        } else {
            rows.iter().map(|(row, _)| (*row, *row)).collect()
        };
        let mut fields: HashMap<i64, Map<String, Value>> = HashMap::new();
        for (first, last) in ranges {
            self.read_fields(first, last, &mut fields)?;
        }
        Ok(rows
            .into_iter()
            .map(|(row, id)| split_fields(id, fields.remove(&row).unwrap_or_default()))
            .collect())
    }

    fn read_fields(
        &mut self,
        first: i64,
        last: i64,
        fields: &mut HashMap<i64, Map<String, Value>>,
    ) -> rusqlite::Result<()> {
        for row in self.scalars.query_map([first, last], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                typed_value(r, 2)?,
            ))
        })? {
            let (id, key, value) = row?;
            fields.entry(id).or_default().insert(key, value);
        }
        for row in self.arrays.query_map([first, last], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                typed_value(r, 2)?,
            ))
        })? {
            let (id, key, value) = row?;
            let entry = fields
                .entry(id)
                .or_default()
                .entry(key)
                .or_insert(Value::Array(vec![]));
            if let Value::Array(items) = entry {
                items.push(value);
            }
        }
        Ok(())
    }
}

/// Documents and uris are stored as metadata under reserved keys; the API returns them apart.
fn split_fields(id: String, mut fields: Map<String, Value>) -> OfflineRecord {
    let take_string = |fields: &mut Map<String, Value>, key: &str| match fields.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let document = take_string(&mut fields, DOCUMENT_KEY);
    let uri = take_string(&mut fields, URI_KEY);
    OfflineRecord {
        id,
        embedding: Vec::new(),
        document,
        uri,
        metadata: (!fields.is_empty()).then_some(fields),
    }
}

/// The persisted HNSW index of one segment: labels by id, vectors by label.
#[derive(Default)]
struct VectorIndex {
    data: Option<File>,
    header: Option<HnswHeader>,
    id_to_label: HashMap<String, u32>,
    /// Built on the first label not found where Chroma's numbering puts it (see
    /// [`Self::internal_of`]).
    label_to_internal: std::cell::OnceCell<Result<HashMap<u64, u64>, String>>,
    /// hnswlib's stored norms (cosine only): vectors are kept unit length.
    lengths: Option<Vec<f32>>,
    dimension: usize,
    /// Whether `id_to_label` holds only the ids asked for.
    partial: bool,
}

impl VectorIndex {
    /// The index in `dir`, knowing the labels of the ids in `only` (`None`: of every id).
    fn open(dir: &Path, cosine: bool, only: Option<&HashSet<String>>) -> Result<Self, String> {
        let pickle = dir.join("index_metadata.pickle");
        if !pickle.exists() {
            // Nothing flushed yet: every vector is still in the log.
            return Ok(Self::default());
        }
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"));
        let header = HnswHeader::parse(&read("header.bin")?).ok_or("header.bin is too short")?;
        let id_to_label = super::hnsw_metadata::labels_of(&pickle, only)?;
        let data =
            File::open(dir.join("data_level0.bin")).map_err(|e| format!("data_level0.bin: {e}"))?;
        let count = header.cur_element_count;
        // The header's sizes size every read buffer below: they must fit the file first.
        let length = data
            .metadata()
            .map_err(|e| format!("data_level0.bin: {e}"))?
            .len();
        let fits = count
            .checked_mul(header.size_data_per_element)
            .is_some_and(|needed| needed <= length)
            && header.label_offset.saturating_add(8) <= header.size_data_per_element
            && header.size_data_per_element > 0;
        if !fits {
            return Err(format!(
                "header.bin describes {count} elements of {} bytes (labels at {}), which data_level0.bin ({length} bytes) does not hold",
                header.size_data_per_element, header.label_offset
            ));
        }
        let lengths = if cosine {
            let bytes = read("length.bin")?;
            Some(
                bytes
                    .chunks_exact(4)
                    .take(count as usize)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
            )
        } else {
            None
        };
        Ok(Self {
            data: Some(data),
            dimension: header.dimension().unwrap_or(0) as usize,
            header: Some(header),
            id_to_label,
            label_to_internal: Default::default(),
            lengths,
            partial: only.is_some(),
        })
    }

    fn contains(&self, id: &str) -> bool {
        self.id_to_label.contains_key(id)
    }

    /// Every element's label and vector (as `get` answers it), in storage order, read in large
    /// sequential blocks.
    fn for_each(
        &self,
        mut sink: impl FnMut(u64, &[f32]) -> Result<(), String>,
    ) -> Result<(), String> {
        let (Some(data), Some(header)) = (&self.data, &self.header) else {
            return Ok(());
        };
        let size = header.size_data_per_element;
        let per_block = (4 << 20) / size.max(1) + 1;
        let mut block = vec![0u8; (per_block * size) as usize];
        let mut vector = vec![0f32; self.dimension];
        let mut internal = 0u64;
        while internal < header.cur_element_count {
            let n = per_block.min(header.cur_element_count - internal);
            let bytes = &mut block[..(n * size) as usize];
            data.read_exact_at(bytes, internal * size)
                .map_err(|e| format!("data_level0.bin: {e}"))?;
            for (i, element) in bytes.chunks_exact(size as usize).enumerate() {
                let label_at = header.label_offset as usize;
                let data_at = header.offset_data as usize;
                let (Some(label), Some(floats)) = (
                    element.get(label_at..label_at + 8),
                    element.get(data_at..data_at + self.dimension * 4),
                ) else {
                    return Err(
                        "data_level0.bin: an element is shorter than its header says".into(),
                    );
                };
                let length = self
                    .lengths
                    .as_ref()
                    .map(|l| l.get(internal as usize + i).copied().unwrap_or(1.0));
                for (x, b) in vector.iter_mut().zip(floats.chunks_exact(4)) {
                    let raw = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                    *x = length.map_or(raw, |l| raw * l);
                }
                sink(
                    u64::from_le_bytes(label.try_into().expect("8 bytes")),
                    &vector,
                )?;
            }
            internal += n;
        }
        Ok(())
    }

    /// Where element `label` is stored. Chroma numbers labels from 1 in the order it adds
    /// vectors, which hnswlib stores in that order: label L is usually element L - 1, checked
    /// by reading its label there. Otherwise (replaced or reused slots, parallel inserts) the
    /// labels are read once, in large sequential blocks, until every label known is found.
    fn internal_of(&self, data: &File, header: &HnswHeader, label: u64) -> Result<u64, String> {
        let read_label = |internal: u64| -> Result<u64, String> {
            let mut bytes = [0u8; 8];
            data.read_exact_at(
                &mut bytes,
                internal * header.size_data_per_element + header.label_offset,
            )
            .map_err(|e| format!("data_level0.bin: {e}"))?;
            Ok(u64::from_le_bytes(bytes))
        };
        if let Some(guess) = label
            .checked_sub(1)
            .filter(|i| *i < header.cur_element_count)
        {
            if read_label(guess)? == label {
                return Ok(guess);
            }
        }
        let all = self
            .label_to_internal
            .get_or_init(|| self.all_labels(data, header))
            .as_ref()
            .map_err(Clone::clone)?;
        all.get(&label)
            .copied()
            .ok_or_else(|| format!("label {label} is not in data_level0.bin"))
    }

    fn all_labels(&self, data: &File, header: &HnswHeader) -> Result<HashMap<u64, u64>, String> {
        let count = header.cur_element_count;
        // With the labels of a few ids known, only theirs are kept, and the read ends when
        // all are found.
        let known: Option<HashSet<u64>> = self
            .partial
            .then(|| self.id_to_label.values().map(|l| u64::from(*l)).collect());
        let capacity = known.as_ref().map_or(count as usize, HashSet::len);
        let mut label_to_internal = HashMap::with_capacity(capacity);
        let size = header.size_data_per_element;
        // Labels sit at a fixed offset in every element: read them in large sequential blocks.
        let per_block = (4 << 20) / size.max(1) + 1;
        let mut block = vec![0u8; (per_block * size) as usize];
        let mut internal = 0u64;
        while internal < count {
            let n = per_block.min(count - internal);
            let bytes = &mut block[..(n * size) as usize];
            data.read_exact_at(bytes, internal * size)
                .map_err(|e| format!("data_level0.bin: {e}"))?;
            for i in 0..n {
                let at = (i * size + header.label_offset) as usize;
                let label = bytes
                    .get(at..at + 8)
                    .ok_or("data_level0.bin: an element is shorter than its header says")?;
                let label = u64::from_le_bytes(label.try_into().expect("8 bytes"));
                if known.as_ref().is_none_or(|known| known.contains(&label)) {
                    label_to_internal.insert(label, internal + i);
                }
            }
            if known
                .as_ref()
                .is_some_and(|known| label_to_internal.len() >= known.len())
            {
                break;
            }
            internal += n;
        }
        Ok(label_to_internal)
    }

    fn vector(&self, id: &str) -> Result<Vec<f32>, String> {
        let (Some(data), Some(header)) = (&self.data, &self.header) else {
            return Err("not in the vector index, which is empty, nor in the log".into());
        };
        let label = self
            .id_to_label
            .get(id)
            .ok_or("not in the vector index nor in the log")?;
        let internal = self.internal_of(data, header, u64::from(*label))?;
        let mut bytes = vec![0u8; self.dimension * 4];
        data.read_exact_at(
            &mut bytes,
            internal * header.size_data_per_element + header.offset_data,
        )
        .map_err(|e| format!("data_level0.bin: {e}"))?;
        let length = self
            .lengths
            .as_ref()
            .map(|l| l.get(internal as usize).copied().unwrap_or(1.0));
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .map(|x| length.map_or(x, |l| x * l))
            .collect())
    }
}

/// One logged write.
struct LogEntry {
    seq: i64,
    operation: i64,
    id: String,
    vector: Option<Vec<f32>>,
    metadata: Option<Map<String, Value>>,
}

/// The log past `after`; with `normalised`, each vector as hnswlib's cosine index returns it.
fn read_log(
    conn: &Connection,
    topic: &str,
    after: i64,
    normalised: bool,
) -> rusqlite::Result<Vec<LogEntry>> {
    let mut stmt = conn.prepare(
        "SELECT seq_id, operation, id, vector, encoding, metadata FROM embeddings_queue
         WHERE topic LIKE ?1 AND seq_id > ?2 ORDER BY seq_id",
    )?;
    let rows = stmt.query_map(rusqlite::params![topic, after], |r| {
        let vector: Option<Vec<u8>> = r.get(3)?;
        let encoding: Option<String> = r.get(4)?;
        let metadata: Option<String> = r.get(5)?;
        Ok(LogEntry {
            seq: r.get(0)?,
            operation: r.get(1)?,
            id: r.get(2)?,
            vector: vector
                .filter(|_| encoding.as_deref().unwrap_or("FLOAT32") == "FLOAT32")
                .map(|bytes| {
                    let v: Vec<f32> = bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect();
                    if normalised {
                        as_hnswlib_returns(&v)
                    } else {
                        v
                    }
                }),
            metadata: metadata
                .and_then(|m| serde_json::from_str::<Value>(&m).ok())
                .and_then(|m| match m {
                    Value::Object(map) => Some(map),
                    _ => None,
                }),
        })
    })?;
    rows.collect()
}

/// A cosine index stores `v / (|v| + 1e-30)` and its norm, and returns their product: the
/// same f32 arithmetic here gives exactly what Chroma will answer once it applies the log.
fn as_hnswlib_returns(v: &[f32]) -> Vec<f32> {
    let mut norm = 0.0f32;
    for x in v {
        norm += x * x;
    }
    let length = norm.sqrt();
    let inverse = 1.0f32 / (length + 1e-30f32);
    v.iter().map(|x| (x * inverse) * length).collect()
}

/// The vectors the log changes: `Some(v)` set, `None` deleted.
fn replay_vectors<'a>(
    log: impl Iterator<Item = &'a LogEntry>,
    index: &VectorIndex,
) -> HashMap<String, Option<Vec<f32>>> {
    let mut overlay: HashMap<String, Option<Vec<f32>>> = HashMap::new();
    for entry in log {
        let exists = match overlay.get(&entry.id) {
            Some(state) => state.is_some(),
            None => index.contains(&entry.id),
        };
        match (entry.operation, &entry.vector) {
            (OP_ADD, Some(v)) if !exists => {
                overlay.insert(entry.id.clone(), Some(v.clone()));
            }
            (OP_UPDATE, Some(v)) if exists => {
                overlay.insert(entry.id.clone(), Some(v.clone()));
            }
            (OP_UPSERT, Some(v)) => {
                overlay.insert(entry.id.clone(), Some(v.clone()));
            }
            (OP_DELETE, _) if exists => {
                overlay.insert(entry.id.clone(), None);
            }
            _ => {}
        }
    }
    overlay
}

/// What the log does to one record's metadata, folded in sequence order.
struct Change {
    first_seq: i64,
    /// Operations with their metadata, in order.
    steps: Vec<(i64, Option<Map<String, Value>>)>,
    id: String,
}

/// The records only the log holds (the changes left in `overlay` that `only_logged` says the
/// table lacks, taken out of it), in the order they were first logged; deleted ones left out.
fn logged_only(
    overlay: &mut HashMap<String, Change>,
    only_logged: impl Fn(&str) -> bool,
) -> Vec<OfflineRecord> {
    let ids: Vec<String> = overlay
        .keys()
        .filter(|id| only_logged(id))
        .cloned()
        .collect();
    let mut changes: Vec<Change> = ids.iter().filter_map(|id| overlay.remove(id)).collect();
    changes.sort_by_key(|change| change.first_seq);
    changes
        .into_iter()
        .filter_map(|change| change.apply(None))
        .collect()
}

impl Change {
    /// Apply to the stored record (`None` if the table lacks it); `None` if it ends deleted.
    fn apply(self, mut record: Option<OfflineRecord>) -> Option<OfflineRecord> {
        for (operation, metadata) in self.steps {
            let fresh = || split_fields(self.id.clone(), metadata.clone().unwrap_or_default());
            record = match (operation, record) {
                (OP_ADD, None) => Some(fresh()),
                (OP_ADD, Some(existing)) => Some(existing),
                (OP_UPSERT, None) => Some(fresh()),
                (OP_UPDATE | OP_UPSERT, Some(existing)) => Some(merge(existing, metadata)),
                (OP_DELETE, _) => None,
                (_, other) => other,
            };
        }
        record
    }
}

/// Chroma's update: given keys replace, null keys are removed, the rest stay.
fn merge(existing: OfflineRecord, update: Option<Map<String, Value>>) -> OfflineRecord {
    let Some(update) = update else {
        return existing;
    };
    let mut fields = existing.metadata.unwrap_or_default();
    if let Some(d) = existing.document {
        fields.insert(DOCUMENT_KEY.into(), Value::String(d));
    }
    if let Some(u) = existing.uri {
        fields.insert(URI_KEY.into(), Value::String(u));
    }
    for (key, value) in update {
        if value.is_null() {
            fields.remove(&key);
        } else {
            fields.insert(key, value);
        }
    }
    split_fields(existing.id, fields)
}

fn replay_metadata<'a>(log: impl Iterator<Item = &'a LogEntry>) -> HashMap<String, Change> {
    let mut changes: HashMap<String, Change> = HashMap::new();
    for entry in log {
        changes
            .entry(entry.id.clone())
            .or_insert_with(|| Change {
                first_seq: entry.seq,
                steps: Vec::new(),
                id: entry.id.clone(),
            })
            .steps
            .push((entry.operation, entry.metadata.clone()));
    }
    changes
}
