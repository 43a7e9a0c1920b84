//! The databases vecdrill protects and drills, one module per kind.

pub mod chroma;
pub mod faiss;
pub mod faiss_redis;
pub mod redis;

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
