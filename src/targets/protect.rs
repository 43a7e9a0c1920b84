//! What every target shares to protect its data: the backup outcome and its errors, and the
//! restore (stage, check, swap) every kind goes through, with each kind's own part taken from
//! its [`super::BackupFormat`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chroma::capture::CaptureError;
use super::chroma::layout;
use crate::exit::{self, Classify};
use crate::progress::Progress;
use crate::repo::format::{CheckResult, Manifest};
use crate::repo::index::ChunkIndex;
use crate::repo::restore::{
    keep_interrupted_swaps, materialise, safety_copy_path, swap_into, working_dir,
};
use crate::repo::writer::walk;
use crate::repo::{RepoError, Repository};

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
        "backup {backup} was made by a newer Chroma ({backup_versions}) than the one at {target} ({target_versions}; schema {newer}), which cannot open it"
    )]
    NewerChroma {
        backup: String,
        target: String,
        /// The Chroma releases each schema belongs to.
        backup_versions: String,
        target_versions: String,
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
    #[error("no backup and shipped log of {of} restores {at}; it can be restored to any second of: {windows}")]
    Uncovered {
        at: String,
        of: String,
        windows: String,
    },
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
            Self::Input(_) | Self::Uncovered { .. } => exit::BAD_INPUT,
            Self::Hook { .. } | Self::Unstable { .. } | Self::NoSpace { .. } => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Repo(e) => e.hint(),
            Self::Layout(e) => e.hint(),
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
            Self::Uncovered { .. } => Some("give --at a moment in one of those windows, or restore a backup by its id (`vecdrill list`); `vecdrill follow` ships the log so that every second since its base backup can be restored".into()),
            Self::NoSpace { .. } => Some("free space there (old `*.before-restore-*` safety copies are candidates), or restore to another --to; nothing was changed".into()),
            _ => None,
        }
    }
}

/// What every backup is asked, whatever it copies.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub tags: Vec<String>,
    /// Hot mode: give up when writers would be held off longer. (FAISS + Redis: how long
    /// Redis may take to save, at least five minutes.)
    pub max_write_stall: Duration,
    /// Skip when the newest backup of the source is younger than this.
    pub min_interval: Option<Duration>,
}

/// What is backed up: one kind's description of its data, which knows how to take it.
#[async_trait::async_trait]
pub trait BackupSource: std::fmt::Debug + Send + Sync {
    /// Whether taking it stops the service and starts it again (a cold copy).
    fn stops_service(&self) -> bool {
        false
    }

    async fn back_up(
        &self,
        repo: &Repository,
        settings: &BackupSettings,
        service: Option<&mut (dyn crate::platform::Service + 'static)>,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome, ProtectError>;
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

pub fn failures(checks: &[CheckResult]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

pub struct RestoreRequest {
    pub backup: String,
    /// Which source's backups `latest` means (see [`crate::repo::SourceChoice`]) when the
    /// directory restored into has none of its own (see [`RestoreRequest::choice`]).
    pub source: crate::repo::SourceChoice,
    pub to: PathBuf,
    /// Safety copies of the target to keep, the one this restore makes included (older ones
    /// beyond it are removed); 0 keeps none.
    pub keep_safety_copies: usize,
    pub if_newer: bool,
    pub dry_run: bool,
    /// Work on the staged copy once its checks passed and before it is swapped in (a
    /// point-in-time restore writes the shipped log into it); its checks join the restore's.
    pub then: Option<std::sync::Arc<dyn StagedStep>>,
}

/// See [`RestoreRequest::then`].
#[async_trait::async_trait]
pub trait StagedStep: Send + Sync {
    /// Work on `staging`, which holds backup `manifest`, restored and checked.
    async fn apply(
        &self,
        staging: &Path,
        manifest: &Manifest,
    ) -> Result<Vec<CheckResult>, ProtectError>;
}

impl RestoreRequest {
    /// Whose backups `latest` means: the newest backup of the directory being restored, when
    /// it has any, else as `source` says (so `latest` never swaps in another database).
    pub fn choice(&self) -> crate::repo::SourceChoice {
        Self::choice_for(&self.to, self.source.clone())
    }

    /// [`RestoreRequest::choice`] of a restore into `to`.
    pub fn choice_for(to: &Path, source: crate::repo::SourceChoice) -> crate::repo::SourceChoice {
        crate::repo::SourceChoice {
            path: Some(source_path(to)),
            ..source
        }
    }
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
    Archive(&'a crate::repo::archive::Archive),
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
        RestoreSource::Repo(repo) => repo.backup(&request.backup, &request.choice()).await?,
        RestoreSource::Archive(archive) => {
            let archive = archive.clone();
            tokio::task::spawn_blocking(move || archive.read_manifest())
                .await
                .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))??
        }
    };
    let target = &request.to;
    // Every kind restores through the same staging and swap, with its own checks.
    let format = super::format_of(&manifest);
    let exists = format.data_present(target);
    if request.if_newer && exists {
        if let Some(local) = format.data_time(target) {
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
    if exists {
        format.check_replaceable(&manifest, target)?;
    }
    let replaces_existing = target.exists()
        && std::fs::read_dir(target)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
    if request.dry_run {
        return Ok(RestoreOutcome::Plan {
            backup: manifest.id.clone(),
            created_at: manifest.created_at,
            source: manifest.source_label(),
            collections: format.recorded_counts(&manifest),
            current: format.counts_in(target),
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
    let mut checks = stage_and_check(source, &manifest, staging.path(), progress).await?;
    if let Some(step) = &request.then {
        checks.extend(step.apply(staging.path(), &manifest).await?);
    }
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
        RestoreSource::Archive(archive) => {
            refuse_unrestorable(manifest, &problems)?;
            let (archive, dir) = (archive.clone(), staging.to_path_buf());
            tokio::task::spawn_blocking(move || archive.extract(&dir))
                .await
                .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))??;
        }
    }
    tracing::info!(elapsed = ?began.elapsed(), "restore: files written and hash-verified");
    let (dir, recorded) = (staging.to_path_buf(), manifest.clone());
    let checks = tokio::task::spawn_blocking(move || {
        super::format_of(&recorded).check_staged(&dir, &recorded)
    })
    .await
    .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
    tracing::info!(elapsed = ?began.elapsed(), "restore: checks done");
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
pub fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    walk(dir)
        .ok()?
        .iter()
        .filter_map(|(path, _)| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .max()
}
