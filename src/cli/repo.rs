//! Repository commands: `backup`, `list`, `info`, `verify`, `restore`, `prune`, `stats`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use clap::Args;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vecdrill::commands::backup::Rotation;
use vecdrill::duration::{format_utc, HumanDuration};
use vecdrill::exit;
use vecdrill::history::{backup_record, BackupRun};
use vecdrill::notify::{NotifyOn, NotifySpec};
use vecdrill::platform::docker::{DockerService, DockerSpec};
use vecdrill::platform::shell::ShellService;
use vecdrill::platform::shell::ShellSpec;
use vecdrill::platform::{Service, ServiceEnv};
use vecdrill::repo::format::{CopyRecord, Manifest, Proof};
use vecdrill::repo::prune::{PruneOptions, RetentionPolicy};
use vecdrill::repo::{Repository, SourceChoice};
use vecdrill::targets::chroma::capture::CaptureMode;
use vecdrill::targets::chroma::{pitr, shipped};
use vecdrill::targets::format_of;
use vecdrill::targets::protect::{
    self, BackupOutcome, RestoreOutcome, RestoreRequest, RestoreSource,
};
use vecdrill::text::printable;
use vecdrill::units::bytes;

use super::repo_args::{CopyPasswordArgs, PasswordArgs, RepoArg, SourceArg};
use super::{print_json, progress::for_terminal, prompt, Failure};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// The Chroma persistent directory (the one `chroma run --path` uses). Links are never
    /// followed: a symbolic link anywhere inside it is refused (exit 2), in every mode.
    #[arg(long, required_unless_present_any = ["faiss", "redis", "docker"], conflicts_with_all = ["faiss", "redis"])]
    pub chroma_dir: Option<PathBuf>,
    /// A Chroma running in this container (name or id): its data directory is found from the
    /// container's mounts (unless --chroma-dir gives it), and `--mode cold` stops and starts
    /// it through the Docker Engine API (DOCKER_HOST, default the local socket).
    #[arg(long, value_name = "CONTAINER", conflicts_with_all = ["faiss", "redis", "stop_cmd"])]
    pub docker: Option<String>,
    /// A FAISS index file (repeatable): stored under its file name, read with a stability check.
    #[arg(long)]
    pub faiss: Vec<PathBuf>,
    /// Redis holding the metadata: BGSAVE is run and waited for, and its RDB file stored.
    #[arg(long)]
    pub redis: Option<String>,
    /// Count the Redis keys under this prefix into the manifest (repeatable).
    #[arg(long = "redis-prefix", requires = "redis")]
    pub redis_prefixes: Vec<String>,
    /// The RDB file, when the server's own (CONFIG GET dir/dbfilename) is not readable here.
    #[arg(long, requires = "redis")]
    pub redis_rdb: Option<PathBuf>,
    /// FAISS + Redis: a shell command run before the capture (e.g. pause the writer).
    #[arg(long)]
    pub pre: Option<String>,
    /// FAISS + Redis: a shell command run after the capture, even when it fails.
    #[arg(long)]
    pub post: Option<String>,
    /// How to copy a directory a server is using: `hot` (commits wait while files are copied)
    /// or `cold` (stop, copy, start). Without it, a directory in use is refused.
    #[arg(long)]
    pub mode: Option<CaptureMode>,
    /// Label the backup (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Skip (exit 0) when the newest backup is younger than this, e.g. 1h.
    #[arg(long)]
    pub min_interval: Option<HumanDuration>,
    /// Hot mode: give up when writers would be held off longer than this.
    #[arg(long, default_value = "30s")]
    pub max_write_stall: HumanDuration,
    /// Where the consistent copy is staged before upload (default: beside --chroma-dir).
    #[arg(long)]
    pub staging_dir: Option<PathBuf>,
    /// Cold mode: the command that stops the server.
    #[arg(long, requires = "start_cmd")]
    pub stop_cmd: Option<String>,
    /// Cold mode: the command that starts it again (runs even when the copy fails, and, from a
    /// watcher process, when vecdrill is interrupted or killed while the service is stopped).
    #[arg(long, requires = "stop_cmd")]
    pub start_cmd: Option<String>,
    /// Read and check every file, even those the last backup of this directory shows
    /// unchanged (same size, modification time and mode), whose chunks and check results are
    /// otherwise carried over.
    #[arg(long)]
    pub read_all: bool,
    /// After a successful backup, keep only the newest N of this source (e.g. 24), in the
    /// repository and in --copy-to's.
    #[arg(long, value_name = "N", visible_alias = "max-backups")]
    pub keep_last: Option<usize>,
    /// After a successful backup, copy it into this second repository too (created on first
    /// use; see `vecdrill copy`): a failed copy fails the command (the backup stays).
    #[arg(long, value_name = "URL")]
    pub copy_to: Option<String>,
    #[command(flatten)]
    pub copy_password: CopyPasswordArgs,
    /// POST a JSON summary (with a Slack-compatible `text`) to this webhook.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// When to notify.
    #[arg(long, value_enum, default_value = "failure", requires = "notify")]
    pub notify_on: NotifyOn,
    #[command(flatten)]
    pub records: super::records::RecordArgs,
    /// Print the new backup's manifest summary (or why it was skipped) as JSON on stdout; no progress bar.
    #[arg(long)]
    pub json: bool,
    /// Prove the new backup right after committing it (as `vecdrill prove` does, its report
    /// under reports/); a failed proof fails the command (exit 1).
    #[arg(long)]
    pub prove: bool,
    /// The server command a proof starts, with {dir} and {port} (see `vecdrill prove`).
    #[arg(long, requires = "prove")]
    pub server_cmd: Option<String>,
    /// Where the proof's run directory is written [default: reports].
    #[arg(long, requires = "prove")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// Print the backups as a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// Backup id (or a unique prefix), or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    /// Print the manifest (collections with counts and dimensions, files, checks) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// One backup (id, prefix or `latest`); every backup when omitted.
    pub backup: Option<String>,
    /// Download every pack and re-hash every chunk.
    #[arg(long)]
    pub read_data: bool,
    /// FAISS + Redis backups: the index's ntotal must equal the Redis key count under the
    /// prefix, e.g. `content_index.faiss=chimera-vectors:` (repeatable).
    #[arg(long = "expect-match", value_parser = super::parse_key_value)]
    pub expect_match: Vec<(String, String)>,
    /// Print what was verified and every problem found as JSON on stdout; no progress bar.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// Repository URL (not needed with --archive).
    #[arg(long, env = "VECDRILL_REPO")]
    pub repo: Option<String>,
    /// Backup id (or a unique prefix), or `latest`.
    #[arg(required_unless_present_any = ["archive", "at"])]
    pub backup: Option<String>,
    /// Restore from a portable archive written by `vecdrill archive`.
    #[arg(long, conflicts_with = "backup")]
    pub archive: Option<PathBuf>,
    /// Restore a Chroma source as it was at this moment, to the second: the newest base
    /// backup before it plus the log `vecdrill follow` shipped (2026-03-01T09:30:00Z,
    /// "2026-03-01 09:30:00" in UTC, or "5m ago"). `vecdrill list` shows the windows.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["backup", "archive", "if_newer"])]
    pub at: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub source: SourceArg,
    /// The directory to restore into; its current contents are kept as a safety copy. It must
    /// end in the directory's own name and not be a symbolic link (give the directory it
    /// points to): the restore swaps a new directory in at this path.
    #[arg(long, required_unless_present = "docker")]
    pub to: Option<PathBuf>,
    /// Restore into the data directory of the Chroma in this container (name or id), found
    /// from its mounts as `backup --docker` finds it; stop the container first
    /// (`vecdrill platform stop --docker CONTAINER`).
    #[arg(long, value_name = "CONTAINER", conflicts_with = "to")]
    pub docker: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Delete the previous contents after a successful restore instead of keeping them.
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Safety copies of --to to keep (DIR.before-restore-TIME beside it), this restore's
    /// included: older ones are removed, so repeated restores do not fill the disk.
    /// (What a killed restore left is kept as DIR.interrupted-restore-TIME and never removed.)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_safety_copies: u64,
    /// Restore only when the backup is newer than the data in --to (restore-on-start).
    #[arg(long)]
    pub if_newer: bool,
    /// Print what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the restore (or, with --dry-run, its plan) as JSON on stdout; no progress bar.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// Backup id (or a unique prefix), or `latest`.
    pub backup: String,
    /// The archive file to write (a zstd-compressed tar; `restore --archive FILE` reads it).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the archive written (path, backup, size) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// The backup's whole id, as `list` shows it or as a damaged manifest is named
    /// (`snapshots/<id>.json`): no prefix, no `latest`.
    pub id: String,
}

pub async fn forget(args: ForgetArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    vecdrill::repo::prune::forget(&repo, &args.id).await?;
    say!(
        "removed backup {}; `vecdrill prune` reclaims the space only it used",
        args.id
    );
    Ok(exit::SUCCESS)
}

#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Keep each source's N newest backups.
    #[arg(long, value_name = "N", visible_alias = "keep")]
    pub keep_last: Option<usize>,
    /// Keep the newest backup of each of a source's last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<usize>,
    /// Keep the newest backup of each of a source's last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest backup of each of a source's last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest backup of each of a source's last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Keep each source's N newest backups proven restorable by `vecdrill prove`, whatever
    /// the other rules say.
    #[arg(long, value_name = "N")]
    pub keep_proven: Option<usize>,
    /// Remove at most N backups in this run.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Show what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the backups kept and removed, and the space reclaimed, as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// `repokey` (every object encrypted under a key the password unlocks) or `none`.
    #[arg(long, value_enum, default_value = "repokey")]
    pub encryption: EncryptionArg,
    /// Print the new repository's id and whether it is encrypted as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EncryptionArg {
    Repokey,
    None,
}

/// `init`: create a repository, encrypted unless told otherwise.
pub async fn init(args: InitArgs) -> Result<i32, Failure> {
    use vecdrill::repo::Encryption;
    let encryption = match args.encryption {
        EncryptionArg::Repokey => Encryption::RepoKey,
        EncryptionArg::None => Encryption::None,
    };
    let repo = Repository::init(
        &args.repo.repo,
        encryption,
        &args.repo.password.sources(),
        prompt::for_terminal(),
    )
    .await?;
    if args.json {
        print_json(&serde_json::json!({
            "id": repo.config.id,
            "repository": args.repo.repo,
            "encrypted": repo.encrypted(),
        }));
        return Ok(exit::SUCCESS);
    }
    say!(
        "created repository {} at {}",
        repo.config.id,
        args.repo.repo
    );
    say!("{}", encryption_line(&repo));
    if repo.encrypted() {
        say!("keep the password safe: without it nobody, you included, can read these backups");
    }
    Ok(exit::SUCCESS)
}

/// Whether the repository is encrypted, in one line.
fn encryption_line(repo: &Repository) -> &'static str {
    if repo.encrypted() {
        "encrypted: repokey (XChaCha20-Poly1305, key from the password by Argon2id)"
    } else {
        "NOT encrypted: whoever can read its store reads every document and vector (`vecdrill init` makes an encrypted one)"
    }
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Print the repository's storage use as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn backup(args: BackupArgs) -> Result<i32, Failure> {
    if let Some(url) = &args.copy_to {
        if vecdrill::repo::store::Store::same_place(url, &args.repo.repo) {
            return Err(Failure {
                message: format!("--copy-to {url} is the repository backed up into (--repo)"),
                hint: Some("give --copy-to a second repository: another disk or bucket".into()),
                code: exit::BAD_INPUT,
            });
        }
    }
    let mut history = args.records.open_history()?;
    let started_at = Utc::now();
    // Opened once: the copy and the proof after the backup use it too, so a password is
    // asked (or its command run, its key derived) once.
    let (repo, result) = match args.repo.open_or_create().await {
        Ok(repo) => {
            let result = create_backup(&args, &repo).await;
            (Some(repo), result)
        }
        Err(err) => (None, Err(err.into())),
    };
    let copied = match (created(&result), &args.copy_to, &repo) {
        (Some(manifest), Some(url), Some(repo)) => {
            Some(copy_created(&args, repo, manifest, url).await)
        }
        _ => None,
    };
    let manifest = created(&result);
    let record = backup_record(BackupRun {
        repo: &args.repo.repo,
        target: backup_target(&args),
        started_at,
        finished_at: Utc::now(),
        exit_code: match (&result, &copied) {
            (Err(failure), _) | (_, Some(Err(failure))) => failure.code,
            _ => exit::SUCCESS,
        },
        backup_id: manifest.map(|m| m.id.clone()),
        logical_bytes: manifest.map(|m| m.totals.logical_bytes),
        stored_bytes: manifest.map(|m| m.totals.stored_bytes),
        counts: manifest
            .map(|m| format_of(m).recorded_counts(m).into_iter().collect())
            .unwrap_or_default(),
        detail: match &result {
            Ok((outcome, rotation)) => with_copy(backup_json(outcome, rotation), copied.as_ref()),
            Err(failure) => serde_json::json!({ "error": failure.message, "hint": failure.hint }),
        },
    });
    super::records::keep(&args.records, history.as_mut(), &record);
    if let Some(url) = &args.notify {
        let spec = NotifySpec::new(url.clone(), args.notify_on);
        if spec.wants(record.passed) {
            let error = match (&result, &copied) {
                (Err(failure), _) | (_, Some(Err(failure))) => Some(failure.message.as_str()),
                _ => None,
            };
            super::records::notify(&spec, &vecdrill::notify::backup_summary(&record, error)).await;
        }
    }
    let (outcome, rotation) = result?;
    let code = report_backup(&outcome, rotation, copied.as_ref(), &args)?;
    if let Some(Err(failure)) = copied {
        return Err(failure);
    }
    match (&outcome, args.prove, &repo) {
        (BackupOutcome::Created { manifest }, true, Some(repo)) => {
            prove_created(&args, repo, manifest).await
        }
        _ => Ok(code),
    }
}

/// `backup --prove`: the new backup proven at once; the backup's own results stay the only
/// ones on stdout with --json, and its metrics file is the backup's.
async fn prove_created(
    args: &BackupArgs,
    repo: &Repository,
    manifest: &Manifest,
) -> Result<i32, Failure> {
    let records = super::records::RecordArgs {
        metrics_file: None,
        ..args.records.clone()
    };
    let report = super::prove::prove_backup(
        repo,
        &args.repo,
        manifest,
        super::prove::ProveHow {
            settings: vecdrill::steps::ProveSettings {
                server_command: args.server_cmd.clone(),
                ..Default::default()
            },
            keep: false,
            report_dir: args
                .report_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("reports")),
            shown: if args.json {
                super::drill::Shown::Aside
            } else {
                super::drill::Shown::Text
            },
            records: &records,
        },
    )
    .await?;
    Ok(report.exit_code)
}

/// `backup --copy-to`: the new backup copied into the second repository. A failure says that
/// the backup itself is committed.
async fn copy_created(
    args: &BackupArgs,
    repo: &Repository,
    manifest: &Manifest,
    url: &str,
) -> Result<vecdrill::commands::copy::CopyOutcome, Failure> {
    let copy = async {
        // Every backup of this source the copy lacks, the new one last: one that failed to
        // copy before is caught up now.
        let outcome = super::copy::copy_into(
            repo,
            &vecdrill::commands::Backups::All,
            &SourceChoice::named(Some(manifest.source_label())),
            url,
            &args.copy_password.sources(&args.repo.password),
            args.keep_last,
            args.json,
        )
        .await?;
        match outcome.failures() {
            failures if failures.is_empty() => Ok(outcome),
            failures => Err(Failure {
                message: format!("not copied: {}", failures.join("; ")),
                hint: Some("`vecdrill verify` on both repositories says more".into()),
                code: exit::FAILED,
            }),
        }
    };
    copy.await.map_err(|failure| Failure {
        message: format!(
            "backup {} is committed, but copying it into {} failed: {}",
            manifest.id,
            vecdrill::redaction::redact_url(url),
            failure.message
        ),
        hint: Some(format!(
            "{}run `vecdrill copy --from-repo {} --repo {} {}` once it is fixed",
            failure
                .hint
                .map(|h| format!("{h}; then "))
                .unwrap_or_default(),
            vecdrill::redaction::redact_url(&args.repo.repo),
            vecdrill::redaction::redact_url(url),
            manifest.id
        )),
        code: failure.code,
    })
}

/// The backup's JSON with what `--copy-to` did.
fn with_copy(
    mut shown: serde_json::Value,
    copied: Option<&Result<vecdrill::commands::copy::CopyOutcome, Failure>>,
) -> serde_json::Value {
    match copied {
        Some(Ok(outcome)) => shown["copy"] = serde_json::json!(outcome),
        Some(Err(failure)) => {
            shown["copy"] = serde_json::json!({ "error": failure.message, "hint": failure.hint })
        }
        None => {}
    }
    shown
}

fn created(result: &Result<(BackupOutcome, Rotation), Failure>) -> Option<&Manifest> {
    match result {
        Ok((BackupOutcome::Created { manifest }, _)) => Some(manifest),
        _ => None,
    }
}

/// What a backup protects, as its history record names it.
fn backup_target(args: &BackupArgs) -> String {
    match (&args.chroma_dir, &args.redis) {
        (Some(dir), _) => format!("chroma {}", dir.display()),
        (None, _) if args.docker.is_some() => {
            format!(
                "chroma in container {}",
                args.docker.as_deref().unwrap_or_default()
            )
        }
        (None, redis) => format!(
            "faiss_redis {}{}",
            args.faiss
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            redis
                .as_deref()
                .map(|r| format!(" {}", vecdrill::redaction::redact_url(r)))
                .unwrap_or_default()
        ),
    }
}

/// A container's Chroma service, for the commands that take `--docker`.
fn container_service(container: &str) -> DockerService {
    DockerService::new(
        DockerSpec {
            container: Some(container.to_string()),
            compose_project: None,
            compose_service: None,
            timeout: HumanDuration(std::time::Duration::from_secs(120)),
        },
        ServiceEnv {
            log_path: std::env::temp_dir().join("vecdrill-docker-service.log"),
            listen_addr: None,
        },
    )
}

/// The host directory of the container's Chroma data, said on stderr with its mount.
async fn found_data_dir(docker: &mut DockerService) -> Result<PathBuf, Failure> {
    let (dir, mount) = docker
        .data_dir(vecdrill::targets::chroma::schema::SQLITE_FILE)
        .await?;
    eprintln!(
        "data directory: {} (the container's {})",
        dir.display(),
        printable(&mount)
    );
    Ok(dir)
}

async fn container_data_dir(container: &str) -> Result<PathBuf, Failure> {
    found_data_dir(&mut container_service(container)).await
}

/// Take the backup, then rotate when asked.
async fn create_backup(
    args: &BackupArgs,
    repo: &Repository,
) -> Result<(BackupOutcome, Rotation), Failure> {
    use vecdrill::commands::backup::{
        BackupOptions, BackupSettings, BackupSource, ChromaSource, FaissRedisSource,
    };
    let mut service: Option<Box<dyn Service>> = match (&args.stop_cmd, &args.start_cmd) {
        (Some(stop), Some(start)) => Some(Box::new(ShellService::new(
            ShellSpec {
                start: Some(start.clone()),
                stop: Some(stop.clone()),
                restart: None,
                kill: None,
                cwd: None,
                env: Default::default(),
            },
            ServiceEnv {
                log_path: std::env::temp_dir().join("vecdrill-backup-service.log"),
                listen_addr: None,
            },
        ))),
        _ => None,
    };
    let mut chroma_dir = args.chroma_dir.clone();
    if let Some(container) = &args.docker {
        let mut docker = container_service(container);
        if chroma_dir.is_none() {
            chroma_dir = Some(found_data_dir(&mut docker).await?);
        }
        service = Some(Box::new(docker));
    }
    let source: Box<dyn BackupSource> = match &chroma_dir {
        Some(dir) => Box::new(ChromaSource {
            dir: dir.clone(),
            mode: args.mode,
            staging_parent: args.staging_dir.clone(),
            read_all: args.read_all,
        }),
        None => Box::new(FaissRedisSource {
            faiss: args.faiss.clone(),
            redis_url: args.redis.clone(),
            prefixes: args.redis_prefixes.clone(),
            rdb_path: args.redis_rdb.clone(),
            pre: args.pre.clone(),
            post: args.post.clone(),
        }),
    };
    let options = BackupOptions {
        source,
        settings: BackupSettings {
            tags: args.tags.clone(),
            max_write_stall: args.max_write_stall.as_duration(),
            min_interval: args.min_interval.map(HumanDuration::as_duration),
        },
        keep_last: args.keep_last,
    };
    let progress = for_terminal(args.json);
    let backed = vecdrill::commands::backup::backup(
        repo,
        &options,
        service.as_deref_mut(),
        progress.as_ref(),
    )
    .await?;
    Ok((backed.outcome, backed.rotation))
}

/// The backup and its rotation, as `--json` prints them and the history keeps them.
fn backup_json(outcome: &BackupOutcome, rotation: &Rotation) -> serde_json::Value {
    serde_json::json!({
        "backup": outcome,
        "pruned": rotation.pruned,
        "rotation_deferred": rotation.deferred,
    })
}

fn report_backup(
    outcome: &BackupOutcome,
    rotation: Rotation,
    copied: Option<&Result<vecdrill::commands::copy::CopyOutcome, Failure>>,
    args: &BackupArgs,
) -> Result<i32, Failure> {
    if args.json {
        print_json(&with_copy(backup_json(outcome, &rotation), copied));
        return Ok(exit::SUCCESS);
    }
    match outcome {
        BackupOutcome::Created { manifest } => {
            let t = &manifest.totals;
            say!(
                "backup {} ({} mode): {} files, {}, {} new chunks of {} ({} stored); write stall {}",
                manifest.id,
                manifest.capture.mode,
                t.files,
                bytes(t.logical_bytes),
                t.new_chunks,
                t.chunks,
                bytes(t.stored_bytes),
                vecdrill::duration::format_ms(manifest.capture.write_stall_ms),
            );
        }
        BackupOutcome::Skipped { reason, .. } => say!("skipped: {reason}"),
    }
    if let Some(pruned) = rotation.pruned {
        say!("rotation: removed {} old backup(s)", pruned.removed.len());
    }
    if let Some(reason) = rotation.deferred {
        say!("rotation: put off: {reason}");
    }
    if let Some(Ok(outcome)) = copied {
        super::copy::say_copied(outcome);
    }
    Ok(exit::SUCCESS)
}

#[derive(Tabled)]
struct BackupRow {
    id: String,
    created: String,
    source: String,
    mode: String,
    tags: String,
    collections: String,
    size: String,
    added: String,
    proven: String,
    copies: String,
}

/// Where a backup's copies are, as `--json` shows them.
fn copies_json(records: &[CopyRecord]) -> serde_json::Value {
    serde_json::json!(records
        .iter()
        .map(|r| serde_json::json!({
            "repository": r.repository,
            "url": r.url,
            "copied_at": r.copied_at,
            "removed_there_at": r.removed_there_at,
        }))
        .collect::<Vec<_>>())
}

/// Where a backup's copies are, and where it is a copy from, in a few words.
fn copies_text(manifest: &Manifest, records: Option<&Vec<CopyRecord>>) -> String {
    let mut said: Vec<String> = records
        .into_iter()
        .flatten()
        .map(|r| match r.removed_there_at {
            None => format!("in {}", r.url),
            Some(_) => format!("removed from {}", r.url),
        })
        .collect();
    if let Some(origin) = &manifest.copied_from {
        said.push(format!(
            "copy of {}",
            vecdrill::repo::keyring::short(&origin.repository)
        ));
    }
    if said.is_empty() {
        "-".into()
    } else {
        said.join(", ")
    }
}

fn collections_summary(manifest: &Manifest) -> Vec<serde_json::Value> {
    format_of(manifest).collections(manifest)
}

/// A backup's newest proof, for `--json` (null when it was never proven).
fn proof_json(proof: Option<&Proof>) -> serde_json::Value {
    proof.map_or(serde_json::Value::Null, |p| {
        serde_json::json!({
            "proven_at": p.proven_at,
            "passed": p.passed,
            "rto_ms": p.rto_ms,
            "restore_ms": p.restore_ms,
            "start_to_healthy_ms": p.start_to_healthy_ms,
            "counts": p.counts,
            "recall": p.recall,
            "failure": p.failure,
            "run_id": p.run_id,
        })
    })
}

/// A backup's newest proof, in a few words.
fn proof_text(proof: Option<&Proof>) -> String {
    match proof {
        None => "-".into(),
        Some(p) if p.passed => format!(
            "yes {}{}",
            p.proven_at.format("%Y-%m-%d"),
            p.rto_ms
                .map(|ms| format!(" (RTO {:.1}s)", ms / 1000.0))
                .unwrap_or_default()
        ),
        Some(p) => format!("FAILED {}", p.proven_at.format("%Y-%m-%d")),
    }
}

fn summary(manifest: &Manifest, proof: Option<&Proof>) -> serde_json::Value {
    let t = &manifest.totals;
    serde_json::json!({
        "id": manifest.id,
        "created_at": manifest.created_at,
        "source": manifest.source_label(),
        "source_kind": manifest.source.kind,
        "tags": manifest.tags,
        "mode": manifest.capture.mode,
        "collections": collections_summary(manifest),
        "files": t.files,
        "logical_bytes": t.logical_bytes,
        "new_bytes": t.new_bytes,
        "stored_bytes": t.stored_bytes,
        "dedup_ratio": if t.stored_bytes == 0 { None } else { Some(t.logical_bytes as f64 / t.stored_bytes as f64) },
        "proof": proof_json(proof),
    })
}

pub async fn list(args: ListArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let backups = repo.scan().await?;
    // What cannot be read is said (on stderr, beside the results) and fails the command.
    for damaged in &backups.damaged {
        eprintln!(
            "DAMAGED {}: {}",
            printable(&damaged.key),
            printable(&damaged.problem)
        );
    }
    let code = if backups.damaged.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILED
    };
    let manifests = args.source.choice().all_of_named(backups.manifests)?;
    let proofs = repo.proofs().await?;
    let copies = vecdrill::repo::copy::copies(&repo).await?;
    let reaches = shipped::reaches(&repo, &manifests).await?;
    if args.json {
        print_json(
            &manifests
                .iter()
                .map(|m| {
                    let mut shown = summary(m, proofs.get(&m.id));
                    shown["copies"] = copies_json(copies.get(&m.id).map_or(&[], |c| c));
                    shown["copied_from"] = serde_json::json!(m.copied_from);
                    if let Some(reach) = reaches.iter().find(|r| r.base == m.id) {
                        shown["log"] = log_json(reach);
                    }
                    shown
                })
                .collect::<Vec<_>>(),
        );
        return Ok(code);
    }
    let rows: Vec<BackupRow> = manifests
        .iter()
        .map(|m| BackupRow {
            id: m.id.clone(),
            created: m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            source: printable(&m.source_label()).into_owned(),
            mode: printable(&m.capture.mode).into_owned(),
            tags: printable(&m.tags.join(",")).into_owned(),
            collections: collections_summary(m)
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        printable(c["name"].as_str().unwrap_or_default()),
                        c["count"]
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            size: bytes(m.totals.logical_bytes),
            added: bytes(m.totals.stored_bytes),
            proven: printable(&proof_text(proofs.get(&m.id))).into_owned(),
            copies: printable(&copies_text(m, copies.get(&m.id))).into_owned(),
        })
        .collect();
    say_shown!("{}", Table::new(rows).with(Style::rounded()));
    for (source, windows) in shipped::windows(&reaches) {
        say_shown!(
            "{source} restores to any second (restore --at) of: {}",
            pitr::describe_windows(&windows)
        );
    }
    Ok(code)
}

/// A backup's shipped log chain, as `list --json` shows it.
fn log_json(reach: &shipped::Reach) -> serde_json::Value {
    let (from, until) = (reach.from, reach.until());
    serde_json::json!({
        "segments": reach.segments,
        "through": reach.through,
        "restores_from": (from <= until).then_some(from),
        "restores_until": (from <= until).then_some(until),
        "broken": reach.broken,
    })
}

pub async fn info(args: InfoArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let manifest = repo.backup(&args.backup, &args.source.choice()).await?;
    let (details, lines) = format_of(&manifest).details(&manifest);
    let proof = repo.proof(&manifest.id).await?;
    let copies = vecdrill::repo::copy::copies_of(&repo, &manifest.id).await?;
    if args.json {
        let mut value = serde_json::to_value(&manifest).unwrap_or_default();
        value["copies"] = copies_json(&copies);
        value["collections"] = serde_json::Value::Array(collections_summary(&manifest));
        value["encrypted"] = serde_json::Value::Bool(repo.encrypted());
        value["proof"] = proof_json(proof.as_ref());
        for (key, detail) in details {
            value[key] = detail;
        }
        print_json(&value);
        return Ok(exit::SUCCESS);
    }
    say_shown!(
        "backup {}  created {}  mode {}  tags [{}]",
        manifest.id,
        manifest.created_at,
        manifest.capture.mode,
        manifest.tags.join(", ")
    );
    say_shown!(
        "source {} on {}; vecdrill {}",
        manifest.source.path,
        manifest.hostname,
        manifest.tool_version
    );
    for line in lines {
        say_shown!("{line}");
    }
    say_shown!("proven: {}", proof_text(proof.as_ref()));
    if let Some(origin) = &manifest.copied_from {
        say_shown!(
            "a copy, made {} from repository {}",
            format_utc(origin.copied_at),
            origin.repository
        );
    }
    for record in &copies {
        say_shown!(
            "copied {} into {} (repository {})",
            format_utc(record.copied_at),
            record.url,
            record.repository
        );
    }
    if let Some(failure) = proof.as_ref().and_then(|p| p.failure.as_ref()) {
        say_shown!("  the newest proof failed: {failure}");
    }
    for file in &manifest.files {
        say_shown!("  file {:<60} {:>12}", file.path, bytes(file.size));
    }
    for check in &manifest.checks {
        say_shown!(
            "  check {:<30} {}  {}",
            check.name,
            if check.passed { "ok" } else { "FAILED" },
            check.detail
        );
    }
    Ok(exit::SUCCESS)
}

pub async fn verify(args: VerifyArgs) -> Result<i32, Failure> {
    use vecdrill::commands::verify::{Backups, VerifyOptions};
    let repo = args.repo.open().await?;
    let options = VerifyOptions {
        backups: args.backup.clone().map_or(Backups::All, Backups::One),
        source: args.source.choice(),
        read_data: args.read_data,
        expect_match: args.expect_match.clone(),
    };
    let progress = for_terminal(args.json);
    let verification =
        match vecdrill::commands::verify::verify(&repo, &options, progress.as_ref()).await {
            // Asked to verify a backup, and there is none: nothing restorable, a failure.
            Err(vecdrill::repo::RepoError::Empty) => {
                return Err(Failure {
                    message: "the repository has no backups: there is nothing to verify or restore"
                        .into(),
                    hint: Some("take one with `vecdrill backup`".into()),
                    code: exit::FAILED,
                })
            }
            other => other?,
        };
    let (report, store_checks) = (&verification.report, &verification.read_back);
    if report.backups.is_empty() && report.problems.is_empty() && !args.json {
        say!("the repository holds no backups yet: its structure is sound, but there is nothing to restore");
    }
    let passed = verification.passed();
    if args.json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        value["store_checks"] = serde_json::json!(store_checks
            .iter()
            .map(|(backup, c)| serde_json::json!({"backup": backup, "name": c.name, "passed": c.passed, "detail": c.detail}))
            .collect::<Vec<_>>());
        value["passed"] = serde_json::Value::Bool(passed);
        print_json(&value);
    } else {
        for (backup, check) in store_checks {
            say_shown!(
                "{} backup {backup} {}: {}",
                if check.passed { "ok" } else { "FAILED" },
                check.name,
                check.detail
            );
        }
        for problem in &report.problems {
            say_shown!("DAMAGED {problem}");
        }
        say!(
            "{}: {} backup(s), {} files, {} chunks in {} packs{}; {} problem(s)",
            if passed {
                "verified"
            } else {
                "verification FAILED"
            },
            report.backups.len(),
            report.files,
            report.chunks,
            report.packs,
            if report.read_data {
                format!(", {} read and re-hashed", bytes(report.bytes_read))
            } else {
                String::new()
            },
            report.problems.len()
        );
    }
    Ok(if passed { exit::SUCCESS } else { exit::FAILED })
}

pub async fn restore(args: RestoreArgs) -> Result<i32, Failure> {
    let repo = match (&args.archive, &args.repo) {
        (Some(_), _) => None,
        (None, Some(url)) => Some(
            Repository::open_with(url, &args.password.sources(), prompt::for_terminal()).await?,
        ),
        (None, None) => {
            return Err(Failure {
                message: "no repository given".into(),
                hint: Some("pass --repo URL (or set VECDRILL_REPO), or --archive FILE".into()),
                code: exit::BAD_INPUT,
            })
        }
    };
    let to = match (&args.to, &args.docker) {
        (Some(to), _) => to.clone(),
        (None, Some(container)) => container_data_dir(container).await?,
        (None, None) => unreachable!("clap requires --to or --docker"),
    };
    let archive = match &args.archive {
        Some(path) => Some(vecdrill::repo::archive::Archive::open(
            path,
            &args.password.sources(),
            prompt::for_terminal(),
        )?),
        None => None,
    };
    let source = match (&repo, &archive) {
        (Some(repo), _) => RestoreSource::Repo(repo),
        (None, Some(archive)) => RestoreSource::Archive(archive),
        (None, None) => unreachable!("checked above"),
    };
    let mut backup = args.backup.clone().unwrap_or_else(|| "latest".into());
    let point = match (&args.at, source) {
        (Some(at), RestoreSource::Repo(repo)) => {
            let at =
                vecdrill::duration::parse_moment(at, chrono::Utc::now()).map_err(|e| Failure {
                    message: format!("--at: {e}"),
                    hint: None,
                    code: exit::BAD_INPUT,
                })?;
            let choice = RestoreRequest::choice_for(&to, args.source.choice());
            let point = pitr::choose(repo, &choice, at).await?;
            backup = point.chain.base.id.clone();
            Some((point, repo.clone()))
        }
        _ => None,
    };
    // Every restore from a repository: a Chroma base a follower took gets its purge switch
    // back; with --at, the shipped log is replayed into it.
    let replay = repo.as_ref().map(|repo| {
        Arc::new(pitr::ChromaStaging::new(
            repo.clone(),
            point.as_ref().map(|(point, _)| point.clone()),
        ))
    });
    let request = RestoreRequest {
        backup: backup.clone(),
        source: args.source.choice(),
        to: to.clone(),
        keep_safety_copies: if args.no_safety_backup {
            0
        } else {
            args.keep_safety_copies as usize
        },
        if_newer: args.if_newer,
        dry_run: args.dry_run,
        then: replay
            .clone()
            .map(|r| r as Arc<dyn vecdrill::targets::protect::StagedStep>),
    };
    let has_data = std::fs::read_dir(&to)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if has_data && !args.yes && !args.dry_run && !args.if_newer && std::io::stdin().is_terminal() {
        let manifest = match source {
            RestoreSource::Repo(repo) => repo.backup(&backup, &request.choice()).await?,
            RestoreSource::Archive(archive) => archive.read_manifest()?,
        };
        let question = format!(
            "Replace {} with backup {} ({})? The current data {}",
            to.display(),
            manifest.id,
            format_utc(manifest.created_at),
            if args.no_safety_backup {
                "will be DELETED."
            } else {
                "is kept as a safety copy."
            }
        );
        if !super::ask_yes(&question) {
            say!("nothing restored");
            return Ok(exit::FAILED);
        }
    }
    let progress = for_terminal(args.json);
    let outcome = protect::restore(source, &request, progress.as_ref()).await?;
    let point_in_time = match (&point, &replay) {
        (Some((point, repo)), Some(replay)) => Some(match replay.replayed() {
            Some(replayed) => serde_json::to_value(&replayed).unwrap_or_default(),
            // A dry run: what would be replayed.
            None => serde_json::json!({
                "at": point.at,
                "base": point.chain.base.id,
                "rows": pitr::count_rows(repo, point).await?,
            }),
        }),
        _ => None,
    };
    if args.json {
        let mut shown = serde_json::to_value(&outcome).unwrap_or_default();
        if let (Some(map), Some(point)) = (shown.as_object_mut(), &point_in_time) {
            map.insert("point_in_time".into(), point.clone());
        }
        print_json(&shown);
        return Ok(exit::SUCCESS);
    }
    if let Some(point) = &point_in_time {
        let verb = if args.dry_run {
            "would restore"
        } else {
            "restored"
        };
        say!(
            "{verb} {} as it was at {}: base {} and {} log row(s) shipped after it, which Chroma replays on start",
            to.display(),
            point["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| format_utc(t.to_utc()))
                .unwrap_or_default(),
            printable(point["base"].as_str().unwrap_or_default()),
            point["rows"]
        );
    }
    match &outcome {
        RestoreOutcome::Restored {
            backup,
            to,
            safety_copy,
            files,
            bytes: size,
            checks,
            ..
        } => {
            say!(
                "restored backup {backup} into {} ({files} files, {}); {} checks passed",
                to.display(),
                bytes(*size),
                checks.len()
            );
            match safety_copy {
                Some(path) => say!("the previous data is kept at {}", path.display()),
                None => say!("no previous data was kept"),
            }
        }
        RestoreOutcome::Skipped { reason, .. } => say!("skipped: {reason}"),
        RestoreOutcome::Plan {
            backup,
            source,
            to,
            files,
            bytes: size,
            replaces_existing,
            safety_copy,
            collections,
            current,
            ..
        } => {
            let listed = |collections: &[(String, u64)]| match collections {
                [] => "none".to_string(),
                some => some
                    .iter()
                    .map(|(name, count)| format!("{} ({count})", printable(name)))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            say_shown!(
                "would restore backup {backup} of {} ({files} files, {}) into {}",
                printable(source),
                bytes(*size),
                to.display()
            );
            say_shown!("  collections in the backup: {}", listed(collections));
            say_shown!("  collections there now:     {}", listed(current));
            if *replaces_existing {
                match safety_copy {
                    Some(path) => {
                        say!("the current data would be moved to {}", path.display())
                    }
                    None => say!("the current data would be deleted (--no-safety-backup)"),
                }
            }
        }
    }
    Ok(exit::SUCCESS)
}

pub async fn archive(args: ArchiveArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let manifest = repo.backup(&args.backup, &args.source.choice()).await?;
    let progress = for_terminal(args.json);
    let summary =
        vecdrill::repo::archive::write_archive(&repo, &manifest, &args.out, progress.as_ref())
            .await?;
    if args.json {
        print_json(&summary);
    } else {
        say!(
            "wrote backup {} ({} files, {}) to {} ({})",
            summary.backup,
            summary.files,
            bytes(summary.logical_bytes),
            summary.path.display(),
            bytes(summary.archive_bytes)
        );
    }
    Ok(exit::SUCCESS)
}

pub async fn prune(args: PruneArgs) -> Result<i32, Failure> {
    let policy = RetentionPolicy {
        keep_last: args.keep_last,
        keep_hourly: args.keep_hourly,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_proven: args.keep_proven,
    };
    if policy.is_empty() {
        return Err(Failure {
            message: "no retention policy given".into(),
            hint: Some("add at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-proven".into()),
            code: exit::BAD_INPUT,
        });
    }
    let repo = args.repo.open().await?;
    let options = PruneOptions {
        policy,
        dry_run: args.dry_run,
        limit: args.limit,
    };
    let report = vecdrill::repo::prune::prune(&repo, &options).await?;
    if args.json {
        print_json(&report);
        return Ok(exit::SUCCESS);
    }
    let mut source = None;
    for decision in &report.decisions {
        // The policy applies to each source's backups apart: say whose group this is.
        if source != Some(&decision.source) {
            say_shown!("source {}:", decision.source);
            source = Some(&decision.source);
        }
        let verdict = if decision.keep {
            format!("keep ({})", decision.reasons.join(", "))
        } else if report.removed.contains(&decision.id) {
            "remove".into()
        } else {
            "remove later (--limit)".into()
        };
        say!(
            "  {}  {}  {verdict}",
            decision.id,
            decision.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    say!(
        "{}{} backup(s) removed, {} deferred; {} pack(s) deleted, {} rewritten, {} freed",
        if report.dry_run { "dry run: " } else { "" },
        report.removed.len(),
        report.deferred.len(),
        report.packs_deleted,
        report.packs_rewritten,
        bytes(report.bytes_freed)
    );
    Ok(exit::SUCCESS)
}

pub async fn stats(args: StatsArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let stats = vecdrill::repo::prune::stats(&repo).await?;
    if args.json {
        let mut value = serde_json::to_value(&stats).unwrap_or_default();
        value["encrypted"] = serde_json::Value::Bool(repo.encrypted());
        print_json(&value);
        return Ok(exit::SUCCESS);
    }
    say!("{}", encryption_line(&repo));
    say!(
        "{} backups in {} packs; stored {} for {} of backed-up data ({:.2}x overall)",
        stats.backups,
        stats.packs,
        bytes(stats.stored_bytes),
        bytes(stats.logical_bytes),
        stats.total_ratio
    );
    say!(
        "  deduplication {:.2}x: {} of distinct chunks",
        stats.dedup_ratio,
        bytes(stats.unique_chunk_bytes)
    );
    say!(
        "  compression   {:.2}x: those chunks in {} of packs",
        stats.compression_ratio,
        bytes(stats.pack_bytes)
    );
    for (kind, size) in &stats.by_kind {
        say!("  {kind:<10} {}", bytes(*size));
    }
    Ok(exit::SUCCESS)
}
