//! `kind: docker`: a database running in a container, driven through the Docker Engine API
//! over its socket (`DOCKER_HOST`, default the local unix socket), never the CLI.
//!
//! The container is named (`container: NAME|ID`) or found by Compose's labels
//! (`compose_project` + `compose_service`). Every operation waits for the real outcome: started
//! means running, and healthy when the image defines a health check; stopped means not
//! running. A container that exits, or restarts in a loop, while it should be starting fails
//! the step with its exit code and the tail of its log. The container's log is copied into the
//! run's `service.log` after every operation.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum, MountPointTypeEnum};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use serde::Deserialize;

use super::{PlatformError, Service, ServiceEnv};
use crate::duration::HumanDuration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    /// The container's name or id.
    #[serde(default)]
    pub container: Option<String>,
    /// Or the container Compose runs for this project and service.
    #[serde(default)]
    pub compose_project: Option<String>,
    #[serde(default)]
    pub compose_service: Option<String>,
    /// How long a start or restart may take to be running (and healthy).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// How long a container without a health check must keep running, when nothing answers on
/// the target's address yet, to count as started.
const SETTLE: Duration = Duration::from_secs(1);

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}

impl DockerSpec {
    /// The container as a person names it.
    pub fn named(&self) -> String {
        match (
            &self.container,
            &self.compose_project,
            &self.compose_service,
        ) {
            (Some(container), _, _) => format!("container {container}"),
            (None, Some(project), Some(service)) => {
                format!("Compose service {service} of project {project}")
            }
            _ => {
                "a container (neither `container` nor `compose_project` + `compose_service` given)"
                    .into()
            }
        }
    }

    /// Why the spec names no container, if it does not.
    pub fn problem(&self) -> Option<&'static str> {
        match (
            &self.container,
            &self.compose_project,
            &self.compose_service,
        ) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => None,
            (Some(_), _, _) => {
                Some("give `container` or `compose_project` + `compose_service`, not both")
            }
            _ => Some(
                "name the container: `container: NAME`, or `compose_project` and `compose_service`",
            ),
        }
    }
}

/// Where the daemon is, as people set it.
fn daemon_address() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// A container's state as `platform status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerStatus {
    pub container: String,
    pub id: String,
    /// `running`, `exited`, `restarting`, ...
    pub status: String,
    /// When the image checks health: `healthy`, `starting`, `unhealthy`.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    pub restarts: i64,
    pub started_at: Option<String>,
}

pub struct DockerService {
    spec: DockerSpec,
    env: ServiceEnv,
    docker: Option<Docker>,
    /// The container's id, once found.
    id: Option<String>,
    /// Log lines up to this Unix time are already in `service.log`.
    logged_until: i64,
}

impl DockerService {
    pub fn new(spec: DockerSpec, env: ServiceEnv) -> Self {
        Self {
            spec,
            env,
            docker: None,
            id: None,
            logged_until: 0,
        }
    }

    fn failed(&self, message: String) -> PlatformError {
        PlatformError::Failed {
            service: self.describe(),
            message,
        }
    }

    /// The daemon, reached (a stopped daemon is said to be so, with where it was looked for).
    async fn docker(&mut self) -> Result<Docker, PlatformError> {
        if let Some(docker) = &self.docker {
            return Ok(docker.clone());
        }
        let unreachable = |reason: String| {
            PlatformError::Unreachable {
            service: format!("docker ({})", self.spec.named()),
            message: format!("cannot reach the Docker daemon at {}: {reason}", daemon_address()),
            hint: "start the Docker daemon (`systemctl start docker`, or `dockerd`), or point DOCKER_HOST at it; vecdrill talks to its API over that socket".into(),
        }
        };
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        self.docker = Some(docker.clone());
        Ok(docker)
    }

    /// The container's id: as named, or the one Compose runs for the project and service.
    async fn container(&mut self) -> Result<String, PlatformError> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        if let Some(problem) = self.spec.problem() {
            return Err(PlatformError::Unsupported {
                service: self.describe(),
                message: problem.into(),
            });
        }
        let docker = self.docker().await?;
        let id = match &self.spec.container {
            Some(name) => {
                let found = docker
                    .inspect_container(name, None::<InspectContainerOptions>)
                    .await
                    .map_err(|e| self.failed(format!("no container {name:?}: {e}")))?;
                found.id.unwrap_or_else(|| name.clone())
            }
            None => {
                let (project, service) = (
                    self.spec.compose_project.clone().unwrap_or_default(),
                    self.spec.compose_service.clone().unwrap_or_default(),
                );
                let filters = HashMap::from([(
                    "label".to_string(),
                    vec![
                        format!("com.docker.compose.project={project}"),
                        format!("com.docker.compose.service={service}"),
                    ],
                )]);
                let listed = docker
                    .list_containers(Some(ListContainersOptions {
                        all: true,
                        filters: Some(filters),
                        ..Default::default()
                    }))
                    .await
                    .map_err(|e| self.failed(format!("cannot list containers: {e}")))?;
                match listed.as_slice() {
                    [one] => one.id.clone().unwrap_or_default(),
                    [] => {
                        return Err(self.failed(format!(
                            "Compose runs no container for service {service:?} of project {project:?} (`docker compose -p {project} up -d {service}` creates it)"
                        )))
                    }
                    many => {
                        return Err(self.failed(format!(
                            "Compose runs {} containers for service {service:?} of project {project:?}; name one with `container:`",
                            many.len()
                        )))
                    }
                }
            }
        };
        self.id = Some(id.clone());
        Ok(id)
    }

    async fn inspect(&mut self) -> Result<ContainerInspectResponse, PlatformError> {
        let (docker, id) = (self.docker().await?, self.container().await?);
        docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| self.failed(format!("cannot inspect it: {e}")))
    }

    /// Wait until the container runs (and is healthy, when its image checks health). It
    /// exiting, or restarting more than once, fails with its exit code and log tail.
    async fn wait_running(&mut self) -> Result<(), PlatformError> {
        let asked = chrono::Utc::now() - chrono::Duration::seconds(1);
        let deadline = Instant::now() + self.spec.timeout.as_duration();
        let first = self.inspect().await?.restart_count.unwrap_or(0);
        let mut running_since: Option<Instant> = None;
        loop {
            let inspected = self.inspect().await?;
            let state = inspected.state.clone().unwrap_or_default();
            let restarts = inspected.restart_count.unwrap_or(0) - first;
            let health = state.health.as_ref().and_then(|h| h.status);
            let running = state.running == Some(true) && state.restarting != Some(true);
            match health {
                _ if restarts >= 2 => {
                    return Err(self.died("restarts in a loop", &state).await);
                }
                Some(HealthStatusEnum::UNHEALTHY) if running => {
                    return Err(self.died("runs but its health check fails", &state).await);
                }
                Some(HealthStatusEnum::HEALTHY) if running => return Ok(()),
                // No health check: running, and either answering on the target's address or
                // still running a moment later (a server that dies at once is caught here).
                Some(HealthStatusEnum::NONE) | None if running => {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if self.answers().await || since.elapsed() >= SETTLE {
                        return Ok(());
                    }
                }
                _ => running_since = None,
            }
            // Stopped since it was asked to start: it exited (or could not even run).
            let gone = state.running != Some(true) && state.restarting != Some(true);
            let finished = state
                .finished_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t >= asked);
            if gone && finished {
                return Err(self.died("exited", &state).await);
            }
            if Instant::now() > deadline {
                return Err(self
                    .died(
                        &format!("was not running and healthy within {}", self.spec.timeout),
                        &state,
                    )
                    .await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether something accepts connections on the target's address (when known).
    async fn answers(&self) -> bool {
        let Some(addr) = self.env.listen_addr.as_deref() else {
            return false;
        };
        let connect = tokio::net::TcpStream::connect(addr);
        matches!(
            tokio::time::timeout(Duration::from_millis(100), connect).await,
            Ok(Ok(_))
        )
    }

    /// A failure naming what the container did, its exit code and its log's last lines.
    async fn died(&mut self, what: &str, state: &bollard::models::ContainerState) -> PlatformError {
        self.save_log().await;
        let code = state
            .exit_code
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        let tail = super::log_tail(&self.env.log_path, 10);
        self.failed(format!("the container {what}{code}; its log ends:\n{tail}"))
    }

    /// Wait until the container no longer runs.
    async fn wait_stopped(&mut self) -> Result<(), PlatformError> {
        let deadline = Instant::now() + self.spec.timeout.as_duration();
        loop {
            let state = self.inspect().await?.state.unwrap_or_default();
            if state.running != Some(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failed(format!("still running after {}", self.spec.timeout)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Append the container's log since the last copy to `service.log` (best effort).
    async fn save_log(&mut self) {
        let (Ok(docker), Ok(id)) = (self.docker().await, self.container().await) else {
            return;
        };
        let now = chrono::Utc::now().timestamp();
        let mut lines = docker.logs(
            &id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                since: i32::try_from(self.logged_until).unwrap_or(0),
                ..Default::default()
            }),
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.env.log_path);
        let Ok(mut file) = file else { return };
        while let Some(Ok(line)) = lines.next().await {
            let _ = file.write_all(&line.into_bytes());
        }
        // Docker's `since` is whole seconds: the last second is copied again next time
        // rather than lost.
        self.logged_until = now;
    }

    /// What the container is doing now.
    pub async fn status(&mut self) -> Result<ContainerStatus, PlatformError> {
        let inspected = self.inspect().await?;
        let state = inspected.state.unwrap_or_default();
        Ok(ContainerStatus {
            container: inspected
                .name
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            id: inspected.id.unwrap_or_default(),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
            exit_code: state.exit_code,
            restarts: inspected.restart_count.unwrap_or(0),
            started_at: state.started_at,
        })
    }

    /// The host directory holding the container's data: the mount (bind mount or named
    /// volume) whose host side holds the file `marker` (a database's own file), else the one
    /// mounted where the server's `--path` (or `PERSIST_DIRECTORY`) says the data is; and
    /// which mount it was.
    pub async fn data_dir(&mut self, marker: &str) -> Result<(PathBuf, String), PlatformError> {
        let inspected = self.inspect().await?;
        let mounts = inspected.mounts.unwrap_or_default();
        let holds_data = |source: &str| std::path::Path::new(source).join(marker).is_file();
        let config = inspected.config.unwrap_or_default();
        let mut args: Vec<String> = config.entrypoint.unwrap_or_default();
        args.extend(config.cmd.unwrap_or_default());
        let path_arg = args
            .windows(2)
            .find(|w| w[0] == "--path")
            .map(|w| w[1].clone())
            .or_else(|| {
                config.env.unwrap_or_default().iter().find_map(|e| {
                    e.strip_prefix("PERSIST_DIRECTORY=")
                        .or_else(|| e.strip_prefix("CHROMA_PERSIST_PATH="))
                        .map(str::to_string)
                })
            });
        let described = |m: &bollard::models::MountPoint| {
            let kind = match m.typ {
                Some(MountPointTypeEnum::VOLUME) => {
                    format!("volume {}", m.name.clone().unwrap_or_default())
                }
                _ => "bind mount".to_string(),
            };
            format!(
                "{kind} {} at {} in the container",
                m.source.clone().unwrap_or_default(),
                m.destination.clone().unwrap_or_default()
            )
        };
        let writable: Vec<_> = mounts.iter().filter(|m| m.rw != Some(false)).collect();
        let with_data: Vec<_> = writable
            .iter()
            .filter(|m| m.source.as_deref().is_some_and(holds_data))
            .collect();
        let chosen = match with_data.as_slice() {
            [one] => Some(**one),
            [] => writable
                .iter()
                .find(|m| m.destination.is_some() && m.destination == path_arg)
                .copied(),
            many => {
                return Err(self.failed(format!(
                    "{} of its mounts hold {marker}: {}; give the target's `data_dir`",
                    many.len(),
                    many.iter()
                        .map(|m| described(m))
                        .collect::<Vec<_>>()
                        .join("; ")
                )))
            }
        };
        match chosen.and_then(|m| Some((PathBuf::from(m.source.clone()?), described(m)))) {
            Some(found) => Ok(found),
            None => Err(self.failed(format!(
                "none of its mounts holds {marker} ({}); give the target's `data_dir`",
                if mounts.is_empty() {
                    "it has none".to_string()
                } else {
                    mounts.iter().map(described).collect::<Vec<_>>().join("; ")
                }
            ))),
        }
    }
}

#[async_trait]
impl Service for DockerService {
    fn describe(&self) -> String {
        format!("docker ({})", self.spec.named())
    }

    async fn start(&mut self) -> Result<(), PlatformError> {
        let (docker, id) = (self.docker().await?, self.container().await?);
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(|e| self.failed(format!("cannot start it: {e}")))?;
        let waited = self.wait_running().await;
        self.save_log().await;
        waited
    }

    async fn stop(&mut self) -> Result<(), PlatformError> {
        let (docker, id) = (self.docker().await?, self.container().await?);
        // No timeout given: the container's own stop timeout applies.
        docker
            .stop_container(&id, None::<StopContainerOptions>)
            .await
            .map_err(|e| self.failed(format!("cannot stop it: {e}")))?;
        let waited = self.wait_stopped().await;
        self.save_log().await;
        waited
    }

    async fn restart(&mut self) -> Result<(), PlatformError> {
        let (docker, id) = (self.docker().await?, self.container().await?);
        docker
            .restart_container(&id, None::<RestartContainerOptions>)
            .await
            .map_err(|e| self.failed(format!("cannot restart it: {e}")))?;
        let waited = self.wait_running().await;
        self.save_log().await;
        waited
    }

    async fn kill(&mut self) -> Result<(), PlatformError> {
        let (docker, id) = (self.docker().await?, self.container().await?);
        docker
            .kill_container(&id, Some(KillContainerOptions::default()))
            .await
            .map_err(|e| self.failed(format!("cannot kill it: {e}")))?;
        let waited = self.wait_stopped().await;
        self.save_log().await;
        waited
    }

    async fn shutdown(&mut self) {
        // The container is the operator's: left as the run left it (rollback restarts it),
        // its log kept.
        if self.docker.is_some() {
            self.save_log().await;
        }
    }
}
