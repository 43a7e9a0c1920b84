//! `shell`: run a command with `sh -c`; its exit code is checked and its output kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shell {
    command: String,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    expect_exit: i32,
}

pub const KIND: StepKind = StepKind {
    name: "shell",
    summary: "run `command` with sh -c; check `expect_exit` (0)",
    outputs: &["exit_code", "stdout", "stderr"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Shell>,
};

const OUTPUT_LIMIT: usize = 4096;

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let start = text.len().saturating_sub(OUTPUT_LIMIT);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

#[async_trait]
impl Step for Shell {
    async fn run(&self, _ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .envs(&self.env)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let output = command
            .output()
            .await
            .map_err(|e| StepError::io(format!("cannot run `{}`", self.command), e))?;
        let code = output.status.code().unwrap_or(-1);
        let (stdout, stderr) = (tail(&output.stdout), tail(&output.stderr));
        if code != self.expect_exit {
            return Err(StepError::Check(format!(
                "`{}` exited with {code}, expected {}; stderr: {}",
                self.command,
                self.expect_exit,
                stderr
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ")
            )));
        }
        Ok(outputs! { "exit_code" => code, "stdout" => stdout, "stderr" => stderr })
    }
}
