//! Chroma's log as shipped to a repository by `vecdrill follow`: chains of log segments, each
//! chain continuing one base backup, and what they make recoverable.
//!
//! A chain is `logs/<base-id>/<n>.json` for n = 1, 2, …: segment n holds the rows past
//! segment n-1's last (the first segment: past the base's newest log row), read in one
//! transaction at `read_at`, so that together with the base they hold every write logged up to
//! that moment. The follower's state (`follow/<base-id>.json`) moves that moment on while
//! nothing is written. Segments are sealed like manifests (encrypted in an encrypted
//! repository), and a chain is only believed as far as it runs without a hole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::ChromaLayout;
use super::wal::{Catalog, LogHead, LogRow};
use crate::repo::format::{self, Manifest, Sealed, Source, Stored};
use crate::repo::{load_stored, RepoError, Repository};

pub use crate::repo::{FOLLOW_DIR, LOGS_DIR};
pub const SEGMENT_KIND: &str = "vecdrill-log-segment";
pub const FOLLOW_KIND: &str = "vecdrill-follow-state";
/// Rows per segment at most: a segment stays a few tens of MiB even with large vectors.
pub const MAX_SEGMENT_ROWS: usize = 10_000;

pub fn segment_key(base: &str, number: u64) -> String {
    format!("{}/{number:010}.json", crate::repo::log_chain_dir(base))
}

pub use crate::repo::follow_state_key as follow_key;

/// One shipped piece of a chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSegment {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    #[serde(default)]
    pub checksum: String,
    /// The base backup this chain continues.
    pub base: String,
    /// Its place in the chain, from 1.
    pub number: u64,
    pub source: Source,
    /// Every row logged up to this moment is in the base or the chain through this segment.
    pub read_at: DateTime<Utc>,
    /// The chain's position before and after this segment: its rows are exactly
    /// `after + 1 ..= through`, in order (none when nothing new was logged).
    pub after: i64,
    pub through: i64,
    pub rows: Vec<LogRow>,
    /// The catalog when it changed since the previous segment (always in the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Catalog>,
    pub hostname: String,
    pub tool_version: String,
}

impl LogSegment {
    pub fn validate(&self, stored_as: &str) -> Result<(), String> {
        if !format::is_valid_id(&self.base) || self.number == 0 {
            return Err(format!(
                "it names base {:?}, segment {}",
                self.base, self.number
            ));
        }
        let name = format!("{}/{:010}", self.base, self.number);
        if stored_as != name {
            return Err(format!(
                "it says it is {name}, but is stored as {stored_as}"
            ));
        }
        if self.rows.len() > MAX_SEGMENT_ROWS {
            return Err(format!(
                "it holds {} rows, more than {MAX_SEGMENT_ROWS}",
                self.rows.len()
            ));
        }
        if self.through < self.after || self.after < 0 {
            return Err(format!(
                "its positions run from {} to {}",
                self.after, self.through
            ));
        }
        let expected = self.through - self.after;
        if self.rows.len() as i64 != expected {
            return Err(format!(
                "it holds {} rows for positions {}..={}",
                self.rows.len(),
                self.after + 1,
                self.through
            ));
        }
        for (i, row) in self.rows.iter().enumerate() {
            if row.seq_id != self.after + 1 + i as i64 {
                return Err(format!(
                    "row {i} is at position {}, expected {}",
                    row.seq_id,
                    self.after + 1 + i as i64
                ));
            }
            row.validate()?;
        }
        Ok(())
    }
}

impl Sealed for LogSegment {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Stored for LogSegment {
    const KIND: &'static str = SEGMENT_KIND;
    const DIR: &'static str = LOGS_DIR;
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        self.validate(stored_as)
    }
}

/// A follower's progress on a chain, rewritten as it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowState {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    #[serde(default)]
    pub checksum: String,
    pub base: String,
    pub source: Source,
    /// Every row logged up to this moment is in the base or the chain.
    pub covered_until: DateTime<Utc>,
    /// The chain's position then, and the segments it has.
    pub through: i64,
    pub segments: u64,
    /// Rows that disappeared before they were shipped, over the follower's life.
    pub gaps_total: u64,
    /// What Chroma's purge switch was before the follower took it over.
    pub purge_was: Option<bool>,
    pub hostname: String,
    pub pid: u32,
}

impl Sealed for FollowState {
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Stored for FollowState {
    const KIND: &'static str = FOLLOW_KIND;
    const DIR: &'static str = FOLLOW_DIR;
    fn kind_and_version(&self) -> (&str, u32) {
        (&self.kind, self.version)
    }
    fn check(&self, stored_as: &str) -> Result<(), String> {
        if self.base != stored_as || !format::is_valid_id(&self.base) {
            return Err(format!("it names base {:?}", self.base));
        }
        Ok(())
    }
}

/// Where a Chroma backup stands in its log: its newest row (none: nothing was ever logged).
pub fn base_head(manifest: &Manifest) -> Option<LogHead> {
    serde_json::from_value::<ChromaLayout>(manifest.database.clone())
        .ok()?
        .log_head
}

/// Whether `manifest` recorded where it stands in the log (backups before vecdrill did
/// cannot anchor a chain).
pub fn anchors(manifest: &Manifest) -> bool {
    serde_json::from_value::<ChromaLayout>(manifest.database.clone())
        .is_ok_and(|layout| layout.log_recorded)
}

/// Where a chain continuing `base` begins (see [`Chain::from`]), known from the base alone.
pub fn chain_begins(base: &Manifest) -> DateTime<Utc> {
    base_head(base)
        .and_then(|h| h.time().ok())
        .unwrap_or(base.created_at)
}

/// A chain as read back: the segments that run without a hole from its base, and how far
/// they cover.
#[derive(Debug, Clone)]
pub struct Chain {
    pub base: Manifest,
    /// Segment numbers, in order, all readable and contiguous.
    pub segments: Vec<SegmentSummary>,
    /// The segment (if any) where the chain broke, with why: nothing past it is believed.
    pub broken: Option<String>,
    pub state: Option<FollowState>,
}

#[derive(Debug, Clone)]
pub struct SegmentSummary {
    pub number: u64,
    pub read_at: DateTime<Utc>,
    pub through: i64,
    pub rows: usize,
    pub has_catalog: bool,
}

impl Chain {
    /// The first moment the chain restores: the base's newest logged write (the base holds
    /// nothing later), or the backup's time where nothing was logged.
    pub fn from(&self) -> DateTime<Utc> {
        chain_begins(&self.base)
    }

    /// The last second the chain restores whole (see [`until_of`]).
    pub fn until(&self) -> DateTime<Utc> {
        until_of(self.read_until())
    }

    /// The moment up to which every row logged is in the base or the chain: its last read.
    pub fn read_until(&self) -> DateTime<Utc> {
        read_until_of(
            &self.base,
            self.segments.last(),
            self.state.as_ref(),
            self.broken.is_some(),
        )
    }

    pub fn through(&self) -> i64 {
        through_of(&self.base, self.segments.last())
    }

    pub fn rows(&self) -> usize {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// How far the chain reaches, every segment read.
    pub fn reach(&self) -> Reach {
        Reach {
            base: self.base.id.clone(),
            source: self.base.source_label(),
            from: self.from(),
            read_until: self.read_until(),
            through: self.through(),
            segments: self.segments.len() as u64,
            broken: self.broken.clone(),
        }
    }
}

/// How far a chain reaches: what `list`, `check --max-log-lag` and `restore --at`'s refusal
/// show. [`outline`] tells it from the listing, the follower's state and the last segment
/// alone, so that these stay quick however long a chain grows (a follower may ship a segment
/// every second); whether every segment between is intact is for `verify` and for a restore
/// to the moment, which read them all.
#[derive(Debug, Clone)]
pub struct Reach {
    /// The base backup's id, and its source's label.
    pub base: String,
    pub source: String,
    /// See [`Chain::from`] and [`Chain::read_until`].
    pub from: DateTime<Utc>,
    pub read_until: DateTime<Utc>,
    /// The position of the last row shipped (or the base's newest, before any segment).
    pub through: i64,
    /// Segments that run from the base without a hole.
    pub segments: u64,
    /// Where the chain was found broken, if it was: nothing past it is believed.
    pub broken: Option<String>,
}

impl Reach {
    pub fn until(&self) -> DateTime<Utc> {
        until_of(self.read_until)
    }
}

/// The last second a chain read up to `read_until` restores whole: the one before that read
/// (its last segment's, or the follower's word that nothing was logged since), or before the
/// base's own time when it has no segment. Log times are whole seconds, so a row of the
/// second a read began in may have been logged after it.
fn until_of(read_until: DateTime<Utc>) -> DateTime<Utc> {
    whole_second(read_until) - chrono::Duration::seconds(1)
}

/// Every row logged up to this moment is in `base` or its chain up to segment `last`; the
/// follower's state moves it on while nothing more was logged, unless the chain is broken.
fn read_until_of(
    base: &Manifest,
    last: Option<&SegmentSummary>,
    state: Option<&FollowState>,
    broken: bool,
) -> DateTime<Utc> {
    let mut read = base.created_at;
    if let Some(last) = last {
        read = read.max(last.read_at);
        if let Some(state) = state {
            if !broken && state.through == last.through {
                read = read.max(state.covered_until);
            }
        }
    }
    read
}

fn through_of(base: &Manifest, last: Option<&SegmentSummary>) -> i64 {
    last.map(|s| s.through)
        .or_else(|| base_head(base).map(|h| h.seq_id))
        .unwrap_or(0)
}

impl SegmentSummary {
    fn of(segment: &LogSegment) -> Self {
        SegmentSummary {
            number: segment.number,
            read_at: segment.read_at,
            through: segment.through,
            rows: segment.rows.len(),
            has_catalog: segment.catalog.is_some(),
        }
    }
}

/// `moment` to its whole second.
pub fn whole_second(moment: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(moment.timestamp(), 0).unwrap_or(moment)
}

/// The segment numbers stored for chain `base`, in order.
pub async fn stored_numbers(repo: &Repository, base: &str) -> Result<Vec<u64>, RepoError> {
    let prefix = crate::repo::log_chain_dir(base);
    let mut numbers: Vec<u64> = repo
        .store
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|o| {
            let number = o
                .key
                .strip_prefix(&prefix)?
                .strip_prefix('/')?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            // Only the name the follower gives segment `number`: `1.json` beside
            // `0000000001.json` is not a second segment 1.
            (o.key == segment_key(base, number)).then_some(number)
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

pub async fn load_segment(
    repo: &Repository,
    base: &str,
    number: u64,
) -> Result<LogSegment, RepoError> {
    load_stored(&repo.store, &segment_key(base, number)).await
}

/// The follower's state of chain `base`, if it has a readable one.
pub async fn load_state(repo: &Repository, base: &str) -> Result<Option<FollowState>, RepoError> {
    match load_stored::<FollowState>(&repo.store, &follow_key(base)).await {
        Ok(state) => Ok(Some(state)),
        Err(RepoError::ObjectMissing { .. }) => Ok(None),
        Err(err @ (RepoError::Corrupt { .. } | RepoError::NewerFormat { .. })) => {
            tracing::warn!("ignoring the follower state of chain {base}: {err}");
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Segments loaded ahead of the one being checked. A segment is up to [`MAX_SEGMENT_ROWS`]
/// rows, so a few at a time keep memory to a few segments while the store's latency overlaps.
const SEGMENTS_IN_FLIGHT: usize = 4;

/// Read chain `base` back: every segment in order, checked against the one before it, as far
/// as it runs unbroken.
pub async fn read_chain(repo: &Repository, base: &Manifest) -> Result<Chain, RepoError> {
    use futures::StreamExt;

    let mut chain = Chain {
        base: base.clone(),
        segments: Vec::new(),
        broken: None,
        state: load_state(repo, &base.id).await?,
    };
    let numbers = stored_numbers(repo, &base.id).await?;
    let contiguous = contiguous(&numbers);
    let mut loads = futures::stream::iter(numbers[..contiguous].iter().copied())
        .map(|number| async move { (number, load_segment(repo, &base.id, number).await) })
        .buffered(SEGMENTS_IN_FLIGHT);
    let mut through = base_head(base).map_or(0, |h| h.seq_id);
    while let Some((number, loaded)) = loads.next().await {
        let segment = match loaded {
            Ok(segment) => segment,
            Err(err @ (RepoError::Corrupt { .. } | RepoError::NewerFormat { .. })) => {
                chain.broken = Some(err.to_string());
                break;
            }
            Err(err) => return Err(err),
        };
        if segment.after != through {
            chain.broken = Some(format!(
                "{} continues from position {}, but the chain stands at {through}",
                segment_key(&base.id, number),
                segment.after
            ));
            break;
        }
        through = segment.through;
        chain.segments.push(SegmentSummary::of(&segment));
    }
    if chain.broken.is_none() && contiguous < numbers.len() {
        chain.broken = Some(format!("segment {} is missing", contiguous + 1));
    }
    if let Some(broken) = &chain.broken {
        tracing::warn!(
            "the log chain of backup {} is believed only up to its break: {broken}",
            base.id
        );
    }
    Ok(chain)
}

/// How many of the stored segment `numbers` run 1, 2, … without a hole: only those can belong
/// to the chain.
fn contiguous(numbers: &[u64]) -> usize {
    numbers
        .iter()
        .zip(1..)
        .take_while(|(stored, expected)| **stored == *expected)
        .count()
}

/// How far chain `base` reaches, told from the listing, the follower's state and the last
/// segment that follows the base without a hole (see [`Reach`]). A damaged last segment
/// has the whole chain read, to find where it breaks.
pub async fn outline(repo: &Repository, base: &Manifest) -> Result<Reach, RepoError> {
    let numbers = stored_numbers(repo, &base.id).await?;
    let contiguous = contiguous(&numbers);
    let last = match contiguous {
        0 => None,
        n => match load_segment(repo, &base.id, n as u64).await {
            Ok(segment) => Some(SegmentSummary::of(&segment)),
            Err(RepoError::Corrupt { .. } | RepoError::NewerFormat { .. }) => {
                return Ok(read_chain(repo, base).await?.reach())
            }
            Err(err) => return Err(err),
        },
    };
    let broken =
        (contiguous < numbers.len()).then(|| format!("segment {} is missing", contiguous + 1));
    let state = load_state(repo, &base.id).await?;
    Ok(Reach {
        base: base.id.clone(),
        source: base.source_label(),
        from: chain_begins(base),
        read_until: read_until_of(base, last.as_ref(), state.as_ref(), broken.is_some()),
        through: through_of(base, last.as_ref()),
        segments: contiguous as u64,
        broken,
    })
}

/// How far each chain of the Chroma backups in `manifests` reaches (see [`outline`]).
pub async fn reaches(repo: &Repository, manifests: &[Manifest]) -> Result<Vec<Reach>, RepoError> {
    let mut reaches = Vec::new();
    for base in bases_with_logs(repo, manifests).await? {
        reaches.push(outline(repo, base).await?);
    }
    Ok(reaches)
}

/// The Chroma backups in `manifests` that have at least one shipped segment.
pub async fn bases_with_logs<'a>(
    repo: &Repository,
    manifests: &'a [Manifest],
) -> Result<Vec<&'a Manifest>, RepoError> {
    let with_logs: std::collections::BTreeSet<String> = repo
        .store
        .list(LOGS_DIR)
        .await?
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix(LOGS_DIR)?.strip_prefix('/')?;
            Some(rest.split('/').next()?.to_string())
        })
        .collect();
    Ok(manifests
        .iter()
        .filter(|m| with_logs.contains(&m.id))
        .collect())
}

/// Every chain of the Chroma backups in `manifests` that have at least one segment.
pub async fn chains(repo: &Repository, manifests: &[Manifest]) -> Result<Vec<Chain>, RepoError> {
    let mut chains = Vec::new();
    for manifest in bases_with_logs(repo, manifests).await? {
        chains.push(read_chain(repo, manifest).await?);
    }
    Ok(chains)
}

/// A span of whole seconds a restore reaches, first and last included.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// The recoverable windows of each source (by its label), oldest first.
pub fn windows(reaches: &[Reach]) -> BTreeMap<String, Vec<Window>> {
    let mut windows: BTreeMap<String, Vec<Window>> = BTreeMap::new();
    for reach in reaches.iter().filter(|r| r.from <= r.until()) {
        windows
            .entry(reach.source.clone())
            .or_default()
            .push((reach.from, reach.until()));
    }
    for spans in windows.values_mut() {
        spans.sort();
        // Chains that overlap or touch make one window.
        let mut merged: Vec<Window> = Vec::new();
        for (from, until) in spans.drain(..) {
            match merged.last_mut() {
                Some(last) if from <= last.1 + chrono::Duration::seconds(1) => {
                    last.1 = last.1.max(until)
                }
                _ => merged.push((from, until)),
            }
        }
        *spans = merged;
    }
    windows
}
