//! The timeline chart: a Gantt of the steps that started, with the disaster/recovered marks.

use super::*;

pub(super) const TIMELINE_WIDTH: f64 = 960.0;
/// The step-name column on the left.
pub(super) const LABEL_WIDTH: f64 = 190.0;
pub(super) const RIGHT_PAD: f64 = 24.0;
/// Room above the rows for the mark labels.
pub(super) const TOP: f64 = 26.0;
pub(super) const ROW_HEIGHT: f64 = 22.0;
pub(super) const BAR_HEIGHT: f64 = 14.0;
pub(super) const AXIS_HEIGHT: f64 = 28.0;
pub(super) const LEGEND_HEIGHT: f64 = 22.0;
/// Step ids longer than this are cut in the label column; the tooltip has them whole.
pub(super) const LABEL_CHARS: usize = 28;
/// A zero-length step still shows as a sliver.
pub(super) const MIN_BAR_WIDTH: f64 = 2.0;

pub(super) struct GanttRow<'a> {
    pub(super) step: &'a StepRecord,
    pub(super) offset_ms: f64,
}

pub(super) fn timeline_svg(report: &DrillReport) -> String {
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
pub(super) fn time_axis(svg: &mut Svg, x: Scale, rows_bottom: f64) {
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
pub(super) fn row_backgrounds(svg: &mut Svg, rows: &[GanttRow]) {
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

pub(super) fn gantt_row(svg: &mut Svg, x: Scale, index: usize, row: &GanttRow) {
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

pub(super) fn step_tooltip(row: &GanttRow) -> String {
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
pub(super) fn mark_line(svg: &mut Svg, at: f64, rows_bottom: f64, mark: Mark) {
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

pub(super) fn legend(svg: &mut Svg, top: f64) {
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

/// Time tick spacing in milliseconds: a round duration giving at most about six ticks.
pub(crate) fn time_step_ms(span_ms: f64) -> f64 {
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
