//! `vecdrill follow`: ship a running Chroma's log continuously (see `commands::follow`), with
//! its metrics file and gap webhook.

use std::path::PathBuf;

use clap::Args;
use vecdrill::commands::follow::{
    follow as follow_log, FollowError, FollowObserver, FollowOptions, FollowReport, CONSENT_NEEDED,
};
use vecdrill::duration::HumanDuration;
use vecdrill::exit;
use vecdrill::metrics::Metric;
use vecdrill::notify::{NotifyOn, NotifySpec};

use super::progress::for_terminal;
use super::repo_args::RepoArg;
use super::{print_json, Failure};

#[derive(Args)]
pub struct FollowArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// The running server's Chroma persistent directory (Chroma 0.5.23 or newer).
    #[arg(long)]
    pub chroma_dir: PathBuf,
    /// Consent to turn Chroma's own purge of its log off while following (set back when
    /// following stops): vecdrill then purges only what it has shipped. Required.
    #[arg(long)]
    pub take_over_purge: bool,
    /// How often the log is read and shipped.
    #[arg(long, value_name = "DUR", default_value = "1s")]
    pub interval: HumanDuration,
    /// Take a new base backup when the current one is this old (e.g. 24h); a restore replays
    /// at most this much log. Default: only when there is none, or after a gap.
    #[arg(long, value_name = "DUR")]
    pub base_every: Option<HumanDuration>,
    /// Ship what the log holds now and stop (for cron, or to catch up by hand). The purge
    /// stays taken over, so that Chroma deletes nothing unshipped between runs; a follower
    /// run without --once sets it back when it stops.
    #[arg(long)]
    pub once: bool,
    /// Base backups are hot copies: give up when writers would be held off longer.
    #[arg(long, value_name = "DUR", default_value = "30s")]
    pub max_write_stall: HumanDuration,
    /// Tag the base backups.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// POST a JSON message (with a Slack-compatible `text`) to this webhook on every gap.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// Keep Prometheus metrics here (vecdrill_log_lag_seconds, vecdrill_log_last_shipped_seq,
    /// vecdrill_log_gaps_total), for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Print what was done as JSON on stdout when following stops.
    #[arg(long)]
    pub json: bool,
}

pub async fn follow(args: FollowArgs) -> Result<i32, Failure> {
    // Before the repository is opened (or created): a refusal leaves nothing behind.
    if !args.take_over_purge {
        return Err(FollowError::Refused(CONSENT_NEEDED.into()).into());
    }
    let repo = args.repo.open_or_create().await?;
    let options = FollowOptions {
        dir: args.chroma_dir.clone(),
        take_over_purge: args.take_over_purge,
        interval: args.interval.as_duration(),
        base_every: args.base_every.map(HumanDuration::as_duration),
        once: args.once,
        max_write_stall: args.max_write_stall.as_duration(),
        tags: args.tags.clone(),
    };
    let mut observer = Observer {
        source: vecdrill::targets::protect::source_path(&args.chroma_dir),
        metrics_file: args.metrics_file.clone(),
        notify: args
            .notify
            .clone()
            .map(|url| NotifySpec::new(url, NotifyOn::Failure)),
        sends: Vec::new(),
    };
    let progress = for_terminal(true);
    // Listening from now on: a signal during the first base backup is heard when it ends
    // rather than killing the follower with the purge switch off.
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind| {
        signal(kind).map_err(|e| Failure {
            message: format!("cannot listen for signals: {e}"),
            hint: None,
            code: exit::RUNTIME,
        })
    };
    let (mut term, mut interrupt) = (
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
    );
    let stop = async move {
        let signal = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!("{signal}: shipping what is left and stopping");
    };
    let result = follow_log(&repo, &options, progress.as_ref(), stop, &mut observer).await;
    // Gap messages still on their way are waited for (each retries, then gives up).
    for send in observer.sends.drain(..) {
        let _ = send.await;
    }
    let report = result?;
    if args.json {
        print_json(&report);
    } else {
        say!(
            "followed {}: {} segment(s), {} row(s) shipped, {} purged, {} gap(s); chain of base {} at position {}{}",
            args.chroma_dir.display(),
            report.segments_shipped,
            report.rows_shipped,
            report.rows_purged,
            report.gaps,
            report.base,
            report.through,
            match (report.purge_restored, args.once) {
                (_, true) => "; Chroma's purge stays with vecdrill until a follower without --once stops",
                (Some(true), _) => "; Chroma's purge switch set back on",
                _ => "",
            }
        );
    }
    Ok(exit::SUCCESS)
}

struct Observer {
    source: String,
    metrics_file: Option<PathBuf>,
    notify: Option<NotifySpec>,
    sends: Vec<tokio::task::JoinHandle<()>>,
}

impl FollowObserver for Observer {
    fn passed(&mut self, report: &FollowReport) {
        let Some(path) = &self.metrics_file else {
            return;
        };
        let lag = report.covered_until.map_or(f64::NAN, |at| {
            (chrono::Utc::now() - at).num_milliseconds() as f64 / 1e3
        });
        let labels = vec![("source", self.source.clone())];
        let metrics = [
            Metric {
                name: "vecdrill_log_lag_seconds",
                help: "Seconds since the moment up to which the log is shipped",
                labels: labels.clone(),
                value: lag,
            },
            Metric {
                name: "vecdrill_log_last_shipped_seq",
                help: "The log position shipped last",
                labels: labels.clone(),
                value: report.through as f64,
            },
            Metric {
                name: "vecdrill_log_gaps_total",
                help: "Log rows lost before they were shipped, as gaps seen",
                labels,
                value: report.gaps_total as f64,
            },
        ];
        if let Err(err) = vecdrill::metrics::write(path, &metrics) {
            tracing::warn!("cannot write the metrics file {}: {err}", path.display());
        }
    }

    fn gap(&mut self, message: &str) {
        let Some(spec) = self.notify.clone() else {
            return;
        };
        let payload = serde_json::json!({
            "text": format!("vecdrill follow: {message}"),
            "event": "log_gap",
            "source": self.source,
            "message": message,
        });
        self.sends.push(tokio::spawn(async move {
            if let Err(err) = vecdrill::notify::send(&spec, &payload).await {
                tracing::warn!("{err}");
            }
        }));
    }
}
