//! The `vecdrill` command line: parses flags and calls one library function per subcommand.
//! Errors are rendered once, here, as `error:` plus a `hint:`, with the documented exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use vecdrill::drill::{self, RunOptions};
use vecdrill::exit::{self, Classify};
use vecdrill::latency::chroma_query::{run_search_load, SearchLoad};
use vecdrill::latency::LoadPlan;
use vecdrill::scenario::{self, LoadOptions, ScenarioError};
use vecdrill::seed::{seed, SeedOptions};
use vecdrill::targets::chroma::ChromaClient;

mod cli {
    pub mod observer;
    pub mod progress;
}

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
    #[command(subcommand)]
    command: Command,
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
        after_help = "Example:\n  vecdrill seed --url http://127.0.0.1:8000 --collection docs --count 20000 --dim 384 --seed 42"
    )]
    Seed(SeedArgs),
    /// Measure search throughput and latency percentiles against a collection.
    #[command(
        after_help = "Examples:\n  vecdrill bench --url http://127.0.0.1:8000 --collection docs --queries 2000 --concurrency 8\n  vecdrill bench --url http://127.0.0.1:8000 --collection docs --rate 200 --queries 2000 --json"
    )]
    Bench(BenchArgs),
    /// List the step kinds a scenario can use, with their outputs.
    #[command(after_help = "Example:\n  vecdrill steps")]
    Steps,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Override or add a scenario variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    vars: Vec<(String, String)>,
    /// Where run directories with report.json and report.md are written.
    #[arg(long, default_value = "reports")]
    report_dir: PathBuf,
    /// Print the plan (steps with their parameters) and run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print report.json on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ValidateArgs {
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Validate with these variables set, as `run --var` would.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    vars: Vec<(String, String)>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SeedArgs {
    /// Chroma server base URL.
    #[arg(long)]
    url: String,
    #[arg(long)]
    collection: String,
    #[arg(long)]
    count: u64,
    /// Embedding dimension.
    #[arg(long)]
    dim: usize,
    /// Random seed: the same seed writes the same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    collection: String,
    #[arg(long, default_value_t = 1000)]
    queries: u64,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Constant rate in queries per second; latency is measured from each query's intended
    /// send time, so stalls show as queueing delay.
    #[arg(long)]
    rate: Option<f64>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    #[arg(long)]
    json: bool,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// An error on its way to the user: message, optional hint, exit code.
struct Failure {
    message: String,
    hint: Option<String>,
    code: i32,
}

impl<E: Classify + std::fmt::Display> From<E> for Failure {
    fn from(err: E) -> Self {
        Self {
            message: err.to_string(),
            hint: err.hint(),
            code: err.exit_code(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::RUNTIME as u8);
        }
    };
    let code = match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("hint: {hint}");
            }
            failure.code
        }
    };
    ExitCode::from(code as u8)
}

async fn dispatch(command: Command) -> Result<i32, Failure> {
    match command {
        Command::Run(args) => run(args).await,
        Command::Validate(args) => Ok(validate(args)),
        Command::Seed(args) => seed_command(args).await,
        Command::Bench(args) => bench(args).await,
        Command::Steps => Ok(list_steps()),
    }
}

async fn run(args: RunArgs) -> Result<i32, Failure> {
    let options = LoadOptions {
        overrides: &args.vars,
        ..LoadOptions::default()
    };
    let scenario = scenario::load_file(&args.scenario, &options)?;
    if args.dry_run {
        println!(
            "{}: {}",
            scenario.name,
            scenario.description.as_deref().unwrap_or("")
        );
        for line in drill::plan(&scenario) {
            println!("{line}");
        }
        return Ok(exit::SUCCESS);
    }
    let interrupt = drill::interrupt_on_signals();
    let options = RunOptions {
        report_dir: args.report_dir,
    };
    let report = drill::run(&scenario, &options, &cli::observer::LiveLines, interrupt).await?;
    eprint!("{}", vecdrill::report::terminal::render(&report));
    if args.json {
        print_json(&report);
    }
    Ok(report.exit_code)
}

fn validate(args: ValidateArgs) -> i32 {
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
                eprintln!("{}: ok", path.display());
            }
            for problem in &problems {
                println!("{problem}");
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

async fn seed_command(args: SeedArgs) -> Result<i32, Failure> {
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
    let progress = cli::progress::for_terminal(args.json);
    let summary = seed(&client, &options, progress.as_ref()).await?;
    if args.json {
        print_json(&summary);
    } else {
        eprintln!(
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

async fn bench(args: BenchArgs) -> Result<i32, Failure> {
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
        eprintln!(
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

fn list_steps() -> i32 {
    for kind in vecdrill::steps::KINDS {
        println!("{:<16} {}", kind.name, kind.summary);
        println!("{:<16} outputs: {}", "", kind.all_outputs().join(", "));
    }
    exit::SUCCESS
}

/// One JSON document on stdout. A closed pipe (`| head`) is not an error.
fn print_json<T: serde::Serialize>(value: &T) {
    use std::io::Write;
    let text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}
