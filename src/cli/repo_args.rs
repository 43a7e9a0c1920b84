//! The flags that name a repository, its password and a source, shared by every command that
//! opens a repository.

use std::path::PathBuf;

use clap::Args;
use vecdrill::repo::password::{PasswordSources, COPY_ENV};
use vecdrill::repo::{Repository, SourceChoice};

use super::prompt;

#[derive(Args)]
pub struct RepoArg {
    /// Repository URL: file://DIR, s3://BUCKET/PREFIX, gs://..., az://... (S3 settings from AWS_*).
    #[arg(long, env = "VECDRILL_REPO")]
    pub repo: String,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Where an encrypted repository's password comes from (`VECDRILL_PASSWORD` too).
#[derive(Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read an encrypted repository's password from this file (or VECDRILL_PASSWORD_FILE).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Run this command (no shell) and take its output as the password (or
    /// VECDRILL_PASSWORD_COMMAND).
    #[arg(long)]
    pub password_command: Option<String>,
}

impl PasswordArgs {
    /// The flags, completed from the environment (read here, never through clap, whose help
    /// would show an environment variable's value).
    pub fn sources(&self) -> PasswordSources {
        PasswordSources::from_env(self.password_file.clone(), self.password_command.clone())
    }
}

impl RepoArg {
    /// Open it, a password typed at a terminal remembered for the rest of the command (a
    /// proof's drill opens the repository again).
    pub async fn open(&self) -> Result<Repository, vecdrill::repo::RepoError> {
        Repository::open_with(&self.repo, &self.password.sources(), prompt::remembering()).await
    }

    /// Open, or create on first use: encrypted only when a password source is given (a
    /// prompt is for opening an existing encrypted repository, asked once).
    pub async fn open_or_create(&self) -> Result<Repository, vecdrill::repo::RepoError> {
        Repository::open_or_create_with(&self.repo, &self.password.sources(), prompt::remembering())
            .await
    }
}

/// Which source's backups a command means when a repository holds several.
#[derive(Args)]
pub struct SourceArg {
    /// Only backups of this source, as `list` shows it (HOST:PATH, or the path alone): `latest`
    /// is its newest backup. Needed when the repository holds several sources and nothing else
    /// says which.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
}

impl SourceArg {
    pub fn choice(&self) -> SourceChoice {
        SourceChoice::named(self.source.clone())
    }
}

/// The password of a second repository (`--copy-to`, `--copy-repo`): its own flags and
/// VECDRILL_COPY_PASSWORD*, else the first repository's.
#[derive(Args, Clone, Default)]
pub struct CopyPasswordArgs {
    /// The copy repository's password file (or VECDRILL_COPY_PASSWORD_FILE); without one,
    /// --repo's password is used for it too.
    #[arg(long, value_name = "FILE")]
    pub copy_password_file: Option<PathBuf>,
    /// Run this command (no shell) for the copy repository's password (or
    /// VECDRILL_COPY_PASSWORD_COMMAND).
    #[arg(long, value_name = "CMD")]
    pub copy_password_command: Option<String>,
}

impl CopyPasswordArgs {
    pub fn sources(&self, main: &PasswordArgs) -> PasswordSources {
        PasswordSources::from_env_of(
            &COPY_ENV,
            self.copy_password_file.clone(),
            self.copy_password_command.clone(),
        )
        .or(&main.sources())
    }
}
