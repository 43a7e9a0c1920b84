//! The commands as library functions: an options struct in, a result out, no printing, no
//! prompts, no history. The command line (`src/cli/`) and the drill steps (`src/steps/`) both
//! call these, so a command and its step can never disagree.

/// Which backups a command works on: `verify` and `copy` take the same choice.
#[derive(Debug, Clone)]
pub enum Backups {
    /// Every backup (of the chosen source, where the command narrows it).
    All,
    /// One backup: an id, a unique prefix or `latest` (of the chosen source).
    One(String),
}

impl Backups {
    /// A drill step's `backup:` field: `all`, or one backup.
    pub fn of_step(backup: &str) -> Self {
        match backup {
            "all" => Backups::All,
            id => Backups::One(id.to_string()),
        }
    }
}

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
