//! The databases vecdrill protects and drills, one module per kind.

pub mod chroma;
pub mod faiss;
pub mod faiss_redis;
pub mod protect;
pub mod redis;
pub mod spec;

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::progress::Progress;
use crate::repo::format::{CheckResult, Manifest};
use crate::repo::index::ChunkIndex;
use crate::repo::restorable::Problem;
use crate::repo::{RepoError, Repository};

/// A database a drill works on, live: what the steps ask of it whatever its kind. Made from
/// the scenario's target by [`spec::TargetSpec::connect`].
#[async_trait]
pub trait Target: Send + Sync {
    fn kind(&self) -> spec::TargetKind;
    /// One health probe: the database answered within `timeout` and is ready for work (Chroma's
    /// heartbeat; Redis answering with its dataset loaded), or why not.
    async fn probe(&self, timeout: Duration) -> Result<(), String>;
    /// Chroma's collections, for the steps that work on them (counts, probes, search, seed,
    /// export, import, rebuild); `None` for a target without them.
    fn chroma(&self) -> Option<&chroma::ChromaClient> {
        None
    }
}

/// What one kind of database's backups are, read from a manifest alone: what must be among
/// their files, and how data of the kind is recognised, guarded and checked when a restore
/// replaces it. A new target is one module with one of these, and a line in [`FORMATS`].
#[async_trait]
pub trait BackupFormat: Sync {
    /// The `source.kind` its manifests record.
    fn source_kind(&self) -> &'static str;
    /// The files a backup must hold by its own description, each with the reason.
    fn required_files(&self, manifest: &Manifest) -> Vec<(String, String)>;
    /// Whether `dir` holds data of this kind (which a restore would replace).
    fn data_present(&self, dir: &Path) -> bool;
    /// When the data in `dir` last changed (for `restore --if-newer`).
    fn data_time(&self, dir: &Path) -> Option<SystemTime>;
    /// Refuse to replace the data in `dir` with `manifest`'s (in use by a server, made by a
    /// newer version).
    fn check_replaceable(
        &self,
        manifest: &Manifest,
        dir: &Path,
    ) -> Result<(), protect::ProtectError>;
    /// The checks on a staged copy before it is swapped in (blocking).
    fn check_staged(&self, dir: &Path, manifest: &Manifest) -> Vec<CheckResult>;
    /// What the backup brings, by name and count (collections, key prefixes), for a plan.
    fn recorded_counts(&self, manifest: &Manifest) -> Vec<(String, u64)>;
    /// What `dir` holds now, by name and count.
    fn counts_in(&self, dir: &Path) -> Vec<(String, u64)>;
    /// The collections the backup holds, as `list --json` and `info --json` show them
    /// (`name`, `count`, `dimension`); none for a kind without collections.
    fn collections(&self, _manifest: &Manifest) -> Vec<serde_json::Value> {
        Vec::new()
    }
    /// What `info` shows of the database beyond the files and checks: fields for `--json`,
    /// and lines of text.
    fn details(
        &self,
        manifest: &Manifest,
    ) -> (serde_json::Map<String, serde_json::Value>, Vec<String>);
    /// Whether `verify` reads this backup back: always, or with `--read-data` only.
    fn reads_back(&self, manifest: &Manifest, read_data: bool) -> bool;
    /// Read parts of the backup back into a scratch directory and check them (FAISS indexes
    /// with the Redis key prefixes of `expect_match` too).
    async fn read_back(
        &self,
        repo: &Repository,
        index: &ChunkIndex,
        manifest: &Manifest,
        expect_match: &[(String, String)],
        progress: &dyn Progress,
    ) -> Result<Vec<CheckResult>, RepoError>;
}

pub use spec::FORMATS;
/// The format of `manifest`'s backup (a manifest of an unknown kind reads as Chroma's, the
/// kind every backup had before there were others).
pub fn format_of(manifest: &Manifest) -> &'static dyn BackupFormat {
    FORMATS
        .iter()
        .copied()
        .find(|f| f.source_kind() == manifest.source.kind)
        .unwrap_or(&chroma::protect::FORMAT)
}

/// What a backup's own description of its database says must be among its files and is not:
/// a manifest resealed with a file renamed or dropped restores without it, and the database
/// would not start. Part of the one decision of "restorable" that `verify` and `restore`
/// share (with [`crate::repo::restorable`]).
pub fn missing_recorded_files(manifest: &Manifest) -> Vec<Problem> {
    let files: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    format_of(manifest)
        .required_files(manifest)
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
/// with its backup's id (what each kind reads back is its format's to say: with `read_data`,
/// each Chroma database compared with the manifest's description of it; always, each FAISS
/// index parsed and compared). A backup too damaged to read back is not reported again when
/// `repository_passed` says the repository's own checks already found it.
pub async fn read_back_checks(
    repo: &Repository,
    manifests: &[Manifest],
    read_data: bool,
    expect_match: &[(String, String)],
    repository_passed: bool,
    progress: &dyn Progress,
) -> Result<Vec<(String, CheckResult)>, RepoError> {
    let chosen: Vec<(&Manifest, &dyn BackupFormat)> = manifests
        .iter()
        .map(|m| (m, format_of(m)))
        .filter(|(m, format)| format.reads_back(m, read_data))
        .collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    // Loaded once for all the backups read back. An index the repository's own checks already
    // reported damaged leaves nothing more to read back (and must not hide that report).
    let index = match ChunkIndex::load(repo).await {
        Ok(index) => index,
        Err(RepoError::Corrupt { .. } | RepoError::ObjectMissing { .. }) if !repository_passed => {
            return Ok(Vec::new())
        }
        Err(err) => return Err(err),
    };
    let mut checks = Vec::new();
    for (manifest, format) in chosen {
        match format
            .read_back(repo, &index, manifest, expect_match, progress)
            .await
        {
            Ok(found) => checks.extend(found.into_iter().map(|c| (manifest.id.clone(), c))),
            Err(RepoError::Corrupt { .. } | RepoError::ObjectMissing { .. })
                if !repository_passed => {}
            Err(err) => return Err(err),
        }
    }
    Ok(checks)
}
