//! indicatif implementation of the library's progress trait, shown only on a terminal: amounts
//! in the units people read (MiB, MiB/s, whole records per second), one line within 80
//! columns, and no estimate of the time left until there is something to base it on.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use vecdrill::progress::{NoProgress, Progress, Unit};

pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

/// Labels are cut to this width, so that a line never wraps on an 80-column terminal.
const LABEL_WIDTH: usize = 12;
const TEMPLATE: &str = "{msg:>12} [{bar:18}] {amount} {rate} {eta}";

impl Progress for BarProgress {
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(style(unit)),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(label.chars().take(LABEL_WIDTH).collect::<String>());
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, delta: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(delta);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

fn style(unit: Unit) -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .expect("static template")
        .progress_chars("=> ")
        .with_key(
            "amount",
            move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", done_of(unit, s.pos(), s.len()));
            },
        )
        .with_key(
            "rate",
            move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", rate(unit, s.per_sec()));
            },
        )
        .with_key("eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", eta(s.elapsed(), s.fraction(), s.eta()));
        })
}

/// `done/total` in `unit`: `74.2 MiB/129.6 MiB`, `12,345/200,000`.
fn done_of(unit: Unit, done: u64, total: Option<u64>) -> String {
    let amount = |n| match unit {
        Unit::Bytes => vecdrill::units::bytes(n),
        Unit::Items => thousands(n),
    };
    match total {
        Some(total) => format!("{}/{}", amount(done), amount(total)),
        None => amount(done),
    }
}

/// Per second, in `unit`: `185.6 MiB/s`, `4,567/s` (whole items).
fn rate(unit: Unit, per_sec: f64) -> String {
    let per_sec = if per_sec.is_finite() {
        per_sec.max(0.0)
    } else {
        0.0
    };
    match unit {
        Unit::Bytes => format!("{}/s", vecdrill::units::bytes(per_sec as u64)),
        Unit::Items => format!("{}/s", thousands(per_sec.round() as u64)),
    }
}

/// The time left, once it means something: after 3 s and 2% of the work (before that a rate
/// is mostly start-up and the estimate swings; an estimate of 0s at the start says nothing).
fn eta(elapsed: Duration, fraction: f32, left: Duration) -> String {
    if elapsed < Duration::from_secs(3) || !(0.02..1.0).contains(&fraction) {
        return String::new();
    }
    let rounded = Duration::from_secs(left.as_secs().max(1));
    format!("eta {}", vecdrill::duration::format_duration(rounded))
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A bar on a terminal; nothing under `--json` or when stderr is not a terminal.
pub fn for_terminal(json: bool) -> Box<dyn Progress> {
    if json || !std::io::stderr().is_terminal() {
        Box::new(NoProgress)
    } else {
        Box::new(BarProgress {
            bar: Mutex::new(None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_rates_are_in_human_units_without_decimals_on_counts() {
        assert_eq!(
            done_of(Unit::Bytes, 77_776_932, Some(135_862_608)),
            "74.2 MiB/129.6 MiB"
        );
        assert_eq!(
            done_of(Unit::Items, 12_345, Some(200_000)),
            "12,345/200,000"
        );
        assert_eq!(rate(Unit::Bytes, 194_650_794.475_4), "185.6 MiB/s");
        assert_eq!(rate(Unit::Items, 4566.7), "4,567/s");
        assert_eq!(rate(Unit::Items, f64::NAN), "0/s");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn no_estimate_until_it_means_something() {
        let s = Duration::from_secs;
        assert_eq!(eta(s(0), 0.0, s(0)), "");
        assert_eq!(eta(s(1), 0.5, s(1)), "");
        assert_eq!(eta(s(10), 0.01, s(900)), "");
        assert_eq!(eta(s(10), 0.5, s(10)), "eta 10.0s");
        assert_eq!(eta(s(10), 0.9, Duration::ZERO), "eta 1.0s");
        assert_eq!(eta(s(10), 1.0, s(0)), "");
    }

    #[test]
    fn the_widest_line_fits_80_columns() {
        // The template's fixed parts, with the widest label, amounts, rate and estimate.
        let widest = |unit: Unit, big: u64| {
            format!(
                "{:>12} [{}] {} {} {}",
                "x".repeat(LABEL_WIDTH),
                "=".repeat(18),
                done_of(unit, big, Some(big)),
                rate(unit, big as f64),
                eta(
                    Duration::from_secs(100_000),
                    0.5,
                    Duration::from_secs(359_999)
                ),
            )
        };
        for (unit, big) in [(Unit::Bytes, 1023 * (1 << 30)), (Unit::Items, 99_999_999)] {
            let line = widest(unit, big);
            assert!(line.chars().count() <= 80, "{} columns: {line}", line.len());
        }
    }
}
