//! A scenario's baseline: the figures of one chosen run that relative objectives
//! (`max_regression`, `min_of_baseline`) compare with. Set and stored by the history; its
//! shape is the drill's, so objectives and reports need nothing from the history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A scenario's reference figures for relative objectives.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub scenario: String,
    pub run_id: String,
    pub run_started_at: DateTime<Utc>,
    pub set_at: DateTime<Utc>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub counts: BTreeMap<String, u64>,
}

impl Baseline {
    /// The baseline's figure for a latency percentile (`p50`, `p90`, `p99`).
    pub fn percentile_ms(&self, name: &str) -> Option<f64> {
        match name {
            "p50" => self.p50_ms,
            "p90" => self.p90_ms,
            "p99" => self.p99_ms,
            _ => None,
        }
    }
}
