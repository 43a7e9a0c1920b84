//! The export file: JSON lines, one object per line, each with a `"type"`.
//!
//! ```text
//! {"type":"header","format":"vecdrill-export","version":1,...}
//! {"type":"collection","name":"docs","configuration":{...},"metadata":{...},"dimension":384,"count":2}
//! {"type":"record","id":"a","embedding":"<base64 of little-endian f32>","document":"...","metadata":{...}}
//! {"type":"record","id":"b","embedding":[0.1,0.2,...]}
//! {"type":"collection_end","name":"docs","records":2}
//! {"type":"end","collections":1,"records":2}
//! ```
//! Records belong to the collection line before them. Embeddings are written as base64 of
//! little-endian f32 (exact and compact); a JSON array of numbers is accepted on import too.
//! The `end` line is the proof that the file is complete. A `.zst` file is the same text,
//! zstd-compressed (recognised by its magic bytes when read).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::exit::{self, Classify};

pub const FORMAT_NAME: &str = "vecdrill-export";
pub const FORMAT_VERSION: u32 = 1;
pub const EMBEDDING_ENCODING: &str = "f32le-base64";
/// The zstd level of `.zst` exports: fast, and text embeddings compress well at any level.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Collection(CollectionHeader),
    Record(Record),
    CollectionEnd { name: String, records: u64 },
    End { collections: u64, records: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub tool_version: String,
    /// Where the data came from: `{"kind": "chroma-api", "url": ...}`, `chroma-dir`, `backup`.
    pub source: Value,
    pub embedding_encoding: String,
}

impl Header {
    pub fn new(source: Value) -> Self {
        Self {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            created_at: Utc::now(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            source,
            embedding_encoding: EMBEDDING_ENCODING.into(),
        }
    }
}

/// A collection as it must be recreated: Chroma's configuration (`configuration_json` of the
/// API, nulls left out), its metadata, and how many records follow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionHeader {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<u64>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    #[serde(with = "embedding")]
    pub embedding: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// Base64 of little-endian f32 on the way out; that or a JSON array of numbers on the way in.
mod embedding {
    use super::*;
    use serde::de::Error;

    pub fn serialize<S: serde::Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Numbers(Vec<f32>),
        }
        match Either::deserialize(d)? {
            Either::Numbers(v) => Ok(v),
            Either::Text(text) => decode(&text).map_err(D::Error::custom),
        }
    }

    pub fn encode(v: &[f32]) -> String {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Vec<f32>, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("embedding is not valid base64: {e}"))?;
        if bytes.len() % 4 != 0 {
            return Err(format!(
                "embedding has {} bytes, not a whole number of f32",
                bytes.len()
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{file}:{line}: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    Incomplete { file: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Classify for FormatError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Io { .. } => exit::RUNTIME,
            _ => exit::BAD_INPUT,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Malformed { .. } => Some(
                "nothing after that line was imported; fix or regenerate the file (`vecdrill export`), then run the same command again".into(),
            ),
            Self::Incomplete { .. } => Some(
                "the export was cut short (interrupted, or copied before it finished): export again".into(),
            ),
            Self::Io { .. } => None,
        }
    }
}

/// Writes an export to a partial file beside PATH and renames it into place on
/// [`ExportWriter::finish`], so an interrupted export never leaves a file that looks complete.
pub struct ExportWriter {
    out: Box<dyn Write + Send>,
    path: PathBuf,
    /// The partial file: removed when dropped, unless persisted.
    partial: tempfile::TempPath,
    /// The same file, to sync it once written.
    file: File,
    line: Vec<u8>,
    collections: u64,
    records: u64,
    in_collection: Option<(String, u64)>,
}

impl ExportWriter {
    pub fn create(path: &Path, header: &Header) -> Result<Self, FormatError> {
        let io = |source| FormatError::Io {
            context: format!("cannot create a file beside {}", path.display()),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let (file, partial) = crate::atomic_file::create(path).map_err(io)?.into_parts();
        let buffered = BufWriter::with_capacity(1 << 20, file.try_clone().map_err(io)?);
        let out: Box<dyn Write + Send> = if path.extension().is_some_and(|e| e == "zst") {
            let encoder =
                zstd::Encoder::new(buffered, ZSTD_LEVEL).map_err(|source| FormatError::Io {
                    context: "zstd".into(),
                    source,
                })?;
            Box::new(encoder.auto_finish())
        } else {
            Box::new(buffered)
        };
        let mut writer = Self {
            out,
            path: path.to_path_buf(),
            partial,
            file,
            line: Vec::with_capacity(8 << 10),
            collections: 0,
            records: 0,
            in_collection: None,
        };
        writer.write(&Line::Header(header.clone()))?;
        Ok(writer)
    }

    pub fn begin_collection(&mut self, collection: &CollectionHeader) -> Result<(), FormatError> {
        self.end_collection()?;
        self.write(&Line::Collection(collection.clone()))?;
        self.collections += 1;
        self.in_collection = Some((collection.name.clone(), 0));
        Ok(())
    }

    pub fn record(&mut self, record: &Record) -> Result<(), FormatError> {
        let Some((_, count)) = self.in_collection.as_mut() else {
            unreachable!("records are written after begin_collection");
        };
        *count += 1;
        self.records += 1;
        /// A record line without copying the record: the `type` tag, then its fields.
        #[derive(Serialize)]
        struct Tagged<'a> {
            r#type: &'static str,
            #[serde(flatten)]
            record: &'a Record,
        }
        self.write(&Tagged {
            r#type: "record",
            record,
        })
    }

    fn end_collection(&mut self) -> Result<(), FormatError> {
        if let Some((name, records)) = self.in_collection.take() {
            self.write(&Line::CollectionEnd { name, records })?;
        }
        Ok(())
    }

    /// Write the end line, flush, and move the file into place. Returns (collections, records).
    pub fn finish(mut self) -> Result<(u64, u64), FormatError> {
        self.end_collection()?;
        let (collections, records) = (self.collections, self.records);
        self.write(&Line::End {
            collections,
            records,
        })?;
        let io = |context: String| move |source| FormatError::Io { context, source };
        self.out
            .flush()
            .map_err(io(format!("cannot write {}", self.partial.display())))?;
        drop(self.out);
        let moved = format!("cannot move {} into place", self.partial.display());
        crate::atomic_file::persist(&self.file, self.partial, &self.path).map_err(io(moved))?;
        Ok((collections, records))
    }

    /// Remove the partial file (after a failure).
    pub fn abandon(self) {
        drop(self.out);
        drop(self.partial);
    }

    /// One line, serialised into a buffer reused from line to line.
    fn write<T: Serialize>(&mut self, line: &T) -> Result<(), FormatError> {
        let mut text = std::mem::take(&mut self.line);
        text.clear();
        serde_json::to_writer(&mut text, line).expect("export lines serialise");
        text.push(b'\n');
        let result = self.put(&text);
        self.line = text;
        result
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.out.write_all(bytes).map_err(|source| FormatError::Io {
            context: format!("cannot write {}", self.partial.display()),
            source,
        })
    }
}

/// Reads an export line by line, checking its structure as it goes: a header first, records
/// only inside a collection, the dimension of every embedding, counts at every end line, and
/// an `end` line last (else [`FormatError::Incomplete`]).
pub struct ExportReader {
    input: Box<dyn BufRead + Send>,
    file: String,
    line_number: u64,
    buffer: String,
    pub header: Option<Header>,
    collection: Option<(CollectionHeader, u64)>,
    collections: u64,
    records: u64,
    ended: bool,
}

impl ExportReader {
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file_name = path.display().to_string();
        let io = |source| FormatError::Io {
            context: format!("cannot read {file_name}"),
            source,
        };
        let mut file = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
        let compressed = file.fill_buf().map_err(io)?.starts_with(&ZSTD_MAGIC);
        let input: Box<dyn BufRead + Send> = if compressed {
            let decoder = zstd::Decoder::with_buffer(file).map_err(io)?;
            Box::new(BufReader::with_capacity(1 << 20, decoder))
        } else {
            Box::new(file)
        };
        let mut reader = Self {
            input,
            file: file_name,
            line_number: 0,
            buffer: String::new(),
            header: None,
            collection: None,
            collections: 0,
            records: 0,
            ended: false,
        };
        match reader.next_line()? {
            Some(Line::Header(header)) => {
                if header.format != FORMAT_NAME {
                    return Err(reader
                        .malformed(format!("format {:?} is not {FORMAT_NAME:?}", header.format)));
                }
                if header.version > FORMAT_VERSION {
                    return Err(reader.malformed(format!(
                        "format version {} is newer than this vecdrill reads ({FORMAT_VERSION}); upgrade vecdrill",
                        header.version
                    )));
                }
                reader.header = Some(header);
                Ok(reader)
            }
            Some(_) => Err(reader.malformed("the first line must be the export header".into())),
            None => Err(FormatError::Incomplete {
                file: reader.file.clone(),
                message: "the file is empty".into(),
            }),
        }
    }

    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next item: a collection header, a record (with its collection), or `None` at the
    /// end of a complete file.
    pub fn next_item(&mut self) -> Result<Option<Item>, FormatError> {
        loop {
            let Some(line) = self.next_line()? else {
                if self.ended {
                    return Ok(None);
                }
                return Err(FormatError::Incomplete {
                    file: self.file.clone(),
                    message: format!(
                        "ends at line {} without its \"end\" line (the export is incomplete)",
                        self.line_number
                    ),
                });
            };
            if self.ended {
                return Err(self.malformed("content after the \"end\" line".into()));
            }
            match line {
                Line::Header(_) => return Err(self.malformed("a second header".into())),
                Line::Collection(collection) => {
                    if let Some((open, _)) = &self.collection {
                        return Err(self.malformed(format!(
                            "collection {:?} begins before {:?} ended",
                            collection.name, open.name
                        )));
                    }
                    self.collections += 1;
                    self.collection = Some((collection.clone(), 0));
                    return Ok(Some(Item::Collection(collection)));
                }
                Line::Record(record) => {
                    let Some((collection, seen)) = self.collection.as_mut() else {
                        return Err(self.malformed("a record outside any collection".into()));
                    };
                    if let Some(dimension) = collection.dimension {
                        if record.embedding.len() as u64 != dimension {
                            let message = format!(
                                "record {:?} has a {}-d embedding; collection {:?} is {dimension}-d",
                                record.id,
                                record.embedding.len(),
                                collection.name
                            );
                            return Err(self.malformed(message));
                        }
                    }
                    *seen += 1;
                    self.records += 1;
                    return Ok(Some(Item::Record(record)));
                }
                Line::CollectionEnd { name, records } => {
                    let Some((collection, seen)) = self.collection.take() else {
                        return Err(self.malformed(format!("end of {name:?}, which never began")));
                    };
                    if collection.name != name || seen != records {
                        return Err(self.malformed(format!(
                            "end of {name:?} with {records} records, but {:?} has {seen} records",
                            collection.name
                        )));
                    }
                    return Ok(Some(Item::CollectionEnd { name, records }));
                }
                Line::End {
                    collections,
                    records,
                } => {
                    if let Some((open, _)) = &self.collection {
                        return Err(self.malformed(format!(
                            "the file ends inside collection {:?}",
                            open.name
                        )));
                    }
                    if (collections, records) != (self.collections, self.records) {
                        return Err(self.malformed(format!(
                            "the end line counts {collections} collections and {records} records; the file holds {} and {}",
                            self.collections, self.records
                        )));
                    }
                    self.ended = true;
                }
            }
        }
    }

    fn next_line(&mut self) -> Result<Option<Line>, FormatError> {
        loop {
            self.buffer.clear();
            let read =
                self.input
                    .read_line(&mut self.buffer)
                    .map_err(|source| FormatError::Io {
                        context: format!(
                            "cannot read {} after line {}",
                            self.file, self.line_number
                        ),
                        source,
                    })?;
            if read == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            let text = self.buffer.trim();
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str(text)
                .map(Some)
                .map_err(|e| self.malformed(describe_json_error(&e)));
        }
    }

    fn malformed(&self, message: String) -> FormatError {
        FormatError::Malformed {
            file: self.file.clone(),
            line: self.line_number,
            message,
        }
    }
}

/// What [`ExportReader::next_item`] yields.
#[derive(Debug)]
pub enum Item {
    Collection(CollectionHeader),
    Record(Record),
    CollectionEnd { name: String, records: u64 },
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn describe_json_error(err: &serde_json::Error) -> String {
    format!("not a valid export line: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &Path) {
        let mut writer =
            ExportWriter::create(path, &Header::new(serde_json::json!({"kind": "test"}))).unwrap();
        writer
            .begin_collection(&CollectionHeader {
                name: "docs".into(),
                id: None,
                configuration: Some(serde_json::json!({"hnsw": {"space": "cosine"}})),
                metadata: None,
                dimension: Some(3),
                count: 2,
            })
            .unwrap();
        for (id, doc) in [("a", Some("alpha \"quoted\"\n")), ("b", None)] {
            writer
                .record(&Record {
                    id: id.into(),
                    embedding: vec![0.1, -2.5e-8, f32::MAX],
                    document: doc.map(Into::into),
                    metadata: Some(
                        serde_json::from_str(r#"{"k":1,"f":1.0,"b":true,"x":90.28571428571429}"#)
                            .unwrap(),
                    ),
                    uri: None,
                })
                .unwrap();
        }
        writer.finish().unwrap();
    }

    fn read_all(path: &Path) -> Result<Vec<Item>, FormatError> {
        let mut reader = ExportReader::open(path)?;
        let mut items = Vec::new();
        while let Some(item) = reader.next_item()? {
            items.push(item);
        }
        Ok(items)
    }

    #[test]
    fn records_round_trip_exactly_plain_and_compressed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["out.jsonl", "out.jsonl.zst"] {
            let path = dir.path().join(name);
            sample(&path);
            let items = read_all(&path).unwrap();
            assert_eq!(items.len(), 4, "collection, two records, collection end");
            let Item::Record(record) = &items[1] else {
                panic!("{items:?}")
            };
            assert_eq!(record.embedding, vec![0.1, -2.5e-8, f32::MAX]);
            assert_eq!(record.document.as_deref(), Some("alpha \"quoted\"\n"));
            assert_eq!(
                record.metadata.as_ref().unwrap()["f"],
                serde_json::json!(1.0)
            );
            // Floats read back exactly (without serde_json's float_roundtrip this one came
            // back as …428).
            assert_eq!(
                record.metadata.as_ref().unwrap()["x"].as_f64(),
                Some(90.285_714_285_714_29)
            );
        }
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        assert!(text.contains("90.28571428571429"), "{text}");
        // Nothing but the two exports is left: no partial file under any name.
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["out.jsonl", "out.jsonl.zst"]);
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        sample(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[3] = r#"{"type":"record","id":"b","embedding":[1.0,2.0]}"#;
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = read_all(&path).unwrap_err().to_string();
        assert!(
            err.contains("out.jsonl:4: record \"b\" has a 2-d embedding"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_file_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        sample(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let cut: Vec<&str> = text.lines().take(3).collect();
        std::fs::write(&path, cut.join("\n")).unwrap();
        assert!(matches!(
            read_all(&path),
            Err(FormatError::Incomplete { .. })
        ));
    }
}
