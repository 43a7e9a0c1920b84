//! `backup`: take a backup of a Chroma directory or a FAISS + Redis store, then (after a
//! successful one, as seed 000 did) rotate old backups of the repository away.

use std::time::Duration;

use serde::Serialize;

use crate::platform::Service;
use crate::progress::Progress;
use crate::repo::prune::{PruneOptions, PruneReport, RetentionPolicy};
use crate::repo::{RepoError, Repository};
use crate::targets::chroma::protect::{self, BackupRequest};
use crate::targets::faiss_redis::{self, FaissRedisRequest};
pub use crate::targets::protect::BackupSource as Source;
use crate::targets::protect::{BackupOutcome, ProtectError};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub source: Source,
    pub tags: Vec<String>,
    /// Hot mode: give up when writers would be held off longer. (FAISS + Redis: how long
    /// Redis may take to save, at least five minutes.)
    pub max_write_stall: Duration,
    /// Skip when the newest backup of the source is younger than this.
    pub min_interval: Option<Duration>,
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

/// Redis may take minutes to save a large dataset; the stall limit alone would be too short.
const MIN_SAVE_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn backup(
    repo: &Repository,
    options: &BackupOptions,
    service: Option<&mut (dyn Service + 'static)>,
    progress: &dyn Progress,
) -> Result<Backed, ProtectError> {
    let outcome = match &options.source {
        Source::Chroma {
            dir,
            mode,
            staging_parent,
            read_all,
        } => {
            let request = BackupRequest {
                dir: dir.clone(),
                mode: *mode,
                tags: options.tags.clone(),
                max_write_stall: options.max_write_stall,
                staging_parent: staging_parent.clone(),
                min_interval: options.min_interval,
                read_all: *read_all,
            };
            protect::backup(repo, &request, service, progress).await?
        }
        Source::FaissRedis {
            faiss,
            redis_url,
            prefixes,
            rdb_path,
            pre,
            post,
        } => {
            let request = FaissRedisRequest {
                faiss: faiss.clone(),
                redis_url: redis_url.clone(),
                prefixes: prefixes.clone(),
                rdb_path: rdb_path.clone(),
                tags: options.tags.clone(),
                pre: pre.clone(),
                post: post.clone(),
                save_timeout: options.max_write_stall.max(MIN_SAVE_TIMEOUT),
                min_interval: options.min_interval,
            };
            faiss_redis::backup(repo, &request, progress).await?
        }
    };
    let rotation = rotate(repo, &outcome, options.keep_last).await?;
    Ok(Backed { outcome, rotation })
}

/// Rotation, only after a successful backup (seed 000).
async fn rotate(
    repo: &Repository,
    outcome: &BackupOutcome,
    keep_last: Option<usize>,
) -> Result<Rotation, RepoError> {
    let mut rotation = Rotation::default();
    let (BackupOutcome::Created { .. }, Some(keep)) = (outcome, keep_last) else {
        return Ok(rotation);
    };
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
