//! Verification: what [`super::restorable`] decides of each backup from its manifest and the
//! indexes (every chunk indexed, every file's chunks adding up to its size), and every pack a
//! backup uses present at the right size. With `read_data`, every such pack is downloaded,
//! checked against its name and every chunk in it decoded and re-hashed; then every distinct
//! file is read back as a restore reads it and checked against its recorded hash. A damaged
//! object is reported with the backups and files it breaks, and the check goes on to the end.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::format::{limits, Manifest};
use super::index::ChunkIndex;
use super::pack::{decode_chunk, open_pack, Recheck};
pub use super::restorable::Problem;
use super::restorable::{locate, problems as unrestorable, read_file};
use super::{pack_key, DamagedManifest, RepoError, Repository};
use crate::progress::{Progress, Unit};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub backups: Vec<String>,
    pub read_data: bool,
    pub files: u64,
    pub chunks: u64,
    pub packs: u64,
    pub bytes_read: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Manifests that could not be read are problems too (their backups cannot be restored).
    pub fn add_damaged(&mut self, damaged: &[DamagedManifest]) {
        self.problems.extend(damaged.iter().map(|d| Problem {
            backup: Some(d.backup_id().to_string()),
            file: None,
            object: d.key.clone(),
            problem: d.problem.clone(),
        }));
    }
}

/// Verify `manifests`; `database_rules` adds what each backup's database description says it
/// must hold (the layer above knows databases, this one does not).
pub async fn verify(
    repo: &Repository,
    manifests: &[Manifest],
    read_data: bool,
    database_rules: &(dyn Fn(&Manifest) -> Vec<Problem> + Sync),
    progress: &dyn Progress,
) -> Result<VerifyReport, RepoError> {
    let mut problems = key_problems(repo).await?;
    let index = ChunkIndex::load_quietly(repo).await?;
    problems.extend(index.unreadable.iter().map(|(key, why)| Problem {
        backup: None,
        file: None,
        object: key.clone(),
        problem: why.clone(),
    }));

    // Which backups and files use each pack: to name them when the pack is damaged.
    let mut users: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let (mut files, mut chunks) = (0u64, 0u64);
    for manifest in manifests {
        problems.extend(unrestorable(manifest, &index));
        problems.extend(database_rules(manifest));
        for file in &manifest.files {
            files += 1;
            chunks += file.chunks.len() as u64;
            for location in file.chunks.iter().filter_map(|id| index.get(id)) {
                users
                    .entry(location.pack.to_string())
                    .or_default()
                    .insert((manifest.id.clone(), file.path.clone()));
            }
        }
    }

    let total_bytes: u64 = users
        .keys()
        .filter_map(|p| index.packs.get(p))
        .map(|p| p.pack_size)
        .sum();
    progress.start(
        if read_data { "reading" } else { "checking" },
        Some(if read_data {
            total_bytes
        } else {
            users.len() as u64
        }),
        if read_data { Unit::Bytes } else { Unit::Items },
    );
    let mut bytes_read = 0;
    for (pack, used_by) in &users {
        let key = pack_key(pack);
        let expected = index.packs.get(pack).map(|p| p.pack_size).unwrap_or(0);
        let mut report = |problem: String| {
            for (backup, file) in used_by {
                problems.push(Problem {
                    backup: Some(backup.clone()),
                    file: Some(file.clone()),
                    object: key.clone(),
                    problem: problem.clone(),
                });
            }
        };
        if !read_data {
            match repo.store.size(&key).await? {
                None => report("missing".into()),
                Some(size) if size != expected => {
                    report(format!("is {size} bytes, its index says {expected}"))
                }
                Some(_) => {}
            }
            progress.advance(1);
            continue;
        }
        let bytes = match repo.store.get(&key, limits::PACK_BYTES).await {
            Ok(bytes) => bytes,
            Err(RepoError::ObjectMissing { .. }) => {
                report("missing".into());
                continue;
            }
            Err(err) => return Err(err),
        };
        bytes_read += bytes.len() as u64;
        progress.advance(bytes.len() as u64);
        let entries = index
            .packs
            .get(pack)
            .map(|p| p.entries.clone())
            .unwrap_or_default();
        let outcome = check_pack(repo, pack, bytes, entries).await?;
        if let Err(err) = outcome {
            report(err.to_string());
        }
    }
    progress.finish();
    if read_data {
        bytes_read += read_files_back(repo, &index, manifests, &mut problems, progress).await?;
    }
    Ok(VerifyReport {
        backups: manifests.iter().map(|m| m.id.clone()).collect(),
        read_data,
        files,
        chunks,
        packs: users.len() as u64,
        bytes_read,
        problems,
    })
}

/// Whether pack `name`, read whole as `bytes`, is what its index `entries` say: its trailer
/// lists the same chunks, and every chunk decodes and re-hashes to its id. `Err` only when the
/// check itself could not run; `Ok(Err)` is the damage found.
pub async fn check_pack(
    repo: &Repository,
    name: &str,
    bytes: bytes::Bytes,
    entries: Vec<super::format::PackEntry>,
) -> Result<Result<(), RepoError>, RepoError> {
    let name = name.to_string();
    let keys = repo.store.shared_keys();
    tokio::task::spawn_blocking(move || -> Result<(), RepoError> {
        let keys = keys.as_deref();
        // The trailer is the pack's own list of its chunks: an index file that lists
        // others (a forged one, or one of another pack) is damage too.
        let mut listed = open_pack(&name, &bytes, keys)?;
        let mut indexed = entries.clone();
        listed.sort_by_key(|e| e.offset);
        indexed.sort_by_key(|e| e.offset);
        if listed != indexed {
            return Err(RepoError::Corrupt {
                what: format!("pack {name}"),
                detail: format!(
                    "its trailer lists {} chunks and {} differ from what {} lists",
                    listed.len(),
                    listed.iter().filter(|e| !indexed.contains(e)).count()
                        + indexed.iter().filter(|e| !listed.contains(e)).count(),
                    super::index_key(&name)
                ),
            });
        }
        for entry in &entries {
            let stored = bytes
                .get(entry.offset as usize..(entry.offset + entry.length) as usize)
                .ok_or_else(|| RepoError::Corrupt {
                    what: format!("pack {name}"),
                    detail: format!("chunk {} lies outside the pack", entry.id),
                })?;
            decode_chunk(
                entry,
                stored,
                &format!("pack {name}"),
                keys,
                Recheck::Always,
            )?;
        }
        Ok(())
    })
    .await
    .map_err(|e| RepoError::io("verify task", std::io::Error::other(e)))
}

/// Read every distinct file of `manifests` back as a restore would, without writing it, and
/// check it against its recorded hash; a file already found broken is not read again. Returns
/// the bytes read.
async fn read_files_back(
    repo: &Repository,
    index: &ChunkIndex,
    manifests: &[Manifest],
    problems: &mut Vec<Problem>,
    progress: &dyn Progress,
) -> Result<u64, RepoError> {
    let broken: BTreeSet<(String, String)> = problems
        .iter()
        .filter_map(|p| Some((p.backup.clone()?, p.file.clone()?)))
        .collect();
    // A file is its hash and its chunk list: the same pair in many backups is read once.
    let mut distinct: BTreeMap<[u8; 32], Vec<(&Manifest, usize)>> = BTreeMap::new();
    for manifest in manifests {
        for (i, file) in manifest.files.iter().enumerate() {
            if broken.contains(&(manifest.id.clone(), file.path.clone())) {
                continue;
            }
            let mut key = blake3::Hasher::new();
            key.update(&file.hash.0);
            file.chunks.iter().for_each(|c| {
                key.update(&c.0);
            });
            distinct
                .entry(*key.finalize().as_bytes())
                .or_default()
                .push((manifest, i));
        }
    }
    let total = distinct
        .values()
        .map(|users| users[0].0.files[users[0].1].size)
        .sum();
    progress.start("reading back", Some(total), Unit::Bytes);
    let no_writes: super::restorable::ChunkSink = std::sync::Arc::new(|_, _| Ok(()));
    let mut bytes_read = 0;
    for users in distinct.values() {
        let (manifest, i) = users[0];
        let file = &manifest.files[i];
        let what = format!("file {}", file.path);
        let outcome = match locate(index, file) {
            Ok(located) => read_file(repo, file, located, &what, no_writes.clone(), progress).await,
            Err(problem) => Err(RepoError::Corrupt {
                what: problem.object,
                detail: problem.problem,
            }),
        };
        match outcome {
            Ok(()) => bytes_read += file.size,
            Err(err @ RepoError::Corrupt { .. }) => {
                for (manifest, i) in users {
                    problems.push(Problem {
                        backup: Some(manifest.id.clone()),
                        file: Some(manifest.files[*i].path.clone()),
                        object: what.clone(),
                        problem: err.to_string(),
                    });
                }
            }
            Err(err) => return Err(err),
        }
    }
    progress.finish();
    Ok(bytes_read)
}

/// Every key file of an encrypted repository that is not as the master key's holder wrote it:
/// a planted or edited one opens nothing, yet must not pass unnoticed.
async fn key_problems(repo: &Repository) -> Result<Vec<Problem>, RepoError> {
    if !repo.encrypted() {
        return Ok(Vec::new());
    }
    Ok(super::keyring::list(repo)
        .await?
        .into_iter()
        .filter(|key| !key.intact)
        .map(|key| Problem {
            backup: None,
            file: None,
            object: super::keyfile::key_key(&key.id),
            problem: key.problem.unwrap_or_default(),
        })
        .collect())
}
