//! How a database service is started, stopped, restarted and killed.
//!
//! One [`Service`] trait, one file per kind: `process` (vecdrill runs the server itself and
//! owns its pid), `shell` (the operator's own commands, e.g. `systemctl restart chroma`) and
//! `railway` (Railway's GraphQL API).
//! The drill runner calls [`Service::shutdown`] at the end of every run so that no process
//! vecdrill started outlives it.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::exit::{self, Classify};

/// A scenario's `target.service`: how its database is started and stopped.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceSpec {
    Process(process::ProcessSpec),
    Shell(shell::ShellSpec),
    Railway(railway::RailwaySpec),
    Docker(docker::DockerSpec),
}

impl ServiceSpec {
    /// What runs the service, in one line, as `validate` shows where a run would act.
    pub fn describe(&self) -> String {
        match self {
            Self::Process(p) => format!("process `{}`", p.command),
            Self::Shell(s) => format!(
                "shell: start `{}`, stop `{}`",
                s.start.as_deref().unwrap_or("-"),
                s.stop.as_deref().unwrap_or("-")
            ),
            Self::Docker(d) => format!("docker: {}", d.named()),
            Self::Railway(r) => format!(
                "Railway service {} (project {}, environment {})",
                r.service,
                r.project.as_deref().unwrap_or("from the token"),
                r.environment.as_deref().unwrap_or("default")
            ),
        }
    }

    /// What runs the service, briefly, as a drill report records it.
    pub fn summary(&self) -> String {
        match self {
            Self::Process(p) => format!("process: {}", p.command),
            Self::Shell(_) => "shell".to_string(),
            Self::Railway(r) => format!("railway: service {}", r.service),
            Self::Docker(d) => format!("docker: {}", d.named()),
        }
    }
}

pub mod docker;
pub mod process;
pub mod railway;
pub mod shell;
pub mod start_guard;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{service}: {message}")]
    Failed { service: String, message: String },
    #[error("{service}: not supported: {message}")]
    Unsupported { service: String, message: String },
    /// The platform itself cannot be reached (a stopped Docker daemon).
    #[error("{service}: {message}")]
    Unreachable {
        service: String,
        message: String,
        hint: String,
    },
    #[error("{service}: {context}: {source}")]
    Io {
        service: String,
        context: String,
        source: std::io::Error,
    },
}

impl Classify for PlatformError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Unsupported { .. } => exit::BAD_INPUT,
            _ => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Unreachable { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

/// Where a service writes its output and how it can be reached.
#[derive(Debug, Clone)]
pub struct ServiceEnv {
    /// Append-only log of everything the service (or its commands) printed.
    pub log_path: PathBuf,
    /// `host:port` the service listens on, when known from the target URL.
    pub listen_addr: Option<String>,
}

#[async_trait]
pub trait Service: Send + Sync {
    /// Short description for logs and reports, e.g. `process "chroma run ..."`.
    fn describe(&self) -> String;
    async fn start(&mut self) -> Result<(), PlatformError>;
    /// Graceful stop.
    async fn stop(&mut self) -> Result<(), PlatformError>;
    async fn restart(&mut self) -> Result<(), PlatformError> {
        self.stop().await?;
        self.start().await
    }
    /// Abrupt termination (SIGKILL or the operator's kill command): a crash on purpose.
    async fn kill(&mut self) -> Result<(), PlatformError>;
    /// End of run: stop whatever vecdrill itself started. Never fails; reports problems in logs.
    async fn shutdown(&mut self) {}
    /// A watcher that starts the service again should vecdrill die while it is stopped (see
    /// [`start_guard`]); `None` where no command alone starts it.
    fn start_guard(&self) -> Result<Option<start_guard::StartGuard>, PlatformError> {
        Ok(None)
    }
    /// Whether [`Service::start_guard`] gives a watcher: a step cut off while the service was
    /// stopped has then had it started by its watcher, and nobody else need start it.
    fn start_is_guarded(&self) -> bool {
        false
    }
    /// The Railway service, for the steps only Railway offers (volume backups).
    fn railway(&mut self) -> Option<&mut railway::RailwayService> {
        None
    }
}

pub fn build(spec: &ServiceSpec, env: ServiceEnv) -> Box<dyn Service> {
    match spec {
        ServiceSpec::Process(spec) => Box::new(process::ProcessService::new(spec.clone(), env)),
        ServiceSpec::Shell(spec) => Box::new(shell::ShellService::new(spec.clone(), env)),
        ServiceSpec::Railway(spec) => Box::new(railway::RailwayService::new(spec.clone())),
        ServiceSpec::Docker(spec) => Box::new(docker::DockerService::new(spec.clone(), env)),
    }
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
