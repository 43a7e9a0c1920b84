//! Percentages as people write them in scenarios and flags: `20%`, `99.5%`, or a bare `20`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A percentage, stored as written (`20%` is `Percent(20.0)`), never negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl Percent {
    /// The fraction it stands for: `20%` is 0.2.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

/// The change from `before` to `now` in percent (`+25.0` when 100 became 125); none without a
/// positive `before` to compare with.
pub fn change(now: f64, before: f64) -> Option<f64> {
    (before > 0.0).then(|| (now - before) / before * 100.0)
}

/// A change as reports show it, with its sign: `+12.5%`, `-3.0%`.
pub fn format_change(change: f64) -> String {
    format!("{change:+.1}%")
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map(Self)
            .ok_or_else(|| format!("expected a percentage such as 20%, got {text:?}"))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n.to_string().parse(),
            Raw::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spellings_people_write() {
        assert_eq!("20%".parse::<Percent>(), Ok(Percent(20.0)));
        assert_eq!(" 99.5 % ".parse::<Percent>(), Ok(Percent(99.5)));
        assert_eq!("85".parse::<Percent>(), Ok(Percent(85.0)));
        assert!("-3%".parse::<Percent>().is_err());
        assert!("lots".parse::<Percent>().is_err());
        assert_eq!(Percent(20.0).fraction(), 0.2);
    }
}
