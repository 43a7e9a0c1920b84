//! Issue 16: what a new user tripped over, each a wrong answer or a surprise — a repository
//! created by a typo, a history that depends on the working directory, two ids for one backup,
//! a restore onto a file.

use std::path::Path;

use crate::common::{
    backup_json, repo_url, restore_run, seeded_data_dir, vecdrill_command, workspace, Workspace,
};

/// `vecdrill ARGS` run in `cwd` with `env` and no `VECDRILL_HISTORY` of the harness's.
fn vecdrill_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut command = vecdrill_command();
    command
        .current_dir(cwd)
        .env_remove("VECDRILL_HISTORY")
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn issue_16_5_reading_commands_never_create_a_repository_and_file_urls_are_absolute() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 100, 8)]);
    let typo = tmp.path().join("backups/repoo");
    let url = repo_url(&typo);
    for args in [
        vec!["list", "--repo", &url],
        vec!["info", "--repo", &url, "latest"],
        vec!["verify", "--repo", &url],
        vec!["stats", "--repo", &url],
        vec![
            "restore",
            "--repo",
            &url,
            "latest",
            "--to",
            "/nonexistent/x",
            "--yes",
        ],
    ] {
        let run = vecdrill_in(tmp.path(), &args, &[]);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&run.stderr)
        );
        assert!(text(&run.stderr).contains(&url), "{}", text(&run.stderr));
        assert!(!tmp.path().join("backups").exists(), "{args:?} created it");
    }
    // `file://srv/x` reads as a host: refused, naming what to write instead.
    let run = vecdrill_in(tmp.path(), &["list", "--repo", "file://srv/x"], &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        text(&run.stderr).contains("file:///srv/x"),
        "{}",
        text(&run.stderr)
    );
    assert!(!tmp.path().join("srv").exists());
    // A backup creates its repository; `file://./` is explicitly relative.
    let backup = vecdrill_in(
        tmp.path(),
        &[
            "backup",
            "--repo",
            "file://./here",
            "--chroma-dir",
            data.to_str().unwrap(),
            "--no-history",
        ],
        &[],
    );
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup.stderr));
    assert!(tmp.path().join("here/config").is_file());
}

#[test]
fn issue_16_4_the_history_lives_in_one_place_whatever_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 100, 8)]);
    let state = tmp.path().join("state");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let repo = repo_url(&tmp.path().join("repo"));
    let env = [("XDG_STATE_HOME", state.as_path())];
    let backup = vecdrill_in(
        &one,
        &[
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup.stderr));
    let history = state.join("vecdrill/history.sqlite");
    assert!(
        text(&backup.stderr).contains(&format!("creating {}", history.display())),
        "{}",
        text(&backup.stderr)
    );
    assert!(history.is_file());
    assert!(!one.join("reports").exists());
    // Read from elsewhere: the same history.
    let listed = vecdrill_in(&two, &["history", "--json"], &env);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    // HOME is the fallback.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = vecdrill_command();
    command
        .current_dir(&two)
        .env_remove("VECDRILL_HISTORY")
        .env_remove("XDG_STATE_HOME")
        .env("HOME", &home)
        .args([
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data.to_str().unwrap(),
        ]);
    assert!(command.output().unwrap().status.success());
    assert!(home.join(".local/state/vecdrill/history.sqlite").is_file());
}

#[test]
fn issue_16_6_a_backup_has_one_id_in_the_repository_and_the_history() {
    let Workspace {
        tmp, data, repo, ..
    } = workspace(&[("docs", 100, 8)]);
    let history = tmp.path().join("history.sqlite");
    let backup = vecdrill_in(
        tmp.path(),
        &[
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data.to_str().unwrap(),
            "--json",
            "--history",
            history.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup.stderr));
    let backup: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let id = backup["backup"]["manifest"]["id"].as_str().unwrap();
    let shown = vecdrill_in(
        tmp.path(),
        &[
            "history",
            "show",
            id,
            "--json",
            "--history",
            history.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["id"], id);
    assert_eq!(shown["backup_id"], id);
}

#[test]
fn issue_16_7_restore_refuses_a_file_or_a_target_under_a_file_before_downloading() {
    let Workspace {
        tmp, data, repo, ..
    } = workspace(&[("docs", 100, 8)]);
    backup_json(&repo, &data, &[]);
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let run = restore_run(&repo, "latest", &file, &[]);
    run.expect_code(2);
    assert!(run.stderr().contains("is a file"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let under = file.join("sub/chroma");
    let run = restore_run(&repo, "latest", &under, &[]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("is not a directory"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

#[test]
fn issue_16_1_a_drill_on_an_empty_data_directory_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("typo-chroma");
    let vars = [
        format!("data_dir={}", empty.display()),
        format!("port={}", crate::common::free_port()),
        format!("chroma={}", crate::common::chroma_bin().display()),
    ];
    let scenario = crate::common::project_root().join("scenarios/restart.yaml");
    let run = crate::common::run_scenario(&scenario, &tmp.path().join("reports"), &vars, &[]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["passed"], false);
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("captured nothing") && reason.contains(&empty.display().to_string()),
        "{reason}"
    );
}

/// A scenario on an empty Chroma directory with `steps`; its report.
fn empty_drill(tmp: &Path, steps: &str, code: i32) -> serde_json::Value {
    let data = tmp.join("empty");
    let port = crate::common::free_port();
    let text = format!(
        "name: empty\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:{port}\n  data_dir: {data}\n  \
         service: {{ kind: process, command: \"{chroma} run --path {data} --port {port}\" }}\n\
         steps:\n  - {{ do: start }}\n  - {{ do: wait_healthy }}\n{steps}\n",
        data = data.display(),
        chroma = crate::common::chroma_bin().display(),
    );
    let path = tmp.join("empty.yaml");
    std::fs::write(&path, text).unwrap();
    let run = crate::common::run_scenario(&path, &tmp.join("reports"), &[], &[]);
    run.expect_code(code);
    run.json()
}

#[test]
fn issue_16_1_compare_and_count_on_nothing_fail_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let allowed = "  - { id: before, do: capture_state, with: { allow_empty: true } }\n";
    let report = empty_drill(
        tmp.path(),
        &format!("{allowed}  - {{ id: cmp, do: compare_state }}"),
        1,
    );
    assert_eq!(report["failure"]["step"], "cmp", "{report:#}");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("compared nothing"));
    let report = empty_drill(tmp.path(), "  - { id: n, do: count }", 1);
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("counted nothing"));
    // Said on purpose, an empty database passes.
    empty_drill(
        tmp.path(),
        &format!("{allowed}  - {{ do: compare_state, with: {{ allow_empty: true }} }}\n  - {{ do: count, with: {{ allow_empty: true }} }}"),
        0,
    );
}

#[test]
fn issue_16_2_a_mistyped_var_is_refused_and_dry_run_shows_where_a_run_would_act() {
    let scenario = crate::common::project_root().join("scenarios/restart.yaml");
    let scenario = scenario.to_str().unwrap();
    for command in ["run", "validate"] {
        let run = crate::common::vecdrill([command, scenario, "--var", "datadir=/srv/chroma"]);
        run.expect_code(2);
        // `validate` reports problems as its result (stdout); `run` as its error (stderr).
        let said = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            said.contains("`datadir` (did you mean `data_dir`?)") && said.contains("restart.yaml:"),
            "{command}: {said}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 10, 4)]);
    let run = crate::common::vecdrill([
        "run",
        scenario,
        "--dry-run",
        "--var",
        &format!("data_dir={}", data.display()),
        "--var",
        "port=9123",
    ]);
    run.expect_code(0);
    let out = run.stdout();
    for expected in [
        "target: chroma at http://127.0.0.1:9123".to_string(),
        format!(
            "data directory: {} (holds a Chroma database)",
            data.display()
        ),
        format!("--path {} --port 9123`", data.display()),
        " 1. start (start)".to_string(),
    ] {
        assert!(out.contains(&expected), "{expected:?} not in\n{out}");
    }
}

/// `vecdrill ARGS` with the harness's environment.
fn run(args: &[&str]) -> crate::common::Run {
    crate::common::vecdrill(args)
}

#[test]
fn issue_16_3_latest_never_crosses_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let a = seeded_data_dir(&tmp.path().join("a"), &[("alpha", 120, 8)]);
    let b = seeded_data_dir(&tmp.path().join("b"), &[("beta", 80, 8)]);
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    let id = |v: serde_json::Value| v["backup"]["manifest"]["id"].as_str().unwrap().to_string();
    let a_id = id(backup_json(&repo, &a, &[]));
    let b_id = id(backup_json(&repo, &b, &[]));
    let listed = run(&["list", "--repo", &repo, "--json"]);
    listed.expect_code(0);
    let sources: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["source"].as_str().unwrap().to_string())
        .collect();
    let a_path = a.canonicalize().unwrap().display().to_string();
    assert_eq!(sources.len(), 2);
    assert!(sources[0].ends_with(&format!(":{a_path}")), "{sources:?}");
    let a_source = sources[0].clone();
    let only_a = run(&["list", "--repo", &repo, "--source", &a_path, "--json"]);
    assert_eq!(only_a.json().as_array().unwrap().len(), 1);

    // A new directory matches neither: `latest` is refused, listing both sources.
    let elsewhere = tmp.path().join("elsewhere");
    let refused = restore_run(&repo, "latest", &elsewhere, &[]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("2 sources") && refused.stderr().contains(&a_source),
        "{}",
        refused.stderr()
    );
    assert!(!elsewhere.exists());
    let info = run(&["info", "--repo", &repo, "latest"]);
    info.expect_code(2);
    // Named, or matched by the directory being restored, `latest` is that source's newest.
    let info = run(&[
        "info", "--repo", &repo, "latest", "--source", &a_source, "--json",
    ]);
    info.expect_code(0);
    assert_eq!(info.json()["id"], a_id.as_str());
    restore_run(&repo, "latest", &elsewhere, &["--source", &a_path]).expect_code(0);
    let plan = restore_run(&repo, "latest", &a, &["--dry-run"]);
    plan.expect_code(0);
    assert!(
        plan.stdout().contains(&a_id) && plan.stdout().contains(&a_source),
        "{}",
        plan.stdout()
    );
    assert!(
        plan.stdout()
            .contains("collections in the backup: alpha (120)"),
        "{}",
        plan.stdout()
    );
    assert!(
        plan.stdout()
            .contains("collections there now:     alpha (120)"),
        "{}",
        plan.stdout()
    );
    let plan = restore_run(
        &repo,
        "latest",
        &elsewhere,
        &["--dry-run", "--source", &sources[1]],
    );
    plan.expect_code(0);
    assert!(plan.stdout().contains(&b_id), "{}", plan.stdout());
    assert!(
        plan.stdout()
            .contains("collections in the backup: beta (80)")
            && plan.stdout().contains("there now:     alpha (120)"),
        "{}",
        plan.stdout()
    );

    // Prune applies its policy per source and says so.
    let prune = run(&["prune", "--repo", &repo, "--keep-last", "1", "--dry-run"]);
    prune.expect_code(0);
    assert!(
        prune.stdout().contains(&format!("source {a_source}:")),
        "{}",
        prune.stdout()
    );

    // A stale source cannot hide behind a fresh one.
    let a_manifest = repo_dir.join(format!("snapshots/{a_id}.json"));
    let mut manifest: vecdrill::repo::format::Manifest =
        serde_json::from_slice(&std::fs::read(&a_manifest).unwrap()).unwrap();
    manifest.created_at -= chrono::Duration::days(3);
    std::fs::write(&a_manifest, vecdrill::repo::format::Sealed::seal(&manifest)).unwrap();
    let check = run(&["check", "--repo", &repo, "--max-backup-age", "1d", "--json"]);
    check.expect_code(1);
    assert!(check.stdout().contains(&a_source), "{}", check.stdout());
    let check = run(&[
        "check",
        "--repo",
        &repo,
        "--max-backup-age",
        "1d",
        "--source",
        &sources[1],
    ]);
    check.expect_code(0);
}

#[test]
fn issue_16_7_results_go_to_stdout_and_progress_to_stderr() {
    let Workspace {
        tmp, data, repo, ..
    } = workspace(&[("docs", 50, 4)]);
    let backup = crate::common::backup_run(&repo, &data, &[]);
    backup.expect_code(0);
    let target = tmp.path().join("restored");
    let scenario = crate::common::project_root().join("scenarios/restart.yaml");
    let scenario = scenario.to_str().unwrap();
    let cases = [
        (backup, "backup "),
        (
            restore_run(&repo, "latest", &target, &[]),
            "restored backup ",
        ),
        (
            run(&["verify", "--repo", &repo, "--read-data"]),
            "verified: ",
        ),
        (run(&["validate", scenario]), ": ok"),
        (run(&["run", scenario, "--dry-run"]), " 1. start (start)"),
        (run(&["list", "--repo", &repo]), "docs (50)"),
    ];
    for (outcome, result) in cases {
        assert!(
            outcome.stdout().contains(result),
            "{result:?} not on stdout:\n{}",
            outcome.stdout()
        );
        assert!(
            !outcome.stderr().contains(result),
            "{result:?} on stderr:\n{}",
            outcome.stderr()
        );
    }
}

#[test]
fn issue_16_7_stats_names_deduplication_and_compression_apart() {
    let Workspace {
        tmp: _tmp,
        data,
        repo,
        ..
    } = workspace(&[("docs", 200, 16)]);
    backup_json(&repo, &data, &[]);
    backup_json(&repo, &data, &[]);
    let stats = run(&["stats", "--repo", &repo, "--json"]);
    stats.expect_code(0);
    let stats = stats.json();
    let f = |k: &str| stats[k].as_f64().unwrap();
    // Two backups of the same data: deduplication halves it, compression is the rest.
    assert!((f("dedup_ratio") - 2.0).abs() < 1e-9, "{stats}");
    assert!((f("compression_ratio") - f("unique_chunk_bytes") / f("pack_bytes")).abs() < 1e-9);
    assert!(f("compression_ratio") > 1.0, "{stats}");
    let shown = run(&["stats", "--repo", &repo]);
    assert!(
        shown.stdout().contains("deduplication 2.00x") && shown.stdout().contains("compression"),
        "{}",
        shown.stdout()
    );
}

#[test]
fn issue_16_7_safety_copies_never_collide_and_old_ones_are_pruned() {
    let Workspace {
        tmp, data, repo, ..
    } = workspace(&[("docs", 50, 4)]);
    backup_json(&repo, &data, &[]);
    let target = tmp.path().join("live");
    let copies = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("live.before-restore-"))
            .collect();
        names.sort();
        names
    };
    // Quick restores, several within one second: each keeps its own copy, up to the number kept.
    for _ in 0..4 {
        restore_run(&repo, "latest", &target, &["--keep-safety-copies", "3"]).expect_code(0);
    }
    assert_eq!(copies().len(), 3, "{:?}", copies());
    let newest = copies().last().unwrap().clone();
    // The default keeps one: the newest.
    restore_run(&repo, "latest", &target, &[]).expect_code(0);
    let left = copies();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0] > newest, "{left:?} after {newest}");
}

#[test]
fn issue_16_7_an_ambiguous_id_prefix_lists_the_backups_it_matches() {
    let Workspace {
        tmp: _tmp,
        data,
        repo,
        ..
    } = workspace(&[("docs", 50, 4)]);
    let id = |v: serde_json::Value| v["backup"]["manifest"]["id"].as_str().unwrap().to_string();
    let first = id(backup_json(&repo, &data, &[]));
    let second = id(backup_json(&repo, &data, &["--read-all"]));
    // Both ids begin with the year.
    let info = run(&["info", "--repo", &repo, &first[..4]]);
    info.expect_code(2);
    assert!(
        info.stderr().contains("ambiguous")
            && info.stderr().contains(&first)
            && info.stderr().contains(&second),
        "{}",
        info.stderr()
    );
}

#[test]
fn issue_22_progress_on_a_terminal_is_in_human_units_within_80_columns() {
    let ws = crate::common::workspace(&[("docs", 2000, 64)]);
    let data = ws.data.to_str().unwrap();
    let run = crate::common::vecdrill_on_terminal(
        &["backup", "--repo", &ws.repo, "--chroma-dir", data],
        &[],
        None,
    );
    run.expect_code(0);
    let shown = run.stdout();
    // Each redraw: carriage return, erase line, the line.
    let frames: Vec<String> = shown
        .split(['\r', '\n'])
        .map(|f| f.replace("\x1b[2K", ""))
        .filter(|f| f.contains("backing up ["))
        .collect();
    assert!(!frames.is_empty(), "no progress shown: {shown:?}");
    for frame in &frames {
        assert!(
            frame.chars().count() <= 80,
            "{} columns: {frame:?}",
            frame.chars().count()
        );
        // Bytes in binary units, rates likewise; no four-decimal rates, no estimate at once.
        assert!(frame.contains("iB/") || frame.contains(" B/"), "{frame:?}");
        assert!(!frame.contains("eta 0s"), "{frame:?}");
        let decimals = frame
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|n| n.split_once('.'))
            .map(|(_, fraction)| fraction.len())
            .max()
            .unwrap_or(0);
        assert!(decimals <= 1, "{frame:?}");
    }
}
