//! A watcher that starts a stopped service again should vecdrill die before it does. A cold
//! backup stops the database for its copy; a SIGKILL (or an out-of-memory kill) in that window
//! runs no clean-up, and the service would stay down. The watcher is a small `sh` reading a
//! pipe from vecdrill: told `started`, it exits; at end of input (vecdrill gone, or the guard
//! dropped unsaid) it runs the start command. It runs in a process group of its own, so the
//! Ctrl-C that interrupts vecdrill does not stop it too.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$1` is the start command, `$2` the log its output is appended to.
const SCRIPT: &str = r#"IFS= read -r said; [ "$said" = started ] || exec sh -c "$1" >> "$2" 2>&1"#;

pub struct StartGuard {
    child: Child,
}

impl StartGuard {
    /// Watch for the death of this process, then run `start` (with `sh -c`, in `cwd`, with
    /// `env` added), its output appended to `log`.
    pub fn spawn<'a>(
        start: &str,
        cwd: Option<&Path>,
        env: impl IntoIterator<Item = (&'a String, &'a String)>,
        log: &Path,
    ) -> std::io::Result<Self> {
        let mut command = Command::new("sh");
        command
            .args(["-c", SCRIPT, "vecdrill-start-guard", start])
            .arg(log)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        Ok(Self {
            child: command.spawn()?,
        })
    }

    /// vecdrill has started the service again (or tried, and reports how that went itself):
    /// the watcher exits without running anything.
    pub fn disarm(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"started\n");
        }
        let _ = self.child.wait();
    }
}

/// How long an interrupted command waits for the watcher's start command: a start that hangs
/// must not hang the interrupt too (the watcher goes on in its own process group).
const START_WAIT: Duration = Duration::from_secs(60);

impl Drop for StartGuard {
    /// Dropped without [`StartGuard::disarm`] (a backup cancelled by an interrupt): the watcher
    /// starts the service, and this waits for it (up to [`START_WAIT`]), so that whatever runs
    /// next (a drill's rollback) finds the service started.
    fn drop(&mut self) {
        let Some(stdin) = self.child.stdin.take() else {
            return;
        };
        drop(stdin);
        let deadline = Instant::now() + START_WAIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                _ => return,
            }
        }
        tracing::warn!(
            "the service's start command is still running after {}s; it goes on without vecdrill",
            START_WAIT.as_secs()
        );
    }
}
