//! The `vecdrill` command line: parses flags and calls one library function per subcommand.
//! Errors are rendered once, here, as `error:` plus a `hint:`, with the documented exit code.

// Everything for stdout goes through `say!` and its kin (cli/mod.rs), which a closed pipe
// does not stop.
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::check::CheckArgs;
use cli::drill::{BenchArgs, RunArgs, SeedArgs, ValidateArgs};
use cli::history::{BaselineArgs, HistoryArgs};
use cli::platform::PlatformArgs;
use cli::rebuild::RebuildArgs;
use cli::repo::{
    ArchiveArgs, BackupArgs, ForgetArgs, InfoArgs, InitArgs, ListArgs, PruneArgs, RestoreArgs,
    StatsArgs, VerifyArgs,
};
use cli::transfer::{ExportArgs, ImportArgs};
use cli::Failure;
use vecdrill::exit;

mod cli;

const AFTER_HELP: &str = "\
Exit codes: 0 success (all objectives met), 1 an objective or verification failed,
2 bad usage or input, 3 could not run (service, network or storage failure), 130 interrupted.";

#[derive(Parser)]
#[command(
    name = "vecdrill",
    version,
    about = "Disaster recovery for vector databases: back up, restore, and prove it with recovery drills.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print nothing when the command succeeds (for cron, which mails what a job prints);
    /// when it fails, everything it said on stderr and its error, as without --quiet.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recovery-drill scenario and write its report.
    #[command(
        after_help = "Example:\n  vecdrill run scenarios/restart.yaml --var port=8765 --report-dir reports/"
    )]
    Run(RunArgs),
    /// Check scenario files without running them; prints FILE:LINE:COL: message per problem.
    #[command(after_help = "Example:\n  vecdrill validate scenarios/*.yaml")]
    Validate(ValidateArgs),
    /// Write deterministic sample records into a collection.
    #[command(
        after_help = "Example:\n  vecdrill seed --url http://127.0.0.1:8000 --collection docs --count 20000 \\\n      --dim 384 --seed 42"
    )]
    Seed(SeedArgs),
    /// Measure search throughput and latency percentiles against a collection.
    #[command(
        after_help = "Examples:\n  vecdrill bench --url http://127.0.0.1:8000 --collection docs --queries 2000 \\\n      --concurrency 8\n  vecdrill bench --url http://127.0.0.1:8000 --collection docs --rate 200 \\\n      --queries 2000 --json"
    )]
    Bench(BenchArgs),
    /// List the step kinds a scenario can use, with their outputs.
    #[command(after_help = "Example:\n  vecdrill steps")]
    Steps,
    /// Back up a Chroma persistent directory, or FAISS indexes with their Redis, into a repository.
    #[command(
        after_help = "Examples:\n  vecdrill backup --repo file:///srv/backups --chroma-dir /srv/chroma\n  vecdrill backup --repo s3://bucket/chroma --chroma-dir /srv/chroma \\\n      --mode hot --tag nightly --keep-last 24\n  # after writes, at most hourly\n  vecdrill backup --repo file:///srv/backups --chroma-dir /srv/chroma \\\n      --min-interval 1h\n  vecdrill backup --repo s3://bucket/store --faiss content_index.faiss \\\n      --faiss user_index.faiss --redis redis://127.0.0.1:6379 \\\n      --redis-prefix chimera-vectors:\n\nEvery copy is checked before it is committed (SQLite integrity_check, the HNSW files against their metadata, that every record can be rebuilt); a copy that fails exits 1, names the check, and leaves the repository as it was.\nExit codes: 0 backed up or skipped, 1 a check failed or the repository is damaged, 2 bad input, 3 could not run (storage, server, lock), 130 interrupted."
    )]
    Backup(Box<BackupArgs>),
    /// Ship a running Chroma's write-ahead log to a repository continuously, so that a
    /// restore can reach any second since the last base backup (`restore --at`).
    #[command(
        after_help = "Examples:\n  vecdrill follow --repo s3://bucket/chroma --chroma-dir /srv/chroma \\\n      --take-over-purge --base-every 24h \\\n      --metrics-file /var/lib/node/vecdrill.prom\n  # catch up once, from cron\n  vecdrill follow --repo file:///srv/backups --chroma-dir /srv/chroma \\\n      --take-over-purge --once\n\nChroma (0.5.23 or newer) purges its log once its segments have applied it; the follower turns that off (--take-over-purge is the consent), ships each new row within --interval, then purges what is shipped and applied. A base backup is taken when there is none, on --base-every, and after a gap (rows gone before they were shipped), which is also logged, counted in the metrics and posted to --notify. SIGTERM or SIGINT ships what is left, sets the purge switch back and exits 0.\nExit codes: 0 stopped cleanly, 2 bad input (no consent, a Chroma without the switch), 3 could not run."
    )]
    Follow(cli::follow::FollowArgs),
    /// Copy backups into another repository (an off-site second copy), sending only what it
    /// lacks and verifying each copy there before it is listed.
    #[command(
        after_help = "Examples:\n  vecdrill copy --from-repo file:///srv/backups --repo s3://bucket/chroma latest\n  # every backup the destination lacks, from cron\n  vecdrill copy --from-repo file:///srv/backups --repo s3://bucket/chroma --all\n  VECDRILL_FROM_PASSWORD_FILE=/etc/vecdrill/pw-local \\\n      vecdrill copy --from-repo file:///srv/backups --repo s3://bucket/chroma \\\n      --password-file /etc/vecdrill/pw-offsite --all\n\nA copy keeps the backup's id, time and source, so `restore latest` works the same from either repository. Between an encrypted and an unencrypted repository (or two with different keys) every file is read back and re-encrypted for the destination; chunks the destination holds are never uploaded again. The log `vecdrill follow` shipped after a backup is copied with it.\nExit codes: 0 copied (or already there), 1 the source or the copy is damaged, 2 bad input, 3 could not run."
    )]
    Copy(cli::copy::CopyArgs),
    /// An interactive menu for a terminal: create, list, show, verify, restore and copy
    /// backups without remembering a flag, each shown as the command that does it.
    #[command(
        after_help = "Examples:\n  vecdrill menu\n  vecdrill menu --repo s3://bucket/chroma --chroma-dir /srv/chroma\n\nA restore from the menu shows its plan, backs up the data there now (tagged pre-restore), asks, then restores: the restored copy is checked before it is swapped in, and the data it replaces is kept beside it. Every choice prints the command line that does the same, then runs exactly that. Without a terminal the menu refuses to start (exit 2) and never waits for an answer."
    )]
    Menu(cli::menu::MenuArgs),
    /// Create a repository, encrypted (the default) or not.
    #[command(
        after_help = "Examples:\n  VECDRILL_PASSWORD_FILE=/etc/vecdrill/pw \\\n      vecdrill init --repo s3://bucket/chroma\n  vecdrill init --repo file:///srv/backups --encryption none\n\nAn encrypted repository seals every object it holds (XChaCha20-Poly1305) under a random key that the password unlocks (Argon2id); the password comes from --password-file, --password-command, VECDRILL_PASSWORD_FILE, VECDRILL_PASSWORD_COMMAND or VECDRILL_PASSWORD. Without it the backups cannot be read by anyone."
    )]
    Init(InitArgs),
    /// Manage an encrypted repository's passwords: list, add, remove, passwd.
    #[command(
        after_help = "Examples:\n  vecdrill key list --repo s3://bucket/chroma\n  vecdrill key add --repo s3://bucket/chroma \\\n      --new-password-file /etc/vecdrill/pw-ops\n  vecdrill key passwd --repo s3://bucket/chroma \\\n      --new-password-file /etc/vecdrill/pw-new\n  vecdrill key remove --repo s3://bucket/chroma 3fa2c1d8\n\nEach key file wraps the same master key under another password, so adding, changing or removing a password rewrites no backup. The key whose password opened the repository, and the last intact key, cannot be removed."
    )]
    Key(cli::key::KeyArgs),
    /// List the backups in a repository.
    #[command(after_help = "Example:\n  vecdrill list --repo s3://bucket/chroma")]
    List(ListArgs),
    /// Show one backup: collections, counts, files, checks.
    #[command(after_help = "Example:\n  vecdrill info --repo file:///srv/backups latest --json")]
    Info(InfoArgs),
    /// Check that backups are complete (and, with --read-data, intact byte for byte).
    #[command(
        after_help = "Examples:\n  vecdrill verify --repo file:///srv/backups\n  vecdrill verify --repo s3://bucket/chroma latest --read-data"
    )]
    Verify(VerifyArgs),
    /// Restore a backup into a directory, keeping what was there as a safety copy.
    #[command(
        after_help = "Examples:\n  vecdrill restore --repo file:///srv/backups latest --to /srv/chroma\n  # restore-on-start\n  vecdrill restore --repo s3://bucket/chroma latest --to /srv/chroma \\\n      --if-newer --yes\n  vecdrill restore --repo file:///srv/backups 20261122T020000Z \\\n      --to /srv/chroma --dry-run"
    )]
    Restore(RestoreArgs),
    /// Prove a backup restores: restore it into a sandbox, serve it with a real server, check
    /// its counts and time it.
    #[command(
        after_help = "Examples:\n  vecdrill prove --repo file:///srv/backups latest --rto 5m\n  vecdrill prove --repo s3://bucket/chroma 20261122T020000Z \\\n      --server-cmd 'chroma run --path {dir} --port {port}' --json\n\nThe restore and the server's start to healthy are the RTO a real restore from this repository would have today. The sandbox is removed afterwards (--keep keeps it); the live directory is never touched. Exit codes: 0 proven, 1 a check or the RTO failed, 2 bad input, 3 could not run, 130 interrupted."
    )]
    Prove(cli::prove::ProveArgs),
    /// Write one backup as a single portable file (to move a database between machines).
    #[command(
        after_help = "Example:\n  vecdrill archive --repo file:///srv/backups latest \\\n      --out chroma-2026-11-22.tar.zst\n  vecdrill restore --archive chroma-2026-11-22.tar.zst --to /srv/chroma --yes"
    )]
    Archive(ArchiveArgs),
    /// Apply a retention policy and reclaim the space of removed backups.
    #[command(
        after_help = "Examples:\n  vecdrill prune --repo file:///srv/backups --keep-last 24\n  vecdrill prune --repo s3://bucket/chroma --keep-daily 7 --keep-weekly 4 \\\n      --keep-monthly 6 --dry-run"
    )]
    Prune(PruneArgs),
    /// Remove one backup by its whole id, also one whose manifest is damaged; `prune` then
    /// reclaims its space.
    #[command(
        after_help = "Example:\n  vecdrill forget --repo file:///srv/backups 20261130T231030Z-20692e62\n  vecdrill prune --repo file:///srv/backups --keep-last 24"
    )]
    Forget(ForgetArgs),
    /// Mend a repository's metadata: `repair index` writes lost or damaged pack indexes again
    /// from their packs.
    #[command(
        after_help = "Examples:\n  vecdrill repair index --repo file:///srv/backups --dry-run\n  vecdrill repair index --repo s3://bucket/chroma\n  vecdrill repair index --repo s3://bucket/chroma --read-all-packs\n\nEach pack repeats its index in a trailer (sealed in an encrypted repository), so an index that was deleted, damaged or forged is written again from it; --read-all-packs also reads every pack whole and checks it against its name. Nothing that still tells something is removed: a damaged pack, a pack an index names that is gone (its index is kept) and an object under packs/ where no pack belongs are named and left; only an unreadable index of a pack that is not there is removed. Exit codes: 0 every pack indexed and present, 1 damaged or missing packs, 2 bad input, 3 could not run."
    )]
    Repair(cli::repair::RepairArgs),
    /// Storage used by a repository.
    #[command(after_help = "Example:\n  vecdrill stats --repo file:///srv/backups --json")]
    Stats(StatsArgs),
    /// Write collections (configuration, metadata, every record) to one export file.
    #[command(
        after_help = "Examples:\n  vecdrill export --url http://127.0.0.1:8000 --all --out chroma.jsonl.zst\n  # server stopped\n  vecdrill export --chroma-dir /srv/chroma --collection docs --out docs.jsonl\n  vecdrill export --repo file:///srv/backups --backup latest --collection docs \\\n      --out docs.jsonl"
    )]
    Export(ExportArgs),
    /// Recreate collections from an export file (resumable: run it again after an interruption).
    #[command(
        after_help = "Examples:\n  vecdrill import --url http://127.0.0.1:8000 --in chroma.jsonl.zst\n  vecdrill import --url http://new-host:8000 --in chroma.jsonl.zst \\\n      --collection docs --as docs-restored"
    )]
    Import(ImportArgs),
    /// Rebuild a collection from source documents through an OpenAI-compatible embedding endpoint.
    #[command(
        after_help = "Examples:\n  OPENAI_API_KEY=... vecdrill rebuild --url http://127.0.0.1:8000 \\\n      --collection docs --source docs.jsonl --embed-url https://api.openai.com \\\n      --model text-embedding-3-small --space cosine\n  vecdrill rebuild --url http://127.0.0.1:8000 --collection docs \\\n      --source postgres://app@db/app --table documents --text-field body \\\n      --embed-url http://embedder:8080 --model bge-small --expected-min 1000"
    )]
    Rebuild(RebuildArgs),
    /// Operate the platform service (Railway) the way a drill does: status, restart, redeploy, stop, start.
    #[command(
        after_help = "Examples:\n  RAILWAY_TOKEN=... vecdrill platform status --service bmad-chromadb-production\n  vecdrill platform restart --scenario scenarios/railway/restart.yaml \\\n      --var project=PROJECT_ID --yes\n  vecdrill platform stop --project PROJECT_ID --service chromadb --json --yes"
    )]
    Platform(PlatformArgs),
    /// Health checks for cron and uptime monitors: heartbeat, backups' age, proof and second copy, the object store, Redis, FAISS files, log lag, disk use.
    #[command(
        after_help = "Examples:\n  vecdrill check --url http://127.0.0.1:8000 --repo s3://bucket/chroma \\\n      --max-backup-age 26h --data-dir /srv/chroma --max-disk-use 85%\n  vecdrill check --repo file:///srv/backups --max-backup-age 26h \\\n      --copy-repo s3://bucket/chroma --max-unproven-age 8d\n  vecdrill check --redis redis://127.0.0.1:6379 --redis-prefix doc: \\\n      --faiss /srv/faiss/index.faiss\n  vecdrill check --url http://127.0.0.1:8000 \\\n      --metrics-file /var/lib/node_exporter/textfile/vecdrill.prom --json"
    )]
    Check(CheckArgs),
    /// The record of every drill and backup: list, show one, or a scenario's monthly trend.
    #[command(
        after_help = "Examples:\n  vecdrill history --since 90d\n  vecdrill history --scenario snapshot-restore --json\n  vecdrill history show latest\n  vecdrill history trend --scenario snapshot-restore\n  vecdrill history report --since 12mo --out drill-record.html"
    )]
    History(HistoryArgs),
    /// A scenario's baseline, which relative objectives (max_regression, min_of_baseline) compare with.
    #[command(
        after_help = "Examples:\n  vecdrill baseline set staging-latency-20261101T020000Z\n  vecdrill baseline show staging-latency --json"
    )]
    Baseline(BaselineArgs),
}

/// Logs on stderr at `default_level`, or as `RUST_LOG` says (`info`, `vecdrill=debug,hyper=warn`).
fn log_to_stderr(default_level: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let set = std::env::var("RUST_LOG")
        .ok()
        .filter(|spec| !spec.trim().is_empty());
    let from_env = set.and_then(|spec| {
        spec.parse::<Targets>()
            .map_err(|e| {
                eprintln!(
                    "warning: RUST_LOG={spec:?} is not a log filter ({e}); using {default_level}"
                )
            })
            .ok()
    });
    let filter =
        from_env.unwrap_or_else(|| default_level.parse().expect("a bare level is a filter"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colours for a person at a terminal, never escape codes in cron's mail or a file.
                .with_ansi(colours_on_stderr()),
        )
        .with(filter)
        .init();
}

fn colours_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// At most two malloc arenas. glibc gives every thread that allocates while another holds an
/// arena one of its own (up to 8 per core), and memory freed in one is not reused by another:
/// with packs and chunks passed between the runtime's threads, a copy of 518 MiB peaked at
/// 204 MiB and a restore at 140 MiB; with two arenas 121 and 74 MiB, and neither took longer.
/// `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        const MALLOC_ARENAS: i32 = 2;
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    log_to_stderr(default_level);
    vecdrill::net::use_ring_for_tls();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::RUNTIME as u8);
        }
    };
    let Some(command) = cli.command else {
        return no_command();
    };
    // The menu's questions are its output: it is never quiet.
    let quiet = if cli.quiet && !matches!(command, Command::Menu(_)) {
        cli::quiet::Quiet::begin()
    } else {
        None
    };
    let result = runtime.block_on(dispatch_until_interrupted(command));
    let failed = !matches!(result, Ok(exit::SUCCESS)) || cli::stdout_failure().is_some();
    if let Some(quiet) = quiet {
        quiet.end(failed);
    }
    let code = match result {
        Ok(code) => code,
        Err(failure) => {
            // Messages can quote what a repository or server holds: shown escaped.
            let shown = vecdrill::text::printable;
            eprintln!("error: {}", shown(&failure.message));
            if let Some(hint) = failure.hint {
                eprintln!("hint: {}", shown(&hint));
            }
            failure.code
        }
    };
    let code = match cli::stdout_failure() {
        Some(err) if code == exit::SUCCESS => {
            eprintln!("error: cannot write the output: {err}");
            exit::RUNTIME
        }
        _ => code,
    };
    // Work a cancelled command left on blocking threads is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    vecdrill::repo::lock::release_again_after_shutdown();
    ExitCode::from(code as u8)
}

/// `vecdrill` alone: the help, and at a terminal the menu suggested (exit 2, as for any
/// usage without a command).
fn no_command() -> ExitCode {
    use clap::CommandFactory;
    let help = Cli::command().render_help();
    eprintln!("{help}");
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("At a terminal, `vecdrill menu` shows the choices (create, list, show, verify, restore, copy backups) and the command line for each.");
    }
    ExitCode::from(exit::BAD_INPUT as u8)
}

/// Run one command. SIGINT or SIGTERM cancels it (its working files are removed as they drop)
/// and releases the repository locks it held: exit 130. A drill (and a proof, which is one)
/// handles signals itself, to run its rollback steps and stop its server first, and so does a
/// follower, to ship what is left and set Chroma's purge switch back.
async fn dispatch_until_interrupted(command: Command) -> Result<i32, Failure> {
    let result = if matches!(
        command,
        Command::Run(_) | Command::Prove(_) | Command::Follow(_)
    ) {
        dispatch(command).await
    } else {
        tokio::select! {
            result = dispatch(command) => result,
            signal = interrupted() => {
                eprintln!("interrupted by {signal}");
                Ok(exit::INTERRUPTED)
            }
        }
    };
    vecdrill::repo::lock::release_held().await;
    result
}

/// The first SIGINT or SIGTERM, by name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminated => "SIGTERM",
    }
}

async fn dispatch(command: Command) -> Result<i32, Failure> {
    match command {
        Command::Run(args) => cli::drill::run(args).await,
        Command::Validate(args) => Ok(cli::drill::validate(args)),
        Command::Seed(args) => cli::drill::seed_command(args).await,
        Command::Bench(args) => cli::drill::bench(args).await,
        Command::Steps => Ok(cli::drill::list_steps()),
        Command::Backup(args) => cli::repo::backup(*args).await,
        Command::Follow(args) => cli::follow::follow(args).await,
        Command::Copy(args) => cli::copy::run(args).await,
        // The menu runs commands through this function: its future is boxed to end the cycle.
        Command::Menu(args) => {
            let menu: std::pin::Pin<Box<dyn std::future::Future<Output = Result<i32, Failure>>>> =
                Box::pin(cli::menu::run(args));
            menu.await
        }
        Command::Init(args) => cli::repo::init(args).await,
        Command::Key(args) => cli::key::run(args).await,
        Command::List(args) => cli::repo::list(args).await,
        Command::Info(args) => cli::repo::info(args).await,
        Command::Verify(args) => cli::repo::verify(args).await,
        Command::Restore(args) => cli::repo::restore(args).await,
        Command::Prune(args) => cli::repo::prune(args).await,
        Command::Forget(args) => cli::repo::forget(args).await,
        Command::Repair(args) => cli::repair::run(args).await,
        Command::Archive(args) => cli::repo::archive(args).await,
        Command::Prove(args) => cli::prove::prove(args).await,
        Command::Stats(args) => cli::repo::stats(args).await,
        Command::Export(args) => cli::transfer::export(args).await,
        Command::Import(args) => cli::transfer::import(args).await,
        Command::Rebuild(args) => cli::rebuild::rebuild(args).await,
        Command::Platform(args) => cli::platform::platform(args).await,
        Command::Check(args) => cli::check::check(args).await,
        Command::History(args) => cli::history::history(args),
        Command::Baseline(args) => cli::history::baseline(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand at any depth, with its path.
    fn commands(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            out.push((path.clone(), sub.clone()));
            commands(sub, path, out);
        }
    }

    #[test]
    fn issue_16_7_every_flag_and_command_has_help_and_examples_keep_to_80_columns() {
        let mut all = Vec::new();
        commands(&super::Cli::command(), "vecdrill".into(), &mut all);
        let mut missing = Vec::new();
        for (path, command) in &all {
            if command.get_about().is_none() {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            // Examples are printed as written: one wider than a terminal wraps mid-command
            // or mid-comment. (Prose paragraphs are wrapped by clap at word boundaries.)
            if let Some(after) = command.get_after_help() {
                for line in after
                    .to_string()
                    .lines()
                    .filter(|l| l.starts_with("  ") && l.len() > 80)
                {
                    missing.push(format!("{path}: example wider than 80 columns: {line}"));
                }
            }
        }
        assert!(all.len() > 20, "{} commands", all.len());
        assert!(missing.is_empty(), "no help: {missing:#?}");
    }

    #[test]
    fn issue_16_7_user_facing_text_names_no_internal_references() {
        let mut all = Vec::new();
        commands(&super::Cli::command(), "vecdrill".into(), &mut all);
        for (path, mut command) in all {
            let help = command.render_long_help().to_string();
            for internal in ["seed 00", "issue ", "Seed 00"] {
                assert!(
                    !help.contains(internal),
                    "{path} --help says {internal:?}:\n{help}"
                );
            }
        }
    }
}
