//! `start`, `stop` and `restart`: drive `target.service`.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind, WithError};

#[derive(Debug, Clone, Copy)]
enum Action {
    Start,
    Stop,
    Restart,
}

/// The three actions take no parameters; `with:` must be empty.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

struct ServiceStep(Action);

fn build_as(action: Action, with: serde_yaml::Value) -> Result<Box<dyn Step>, WithError> {
    let with = match with {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        other => other,
    };
    serde_path_to_error::deserialize::<_, NoParams>(with)?;
    Ok(Box::new(ServiceStep(action)))
}

pub const START: StepKind = StepKind {
    name: "start",
    summary: "start the target's service",
    outputs: &[],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: true,
    measures: &[],
    build: |with| build_as(Action::Start, with),
};

pub const STOP: StepKind = StepKind {
    name: "stop",
    summary: "stop the target's service gracefully",
    outputs: &[],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: true,
    measures: &[],
    build: |with| build_as(Action::Stop, with),
};

pub const RESTART: StepKind = StepKind {
    name: "restart",
    summary: "restart the target's service",
    outputs: &[],
    needs_service: true,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: true,
    measures: &[],
    build: |with| build_as(Action::Restart, with),
};

#[async_trait]
impl Step for ServiceStep {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let service = ctx.service()?;
        match self.0 {
            Action::Start => service.start().await?,
            Action::Stop => service.stop().await?,
            Action::Restart => service.restart().await?,
        }
        Ok(Outputs::new())
    }
}
