//! A scenario's `target:`: which database a drill works on, where it is and how its service
//! is run. Beside the targets, so steps and commands reach it without the scenario layer.

use std::path::Path;

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

/// A scenario's `target:`, by its `kind:`; each kind's fields are its own (a `faiss:` list on a
/// Chroma target is refused, not ignored).
#[derive(Debug, Clone)]
pub enum TargetSpec {
    Chroma(super::chroma::spec::ChromaSpec),
    FaissRedis(super::faiss_redis::FaissRedisSpec),
}

impl TargetSpec {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Chroma(_) => TargetKind::Chroma,
            Self::FaissRedis(_) => TargetKind::FaissRedis,
        }
    }

    /// The server: Chroma's HTTP URL, or Redis's.
    pub fn url(&self) -> &str {
        match self {
            Self::Chroma(spec) => &spec.url,
            Self::FaissRedis(spec) => &spec.url,
        }
    }

    /// Where the data lives on disk (backed up from, restored into).
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Self::Chroma(spec) => spec.data_dir.as_deref(),
            Self::FaissRedis(spec) => spec.data_dir.as_deref(),
        }
    }

    pub fn service(&self) -> Option<&ServiceSpec> {
        match self {
            Self::Chroma(spec) => spec.service.as_ref(),
            Self::FaissRedis(spec) => spec.service.as_ref(),
        }
    }

    /// The FAISS + Redis fields, when that is the kind.
    pub fn faiss_redis(&self) -> Option<&super::faiss_redis::FaissRedisSpec> {
        match self {
            Self::FaissRedis(spec) => Some(spec),
            Self::Chroma(_) => None,
        }
    }

    /// What a backup of this target takes: the Chroma directory (`data_dir`, copied as `mode`
    /// says; its error when there is none), or the index files and Redis.
    pub fn backup_source<E>(
        &self,
        data_dir: Result<std::path::PathBuf, E>,
        mode: super::chroma::capture::CaptureMode,
    ) -> Result<super::protect::BackupSource, E> {
        Ok(match self {
            Self::Chroma(_) => super::protect::BackupSource::Chroma {
                dir: data_dir?,
                mode: Some(mode),
                staging_parent: None,
                read_all: false,
            },
            Self::FaissRedis(spec) => super::protect::BackupSource::FaissRedis {
                faiss: spec.faiss.clone(),
                redis_url: Some(spec.url.clone()),
                prefixes: spec.redis_prefixes.clone(),
                rdb_path: spec.redis_rdb.clone(),
                pre: None,
                post: None,
            },
        })
    }

    /// The live target this spec names.
    pub fn connect(&self) -> Box<dyn super::Target> {
        match self {
            Self::Chroma(spec) => Box::new(super::chroma::ChromaTarget {
                client: super::chroma::ChromaClient::with_database(
                    &spec.url,
                    &spec.tenant,
                    &spec.database,
                ),
            }),
            Self::FaissRedis(spec) => Box::new(super::faiss_redis::FaissRedisTarget {
                redis_url: spec.url.clone(),
            }),
        }
    }
}
