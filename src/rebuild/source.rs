//! Where source documents come from: a JSONL or CSV file, an SQLite table or query, or
//! PostgreSQL through a connection URL. Every source yields batches of [`Document`]s, so a
//! source of any size is read with bounded memory.
//!
//! Field mapping: `id_field` and `text_field` name the id and text; the metadata is the
//! `metadata_fields` listed, or every other field when none are. A JSONL `metadata` object
//! is merged in. Metadata values Chroma cannot store (objects) become JSON text; nulls are
//! left out.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use futures::StreamExt;
use serde_json::{Map, Value};

use crate::redaction::redact_url;

/// One document to embed and store.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone)]
pub struct FieldMap {
    pub id_field: String,
    pub text_field: String,
    /// Empty: every field but the id and the text.
    pub metadata_fields: Vec<String>,
}

impl Default for FieldMap {
    fn default() -> Self {
        Self {
            id_field: "id".into(),
            text_field: "text".into(),
            metadata_fields: Vec::new(),
        }
    }
}

/// A source as named on the command line or in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Jsonl(PathBuf),
    Csv(PathBuf),
    /// `sqlite:PATH` with `--table` or `--query`.
    Sqlite {
        path: PathBuf,
        query: String,
    },
    /// `postgres://...` or `postgresql://...` with `--table` or `--query`.
    Postgres {
        url: String,
        query: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Spec(String),
    #[error("{source_name}:{line}: {message}")]
    Malformed {
        source_name: String,
        line: u64,
        message: String,
    },
    #[error("cannot read {source_name}: {message}")]
    Read {
        source_name: String,
        message: String,
    },
}

impl SourceSpec {
    /// `FILE.jsonl`/`.ndjson`, `FILE.csv`, `sqlite:PATH` or `postgres://...`; SQL sources
    /// need `table` or `query`.
    pub fn parse(
        text: &str,
        table: Option<&str>,
        query: Option<&str>,
    ) -> Result<Self, SourceError> {
        let sql = || -> Result<String, SourceError> {
            match (table, query) {
                (_, Some(q)) => Ok(q.to_string()),
                (Some(t), None) => Ok(format!("SELECT * FROM {}", quote_identifier(t))),
                (None, None) => Err(SourceError::Spec(format!(
                    "{text} is a database: name the documents with --table TABLE or --query SQL"
                ))),
            }
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: text.to_string(),
                query: sql()?,
            });
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite {
                path: PathBuf::from(path.trim_start_matches("//")),
                query: sql()?,
            });
        }
        let path = PathBuf::from(text);
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => Ok(Self::Jsonl(path)),
            Some("csv") => Ok(Self::Csv(path)),
            _ => Err(SourceError::Spec(format!(
                "cannot tell what {text} is: use a .jsonl or .csv file, sqlite:PATH, or a postgres:// URL"
            ))),
        }
    }

    /// How the source is named in messages: never a password.
    pub fn display_name(&self) -> String {
        match self {
            Self::Jsonl(p) | Self::Csv(p) => p.display().to_string(),
            Self::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
            Self::Postgres { url, .. } => redact_url(url),
        }
    }
}

fn quote_identifier(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Reads batches of documents from any [`SourceSpec`].
pub struct DocumentReader {
    inner: Inner,
    fields: FieldMap,
    name: String,
    /// Rows read so far (file line or row number, for messages).
    position: u64,
}

enum Inner {
    Jsonl(BufReader<File>),
    Csv(Box<csv::Reader<File>>, csv::StringRecord),
    /// Rows are read on a blocking thread and handed over a channel.
    Channel(tokio::sync::mpsc::Receiver<Result<Map<String, Value>, String>>),
}

impl DocumentReader {
    pub async fn open(spec: &SourceSpec, fields: FieldMap) -> Result<Self, SourceError> {
        let name = spec.display_name();
        let read_err = |message: String| SourceError::Read {
            source_name: name.clone(),
            message,
        };
        let inner = match spec {
            SourceSpec::Jsonl(path) => Inner::Jsonl(BufReader::new(
                File::open(path).map_err(|e| read_err(e.to_string()))?,
            )),
            SourceSpec::Csv(path) => {
                let mut reader =
                    csv::Reader::from_path(path).map_err(|e| read_err(e.to_string()))?;
                let headers = reader
                    .headers()
                    .map_err(|e| read_err(e.to_string()))?
                    .clone();
                Inner::Csv(Box::new(reader), headers)
            }
            SourceSpec::Sqlite { path, query } => {
                Inner::Channel(sqlite_rows(path.clone(), query.clone()))
            }
            SourceSpec::Postgres { url, query } => {
                Inner::Channel(postgres_rows(url, query).await.map_err(read_err)?)
            }
        };
        Ok(Self {
            inner,
            fields,
            name,
            position: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `n` documents; empty at the end.
    pub async fn next_batch(&mut self, n: usize) -> Result<Vec<Document>, SourceError> {
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n {
            let Some(row) = self.next_row().await? else {
                break;
            };
            batch.push(self.document(row)?);
        }
        Ok(batch)
    }

    async fn next_row(&mut self) -> Result<Option<Map<String, Value>>, SourceError> {
        loop {
            self.position += 1;
            let position = self.position;
            let malformed = |message: String| SourceError::Malformed {
                source_name: self.name.clone(),
                line: position,
                message,
            };
            match &mut self.inner {
                Inner::Jsonl(reader) => {
                    let mut line = String::new();
                    let read = reader
                        .read_line(&mut line)
                        .map_err(|e| malformed(e.to_string()))?;
                    if read == 0 {
                        return Ok(None);
                    }
                    if line.trim().is_empty() {
                        continue;
                    }
                    return match serde_json::from_str::<Value>(&line) {
                        Ok(Value::Object(map)) => Ok(Some(map)),
                        Ok(_) => Err(malformed("not a JSON object".into())),
                        Err(e) => Err(malformed(format!("not valid JSON: {e}"))),
                    };
                }
                Inner::Csv(reader, headers) => {
                    let mut record = csv::StringRecord::new();
                    // Line 1 is the header row.
                    let read =
                        reader
                            .read_record(&mut record)
                            .map_err(|e| SourceError::Malformed {
                                source_name: self.name.clone(),
                                line: position + 1,
                                message: e.to_string(),
                            })?;
                    if !read {
                        return Ok(None);
                    }
                    return Ok(Some(
                        headers
                            .iter()
                            .zip(record.iter())
                            .map(|(k, v)| (k.to_string(), infer(v)))
                            .collect(),
                    ));
                }
                Inner::Channel(rows) => {
                    return match rows.recv().await {
                        None => Ok(None),
                        Some(Ok(row)) => Ok(Some(row)),
                        Some(Err(message)) => Err(SourceError::Read {
                            source_name: self.name.clone(),
                            message,
                        }),
                    };
                }
            }
        }
    }

    fn document(&self, mut row: Map<String, Value>) -> Result<Document, SourceError> {
        let line = if matches!(self.inner, Inner::Csv(..)) {
            self.position + 1
        } else {
            self.position
        };
        let malformed = |message: String| SourceError::Malformed {
            source_name: self.name.clone(),
            line,
            message,
        };
        let id = match row.remove(&self.fields.id_field) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(malformed(format!(
                    "no {:?} field (the document id; choose another with --id-field)",
                    self.fields.id_field
                )))
            }
        };
        let text = match row.remove(&self.fields.text_field) {
            Some(Value::String(s)) => s,
            _ => {
                return Err(malformed(format!(
                    "document {id:?} has no text in {:?} (choose another field with --text-field)",
                    self.fields.text_field
                )))
            }
        };
        let mut metadata = Map::new();
        if let Some(Value::Object(nested)) = row.remove("metadata") {
            metadata.extend(nested);
        }
        if self.fields.metadata_fields.is_empty() {
            metadata.extend(row);
        } else {
            for field in &self.fields.metadata_fields {
                if let Some(value) = row.remove(field) {
                    metadata.insert(field.clone(), value);
                }
            }
        }
        let metadata: Map<String, Value> = metadata
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::Object(_) => (k, Value::String(v.to_string())),
                other => (k, other),
            })
            .collect();
        Ok(Document {
            id,
            text,
            metadata: (!metadata.is_empty()).then_some(metadata),
        })
    }
}

/// CSV cells are text: numbers and booleans are stored as such so filters work on them.
fn infer(cell: &str) -> Value {
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = cell.parse::<f64>() {
        if f.is_finite() {
            return Value::from(f);
        }
    }
    match cell {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "" => Value::Null,
        _ => Value::String(cell.to_string()),
    }
}

const ROWS_BUFFERED: usize = 1024;

fn sqlite_rows(
    path: PathBuf,
    query: String,
) -> tokio::sync::mpsc::Receiver<Result<Map<String, Value>, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(ROWS_BUFFERED);
    tokio::task::spawn_blocking(move || {
        let run = || -> rusqlite::Result<()> {
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut stmt = conn.prepare(&query)?;
            let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let mut map = Map::new();
                for (i, name) in names.iter().enumerate() {
                    use rusqlite::types::ValueRef;
                    let value = match row.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::from(n),
                        ValueRef::Real(f) => Value::from(f),
                        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(_) => continue,
                    };
                    map.insert(name.clone(), value);
                }
                if tx.blocking_send(Ok(map)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.blocking_send(Err(e.to_string()));
        }
    });
    rx
}

async fn postgres_rows(
    url: &str,
    query: &str,
) -> Result<tokio::sync::mpsc::Receiver<Result<Map<String, Value>, String>>, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    let (tx, rx) = tokio::sync::mpsc::channel(ROWS_BUFFERED);
    let query = query.to_string();
    tokio::spawn(async move {
        let rows = match client
            .query_raw(
                query.as_str(),
                std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.send(Err(e.to_string())).await;
                return;
            }
        };
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.next().await {
            let item = row.map(|row| postgres_row(&row)).map_err(|e| e.to_string());
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// A PostgreSQL row as JSON: text, integers, floats and booleans as such, JSON as its text,
/// anything else through its text form when it has one.
fn postgres_row(row: &tokio_postgres::Row) -> Map<String, Value> {
    use tokio_postgres::types::Type;
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .ok()
                .flatten()
                .map(Value::from)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .ok()
                .flatten()
                .map(Value::from)
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .ok()
                .flatten()
                .map(Value::from)
        } else if *ty == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)
                .ok()
                .flatten()
                .map(|f| Value::from(f as f64))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)
                .ok()
                .flatten()
                .map(Value::from)
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .ok()
                .flatten()
                .map(Value::Bool)
        } else {
            row.try_get::<_, Option<String>>(i)
                .ok()
                .flatten()
                .map(Value::String)
        };
        map.insert(column.name().to_string(), value.unwrap_or(Value::Null));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_recognised_and_passwords_never_shown() {
        assert_eq!(
            SourceSpec::parse("docs.jsonl", None, None).unwrap(),
            SourceSpec::Jsonl("docs.jsonl".into())
        );
        let spec = SourceSpec::parse("sqlite:/srv/app.db", Some("docs"), None).unwrap();
        assert_eq!(
            spec,
            SourceSpec::Sqlite {
                path: "/srv/app.db".into(),
                query: "SELECT * FROM \"docs\"".into()
            }
        );
        let spec =
            SourceSpec::parse("postgres://app:hunter2@db/app", None, Some("SELECT 1")).unwrap();
        assert_eq!(spec.display_name(), "postgres://app:***@db/app");
        assert!(SourceSpec::parse("sqlite:/x.db", None, None).is_err());
        assert!(SourceSpec::parse("docs.parquet", None, None).is_err());
    }

    #[tokio::test]
    async fn jsonl_and_csv_map_fields_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("d.jsonl");
        std::fs::write(
            &jsonl,
            "{\"id\":\"a\",\"text\":\"alpha\",\"lang\":\"en\",\"metadata\":{\"n\":1},\"x\":null}\n\n{\"id\":2,\"text\":\"beta\"}\n{\"text\":\"no id\"}\n",
        )
        .unwrap();
        let mut reader = DocumentReader::open(&SourceSpec::Jsonl(jsonl), FieldMap::default())
            .await
            .unwrap();
        let batch = reader.next_batch(2).await.unwrap();
        assert_eq!(batch[0].id, "a");
        assert_eq!(
            batch[0].metadata,
            Some(serde_json::from_str(r#"{"lang":"en","n":1}"#).unwrap())
        );
        assert_eq!(
            (batch[1].id.as_str(), batch[1].metadata.as_ref()),
            ("2", None)
        );
        let err = reader.next_batch(2).await.unwrap_err().to_string();
        assert!(
            err.ends_with(
                "d.jsonl:4: no \"id\" field (the document id; choose another with --id-field)"
            ),
            "{err}"
        );

        let csv = dir.path().join("d.csv");
        std::fs::write(
            &csv,
            "key,body,year,draft\nk1,\"hello, world\",2024,false\n",
        )
        .unwrap();
        let fields = FieldMap {
            id_field: "key".into(),
            text_field: "body".into(),
            metadata_fields: vec!["year".into()],
        };
        let mut reader = DocumentReader::open(&SourceSpec::Csv(csv), fields)
            .await
            .unwrap();
        let batch = reader.next_batch(10).await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].text, "hello, world");
        assert_eq!(
            batch[0].metadata,
            Some(serde_json::from_str(r#"{"year":2024}"#).unwrap())
        );
    }
}
