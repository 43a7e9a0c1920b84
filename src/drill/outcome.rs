//! What a drill run was: the report's data, computed once by the runner. `crate::report`
//! writes it out (JSON, Markdown, HTML, JUnit, the terminal summary) and formats only.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::baseline::Baseline;
use super::objectives::ObjectiveResult;
use super::timeline::{MarkRecord, Phase, StepRecord, Timeline};
use crate::latency::LatencySummary;
use crate::platform::ServiceSpec;
use crate::scenario::{Mark, Scenario};

/// Bumped when a field changes meaning or disappears; new fields may appear without a bump.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub schema_version: u32,
    /// The run directory's name; the run's id in the history.
    pub run_id: String,
    pub vecdrill_version: String,
    pub host: String,
    pub scenario: String,
    pub description: Option<String>,
    pub scenario_file: String,
    pub target: TargetSummary,
    pub run_dir: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub passed: bool,
    pub interrupted: bool,
    pub exit_code: i32,
    /// Time from the `disaster` mark to the `recovered` mark.
    pub rto_ms: Option<f64>,
    /// The RTO split: time in platform operations (service start/stop/restart, restores) and
    /// the rest (waiting for health, verification).
    pub rto_split: Option<RtoSplit>,
    /// Age of the restored backup at the `disaster` mark.
    pub rpo_ms: Option<f64>,
    pub marks: Vec<MarkRecord>,
    pub objectives: Vec<ObjectiveResult>,
    pub steps: Vec<StepRecord>,
    pub rollback: Vec<StepRecord>,
    pub failure: Option<Failure>,
    pub latency: Option<LatencySummary>,
    /// The last per-collection counts the run saw.
    pub counts: BTreeMap<String, u64>,
    /// The scenario's baseline the relative objectives were measured against.
    pub baseline: Option<Baseline>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RtoSplit {
    pub platform_ms: f64,
    pub verification_ms: f64,
}

fn rto_split(timeline: &Timeline, rto_ms: Option<f64>) -> Option<RtoSplit> {
    let rto_ms = rto_ms?;
    let (from, to) = (
        timeline.mark_time(Mark::Disaster)?,
        timeline.mark_time(Mark::Recovered)?,
    );
    let platform_ms: f64 = timeline
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Steps && s.kind.platform_time)
        .filter(|s| s.started_at.is_some_and(|at| at >= from && at <= to))
        .map(|s| s.duration_ms)
        .sum();
    let platform_ms = platform_ms.min(rto_ms);
    Some(RtoSplit {
        platform_ms,
        verification_ms: rto_ms - platform_ms,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    pub kind: String,
    pub url: String,
    pub service: Option<String>,
}

/// The step that failed the run and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub step: String,
    pub kind: &'static crate::steps::StepKind,
    pub reason: String,
}

pub struct ReportParts<'a> {
    pub scenario: &'a Scenario,
    pub run_dir: &'a Path,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub passed: bool,
    pub interrupted: bool,
    pub exit_code: i32,
    pub timeline: Timeline,
    pub objectives: Vec<ObjectiveResult>,
    pub failure: Option<Failure>,
    pub latency: Option<LatencySummary>,
    pub rpo_ms: Option<f64>,
    pub counts: BTreeMap<String, u64>,
    pub baseline: Option<Baseline>,
}

/// One collection's count beside its baseline's, as the writers show it.
pub struct CountLine<'a> {
    pub name: &'a str,
    pub count: u64,
    /// The baseline's count, or `—` when there is no baseline or it lacks this collection.
    pub baseline: String,
    /// Signed difference from the baseline (`+12`, `-300`), or `—`.
    pub difference: String,
}

impl DrillReport {
    /// Every collection's count against the baseline's, in name order.
    pub fn counts_against_baseline(&self) -> Vec<CountLine<'_>> {
        self.counts
            .iter()
            .map(|(name, &count)| {
                let base = self.baseline.as_ref().and_then(|b| b.counts.get(name));
                let (baseline, difference) = match base {
                    Some(&b) => (b.to_string(), format!("{:+}", count as i64 - b as i64)),
                    None => ("—".to_string(), "—".to_string()),
                };
                CountLine {
                    name,
                    count,
                    baseline,
                    difference,
                }
            })
            .collect()
    }

    /// `PASSED`, `FAILED` or `INTERRUPTED`, as every output names the run's outcome.
    pub fn verdict(&self) -> &'static str {
        if self.interrupted {
            "INTERRUPTED"
        } else if self.passed {
            "PASSED"
        } else {
            "FAILED"
        }
    }

    pub fn new(parts: ReportParts<'_>) -> Self {
        let ReportParts {
            scenario,
            run_dir,
            started_at,
            duration,
            passed,
            interrupted,
            exit_code,
            timeline,
            objectives,
            failure,
            latency,
            rpo_ms,
            counts,
            baseline,
        } = parts;
        let rto_ms = timeline
            .mark_time(Mark::Disaster)
            .zip(timeline.mark_time(Mark::Recovered))
            .map(|(d, r)| (r - d).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        let rto_split = rto_split(&timeline, rto_ms);
        let (steps, rollback) = timeline
            .steps
            .into_iter()
            .partition(|s| s.phase == Phase::Steps);
        let service = scenario.target.service().map(ServiceSpec::summary);
        Self {
            schema_version: SCHEMA_VERSION,
            run_id: run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            vecdrill_version: env!("CARGO_PKG_VERSION").to_string(),
            host: crate::repo::lock::hostname(),
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            scenario_file: scenario.path.display().to_string(),
            target: TargetSummary {
                kind: serde_json::to_value(scenario.target.kind())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                url: scenario.target.url().to_string(),
                service,
            },
            run_dir: run_dir.display().to_string(),
            started_at,
            finished_at: started_at + chrono::Duration::from_std(duration).unwrap_or_default(),
            duration_ms: duration.as_secs_f64() * 1000.0,
            passed,
            interrupted,
            exit_code,
            rto_ms,
            rto_split,
            rpo_ms,
            marks: timeline.marks,
            objectives,
            steps,
            rollback,
            failure,
            latency,
            counts,
            baseline,
        }
    }
}
