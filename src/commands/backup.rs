//! `backup`: take a backup of a Chroma directory or a FAISS + Redis store, then (after a
//! successful one, as seed 000 did) rotate old backups of the repository away.

use serde::Serialize;

use crate::platform::Service;
use crate::progress::Progress;
use crate::repo::prune::{PruneOptions, PruneReport, RetentionPolicy};
use crate::repo::{RepoError, Repository};
pub use crate::targets::chroma::protect::ChromaSource;
pub use crate::targets::faiss_redis::FaissRedisSource;
use crate::targets::protect::{BackupOutcome, ProtectError};
pub use crate::targets::protect::{BackupSettings, BackupSource};

#[derive(Debug)]
pub struct BackupOptions {
    /// What is backed up: a Chroma directory ([`ChromaSource`]), FAISS + Redis
    /// ([`FaissRedisSource`]), or any other kind's source.
    pub source: Box<dyn BackupSource>,
    pub settings: BackupSettings,
    /// After a successful backup, keep only the newest N of this source.
    pub keep_last: Option<usize>,
}

/// What the rotation after a backup did: removed old backups, or was put off because another
/// process holds the repository's lock (the backup itself is committed either way, so this is
/// no failure: the next backup's rotation catches up).
#[derive(Debug, Default, Serialize)]
pub struct Rotation {
    pub pruned: Option<PruneReport>,
    pub deferred: Option<String>,
}

/// The backup and what its rotation did.
#[derive(Debug)]
pub struct Backed {
    pub outcome: BackupOutcome,
    pub rotation: Rotation,
}

pub async fn backup(
    repo: &Repository,
    options: &BackupOptions,
    service: Option<&mut (dyn Service + 'static)>,
    progress: &dyn Progress,
) -> Result<Backed, ProtectError> {
    let outcome = options
        .source
        .back_up(repo, &options.settings, service, progress)
        .await?;
    let rotation = rotate(repo, &outcome, options.keep_last).await?;
    Ok(Backed { outcome, rotation })
}

/// Rotation, only after a successful backup (seed 000).
async fn rotate(
    repo: &Repository,
    outcome: &BackupOutcome,
    keep_last: Option<usize>,
) -> Result<Rotation, RepoError> {
    match (outcome, keep_last) {
        (BackupOutcome::Created { .. }, Some(keep)) => keep_newest(repo, keep).await,
        _ => Ok(Rotation::default()),
    }
}

/// Keep each source's `keep` newest backups of `repo`; put off (no failure) when another
/// process holds its lock.
pub async fn keep_newest(repo: &Repository, keep: usize) -> Result<Rotation, RepoError> {
    let mut rotation = Rotation::default();
    let options = PruneOptions {
        policy: RetentionPolicy {
            keep_last: Some(keep.max(1)),
            ..Default::default()
        },
        dry_run: false,
        limit: None,
    };
    match crate::repo::prune::prune(repo, &options).await {
        Ok(report) => rotation.pruned = Some(report),
        Err(RepoError::Locked { holder }) => {
            let reason = format!(
                "the repository is locked by {holder}; the next backup's rotation removes what this one would have"
            );
            tracing::warn!("rotation put off: {reason}");
            rotation.deferred = Some(reason);
        }
        Err(err) => return Err(err),
    }
    Ok(rotation)
}
