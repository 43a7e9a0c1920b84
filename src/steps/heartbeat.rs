//! `heartbeat`: one heartbeat request; fails when it is not answered in time.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::{millis, HumanDuration};
use crate::outputs;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Seed 004's health check allows 10 seconds.
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

pub const KIND: StepKind = StepKind {
    name: "heartbeat",
    summary: "one heartbeat; fails if not answered within `timeout` (10s)",
    outputs: &["latency_ms", "nanos"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::HeartbeatWithin],
    build: super::build::<Heartbeat>,
};

#[async_trait]
impl Step for Heartbeat {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let started = Instant::now();
        let nanos = ctx.chroma()?.heartbeat(self.timeout.as_duration()).await?;
        ctx.memory.healthy_at.push(Utc::now());
        Ok(outputs! { "latency_ms" => millis(started.elapsed()), "nanos" => nanos })
    }
}
