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

/// A new, empty file `.<name>.<random>.partial` beside `dest`; removed when dropped.
pub fn create(dest: &Path) -> io::Result<NamedTempFile> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(parent(dest))
}

/// Sync `file`'s bytes, rename it to `dest` and sync the directory, so that after a power cut
/// `dest` is either the previous file or the whole new one.
pub fn persist(file: &std::fs::File, path: TempPath, dest: &Path) -> io::Result<()> {
    file.sync_all()?;
    path.persist(dest).map_err(|e| e.error)?;
    std::fs::File::open(parent(dest))?.sync_all()
}
