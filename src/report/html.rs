//! `report.html`: the page a team shares after a monthly drill. One self-contained file: an
//! inline style sheet, inline SVG charts, no script, and a Content-Security-Policy that lets the
//! page load nothing at all, so it reads the same offline, as a mail attachment or in a ticket
//! years later, and a report can never make a reader's browser call out.
//!
//! Every string that comes from the report (scenario names, errors, URLs) goes through
//! [`escape`]; the markup around them is written here and only here.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::markdown::status_label;
use super::DrillReport;
use crate::drill::baseline::Baseline;
use crate::drill::objectives::ObjectiveResult;
use crate::drill::timeline::{Phase, StepRecord, StepStatus};
use crate::duration::{format_ms, format_utc};
use crate::latency::{format_latency, LatencyPoint, LatencySummary};
use crate::percent::format_change;
use crate::scenario::Mark;

pub fn render(report: &DrillReport) -> String {
    let mut html = String::with_capacity(32 * 1024);
    head(&mut html, report);
    html.push_str("<body>\n<main>\n");
    summary(&mut html, report);
    objectives(&mut html, report);
    counts(&mut html, report);
    timeline(&mut html, report);
    latency(&mut html, report);
    steps(&mut html, report);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// Text made safe for HTML and XML, in element content and in quoted attributes. C0 control
/// characters (a shell step's error can carry ANSI colour codes) are not allowed in XML and
/// become U+FFFD, so the inline SVG stays well-formed.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sections

const STYLE: &str = r#"
:root { --ok: #1b7f3b; --bad: #c62828; --warn: #b26a00; --int: #6a1b9a; --muted: #5f6b7a;
  --line: #d8dee4; --ink: #1f2328; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff;
  font-weight: 700; letter-spacing: .04em; margin-right: 8px; }
.verdict.passed { background: var(--ok); }
.verdict.failed { background: var(--bad); }
.verdict.interrupted { background: var(--int); }
.description { color: var(--muted); max-width: 80ch; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.failure { border-left: 4px solid var(--bad); background: #fdecea; padding: 8px 12px; margin: 12px 0; }
.failure h2 { border: 0; margin: 0 0 4px; }
.note { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
table#counts { width: auto; min-width: 50%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: #f6f8fa; }
tr.group th { background: #fff8e1; font-weight: 600; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.error, td.detail { overflow-wrap: anywhere; }
td.r-met, td.s-passed { color: var(--ok); font-weight: 600; }
td.r-missed, td.s-failed, td.s-interrupted { color: var(--bad); font-weight: 600; }
td.r-skipped, td.s-skipped { color: var(--muted); }
td.s-ignored { color: var(--warn); font-weight: 600; }
svg { display: block; width: 100%; height: auto; margin: 8px 0; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
svg .stripe { fill: #f6f8fa; }
svg .band { fill: #fff8e1; }
svg .grid { stroke: #e5e9ee; stroke-width: 1; }
svg .axis { stroke: #8c959f; stroke-width: 1; }
svg text.tick, svg text.dim { fill: var(--muted); }
svg .bar { stroke: none; }
svg .s-passed { fill: var(--ok); }
svg .s-failed { fill: var(--bad); }
svg .s-ignored { fill: var(--warn); }
svg .s-skipped { fill: #9aa4ae; }
svg .s-interrupted { fill: var(--int); }
svg .rollback { fill-opacity: .5; stroke: #37474f; stroke-width: 1; stroke-dasharray: 3 2; }
svg text.rollback-label { font-style: italic; fill: #37474f; stroke: none; fill-opacity: 1; }
svg .mark { stroke: #111; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg text.mark-label { font-weight: 700; }
svg .curve { fill: none; stroke: #1f6feb; stroke-width: 2; }
svg .point { fill: #1f6feb; }
svg .callout { fill: #fff; stroke: #1f6feb; stroke-width: 2; }
svg text.callout-label { font-weight: 700; fill: #0b3d91; }
svg .baseline { stroke: #b26a00; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg text.baseline-label { fill: #8a5300; }
@media print { main { padding: 0; } h2 { break-after: avoid; } svg, table { break-inside: avoid; } }
"#;

/// Nothing may be loaded: not a font, an image or a style sheet. Inline styles are the only
/// thing the page needs.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

fn head(html: &mut String, report: &DrillReport) {
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
    let _ = writeln!(html, "<style>{STYLE}</style>\n</head>");
}

fn summary(html: &mut String, report: &DrillReport) {
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
            escape(&failure.kind),
            escape(&failure.reason)
        );
    }
    html.push_str("</section>\n");
}

fn fact(html: &mut String, term: &str, value: &str) {
    let _ = writeln!(html, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(value));
}

fn rto(report: &DrillReport) -> String {
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

fn objectives(html: &mut String, report: &DrillReport) {
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

fn objective_row(o: &ObjectiveResult) -> Row {
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

fn counts(html: &mut String, report: &DrillReport) {
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
        Column::figure("Difference"),
    ];
    table(html, "counts", &columns, &rows);
    html.push_str("</section>\n");
}

fn timeline(html: &mut String, report: &DrillReport) {
    html.push_str("<section>\n<h2>Timeline</h2>\n");
    html.push_str(&timeline_svg(report));
    html.push_str("</section>\n");
}

fn latency(html: &mut String, report: &DrillReport) {
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
                html.push_str(&latency_svg(latency, report.baseline.as_ref()));
            }
        }
    }
    html.push_str("</section>\n");
}

fn steps(html: &mut String, report: &DrillReport) {
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

fn step_row(step: &StepRecord, run_started: DateTime<Utc>) -> Row {
    let started = step
        .started_at
        .map(|at| format!("+{}", format_ms(offset_ms(run_started, at))))
        .unwrap_or_else(|| "—".into());
    Row::Cells(vec![
        Cell::text(&step.id),
        Cell::text(&step.kind),
        Cell::with_class(status_label(step.status), status_class(step.status)),
        Cell::text(started),
        Cell::text(format_ms(step.duration_ms)),
        Cell::text(step.attempts.to_string()),
        Cell::with_class(step.error.as_deref().unwrap_or(""), "error"),
    ])
}

// ---------------------------------------------------------------------------------------------
// Tables

/// A table cell: text, escaped when written, and an optional CSS class.
struct Cell {
    text: String,
    class: Option<&'static str>,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            class: None,
        }
    }

    fn with_class(text: impl Into<String>, class: &'static str) -> Self {
        Self {
            text: text.into(),
            class: Some(class),
        }
    }
}

/// A table column: its heading, and whether it holds figures (aligned right).
struct Column {
    title: &'static str,
    figure: bool,
}

impl Column {
    fn text(title: &'static str) -> Self {
        Self {
            title,
            figure: false,
        }
    }

    fn figure(title: &'static str) -> Self {
        Self {
            title,
            figure: true,
        }
    }

    /// The class of this column's cells, with the cell's own class if it has one.
    fn class(&self, cell: Option<&str>) -> Option<String> {
        match (self.figure, cell) {
            (true, Some(class)) => Some(format!("num {class}")),
            (true, None) => Some("num".to_string()),
            (false, class) => class.map(str::to_string),
        }
    }
}

enum Row {
    Cells(Vec<Cell>),
    /// A heading across the table that starts a group of rows.
    Group(&'static str),
    /// A sentence across the table, in place of rows.
    Note(&'static str),
}

fn table(html: &mut String, id: &str, columns: &[Column], rows: &[Row]) {
    let _ = write!(html, "<table id=\"{id}\">\n<thead><tr>");
    for column in columns {
        cell(html, "th", column.class(None).as_deref(), column.title);
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let span = columns.len();
    for row in rows {
        match row {
            Row::Cells(cells) => {
                html.push_str("<tr>");
                for (column, c) in columns.iter().zip(cells) {
                    cell(html, "td", column.class(c.class).as_deref(), &c.text);
                }
                html.push_str("</tr>\n");
            }
            Row::Group(title) => {
                let _ = writeln!(
                    html,
                    "<tr class=\"group\"><th colspan=\"{span}\">{}</th></tr>",
                    escape(title)
                );
            }
            Row::Note(text) => {
                let _ = writeln!(
                    html,
                    "<tr><td class=\"note\" colspan=\"{span}\">{}</td></tr>",
                    escape(text)
                );
            }
        }
    }
    html.push_str("</tbody>\n</table>\n");
}

/// One `<td>` or `<th>`; `class` comes from this file, `text` from anywhere.
fn cell(html: &mut String, tag: &str, class: Option<&str>, text: &str) {
    match class {
        Some(class) => {
            let _ = write!(html, "<{tag} class=\"{class}\">{}</{tag}>", escape(text));
        }
        None => {
            let _ = write!(html, "<{tag}>{}</{tag}>", escape(text));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The timeline chart: a Gantt of the steps that started, with the disaster/recovered marks.

const TIMELINE_WIDTH: f64 = 960.0;
/// The step-name column on the left.
const LABEL_WIDTH: f64 = 190.0;
const RIGHT_PAD: f64 = 24.0;
/// Room above the rows for the mark labels.
const TOP: f64 = 26.0;
const ROW_HEIGHT: f64 = 22.0;
const BAR_HEIGHT: f64 = 14.0;
const AXIS_HEIGHT: f64 = 28.0;
const LEGEND_HEIGHT: f64 = 22.0;
/// Step ids longer than this are cut in the label column; the tooltip has them whole.
const LABEL_CHARS: usize = 28;
/// A zero-length step still shows as a sliver.
const MIN_BAR_WIDTH: f64 = 2.0;

struct GanttRow<'a> {
    step: &'a StepRecord,
    offset_ms: f64,
}

fn timeline_svg(report: &DrillReport) -> String {
    let rows: Vec<GanttRow> = report
        .steps
        .iter()
        .chain(&report.rollback)
        .filter_map(|step| {
            step.started_at.map(|at| GanttRow {
                step,
                offset_ms: offset_ms(report.started_at, at),
            })
        })
        .collect();
    let marks: Vec<(Mark, f64)> = report
        .marks
        .iter()
        .map(|m| (m.mark, offset_ms(report.started_at, m.at)))
        .collect();
    let span_ms = rows
        .iter()
        .map(|r| r.offset_ms + r.step.duration_ms.max(0.0))
        .chain(marks.iter().map(|(_, at)| *at))
        .fold(report.duration_ms, f64::max)
        .max(1.0);

    let rows_bottom = TOP + rows.len().max(1) as f64 * ROW_HEIGHT;
    let height = rows_bottom + AXIS_HEIGHT + LEGEND_HEIGHT;
    let x = Scale::new((0.0, span_ms), (LABEL_WIDTH, TIMELINE_WIDTH - RIGHT_PAD));
    let mut svg = Svg::open(
        "timeline",
        TIMELINE_WIDTH,
        height,
        "Timeline of the drill's steps",
    );
    row_backgrounds(&mut svg, &rows);
    time_axis(&mut svg, x, rows_bottom);
    if rows.is_empty() {
        svg.text(
            LABEL_WIDTH,
            TOP + ROW_HEIGHT * 0.7,
            Anchor::Start,
            "dim",
            "No step started.",
        );
    }
    for (i, row) in rows.iter().enumerate() {
        gantt_row(&mut svg, x, i, row);
    }
    for (mark, at) in &marks {
        mark_line(&mut svg, x.at(*at), rows_bottom, *mark);
    }
    legend(&mut svg, rows_bottom + AXIS_HEIGHT);
    svg.finish()
}

/// Vertical grid lines with time labels under the rows.
fn time_axis(svg: &mut Svg, x: Scale, rows_bottom: f64) {
    svg.line(x.r0, rows_bottom, x.r1, rows_bottom, "axis");
    for tick in ticks(x.d1, time_step_ms(x.d1)) {
        let at = x.at(tick);
        svg.line(at, TOP, at, rows_bottom, "grid");
        svg.line(at, rows_bottom, at, rows_bottom + 4.0, "axis");
        let label = if tick == 0.0 {
            "0".to_string()
        } else {
            format_ms(tick)
        };
        svg.text(at, rows_bottom + 16.0, Anchor::Middle, "tick", &label);
    }
}

/// Every other row striped, to follow a bar to its name across 30 rows; the rollback rows
/// tinted, so they read as apart from the drill itself.
fn row_backgrounds(svg: &mut Svg, rows: &[GanttRow]) {
    for (i, row) in rows.iter().enumerate() {
        let class = match row.step.phase {
            Phase::Rollback => "band",
            Phase::Steps if i % 2 == 1 => "stripe",
            Phase::Steps => continue,
        };
        svg.rect(
            0.0,
            TOP + i as f64 * ROW_HEIGHT,
            TIMELINE_WIDTH,
            ROW_HEIGHT,
            class,
        );
    }
}

fn gantt_row(svg: &mut Svg, x: Scale, index: usize, row: &GanttRow) {
    let step = row.step;
    let rollback = step.phase == Phase::Rollback;
    let top = TOP + index as f64 * ROW_HEIGHT;
    svg.open_group("step", Some(&step_tooltip(row)));
    let label = if rollback {
        format!("↺ {}", truncate(&step.id, LABEL_CHARS - 2))
    } else {
        truncate(&step.id, LABEL_CHARS)
    };
    let label_class = if rollback { "rollback-label" } else { "" };
    svg.text(
        8.0,
        top + ROW_HEIGHT * 0.68,
        Anchor::Start,
        label_class,
        &label,
    );
    let start = x.at(row.offset_ms);
    let end = x.at(row.offset_ms + step.duration_ms.max(0.0));
    let width = (end - start).max(MIN_BAR_WIDTH);
    let class = if rollback {
        format!("bar {} rollback", status_class(step.status))
    } else {
        format!("bar {}", status_class(step.status))
    };
    svg.rect(
        start,
        top + (ROW_HEIGHT - BAR_HEIGHT) / 2.0,
        width,
        BAR_HEIGHT,
        &class,
    );
    svg.close_group();
}

fn step_tooltip(row: &GanttRow) -> String {
    let step = row.step;
    let mut tip = format!(
        "{} ({}): {}, {} from +{}",
        step.id,
        step.kind,
        status_label(step.status),
        format_ms(step.duration_ms),
        format_ms(row.offset_ms)
    );
    if step.phase == Phase::Rollback {
        tip.push_str(", rollback");
    }
    if step.attempts > 1 {
        let _ = write!(tip, ", {} attempts", step.attempts);
    }
    if let Some(error) = &step.error {
        let _ = write!(tip, "\nerror: {error}");
    }
    tip
}

/// A dashed vertical line with the mark's name on top. `disaster` is labelled on the left of
/// its line and `recovered` on the right, so the two labels never overlap, however short
/// the recovery.
fn mark_line(svg: &mut Svg, at: f64, rows_bottom: f64, mark: Mark) {
    let name = mark_name(mark);
    let (anchor, dx) = match mark {
        Mark::Disaster => (Anchor::End, -4.0),
        Mark::Recovered => (Anchor::Start, 4.0),
    };
    svg.open_group("mark-group", Some(name));
    svg.line(at, TOP - 12.0, at, rows_bottom, "mark");
    svg.text(at + dx, TOP - 8.0, anchor, "mark-label", name);
    svg.close_group();
}

fn legend(svg: &mut Svg, top: f64) {
    let entries = [
        ("bar s-passed", "passed"),
        ("bar s-failed", "failed"),
        ("bar s-ignored", "failed (ignored)"),
        ("bar s-interrupted", "interrupted"),
        ("bar s-skipped", "skipped"),
        ("bar s-passed rollback", "rollback"),
    ];
    let mut left = LABEL_WIDTH;
    for (class, label) in entries {
        svg.rect(left, top + 6.0, 12.0, 10.0, class);
        svg.text(left + 16.0, top + 15.0, Anchor::Start, "dim", label);
        left += 28.0 + label.len() as f64 * 6.5;
    }
}

fn mark_name(mark: Mark) -> &'static str {
    match mark {
        Mark::Disaster => "disaster",
        Mark::Recovered => "recovered",
    }
}

fn status_class(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "s-passed",
        StepStatus::Failed => "s-failed",
        StepStatus::FailedIgnored => "s-ignored",
        StepStatus::Skipped => "s-skipped",
        StepStatus::Interrupted => "s-interrupted",
    }
}

/// Time tick spacing in milliseconds: a round duration giving at most about six ticks.
fn time_step_ms(span_ms: f64) -> f64 {
    const STEPS_MS: &[f64] = &[
        1.0,
        2.0,
        5.0,
        10.0,
        20.0,
        50.0,
        100.0,
        200.0,
        500.0,
        1_000.0,
        2_000.0,
        5_000.0,
        10_000.0,
        15_000.0,
        30_000.0,
        60_000.0,
        120_000.0,
        300_000.0,
        600_000.0,
        900_000.0,
        1_800_000.0,
        3_600_000.0,
        7_200_000.0,
        21_600_000.0,
        43_200_000.0,
        86_400_000.0,
    ];
    let wanted = span_ms / 6.0;
    STEPS_MS
        .iter()
        .copied()
        .find(|step| *step >= wanted)
        .unwrap_or_else(|| nice_step(span_ms, 6))
}

// ---------------------------------------------------------------------------------------------
// The latency chart: milliseconds against percentile on a "nines" scale.

const LATENCY_WIDTH: f64 = 960.0;
const LATENCY_HEIGHT: f64 = 320.0;
const PLOT_LEFT: f64 = 70.0;
/// Room on the right for the baseline labels.
const PLOT_RIGHT: f64 = LATENCY_WIDTH - 160.0;
const PLOT_TOP: f64 = 16.0;
const PLOT_BOTTOM: f64 = LATENCY_HEIGHT - 44.0;
/// Baseline labels closer than this are pushed apart.
const LABEL_GAP: f64 = 13.0;

/// Percentiles on a "nines" scale (p90 at 1, p99 at 2, p99.9 at 3), so the tail, where
/// regressions show first, gets as much room as the body. p100 (the maximum) has no finite
/// position and sits half a nine past the last tick.
struct NinesAxis {
    last: f64,
    max_at: f64,
}

impl NinesAxis {
    fn new(points: &[LatencyPoint]) -> Self {
        let last = points
            .iter()
            .filter(|p| p.percentile < 100.0)
            .map(|p| nines(p.percentile))
            .fold(2.0, f64::max);
        Self {
            last,
            max_at: last + 0.5,
        }
    }

    fn position(&self, percentile: f64) -> f64 {
        if percentile >= 100.0 {
            self.max_at
        } else {
            nines(percentile).min(self.last)
        }
    }

    fn ticks(&self, with_max: bool) -> Vec<(f64, String)> {
        let mut ticks: Vec<(f64, String)> = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999]
            .into_iter()
            .filter(|p| nines(*p) <= self.last + 1e-9)
            .map(|p| (nines(p), format!("p{p}")))
            .collect();
        if with_max {
            ticks.push((self.max_at, "max".to_string()));
        }
        ticks
    }
}

fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile.clamp(0.0, 99.9999) / 100.0).log10()
}

fn latency_svg(latency: &LatencySummary, baseline: Option<&Baseline>) -> String {
    let mut points = latency.distribution.clone();
    points.sort_by(|a, b| a.percentile.total_cmp(&b.percentile));
    let axis = NinesAxis::new(&points);
    let callouts = [
        ("p50", 50.0, latency.p50_ms),
        ("p90", 90.0, latency.p90_ms),
        ("p99", 99.0, latency.p99_ms),
    ];
    let baselines: Vec<(&str, f64)> = ["p50", "p90", "p99"]
        .into_iter()
        .filter_map(|p| Some((p, baseline?.percentile_ms(p)?)))
        .collect();
    let top_ms = points
        .iter()
        .map(|p| p.ms)
        .chain(callouts.iter().map(|c| c.2))
        .chain(baselines.iter().map(|b| b.1))
        .fold(0.0, f64::max)
        .max(0.001)
        * 1.05;
    let y_step = nice_step(top_ms, 5);
    let y_max = (top_ms / y_step).ceil() * y_step;
    let x = Scale::new((0.0, axis.max_at), (PLOT_LEFT, PLOT_RIGHT));
    let y = Scale::new((0.0, y_max), (PLOT_BOTTOM, PLOT_TOP));

    let mut svg = Svg::open(
        "latency",
        LATENCY_WIDTH,
        LATENCY_HEIGHT,
        "Search latency by percentile",
    );
    let with_max = points.iter().any(|p| p.percentile >= 100.0);
    percentile_axis(&mut svg, x, &axis.ticks(with_max));
    ms_axis(&mut svg, y, y_step);
    baseline_lines(&mut svg, y, &baselines);
    let coordinates: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (x.at(axis.position(p.percentile)), y.at(p.ms)))
        .collect();
    svg.polyline(&coordinates, "curve");
    for (point, (cx, cy)) in points.iter().zip(&coordinates) {
        let tip = format!("p{}: {}", point.percentile, format_latency(point.ms));
        svg.open_group("point-group", Some(&tip));
        svg.circle(*cx, *cy, 3.0, "point");
        svg.close_group();
    }
    for (name, percentile, value) in callouts {
        let (cx, cy) = (x.at(axis.position(percentile)), y.at(value));
        let label = format!("{name} {}", format_latency(value));
        svg.open_group("callout-group", Some(&label));
        svg.circle(cx, cy, 5.0, "callout");
        svg.text(cx - 8.0, cy - 8.0, Anchor::End, "callout-label", &label);
        svg.close_group();
    }
    svg.finish()
}

fn percentile_axis(svg: &mut Svg, x: Scale, ticks: &[(f64, String)]) {
    svg.line(x.r0, PLOT_BOTTOM, x.r1, PLOT_BOTTOM, "axis");
    for (at, label) in ticks {
        let px = x.at(*at);
        svg.line(px, PLOT_TOP, px, PLOT_BOTTOM, "grid");
        svg.text(px, PLOT_BOTTOM + 16.0, Anchor::Middle, "tick", label);
    }
    svg.text(
        (x.r0 + x.r1) / 2.0,
        PLOT_BOTTOM + 34.0,
        Anchor::Middle,
        "dim",
        "percentile",
    );
}

fn ms_axis(svg: &mut Svg, y: Scale, step: f64) {
    svg.line(PLOT_LEFT, y.r0, PLOT_LEFT, y.r1, "axis");
    for tick in ticks(y.d1, step) {
        let py = y.at(tick);
        svg.line(PLOT_LEFT, py, PLOT_RIGHT, py, "grid");
        svg.text(
            PLOT_LEFT - 6.0,
            py + 4.0,
            Anchor::End,
            "tick",
            &format_latency(tick),
        );
    }
}

/// Dashed horizontal lines at the baseline's percentiles, labelled in the right margin.
fn baseline_lines(svg: &mut Svg, y: Scale, baselines: &[(&str, f64)]) {
    let mut labels: Vec<(f64, String)> = Vec::new();
    for (name, value) in baselines {
        let py = y.at(*value);
        let label = format!("baseline {name} {}", format_latency(*value));
        svg.open_group("baseline-group", Some(&label));
        svg.line(PLOT_LEFT, py, PLOT_RIGHT, py, "baseline");
        svg.close_group();
        labels.push((py + 4.0, label));
    }
    // Lowest on screen first; each label at least LABEL_GAP above the one before.
    labels.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut floor = f64::INFINITY;
    for (py, label) in labels {
        let py = py.min(floor - LABEL_GAP);
        svg.text(
            PLOT_RIGHT + 6.0,
            py,
            Anchor::Start,
            "baseline-label",
            &label,
        );
        floor = py;
    }
}

// ---------------------------------------------------------------------------------------------
// SVG geometry

/// A linear map from a domain `d0..d1` to a range `r0..r1` of user units.
#[derive(Debug, Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    fn new((d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> Self {
        Self { d0, d1, r0, r1 }
    }

    fn at(&self, value: f64) -> f64 {
        let width = self.d1 - self.d0;
        if width <= 0.0 {
            return self.r0;
        }
        self.r0 + (value - self.d0) / width * (self.r1 - self.r0)
    }
}

/// 0, step, 2·step, … up to `max`.
fn ticks(max: f64, step: f64) -> Vec<f64> {
    if step <= 0.0 || !step.is_finite() {
        return vec![0.0];
    }
    let count = (max / step + 1e-9).floor() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A 1, 2 or 5 times a power of ten that cuts `span` into at most `count` pieces.
fn nice_step(span: f64, count: usize) -> f64 {
    let raw = span / count.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

#[derive(Debug, Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Middle => "middle",
            Self::End => "end",
        }
    }
}

/// An inline SVG being written: coordinates in user units, every text escaped.
struct Svg {
    out: String,
}

impl Svg {
    fn open(id: &str, width: f64, height: f64, label: &str) -> Self {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg id=\"{id}\" viewBox=\"0 0 {width} {height:.0}\" width=\"{width}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">",
            escape(label)
        );
        Self { out }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// A `<g>`; its `<title>` is the tooltip of everything in it.
    fn open_group(&mut self, class: &str, title: Option<&str>) {
        let _ = write!(self.out, "<g class=\"{class}\">");
        if let Some(title) = title {
            let _ = write!(self.out, "<title>{}</title>", escape(title));
        }
    }

    fn close_group(&mut self) {
        self.out.push_str("</g>\n");
    }

    fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" />"
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<line class=\"{class}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" />"
        );
    }

    fn circle(&mut self, cx: f64, cy: f64, r: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<circle class=\"{class}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" />"
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], class: &str) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.out,
            "<polyline class=\"{class}\" points=\"{}\" />",
            points.join(" ")
        );
    }

    fn text(&mut self, x: f64, y: f64, anchor: Anchor, class: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{}\">{}</text>",
            anchor.as_str(),
            escape(text)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

fn offset_ms(from: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    ((at - from).num_microseconds().unwrap_or(0) as f64 / 1000.0).max(0.0)
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(chars.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::timeline::StepStatus;
    use crate::report::sample;

    /// Every `<svg …>…</svg>` in the page.
    fn svg_fragments(html: &str) -> Vec<&str> {
        let mut fragments = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find("<svg") {
            let end = rest[start..]
                .find("</svg>")
                .map(|e| start + e + "</svg>".len())
                .expect("every <svg> is closed");
            fragments.push(&rest[start..end]);
            rest = &rest[end..];
        }
        fragments
    }

    fn assert_well_formed_svgs(html: &str) -> Vec<String> {
        let fragments = svg_fragments(html);
        fragments
            .iter()
            .map(|svg| {
                let doc = roxmltree::Document::parse(svg)
                    .unwrap_or_else(|e| panic!("SVG is not well-formed XML: {e}\n{svg}"));
                doc.root_element()
                    .attribute("id")
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn hostile_strings_are_escaped_everywhere() {
        let html = render(&sample::report());
        assert!(
            !html.to_ascii_lowercase().contains("<script"),
            "raw <script> in the page"
        );
        assert!(html.contains(
            "restart &lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        ));
        assert!(html.contains("&lt;/td&gt;&lt;script&gt;alert(&quot;err&quot;)"));
        assert!(html.contains("http://127.0.0.1:8000/?a=1&amp;b=&lt;2&gt;"));
        assert_eq!(escape("a\u{1b}[31mred"), "a\u{FFFD}[31mred");
    }

    #[test]
    fn the_sections_tests_and_people_look_for_are_there() {
        let html = render(&sample::report());
        for id in [
            "<section id=\"summary\">",
            "<table id=\"objectives\">",
            "<table id=\"counts\">",
            "<svg id=\"timeline\"",
            "<svg id=\"latency\"",
            "<table id=\"steps\">",
        ] {
            assert!(html.contains(id), "no {id}");
        }
        assert!(html.contains("<span class=\"verdict failed\">FAILED</span>"));
        assert!(html.contains("5.4s (platform 2.0s, health and verification 3.4s)"));
        assert!(html.contains("Baseline: run <code>restart-20260201-093000</code>"));
        // Baseline 100ms in the objective's unit, its change, its verdict.
        assert!(html.contains(
            "<td class=\"num\">100ms</td><td class=\"num\">+20.0%</td><td class=\"r-missed\">missed</td>"
        ));
        assert!(html.contains("<td class=\"r-skipped\">skipped</td>"));
        // docs: 2990 now, 3000 in the baseline; faq has no baseline count.
        assert!(html.contains("<td>docs</td><td class=\"num\">2990</td><td class=\"num\">3000</td><td class=\"num\">-10</td>"));
        assert!(html.contains("<td>faq</td><td class=\"num\">1200</td><td class=\"num\">—</td>"));
        assert!(html.contains("<tr class=\"group\"><th colspan=\"7\">Rollback</th></tr>"));
        assert!(html.contains("Step <code>boom</code> (shell) failed:"));
    }

    #[test]
    fn nothing_is_loaded_from_anywhere() {
        let html = render(&sample::report()).to_ascii_lowercase();
        for attribute in [" src=", " href=", " srcset=", "url(", "@import", "xlink:"] {
            assert!(!html.contains(attribute), "the page has {attribute}");
        }
        assert!(html.contains(&format!("content=\"{CSP}\"")));
    }

    #[test]
    fn svgs_are_well_formed_with_marks_baselines_and_callouts() {
        let html = render(&sample::report());
        assert_eq!(assert_well_formed_svgs(&html), ["timeline", "latency"]);
        let timeline = svg_fragments(&html)[0];
        assert!(timeline.contains(">disaster</text>") && timeline.contains(">recovered</text>"));
        // One bar per step that started (7 of 8) and the rollback step.
        assert_eq!(timeline.matches("<g class=\"step\">").count(), 8);
        assert!(timeline.contains("class=\"bar s-passed rollback\""));
        assert!(timeline.contains("class=\"bar s-failed\""));
        let latency = svg_fragments(&html)[1];
        for label in [
            "p50 3.5 ms",
            "p90 6.0 ms",
            "p99 14.0 ms",
            "baseline p99 10.0 ms",
        ] {
            assert!(latency.contains(label), "no {label}");
        }
        assert_eq!(latency.matches("class=\"baseline\"").count(), 3);
    }

    #[test]
    fn one_step_thirty_steps_zero_length_and_no_marks_all_draw() {
        for n in [0, 1, 30] {
            let mut report = sample::bare_report(n);
            if let Some(first) = report.steps.first_mut() {
                first.duration_ms = 0.0;
            }
            report.duration_ms = 0.0;
            let html = render(&report);
            assert_eq!(assert_well_formed_svgs(&html), ["timeline"], "{n} steps");
            let timeline = svg_fragments(&html)[0];
            assert_eq!(timeline.matches("<g class=\"step\">").count(), n);
            assert!(!timeline.contains("class=\"mark\""));
            assert!(!timeline.contains("NaN") && !timeline.contains("inf"));
            if n > 0 {
                assert!(timeline.contains(&format!("width=\"{MIN_BAR_WIDTH:.1}\"")));
            }
            assert!(html.contains("<table id=\"objectives\">"));
            assert!(html.contains("No search latency was measured"));
            assert!(!html.contains("id=\"counts\""));
        }
    }

    #[test]
    fn an_empty_distribution_draws_nothing_and_says_so() {
        let mut report = sample::bare_report(2);
        report.latency = Some(sample::latency(Vec::new()));
        let html = render(&report);
        assert!(!html.contains("<svg id=\"latency\""));
        assert!(html.contains("recorded no distribution"));
    }

    #[test]
    fn interrupted_and_ignored_show_as_such() {
        let mut report = sample::report();
        report.interrupted = true;
        report.steps[6].status = StepStatus::Interrupted;
        let html = render(&report);
        assert!(html.contains("<span class=\"verdict interrupted\">INTERRUPTED</span>"));
        assert!(html.contains("<td class=\"s-interrupted\">interrupted</td>"));
        assert!(html.contains("<td class=\"s-ignored\">failed (ignored)</td>"));
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(time_step_ms(10_000.0), 2_000.0);
        assert_eq!(time_step_ms(3.0 * 60_000.0), 30_000.0);
        assert_eq!(nice_step(23.0, 5), 5.0);
        assert_eq!(ticks(10.0, 2.5), [0.0, 2.5, 5.0, 7.5, 10.0]);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
    }
}
