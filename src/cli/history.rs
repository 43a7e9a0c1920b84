//! `vecdrill history` (list, show, trend) and `vecdrill baseline` (set, show).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vecdrill::duration::{format_ms, format_utc, HumanDuration};
use vecdrill::exit;
use vecdrill::history::trend::{self, TrendMonth};
use vecdrill::history::{History, RunFilter, RunKind, RunRecord};
use vecdrill::percent::format_change;

use super::{print_json, Failure};

/// The history database to read.
#[derive(Args)]
pub struct HistoryPath {
    /// The history database that `run` and `backup` record into [default:
    /// $XDG_STATE_HOME/vecdrill/history.sqlite, else ~/.local/state/vecdrill/history.sqlite]
    #[arg(
        long = "history",
        env = "VECDRILL_HISTORY",
        value_name = "PATH",
        global = true
    )]
    pub path: Option<PathBuf>,
}

impl HistoryPath {
    /// Open for reading: a history that does not exist yet is an error, not a new empty file.
    fn open(&self) -> Result<History, Failure> {
        let path = super::records::history_path(self.path.as_deref())?;
        if !path.exists() {
            return Err(Failure {
                message: format!("no history at {}", path.display()),
                hint: Some("runs and backups record themselves there; give another location with --history PATH or VECDRILL_HISTORY".into()),
                code: exit::BAD_INPUT,
            });
        }
        Ok(History::open(&path)?)
    }
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// Only this scenario's drills.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Only drills or only backups.
    #[arg(long, value_enum)]
    pub kind: Option<RunKind>,
    /// Only runs that started within this long (e.g. 90d, 12h).
    #[arg(long)]
    pub since: Option<HumanDuration>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub history: HistoryPath,
}

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// One run, whole: objectives, counts, and its full report.
    Show {
        /// Run id (or a unique prefix), or `latest`.
        run: String,
    },
    /// A scenario's RTO, RPO and search p90, month by month, with the change from the month
    /// before.
    Trend {
        /// The scenario's name (as `history` lists it).
        #[arg(long)]
        scenario: String,
    },
    /// One self-contained HTML page of the drill record: per scenario RTO, RPO and search
    /// latency over time against objectives and baseline, the monthly trend and every run
    /// linked; each repository's backup freshness and proven state.
    Report {
        /// Only this scenario's drills (backups are shown whatever the scenario).
        #[arg(long = "scenario", value_name = "NAME")]
        only: Option<String>,
        /// Only runs that started within this long (e.g. 12mo, 90d).
        #[arg(long = "since", value_name = "DUR")]
        within: Option<HumanDuration>,
        /// The page to write (replaced whole, never half-written).
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub history: HistoryPath,
}

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Make a drill run its scenario's baseline (latency percentiles and collection counts).
    Set {
        /// Run id (or a unique prefix), or `latest`.
        run: String,
    },
    /// Show a scenario's baseline.
    Show {
        /// The scenario's name (as `history` lists it).
        scenario: String,
    },
}

fn ms(value: Option<f64>) -> String {
    value.map(format_ms).unwrap_or_else(|| "-".into())
}

fn change(value: Option<f64>) -> String {
    value.map(format_change).unwrap_or_else(|| "-".into())
}

#[derive(Tabled)]
struct RunRow {
    run: String,
    kind: &'static str,
    #[tabled(rename = "scenario / repo")]
    subject: String,
    started: String,
    result: &'static str,
    rto: String,
    rpo: String,
    p90: String,
    objectives: String,
}

fn run_row(run: &RunRecord) -> RunRow {
    let met = run.objectives.iter().filter(|o| o.passed).count();
    RunRow {
        run: run.id.clone(),
        kind: run.kind.as_str(),
        subject: run
            .scenario
            .clone()
            .or_else(|| run.repo.clone())
            .unwrap_or_default(),
        started: run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        result: if run.passed { "passed" } else { "FAILED" },
        rto: ms(run.rto_ms),
        rpo: ms(run.rpo_ms),
        p90: ms(run.p90_ms),
        objectives: if run.objectives.is_empty() {
            "-".into()
        } else {
            format!("{met}/{} met", run.objectives.len())
        },
    }
}

pub fn history(args: HistoryArgs) -> Result<i32, Failure> {
    let history = args.history.open()?;
    match args.command {
        Some(HistoryCommand::Show { run }) => show(&history, &run, args.json),
        Some(HistoryCommand::Trend { scenario }) => trend(&history, &scenario, args.json),
        Some(HistoryCommand::Report { only, within, out }) => {
            report(&history, only.as_deref(), within, &out, args.json)
        }
        None => list(&history, &args),
    }
}

/// The moment `within` before now.
fn since(within: Option<HumanDuration>) -> Option<chrono::DateTime<chrono::Utc>> {
    within
        .and_then(|d| chrono::Duration::from_std(d.as_duration()).ok())
        .map(|d| chrono::Utc::now() - d)
}

fn list(history: &History, args: &HistoryArgs) -> Result<i32, Failure> {
    let filter = RunFilter {
        scenario: args.scenario.clone(),
        kind: args.kind,
        since: since(args.since),
    };
    let runs = history.runs(&filter)?;
    if args.json {
        print_json(&runs);
    } else if runs.is_empty() {
        eprintln!("no runs recorded in {} match", history.path().display());
    } else {
        say!(
            "{}",
            Table::new(runs.iter().map(run_row)).with(Style::rounded())
        );
    }
    Ok(exit::SUCCESS)
}

fn show(history: &History, wanted: &str, json: bool) -> Result<i32, Failure> {
    let run = history.run(wanted)?;
    if json {
        print_json(&run);
        return Ok(exit::SUCCESS);
    }
    let row = run_row(&run);
    say!("run        {}", run.id);
    say!("kind       {}", row.kind);
    say!("subject    {}", row.subject);
    say!("target     {}", run.target);
    say!(
        "started    {}  ({} long)",
        format_utc(run.started_at),
        ms(Some(run.duration_ms))
    );
    say!("result     {} (exit {})", row.result, run.exit_code);
    if run.kind == RunKind::Drill {
        say!(
            "rto {}  rpo {}  search p50 {}  p90 {}  p99 {}",
            row.rto,
            row.rpo,
            ms(run.p50_ms),
            row.p90,
            ms(run.p99_ms)
        );
    }
    if let Some(id) = &run.backup_id {
        say!("backup     {id}");
    }
    if let Some(dir) = &run.report_dir {
        say!("report     {dir}");
    }
    say!(
        "host       {} (vecdrill {})",
        run.host,
        run.vecdrill_version
    );
    for o in &run.objectives {
        let verdict = match (o.skipped, o.passed) {
            (true, _) => "skipped",
            (false, true) => "met",
            (false, false) => "MISSED",
        };
        say!(
            "objective  {:<16} {verdict:<8} target {}: {}",
            o.name,
            o.target,
            o.detail
        );
    }
    for (collection, count) in &run.counts {
        say!("count      {collection}: {count}");
    }
    Ok(exit::SUCCESS)
}

#[derive(Tabled)]
struct TrendRow {
    month: String,
    runs: String,
    rto: String,
    #[tabled(rename = "rto change")]
    rto_change: String,
    #[tabled(rename = "search p90")]
    p90: String,
    #[tabled(rename = "p90 change")]
    p90_change: String,
}

fn trend(history: &History, scenario: &str, json: bool) -> Result<i32, Failure> {
    let runs = history.runs(&RunFilter {
        scenario: Some(scenario.to_string()),
        kind: Some(RunKind::Drill),
        since: None,
    })?;
    let months: Vec<TrendMonth> = trend::monthly(&runs);
    if json {
        print_json(&serde_json::json!({ "scenario": scenario, "months": months }));
        return Ok(exit::SUCCESS);
    }
    if months.is_empty() {
        eprintln!(
            "no drills of scenario {scenario:?} in {}",
            history.path().display()
        );
        return Ok(exit::SUCCESS);
    }
    let rows = months.iter().map(|m| TrendRow {
        month: m.month.clone(),
        runs: format!("{} ({} passed)", m.runs, m.passed),
        rto: ms(m.rto_ms),
        rto_change: change(m.rto_change_pct),
        p90: ms(m.search_p90_ms),
        p90_change: change(m.search_p90_change_pct),
    });
    say!("{scenario}: monthly medians");
    say!("{}", Table::new(rows).with(Style::rounded()));
    Ok(exit::SUCCESS)
}

fn report(
    history: &History,
    only: Option<&str>,
    within: Option<HumanDuration>,
    out: &std::path::Path,
    json: bool,
) -> Result<i32, Failure> {
    let since = since(within);
    let runs = history.runs(&RunFilter {
        scenario: None,
        kind: None,
        since,
    })?;
    let shown = |r: &&RunRecord| {
        r.kind == RunKind::Drill && only.is_none_or(|only| r.scenario.as_deref() == Some(only))
    };
    let names_shown: std::collections::BTreeSet<String> = (runs.iter().filter(shown))
        .filter_map(|r| r.scenario.clone())
        .collect();
    let mut baselines = std::collections::BTreeMap::new();
    for name in names_shown.iter().cloned() {
        if let Some(baseline) = history.baseline(&name)? {
            baselines.insert(name, baseline);
        }
    }
    let html = vecdrill::history::page::render(&vecdrill::history::page::PageInput {
        runs: &runs,
        scenario: only,
        baselines: &baselines,
        generated_at: chrono::Utc::now(),
        since,
        history: history.path(),
        page_dir: vecdrill::atomic_file::parent(out),
    });
    let page_dir = vecdrill::atomic_file::parent(out);
    std::fs::create_dir_all(page_dir)
        .and_then(|()| vecdrill::atomic_file::write(out, html.as_bytes()))
        .map_err(|e| Failure {
            message: format!("cannot write {}: {e}", out.display()),
            hint: Some("give another --out".into()),
            code: exit::RUNTIME,
        })?;
    let drills = runs.iter().filter(shown).count();
    if drills == 0 {
        eprintln!("warning: no drill recorded in this period matches; the page shows backups only");
    }
    let backups = runs.iter().filter(|r| r.kind == RunKind::Backup).count();
    if json {
        print_json(&serde_json::json!({
            "out": out,
            "drills": drills,
            "backups": backups,
            "scenarios": names_shown,
        }));
    } else {
        say!(
            "wrote {} ({drills} drills, {backups} backups)",
            out.display()
        );
    }
    Ok(exit::SUCCESS)
}

pub fn baseline(args: BaselineArgs) -> Result<i32, Failure> {
    let baseline = match args.command {
        BaselineCommand::Set { run } => {
            let mut history = args.history.open()?;
            history.set_baseline(&run)?
        }
        BaselineCommand::Show { scenario } => {
            let history = args.history.open()?;
            history.baseline(&scenario)?.ok_or_else(|| Failure {
                message: format!("scenario {scenario:?} has no baseline"),
                hint: Some(
                    "set one with `vecdrill baseline set RUN` or `vecdrill run --save-baseline`"
                        .into(),
                ),
                code: exit::BAD_INPUT,
            })?
        }
    };
    if args.json {
        print_json(&baseline);
    } else {
        say!(
            "baseline of {:?}: run {} (started {}), set {}",
            baseline.scenario,
            baseline.run_id,
            format_utc(baseline.run_started_at),
            format_utc(baseline.set_at)
        );
        say!(
            "search p50 {}  p90 {}  p99 {}",
            ms(baseline.p50_ms),
            ms(baseline.p90_ms),
            ms(baseline.p99_ms)
        );
        for (collection, count) in &baseline.counts {
            say!("count {collection}: {count}");
        }
    }
    Ok(exit::SUCCESS)
}
