//! `search_latency`: N queries at concurrency C (or at a constant rate) against a collection;
//! feeds the `search_p50/p90/p99` objectives.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::latency::chroma_query::{run_search_load, SearchLoad};
use crate::latency::LoadPlan;
use crate::outputs;
use crate::targets::chroma::state::collection_counts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchLatency {
    /// Defaults to the largest collection.
    #[serde(default)]
    collection: Option<String>,
    #[serde(default = "default_queries")]
    queries: u64,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Queries per second; unset sends as fast as `concurrency` allows.
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_warmup")]
    warmup: u64,
    /// Failed queries tolerated before the step fails.
    #[serde(default)]
    max_errors: u64,
}

fn default_queries() -> u64 {
    100
}
fn default_concurrency() -> usize {
    4
}
fn default_k() -> usize {
    10
}
fn default_warmup() -> u64 {
    10
}

pub const KIND: StepKind = StepKind {
    name: "search_latency",
    summary: "measure query latency percentiles (`queries`, `concurrency`, `rate`, `k`)",
    outputs: &[
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "qps",
        "errors",
        "collection",
        "queue_delay_max_ms",
    ],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[
        Objective::SearchP50,
        Objective::SearchP90,
        Objective::SearchP99,
    ],
    build: super::build::<SearchLatency>,
};

#[async_trait]
impl Step for SearchLatency {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let collection = match &self.collection {
            Some(name) => name.clone(),
            None => collection_counts(ctx.chroma()?)
                .await?
                .into_iter()
                .max_by_key(|(_, count)| *count)
                .map(|(name, _)| name)
                .ok_or_else(|| StepError::Check("there is no collection to search".into()))?,
        };
        let load = SearchLoad {
            collection: collection.clone(),
            k: self.k.max(1),
            plan: LoadPlan {
                queries: self.queries.max(1),
                concurrency: self.concurrency.max(1),
                rate: self.rate,
                warmup: self.warmup,
            },
        };
        let summary = run_search_load(ctx.chroma()?, &load).await?;
        let out = outputs! {
            "collection" => collection,
            "p50_ms" => summary.p50_ms,
            "p90_ms" => summary.p90_ms,
            "p99_ms" => summary.p99_ms,
            "max_ms" => summary.max_ms,
            "qps" => summary.qps,
            "errors" => summary.errors,
            "queue_delay_max_ms" => summary.queue_delay_max_ms,
        };
        let failed = summary.errors > self.max_errors;
        let first_error = summary.first_error.clone();
        ctx.memory.latency = Some((ctx.step_id.to_string(), summary));
        if failed {
            return Err(StepError::Check(format!(
                "{} of {} queries failed (allowed {}); first error: {}",
                out["errors"],
                self.queries,
                self.max_errors,
                first_error.unwrap_or_default()
            )));
        }
        Ok(out)
    }
}
