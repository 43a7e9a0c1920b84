//! `count`: per-collection record counts, checked as exact, minimum (seed 004's
//! `--expected-min`) or equal to a captured state.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::chroma::state::collection_counts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// Only this collection; otherwise every collection is checked.
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    exact: Option<u64>,
    #[serde(default)]
    min: Option<u64>,
    /// Name of a state captured earlier; counts must equal it.
    #[serde(default)]
    equals: Option<String>,
    /// Name of a `sample_records` sample: counts must equal what its files said, read
    /// before the server started on them.
    #[serde(default)]
    equals_sample: Option<String>,
    /// Pass when there is no collection at all; otherwise that fails.
    #[serde(default)]
    allow_empty: bool,
}

pub const KIND: StepKind = StepKind {
    name: "count",
    summary: "record counts per collection; check `exact`, `min`, `equals: STATE` or `equals_sample: SAMPLE`",
    outputs: &["total", "collections", "counts"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::CollectionsMin, Objective::Count],
    build: super::build::<Count>,
};

#[async_trait]
impl Step for Count {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let mut counts = collection_counts(ctx.chroma()?).await?;
        ctx.record_counts(counts.clone());
        if !self.allow_empty && counts.is_empty() {
            return Err(ctx.nothing_to_check("counted nothing: there is no collection"));
        }
        if let Some(name) = &self.collection {
            let Some(count) = counts.get(name).copied() else {
                return Err(StepError::Check(format!(
                    "collection {name:?} does not exist"
                )));
            };
            counts.retain(|k, _| k == name);
            debug_assert_eq!(counts.get(name), Some(&count));
        }
        let mut problems = Vec::new();
        for (name, count) in &counts {
            if let Some(exact) = self.exact {
                if *count != exact {
                    problems.push(format!("{name:?} has {count}, expected exactly {exact}"));
                }
            }
            if let Some(min) = self.min {
                if *count < min {
                    problems.push(format!("{name:?} has {count}, expected at least {min}"));
                }
            }
        }
        if let Some(state_name) = &self.equals {
            let state = ctx.memory.states.get(state_name).ok_or_else(|| {
                StepError::Setup(format!(
                    "no state named {state_name:?} was captured before this step"
                ))
            })?;
            for (name, expected) in state.counts() {
                if self.collection.as_ref().is_some_and(|c| *c != name) {
                    continue;
                }
                match counts.get(&name) {
                    None => problems.push(format!("{name:?} is missing (had {expected})")),
                    Some(actual) if *actual != expected => {
                        problems.push(format!("{name:?} has {actual}, captured {expected}"))
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(sample) = &self.equals_sample {
            let read = ctx.memory.sample_counts.get(sample).ok_or_else(|| {
                StepError::Setup(format!(
                    "no sample named {sample:?} was read before this step (`sample_records`)"
                ))
            })?;
            for (name, expected) in read {
                if self.collection.as_ref().is_some_and(|c| c != name) {
                    continue;
                }
                match counts.get(name) {
                    None => {
                        problems.push(format!("{name:?} is missing (its files hold {expected})"))
                    }
                    Some(actual) if actual != expected => {
                        problems.push(format!("{name:?} has {actual}, its files hold {expected}"))
                    }
                    Some(_) => {}
                }
            }
        }
        if counts.is_empty() && (self.min.is_some() || self.exact.is_some()) {
            problems.push("there are no collections".into());
        }
        let out = outputs! {
            "total" => counts.values().sum::<u64>(),
            "collections" => counts.len(),
            "counts" => counts,
        };
        if !problems.is_empty() {
            return Err(StepError::Mismatch {
                message: problems.join("; "),
                outputs: out,
            });
        }
        Ok(out)
    }
}
