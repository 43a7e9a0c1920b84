//! Repository locks, restic style: a backup holds a shared lock, a prune an exclusive one, so a
//! prune never deletes chunks a running backup has uploaded but not yet referenced.
//!
//! Object stores have no portable compare-and-swap, so a lock is written first and the other
//! locks are listed after: two writers that race both see each other and both back off. A lock
//! is refreshed while held; one not refreshed for [`STALE_AFTER`] belongs to a dead process.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::format::{kinds, LockFile, FORMAT_VERSION};
use super::store::Store;
use super::{random_id, RepoError, Repository};

pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

pub struct LockGuard {
    store: Arc<Store>,
    key: String,
    refresher: tokio::task::JoinHandle<()>,
}

pub async fn acquire(
    repo: &Repository,
    exclusive: bool,
    operation: &str,
) -> Result<LockGuard, RepoError> {
    let store = repo.store.clone();
    let key = format!("locks/{}.json", random_id());
    let lock = LockFile {
        kind: kinds::LOCK.to_string(),
        version: FORMAT_VERSION,
        exclusive,
        operation: operation.to_string(),
        hostname: hostname(),
        pid: std::process::id(),
        created_at: Utc::now(),
    };
    store.put_json(&key, &lock).await?;
    let conflict = find_conflict(&store, &key, exclusive).await;
    match conflict {
        Ok(None) => {}
        Ok(Some(holder)) => {
            store.delete(&key).await?;
            return Err(RepoError::Locked { holder });
        }
        Err(err) => {
            let _ = store.delete(&key).await;
            return Err(err);
        }
    }
    let refresher = {
        let (store, key, mut lock) = (store.clone(), key.clone(), lock);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                lock.created_at = Utc::now();
                if let Err(err) = store.put_json(&key, &lock).await {
                    tracing::warn!("cannot refresh repository lock {key}: {err}");
                }
            }
        })
    };
    Ok(LockGuard {
        store,
        key,
        refresher,
    })
}

async fn find_conflict(
    store: &Store,
    own: &str,
    exclusive: bool,
) -> Result<Option<String>, RepoError> {
    for object in store.list("locks").await? {
        if object.key == own {
            continue;
        }
        let lock: LockFile = match store.get_json(&object.key).await {
            Ok(lock) => lock,
            // Released between the listing and the read.
            Err(RepoError::ObjectMissing { .. }) => continue,
            Err(err) => return Err(err),
        };
        let age = (Utc::now() - lock.created_at).to_std().unwrap_or_default();
        if age > STALE_AFTER {
            tracing::warn!(
                "ignoring stale lock {} ({} on {}, pid {})",
                object.key,
                lock.operation,
                lock.hostname,
                lock.pid
            );
            continue;
        }
        if exclusive || lock.exclusive {
            return Ok(Some(format!(
                "{} on {} (pid {}, since {})",
                lock.operation,
                lock.hostname,
                lock.pid,
                crate::duration::format_utc(lock.created_at)
            )));
        }
    }
    Ok(None)
}

impl LockGuard {
    pub async fn release(self) -> Result<(), RepoError> {
        self.refresher.abort();
        self.store.delete(&self.key).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into())
}
