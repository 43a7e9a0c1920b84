//! Back up a Chroma directory into a repository (the glue between the capture, the offline
//! checks and the repository), and Chroma's [`BackupFormat`](crate::targets::BackupFormat):
//! what its backups must hold and what a restore checks before swapping one in. The restore
//! itself, shared by every target, is `crate::targets::protect`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use super::capture::{capture, CaptureMode, CaptureOptions};
use super::layout::{self, ChromaLayout, ExactProbe};
use super::state::ProbeSettings;
use crate::platform::Service;
use crate::progress::{Progress, Unit};
use crate::repo::format::{normalise_tags, Capture, CheckResult, Manifest, Source};
use crate::repo::index::ChunkIndex;
use crate::repo::restore::materialise_some;
use crate::repo::writer::{same_file, walk, BackupWriter, ManifestInfo};
use crate::repo::{backup_id, RepoError, Repository};
use crate::targets::protect::failures;
pub use crate::targets::protect::{
    restore, skip_if_recent, source_path, BackupOutcome, BackupSettings, ProtectError,
    RestoreOutcome, RestoreRequest, RestoreSource,
};

/// A Chroma directory as what a backup takes.
#[derive(Debug, Clone)]
pub struct ChromaSource {
    pub dir: PathBuf,
    /// How a directory in use is copied (none: refused when in use).
    pub mode: Option<CaptureMode>,
    /// Where the consistent copy is staged (default: beside `dir`).
    pub staging_parent: Option<PathBuf>,
    /// Read every file even when the last backup says it is unchanged (size, mtime, mode).
    pub read_all: bool,
}

#[async_trait::async_trait]
impl crate::targets::protect::BackupSource for ChromaSource {
    fn stops_service(&self) -> bool {
        self.mode == Some(CaptureMode::Cold)
    }

    async fn back_up(
        &self,
        repo: &Repository,
        settings: &BackupSettings,
        service: Option<&mut (dyn Service + 'static)>,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome, ProtectError> {
        backup(repo, self, settings, service, progress).await
    }
}

pub async fn backup(
    repo: &Repository,
    request: &ChromaSource,
    settings: &BackupSettings,
    service: Option<&mut (dyn Service + 'static)>,
    progress: &dyn Progress,
) -> Result<BackupOutcome, ProtectError> {
    let existing = repo.readable_manifests().await?;
    let source = source_path(&request.dir);
    if let Some(skipped) = skip_if_recent(&existing, ("chroma", &source), settings.min_interval) {
        return Ok(skipped);
    }
    // A schema vecdrill cannot read is said to be so before anything is copied (not found
    // later by the checks, where it would read as damage). Anything else wrong with the
    // directory is the capture's to find and name.
    if let Err(unsupported @ layout::LayoutError::Unsupported { .. }) =
        layout::generation(&request.dir)
    {
        return Err(unsupported.into());
    }
    let began = Instant::now();
    let created_at = Utc::now();
    let options = CaptureOptions {
        mode: request.mode,
        max_write_stall: settings.max_write_stall,
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
                // The probes read the vector index once more, beside the checks.
                let (probes, (checks, layout)) = std::thread::scope(|scope| {
                    let probes = scope.spawn(|| probes_of(&checks_dir));
                    let checked = layout::run_checks(&checks_dir, plan);
                    let probes = probes
                        .join()
                        .unwrap_or_else(|_| Err("the probe task panicked".into()));
                    (probes, checked)
                });
                (checks, layout.map(|layout| with_probes(layout, probes)))
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
    progress.start("backing up", Some(total), Unit::Bytes);
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
        tags: normalise_tags(&settings.tags),
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

/// The exact neighbours of probe queries in each collection of the copy in `dir`: what
/// `prove` judges a restored server's search by.
fn probes_of(dir: &Path) -> Result<BTreeMap<String, Vec<ExactProbe>>, String> {
    let began = Instant::now();
    let probes = super::neighbours::probes_of(dir, ProbeSettings::default());
    tracing::info!(elapsed = ?began.elapsed(), "exact probe neighbours read");
    probes
}

/// `layout` with its collections' probes recorded. A directory the offline reader cannot read
/// them from is still backed up, without them: its own checks decide whether it is sound.
fn with_probes(
    mut layout: ChromaLayout,
    probes: Result<BTreeMap<String, Vec<ExactProbe>>, String>,
) -> ChromaLayout {
    match probes {
        Ok(mut probes) => {
            for collection in &mut layout.collections {
                collection.probes = probes.remove(&collection.id).unwrap_or_default();
            }
        }
        Err(err) => {
            tracing::warn!("no probe neighbours recorded (a proof will not check search): {err}")
        }
    }
    layout
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
                detail: match found {
                    Some(count) => format!(
                        "{count} read back, {} recorded in the backup",
                        collection.count
                    ),
                    None => format!(
                        "the collection is missing from what was read back, {} recorded in the backup",
                        collection.count
                    ),
                },
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

fn refuse_newer_schema(manifest: &Manifest, target: &Path) -> Result<(), ProtectError> {
    let (Some(backup), Ok(current)) = (described(manifest), layout::inspect(target)) else {
        return Ok(());
    };
    for (set, version) in &backup.schema {
        let known = current.schema.get(set).copied().unwrap_or(0);
        if *version > known {
            let versions = |schema| {
                super::schema::Generation::of(schema)
                    .map_or("newer than vecdrill knows", |g| g.versions())
                    .to_string()
            };
            return Err(ProtectError::NewerChroma {
                backup: manifest.id.clone(),
                target: target.display().to_string(),
                backup_versions: format!("Chroma {}", versions(&backup.schema)),
                target_versions: format!("Chroma {}", versions(&current.schema)),
                newer: format!("{set} migration {version} > {known}"),
            });
        }
    }
    Ok(())
}

/// A Chroma persistent directory.
pub struct ChromaFormat;

pub static FORMAT: ChromaFormat = ChromaFormat;

#[async_trait::async_trait]
impl crate::targets::BackupFormat for ChromaFormat {
    fn collections(&self, manifest: &Manifest) -> Vec<serde_json::Value> {
        described(manifest)
            .map(|l| {
                l.collections
                    .iter()
                    .map(|c| serde_json::json!({ "name": c.name, "count": c.count, "dimension": c.dimension }))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn details(
        &self,
        manifest: &Manifest,
    ) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
        use crate::text::printable;
        let Some(layout) = described(manifest) else {
            return Default::default();
        };
        let mut lines = vec![format!(
            "journal_mode {}; schema {:?} (Chroma {})",
            printable(&layout.journal_mode),
            layout.schema,
            printable(layout.chroma_versions.as_deref().unwrap_or("not recorded"))
        )];
        lines.extend(layout.collections.iter().map(|c| {
            format!(
                "  collection {:<30} {:>10} records  dim {}",
                printable(&c.name),
                c.count,
                c.dimension
                    .map_or("not set (no record yet)".to_string(), |d| d.to_string())
            )
        }));
        (serde_json::Map::new(), lines)
    }

    /// With `--read-data`: the database is read back whole.
    fn reads_back(&self, manifest: &Manifest, read_data: bool) -> bool {
        read_data && described(manifest).is_some()
    }

    async fn read_back(
        &self,
        repo: &Repository,
        index: &ChunkIndex,
        manifest: &Manifest,
        _expect_match: &[(String, String)],
        progress: &dyn Progress,
    ) -> Result<Vec<CheckResult>, RepoError> {
        verify_backup(repo, index, manifest, progress).await
    }

    fn source_kind(&self) -> &'static str {
        "chroma"
    }

    fn required_files(&self, manifest: &Manifest) -> Vec<(String, String)> {
        required_files(manifest)
    }

    fn data_present(&self, dir: &Path) -> bool {
        dir.join(layout::SQLITE_FILE).is_file()
    }

    fn data_time(&self, dir: &Path) -> Option<std::time::SystemTime> {
        layout::data_time(dir)
    }

    fn check_replaceable(&self, manifest: &Manifest, dir: &Path) -> Result<(), ProtectError> {
        refuse_newer_schema(manifest, dir)?;
        let holders = layout::holders(dir);
        if !holders.is_empty() {
            return Err(ProtectError::TargetInUse {
                dir: dir.display().to_string(),
                holders: holders.join(", "),
            });
        }
        Ok(())
    }

    fn check_staged(&self, dir: &Path, manifest: &Manifest) -> Vec<CheckResult> {
        let (mut checks, layout) = layout::run_checks(dir, layout::CheckPlan::RESTORED);
        if let (Ok(restored), Some(recorded)) = (&layout, described(manifest)) {
            checks.extend(count_checks(&recorded, restored));
        }
        checks
    }

    fn recorded_counts(&self, manifest: &Manifest) -> Vec<(String, u64)> {
        collection_counts(described(manifest))
    }

    fn counts_in(&self, dir: &Path) -> Vec<(String, u64)> {
        collection_counts(layout::inspect(dir).ok())
    }
}

fn collection_counts(layout: Option<ChromaLayout>) -> Vec<(String, u64)> {
    layout
        .map(|l| {
            l.collections
                .into_iter()
                .map(|c| (c.name, c.count))
                .collect()
        })
        .unwrap_or_default()
}
