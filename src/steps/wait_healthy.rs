//! `wait_healthy`: poll the heartbeat until it answers; the first healthy moment is recorded
//! (it feeds `heartbeat_within` and the timeline).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::{millis, HumanDuration};
use crate::outputs;
use crate::targets::chroma::{ChromaClient, ChromaTarget};
use crate::targets::spec::TargetKind;
use crate::targets::Target;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthy {
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
    #[serde(default = "default_interval")]
    interval: HumanDuration,
    /// Wait for another Chroma server than the target (an upgrade's old one); its health
    /// is not the target's, so it feeds no objective.
    #[serde(default)]
    url: Option<String>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}

pub const KIND: StepKind = StepKind {
    name: "wait_healthy",
    summary: "poll the heartbeat (Redis: loaded; or the Chroma at `url`) every `interval` (200ms) until healthy or `timeout` (60s)",
    outputs: &["healthy_after_ms", "attempts"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::HeartbeatWithin],
    build: super::build::<WaitHealthy>,
};

#[async_trait]
impl Step for WaitHealthy {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let started = Instant::now();
        let deadline = started + self.timeout.as_duration();
        let per_try = self.interval.as_duration().max(Duration::from_secs(2));
        let other = self.url.as_deref().map(|url| ChromaTarget {
            client: ChromaClient::new(url),
        });
        let probed: &dyn Target = match &other {
            Some(other) => other,
            None => ctx.live,
        };
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            let error = match probed.probe(per_try).await {
                Ok(()) => {
                    if other.is_none() {
                        ctx.memory.healthy_at.push(Utc::now());
                    }
                    return Ok(outputs! {
                        "healthy_after_ms" => millis(started.elapsed()),
                        "attempts" => attempts,
                    });
                }
                Err(err) => err,
            };
            if Instant::now() + self.interval.as_duration() > deadline {
                return Err(StepError::Check(format!(
                    "not healthy after {} ({attempts} attempts); last error: {error}",
                    self.timeout
                )));
            }
            tokio::time::sleep(self.interval.as_duration()).await;
        }
    }
}
