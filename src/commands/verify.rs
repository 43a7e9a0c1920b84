//! `verify`: prove backups complete and, reading the data, intact byte for byte; then read
//! back what each backup says of its database (Chroma counts, FAISS indexes).

use crate::progress::Progress;
use crate::repo::format::CheckResult;
use crate::repo::verify::VerifyReport;
use crate::repo::{RepoError, Repository, SourceChoice};

/// Which backups to verify: with `All`, a manifest that cannot be read is a problem too.
pub use super::Backups;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub backups: Backups,
    /// Whose backups `latest` means.
    pub source: SourceChoice,
    /// Download every pack and re-hash every chunk and file.
    pub read_data: bool,
    /// FAISS + Redis backups: index file name and the Redis key prefix whose count must equal
    /// the index's vector count.
    pub expect_match: Vec<(String, String)>,
}

/// What verifying found.
#[derive(Debug)]
pub struct Verification {
    pub report: VerifyReport,
    /// Each read-back check, with the backup it was run on.
    pub read_back: Vec<(String, CheckResult)>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.report.passed() && self.read_back.iter().all(|(_, c)| c.passed)
    }

    /// Every problem and failed check, one line each, problems first.
    pub fn failures(&self) -> Vec<String> {
        let problems = self.report.problems.iter().map(|p| p.to_string());
        let checks = self
            .read_back
            .iter()
            .filter(|(_, c)| !c.passed)
            .map(|(backup, c)| format!("backup {backup} {}: {}", c.name, c.detail));
        problems.chain(checks).collect()
    }
}

pub async fn verify(
    repo: &Repository,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<Verification, RepoError> {
    let (manifests, damaged) = match &options.backups {
        Backups::All => {
            let backups = repo.scan().await?;
            (backups.manifests, backups.damaged)
        }
        Backups::One(id) => (vec![repo.backup(id, &options.source).await?], Vec::new()),
    };
    let mut report = crate::repo::verify::verify(
        repo,
        &manifests,
        options.read_data,
        &crate::targets::missing_recorded_files,
        progress,
    )
    .await?;
    report.add_damaged(&damaged);
    let mut read_back = crate::targets::read_back_checks(
        repo,
        &manifests,
        options.read_data,
        &options.expect_match,
        report.passed(),
        progress,
    )
    .await?;
    read_back.extend(log_chain_checks(repo, &manifests).await?);
    Ok(Verification { report, read_back })
}

/// Each shipped log chain read back whole (every segment opened, checked and continuing the
/// one before): a chain that breaks restores only up to its break.
async fn log_chain_checks(
    repo: &Repository,
    manifests: &[crate::repo::format::Manifest],
) -> Result<Vec<(String, CheckResult)>, RepoError> {
    use crate::targets::chroma::shipped;
    let chains = shipped::chains(repo, manifests).await?;
    Ok(chains
        .iter()
        .map(|chain| {
            let detail = format!(
                "{} segment(s), {} row(s), restores {} to {}",
                chain.segments.len(),
                chain.rows(),
                crate::duration::format_utc(chain.from()),
                crate::duration::format_utc(chain.until())
            );
            let result = match &chain.broken {
                None => Ok(detail),
                Some(broken) => Err(format!("{detail}, then breaks: {broken}")),
            };
            (chain.base.id.clone(), CheckResult::of("log_chain", result))
        })
        .collect())
}
