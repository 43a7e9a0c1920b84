//! What drills and backups leave behind: the history (and its trend), baselines with relative
//! objectives, webhook notifications and Prometheus metrics files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use vecdrill::history::{History, RunKind, RunRecord};

use crate::common::{
    backup_json, free_port, prometheus_samples, repo_url, report_objective, seeded_data_dir,
    vecdrill, vecdrill_command, vecdrill_env, ChromaServer, Webhook,
};

/// A drill on a running Chroma: counts, probes and search latency, no service to manage.
fn scenario(dir: &Path, name: &str, url: &str, objectives: &str, extra: &str) -> PathBuf {
    let text = format!(
        "name: {name}\n\
         target: {{ kind: chroma, url: \"{url}\" }}\n\
         objectives: {objectives}\n\
         {extra}\n\
         steps:\n  \
           - {{ id: up, do: wait_healthy, with: {{ timeout: 30s }} }}\n  \
           - {{ id: counted, do: count }}\n  \
           - {{ id: latency, do: search_latency, with: {{ queries: 60, concurrency: 2 }} }}\n"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `run SCENARIO` recording into `history` (and `metrics`, when given), with `extra` flags.
fn run(scenario: &Path, tmp: &Path, history: &Path, extra: &[&str]) -> (i32, Value, String) {
    let env = [("VECDRILL_HISTORY", history.display().to_string())];
    let mut args = vec![
        "run".to_string(),
        scenario.display().to_string(),
        "--report-dir".into(),
        tmp.join("reports").display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let result = vecdrill_env(&args, &env);
    let json = serde_json::from_slice(&result.output.stdout).unwrap_or(Value::Null);
    (result.code(), json, result.stderr())
}

fn history_json(history: &Path, args: &[&str]) -> Value {
    let mut all = vec!["history", "--history", history.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let result = vecdrill(all);
    result.expect_code(0);
    result.json()
}

#[test]
fn history_keeps_every_completed_drill_and_backup_and_survives_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let server = ChromaServer::start(&data);
    let history = tmp.path().join("h/history.sqlite");
    let metrics = tmp.path().join("drill.prom");
    let path = scenario(
        tmp.path(),
        "records",
        &server.url(),
        "{ collections_min: 300 }",
        "",
    );

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (code, report, stderr) = run(
            &path,
            tmp.path(),
            &history,
            &["--metrics-file", metrics.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{stderr}");
        ids.push(report["run_id"].as_str().unwrap().to_string());
    }
    let samples = prometheus_samples(&metrics);
    let value = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
            .1
    };
    assert_eq!(value("vecdrill_drill_passed{scenario=\"records\"}"), 1.0);
    assert!(value("vecdrill_drill_search_p90_seconds{scenario=\"records\"}") > 0.0);
    assert!(value("vecdrill_drill_last_success_timestamp_seconds{scenario=\"records\"}") > 1.7e9);
    assert_eq!(
        value(
            "vecdrill_drill_objective_passed{scenario=\"records\",objective=\"collections_min\"}"
        ),
        1.0
    );

    // A third run is killed with SIGKILL in the middle of a long step.
    let long = tmp.path().join("long.yaml");
    std::fs::write(
        &long,
        std::fs::read_to_string(&path).unwrap().replace(
            "  - { id: latency",
            "  - { id: wait, do: sleep, with: { duration: 5m } }\n  - { id: latency",
        ),
    )
    .unwrap();
    let mut child = vecdrill_command()
        .args(["run", long.to_str().unwrap(), "--report-dir"])
        .arg(tmp.path().join("reports"))
        .env("VECDRILL_HISTORY", &history)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();

    // A hot backup of the live directory records itself too.
    let backup_metrics = tmp.path().join("backup.prom");
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(
        &repo,
        &data,
        &[
            "--mode",
            "hot",
            "--history",
            history.to_str().unwrap(),
            "--metrics-file",
            backup_metrics.to_str().unwrap(),
        ],
    );

    let drills = history_json(&history, &["--kind", "drill"]);
    let listed: Vec<&str> = drills
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids, "exactly the completed drills, in order");
    for drill in drills.as_array().unwrap() {
        assert_eq!(drill["passed"], true);
        assert_eq!(drill["counts"]["docs"], 300);
        assert_eq!(drill["objectives"][0]["name"], "collections_min");
        assert!(drill["p90_ms"].as_f64().unwrap() > 0.0);
    }
    let backups = history_json(&history, &["--kind", "backup"]);
    let backup = &backups[0];
    assert_eq!(backups.as_array().unwrap().len(), 1);
    assert_eq!(backup["passed"], true);
    assert_eq!(backup["repo"], repo.as_str());
    assert_eq!(backup["counts"]["docs"], 300);
    assert!(backup["backup_id"].is_string());
    let samples = prometheus_samples(&backup_metrics);
    let logical = samples
        .iter()
        .find(|(n, _)| n.starts_with("vecdrill_backup_logical_bytes{"))
        .expect("backup size metric");
    assert_eq!(logical.1, backup["logical_bytes"].as_f64().unwrap());

    // `show` gives the whole record, report included.
    let shown = history_json(&history, &["show", &ids[1]]);
    assert_eq!(shown["detail"]["run_id"], ids[1].as_str());
    assert_eq!(shown["detail"]["scenario"], "records");

    // The database is whole: no row without its run.
    let conn = rusqlite::Connection::open(&history).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM objectives WHERE run_id NOT IN (SELECT id FROM runs))
                  + (SELECT count(*) FROM counts WHERE run_id NOT IN (SELECT id FROM runs))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

/// A drill record at a known time, as if a drill had run then.
fn drill_at(
    scenario: &str,
    at: DateTime<Utc>,
    rto_ms: Option<f64>,
    p90_ms: Option<f64>,
) -> RunRecord {
    RunRecord {
        id: format!("{scenario}-{}", at.format("%Y%m%dT%H%M%SZ")),
        kind: RunKind::Drill,
        scenario: Some(scenario.to_string()),
        repo: None,
        target: "chroma http://127.0.0.1:8000".into(),
        started_at: at,
        finished_at: at + chrono::Duration::seconds(60),
        passed: true,
        exit_code: 0,
        duration_ms: 60_000.0,
        rto_ms,
        rpo_ms: None,
        p50_ms: p90_ms.map(|p| p / 2.0),
        p90_ms,
        p99_ms: p90_ms.map(|p| p * 2.0),
        backup_id: None,
        logical_bytes: None,
        stored_bytes: None,
        vecdrill_version: "test".into(),
        host: "test".into(),
        report_dir: None,
        objectives: Vec::new(),
        counts: BTreeMap::from([("docs".to_string(), 1000)]),
        detail: None,
    }
}

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 2, 0, 0).unwrap()
}

#[test]
fn trend_gives_monthly_medians_with_the_change_from_the_month_before() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("history.sqlite");
    let mut history = History::open(&path).unwrap();
    let runs = [
        // September: three drills, medians RTO 20s and p90 100ms.
        drill_at("monthly", utc(2026, 9, 2), Some(10_000.0), Some(90.0)),
        drill_at("monthly", utc(2026, 9, 12), Some(30_000.0), Some(100.0)),
        drill_at("monthly", utc(2026, 9, 30), Some(20_000.0), Some(130.0)),
        // October: RTO 30s (+50%), p90 80ms (-20%).
        drill_at("monthly", utc(2026, 10, 1), Some(30_000.0), Some(80.0)),
        // November: RTO 15s (-50%), no latency measured.
        drill_at("monthly", utc(2026, 11, 5), Some(15_000.0), None),
        // December: p90 120ms, +50% on October, the last month that measured it.
        drill_at("monthly", utc(2026, 12, 1), None, Some(120.0)),
        // Another scenario's drill is not part of the trend.
        drill_at("other", utc(2026, 10, 3), Some(1.0), Some(1.0)),
    ];
    for run in &runs {
        history.record(run).unwrap();
    }
    drop(history);
    let trend = history_json(&path, &["trend", "--scenario", "monthly"]);
    let months = trend["months"].as_array().unwrap();
    let row = |m: &Value| {
        (
            m["month"].as_str().unwrap().to_string(),
            m["runs"].as_u64().unwrap(),
            m["rto_ms"].as_f64(),
            m["rto_change_pct"]
                .as_f64()
                .map(|c| (c * 10.0).round() / 10.0),
            m["search_p90_ms"].as_f64(),
            m["search_p90_change_pct"]
                .as_f64()
                .map(|c| (c * 10.0).round() / 10.0),
        )
    };
    let rows: Vec<_> = months.iter().map(row).collect();
    assert_eq!(
        rows,
        vec![
            ("2026-09".into(), 3, Some(20_000.0), None, Some(100.0), None),
            (
                "2026-10".into(),
                1,
                Some(30_000.0),
                Some(50.0),
                Some(80.0),
                Some(-20.0)
            ),
            ("2026-11".into(), 1, Some(15_000.0), Some(-50.0), None, None),
            ("2026-12".into(), 1, None, None, Some(120.0), Some(50.0)),
        ]
    );
    let text = vecdrill([
        "history",
        "--history",
        path.to_str().unwrap(),
        "trend",
        "--scenario",
        "monthly",
    ]);
    text.expect_code(0);
    let out = text.stdout();
    for expected in [
        "2026-09",
        "20.0s",
        "+50.0%",
        "-20.0%",
        "-50.0%",
        "3 (3 passed)",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from\n{out}");
    }

    // --since counts back from now.
    let mut history = History::open(&path).unwrap();
    let now = Utc::now();
    history
        .record(&drill_at(
            "recent",
            now - chrono::Duration::days(200),
            Some(1.0),
            None,
        ))
        .unwrap();
    history
        .record(&drill_at(
            "recent",
            now - chrono::Duration::days(10),
            Some(2.0),
            None,
        ))
        .unwrap();
    drop(history);
    let recent = history_json(&path, &["--scenario", "recent", "--since", "90d"]);
    let recent = recent.as_array().unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["rto_ms"], 2.0);
}

#[test]
fn a_regression_beyond_the_baseline_fails_the_drill_and_names_the_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let server = ChromaServer::start(&data);
    let history = tmp.path().join("history.sqlite");
    // Generous limits: the same server measured twice must pass whatever the machine's noise.
    let path = scenario(
        tmp.path(),
        "staging",
        &server.url(),
        "{ search_p90: { max_regression: 1000% }, count: { min_of_baseline: 99% } }",
        "",
    );

    // No baseline yet: the relative objectives are skipped and the run saves itself as one.
    let (code, first, stderr) = run(&path, tmp.path(), &history, &["--save-baseline"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report_objective(&first, "search_p90")["skipped"], true);
    assert!(
        stderr.contains("baseline for \"staging\" is now run"),
        "{stderr}"
    );

    let (code, second, stderr) = run(&path, tmp.path(), &history, &[]);
    assert_eq!(code, 0, "{stderr}");
    let p90 = report_objective(&second, "search_p90");
    assert_eq!(p90["skipped"], false);
    assert_eq!(p90["baseline_value"], first["latency"]["p90_ms"]);
    assert!(p90["change_pct"].is_number());
    assert_eq!(report_objective(&second, "count")["measured_value"], 100.0);
    assert_eq!(second["baseline"]["run_id"], first["run_id"]);
    let md =
        std::fs::read_to_string(Path::new(second["run_dir"].as_str().unwrap()).join("report.md"))
            .unwrap();
    assert!(md.contains("Baseline (change)") && md.contains(first["run_id"].as_str().unwrap()));

    // A baseline from a faster, bigger day: this run regresses on both figures.
    let mut fast = drill_at(
        "staging",
        Utc::now() - chrono::Duration::days(30),
        None,
        Some(0.001),
    );
    fast.id = "staging-fast-day".into();
    History::open(&history).unwrap().record(&fast).unwrap();
    vecdrill([
        "baseline",
        "set",
        "staging-fast",
        "--history",
        history.to_str().unwrap(),
    ])
    .expect_code(0);
    let (code, third, stderr) = run(&path, tmp.path(), &history, &[]);
    assert_eq!(code, 1, "{stderr}");
    let p90 = report_objective(&third, "search_p90");
    assert_eq!(p90["passed"], false);
    let detail = p90["detail"].as_str().unwrap();
    assert!(
        detail.contains("search_p90 regressed") && detail.contains("allowed +1000%"),
        "{detail}"
    );
    assert!(stderr.contains("search_p90"), "{stderr}");
    let count = report_objective(&third, "count");
    assert_eq!(count["passed"], false);
    assert_eq!(count["measured_value"], 30.0);
    let detail = count["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"docs\" holds 300 of its baseline's 1000"),
        "{detail}"
    );

    let refused = vecdrill([
        "baseline",
        "set",
        "no-such-run",
        "--history",
        history.to_str().unwrap(),
    ]);
    refused.expect_code(2);
    assert!(refused.stderr().contains("no run \"no-such-run\""));
}

#[test]
fn notifications_reach_the_webhook_and_never_change_the_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 200, 8)]);
    let server = ChromaServer::start(&data);
    let history = tmp.path().join("history.sqlite");

    // Always notify; the first attempt meets a 503 and is retried.
    let hook = Webhook::start(&[503]);
    let always = scenario(
        tmp.path(),
        "notified",
        &server.url(),
        "{ collections_min: 200 }",
        &format!("notify: {{ webhook: \"{}\", on: always }}", hook.url()),
    );
    let (code, _, stderr) = run(&always, tmp.path(), &history, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(after 2 attempts)"), "{stderr}");
    assert!(
        !stderr.contains("secret-token"),
        "the webhook's path stays out of the log: {stderr}"
    );
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["passed"], true);
    assert_eq!(bodies[0]["scenario"], "notified");
    assert!(bodies[0]["text"]
        .as_str()
        .unwrap()
        .contains("notified PASSED"));

    // On failure only: a missed objective is sent with its reason; a passed run is not.
    let hook = Webhook::start(&[]);
    let failing = scenario(
        tmp.path(),
        "failing",
        &server.url(),
        "{ search_p99: 1us }",
        &format!("notify: {{ webhook: \"{}\" }}", hook.url()),
    );
    let (code, _, stderr) = run(&failing, tmp.path(), &history, &[]);
    assert_eq!(code, 1, "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["passed"], false);
    assert_eq!(bodies[0]["verdict"], "FAILED");
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(
        text.contains("objective search_p99 (target 1µs) missed")
            || text.contains("objective search_p99"),
        "{text}"
    );
    let quiet = scenario(
        tmp.path(),
        "quiet",
        &server.url(),
        "{}",
        &format!("notify: {{ webhook: \"{}\" }}", hook.url()),
    );
    let (code, _, _) = run(&quiet, tmp.path(), &history, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        hook.bodies().len(),
        1,
        "a passed run sends nothing with on: failure"
    );

    // An unreachable webhook is a warning; the drill's verdict stands.
    let dead = scenario(
        tmp.path(),
        "unreachable",
        &server.url(),
        "{}",
        &format!(
            "notify: {{ webhook: \"http://127.0.0.1:{}/hook\", on: always, retries: 1, timeout: 2s }}",
            free_port()
        ),
    );
    let started = Instant::now();
    let (code, _, stderr) = run(&dead, tmp.path(), &history, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: notification to http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("after 2 attempt(s)"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));

    // A failed backup notifies with its error, and is recorded as failed.
    let hook = Webhook::start(&[]);
    let missing = tmp.path().join("no-such-dir");
    let result = vecdrill([
        "backup",
        "--repo",
        &repo_url(&tmp.path().join("repo")),
        "--chroma-dir",
        missing.to_str().unwrap(),
        "--notify",
        &hook.url(),
        "--history",
        history.to_str().unwrap(),
    ]);
    assert_ne!(result.code(), 0);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{}", result.stderr());
    assert_eq!(bodies[0]["event"], "backup");
    assert_eq!(bodies[0]["passed"], false);
    assert!(bodies[0]["text"].as_str().unwrap().contains("FAILED"));
    assert!(bodies[0]["error"].is_string());
    assert_eq!(*hook.requests.lock().unwrap(), 1);
    let backups = history_json(&history, &["--kind", "backup"]);
    assert_eq!(backups[0]["passed"], false);
    assert_eq!(backups[0]["exit_code"], result.code());
}
