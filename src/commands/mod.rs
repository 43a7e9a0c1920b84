//! The commands as library functions: an options struct in, a result out, no printing, no
//! prompts, no history. The command line (`src/cli/`) and the drill steps (`src/steps/`) both
//! call these, so a command and its step can never disagree.

pub mod backup;
pub mod copy;
pub mod follow;
pub mod verify;

/// `export` (from a live server, a data directory or a backup) and `import`: collections as
/// portable JSONL files.
pub use crate::export::{api::export, import::import, offline::export_backup, offline::export_dir};
/// `archive`: one backup as a portable file ([`archive::write_archive`]), and back.
pub use crate::repo::archive;
/// `prune`: apply a retention policy.
pub use crate::repo::prune::{prune, PruneOptions, PruneReport};
/// `restore`: stage a backup, check it, swap it in (shared by every kind of target).
pub use crate::targets::protect::{restore, RestoreOutcome, RestoreRequest, RestoreSource};
