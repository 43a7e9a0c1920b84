//! `vecdrill copy`: backups copied from one repository into another, and the pieces
//! `backup --copy-to` and `check --copy-repo` share with it.

use std::path::PathBuf;

use clap::Args;
use vecdrill::commands::copy::{self, CopyOutcome, CopyTo};
use vecdrill::commands::Backups;
use vecdrill::exit;
use vecdrill::repo::password::{PasswordSources, FROM_ENV};
use vecdrill::repo::{Repository, SourceChoice};
use vecdrill::text::printable;

use super::repo_args::{RepoArg, SourceArg};
use super::{print_json, progress::for_terminal, prompt, Failure};

#[derive(Args)]
pub struct CopyArgs {
    /// The repository to copy from (the one the backups are in).
    #[arg(long, value_name = "URL", env = "VECDRILL_FROM_REPO")]
    pub from_repo: String,
    /// Read the source repository's password from this file (or
    /// VECDRILL_FROM_PASSWORD_FILE); without one, --repo's password is tried.
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this command (no shell) for the source repository's password (or
    /// VECDRILL_FROM_PASSWORD_COMMAND).
    #[arg(long, value_name = "CMD")]
    pub from_password_command: Option<String>,
    /// The repository to copy into, created on first use (encrypted when a password is
    /// given for it).
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// Backup id (or a unique prefix), or `latest`.
    #[arg(default_value = "latest", conflicts_with = "all")]
    pub backup: String,
    /// Copy every backup (of --source, when given) that the destination lacks, except those
    /// copied there before and removed there since (by its retention): name one to send it.
    #[arg(long)]
    pub all: bool,
    /// Print what was copied as JSON on stdout; no progress bar.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CopyArgs) -> Result<i32, Failure> {
    let to_password = args.repo.password.sources();
    let from_password = PasswordSources::from_env_of(
        &FROM_ENV,
        args.from_password_file.clone(),
        args.from_password_command.clone(),
    )
    .or(&to_password);
    let from =
        Repository::open_with(&args.from_repo, &from_password, prompt::for_terminal()).await?;
    let selection = if args.all {
        Backups::All
    } else {
        Backups::One(args.backup.clone())
    };
    let outcome = copy_into(
        &from,
        &selection,
        &args.source.choice(),
        &args.repo.repo,
        &to_password,
        None,
        args.json,
    )
    .await?;
    if args.json {
        print_json(&outcome);
    } else {
        say_copied(&outcome);
    }
    let failures = outcome.failures();
    for failure in &failures {
        eprintln!("NOT COPIED {}", printable(failure));
    }
    Ok(if failures.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILED
    })
}

/// Copy `selection` of `from` into the repository at `url` (with a bar on a terminal).
pub async fn copy_into(
    from: &Repository,
    selection: &Backups,
    choice: &SourceChoice,
    url: &str,
    password: &PasswordSources,
    keep_last: Option<usize>,
    json: bool,
) -> Result<CopyOutcome, Failure> {
    let progress = for_terminal(json);
    let to = CopyTo {
        url,
        password,
        prompt: prompt::for_terminal(),
        keep_last,
    };
    Ok(copy::copy(from, selection, choice, &to, progress.as_ref()).await?)
}

/// What a copy did, a line per backup.
pub fn say_copied(outcome: &CopyOutcome) {
    say_shown!(
        "copy into {} (repository {}, {}):",
        outcome.to,
        &outcome.repository[..8.min(outcome.repository.len())],
        if outcome.encrypted {
            "encrypted"
        } else {
            "NOT encrypted"
        }
    );
    for report in &outcome.copies {
        say!("  {}", printable(&copy::describe(report)));
    }
    for id in &outcome.removed_there {
        say!(
            "  {}: not sent again: removed there since it was copied (copy it by id to send it again)",
            printable(id)
        );
    }
    if let Some(pruned) = &outcome.rotation.pruned {
        say!(
            "  rotation there: removed {} old backup(s)",
            pruned.removed.len()
        );
    }
    if let Some(reason) = &outcome.rotation.deferred {
        say!("  rotation there: put off: {reason}");
    }
}
