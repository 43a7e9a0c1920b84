//! `report.md`: summary, objectives, the failure (if any) and the timeline.

use std::fmt::Write;

use super::DrillReport;
use crate::drill::timeline::{StepRecord, StepStatus};
use crate::duration::{format_ms, format_utc};

/// `report.md`.
pub struct Markdown;

impl super::ReportWriter for Markdown {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, report: &DrillReport) -> std::io::Result<String> {
        Ok(render(report))
    }
}

pub fn render(report: &DrillReport) -> String {
    let mut md = String::new();
    let verdict = report.verdict();
    let _ = writeln!(md, "# Recovery drill: {} — {verdict}\n", report.scenario);
    if let Some(description) = &report.description {
        let _ = writeln!(md, "{description}\n");
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Started | {} |", format_utc(report.started_at));
    let _ = writeln!(md, "| Duration | {} |", format_ms(report.duration_ms));
    let _ = writeln!(
        md,
        "| Target | {} `{}` |",
        report.target.kind, report.target.url
    );
    if let Some(service) = &report.target.service {
        let _ = writeln!(md, "| Service | `{service}` |");
    }
    let rto = report
        .rto_ms
        .map(format_ms)
        .unwrap_or_else(|| "not measured".into());
    let split = report
        .rto_split
        .map(|s| {
            format!(
                " (platform {}, health and verification {})",
                format_ms(s.platform_ms),
                format_ms(s.verification_ms)
            )
        })
        .unwrap_or_default();
    let _ = writeln!(md, "| Recovery time (RTO) | {rto}{split} |");
    let _ = writeln!(md, "| Scenario file | `{}` |", report.scenario_file);
    let _ = writeln!(md, "| vecdrill | {} |\n", report.vecdrill_version);

    if let Some(failure) = &report.failure {
        let _ = writeln!(
            md,
            "## Failure\n\nStep `{}` ({}) failed: {}\n",
            failure.step, failure.kind, failure.reason
        );
    }

    let _ = writeln!(md, "## Objectives\n");
    if report.objectives.is_empty() {
        let _ = writeln!(md, "No objectives were written for this scenario.\n");
    } else {
        let _ = writeln!(
            md,
            "| Objective | Target | Measured | Baseline (change) | Result | Detail |\n|---|---|---|---|---|---|"
        );
        for o in &report.objectives {
            let result = match o.verdict() {
                "met" => "✅ met",
                "skipped" => "➖ skipped",
                _ => "❌ missed",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {result} | {} |",
                o.name,
                o.target,
                o.measured.as_deref().unwrap_or("—"),
                o.against_baseline(),
                o.detail
            );
        }
        md.push('\n');
        if let Some(baseline) = &report.baseline {
            let _ = writeln!(
                md,
                "Baseline: run `{}` of {}, set {}.\n",
                baseline.run_id,
                baseline.run_started_at.format("%Y-%m-%d %H:%M UTC"),
                baseline.set_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    if !report.counts.is_empty() {
        let _ = writeln!(md, "## Collections\n");
        let _ = writeln!(
            md,
            "| Collection | Records | Baseline | Change |\n|---|---|---|---|"
        );
        for line in report.counts_against_baseline() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                line.name, line.count, line.baseline, line.difference
            );
        }
        md.push('\n');
    }

    if let Some(latency) = &report.latency {
        let _ = writeln!(md, "## Search latency\n");
        let _ = writeln!(md, "{}\n", latency.sentence());
    }

    let _ = writeln!(md, "## Timeline\n");
    timeline_table(&mut md, &report.steps, report);
    if !report.rollback.is_empty() {
        let _ = writeln!(md, "\n### Rollback\n");
        timeline_table(&mut md, &report.rollback, report);
    }
    md
}

fn timeline_table(md: &mut String, steps: &[StepRecord], report: &DrillReport) {
    let _ = writeln!(
        md,
        "| # | Step | Kind | Status | At (+s) | Duration | Note |\n|---|---|---|---|---|---|---|"
    );
    for (i, step) in steps.iter().enumerate() {
        let at = step
            .started_at
            .map(|t| {
                format!(
                    "+{:.1}",
                    (t - report.started_at).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "—".into());
        let mark = step
            .mark
            .map(|m| {
                format!(
                    "**{}** ",
                    serde_json::to_string(&m)
                        .unwrap_or_default()
                        .trim_matches('"')
                )
            })
            .unwrap_or_default();
        let note = step
            .error
            .clone()
            .unwrap_or_default()
            .replace('|', "\\|")
            .replace('\n', " ");
        let _ = writeln!(
            md,
            "| {} | {mark}{} | {} | {} | {at} | {} | {note} |",
            i + 1,
            step.id,
            step.kind,
            status_label(step.status),
            format_ms(step.duration_ms)
        );
    }
}

pub fn status_label(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "FAILED",
        StepStatus::FailedIgnored => "failed (ignored)",
        StepStatus::Skipped => "skipped",
        StepStatus::Interrupted => "interrupted",
    }
}
