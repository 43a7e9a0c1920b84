//! The generations of Chroma's persistent directory that vecdrill reads, from 0.4 to 1.5, told
//! apart by the `migrations` table. Every difference between them that the offline readers
//! meet is answered here, once:
//!
//! | generation | migrations (queue/metadb/sysdb) | differences |
//! |---|---|---|
//! | 0.4 | 1 / ≤3 / ≤4 | `max_seq_id.seq_id` 8 bytes big-endian; the vector index's watermark inside its pickle (a pickled `PersistentData` object); no `config_json_str`, no `collection_metadata.bool_value` |
//! | 0.5–0.6 | 2 / 4 / ≤9 | `seq_id` still a blob; `config_json_str` says `"space": "l2"` whatever the space: the real settings are the `hnsw:*` metadata keys |
//! | 1.0–1.2 | 2 / 5 / ≤9 | integer `seq_id`; settings under `vector_index.hnsw` in `config_json_str` |
//! | 1.3 onward | 2 / 5–6 / 10 | settings in `schema_str`; metadb 6 adds `embedding_metadata_array` |
//!
//! And one difference of the servers: 1.x answers a cosine vector still in the log as its
//! index would hold it, 0.x answers it raw.
//!
//! Columns and tables that minor releases added are probed rather than assumed ([`Columns`]),
//! and a collection's settings are read by the shape of what holds them ([`settings`]): a
//! directory a newer Chroma upgraded keeps the older shapes.

use std::collections::BTreeMap;

use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};
use rusqlite::Connection;
use serde_json::{Map, Value};

/// The database in a Chroma persistent directory.
pub const SQLITE_FILE: &str = "chroma.sqlite3";

/// The newest migration of each set vecdrill knows how to read (Chroma 1.5).
const KNOWN: [(&str, i64); 3] = [("embeddings_queue", 2), ("metadb", 6), ("sysdb", 10)];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generation {
    Chroma04,
    Chroma05,
    Chroma10,
    Chroma13,
}

impl Generation {
    /// The generation of a database whose highest migration per set is `schema`; why not,
    /// when a set is newer than any vecdrill knows (a newer Chroma made it).
    pub fn of(schema: &BTreeMap<String, i64>) -> Result<Self, String> {
        for (set, known) in KNOWN {
            if let Some(&found) = schema.get(set) {
                if found > known {
                    return Err(format!(
                        "its {set} schema is at migration {found}, newer than the {known} of Chroma {}, the newest vecdrill reads",
                        Self::Chroma13.newest_known()
                    ));
                }
            }
        }
        let of = |set: &str| schema.get(set).copied().unwrap_or(0);
        Ok(if of("embeddings_queue") <= 1 {
            Self::Chroma04
        } else if of("metadb") <= 4 {
            Self::Chroma05
        } else if of("sysdb") <= 9 {
            Self::Chroma10
        } else {
            Self::Chroma13
        })
    }

    /// The Chroma releases that write this generation, as the manifest and `info` show them.
    pub fn versions(self) -> &'static str {
        match self {
            Self::Chroma04 => "0.4.x",
            Self::Chroma05 => "0.5.x-0.6.x",
            Self::Chroma10 => "1.0.x-1.2.x",
            Self::Chroma13 => "1.3.x or newer",
        }
    }

    /// The generation Chroma release `version` ("0.5.23") writes; none for a release older
    /// than any vecdrill reads, or not a version.
    pub fn of_release(version: &str) -> Option<Self> {
        let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor) = (parts.next()??, parts.next()??);
        Some(match (major, minor) {
            (0, 4) => Self::Chroma04,
            (0, 5 | 6) => Self::Chroma05,
            (1, 0..=2) => Self::Chroma10,
            (1, _) | (2.., _) => Self::Chroma13,
            _ => return None,
        })
    }

    fn newest_known(self) -> &'static str {
        "1.5"
    }

    /// Whether the server answers a cosine collection's vectors that are still only in the
    /// log as its index would hold them (unit length times the norm, rounded), not raw.
    pub fn answers_logged_cosine_normalised(self) -> bool {
        self >= Self::Chroma10
    }

    /// Whether the vector index's watermark is kept inside its `index_metadata.pickle`
    /// rather than in `max_seq_id`.
    pub fn vector_watermark_in_pickle(self) -> bool {
        self == Self::Chroma04
    }
}

/// A `seq_id` as stored: an integer (1.0 onward) or 8 bytes big-endian (0.x).
pub fn seq_id(value: ValueRef<'_>) -> FromSqlResult<i64> {
    match value {
        ValueRef::Integer(n) => Ok(n),
        ValueRef::Blob(bytes) => {
            let bytes: [u8; 8] = bytes
                .try_into()
                .map_err(|_| FromSqlError::InvalidBlobSize {
                    expected_size: 8,
                    blob_size: bytes.len(),
                })?;
            i64::try_from(u64::from_be_bytes(bytes)).map_err(|_| FromSqlError::OutOfRange(0))
        }
        _ => Err(FromSqlError::InvalidType),
    }
}

/// The columns and tables that came with minor releases, as found in one database.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// `collections.config_json_str` (0.5 onward).
    pub config_json: bool,
    /// `collections.schema_str` (1.3 onward, sysdb 10).
    pub schema_json: bool,
    /// `collection_metadata.bool_value` (0.5 onward).
    pub collection_bool: bool,
    /// The table `embedding_metadata_array` (metadb 6).
    pub metadata_arrays: bool,
}

impl Columns {
    pub fn probe(conn: &Connection) -> rusqlite::Result<Self> {
        let has_column = |table: &str, column: &str| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        };
        let has_table = |table: &str| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        };
        Ok(Self {
            config_json: has_column("collections", "config_json_str")?,
            schema_json: has_column("collections", "schema_str")?,
            collection_bool: has_column("collection_metadata", "bool_value")?,
            metadata_arrays: has_table("embedding_metadata_array")?,
        })
    }
}

/// A collection's HNSW settings in the API's `configuration_json` shape (`{"hnsw": {...}}`)
/// and its distance space, from the database's own columns. Each is read by its own shape,
/// not by the generation: a directory a newer Chroma upgraded keeps the older shapes.
pub fn settings(
    config_json: Option<&str>,
    schema_json: Option<&str>,
    metadata: Option<&Map<String, Value>>,
) -> (Option<Value>, String) {
    let parse = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let config = parse(schema_json)
        .and_then(|s| from_schema(&s))
        .or_else(|| parse(config_json).and_then(|c| from_config(&c)))
        .or_else(|| metadata.and_then(from_metadata));
    with_metadata_space(config, metadata)
}

/// The space: the collection's `hnsw:space` metadata key first. 0.5-0.6 configurations say
/// l2 whatever the space, and 1.x keeps saying so of a collection it upgraded while it
/// searches by the metadata's space.
fn with_metadata_space(
    config: Option<Value>,
    metadata: Option<&Map<String, Value>>,
) -> (Option<Value>, String) {
    let said = metadata
        .and_then(|m| m.get("hnsw:space"))
        .and_then(Value::as_str);
    let config = match (config, said) {
        (Some(mut config), Some(space)) => {
            if let Some(Value::Object(hnsw)) = config.get_mut("hnsw") {
                hnsw.insert("space".into(), Value::from(space));
            }
            Some(config)
        }
        (config, _) => config,
    };
    let space = said
        .or_else(|| {
            config
                .as_ref()
                .and_then(|c| c.pointer("/hnsw/space"))
                .and_then(Value::as_str)
        })
        .unwrap_or("l2")
        .to_string();
    (config, space)
}

/// A collection's settings as a server's API describes it, in the `{"hnsw": {...}}` shape: a
/// 1.x server's `configuration_json`; for a 0.x server (no configuration, or 0.5-0.6's
/// `hnsw_configuration`, whose space always says l2) the `hnsw:*` metadata keys.
pub fn api_settings(
    configuration_json: Option<&Value>,
    metadata: Option<&Map<String, Value>>,
) -> Option<Value> {
    let config = match configuration_json.filter(|c| c.get("hnsw_configuration").is_none()) {
        Some(config) => super::client::without_nulls(config),
        None => metadata.and_then(from_metadata),
    };
    with_metadata_space(config, metadata).0
}

/// What a 0.x server is given to create a collection with `settings`: the metadata with
/// each setting as its `hnsw:*` key (0.x servers take no configuration).
pub fn as_metadata(
    settings: Option<&Value>,
    metadata: Option<&Map<String, Value>>,
) -> Option<Map<String, Value>> {
    let mut out = metadata.cloned().unwrap_or_default();
    if let Some(Value::Object(hnsw)) = settings.and_then(|s| s.get("hnsw")) {
        for (key, name) in METADATA_NAMES {
            if let Some(value) = hnsw.get(name).filter(|v| !v.is_null()) {
                out.entry(key.to_string()).or_insert_with(|| value.clone());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The `hnsw:*` metadata keys of 0.x and the names 1.x gives the same settings.
const METADATA_NAMES: [(&str, &str); 6] = [
    ("hnsw:space", "space"),
    ("hnsw:construction_ef", "ef_construction"),
    ("hnsw:search_ef", "ef_search"),
    ("hnsw:M", "max_neighbors"),
    ("hnsw:resize_factor", "resize_factor"),
    ("hnsw:sync_threshold", "sync_threshold"),
];

/// 0.x: the `hnsw:*` metadata keys, renamed as 1.x names them.
fn from_metadata(metadata: &Map<String, Value>) -> Option<Value> {
    let hnsw: Map<String, Value> = METADATA_NAMES
        .iter()
        .filter_map(|(key, name)| Some((name.to_string(), metadata.get(*key)?.clone())))
        .collect();
    (!hnsw.is_empty()).then(|| serde_json::json!({ "hnsw": hnsw }))
}

/// 1.0–1.2 keep `{"vector_index": {"hnsw": {...}}}`; a 1.3 database written without a schema
/// keeps `{"hnsw": {...}}`.
fn from_config(config: &Value) -> Option<Value> {
    let hnsw = config
        .pointer("/vector_index/hnsw")
        .or_else(|| config.get("hnsw"))
        .and_then(super::client::without_nulls)?;
    let mut out = Map::new();
    out.insert("hnsw".into(), hnsw);
    if let Some(ef) = config.get("embedding_function").filter(|v| !v.is_null()) {
        out.insert("embedding_function".into(), ef.clone());
    }
    Some(Value::Object(out))
}

/// 1.3 onward: the vector index's configuration in the collection's schema.
fn from_schema(schema: &Value) -> Option<Value> {
    let vector = schema
        .pointer("/keys/#embedding/float_list/vector_index/config")
        .or_else(|| schema.pointer("/defaults/float_list/vector_index/config"))?;
    let mut hnsw = Map::new();
    if let Some(space) = vector.get("space") {
        hnsw.insert("space".into(), space.clone());
    }
    if let Some(Value::Object(params)) = vector.get("hnsw") {
        for key in [
            "ef_construction",
            "ef_search",
            "max_neighbors",
            "resize_factor",
            "sync_threshold",
        ] {
            if let Some(v) = params.get(key) {
                hnsw.insert(key.into(), v.clone());
            }
        }
    }
    let mut config = Map::new();
    config.insert("hnsw".into(), Value::Object(hnsw));
    if let Some(ef) = vector.get("embedding_function").filter(|v| !v.is_null()) {
        config.insert("embedding_function".into(), ef.clone());
    }
    Some(Value::Object(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(queue: i64, metadb: i64, sysdb: i64) -> BTreeMap<String, i64> {
        [
            ("embeddings_queue".to_string(), queue),
            ("metadb".to_string(), metadb),
            ("sysdb".to_string(), sysdb),
        ]
        .into()
    }

    #[test]
    fn each_release_line_reads_as_its_generation() {
        // The migrations each release line was seen with (DESIGN.md's version table).
        assert_eq!(Generation::of(&schema(1, 3, 4)), Ok(Generation::Chroma04));
        assert_eq!(Generation::of(&schema(2, 4, 9)), Ok(Generation::Chroma05));
        assert_eq!(Generation::of(&schema(2, 5, 9)), Ok(Generation::Chroma10));
        assert_eq!(Generation::of(&schema(2, 5, 10)), Ok(Generation::Chroma13));
        assert_eq!(Generation::of(&schema(2, 6, 10)), Ok(Generation::Chroma13));
        let newer = Generation::of(&schema(2, 7, 10)).unwrap_err();
        assert!(newer.contains("metadb") && newer.contains('7'), "{newer}");
    }

    #[test]
    fn a_seq_id_reads_as_an_integer_or_eight_bytes_big_endian() {
        assert_eq!(seq_id(ValueRef::Integer(333)), Ok(333));
        assert_eq!(
            seq_id(ValueRef::Blob(&[0, 0, 0, 0, 0, 0, 0x01, 0x4d])),
            Ok(333)
        );
        assert!(seq_id(ValueRef::Blob(&[1, 2, 3])).is_err());
        assert!(seq_id(ValueRef::Blob(&[0xff; 8])).is_err());
        assert!(seq_id(ValueRef::Text(b"333")).is_err());
    }

    #[test]
    fn the_space_comes_from_where_the_database_keeps_it() {
        // 0.5-0.6: config_json_str says l2 whatever the space; the metadata is right.
        let config = r#"{"hnsw_configuration": {"space": "l2", "ef_search": 10}}"#;
        let metadata: Map<String, Value> =
            serde_json::from_str(r#"{"hnsw:space": "cosine", "hnsw:search_ef": 20}"#).unwrap();
        let (settings_json, space) = settings(Some(config), None, Some(&metadata));
        assert_eq!(space, "cosine");
        assert_eq!(
            settings_json.unwrap(),
            serde_json::json!({"hnsw": {"space": "cosine", "ef_search": 20}})
        );
        // 1.0: vector_index.hnsw.
        let config =
            r#"{"vector_index":{"hnsw":{"space":"ip","ef_search":100}},"embedding_function":null}"#;
        let (settings_json, space) = settings(Some(config), None, None);
        assert_eq!(space, "ip");
        assert_eq!(
            settings_json.unwrap(),
            serde_json::json!({"hnsw": {"space": "ip", "ef_search": 100}})
        );
        // Nothing said: l2, Chroma's default.
        assert_eq!(settings(None, None, None).1, "l2");
        // 1.x keeps saying l2 of a cosine collection it upgraded: the metadata decides.
        let upgraded = r#"{"vector_index":{"hnsw":{"space":"l2","ef_search":100}}}"#;
        let (settings_json, space) = settings(Some(upgraded), None, Some(&metadata));
        assert_eq!(space, "cosine");
        assert_eq!(settings_json.unwrap()["hnsw"]["space"], "cosine");
    }
}
