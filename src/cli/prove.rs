//! `prove`: restore a backup into a sandbox, serve it with a real server, check and time it.

use std::path::PathBuf;

use clap::Args;
use vecdrill::drill::prove;
use vecdrill::duration::HumanDuration;

use vecdrill::repo::format::Manifest;
use vecdrill::repo::Repository;
use vecdrill::report::DrillReport;

use super::drill::{run_loaded, RunHow, Shown};
use super::repo::{RepoArg, SourceArg};
use super::Failure;

#[derive(Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Backup id, unique prefix, or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub source: SourceArg,
    /// The server command, with {dir} (the restored directory) and {port} [default: the
    /// chroma of .venv, else on PATH: `chroma run --path {dir} --port {port}`].
    #[arg(long)]
    pub server_cmd: Option<String>,
    /// The recovery time to meet: restore plus start to healthy, e.g. 5m.
    #[arg(long)]
    pub rto: Option<HumanDuration>,
    /// Keep the sandbox (its path is in the report) instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Where the proof's run directory (report.json, .md, .html, .junit.xml) is written.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Print report.json on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub records: super::records::RecordArgs,
}

pub async fn prove(args: ProveArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let manifest = repo.backup(&args.backup, &args.source.choice()).await?;
    let report = prove_backup(
        &repo,
        &args.repo,
        &manifest,
        ProveHow {
            server_cmd: args.server_cmd,
            rto: args.rto,
            keep: args.keep,
            report_dir: args.report_dir,
            shown: Shown::json_if(args.json),
            records: &args.records,
        },
    )
    .await?;
    Ok(report.exit_code)
}

/// How a proof runs and shows (for `prove`, and `backup --prove`).
pub struct ProveHow<'a> {
    pub server_cmd: Option<String>,
    pub rto: Option<HumanDuration>,
    pub keep: bool,
    pub report_dir: PathBuf,
    pub shown: Shown,
    pub records: &'a super::records::RecordArgs,
}

/// Prove `manifest`'s backup in a sandbox and keep the verdict beside it; the proof's report.
pub async fn prove_backup(
    repo: &Repository,
    repo_arg: &RepoArg,
    manifest: &Manifest,
    how: ProveHow<'_>,
) -> Result<DrillReport, Failure> {
    let prepared = prove::prepare(&repo_arg.repo, manifest, how.server_cmd.as_deref(), how.rto)?;
    let report = run_loaded(
        &prepared.scenario,
        RunHow {
            report_dir: how.report_dir,
            shown: how.shown,
            save_baseline: false,
            records: how.records,
            passwords: repo_arg.password.sources(),
        },
    )
    .await;
    if how.keep {
        eprintln!("the sandbox is kept: {}", prepared.sandbox.keep().display());
    }
    let report = report?;
    prove::keep_verdict(repo, &report, &manifest.id).await?;
    Ok(report)
}
