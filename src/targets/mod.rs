//! The databases vecdrill protects and drills, one module per kind.

pub mod chroma;
pub mod faiss;
pub mod faiss_redis;
pub mod redis;
pub mod spec;

use crate::repo::format::Manifest;
use crate::repo::restorable::Problem;

/// What a backup's own description of its database says must be among its files and is not:
/// a manifest resealed with a file renamed or dropped restores without it, and the database
/// would not start. Part of the one decision of "restorable" that `verify` and `restore`
/// share (with [`crate::repo::restorable`]).
pub fn missing_recorded_files(manifest: &Manifest) -> Vec<Problem> {
    let files: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    let required = if manifest.source.kind == faiss_redis::SOURCE_KIND {
        faiss_redis::required_files(manifest)
    } else {
        chroma::protect::required_files(manifest)
    };
    required
        .into_iter()
        .filter(|(path, _)| !files.contains(path.as_str()))
        .map(|(path, why)| Problem {
            backup: Some(manifest.id.clone()),
            file: Some(path.clone()),
            object: format!("snapshots/{}", manifest.id),
            problem: format!("the backup does not hold {path}, which {why}"),
        })
        .collect()
}

/// The checks `verify` makes by reading parts of backups back into a scratch directory, each
/// with its backup's id: with `read_data`, each Chroma database compared with the manifest's
/// description of it (the counts a restore compares); always, each FAISS index parsed and
/// compared (and with the Redis key prefixes of `expect_match`). A Chroma database too damaged
/// to read back is not reported again when `repository_passed` says the repository's own
/// checks already found it.
pub async fn read_back_checks(
    repo: &crate::repo::Repository,
    manifests: &[Manifest],
    read_data: bool,
    expect_match: &[(String, String)],
    repository_passed: bool,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<(String, crate::repo::format::CheckResult)>, crate::repo::RepoError> {
    use crate::repo::RepoError;
    let chroma: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| read_data && chroma::protect::described(m).is_some())
        .collect();
    let faiss: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| faiss_redis::described(m).is_some())
        .collect();
    // Loaded once for all the backups read back.
    let index = if chroma.is_empty() && faiss.is_empty() {
        crate::repo::index::ChunkIndex::default()
    } else {
        crate::repo::index::ChunkIndex::load(repo).await?
    };
    let mut checks = Vec::new();
    for manifest in chroma {
        match chroma::protect::verify_backup(repo, &index, manifest, progress).await {
            Ok(found) => checks.extend(found.into_iter().map(|c| (manifest.id.clone(), c))),
            Err(RepoError::Corrupt { .. } | RepoError::ObjectMissing { .. })
                if !repository_passed => {}
            Err(err) => return Err(err),
        }
    }
    for manifest in faiss {
        let found =
            faiss_redis::verify_backup(repo, &index, manifest, expect_match, progress).await?;
        checks.extend(found.into_iter().map(|c| (manifest.id.clone(), c)));
    }
    Ok(checks)
}
