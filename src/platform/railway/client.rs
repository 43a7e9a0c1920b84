//! Railway's public GraphQL API (`/graphql/v2`): authentication, rate limits and errors, and
//! the few operations vecdrill uses, written from the public schema (see
//! `../shared/platforms/railway-api.md` in the design notes).
//!
//! The token is held here and nowhere else: it is sent in a header, never formatted into a
//! message, a log line or a report (`Debug` prints its kind only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::exit::{self, Classify};

pub const DEFAULT_ENDPOINT: &str = "https://backboard.railway.com/graphql/v2";
/// 429s retried per request before giving up.
const RATE_LIMIT_RETRIES: u32 = 5;

/// How the token authenticates, which decides the header and what it may do.
#[derive(Clone)]
pub enum Token {
    /// Account, workspace or OAuth token (`RAILWAY_API_TOKEN`): `Authorization: Bearer`.
    Bearer(String),
    /// Project token (`RAILWAY_TOKEN`), scoped to one environment: `Project-Access-Token`.
    Project(String),
}

impl Token {
    /// `RAILWAY_TOKEN` (a project token) wins over `RAILWAY_API_TOKEN`, as in Railway's CLI.
    pub fn from_env() -> Option<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|t| !t.trim().is_empty());
        get("RAILWAY_TOKEN")
            .map(Token::Project)
            .or_else(|| get("RAILWAY_API_TOKEN").map(Token::Bearer))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Token::Bearer(_) => {
                "account/workspace token (RAILWAY_API_TOKEN, Authorization: Bearer)"
            }
            Token::Project(_) => "project token (RAILWAY_TOKEN, Project-Access-Token)",
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.kind())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RailwayError {
    #[error("no Railway token: set RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token)")]
    NoToken,
    #[error(
        "Railway refused the request as \"Not Authorized\" ({operation}) using a {token_kind}"
    )]
    NotAuthorized {
        operation: String,
        token_kind: &'static str,
    },
    #[error("Railway does not know this project token (RAILWAY_TOKEN)")]
    InvalidProjectToken,
    #[error("Railway answered {operation} with an error: {message}")]
    Api { operation: String, message: String },
    #[error("Railway's API at {endpoint} answered {operation} with HTTP {status} and a body that is not JSON: {body:?}")]
    NotJson {
        endpoint: String,
        operation: String,
        status: u16,
        body: String,
    },
    #[error("cannot reach Railway's API at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("Railway kept rate-limiting {operation} ({retries} retries, last Retry-After {retry_after}s)")]
    RateLimited {
        operation: String,
        retries: u32,
        retry_after: u64,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{what} did not {goal} within {waited}: last seen {last}")]
    Timeout {
        what: String,
        goal: String,
        waited: String,
        last: String,
    },
    #[error("{what} ended {status}{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Failed {
        what: String,
        status: String,
        detail: Option<String>,
    },
    #[error("{what} is {status}: Railway waits for an approval or a dependency before it goes on")]
    Blocked { what: String, status: String },
    #[error("the environment already has staged changes (patch {patch}); committing the restore would deploy them too")]
    StagedChanges { patch: String },
}

impl Classify for RailwayError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::NoToken | Self::NotFound(_) => exit::BAD_INPUT,
            _ => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NotAuthorized { token_kind, .. } => Some(if token_kind.starts_with("project") {
                "a project token only reaches its own environment, and may not be allowed to manage volume backups or commit staged changes; try an account or workspace token in RAILWAY_API_TOKEN (and unset RAILWAY_TOKEN)".into()
            } else {
                "the token may have expired, or its account/workspace may not have access to this project".into()
            }),
            Self::InvalidProjectToken => {
                Some("create a new project token in the project's settings".into())
            }
            Self::RateLimited { .. } => Some(
                "Railway's hourly request budget is spent: wait, or use a plan with a higher limit"
                    .into(),
            ),
            Self::Blocked { .. } => Some(
                "approve the deployment in Railway's dashboard, or check what it waits for".into(),
            ),
            Self::NoToken => Some("create a token at https://railway.com/account/tokens".into()),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct GraphqlError {
    message: String,
}

/// One deployment as vecdrill reads it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub status_updated_at: Option<String>,
    #[serde(default)]
    pub deployment_stopped: bool,
    #[serde(default)]
    pub instances: Vec<Instance>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Instance {
    pub id: String,
    pub status: String,
}

const DEPLOYMENT_FIELDS: &str =
    "id status statusUpdatedAt deploymentStopped instances { id status }";

#[derive(Clone)]
pub struct RailwayClient {
    http: reqwest::Client,
    endpoint: String,
    token: Token,
    /// Requests sent, 429 retries included (the rate-limit budget a drill spends).
    requests: Arc<AtomicU64>,
}

impl RailwayClient {
    pub fn new(endpoint: Option<&str>, token: Token) -> Self {
        let endpoint = endpoint
            .map(str::to_string)
            .or_else(|| {
                std::env::var("RAILWAY_API_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let http = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("vecdrill/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with static settings always builds");
        Self {
            http,
            endpoint,
            token,
            requests: Arc::default(),
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn token_kind(&self) -> &'static str {
        self.token.kind()
    }

    pub fn is_project_token(&self) -> bool {
        matches!(self.token, Token::Project(_))
    }

    /// Run one operation; `field` names the root field returned.
    pub async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        document: &str,
        variables: Value,
    ) -> Result<T, RailwayError> {
        let body = json!({ "query": document, "variables": variables, "operationName": operation });
        let mut retries = 0;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let request = self.http.post(&self.endpoint).json(&body);
            let request = match &self.token {
                Token::Bearer(t) => request.bearer_auth(t),
                Token::Project(t) => request.header("Project-Access-Token", t),
            };
            let response = request
                .send()
                .await
                .map_err(|e| RailwayError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: crate::net::describe_reqwest(&e),
                })?;
            let status = response.status();
            if status.as_u16() == 429 {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(5);
                if retries >= RATE_LIMIT_RETRIES {
                    return Err(RailwayError::RateLimited {
                        operation: operation.into(),
                        retries,
                        retry_after,
                    });
                }
                retries += 1;
                tracing::warn!(operation, retry_after, "Railway rate limit; waiting");
                tokio::time::sleep(Duration::from_secs(retry_after.min(120))).await;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| RailwayError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: e.to_string(),
                })?;
            let envelope: Envelope<Value> =
                serde_json::from_slice(&bytes).map_err(|_| RailwayError::NotJson {
                    endpoint: self.endpoint.clone(),
                    operation: operation.into(),
                    status: status.as_u16(),
                    body: self.scrub(&String::from_utf8_lossy(&bytes)),
                })?;
            if let Some(error) = envelope.errors.first() {
                return Err(self.classify(operation, &self.scrub(&error.message)));
            }
            let data = envelope.data.ok_or_else(|| RailwayError::Api {
                operation: operation.into(),
                message: format!("HTTP {status} with neither data nor errors"),
            })?;
            return serde_json::from_value(data).map_err(|e| RailwayError::Api {
                operation: operation.into(),
                message: format!("unexpected answer: {e}"),
            });
        }
    }

    /// Text from a server's answer as it may appear in errors, and so in reports, the history,
    /// logs and notifications: the token removed wherever the server echoed it (an endpoint
    /// that echoes request headers would otherwise publish it), control characters escaped,
    /// and cut to 200 characters (after the token is gone, so no prefix of it survives).
    fn scrub(&self, text: &str) -> String {
        let secret = match &self.token {
            Token::Bearer(t) | Token::Project(t) => t.as_str(),
        };
        let text = if secret.is_empty() {
            text.to_string()
        } else {
            text.replace(secret, "<redacted>")
        };
        text.chars()
            .take(200)
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() && c != '\n' {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect()
    }

    fn classify(&self, operation: &str, message: &str) -> RailwayError {
        let lower = message.to_lowercase();
        if lower.contains("project token not found") {
            RailwayError::InvalidProjectToken
        } else if lower.contains("not authorized") {
            RailwayError::NotAuthorized {
                operation: operation.into(),
                token_kind: self.token.kind(),
            }
        } else {
            RailwayError::Api {
                operation: operation.into(),
                message: message.into(),
            }
        }
    }

    /// The project and environment a project token is scoped to.
    pub async fn project_token_scope(&self) -> Result<(String, String), RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Scope {
            project_id: String,
            environment_id: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            project_token: Scope,
        }
        let data: Data = self
            .call(
                "ProjectTokenScope",
                "query ProjectTokenScope { projectToken { projectId environmentId } }",
                json!({}),
            )
            .await?;
        Ok((
            data.project_token.project_id,
            data.project_token.environment_id,
        ))
    }

    /// A project's environments and services as (id, name) pairs.
    pub async fn project(&self, id: &str) -> Result<ProjectNames, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            project: RawProject,
        }
        #[derive(Deserialize)]
        struct RawProject {
            id: String,
            name: String,
            environments: Connection<Named>,
            services: Connection<Named>,
        }
        let data: Data = self
            .call(
                "ProjectNames",
                "query ProjectNames($id: String!) { project(id: $id) { id name environments { edges { node { id name } } } services { edges { node { id name } } } } }",
                json!({ "id": id }),
            )
            .await?;
        let p = data.project;
        Ok(ProjectNames {
            id: p.id,
            name: p.name,
            environments: p.environments.nodes(),
            services: p.services.nodes(),
        })
    }

    /// The projects the token can see, as (id, name). Used to find a project given by name;
    /// the public schema's `projects` connection is not described in Railway's docs, so a
    /// failure here only means "give the project id".
    pub async fn projects(&self) -> Result<Vec<Named>, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            projects: Connection<Named>,
        }
        let data: Data = self
            .call(
                "Projects",
                "query Projects { projects(first: 100) { edges { node { id name } } } }",
                json!({}),
            )
            .await?;
        Ok(data.projects.nodes())
    }

    /// The service's latest deployment in the environment.
    pub async fn latest_deployment(
        &self,
        environment_id: &str,
        service_id: &str,
    ) -> Result<Option<Deployment>, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_instance: ServiceInstance,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ServiceInstance {
            latest_deployment: Option<Deployment>,
        }
        let document = format!(
            "query ServiceInstance($environmentId: String!, $serviceId: String!) {{ serviceInstance(environmentId: $environmentId, serviceId: $serviceId) {{ latestDeployment {{ {DEPLOYMENT_FIELDS} }} }} }}"
        );
        let data: Data = self
            .call(
                "ServiceInstance",
                &document,
                json!({ "environmentId": environment_id, "serviceId": service_id }),
            )
            .await?;
        Ok(data.service_instance.latest_deployment)
    }

    pub async fn deployment(&self, id: &str) -> Result<Deployment, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            deployment: Deployment,
        }
        let document = format!(
            "query Deployment($id: String!) {{ deployment(id: $id) {{ {DEPLOYMENT_FIELDS} }} }}"
        );
        let data: Data = self
            .call("Deployment", &document, json!({ "id": id }))
            .await?;
        Ok(data.deployment)
    }

    pub async fn restart(&self, deployment_id: &str) -> Result<(), RailwayError> {
        self.boolean(
            "DeploymentRestart",
            "mutation DeploymentRestart($id: String!) { deploymentRestart(id: $id) }",
            "deploymentRestart",
            deployment_id,
        )
        .await
    }

    pub async fn stop(&self, deployment_id: &str) -> Result<(), RailwayError> {
        self.boolean(
            "DeploymentStop",
            "mutation DeploymentStop($id: String!) { deploymentStop(id: $id) }",
            "deploymentStop",
            deployment_id,
        )
        .await
    }

    /// A new deployment of the same configuration; returns its id.
    pub async fn redeploy(&self, deployment_id: &str) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            deployment_redeploy: Named,
        }
        let data: Data = self
            .call(
                "DeploymentRedeploy",
                "mutation DeploymentRedeploy($id: String!) { deploymentRedeploy(id: $id) { id } }",
                json!({ "id": deployment_id }),
            )
            .await?;
        Ok(data.deployment_redeploy.id)
    }

    async fn boolean(
        &self,
        operation: &str,
        document: &str,
        field: &str,
        id: &str,
    ) -> Result<(), RailwayError> {
        let data: Value = self.call(operation, document, json!({ "id": id })).await?;
        match data.get(field) {
            Some(Value::Bool(true)) => Ok(()),
            other => Err(RailwayError::Api {
                operation: operation.into(),
                message: format!("answered {other:?} instead of true"),
            }),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Named {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Deserialize)]
struct Connection<T> {
    edges: Vec<Edge<T>>,
}

#[derive(Deserialize)]
struct Edge<T> {
    node: T,
}

impl<T> Connection<T> {
    fn nodes(self) -> Vec<T> {
        self.edges.into_iter().map(|e| e.node).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectNames {
    pub id: String,
    pub name: String,
    pub environments: Vec<Named>,
    pub services: Vec<Named>,
}

/// A service's volume instance (the id backup operations need, not the volume's).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInstance {
    pub id: String,
    #[serde(default)]
    pub service_id: Option<String>,
    #[serde(default)]
    pub mount_path: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    pub volume: Named,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeBackup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// None for a manual backup.
    #[serde(default)]
    pub schedule_id: Option<String>,
    #[serde(default, rename = "usedMB")]
    pub used_mb: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowResult {
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EnvironmentPatch {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub patch: Value,
}

impl EnvironmentPatch {
    /// Railway answers an empty placeholder when nothing is staged.
    pub fn is_empty(&self) -> bool {
        match &self.patch {
            Value::Null => true,
            Value::Object(map) => map.values().all(|v| v.is_null() || v == &json!({})),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkflowId {
    workflow_id: Option<String>,
}

impl RailwayClient {
    pub async fn volume_instances(
        &self,
        project_id: &str,
        environment_id: &str,
    ) -> Result<Vec<VolumeInstance>, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            environment: Env,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Env {
            volume_instances: Page,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            edges: Vec<Edge<VolumeInstance>>,
            page_info: PageInfo,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PageInfo {
            has_next_page: bool,
            end_cursor: Option<String>,
        }
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let data: Data = self
                .call(
                    "EnvironmentVolumeInstances",
                    "query EnvironmentVolumeInstances($id: String!, $projectId: String, $after: String) { environment(id: $id, projectId: $projectId) { volumeInstances(first: 100, after: $after) { edges { node { id serviceId mountPath state volume { id name } } } pageInfo { hasNextPage endCursor } } } }",
                    json!({ "id": environment_id, "projectId": project_id, "after": after }),
                )
                .await?;
            let page = data.environment.volume_instances;
            all.extend(page.edges.into_iter().map(|e| e.node));
            if !page.page_info.has_next_page || page.page_info.end_cursor.is_none() {
                return Ok(all);
            }
            after = page.page_info.end_cursor;
        }
    }

    pub async fn backup_list(
        &self,
        volume_instance_id: &str,
    ) -> Result<Vec<VolumeBackup>, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            volume_instance_backup_list: Vec<VolumeBackup>,
        }
        let data: Data = self
            .call(
                "VolumeInstanceBackupList",
                "query VolumeInstanceBackupList($volumeInstanceId: String!) { volumeInstanceBackupList(volumeInstanceId: $volumeInstanceId) { id name createdAt expiresAt scheduleId usedMB } }",
                json!({ "volumeInstanceId": volume_instance_id }),
            )
            .await?;
        Ok(data.volume_instance_backup_list)
    }

    pub async fn backup_create(
        &self,
        volume_instance_id: &str,
        name: &str,
    ) -> Result<Option<String>, RailwayError> {
        self.workflow(
            "VolumeInstanceBackupCreate",
            "mutation VolumeInstanceBackupCreate($volumeInstanceId: String!, $name: String) { volumeInstanceBackupCreate(volumeInstanceId: $volumeInstanceId, name: $name) { workflowId } }",
            "volumeInstanceBackupCreate",
            json!({ "volumeInstanceId": volume_instance_id, "name": name }),
        )
        .await
    }

    /// Restore stages a volume swap; it takes effect only once the staged change is committed.
    pub async fn backup_restore(
        &self,
        volume_instance_id: &str,
        backup_id: &str,
    ) -> Result<Option<String>, RailwayError> {
        self.workflow(
            "VolumeInstanceBackupRestore",
            "mutation VolumeInstanceBackupRestore($volumeInstanceId: String!, $volumeInstanceBackupId: String!) { volumeInstanceBackupRestore(volumeInstanceId: $volumeInstanceId, volumeInstanceBackupId: $volumeInstanceBackupId) { workflowId } }",
            "volumeInstanceBackupRestore",
            json!({ "volumeInstanceId": volume_instance_id, "volumeInstanceBackupId": backup_id }),
        )
        .await
    }

    pub async fn backup_delete(
        &self,
        volume_instance_id: &str,
        backup_id: &str,
    ) -> Result<Option<String>, RailwayError> {
        self.workflow(
            "VolumeInstanceBackupDelete",
            "mutation VolumeInstanceBackupDelete($volumeInstanceId: String!, $volumeInstanceBackupId: String!) { volumeInstanceBackupDelete(volumeInstanceId: $volumeInstanceId, volumeInstanceBackupId: $volumeInstanceBackupId) { workflowId } }",
            "volumeInstanceBackupDelete",
            json!({ "volumeInstanceId": volume_instance_id, "volumeInstanceBackupId": backup_id }),
        )
        .await
    }

    async fn workflow(
        &self,
        operation: &str,
        document: &str,
        field: &str,
        variables: Value,
    ) -> Result<Option<String>, RailwayError> {
        let data: Value = self.call(operation, document, variables).await?;
        let id: WorkflowId = serde_json::from_value(
            data.get(field).cloned().unwrap_or(Value::Null),
        )
        .map_err(|e| RailwayError::Api {
            operation: operation.into(),
            message: format!("unexpected answer: {e}"),
        })?;
        Ok(id.workflow_id)
    }

    pub async fn workflow_status(&self, workflow_id: &str) -> Result<WorkflowResult, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            workflow_status: WorkflowResult,
        }
        let data: Data = self
            .call(
                "WorkflowStatus",
                "query WorkflowStatus($workflowId: String!) { workflowStatus(workflowId: $workflowId) { status error } }",
                json!({ "workflowId": workflow_id }),
            )
            .await?;
        Ok(data.workflow_status)
    }

    pub async fn staged_changes(
        &self,
        environment_id: &str,
    ) -> Result<EnvironmentPatch, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            environment_staged_changes: EnvironmentPatch,
        }
        let data: Data = self
            .call(
                "EnvironmentStagedChanges",
                "query EnvironmentStagedChanges($environmentId: String!) { environmentStagedChanges(environmentId: $environmentId) { id status patch } }",
                json!({ "environmentId": environment_id }),
            )
            .await?;
        Ok(data.environment_staged_changes)
    }

    /// Apply the environment's whole staged patch and deploy what it affects.
    pub async fn commit_staged(
        &self,
        environment_id: &str,
        message: &str,
    ) -> Result<(), RailwayError> {
        let _: Value = self
            .call(
                "EnvironmentPatchCommitStaged",
                "mutation EnvironmentPatchCommitStaged($environmentId: String!, $commitMessage: String) { environmentPatchCommitStaged(environmentId: $environmentId, commitMessage: $commitMessage, skipDeploys: false) }",
                json!({ "environmentId": environment_id, "commitMessage": message }),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback HTTP server that answers every request with `body(request headers)`.
    async fn echoing_server(json: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/graphql", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 16 << 10];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let headers = String::from_utf8_lossy(&request[..n]).into_owned();
                let body = if json {
                    serde_json::json!({ "errors": [{ "message": format!("bad request: {headers}") }] })
                        .to_string()
                } else {
                    format!("<html>\x1b[31m{headers}</html>")
                };
                let answer = format!(
                    "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn issue_15_9_a_server_echoing_the_token_never_puts_it_in_an_error() {
        let secret = "rw-secret-token-0123456789abcdef";
        for json in [false, true] {
            for token in [Token::Bearer(secret.into()), Token::Project(secret.into())] {
                let client = RailwayClient::new(Some(&echoing_server(json).await), token);
                let err = client
                    .call::<Value>("me", "query me { me { id } }", json!({}))
                    .await
                    .unwrap_err();
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(secret), "{shown}");
                assert!(!shown.contains("rw-secret"), "{shown}");
                assert!(!shown.contains('\x1b'), "{shown}");
                assert!(shown.contains("<redacted>") || shown.len() < 400, "{shown}");
            }
        }
    }
}
