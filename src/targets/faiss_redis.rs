//! FAISS indexes with their metadata in Redis (seed 003), protected like a Chroma directory:
//! the same repository, retention, verification and restore.
//!
//! A backup holds `faiss/<file name>` for each index and `redis/dump.rdb`. Redis is asked for
//! a fresh snapshot (`BGSAVE`, waited for and checked) and its keys are counted per prefix;
//! each index file is read with a stability check (size, mtime and inode unchanged across the
//! read, else retried, then refused). `--pre`/`--post` commands can pause the writers so the
//! indexes and Redis describe the same moment.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::faiss::{self, FaissIndexInfo, IndexContent};
use super::protect::{newest_mtime, skip_if_recent, BackupOutcome, BackupSettings, ProtectError};
use super::redis::{rdb_version, RedisTarget};
use crate::progress::{Progress, Unit};
use crate::repo::format::{normalise_tags, Capture, CheckResult, FileEntry, Manifest, Source};
use crate::repo::writer::{BackupWriter, ManifestInfo};
use crate::repo::{backup_id, Repository};

pub const SOURCE_KIND: &str = "faiss_redis";
pub const RDB_FILE: &str = "redis/dump.rdb";
const FAISS_DIR: &str = "faiss";
/// Reads of a file that keeps changing before the backup gives up.
const STABLE_ATTEMPTS: u32 = 3;

pub fn index_file(name: &str) -> String {
    format!("{FAISS_DIR}/{name}")
}

/// What a backup records about the store (the manifest's `database`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreDescription {
    pub faiss: Vec<IndexRecord>,
    #[serde(default)]
    pub redis: Option<RedisRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexRecord {
    pub name: String,
    /// Where the index was read from.
    pub path: String,
    #[serde(flatten)]
    pub info: FaissIndexInfo,
    /// Probe queries and ids, to compare a restored index's content with (none in backups
    /// made before vecdrill recorded them).
    #[serde(default, skip_serializing_if = "IndexContent::is_empty")]
    pub content: IndexContent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisRecord {
    pub url: String,
    pub version: String,
    /// `DBSIZE` right after the snapshot.
    pub keys: u64,
    pub prefixes: BTreeMap<String, u64>,
    pub saved_at: DateTime<Utc>,
    pub save_ms: f64,
    /// Where the snapshot was read from.
    pub rdb: String,
    pub rdb_version: Option<u32>,
}

/// The files a FAISS + Redis backup must hold by its own description, each with the reason.
pub fn required_files(manifest: &Manifest) -> Vec<(String, String)> {
    let Some(description) = described(manifest) else {
        return Vec::new();
    };
    let mut required: Vec<(String, String)> = description
        .faiss
        .iter()
        .map(|i| (index_file(&i.name), format!("index {:?} is", i.name)))
        .collect();
    if description.redis.is_some() {
        required.push((RDB_FILE.into(), "the Redis snapshot is".into()));
    }
    required
}

pub fn described(manifest: &Manifest) -> Option<StoreDescription> {
    (manifest.source.kind == SOURCE_KIND)
        .then(|| serde_json::from_value(manifest.database.clone()).ok())
        .flatten()
}

/// FAISS index files and Redis as what a backup takes.
#[derive(Debug, Clone)]
pub struct FaissRedisSource {
    pub faiss: Vec<PathBuf>,
    pub redis_url: Option<String>,
    pub prefixes: Vec<String>,
    /// The snapshot file, when the server's own (`CONFIG GET dir/dbfilename`) is not readable
    /// from here.
    pub rdb_path: Option<PathBuf>,
    /// Shell commands run before the capture and after it (always, even when it fails).
    pub pre: Option<String>,
    pub post: Option<String>,
}

/// Redis may take minutes to save a large dataset; the stall limit alone would be too short.
const MIN_SAVE_TIMEOUT: Duration = Duration::from_secs(300);

#[async_trait::async_trait]
impl super::protect::BackupSource for FaissRedisSource {
    async fn back_up(
        &self,
        repo: &Repository,
        settings: &BackupSettings,
        _service: Option<&mut (dyn crate::platform::Service + 'static)>,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome, ProtectError> {
        backup(repo, self, settings, progress).await
    }
}

async fn backup(
    repo: &Repository,
    request: &FaissRedisSource,
    settings: &BackupSettings,
    progress: &dyn Progress,
) -> Result<BackupOutcome, ProtectError> {
    let existing = repo.readable_manifests().await?;
    let source = describe_source(request);
    if let Some(skipped) = skip_if_recent(&existing, (SOURCE_KIND, &source), settings.min_interval)
    {
        return Ok(skipped);
    }
    check_names(&request.faiss)?;
    if let Some(pre) = &request.pre {
        if let Err(err) = run_hook("--pre", pre).await {
            if let Some(post) = &request.post {
                let _ = run_hook("--post", post).await;
            }
            return Err(err);
        }
    }
    let result = capture(repo, request, settings, progress).await;
    if let Some(post) = &request.post {
        let after = run_hook("--post", post).await;
        if result.is_ok() {
            after?;
        }
    }
    result
}

/// Index files are stored under their file names, which must therefore differ.
fn check_names(paths: &[PathBuf]) -> Result<(), ProtectError> {
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let name = file_name(path);
        if !seen.insert(name.clone()) {
            return Err(ProtectError::Input(format!(
                "two index files are named {name:?}: give each --faiss a distinct file name"
            )));
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

async fn run_hook(which: &str, command: &str) -> Result<(), ProtectError> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .await
        .map_err(|e| ProtectError::Hook {
            which: which.into(),
            reason: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(ProtectError::Hook {
        which: which.into(),
        reason: format!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

async fn capture(
    repo: &Repository,
    request: &FaissRedisSource,
    settings: &BackupSettings,
    progress: &dyn Progress,
) -> Result<BackupOutcome, ProtectError> {
    let began = Instant::now();
    let created_at = Utc::now();
    // Redis first: its snapshot is the moment the backup describes.
    let (redis, rdb) = match &request.redis_url {
        Some(url) => {
            let (record, rdb) = snapshot_redis(url, request, settings).await?;
            (Some(record), Some(rdb))
        }
        None => (None, None),
    };
    let mut files: Vec<(PathBuf, String)> = request
        .faiss
        .iter()
        .map(|p| (p.clone(), index_file(&file_name(p))))
        .collect();
    if let Some(rdb) = &rdb {
        files.push((rdb.clone(), RDB_FILE.to_string()));
    }
    let total = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map(|m| m.len()).map_err(|e| (p, e)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(p, e)| ProtectError::Input(format!("cannot read {}: {e}", p.display())))?
        .iter()
        .sum();
    let mut writer = BackupWriter::begin(repo).await?;
    progress.start("backing up", Some(total), Unit::Bytes);
    let mut entries = Vec::new();
    let mut indexes = Vec::new();
    let mut checks = Vec::new();
    let mut attempts = 1;
    for (path, rel) in &files {
        let stored = store_stable(&mut writer, path, rel, progress).await;
        let (entry, tries, inspected) = match stored {
            Ok(done) => done,
            Err(err) => {
                progress.finish();
                writer.abort().await;
                return Err(err);
            }
        };
        attempts = attempts.max(tries);
        match inspected {
            Inspected::Index(Ok((info, content))) => {
                checks.push(CheckResult::of(
                    format!("faiss:{}", file_name(path)),
                    Ok(describe_index(&info)),
                ));
                indexes.push(IndexRecord {
                    name: file_name(path),
                    path: path.display().to_string(),
                    info,
                    content,
                });
            }
            Inspected::Index(Err(message)) => checks.push(CheckResult::of(
                format!("faiss:{}", file_name(path)),
                Err(message),
            )),
            Inspected::Rdb(result) => checks.push(CheckResult::of("redis_rdb", result)),
        }
        entries.push(entry);
    }
    progress.finish();
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !failed.is_empty() {
        writer.abort().await;
        return Err(ProtectError::ChecksFailed {
            what: "the captured FAISS and Redis files".into(),
            action: "committed",
            failed,
        });
    }
    let description = StoreDescription {
        faiss: indexes,
        redis,
    };
    let info = ManifestInfo {
        id: backup_id(created_at),
        created_at,
        tags: normalise_tags(&settings.tags),
        source: Source {
            kind: SOURCE_KIND.into(),
            path: describe_source(request),
        },
        capture: Capture {
            mode: "snapshot".into(),
            write_stall_ms: 0.0,
            attempts,
            duration_ms: crate::duration::millis(began.elapsed()),
        },
        database: serde_json::to_value(&description).unwrap_or_default(),
        checks,
    };
    let manifest = writer.commit(info, entries).await?;
    Ok(BackupOutcome::Created {
        manifest: Box::new(manifest),
    })
}

fn describe_source(request: &FaissRedisSource) -> String {
    let mut parts: Vec<String> = request
        .faiss
        .iter()
        .map(|p| p.canonicalize().unwrap_or(p.clone()).display().to_string())
        .collect();
    if let Some(url) = &request.redis_url {
        parts.push(crate::redaction::redact_url(url));
    }
    parts.join(" + ")
}

async fn snapshot_redis(
    url: &str,
    request: &FaissRedisSource,
    settings: &BackupSettings,
) -> Result<(RedisRecord, PathBuf), ProtectError> {
    let redis = RedisTarget::new(url)?;
    let version = redis.version().await?;
    let saved = redis
        .bgsave(settings.max_write_stall.max(MIN_SAVE_TIMEOUT))
        .await?;
    let keys = redis.dbsize().await?;
    let prefixes = redis.count_prefixes(&request.prefixes).await?;
    let rdb = match &request.rdb_path {
        Some(path) => path.clone(),
        None => redis.rdb_path().await?,
    };
    let header = read_prefix(&rdb, 9)
        .map_err(|e| ProtectError::Input(format!("cannot read the Redis snapshot {}: {e} (pass the file with --redis-rdb when Redis runs elsewhere)", rdb.display())))?;
    let record = RedisRecord {
        url: redis.url().to_string(),
        version,
        keys,
        prefixes,
        saved_at: Utc
            .timestamp_opt(saved.saved_at, 0)
            .single()
            .unwrap_or_else(Utc::now),
        save_ms: crate::duration::millis(saved.duration),
        rdb: rdb.display().to_string(),
        rdb_version: rdb_version(&header),
    };
    Ok((record, rdb))
}

fn read_prefix(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    let read = std::fs::File::open(path)?.read(&mut bytes)?;
    bytes.truncate(read);
    Ok(bytes)
}

enum Inspected {
    Index(Result<(FaissIndexInfo, IndexContent), String>),
    Rdb(Result<String, String>),
}

fn inspect(path: &Path, rel: &str) -> Inspected {
    if rel == RDB_FILE {
        return Inspected::Rdb(check_rdb(path));
    }
    Inspected::Index(faiss::inspect_content(path).map_err(|e| e.to_string()))
}

/// An RDB snapshot must start with `REDIS` and its format version.
pub fn check_rdb(path: &Path) -> Result<String, String> {
    let header = read_prefix(path, 9).map_err(|e| format!("{}: {e}", path.display()))?;
    match rdb_version(&header) {
        Some(v) => Ok(format!("RDB format {v}")),
        None => Err(format!("{} is not a Redis RDB snapshot", path.display())),
    }
}

pub fn describe_index(info: &FaissIndexInfo) -> String {
    format!(
        "{}{} {}-d, {} vectors, {}",
        info.kind,
        info.inner
            .as_ref()
            .map(|i| format!(" over {i}"))
            .unwrap_or_default(),
        info.dimension,
        info.ntotal,
        if info.structure_checked {
            "structure checked"
        } else {
            "header checked"
        }
    )
}

/// Identity of a file's content as the filesystem sees it.
fn fingerprint(path: &Path) -> std::io::Result<(u64, i64, i64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// Inspect and store one file, proving it did not change in between; retried, then refused.
async fn store_stable(
    writer: &mut BackupWriter,
    path: &Path,
    rel: &str,
    progress: &dyn Progress,
) -> Result<(FileEntry, u32, Inspected), ProtectError> {
    let unreadable =
        |e: std::io::Error| ProtectError::Input(format!("cannot read {}: {e}", path.display()));
    for attempt in 1..=STABLE_ATTEMPTS {
        let before = fingerprint(path).map_err(unreadable)?;
        let (p, r) = (path.to_path_buf(), rel.to_string());
        let inspected = tokio::task::spawn_blocking(move || inspect(&p, &r))
            .await
            .map_err(|e| ProtectError::Input(format!("inspect task: {e}")))?;
        let entry = writer.add_file(path, rel, progress).await?;
        if fingerprint(path).map_err(unreadable)? == before {
            return Ok((entry, attempt, inspected));
        }
        tracing::warn!(file = %path.display(), attempt, "changed while it was read; reading again");
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    Err(ProtectError::Unstable {
        file: path.display().to_string(),
        attempts: STABLE_ATTEMPTS,
    })
}

/// Checks of restored files against the backup's manifest: every index parses and holds the
/// recorded type, dimension and count; the snapshot is an RDB file.
pub fn check_restored(dir: &Path, manifest: &Manifest) -> Vec<CheckResult> {
    let mut checks = Vec::new();
    let Some(description) = described(manifest) else {
        checks.push(CheckResult {
            name: "manifest".into(),
            passed: false,
            detail: "the backup does not describe its FAISS indexes".into(),
        });
        return checks;
    };
    for index in &description.faiss {
        let path = dir.join(index_file(&index.name));
        let result = match faiss::inspect(&path) {
            Ok(found) if found == index.info => Ok(describe_index(&found)),
            Ok(found) => Err(format!(
                "restored {}; the backup recorded {}",
                describe_index(&found),
                describe_index(&index.info)
            )),
            Err(e) => Err(e.to_string()),
        };
        checks.push(CheckResult::of(format!("faiss:{}", index.name), result));
    }
    if description.redis.is_some() {
        let result = check_rdb(&dir.join(RDB_FILE));
        checks.push(CheckResult::of("redis_rdb", result));
    }
    checks
}

/// `INDEX=PREFIX` pairs: the index's `ntotal` must equal the Redis key count under the prefix.
pub fn cross_checks(
    description: &StoreDescription,
    pairs: &[(String, String)],
) -> Vec<CheckResult> {
    pairs
        .iter()
        .map(|(index, prefix)| {
            let ntotal = description
                .faiss
                .iter()
                .find(|i| &i.name == index)
                .map(|i| i.info.ntotal);
            let keys = description
                .redis
                .as_ref()
                .and_then(|r| r.prefixes.get(prefix).copied());
            let (passed, detail) = match (ntotal, keys) {
                (Some(n), Some(k)) => (n == k, format!("{index} holds {n} vectors; Redis holds {k} keys under {prefix:?}")),
                (None, _) => (false, format!("no index named {index:?} in the backup")),
                (_, None) => (false, format!("the backup did not count prefix {prefix:?} (pass it with --redis-prefix when backing up)")),
            };
            CheckResult {
                name: format!("match:{index}={prefix}"),
                passed,
                detail,
            }
        })
        .collect()
}

/// `verify` for a FAISS + Redis backup: its index files are read back (hash-checked as they
/// are written to a scratch directory), parsed, and compared with what the manifest recorded;
/// then the `INDEX=PREFIX` cross-checks.
pub async fn verify_backup(
    repo: &Repository,
    index: &crate::repo::index::ChunkIndex,
    manifest: &Manifest,
    pairs: &[(String, String)],
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, crate::repo::RepoError> {
    let scratch = tempfile::tempdir()
        .map_err(|e| crate::repo::RepoError::io("cannot make a scratch directory", e))?;
    let prefix = format!("{FAISS_DIR}/");
    let indexes = |path: &str| path.starts_with(&prefix);
    crate::repo::restore::materialise_some(
        repo,
        index,
        manifest,
        indexes,
        scratch.path(),
        progress,
    )
    .await?;
    let mut checks: Vec<CheckResult> = check_restored(scratch.path(), manifest)
        .into_iter()
        .filter(|c| c.name != "redis_rdb")
        .collect();
    if let Some(description) = described(manifest) {
        checks.extend(cross_checks(&description, pairs));
    }
    Ok(checks)
}

/// FAISS index files with their metadata in a Redis snapshot.
pub struct FaissRedisFormat;

pub static FORMAT: FaissRedisFormat = FaissRedisFormat;

#[async_trait::async_trait]
impl super::BackupFormat for FaissRedisFormat {
    fn details(
        &self,
        manifest: &Manifest,
    ) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
        use crate::text::printable;
        let Some(store) = described(manifest) else {
            return Default::default();
        };
        let mut json = serde_json::Map::new();
        json.insert(
            "faiss".into(),
            serde_json::to_value(&store.faiss).unwrap_or_default(),
        );
        json.insert(
            "redis".into(),
            serde_json::to_value(&store.redis).unwrap_or_default(),
        );
        let mut lines: Vec<String> = store
            .faiss
            .iter()
            .map(|index| {
                format!(
                    "  faiss {:<30} {}",
                    printable(&index.name),
                    printable(&describe_index(&index.info))
                )
            })
            .collect();
        if let Some(redis) = &store.redis {
            lines.push(format!(
                "  redis {} (v{}): {} keys {:?}, saved {}",
                printable(&redis.url),
                printable(&redis.version),
                redis.keys,
                redis.prefixes,
                redis.saved_at
            ));
        }
        (json, lines)
    }

    /// Always: parsing the indexes is cheap next to what a bad one costs.
    fn reads_back(&self, manifest: &Manifest, _read_data: bool) -> bool {
        described(manifest).is_some()
    }

    async fn read_back(
        &self,
        repo: &Repository,
        index: &crate::repo::index::ChunkIndex,
        manifest: &Manifest,
        expect_match: &[(String, String)],
        progress: &dyn Progress,
    ) -> Result<Vec<CheckResult>, crate::repo::RepoError> {
        verify_backup(repo, index, manifest, expect_match, progress).await
    }

    fn source_kind(&self) -> &'static str {
        SOURCE_KIND
    }

    fn required_files(&self, manifest: &Manifest) -> Vec<(String, String)> {
        required_files(manifest)
    }

    fn data_present(&self, dir: &Path) -> bool {
        dir.join(RDB_FILE).is_file() || dir.join(FAISS_DIR).is_dir()
    }

    fn data_time(&self, dir: &Path) -> Option<std::time::SystemTime> {
        newest_mtime(dir)
    }

    fn check_replaceable(&self, _: &Manifest, _: &Path) -> Result<(), ProtectError> {
        Ok(())
    }

    fn check_staged(&self, dir: &Path, manifest: &Manifest) -> Vec<CheckResult> {
        check_restored(dir, manifest)
    }

    /// Each index file and the vectors it holds.
    fn recorded_counts(&self, manifest: &Manifest) -> Vec<(String, u64)> {
        let mut counts: Vec<(String, u64)> = described(manifest)
            .map(|d| {
                d.faiss
                    .into_iter()
                    .map(|i| (i.name, i.info.ntotal))
                    .collect()
            })
            .unwrap_or_default();
        counts.sort();
        counts
    }

    fn counts_in(&self, dir: &Path) -> Vec<(String, u64)> {
        let Ok(entries) = std::fs::read_dir(dir.join(FAISS_DIR)) else {
            return Vec::new();
        };
        let mut counts: Vec<(String, u64)> = entries
            .flatten()
            // Regular files only: a link there is never followed out of the directory.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let info = faiss::inspect(&e.path()).ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), info.ntotal))
            })
            .collect();
        counts.sort();
        counts
    }
}

/// FAISS index files with their metadata in Redis as a drill's target: `url` is Redis's.
pub struct FaissRedisTarget {
    pub redis_url: String,
}

#[async_trait::async_trait]
impl super::Target for FaissRedisTarget {
    fn kind(&self) -> super::spec::TargetKind {
        super::spec::TargetKind::FaissRedis
    }

    /// Redis answering, with its dataset loaded.
    async fn probe(&self, _timeout: Duration) -> Result<(), String> {
        let redis = RedisTarget::new(&self.redis_url).map_err(|e| e.to_string())?;
        let info = redis.info("persistence").await.map_err(|e| e.to_string())?;
        match info.get("loading").map(String::as_str) {
            Some("0") => Ok(()),
            _ => Err("Redis is still loading its dataset".into()),
        }
    }
}

/// A scenario's `target:` when its `kind:` is `faiss_redis`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaissRedisSpec {
    /// `faiss_redis`.
    pub kind: super::spec::TargetKind,
    /// Redis's URL.
    pub url: String,
    /// Where a restore puts the index files and the snapshot.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub service: Option<crate::platform::ServiceSpec>,
    /// The index files to back up.
    #[serde(default)]
    pub faiss: Vec<PathBuf>,
    /// Key prefixes counted into every backup and compared after a restore.
    #[serde(default)]
    pub redis_prefixes: Vec<String>,
    /// The RDB file, when Redis's own (CONFIG GET dir/dbfilename) is not readable from here.
    #[serde(default)]
    pub redis_rdb: Option<PathBuf>,
}

impl super::spec::TargetConfig for FaissRedisSpec {
    fn url(&self) -> &str {
        &self.url
    }

    fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn service(&self) -> Option<&crate::platform::ServiceSpec> {
        self.service.as_ref()
    }

    fn connect(&self) -> Box<dyn super::Target> {
        Box::new(FaissRedisTarget {
            redis_url: self.url.clone(),
        })
    }

    /// The index files and Redis (the data directory is where a restore puts them).
    fn backup_source(
        &self,
        _data_dir: Option<PathBuf>,
        _mode: super::chroma::capture::CaptureMode,
    ) -> Result<Box<dyn super::protect::BackupSource>, String> {
        Ok(Box::new(FaissRedisSource {
            faiss: self.faiss.clone(),
            redis_url: Some(self.url.clone()),
            prefixes: self.redis_prefixes.clone(),
            rdb_path: self.redis_rdb.clone(),
            pre: None,
            post: None,
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
