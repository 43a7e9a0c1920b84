//! `writes`: a writer beside the drill, adding, updating and deleting records of a collection
//! continuously and recording each acknowledged write (`action: start` / `action: stop`);
//! `compare_writes`: after a restore to a moment, every write acknowledged by then is there
//! and none sent after it (see `targets::chroma::writes`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::watch;

use super::{Action, Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::targets::chroma::writes::{write_until, WriteLog, WriterSettings};
use crate::targets::chroma::ChromaError;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writes {
    action: Action,
    /// With `start`: the collection written to (it must exist).
    #[serde(default)]
    collection: Option<String>,
    #[serde(default = "default_dim")]
    dim: usize,
    /// Records per add.
    #[serde(default = "default_batch")]
    batch: usize,
    /// Between writes.
    #[serde(default = "default_pause")]
    pause: HumanDuration,
}

fn default_dim() -> usize {
    384
}
fn default_batch() -> usize {
    5
}
fn default_pause() -> HumanDuration {
    HumanDuration(Duration::from_millis(50))
}

pub const KIND: StepKind = StepKind {
    name: "writes",
    summary: "`action: start` writes to `collection` continuously (adds, updates, deletes), recording each acknowledged write; `action: stop` ends it",
    outputs: &["writes", "acknowledged", "failed"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Writes>,
};

/// The writer running beside the drill.
#[derive(Debug)]
pub struct RunningWriter {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<WriteLog, ChromaError>>,
}

impl RunningWriter {
    pub async fn stop(self) -> Result<WriteLog, StepError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => Ok(result?),
            Err(e) => Err(StepError::Setup(format!("the writer task failed: {e}"))),
        }
    }
}

#[async_trait]
impl Step for Writes {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        match self.action {
            Action::Start => {
                let collection = self.collection.clone().ok_or_else(|| {
                    StepError::Setup("`writes` with `action: start` needs `collection`".into())
                })?;
                if ctx.memory.writer.is_some() {
                    return Err(StepError::Setup("a writer is already running".into()));
                }
                let client = ctx.chroma()?.clone();
                // The collection must exist before the writer is said to have started.
                client.collection(&collection).await?;
                let settings = WriterSettings {
                    collection,
                    dim: self.dim,
                    batch: self.batch.max(1),
                    pause: self.pause.as_duration(),
                };
                let (stop, stopped) = watch::channel(false);
                let task =
                    tokio::spawn(async move { write_until(&client, &settings, stopped).await });
                ctx.memory.writer = Some(RunningWriter { stop, task });
                Ok(Outputs::new())
            }
            Action::Stop => {
                let running = ctx.memory.writer.take().ok_or_else(|| {
                    StepError::Setup(
                        "no writer is running (`writes` with `action: start` starts one)".into(),
                    )
                })?;
                let log = running.stop().await?;
                let acknowledged = log.writes.iter().filter(|w| w.acked_at.is_some()).count();
                let outputs = outputs! {
                    "writes" => log.writes.len(),
                    "acknowledged" => acknowledged,
                    "failed" => log.writes.len() - acknowledged,
                };
                std::fs::write(
                    ctx.run_dir.join("writes.json"),
                    serde_json::to_vec_pretty(&log).unwrap_or_default(),
                )
                .map_err(|e| StepError::io("cannot keep the writer's record", e))?;
                ctx.memory.writes = Some(log);
                Ok(outputs)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareWrites {}

pub const COMPARE: StepKind = StepKind {
    name: "compare_writes",
    summary: "after a restore to a moment (`restore` with `at`): every write the writer had acknowledged by then is there, none sent after it; the newest recovered write sets the RPO",
    outputs: &["acknowledged", "expected_records", "recovered_records", "wrong", "in_flight", "count"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::Rpo],
    build: super::build::<CompareWrites>,
};

#[async_trait]
impl Step for CompareWrites {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let log = ctx.memory.writes.clone().ok_or_else(|| {
            StepError::Setup("no writer's record: run `writes` (start, then stop) first".into())
        })?;
        let moment = ctx.memory.point_in_time.ok_or_else(|| {
            StepError::Setup(
                "nothing was restored to a moment: run `restore` with `at` first".into(),
            )
        })?;
        let expected = log.expected_at(moment);
        if expected.acknowledged == 0 {
            return Err(
                ctx.nothing_to_check("no write was acknowledged before the restored moment")
            );
        }
        let client = ctx.chroma()?;
        let collection = client.collection(&log.collection).await?;
        let ids: Vec<String> = expected.touched.iter().cloned().collect();
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(500) {
            let page = client
                .get_by_ids(&collection.id, chunk, &["documents"])
                .await?;
            let documents = page.documents.unwrap_or_default();
            for (id, document) in page.ids.into_iter().zip(documents) {
                found.insert(id, document.unwrap_or_default());
            }
        }
        let comparison = expected.compare(&found);
        let count = client.count(&collection.id).await?;
        let expected_count = log.count_before + expected.records.len() as u64;
        let count_right = comparison.in_flight > 0 || count == expected_count;
        // The data's age at the disaster: the newest write it holds.
        if let Some(newest) = expected.newest_ack {
            if let Some((label, _)) = ctx.memory.restored.clone() {
                ctx.memory.restored = Some((label, newest));
            }
        }
        let outputs = outputs! {
            "acknowledged" => expected.acknowledged,
            "expected_records" => comparison.expected_records,
            "recovered_records" => comparison.recovered_records,
            "wrong" => comparison.wrong_total,
            "in_flight" => comparison.in_flight,
            "count" => count,
        };
        if comparison.wrong_total > 0 || !count_right {
            return Err(StepError::Mismatch {
                message: format!(
                    "the restored {:?} differs from the writer's record at {}: {} record(s) wrong ({}); count {count}, {expected_count} expected",
                    log.collection,
                    crate::duration::format_utc(moment),
                    comparison.wrong_total,
                    comparison.wrong.join("; ")
                ),
                outputs,
            });
        }
        Ok(outputs)
    }
}
