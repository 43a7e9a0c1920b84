//! Objectives evaluated to target / measured / passed, each saying by how much it missed and
//! which step measured it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::timeline::Timeline;
use crate::duration::{format_duration, HumanDuration};
use crate::scenario::{Mark, Objectives};
use crate::steps::Memory;

#[derive(Debug, Clone, Serialize)]
pub struct ObjectiveResult {
    pub name: String,
    /// As written, e.g. `5m`, `500ms`, `1000 records`.
    pub target: String,
    /// As measured, or `None` when the run never measured it.
    pub measured: Option<String>,
    pub unit: &'static str,
    pub target_value: f64,
    pub measured_value: Option<f64>,
    pub passed: bool,
    /// The step whose measurement this is.
    pub step: Option<String>,
    /// Why it passed or failed, and by how much.
    pub detail: String,
}

pub fn evaluate(
    objectives: &Objectives,
    timeline: &Timeline,
    memory: &Memory,
    run_started: DateTime<Utc>,
) -> Vec<ObjectiveResult> {
    let mut results = Vec::new();
    let disaster = timeline.mark_time(Mark::Disaster);
    let recovered_step = timeline
        .steps
        .iter()
        .find(|s| s.mark == Some(Mark::Recovered))
        .map(|s| s.id.clone());

    if let Some(target) = objectives.rto {
        let measured = disaster
            .zip(timeline.mark_time(Mark::Recovered))
            .map(|(d, r)| (r - d).to_std().unwrap_or_default());
        let missing = match (disaster, measured) {
            (None, _) => "not measured: the `disaster` mark was never reached",
            _ => "not measured: the run stopped before the `recovered` mark",
        };
        results.push(duration_objective(
            "rto",
            target,
            measured,
            recovered_step,
            missing,
        ));
    }
    if let Some(target) = objectives.rpo {
        let restore_step = timeline
            .steps
            .iter()
            .rev()
            .find(|s| {
                crate::steps::RESTORING_KINDS.contains(&s.kind.as_str())
                    && s.outputs.contains_key("backup")
            })
            .map(|s| s.id.clone());
        let measured = disaster
            .zip(memory.restored.as_ref())
            .map(|(d, (_, taken))| (d - *taken).to_std().unwrap_or_default());
        let missing = match (disaster, &memory.restored) {
            (None, _) => "not measured: the `disaster` mark was never reached",
            _ => "not measured: no backup was restored",
        };
        results.push(duration_objective(
            "rpo",
            target,
            measured,
            restore_step,
            missing,
        ));
    }
    for (name, target, percentile) in [
        ("search_p50", objectives.search_p50, "p50"),
        ("search_p90", objectives.search_p90, "p90"),
        ("search_p99", objectives.search_p99, "p99"),
    ] {
        let Some(target) = target else { continue };
        let measured = memory.latency.as_ref().and_then(|(step, summary)| {
            summary.percentile_ms(percentile).map(|ms| {
                (
                    step.clone(),
                    std::time::Duration::from_secs_f64(ms / 1000.0),
                )
            })
        });
        let step = measured.as_ref().map(|(s, _)| s.clone());
        results.push(duration_objective(
            name,
            target,
            measured.map(|(_, d)| d),
            step,
            "not measured: no `search_latency` step completed",
        ));
    }
    if let Some(min) = objectives.collections_min {
        results.push(collections_min(min, memory));
    }
    if let Some(target) = objectives.heartbeat_within {
        let from = disaster.unwrap_or(run_started);
        let first = memory.healthy_at.iter().find(|t| **t >= from);
        let measured = first.map(|t| (*t - from).to_std().unwrap_or_default());
        let step = None;
        results.push(duration_objective(
            "heartbeat_within",
            target,
            measured,
            step,
            "not measured: no heartbeat was answered after the disaster",
        ));
    }
    results
}

fn duration_objective(
    name: &str,
    target: HumanDuration,
    measured: Option<std::time::Duration>,
    step: Option<String>,
    missing: &str,
) -> ObjectiveResult {
    let target_ms = target.0.as_secs_f64() * 1000.0;
    let measured_ms = measured.map(|d| d.as_secs_f64() * 1000.0);
    let passed = measured.is_some_and(|m| m <= target.0);
    let detail = match measured {
        None => missing.to_string(),
        Some(m) if passed => format!(
            "met with {} to spare",
            format_duration(target.0.saturating_sub(m))
        ),
        Some(m) => format!("missed by {}", format_duration(m.saturating_sub(target.0))),
    };
    ObjectiveResult {
        name: name.to_string(),
        target: target.to_string(),
        measured: measured.map(format_duration),
        unit: "ms",
        target_value: target_ms,
        measured_value: measured_ms,
        passed,
        step,
        detail,
    }
}

fn collections_min(min: u64, memory: &Memory) -> ObjectiveResult {
    let smallest = memory
        .counts
        .as_ref()
        .map(|(step, counts)| (step.clone(), counts.iter().min_by_key(|(_, c)| **c)));
    let (step, measured, detail, passed) = match smallest {
        None => (
            None,
            None,
            "not measured: no step counted the collections".to_string(),
            false,
        ),
        Some((step, None)) => (
            Some(step),
            Some(0),
            "there are no collections".to_string(),
            false,
        ),
        Some((step, Some((name, count)))) => {
            let passed = *count >= min;
            let detail = if passed {
                format!("smallest collection {name:?} has {count} records")
            } else {
                format!(
                    "collection {name:?} has {count} records, {} short",
                    min - count
                )
            };
            (Some(step), Some(*count), detail, passed)
        }
    };
    ObjectiveResult {
        name: "collections_min".to_string(),
        target: format!("{min} records"),
        measured: measured.map(|m| format!("{m} records")),
        unit: "records",
        target_value: min as f64,
        measured_value: measured.map(|m| m as f64),
        passed,
        step,
        detail,
    }
}
