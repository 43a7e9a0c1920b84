//! `copy`: backups of one repository copied into another (see [`crate::repo::copy`]), chosen
//! as the other commands choose them: one by id, prefix or `latest` of a source, or all.

use serde::Serialize;

use super::Backups;
use crate::progress::Progress;
use crate::repo::copy::{
    copy_backups, record_removed_there, removed_since_copied, CopyReport, Destination,
};
use crate::repo::password::{PasswordSources, Prompt};
use crate::repo::{RepoError, Repository, SourceChoice};

/// Where the copies go: the destination's URL and password, created on first use as a backup
/// creates its repository (encrypted when a password is given).
pub struct CopyTo<'a> {
    pub url: &'a str,
    pub password: &'a PasswordSources,
    pub prompt: Option<Prompt<'a>>,
    /// After copying, keep only each source's newest N there (as `backup --keep-last` does
    /// in the repository backed up into).
    pub keep_last: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct CopyOutcome {
    /// The destination, credentials removed, and its repository id.
    pub to: String,
    pub repository: String,
    pub encrypted: bool,
    pub copies: Vec<CopyReport>,
    /// Backups not sent again by `Backups::All`: copied there before, removed there since.
    pub removed_there: Vec<String>,
    /// What `keep_last` removed there.
    pub rotation: super::backup::Rotation,
}

pub async fn copy(
    from: &Repository,
    selection: &Backups,
    choice: &SourceChoice,
    to: &CopyTo<'_>,
    progress: &dyn Progress,
) -> Result<CopyOutcome, RepoError> {
    // Damaged manifests are not copied and say so (exit 1) when every backup is asked for;
    // with a source named, whose they are cannot be told: they are logged.
    let mut unreadable = Vec::new();
    let manifests = match selection {
        Backups::One(id) => vec![from.backup(id, choice).await?],
        Backups::All => {
            let all = if choice.named.is_some() {
                choice.all_of_named(from.readable_manifests().await?)?
            } else {
                let scanned = from.scan().await?;
                unreadable = scanned.damaged.iter().map(CopyReport::unreadable).collect();
                scanned.manifests
            };
            if all.is_empty() && unreadable.is_empty() {
                return Err(RepoError::Empty);
            }
            all
        }
    };
    // Both repositories open before anything is written to either.
    let dest = open_destination(from, to).await?;
    if dest.config.id == from.config.id {
        return Err(RepoError::KeyRefused {
            reason: format!("{} is the repository being copied from", to.url),
            instead: "copy into another repository (another disk or bucket)".into(),
        });
    }
    // A backup copied there before and gone from there since was removed there, by that
    // repository's own retention or by hand: every backup (`backup --copy-to` included) does
    // not send it again, which would undo that retention on each run; one named by id does.
    let removed_there = match selection {
        Backups::All => removed_since_copied(from, &dest, &manifests).await?,
        Backups::One(_) => Vec::new(),
    };
    record_removed_there(from, &dest, &removed_there).await?;
    let manifests: Vec<_> = manifests
        .into_iter()
        .filter(|m| !removed_there.contains(&m.id))
        .collect();
    let copies = copy_backups(
        from,
        &Destination {
            repo: &dest,
            url: to.url,
        },
        &manifests,
        progress,
    )
    .await?;
    let copies = copies.into_iter().chain(unreadable).collect();
    let rotation = match to.keep_last {
        Some(keep) => super::backup::keep_newest(&dest, keep).await?,
        None => Default::default(),
    };
    Ok(CopyOutcome {
        to: crate::redaction::redact_url(to.url),
        repository: dest.config.id.clone(),
        encrypted: dest.encrypted(),
        copies,
        removed_there,
        rotation,
    })
}

impl CopyOutcome {
    /// The backups that could not be copied, each with why.
    pub fn failures(&self) -> Vec<String> {
        self.copies
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c.backup, c.failed.as_ref()?)))
            .collect()
    }
}

/// One copied backup in a line.
pub fn describe(report: &CopyReport) -> String {
    use crate::units::bytes;
    let log = match report.log_segments {
        0 => String::new(),
        n => format!(", {n} log segment(s)"),
    };
    if let Some(why) = &report.failed {
        return format!("{}: NOT copied: {why}", report.backup);
    }
    if report.already_there {
        return format!("{}: already there{log}", report.backup);
    }
    format!(
        "{}: {} files ({} read from the source, {} already there), {} new chunks of {}, {} uploaded, {} pack(s) read back{log}, in {:.1}s",
        report.backup,
        report.files,
        report.files_read,
        report.files_reused,
        report.new_chunks,
        report.chunks,
        bytes(report.uploaded_bytes),
        report.packs_read_back,
        report.seconds,
    )
}

/// The destination, created on first use: encrypted when a password is given for it, or when
/// the source is encrypted (a terminal then asks for the new password). Without a terminal,
/// an encrypted source's backups do not go into a new repository that would be unencrypted
/// only because no password was given: that takes creating it so on purpose.
async fn open_destination(from: &Repository, to: &CopyTo<'_>) -> Result<Repository, RepoError> {
    let sealed = from.encrypted();
    if sealed && !to.password.given() && to.prompt.is_none() {
        match Repository::open_with(to.url, to.password, None).await {
            Err(RepoError::NotARepository { .. }) => {
                return Err(RepoError::KeyRefused {
                    reason: format!(
                        "{} is not a repository yet, and no password is given for it: the encrypted backups would be copied into an unencrypted one",
                        crate::redaction::redact_url(to.url)
                    ),
                    instead: "give it a password (--password-file, --password-command or VECDRILL_PASSWORD*; for backup --copy-to, --copy-password-*), or create it unencrypted on purpose first: vecdrill init --repo URL --encryption none".into(),
                })
            }
            other => return other,
        }
    }
    Repository::open_or_create_as(to.url, to.password, to.prompt, sealed).await
}
