//! `service: { kind: railway, project, environment, service }`: a Chroma service on Railway,
//! driven through the public GraphQL API ([`client`]) behind the same [`Service`] trait as
//! `process` and `shell`.
//!
//! Every operation waits for its real outcome. A restart keeps the deployment id, so "done"
//! needs evidence the restart happened (a new `statusUpdatedAt`, new instance ids, or an
//! instance seen `RESTARTING`) before `SUCCESS` counts; without it the wait fails as
//! inconclusive rather than reporting a restart that may not have happened.

pub mod client;
pub mod volumes;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::{PlatformError, Service};
use crate::duration::HumanDuration;
use client::{Deployment, RailwayClient, RailwayError, Token};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailwaySpec {
    /// Project id or name (a name is looked up among the token's projects; a project token
    /// brings its own project and environment).
    #[serde(default)]
    pub project: Option<String>,
    /// Environment id or name (default: the project token's, else `production`).
    #[serde(default)]
    pub environment: Option<String>,
    /// Service id or name.
    pub service: String,
    /// GraphQL endpoint (default `RAILWAY_API_URL`, else Railway's).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// First poll interval while waiting (backs off to 4x).
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// Overall limit of one wait.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

/// Ids resolved once per run.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub project_id: String,
    pub environment_id: String,
    pub service_id: String,
}

/// Deployment states that end a wait as a failure, and those that mean it is held.
pub(crate) const FAILED: [&str; 5] = ["FAILED", "CRASHED", "REMOVED", "REMOVING", "SKIPPED"];
const BLOCKED: [&str; 2] = ["NEEDS_APPROVAL", "WAITING"];

/// What the CLI's live line does with each poll's one-line state.
type PollObserver = Box<dyn Fn(&str) + Send + Sync>;

pub struct RailwayService {
    pub(crate) spec: RailwaySpec,
    pub(crate) client: RailwayClient,
    /// No token in the environment: every operation fails with [`RailwayError::NoToken`].
    has_token: bool,
    resolved: Option<Resolved>,
    /// Told the state and elapsed time at every poll (the CLI's live line).
    on_poll: Option<PollObserver>,
}

impl RailwayService {
    pub fn new(spec: RailwaySpec) -> Self {
        let token = Token::from_env();
        let has_token = token.is_some();
        let client = RailwayClient::new(
            spec.endpoint.as_deref(),
            token.unwrap_or(Token::Bearer(String::new())),
        );
        Self {
            spec,
            client,
            has_token,
            resolved: None,
            on_poll: None,
        }
    }

    /// Call `f` with a one-line state ("deployment d-1: DEPLOYING, 12s") at every poll.
    pub fn on_poll(&mut self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.on_poll = Some(Box::new(f));
    }

    pub(crate) fn polled(&self, what: &str, state: &str, began: Instant) {
        tracing::info!(what, state, elapsed = ?began.elapsed(), "waiting on Railway");
        if let Some(f) = &self.on_poll {
            f(&format!("{what}: {state}, {}s", began.elapsed().as_secs()));
        }
    }

    pub fn client(&self) -> &RailwayClient {
        &self.client
    }

    /// Project, environment and service ids, resolved by id or name on first use.
    pub async fn resolve(&mut self) -> Result<Resolved, RailwayError> {
        if let Some(resolved) = &self.resolved {
            return Ok(resolved.clone());
        }
        if !self.has_token {
            return Err(RailwayError::NoToken);
        }
        let (project_id, scoped_environment) = if self.client.is_project_token() {
            let (project, environment) = self.client.project_token_scope().await?;
            (project, Some(environment))
        } else {
            let project = self.spec.project.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
                RailwayError::NotFound(
                    "no project: give `project:` (its id, from the project's settings) or use a project token".into(),
                )
            })?;
            (project, None)
        };
        let names = match self.client.project(&project_id).await {
            Ok(names) => names,
            // Not an id: look it up by name among the projects the token can see.
            Err(refused @ (RailwayError::Api { .. } | RailwayError::NotAuthorized { .. }))
                if !self.client.is_project_token() =>
            {
                // The token cannot list projects: the original refusal is the answer.
                let Ok(all) = self.client.projects().await else {
                    return Err(refused);
                };
                match all.into_iter().find(|p| p.name == project_id) {
                    Some(found) => self.client.project(&found.id).await?,
                    None => {
                        return Err(RailwayError::NotFound(format!(
                            "no project {project_id:?} among this token's projects: give its id (Project Settings → General)"
                        )))
                    }
                }
            }
            Err(other) => return Err(other),
        };
        let project_id = names.id.clone();
        let pick = |list: &[client::Named], wanted: &str, what: &str| {
            list.iter()
                .find(|n| n.id == wanted || n.name == wanted)
                .map(|n| n.id.clone())
                .ok_or_else(|| {
                    RailwayError::NotFound(format!(
                        "no {what} {wanted:?} in project {:?} (it has: {})",
                        names.name,
                        list.iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        let environment_id = match (&self.spec.environment, scoped_environment) {
            (_, Some(scoped)) => scoped,
            (Some(wanted), None) => pick(&names.environments, wanted, "environment")?,
            (None, None) => pick(&names.environments, "production", "environment")?,
        };
        let service_id = pick(&names.services, &self.spec.service, "service")?;
        let resolved = Resolved {
            project_id,
            environment_id,
            service_id,
        };
        self.resolved = Some(resolved.clone());
        Ok(resolved)
    }

    pub async fn latest(&mut self) -> Result<Deployment, RailwayError> {
        let ids = self.resolve().await?;
        self.client
            .latest_deployment(&ids.environment_id, &ids.service_id)
            .await?
            .ok_or_else(|| {
                RailwayError::NotFound(format!(
                    "service {:?} has no deployment in this environment",
                    self.spec.service
                ))
            })
    }

    /// Restart the latest deployment and wait until it is back, with evidence it restarted.
    pub async fn restart_and_wait(&mut self) -> Result<Deployment, RailwayError> {
        let before = self.latest().await?;
        self.client.restart(&before.id).await?;
        self.wait(&before.id, Goal::RestartedFrom(before.clone()))
            .await
    }

    /// A new deployment of the same configuration, waited for until SUCCESS.
    pub async fn redeploy_and_wait(&mut self) -> Result<Deployment, RailwayError> {
        let before = self.latest().await?;
        let new_id = self.client.redeploy(&before.id).await?;
        self.wait(&new_id, Goal::Running).await
    }

    pub async fn stop_and_wait(&mut self) -> Result<Deployment, RailwayError> {
        let latest = self.latest().await?;
        if latest.deployment_stopped {
            return Ok(latest);
        }
        self.client.stop(&latest.id).await?;
        self.wait(&latest.id, Goal::Stopped).await
    }

    /// Bring a stopped service back: the public API has no start, so a redeploy of the
    /// latest deployment (the safe choice the notes recommend). A running one is left alone.
    pub async fn start_and_wait(&mut self) -> Result<Deployment, RailwayError> {
        let latest = self.latest().await?;
        if is_running(&latest) {
            return Ok(latest);
        }
        self.redeploy_and_wait().await
    }

    async fn wait(&self, id: &str, goal: Goal) -> Result<Deployment, RailwayError> {
        let began = Instant::now();
        let first = self.spec.poll_interval.as_duration();
        let mut interval = first;
        let mut restarting_seen = false;
        let what = format!("deployment {id}");
        loop {
            let deployment = self.client.deployment(id).await?;
            restarting_seen |= deployment
                .instances
                .iter()
                .any(|i| i.status == "RESTARTING");
            tracing::info!(
                deployment = %deployment.id,
                status = %deployment.status,
                stopped = deployment.deployment_stopped,
                elapsed = ?began.elapsed(),
                "waiting on Railway"
            );
            if FAILED.contains(&deployment.status.as_str()) {
                return Err(RailwayError::Failed {
                    what,
                    status: deployment.status,
                    detail: None,
                });
            }
            if BLOCKED.contains(&deployment.status.as_str()) {
                return Err(RailwayError::Blocked {
                    what,
                    status: deployment.status,
                });
            }
            let done = match &goal {
                Goal::Running => is_running(&deployment),
                Goal::Stopped => deployment.deployment_stopped,
                Goal::RestartedFrom(before) => {
                    is_running(&deployment)
                        && (restarting_seen
                            || deployment.status_updated_at != before.status_updated_at
                            || instance_ids(&deployment) != instance_ids(before))
                }
            };
            if done {
                return Ok(deployment);
            }
            let waited = began.elapsed();
            if waited >= self.spec.timeout.as_duration() {
                let last = format!(
                    "{}{}",
                    deployment.status,
                    if deployment.deployment_stopped {
                        ", stopped"
                    } else {
                        ""
                    }
                );
                return Err(RailwayError::Timeout {
                    what,
                    goal: goal.describe().into(),
                    waited: crate::duration::format_duration(waited),
                    last: match goal {
                        Goal::RestartedFrom(_) if is_running(&deployment) => format!(
                            "{last}, but no sign it restarted (same statusUpdatedAt and instances): inconclusive"
                        ),
                        _ => last,
                    },
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval.mul_f64(1.5)).min(first * 4);
        }
    }
}

enum Goal {
    Running,
    Stopped,
    RestartedFrom(Deployment),
}

impl Goal {
    fn describe(&self) -> &'static str {
        match self {
            Goal::Running => "reach SUCCESS with its instances running",
            Goal::Stopped => "stop",
            Goal::RestartedFrom(_) => "restart and come back",
        }
    }
}

pub(crate) fn is_running(d: &Deployment) -> bool {
    d.status == "SUCCESS"
        && !d.deployment_stopped
        && d.instances.iter().all(|i| i.status == "RUNNING")
}

fn instance_ids(d: &Deployment) -> Vec<&str> {
    let mut ids: Vec<&str> = d.instances.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn platform_error(service: &str, err: RailwayError) -> PlatformError {
    PlatformError::Failed {
        service: service.into(),
        message: err.to_string(),
    }
}

#[async_trait]
impl Service for RailwayService {
    fn describe(&self) -> String {
        format!("railway service {:?}", self.spec.service)
    }

    async fn start(&mut self) -> Result<(), PlatformError> {
        let name = self.describe();
        self.start_and_wait()
            .await
            .map(drop)
            .map_err(|e| platform_error(&name, e))
    }

    async fn stop(&mut self) -> Result<(), PlatformError> {
        let name = self.describe();
        self.stop_and_wait()
            .await
            .map(drop)
            .map_err(|e| platform_error(&name, e))
    }

    async fn restart(&mut self) -> Result<(), PlatformError> {
        let name = self.describe();
        self.restart_and_wait()
            .await
            .map(drop)
            .map_err(|e| platform_error(&name, e))
    }

    fn railway(&mut self) -> Option<&mut RailwayService> {
        Some(self)
    }

    async fn kill(&mut self) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported {
            service: self.describe(),
            message: "Railway's API cannot crash a service; use `restart` (or `stop`) as the fault"
                .into(),
        })
    }
}
