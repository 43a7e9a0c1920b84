//! Files that appear whole or not at all (archives, exports): written under an unpredictable
//! name beside their destination, created exclusively, so never through a link someone planted
//! at a guessable `.partial` name, then synced and renamed into place. A rename replaces a link
//! at the destination itself, never the file the link points to.

use std::io;
use std::path::Path;

use tempfile::{NamedTempFile, TempPath};

/// The directory holding `dest` (`.` for a bare name).
pub fn parent(dest: &Path) -> &Path {
    dest.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The last name of `dest`, for the names of files beside it (`data` when it has none).
pub fn name_of(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
}

/// A new, empty file `.<name>.<random>.partial` beside `dest`; removed when dropped. Partial
/// files a killed writer left for the same `dest` are removed first.
pub fn create(dest: &Path) -> io::Result<NamedTempFile> {
    let prefix = format!(".{}.", name_of(dest));
    remove_leftovers(dest, &prefix, PARTIAL, false);
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(PARTIAL)
        .tempfile_in(parent(dest))
}

const PARTIAL: &str = ".partial";

/// Remove what an interrupted run left beside `dest` (a SIGKILL runs no clean-up): entries of
/// its directory named `<prefix>…<suffix>` that are directories (`dirs`) or regular files,
/// never a link. Returns how many were removed.
pub fn remove_leftovers(dest: &Path, prefix: &str, suffix: &str, dirs: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(parent(dest)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            // The part between is tempfile's random name: no dot, so `.a.` never matches the
            // leftovers of `a.zst` (`.a.zst.<random>.partial`).
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .is_some_and(|random| !random.is_empty() && !random.contains('.'))
        })
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
        })
        .filter(|e| {
            tracing::info!(
                "removing {}, left by an interrupted run",
                e.path().display()
            );
            let removed = if dirs {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
            removed.is_ok()
        })
        .count()
}

/// Whether no process `pid` runs on this machine. (Signal 0 checks existence only; EPERM means
/// it runs under another user.)
pub fn process_has_ended(pid: i32) -> bool {
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// The directories in `parent` named `<prefix><pid>-<random>` whose process has ended: what
/// killed runs left (a running one's are not included). Real directories only, never a link
/// planted under such a name.
pub fn left_by_ended_processes(parent: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<i32>().ok())
                .is_some_and(process_has_ended)
        })
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .collect()
}

/// Write `bytes` to `dest` whole or not at all (see [`persist`]).
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut temp = create(dest)?;
    temp.write_all(bytes)?;
    let (file, temp_path) = temp.into_parts();
    persist(&file, temp_path, dest)
}

/// Sync `file`'s bytes, rename it to `dest` and sync the directory, so that after a power cut
/// `dest` is either the previous file or the whole new one.
pub fn persist(file: &std::fs::File, path: TempPath, dest: &Path) -> io::Result<()> {
    file.sync_all()?;
    path.persist(dest).map_err(|e| e.error)?;
    std::fs::File::open(parent(dest))?.sync_all()
}
