//! A scenario's `target:`: which database a drill works on, where it is and how its service
//! is run. Beside the targets, so steps and commands reach it without the scenario layer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::ServiceSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Chroma,
    /// FAISS index files with their metadata in Redis; `url` is the Redis URL.
    FaissRedis,
}

impl TargetKind {
    /// Every kind: what a step that works on any target lists.
    pub const ALL: &'static [TargetKind] = &[TargetKind::Chroma, TargetKind::FaissRedis];

    /// The kind its backups record as their source's (`list` shows it).
    pub fn source_kind(self) -> &'static str {
        match self {
            Self::Chroma => "chroma",
            Self::FaissRedis => super::faiss_redis::SOURCE_KIND,
        }
    }

    /// As written after `kind:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chroma => "chroma",
            Self::FaissRedis => "faiss_redis",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub kind: TargetKind,
    pub url: String,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    pub service: Option<ServiceSpec>,
    /// `faiss_redis`: the index files to back up.
    #[serde(default)]
    pub faiss: Vec<PathBuf>,
    /// `faiss_redis`: key prefixes counted into every backup and compared after a restore.
    #[serde(default)]
    pub redis_prefixes: Vec<String>,
    /// `faiss_redis`: the RDB file, when Redis's own (CONFIG GET dir/dbfilename) is not
    /// readable from here.
    #[serde(default)]
    pub redis_rdb: Option<PathBuf>,
}

fn default_tenant() -> String {
    super::chroma::client::DEFAULT_TENANT.to_string()
}

fn default_database() -> String {
    super::chroma::client::DEFAULT_DATABASE.to_string()
}

impl TargetSpec {
    /// The live target this spec names.
    pub fn connect(&self) -> Box<dyn super::Target> {
        match self.kind {
            TargetKind::Chroma => Box::new(super::chroma::ChromaTarget {
                client: super::chroma::ChromaClient::with_database(
                    &self.url,
                    &self.tenant,
                    &self.database,
                ),
            }),
            TargetKind::FaissRedis => Box::new(super::faiss_redis::FaissRedisTarget {
                redis_url: self.url.clone(),
            }),
        }
    }
}
