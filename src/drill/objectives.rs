//! Objectives evaluated to target / measured / passed, each saying by how much it missed and
//! which step measured it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::baseline::Baseline;
use super::timeline::Timeline;
use crate::duration::{format_duration, format_ms, HumanDuration};
use crate::percent::{self, format_change, Percent};
use crate::scenario::{LatencyObjective, Mark, Objectives};
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
    /// The baseline's figure, when the scenario has a baseline that measured it.
    pub baseline_value: Option<f64>,
    /// Measured against the baseline, in percent (+12.5 is 12.5% higher).
    pub change_pct: Option<f64>,
    /// Not evaluated (relative to a baseline that does not exist yet); does not fail the run.
    pub skipped: bool,
}

impl ObjectiveResult {
    /// `met`, `missed` or `skipped`.
    pub fn verdict(&self) -> &'static str {
        match (self.skipped, self.passed) {
            (true, _) => "skipped",
            (false, true) => "met",
            (false, false) => "missed",
        }
    }

    /// A value of this objective's unit, as people read it.
    pub fn format_value(&self, value: f64) -> String {
        match self.unit {
            "ms" => format_ms(value),
            "%" => format!("{value:.2}%"),
            "records" => format!("{value:.0} records"),
            other => format!("{value} {other}"),
        }
    }

    /// The baseline's figure and the change from it, e.g. `120ms (+12.5%)`; `—` without one.
    pub fn against_baseline(&self) -> String {
        match (self.baseline_value, self.change_pct) {
            (Some(b), Some(c)) => format!("{} ({})", self.format_value(b), format_change(c)),
            (Some(b), None) => self.format_value(b),
            _ => "—".to_string(),
        }
    }
}

pub fn evaluate(
    objectives: &Objectives,
    timeline: &Timeline,
    memory: &Memory,
    run_started: DateTime<Utc>,
    baseline: Option<&Baseline>,
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
            .find(|s| s.kind.restores_data && s.outputs.contains_key("backup"))
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
    for (name, objective, percentile) in [
        ("search_p50", objectives.search_p50, "p50"),
        ("search_p90", objectives.search_p90, "p90"),
        ("search_p99", objectives.search_p99, "p99"),
    ] {
        let Some(objective) = objective else { continue };
        let measured = memory.latency.as_ref().and_then(|(step, summary)| {
            summary
                .percentile_ms(percentile)
                .map(|ms| (step.clone(), ms))
        });
        results.push(latency_objective(
            name, percentile, objective, measured, baseline,
        ));
    }
    if let Some(min) = objectives.collections_min {
        results.push(collections_min(min, memory));
    }
    if let Some(count) = objectives.count {
        results.push(count_of_baseline(count.min_of_baseline, memory, baseline));
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
    // In the scenario's order (a stable sort keeps the rest as they are).
    let at = |name: &str| objectives.order.iter().position(|o| o == name);
    results.sort_by_key(|r| at(&r.name).unwrap_or(usize::MAX));
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
        baseline_value: None,
        change_pct: None,
        skipped: false,
    }
}

/// A latency percentile against its ceiling and/or its largest regression from the baseline.
/// The effective limit is the tighter of the two.
fn latency_objective(
    name: &str,
    percentile: &str,
    objective: LatencyObjective,
    measured: Option<(String, f64)>,
    baseline: Option<&Baseline>,
) -> ObjectiveResult {
    let reference = baseline.and_then(|b| b.percentile_ms(percentile));
    let ceiling_ms = objective.max.map(|m| m.0.as_secs_f64() * 1000.0);
    let relative_ms = objective
        .max_regression
        .zip(reference)
        .map(|(r, b)| b * (1.0 + r.fraction()));
    let limit_ms = match (ceiling_ms, relative_ms) {
        (Some(c), Some(r)) => Some(c.min(r)),
        (c, r) => c.or(r),
    };
    let target = match (objective.max, objective.max_regression) {
        (Some(max), Some(r)) => format!("{max}, at most +{r} of baseline"),
        (Some(max), None) => max.to_string(),
        (None, Some(r)) => format!("at most +{r} of baseline"),
        (None, None) => String::new(),
    };
    let step = measured.as_ref().map(|(s, _)| s.clone());
    let measured_ms = measured.map(|(_, ms)| ms);
    let change = measured_ms
        .zip(reference)
        .and_then(|(m, b)| percent::change(m, b));
    let against = |b: f64| match change {
        Some(c) => format!(
            " ({} against the baseline's {})",
            format_change(c),
            format_ms(b)
        ),
        None => String::new(),
    };
    let (passed, skipped, detail) = match (measured_ms, limit_ms) {
        (None, _) => (
            false,
            false,
            "not measured: no `search_latency` step completed".to_string(),
        ),
        (Some(_), None) => (
            true,
            true,
            match baseline {
                None => "skipped: the scenario has no baseline yet; set one with `vecdrill baseline set RUN` or `run --save-baseline`".to_string(),
                Some(b) => format!("skipped: baseline run {} measured no search latency", b.run_id),
            },
        ),
        (Some(m), Some(limit)) if m <= limit => (
            true,
            false,
            format!(
                "met with {} to spare{}",
                format_ms(limit - m),
                reference.map(against).unwrap_or_default()
            ),
        ),
        (Some(m), Some(limit)) => {
            let regression = relative_ms.is_some_and(|r| m > r);
            let detail = match (regression, reference) {
                (true, Some(b)) => format!(
                    "{name} regressed {} against the baseline's {} (allowed +{}), missed by {}",
                    format_change(change.unwrap_or_default()),
                    format_ms(b),
                    objective.max_regression.unwrap_or_default(),
                    format_ms(m - limit)
                ),
                _ => format!(
                    "missed by {}{}",
                    format_ms(m - limit),
                    reference.map(against).unwrap_or_default()
                ),
            };
            (false, false, detail)
        }
    };
    ObjectiveResult {
        name: name.to_string(),
        target,
        measured: measured_ms.map(format_ms),
        unit: "ms",
        target_value: limit_ms.unwrap_or_default(),
        measured_value: measured_ms,
        passed,
        step,
        detail,
        baseline_value: reference,
        change_pct: change,
        skipped,
    }
}

/// Every collection in the baseline keeps at least `share` of its baseline count. Measured as
/// the smallest share found, in percent.
fn count_of_baseline(
    share: Percent,
    memory: &Memory,
    baseline: Option<&Baseline>,
) -> ObjectiveResult {
    let target = format!("at least {share} of baseline");
    let base = |passed, skipped, detail: String| ObjectiveResult {
        name: "count".to_string(),
        target: target.clone(),
        measured: None,
        unit: "%",
        target_value: share.0,
        measured_value: None,
        passed,
        step: None,
        detail,
        baseline_value: None,
        change_pct: None,
        skipped,
    };
    let Some(baseline) = baseline.filter(|b| !b.counts.is_empty()) else {
        return base(true, true, "skipped: the scenario has no baseline with collection counts yet; set one with `vecdrill baseline set RUN`".into());
    };
    let Some((step, counts)) = &memory.counts else {
        return base(
            false,
            false,
            "not measured: no step counted the collections".into(),
        );
    };
    // The collection furthest below its baseline decides.
    let worst = baseline
        .counts
        .iter()
        .map(|(name, &expected)| {
            let found = counts.get(name).copied().unwrap_or(0);
            let ratio = if expected == 0 {
                1.0
            } else {
                found as f64 / expected as f64
            };
            (name, expected, found, ratio)
        })
        .min_by(|a, b| a.3.total_cmp(&b.3));
    let Some((name, expected, found, ratio)) = worst else {
        return base(
            true,
            true,
            "skipped: the baseline counted no collections".into(),
        );
    };
    let measured_pct = ratio * 100.0;
    let passed = measured_pct + 1e-9 >= share.0;
    let detail = if passed {
        format!(
            "every collection holds at least {share} of its baseline count; least is {name:?} with {found} of {expected} ({measured_pct:.2}%)"
        )
    } else {
        format!(
            "collection {name:?} holds {found} of its baseline's {expected} records ({measured_pct:.2}%, below {share})"
        )
    };
    ObjectiveResult {
        measured: Some(format!("{measured_pct:.2}%")),
        measured_value: Some(measured_pct),
        passed,
        step: Some(step.clone()),
        detail,
        // The baseline holds 100% of itself; the change is the shortfall of the worst collection.
        baseline_value: Some(100.0),
        change_pct: Some(measured_pct - 100.0),
        ..base(passed, false, String::new())
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
        baseline_value: None,
        change_pct: None,
        skipped: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(p90_ms: Option<f64>) -> Baseline {
        Baseline {
            scenario: "s".into(),
            run_id: "s-1".into(),
            run_started_at: Utc::now(),
            set_at: Utc::now(),
            p50_ms: None,
            p90_ms,
            p99_ms: None,
            counts: Default::default(),
        }
    }

    fn objective(max: Option<&str>, regression: Option<f64>) -> LatencyObjective {
        LatencyObjective {
            max: max.map(|m| m.parse().unwrap()),
            max_regression: regression.map(Percent),
        }
    }

    fn measured(ms: f64) -> Option<(String, f64)> {
        Some(("latency".into(), ms))
    }

    #[test]
    fn the_tighter_of_ceiling_and_regression_decides() {
        let base = baseline(Some(100.0));
        // 20% over 100ms allows 120ms; the 500ms ceiling is looser.
        let both = objective(Some("500ms"), Some(20.0));
        let r = latency_objective("search_p90", "p90", both, measured(119.0), Some(&base));
        assert!(r.passed && !r.skipped, "{r:?}");
        assert_eq!(r.change_pct.map(|c| c.round()), Some(19.0));
        let r = latency_objective("search_p90", "p90", both, measured(121.0), Some(&base));
        assert!(!r.passed);
        assert!(r.detail.contains("regressed +21.0%"), "{}", r.detail);
        // A ceiling below the allowed regression wins.
        let tight = objective(Some("110ms"), Some(20.0));
        let r = latency_objective("search_p90", "p90", tight, measured(115.0), Some(&base));
        assert!(!r.passed);
        assert!(r.detail.starts_with("missed by 5ms"), "{}", r.detail);
    }

    #[test]
    fn without_a_baseline_a_relative_objective_is_skipped_but_a_ceiling_still_counts() {
        let relative = objective(None, Some(20.0));
        let r = latency_objective("search_p90", "p90", relative, measured(50.0), None);
        assert!(r.passed && r.skipped);
        assert!(r.detail.contains("baseline set"), "{}", r.detail);
        let both = objective(Some("10ms"), Some(20.0));
        let r = latency_objective("search_p90", "p90", both, measured(50.0), None);
        assert!(!r.passed && !r.skipped);
        let r = latency_objective("search_p90", "p90", relative, None, None);
        assert!(!r.passed && !r.skipped, "never measured fails: {r:?}");
    }
}
