//! Chroma's write-ahead log, `embeddings_queue` in `chroma.sqlite3`, read and purged by a
//! follower while the server runs, and written back into a restored directory so that the
//! server replays it on start.
//!
//! Facts this relies on (read in Chroma 0.5.23 to 1.5.9):
//! - every add (0), update (1), upsert (2) and delete (3) is one row: `seq_id` (the table's
//!   integer rowid: the next is the largest plus one, so it restarts at 1 once the table is
//!   empty), `created_at` (UTC to the second, `YYYY-MM-DD HH:MM:SS`), `topic`
//!   (`persistent://TENANT/DATABASE/COLLECTION-ID`), the record `id`, its `vector`, `encoding`
//!   and `metadata` (JSON holding the document as `chroma:document`);
//! - each segment's watermark (`max_seq_id`) is the last row it has applied; on start every
//!   row past a segment's watermark is replayed into it, on the collection's first use;
//! - Chroma purges rows every segment has applied unless `embeddings_queue_config` says
//!   `"automatically_purge": false` (0.5.23 onward; 1.x reads it on its next write, 0.5-0.6
//!   when it starts);
//! - creating or deleting a collection writes nothing to the log (deleting removes its
//!   rows): the catalog tables say what exists.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema::SQLITE_FILE;

/// One row of `embeddings_queue`, exactly as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRow {
    pub seq_id: i64,
    /// As Chroma wrote it: UTC, to the second.
    pub created_at: String,
    pub operation: i64,
    pub topic: String,
    pub id: String,
    #[serde(with = "optional_base64")]
    pub vector: Option<Vec<u8>>,
    pub encoding: Option<String>,
    pub metadata: Option<String>,
}

impl LogRow {
    /// When the row was logged (its second), or why its time cannot be read.
    pub fn time(&self) -> Result<DateTime<Utc>, String> {
        parse_logged_time(&self.created_at)
    }

    /// The row's own checks: what a forged one must not get past into a restored database.
    pub fn validate(&self) -> Result<(), String> {
        if self.seq_id < 1 {
            return Err(format!("row seq_id {} is not a log position", self.seq_id));
        }
        self.time()?;
        if !(0..=3).contains(&self.operation) {
            return Err(format!(
                "row {} has operation {}, not one of Chroma's 0-3",
                self.seq_id, self.operation
            ));
        }
        if self.topic.len() > 1024 || self.id.len() > 64 << 10 {
            return Err(format!("row {} has an oversized topic or id", self.seq_id));
        }
        Ok(())
    }
}

/// One row of a log named by what identifies it: the newest row of a copy (where the copy
/// stands in the log), or the last row a follower shipped. Positions are reused once the rows
/// after one are deleted, so a position alone does not name a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    pub seq_id: i64,
    pub created_at: String,
    /// Absent in manifests written before vecdrill recorded them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl LogHead {
    pub fn time(&self) -> Result<DateTime<Utc>, String> {
        parse_logged_time(&self.created_at)
    }

    /// Whether `other` is the same row, as far as both say.
    pub fn same_row(&self, other: &LogHead) -> bool {
        let agree = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.seq_id == other.seq_id
            && self.created_at == other.created_at
            && agree(&self.topic, &other.topic)
            && agree(&self.id, &other.id)
    }
}

impl From<&LogRow> for LogHead {
    fn from(row: &LogRow) -> Self {
        Self {
            seq_id: row.seq_id,
            created_at: row.created_at.clone(),
            topic: Some(row.topic.clone()),
            id: Some(row.id.clone()),
        }
    }
}

/// A `created_at` as SQLite's `CURRENT_TIMESTAMP` writes it (UTC).
pub fn parse_logged_time(text: &str) -> Result<DateTime<Utc>, String> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| format!("log time {text:?} is not YYYY-MM-DD HH:MM:SS"))
}

/// The catalog tables a restore needs to recreate collections the log writes to: every row,
/// column by column, in a shape that does not depend on the Chroma version.
pub const CATALOG_TABLES: [&str; 6] = [
    "tenants",
    "databases",
    "collections",
    "collection_metadata",
    "segments",
    "segment_metadata",
];

/// The catalog: table name to its rows (column to value), in rowid order.
pub type Catalog = BTreeMap<String, Vec<BTreeMap<String, Value>>>;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot read the log in {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The live database of a running server, opened for short transactions: a busy server
/// holds its lock for milliseconds, so waiting for it is better than failing.
pub struct LiveLog {
    conn: Connection,
    path: String,
}

impl LiveLog {
    pub fn open(dir: &Path) -> Result<Self, WalError> {
        let file = dir.join(SQLITE_FILE);
        let path = file.display().to_string();
        if !file.is_file() {
            return Err(WalError::Invalid(format!(
                "{} is not a Chroma persistent directory: no {SQLITE_FILE}",
                dir.display()
            )));
        }
        let conn = Connection::open_with_flags(
            &file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| WalError::Sqlite {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|source| WalError::Sqlite {
                path: path.clone(),
                source,
            })?;
        Ok(Self { conn, path })
    }

    fn err(&self, source: rusqlite::Error) -> WalError {
        WalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Whether Chroma purges its own log: `None` where this Chroma has no switch (before
    /// 0.5.23), which a follower cannot take over from.
    pub fn purge_switch(&self) -> Result<Option<bool>, WalError> {
        let has_table: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'embeddings_queue_config'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if !has_table {
            return Ok(None);
        }
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT config_json_str FROM embeddings_queue_config WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        // No row yet: Chroma's default, which purges.
        let Some(text) = text else {
            return Ok(Some(true));
        };
        let config: Value = serde_json::from_str(&text).map_err(|e| {
            WalError::Invalid(format!(
                "embeddings_queue_config in {} is not JSON ({e}): {text:?}",
                self.path
            ))
        })?;
        Ok(Some(
            config
                .get("automatically_purge")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        ))
    }

    /// Set Chroma's purge switch, keeping the rest of its configuration as it is.
    pub fn set_purge_switch(&self, purge: bool) -> Result<(), WalError> {
        set_purge_switch(&self.conn, purge).map_err(|e| self.err(e))
    }

    /// Up to `limit` rows past `after`, oldest first, with the catalog as it stood when they
    /// were read: one short read transaction, so that the catalog covers every row read.
    pub fn read_after(
        &mut self,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<LogRow>, Catalog, Option<LogHead>), WalError> {
        let path = self.path.clone();
        let err = |source| WalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let rows = rows_after(&tx, after, limit).map_err(err)?;
        let catalog = catalog(&tx).map_err(err)?;
        let head = head(&tx).map_err(err)?;
        tx.finish().map_err(err)?;
        Ok((rows, catalog, head))
    }

    /// The row at position `seq_id`, when there is one.
    pub fn row_at(&self, seq_id: i64) -> Result<Option<LogHead>, WalError> {
        self.conn
            .query_row(
                "SELECT seq_id, created_at, topic, id FROM embeddings_queue WHERE seq_id = ?1",
                [seq_id],
                head_of,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The smallest position still in the log, when it holds any row.
    pub fn oldest(&self) -> Result<Option<i64>, WalError> {
        self.conn
            .query_row("SELECT MIN(seq_id) FROM embeddings_queue", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Purge what Chroma would and what has been shipped before `shipped` (the last row
    /// shipped stays: the next pass checks it is still the same row): rows every segment has
    /// applied, and only when every segment has a watermark (one that has none has applied
    /// nothing yet). The newest row always stays, so positions are never reused.
    /// Returns the number of rows deleted.
    pub fn purge(&self, shipped: i64) -> Result<usize, WalError> {
        let applied_by_all: Option<i64> = self
            .conn
            .query_row(
                "SELECT CASE WHEN (SELECT COUNT(*) FROM segments s
                                   WHERE NOT EXISTS (SELECT 1 FROM max_seq_id m WHERE m.segment_id = s.id)) > 0
                        THEN NULL ELSE (SELECT MIN(seq_id) FROM max_seq_id
                                        WHERE segment_id IN (SELECT id FROM segments)) END",
                [],
                |r| match r.get_ref(0)? {
                    ValueRef::Null => Ok(None),
                    value => Ok(Some(super::schema::seq_id(value)?)),
                },
            )
            .map_err(|e| self.err(e))?;
        let Some(applied) = applied_by_all else {
            return Ok(0);
        };
        // Below Chroma's applied position and the last shipped row, never the newest.
        let below = applied.min(shipped);
        self.conn
            .execute(
                "DELETE FROM embeddings_queue WHERE seq_id < ?1
                 AND seq_id < (SELECT MAX(seq_id) FROM embeddings_queue)",
                [below],
            )
            .map_err(|e| self.err(e))
    }
}

/// See [`LiveLog::set_purge_switch`].
fn set_purge_switch(conn: &Connection, purge: bool) -> rusqlite::Result<()> {
    let current: Option<String> = conn
        .query_row(
            "SELECT config_json_str FROM embeddings_queue_config WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let mut config = current
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, Value>>(&t).ok())
        .unwrap_or_else(|| {
            let mut map = serde_json::Map::new();
            map.insert(
                "_type".into(),
                Value::String("EmbeddingsQueueConfigurationInternal".into()),
            );
            map
        });
    config.insert("automatically_purge".into(), Value::Bool(purge));
    let text = Value::Object(config).to_string();
    conn.execute(
        "INSERT INTO embeddings_queue_config (id, config_json_str) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET config_json_str = excluded.config_json_str",
        [&text],
    )?;
    Ok(())
}

fn rows_after(conn: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<LogRow>> {
    let mut stmt = conn.prepare(
        "SELECT seq_id, created_at, operation, topic, id, vector, encoding, metadata
         FROM embeddings_queue WHERE seq_id > ?1 ORDER BY seq_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![after, limit as i64], |r| {
        Ok(LogRow {
            seq_id: r.get(0)?,
            created_at: r.get(1)?,
            operation: r.get(2)?,
            topic: r.get(3)?,
            id: r.get(4)?,
            vector: r.get(5)?,
            encoding: r.get(6)?,
            metadata: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// The newest row of the log in `conn`, when it holds any.
pub fn head(conn: &Connection) -> rusqlite::Result<Option<LogHead>> {
    conn.query_row(
        "SELECT seq_id, created_at, topic, id FROM embeddings_queue ORDER BY seq_id DESC LIMIT 1",
        [],
        head_of,
    )
    .optional()
}

fn head_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogHead> {
    Ok(LogHead {
        seq_id: r.get(0)?,
        created_at: r.get(1)?,
        topic: r.get(2)?,
        id: r.get(3)?,
    })
}

/// Every row of the catalog tables in `conn` (a table this Chroma lacks is left out).
pub fn catalog(conn: &Connection) -> rusqlite::Result<Catalog> {
    let mut catalog = Catalog::new();
    for table in CATALOG_TABLES {
        let exists: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            continue;
        }
        // The table name is one of ours, never read from anywhere.
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let rows = stmt.query_map([], |r| {
            let mut row = BTreeMap::new();
            for (i, column) in columns.iter().enumerate() {
                row.insert(column.clone(), json_of(r.get_ref(i)?));
            }
            Ok(row)
        })?;
        catalog.insert(table.to_string(), rows.collect::<Result<_, _>>()?);
    }
    Ok(catalog)
}

/// An SQLite value as JSON: a blob as `{"blob": BASE64}` (no catalog column holds one today).
fn json_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::from(n),
        ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => serde_json::json!({
            "blob": base64::engine::general_purpose::STANDARD.encode(b)
        }),
    }
}

/// JSON back as an SQLite value; `None` for a shape [`json_of`] never writes.
fn sql_of(value: &Value) -> Option<SqlValue> {
    Some(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64()?),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(map) => {
            let text = map.get("blob")?.as_str()?;
            SqlValue::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?,
            )
        }
        Value::Array(_) => return None,
    })
}

/// A restored copy's database, written to before the server first starts on it.
pub struct StagedLog {
    conn: Connection,
    path: String,
}

impl StagedLog {
    pub fn open(dir: &Path) -> Result<Self, WalError> {
        let file = dir.join(SQLITE_FILE);
        let path = file.display().to_string();
        let conn = Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
            |source| WalError::Sqlite {
                path: path.clone(),
                source,
            },
        )?;
        let staged = Self { conn, path };
        // As Chroma writes it: without foreign keys (its `segments` table names a table that
        // does not exist).
        staged
            .conn
            .pragma_update(None, "foreign_keys", false)
            .map_err(|e| staged.err(e))?;
        Ok(staged)
    }

    fn err(&self, source: rusqlite::Error) -> WalError {
        WalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Give the copy Chroma's purge switch as `purge` (a base a follower took has it off).
    pub fn set_purge_switch(&self, purge: bool) -> Result<(), WalError> {
        set_purge_switch(&self.conn, purge).map_err(|e| self.err(e))
    }

    /// The newest row of the copy's log.
    pub fn head(&self) -> Result<Option<LogHead>, WalError> {
        head(&self.conn).map_err(|e| self.err(e))
    }

    /// Append `rows` (each checked, each past the copy's newest) to the copy's log, in one
    /// transaction.
    pub fn append(&mut self, rows: &[LogRow]) -> Result<(), WalError> {
        let path = self.path.clone();
        let err = |source| WalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO embeddings_queue
                     (seq_id, created_at, operation, topic, id, vector, encoding, metadata)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for row in rows {
                row.validate().map_err(WalError::Invalid)?;
                insert
                    .execute(rusqlite::params![
                        row.seq_id,
                        row.created_at,
                        row.operation,
                        row.topic,
                        row.id,
                        row.vector,
                        row.encoding,
                        row.metadata
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Make the copy's catalog say what `wanted` says of its collections: those `wanted` has
    /// and the copy lacks are created (their collection, metadata, segment and segment
    /// metadata rows), those both have take `wanted`'s name and metadata. Returns what was
    /// done, and the collections in the copy that `wanted` does not have (deleted after the
    /// copy was taken), which the caller decides about.
    pub fn reconcile(&mut self, wanted: &Catalog) -> Result<Reconciled, WalError> {
        let path = self.path.clone();
        let err = |source| WalError::Sqlite {
            path: path.clone(),
            source,
        };
        let have = catalog(&self.conn).map_err(err)?;
        let (have_ids, wanted_ids) = (collection_names(&have), collection_names(wanted));
        let mut reconciled = Reconciled::default();
        let tx = self.conn.transaction().map_err(err)?;
        for (id, name) in &wanted_ids {
            if !have_ids.contains_key(id) {
                create_collection(&tx, &have, wanted, id)?;
                reconciled.created.push(name.clone());
                continue;
            }
            // Renamed or its metadata changed: the wanted rows replace the copy's.
            for (table, key) in [
                ("collections", "id"),
                ("collection_metadata", "collection_id"),
            ] {
                let (had, wants) = (owned(&have, table, key, id), owned(wanted, table, key, id));
                if had == wants {
                    continue;
                }
                tx.execute(
                    &format!("DELETE FROM \"{table}\" WHERE \"{key}\" = ?1"),
                    [id],
                )
                .map_err(err)?;
                for row in wants {
                    insert(&tx, table, row)?;
                }
                if reconciled.changed.last() != Some(name) {
                    reconciled.changed.push(name.clone());
                }
            }
        }
        reconciled.deleted = have_ids
            .iter()
            .filter(|(id, _)| !wanted_ids.contains_key(*id))
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect();
        tx.commit().map_err(err)?;
        Ok(reconciled)
    }

    /// Create, from `catalog`, those of the collections `ids` the copy lacks: for rows logged
    /// to a collection created after the last catalog read before the restored moment.
    /// Returns the names of those created; an id `catalog` does not have is left out.
    pub fn create_missing(
        &mut self,
        catalog_rows: &Catalog,
        ids: &[String],
    ) -> Result<Vec<String>, WalError> {
        let path = self.path.clone();
        let err = |source| WalError::Sqlite {
            path: path.clone(),
            source,
        };
        let have = catalog(&self.conn).map_err(err)?;
        let (have_ids, known) = (collection_names(&have), collection_names(catalog_rows));
        let tx = self.conn.transaction().map_err(err)?;
        let mut created = Vec::new();
        for id in ids {
            if let (false, Some(name)) = (have_ids.contains_key(id), known.get(id)) {
                create_collection(&tx, &have, catalog_rows, id)?;
                created.push(name.clone());
            }
        }
        tx.commit().map_err(err)?;
        Ok(created)
    }

    /// Remove the rows past `after` written to collection `id` (dropped before the restored
    /// moment); returns how many.
    pub fn remove_rows_of(&self, id: &str, after: i64) -> Result<u64, WalError> {
        self.conn
            .execute(
                "DELETE FROM embeddings_queue WHERE seq_id > ?1 AND substr(topic, -length(?2) - 1) = '/' || ?2",
                rusqlite::params![after, id],
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Drop collection `id` from the copy as Chroma drops one: its log rows, its metadata
    /// segment's records (with their metadata and full-text rows), its segments' watermarks and
    /// metadata, its segments, its metadata and itself. Returns its vector segments' ids,
    /// whose directories the caller removes.
    pub fn drop_collection(&mut self, id: &str) -> Result<Vec<String>, WalError> {
        let path = self.path.clone();
        let err = |source| WalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let has_table = |name: &str| -> rusqlite::Result<bool> {
            tx.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
        };
        let segments: Vec<(String, String)> = tx
            .prepare("SELECT id, scope FROM segments WHERE collection = ?1")
            .and_then(|mut stmt| {
                stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(err)?;
        tx.execute(
            "DELETE FROM embeddings_queue WHERE substr(topic, -length(?1) - 1) = '/' || ?1",
            [id],
        )
        .map_err(err)?;
        for (segment, _) in &segments {
            let records = "SELECT id FROM embeddings WHERE segment_id = ?1";
            for (table, key) in [
                ("embedding_metadata", "id"),
                ("embedding_metadata_array", "id"),
                ("embedding_fulltext_search", "rowid"),
            ] {
                if has_table(table).map_err(err)? {
                    tx.execute(
                        &format!("DELETE FROM \"{table}\" WHERE {key} IN ({records})"),
                        [segment],
                    )
                    .map_err(err)?;
                }
            }
            for statement in [
                "DELETE FROM embeddings WHERE segment_id = ?1",
                "DELETE FROM max_seq_id WHERE segment_id = ?1",
                "DELETE FROM segment_metadata WHERE segment_id = ?1",
            ] {
                tx.execute(statement, [segment]).map_err(err)?;
            }
        }
        for statement in [
            "DELETE FROM segments WHERE collection = ?1",
            "DELETE FROM collection_metadata WHERE collection_id = ?1",
            "DELETE FROM collections WHERE id = ?1",
        ] {
            tx.execute(statement, [id]).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(segments
            .into_iter()
            .filter(|(_, scope)| scope == "VECTOR")
            .map(|(segment, _)| segment)
            .collect())
    }

    /// The copy's collections, id to name.
    pub fn collections(&self) -> Result<BTreeMap<String, String>, WalError> {
        let have = catalog(&self.conn).map_err(|e| self.err(e))?;
        Ok(collection_names(&have))
    }

    /// The ids of the collections the copy has.
    pub fn collection_ids(&self) -> Result<Vec<String>, WalError> {
        let have = catalog(&self.conn).map_err(|e| self.err(e))?;
        Ok(collection_names(&have).into_keys().collect())
    }
}

/// Collection id to name.
pub fn collection_names(catalog: &Catalog) -> BTreeMap<String, String> {
    rows_of(catalog, "collections")
        .iter()
        .filter_map(|row| Some((text(row, "id")?, text(row, "name")?)))
        .collect()
}

/// The rows of `table` whose `key` is `id`.
fn owned<'c>(
    catalog: &'c Catalog,
    table: &str,
    key: &str,
    id: &str,
) -> Vec<&'c BTreeMap<String, Value>> {
    rows_of(catalog, table)
        .iter()
        .filter(|r| text(r, key).as_deref() == Some(id))
        .collect()
}

/// Insert collection `id` as `from` has it (with its tenant and database when `have` lacks
/// them): its row, metadata, segments and their metadata.
fn create_collection(
    tx: &Connection,
    have: &Catalog,
    from: &Catalog,
    id: &str,
) -> Result<(), WalError> {
    for table in ["tenants", "databases"] {
        for row in rows_of(from, table) {
            let id = text(row, "id");
            let known = rows_of(have, table).iter().any(|r| text(r, "id") == id)
                || tx
                    .query_row(
                        &format!("SELECT COUNT(*) > 0 FROM \"{table}\" WHERE id = ?1"),
                        [&id],
                        |r| r.get::<_, bool>(0),
                    )
                    .unwrap_or(false);
            if !known {
                insert(tx, table, row)?;
            }
        }
    }
    for row in owned(from, "collections", "id", id) {
        insert(tx, "collections", row)?;
    }
    for row in owned(from, "collection_metadata", "collection_id", id) {
        insert(tx, "collection_metadata", row)?;
    }
    let segments = owned(from, "segments", "collection", id);
    let segment_ids: Vec<Option<String>> = segments.iter().map(|r| text(r, "id")).collect();
    for row in segments {
        insert(tx, "segments", row)?;
    }
    for row in rows_of(from, "segment_metadata") {
        if segment_ids.contains(&text(row, "segment_id")) {
            insert(tx, "segment_metadata", row)?;
        }
    }
    Ok(())
}

/// What [`StagedLog::reconcile`] did and found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Reconciled {
    pub created: Vec<String>,
    pub changed: Vec<String>,
    /// In the copy, but deleted by the time the catalog was read: id and name.
    pub deleted: Vec<(String, String)>,
}

fn rows_of<'c>(catalog: &'c Catalog, table: &str) -> &'c [BTreeMap<String, Value>] {
    catalog.get(table).map(Vec::as_slice).unwrap_or_default()
}

fn text(row: &BTreeMap<String, Value>, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_string)
}

/// Insert `row` into `table`, its columns checked against the table's own: a shipped catalog
/// is input like any other, and its column names must never reach SQL unchecked.
fn insert(conn: &Connection, table: &str, row: &BTreeMap<String, Value>) -> Result<(), WalError> {
    let invalid = |detail: String| WalError::Invalid(format!("a shipped {table} row {detail}"));
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .and_then(|mut stmt| {
            stmt.query_map([table], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| invalid(format!("cannot be checked: {e}")))?;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (column, value) in row {
        if !columns.contains(column) {
            return Err(invalid(format!(
                "has column {column:?}, which this database's {table} lacks (a newer Chroma shipped it?)"
            )));
        }
        names.push(format!("\"{column}\""));
        values.push(sql_of(value).ok_or_else(|| invalid(format!("has a malformed {column:?}")))?);
    }
    let marks = (1..=names.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute(
        &format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({marks})",
            names.join(", ")
        ),
        rusqlite::params_from_iter(values),
    )
    .map_err(|e| invalid(format!("cannot be inserted: {e}")))?;
    Ok(())
}

mod optional_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => {
                s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_times_are_read_as_utc_seconds() {
        let t = parse_logged_time("2026-11-30 19:55:23").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-30T19:55:23+00:00");
        assert!(parse_logged_time("2026-11-30T19:55:23Z").is_err());
    }

    #[test]
    fn catalog_values_round_trip_through_json() {
        for value in [
            SqlValue::Null,
            SqlValue::Integer(-7),
            SqlValue::Real(0.5),
            SqlValue::Text("x".into()),
            SqlValue::Blob(vec![0, 255, 3]),
        ] {
            let json = json_of(ValueRef::from(&value));
            assert_eq!(sql_of(&json), Some(value));
        }
        assert_eq!(sql_of(&serde_json::json!([1])), None);
    }

    #[test]
    fn a_forged_row_is_refused() {
        let mut row = LogRow {
            seq_id: 1,
            created_at: "2026-11-30 19:55:23".into(),
            operation: 0,
            topic: "persistent://default/default/x".into(),
            id: "a".into(),
            vector: None,
            encoding: None,
            metadata: None,
        };
        assert!(row.validate().is_ok());
        row.operation = 9;
        assert!(row.validate().unwrap_err().contains("operation 9"));
        row.operation = 0;
        row.seq_id = 0;
        assert!(row.validate().is_err());
    }
}
