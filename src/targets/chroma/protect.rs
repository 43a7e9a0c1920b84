//! Back up a Chroma directory into a repository and restore it safely: the glue between the
//! capture, the offline checks and the repository, used by the CLI and by drill steps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::capture::{capture, CaptureError, CaptureMode, CaptureOptions};
use super::layout::{self, ChromaLayout};
use crate::exit::{self, Classify};
use crate::platform::Service;
use crate::progress::Progress;
use crate::repo::format::{normalise_tags, Capture, CheckResult, Manifest, Source};
use crate::repo::index::ChunkIndex;
use crate::repo::restore::{
    keep_interrupted_swaps, materialise, materialise_some, safety_copy_path, swap_into, working_dir,
};
use crate::repo::writer::{same_file, walk, BackupWriter, ManifestInfo};
use crate::repo::{backup_id, RepoError, Repository};
use crate::targets::faiss_redis;

#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error("{what} failed its checks, so it was not {action}: {}", failed.join("; "))]
    ChecksFailed {
        what: String,
        action: &'static str,
        failed: Vec<String>,
    },
    #[error(
        "backup {backup} was made by a newer Chroma than the one at {target} (schema {newer})"
    )]
    NewerChroma {
        backup: String,
        target: String,
        newer: String,
    },
    #[error(
        "{dir} is in use by a running server ({holders}); restoring under it would corrupt it"
    )]
    TargetInUse { dir: String, holders: String },
    #[error(transparent)]
    Redis(#[from] crate::targets::redis::RedisError),
    #[error("{0}")]
    Input(String),
    #[error("the {which} command failed: {reason}")]
    Hook { which: String, reason: String },
    #[error("{file} kept changing while it was read ({attempts} attempts), so no backup was made")]
    Unstable { file: String, attempts: u32 },
    #[error("restoring backup {backup} needs {needed} free in {dir} for the staged copy; {free} is free there")]
    NoSpace {
        backup: String,
        dir: String,
        needed: String,
        free: String,
    },
}

impl Classify for ProtectError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Repo(e) => e.exit_code(),
            Self::Capture(e) => e.exit_code(),
            Self::Layout(_) => exit::BAD_INPUT,
            Self::ChecksFailed { .. } => exit::FAILED,
            Self::NewerChroma { .. } | Self::TargetInUse { .. } => exit::BAD_INPUT,
            Self::Redis(e) => e.exit_code(),
            Self::Input(_) => exit::BAD_INPUT,
            Self::Hook { .. } | Self::Unstable { .. } | Self::NoSpace { .. } => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Repo(e) => e.hint(),
            Self::Capture(e) => e.hint(),
            Self::ChecksFailed { action: "committed", .. } => Some(
                "the live data itself may be damaged: check it with `sqlite3 chroma.sqlite3 'PRAGMA integrity_check'` and restore the last good backup".into(),
            ),
            Self::ChecksFailed { .. } => Some("try an older backup (`vecdrill list`), and run `vecdrill verify --read-data`".into()),
            Self::NewerChroma { .. } => Some("upgrade Chroma on the target first, or restore into an empty directory".into()),
            Self::TargetInUse { .. } => Some("stop the server first (a drill does this with a `stop` step)".into()),
            Self::Redis(e) => e.hint(),
            Self::Unstable { .. } => Some(
                "something is still writing the index: pause the writer with --pre/--post commands, or back up after it saves".into(),
            ),
            Self::Hook { .. } => Some("run the command by hand to see why it fails".into()),
            Self::NoSpace { .. } => Some("free space there (old `*.before-restore-*` safety copies are candidates), or restore to another --to; nothing was changed".into()),
            _ => None,
        }
    }
}

pub struct BackupRequest {
    pub dir: PathBuf,
    pub mode: Option<CaptureMode>,
    pub tags: Vec<String>,
    pub max_write_stall: Duration,
    pub staging_parent: Option<PathBuf>,
    /// Skip when the newest backup is younger than this (seed 000's "at most once per interval").
    pub min_interval: Option<Duration>,
    /// Read every file even when the last backup says it is unchanged (size, mtime, mode).
    pub read_all: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BackupOutcome {
    Created {
        manifest: Box<Manifest>,
    },
    Skipped {
        reason: String,
        newest: String,
        newest_at: DateTime<Utc>,
    },
}

/// Seed 000's "at most once per interval": the skip, when the newest backup of the same
/// source (`kind`, `path`) is too young.
pub fn skip_if_recent(
    existing: &[Manifest],
    source: (&str, &str),
    interval: Option<Duration>,
) -> Option<BackupOutcome> {
    let interval = interval?;
    let newest = existing
        .iter()
        .rev()
        .find(|m| (m.source.kind.as_str(), m.source.path.as_str()) == source)?;
    let age = (Utc::now() - newest.created_at)
        .to_std()
        .unwrap_or_default();
    (age < interval).then(|| BackupOutcome::Skipped {
        reason: format!(
            "the newest backup is {} old, younger than --min-interval {}",
            crate::duration::format_duration(age),
            crate::duration::format_duration(interval)
        ),
        newest: newest.id.clone(),
        newest_at: newest.created_at,
    })
}

/// How a backed-up directory is recorded: its canonical path. (One not created yet, such as a
/// restore's `--to`: its parent's canonical path and its name.)
pub fn source_path(dir: &Path) -> String {
    let canonical = dir.canonicalize().ok().or_else(|| {
        let parent = crate::atomic_file::parent(dir).canonicalize().ok()?;
        Some(parent.join(dir.file_name()?))
    });
    canonical.unwrap_or(dir.to_path_buf()).display().to_string()
}

pub async fn backup(
    repo: &Repository,
    request: &BackupRequest,
    service: Option<&mut (dyn Service + 'static)>,
    progress: &dyn Progress,
) -> Result<BackupOutcome, ProtectError> {
    let existing = repo.readable_manifests().await?;
    let source = source_path(&request.dir);
    if let Some(skipped) = skip_if_recent(&existing, ("chroma", &source), request.min_interval) {
        return Ok(skipped);
    }
    let began = Instant::now();
    let created_at = Utc::now();
    let options = CaptureOptions {
        mode: request.mode,
        max_write_stall: request.max_write_stall,
        staging_parent: request.staging_parent.clone(),
    };
    let captured = capture(&request.dir, &options, service).await?;
    tracing::info!(elapsed = ?began.elapsed(), "backup: captured");
    let dir = captured.dir.clone();
    let source_path = source;
    let parent = existing
        .iter()
        .rev()
        .find(|m| m.source.path == source_path)
        .filter(|_| !request.read_all);
    let mut files = walk(&dir)?;
    // The database first: the integrity check reads it at the same time, from a warm cache.
    files.sort_by_key(|(_, rel)| rel != layout::SQLITE_FILE);
    let checks = match parent.and_then(|p| carried_over(p, &files)) {
        Some(carried) => carried,
        None => {
            // integrity_check reads the whole database (seconds on a large one). A file
            // unchanged since a backup that passed it is the same bytes: say so instead.
            let integrity_known = parent.and_then(|p| unchanged_and_checked(p, &dir));
            let (checks_dir, run_integrity) = (dir.clone(), integrity_known.is_none());
            // The checks run beside the upload; the manifest is written once both are done.
            let task = tokio::task::spawn_blocking(move || {
                let plan = layout::CheckPlan {
                    integrity: run_integrity,
                    ..layout::CheckPlan::FULL
                };
                layout::run_checks(&checks_dir, plan)
            });
            Checks::Running {
                task,
                integrity_known,
            }
        }
    };
    let total: u64 = files
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut writer = BackupWriter::begin(repo).await?;
    if let Some(parent) = parent {
        writer.set_parent(parent);
    }
    progress.start("backing up", Some(total));
    let mut entries = Vec::with_capacity(files.len());
    for (path, rel) in &files {
        match writer.add_file(path, rel, progress).await {
            Ok(entry) => entries.push(entry),
            Err(err) => {
                progress.finish();
                writer.abort().await;
                return Err(err.into());
            }
        }
    }
    tracing::info!(elapsed = ?began.elapsed(), "backup: files stored");
    let (checks, database) = match checks.finish().await {
        Ok(done) => done,
        Err(err) => {
            progress.finish();
            writer.abort().await;
            return Err(err);
        }
    };
    let failed = failures(&checks);
    if !failed.is_empty() {
        progress.finish();
        writer.abort().await;
        return Err(ProtectError::ChecksFailed {
            what: format!("the copy of {}", request.dir.display()),
            action: "committed",
            failed,
        });
    }
    let database = match database {
        Ok(database) => database,
        Err(err) => {
            writer.abort().await;
            return Err(err);
        }
    };
    progress.finish();
    let info = ManifestInfo {
        id: backup_id(created_at),
        created_at,
        tags: normalise_tags(&request.tags),
        source: Source {
            kind: "chroma".into(),
            path: source_path,
        },
        capture: Capture {
            mode: captured.mode.as_str().into(),
            write_stall_ms: crate::duration::millis(captured.write_stall),
            attempts: captured.attempts,
            duration_ms: crate::duration::millis(began.elapsed()),
        },
        database,
        checks,
    };
    let manifest = writer.commit(info, entries).await?;
    drop(captured);
    Ok(BackupOutcome::Created {
        manifest: Box::new(manifest),
    })
}

/// The checks of a backup: run now, beside the upload, or carried over from its parent.
enum Checks {
    Running {
        task:
            tokio::task::JoinHandle<(Vec<CheckResult>, Result<ChromaLayout, layout::LayoutError>)>,
        /// The integrity result carried over when only the database is unchanged.
        integrity_known: Option<CheckResult>,
    },
    CarriedOver {
        checks: Vec<CheckResult>,
        database: serde_json::Value,
    },
}

impl Checks {
    /// Every check's result, and the database description for the manifest (or why the
    /// directory could not be described).
    async fn finish(
        self,
    ) -> Result<(Vec<CheckResult>, Result<serde_json::Value, ProtectError>), ProtectError> {
        match self {
            Checks::CarriedOver { checks, database } => Ok((checks, Ok(database))),
            Checks::Running {
                task,
                integrity_known,
            } => {
                let (mut checks, described) = task
                    .await
                    .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
                if let Some(known) = integrity_known {
                    checks.insert(0, known);
                }
                let database = described
                    .map(|d| serde_json::to_value(&d).unwrap_or_default())
                    .map_err(ProtectError::from);
                Ok((checks, database))
            }
        }
    }
}

/// The parent's checks and database description, when every file is the one the parent
/// recorded (same paths; same size, mtime and mode each) and the parent passed every check.
/// The bytes are those checked then, and the backup stores the parent's chunks, so checking
/// again would only re-read them: on a 1M-record database, a second of cold reads for a
/// re-backup that otherwise reads nothing.
fn carried_over(parent: &Manifest, files: &[(PathBuf, String)]) -> Option<Checks> {
    let all_same = files.len() == parent.files.len()
        && files
            .iter()
            .all(|(path, rel)| recorded_unchanged(parent, rel, path));
    let all_passed = !parent.checks.is_empty() && parent.checks.iter().all(|c| c.passed);
    (all_same && all_passed).then(|| Checks::CarriedOver {
        checks: parent.checks.iter().map(|c| carried(parent, c)).collect(),
        database: parent.database.clone(),
    })
}

/// The integrity result carried over from `parent` when its database file is unchanged and
/// passed `integrity_check` there.
fn unchanged_and_checked(parent: &Manifest, dir: &Path) -> Option<CheckResult> {
    let check = parent
        .checks
        .iter()
        .find(|c| c.name == "sqlite_integrity" && c.passed)?;
    let database = dir.join(layout::SQLITE_FILE);
    recorded_unchanged(parent, layout::SQLITE_FILE, &database).then(|| carried(parent, check))
}

/// Whether the file at `path` is evidently the one `parent` recorded as `rel`.
fn recorded_unchanged(parent: &Manifest, rel: &str, path: &Path) -> bool {
    let recorded = parent.files.iter().find(|f| f.path == rel);
    let meta = std::fs::metadata(path).ok();
    matches!((recorded, meta), (Some(r), Some(m)) if same_file(r, &m))
}

/// A passed check of `parent`, carried over: its detail names the backup that ran it (the
/// first one, when it was itself carried over).
fn carried(parent: &Manifest, check: &CheckResult) -> CheckResult {
    let detail = if check.detail.starts_with(CARRIED_PREFIX) {
        check.detail.clone()
    } else {
        format!(
            "{CARRIED_PREFIX}{}, which passed: {}",
            parent.id, check.detail
        )
    };
    CheckResult {
        name: check.name.clone(),
        passed: true,
        detail,
    }
}

const CARRIED_PREFIX: &str = "unchanged since backup ";

fn failures(checks: &[CheckResult]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

/// The database description stored in a manifest, when it is a Chroma one.
pub fn described(manifest: &Manifest) -> Option<ChromaLayout> {
    serde_json::from_value(manifest.database.clone()).ok()
}

/// The files a Chroma backup must hold by its own description, each with the reason.
pub fn required_files(manifest: &Manifest) -> Vec<(String, String)> {
    let mut required = vec![(
        layout::SQLITE_FILE.to_string(),
        "every Chroma directory has".to_string(),
    )];
    for collection in described(manifest)
        .map(|d| d.collections)
        .unwrap_or_default()
    {
        let Some(segment) = &collection.vector_segment else {
            continue;
        };
        // A vector index that has applied writes was flushed to its five files; one that has
        // not may have none yet, but then not some of them.
        let flushed = collection.vector_seq_id.unwrap_or(0) > 0;
        let prefix = format!("{segment}/");
        let started = manifest.files.iter().any(|f| f.path.starts_with(&prefix));
        let mut names = Vec::new();
        if flushed || started {
            names.extend(layout::HNSW_FILES);
        }
        if flushed {
            names.push(layout::HNSW_METADATA_FILE);
        }
        required.extend(names.into_iter().map(|name| {
            (
                format!("{prefix}{name}"),
                format!("collection {:?}'s vector index needs", collection.name),
            )
        }));
    }
    required
}

pub struct RestoreRequest {
    pub backup: String,
    /// Which source's backups `latest` means (see [`crate::repo::SourceChoice`]).
    pub source: crate::repo::SourceChoice,
    pub to: PathBuf,
    /// Safety copies of the target to keep, the one this restore makes included (older ones
    /// beyond it are removed); 0 keeps none.
    pub keep_safety_copies: usize,
    pub if_newer: bool,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RestoreOutcome {
    Restored {
        backup: String,
        created_at: DateTime<Utc>,
        to: PathBuf,
        safety_copy: Option<PathBuf>,
        files: usize,
        bytes: u64,
        checks: Vec<CheckResult>,
        duration_ms: f64,
    },
    Skipped {
        reason: String,
        backup: String,
    },
    Plan {
        backup: String,
        created_at: DateTime<Utc>,
        /// Whose backup it is, as `list` shows it.
        source: String,
        to: PathBuf,
        files: usize,
        bytes: u64,
        replaces_existing: bool,
        safety_copy: Option<PathBuf>,
        /// The collections (name and count) the backup brings, and those there now.
        collections: Vec<(String, u64)>,
        current: Vec<(String, u64)>,
    },
}

/// Where a restore reads from: a repository, or a portable archive file.
#[derive(Clone, Copy)]
pub enum RestoreSource<'a> {
    Repo(&'a Repository),
    Archive(&'a Path),
}

pub async fn restore(
    source: RestoreSource<'_>,
    request: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreOutcome, ProtectError> {
    let began = Instant::now();
    tracing::info!("restore: starting");
    check_restore_target(&request.to)?;
    let manifest = match source {
        RestoreSource::Repo(repo) => repo.backup(&request.backup, &request.source).await?,
        RestoreSource::Archive(path) => {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || crate::repo::archive::read_manifest(&path))
                .await
                .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))??
        }
    };
    let target = &request.to;
    // FAISS + Redis backups restore through the same staging and swap, with their own checks.
    let chroma = manifest.source.kind != faiss_redis::SOURCE_KIND;
    let exists = if chroma {
        target.join(layout::SQLITE_FILE).is_file()
    } else {
        target.join(faiss_redis::RDB_FILE).is_file() || target.join("faiss").is_dir()
    };
    if request.if_newer && exists {
        let local = if chroma {
            layout::data_time(target)
        } else {
            newest_mtime(target)
        };
        if let Some(local) = local {
            let local: DateTime<Utc> = local.into();
            if manifest.created_at <= local {
                return Ok(RestoreOutcome::Skipped {
                    reason: format!(
                        "the local data (modified {}) is as new as backup {} ({})",
                        crate::duration::format_utc(local),
                        manifest.id,
                        crate::duration::format_utc(manifest.created_at)
                    ),
                    backup: manifest.id,
                });
            }
        }
    }
    if exists && chroma {
        refuse_newer_schema(&manifest, target)?;
        let holders = layout::holders(target);
        if !holders.is_empty() {
            return Err(ProtectError::TargetInUse {
                dir: target.display().to_string(),
                holders: holders.join(", "),
            });
        }
    }
    let replaces_existing = target.exists()
        && std::fs::read_dir(target)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
    if request.dry_run {
        let counts = |layout: Option<ChromaLayout>| {
            layout
                .map(|l| {
                    l.collections
                        .into_iter()
                        .map(|c| (c.name, c.count))
                        .collect()
                })
                .unwrap_or_default()
        };
        return Ok(RestoreOutcome::Plan {
            backup: manifest.id.clone(),
            created_at: manifest.created_at,
            source: manifest.source_label(),
            collections: counts(described(&manifest)),
            current: counts(layout::inspect(target).ok()),
            to: target.clone(),
            files: manifest.files.len(),
            bytes: manifest.totals.logical_bytes,
            replaces_existing,
            safety_copy: (replaces_existing && request.keep_safety_copies > 0)
                .then(|| safety_copy_path(target, Utc::now())),
        });
    }
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| RepoError::io(format!("cannot create {}", parent.display()), e))?;
    }
    refuse_without_space(&manifest, target)?;
    // Removed on every early return; kept only once swapped in. (A staging copy a killed
    // restore left is incomplete by definition, and removed first; a whole one it left at
    // its swap, the previous data or the checked copy, is kept.)
    keep_interrupted_swaps(target);
    let staging = working_dir(target, "restore")?;
    let checks = stage_and_check(source, &manifest, staging.path(), progress).await?;
    let swapped = swap_into(staging.path(), target, request.keep_safety_copies)?;
    // Now the live directory: it must outlive the handle.
    let _ = staging.keep();
    tracing::info!(elapsed = ?began.elapsed(), "restore: swapped into place");
    Ok(RestoreOutcome::Restored {
        backup: manifest.id.clone(),
        created_at: manifest.created_at,
        to: target.clone(),
        safety_copy: swapped.safety_copy,
        files: manifest.files.len(),
        bytes: manifest.totals.logical_bytes,
        checks,
        duration_ms: crate::duration::millis(began.elapsed()),
    })
}

async fn stage_and_check(
    source: RestoreSource<'_>,
    manifest: &Manifest,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, ProtectError> {
    let began = Instant::now();
    // The decision `verify` makes, taken before anything is read: what the manifest and the
    // indexes alone show. Each file is then proven against its hash as it is read.
    let mut problems = crate::targets::missing_recorded_files(manifest);
    match source {
        RestoreSource::Repo(repo) => {
            let index = ChunkIndex::load(repo).await?;
            problems.extend(crate::repo::restorable::problems(manifest, &index));
            refuse_unrestorable(manifest, &problems)?;
            materialise(repo, &index, manifest, staging, progress).await?;
        }
        RestoreSource::Archive(path) => {
            refuse_unrestorable(manifest, &problems)?;
            let (path, dir) = (path.to_path_buf(), staging.to_path_buf());
            tokio::task::spawn_blocking(move || crate::repo::archive::extract(&path, &dir))
                .await
                .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))??;
        }
    }
    tracing::info!(elapsed = ?began.elapsed(), "restore: files written and hash-verified");
    if manifest.source.kind == faiss_redis::SOURCE_KIND {
        let (dir, recorded) = (staging.to_path_buf(), manifest.clone());
        let checks =
            tokio::task::spawn_blocking(move || faiss_redis::check_restored(&dir, &recorded))
                .await
                .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
        return checks_passed(manifest, checks);
    }
    let dir = staging.to_path_buf();
    let (mut checks, layout) =
        tokio::task::spawn_blocking(move || layout::run_checks(&dir, layout::CheckPlan::RESTORED))
            .await
            .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
    tracing::info!(elapsed = ?began.elapsed(), "restore: checks done");
    if let (Ok(restored), Some(recorded)) = (&layout, described(manifest)) {
        checks.extend(count_checks(&recorded, restored));
    }
    checks_passed(manifest, checks)
}

/// The first of `problems` as an error naming the backup, or nothing when there are none.
fn refuse_unrestorable(
    manifest: &Manifest,
    problems: &[crate::repo::restorable::Problem],
) -> Result<(), RepoError> {
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let more = match problems.len() - 1 {
        0 => String::new(),
        more => format!(" (and {more} more problems: `vecdrill verify` lists them)"),
    };
    Err(RepoError::Corrupt {
        what: format!("backup {}", manifest.id),
        detail: format!("{}: {}{more}", first.object, first.problem),
    })
}

/// Each recorded collection's count against the one read back: the part of a restore's checks
/// that depends on the manifest's description of the database (the rest read the files alone,
/// which the whole-file hashes prove are the ones the backup checked).
fn count_checks(recorded: &ChromaLayout, restored: &ChromaLayout) -> Vec<CheckResult> {
    recorded
        .collections
        .iter()
        .map(|collection| {
            let found = restored
                .collections
                .iter()
                .find(|c| c.id == collection.id)
                .map(|c| c.count);
            CheckResult {
                name: format!("count:{}", collection.name),
                passed: found == Some(collection.count),
                detail: format!(
                    "{:?} read back, {} recorded in the backup",
                    found, collection.count
                ),
            }
        })
        .collect()
}

/// For `verify --read-data`: the checks a restore of `manifest` would make against its
/// description of the database, from its `chroma.sqlite3` alone, read back into a scratch
/// directory. Nothing for a backup that is not a Chroma one.
pub async fn verify_backup(
    repo: &Repository,
    index: &ChunkIndex,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, RepoError> {
    let Some(recorded) = described(manifest) else {
        return Ok(Vec::new());
    };
    let scratch =
        tempfile::tempdir().map_err(|e| RepoError::io("cannot make a scratch directory", e))?;
    let database = |path: &str| path == layout::SQLITE_FILE;
    materialise_some(repo, index, manifest, database, scratch.path(), progress).await?;
    let dir = scratch.path().to_path_buf();
    let read_back = tokio::task::spawn_blocking(move || layout::inspect(&dir))
        .await
        .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
    Ok(match read_back {
        Ok(restored) => count_checks(&recorded, &restored),
        Err(err) => vec![CheckResult {
            name: "layout".into(),
            passed: false,
            detail: err.to_string(),
        }],
    })
}

fn checks_passed(
    manifest: &Manifest,
    checks: Vec<CheckResult>,
) -> Result<Vec<CheckResult>, ProtectError> {
    let failed = failures(&checks);
    if !failed.is_empty() {
        return Err(ProtectError::ChecksFailed {
            what: format!("backup {}", manifest.id),
            action: "restored",
            failed,
        });
    }
    Ok(checks)
}

/// Refuse, before anything is read, a `--to` the swap cannot replace safely: one with no name
/// of its own (`.`, `..`, `/`), whose rename would fail only after the whole download, or a
/// symbolic link, whose rename would replace the link and leave the data it points to as it
/// was while saying it had been restored.
fn check_restore_target(target: &Path) -> Result<(), ProtectError> {
    // Read off the text as given: `Path::components` would fold `dir/.` into `dir`.
    use std::os::unix::ffi::OsStrExt;
    let text = target.as_os_str().as_bytes();
    let end = text.iter().rposition(|b| *b != b'/').map_or(0, |i| i + 1);
    let last = text[..end]
        .rsplit(|b| *b == b'/')
        .next()
        .unwrap_or_default();
    let named = !matches!(last, b"" | b"." | b"..");
    if !named {
        return Err(ProtectError::Input(format!(
            "cannot restore to {:?}: a restore swaps a directory in place of --to, so --to must end in the directory's name (for example ../chroma or /srv/chroma)",
            target.display()
        )));
    }
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let points_to = std::fs::canonicalize(target)
                .map(|p| format!(" (it points to {})", p.display()))
                .unwrap_or_default();
            return Err(ProtectError::Input(format!(
                "{} is a symbolic link{points_to}; restore to the directory it points to",
                target.display()
            )));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(ProtectError::Input(format!(
                "{} is a file, not a directory; restore to a directory (a new one is created)",
                target.display()
            )));
        }
        _ => {}
    }
    // The restored copy is staged beside the target and renamed into place: the directory
    // holding it (or the nearest one that exists) must be writable, found out before any
    // download.
    let mut holder = crate::atomic_file::parent(target).to_path_buf();
    while !holder.exists() {
        match holder.parent() {
            Some(up) if !up.as_os_str().is_empty() => holder = up.to_path_buf(),
            _ => {
                holder = PathBuf::from(".");
                break;
            }
        }
    }
    if !holder.is_dir() {
        return Err(ProtectError::Input(format!(
            "{} is not a directory, so {} cannot be created under it",
            holder.display(),
            target.display()
        )));
    }
    if nix::unistd::access(&holder, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(ProtectError::Input(format!(
            "cannot write in {}, where the restored copy of {} would be staged and renamed into place; restore as a user who can write there, or to another --to",
            holder.display(),
            target.display()
        )));
    }
    Ok(())
}

/// Refuse, before anything is downloaded, a restore whose staged copy cannot fit beside the
/// target (the whole backup is staged there before the swap). Where the free space cannot be
/// read, the restore goes on and a full disk is reported when it happens.
fn refuse_without_space(manifest: &Manifest, target: &Path) -> Result<(), ProtectError> {
    let parent = crate::atomic_file::parent(target);
    let Ok(stats) = nix::sys::statvfs::statvfs(parent) else {
        return Ok(());
    };
    let free = stats
        .blocks_available()
        .saturating_mul(stats.fragment_size());
    let needed = manifest.totals.logical_bytes;
    if needed <= free {
        return Ok(());
    }
    let shown = crate::units::bytes;
    Err(ProtectError::NoSpace {
        backup: manifest.id.clone(),
        dir: parent.display().to_string(),
        needed: shown(needed),
        free: shown(free),
    })
}

/// The newest modification time of any file under `dir`.
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    walk(dir)
        .ok()?
        .iter()
        .filter_map(|(path, _)| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .max()
}

fn refuse_newer_schema(manifest: &Manifest, target: &Path) -> Result<(), ProtectError> {
    let (Some(backup), Ok(current)) = (described(manifest), layout::inspect(target)) else {
        return Ok(());
    };
    for (set, version) in &backup.schema {
        let known = current.schema.get(set).copied().unwrap_or(0);
        if *version > known {
            return Err(ProtectError::NewerChroma {
                backup: manifest.id.clone(),
                target: target.display().to_string(),
                newer: format!("{set} migration {version} > {known}"),
            });
        }
    }
    Ok(())
}
