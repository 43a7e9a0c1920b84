//! Export and import of collections, in one documented file format ([`format`]).
//!
//! - [`api`]: export from a running Chroma server, pages fetched in parallel;
//! - [`offline`]: export from a persistent directory or a backup, with no server;
//! - [`import`]: recreate collections and upsert their records, resumably.

pub mod api;
pub mod format;
pub mod import;
pub mod offline;

use serde::Serialize;

use crate::exit::{self, Classify};
use crate::repo::RepoError;
use crate::targets::chroma::layout::LayoutError;
use crate::targets::chroma::ChromaError;
pub use format::FormatError;

/// Which collections to export or import.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Named(Vec<String>),
}

impl Selection {
    /// The named collections, or all of them when none are named.
    pub fn of(names: &[String]) -> Self {
        if names.is_empty() {
            Self::All
        } else {
            Self::Named(names.to_vec())
        }
    }

    pub fn includes(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Named(names) => names.iter().any(|n| n == name),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionSummary {
    pub name: String,
    pub records: u64,
    /// What the source (or, on import, the server afterwards) counts.
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferSummary {
    pub file: String,
    pub collections: Vec<CollectionSummary>,
    pub records: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

impl TransferSummary {
    pub fn new(file: &str, collections: Vec<CollectionSummary>, began: std::time::Instant) -> Self {
        let records = collections.iter().map(|c| c.records).sum();
        let seconds = began.elapsed().as_secs_f64();
        Self {
            file: file.to_string(),
            collections,
            records,
            seconds,
            rows_per_second: if seconds > 0.0 {
                records as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Chroma(#[from] ChromaError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("collection {name:?} is not in {source_name}")]
    NoSuchCollection { name: String, source_name: String },
    #[error("{0}")]
    Offline(String),
    #[error("{0}")]
    Input(String),
    #[error("{path} is in use by process {holders}: its files change while they are read")]
    InUse { path: String, holders: String },
    #[error(
        "collection {name:?} counts {count} records after the import; the file holds {expected}"
    )]
    CountMismatch {
        name: String,
        count: u64,
        expected: u64,
    },
}

impl Classify for TransferError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Chroma(e) => e.exit_code(),
            Self::Format(e) => e.exit_code(),
            Self::Layout(e) => e.exit_code(),
            Self::Repo(e) => e.exit_code(),
            Self::NoSuchCollection { .. } => exit::BAD_INPUT,
            Self::Offline(_) => exit::FAILED,
            Self::InUse { .. } | Self::Input(_) => exit::BAD_INPUT,
            Self::CountMismatch { .. } => exit::FAILED,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Chroma(e) => e.hint(),
            Self::Format(e) => e.hint(),
            Self::Layout(e) => e.hint(),
            Self::Repo(e) => e.hint(),
            Self::NoSuchCollection { .. } => {
                Some("check the name, or export every collection with --all".into())
            }
            Self::Offline(_) | Self::Input(_) => None,
            Self::InUse { .. } => Some(
                "export from the running server with --url, or stop it and export the directory"
                    .into(),
            ),
            Self::CountMismatch { .. } => Some(
                "something else writes to the collection, or the import was cut short: run the same import again (it is resumable)".into(),
            ),
        }
    }
}

impl From<String> for TransferError {
    fn from(message: String) -> Self {
        Self::Offline(message)
    }
}
