//! The record of a run as it happens: each step's outcome and the `disaster` / `recovered`
//! marks that RTO is measured between.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::scenario::Mark;
use crate::steps::Outputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// Failed, but `continue_on_error: true` let the run go on.
    FailedIgnored,
    /// Not run because an earlier step failed or the run was interrupted.
    Skipped,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Steps,
    Rollback,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: &'static crate::steps::StepKind,
    pub phase: Phase,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: f64,
    pub attempts: u32,
    pub error: Option<String>,
    pub mark: Option<Mark>,
    pub outputs: Outputs,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MarkRecord {
    pub mark: Mark,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub steps: Vec<StepRecord>,
    pub marks: Vec<MarkRecord>,
}

impl Timeline {
    pub fn mark(&mut self, mark: Mark, at: DateTime<Utc>) {
        self.marks.push(MarkRecord { mark, at });
    }

    pub fn mark_time(&self, mark: Mark) -> Option<DateTime<Utc>> {
        self.marks.iter().find(|m| m.mark == mark).map(|m| m.at)
    }

    /// The first step that failed the run (ignored failures do not count).
    pub fn first_failure(&self) -> Option<&StepRecord> {
        self.steps.iter().find(|s| {
            s.phase == Phase::Steps
                && matches!(s.status, StepStatus::Failed | StepStatus::Interrupted)
        })
    }

    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps
            .iter()
            .find(|s| s.id == id && s.phase == Phase::Steps)
    }
}
