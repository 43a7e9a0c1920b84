//! A scenario's `target:`: which database a drill works on, where it is and how its service
//! is run. Beside the targets, so steps and commands reach it without the scenario layer.
//!
//! Every kind is registered once, in [`register_targets!`]'s list at the end of this file: its
//! `kind:` name, its spec type (which implements [`TargetConfig`]) and its backup format. The
//! kind enum, the scenario's tagged target, the loader's dispatch and the list of backup
//! formats are all made from that one list.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chroma::capture::CaptureMode;
use super::protect::BackupSource;
use super::{BackupFormat, Target};
use crate::platform::ServiceSpec;

/// What a scenario's target says, whatever its kind: each kind's spec answers these.
pub trait TargetConfig: std::fmt::Debug + Send + Sync + 'static {
    /// The server: Chroma's HTTP URL, or Redis's.
    fn url(&self) -> &str;
    /// Where the data lives on disk (backed up from, restored into).
    fn data_dir(&self) -> Option<&Path>;
    fn service(&self) -> Option<&ServiceSpec>;
    /// The live target this spec names.
    fn connect(&self) -> Box<dyn Target>;
    /// What a backup of this target takes, from `data_dir` (the step's or the target's) copied
    /// as `mode` says; why not when the kind needs a data directory and has none.
    fn backup_source(
        &self,
        data_dir: Option<PathBuf>,
        mode: CaptureMode,
    ) -> Result<Box<dyn BackupSource>, String>;
    /// A note on what the data directory holds, for `validate`'s "where it would act".
    fn describe_data_dir(&self, _dir: &Path) -> &'static str {
        ""
    }
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Makes, from one list of kinds, the kind enum, the scenario's tagged target and the list of
/// backup formats: a new target is its module and one line in the list.
macro_rules! register_targets {
    ($($variant:ident = $name:literal => $spec:ty, $format:expr;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum TargetKind {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl TargetKind {
            /// Every kind: what a step that works on any target lists.
            pub const ALL: &'static [TargetKind] = &[$(TargetKind::$variant),+];

            /// As written after `kind:`.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// How its backups are recognised, checked and restored.
            pub fn format(self) -> &'static dyn BackupFormat {
                match self { $(Self::$variant => &$format,)+ }
            }

            /// A `target:` of this kind, read with its own fields (serde's complaint, with
            /// its path, when they are wrong).
            pub fn read_spec(
                self,
                yaml: serde_yaml::Value,
            ) -> Result<TargetSpec, serde_path_to_error::Error<serde_yaml::Error>> {
                match self {
                    $(Self::$variant => serde_path_to_error::deserialize::<_, $spec>(yaml)
                        .map(TargetSpec::$variant),)+
                }
            }
        }

        /// A scenario's `target:`, by its `kind:`; each kind's fields are its own (a `faiss:`
        /// list on a Chroma target is refused, not ignored).
        #[derive(Debug, Clone)]
        pub enum TargetSpec {
            $($variant($spec),)+
        }

        impl TargetSpec {
            pub fn kind(&self) -> TargetKind {
                match self { $(Self::$variant(_) => TargetKind::$variant,)+ }
            }

            /// What every kind answers.
            pub fn config(&self) -> &dyn TargetConfig {
                match self { $(Self::$variant(spec) => spec,)+ }
            }
        }

        /// Every kind of backup vecdrill reads.
        pub static FORMATS: &[&dyn BackupFormat] = &[$(&$format),+];
    };
}

register_targets! {
    Chroma = "chroma" => super::chroma::spec::ChromaSpec, super::chroma::protect::FORMAT;
    FaissRedis = "faiss_redis" => super::faiss_redis::FaissRedisSpec, super::faiss_redis::FORMAT;
}

impl TargetKind {
    /// The kind its backups record as their source's (`list` shows it).
    pub fn source_kind(self) -> &'static str {
        self.format().source_kind()
    }
}

impl TargetSpec {
    pub fn url(&self) -> &str {
        self.config().url()
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.config().data_dir()
    }

    pub fn service(&self) -> Option<&ServiceSpec> {
        self.config().service()
    }

    pub fn connect(&self) -> Box<dyn Target> {
        self.config().connect()
    }

    /// The spec as its own kind's type, for a step that works on that kind only.
    pub fn as_kind<T: TargetConfig>(&self) -> Option<&T> {
        self.config().as_any().downcast_ref()
    }
}
