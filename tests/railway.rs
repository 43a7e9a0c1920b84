//! Railway as a service kind, against the Railway API STAND-IN (Railway cannot run here),
//! whose service is a real Chroma on a real directory.

use std::path::Path;

use serde_json::Value;

use crate::common::{
    project_root, report_step, run_scenario, seeded_data_dir, vecdrill_env, RailwayStandin,
    RAILWAY_TEST_TOKEN,
};

/// Run `scenarios/railway/NAME.yaml` against the stand-in with `token`, logging at info
/// level (so a token leaking into the log would show).
fn run_railway_drill(
    name: &str,
    standin: &RailwayStandin,
    tmp: &Path,
    token: &str,
    extra_vars: &[&str],
) -> crate::common::Run {
    let scenario = project_root().join(format!("scenarios/railway/{name}.yaml"));
    let mut vars = vec![
        format!("url={}", standin.app_url()),
        "project=prj-7d1c".to_string(),
        "service=chromadb".to_string(),
        format!("endpoint={}", standin.endpoint()),
        "poll=200ms".to_string(),
    ];
    vars.extend(extra_vars.iter().map(|v| v.to_string()));
    let env = [
        ("RAILWAY_API_TOKEN", token.to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    run_scenario(&scenario, &tmp.join("reports"), &vars, &env)
}

fn run_restart_drill(standin: &RailwayStandin, tmp: &Path, token: &str) -> crate::common::Run {
    run_railway_drill("restart", standin, tmp, token, &[])
}

/// Every file under `dir`, as text.
fn all_text(dir: &Path) -> String {
    crate::common::files_under(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_railway_restart_drill_passes_through_rate_limits_and_never_shows_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(
        tmp.path(),
        &[("bmad_embeddings", 2000, 32), ("faq", 1000, 16)],
    );
    // The first request of each operation is rate-limited with an HTML body: retried after
    // Retry-After.
    let standin = RailwayStandin::start(&data, &["--rate-limit-first"]);
    let run = run_restart_drill(&standin, tmp.path(), RAILWAY_TEST_TOKEN);
    run.expect_code(0);
    let report: Value = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    assert!(report["rto_ms"].as_f64().unwrap() > 0.0);
    let stats = standin.stats();
    assert!(stats["operations"]["deploymentRestart"] == 1, "{stats}");
    let operations = stats["operations"].as_object().unwrap().len() as u64;
    assert_eq!(stats["rate_limited"], operations, "{stats}");
    for text in [
        run.stdout(),
        run.stderr(),
        all_text(&tmp.path().join("reports")),
    ] {
        assert!(!text.contains(RAILWAY_TEST_TOKEN), "the token leaked");
    }
}

#[test]
fn a_token_railway_refuses_fails_the_drill_with_the_token_kind_and_runs_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let standin = RailwayStandin::start(&data, &[]);
    let wrong = "rw-wrong-token-0000";
    let run = run_restart_drill(&standin, tmp.path(), wrong);
    run.expect_code(1);
    let report: Value = run.json();
    let failure = report["failure"].to_string();
    assert!(
        failure.contains("Not Authorized") && failure.contains("RAILWAY_API_TOKEN"),
        "{failure}"
    );
    assert_eq!(
        report["rollback"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    for text in [
        run.stdout(),
        run.stderr(),
        all_text(&tmp.path().join("reports")),
    ] {
        assert!(!text.contains(wrong), "the token leaked");
    }
}

#[test]
fn platform_commands_stop_start_and_restart_the_service_and_ask_before_acting() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let standin = RailwayStandin::start(&data, &[]);
    let env = [("RAILWAY_API_TOKEN", RAILWAY_TEST_TOKEN.to_string())];
    let platform = |action: &str, extra: &[&str]| {
        let mut args = vec![
            "platform".to_string(),
            action.to_string(),
            "--project".into(),
            "prj-7d1c".into(),
            "--service".into(),
            "chromadb".into(),
            "--endpoint".into(),
            standin.endpoint(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        vecdrill_env(&args, &env)
    };
    let status = platform("status", &[]);
    status.expect_code(0);
    assert_eq!(status.json()["deployment"]["status"], "SUCCESS");
    // The project by name works too (looked up among the token's projects).
    let by_name = vecdrill_env(
        [
            "platform",
            "status",
            "--project",
            "bmad-chromadb",
            "--service",
            "chromadb",
            "--endpoint",
            &standin.endpoint(),
            "--json",
        ],
        &env,
    );
    by_name.expect_code(0);
    assert_eq!(
        by_name.json()["deployment"]["id"],
        status.json()["deployment"]["id"]
    );

    // Destructive operations ask first; with no terminal, only --yes proceeds.
    let refused = platform("stop", &[]);
    refused.expect_code(2);
    assert!(refused.stderr().contains("--yes"), "{}", refused.stderr());
    assert!(
        crate::common::port_is_open(standin.app_port),
        "nothing was stopped"
    );

    let stopped = platform("stop", &["--yes"]);
    stopped.expect_code(0);
    assert_eq!(stopped.json()["deployment"]["deploymentStopped"], true);
    assert!(
        !crate::common::port_is_open(standin.app_port),
        "Chroma is down"
    );

    let started = platform("start", &[]);
    started.expect_code(0);
    let started = started.json();
    assert_eq!(started["deployment"]["status"], "SUCCESS");
    assert_ne!(
        started["deployment"]["id"],
        stopped.json()["deployment"]["id"],
        "a stopped service comes back as a new deployment"
    );
    assert!(
        crate::common::port_is_open(standin.app_port),
        "Chroma answers again"
    );

    let before = standin.stats()["requests"].as_u64().unwrap();
    let restarted = platform("restart", &["--yes"]);
    restarted.expect_code(0);
    let restarted = restarted.json();
    assert_eq!(restarted["deployment"]["id"], started["deployment"]["id"]);
    // The count it reports is the count the server saw (however many polls that took).
    assert_eq!(
        restarted["api_requests"].as_u64().unwrap(),
        standin.stats()["requests"].as_u64().unwrap() - before,
        "{restarted}"
    );

    // Volume backups from the command line.
    let created = platform("backup", &["create", "--name", "incident-1"]);
    created.expect_code(0);
    assert_eq!(created.json()["result"]["name"], "incident-1");
    let listed = platform("backup", &["list"]);
    listed.expect_code(0);
    assert_eq!(listed.json()["result"].as_array().map(Vec::len), Some(1));
    platform("backup", &["delete", "incident-1"]).expect_code(2);
    platform("backup", &["delete", "incident-1", "--yes"]).expect_code(0);
    let listed = platform("backup", &["list"]);
    assert_eq!(listed.json()["result"].as_array().map(Vec::len), Some(0));
}

fn run_snapshot_drill(standin: &RailwayStandin, tmp: &Path) -> crate::common::Run {
    run_railway_drill(
        "snapshot-restore",
        standin,
        tmp,
        RAILWAY_TEST_TOKEN,
        &["collection=bmad_embeddings"],
    )
}

#[test]
fn the_railway_snapshot_restore_drill_restores_real_data_through_rate_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(
        tmp.path(),
        &[("bmad_embeddings", 2000, 32), ("faq", 1000, 16)],
    );
    let standin = RailwayStandin::start(&data, &["--rate-limit-first"]);
    let run = run_snapshot_drill(&standin, tmp.path());
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    let restore = &report_step(&report, "restore")["outputs"];
    assert_eq!(
        restore["backup"],
        report_step(&report, "snapshot")["outputs"]["id"]
    );
    assert_ne!(
        restore["volume_instance"], "vi-0000",
        "the service mounts a new volume"
    );
    for phase in ["workflow_ms", "commit_ms", "deploy_ms"] {
        assert!(restore[phase].as_f64().unwrap() >= 0.0, "{phase}");
    }
    assert_eq!(
        report_step(&report, "verify")["outputs"]["counts_equal"],
        true
    );
    // The RTO splits into platform time (stop, restore) and the health checks after it.
    let split = &report["rto_split"];
    let rto = report["rto_ms"].as_f64().unwrap();
    let platform_ms = split["platform_ms"].as_f64().unwrap();
    assert!(platform_ms > 0.0 && platform_ms <= rto, "{split}");
    assert!((platform_ms + split["verification_ms"].as_f64().unwrap() - rto).abs() < 1.0);
    let rpo = report["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "rpo")
        .unwrap();
    assert_eq!(rpo["passed"], true, "{rpo}");
    let stats = standin.stats();
    let operations = stats["operations"].as_object().unwrap().len() as u64;
    assert_eq!(stats["rate_limited"], operations, "{stats}");
    assert!(
        stats["operations"]["environmentPatchCommitStaged"] == 1,
        "{stats}"
    );
}

#[test]
fn a_failing_restore_workflow_fails_the_drill_with_railways_message_and_staged_changes_are_refused()
{
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("bmad_embeddings", 1000, 16)]);
    let failing = RailwayStandin::start(&data, &["--fail-restore"]);
    let run = run_snapshot_drill(&failing, tmp.path());
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["failure"]["step"], "restore", "{report:#}");
    assert!(report["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("snapshot could not be read"));
    assert_eq!(report["rollback"].as_array().map(Vec::len), Some(1));
    assert!(
        crate::common::port_is_open(failing.app_port),
        "rollback started the service again"
    );
    drop(failing);

    let other = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(other.path(), &[("bmad_embeddings", 1000, 16)]);
    let staged = RailwayStandin::start(&data, &["--staged-changes"]);
    let run = run_snapshot_drill(&staged, other.path());
    run.expect_code(1);
    let report = run.json();
    assert!(
        report["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("already has staged changes"),
        "{report:#}"
    );
    assert_eq!(
        staged.stats()["operations"]["volumeInstanceBackupRestore"],
        Value::Null,
        "nothing was restored"
    );
}
