//! Drills end to end: the shipped restart scenario, objectives, failures, rollback, Ctrl-C.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vecdrill::seed::{record_id, RecordGenerator};
use vecdrill::targets::chroma::ChromaClient;

use crate::common::{
    chroma_bin, free_port, port_is_open, report_objective, report_step, seeded_data_dir,
    ChromaServer,
};

/// A scenario whose service is a Chroma process on `data_dir` and `port`, with the given
/// objectives, steps and rollback (YAML fragments).
fn scenario(
    dir: &Path,
    data_dir: &Path,
    port: u16,
    objectives: &str,
    steps: &str,
    rollback: &str,
) -> std::path::PathBuf {
    let text = format!(
        "name: test-drill\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:{port}\n  data_dir: {data}\n  \
         service: {{ kind: process, command: \"{chroma} run --path {data} --port {port}\" }}\n\
         objectives: {objectives}\n\
         steps:\n{steps}\n\
         rollback:\n{rollback}\n",
        data = data_dir.display(),
        chroma = chroma_bin().display(),
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn run_json(scenario: &Path, report_dir: &Path, code: i32, vars: &[String]) -> Value {
    let run = crate::common::run_scenario(scenario, report_dir, vars, &[]);
    run.expect_code(code);
    run.json()
}

/// Run `scenarios/NAME.yaml` on `data` and `port` with the test's Chroma; it must pass.
fn run_shipped(name: &str, tmp: &Path, data: &Path, port: u16, extra: &[String]) -> Value {
    let mut vars = vec![
        format!("data_dir={}", data.display()),
        format!("port={port}"),
        format!("chroma={}", chroma_bin().display()),
    ];
    vars.extend_from_slice(extra);
    let scenario = crate::common::project_root().join(format!("scenarios/{name}.yaml"));
    run_json(&scenario, &tmp.join("reports"), 0, &vars)
}

#[test]
fn restart_drill_passes_and_leaves_the_data_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 3000, 64), ("faq", 1200, 32)]);
    let port = free_port();
    let report = run_shipped("restart", tmp.path(), &data, port, &[]);
    assert_eq!(report["passed"], true);
    assert_eq!(report["scenario"], "restart");
    // Issue 16: the server's log is kept as text, without its colour codes.
    let log = std::path::Path::new(report["run_dir"].as_str().unwrap()).join("service.log");
    let log = std::fs::read(&log).unwrap();
    assert!(
        log.len() > 100 && !log.contains(&0x1b),
        "colour codes in service.log"
    );
    let rto = report["rto_ms"].as_f64().expect("rto measured");
    assert!(rto > 0.0 && rto < 120_000.0, "rto {rto}");
    for name in ["rto", "heartbeat_within", "search_p90", "collections_min"] {
        assert_eq!(
            report_objective(&report, name)["passed"],
            true,
            "{name}: {report:#}"
        );
    }
    assert_eq!(report_step(&report, "baseline")["outputs"]["total"], 4200);
    assert_eq!(
        report_step(&report, "verify")["outputs"]["counts_equal"],
        true
    );
    assert!(
        report_step(&report, "latency")["outputs"]["p90_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(report["marks"].as_array().unwrap().len(), 2);

    let run_dir = Path::new(report["run_dir"].as_str().unwrap());
    let markdown = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("PASSED") && markdown.contains("| rto |"),
        "{markdown}"
    );
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(on_disk["rto_ms"], report["rto_ms"]);
    assert!(run_dir.join("service.log").exists());
    assert!(
        !port_is_open(port),
        "the drill left Chroma running on port {port}"
    );

    // The data is as it was: same counts, and stored vectors exactly what seed wrote.
    let server = ChromaServer::start(&data);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ChromaClient::new(&server.url());
        let docs = client.collection("docs").await.unwrap();
        assert_eq!(client.count(&docs.id).await.unwrap(), 3000);
        let expected = RecordGenerator::new(42, 64).batch(3000);
        let ids: Vec<String> = [0u64, 1, 1500, 2999]
            .iter()
            .map(|i| record_id(*i))
            .collect();
        let page = client
            .get_by_ids(&docs.id, &ids, &["embeddings"])
            .await
            .unwrap();
        for (id, vector) in page.ids.iter().zip(page.embeddings.unwrap()) {
            let i = expected.ids.iter().position(|x| x == id).unwrap();
            assert_eq!(vector, expected.embeddings[i], "vector of {id}");
        }
        let faq = client.collection("faq").await.unwrap();
        assert_eq!(client.count(&faq.id).await.unwrap(), 1200);
    });
}

#[test]
fn an_impossible_objective_exits_1_and_the_report_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 500, 16)]);
    let port = free_port();
    let path = scenario(
        tmp.path(),
        &data,
        port,
        "{ rto: 1ms, heartbeat_within: 1h }",
        "  - { do: start }\n  - { do: wait_healthy }\n  - { id: crash, do: fault, with: { kind: kill }, mark: disaster }\n  - { id: again, do: start }\n  - { id: back, do: wait_healthy, mark: recovered }",
        "  - { do: sleep, with: { duration: 1ms } }",
    );
    let report = run_json(&path, &tmp.path().join("reports"), 1, &[]);
    assert_eq!(report["passed"], false);
    assert!(report["failure"].is_null(), "no step failed: {report:#}");
    let rto = report_objective(&report, "rto");
    assert_eq!(rto["passed"], false);
    assert_eq!(rto["target"], "1ms");
    assert!(
        rto["detail"].as_str().unwrap().starts_with("missed by"),
        "{rto}"
    );
    assert_eq!(rto["step"], "back");
    assert_eq!(
        report_objective(&report, "heartbeat_within")["passed"],
        true
    );
    // Rollback runs only after a failure, not after a missed objective.
    assert!(report["rollback"].as_array().unwrap().is_empty());
    let markdown =
        std::fs::read_to_string(Path::new(report["run_dir"].as_str().unwrap()).join("report.md"))
            .unwrap();
    assert!(
        markdown.contains("| rto | 1ms |") && markdown.contains("missed"),
        "{markdown}"
    );
}

#[test]
fn rollback_runs_after_a_failing_step_and_the_service_is_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let port = free_port();
    let marker = tmp.path().join("rolled-back");
    let path = scenario(
        tmp.path(),
        &data,
        port,
        "{}",
        "  - { do: start }\n  - { do: wait_healthy }\n  - { id: boom, do: shell, with: { command: \"echo broken >&2; exit 3\" } }\n  - { id: never, do: sleep, with: { duration: 1s } }",
        &format!("  - {{ id: undo, do: shell, with: {{ command: \"touch {}\" }} }}", marker.display()),
    );
    let report = run_json(&path, &tmp.path().join("reports"), 1, &[]);
    assert_eq!(report["failure"]["step"], "boom");
    assert!(
        report["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited with 3"),
        "{report:#}"
    );
    assert_eq!(report_step(&report, "boom")["status"], "failed");
    assert_eq!(report_step(&report, "never")["status"], "skipped");
    assert_eq!(report["rollback"][0]["id"], "undo");
    assert_eq!(report["rollback"][0]["status"], "passed");
    assert!(marker.exists(), "rollback did not run");
    assert!(
        !port_is_open(port),
        "the drill left Chroma running after a failure"
    );
}

#[test]
fn a_deleted_collection_is_caught_by_compare_state() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 800, 16), ("gone", 400, 16)]);
    let port = free_port();
    let path = scenario(
        tmp.path(),
        &data,
        port,
        "{ collections_min: 100 }",
        "  - { do: start }\n  - { do: wait_healthy }\n  - { id: before, do: capture_state }\n  - { id: c, do: count }\n  - { do: shell, with: { command: \"test ${steps.c.total} -eq 1200\" } }\n  - { do: fault, with: { kind: delete_collection, collection: gone }, mark: disaster }\n  - { id: after, do: compare_state, with: { against: before }, mark: recovered }",
        "  - { do: sleep, with: { duration: 1ms } }",
    );
    let report = run_json(&path, &tmp.path().join("reports"), 1, &[]);
    assert_eq!(report["failure"]["step"], "after");
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("\"gone\" is missing"), "{reason}");
    // The failed comparison keeps its measurements for the report.
    assert_eq!(
        report_step(&report, "after")["outputs"]["counts_equal"],
        false
    );
    assert!(report["rto_ms"].is_null());
    assert_eq!(report_objective(&report, "collections_min")["passed"], true);
}

#[test]
fn ctrl_c_runs_rollback_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 200, 8)]);
    let port = free_port();
    let marker = tmp.path().join("rolled-back");
    let path = scenario(
        tmp.path(),
        &data,
        port,
        "{}",
        "  - { do: start }\n  - { do: wait_healthy }\n  - { id: long, do: sleep, with: { duration: 5m } }",
        &format!("  - {{ do: shell, with: {{ command: \"touch {}\" }} }}", marker.display()),
    );
    let mut child = crate::common::vecdrill_command()
        .args(["run", path.to_str().unwrap(), "--report-dir"])
        .arg(tmp.path().join("reports"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the drill is inside the long step: Chroma is up by then.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !port_is_open(port) {
        assert!(Instant::now() < deadline, "Chroma never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(marker.exists(), "rollback did not run after Ctrl-C");
    assert!(
        !port_is_open(port),
        "Chroma still running after the interrupted drill"
    );
    let run_dir = std::fs::read_dir(tmp.path().join("reports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(report_step(&report, "long")["status"], "interrupted");
}

#[test]
fn snapshot_restore_drill_recovers_corrupted_data_and_measures_rpo() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 2000, 32), ("faq", 1000, 16)]);
    let port = free_port();
    let repo = format!("repo=file://{}", tmp.path().join("repo").display());
    let report = run_shipped("snapshot-restore", tmp.path(), &data, port, &[repo]);
    assert_eq!(report["passed"], true, "{report:#}");
    let rpo = report_objective(&report, "rpo");
    assert_eq!(rpo["passed"], true);
    assert_eq!(rpo["step"], "restore");
    assert!(rpo["measured_value"].as_f64().unwrap() > 0.0);
    assert_eq!(
        report_step(&report, "snapshot")["outputs"]["files"]
            .as_u64()
            .map(|n| n >= 3),
        Some(true)
    );
    assert_eq!(
        report_step(&report, "verify")["outputs"]["counts_equal"],
        true
    );
    // The snapshot was proved restorable by a second server before the disaster.
    let proven = &report_step(&report, "snapshot_proven")["outputs"];
    assert_eq!(proven["passed"], true, "{proven:#}");
    assert_eq!(
        proven["backup"],
        report_step(&report, "snapshot")["outputs"]["id"]
    );
    // The corrupted database was kept aside, not destroyed.
    let safety = report_step(&report, "restore")["outputs"]["safety_copy"]
        .as_str()
        .expect("safety copy")
        .to_string();
    let kept = std::fs::read(Path::new(&safety).join("chroma.sqlite3")).unwrap();
    assert!(
        !kept.starts_with(b"SQLite format 3"),
        "the safety copy should hold the corrupted file"
    );
    assert!(std::fs::read(data.join("chroma.sqlite3"))
        .unwrap()
        .starts_with(b"SQLite format 3"));
    assert!(!port_is_open(port));
}

#[test]
fn issue_15_an_interrupted_cold_backup_starts_the_service_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let log = tmp.path().join("service-actions");
    // A service vecdrill does not own: its stop command interrupts the run (as Ctrl-C would)
    // while the cold backup waits for it, so the backup never reaches its own start.
    let text = format!(
        "name: cold-interrupted\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:{port}\n  data_dir: {data}\n  \
         service:\n    kind: shell\n    start: echo start >> {log}\n    \
         stop: echo stop >> {log}; kill -INT $PPID; sleep 2\n\
         repo: {repo}\n\
         steps:\n  - {{ id: cold, do: backup, with: {{ mode: cold }} }}\n",
        port = free_port(),
        data = data.display(),
        log = log.display(),
        repo = crate::common::repo_url(&tmp.path().join("repo")),
    );
    let path = tmp.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    let run = crate::common::run_scenario(&path, &tmp.path().join("reports"), &[], &[]);
    assert_eq!(run.code(), 130, "{}", run.stderr());
    let actions = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        ["stop", "start"],
        "the service was left stopped"
    );
}
