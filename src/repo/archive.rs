//! Portable archives (seed 002): one backup as one self-contained file, to move a database
//! between machines without sharing a repository. It is a zstd-compressed tar holding the
//! backup's sealed manifest and its files, so `tar --zstd -xf` opens it too; vecdrill checks
//! every file against the manifest's hashes when reading it back.
//!
//! An archive of an encrypted repository is that same stream sealed (see [`sealed_stream`])
//! under a key of its own, behind a header that carries the repository's key files: it opens
//! with any password the repository had when it was written, and nothing else.
//!
//! ```text
//! "VDAR" | 1 (version) | u32 LE header length | header JSON | sealed segments of the zstd tar
//! ```
//!
//! [`sealed_stream`]: super::sealed_stream

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::crypto::{random_bytes, Keys};
use super::format::{limits, Manifest, Sealed};
use super::index::ChunkIndex;
use super::keyfile::{KeyError, KeyFile};
use super::password::{PasswordSources, Prompt};
use super::restore::{materialise, sync_directories, working_dir};
use super::sealed_stream::{OpenReader, SealWriter, NONCE_PREFIX_BYTES, SEGMENT_BYTES};
use super::{RepoError, Repository, MAX_KEYS_TRIED};
use crate::progress::Progress;

const SEALED_MAGIC: &[u8; 4] = b"VDAR";
const SEALED_VERSION: u8 = 1;
const HEADER_TYPE: &str = "vecdrill-archive";
const STREAM_CIPHER: &str = "xchacha20poly1305-stream-be32";
/// A sealed archive's header is read only up to this (it holds at most 20 key files).
const HEADER_BYTES: u32 = 256 << 10;
const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// A sealed archive's header, in the clear (its every byte bound to every segment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedHeader {
    #[serde(rename = "type")]
    kind: String,
    version: u32,
    cipher: String,
    segment_bytes: u64,
    /// The repository's id, which its key files are bound to.
    repository: String,
    /// Names this archive's own key (base64, 32 bytes).
    salt: String,
    /// STREAM's nonce prefix (base64, 19 bytes).
    nonce: String,
    keys: Vec<KeyFile>,
}

pub const MANIFEST_ENTRY: &str = "vecdrill-manifest.json";
const DATA_PREFIX: &str = "data/";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveSummary {
    pub backup: String,
    pub path: PathBuf,
    pub files: usize,
    pub logical_bytes: u64,
    pub archive_bytes: u64,
    pub encrypted: bool,
}

/// Write backup `manifest` to `out` (atomically: a partial file is renamed into place at the end).
pub async fn write_archive(
    repo: &Repository,
    manifest: &Manifest,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ArchiveSummary, RepoError> {
    // An encrypted repository's archive carries its key files, to open with its passwords.
    let sealing = match repo.store.shared_keys() {
        Some(keys) => Some(Sealing {
            keys,
            repository: repo.config.id.clone(),
            key_files: super::keyring::intact_key_files(repo).await?,
        }),
        None => None,
    };
    // Removed when dropped, whichever way this returns.
    let workdir = working_dir(out, "archive")?;
    let index = ChunkIndex::load(repo).await?;
    materialise(repo, &index, manifest, workdir.path(), progress).await?;
    let (manifest, dir, out) = (
        manifest.clone(),
        workdir.path().to_path_buf(),
        out.to_path_buf(),
    );
    tokio::task::spawn_blocking(move || pack_archive(&manifest, &dir, &out, sealing))
        .await
        .map_err(|e| RepoError::io("archive task", std::io::Error::other(e)))?
}

/// What seals an encrypted repository's archive.
struct Sealing {
    keys: Arc<Keys>,
    repository: String,
    key_files: Vec<KeyFile>,
}

fn pack_archive(
    manifest: &Manifest,
    dir: &Path,
    out: &Path,
    sealing: Option<Sealing>,
) -> Result<ArchiveSummary, RepoError> {
    let io = |context: String| move |e| RepoError::io(context, e);
    let (file, partial) = crate::atomic_file::create(out)
        .map_err(io(format!("cannot create a file beside {}", out.display())))?
        .into_parts();
    let mut writer = BufWriter::new(file);
    let encrypted = sealing.is_some();
    let writer = match sealing {
        None => write_tar(manifest, dir, writer)?,
        Some(sealing) => {
            let salt = random_bytes::<32>();
            let nonce = random_bytes::<NONCE_PREFIX_BYTES>();
            let header = SealedHeader {
                kind: HEADER_TYPE.into(),
                version: u32::from(SEALED_VERSION),
                cipher: STREAM_CIPHER.into(),
                segment_bytes: SEGMENT_BYTES as u64,
                repository: sealing.repository,
                salt: B64.encode(salt),
                nonce: B64.encode(nonce),
                keys: sealing.key_files,
            };
            let framed = frame_header(&header);
            writer
                .write_all(&framed)
                .map_err(io("cannot write the archive".into()))?;
            let sealer = SealWriter::new(
                writer,
                sealing.keys.archive_cipher(&salt),
                &nonce,
                header_aad(&framed),
            );
            write_tar(manifest, dir, sealer)?
                .finish()
                .map_err(io("cannot finish the archive".into()))?
        }
    };
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
        encrypted,
    })
}

/// The header as stored: magic, version, length, JSON.
fn frame_header(header: &SealedHeader) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("a header serialises");
    let mut framed = SEALED_MAGIC.to_vec();
    framed.push(SEALED_VERSION);
    framed.extend_from_slice(&(json.len() as u32).to_le_bytes());
    framed.extend_from_slice(&json);
    framed
}

/// What every segment is bound to: the whole stored header.
fn header_aad(framed: &[u8]) -> Vec<u8> {
    blake3::hash(framed).as_bytes().to_vec()
}

/// The zstd-compressed tar of the manifest and the files under `dir`, written to `writer`,
/// which is handed back.
fn write_tar<W: Write>(manifest: &Manifest, dir: &Path, writer: W) -> Result<W, RepoError> {
    let io = |context: String| move |e| RepoError::io(context, e);
    let encoder = zstd::Encoder::new(writer, 3).map_err(io("zstd".into()))?;
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
    encoder
        .finish()
        .map_err(io("cannot finish the archive".into()))
}

/// An archive opened for reading: a plain one, or a sealed one whose key a password gave.
#[derive(Debug, Clone)]
pub struct Archive {
    path: PathBuf,
    sealed: Option<Unsealed>,
}

#[derive(Debug, Clone)]
struct Unsealed {
    keys: Arc<Keys>,
    salt: [u8; 32],
    nonce: [u8; NONCE_PREFIX_BYTES],
    aad: Vec<u8>,
    body_at: u64,
}

impl Archive {
    /// Open `path`; a sealed archive is unlocked with the password `sources` give (asked for
    /// only then), found wrong before anything is extracted.
    pub fn open(
        path: &Path,
        sources: &PasswordSources,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Self, RepoError> {
        let what = path.display().to_string();
        let mut file = File::open(path)
            .map_err(|e| RepoError::io(format!("cannot open {}", path.display()), e))?;
        let mut magic = [0u8; 4];
        let is_sealed = match file.read_exact(&mut magic) {
            Ok(()) => &magic == SEALED_MAGIC,
            Err(_) => false,
        };
        if !is_sealed {
            return Ok(Self {
                path: path.to_path_buf(),
                sealed: None,
            });
        }
        let (header, framed) = read_header(&mut file, &what)?;
        let bad = |detail: String| RepoError::Corrupt {
            what: format!("{what} (header)"),
            detail,
        };
        let salt: [u8; 32] =
            decode_exact(&header.salt).map_err(|e| bad(format!("its salt {e}")))?;
        let nonce: [u8; NONCE_PREFIX_BYTES] =
            decode_exact(&header.nonce).map_err(|e| bad(format!("its nonce {e}")))?;
        let password =
            sources.resolve(&format!("enter the password of archive {what}: "), prompt)?;
        let mut tried = 0;
        let mut keys = None;
        let mut unusable = Vec::new();
        for key in header.keys.iter().take(MAX_KEYS_TRIED) {
            if let Err(problem) = key.validate(&key.id) {
                unusable.push(format!("key {}: {problem}", key.id));
                continue;
            }
            tried += 1;
            match key.open(password.as_bytes(), &header.repository) {
                Ok(opened) if key.authentic(&opened) => {
                    keys = Some(opened);
                    break;
                }
                Ok(_) => {
                    return Err(bad(format!(
                        "key {} does not authenticate with the key it holds: it was forged",
                        key.id
                    )))
                }
                Err(KeyError::WrongPassword) => {}
                Err(KeyError::Invalid(problem)) => {
                    unusable.push(format!("key {}: {problem}", key.id))
                }
            }
        }
        let Some(keys) = keys else {
            if tried == 0 {
                return Err(bad("it holds no usable key file".into()));
            }
            return Err(RepoError::WrongPassword {
                url: what,
                tried,
                unusable,
            });
        };
        Ok(Self {
            path: path.to_path_buf(),
            sealed: Some(Unsealed {
                keys: Arc::new(keys),
                salt,
                nonce,
                aad: header_aad(&framed),
                body_at: framed.len() as u64,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is sealed (an encrypted repository's archive).
    pub fn encrypted(&self) -> bool {
        self.sealed.is_some()
    }

    /// The manifest inside, without extracting anything.
    pub fn read_manifest(&self) -> Result<Manifest, RepoError> {
        let what = self.path.display().to_string();
        let mut tar = self.tar()?;
        let mut entries = tar.entries().map_err(|e| corrupt(&what, e))?;
        first_manifest(&mut entries, &what)
    }

    /// The tar inside, read through zstd (and the seal).
    fn tar(&self) -> Result<tar::Archive<Box<dyn Read + Send>>, RepoError> {
        let what = self.path.display().to_string();
        let mut file =
            File::open(&self.path).map_err(|e| RepoError::io(format!("cannot open {what}"), e))?;
        let compressed: Box<dyn Read + Send> = match &self.sealed {
            None => Box::new(BufReader::new(file)),
            Some(sealed) => {
                file.seek(std::io::SeekFrom::Start(sealed.body_at))
                    .map_err(|e| RepoError::io(format!("cannot read {what}"), e))?;
                Box::new(
                    OpenReader::new(
                        BufReader::new(file),
                        sealed.keys.archive_cipher(&sealed.salt),
                        &sealed.nonce,
                        sealed.aad.clone(),
                    )
                    .map_err(|e| corrupt(&what, e))?,
                )
            }
        };
        let decoder = zstd::Decoder::new(compressed).map_err(|e| corrupt(&what, e))?;
        Ok(tar::Archive::new(Box::new(decoder)))
    }

    /// How its files' recorded hashes were made (keyed in an encrypted repository).
    fn file_hasher(&self) -> blake3::Hasher {
        match &self.sealed {
            Some(sealed) => sealed.keys.file_hasher(),
            None => blake3::Hasher::new(),
        }
    }

    /// Extract the archive's files under `dir`, checking each against the manifest; returns it.
    pub fn extract(&self, dir: &Path) -> Result<Manifest, RepoError> {
        let what = self.path.display().to_string();
        let mut tar = self.tar()?;
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
            let mut out =
                BufWriter::new(File::create(&target).map_err(|e| {
                    RepoError::io(format!("cannot create {}", target.display()), e)
                })?);
            let mut hasher = self.file_hasher();
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
}

/// A sealed archive's header (after its magic): bounded before it is read, then checked.
fn read_header(file: &mut File, what: &str) -> Result<(SealedHeader, Vec<u8>), RepoError> {
    let bad = |detail: String| RepoError::Corrupt {
        what: format!("{what} (header)"),
        detail,
    };
    let mut fixed = [0u8; 5];
    file.read_exact(&mut fixed)
        .map_err(|_| bad("it ends inside its header".into()))?;
    if fixed[0] == 0 {
        return Err(bad("its version is 0".into()));
    }
    if fixed[0] > SEALED_VERSION {
        return Err(RepoError::NewerFormat {
            what: format!("archive {what}"),
            found: u32::from(fixed[0]),
            supported: u32::from(SEALED_VERSION),
        });
    }
    let length = u32::from_le_bytes(fixed[1..5].try_into().expect("4 bytes"));
    if length > HEADER_BYTES {
        return Err(bad(format!(
            "its header claims {length} bytes, more than the format's {HEADER_BYTES}"
        )));
    }
    let mut json = vec![0u8; length as usize];
    file.read_exact(&mut json)
        .map_err(|_| bad("it ends inside its header".into()))?;
    let header: SealedHeader =
        serde_json::from_slice(&json).map_err(|e| bad(format!("it is not a header: {e}")))?;
    if header.kind != HEADER_TYPE
        || header.cipher != STREAM_CIPHER
        || header.segment_bytes != SEGMENT_BYTES as u64
    {
        return Err(bad(format!(
            "it is a {:?} sealed with {:?} in {}-byte segments, not a vecdrill archive this version reads",
            header.kind, header.cipher, header.segment_bytes
        )));
    }
    let mut framed = SEALED_MAGIC.to_vec();
    framed.extend_from_slice(&fixed);
    framed.extend_from_slice(&json);
    Ok((header, framed))
}

/// Base64 `text` as exactly `N` bytes.
fn decode_exact<const N: usize>(text: &str) -> Result<[u8; N], String> {
    if text.len() > N.div_ceil(3) * 4 {
        return Err(format!("is longer than {N} bytes"));
    }
    B64.decode(text)
        .map_err(|_| "is not base64".to_string())?
        .try_into()
        .map_err(|_| format!("is not {N} bytes"))
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
