//! Human durations ("500ms", "5m", "1h 30m", "90d") as they appear in scenarios and flags,
//! and the one way durations and moments are shown to people.
//!
//! One newtype so every place that reads a duration accepts the same spellings and
//! prints them back the same way.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written by a person: `250ms`, `30s`, `5m`, `24h`, `7d`, or `1h 30m`.
/// A bare number is read as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            if seconds.is_finite() && seconds >= 0.0 {
                return Self::from_secs(seconds);
            }
        }
        humantime::parse_duration(&months_spelled_out(text))
            .map_err(|err| {
                format!("bad duration {text:?}: {err} (write it like 500ms, 30s, 5m, 2h or 7d)")
            })
            .and_then(Self::within_range)
    }
}

/// `12mo` as humantime reads months (`12months`, 30.44 days each); other text unchanged.
fn months_spelled_out(text: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(at) = rest.find("mo") {
        let after = &rest[at + 2..];
        let after_digit = rest[..at].ends_with(|c: char| c.is_ascii_digit());
        let word_ends = !after.starts_with(|c: char| c.is_ascii_alphabetic());
        out.push_str(&rest[..at]);
        out.push_str(if after_digit && word_ends {
            "months"
        } else {
            "mo"
        });
        rest = after;
    }
    if out.is_empty() {
        return text.into();
    }
    out.push_str(rest);
    out.into()
}

/// The longest duration accepted anywhere: 100 years. Durations are added to clocks
/// (`Instant + timeout`), which panics on overflow, so a larger one is refused as input.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl HumanDuration {
    fn from_secs(seconds: f64) -> Result<Self, String> {
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("bad duration {seconds}: not a number of seconds"))
            .and_then(Self::within_range)
    }

    fn within_range(duration: Duration) -> Result<Self, String> {
        if duration > MAX_DURATION {
            return Err(format!(
                "duration {} is too long: at most 100 years",
                humantime::format_duration(duration)
            ));
        }
        Ok(Self(duration))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) if s.is_finite() && s >= 0.0 => {
                Self::from_secs(s).map_err(serde::de::Error::custom)
            }
            Raw::Seconds(s) => Err(serde::de::Error::custom(format!("bad duration {s}"))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Short, readable rendering: `850ms`, `12.3s`, `4m 05s`, `2h 10m`, `3d 4h`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0ms".to_string();
    }
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        return format!("{:.3}ms", ms);
    }
    if ms < 1000.0 {
        return format!("{}ms", ms.round() as u64);
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    if secs < 3600 {
        return format!("{}m {:02}s", secs / 60, secs % 60);
    }
    if secs < 86_400 {
        return format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60);
    }
    format!("{}d {}h", secs / 86_400, (secs % 86_400) / 3600)
}

/// Milliseconds as a float, the unit of every `*_ms` field in reports.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A figure in milliseconds (the unit of every `*_ms` field) as a `Duration`; negative counts
/// as zero.
pub fn from_ms(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

/// A figure in milliseconds, as [`format_duration`] writes it; negative counts as zero.
pub fn format_ms(ms: f64) -> String {
    format_duration(from_ms(ms))
}

/// A moment as people read it in reports, errors and listings: `2026-03-01 09:30:00 UTC`.
pub fn format_utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A moment as people give one on the command line: RFC 3339 (`2026-03-01T09:30:00Z`), the
/// way vecdrill prints moments (`2026-03-01 09:30:00 UTC`, or without ` UTC`: UTC either way),
/// `now`, or a duration before `now` (`5m ago`, `90s ago`).
pub fn parse_moment(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(before) = text.strip_suffix("ago") {
        let back: HumanDuration = before.trim().parse()?;
        return chrono::Duration::from_std(back.0)
            .ok()
            .and_then(|back| now.checked_sub_signed(back))
            .ok_or_else(|| format!("{text:?} is too long ago"));
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let plain = text.strip_suffix("UTC").unwrap_or(text).trim();
    chrono::NaiveDateTime::parse_from_str(plain, "%Y-%m-%d %H:%M:%S")
        .map(|at| at.and_utc())
        .map_err(|_| {
            format!(
                "bad moment {text:?}: write it as 2026-03-01T09:30:00Z, 2026-03-01 09:30:00 (UTC), now, or 5m ago"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_read_in_every_documented_spelling() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .to_utc();
        let at = |text: &str| parse_moment(text, now).map(|t| t.to_rfc3339());
        assert_eq!(at("now").unwrap(), "2026-11-30T12:00:00+00:00");
        assert_eq!(at("5m ago").unwrap(), "2026-11-30T11:55:00+00:00");
        assert_eq!(at("5 minutes ago").unwrap(), "2026-11-30T11:55:00+00:00");
        assert_eq!(
            at("2026-11-30T13:00:00+01:00").unwrap(),
            "2026-11-30T12:00:00+00:00"
        );
        assert_eq!(
            at("2026-11-30 11:00:01 UTC").unwrap(),
            "2026-11-30T11:00:01+00:00"
        );
        assert_eq!(
            at("2026-11-30 11:00:01").unwrap(),
            "2026-11-30T11:00:01+00:00"
        );
        assert!(at("yesterday").unwrap_err().contains("5m ago"));
    }

    #[test]
    fn parses_the_spellings_people_use() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h 30m", 5_400_000),
            ("2", 2_000),
            ("0.25", 250),
            ("12mo", 12 * 2_630_016_000),
            ("1y 6mo", 31_557_600_000 + 6 * 2_630_016_000),
            ("2months", 2 * 2_630_016_000),
        ];
        for (text, ms) in cases {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0, Duration::from_millis(ms), "{text}");
        }
        assert!("five minutes".parse::<HumanDuration>().is_err());
        assert!("6mon".parse::<HumanDuration>().is_err());
        assert!("-3".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn issue_15_8_out_of_range_durations_are_errors_not_panics() {
        for text in [
            "18446744073709551616",
            "1e300",
            "200y",
            "99999999999999999999d",
        ] {
            let err = text.parse::<HumanDuration>().unwrap_err();
            assert!(err.contains("duration"), "{text}: {err}");
        }
        let yaml: Result<HumanDuration, _> = serde_yaml::from_str("18446744073709551616");
        assert!(yaml.is_err());
        assert_eq!(from_ms(f64::MAX), Duration::MAX);
        assert!("99y".parse::<HumanDuration>().is_ok());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0ms");
        assert_eq!(format_ms(-3.0), "0ms");
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(format_duration(Duration::from_secs(7800)), "2h 10m");
    }
}
