//! `fault`: break the database on purpose. Usually carries `mark: disaster`.
//!
//! - `kill`: SIGKILL the service (a crash, not a clean stop);
//! - `delete_collection`: drop a collection through the API;
//! - `corrupt_file`: invert `length` bytes at `offset` of `path`, or of `file` inside the
//!   target's data directory (every byte is guaranteed to change);
//! - `delete_file`: remove a file (or, with `recursive: true`, a directory).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    Kill,
    DeleteCollection {
        collection: String,
    },
    CorruptFile {
        /// The file, or (`file`) one inside the target's data directory.
        #[serde(default)]
        path: Option<PathBuf>,
        #[serde(default)]
        file: Option<PathBuf>,
        #[serde(default)]
        offset: u64,
        #[serde(default = "default_length")]
        length: u64,
    },
    DeleteFile {
        path: PathBuf,
        #[serde(default)]
        recursive: bool,
    },
    /// `FLUSHALL` on the target's Redis.
    FlushRedis,
}

fn default_length() -> u64 {
    4096
}

/// The file a fault acts on: `path` as given, or `file` inside the target's data directory
/// (a container's, found from its mounts, has no path a scenario could write).
fn file_of(
    ctx: &StepContext<'_>,
    path: Option<&std::path::Path>,
    file: Option<&std::path::Path>,
) -> Result<PathBuf, StepError> {
    match (path, file) {
        (Some(path), None) => Ok(path.to_path_buf()),
        (None, Some(file)) => {
            let inside = file
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(StepError::Setup(format!(
                    "`file: {}` must name a file inside the data directory (no `..`, not absolute)",
                    file.display()
                )));
            }
            Ok(ctx.data_dir(None)?.join(file))
        }
        _ => Err(StepError::Setup(
            "give `path` (any file) or `file` (one inside the target's data directory)".into(),
        )),
    }
}

pub const KIND: StepKind = StepKind {
    name: "fault",
    summary: "inject a fault: `kind: kill | delete_collection | corrupt_file | delete_file | flush_redis`",
    outputs: &["kind", "at", "detail"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Fault>,
};

#[async_trait]
impl Step for Fault {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let (kind, detail) = match self {
            Fault::Kill => {
                ctx.service()?.kill().await?;
                ("kill", "service killed with SIGKILL".to_string())
            }
            Fault::DeleteCollection { collection } => {
                ctx.chroma()?.delete_collection(collection).await?;
                (
                    "delete_collection",
                    format!("deleted collection {collection:?}"),
                )
            }
            Fault::CorruptFile {
                path,
                file,
                offset,
                length,
            } => {
                let path = file_of(ctx, path.as_deref(), file.as_deref())?;
                let (offset, length) = (*offset, *length);
                let changed = tokio::task::spawn_blocking(move || corrupt(&path, offset, length))
                    .await
                    .map_err(|e| StepError::Setup(format!("corruption task failed: {e}")))??;
                ("corrupt_file", changed)
            }
            Fault::DeleteFile { path, recursive } => {
                let meta = std::fs::symlink_metadata(path)
                    .map_err(|e| StepError::io(format!("cannot delete {}", path.display()), e))?;
                if meta.is_dir() {
                    if !recursive {
                        return Err(StepError::Setup(format!(
                            "{} is a directory; add `recursive: true` to delete it",
                            path.display()
                        )));
                    }
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                }
                .map_err(|e| StepError::io(format!("cannot delete {}", path.display()), e))?;
                ("delete_file", format!("deleted {}", path.display()))
            }
            Fault::FlushRedis => {
                let redis = crate::targets::redis::RedisTarget::new(ctx.target.url())?;
                let keys = redis.dbsize().await?;
                redis.flushall().await?;
                (
                    "flush_redis",
                    format!("flushed {keys} keys from {}", redis.url()),
                )
            }
        };
        Ok(outputs! { "kind" => kind, "at" => Utc::now().to_rfc3339(), "detail" => detail })
    }
}

fn corrupt(path: &std::path::Path, offset: u64, length: u64) -> Result<String, StepError> {
    let io = |e| StepError::io(format!("cannot corrupt {}", path.display()), e);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if offset >= size {
        return Err(StepError::Setup(format!(
            "{} is {size} bytes; offset {offset} is past its end",
            path.display()
        )));
    }
    let length = length.min(size - offset);
    let mut bytes = vec![0u8; length as usize];
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.read_exact(&mut bytes).map_err(io)?;
    bytes.iter_mut().for_each(|b| *b = !*b);
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(format!(
        "inverted {length} bytes of {} at offset {offset}",
        path.display()
    ))
}
