//! Verification: every chunk a backup references is indexed and its pack exists at the right
//! size; with `read_data`, every pack is downloaded, checked against its name, and every chunk
//! decoded and re-hashed. A damaged object is reported with the backups and files it breaks,
//! and the check goes on to the end.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::format::{limits, Manifest};
use super::index::{load_pack_index, ChunkIndex};
use super::pack::{decode_chunk, open_pack};
use super::{pack_key, RepoError, Repository};
use crate::progress::Progress;

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

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The backup that cannot be restored intact, if the problem touches one.
    pub backup: Option<String>,
    pub file: Option<String>,
    /// The damaged or missing object.
    pub object: String,
    pub problem: String,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

pub async fn verify(
    repo: &Repository,
    manifests: &[Manifest],
    read_data: bool,
    progress: &dyn Progress,
) -> Result<VerifyReport, RepoError> {
    let mut problems = Vec::new();
    let index = load_index_tolerant(repo, &mut problems).await?;

    // Which backups and files use each pack: to name them when the pack is damaged.
    let mut users: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let (mut files, mut chunks) = (0u64, 0u64);
    for manifest in manifests {
        for file in &manifest.files {
            files += 1;
            for id in &file.chunks {
                chunks += 1;
                match index.get(id) {
                    Some(location) => {
                        users
                            .entry(location.pack.to_string())
                            .or_default()
                            .insert((manifest.id.clone(), file.path.clone()));
                    }
                    None => problems.push(Problem {
                        backup: Some(manifest.id.clone()),
                        file: Some(file.path.clone()),
                        object: format!("chunk {id}"),
                        problem: "not in any pack index".into(),
                    }),
                }
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
        let name = pack.clone();
        let entries = index
            .packs
            .get(pack)
            .map(|p| p.entries.clone())
            .unwrap_or_default();
        let outcome = tokio::task::spawn_blocking(move || -> Result<(), RepoError> {
            open_pack(&name, &bytes)?;
            for entry in &entries {
                let stored = bytes
                    .get(entry.offset as usize..(entry.offset + entry.length) as usize)
                    .ok_or_else(|| RepoError::Corrupt {
                        what: format!("pack {name}"),
                        detail: format!("chunk {} lies outside the pack", entry.id),
                    })?;
                decode_chunk(entry, stored, &format!("pack {name}"))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| RepoError::io("verify task", std::io::Error::other(e)))?;
        if let Err(err) = outcome {
            report(err.to_string());
        }
    }
    progress.finish();
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

/// Like [`ChunkIndex::load`], but an unreadable index file is a problem to report, not the end.
async fn load_index_tolerant(
    repo: &Repository,
    problems: &mut Vec<Problem>,
) -> Result<ChunkIndex, RepoError> {
    let mut index = ChunkIndex::default();
    for object in repo.store.list("index").await? {
        match load_pack_index(&repo.store, &object.key).await {
            Ok(pack_index) => index.insert(pack_index),
            Err(
                err @ (RepoError::Corrupt { .. }
                | RepoError::NewerFormat { .. }
                | RepoError::ObjectMissing { .. }),
            ) => problems.push(Problem {
                backup: None,
                file: None,
                object: object.key.clone(),
                problem: err.to_string(),
            }),
            Err(err) => return Err(err),
        }
    }
    Ok(index)
}
