//! The page: its head and its sections (summary, objectives, counts, charts, steps).

use super::*;

/// Nothing may be loaded: not a font, an image or a style sheet. Inline styles are the only
/// thing the page needs.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

pub(super) fn head(html: &mut String, report: &DrillReport) {
    let verdict = report.verdict();
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
    let _ = writeln!(
        html,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\" />"
    );
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n");
    let _ = writeln!(
        html,
        "<title>Recovery drill: {} ({verdict})</title>",
        escape(&report.scenario)
    );
    let _ = writeln!(html, "<style>\n{STYLE}</style>\n</head>");
}

pub(super) fn summary(html: &mut String, report: &DrillReport) {
    let verdict = report.verdict();
    let class = verdict.to_ascii_lowercase();
    html.push_str("<section id=\"summary\">\n");
    let _ = writeln!(
        html,
        "<h1><span class=\"verdict {class}\">{verdict}</span>Recovery drill: {}</h1>",
        escape(&report.scenario)
    );
    if let Some(description) = &report.description {
        let _ = writeln!(html, "<p class=\"description\">{}</p>", escape(description));
    }
    html.push_str("<dl class=\"facts\">\n");
    fact(html, "Scenario", &report.scenario);
    fact(
        html,
        "Target",
        &format!("{} {}", report.target.kind, report.target.url),
    );
    if let Some(service) = &report.target.service {
        fact(html, "Service", service);
    }
    fact(html, "Started", &format_utc(report.started_at));
    fact(html, "Duration", &format_ms(report.duration_ms));
    fact(html, "Recovery time (RTO)", &rto(report));
    fact(
        html,
        "Recovery point (RPO)",
        &report
            .rpo_ms
            .map(format_ms)
            .unwrap_or_else(|| "not measured".into()),
    );
    fact(html, "Run", &report.run_id);
    fact(html, "Host", &report.host);
    fact(html, "Scenario file", &report.scenario_file);
    fact(html, "vecdrill", &report.vecdrill_version);
    html.push_str("</dl>\n");
    if let Some(failure) = &report.failure {
        let _ = writeln!(
            html,
            "<div class=\"failure\"><h2>Failure</h2><p>Step <code>{}</code> ({}) failed: {}</p></div>",
            escape(&failure.step),
            escape(failure.kind.name),
            escape(&failure.reason)
        );
    }
    html.push_str("</section>\n");
}

pub(crate) fn fact(html: &mut String, term: &str, value: &str) {
    let _ = writeln!(html, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(value));
}

pub(super) fn rto(report: &DrillReport) -> String {
    let Some(rto) = report.rto_ms else {
        return "not measured".into();
    };
    match report.rto_split {
        Some(split) => format!(
            "{} (platform {}, health and verification {})",
            format_ms(rto),
            format_ms(split.platform_ms),
            format_ms(split.verification_ms)
        ),
        None => format_ms(rto),
    }
}

pub(super) fn objectives(html: &mut String, report: &DrillReport) {
    html.push_str("<section>\n<h2>Objectives</h2>\n");
    if let Some(baseline) = &report.baseline {
        let _ = writeln!(
            html,
            "<p class=\"baseline\">Baseline: run <code>{}</code> of {}, set {}.</p>",
            escape(&baseline.run_id),
            format_utc(baseline.run_started_at),
            format_utc(baseline.set_at)
        );
    }
    let mut rows: Vec<Row> = report.objectives.iter().map(objective_row).collect();
    if rows.is_empty() {
        rows.push(Row::Note("No objectives were written for this scenario."));
    }
    let columns = [
        Column::text("Objective"),
        Column::text("Target"),
        Column::figure("Measured"),
        Column::figure("Baseline"),
        Column::figure("Change"),
        Column::text("Result"),
        Column::text("Detail"),
    ];
    table(html, "objectives", &columns, &rows);
    html.push_str("</section>\n");
}

pub(super) fn objective_row(o: &ObjectiveResult) -> Row {
    let verdict = o.verdict();
    let class = match verdict {
        "met" => "r-met",
        "skipped" => "r-skipped",
        _ => "r-missed",
    };
    Row::Cells(vec![
        Cell::text(&o.name),
        Cell::text(&o.target),
        Cell::text(o.measured.as_deref().unwrap_or("—")),
        Cell::text(
            o.baseline_value
                .map(|b| o.format_value(b))
                .unwrap_or_else(|| "—".into()),
        ),
        Cell::text(
            o.change_pct
                .map(format_change)
                .unwrap_or_else(|| "—".into()),
        ),
        Cell::with_class(verdict, class),
        Cell::with_class(&o.detail, "detail"),
    ])
}

pub(super) fn counts(html: &mut String, report: &DrillReport) {
    if report.counts.is_empty() {
        return;
    }
    html.push_str("<section>\n<h2>Collections</h2>\n");
    let rows: Vec<Row> = report
        .counts_against_baseline()
        .into_iter()
        .map(|line| {
            Row::Cells(vec![
                Cell::text(line.name),
                Cell::text(line.count.to_string()),
                Cell::text(line.baseline),
                Cell::text(line.difference),
            ])
        })
        .collect();
    let columns = [
        Column::text("Collection"),
        Column::figure("Records"),
        Column::figure("Baseline"),
        Column::figure("Change"),
    ];
    table(html, "counts", &columns, &rows);
    html.push_str("</section>\n");
}

pub(super) fn timeline(html: &mut String, report: &DrillReport) {
    html.push_str("<section>\n<h2>Timeline</h2>\n");
    html.push_str(&timeline_svg(report));
    html.push_str("</section>\n");
}

pub(super) fn latency(html: &mut String, report: &DrillReport) {
    html.push_str("<section>\n<h2>Search latency</h2>\n");
    match &report.latency {
        None => {
            html.push_str("<p class=\"note\">No search latency was measured in this run.</p>\n")
        }
        Some(latency) => {
            let _ = writeln!(html, "<p>{}</p>", escape(&latency.sentence()));
            if latency.distribution.is_empty() {
                html.push_str(
                    "<p class=\"note\">The latency step recorded no distribution, so there is no chart.</p>\n",
                );
            } else {
                // Each latency objective the run evaluated, at its limit.
                let objectives: Vec<(&str, f64)> = report
                    .objectives
                    .iter()
                    .filter(|o| !o.skipped && o.target_value > 0.0)
                    .filter_map(|o| Some((o.name.strip_prefix("search_")?, o.target_value)))
                    .collect();
                html.push_str(&latency_svg(latency, report.baseline.as_ref(), &objectives));
            }
        }
    }
    html.push_str("</section>\n");
}

pub(super) fn steps(html: &mut String, report: &DrillReport) {
    html.push_str("<section>\n<h2>Steps</h2>\n");
    let mut rows: Vec<Row> = report
        .steps
        .iter()
        .map(|s| step_row(s, report.started_at))
        .collect();
    if !report.rollback.is_empty() {
        rows.push(Row::Group("Rollback"));
        rows.extend(
            report
                .rollback
                .iter()
                .map(|s| step_row(s, report.started_at)),
        );
    }
    let columns = [
        Column::text("Step"),
        Column::text("Kind"),
        Column::text("Status"),
        Column::figure("Started"),
        Column::figure("Duration"),
        Column::figure("Attempts"),
        Column::text("Error"),
    ];
    table(html, "steps", &columns, &rows);
    html.push_str("</section>\n");
}

pub(super) fn step_row(step: &StepRecord, run_started: DateTime<Utc>) -> Row {
    let started = step
        .started_at
        .map(|at| format!("+{}", format_ms(offset_ms(run_started, at))))
        .unwrap_or_else(|| "—".into());
    Row::Cells(vec![
        Cell::text(&step.id),
        Cell::text(step.kind.name),
        Cell::with_class(status_label(step.status), status_class(step.status)),
        Cell::text(started),
        Cell::text(format_ms(step.duration_ms)),
        Cell::text(step.attempts.to_string()),
        Cell::with_class(step.error.as_deref().unwrap_or(""), "error"),
    ])
}
