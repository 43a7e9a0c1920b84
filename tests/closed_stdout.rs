//! Issue 18: a closed stdout is not an error. `vecdrill list | head -1` ends `head` after one
//! line; every command then finishes as it would have, with its own exit code and nothing on
//! stderr, instead of panicking on the broken pipe.

use std::os::fd::OwnedFd;
use std::process::Stdio;

use crate::common::{backup_json, seeded_data_dir, vecdrill, vecdrill_command, Run};

/// Run `vecdrill ARGS` with stdout a pipe whose reading end is already closed: every write to
/// it fails (EPIPE), whenever it comes.
fn with_closed_stdout(args: &[&str]) -> Run {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("a pipe");
    drop(read);
    let mut command = vecdrill_command();
    command.args(args).stdout(Stdio::from(write));
    let description = format!("{command:?} >&- (closed)");
    let output = command.output().expect("run vecdrill");
    Run {
        description,
        output,
    }
}

#[test]
fn issue_18_a_closed_stdout_is_not_an_error_for_any_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let repo = crate::common::repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let history = tmp.path().join("history.sqlite");
    let (data_str, history_str) = (data.to_str().unwrap(), history.to_str().unwrap());
    let restored = tmp.path().join("restored");
    let commands: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["--version"],
        vec!["list", "--repo", &repo],
        vec!["list", "--repo", &repo, "--json"],
        vec!["info", "--repo", &repo, "latest"],
        vec!["verify", "--repo", &repo, "--read-data"],
        vec!["check", "--repo", &repo, "--max-backup-age", "1d"],
        vec!["validate", "scenarios/restart.yaml"],
        vec![
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data_str,
            "--history",
            history_str,
        ],
        vec!["history", "--history", history_str],
        vec![
            "restore",
            "--repo",
            &repo,
            "latest",
            "--to",
            restored.to_str().unwrap(),
            "--yes",
            "--dry-run",
        ],
        vec!["steps"],
        vec!["stats", "--repo", &repo],
        vec!["prune", "--repo", &repo, "--keep-last", "1", "--dry-run"],
        vec!["history", "--history", history_str, "show", "latest"],
        vec!["run", "scenarios/restart.yaml", "--dry-run"],
    ];
    let mut failures = Vec::new();
    for args in &commands {
        let open = vecdrill(args);
        let closed = with_closed_stdout(args);
        if closed.code() != open.code() {
            failures.push(format!(
                "{args:?}: exit {} with stdout closed, {} with it open: {}",
                closed.code(),
                open.code(),
                closed.stderr()
            ));
        } else if open.stderr().is_empty() && !closed.stderr().is_empty() {
            failures.push(format!("{args:?} wrote to stderr: {}", closed.stderr()));
        }
        if open.stdout().is_empty() {
            failures.push(format!(
                "{args:?} prints nothing on stdout: the check checked nothing"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Any other failure to write (a full disk under `> file`) is an error: the output is
    // incomplete.
    let mut command = vecdrill_command();
    command
        .args(["list", "--repo", &repo])
        .stdout(std::fs::File::create("/dev/full").unwrap());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
}
