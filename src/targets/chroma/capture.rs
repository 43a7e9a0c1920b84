//! Taking a consistent copy of a Chroma persistent directory.
//!
//! Copying the files while Chroma writes can lose vectors silently (it rewrites HNSW files in
//! place and purges its log behind them), so a directory in use is only copied in one of two
//! ways:
//! - `cold`: stop the service, copy to a staging directory, start it again (start runs even
//!   when the copy fails, and from a watcher process when vecdrill dies or is interrupted
//!   while the service is stopped: see `platform::start_guard`);
//! - `hot`: hold a SQLite read transaction (journal mode `delete`: it holds off every commit)
//!   while copying the database and the segment directories; if a segment file changes during
//!   the copy, release and try again, giving up after `max_write_stall`.
//!
//! A directory nobody has open is read in place (`offline`); one held by a running server
//! without a mode is refused with an explanation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::layout::{self, SQLITE_FILE};
use crate::exit::{self, Classify};
use crate::platform::start_guard::StartGuard;
use crate::platform::{PlatformError, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    Offline,
    Cold,
    Hot,
}

impl std::str::FromStr for CaptureMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "offline" => Ok(Self::Offline),
            "cold" => Ok(Self::Cold),
            "hot" => Ok(Self::Hot),
            other => Err(format!("unknown mode {other:?}: use cold or hot")),
        }
    }
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Cold => "cold",
            Self::Hot => "hot",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{dir} is in use by a running server ({holders}); copying it now could lose vectors silently")]
    InUse { dir: String, holders: String },
    #[error("hot capture gave up: segment files kept changing for {waited:?} (limit --max-write-stall {limit:?})")]
    Stalled { waited: Duration, limit: Duration },
    #[error("hot capture needs journal_mode=delete; {dir} uses {mode}")]
    JournalMode { dir: String, mode: String },
    #[error("cold capture needs a service to stop and start")]
    NoService,
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("{path} is a symbolic link (or another entry that is neither a file nor a directory); vecdrill never follows links out of the directory it backs up")]
    Link { path: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("cannot hold the read transaction on {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
}

impl Classify for CaptureError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::InUse { .. }
            | Self::NoService
            | Self::JournalMode { .. }
            | Self::Layout(_)
            | Self::Link { .. } => exit::BAD_INPUT,
            _ => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::InUse { .. } => Some(
                "use --mode hot (no downtime: commits wait while the files are copied) or --mode cold (stop, copy, start)".into(),
            ),
            Self::Stalled { .. } => Some("raise --max-write-stall, back up at a quieter time, or use --mode cold".into()),
            Self::NoService => Some("give --stop-cmd and --start-cmd, or run the backup as a scenario step".into()),
            Self::Link { .. } => Some(
                "replace the link with the files it points to, or back up the directory the link points to instead".into(),
            ),
            _ => None,
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CaptureError {
    let context = context.into();
    move |source| CaptureError::Io { context, source }
}

/// A consistent copy ready to be stored.
pub struct Captured {
    /// The directory to back up: a staging copy, or the source itself when offline.
    pub dir: PathBuf,
    pub mode: CaptureMode,
    /// How long writers waited (hot) or the service was down (cold).
    pub write_stall: Duration,
    pub attempts: u32,
    staging: Option<PathBuf>,
}

impl Drop for Captured {
    fn drop(&mut self) {
        if let Some(staging) = &self.staging {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}

pub struct CaptureOptions {
    pub mode: Option<CaptureMode>,
    pub max_write_stall: Duration,
    /// Where the staging copy goes; default beside the source (same filesystem).
    pub staging_parent: Option<PathBuf>,
}

pub async fn capture(
    source: &Path,
    options: &CaptureOptions,
    service: Option<&mut (dyn Service + 'static)>,
) -> Result<Captured, CaptureError> {
    refuse_links(source)?;
    if !source.join(SQLITE_FILE).is_file() {
        return Err(layout::LayoutError::NotChroma {
            path: source.display().to_string(),
            reason: format!("no {SQLITE_FILE}"),
        }
        .into());
    }
    match options.mode.unwrap_or(CaptureMode::Offline) {
        CaptureMode::Offline => {
            let holders = layout::holders(source);
            if !holders.is_empty() {
                return Err(CaptureError::InUse {
                    dir: source.display().to_string(),
                    holders: holders.join(", "),
                });
            }
            Ok(Captured {
                dir: source.to_path_buf(),
                mode: CaptureMode::Offline,
                write_stall: Duration::ZERO,
                attempts: 1,
                staging: None,
            })
        }
        CaptureMode::Cold => {
            let service = service.ok_or(CaptureError::NoService)?;
            let staging = staging_dir(source, options)?;
            // Armed before the stop: from then until the start below, vecdrill's death
            // (nothing of it runs after a SIGKILL) still starts the service again.
            let guard = service.start_guard()?;
            let stopped = Instant::now();
            if let Err(err) = service.stop().await {
                guard.into_iter().for_each(StartGuard::disarm);
                return Err(err.into());
            }
            let (from, to) = (source.to_path_buf(), staging.clone());
            let copied = tokio::task::spawn_blocking(move || copy_tree(&from, &to))
                .await
                .map_err(|e| CaptureError::Io {
                    context: "copy task".into(),
                    source: std::io::Error::other(e),
                })
                .and_then(|r| r);
            // Start again whatever happened to the copy: a backup must not cause an outage.
            let started = service.start().await;
            guard.into_iter().for_each(StartGuard::disarm);
            let write_stall = stopped.elapsed();
            let captured = Captured {
                dir: staging.clone(),
                mode: CaptureMode::Cold,
                write_stall,
                attempts: 1,
                staging: Some(staging),
            };
            copied?;
            started?;
            Ok(captured)
        }
        CaptureMode::Hot => {
            let staging = staging_dir(source, options)?;
            let (from, to, limit) = (
                source.to_path_buf(),
                staging.clone(),
                options.max_write_stall,
            );
            let result = tokio::task::spawn_blocking(move || hot_copy(&from, &to, limit))
                .await
                .map_err(|e| CaptureError::Io {
                    context: "copy task".into(),
                    source: std::io::Error::other(e),
                })
                .and_then(|r| r);
            match result {
                Ok((write_stall, attempts)) => Ok(Captured {
                    dir: staging.clone(),
                    mode: CaptureMode::Hot,
                    write_stall,
                    attempts,
                    staging: Some(staging),
                }),
                Err(err) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    Err(err)
                }
            }
        }
    }
}

/// A new staging directory for a copy of `source`: beside it (or in `staging_parent`), named
/// `.<name>.vecdrill-stage-<pid>-<random>` and created exclusively. Staging directories that
/// a killed backup left (their pid no longer runs here) are removed first; another running
/// backup's are left alone.
fn staging_dir(source: &Path, options: &CaptureOptions) -> Result<PathBuf, CaptureError> {
    let name = crate::atomic_file::name_of(source);
    let parent = match &options.staging_parent {
        Some(parent) => parent.clone(),
        None => crate::atomic_file::parent(source).to_path_buf(),
    };
    let prefix = format!(".{name}.vecdrill-stage-");
    remove_dead_stagings(&parent, &prefix);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(io(format!(
            "cannot create a staging directory in {}",
            parent.display()
        )))?;
    Ok(dir.keep())
}

/// Remove the staging directories in `parent` that killed backups left.
fn remove_dead_stagings(parent: &Path, prefix: &str) {
    for dir in crate::atomic_file::left_by_ended_processes(parent, prefix) {
        tracing::info!("removing {}, left by an interrupted backup", dir.display());
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Size and modification time of every file under the segment directories.
type FileStamps = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

fn stamps(source: &Path) -> FileStamps {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(source) else {
        return out;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for file in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(meta) = file.metadata() {
                out.insert(file.path(), (meta.len(), meta.modified().ok()));
            }
        }
    }
    out
}

fn hot_copy(
    source: &Path,
    staging: &Path,
    limit: Duration,
) -> Result<(Duration, u32), CaptureError> {
    let sqlite = source.join(SQLITE_FILE);
    let sql_err = |source| CaptureError::Sqlite {
        path: sqlite.display().to_string(),
        source,
    };
    let conn =
        rusqlite::Connection::open_with_flags(&sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql_err)?;
    conn.busy_timeout(limit).map_err(sql_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(sql_err)?;
    if mode.to_lowercase() != "delete" {
        return Err(CaptureError::JournalMode {
            dir: source.display().to_string(),
            mode,
        });
    }
    let began = Instant::now();
    let mut stalled = Duration::ZERO;
    for attempt in 1.. {
        conn.execute_batch("BEGIN DEFERRED").map_err(sql_err)?;
        // The first read takes the SHARED lock that holds off every commit until COMMIT.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(sql_err)?;
        let held = Instant::now();
        let before = stamps(source);
        let copied = std::fs::remove_dir_all(staging)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .and_then(|_| std::fs::create_dir_all(staging))
            .map_err(io("cannot reset the staging directory"))
            .and_then(|_| copy_tree(source, staging));
        let after = stamps(source);
        conn.execute_batch("COMMIT").map_err(sql_err)?;
        stalled += held.elapsed();
        copied?;
        if before == after {
            return Ok((stalled, attempt));
        }
        tracing::info!(
            attempt,
            "segment files changed during the hot copy; retrying"
        );
        if began.elapsed() >= limit {
            return Err(CaptureError::Stalled {
                waited: began.elapsed(),
                limit,
            });
        }
        std::thread::sleep(
            Duration::from_millis(50 * attempt as u64).min(Duration::from_millis(500)),
        );
    }
    unreachable!("the loop returns")
}

/// Refuse a tree holding a symbolic link or any entry that is neither a regular file nor a
/// directory, in every mode alike: a link can point anywhere on the host (`/etc/ssl`), loop,
/// or come back from a restore as a regular file, so none is ever followed. Checked before a
/// cold capture stops the service, and again by every copy (a link may appear meanwhile).
/// (`dir` itself is the path the user named, and may be a link.)
fn refuse_links(dir: &Path) -> Result<(), CaptureError> {
    for entry in std::fs::read_dir(dir).map_err(io(format!("cannot list {}", dir.display())))? {
        let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
        let kind = entry
            .file_type()
            .map_err(io(format!("cannot read {}", entry.path().display())))?;
        if kind.is_dir() {
            refuse_links(&entry.path())?;
        } else if !kind.is_file() {
            return Err(CaptureError::Link {
                path: entry.path().display().to_string(),
            });
        }
    }
    Ok(())
}

/// Copy the database file and the segment directories; SQLite's transient `-journal`,
/// `-wal` and `-shm` files are left behind. Links are refused, never followed.
fn copy_tree(source: &Path, dest: &Path) -> Result<(), CaptureError> {
    for entry in
        std::fs::read_dir(source).map_err(io(format!("cannot list {}", source.display())))?
    {
        let entry = entry.map_err(io(format!("cannot list {}", source.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-journal")
            || name.ends_with("-wal")
            || name.ends_with("-shm")
            || name.starts_with(".")
        {
            continue;
        }
        let target = dest.join(&name);
        let kind = entry
            .file_type()
            .map_err(io(format!("cannot read {}", path.display())))?;
        if !kind.is_dir() && !kind.is_file() {
            return Err(CaptureError::Link {
                path: path.display().to_string(),
            });
        }
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(io(format!("cannot create {}", target.display())))?;
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(io(format!("cannot copy {}", path.display())))?;
            // Keep the source's mtime so the next backup can tell unchanged files apart.
            if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&target)
                    .and_then(|f| f.set_modified(modified));
            }
        }
    }
    Ok(())
}
