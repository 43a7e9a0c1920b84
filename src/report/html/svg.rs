//! SVG geometry: scales, ticks and an SVG writer.

use super::*;

/// A linear map from a domain `d0..d1` to a range `r0..r1` of user units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) d0: f64,
    pub(crate) d1: f64,
    pub(crate) r0: f64,
    pub(crate) r1: f64,
}

impl Scale {
    pub(crate) fn new((d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> Self {
        Self { d0, d1, r0, r1 }
    }

    pub(crate) fn at(&self, value: f64) -> f64 {
        let width = self.d1 - self.d0;
        if width <= 0.0 {
            return self.r0;
        }
        self.r0 + (value - self.d0) / width * (self.r1 - self.r0)
    }
}

/// 0, step, 2·step, … up to `max`.
pub(crate) fn ticks(max: f64, step: f64) -> Vec<f64> {
    if step <= 0.0 || !step.is_finite() {
        return vec![0.0];
    }
    let count = (max / step + 1e-9).floor() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A 1, 2 or 5 times a power of ten that cuts `span` into at most `count` pieces.
pub(crate) fn nice_step(span: f64, count: usize) -> f64 {
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
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Middle => "middle",
            Self::End => "end",
        }
    }
}

/// An inline SVG being written: coordinates in user units, every text escaped.
pub(crate) struct Svg {
    pub(crate) out: String,
}

impl Svg {
    pub(crate) fn open(id: &str, width: f64, height: f64, label: &str) -> Self {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg id=\"{id}\" viewBox=\"0 0 {width} {height:.0}\" width=\"{width}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">",
            escape(label)
        );
        Self { out }
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// A `<g>`; its `<title>` is the tooltip of everything in it.
    pub(crate) fn open_group(&mut self, class: &str, title: Option<&str>) {
        let _ = write!(self.out, "<g class=\"{class}\">");
        if let Some(title) = title {
            let _ = write!(self.out, "<title>{}</title>", escape(title));
        }
    }

    pub(crate) fn close_group(&mut self) {
        self.out.push_str("</g>\n");
    }

    pub(crate) fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" />"
        );
    }

    pub(crate) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<line class=\"{class}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" />"
        );
    }

    pub(crate) fn circle(&mut self, cx: f64, cy: f64, r: f64, class: &str) {
        let _ = writeln!(
            self.out,
            "<circle class=\"{class}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" />"
        );
    }

    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], class: &str) {
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

    pub(crate) fn text(&mut self, x: f64, y: f64, anchor: Anchor, class: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{}\">{}</text>",
            anchor.as_str(),
            escape(text)
        );
    }
}
