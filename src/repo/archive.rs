//! Portable archives (seed 002): one backup as one self-contained file, to move a database
//! between machines without sharing a repository. It is a zstd-compressed tar holding the
//! backup's sealed manifest and its files, so `tar --zstd -xf` opens it too; vecdrill checks
//! every file against the manifest's hashes when reading it back.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use super::format::{limits, Manifest, Sealed};
use super::index::ChunkIndex;
use super::restore::{materialise, sync_directories, working_dir};
use super::{RepoError, Repository};
use crate::progress::Progress;

pub const MANIFEST_ENTRY: &str = "vecdrill-manifest.json";
const DATA_PREFIX: &str = "data/";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveSummary {
    pub backup: String,
    pub path: PathBuf,
    pub files: usize,
    pub logical_bytes: u64,
    pub archive_bytes: u64,
}

/// Write backup `manifest` to `out` (atomically: a partial file is renamed into place at the end).
pub async fn write_archive(
    repo: &Repository,
    manifest: &Manifest,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ArchiveSummary, RepoError> {
    // An archive is a plain tar of the backup's files, with plain BLAKE3 hashes: from an
    // encrypted repository it would give away what the repository keeps sealed.
    if repo.encrypted() {
        return Err(RepoError::NotYet {
            what: "an archive of an encrypted repository".into(),
            instead: "restore the backup (`vecdrill restore`) and copy the directory, or back it up into an unencrypted repository for the move".into(),
        });
    }
    // Removed when dropped, whichever way this returns.
    let workdir = working_dir(out, "archive")?;
    let index = ChunkIndex::load(repo).await?;
    materialise(repo, &index, manifest, workdir.path(), progress).await?;
    let (manifest, dir, out) = (
        manifest.clone(),
        workdir.path().to_path_buf(),
        out.to_path_buf(),
    );
    tokio::task::spawn_blocking(move || pack_archive(&manifest, &dir, &out))
        .await
        .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))?
}

fn pack_archive(manifest: &Manifest, dir: &Path, out: &Path) -> Result<ArchiveSummary, RepoError> {
    let io = |context: String| move |e| RepoError::io(context, e);
    let (file, partial) = crate::atomic_file::create(out)
        .map_err(io(format!("cannot create a file beside {}", out.display())))?
        .into_parts();
    let encoder = zstd::Encoder::new(BufWriter::new(file), 3).map_err(io("zstd".into()))?;
    let mut tar = tar::Builder::new(encoder);
    let sealed = manifest.seal();
    let mut header = tar::Header::new_gnu();
    header.set_size(sealed.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(manifest.created_at.timestamp().max(0) as u64);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST_ENTRY, sealed.as_slice())
        .map_err(io("cannot write the archive".into()))?;
    for entry in &manifest.files {
        let path = dir.join(&entry.path);
        tar.append_path_with_name(&path, format!("{DATA_PREFIX}{}", entry.path))
            .map_err(io(format!("cannot add {} to the archive", entry.path)))?;
    }
    let encoder = tar
        .into_inner()
        .map_err(io("cannot finish the archive".into()))?;
    let writer = encoder
        .finish()
        .map_err(io("cannot finish the archive".into()))?;
    let file = writer
        .into_inner()
        .map_err(|e| RepoError::io("cannot flush the archive", e.into_error()))?;
    crate::atomic_file::persist(&file, partial, out)
        .map_err(io(format!("cannot move the archive to {}", out.display())))?;
    Ok(ArchiveSummary {
        backup: manifest.id.clone(),
        path: out.to_path_buf(),
        files: manifest.files.len(),
        logical_bytes: manifest.totals.logical_bytes,
        archive_bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
    })
}

/// The manifest inside an archive, without extracting anything.
pub fn read_manifest(archive: &Path) -> Result<Manifest, RepoError> {
    let what = archive.display().to_string();
    let mut tar = open(archive)?;
    let mut entries = tar.entries().map_err(|e| corrupt(&what, e))?;
    first_manifest(&mut entries, &what)
}

/// The manifest is the archive's first entry.
fn first_manifest<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    what: &str,
) -> Result<Manifest, RepoError> {
    let mut first = entries
        .next()
        .ok_or_else(|| RepoError::Corrupt {
            what: what.to_string(),
            detail: "it is empty".into(),
        })?
        .map_err(|e| corrupt(what, e))?;
    manifest_from(&mut first, what)
}

/// Extract an archive's files under `dir`, checking each against the manifest; returns it.
pub fn extract(archive: &Path, dir: &Path) -> Result<Manifest, RepoError> {
    let what = archive.display().to_string();
    let mut tar = open(archive)?;
    let mut entries = tar.entries().map_err(|e| corrupt(&what, e))?;
    let manifest = first_manifest(&mut entries, &what)?;
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(&what, e))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(RepoError::Corrupt {
                what,
                detail: "it holds an entry that is not a regular file".into(),
            });
        }
        let name = entry
            .path()
            .map_err(|e| corrupt(&what, e))?
            .to_string_lossy()
            .into_owned();
        let rel = name
            .strip_prefix(DATA_PREFIX)
            .ok_or_else(|| RepoError::Corrupt {
                what: what.clone(),
                detail: format!("unexpected entry {name}"),
            })?;
        let recorded = manifest
            .files
            .iter()
            .find(|f| f.path == rel)
            .ok_or_else(|| RepoError::Corrupt {
                what: what.clone(),
                detail: format!("{rel} is not in its manifest"),
            })?;
        // Every manifest path is safe (checked when read); a second copy is refused.
        if !seen.insert(recorded.path.clone()) {
            return Err(RepoError::Corrupt {
                what,
                detail: format!("it holds {rel} twice"),
            });
        }
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RepoError::io(format!("cannot create {}", parent.display()), e))?;
        }
        let mut out = BufWriter::new(
            File::create(&target)
                .map_err(|e| RepoError::io(format!("cannot create {}", target.display()), e))?,
        );
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buffer).map_err(|e| corrupt(&what, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
            std::io::Write::write_all(&mut out, &buffer[..n])
                .map_err(|e| RepoError::io(format!("cannot write {}", target.display()), e))?;
        }
        if size != recorded.size || hasher.finalize().as_bytes() != &recorded.hash.0 {
            return Err(RepoError::Corrupt {
                what,
                detail: format!("{rel} does not match its recorded hash"),
            });
        }
        let file = out
            .into_inner()
            .map_err(|e| RepoError::io("cannot flush", e.into_error()))?;
        file.sync_all()
            .map_err(|e| RepoError::io(format!("cannot sync {}", target.display()), e))?;
    }
    if seen.len() != manifest.files.len() {
        return Err(RepoError::Corrupt {
            what,
            detail: format!(
                "it holds {} of the {} files its manifest lists",
                seen.len(),
                manifest.files.len()
            ),
        });
    }
    sync_directories(dir, &manifest)?;
    Ok(manifest)
}

fn open(
    archive: &Path,
) -> Result<tar::Archive<zstd::Decoder<'static, BufReader<File>>>, RepoError> {
    let file = File::open(archive)
        .map_err(|e| RepoError::io(format!("cannot open {}", archive.display()), e))?;
    let decoder =
        zstd::Decoder::new(file).map_err(|e| corrupt(&archive.display().to_string(), e))?;
    Ok(tar::Archive::new(decoder))
}

fn manifest_from(entry: &mut impl Read, what: &str) -> Result<Manifest, RepoError> {
    let invalid = |detail: String| RepoError::Corrupt {
        what: format!("{what} ({MANIFEST_ENTRY})"),
        detail,
    };
    let mut bytes = Vec::new();
    entry
        .take(limits::JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(what, e))?;
    if bytes.len() as u64 > limits::JSON_BYTES {
        return Err(invalid(format!(
            "it is more than the format's maximum of {} bytes",
            limits::JSON_BYTES
        )));
    }
    let manifest = Manifest::unseal(&bytes).map_err(invalid)?;
    manifest.validate(None).map_err(invalid)?;
    Ok(manifest)
}

fn corrupt(what: &str, e: std::io::Error) -> RepoError {
    RepoError::Corrupt {
        what: what.to_string(),
        detail: format!("not a readable vecdrill archive: {e}"),
    }
}
