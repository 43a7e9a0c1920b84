//! `seed`: write deterministic sample records (the same as `vecdrill seed`).

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::progress::NoProgress;
use crate::seed::{seed, SeedOptions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    collection: String,
    count: u64,
    dim: usize,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default = "default_batch")]
    batch_size: usize,
}

fn default_seed() -> u64 {
    42
}
fn default_batch() -> usize {
    1000
}

pub const KIND: StepKind = StepKind {
    name: "seed",
    summary: "upsert `count` deterministic records of dimension `dim` into `collection`",
    outputs: &["written", "count_after", "rows_per_second"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Seed>,
};

#[async_trait]
impl Step for Seed {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let options = SeedOptions {
            collection: self.collection.clone(),
            count: self.count,
            dim: self.dim,
            seed: self.seed,
            batch_size: self.batch_size,
        };
        let summary = seed(ctx.chroma()?, &options, &NoProgress).await?;
        Ok(outputs! {
            "written" => summary.written,
            "count_after" => summary.count_after,
            "rows_per_second" => summary.rows_per_second,
        })
    }
}
