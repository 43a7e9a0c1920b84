//! Restoring a Chroma directory to a moment: the newest base backup whose shipped log chain
//! (see [`super::shipped`]) covers it is restored, then the chain's rows logged up to that
//! second are written into the restored log, with the catalog as it stood then, and Chroma
//! replays them when it first serves each collection.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::shipped::{self, whole_second, Chain};
use super::wal::{self, Catalog, LogRow, StagedLog, WalError};
use crate::repo::format::CheckResult;
use crate::repo::{RepoError, Repository, SourceChoice};
use crate::targets::protect::ProtectError;

/// A moment to restore and the chain that reaches it.
#[derive(Debug, Clone)]
pub struct PointInTime {
    /// The whole second restored: every write logged in it or before.
    pub at: DateTime<Utc>,
    pub chain: Chain,
}

/// Choose the chain that restores `at` for the source `choice` picks: the newest base whose
/// chain (or the base alone) covers the second, so the fewest rows are replayed.
pub async fn choose(
    repo: &Repository,
    choice: &SourceChoice,
    at: DateTime<Utc>,
) -> Result<PointInTime, ProtectError> {
    let at = whole_second(at);
    let manifests = repo.readable_manifests().await?;
    let choice = SourceChoice {
        kind: Some("chroma".into()),
        ..choice.clone()
    };
    // The source: the one `latest` would pick, so `--at` never crosses sources either.
    let Some(newest) = choice.latest(&manifests)? else {
        return Err(RepoError::Empty.into());
    };
    let label = newest.source_label();
    let of_source: Vec<_> = manifests
        .iter()
        .filter(|m| m.source.kind == "chroma" && m.source_label() == label)
        .cloned()
        .collect();
    // A chain begins where its base's log ends, so the bases tell which chains can reach the
    // second: those are read, newest first, until one does; the others are not read at all.
    let mut bases = shipped::bases_with_logs(repo, &of_source).await?;
    bases.sort_by_key(|m| std::cmp::Reverse((shipped::chain_begins(m), m.created_at)));
    for base in bases.iter().filter(|m| shipped::chain_begins(m) <= at) {
        let chain = shipped::read_chain(repo, base).await?;
        if at <= chain.until() {
            return Ok(PointInTime { at, chain });
        }
    }
    // Refused: the windows told are those of chains read whole, so that a damaged segment
    // shortens them here as it did above.
    let reaches: Vec<_> = shipped::chains(repo, &of_source)
        .await?
        .iter()
        .map(Chain::reach)
        .collect();
    let windows = shipped::windows(&reaches)
        .remove(&label)
        .unwrap_or_default();
    Err(ProtectError::Uncovered {
        at: crate::duration::format_utc(at),
        of: label,
        windows: describe_windows(&windows),
    })
}

/// Windows as one line: `A to B; C to D`, or that there are none.
pub fn describe_windows(windows: &[shipped::Window]) -> String {
    if windows.is_empty() {
        return "none (no log was shipped: run `vecdrill follow`)".into();
    }
    windows
        .iter()
        .map(|(from, until)| {
            format!(
                "{} to {}",
                crate::duration::format_utc(*from),
                crate::duration::format_utc(*until)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What replaying the chain into a restored copy wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Replayed {
    pub at: DateTime<Utc>,
    pub base: String,
    /// Log rows written past the base's own.
    pub rows: u64,
    /// The newest of them, when there are any.
    pub newest_row: Option<DateTime<Utc>>,
    /// Collections created after the base, recreated from the shipped catalog.
    pub created: Vec<String>,
    /// Collections renamed or whose metadata changed after the base.
    pub changed: Vec<String>,
    /// Collections the base holds that were dropped by the moment.
    pub dropped: Vec<String>,
}

impl Replayed {
    pub fn check(&self) -> CheckResult {
        CheckResult {
            name: "log_replay".into(),
            passed: true,
            detail: format!(
                "{} log row(s) up to {} written past base {} for Chroma to replay{}",
                self.rows,
                crate::duration::format_utc(self.at),
                self.base,
                [("recreated", &self.created), ("dropped", &self.dropped)]
                    .iter()
                    .filter(|(_, names)| !names.is_empty())
                    .map(|(what, names)| format!("; collections {what}: {}", names.join(", ")))
                    .collect::<String>()
            ),
        }
    }
}

/// The rows of the chain logged up to `point.at`, handed to `each` one segment at a time
/// (at most one segment is held), and the newest catalog read before the moment's next
/// second. A row past the moment ends the walk: rows are in the order they were logged.
async fn walk_rows(
    repo: &Repository,
    point: &PointInTime,
    mut each: impl FnMut(Vec<LogRow>) -> Result<(), ProtectError>,
) -> Result<Option<Catalog>, ProtectError> {
    let mut catalog = None;
    for summary in &point.chain.segments {
        let segment = shipped::load_segment(repo, &point.chain.base.id, summary.number).await?;
        let mut rows = Vec::with_capacity(segment.rows.len());
        let mut past = false;
        for row in segment.rows {
            let time = row
                .time()
                .map_err(|e| corrupt(&point.chain, summary.number, e))?;
            if time > point.at {
                past = true;
                break;
            }
            rows.push(row);
        }
        if segment.read_at < next_second(point) {
            catalog = segment.catalog.or(catalog);
        }
        each(rows)?;
        if past {
            break;
        }
    }
    Ok(catalog)
}

fn next_second(point: &PointInTime) -> DateTime<Utc> {
    point.at + chrono::Duration::seconds(1)
}

/// The first read after the moment, with its catalog when the catalog changed since the read
/// before: what a collection created or dropped in between is judged by.
async fn next_read(
    repo: &Repository,
    point: &PointInTime,
) -> Result<Option<(DateTime<Utc>, Option<Catalog>)>, ProtectError> {
    let Some(next) = point
        .chain
        .segments
        .iter()
        .find(|s| s.read_at >= next_second(point))
    else {
        return Ok(None);
    };
    let catalog = match next.has_catalog {
        true => {
            shipped::load_segment(repo, &point.chain.base.id, next.number)
                .await?
                .catalog
        }
        false => None,
    };
    Ok(Some((next.read_at, catalog)))
}

/// The last read before the moment's next second (the base's time when none was).
fn read_before(point: &PointInTime) -> DateTime<Utc> {
    point
        .chain
        .segments
        .iter()
        .rev()
        .find(|s| s.read_at < next_second(point))
        .map_or(point.chain.base.created_at, |s| s.read_at)
}

fn corrupt(chain: &Chain, number: u64, detail: String) -> ProtectError {
    RepoError::Corrupt {
        what: shipped::segment_key(&chain.base.id, number),
        detail,
    }
    .into()
}

/// How many rows a restore to `point` would replay (for `--dry-run`).
pub async fn count_rows(repo: &Repository, point: &PointInTime) -> Result<u64, ProtectError> {
    let mut count = 0u64;
    walk_rows(repo, point, |rows| {
        count += rows.len() as u64;
        Ok(())
    })
    .await?;
    Ok(count)
}

/// Write the chain's rows up to `point.at` into the restored copy in `staging` (its base
/// restored and checked there), and its catalog as it stood then.
pub async fn write_into(
    repo: &Repository,
    point: &PointInTime,
    staging: &Path,
) -> Result<Replayed, ProtectError> {
    let mut staged = StagedLog::open(staging).map_err(wal_failed)?;
    let expected = shipped::base_head(&point.chain.base).map(|h| h.seq_id);
    let found = staged.head().map_err(wal_failed)?.map(|h| h.seq_id);
    if found != expected {
        return Err(RepoError::Corrupt {
            what: format!("backup {}", point.chain.base.id),
            detail: format!(
                "its log ends at position {found:?}, but its manifest recorded {expected:?}"
            ),
        }
        .into());
    }
    let mut replayed = Replayed {
        at: point.at,
        base: point.chain.base.id.clone(),
        ..Replayed::default()
    };
    // Each collection the rows write to, with its newest row's time.
    let mut topics = std::collections::BTreeMap::new();
    let catalog = walk_rows(repo, point, |rows| {
        for row in &rows {
            if let Some(id) = row.topic.rsplit('/').next() {
                topics.insert(id.to_string(), row.created_at.clone());
            }
        }
        if let Some(last) = rows.last() {
            replayed.newest_row = last.time().ok();
        }
        replayed.rows += rows.len() as u64;
        staged.append(&rows).map_err(wal_failed)
    })
    .await?;
    if let Some(catalog) = &catalog {
        let reconciled = staged.reconcile(catalog).map_err(wal_failed)?;
        // Dropped after the base and before the moment: dropped from the copy too.
        for (id, name) in &reconciled.deleted {
            for segment in staged.drop_collection(id).map_err(wal_failed)? {
                remove_segment_dir(staging, &segment)?;
            }
            replayed.dropped.push(name.clone());
        }
        replayed.created = reconciled.created;
        replayed.changed = reconciled.changed;
    }
    // The catalog is read once per pass: a collection dropped between the read before the
    // moment and the read after it may have been dropped on either side of it.
    let next = next_read(repo, point).await?;
    if let Some((read_at, Some(after))) = &next {
        let still = wal::collection_names(after);
        let dropped: Vec<String> = staged
            .collections()
            .map_err(wal_failed)?
            .into_iter()
            .filter(|(id, _)| !still.contains_key(id))
            .map(|(_, name)| name)
            .collect();
        if !dropped.is_empty() {
            let before = read_before(point);
            return Err(ProtectError::Input(format!(
                "collection(s) {} were deleted between {} and {}, when the follower read the catalog, so whether they existed at {} is not known: restore --at {} or earlier (a follower with a shorter --interval narrows this)",
                dropped.join(", "),
                crate::duration::format_utc(before),
                crate::duration::format_utc(*read_at),
                crate::duration::format_utc(point.at),
                crate::duration::format_utc(whole_second(before) - chrono::Duration::seconds(1)),
            )));
        }
    }
    // Rows of collections the catalog at the moment lacks: created since the read before it
    // (the read after it has them), or dropped before that read (none of their rows is
    // newer than it: their rows are left out), or else not known.
    let have = staged.collection_ids().map_err(wal_failed)?;
    let before = whole_second(read_before(point));
    for (id, newest) in topics.iter().filter(|(id, _)| !have.contains(id)) {
        let created = match &next {
            Some((_, Some(after))) => staged
                .create_missing(after, std::slice::from_ref(id))
                .map_err(wal_failed)?,
            _ => Vec::new(),
        };
        if !created.is_empty() {
            replayed.created.extend(created);
            continue;
        }
        let dropped_before = wal::parse_logged_time(newest).is_ok_and(|t| t < before);
        if !dropped_before {
            return Err(ProtectError::Input(format!(
                "collection {id} was written to at {newest} and deleted before the follower read the catalog again, so whether it existed at {} is not known: restore --at {} or earlier",
                crate::duration::format_utc(point.at),
                crate::duration::format_utc(before - chrono::Duration::seconds(1)),
            )));
        }
        let base_head = expected.unwrap_or(0);
        let removed = staged.remove_rows_of(id, base_head).map_err(wal_failed)?;
        replayed.rows = replayed.rows.saturating_sub(removed);
    }
    Ok(replayed)
}

/// Remove a dropped collection's vector segment directory from the copy: a directory
/// directly under it, named as Chroma names segments (a forged name never reaches a path).
fn remove_segment_dir(staging: &Path, segment: &str) -> Result<(), ProtectError> {
    let plain = !segment.is_empty()
        && segment.len() <= 64
        && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !plain {
        return Err(RepoError::Corrupt {
            what: "the restored database".into(),
            detail: format!("segment id {segment:?} is not a segment name"),
        }
        .into());
    }
    let dir = staging.join(segment);
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&dir)
            .map_err(|e| RepoError::io(format!("cannot remove {}", dir.display()), e).into()),
        _ => Ok(()),
    }
}

fn wal_failed(err: WalError) -> ProtectError {
    match err {
        WalError::Invalid(detail) => RepoError::Corrupt {
            what: "the shipped log".into(),
            detail,
        }
        .into(),
        WalError::Sqlite { path, source } => RepoError::io(
            format!("cannot write the log into {path}"),
            std::io::Error::other(source),
        )
        .into(),
    }
}

/// A Chroma restore's work on the staged copy from a repository: the purge switch a
/// follower turned off while it took the backup given back as it was before, and for a
/// point-in-time restore, [`write_into`], then the counts Chroma will answer once it has
/// replayed the rows, read back from the copy.
pub struct ChromaStaging {
    repo: Repository,
    point: Option<PointInTime>,
    done: std::sync::Mutex<Option<Replayed>>,
}

impl ChromaStaging {
    pub fn new(repo: Repository, point: Option<PointInTime>) -> Self {
        Self {
            repo,
            point,
            done: std::sync::Mutex::new(None),
        }
    }

    /// What was replayed, once it has been.
    pub fn replayed(&self) -> Option<Replayed> {
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl crate::targets::protect::StagedStep for ChromaStaging {
    async fn apply(
        &self,
        staging: &Path,
        manifest: &crate::repo::format::Manifest,
    ) -> Result<Vec<CheckResult>, ProtectError> {
        if manifest.source.kind != "chroma" {
            return Ok(Vec::new());
        }
        let mut checks = Vec::new();
        // A follower took this backup with Chroma's purge off: the copy purges as the
        // database did before following began.
        if let Some(purge) = shipped::load_state(&self.repo, &manifest.id)
            .await?
            .and_then(|state| state.purge_was)
        {
            StagedLog::open(staging)
                .and_then(|staged| staged.set_purge_switch(purge))
                .map_err(wal_failed)?;
            checks.push(CheckResult {
                name: "purge_switch".into(),
                passed: true,
                detail: format!(
                    "automatically_purge set back to {purge}, as it was before `vecdrill follow` took it over"
                ),
            });
        }
        let Some(point) = &self.point else {
            return Ok(checks);
        };
        let replayed = write_into(&self.repo, point, staging).await?;
        checks.push(replayed.check());
        // The copy was written to: every check a backup passes, run again on it.
        let dir = staging.to_path_buf();
        let (rechecked, layout) = tokio::task::spawn_blocking(move || {
            super::layout::run_checks(&dir, super::layout::CheckPlan::FULL)
        })
        .await
        .map_err(|e| RepoError::io("check task", std::io::Error::other(e)))?;
        let failed = crate::targets::protect::failures(&rechecked);
        if !failed.is_empty() {
            return Err(ProtectError::ChecksFailed {
                what: format!(
                    "backup {} with the log up to {} written in",
                    point.chain.base.id,
                    crate::duration::format_utc(point.at)
                ),
                action: "restored",
                failed,
            });
        }
        let layout = layout?;
        checks.extend(layout.collections.iter().map(|c| CheckResult {
            name: format!("count:{}", c.name),
            passed: true,
            detail: format!("{} once the log is replayed", c.count),
        }));
        if let Ok(mut done) = self.done.lock() {
            *done = Some(replayed);
        }
        Ok(checks)
    }
}
