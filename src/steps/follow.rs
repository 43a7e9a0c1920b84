//! `follow`: ship the target's write-ahead log while the drill runs (`action: start`), as
//! `vecdrill follow` does, and stop, shipping what is left (`action: stop`). A follower still
//! running when the run ends is stopped then, so Chroma's purge switch is always set back.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::{oneshot, watch};

use super::{Action, Outputs, Step, StepContext, StepError, StepKind};
use crate::commands::follow::{follow, FollowError, FollowObserver, FollowOptions, FollowReport};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::progress::NoProgress;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    action: Action,
    #[serde(default)]
    repo: Option<String>,
    /// How often the log is read and shipped.
    #[serde(default = "default_interval")]
    interval: HumanDuration,
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

pub const KIND: StepKind = StepKind {
    name: "follow",
    summary: "`action: start` ships the target's log continuously (its first base backup taken), `action: stop` ships what is left and stops",
    outputs: &["base", "segments", "rows", "gaps", "through"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: true,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Follow>,
};

/// A follower running beside the drill.
#[derive(Debug)]
pub struct RunningFollower {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<FollowReport, FollowError>>,
}

impl RunningFollower {
    /// Ship what is left, set the purge switch back, and say what was done.
    pub async fn stop(self) -> Result<FollowReport, StepError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result.map_err(|e| StepError::Setup(format!("the follower failed: {e}"))),
            Err(e) => Err(StepError::Setup(format!("the follower task failed: {e}"))),
        }
    }
}

/// Tells the step when the first pass is done (the base taken, the log shipped once).
struct FirstPass(Option<oneshot::Sender<FollowReport>>);

impl FollowObserver for FirstPass {
    fn passed(&mut self, report: &FollowReport) {
        if let Some(tell) = self.0.take() {
            let _ = tell.send(report.clone());
        }
    }

    fn gap(&mut self, message: &str) {
        tracing::warn!("{message}");
    }
}

fn shown(report: &FollowReport) -> Outputs {
    outputs! {
        "base" => report.base,
        "segments" => report.segments_shipped,
        "rows" => report.rows_shipped,
        "gaps" => report.gaps,
        "through" => report.through,
    }
}

#[async_trait]
impl Step for Follow {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        match self.action {
            Action::Stop => {
                let running = ctx.memory.follower.take().ok_or_else(|| {
                    StepError::Setup(
                        "no follower is running (`follow` with `action: start` starts one)".into(),
                    )
                })?;
                Ok(shown(&running.stop().await?))
            }
            Action::Start => {
                if ctx.memory.follower.is_some() {
                    return Err(StepError::Setup("a follower is already running".into()));
                }
                let repo = ctx.open_or_create_repo(self.repo.as_deref()).await?;
                let options = FollowOptions {
                    dir: ctx.data_dir(None)?,
                    take_over_purge: true,
                    interval: self.interval.as_duration(),
                    base_every: None,
                    once: false,
                    max_write_stall: Duration::from_secs(30),
                    tags: vec![format!("drill:{}", ctx.step_id)],
                };
                let (stop, mut stopped) = watch::channel(false);
                let (tell, first) = oneshot::channel();
                let task = tokio::spawn(async move {
                    let mut observer = FirstPass(Some(tell));
                    let stop = async move {
                        let _ = stopped.changed().await;
                    };
                    follow(&repo, &options, &NoProgress, stop, &mut observer).await
                });
                match first.await {
                    Ok(report) => {
                        ctx.memory.follower = Some(RunningFollower { stop, task });
                        Ok(shown(&report))
                    }
                    // It ended before its first pass: its error says why.
                    Err(_) => match task.await {
                        Ok(Err(err)) => {
                            Err(StepError::Setup(format!("the follower failed: {err}")))
                        }
                        _ => Err(StepError::Setup(
                            "the follower stopped before its first pass".into(),
                        )),
                    },
                }
            }
        }
    }
}
