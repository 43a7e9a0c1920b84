//! `vecdrill history report`: the drill record on one page, for whoever owns the monthly drill
//! and for an audit or a post-mortem. Per scenario: RTO, RPO and search latency run by run
//! against their objectives and the baseline, pass or fail, the month-over-month trend, and
//! every run with its id, date and a link to its own report; per repository: how fresh the
//! newest backup is and whether it is proven. Self-contained like `report.html` (the same
//! style sheet, inline SVG, no script, nothing loaded; a link is only followed when clicked).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};

use super::trend::{self, TrendMonth};
use super::{RunKind, RunRecord};
use crate::drill::baseline::Baseline;
use crate::drill::prove::SCENARIO_NAME as PROOF_SCENARIO;
use crate::duration::{format_duration, format_ms, format_utc};
use crate::percent::format_change;
use crate::report::html::{
    escape, fact, table, ticks, time_step_ms, Anchor, Cell, Column, Row, Scale, Svg, CSP, STYLE,
};

/// What the page shows, and where it goes.
pub struct PageInput<'a> {
    /// The period's drills and backups, in any order.
    pub runs: &'a [RunRecord],
    /// Only this scenario's drills are shown (proofs still say which backups are proven).
    pub scenario: Option<&'a str>,
    /// Each scenario's baseline, where one is set.
    pub baselines: &'a BTreeMap<String, Baseline>,
    pub generated_at: DateTime<Utc>,
    /// The start of the period, when one was asked for.
    pub since: Option<DateTime<Utc>>,
    /// The history the page was made from, named on it.
    pub history: &'a Path,
    /// The directory the page is written to: run reports are linked relative to it.
    pub page_dir: &'a Path,
}

pub fn render(input: &PageInput<'_>) -> String {
    let mut scenarios: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    let shown = |r: &&RunRecord| {
        r.kind == RunKind::Drill
            && input
                .scenario
                .is_none_or(|only| r.scenario.as_deref() == Some(only))
    };
    for run in input.runs.iter().filter(shown) {
        scenarios
            .entry(run.scenario.as_deref().unwrap_or("(unnamed)"))
            .or_default()
            .push(run);
    }
    for runs in scenarios.values_mut() {
        runs.sort_by_key(|r| r.started_at);
    }
    let mut html = String::with_capacity(64 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
    let _ = writeln!(
        html,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\" />"
    );
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n");
    html.push_str("<title>Recovery drill record</title>\n");
    let _ = writeln!(html, "<style>\n{STYLE}{PAGE_STYLE}</style>\n</head>");
    html.push_str("<body>\n<main>\n");
    summary(&mut html, input, &scenarios);
    repositories(&mut html, input);
    for (index, (name, runs)) in scenarios.iter().enumerate() {
        scenario(&mut html, input, index, name, runs);
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// What this page adds to the report's style sheet: run markers by verdict, one colour per
/// latency percentile.
const PAGE_STYLE: &str = "svg .point.pass { fill: var(--ok); }\n\
svg .point.fail { fill: var(--bad); }\n\
svg .curve.p50 { stroke: #7aa7f7; }\n\
svg .curve.p99 { stroke: #0b3d91; }\n\
svg text.series-label { font-weight: 700; }\n\
section.scenario { margin-top: 40px; }\n";

fn summary(html: &mut String, input: &PageInput<'_>, scenarios: &BTreeMap<&str, Vec<&RunRecord>>) {
    let drills: Vec<&RunRecord> = scenarios.values().flatten().copied().collect();
    let failed = drills.iter().filter(|r| !r.passed).count();
    html.push_str("<section id=\"summary\">\n<h1>Recovery drill record</h1>\n");
    html.push_str("<dl class=\"facts\">\n");
    let period = match input.since {
        Some(since) => format!(
            "{} to {}",
            format_utc(since),
            format_utc(input.generated_at)
        ),
        None => format!("everything recorded, to {}", format_utc(input.generated_at)),
    };
    fact(html, "Period", &period);
    fact(
        html,
        "Scenarios",
        &if scenarios.is_empty() {
            "none".to_string()
        } else {
            scenarios.keys().copied().collect::<Vec<_>>().join(", ")
        },
    );
    fact(
        html,
        "Drills",
        &format!(
            "{} ({} passed, {failed} failed)",
            drills.len(),
            drills.len() - failed
        ),
    );
    let backups = input
        .runs
        .iter()
        .filter(|r| r.kind == RunKind::Backup)
        .count();
    fact(html, "Backups", &backups.to_string());
    fact(html, "History", &input.history.display().to_string());
    fact(html, "Generated", &format_utc(input.generated_at));
    html.push_str("</dl>\n");
    if drills.is_empty() {
        html.push_str("<p class=\"note\">No drill was recorded in this period.</p>\n");
    }
    html.push_str("</section>\n");
}

/// Per repository: its newest backup and how old it is, and the newest proof of its backups.
fn repositories(html: &mut String, input: &PageInput<'_>) {
    let mut repos: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for run in input.runs.iter().filter(|r| r.kind == RunKind::Backup) {
        repos
            .entry(run.repo.as_deref().unwrap_or("?"))
            .or_default()
            .push(run);
    }
    html.push_str("<section>\n<h2>Backups</h2>\n");
    let columns = [
        Column::text("Repository"),
        Column::figure("Backups"),
        Column::text("Newest backup"),
        Column::figure("Age"),
        Column::text("Newest proof"),
        Column::text("Newest backup proven"),
    ];
    let mut rows = Vec::new();
    for (repo, backups) in &repos {
        let ids: BTreeSet<&str> = backups
            .iter()
            .filter_map(|b| b.backup_id.as_deref())
            .collect();
        let newest = backups
            .iter()
            .filter(|b| b.passed)
            .max_by_key(|b| b.finished_at);
        let proofs: Vec<&RunRecord> = input
            .runs
            .iter()
            .filter(|r| r.scenario.as_deref() == Some(PROOF_SCENARIO))
            .filter(|r| r.backup_id.as_deref().is_some_and(|id| ids.contains(id)))
            .collect();
        let last_proof = proofs.iter().max_by_key(|p| p.finished_at);
        let newest_proven = newest.map(|n| {
            proofs
                .iter()
                .any(|p| p.passed && p.backup_id == n.backup_id)
        });
        let failed = backups.iter().filter(|b| !b.passed).count();
        rows.push(Row::Cells(vec![
            Cell::text(*repo),
            Cell::text(if failed > 0 {
                format!("{} ({failed} failed)", backups.len())
            } else {
                backups.len().to_string()
            }),
            Cell::text(newest.map_or("none succeeded".into(), |n| {
                format!(
                    "{} ({})",
                    n.backup_id.as_deref().unwrap_or(&n.id),
                    format_utc(n.finished_at)
                )
            })),
            Cell::text(newest.map_or("—".into(), |n| {
                format_duration(
                    (input.generated_at - n.finished_at)
                        .to_std()
                        .unwrap_or_default(),
                )
            })),
            Cell::text(last_proof.map_or("none".into(), |p| {
                let verdict = if p.passed { "passed" } else { "FAILED" };
                let rto = p.rto_ms.map(|ms| format!(", RTO {}", format_ms(ms)));
                format!(
                    "{verdict} {} (backup {}{})",
                    format_utc(p.finished_at),
                    p.backup_id.as_deref().unwrap_or("?"),
                    rto.unwrap_or_default()
                )
            })),
            match newest_proven {
                Some(true) => Cell::with_class("yes", "r-met"),
                Some(false) => Cell::with_class("no", "r-missed"),
                None => Cell::text("—"),
            },
        ]));
    }
    if rows.is_empty() {
        rows.push(Row::Note("No backup was recorded in this period."));
    }
    table(html, "backups", &columns, &rows);
    html.push_str("</section>\n");
}

fn scenario(
    html: &mut String,
    input: &PageInput<'_>,
    index: usize,
    name: &str,
    runs: &[&RunRecord],
) {
    let baseline = input.baselines.get(name);
    let passed = runs.iter().filter(|r| r.passed).count();
    let _ = writeln!(
        html,
        "<section class=\"scenario\" id=\"scenario-{index}\">\n<h2>Scenario: {}</h2>",
        escape(name)
    );
    html.push_str("<dl class=\"facts\">\n");
    fact(html, "Drills", &format!("{} ({passed} passed)", runs.len()));
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        fact(html, "First", &format_utc(first.started_at));
        fact(
            html,
            "Last",
            &format!(
                "{} ({})",
                format_utc(last.started_at),
                if last.passed { "passed" } else { "FAILED" }
            ),
        );
        let objectives: Vec<String> = last
            .objectives
            .iter()
            .map(|o| format!("{} {}", o.name, o.target))
            .collect();
        if !objectives.is_empty() {
            fact(html, "Objectives (last run)", &objectives.join(", "));
        }
    }
    if let Some(b) = baseline {
        fact(
            html,
            "Baseline",
            &format!("run {} of {}", b.run_id, format_utc(b.run_started_at)),
        );
    }
    html.push_str("</dl>\n");

    let figure = |f: fn(&RunRecord) -> Option<f64>| -> Vec<Point<'_>> {
        runs.iter()
            .filter_map(|r| {
                Some(Point {
                    run: r,
                    value: f(r)?,
                })
            })
            .collect()
    };
    let charts = [
        (
            "rto",
            "Recovery time (RTO)",
            vec![("RTO", "", figure(|r| r.rto_ms))],
            &["rto"][..],
        ),
        (
            "rpo",
            "Recovery point (RPO)",
            vec![("RPO", "", figure(|r| r.rpo_ms))],
            &["rpo"][..],
        ),
        (
            "latency",
            "Search latency",
            vec![
                ("p50", "p50", figure(|r| r.p50_ms)),
                ("p90", "p90", figure(|r| r.p90_ms)),
                ("p99", "p99", figure(|r| r.p99_ms)),
            ],
            &["search_p50", "search_p90", "search_p99"][..],
        ),
    ];
    for (id, title, series, objectives) in charts {
        if series.iter().all(|(_, _, points)| points.is_empty()) {
            let _ = writeln!(
                html,
                "<h3>{title}</h3>\n<p class=\"note\">Not measured by these drills.</p>"
            );
            continue;
        }
        let limits: Vec<(&str, Vec<Point<'_>>)> = objectives
            .iter()
            .map(|name| (*name, objective_limits(runs, name)))
            .filter(|(_, points)| !points.is_empty())
            .collect();
        let baselines: Vec<(String, f64)> = series
            .iter()
            .filter_map(|(label, _, _)| {
                let value = baseline?.percentile_ms(label)?;
                Some((format!("baseline {label} {}", format_ms(value)), value))
            })
            .collect();
        let _ = writeln!(html, "<h3>{title}</h3>");
        html.push_str(&time_chart(
            &format!("{id}-{index}"),
            title,
            &series,
            &limits,
            &baselines,
        ));
    }
    html.push_str("<h3>Month by month</h3>\n");
    months_table(html, index, &trend::monthly(runs.iter().copied()));
    html.push_str("<h3>Runs</h3>\n");
    runs_table(html, input, index, runs);
    html.push_str("</section>\n");
}

/// One run's figure on a chart.
#[derive(Clone, Copy)]
struct Point<'a> {
    run: &'a RunRecord,
    value: f64,
}

/// The limit objective `name` set at each run that evaluated it, in milliseconds.
fn objective_limits<'a>(runs: &[&'a RunRecord], name: &str) -> Vec<Point<'a>> {
    runs.iter()
        .filter_map(|r| {
            let objective = r.objectives.iter().find(|o| o.name == name && !o.skipped)?;
            let value = objective.target_value.filter(|_| objective.unit == "ms")?;
            Some(Point { run: r, value })
        })
        .collect()
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 70.0;
/// Room on the right for the line labels.
const RIGHT: f64 = WIDTH - 190.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = HEIGHT - 40.0;
const LABEL_GAP: f64 = 13.0;

/// Figures over time: each series a line of run markers (green passed, red failed, the run
/// named in each marker's tooltip), each objective's limit as the runs set it, each baseline
/// a dashed line.
fn time_chart(
    id: &str,
    title: &str,
    series: &[(&str, &str, Vec<Point<'_>>)],
    limits: &[(&str, Vec<Point<'_>>)],
    baselines: &[(String, f64)],
) -> String {
    let all = || {
        series
            .iter()
            .flat_map(|(_, _, points)| points)
            .chain(limits.iter().flat_map(|(_, points)| points))
    };
    let times: Vec<i64> = all().map(|p| p.run.started_at.timestamp_millis()).collect();
    let (mut t0, mut t1) = (
        times.iter().copied().min().unwrap_or(0),
        times.iter().copied().max().unwrap_or(0),
    );
    // A single day (or a single run) is spread over a day, centred.
    const DAY: i64 = 86_400_000;
    if t1 - t0 < DAY {
        let middle = t0 + (t1 - t0) / 2;
        (t0, t1) = (middle - DAY / 2, middle + DAY / 2);
    }
    let highest = all()
        .map(|p| p.value)
        .chain(baselines.iter().map(|(_, v)| *v))
        .fold(0.0, f64::max);
    // Round durations on the axis: 30s, 1m, 2m, not 6m 40s.
    let step = time_step_ms((highest * 1.1).max(1.0));
    let top = ((highest * 1.1).max(1.0) / step).ceil() * step;
    let x = Scale::new((t0 as f64, t1 as f64), (LEFT, RIGHT));
    let y = Scale::new((0.0, top), (BOTTOM, TOP));
    let at = |p: &Point<'_>| {
        (
            x.at(p.run.started_at.timestamp_millis() as f64),
            y.at(p.value),
        )
    };

    let mut svg = Svg::open(id, WIDTH, HEIGHT, title);
    for value in ticks(top, step) {
        svg.line(LEFT, y.at(value), RIGHT, y.at(value), "grid");
        svg.text(
            LEFT - 6.0,
            y.at(value) + 4.0,
            Anchor::End,
            "tick",
            &format_ms(value),
        );
    }
    let span = t1 - t0;
    let format = if span < 3 * DAY {
        "%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    for i in 0..=4 {
        let t = t0 + span * i / 4;
        let label = DateTime::<Utc>::from_timestamp_millis(t)
            .map(|d| d.format(format).to_string())
            .unwrap_or_default();
        svg.line(x.at(t as f64), BOTTOM, x.at(t as f64), BOTTOM + 4.0, "axis");
        svg.text(
            x.at(t as f64),
            BOTTOM + 18.0,
            Anchor::Middle,
            "tick",
            &label,
        );
    }
    svg.line(LEFT, BOTTOM, RIGHT, BOTTOM, "axis");
    svg.line(LEFT, TOP, LEFT, BOTTOM, "axis");

    let mut labels: Vec<(f64, &str, String)> = Vec::new();
    for (value_label, y_value) in baselines {
        svg.line(LEFT, y.at(*y_value), RIGHT, y.at(*y_value), "baseline");
        labels.push((y.at(*y_value), "baseline-label", value_label.clone()));
    }
    for (name, points) in limits {
        let line: Vec<(f64, f64)> = points.iter().map(at).collect();
        match line.as_slice() {
            [(x1, y1)] => svg.line(*x1 - 8.0, *y1, *x1 + 8.0, *y1, "objective"),
            _ => svg.polyline(&line, "objective"),
        }
        if let Some(last) = points.last() {
            labels.push((
                at(last).1,
                "objective-label",
                format!("objective {name} ≤ {}", format_ms(last.value)),
            ));
        }
    }
    for (label, class, points) in series {
        let line: Vec<(f64, f64)> = points.iter().map(at).collect();
        if line.len() > 1 {
            svg.polyline(&line, &format!("curve {class}"));
        }
        for point in points {
            let (px, py) = at(point);
            let verdict = if point.run.passed { "passed" } else { "FAILED" };
            let tip = format!(
                "{} ({}, {verdict}): {label} {}",
                point.run.id,
                format_utc(point.run.started_at),
                format_ms(point.value)
            );
            svg.open_group("run", Some(&tip));
            let class = if point.run.passed {
                "point pass"
            } else {
                "point fail"
            };
            svg.circle(px, py, 4.0, class);
            svg.close_group();
        }
        if let (Some(last), false) = (points.last(), class.is_empty()) {
            labels.push((at(last).1, "series-label", label.to_string()));
        }
    }
    // Right-hand labels, top to bottom, pushed apart where they would overlap.
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut previous = f64::NEG_INFINITY;
    for (ly, class, text) in labels {
        let ly = ly.max(previous + LABEL_GAP);
        svg.text(RIGHT + 8.0, ly + 4.0, Anchor::Start, class, &text);
        previous = ly;
    }
    svg.finish()
}

/// A figure, or a dash where none was measured.
fn ms(value: Option<f64>) -> String {
    value.map(format_ms).unwrap_or_else(|| "—".into())
}

fn change(value: Option<f64>) -> String {
    value.map(format_change).unwrap_or_else(|| "—".into())
}

fn months_table(html: &mut String, index: usize, months: &[TrendMonth]) {
    let columns = [
        Column::text("Month"),
        Column::figure("Drills"),
        Column::figure("Passed"),
        Column::figure("RTO"),
        Column::figure("Change"),
        Column::figure("RPO"),
        Column::figure("Change"),
        Column::figure("Search p90"),
        Column::figure("Change"),
    ];
    let rows: Vec<Row> = months
        .iter()
        .map(|m| {
            Row::Cells(vec![
                Cell::text(&m.month),
                Cell::text(m.runs.to_string()),
                if m.passed == m.runs {
                    Cell::text(m.passed.to_string())
                } else {
                    Cell::with_class(m.passed.to_string(), "r-missed")
                },
                Cell::text(ms(m.rto_ms)),
                Cell::text(change(m.rto_change_pct)),
                Cell::text(ms(m.rpo_ms)),
                Cell::text(change(m.rpo_change_pct)),
                Cell::text(ms(m.search_p90_ms)),
                Cell::text(change(m.search_p90_change_pct)),
            ])
        })
        .collect();
    table(html, &format!("months-{index}"), &columns, &rows);
}

fn runs_table(html: &mut String, input: &PageInput<'_>, index: usize, runs: &[&RunRecord]) {
    let columns = [
        Column::text("Started"),
        Column::text("Run"),
        Column::text("Result"),
        Column::figure("RTO"),
        Column::figure("RPO"),
        Column::figure("p50"),
        Column::figure("p90"),
        Column::figure("p99"),
        Column::figure("Objectives"),
        Column::text("Backup"),
    ];
    // Newest first: the run people come for.
    let rows: Vec<Row> = runs
        .iter()
        .rev()
        .map(|r| {
            let counted: Vec<_> = r.objectives.iter().filter(|o| !o.skipped).collect();
            let met = counted.iter().filter(|o| o.passed).count();
            Row::Cells(vec![
                Cell::text(format_utc(r.started_at)),
                match report_link(r, input.page_dir) {
                    Some(href) => Cell::link(&r.id, href),
                    None => Cell::text(&r.id),
                },
                if r.passed {
                    Cell::with_class("passed", "s-passed")
                } else {
                    Cell::with_class("FAILED", "s-failed")
                },
                Cell::text(ms(r.rto_ms)),
                Cell::text(ms(r.rpo_ms)),
                Cell::text(ms(r.p50_ms)),
                Cell::text(ms(r.p90_ms)),
                Cell::text(ms(r.p99_ms)),
                Cell::text(if counted.is_empty() {
                    "—".to_string()
                } else {
                    format!("{met}/{} met", counted.len())
                }),
                Cell::text(r.backup_id.as_deref().unwrap_or("—")),
            ])
        })
        .collect();
    table(html, &format!("runs-{index}"), &columns, &rows);
}

/// The run's `report.html`, relative to the page's directory, when it is still there.
fn report_link(run: &RunRecord, page_dir: &Path) -> Option<String> {
    let report = absolute(&Path::new(run.report_dir.as_deref()?).join("report.html"));
    if !report.is_file() {
        return None;
    }
    let relative = relative_to(&report, &absolute(page_dir));
    let text = relative.to_str()?;
    // A path as a URL: the characters a URL gives meaning to are escaped.
    let mut href = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => href.push_str("%25"),
            '#' => href.push_str("%23"),
            '?' => href.push_str("%3F"),
            ' ' => href.push_str("%20"),
            c => href.push(c),
        }
    }
    Some(href)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` as seen from directory `from` (both absolute): up to their common part, then down.
fn relative_to(path: &Path, from: &Path) -> PathBuf {
    let (path, from): (Vec<Component>, Vec<Component>) =
        (path.components().collect(), from.components().collect());
    let common = path.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for part in &path[common..] {
        relative.push(part);
    }
    relative
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ObjectiveRow;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + day * 86_400, 0).unwrap() // 2026-01-01
    }

    fn run(kind: RunKind, id: &str, day: i64, passed: bool) -> RunRecord {
        RunRecord {
            id: id.into(),
            kind,
            scenario: None,
            repo: None,
            target: "chroma http://127.0.0.1:8000".into(),
            started_at: at(day),
            finished_at: at(day) + chrono::Duration::seconds(90),
            passed,
            exit_code: if passed { 0 } else { 1 },
            duration_ms: 90_000.0,
            rto_ms: None,
            rpo_ms: None,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            backup_id: None,
            logical_bytes: None,
            stored_bytes: None,
            vecdrill_version: "0.1.0".into(),
            host: "host".into(),
            report_dir: None,
            objectives: Vec::new(),
            counts: Default::default(),
            detail: None,
        }
    }

    fn objective(name: &str, target_ms: f64, measured: f64) -> ObjectiveRow {
        ObjectiveRow {
            name: name.into(),
            target: format_ms(target_ms),
            target_value: Some(target_ms),
            measured_value: Some(measured),
            baseline_value: None,
            unit: "ms".into(),
            passed: measured <= target_ms,
            skipped: false,
            detail: String::new(),
        }
    }

    /// A monthly drill over three months (the second failed its RTO), a proof and two backups.
    fn record() -> Vec<RunRecord> {
        let mut runs = Vec::new();
        for (i, (day, rto, p90)) in [
            (0, 40_000.0, 120.0),
            (31, 150_000.0, 140.0),
            (59, 60_000.0, 110.0),
        ]
        .into_iter()
        .enumerate()
        {
            let mut drill = run(
                RunKind::Drill,
                &format!("restart-{i}"),
                day,
                rto <= 120_000.0,
            );
            drill.scenario = Some("restart <&>".into());
            (drill.rto_ms, drill.rpo_ms) = (Some(rto), Some(3_600_000.0));
            (drill.p50_ms, drill.p90_ms, drill.p99_ms) =
                (Some(p90 / 2.0), Some(p90), Some(p90 * 2.0));
            drill.objectives = vec![
                objective("rto", 120_000.0, rto),
                objective("search_p90", 500.0, p90),
            ];
            runs.push(drill);
        }
        for (id, day) in [("b-old", 50), ("b-new", 58)] {
            let mut backup = run(RunKind::Backup, id, day, true);
            (backup.repo, backup.backup_id) = (Some("s3://bucket/chroma".into()), Some(id.into()));
            runs.push(backup);
        }
        let mut proof = run(RunKind::Drill, "prove-1", 58, true);
        (proof.scenario, proof.backup_id, proof.rto_ms) = (
            Some(PROOF_SCENARIO.into()),
            Some("b-new".into()),
            Some(2_500.0),
        );
        runs.push(proof);
        runs
    }

    fn page(
        runs: &[RunRecord],
        scenario: Option<&str>,
        baselines: &BTreeMap<String, Baseline>,
    ) -> String {
        render(&PageInput {
            runs,
            scenario,
            baselines,
            generated_at: at(60),
            since: None,
            history: Path::new("/var/lib/vecdrill/history.sqlite"),
            page_dir: Path::new("/tmp"),
        })
    }

    fn svg<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}"));
        let end = html[start..].find("</svg>").unwrap() + "</svg>".len();
        let fragment = &html[start..start + end];
        roxmltree::Document::parse(fragment).unwrap_or_else(|e| panic!("{id}: {e}\n{fragment}"));
        fragment
    }

    #[test]
    fn each_scenario_shows_its_figures_against_objectives_and_baseline_run_by_run() {
        let runs = record();
        let baseline = Baseline {
            scenario: "restart <&>".into(),
            run_id: "restart-0".into(),
            run_started_at: at(0),
            set_at: at(1),
            p50_ms: Some(60.0),
            p90_ms: Some(120.0),
            p99_ms: Some(240.0),
            counts: Default::default(),
        };
        let baselines = BTreeMap::from([("restart <&>".to_string(), baseline)]);
        let html = page(&runs, None, &baselines);
        assert!(html.contains("<h2>Scenario: restart &lt;&amp;&gt;</h2>"));
        assert!(!html.contains("<&>"), "unescaped");
        // The RTO chart: three runs, one failed, the objective drawn and labelled.
        let rto = svg(&html, "rto-1");
        assert_eq!(rto.matches("class=\"point pass\"").count(), 2);
        assert_eq!(rto.matches("class=\"point fail\"").count(), 1);
        assert!(rto.contains("<polyline class=\"objective\""));
        assert!(rto.contains("objective rto ≤ 2m"), "{rto}");
        assert!(
            rto.contains("<title>restart-1 (2026-02-01 00:00:00 UTC, FAILED): RTO 2m 30s</title>"),
            "{rto}"
        );
        svg(&html, "rpo-1");
        // Latency: three percentiles, the p90 objective, the baseline's three lines.
        let latency = svg(&html, "latency-1");
        assert_eq!(latency.matches("<polyline class=\"curve ").count(), 3);
        assert_eq!(latency.matches("class=\"baseline\"").count(), 3);
        assert!(latency.contains("objective search_p90 ≤ 500ms"));
        assert!(latency.contains("baseline p99 240ms"));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        // Month by month: January 40s, February 2m 30s (+275.0%), March 1m (-60.0%).
        assert!(html.contains("<td>2026-02</td><td class=\"num\">1</td><td class=\"num r-missed\">0</td><td class=\"num\">2m 30s</td><td class=\"num\">+275.0%</td>"), "{html}");
        assert!(
            html.contains("<td class=\"num\">1m 00s</td><td class=\"num\">-60.0%</td>"),
            "{html}"
        );
        // The runs newest first, each with its verdict and objectives.
        let runs_table = &html[html.find("id=\"runs-1\"").unwrap()..];
        let (newest, oldest) = (
            runs_table.find("restart-2").unwrap(),
            runs_table.find("restart-0").unwrap(),
        );
        assert!(newest < oldest);
        assert!(runs_table.contains("<td class=\"s-failed\">FAILED</td>"));
        assert!(runs_table.contains("<td class=\"num\">1/2 met</td>"));
        // The proof is a scenario of its own, and says the newest backup is proven.
        assert!(html.contains("<h2>Scenario: prove</h2>"));
        let backups = &html[html.find("id=\"backups\"").unwrap()..];
        assert!(backups.contains("<td>s3://bucket/chroma</td><td class=\"num\">2</td><td>b-new (2026-02-28 00:01:30 UTC)</td><td class=\"num\">1d 23h</td>"), "{backups}");
        assert!(backups.contains("passed 2026-02-28 00:01:30 UTC (backup b-new, RTO 2.5s)"));
        assert!(backups.contains("<td class=\"r-met\">yes</td>"));
        for attribute in [" src=", "url(", "@import", "<script"] {
            assert!(!html.contains(attribute), "the page has {attribute}");
        }
    }

    #[test]
    fn one_scenario_an_unproven_backup_one_run_and_an_empty_record_all_draw() {
        let mut runs = record();
        runs.retain(|r| r.id != "prove-1" && r.id != "restart-1" && r.id != "restart-2");
        let html = page(&runs, Some("restart <&>"), &BTreeMap::new());
        assert!(!html.contains("Scenario: prove"));
        let rto = svg(&html, "rto-0");
        assert_eq!(rto.matches("class=\"point pass\"").count(), 1);
        // A single run's objective is a short mark, not a line.
        assert!(rto.contains("<line class=\"objective\""));
        assert!(
            html.contains("<td class=\"r-missed\">no</td>"),
            "the newest backup is not proven"
        );

        let html = page(&[], None, &BTreeMap::new());
        assert!(html.contains("No drill was recorded in this period."));
        assert!(html.contains("No backup was recorded in this period."));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn a_run_report_is_linked_relative_to_the_page_when_it_is_still_there() {
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = tmp.path().join("reports/restart #1");
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::write(run_dir.join("report.html"), "<html></html>").unwrap();
        let mut kept = run(RunKind::Drill, "restart #1", 0, true);
        kept.report_dir = Some(run_dir.display().to_string());
        let page_dir = tmp.path().join("record");
        assert_eq!(
            report_link(&kept, &page_dir).as_deref(),
            Some("../reports/restart%20%231/report.html")
        );
        let mut gone = kept.clone();
        gone.report_dir = Some(tmp.path().join("removed").display().to_string());
        assert_eq!(report_link(&gone, &page_dir), None);
    }
}
