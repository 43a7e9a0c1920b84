//! `prove`: restore a backup into a sandbox, serve it with a real server, check and time it.

use std::path::PathBuf;

use clap::Args;
use vecdrill::drill::prove;
use vecdrill::duration::HumanDuration;
use vecdrill::steps::{ProveSettings, DEFAULT_MIN_RECALL};

use vecdrill::repo::format::Manifest;
use vecdrill::repo::Repository;
use vecdrill::report::DrillReport;

use super::drill::{run_loaded, RunHow, Shown};
use super::repo_args::{RepoArg, SourceArg};
use super::Failure;

#[derive(Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Backup id, unique prefix, `latest`, or `unproven` (every backup without a passing
    /// proof, oldest first).
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub source: SourceArg,
    /// The server command, with {dir} (the restored directory; Redis's own directory for a
    /// FAISS + Redis backup) and {port} [default: the chroma of .venv, else on PATH: `chroma
    /// run --path {dir} --port {port}`; `redis-server --port {port} --dir {dir} ...`].
    #[arg(long)]
    pub server_cmd: Option<String>,
    /// The recovery time to meet: restore plus start to healthy, e.g. 5m.
    #[arg(long)]
    pub rto: Option<HumanDuration>,
    /// The least mean recall, per collection, of the probe queries the backup recorded
    /// against their exact neighbours at their recorded distances [default: 0.25, low
    /// enough for random vectors (README: "Proof"); raise it for real embeddings].
    #[arg(long, value_parser = vecdrill::steps::parse_min_recall)]
    pub min_recall: Option<f64>,
    /// Prove a Chroma source as it was at this moment (as `restore --at` takes it) instead:
    /// the base backup and the log `vecdrill follow` shipped, restored into the sandbox and
    /// served; each collection's count must be what the restored files hold and sampled
    /// records equal. Such a proof is reported and recorded in the history, not kept beside
    /// the backup.
    #[arg(long, value_name = "TIME", conflicts_with = "backup")]
    pub at: Option<String>,
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
    let at = match &args.at {
        Some(text) => {
            let at = vecdrill::duration::parse_moment(text, chrono::Utc::now()).map_err(|e| {
                Failure {
                    message: format!("--at: {e}"),
                    hint: None,
                    code: vecdrill::exit::BAD_INPUT,
                }
            })?;
            Some(vecdrill::targets::chroma::pitr::choose(&repo, &args.source.choice(), at).await?)
        }
        None => None,
    };
    let manifests = if let Some(point) = &at {
        vec![point.chain.base.clone()]
    } else if args.backup == UNPROVEN {
        unproven(&repo, &args.source).await?
    } else {
        vec![repo.backup(&args.backup, &args.source.choice()).await?]
    };
    if manifests.is_empty() {
        eprintln!("every backup is proven");
        if args.json {
            super::print_json(&Vec::<DrillReport>::new());
        }
        return Ok(vecdrill::exit::SUCCESS);
    }
    // One backup: its report is the JSON; several: an array of them.
    let one = manifests.len() == 1 && args.backup != UNPROVEN;
    let mut reports = Vec::new();
    for manifest in &manifests {
        let report = prove_backup(
            &repo,
            &args.repo,
            manifest,
            ProveHow {
                settings: ProveSettings {
                    server_command: args.server_cmd.clone(),
                    rto: args.rto,
                    min_recall: args.min_recall.unwrap_or(DEFAULT_MIN_RECALL),
                    at: at.as_ref().map(|point| point.at),
                },
                keep: args.keep,
                report_dir: args.report_dir.clone(),
                shown: match (args.json, one) {
                    (false, _) => Shown::Text,
                    (true, true) => Shown::Json,
                    (true, false) => Shown::Aside,
                },
                records: &args.records,
            },
        )
        .await?;
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    if args.json && !one {
        super::print_json(&reports);
    }
    Ok(reports.iter().map(|r| r.exit_code).max().unwrap_or(0))
}

/// The backup argument that means every backup without a passing proof.
const UNPROVEN: &str = "unproven";

/// Every readable backup (of the source chosen, when one is) with no passing proof, oldest
/// first.
async fn unproven(repo: &Repository, source: &SourceArg) -> Result<Vec<Manifest>, Failure> {
    let proofs = repo.proofs().await?;
    let mut manifests = repo.readable_manifests().await?;
    if let Some(named) = &source.source {
        manifests.retain(|m| vecdrill::repo::SourceChoice::names(named, m));
    }
    manifests.retain(|m| !proofs.get(&m.id).is_some_and(|p| p.passed));
    Ok(manifests)
}

/// How a proof runs and shows (for `prove`, and `backup --prove`).
pub struct ProveHow<'a> {
    pub settings: ProveSettings,
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
    let prepared = prove::prepare(&repo_arg.repo, manifest, &how.settings)?;
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
        eprintln!("the sandbox is kept: {}", keep(prepared.sandbox).display());
    }
    let report = report?;
    // A proof of a moment is not a proof of the backup it started from.
    if how.settings.at.is_none() {
        prove::keep_verdict(repo, &report, &manifest.id).await?;
    }
    Ok(report)
}

/// Keep `sandbox` under a name the next proof's cleanup of killed proofs' sandboxes does not
/// take for one (`vecdrill-prove-kept-...`); its path.
fn keep(sandbox: tempfile::TempDir) -> PathBuf {
    let path = sandbox.keep();
    let name = path
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .replacen(prove::SANDBOX_PREFIX, prove::KEPT_PREFIX, 1)
        })
        .unwrap_or_default();
    let kept = path.with_file_name(name);
    match std::fs::rename(&path, &kept) {
        Ok(()) => kept,
        Err(_) => path,
    }
}
