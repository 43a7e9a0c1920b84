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

mod latency;
mod page;
mod svg;
mod tables;
mod timeline;

use latency::*;
use page::*;
use timeline::*;

// For other pages built of the same parts (`vecdrill history report`).
pub(crate) use page::{fact, CSP};
pub(crate) use svg::{nice_step, ticks, Anchor, Scale, Svg};
pub(crate) use tables::{table, Cell, Column, Row};
pub(crate) use timeline::time_step_ms;

/// `report.html`.
pub struct Html;

impl super::ReportWriter for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, report: &DrillReport) -> std::io::Result<String> {
        Ok(render(report))
    }
}

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

/// The inline style sheet.
pub(crate) const STYLE: &str = include_str!("style.css");

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
        // The p99 objective (evaluated) is drawn at its limit; the skipped p90 one is not.
        assert_eq!(latency.matches("class=\"objective\"").count(), 1);
        assert!(latency.contains("objective p99 ≤ "), "{latency}");
        assert!(!latency.contains("objective p90"));
        // 200 queries: p99 rests on 2 of them, and the page says so; p90 (20) does not.
        assert!(html.contains("p99 rests on the slowest 2 of 200 answers"));
        assert!(!html.contains("p90 rests on"));
        // One name for a count's change in every format (Markdown says "Change" too).
        assert!(!html.contains("Difference"));
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
