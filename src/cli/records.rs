//! What `run` and `backup` leave behind besides their own output: a row in the history, a
//! Prometheus metrics file, a webhook notification. None of these changes the command's
//! verdict; a failure is reported as a warning.

use std::path::PathBuf;

use clap::Args;
use vecdrill::exit;
use vecdrill::history::{History, RunRecord};
use vecdrill::notify::NotifySpec;

use super::Failure;

/// Where a command's record goes: the history database and a Prometheus metrics file.
#[derive(Args, Clone)]
pub struct RecordArgs {
    /// The history database every run and backup is recorded in [default:
    /// $XDG_STATE_HOME/vecdrill/history.sqlite, else ~/.local/state/vecdrill/history.sqlite]
    #[arg(long = "history", env = "VECDRILL_HISTORY", value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// Record nothing in the history.
    #[arg(long)]
    pub no_history: bool,
    /// Write Prometheus text-format metrics here (for node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

impl RecordArgs {
    /// The history database, unless `--no-history`. Opened before the work starts, so an
    /// unwritable history is found out before anything happens.
    pub fn open_history(&self) -> Result<Option<History>, Failure> {
        if self.no_history {
            return Ok(None);
        }
        Ok(Some(History::open(&history_path(
            self.history.as_deref(),
        )?)?))
    }
}

/// The history database: the one given, else the user's state directory.
pub fn history_path(given: Option<&std::path::Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    vecdrill::history::default_path().ok_or_else(|| Failure {
        message:
            "no place for the history: neither XDG_STATE_HOME nor HOME is set to an absolute path"
                .into(),
        hint: Some("give one with --history PATH or VECDRILL_HISTORY, or --no-history".into()),
        code: exit::BAD_INPUT,
    })
}

/// Record `run` in the history and write the metrics file. Returns whether the history now
/// holds the run.
pub fn keep(args: &RecordArgs, mut history: Option<&mut History>, run: &RunRecord) -> bool {
    let recorded = match history.as_deref_mut().map(|h| h.record(run)) {
        Some(Ok(())) => true,
        Some(Err(err)) => {
            eprintln!("warning: not recorded in the history: {err}");
            false
        }
        None => false,
    };
    if let Some(path) = &args.metrics_file {
        // Only the metrics need the last success; the history answers it, when there is one.
        let last_success = history.and_then(|h| h.last_success(run).ok().flatten());
        let metrics = vecdrill::metrics::of_run(run, last_success);
        if let Err(err) = vecdrill::metrics::write(path, &metrics) {
            eprintln!(
                "warning: cannot write the metrics file {}: {err}",
                path.display()
            );
        }
    }
    recorded
}

/// Send a notification; a failure is a warning only.
pub async fn notify(spec: &NotifySpec, payload: &serde_json::Value) {
    match vecdrill::notify::send(spec, payload).await {
        Ok(attempts) => eprintln!(
            "notified {}{}",
            vecdrill::redaction::redact_webhook(&spec.webhook),
            if attempts > 1 {
                format!(" (after {attempts} attempts)")
            } else {
                String::new()
            }
        ),
        Err(err) => eprintln!("warning: {err}"),
    }
}
