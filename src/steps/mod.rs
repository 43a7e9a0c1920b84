//! Step kinds: one file per kind, each a parameter struct (deserialised from `with:`) that
//! implements [`Step`], plus one line in [`KINDS`].
//!
//! To add a step kind: write `src/steps/NAME.rs` with a `pub const KIND: StepKind` and its
//! `impl Step`, then list it in [`KINDS`]. Validation, `${steps.ID.OUTPUT}` checks, retries,
//! timeouts and reporting come for free.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

mod backup;
mod check_faiss;
mod context;
mod copy;
mod count;
mod export;
mod fault;
mod follow;
mod heartbeat;
mod http;
mod import;
mod neighbours;
mod prove;
mod rebuild;
mod records;
mod restore;
mod restore_redis;
mod search_latency;
mod seed;
mod service;
mod shell;
mod sleep;
mod state;
mod verify;
mod volume_backup;
mod wait_healthy;
mod writes;

pub use context::{Memory, StepContext};
pub use neighbours::{parse_min_recall, DEFAULT_MIN_RECALL};
pub use prove::{ProveSettings, Prover};

/// What a step that runs something beside the drill is asked to do with it (`follow`,
/// `writes`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Start,
    Stop,
}

/// The default of every step parameter that names a backup: the newest one.
fn latest() -> String {
    "latest".into()
}

use crate::platform::PlatformError;
use crate::targets::chroma::ChromaError;
use crate::targets::spec::TargetKind;

/// What a step hands to later steps (`${steps.ID.NAME}`) and to the report.
pub type Outputs = BTreeMap<String, serde_json::Value>;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step ran and what it checked was wrong.
    #[error("{0}")]
    Check(String),
    /// Like `Check`, with the measurements that show it (kept in the report).
    #[error("{message}")]
    Mismatch { message: String, outputs: Outputs },
    /// The scenario asks for something this step cannot do here.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Chroma(#[from] ChromaError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Protect(#[from] crate::targets::chroma::protect::ProtectError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Transfer(#[from] crate::export::TransferError),
    #[error(transparent)]
    Rebuild(#[from] crate::rebuild::RebuildError),
    #[error(transparent)]
    Redis(#[from] crate::targets::redis::RedisError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl StepError {
    /// Measurements to keep in the report even though the step failed.
    pub fn outputs(&self) -> Option<&Outputs> {
        match self {
            Self::Mismatch { outputs, .. } => Some(outputs),
            _ => None,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

#[async_trait]
pub trait Step: Send + Sync {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError>;
    /// Whether the step may stop `target.service` and start it again itself (a cold backup):
    /// interrupted in between, the run starts the service again before anything else.
    fn restarts_service(&self) -> bool {
        false
    }
}

pub type WithError = serde_path_to_error::Error<serde_yaml::Error>;

/// A registered step kind.
pub struct StepKind {
    /// The name written after `do:`.
    pub name: &'static str,
    pub summary: &'static str,
    /// Outputs later steps may reference; every step also has `duration_ms`.
    pub outputs: &'static [&'static str],
    /// Whether the step acts on `target.service` (checked when validating).
    pub needs_service: bool,
    /// The targets it works on (checked when validating).
    pub targets: &'static [TargetKind],
    /// Whether it needs a backup repository: the scenario's `repo:` or its own.
    pub needs_repo: bool,
    /// The `with:` fields naming further repositories it opens (`copy`'s `to`): their
    /// passwords are checked before the first step too.
    pub other_repos: &'static [&'static str],
    /// Whether it puts a backup's data in place: the restored backup's age is the run's RPO.
    pub restores_data: bool,
    /// Whether its time counts as platform time in the RTO split (service operations and
    /// restores), against the rest (waiting for health, verifying).
    pub platform_time: bool,
    /// The objectives it measures.
    pub measures: &'static [Objective],
    /// Parse `with:` into a runnable step.
    pub build: fn(serde_yaml::Value) -> Result<Box<dyn Step>, WithError>,
}

/// An objective a step kind measures (see [`StepKind::measures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    Rpo,
    SearchP50,
    SearchP90,
    SearchP99,
    HeartbeatWithin,
    CollectionsMin,
    Count,
}

impl std::fmt::Debug for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Kinds are written in records (reports, the history) by the name written after `do:`.
impl serde::Serialize for StepKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

impl PartialEq for StepKind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl StepKind {
    pub fn has_output(&self, name: &str) -> bool {
        name == "duration_ms" || self.outputs.contains(&name)
    }

    pub fn all_outputs(&self) -> Vec<&'static str> {
        let mut all = vec!["duration_ms"];
        all.extend(self.outputs);
        all
    }
}

/// Every step kind vecdrill knows, in the order `--help` lists them.
pub static KINDS: &[StepKind] = &[
    service::START,
    service::STOP,
    service::RESTART,
    heartbeat::KIND,
    wait_healthy::KIND,
    count::KIND,
    state::CAPTURE,
    state::COMPARE,
    records::SAMPLE,
    records::COMPARE,
    neighbours::COMPARE_NEIGHBOURS,
    search_latency::KIND,
    http::KIND,
    shell::KIND,
    sleep::KIND,
    fault::KIND,
    seed::KIND,
    backup::KIND,
    restore::KIND,
    follow::KIND,
    writes::KIND,
    writes::COMPARE,
    verify::KIND,
    copy::KIND,
    prove::KIND,
    export::KIND,
    import::KIND,
    rebuild::KIND,
    restore_redis::KIND,
    check_faiss::KIND,
    volume_backup::CREATE,
    volume_backup::LIST,
    volume_backup::RESTORE,
    volume_backup::DELETE,
];

pub fn lookup(name: &str) -> Option<&'static StepKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The usual `build`: `with:` deserialised into the step's own parameter struct.
pub fn build<S: Step + DeserializeOwned + 'static>(
    with: serde_yaml::Value,
) -> Result<Box<dyn Step>, WithError> {
    let with = match with {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        other => other,
    };
    serde_path_to_error::deserialize::<_, S>(with).map(|s| Box::new(s) as Box<dyn Step>)
}

/// Shorthand for building an [`Outputs`] map.
#[macro_export]
macro_rules! outputs {
    ($($key:literal => $value:expr),* $(,)?) => {{
        let mut map = $crate::steps::Outputs::new();
        $(map.insert($key.to_string(), serde_json::json!($value));)*
        map
    }};
}
