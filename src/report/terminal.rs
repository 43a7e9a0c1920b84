//! The terminal summary after a run: objectives and steps as tables (stderr; stdout is for
//! `--json`).

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::markdown::status_label;
use super::DrillReport;
use crate::duration::format_ms;

#[derive(Tabled)]
struct ObjectiveRow {
    objective: String,
    target: String,
    measured: String,
    baseline: String,
    result: &'static str,
    detail: String,
}

#[derive(Tabled)]
struct StepRow {
    step: String,
    kind: String,
    status: &'static str,
    duration: String,
    attempts: u32,
}

pub fn render(report: &DrillReport) -> String {
    let mut out = String::new();
    let steps: Vec<StepRow> = report
        .steps
        .iter()
        .chain(&report.rollback)
        .map(|s| StepRow {
            step: match s.phase {
                crate::drill::timeline::Phase::Rollback => format!("(rollback) {}", s.id),
                _ => s.id.clone(),
            },
            kind: s.kind.to_string(),
            status: status_label(s.status),
            duration: format_ms(s.duration_ms),
            attempts: s.attempts,
        })
        .collect();
    out.push_str(&Table::new(steps).with(Style::rounded()).to_string());
    out.push('\n');
    if !report.objectives.is_empty() {
        let rows: Vec<ObjectiveRow> = report
            .objectives
            .iter()
            .map(|o| ObjectiveRow {
                objective: o.name.clone(),
                target: o.target.clone(),
                measured: o.measured.clone().unwrap_or_else(|| "—".into()),
                baseline: o.against_baseline(),
                result: o.verdict(),
                detail: o.detail.clone(),
            })
            .collect();
        out.push_str(&Table::new(rows).with(Style::rounded()).to_string());
        out.push('\n');
    }
    if let Some(failure) = &report.failure {
        out.push_str(&format!(
            "failed at step {:?} ({}): {}\n",
            failure.step, failure.kind, failure.reason
        ));
    }
    let verdict = match report.verdict() {
        "INTERRUPTED" => "INTERRUPTED (rollback ran)",
        other => other,
    };
    let rto = report
        .rto_ms
        .map(|ms| format!(", RTO {}", format_ms(ms)))
        .unwrap_or_default();
    out.push_str(&format!(
        "{verdict}: {}{rto}; report in {}\n",
        report.scenario, report.run_dir
    ));
    out
}
