//! Live lines on stderr while a drill runs: one when a step starts, one when it ends.

use std::path::Path;

use vecdrill::drill::timeline::{Phase, StepRecord, StepStatus};
use vecdrill::drill::DrillObserver;
use vecdrill::duration::format_duration;
use vecdrill::scenario::{Scenario, StepSpec};

pub struct LiveLines;

impl DrillObserver for LiveLines {
    fn run_started(&self, scenario: &Scenario, run_dir: &Path) {
        eprintln!(
            "drill {:?}: {} steps; report in {}",
            scenario.name,
            scenario.steps.len(),
            run_dir.display()
        );
    }

    fn step_started(&self, phase: Phase, index: usize, total: usize, spec: &StepSpec) {
        let phase = if phase == Phase::Rollback {
            "rollback "
        } else {
            ""
        };
        eprintln!(
            "  {phase}[{}/{total}] {} ({}) ...",
            index + 1,
            spec.id,
            spec.kind.name
        );
    }

    fn step_retrying(&self, spec: &StepSpec, attempt: u32, error: &str) {
        eprintln!(
            "      attempt {attempt} of {} failed: {error}; retrying",
            spec.id
        );
    }

    fn step_finished(&self, record: &StepRecord) {
        let took = format_duration(std::time::Duration::from_secs_f64(
            record.duration_ms / 1000.0,
        ));
        match record.status {
            StepStatus::Passed => eprintln!("      ok {} in {took}", record.id),
            StepStatus::Skipped => eprintln!("      skipped {}", record.id),
            _ => eprintln!(
                "      {} {} after {took}: {}",
                vecdrill::report::markdown::status_label(record.status),
                record.id,
                record.error.as_deref().unwrap_or("")
            ),
        }
    }
}
