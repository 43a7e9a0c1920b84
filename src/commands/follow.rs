//! `follow`: ship a running Chroma's write-ahead log to a repository as it is written, so that
//! a restore can reach any second since the last base backup (see
//! `targets::chroma::shipped` for what is stored, `targets::chroma::wal` for the log).
//!
//! The follower takes over Chroma's purge (with the user's consent): Chroma stops deleting
//! the rows it has applied, the follower ships them and then deletes what is both shipped and
//! applied by every segment, so the log stays as small as Chroma keeps it. Rows that vanish
//! before they are shipped (another purger, a restart with the default switch, a dropped
//! collection) are a gap: said loudly, then healed with a new base backup.
//!
//! Crash safety: a segment is written before anything it holds is purged, and the chain's
//! position is read back from the repository on start, so a follower killed anywhere ships
//! nothing twice and loses nothing it had not yet shipped (the rows are still in the log).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::progress::Progress;
use crate::repo::format::{Manifest, Source, FORMAT_VERSION};
use crate::repo::lock::hostname;
use crate::repo::{RepoError, Repository};
use crate::targets::chroma::capture::CaptureMode;
use crate::targets::chroma::layout::{self, LayoutError};
use crate::targets::chroma::protect::ChromaSource;
use crate::targets::chroma::schema::Generation;
use crate::targets::chroma::shipped::{
    self, anchors, base_head, follow_key, segment_key, FollowState, LogSegment, MAX_SEGMENT_ROWS,
};
use crate::targets::chroma::wal::{Catalog, LiveLog, LogHead, WalError};
use crate::targets::protect::{
    source_path, BackupOutcome, BackupSettings, BackupSource, ProtectError,
};

#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub dir: PathBuf,
    /// The user's consent to turn Chroma's own purge off while following.
    pub take_over_purge: bool,
    pub interval: Duration,
    /// Take a new base backup when the chain's base is older than this.
    pub base_every: Option<Duration>,
    /// Ship what is there now and stop (for cron, and for tests).
    pub once: bool,
    /// For the base backups (hot captures of the running server).
    pub max_write_stall: Duration,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Protect(#[from] ProtectError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("{0}")]
    Refused(String),
}

impl crate::exit::Classify for FollowError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Repo(e) => e.exit_code(),
            Self::Protect(e) => e.exit_code(),
            Self::Layout(e) => e.exit_code(),
            Self::Wal(WalError::Invalid(_)) | Self::Refused(_) => crate::exit::BAD_INPUT,
            Self::Wal(WalError::Sqlite { .. }) => crate::exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Repo(e) => e.hint(),
            Self::Protect(e) => e.hint(),
            Self::Layout(e) => e.hint(),
            Self::Refused(_) => Some(
                "`vecdrill follow --help` explains the purge take-over; without following, `vecdrill backup` on a schedule still protects the data".into(),
            ),
            Self::Wal(_) => None,
        }
    }
}

pub const CONSENT_NEEDED: &str = "following needs --take-over-purge: vecdrill turns Chroma's own purge of its log off while it follows (and back on when it stops), and purges only what it has shipped";

/// What a follower did, for its last words and for tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowReport {
    pub base: String,
    pub bases_taken: u64,
    pub segments_shipped: u64,
    pub rows_shipped: u64,
    pub rows_purged: u64,
    pub gaps: u64,
    /// Gaps over every follower of this source (kept in the repository).
    pub gaps_total: u64,
    /// The chain's position and the moment it covers when following stopped.
    pub through: i64,
    pub covered_until: Option<DateTime<Utc>>,
    /// What the purge switch was set back to.
    pub purge_restored: Option<bool>,
}

/// Who hears of a follower's progress: each pass over the log (for metrics), and each gap
/// (for logs, metrics and a webhook).
pub trait FollowObserver: Send {
    fn passed(&mut self, report: &FollowReport);
    fn gap(&mut self, message: &str);
}

/// The chain being followed.
struct Following {
    base: Manifest,
    number: u64,
    through: i64,
    /// The row at `through`, which must still be there, unchanged: positions are reused once
    /// the rows after one are deleted (a collection dropped, the log emptied).
    last: Option<LogHead>,
    catalog: Option<Catalog>,
}

/// Follow until `stop` resolves (or once): returns what was done. The purge switch is set back
/// to what it was on every way out but a kill.
pub async fn follow<F>(
    repo: &Repository,
    options: &FollowOptions,
    progress: &dyn Progress,
    stop: F,
    observer: &mut dyn FollowObserver,
) -> Result<FollowReport, FollowError>
where
    F: std::future::Future<Output = ()>,
{
    // Read-write first: a transaction a killed writer (a follower's purge, the server) left
    // in the rollback journal is rolled back by the first read-write reader, and read-only
    // readers (the version check, the base backup's copy) cannot do that.
    let mut live = LiveLog::open(&options.dir)?;
    let switch = live.purge_switch()?;
    let generation = layout::generation(&options.dir)?;
    if generation < Generation::Chroma05 {
        return Err(FollowError::Refused(format!(
            "{} was written by Chroma {}, which has no switch to stop purging its log, so its log cannot be followed; back it up on a schedule instead, or upgrade Chroma to 0.5.23 or newer",
            options.dir.display(),
            generation.versions()
        )));
    }
    let Some(switch) = switch else {
        return Err(FollowError::Refused(format!(
            "the Chroma of {} has no purge switch (embeddings_queue_config came with 0.5.23), so its log cannot be followed without losing rows; upgrade Chroma to 0.5.23 or newer",
            options.dir.display()
        )));
    };
    if !options.take_over_purge {
        return Err(FollowError::Refused(CONSENT_NEEDED.into()));
    }
    let source = Source {
        kind: "chroma".into(),
        path: source_path(&options.dir),
    };
    let mut report = FollowReport::default();
    // A follower killed before it could set the switch back left it off: what it was before
    // is in that follower's state.
    let previous = newest_state(repo, &source).await?;
    let purge_was = match (switch, &previous) {
        (false, Some(state)) => state.purge_was.or(Some(switch)),
        _ => Some(switch),
    };
    if switch {
        live.set_purge_switch(false)?;
        tracing::info!(
            "took over the purge of the log of {}",
            options.dir.display()
        );
        if generation < Generation::Chroma10 {
            tracing::warn!(
                "Chroma {} reads the purge switch when it starts: until it is restarted it keeps purging its log, and rows it purges before they are shipped are reported as gaps",
                generation.versions()
            );
        }
    }
    // The repository's count of gaps goes on from the last follower's.
    report.gaps_total = previous.as_ref().map_or(0, |s| s.gaps_total);
    let outcome = run(
        repo,
        options,
        &source,
        &mut live,
        purge_was,
        progress,
        stop,
        observer,
        &mut report,
    )
    .await;
    // Set the switch back on the way out, failed or not; `--once` (run from cron) keeps
    // it, or Chroma would purge unshipped rows between runs.
    if options.once {
        report.purge_restored = None;
    } else if purge_was == Some(true) {
        match live.set_purge_switch(true) {
            Ok(()) => report.purge_restored = Some(true),
            Err(err) => tracing::error!(
                "could not set Chroma's purge switch back on ({err}); set automatically_purge to true in embeddings_queue_config of {}",
                options.dir.display()
            ),
        }
    } else {
        report.purge_restored = purge_was;
    }
    outcome.map(|()| report)
}

#[allow(clippy::too_many_arguments)]
async fn run<F>(
    repo: &Repository,
    options: &FollowOptions,
    source: &Source,
    live: &mut LiveLog,
    purge_was: Option<bool>,
    progress: &dyn Progress,
    stop: F,
    observer: &mut dyn FollowObserver,
    report: &mut FollowReport,
) -> Result<(), FollowError>
where
    F: std::future::Future<Output = ()>,
{
    tokio::pin!(stop);
    let mut following = match continued_chain(repo, source).await? {
        Some(following) => following,
        None => new_base(repo, options, progress, report).await?,
    };
    let mut last_state: Option<Instant> = None;
    // Told to stop: one more pass ships what is left.
    let mut stopping = false;
    // A new base taken on schedule, followed once the old chain has shipped the rows written
    // while it was taken (up to the base's own newest row, which the purge switch still
    // keeps): the old chain's reach then meets the new one's, with no second between them
    // that neither restores.
    let mut next: Option<Following> = None;
    loop {
        let read_at = Utc::now();
        let (mut rows, catalog, head) = live.read_after(following.through, MAX_SEGMENT_ROWS)?;
        let last_gone = match &following.last {
            Some(last) => !live
                .row_at(last.seq_id)?
                .is_some_and(|row| row.same_row(last)),
            None => false,
        };
        let vanished = match (rows.first(), &head) {
            _ if last_gone => Some(format!(
                "the last row shipped (position {}) is gone or replaced: a collection holding it was deleted, another process purged the log, or the database was replaced, so rows written since may be numbered over",
                following.through
            )),
            (Some(first), _) if first.seq_id != following.through + 1 => Some(format!(
                "log rows {}..{} disappeared before they were shipped",
                following.through + 1,
                first.seq_id - 1
            )),
            (None, Some(head)) if head.seq_id < following.through => Some(format!(
                "the log restarted: its newest row is {} but {} rows were shipped (the database was replaced or its log emptied)",
                head.seq_id, following.through
            )),
            (None, None) if following.through > 0 => Some(
                "the log is empty though rows were shipped (the database was replaced or its log emptied)".into(),
            ),
            _ => None,
        };
        if let Some(what) = vanished {
            report.gaps_total += 1;
            report.gaps += 1;
            let message = format!(
                "gap in the shipped log of {}: {what}; writes in it can only be restored from a backup, so a new base backup is taken now",
                options.dir.display()
            );
            tracing::error!("{message}");
            observer.gap(&message);
            // This base takes the place of one being handed over to.
            next = None;
            following = new_base(repo, options, progress, report).await?;
            continue;
        }
        // What a restore would refuse is refused here, loudly, rather than shipped.
        if let Some(bad) = rows.iter().find_map(|row| row.validate().err()) {
            return Err(FollowError::Refused(format!(
                "the log of {} holds a row vecdrill cannot restore ({bad}); nothing past it was shipped",
                options.dir.display()
            )));
        }
        // The old chain's last rows: none past the new base's, which its own chain ships (and
        // only what both have shipped is purged).
        let handing_over = next.is_some();
        if let Some(next) = &next {
            rows.retain(|row| row.seq_id <= next.through);
        }
        let changed = following.catalog.as_ref() != Some(&catalog);
        let full = rows.len() == MAX_SEGMENT_ROWS;
        if !rows.is_empty() || changed {
            let through = rows.last().map_or(following.through, |r| r.seq_id);
            let segment = LogSegment {
                kind: shipped::SEGMENT_KIND.into(),
                version: FORMAT_VERSION,
                checksum: String::new(),
                base: following.base.id.clone(),
                number: following.number + 1,
                source: source.clone(),
                read_at,
                after: following.through,
                through,
                catalog: changed.then(|| catalog.clone()),
                hostname: hostname(),
                tool_version: env!("CARGO_PKG_VERSION").into(),
                rows,
            };
            repo.store
                .put_sealed(&segment_key(&segment.base, segment.number), &segment)
                .await?;
            report.segments_shipped += 1;
            report.rows_shipped += segment.rows.len() as u64;
            tracing::debug!(
                "shipped segment {} of chain {}: rows {}..={}",
                segment.number,
                segment.base,
                segment.after + 1,
                segment.through
            );
            following.number = segment.number;
            following.through = through;
            if let Some(row) = segment.rows.last() {
                following.last = Some(LogHead::from(row));
            }
            following.catalog = Some(catalog);
        }
        report.through = following.through;
        report.covered_until = Some(read_at);
        report.base = following.base.id.clone();
        // Only what is shipped, and what Chroma itself would purge.
        report.rows_purged += live.purge(following.through)? as u64;
        if full {
            // More is waiting: read on at once.
            continue;
        }
        if handing_over {
            following = next.take().expect("handing over to a new base");
            continue;
        }
        let last = options.once || stopping;
        if last_state.is_none_or(|at| at.elapsed() >= STATE_EVERY) || last {
            // A prune may have removed the base (a newer backup of the source was kept in
            // its place): its chain would go with it.
            if repo
                .store
                .size(&crate::repo::manifest_key(&following.base.id))
                .await?
                .is_none()
            {
                tracing::warn!(
                    "base backup {} was removed (pruned?): a new base is taken",
                    following.base.id
                );
                following = new_base(repo, options, progress, report).await?;
                continue;
            }
            let state = FollowState {
                kind: shipped::FOLLOW_KIND.into(),
                version: FORMAT_VERSION,
                checksum: String::new(),
                base: following.base.id.clone(),
                source: source.clone(),
                covered_until: read_at,
                through: following.through,
                segments: following.number,
                gaps_total: report.gaps_total,
                purge_was,
                hostname: hostname(),
                pid: std::process::id(),
            };
            repo.store
                .put_sealed(&follow_key(&state.base), &state)
                .await?;
            last_state = Some(Instant::now());
        }
        observer.passed(report);
        if last {
            return Ok(());
        }
        let due = options.base_every.is_some_and(|every| {
            (Utc::now() - following.base.created_at)
                .to_std()
                .is_ok_and(|age| age >= every)
        });
        if due {
            next = Some(new_base(repo, options, progress, report).await?);
            continue;
        }
        tokio::select! {
            _ = &mut stop => stopping = true,
            _ = tokio::time::sleep(options.interval) => {}
        }
    }
}

/// How many times a base backup waits [`STATE_EVERY`] for a lock before the follower gives up.
const LOCK_WAITS: u32 = 120;

/// How often the follower's state is rewritten while nothing new is shipped: the moment the
/// chain covers moves on that often.
const STATE_EVERY: Duration = Duration::from_secs(5);

/// The newest follower state of `source`'s chains.
async fn newest_state(
    repo: &Repository,
    source: &Source,
) -> Result<Option<FollowState>, RepoError> {
    let mut newest: Option<FollowState> = None;
    for object in repo.store.list(shipped::FOLLOW_DIR).await? {
        let base = crate::repo::stored_name(&object.key, shipped::FOLLOW_DIR);
        if let Some(state) = shipped::load_state(repo, base).await? {
            let same = state.source.path == source.path && state.hostname == hostname();
            if same
                && newest
                    .as_ref()
                    .is_none_or(|n| state.covered_until > n.covered_until)
            {
                newest = Some(state);
            }
        }
    }
    Ok(newest)
}

/// The chain of the newest base of `source`, to go on with. Whether the live log still
/// continues it is the first pass's question, as it is every pass's: a gap found there is
/// reported like any other.
async fn continued_chain(
    repo: &Repository,
    source: &Source,
) -> Result<Option<Following>, FollowError> {
    let manifests = repo.readable_manifests().await?;
    let Some(base) = manifests.iter().rev().find(|m| {
        m.source.kind == "chroma" && m.source.path == source.path && m.hostname == hostname()
    }) else {
        return Ok(None);
    };
    if !anchors(base) {
        tracing::info!(
            "the newest backup {} does not record its place in the log (an older vecdrill took it): a new base is taken",
            base.id
        );
        return Ok(None);
    }
    let chain = shipped::read_chain(repo, base).await?;
    if let Some(broken) = &chain.broken {
        tracing::warn!(
            "chain {} is broken ({broken}): a new base is taken",
            base.id
        );
        return Ok(None);
    }
    let through = chain.through();
    let catalog = last_catalog(repo, &chain).await?;
    let last = last_row(repo, &chain).await?;
    tracing::info!(
        "continuing chain {} at position {through} (segment {})",
        base.id,
        chain.segments.len()
    );
    Ok(Some(Following {
        number: chain.segments.len() as u64,
        base: base.clone(),
        through,
        last,
        catalog,
    }))
}

/// The catalog the chain last shipped.
async fn last_catalog(
    repo: &Repository,
    chain: &shipped::Chain,
) -> Result<Option<Catalog>, RepoError> {
    match chain.segments.iter().rev().find(|s| s.has_catalog) {
        Some(summary) => Ok(shipped::load_segment(repo, &chain.base.id, summary.number)
            .await?
            .catalog),
        None => Ok(None),
    }
}

/// The last row the chain holds: its last segment's with rows, or the base's newest.
async fn last_row(repo: &Repository, chain: &shipped::Chain) -> Result<Option<LogHead>, RepoError> {
    match chain.segments.iter().rev().find(|s| s.rows > 0) {
        Some(summary) => Ok(shipped::load_segment(repo, &chain.base.id, summary.number)
            .await?
            .rows
            .last()
            .map(LogHead::from)),
        None => Ok(base_head(&chain.base)),
    }
}

/// Take a base backup of the running server (a hot copy) and start its chain.
async fn new_base(
    repo: &Repository,
    options: &FollowOptions,
    progress: &dyn Progress,
    report: &mut FollowReport,
) -> Result<Following, FollowError> {
    let source = ChromaSource {
        dir: options.dir.clone(),
        mode: Some(CaptureMode::Hot),
        staging_parent: None,
        read_all: false,
    };
    let settings = BackupSettings {
        tags: options.tags.clone(),
        max_write_stall: options.max_write_stall,
        min_interval: None,
    };
    // A prune holds the repository for a while: wait for it (the rows wait in the log,
    // which nobody purges meanwhile).
    let mut waited = 0;
    let outcome = loop {
        match source.back_up(repo, &settings, None, progress).await {
            Err(ProtectError::Repo(RepoError::Locked { holder })) if waited < LOCK_WAITS => {
                waited += 1;
                tracing::warn!("the base backup waits: the repository is locked by {holder}");
                tokio::time::sleep(STATE_EVERY).await;
            }
            other => break other?,
        }
    };
    let BackupOutcome::Created { manifest } = outcome else {
        unreachable!("a backup without --min-interval is never skipped")
    };
    tracing::info!("base backup {} taken; its log chain starts", manifest.id);
    report.bases_taken += 1;
    report.base = manifest.id.clone();
    let last = base_head(&manifest);
    Ok(Following {
        base: *manifest,
        number: 0,
        through: last.as_ref().map_or(0, |h| h.seq_id),
        last,
        catalog: None,
    })
}
