//! `vecdrill check`: the health checks cron jobs and uptime monitors run (seeds 003 and 004):
//! Chroma's heartbeat with a consecutive-failure threshold, the age of the newest backup, and
//! the disk use of the data directory.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use crate::metrics::Metric;
use crate::repo::format::Manifest;
use crate::repo::password::{PasswordSources, Prompt};
use crate::repo::Repository;
use crate::targets::Target;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
    /// The measured figure in its unit (seconds, ratio), for metrics.
    pub value: Option<f64>,
}

impl Check {
    /// A check that failed, with why, and nothing measured.
    pub fn failed(name: &'static str, detail: String) -> Self {
        Check {
            name,
            passed: false,
            detail,
            value: None,
        }
    }
}

/// Heartbeat: the target's health probe (Chroma's heartbeat), at `url`; failed only when
/// `attempts` tries in a row fail (seed 004: "3 failed health checks" before alerting),
/// `interval` apart, each within `timeout`.
pub async fn heartbeat(
    target: &dyn Target,
    url: &str,
    timeout: Duration,
    attempts: u32,
    interval: Duration,
) -> Check {
    let mut last = String::new();
    for attempt in 1..=attempts.max(1) {
        let began = std::time::Instant::now();
        match target.probe(timeout).await {
            Ok(_) => {
                let seconds = began.elapsed().as_secs_f64();
                return Check {
                    name: "heartbeat",
                    passed: true,
                    detail: format!(
                        "{url} answered in {:.0} ms{}",
                        seconds * 1000.0,
                        if attempt > 1 {
                            format!(" (attempt {attempt})")
                        } else {
                            String::new()
                        }
                    ),
                    value: Some(seconds),
                };
            }
            Err(err) => last = err,
        }
        if attempt < attempts {
            tokio::time::sleep(interval).await;
        }
    }
    Check::failed(
        "heartbeat",
        format!("{attempts} failed heartbeats in a row; last: {last}"),
    )
}

/// Every source's newest backup must be younger than `max_age` (when given): a stale source
/// must not hide behind a fresh one. `source` limits the check to one (as `list` names it).
/// The value is the age of the stalest source's newest backup.
pub async fn backup_age(opened: &Opened, max_age: Option<Duration>, source: Option<&str>) -> Check {
    let repo_url = &opened.url;
    let failed = |detail: String| Check::failed("backup_age", detail);
    let (_, manifests) = match open_newest(opened, source).await {
        Ok(opened) => opened,
        Err(detail) => return failed(detail),
    };
    let newest: Vec<&Manifest> = manifests.iter().collect();
    let age_of = |m: &Manifest| (Utc::now() - m.created_at).to_std().unwrap_or_default();
    let Some(stalest) = newest.iter().copied().max_by_key(|m| age_of(m)) else {
        return failed(format!("{repo_url} holds no backup"));
    };
    let describe = |m: &Manifest| {
        format!(
            "{} is {} old",
            m.id,
            crate::duration::format_duration(age_of(m))
        )
    };
    let too_old: Vec<String> = newest
        .iter()
        .filter(|m| max_age.is_some_and(|max| age_of(m) > max))
        .map(|m| format!("{}: newest backup {}", m.source_label(), describe(m)))
        .collect();
    let (passed, detail) = match max_age {
        Some(max) if !too_old.is_empty() => (
            false,
            format!(
                "older than {}: {}",
                crate::duration::format_duration(max),
                too_old.join("; ")
            ),
        ),
        _ if newest.len() == 1 => (true, format!("newest backup {}", describe(stalest))),
        _ => (
            true,
            format!(
                "{} sources; the stalest ({}) has newest backup {}",
                newest.len(),
                stalest.source_label(),
                describe(stalest)
            ),
        ),
    };
    Check {
        name: "backup_age",
        passed,
        detail,
        value: Some(age_of(stalest).as_secs_f64()),
    }
}

/// The repository `check`'s repository checks read, opened once (one password, one key
/// derivation), and how long opening it took.
pub struct Opened {
    pub url: String,
    repo: Result<Repository, String>,
    took: Duration,
}

impl Opened {
    pub async fn open(url: &str, password: &PasswordSources, prompt: Option<Prompt<'_>>) -> Self {
        let began = std::time::Instant::now();
        let repo = Repository::open_with(url, password, prompt)
            .await
            .map_err(|err| err.to_string());
        Self {
            url: url.to_string(),
            repo,
            took: began.elapsed(),
        }
    }
}

/// The repository, and each source's newest backup (see [`newest_per_source`]); why not, as a
/// check's detail.
async fn open_newest<'o>(
    opened: &'o Opened,
    source: Option<&str>,
) -> Result<(&'o Repository, Vec<Manifest>), String> {
    let repo = opened
        .repo
        .as_ref()
        .map_err(|err| format!("cannot open {}: {err}", opened.url))?;
    let newest = newest_per_source(repo, &opened.url, source).await?;
    Ok((repo, newest))
}

/// Each source's newest backup (of `source` only, when named). A damaged manifest could be a
/// newest backup, whose age is unknown: no answer then.
async fn newest_per_source(
    repo: &Repository,
    repo_url: &str,
    source: Option<&str>,
) -> Result<Vec<Manifest>, String> {
    let mut manifests = repo
        .manifests()
        .await
        .map_err(|err| format!("cannot read every backup: {err}"))?;
    if let Some(named) = source {
        manifests.retain(|m| crate::repo::SourceChoice::names(named, m));
        if manifests.is_empty() {
            return Err(format!("{repo_url} holds no backup of source {named:?}"));
        }
    }
    // Oldest first, so the last of each source is its newest.
    let mut newest: Vec<Manifest> = Vec::new();
    for manifest in manifests {
        match newest
            .iter_mut()
            .find(|n| n.source_label() == manifest.source_label())
        {
            Some(slot) => *slot = manifest,
            None => newest.push(manifest),
        }
    }
    if newest.is_empty() {
        return Err(format!("{repo_url} holds no backup"));
    }
    Ok(newest)
}

/// Whether each source's newest backup is proven (`vecdrill prove` passed on it), failing when
/// one has gone unproven longer than `max_age` since it was made; with the metrics of the
/// newest passing proof among them (when, and the RTO it measured).
pub async fn unproven_age(
    opened: &Opened,
    max_age: Duration,
    source: Option<&str>,
) -> (Check, Vec<Metric>) {
    let failed = |detail: String| Check::failed("unproven_age", detail);
    let (repo, newest) = match open_newest(opened, source).await {
        Ok(opened) => opened,
        Err(detail) => return (failed(detail), Vec::new()),
    };
    let proofs = match repo.proofs().await {
        Ok(proofs) => proofs,
        Err(err) => return (failed(format!("cannot read the proofs: {err}")), Vec::new()),
    };
    let proven = |m: &Manifest| proofs.get(&m.id).filter(|p| p.passed);
    let unproven_for = |m: &Manifest| match proven(m) {
        Some(_) => Duration::ZERO,
        None => (Utc::now() - m.created_at).to_std().unwrap_or_default(),
    };
    let late: Vec<String> = newest
        .iter()
        .filter(|m| unproven_for(m) > max_age)
        .map(|m| {
            format!(
                "{}: newest backup {} unproven for {}",
                m.source_label(),
                m.id,
                crate::duration::format_duration(unproven_for(m))
            )
        })
        .collect();
    let longest = newest.iter().map(unproven_for).max().unwrap_or_default();
    let detail = if late.is_empty() {
        let proven_count = newest.iter().filter(|m| proven(m).is_some()).count();
        format!(
            "{proven_count} of {} sources' newest backups proven; none unproven longer than {}",
            newest.len(),
            crate::duration::format_duration(max_age)
        )
    } else {
        late.join("; ")
    };
    let mut metrics = Vec::new();
    if let Some(last) = newest.iter().filter_map(proven).max_by_key(|p| p.proven_at) {
        metrics.push(Metric {
            name: crate::metrics::runs::LAST_PROVEN,
            help: "when the newest proven backup was proven (Unix time)",
            labels: Vec::new(),
            value: last.proven_at.timestamp() as f64,
        });
        if let Some(rto) = last.rto_ms {
            metrics.push(Metric {
                name: crate::metrics::runs::PROVEN_RTO,
                help: "restore plus start to healthy, as the newest proof measured it",
                labels: Vec::new(),
                value: rto / 1000.0,
            });
        }
    }
    let check = Check {
        name: "unproven_age",
        passed: late.is_empty(),
        detail,
        value: Some(longest.as_secs_f64()),
    };
    (check, metrics)
}

/// How far behind the newest write each Chroma source's shipped log is (`vecdrill follow`):
/// the time since its newest chain's last read, failing above `max_lag` and for a Chroma
/// source with no shipped log at all.
pub async fn log_lag(opened: &Opened, max_lag: Duration, source: Option<&str>) -> Check {
    let failed = |detail: String| Check::failed("log_lag", detail);
    let (repo, newest) = match open_newest(opened, source).await {
        Ok(opened) => opened,
        Err(detail) => return failed(detail),
    };
    let manifests = match repo.manifests().await {
        Ok(manifests) => manifests,
        Err(err) => return failed(format!("cannot read every backup: {err}")),
    };
    let reaches = match crate::targets::chroma::shipped::reaches(repo, &manifests).await {
        Ok(reaches) => reaches,
        Err(err) => return failed(format!("cannot read the shipped log: {err}")),
    };
    let mut lags = Vec::new();
    let mut late = Vec::new();
    for manifest in newest.iter().filter(|m| m.source.kind == "chroma") {
        let label = manifest.source_label();
        let shipped = reaches
            .iter()
            .filter(|r| r.source == label)
            .map(|r| r.read_until)
            .max();
        let Some(shipped) = shipped else {
            late.push(format!(
                "{label}: no log shipped (is `vecdrill follow` running?)"
            ));
            continue;
        };
        let lag = (Utc::now() - shipped).to_std().unwrap_or_default();
        lags.push(lag);
        if lag > max_lag {
            late.push(format!(
                "{label}: log shipped up to {}, {} ago",
                crate::duration::format_utc(shipped),
                crate::duration::format_duration(lag)
            ));
        }
    }
    if lags.is_empty() && late.is_empty() {
        return failed("no Chroma source in the repository".into());
    }
    let longest = lags.iter().max().copied();
    Check {
        name: "log_lag",
        passed: late.is_empty(),
        detail: if late.is_empty() {
            format!(
                "{} source(s)' logs shipped within {}",
                lags.len(),
                crate::duration::format_duration(max_lag)
            )
        } else {
            late.join("; ")
        },
        value: longest.map(|l| l.as_secs_f64()),
    }
}

/// Redis answers PING (seed 003), with the keys under each of `prefixes` when asked; the
/// value is the round trip in seconds.
pub async fn redis(url: &str, prefixes: &[String]) -> Check {
    let shown = crate::redaction::redact_url(url);
    let failed = |detail: String| Check::failed("redis", detail);
    let began = std::time::Instant::now();
    let redis = match crate::targets::redis::RedisTarget::new(url) {
        Ok(redis) => redis,
        Err(err) => return failed(format!("{shown}: {err}")),
    };
    let keys = match redis.dbsize().await {
        Ok(keys) => keys,
        Err(err) => return failed(format!("{shown}: {err}")),
    };
    let round_trip = began.elapsed();
    let counts = match redis.count_prefixes(prefixes).await {
        Ok(counts) => counts,
        Err(err) => return failed(format!("{shown}: cannot count keys: {err}")),
    };
    let counted = counts
        .iter()
        .map(|(prefix, n)| format!("; {n} under {prefix:?}"))
        .collect::<String>();
    Check {
        name: "redis",
        passed: true,
        detail: format!(
            "{shown} answered in {} ({keys} keys{counted})",
            crate::duration::format_duration(round_trip)
        ),
        value: Some(round_trip.as_secs_f64()),
    }
}

/// The repository's object store answers: its config read back, timed (seed 003's storage
/// connectivity); the value is the seconds it took.
pub fn object_store(opened: &Opened) -> Check {
    let repo_url = &opened.url;
    match &opened.repo {
        Ok(_) => Check {
            name: "object_store",
            passed: true,
            detail: format!(
                "{repo_url} answered in {}",
                crate::duration::format_duration(opened.took)
            ),
            value: Some(opened.took.as_secs_f64()),
        },
        Err(err) => Check::failed("object_store", format!("{repo_url}: {err}")),
    }
}

/// Every source's newest backup in `repo_url` has a copy in `copy_url` (a backup `vecdrill
/// copy` or `backup --copy-to` put there, read back): seed 003's local and off-site copies.
/// The value is how many sources' newest backups lack one.
pub async fn copies(
    opened: &Opened,
    copy_url: &str,
    copy_password: &PasswordSources,
    source: Option<&str>,
) -> Check {
    let failed = |detail: String| Check::failed("copy", detail);
    let (_, newest) = match open_newest(opened, source).await {
        Ok(opened) => opened,
        Err(detail) => return failed(detail),
    };
    let copy_repo = match Repository::open_with(copy_url, copy_password, None).await {
        Ok(repo) => repo,
        Err(err) => return failed(format!("cannot open {copy_url}: {err}")),
    };
    let mut missing = Vec::new();
    for manifest in &newest {
        match copy_repo.manifest(&manifest.id).await {
            Ok(copy) if copy.id == manifest.id => {}
            Ok(_)
            | Err(crate::repo::RepoError::BackupNotFound { .. })
            | Err(crate::repo::RepoError::Empty) => {
                missing.push(format!("{} (of {})", manifest.id, manifest.source_label()))
            }
            Err(err) => missing.push(format!("{}: {err}", manifest.id)),
        }
    }
    let detail = if missing.is_empty() {
        format!(
            "the newest backup of each of {} source(s) is in {copy_url}",
            newest.len()
        )
    } else {
        format!("not in {copy_url}: {}", missing.join("; "))
    };
    Check {
        name: "copy",
        passed: missing.is_empty(),
        detail,
        value: Some(missing.len() as f64),
    }
}

/// Each FAISS index file is there and parses whole.
pub fn faiss(paths: &[std::path::PathBuf]) -> Check {
    let mut read = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match crate::targets::faiss::inspect(path) {
            Ok(info) => read.push(format!(
                "{}: {} of {} vectors, dimension {}",
                path.display(),
                info.kind,
                info.ntotal,
                info.dimension
            )),
            Err(err) => problems.push(err.to_string()),
        }
    }
    Check {
        name: "faiss",
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            read.join("; ")
        } else {
            problems.join("; ")
        },
        value: None,
    }
}

/// Disk use of the filesystem holding `dir`, as `df` computes it, against `max_percent`.
pub fn disk_use(dir: &Path, max_percent: Option<f64>) -> Check {
    let stats = match nix::sys::statvfs::statvfs(dir) {
        Ok(stats) => stats,
        Err(err) => {
            return Check::failed(
                "disk_use",
                format!("cannot read the filesystem of {}: {err}", dir.display()),
            )
        }
    };
    let used = stats.blocks().saturating_sub(stats.blocks_free()) as f64;
    let available = stats.blocks_available() as f64;
    let ratio = if used + available > 0.0 {
        used / (used + available)
    } else {
        0.0
    };
    let percent = ratio * 100.0;
    let (passed, limit) = match max_percent {
        Some(max) => (percent <= max, format!(" (limit {max:.0}%)")),
        None => (true, String::new()),
    };
    Check {
        name: "disk_use",
        passed,
        detail: format!(
            "{} is on a filesystem {percent:.1}% full{limit}",
            dir.display()
        ),
        value: Some(ratio),
    }
}

/// The checks as Prometheus metrics.
pub fn metrics(checks: &[Check]) -> Vec<Metric> {
    let mut out = Vec::new();
    for check in checks {
        out.push(Metric {
            name: "vecdrill_check_passed",
            help: "1 when the check passed at the last run of vecdrill check",
            labels: vec![("check", check.name.to_string())],
            value: if check.passed { 1.0 } else { 0.0 },
        });
        if let Some(value) = check.value {
            let (name, help) = match check.name {
                "heartbeat" => ("vecdrill_heartbeat_seconds", "Chroma heartbeat round trip"),
                "backup_age" => ("vecdrill_backup_age_seconds", "age of the newest backup"),
                "unproven_age" => (
                    "vecdrill_backup_unproven_seconds",
                    "how long the newest backup has gone unproven (0 when proven)",
                ),
                "redis" => ("vecdrill_redis_seconds", "Redis PING round trip"),
                "object_store" => (
                    "vecdrill_object_store_seconds",
                    "time to read the repository's config from its object store",
                ),
                "copy" => (
                    "vecdrill_copy_missing",
                    "sources whose newest backup has no copy in the second repository",
                ),
                "log_lag" => (
                    "vecdrill_log_lag_seconds",
                    "seconds since the moment up to which the log is shipped",
                ),
                _ => (
                    "vecdrill_disk_used_ratio",
                    "used share of the data directory's filesystem",
                ),
            };
            out.push(Metric {
                name,
                help,
                labels: Vec::new(),
                value,
            });
        }
    }
    out.push(Metric {
        name: "vecdrill_check_timestamp_seconds",
        help: "when vecdrill check last ran (Unix time)",
        labels: Vec::new(),
        value: Utc::now().timestamp() as f64,
    });
    out
}
