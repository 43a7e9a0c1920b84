//! `sleep`: wait a fixed time (e.g. to let a writer make progress before a fault).

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    duration: HumanDuration,
}

pub const KIND: StepKind = StepKind {
    name: "sleep",
    summary: "wait `duration`",
    outputs: &[],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Sleep>,
};

#[async_trait]
impl Step for Sleep {
    async fn run(&self, _ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        tokio::time::sleep(self.duration.as_duration()).await;
        Ok(Outputs::new())
    }
}
