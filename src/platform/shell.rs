//! `kind: shell`: the operator's own commands for start, stop, restart and kill, run with
//! `sh -c`. Used for services vecdrill does not own (systemd units, containers, remote hosts).

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::start_guard::StartGuard;
use super::{PlatformError, Service, ServiceEnv};

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellSpec {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub stop: Option<String>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub kill: Option<String>,
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

pub struct ShellService {
    spec: ShellSpec,
    env: ServiceEnv,
}

impl ShellService {
    pub fn new(spec: ShellSpec, env: ServiceEnv) -> Self {
        Self { spec, env }
    }

    async fn run(&self, action: &str, command: Option<&String>) -> Result<(), PlatformError> {
        let Some(command) = command else {
            return Err(PlatformError::Unsupported {
                service: self.describe(),
                message: format!("no `{action}` command is configured for this shell service"),
            });
        };
        let io = |context: String, source| PlatformError::Io {
            service: self.describe(),
            context,
            source,
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .envs(&self.spec.env)
            .stdin(Stdio::null());
        if let Some(cwd) = &self.spec.cwd {
            cmd.current_dir(cwd);
        }
        let output = cmd
            .output()
            .await
            .map_err(|e| io(format!("cannot run the {action} command"), e))?;
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.env.log_path)
            .await
            .map_err(|e| io(format!("cannot open {}", self.env.log_path.display()), e))?;
        let header = format!("--- {action}: {command} ({})\n", output.status);
        for chunk in [header.as_bytes(), &output.stdout, &output.stderr] {
            log.write_all(chunk)
                .await
                .map_err(|e| io("cannot write the service log".into(), e))?;
        }
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(PlatformError::Failed {
            service: self.describe(),
            message: format!(
                "the {action} command `{command}` failed with {}: {}",
                output.status,
                stderr.trim()
            ),
        })
    }
}

#[async_trait]
impl Service for ShellService {
    fn describe(&self) -> String {
        "shell service".to_string()
    }

    async fn start(&mut self) -> Result<(), PlatformError> {
        self.run("start", self.spec.start.as_ref()).await
    }

    async fn stop(&mut self) -> Result<(), PlatformError> {
        self.run("stop", self.spec.stop.as_ref()).await
    }

    async fn restart(&mut self) -> Result<(), PlatformError> {
        match &self.spec.restart {
            Some(command) => self.run("restart", Some(command)).await,
            None => {
                self.stop().await?;
                self.start().await
            }
        }
    }

    async fn kill(&mut self) -> Result<(), PlatformError> {
        self.run("kill", self.spec.kill.as_ref()).await
    }

    fn start_is_guarded(&self) -> bool {
        self.spec.start.is_some()
    }

    fn start_guard(&self) -> Result<Option<StartGuard>, PlatformError> {
        let Some(start) = &self.spec.start else {
            return Ok(None);
        };
        StartGuard::spawn(
            start,
            self.spec.cwd.as_deref(),
            &self.spec.env,
            &self.env.log_path,
        )
        .map(Some)
        .map_err(|source| PlatformError::Io {
            service: self.describe(),
            context: "cannot start the watcher that restarts the service if vecdrill dies".into(),
            source,
        })
    }
}
