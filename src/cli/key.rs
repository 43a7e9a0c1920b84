//! `key list|add|remove|passwd`: an encrypted repository's passwords, as restic users know
//! them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vecdrill::exit;
use vecdrill::repo::keyfile::KdfParams;
use vecdrill::repo::keyring::{self, short};
use vecdrill::repo::password::PasswordSources;
use zeroize::Zeroizing;

use super::repo_args::RepoArg;
use super::{print_json, prompt, Failure};

#[derive(Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List the key files: id, who made them and when, and which one is in use (`*`).
    List(KeyListArgs),
    /// Add a password: a new key file that opens the repository too.
    Add(NewPasswordArgs),
    /// Remove a key file by its id (or a unique prefix). The key in use and the last key are
    /// refused.
    Remove(KeyRemoveArgs),
    /// Change the password in use: a new key file replaces the one that opened the repository.
    Passwd(NewPasswordArgs),
}

#[derive(Args)]
pub struct KeyListArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Print the keys as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct NewPasswordArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Read the new password from this file (else it is typed twice on a terminal).
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    /// Print the new key's id as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct KeyRemoveArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// The key's id, or a prefix of it that only it has (as `key list` shows it).
    pub id: String,
    /// Print the removed key's id as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: KeyArgs) -> Result<i32, Failure> {
    match args.command {
        KeyCommand::List(args) => list(args).await,
        KeyCommand::Add(args) => add(args).await,
        KeyCommand::Remove(args) => remove(args).await,
        KeyCommand::Passwd(args) => passwd(args).await,
    }
}

#[derive(Tabled)]
struct KeyRow {
    #[tabled(rename = " ")]
    current: &'static str,
    #[tabled(rename = "ID")]
    id: String,
    #[tabled(rename = "User")]
    user: String,
    #[tabled(rename = "Host")]
    host: String,
    #[tabled(rename = "Created")]
    created: String,
    #[tabled(rename = "Intact")]
    intact: String,
}

async fn list(args: KeyListArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let keys = keyring::list(&repo).await?;
    let damaged = keys.iter().filter(|k| !k.intact).count();
    let code = if damaged == 0 {
        exit::SUCCESS
    } else {
        exit::FAILED
    };
    if args.json {
        print_json(&keys);
        return Ok(code);
    }
    let rows: Vec<KeyRow> = keys
        .iter()
        .map(|k| KeyRow {
            current: if k.current { "*" } else { "" },
            id: short(&k.id).to_string(),
            user: k.username.clone().unwrap_or_default(),
            host: k.hostname.clone().unwrap_or_default(),
            created: k
                .created_at
                .map(vecdrill::duration::format_utc)
                .unwrap_or_default(),
            intact: match &k.problem {
                None => "yes".into(),
                Some(problem) => format!("NO: {problem}"),
            },
        })
        .collect();
    say_shown!("{}", Table::new(rows).with(Style::rounded()));
    if damaged > 0 {
        say!("{damaged} key file(s) are not intact: remove them with `vecdrill key remove ID`");
    }
    Ok(code)
}

async fn add(args: NewPasswordArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let password = new_password(&args)?;
    let id = keyring::add(&repo, password.as_bytes(), KdfParams::DEFAULT).await?;
    if args.json {
        print_json(&serde_json::json!({ "added": id }));
    } else {
        say!("added key {}", short(&id));
    }
    Ok(exit::SUCCESS)
}

async fn remove(args: KeyRemoveArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let id = keyring::remove(&repo, &args.id).await?;
    if args.json {
        print_json(&serde_json::json!({ "removed": id }));
    } else {
        say!("removed key {}", short(&id));
    }
    Ok(exit::SUCCESS)
}

async fn passwd(args: NewPasswordArgs) -> Result<i32, Failure> {
    let repo = args.repo.open().await?;
    let password = new_password(&args)?;
    let (new, old) =
        keyring::change_password(&repo, password.as_bytes(), KdfParams::DEFAULT).await?;
    if args.json {
        print_json(&serde_json::json!({ "added": new, "removed": old }));
    } else {
        say!(
            "changed the password: key {} replaces key {}",
            short(&new),
            short(&old)
        );
    }
    Ok(exit::SUCCESS)
}

/// The new password: from `--new-password-file`, else typed twice on a terminal.
fn new_password(args: &NewPasswordArgs) -> Result<Zeroizing<String>, Failure> {
    let sources = PasswordSources {
        file: args.new_password_file.clone(),
        ..PasswordSources::default()
    };
    if sources.file.is_none() && prompt::for_terminal().is_none() {
        return Err(Failure {
            message: "no new password was given".into(),
            hint: Some("give it with --new-password-file FILE, or type it on a terminal".into()),
            code: exit::BAD_INPUT,
        });
    }
    Ok(sources.resolve_new("enter the new password: ", prompt::for_terminal())?)
}
