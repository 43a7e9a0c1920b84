//! What the history keeps of a drill report or a backup.

use chrono::{DateTime, Utc};

use super::{ObjectiveRow, RunKind, RunRecord};
use crate::report::DrillReport;

pub fn drill_record(report: &DrillReport) -> RunRecord {
    let latency = report.latency.as_ref();
    RunRecord {
        id: report.run_id.clone(),
        kind: RunKind::Drill,
        scenario: Some(report.scenario.clone()),
        repo: None,
        target: format!("{} {}", report.target.kind, report.target.url),
        started_at: report.started_at,
        finished_at: report.finished_at,
        passed: report.passed,
        exit_code: report.exit_code,
        duration_ms: report.duration_ms,
        rto_ms: report.rto_ms,
        rpo_ms: report.rpo_ms,
        p50_ms: latency.map(|l| l.p50_ms),
        p90_ms: latency.map(|l| l.p90_ms),
        p99_ms: latency.map(|l| l.p99_ms),
        backup_id: restored_backup(report),
        logical_bytes: None,
        stored_bytes: None,
        vecdrill_version: report.vecdrill_version.clone(),
        host: report.host.clone(),
        report_dir: Some(report.run_dir.clone()),
        objectives: report
            .objectives
            .iter()
            .map(|o| ObjectiveRow {
                name: o.name.clone(),
                target: o.target.clone(),
                target_value: Some(o.target_value),
                measured_value: o.measured_value,
                baseline_value: o.baseline_value,
                unit: o.unit.to_string(),
                passed: o.passed,
                skipped: o.skipped,
                detail: o.detail.clone(),
            })
            .collect(),
        counts: report.counts.clone(),
        detail: serde_json::to_value(report).ok(),
    }
}

/// The backup a drill put in place (its last restore that passed): the backup a proof proved.
fn restored_backup(report: &DrillReport) -> Option<String> {
    report
        .steps
        .iter()
        .rev()
        .filter(|s| s.kind.restores_data && s.status == crate::drill::timeline::StepStatus::Passed)
        .find_map(|s| s.outputs.get("backup")?.as_str().map(str::to_string))
}

/// What a backup command did, as the history keeps it.
pub struct BackupRun<'a> {
    pub repo: &'a str,
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub exit_code: i32,
    pub backup_id: Option<String>,
    pub logical_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
    pub counts: std::collections::BTreeMap<String, u64>,
    /// The command's JSON summary, or the error.
    pub detail: serde_json::Value,
}

pub fn backup_record(run: BackupRun<'_>) -> RunRecord {
    RunRecord {
        // One id per backup everywhere: the repository's. A backup that committed nothing has
        // no such id and is named by its start.
        id: run
            .backup_id
            .clone()
            .unwrap_or_else(|| format!("backup-{}", run.started_at.format("%Y%m%dT%H%M%S%.3fZ"))),
        kind: RunKind::Backup,
        scenario: None,
        repo: Some(run.repo.to_string()),
        target: run.target,
        started_at: run.started_at,
        finished_at: run.finished_at,
        passed: run.exit_code == 0,
        exit_code: run.exit_code,
        duration_ms: (run.finished_at - run.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0,
        rto_ms: None,
        rpo_ms: None,
        p50_ms: None,
        p90_ms: None,
        p99_ms: None,
        backup_id: run.backup_id,
        logical_bytes: run.logical_bytes,
        stored_bytes: run.stored_bytes,
        vecdrill_version: env!("CARGO_PKG_VERSION").to_string(),
        host: crate::repo::lock::hostname(),
        report_dir: None,
        objectives: Vec::new(),
        counts: run.counts,
        detail: Some(run.detail),
    }
}
