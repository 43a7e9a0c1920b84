//! `kind: process`: vecdrill runs the server command itself, in its own process group, with
//! its output appended to the run's service log. Stop is SIGTERM, then SIGKILL after the stop
//! timeout; kill is SIGKILL at once. A process vecdrill started never outlives the run.

use std::fs::OpenOptions;
use std::net::ToSocketAddrs;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{log_tail, PlatformError, Service, ServiceEnv};
use crate::duration::HumanDuration;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// The server command line, split into words like a shell would (no shell runs it).
    pub command: String,
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// How long to wait after SIGTERM before SIGKILL; `0s`: SIGKILL at once (a server whose
    /// data is thrown away, as a proof's).
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: HumanDuration,
}

fn default_stop_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(15))
}

pub struct ProcessService {
    spec: ProcessSpec,
    env: ServiceEnv,
    child: Option<Child>,
}

impl ProcessService {
    pub fn new(spec: ProcessSpec, env: ServiceEnv) -> Self {
        Self {
            spec,
            env,
            child: None,
        }
    }

    fn fail(&self, message: impl Into<String>) -> PlatformError {
        PlatformError::Failed {
            service: self.describe(),
            message: message.into(),
        }
    }

    fn io(&self, context: impl Into<String>, source: std::io::Error) -> PlatformError {
        PlatformError::Io {
            service: self.describe(),
            context: context.into(),
            source,
        }
    }

    /// Is something already listening where this service will listen? Starting a second
    /// server there would fail or, worse, the drill would measure the wrong one.
    fn port_in_use(&self) -> bool {
        let Some(addr) = &self.env.listen_addr else {
            return false;
        };
        let Ok(addrs) = addr.to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
    }

    fn signal_group(&self, signal: Signal) -> Result<(), PlatformError> {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return Ok(());
        };
        match killpg(Pid::from_raw(pid as i32), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(errno) => Err(self.fail(format!(
                "cannot send {signal} to process group {pid}: {errno}"
            ))),
        }
    }

    /// Wait for the child to exit, up to `limit`. True when it exited.
    async fn wait_exit(&mut self, limit: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        matches!(tokio::time::timeout(limit, child.wait()).await, Ok(Ok(_)))
    }

    fn require_started(&self, action: &str) -> Result<(), PlatformError> {
        match &self.child {
            Some(_) => Ok(()),
            None => Err(self.fail(format!(
                "cannot {action}: vecdrill did not start this process (a `process` service can only {action} what it started; add a `start` step first, or use `kind: shell` with your own commands)"
            ))),
        }
    }
}

#[async_trait]
impl Service for ProcessService {
    fn describe(&self) -> String {
        format!("process {:?}", self.spec.command)
    }

    async fn start(&mut self) -> Result<(), PlatformError> {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                // Like `systemctl start`: starting a running service is not an error.
                tracing::info!("{} is already running; nothing to start", self.describe());
                return Ok(());
            }
            self.child = None;
        }
        if self.port_in_use() {
            return Err(self.fail(format!(
                "something is already listening on {}; stop it first, or point the scenario at a free port",
                self.env.listen_addr.as_deref().unwrap_or("?")
            )));
        }
        let argv = shlex::split(&self.spec.command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                self.fail("the command line cannot be split into words (unbalanced quotes?)")
            })?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.env.log_path)
            .map_err(|e| {
                self.io(
                    format!("cannot open log {}", self.env.log_path.display()),
                    e,
                )
            })?;
        let log_err = log
            .try_clone()
            .map_err(|e| self.io("cannot duplicate the log handle", e))?;
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: signals reach the server and any children it forks.
            .process_group(0);
        if let Some(cwd) = &self.spec.cwd {
            command.current_dir(cwd);
        }
        let child = command
            .spawn()
            .map_err(|e| self.io(format!("cannot run {:?}", argv[0]), e))?;
        tracing::info!(pid = child.id(), command = %self.spec.command, "started service process");
        self.child = Some(child);
        // A server that dies at once (bad flag, port taken) should fail here, not in a later
        // health check with a vaguer message.
        tokio::time::sleep(Duration::from_millis(150)).await;
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(self.fail(format!(
                    "exited at once with {status}; last lines of {}:\n{}",
                    self.env.log_path.display(),
                    log_tail(&self.env.log_path, 10)
                )));
            }
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), PlatformError> {
        self.require_started("stop")?;
        if self.spec.stop_timeout.as_duration().is_zero() {
            return self.kill().await;
        }
        self.signal_group(Signal::SIGTERM)?;
        if !self.wait_exit(self.spec.stop_timeout.as_duration()).await {
            tracing::warn!(
                "service did not exit within {} of SIGTERM; sending SIGKILL",
                self.spec.stop_timeout
            );
            self.signal_group(Signal::SIGKILL)?;
            if !self.wait_exit(Duration::from_secs(10)).await {
                return Err(self.fail("still running 10s after SIGKILL"));
            }
        }
        self.child = None;
        Ok(())
    }

    async fn kill(&mut self) -> Result<(), PlatformError> {
        self.require_started("kill")?;
        self.signal_group(Signal::SIGKILL)?;
        if !self.wait_exit(Duration::from_secs(10)).await {
            return Err(self.fail("still running 10s after SIGKILL"));
        }
        self.child = None;
        Ok(())
    }

    async fn shutdown(&mut self) {
        if self.child.is_some() {
            if let Err(err) = self.stop().await {
                tracing::error!("stopping the service at the end of the run failed: {err}");
            }
        }
    }
}

impl Drop for ProcessService {
    /// Last line of defence (a panic, an early return): never leave the server running.
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Kill what is left of services started for `dir` by a vecdrill that was killed outright
/// (no chance to stop them): every process whose command line names `dir` or a path inside
/// it, with its process group when it leads one (services are started as group leaders).
/// The ids of those signalled. Only this user's processes can be signalled; the others are
/// passed over.
pub fn kill_processes_naming(dir: &std::path::Path) -> Vec<i32> {
    let Some(dir) = dir.to_str() else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return killed;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // Arguments are NUL-separated: a path is named when an argument is it, is under it,
        // or ends with it after an `=`.
        let names = cmdline.split(|b| *b == 0).any(|arg| {
            let arg = String::from_utf8_lossy(arg);
            let value = arg.rsplit('=').next().unwrap_or(&arg);
            value == dir || value.starts_with(&format!("{dir}/"))
        });
        if !names || pid == std::process::id() as i32 {
            continue;
        }
        let leads_group = nix::unistd::getpgid(Some(Pid::from_raw(pid))) == Ok(Pid::from_raw(pid));
        let signalled = if leads_group {
            killpg(Pid::from_raw(pid), Signal::SIGKILL)
        } else {
            nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
        };
        if signalled.is_ok() {
            killed.push(pid);
        }
    }
    killed
}
