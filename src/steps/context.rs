//! What a running step can reach: the target, the service, and what earlier steps measured.

use crate::repo::Repository;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::StepError;
use crate::latency::LatencySummary;
use crate::platform::Service;
use crate::targets::chroma::{ChromaClient, TargetState};
use crate::targets::spec::TargetSpec;

/// Measurements collected during a run, read by later steps and by objective evaluation.
#[derive(Debug, Default)]
pub struct Memory {
    /// States captured by `capture_state`, by name.
    pub states: BTreeMap<String, TargetState>,
    /// The last `search_latency` result and the step that measured it.
    pub latency: Option<(String, LatencySummary)>,
    /// Moments a heartbeat was answered, in order.
    pub healthy_at: Vec<DateTime<Utc>>,
    /// The last per-collection counts seen, and the step that saw them.
    pub counts: Option<(String, BTreeMap<String, u64>)>,
    /// The last backup restored (id, when it was taken), for RPO.
    pub restored: Option<(String, DateTime<Utc>)>,
    /// Records sampled by `sample_records`, by name.
    pub samples: BTreeMap<String, super::records::Sample>,
    /// Each sample's per-collection counts as its files say a server must answer them.
    pub sample_counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// The follower and the writer running beside the drill (`follow`, `writes`).
    pub follower: Option<super::follow::RunningFollower>,
    pub writer: Option<super::writes::RunningWriter>,
    /// The writer's record, once it stopped.
    pub writes: Option<crate::targets::chroma::writes::WriteLog>,
    /// The end of the second the last restore to a moment restored.
    pub point_in_time: Option<DateTime<Utc>>,
    /// Why the target's data directory could not be found (a container's mounts).
    pub data_dir_problem: Option<String>,
}

impl Memory {
    /// Stop what still runs beside the drill: the writer, then the follower (which ships what
    /// is left and sets Chroma's purge switch back).
    pub async fn stop_background(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(err) = writer.stop().await {
                tracing::warn!("{err}");
            }
        }
        if let Some(follower) = self.follower.take() {
            if let Err(err) = follower.stop().await {
                tracing::warn!("{err}");
            }
        }
    }
}

pub struct StepContext<'a> {
    pub step_id: &'a str,
    /// The target, live.
    pub live: &'a dyn crate::targets::Target,
    pub service: Option<&'a mut (dyn Service + 'static)>,
    pub memory: &'a mut Memory,
    /// The run's report directory (service log, captured states).
    pub run_dir: &'a Path,
    /// The scenario's target and backup repository.
    pub target: &'a TargetSpec,
    pub repo: Option<&'a str>,
    /// Where an encrypted repository's password comes from (the run's flags, else the
    /// environment).
    pub passwords: &'a crate::repo::password::PasswordSources,
    /// What runs a `prove` step's proof (the drill runner).
    pub prover: Option<&'a dyn super::Prover>,
}

impl<'a> StepContext<'a> {
    /// The target's Chroma collections (`validate` lets only Chroma targets run the steps
    /// that ask).
    pub fn chroma(&self) -> Result<&'a ChromaClient, StepError> {
        self.live.chroma().ok_or_else(|| {
            StepError::Setup(format!(
                "this step works on Chroma targets, not on `{}`",
                self.live.kind().name()
            ))
        })
    }

    /// The Chroma server at `url` (another than the target: an upgrade's old server, say),
    /// else the target's own.
    pub fn chroma_at(&self, url: Option<&str>) -> Result<ChromaClient, StepError> {
        match url {
            Some(url) => Ok(ChromaClient::new(url)),
            None => self.chroma().cloned(),
        }
    }

    pub fn service(&mut self) -> Result<&mut (dyn Service + 'static), StepError> {
        self.service.as_deref_mut().ok_or_else(|| {
            StepError::Setup("this step needs `target.service` in the scenario".into())
        })
    }

    /// The repository a step uses, opened with the run's passwords.
    pub async fn open_repo(&self, own: Option<&str>) -> Result<Repository, StepError> {
        Ok(Repository::open_with(&self.repo_url(own)?, self.passwords, None).await?)
    }

    /// [`Self::open_repo`], creating the repository on first use (encrypted when the run has
    /// a password).
    pub async fn open_or_create_repo(&self, own: Option<&str>) -> Result<Repository, StepError> {
        Ok(Repository::open_or_create_with(&self.repo_url(own)?, self.passwords, None).await?)
    }

    /// The repository a step uses: its own `repo:` or the scenario's.
    pub fn repo_url(&self, own: Option<&str>) -> Result<String, StepError> {
        own.or(self.repo).map(str::to_string).ok_or_else(|| {
            StepError::Setup(
                "no backup repository: add `repo:` to the scenario or to the step".into(),
            )
        })
    }

    /// The data directory a step uses: its own or `target.data_dir`.
    /// Whose backups `latest` means in this drill: the one `named`, else the target's own
    /// (its data directory, its kind), else the repository's only source.
    pub fn source_choice(&self, named: Option<String>) -> crate::repo::SourceChoice {
        crate::repo::SourceChoice {
            named,
            path: self
                .target
                .data_dir()
                .map(crate::targets::chroma::protect::source_path),
            kind: Some(self.target.kind().source_kind().into()),
        }
    }

    pub fn data_dir(&self, own: Option<&Path>) -> Result<std::path::PathBuf, StepError> {
        own.or(self.target.data_dir())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                StepError::Setup(match &self.memory.data_dir_problem {
                    Some(problem) => format!("no data directory: {problem}"),
                    None => {
                        "no data directory: add `data_dir:` to the target or to the step".into()
                    }
                })
            })
    }

    /// A check found nothing to check: say so with the likely cause, so an empty or mistyped
    /// data directory is never taken for a healthy, recovered database.
    pub fn nothing_to_check(&self, what: &str) -> StepError {
        let data_dir = match self.target.data_dir() {
            Some(dir) => format!(" (data directory {})", dir.display()),
            None => String::new(),
        };
        StepError::Check(format!(
            "{what} at {}{data_dir}: is the scenario's `target.data_dir` or `url` (or a --var) right? Add `allow_empty: true` to the step if an empty database is expected",
            self.target.url()
        ))
    }

    pub fn record_counts(&mut self, counts: BTreeMap<String, u64>) {
        self.memory.counts = Some((self.step_id.to_string(), counts));
    }
}
