//! Reading a backup back into a staging directory: each file put together as
//! [`super::restorable`] decides (every chunk checked against its BLAKE3 id, the whole file
//! against its recorded hash); only a complete, proven copy is swapped in place of the live
//! directory.

use std::path::{Path, PathBuf};

use futures::StreamExt;

use super::format::{unsafe_path, FileEntry, Manifest};
use super::index::ChunkIndex;
use super::restorable::{locate, read_file, ChunkSink};
use super::{RepoError, Repository};
use crate::atomic_file::{left_by_ended_processes, name_of, parent, remove_leftovers};
use crate::progress::{Progress, Unit};

/// Files restored at once.
const FILES_IN_FLIGHT: usize = 3;

/// Write every file of `manifest` under `dir` (which must exist), verifying as it goes.
pub async fn materialise(
    repo: &Repository,
    index: &ChunkIndex,
    manifest: &Manifest,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    progress.start(
        "restoring",
        Some(manifest.totals.logical_bytes),
        Unit::Bytes,
    );
    // A few files at once: one large file's decoding and fsync overlap the next one's reads.
    // (By index: a closure over `&FileEntry` trips the compiler's higher-ranked Send check.)
    let mut restoring = futures::stream::iter(0..manifest.files.len())
        .map(|i| restore_file(repo, index, manifest, &manifest.files[i], dir, progress))
        .buffer_unordered(FILES_IN_FLIGHT);
    while let Some(done) = restoring.next().await {
        done?;
    }
    drop(restoring);
    sync_directories(dir, manifest)?;
    progress.finish();
    Ok(())
}

/// Write only the files of `manifest` whose path `wanted` picks, as [`materialise`] would: for
/// the checks that read part of a backup back into a scratch directory.
pub async fn materialise_some(
    repo: &Repository,
    index: &ChunkIndex,
    manifest: &Manifest,
    wanted: impl Fn(&str) -> bool,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    let mut some = manifest.clone();
    some.files.retain(|f| wanted(&f.path));
    some.totals.logical_bytes = some.files.iter().map(|f| f.size).sum();
    materialise(repo, index, &some, dir, progress).await
}

/// Each restored file is synced as it is written, but its directory entry is durable only once
/// the directory holding it is synced too: sync `dir` and every directory under it that holds
/// a file of `manifest`.
pub fn sync_directories(dir: &Path, manifest: &Manifest) -> Result<(), RepoError> {
    let directories = manifest
        .files
        .iter()
        .filter_map(|f| {
            safe_join(dir, &f.path)
                .ok()?
                .parent()
                .map(Path::to_path_buf)
        })
        .chain([dir.to_path_buf()])
        .collect::<std::collections::BTreeSet<_>>();
    directories.iter().try_for_each(|d| sync_dir(d))
}

/// fsync a directory, so the entries created or renamed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RepoError::io(format!("cannot sync {}", dir.display()), e))
}

async fn restore_file(
    repo: &Repository,
    index: &ChunkIndex,
    manifest: &Manifest,
    file: &FileEntry,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(), RepoError> {
    let what = format!("backup {} file {}", manifest.id, file.path);
    // Decided before anything is written, as `verify` decides it.
    let located = locate(index, file).map_err(|problem| RepoError::Corrupt {
        what: what.clone(),
        detail: format!("{}: {}", problem.object, problem.problem),
    })?;
    let target = safe_join(dir, &file.path)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| RepoError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let out = std::sync::Arc::new(
        std::fs::File::create(&target)
            .map_err(|e| RepoError::io(format!("cannot create {}", target.display()), e))?,
    );
    // Each chunk is written at its own offset as soon as it is decoded and checked; the
    // whole-file hash, checked once every chunk is in, proves the file is the recorded one.
    let sink: ChunkSink = {
        let (out, target) = (out.clone(), target.clone());
        std::sync::Arc::new(move |offset, chunk: &[u8]| {
            use std::os::unix::fs::FileExt;
            out.write_all_at(chunk, offset)
                .map_err(|e| RepoError::io(format!("cannot write {}", target.display()), e))?;
            start_writeback(&out, offset, chunk.len() as u64);
            Ok(())
        })
    };
    read_file(repo, file, located, &what, sink, progress).await?;
    out.sync_all()
        .map_err(|e| RepoError::io(format!("cannot sync {}", target.display()), e))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode));
    let mtime = std::time::SystemTime::from(file.mtime);
    let _ = out.set_modified(mtime);
    Ok(())
}

/// Ask the kernel to start writing `len` bytes of `file` from `from` to disk now, without
/// waiting: the disk works while later runs decode, and the fsync that ends the file waits for
/// its last few MiB instead of all of it (a 335 MB file's fsync took 0.1 s of a 0.9 s restore).
fn start_writeback(file: &std::fs::File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a descriptor `file` keeps open; WRITE only starts
        // writeback and never waits or changes the file. A failure is harmless (the fsync
        // at the end still makes the file durable), so its result is not needed.
        unsafe {
            nix::libc::sync_file_range(
                file.as_raw_fd(),
                from as i64,
                len as i64,
                nix::libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, len);
}

/// A manifest path joined under `dir`, refusing anything that would escape it.
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf, RepoError> {
    if let Some(why) = unsafe_path(rel) {
        return Err(RepoError::Corrupt {
            what: format!("file path {rel:?}"),
            detail: why.into(),
        });
    }
    Ok(rel
        .split('/')
        .fold(dir.to_path_buf(), |path, part| path.join(part)))
}

/// Where the previous contents went when a restore swapped a directory in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwapOutcome {
    /// The safety copy of what was there, when one was kept.
    pub safety_copy: Option<PathBuf>,
}

/// Put `staging` in place of `target`, so that at every instant `target` is the old directory
/// or the new one, never absent nor half-written: the two are exchanged in one atomic
/// `renameat2(RENAME_EXCHANGE)`, and the old one, now at the staging path, is then either kept
/// (renamed to the safety copy's name) or deleted. Where the filesystem cannot exchange, the
/// old directory is renamed aside first and the new one into place (absent, with both copies
/// intact, between the two renames).
///
/// Until the old data is kept or deleted, a failure (a directory sync or a rename refused by a
/// full disk) puts it back in place: an error means `target` is as it was.
///
/// `keep_safety_copies` is how many safety copies of `target` to keep, this one included (the
/// older ones beyond it are removed); 0 keeps none.
pub fn swap_into(
    staging: &Path,
    target: &Path,
    keep_safety_copies: usize,
) -> Result<SwapOutcome, RepoError> {
    let io = |context: String| move |e| RepoError::io(context, e);
    // From here the copy waits under a name saying it is whole: a restore killed from now on
    // leaves a whole directory there (this copy, or after the exchange the previous data),
    // which the next restore keeps instead of deleting.
    let swap = swap_path(target);
    std::fs::rename(staging, &swap).map_err(io(format!(
        "cannot prepare the restored copy beside {}",
        target.display()
    )))?;
    let aside = safety_copy_path(target, chrono::Utc::now());
    let had_previous = target.exists();
    if had_previous && exchange(&swap, target)? {
        // Durable, and the previous data (now at `swap`) kept aside, or put back.
        let settled = sync_dir(parent_dir(target)).and_then(|()| {
            if keep_safety_copies > 0 {
                std::fs::rename(&swap, &aside).map_err(io(format!(
                    "cannot keep the previous data as {}",
                    aside.display()
                )))?;
            }
            Ok(())
        });
        if let Err(err) = settled {
            put_back(|| exchange(&swap, target).map(drop), target, &swap);
            return Err(err);
        }
        return Ok(finish(target, &swap, &aside, keep_safety_copies));
    }
    if had_previous {
        if let Err(e) = std::fs::rename(target, &aside) {
            let _ = std::fs::remove_dir_all(&swap);
            return Err(RepoError::io(
                format!("cannot move {} aside", target.display()),
                e,
            ));
        }
    }
    let moved = std::fs::rename(&swap, target)
        .map_err(io(format!(
            "cannot move the restored copy to {}",
            target.display()
        )))
        // Both renames durable before the previous data can be deleted.
        .and_then(|()| sync_dir(parent_dir(target)));
    if let Err(err) = moved {
        let undo = || {
            if target.exists() {
                std::fs::rename(target, &swap)?;
            }
            if had_previous {
                std::fs::rename(&aside, target)?;
            }
            Ok::<(), std::io::Error>(())
        };
        put_back(undo, target, &swap);
        return Err(err);
    }
    if !had_previous {
        return Ok(SwapOutcome { safety_copy: None });
    }
    Ok(finish(target, &aside, &aside, keep_safety_copies))
}

/// `.<name>.vecdrill-swap-<pid>-<random>` beside `target`.
fn swap_path(target: &Path) -> PathBuf {
    let random = &super::random_id()[..12];
    parent_dir(target).join(format!(
        "{}{}-{random}",
        swap_prefix(target),
        std::process::id()
    ))
}

fn swap_prefix(target: &Path) -> String {
    format!(".{}.vecdrill-swap-", name_of(target))
}

/// Keep what killed restores of `target` left at their swap paths, renamed
/// `<name>.interrupted-restore-<time>` and never removed by vecdrill: each is a whole
/// directory, the data that was live or the checked copy about to replace it.
pub fn keep_interrupted_swaps(target: &Path) {
    for left in left_by_ended_processes(parent_dir(target), &swap_prefix(target)) {
        let at = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let name = format!("{}.interrupted-restore-{at}", name_of(target));
        let to = parent_dir(target).join(&name);
        if to.exists() {
            continue;
        }
        match std::fs::rename(&left, &to) {
            Ok(()) => {
                tracing::warn!(
                    "kept {}, left by an interrupted restore: it holds the data that was in {} before that restore, or the checked copy it was about to put there; compare and remove it when no longer needed",
                    to.display(),
                    target.display()
                );
            }
            Err(err) => tracing::warn!(
                "cannot keep {} (left by an interrupted restore): {err}",
                left.display()
            ),
        }
    }
}

/// Undo a swap that could not be settled, so the command fails with `target` as it was; the
/// restored copy, back at `swap`, is removed.
fn put_back<E: std::fmt::Display>(
    undo: impl FnOnce() -> Result<(), E>,
    target: &Path,
    swap: &Path,
) {
    match undo() {
        Ok(()) => {
            let _ = sync_dir(parent_dir(target));
            let _ = std::fs::remove_dir_all(swap);
        }
        Err(err) => tracing::error!(
            "cannot put the previous data back in {} ({err}): it is there, at {} or at its safety copy's name",
            target.display(),
            swap.display()
        ),
    }
}

/// After the new data is durably in place: delete the previous data (at `previous`) or keep
/// it as the safety copy `aside`, pruning older safety copies. Neither can lose the restore,
/// so a failure here is a warning.
fn finish(target: &Path, previous: &Path, aside: &Path, keep_safety_copies: usize) -> SwapOutcome {
    if keep_safety_copies == 0 {
        if let Err(err) = std::fs::remove_dir_all(previous) {
            tracing::warn!(
                "cannot remove the previous data {} ({err}); remove it by hand",
                previous.display()
            );
        }
        return SwapOutcome { safety_copy: None };
    }
    if let Err(err) = sync_dir(parent_dir(target)) {
        tracing::warn!(
            "cannot sync {} after keeping the safety copy: {err}",
            parent_dir(target).display()
        );
    }
    prune_safety_copies(target, keep_safety_copies);
    SwapOutcome {
        safety_copy: Some(aside.to_path_buf()),
    }
}

/// Exchange the directories at `a` and `b` atomically; `Ok(false)` when the filesystem (or the
/// kernel) cannot, for the caller to fall back.
fn exchange(a: &Path, b: &Path) -> Result<bool, RepoError> {
    #[cfg(target_os = "linux")]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => Ok(true),
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(false),
            Err(errno) => Err(RepoError::io(
                format!("cannot swap the restored copy into {}", b.display()),
                std::io::Error::from(errno),
            )),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// The name a safety copy of `target` made at `at` gets: `<name>.before-restore-<time>`, to
/// the millisecond, with `-2`, `-3`... when a restore in the same millisecond took it.
pub fn safety_copy_path(target: &Path, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let base = format!(
        "{}.{SAFETY_COPY_MARK}{}",
        name_of(target),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    );
    let parent = parent_dir(target);
    (1..)
        .map(|n| match n {
            1 => parent.join(&base),
            n => parent.join(format!("{base}-{n}")),
        })
        .find(|path| std::fs::symlink_metadata(path).is_err())
        .expect("some suffix is free")
}

const SAFETY_COPY_MARK: &str = "before-restore-";

/// Remove all but the newest `keep` safety copies of `target` (real directories named
/// `<name>.before-restore-<time>` beside it; never a link, never anything else), so repeated
/// drills do not fill the disk.
fn prune_safety_copies(target: &Path, keep: usize) {
    let prefix = format!("{}.{SAFETY_COPY_MARK}", name_of(target));
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return;
    };
    let mut copies: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix).then(|| (name, e.path()))
        })
        .collect();
    // Times sort as text: newest first.
    copies.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, old) in copies.into_iter().skip(keep) {
        match std::fs::remove_dir_all(&old) {
            Ok(()) => tracing::info!("removed old safety copy {}", old.display()),
            Err(err) => tracing::warn!("cannot remove old safety copy {}: {err}", old.display()),
        }
    }
}

/// The directory holding `target` (`.` for a bare name).
pub fn parent_dir(target: &Path) -> &Path {
    parent(target)
}

/// A new, empty working directory beside `target` (on its filesystem, so it can be renamed into
/// place) named `.<name>.vecdrill-<purpose>-<random>`: created exclusively with a name nothing
/// read from a repository or archive takes part in, and removed when dropped unless kept.
/// Working directories a killed run left for the same target and purpose are removed first.
pub fn working_dir(target: &Path, purpose: &str) -> Result<tempfile::TempDir, RepoError> {
    remove_leftovers(target, &working_prefix(target, purpose), "", true);
    let parent = parent_dir(target);
    tempfile::Builder::new()
        .prefix(&working_prefix(target, purpose))
        .tempdir_in(parent)
        .map_err(|e| {
            RepoError::io(
                format!("cannot create a working directory in {}", parent.display()),
                e,
            )
        })
}

fn working_prefix(target: &Path, purpose: &str) -> String {
    format!(".{}.vecdrill-{purpose}-", name_of(target))
}
