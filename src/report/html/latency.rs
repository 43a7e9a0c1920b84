//! The latency chart: milliseconds against percentile on a "nines" scale.

use super::*;

pub(super) const LATENCY_WIDTH: f64 = 960.0;
pub(super) const LATENCY_HEIGHT: f64 = 320.0;
pub(super) const PLOT_LEFT: f64 = 70.0;
/// Room on the right for the baseline labels.
pub(super) const PLOT_RIGHT: f64 = LATENCY_WIDTH - 160.0;
pub(super) const PLOT_TOP: f64 = 16.0;
pub(super) const PLOT_BOTTOM: f64 = LATENCY_HEIGHT - 44.0;
/// Baseline labels closer than this are pushed apart.
pub(super) const LABEL_GAP: f64 = 13.0;

/// Percentiles on a "nines" scale (p90 at 1, p99 at 2, p99.9 at 3), so the tail, where
/// regressions show first, gets as much room as the body. p100 (the maximum) has no finite
/// position and sits half a nine past the last tick.
pub(super) struct NinesAxis {
    pub(super) last: f64,
    pub(super) max_at: f64,
}

impl NinesAxis {
    pub(super) fn new(points: &[LatencyPoint]) -> Self {
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

    pub(super) fn position(&self, percentile: f64) -> f64 {
        if percentile >= 100.0 {
            self.max_at
        } else {
            nines(percentile).min(self.last)
        }
    }

    pub(super) fn ticks(&self, with_max: bool) -> Vec<(f64, String)> {
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

pub(super) fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile.clamp(0.0, 99.9999) / 100.0).log10()
}

/// The latency chart; `objectives` are the run's latency limits (`p90`, in ms), drawn as lines.
pub(super) fn latency_svg(
    latency: &LatencySummary,
    baseline: Option<&Baseline>,
    objectives: &[(&str, f64)],
) -> String {
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
        .chain(objectives.iter().map(|o| o.1))
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
    let references: Vec<Reference> = baselines
        .iter()
        .map(|(name, ms)| Reference {
            label: format!("baseline {name} {}", format_latency(*ms)),
            ms: *ms,
            class: "baseline",
        })
        .chain(objectives.iter().map(|(name, ms)| Reference {
            label: format!("objective {name} ≤ {}", format_latency(*ms)),
            ms: *ms,
            class: "objective",
        }))
        .collect();
    reference_lines(&mut svg, y, &references);
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

pub(super) fn percentile_axis(svg: &mut Svg, x: Scale, ticks: &[(f64, String)]) {
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

pub(super) fn ms_axis(svg: &mut Svg, y: Scale, step: f64) {
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

/// A horizontal line across the chart at `ms`: a baseline's percentile or an objective.
pub(super) struct Reference {
    pub(super) label: String,
    pub(super) ms: f64,
    /// `baseline` (dashed) or `objective`; the label's class is this with `-label`.
    pub(super) class: &'static str,
}

/// Horizontal lines at each reference, labelled in the right margin without overlapping.
pub(super) fn reference_lines(svg: &mut Svg, y: Scale, references: &[Reference]) {
    let mut labels: Vec<(f64, &Reference)> = Vec::new();
    for reference in references {
        let py = y.at(reference.ms);
        svg.open_group(
            &format!("{}-group", reference.class),
            Some(&reference.label),
        );
        svg.line(PLOT_LEFT, py, PLOT_RIGHT, py, reference.class);
        svg.close_group();
        labels.push((py + 4.0, reference));
    }
    // Lowest on screen first; each label at least LABEL_GAP above the one before.
    labels.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut floor = f64::INFINITY;
    for (py, reference) in labels {
        let py = py.min(floor - LABEL_GAP);
        svg.text(
            PLOT_RIGHT + 6.0,
            py,
            Anchor::Start,
            &format!("{}-label", reference.class),
            &reference.label,
        );
        floor = py;
    }
}
