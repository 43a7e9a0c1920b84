//! `vecdrill check`: heartbeat, backup age and disk use in one command for cron and uptime
//! monitors; exit 0 when every check passes, 1 otherwise.

use std::path::PathBuf;

use clap::Args;
use vecdrill::duration::HumanDuration;
use vecdrill::exit;
use vecdrill::health::{self, Check};
use vecdrill::targets::chroma::{ChromaClient, ChromaTarget};

use super::{print_json, Failure};

#[derive(Args)]
pub struct CheckArgs {
    /// Chroma server whose heartbeat to check.
    #[arg(long)]
    pub url: Option<String>,
    /// Per heartbeat.
    #[arg(long, default_value = "5s")]
    pub heartbeat_timeout: HumanDuration,
    /// Failed heartbeats in a row before the check fails.
    #[arg(long, default_value_t = 3)]
    pub failures: u32,
    /// Between heartbeat attempts.
    #[arg(long, default_value = "2s")]
    pub interval: HumanDuration,
    /// Repository whose newest backups to check.
    #[arg(long, env = "VECDRILL_REPO")]
    pub repo: Option<String>,
    /// Fail when any source's newest backup is older, e.g. 26h.
    #[arg(long, requires = "repo")]
    pub max_backup_age: Option<HumanDuration>,
    /// Fail when any source's newest backup has gone unproven (no passing `vecdrill prove`)
    /// longer than this since it was made, e.g. 2d.
    #[arg(long, requires = "repo")]
    pub max_unproven_age: Option<HumanDuration>,
    /// Fail when a Chroma source's shipped log (`vecdrill follow`) is further behind than
    /// this, or has none, e.g. 1m.
    #[arg(long, value_name = "DUR", requires = "repo")]
    pub max_log_lag: Option<HumanDuration>,
    /// Check only this source's backups (HOST:PATH as `list` shows it, or the path alone).
    #[arg(long, value_name = "SOURCE", requires = "repo")]
    pub source: Option<String>,
    /// A second repository that must hold a copy of each source's newest backup in --repo
    /// (`vecdrill copy`, `backup --copy-to`).
    #[arg(long, value_name = "URL", requires = "repo")]
    pub copy_repo: Option<String>,
    #[command(flatten)]
    pub password: super::repo_args::PasswordArgs,
    #[command(flatten)]
    pub copy_password: super::repo_args::CopyPasswordArgs,
    /// Redis whose PING to check (the metadata store of a FAISS + Redis setup).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// With --redis: count the keys under this prefix too (repeatable).
    #[arg(long = "redis-prefix", value_name = "PREFIX", requires = "redis")]
    pub redis_prefixes: Vec<String>,
    /// A FAISS index file that must be there and parse whole (repeatable).
    #[arg(long, value_name = "PATH")]
    pub faiss: Vec<PathBuf>,
    /// Data directory whose filesystem's use to check.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Fail above this disk use, e.g. 85 or 85%.
    #[arg(long, value_parser = parse_disk_use, requires = "data_dir")]
    pub max_disk_use: Option<f64>,
    /// Also write the results as Prometheus text (node_exporter textfile collector).
    #[arg(long)]
    pub metrics_file: Option<PathBuf>,
    /// Print every check and the verdict as JSON on stdout, instead of one line per check.
    #[arg(long)]
    pub json: bool,
}

fn parse_disk_use(text: &str) -> Result<f64, String> {
    let percent: vecdrill::percent::Percent = text.parse()?;
    Some(percent.0)
        .filter(|p| *p <= 100.0)
        .ok_or_else(|| format!("disk use is at most 100%, got {text:?}"))
}

pub async fn check(args: CheckArgs) -> Result<i32, Failure> {
    if args.url.is_none()
        && args.repo.is_none()
        && args.data_dir.is_none()
        && args.redis.is_none()
        && args.faiss.is_empty()
    {
        return Err(Failure {
            message: "nothing to check".into(),
            hint: Some("give --url, --repo (with --max-backup-age), --redis, --faiss and/or --data-dir (with --max-disk-use)".into()),
            code: exit::BAD_INPUT,
        });
    }
    let mut checks: Vec<Check> = Vec::new();
    let mut more_metrics = Vec::new();
    if let Some(url) = &args.url {
        checks.push(
            health::heartbeat(
                &ChromaTarget {
                    client: ChromaClient::new(url),
                },
                url,
                args.heartbeat_timeout.as_duration(),
                args.failures,
                args.interval.as_duration(),
            )
            .await,
        );
    }
    if let Some(url) = &args.redis {
        checks.push(health::redis(url, &args.redis_prefixes).await);
    }
    if !args.faiss.is_empty() {
        checks.push(health::faiss(&args.faiss));
    }
    // Opened once for every repository check, with --repo's password.
    let opened = match &args.repo {
        Some(url) => Some(
            health::Opened::open(url, &args.password.sources(), super::prompt::for_terminal())
                .await,
        ),
        None => None,
    };
    if let Some(repo) = &opened {
        checks.push(health::object_store(repo));
        checks.push(
            health::backup_age(
                repo,
                args.max_backup_age.map(HumanDuration::as_duration),
                args.source.as_deref(),
            )
            .await,
        );
    }
    if let (Some(repo), Some(max)) = (&opened, args.max_unproven_age) {
        let (check, metrics) =
            health::unproven_age(repo, max.as_duration(), args.source.as_deref()).await;
        checks.push(check);
        more_metrics = metrics;
    }
    if let (Some(repo), Some(copy_repo)) = (&opened, &args.copy_repo) {
        let password = args.copy_password.sources(&args.password);
        checks.push(health::copies(repo, copy_repo, &password, args.source.as_deref()).await);
    }
    if let (Some(repo), Some(max)) = (&opened, args.max_log_lag) {
        checks.push(health::log_lag(repo, max.as_duration(), args.source.as_deref()).await);
    }
    if let Some(dir) = &args.data_dir {
        checks.push(health::disk_use(dir, args.max_disk_use));
    }
    let passed = checks.iter().all(|c| c.passed);
    if args.json {
        print_json(&serde_json::json!({ "passed": passed, "checks": checks }));
    } else {
        for c in &checks {
            say!(
                "{} {:<11} {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    // After the results: a metrics file that cannot be written must not hide them.
    if let Some(path) = &args.metrics_file {
        let mut metrics = health::metrics(&checks);
        metrics.extend(more_metrics);
        vecdrill::metrics::write(path, &metrics).map_err(|e| Failure {
            message: format!("cannot write {}: {e}", path.display()),
            hint: None,
            code: exit::RUNTIME,
        })?;
    }
    Ok(if passed { exit::SUCCESS } else { exit::FAILED })
}
