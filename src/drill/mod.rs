//! The drill runner: executes a scenario's steps with timeouts and retries, places the
//! `disaster` / `recovered` marks, runs the rollback steps after any failure or interrupt,
//! stops every process it started, evaluates the objectives and writes the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

pub mod baseline;
pub mod objectives;
pub mod outcome;
pub mod prove;
pub mod timeline;

use crate::duration::millis;
use crate::exit::{self, Classify};
use crate::platform::{self, Service, ServiceEnv, ServiceSpec};
use crate::repo::password::{PasswordError, PasswordSources, Prompt};
use crate::repo::{RepoError, Repository};
use crate::scenario::{Scenario, StepSpec};
use crate::steps::{Memory, Outputs, StepContext};
use outcome::{DrillReport, Failure, ReportParts};
use timeline::{Phase, StepRecord, StepStatus, Timeline};

/// A step with no `timeout:` of its own is cut off after this long.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("cannot prepare the report directory {path}: {source}")]
    ReportDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the report in {path}: {source}")]
    WriteReport {
        path: String,
        source: std::io::Error,
    },
}

impl Classify for DrillError {
    fn exit_code(&self) -> i32 {
        exit::RUNTIME
    }

    fn hint(&self) -> Option<String> {
        Some("choose a writable directory with --report-dir".into())
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub report_dir: PathBuf,
    /// Where the steps take an encrypted repository's password from.
    pub passwords: crate::repo::password::PasswordSources,
    /// The scenario's baseline, for objectives relative to it.
    pub baseline: Option<baseline::Baseline>,
}

/// Live progress of a run; the CLI prints it, tests ignore it.
pub trait DrillObserver: Send + Sync {
    fn run_started(&self, _scenario: &Scenario, _run_dir: &Path) {}
    fn step_started(&self, _phase: Phase, _index: usize, _total: usize, _spec: &StepSpec) {}
    fn step_retrying(&self, _spec: &StepSpec, _attempt: u32, _error: &str) {}
    fn step_finished(&self, _record: &StepRecord) {}
}

pub struct SilentObserver;
impl DrillObserver for SilentObserver {}

/// Becomes `true` when the run should stop (Ctrl-C, SIGTERM).
pub type Interrupt = watch::Receiver<bool>;

/// An interrupt that never fires.
pub fn no_interrupt() -> Interrupt {
    let (tx, rx) = watch::channel(false);
    // Keep the sender alive for the life of the program so the receiver never sees a close.
    std::mem::forget(tx);
    rx
}

/// An interrupt fired by SIGINT (Ctrl-C) or SIGTERM.
pub fn interrupt_on_signals() -> Interrupt {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        tracing::warn!("interrupted: stopping the current step and running rollback");
        let _ = tx.send(true);
        // Keep the sender (and so the flag) alive until the process ends.
        std::future::pending::<()>().await;
    });
    rx
}

/// Open every encrypted repository the scenario's steps use with the password they will be
/// given (`passwords`), before anything is broken on purpose: a missing or wrong password
/// is found here, not after the disaster step. With no password given and a terminal
/// (`prompt`), it is asked there once and given to every step, which run unattended: the
/// sources the drill runs with. A repository that does not exist yet (a backup step creates
/// it) or cannot be reached now is left to its step.
pub async fn check_passwords(
    scenario: &Scenario,
    passwords: &PasswordSources,
    prompt: Option<Prompt<'_>>,
) -> Result<PasswordSources, RepoError> {
    let mut urls: Vec<String> = scenario
        .steps
        .iter()
        .chain(&scenario.rollback)
        .filter(|step| step.kind.needs_repo)
        .flat_map(|step| {
            let own = match step.with.get("repo") {
                Some(own) => own.as_str().map(str::to_string),
                None => scenario.repo.clone(),
            };
            let others = step.kind.other_repos.iter().filter_map(|field| {
                step.with
                    .get(*field)
                    .and_then(|url| url.as_str())
                    .map(str::to_string)
            });
            own.into_iter().chain(others).collect::<Vec<_>>()
        })
        // Known only once an earlier step has run.
        .filter(|url| !url.contains("${"))
        .collect();
    urls.sort();
    urls.dedup();
    let mut passwords = passwords.clone();
    for url in urls {
        let typed = match Repository::open_with(&url, &passwords, None).await {
            Err(RepoError::Password(PasswordError::Missing(_)))
                if !passwords.given() && prompt.is_some() =>
            {
                passwords
                    .resolve(&crate::repo::password_question(&url), prompt)
                    .map_err(|err| err.of_repository(&url))?
            }
            Err(err @ (RepoError::Password(_) | RepoError::WrongPassword { .. })) => {
                return Err(err)
            }
            _ => continue,
        };
        passwords.env = Some(typed);
        if let Err(err @ (RepoError::Password(_) | RepoError::WrongPassword { .. })) =
            Repository::open_with(&url, &passwords, None).await
        {
            return Err(err);
        }
    }
    Ok(passwords)
}

/// Run a scenario to completion and write its report.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    observer: &dyn DrillObserver,
    interrupt: Interrupt,
) -> Result<DrillReport, DrillError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let discovered = discover_data_dir(scenario).await;
    let (scenario, data_dir_problem) = match &discovered {
        Ok(Some(found)) => (found, None),
        Ok(None) => (scenario, None),
        Err(problem) => (scenario, Some(problem.clone())),
    };
    let run_dir = create_run_dir(&options.report_dir, &scenario.name, started_at)?;
    observer.run_started(scenario, &run_dir);
    let target = &scenario.target;
    let live = target.connect();
    let service = target.service().map(|spec| {
        platform::build(
            spec,
            ServiceEnv {
                log_path: run_dir.join("service.log"),
                listen_addr: listen_addr(target.url()),
            },
        )
    });
    let mut runner = Runner {
        scenario,
        live,
        service,
        memory: Memory {
            data_dir_problem,
            ..Memory::default()
        },
        outputs: Default::default(),
        timeline: Timeline::default(),
        run_dir: run_dir.clone(),
        interrupt,
        observer,
        passwords: &options.passwords,
    };

    let mut failed = false;
    let total = scenario.steps.len();
    for (index, spec) in scenario.steps.iter().enumerate() {
        if failed || runner.interrupted() {
            runner.skip(spec, Phase::Steps);
            continue;
        }
        let record = runner.execute(spec, Phase::Steps, index, total).await;
        failed = matches!(record.status, StepStatus::Failed | StepStatus::Interrupted);
    }
    let interrupted = runner.interrupted();
    if failed || interrupted {
        let total = scenario.rollback.len();
        for (index, spec) in scenario.rollback.iter().enumerate() {
            runner.execute(spec, Phase::Rollback, index, total).await;
        }
    }
    runner.memory.stop_background().await;
    if let Some(service) = runner.service.as_mut() {
        service.shutdown().await;
    }
    // Servers colour their output whatever NO_COLOR says (Chroma's logo and log levels): the
    // report's copy is text.
    let log = run_dir.join("service.log");
    if log.is_file() {
        if let Err(err) = crate::text::strip_terminal_codes(&log) {
            tracing::warn!("cannot strip colour codes from {}: {err}", log.display());
        }
    }

    let objectives = objectives::evaluate(
        &scenario.objectives,
        &runner.timeline,
        &runner.memory,
        started_at,
        options.baseline.as_ref(),
    );
    let failure = runner.timeline.first_failure().map(|step| Failure {
        step: step.id.clone(),
        kind: step.kind,
        reason: step.error.clone().unwrap_or_default(),
    });
    let passed = failure.is_none() && !interrupted && objectives.iter().all(|o| o.passed);
    let exit_code = if interrupted {
        exit::INTERRUPTED
    } else if passed {
        exit::SUCCESS
    } else {
        exit::FAILED
    };
    let rpo_ms = rpo_ms(&runner.timeline, &runner.memory);
    let report = DrillReport::new(ReportParts {
        scenario,
        run_dir: &run_dir,
        started_at,
        duration: clock.elapsed(),
        passed,
        interrupted,
        exit_code,
        timeline: runner.timeline,
        objectives,
        failure,
        rpo_ms,
        counts: runner
            .memory
            .counts
            .map(|(_, counts)| counts)
            .unwrap_or_default(),
        latency: runner.memory.latency.map(|(_, summary)| summary),
        baseline: options.baseline.clone(),
    });
    Ok(report)
}

/// A Chroma target in a container (`service: { kind: docker }`) with no `data_dir`: the
/// scenario with the host directory of the container's data mount as its `data_dir`; none when
/// there is nothing to find, why when finding it failed.
async fn discover_data_dir(scenario: &Scenario) -> Result<Option<Scenario>, String> {
    let (crate::targets::spec::TargetSpec::Chroma(spec), Some(ServiceSpec::Docker(docker))) =
        (&scenario.target, scenario.target.service())
    else {
        return Ok(None);
    };
    if spec.data_dir.is_some() {
        return Ok(None);
    }
    let env = ServiceEnv {
        log_path: std::env::temp_dir().join("vecdrill-discovery.log"),
        listen_addr: None,
    };
    let mut service = crate::platform::docker::DockerService::new(docker.clone(), env);
    let (dir, mount) = service
        .data_dir(crate::targets::chroma::schema::SQLITE_FILE)
        .await
        .map_err(|e| {
            format!("the data directory was to be found from the container's mounts: {e}")
        })?;
    tracing::info!("data_dir: {} (the container's {mount})", dir.display());
    let mut found = scenario.clone();
    if let crate::targets::spec::TargetSpec::Chroma(spec) = &mut found.target {
        spec.data_dir = Some(dir);
    }
    Ok(Some(found))
}

/// Age of the restored backup at the `disaster` mark, when the run restored one.
fn rpo_ms(timeline: &Timeline, memory: &Memory) -> Option<f64> {
    let disaster = timeline.mark_time(crate::scenario::Mark::Disaster)?;
    let (_, taken) = memory.restored.as_ref()?;
    Some(millis((disaster - *taken).to_std().unwrap_or_default()))
}

struct Runner<'a> {
    scenario: &'a Scenario,
    live: Box<dyn crate::targets::Target>,
    service: Option<Box<dyn Service>>,
    memory: Memory,
    outputs: crate::scenario::vars::StepOutputs,
    timeline: Timeline,
    run_dir: PathBuf,
    interrupt: Interrupt,
    observer: &'a dyn DrillObserver,
    passwords: &'a crate::repo::password::PasswordSources,
}

enum Attempt {
    Done(Outputs),
    /// The error, and any measurements the step made before failing.
    Failed(String, Outputs),
    Interrupted,
}

impl Runner<'_> {
    fn interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    fn skip(&mut self, spec: &StepSpec, phase: Phase) {
        let record = StepRecord {
            id: spec.id.clone(),
            kind: spec.kind,
            phase,
            status: StepStatus::Skipped,
            started_at: None,
            duration_ms: 0.0,
            attempts: 0,
            error: None,
            mark: spec.mark,
            outputs: Outputs::new(),
        };
        self.observer.step_finished(&record);
        self.timeline.steps.push(record);
    }

    async fn execute(
        &mut self,
        spec: &StepSpec,
        phase: Phase,
        index: usize,
        total: usize,
    ) -> StepRecord {
        self.observer.step_started(phase, index, total, spec);
        let started_at = Utc::now();
        let clock = Instant::now();
        let max_attempts = spec.retries + 1;
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let outcome = self.attempt(spec, phase).await;
            match outcome {
                Attempt::Failed(error, _) if attempts < max_attempts && !self.interrupted() => {
                    self.observer.step_retrying(spec, attempts, &error);
                    // Back off a little more each time: 1s, 2s, 4s, capped at 10s.
                    let backoff = Duration::from_secs(1 << (attempts - 1).min(3))
                        .min(Duration::from_secs(10));
                    tokio::time::sleep(backoff).await;
                }
                other => break other,
            }
        };
        let (status, error, mut outputs) = match outcome {
            Attempt::Done(outputs) => (StepStatus::Passed, None, outputs),
            Attempt::Failed(error, outputs) if spec.continue_on_error => {
                (StepStatus::FailedIgnored, Some(error), outputs)
            }
            Attempt::Failed(error, outputs) => (StepStatus::Failed, Some(error), outputs),
            Attempt::Interrupted => (
                StepStatus::Interrupted,
                Some("interrupted".to_string()),
                Outputs::new(),
            ),
        };
        let duration_ms = millis(clock.elapsed());
        if status == StepStatus::Passed {
            outputs.insert("duration_ms".into(), serde_json::json!(duration_ms));
            if let Some(mark) = spec.mark {
                self.timeline.mark(mark, Utc::now());
            }
            self.outputs.insert(spec.id.clone(), outputs.clone());
        }
        let record = StepRecord {
            id: spec.id.clone(),
            kind: spec.kind,
            phase,
            status,
            started_at: Some(started_at),
            duration_ms,
            attempts,
            error,
            mark: spec.mark,
            outputs,
        };
        self.observer.step_finished(&record);
        self.timeline.steps.push(record.clone());
        record
    }

    async fn attempt(&mut self, spec: &StepSpec, phase: Phase) -> Attempt {
        let with = match crate::scenario::vars::substitute_runtime_value(&spec.with, &self.outputs)
        {
            Ok(with) => with,
            Err(message) => return Attempt::Failed(message, Outputs::new()),
        };
        let step = match (spec.kind.build)(with) {
            Ok(step) => step,
            Err(err) => {
                let message = format!("parameters: {} at `with.{}`", err.inner(), err.path());
                return Attempt::Failed(message, Outputs::new());
            }
        };
        let limit = spec
            .timeout
            .map(|t| t.as_duration())
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let prover = prove::NestedProver {
            run_dir: &self.run_dir,
            interrupt: self.interrupt.clone(),
            passwords: self.passwords,
        };
        let mut ctx = StepContext {
            step_id: &spec.id,
            live: self.live.as_ref(),
            service: self.service.as_deref_mut(),
            memory: &mut self.memory,
            run_dir: &self.run_dir,
            target: &self.scenario.target,
            repo: self.scenario.repo.as_deref(),
            passwords: self.passwords,
            prover: Some(&prover),
        };
        let work = tokio::time::timeout(limit, step.run(&mut ctx));
        // Rollback always runs to the end: it is what puts things back after an interrupt.
        let mut interrupt = self.interrupt.clone();
        let interrupted = async move {
            if phase == Phase::Rollback {
                std::future::pending::<()>().await;
            }
            let _ = interrupt.wait_for(|flag| *flag).await;
        };
        let attempt = tokio::select! {
            result = work => match result {
                Ok(Ok(outputs)) => Attempt::Done(outputs),
                Ok(Err(err)) => Attempt::Failed(err.to_string(), err.outputs().cloned().unwrap_or_default()),
                Err(_) => Attempt::Failed(
                    format!("timed out after {}", crate::duration::format_duration(limit)),
                    Outputs::new(),
                ),
            },
            _ = interrupted => Attempt::Interrupted,
        };
        if let Attempt::Done(outputs) | Attempt::Failed(_, outputs) = &attempt {
            // A scenario may only name declared outputs (`has_output`): one a step gives but
            // does not declare could never be used, so every test run of a step checks it.
            debug_assert!(
                outputs.keys().all(|name| spec.kind.has_output(name)),
                "step kind `{}` gives undeclared outputs: {:?}",
                spec.kind.name,
                outputs.keys().collect::<Vec<_>>()
            );
        }
        // Cut off between its stop and its start, a cold backup would leave the service down:
        // start it (starting a running service is no error), unless its watcher has.
        if matches!(attempt, Attempt::Interrupted) && step.restarts_service() {
            if let Some(service) = self
                .service
                .as_deref_mut()
                .filter(|s| !s.start_is_guarded())
            {
                tracing::warn!("the interrupted step may have stopped the service: starting it");
                if let Err(err) = service.start().await {
                    tracing::warn!("cannot start the service again: {err}");
                }
            }
        }
        attempt
    }
}

fn create_run_dir(
    report_dir: &Path,
    scenario: &str,
    at: chrono::DateTime<Utc>,
) -> Result<PathBuf, DrillError> {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    let err = |path: &Path, source| DrillError::ReportDir {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(report_dir).map_err(|e| err(report_dir, e))?;
    // The directory's name is the run's id in the history, which several report directories
    // (and hosts) may share: a random part keeps two runs started in the same second apart.
    loop {
        let random = crate::repo::random_id();
        let dir = report_dir.join(format!("{safe}-{stamp}-{}", &random[..8]));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&dir, e)),
        }
    }
}

/// `host:port` from an http(s) URL, so a process service can tell whether the port is taken.
fn listen_addr(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}:{}",
        parsed.host_str()?,
        parsed.port_or_known_default()?
    ))
}

/// Where a run would act, resolved: the target, its data directory (and whether a database is
/// there), the service and the repository. (No variable values: one may hold a secret.)
fn setting(scenario: &Scenario) -> Vec<String> {
    let target = &scenario.target;
    let kind = serde_json::to_string(&target.kind()).unwrap_or_default();
    let mut lines = vec![format!(
        "target: {} at {}",
        kind.trim_matches('"'),
        target.url()
    )];
    if let Some(dir) = target.data_dir() {
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let found = target.config().describe_data_dir(dir);
        lines.push(format!("data directory: {}{found}", absolute.display()));
    }
    let service = target.service().map_or_else(
        || "none (steps that stop or start it are refused)".to_string(),
        |s| s.describe(),
    );
    lines.push(format!("service: {service}"));
    lines.push(format!(
        "repository: {}",
        scenario.repo.as_deref().unwrap_or("none")
    ));
    lines.push("steps:".into());
    lines
}

/// What `run --dry-run` prints: where it would act, then each step with its parameters,
/// nothing executed.
pub fn plan(scenario: &Scenario) -> Vec<String> {
    let describe = |spec: &StepSpec| {
        let with = serde_json::to_string(&spec.with).unwrap_or_default();
        let mark = spec
            .mark
            .map(|m| {
                format!(
                    "  [mark: {}]",
                    serde_json::to_string(&m)
                        .unwrap_or_default()
                        .trim_matches('"')
                )
            })
            .unwrap_or_default();
        let with = if with == "null" {
            String::new()
        } else {
            format!(" {with}")
        };
        format!("{} ({}){with}{mark}", spec.id, spec.kind.name)
    };
    let mut lines = setting(scenario);
    lines.extend(
        scenario
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:>2}. {}", i + 1, describe(s))),
    );
    if !scenario.rollback.is_empty() {
        lines.push("rollback (after a failure or an interrupt):".into());
        lines.extend(
            scenario
                .rollback
                .iter()
                .map(|s| format!("  - {}", describe(s))),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_started_in_the_same_second_get_different_ids_in_any_report_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let at = Utc::now();
        let name = |dir: PathBuf| dir.file_name().unwrap().to_string_lossy().into_owned();
        let first = name(create_run_dir(&tmp.path().join("a"), "prove", at).unwrap());
        let same_dir = name(create_run_dir(&tmp.path().join("a"), "prove", at).unwrap());
        let other_dir = name(create_run_dir(&tmp.path().join("b"), "prove", at).unwrap());
        let stamp = format!("prove-{}-", at.format("%Y%m%dT%H%M%SZ"));
        for id in [&first, &same_dir, &other_dir] {
            assert!(
                id.starts_with(&stamp) && id.len() == stamp.len() + 8,
                "{id}"
            );
        }
        assert_ne!(first, same_dir);
        assert_ne!(first, other_dir);
        // A scenario's name cannot climb out of the report directory.
        let odd = name(create_run_dir(&tmp.path().join("a"), "../x y", at).unwrap());
        assert!(odd.starts_with("---x-y-"), "{odd}");
    }
}
