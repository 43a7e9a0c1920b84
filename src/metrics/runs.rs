//! Metrics of one drill or backup, from its history record: what node_exporter's textfile
//! collector exposes so alerts can fire on a failed drill, a stale backup or a slow recovery.

use chrono::{DateTime, Utc};

use super::Metric;
use crate::history::{RunKind, RunRecord};

/// Names for one kind of run; drills and backups keep separate families so one alert rule
/// never mixes them.
struct Names {
    passed: &'static str,
    last_run: &'static str,
    last_success: &'static str,
    duration: &'static str,
}

const DRILL: Names = Names {
    passed: "vecdrill_drill_passed",
    last_run: "vecdrill_drill_last_run_timestamp_seconds",
    last_success: "vecdrill_drill_last_success_timestamp_seconds",
    duration: "vecdrill_drill_duration_seconds",
};

const BACKUP: Names = Names {
    passed: "vecdrill_backup_passed",
    last_run: "vecdrill_backup_last_run_timestamp_seconds",
    last_success: "vecdrill_backup_last_success_timestamp_seconds",
    duration: "vecdrill_backup_duration_seconds",
};

/// When the newest proven backup was proven, and the RTO that proof measured: written by a
/// proof and by `check --max-unproven-age`, under the same names.
pub const LAST_PROVEN: &str = "vecdrill_backup_last_proven_timestamp_seconds";
pub const PROVEN_RTO: &str = "vecdrill_backup_proven_rto_seconds";

/// The metrics of `run`. `last_success` is the newest successful run of the same scenario or
/// repository (this one, when it passed), from the history.
pub fn of_run(run: &RunRecord, last_success: Option<DateTime<Utc>>) -> Vec<Metric> {
    let (names, label) = match run.kind {
        RunKind::Drill => (
            &DRILL,
            ("scenario", run.scenario.clone().unwrap_or_default()),
        ),
        RunKind::Backup => (&BACKUP, ("repo", run.repo.clone().unwrap_or_default())),
    };
    let labels = || vec![label.clone()];
    let metric = |name, help, value| Metric {
        name,
        help,
        labels: labels(),
        value,
    };
    let seconds = |ms: f64| ms / 1000.0;
    let mut out = vec![
        metric(
            names.passed,
            "1 when the last run passed",
            f64::from(u8::from(run.passed)),
        ),
        metric(
            names.last_run,
            "when the last run finished (Unix time)",
            run.finished_at.timestamp() as f64,
        ),
        metric(
            names.duration,
            "how long the last run took",
            seconds(run.duration_ms),
        ),
    ];
    let last_success = if run.passed {
        Some(run.finished_at)
    } else {
        last_success
    };
    if let Some(at) = last_success {
        out.push(metric(
            names.last_success,
            "when the last successful run finished (Unix time)",
            at.timestamp() as f64,
        ));
    }
    let optional = [
        (
            "vecdrill_drill_rto_seconds",
            "recovery time of the last drill",
            run.rto_ms.map(seconds),
        ),
        (
            "vecdrill_drill_rpo_seconds",
            "age of the restored data at the last drill's disaster",
            run.rpo_ms.map(seconds),
        ),
        (
            "vecdrill_drill_search_p50_seconds",
            "search latency p50 at the last drill",
            run.p50_ms.map(seconds),
        ),
        (
            "vecdrill_drill_search_p90_seconds",
            "search latency p90 at the last drill",
            run.p90_ms.map(seconds),
        ),
        (
            "vecdrill_drill_search_p99_seconds",
            "search latency p99 at the last drill",
            run.p99_ms.map(seconds),
        ),
        (
            "vecdrill_backup_logical_bytes",
            "bytes of data in the last backup",
            run.logical_bytes.map(|b| b as f64),
        ),
        (
            "vecdrill_backup_stored_bytes",
            "new bytes the last backup stored in the repository",
            run.stored_bytes.map(|b| b as f64),
        ),
    ];
    for (name, help, value) in optional {
        if let Some(value) = value {
            out.push(metric(name, help, value));
        }
    }
    // A proof is also its backup's evidence of restoring.
    if run.scenario.as_deref() == Some(crate::drill::prove::SCENARIO_NAME) {
        if let Some(at) = last_success {
            out.push(Metric {
                name: LAST_PROVEN,
                help: "when the newest proven backup was proven (Unix time)",
                labels: Vec::new(),
                value: at.timestamp() as f64,
            });
        }
        if let Some(rto) = run.rto_ms.filter(|_| run.passed) {
            out.push(Metric {
                name: PROVEN_RTO,
                help: "restore plus start to healthy, as the newest proof measured it",
                labels: Vec::new(),
                value: seconds(rto),
            });
        }
    }
    for objective in &run.objectives {
        let mut labels = labels();
        labels.push(("objective", objective.name.clone()));
        out.push(Metric {
            name: "vecdrill_drill_objective_passed",
            help: "1 when the objective was met at the last drill",
            labels,
            value: f64::from(u8::from(objective.passed)),
        });
    }
    out
}
