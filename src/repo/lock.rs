//! Repository locks, restic style: a backup holds a shared lock, a prune an exclusive one, so a
//! prune never deletes chunks a running backup has uploaded but not yet referenced.
//!
//! Object stores have no portable compare-and-swap, so a lock is written first and the other
//! locks are listed after: two writers that race both see each other and both back off. A lock
//! is refreshed while held; one not refreshed for [`STALE_AFTER`] belongs to a dead process,
//! and one naming a process of this host that no longer exists is taken over at once.
//!
//! A lock never outlives its process for long: [`LockGuard::release`] deletes it, a guard
//! dropped without release (an early return, a cancelled future) deletes it in the background,
//! and [`release_held`] deletes whatever is still held, for an interrupted command to call
//! before it exits.

use std::sync::{Arc, Mutex};
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
    refresher: Refresher,
}

/// Rewrites the lock every [`REFRESH_EVERY`]. Stopped between writes, never during one: a
/// refresh cut off mid-request could still land after the lock's deletion and bring it back.
struct Refresher {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Refresher {
    fn start(store: Arc<Store>, key: String, mut lock: LockFile) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(REFRESH_EVERY) => {}
                    _ = stopped.changed() => return,
                }
                lock.created_at = Utc::now();
                if let Err(err) = store.put_json(&key, &lock).await {
                    tracing::warn!("cannot refresh repository lock {key}: {err}");
                }
            }
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stop, and wait for a refresh in progress to finish.
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Every lock this process holds, by key, with its store.
static HELD: Mutex<Vec<(String, Arc<Store>)>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(String, Arc<Store>)>> {
    // A panic elsewhere while holding it leaves a plain list, still usable.
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn forget(key: &str) {
    held().retain(|(k, _)| k != key);
}

/// Locks [`release_held`] deleted, for [`release_again_after_shutdown`].
static RELEASED: Mutex<Vec<(String, Arc<Store>)>> = Mutex::new(Vec::new());

/// Delete every lock this process still holds. For an interrupted command, before it exits.
pub async fn release_held() {
    let locks = std::mem::take(&mut *held());
    for (key, store) in &locks {
        match store.delete(key).await {
            Ok(()) => tracing::info!("released repository lock {key}"),
            Err(err) => tracing::warn!("cannot release repository lock {key}: {err}"),
        }
    }
    RELEASED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .extend(locks);
}

/// Delete once more what [`release_held`] deleted, once the runtime has stopped: a lock whose
/// upload was still in flight when the command was interrupted (its write runs on a thread of
/// its own, which the interrupt cannot stop) can land after the first delete.
pub fn release_again_after_shutdown() {
    let locks = std::mem::take(
        &mut *RELEASED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    if locks.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        for (key, store) in locks {
            let _ = store.delete(&key).await;
        }
    });
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
        pid_space: pid_space(),
        created_at: Utc::now(),
    };
    held().push((key.clone(), store.clone()));
    if let Err(err) = store.put_json(&key, &lock).await {
        forget(&key);
        return Err(err);
    }
    let conflict = find_conflict(&store, &key, exclusive).await;
    match conflict {
        Ok(None) => {}
        Ok(Some(holder)) => {
            store.delete(&key).await?;
            forget(&key);
            return Err(RepoError::Locked { holder });
        }
        Err(err) => {
            let _ = store.delete(&key).await;
            forget(&key);
            return Err(err);
        }
    }
    let refresher = Refresher::start(store.clone(), key.clone(), lock);
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
            // Not named as a lock is (a file manager's `.DS_Store`): not vecdrill's.
            Err(RepoError::Corrupt { .. }) if !is_lock_key(&object.key) => continue,
            // Whose it is and whether it excludes this command cannot be known: it holds the
            // repository until someone who knows removes it.
            Err(RepoError::Corrupt { detail, .. }) => {
                return Ok(Some(format!(
                    "a lock that cannot be read, {} ({detail}); if no vecdrill command is using the repository, delete that object",
                    object.key
                )))
            }
            Err(err) => return Err(err),
        };
        let ours = held().iter().any(|(k, _)| k == &object.key);
        if !ours && owner_is_gone(&lock) {
            tracing::warn!(
                "taking over lock {}: {} (pid {}) on this host no longer runs",
                object.key,
                lock.operation,
                lock.pid
            );
            store.delete(&object.key).await?;
            continue;
        }
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

/// Whether `key` is a lock's name (`locks/<hex id>.json`, as [`acquire`] writes them): an
/// unreadable object named otherwise is not vecdrill's and excludes nothing.
fn is_lock_key(key: &str) -> bool {
    key.strip_prefix("locks/")
        .and_then(|name| name.strip_suffix(".json"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `lock` names a process of this host that no longer exists. A lock of another host
/// or pid namespace (or of a version that did not say which) cannot be judged from here and
/// waits for [`STALE_AFTER`]; one naming this very process, yet not held by it, was left by an
/// earlier process that had the same pid (pid 1 in a container).
fn owner_is_gone(lock: &LockFile) -> bool {
    let here = pid_space();
    if lock.hostname != hostname() || here.is_none() || lock.pid_space != here {
        return false;
    }
    if lock.pid == std::process::id() {
        return true;
    }
    let Ok(pid) = i32::try_from(lock.pid) else {
        return false;
    };
    crate::atomic_file::process_has_ended(pid)
}

impl LockGuard {
    /// Delete the lock. A command's outcome does not depend on it: what it committed stays
    /// committed, so a lock that cannot be deleted is a warning, not a failure.
    pub async fn release(mut self) {
        self.refresher.stop().await;
        if let Err(err) = self.store.delete(&self.key).await {
            tracing::warn!(
                "cannot remove repository lock {} ({err}); the next command on this host takes it over at once, one on another host after it expires ({} minutes)",
                self.key,
                STALE_AFTER.as_secs() / 60
            );
        }
        forget(&self.key);
    }
}

impl Drop for LockGuard {
    /// A guard dropped without [`LockGuard::release`]: delete the lock in the background, so a
    /// failed or cancelled command does not leave it for the next one to wait out.
    fn drop(&mut self) {
        let _ = self.refresher.stop.send(true);
        if !held().iter().any(|(k, _)| k == &self.key) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key) = (self.store.clone(), self.key.clone());
            let refresher = self.refresher.task.take();
            runtime.spawn(async move {
                if let Some(refresher) = refresher {
                    let _ = refresher.await;
                }
                if store.delete(&key).await.is_ok() {
                    forget(&key);
                }
            });
        }
    }
}

/// This process's pid space: the boot id (new at every boot) and the pid namespace's inode.
fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{} {}", boot.trim(), namespace.display()))
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into())
}
