//! Drill commands: `run`, `validate`, `seed`, `bench`, `steps`.

use std::path::PathBuf;

use clap::Args;
use vecdrill::drill::{self, RunOptions};
use vecdrill::exit;
use vecdrill::history::History;
use vecdrill::latency::chroma_query::{run_search_load, SearchLoad};
use vecdrill::latency::LoadPlan;
use vecdrill::report::DrillReport;
use vecdrill::scenario::{self, LoadOptions, Scenario, ScenarioError};
use vecdrill::seed::{seed, SeedOptions};
use vecdrill::targets::chroma::ChromaClient;

use super::{parse_key_value, print_json, Failure};

#[derive(Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Override or add a scenario variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Where run directories with report.json, report.md, report.html and report.junit.xml are
    /// written.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Print the plan (steps with their parameters) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print report.json on stdout.
    #[arg(long)]
    pub json: bool,
    /// Make this run the scenario's baseline for relative objectives, when it passes.
    #[arg(long)]
    pub save_baseline: bool,
    #[command(flatten)]
    pub records: super::records::RecordArgs,
    #[command(flatten)]
    pub password: super::repo_args::PasswordArgs,
}

/// How a loaded scenario is run (by `run`, and by `prove` with the drill it writes).
pub struct RunHow<'a> {
    pub report_dir: PathBuf,
    pub shown: Shown,
    pub save_baseline: bool,
    pub records: &'a super::records::RecordArgs,
    pub passwords: vecdrill::repo::password::PasswordSources,
}

/// Where a run's verdict and report go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The verdict on stdout.
    Text,
    /// report.json on stdout, the verdict on stderr.
    Json,
    /// The verdict on stderr only: beside another command's results (`backup --prove --json`).
    Aside,
}

impl Shown {
    pub fn json_if(json: bool) -> Self {
        if json {
            Self::Json
        } else {
            Self::Text
        }
    }
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Validate with these variables set, as `run --var` would.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Print the result (valid, or every problem with its line and column) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SeedArgs {
    /// Chroma server base URL.
    #[arg(long)]
    pub url: String,
    /// The collection to write into (created when missing).
    #[arg(long)]
    pub collection: String,
    /// How many records to write.
    #[arg(long)]
    pub count: u64,
    /// Embedding dimension.
    #[arg(long)]
    pub dim: usize,
    /// Random seed: the same seed writes the same records.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Records per add request.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Print what was written (collection, records, dimension, time) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Chroma server base URL.
    #[arg(long)]
    pub url: String,
    /// The collection to query.
    #[arg(long)]
    pub collection: String,
    /// Queries measured (after the warm-up).
    #[arg(long, default_value_t = 1000)]
    pub queries: u64,
    /// Queries in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Constant rate in queries per second; latency is measured from each query's intended
    /// send time, so stalls show as queueing delay.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Queries sent first and not measured.
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// Print the latency summary (percentiles, throughput, errors) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunArgs) -> Result<i32, Failure> {
    let options = LoadOptions {
        overrides: &args.vars,
        ..LoadOptions::default()
    };
    let scenario = scenario::load_file(&args.scenario, &options)?;
    if args.dry_run {
        say!(
            "{}: {}",
            scenario.name,
            scenario.description.as_deref().unwrap_or("")
        );
        for line in drill::plan(&scenario) {
            say!("{line}");
        }
        return Ok(exit::SUCCESS);
    }
    let report = run_loaded(
        &scenario,
        RunHow {
            report_dir: args.report_dir,
            shown: Shown::json_if(args.json),
            save_baseline: args.save_baseline,
            records: &args.records,
            passwords: args.password.sources(),
        },
    )
    .await?;
    Ok(report.exit_code)
}

/// Run a loaded scenario: its passwords checked first, its report written, its verdict shown,
/// the run recorded in the history and notified. The report, whose exit code is the run's.
pub async fn run_loaded(scenario: &Scenario, how: RunHow<'_>) -> Result<DrillReport, Failure> {
    // Remembered: a password typed when the repository was opened (`prove`) is not asked again.
    let passwords =
        drill::check_passwords(scenario, &how.passwords, super::prompt::remembering()).await?;
    // Open the history before the drill starts: a history that cannot be written is found
    // out before anything is broken on purpose.
    let mut history = how.records.open_history()?;
    let baseline = match &history {
        Some(history) => history.baseline(&scenario.name)?,
        None => None,
    };
    let interrupt = drill::interrupt_on_signals();
    let options = RunOptions {
        report_dir: how.report_dir,
        baseline,
        passwords,
    };
    let report = drill::run(scenario, &options, &super::observer::LiveLines, interrupt).await?;
    vecdrill::report::write_files(&report, std::path::Path::new(&report.run_dir)).map_err(
        |source| drill::DrillError::WriteReport {
            path: report.run_dir.clone(),
            source,
        },
    )?;
    // The verdict is the result (stdout); beside --json, whose document is, it goes to stderr.
    let rendered = vecdrill::report::terminal::render(&report);
    if how.shown == Shown::Text {
        super::write_text(&rendered);
    } else {
        eprint!("{rendered}");
    }
    let record = vecdrill::history::drill_record(&report);
    let recorded = super::records::keep(how.records, history.as_mut(), &record);
    if recorded && how.save_baseline {
        save_baseline(history.as_mut(), &report);
    }
    if let Some(notify) = scenario.notify.as_ref().filter(|n| n.wants(report.passed)) {
        super::records::notify(notify, &vecdrill::notify::drill_summary(&report)).await;
    }
    if how.shown == Shown::Json {
        print_json(&report);
    }
    Ok(report)
}

/// Make a passed run its scenario's baseline. A failure here is reported but never changes
/// the drill's verdict: the report is already on disk.
fn save_baseline(history: Option<&mut History>, report: &DrillReport) {
    let Some(history) = history else { return };
    if !report.passed {
        eprintln!("baseline not saved: the run did not pass");
        return;
    }
    match history.set_baseline(&report.run_id) {
        Ok(baseline) => eprintln!(
            "baseline for {:?} is now run {}",
            baseline.scenario, baseline.run_id
        ),
        Err(err) => eprintln!("warning: baseline not saved: {err}"),
    }
}

pub fn validate(args: ValidateArgs) -> i32 {
    let options = LoadOptions {
        overrides: &args.vars,
        ..LoadOptions::default()
    };
    let mut results = Vec::new();
    let mut all_valid = true;
    for path in &args.scenarios {
        let problems: Vec<String> = match scenario::load_file(path, &options) {
            Ok(_) => Vec::new(),
            Err(ScenarioError::Invalid(diagnostics)) => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            Err(err) => vec![format!("{}:0:0: {err}", path.display())],
        };
        all_valid &= problems.is_empty();
        if !args.json {
            if problems.is_empty() {
                say!("{}: ok", path.display());
            }
            for problem in &problems {
                say!("{problem}");
            }
        }
        results.push(
            serde_json::json!({ "file": path, "valid": problems.is_empty(), "problems": problems }),
        );
    }
    if args.json {
        print_json(&serde_json::json!({ "valid": all_valid, "files": results }));
    }
    if all_valid {
        exit::SUCCESS
    } else {
        exit::BAD_INPUT
    }
}

pub async fn seed_command(args: SeedArgs) -> Result<i32, Failure> {
    if args.dim == 0 || args.count == 0 {
        return Err(Failure {
            message: "--dim and --count must be at least 1".into(),
            hint: None,
            code: exit::BAD_INPUT,
        });
    }
    let client = ChromaClient::new(&args.url);
    client.heartbeat(std::time::Duration::from_secs(10)).await?;
    let options = SeedOptions {
        collection: args.collection,
        count: args.count,
        dim: args.dim,
        seed: args.seed,
        batch_size: args.batch_size,
    };
    let progress = super::progress::for_terminal(args.json);
    let summary = seed(&client, &options, progress.as_ref()).await?;
    if args.json {
        print_json(&summary);
    } else {
        say!(
            "seeded {} records into {:?} ({} now) in {:.1}s, {:.0} rows/s",
            summary.written,
            summary.collection,
            summary.count_after,
            summary.seconds,
            summary.rows_per_second
        );
    }
    Ok(exit::SUCCESS)
}

pub async fn bench(args: BenchArgs) -> Result<i32, Failure> {
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(Failure {
            message: "--rate must be a positive number of queries per second".into(),
            hint: None,
            code: exit::BAD_INPUT,
        });
    }
    let client = ChromaClient::new(&args.url);
    let load = SearchLoad {
        collection: args.collection,
        k: args.k.max(1),
        plan: LoadPlan {
            queries: args.queries.max(1),
            concurrency: args.concurrency.max(1),
            rate: args.rate,
            warmup: args.warmup,
        },
    };
    let summary = run_search_load(&client, &load).await?;
    if args.json {
        print_json(&summary);
    } else {
        say!(
            "{} queries, concurrency {}{}: {:.0} qps; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors{}",
            summary.queries,
            summary.concurrency,
            summary.rate.map(|r| format!(", rate {r}/s")).unwrap_or_default(),
            summary.qps,
            summary.p50_ms,
            summary.p90_ms,
            summary.p99_ms,
            summary.max_ms,
            summary.errors,
            if summary.rate.is_some() { format!("; queueing delay max {:.2} ms", summary.queue_delay_max_ms) } else { String::new() }
        );
    }
    Ok(if summary.errors > 0 {
        exit::FAILED
    } else {
        exit::SUCCESS
    })
}

pub fn list_steps() -> i32 {
    for kind in vecdrill::steps::KINDS {
        say!("{:<16} {}", kind.name, kind.summary);
        say!("{:<16} outputs: {}", "", kind.all_outputs().join(", "));
        let targets: Vec<&str> = kind.targets.iter().map(|t| t.name()).collect();
        say!("{:<16} targets: {}", "", targets.join(", "));
    }
    exit::SUCCESS
}
