//! Retention (restic's `forget` semantics) and garbage collection.
//!
//! `--keep-last N` keeps the N newest backups; `--keep-hourly/daily/weekly/monthly N` keep the
//! newest backup of each of the N most recent hours/days/ISO weeks/months that have one. A
//! backup kept by any rule stays; the newest backup always stays. Then chunks no kept backup
//! uses are removed: unused packs deleted, partly used packs rewritten with only what is used.
//! All of it under an exclusive lock, so no running backup loses chunks it has just uploaded.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use super::format::{limits, ChunkId, Manifest};
use super::index::ChunkIndex;
use super::pack::{open_pack, PackBuilder};
use super::store::Listed;
use super::{
    follow_state_key, index_key, lock, manifest_key, pack_key, pack_named, proof_key, RepoError,
    Repository, LOGS_DIR,
};

#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    /// Keep each source's N newest backups that a passing `prove` proved restorable, whatever
    /// the other rules say: retention never removes the last backup known to restore.
    pub keep_proven: Option<usize>,
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_proven,
        ]
        .iter()
        .all(Option::is_none)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub id: String,
    /// The source whose group the policy was applied in, as `list` shows it.
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub keep: bool,
    /// The rules that keep it (`last`, `daily`, ...).
    pub reasons: Vec<String>,
}

/// The period a backup falls in, for one kind of bucket (hour, day, ISO week, month).
type BucketKey = fn(&DateTime<Utc>) -> String;

/// Decide, newest first within each source, which backups the policy keeps. The policy
/// applies to each source apart (kind, host and path, like restic's grouping by host and
/// paths): a repository holding a Chroma directory and a FAISS + Redis store keeps the newest
/// N of each. `proven` holds the backups a passing proof proved (for `keep_proven`).
pub fn apply_policy(
    manifests: &[Manifest],
    policy: &RetentionPolicy,
    proven: &BTreeSet<String>,
) -> Vec<Decision> {
    let mut groups: BTreeMap<(&str, String), Vec<&Manifest>> = BTreeMap::new();
    for manifest in manifests {
        groups
            .entry((&manifest.source.kind, manifest.source_label()))
            .or_default()
            .push(manifest);
    }
    groups
        .into_values()
        .flat_map(|group| apply_to_group(group, policy, proven))
        .collect()
}

fn apply_to_group(
    mut newest_first: Vec<&Manifest>,
    policy: &RetentionPolicy,
    proven: &BTreeSet<String>,
) -> Vec<Decision> {
    newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); newest_first.len()];
    if let Some(n) = policy.keep_last {
        for r in reasons.iter_mut().take(n) {
            r.push("last".into());
        }
    }
    let buckets: [(&str, Option<usize>, BucketKey); 4] = [
        ("hourly", policy.keep_hourly, |t| {
            t.format("%Y-%m-%d %H").to_string()
        }),
        ("daily", policy.keep_daily, |t| {
            t.format("%Y-%m-%d").to_string()
        }),
        ("weekly", policy.keep_weekly, |t| {
            let week = t.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }),
        ("monthly", policy.keep_monthly, |t| {
            t.format("%Y-%m").to_string()
        }),
    ];
    for (name, limit, bucket) in buckets {
        let Some(limit) = limit else { continue };
        let mut last: Option<String> = None;
        let mut kept = 0;
        for (i, manifest) in newest_first.iter().enumerate() {
            if kept >= limit {
                break;
            }
            let key = bucket(&manifest.created_at);
            if last.as_ref() != Some(&key) {
                reasons[i].push(name.to_string());
                kept += 1;
                last = Some(key);
            }
        }
    }
    if let Some(n) = policy.keep_proven {
        let proven_ones = newest_first
            .iter()
            .enumerate()
            .filter(|(_, m)| proven.contains(&m.id))
            .map(|(i, _)| i)
            .take(n)
            .collect::<Vec<_>>();
        for i in proven_ones {
            reasons[i].push("proven".into());
        }
    }
    if let Some(first) = reasons.first_mut() {
        if first.is_empty() {
            first.push("newest".into());
        }
    }
    newest_first
        .iter()
        .zip(reasons)
        .map(|(m, reasons)| Decision {
            id: m.id.clone(),
            source: m.source_label(),
            created_at: m.created_at,
            keep: !reasons.is_empty(),
            reasons,
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub policy: RetentionPolicy,
    pub dry_run: bool,
    /// Remove at most this many backups in one run (seed 001's batch cleanup).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PruneReport {
    pub dry_run: bool,
    pub decisions: Vec<Decision>,
    pub removed: Vec<String>,
    /// Backups the policy would remove but `--limit` left for a later run.
    pub deferred: Vec<String>,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    /// Objects of the log shipped after removed backups (see `vecdrill follow`).
    pub log_objects_deleted: u64,
    pub bytes_freed: u64,
}

/// Remove the one backup stored as `id` (restic's `forget`): its manifest, proof and copy
/// records, also when its manifest cannot be read, which is the way out for a damaged one
/// (`prune` refuses to judge a repository holding one). Its chunks, packs and shipped log go at
/// the next `prune`. Only a whole id: nothing is removed by a prefix.
pub async fn forget(repo: &Repository, id: &str) -> Result<(), RepoError> {
    let guard = lock::acquire(repo, true, "forget").await?;
    let result = match repo.stored_backup_ids().await {
        Ok(ids) if ids.iter().any(|stored| stored == id) => remove_backup(repo, id).await,
        Ok(_) => Err(RepoError::BackupNotFound { id: id.to_string() }),
        Err(err) => Err(err),
    };
    guard.release().await;
    result
}

/// The manifest first: once gone, nothing refers to the backup's chunks. Its proof and copy
/// records go with it.
async fn remove_backup(repo: &Repository, id: &str) -> Result<(), RepoError> {
    repo.store.delete(&manifest_key(id)).await?;
    repo.store.delete(&proof_key(id)).await?;
    for record in repo.store.list(&super::copy::copies_dir(id)).await? {
        repo.store.delete(&record.key).await?;
    }
    Ok(())
}

pub async fn prune(repo: &Repository, options: &PruneOptions) -> Result<PruneReport, RepoError> {
    let guard = lock::acquire(repo, true, "prune").await?;
    let result = prune_locked(repo, options).await;
    guard.release().await;
    result
}

async fn prune_locked(repo: &Repository, options: &PruneOptions) -> Result<PruneReport, RepoError> {
    let manifests = repo.manifests().await.map_err(|err| match err {
        RepoError::Corrupt { what, detail } if what.starts_with("snapshots/") => {
            let id = super::stored_name(&what, "snapshots").to_string();
            RepoError::Corrupt {
                detail: format!(
                    "{detail}; prune judges every backup, so it removes nothing while one cannot be read: once looked at, `vecdrill forget --repo URL {id}` removes that one"
                ),
                what,
            }
        }
        other => other,
    })?;
    let proven: BTreeSet<String> = match options.policy.keep_proven {
        Some(_) => repo
            .proofs()
            .await?
            .into_values()
            .filter(|p| p.passed)
            .map(|p| p.backup)
            .collect(),
        None => BTreeSet::new(),
    };
    let decisions = apply_policy(&manifests, &options.policy, &proven);
    let to_remove: Vec<String> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.clone())
        .rev()
        .collect();
    let limit = options.limit.unwrap_or(usize::MAX);
    let (removed, deferred) = if to_remove.len() > limit {
        (to_remove[..limit].to_vec(), to_remove[limit..].to_vec())
    } else {
        (to_remove, Vec::new())
    };
    let mut report = PruneReport {
        dry_run: options.dry_run,
        decisions,
        removed: removed.clone(),
        deferred,
        ..PruneReport::default()
    };
    let remaining: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| !removed.contains(&m.id))
        .collect();
    let used: HashSet<ChunkId> = remaining
        .iter()
        .flat_map(|m| m.files.iter().flat_map(|f| f.chunks.iter().copied()))
        .collect();
    let index = ChunkIndex::load_complete(repo).await?;
    let unindexed: Vec<Listed> = repo
        .store
        .list("packs")
        .await?
        .into_iter()
        // Only packs: anything else under `packs/` is not vecdrill's, and is left alone.
        .filter(|object| {
            pack_named(&object.key).is_some_and(|name| !index.packs.contains_key(name))
        })
        .collect();
    // Packs without an index are deleted below, as a dead backup's leftovers. A pack whose
    // index was lost is not one: it may hold chunks kept backups use. Nothing is removed
    // until the index is whole again.
    let unlocated = used.iter().filter(|id| !index.contains(id)).count();
    if let (true, Some(first)) = (unlocated > 0, unindexed.first()) {
        return Err(RepoError::IncompleteIndex {
            detail: format!(
                "{unlocated} chunk(s) that kept backups use are in no pack index, and {} pack(s) have none (first {}): they may hold those chunks, so nothing was removed",
                unindexed.len(),
                first.key
            ),
        });
    }
    if !options.dry_run {
        // Manifests first: once gone, nothing refers to their chunks. A removed backup's
        // proof goes with it.
        for id in &removed {
            remove_backup(repo, id).await?;
        }
    }
    // The log shipped after a removed backup goes with it, and so does a chain whose backup
    // is gone (a prune killed between the two): a chain is only restored from its backup.
    let kept: HashSet<&str> = remaining.iter().map(|m| m.id.as_str()).collect();
    for object in repo.store.list(LOGS_DIR).await? {
        let chain = object
            .key
            .strip_prefix(LOGS_DIR)
            .and_then(|k| k.strip_prefix('/'))
            .and_then(|k| k.split('/').next())
            .unwrap_or_default();
        if kept.contains(chain) {
            continue;
        }
        report.log_objects_deleted += 1;
        report.bytes_freed += object.size;
        if !options.dry_run {
            repo.store.delete(&object.key).await?;
            repo.store.delete(&follow_state_key(chain)).await?;
        }
    }
    for (name, pack) in &index.packs {
        let used_entries: Vec<_> = pack
            .entries
            .iter()
            .filter(|e| used.contains(&e.id))
            .copied()
            .collect();
        if used_entries.len() == pack.entries.len() {
            continue;
        }
        if used_entries.is_empty() {
            report.packs_deleted += 1;
            report.bytes_freed += pack.pack_size;
            if !options.dry_run {
                repo.store.delete(&index_key(name)).await?;
                repo.store.delete(&pack_key(name)).await?;
            }
            continue;
        }
        report.packs_rewritten += 1;
        let kept_bytes: u64 = used_entries.iter().map(|e| e.length).sum();
        report.bytes_freed += pack.pack_size.saturating_sub(kept_bytes);
        if options.dry_run {
            continue;
        }
        let bytes = repo.store.get(&pack_key(name), limits::PACK_BYTES).await?;
        let keys = repo.store.keys();
        open_pack(name, &bytes, keys)?;
        let mut builder = PackBuilder::default();
        for entry in &used_entries {
            // The index fits its own pack size; the pack itself may still be shorter.
            let stored = bytes
                .get(entry.offset as usize..(entry.offset + entry.length) as usize)
                .ok_or_else(|| RepoError::Corrupt {
                    what: pack_key(name),
                    detail: format!(
                        "chunk {} lies past the end of the pack ({} bytes)",
                        entry.id,
                        bytes.len()
                    ),
                })?;
            // Stored bytes are copied as they are: a sealed chunk is bound to its id only.
            builder.add(entry.id, stored, entry.raw_length, entry.encoding);
        }
        let rewritten = builder.finish(keys);
        // New pack and index first; only then is the old one dropped.
        repo.store
            .put(&pack_key(&rewritten.name), rewritten.bytes)
            .await?;
        repo.store
            .put_sealed(&index_key(&rewritten.name), &rewritten.index)
            .await?;
        repo.store.delete(&index_key(name)).await?;
        repo.store.delete(&pack_key(name)).await?;
    }
    // Packs with no index were left by a backup that died before writing it.
    for object in unindexed {
        report.packs_deleted += 1;
        report.bytes_freed += object.size;
        if !options.dry_run {
            repo.store.delete(&object.key).await?;
        }
    }
    Ok(report)
}

/// Storage use of the repository (seed 001's monitor).
#[derive(Debug, Clone, Serialize)]
pub struct RepoStats {
    pub backups: usize,
    pub packs: usize,
    pub stored_bytes: u64,
    /// Sum of every backup's logical size: what plain copies would take.
    pub logical_bytes: u64,
    /// Plain size of every distinct chunk stored.
    pub unique_chunk_bytes: u64,
    /// Bytes of the packs holding those chunks, compressed.
    pub pack_bytes: u64,
    /// What deduplication saves: backed-up data / distinct chunks.
    pub dedup_ratio: f64,
    /// What compression saves: distinct chunks / their packs.
    pub compression_ratio: f64,
    /// Both, and the metadata: backed-up data / everything stored.
    pub total_ratio: f64,
    pub newest: Option<DateTime<Utc>>,
    pub oldest: Option<DateTime<Utc>>,
    pub by_kind: BTreeMap<String, u64>,
}

/// `of / to`, 0 when there is nothing to divide by.
fn ratio(of: u64, to: u64) -> f64 {
    if to == 0 {
        0.0
    } else {
        of as f64 / to as f64
    }
}

pub async fn stats(repo: &Repository) -> Result<RepoStats, RepoError> {
    let manifests = repo.manifests().await?;
    let index = ChunkIndex::load(repo).await?;
    let mut by_kind = BTreeMap::new();
    for dir in ["snapshots", "index", "packs", "locks"] {
        let size: u64 = repo.store.list(dir).await?.iter().map(|o| o.size).sum();
        by_kind.insert(dir.to_string(), size);
    }
    let stored_bytes = by_kind.values().sum();
    let logical_bytes: u64 = manifests.iter().map(|m| m.totals.logical_bytes).sum();
    let unique_chunk_bytes = index.chunks.values().map(|l| l.entry.raw_length).sum();
    let pack_bytes = by_kind.get("packs").copied().unwrap_or(0);
    Ok(RepoStats {
        backups: manifests.len(),
        packs: index.packs.len(),
        stored_bytes,
        logical_bytes,
        unique_chunk_bytes,
        pack_bytes,
        dedup_ratio: ratio(logical_bytes, unique_chunk_bytes),
        compression_ratio: ratio(unique_chunk_bytes, pack_bytes),
        total_ratio: ratio(logical_bytes, stored_bytes),
        newest: manifests.last().map(|m| m.created_at),
        oldest: manifests.first().map(|m| m.created_at),
        by_kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn manifest(id: &str, at: DateTime<Utc>) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "type": "vecdrill-manifest", "version": 1, "checksum": "", "id": id, "created_at": at,
            "tool_version": "t", "hostname": "h", "tags": [],
            "source": { "kind": "chroma", "path": "/d" },
            "capture": { "mode": "offline", "write_stall_ms": 0.0, "attempts": 1, "duration_ms": 0.0 },
            "database": null, "checks": [], "files": [], "totals": {
                "files": 0, "logical_bytes": 0, "chunks": 0, "new_chunks": 0, "new_bytes": 0, "stored_bytes": 0 }
        }))
        .unwrap()
    }

    #[test]
    fn seed_003_policy_keeps_7_daily_4_weekly_6_monthly() {
        // One backup a day for 400 days.
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 2, 0, 0).unwrap();
        let manifests: Vec<Manifest> = (0..400)
            .map(|d| manifest(&format!("b{d:03}"), start + chrono::Duration::days(d)))
            .collect();
        let policy = RetentionPolicy {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(6),
            ..Default::default()
        };
        let decisions = apply_policy(&manifests, &policy, &BTreeSet::new());
        let kept: Vec<&Decision> = decisions.iter().filter(|d| d.keep).collect();
        // 7 dailies; weeklies and monthlies overlap some of them.
        assert!(kept.len() >= 7 && kept.len() <= 17, "{}", kept.len());
        assert_eq!(decisions[0].id, "b399");
        assert!(decisions[..7]
            .iter()
            .all(|d| d.reasons.contains(&"daily".to_string())));
        assert_eq!(
            decisions
                .iter()
                .filter(|d| d.reasons.contains(&"monthly".to_string()))
                .count(),
            6
        );
        assert_eq!(
            decisions
                .iter()
                .filter(|d| d.reasons.contains(&"weekly".to_string()))
                .count(),
            4
        );
    }

    #[test]
    fn each_source_keeps_its_own_newest() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut manifests: Vec<Manifest> = (0..4)
            .map(|i| manifest(&format!("c{i}"), start + chrono::Duration::hours(i)))
            .collect();
        for i in 0..3 {
            let mut store = manifest(&format!("f{i}"), start + chrono::Duration::minutes(i * 10));
            store.source.kind = "faiss_redis".into();
            store.source.path = "/idx/a.faiss + redis://r".into();
            manifests.push(store);
        }
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let kept: Vec<String> = apply_policy(&manifests, &policy, &BTreeSet::new())
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id)
            .collect();
        assert_eq!(kept, ["c3", "f2"]);
    }

    #[test]
    fn keep_last_and_the_newest_always_stays() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let manifests: Vec<Manifest> = (0..5)
            .map(|i| manifest(&format!("m{i}"), start + chrono::Duration::hours(i)))
            .collect();
        let decisions = apply_policy(
            &manifests,
            &RetentionPolicy {
                keep_last: Some(2),
                ..Default::default()
            },
            &BTreeSet::new(),
        );
        let kept: Vec<&str> = decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(kept, ["m4", "m3"]);
        let decisions = apply_policy(
            &manifests,
            &RetentionPolicy {
                keep_monthly: Some(0),
                ..Default::default()
            },
            &BTreeSet::new(),
        );
        assert_eq!(decisions.iter().filter(|d| d.keep).count(), 1);
    }

    #[test]
    fn keep_proven_keeps_the_newest_proven_backups_whatever_else_goes() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let manifests: Vec<Manifest> = (0..6)
            .map(|i| manifest(&format!("p{i}"), start + chrono::Duration::hours(i)))
            .collect();
        let proven: BTreeSet<String> = ["p1", "p2", "p4"].map(String::from).into();
        let kept = |keep_proven| {
            apply_policy(
                &manifests,
                &RetentionPolicy {
                    keep_last: Some(1),
                    keep_proven,
                    ..Default::default()
                },
                &proven,
            )
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| (d.id, d.reasons.join(",")))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            kept(Some(2)),
            [
                ("p5".to_string(), "last".to_string()),
                ("p4".into(), "proven".into()),
                ("p2".into(), "proven".into())
            ]
        );
        assert_eq!(kept(None), [("p5".to_string(), "last".to_string())]);
    }
}
