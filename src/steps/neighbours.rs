//! `compare_neighbours`: the probe queries a backup recorded, asked of a server, judged by
//! recall against their exact neighbours. The query vectors come from a sample read offline
//! (`sample_records` with `first`), so a server that serves other vectors cannot choose its
//! own questions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::chroma::layout::ExactProbe;
use crate::targets::chroma::neighbours::recall;
use crate::targets::spec::TargetKind;

/// The default least recall: see the README ("Proof: `prove`") for the measurements.
pub const DEFAULT_MIN_RECALL: f64 = 0.25;

/// Relative slack on a distance the server answers against the one recorded (it sums in its
/// own order of operations; a vector that is not the backup's is off by far more).
const DISTANCE_TOLERANCE: f32 = 1e-3;

/// How many neighbours each probe asks for, whatever it recorded: hnswlib searches with
/// `max(ef, n_results)` candidates, so a larger answer judges the index's graph rather than a
/// collection's `ef` setting (on random 20000 x 1536 vectors, 60% of the exact top 10 found
/// asking for 10, 75% asking for 100: README, "Proof: `prove`").
const ASKED: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareNeighbours {
    /// The sample holding the probes' query vectors (`sample_records`' `name`).
    #[serde(default = "default_name")]
    against: String,
    /// The probes a backup recorded, by collection.
    probes: BTreeMap<String, Vec<ExactProbe>>,
    /// Each collection's mean recall must reach this.
    #[serde(default = "default_min_recall", deserialize_with = "min_recall")]
    min_recall: f64,
}

/// A least recall: a fraction from 0 to 1 (refused when the scenario or command is read, not
/// after a proof has restored and started a server).
pub fn parse_min_recall(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    checked_min_recall(value)
}

fn checked_min_recall(value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not a recall: give a fraction from 0 to 1, e.g. 0.8"
        ))
    }
}

/// `min_recall` as a step reads it: checked like [`parse_min_recall`].
pub fn min_recall<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    checked_min_recall(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

fn default_name() -> String {
    "records".into()
}

fn default_min_recall() -> f64 {
    DEFAULT_MIN_RECALL
}

pub const COMPARE_NEIGHBOURS: StepKind = StepKind {
    name: "compare_neighbours",
    summary: "ask the server a backup's recorded probe queries; each collection's mean recall against their exact neighbours must reach `min_recall` (0.25)",
    outputs: &["probes", "mean_recall", "worst_recall"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<CompareNeighbours>,
};

/// One collection's answers.
struct Judged {
    collection: String,
    mean: f64,
    /// The worst probe: its record and recall.
    worst: (String, f64),
}

#[async_trait]
impl Step for CompareNeighbours {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let (sample, client, ids_of) =
            super::records::sample_and_server(ctx, &self.against).await?;
        let mut problems = Vec::new();
        let mut judged = Vec::new();
        for (name, probes) in self.probes.iter().filter(|(_, p)| !p.is_empty()) {
            let Some(id) = ids_of.get(name) else {
                problems.push(format!("collection {name:?} is missing"));
                continue;
            };
            let records = sample.get(name).map(Vec::as_slice).unwrap_or_default();
            let mut queries = Vec::with_capacity(probes.len());
            for probe in probes {
                match records.iter().find(|r| r.id == probe.record) {
                    Some(record) => queries.push(record.embedding.clone()),
                    None => problems.push(format!(
                        "collection {name:?}: probe record {:?} is not in the restored directory",
                        probe.record
                    )),
                }
            }
            if queries.len() < probes.len() {
                continue;
            }
            // Never more than the collection holds (Chroma 0.4 refuses that).
            let asked = ASKED.min(client.count(id).await? as usize).max(1);
            let answers = client.query_with_distances(id, &queries, asked).await?;
            let recalls: Vec<f64> = probes
                .iter()
                .zip(
                    answers
                        .iter()
                        .map(Vec::as_slice)
                        .chain(std::iter::repeat(&[][..])),
                )
                .map(|(probe, answer)| recall(DISTANCE_TOLERANCE, probe, answer))
                .collect();
            let mean = recalls.iter().sum::<f64>() / recalls.len() as f64;
            let (worst_at, worst) = recalls
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 1.0));
            judged.push(Judged {
                collection: name.clone(),
                mean,
                worst: (probes[worst_at].record.clone(), worst),
            });
        }
        let total: usize = self.probes.values().map(Vec::len).sum();
        if total == 0 {
            return Err(ctx.nothing_to_check("no probe was recorded"));
        }
        let mean = judged.iter().map(|j| j.mean).sum::<f64>() / judged.len().max(1) as f64;
        let worst = judged.iter().map(|j| j.worst.1).fold(1.0, f64::min);
        let out = outputs! {
            "probes" => total,
            "mean_recall" => round(mean),
            "worst_recall" => round(worst),
        };
        for j in judged.iter().filter(|j| j.mean < self.min_recall) {
            problems.push(format!(
                "collection {:?}: mean recall {:.2} is below {:.2}; worst probe: record {:?} found {:.0}% of its recorded neighbours",
                j.collection,
                j.mean,
                self.min_recall,
                j.worst.0,
                j.worst.1 * 100.0
            ));
        }
        match problems.first() {
            None => Ok(out),
            Some(first) => Err(StepError::Mismatch {
                message: if problems.len() == 1 {
                    first.clone()
                } else {
                    format!("{first} (and {} more)", problems.len() - 1)
                },
                outputs: out,
            }),
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::parse_min_recall;

    #[test]
    fn a_least_recall_is_a_fraction_from_0_to_1() {
        assert_eq!(parse_min_recall("0.8"), Ok(0.8));
        assert_eq!(parse_min_recall("0"), Ok(0.0));
        assert_eq!(parse_min_recall("1"), Ok(1.0));
        for bad in ["2", "-0.1", "NaN", "80%", ""] {
            assert!(parse_min_recall(bad).is_err(), "{bad}");
        }
    }
}
