//! An encrypted repository's key files, managed: list them, add one for another password,
//! remove one, change a password. Each writes or deletes key files only: the master key, and
//! so every stored object, stays as it is.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::keyfile::{key_key, KdfParams, KeyFile, KEYS_DIR};
use super::{format, lock, stored_name, RepoError, Repository};

/// One key file, as `key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    pub id: String,
    /// Whether its password opened the repository in this run.
    pub current: bool,
    pub hostname: Option<String>,
    pub username: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub kdf: Option<KdfSummary>,
    /// Whether it is a sound key file of this repository, unchanged since the holder of the
    /// master key wrote it (its mac).
    pub intact: bool,
    /// Why it is not intact.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KdfSummary {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Every key file, sorted by creation (unreadable ones last), each checked.
pub async fn list(repo: &Repository) -> Result<Vec<KeySummary>, RepoError> {
    let keys = require_keys(repo)?;
    let mut summaries = Vec::new();
    for object in super::keyfile::stored(&repo.store).await? {
        let id = stored_name(&object, KEYS_DIR).to_string();
        let current = repo.key_id.as_deref() == Some(id.as_str());
        let summary = match super::keyfile::read(&repo.store, &object).await? {
            Ok(file) => {
                let problem = check(repo, keys, &file, &id);
                KeySummary {
                    current,
                    hostname: Some(file.hostname),
                    username: Some(file.username),
                    created_at: Some(file.created_at),
                    kdf: Some(KdfSummary {
                        algorithm: file.kdf.algorithm,
                        memory_kib: file.kdf.memory_kib,
                        iterations: file.kdf.iterations,
                        parallelism: file.kdf.parallelism,
                    }),
                    intact: problem.is_none(),
                    problem,
                    id,
                }
            }
            Err(problem) => KeySummary {
                id,
                current,
                hostname: None,
                username: None,
                created_at: None,
                kdf: None,
                intact: false,
                problem: Some(problem),
            },
        };
        summaries.push(summary);
    }
    summaries.sort_by(|a, b| {
        (a.created_at.is_none(), a.created_at, &a.id).cmp(&(
            b.created_at.is_none(),
            b.created_at,
            &b.id,
        ))
    });
    Ok(summaries)
}

/// The intact key files, the one in use first, as many as a reader tries: what an archive
/// carries so that the repository's passwords open it.
pub async fn intact_key_files(repo: &Repository) -> Result<Vec<KeyFile>, RepoError> {
    let keys = require_keys(repo)?;
    let mut files = Vec::new();
    for object in super::keyfile::stored(&repo.store).await? {
        let id = stored_name(&object, KEYS_DIR).to_string();
        if let Ok(file) = super::keyfile::read(&repo.store, &object).await? {
            if check(repo, keys, &file, &id).is_none() {
                files.push(file);
            }
        }
    }
    files.sort_by_key(|f| repo.key_id.as_deref() != Some(f.id.as_str()));
    files.truncate(super::MAX_KEYS_TRIED);
    Ok(files)
}

/// Add a key file that opens the repository with `password`; its id.
pub async fn add(
    repo: &Repository,
    password: &[u8],
    params: KdfParams,
) -> Result<String, RepoError> {
    let guard = lock::acquire(repo, false, "key add").await?;
    let added = write_key(repo, password, params).await;
    guard.release().await;
    added
}

/// Remove the key file `prefix` names (a unique prefix of its id); its full id. The key that
/// opened the repository in this run and the last intact key are refused: a repository must
/// keep a password that opens it.
pub async fn remove(repo: &Repository, prefix: &str) -> Result<String, RepoError> {
    let keys = require_keys(repo)?;
    let guard = lock::acquire(repo, true, "key remove").await?;
    let removed = async {
        let objects = super::keyfile::stored(&repo.store).await?;
        let id = find(&objects, prefix)?;
        let mut others_intact = 0;
        for object in objects {
            let other = stored_name(&object, KEYS_DIR);
            if other == id {
                continue;
            }
            if let Ok(file) = super::keyfile::read(&repo.store, &object).await? {
                others_intact += usize::from(check(repo, keys, &file, other).is_none());
            }
        }
        if others_intact == 0 {
            return Err(RepoError::KeyRefused {
                reason: format!(
                    "key {} is the repository's last intact key: without it no password opens the repository",
                    short(&id)
                ),
                instead: "add another key first (`vecdrill key add`), or change this one's password with `vecdrill key passwd`".into(),
            });
        }
        if repo.key_id.as_deref() == Some(id.as_str()) {
            return Err(RepoError::KeyRefused {
                reason: format!("key {} is the one in use (its password opened the repository)", short(&id)),
                instead: "open the repository with another key's password to remove this one, or change its password with `vecdrill key passwd`".into(),
            });
        }
        repo.store.delete(&key_key(&id)).await?;
        tracing::info!("removed key file {}", key_key(&id));
        Ok(id)
    }
    .await;
    guard.release().await;
    removed
}

/// Change the password of the key in use: a new key file for `password` is written and read
/// back, then the old one is removed. Killed between the two, both keys open the repository.
/// The new key's id and the removed one's.
pub async fn change_password(
    repo: &Repository,
    password: &[u8],
    params: KdfParams,
) -> Result<(String, String), RepoError> {
    require_keys(repo)?;
    let old = repo
        .key_id
        .clone()
        .expect("an unlocked repository knows its key");
    let guard = lock::acquire(repo, true, "key passwd").await?;
    let changed = async {
        let new = write_key(repo, password, params).await?;
        repo.store.delete(&key_key(&old)).await?;
        tracing::info!("removed key file {}", key_key(&old));
        Ok((new, old.clone()))
    }
    .await;
    guard.release().await;
    changed
}

/// The first 8 characters of a key id, as `key list` shows it.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Write a key file for `password` and read it back: it must open the repository before a
/// caller relies on it.
async fn write_key(
    repo: &Repository,
    password: &[u8],
    params: KdfParams,
) -> Result<String, RepoError> {
    let keys = require_keys(repo)?;
    let file = KeyFile::create(keys, &repo.config.id, password, params);
    let object = key_key(&file.id);
    repo.store.put_clear(&object, &file).await?;
    let back: KeyFile = repo
        .store
        .get_clear(&object, format::limits::KEY_FILE_BYTES)
        .await?;
    match back.open(password, &repo.config.id) {
        Ok(opened) if opened.master() == keys.master() => {
            tracing::info!("wrote key file {object} and opened the repository with it");
            Ok(file.id)
        }
        _ => {
            let _ = repo.store.delete(&object).await;
            Err(RepoError::Corrupt {
                what: object,
                detail: "the key file read back does not open the repository; it was removed"
                    .into(),
            })
        }
    }
}

fn require_keys(repo: &Repository) -> Result<&super::crypto::Keys, RepoError> {
    repo.store.keys().ok_or_else(|| RepoError::NotEncrypted {
        url: repo.store.url().to_string(),
    })
}

/// Why `file`, stored as `id`, is not an intact key of this repository.
fn check(
    repo: &Repository,
    keys: &super::crypto::Keys,
    file: &KeyFile,
    id: &str,
) -> Option<String> {
    if let Err(problem) = file.validate(id) {
        return Some(problem);
    }
    if file.repository != repo.config.id {
        return Some(format!("it is a key of repository {}", file.repository));
    }
    if !file.authentic(keys) {
        return Some(
            "it does not authenticate with the repository's key: it was changed or written without the key"
                .into(),
        );
    }
    None
}

/// The one key id among the key file `objects` starting with `prefix`.
fn find(objects: &[String], prefix: &str) -> Result<String, RepoError> {
    let not_found = |detail: String| RepoError::NoSuchKey {
        prefix: prefix.to_string(),
        detail,
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found("a key id is hexadecimal".into()));
    }
    let prefix_lower = prefix.to_ascii_lowercase();
    let matching: Vec<String> = objects
        .iter()
        .map(|o| stored_name(o, KEYS_DIR).to_string())
        .filter(|id| id.starts_with(&prefix_lower))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(not_found("no key id starts with it".into())),
        many => Err(not_found(format!(
            "{} key ids start with it: give more of the id",
            many.len()
        ))),
    }
}
