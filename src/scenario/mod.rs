//! Drill scenarios: the YAML model, variable substitution and validation.
//!
//! A scenario is loaded in one pass that collects every problem it finds, each reported as
//! `FILE:LINE:COL: message` ([`Diagnostic`]); `vecdrill validate` prints them all and a run
//! refuses to start while there is any.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::exit::{self, Classify};
use crate::percent::Percent;
use crate::steps::StepKind;

pub use crate::targets::spec::{TargetKind, TargetSpec};

mod load;
pub mod notify;
pub mod vars;
pub mod yaml;

pub use load::{load_file, load_str, LoadOptions};
pub use yaml::Pos;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl Classify for ScenarioError {
    fn exit_code(&self) -> i32 {
        exit::BAD_INPUT
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Read { .. } => {
                Some("check the path; scenarios usually live under scenarios/".into())
            }
            Self::Invalid(d) => Some(format!(
                "{} problem(s); fix them and check again with `vecdrill validate FILE`",
                d.len()
            )),
        }
    }
}

/// A loaded, validated scenario with load-time variables already substituted.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub vars: BTreeMap<String, String>,
    pub target: TargetSpec,
    pub repo: Option<String>,
    pub objectives: Objectives,
    pub steps: Vec<StepSpec>,
    pub rollback: Vec<StepSpec>,
    /// Where to send the run's summary (on failure, or always).
    pub notify: Option<notify::NotifySpec>,
}

/// Written recovery objectives; each is evaluated to target / measured / passed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Time from the `disaster` mark to the `recovered` mark.
    pub rto: Option<HumanDuration>,
    /// Age of the restored backup at the `disaster` mark: the data the recovery lost.
    pub rpo: Option<HumanDuration>,
    pub search_p50: Option<LatencyObjective>,
    pub search_p90: Option<LatencyObjective>,
    pub search_p99: Option<LatencyObjective>,
    /// Every collection holds at least this many records (seed 004's `--expected-min`).
    pub collections_min: Option<u64>,
    /// Every collection of the baseline holds at least this share of its baseline count.
    pub count: Option<CountObjective>,
    /// Time from the `disaster` mark (or the run's start) to the first answered heartbeat.
    pub heartbeat_within: Option<HumanDuration>,
    /// The objectives' names in the order the scenario writes them: reports list them so.
    #[serde(skip)]
    pub order: Vec<String>,
}

/// A latency objective: a ceiling (`search_p90: 500ms`) or, against the scenario's baseline,
/// a largest allowed regression (`search_p90: { max_regression: 20% }`), optionally with a
/// ceiling as well (`{ max: 500ms, max_regression: 20% }`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencyObjective {
    pub max: Option<HumanDuration>,
    pub max_regression: Option<Percent>,
}

/// The map form of a [`LatencyObjective`], with unknown keys refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyObjectiveMap {
    #[serde(default)]
    max: Option<HumanDuration>,
    #[serde(default)]
    max_regression: Option<Percent>,
}

impl<'de> Deserialize<'de> for LatencyObjective {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = LatencyObjective;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, or { max_regression: 20% }")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let max = text.parse::<HumanDuration>().map_err(E::custom)?;
                Ok(LatencyObjective {
                    max: Some(max),
                    max_regression: None,
                })
            }
            fn visit_f64<E: serde::de::Error>(self, seconds: f64) -> Result<Self::Value, E> {
                self.visit_str(&seconds.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Self::Value, E> {
                self.visit_str(&seconds.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Self::Value, E> {
                self.visit_str(&seconds.to_string())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let LatencyObjectiveMap {
                    max,
                    max_regression,
                } = LatencyObjectiveMap::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                if max.is_none() && max_regression.is_none() {
                    return Err(serde::de::Error::custom(
                        "give `max`, `max_regression` or both",
                    ));
                }
                Ok(LatencyObjective {
                    max,
                    max_regression,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `count: { min_of_baseline: 99% }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountObjective {
    pub min_of_baseline: Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Disaster,
    Recovered,
}

/// One step as written, with load-time variables substituted.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The `id:` given, or one derived from the kind (`start`, `start-2`, ...).
    pub id: String,
    pub kind: &'static StepKind,
    /// Parameters; may still hold `${steps.ID.OUTPUT}` references, resolved at run time.
    pub with: serde_yaml::Value,
    pub timeout: Option<HumanDuration>,
    pub retries: u32,
    pub continue_on_error: bool,
    pub mark: Option<Mark>,
    pub pos: Pos,
}
