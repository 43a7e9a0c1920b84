//! `--quiet`: nothing on stdout or stderr when the command succeeds, for cron (which mails
//! whatever a job prints). Both are held in scratch files for the whole run; when the command
//! fails, what it said is shown after all (results on stdout, the rest on stderr, then its
//! error), so a failure reads as it does without `--quiet`.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;

/// The real stdout and stderr, kept while the command's output is held back.
pub struct Quiet {
    stdout: OwnedFd,
    stderr: OwnedFd,
    held_out: std::fs::File,
    held_err: std::fs::File,
}

impl Quiet {
    /// Hold the output back from now on; none when that cannot be done (the command then
    /// runs as it would without `--quiet`, saying so).
    pub fn begin() -> Option<Self> {
        let hold = || -> std::io::Result<Self> {
            let quiet = Self {
                stdout: nix::unistd::dup(std::io::stdout())?,
                stderr: nix::unistd::dup(std::io::stderr())?,
                held_out: tempfile::tempfile()?,
                held_err: tempfile::tempfile()?,
            };
            nix::unistd::dup2_stdout(&quiet.held_out)?;
            nix::unistd::dup2_stderr(&quiet.held_err)?;
            Ok(quiet)
        };
        match hold() {
            Ok(quiet) => Some(quiet),
            Err(err) => {
                eprintln!(
                    "warning: --quiet: cannot hold the output back ({err}); running without it"
                );
                None
            }
        }
    }

    /// Give stdout and stderr back; when the command failed, show what it said.
    pub fn end(mut self, failed: bool) {
        let _ = std::io::stdout().flush();
        let _ = nix::unistd::dup2_stdout(&self.stdout);
        let _ = nix::unistd::dup2_stderr(&self.stderr);
        if !failed {
            return;
        }
        let replay = |held: &mut std::fs::File, to: &mut dyn Write| {
            let mut said = Vec::new();
            if held.rewind().is_ok() && held.read_to_end(&mut said).is_ok() {
                let _ = to.write_all(&said);
                let _ = to.flush();
            }
        };
        replay(&mut self.held_out, &mut std::io::stdout());
        replay(&mut self.held_err, &mut std::io::stderr());
    }
}
