//! Issue 21: `vecdrill prove` restores a backup into a sandbox, serves it with a real Chroma,
//! checks every collection's count against the manifest and times restore plus start to
//! healthy; the live directory is never touched and nothing is left running or behind.

use std::path::Path;

use serde_json::Value;

use crate::common::{
    backup_json, chroma_bin, port_is_open, repo_url, report_objective, report_step,
    seeded_data_dir, tree_hashes, vecdrill, vecdrill_env,
};

/// `prove` with the test's Chroma (or `server` in its place), on the backup `latest`, its
/// sandbox made under `reports/../tmp` (TMPDIR), which must be empty again afterwards.
fn prove(repo: &str, reports: &Path, server: Option<String>, extra: &[&str]) -> crate::common::Run {
    let scratch = reports.parent().unwrap().join("tmp");
    // What a proof killed outright leaves (a pid no process has): removed by the next.
    std::fs::create_dir_all(scratch.join("vecdrill-prove-999999999-left/data")).unwrap();
    let server = server.unwrap_or_else(|| {
        format!(
            "{} run --path {{dir}} --port {{port}}",
            chroma_bin().display()
        )
    });
    let mut args = vec![
        "prove",
        "--repo",
        repo,
        "latest",
        "--server-cmd",
        &server,
        "--report-dir",
        reports.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = vecdrill_env(args, &[("TMPDIR", scratch.display().to_string())]);
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "sandbox left behind: {left:?}");
    run
}

/// The port the proof's server listened on.
fn port_of(report: &serde_json::Value) -> u16 {
    let url = report["target"]["url"].as_str().unwrap_or_default();
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

#[test]
fn issue_21_a_chroma_backup_is_proven_in_a_sandbox_and_timed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 600, 16), ("faq", 250, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let live = tree_hashes(&data);

    // Unproven: `check --max-unproven-age` fails once the backup is older than allowed.
    let unproven = |max: &str| {
        vecdrill([
            "check",
            "--repo",
            &repo,
            "--max-unproven-age",
            max,
            "--json",
        ])
    };
    unproven("0s").expect_code(1);
    unproven("1h").expect_code(0);

    let proof_metrics = tmp.path().join("prove.prom");
    let run = prove(
        &repo,
        &tmp.path().join("reports"),
        None,
        &[
            "--rto",
            "5m",
            "--metrics-file",
            proof_metrics.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["scenario"], "prove");
    // The proof's own metrics say that a backup was just proven, and with what RTO.
    let samples = crate::common::prometheus_samples(&proof_metrics);
    let sample = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let proven_at = sample("vecdrill_backup_last_proven_timestamp_seconds").unwrap();
    let finished = chrono::DateTime::parse_from_rfc3339(report["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp() as f64;
    assert_eq!(proven_at, finished);
    let proven_rto = sample("vecdrill_backup_proven_rto_seconds").unwrap();
    assert!((proven_rto * 1000.0 - report["rto_ms"].as_f64().unwrap()).abs() < 1.0);
    for (collection, count) in [("docs", 600), ("faq", 250)] {
        let step = report_step(&report, &format!("count {collection}"));
        assert_eq!(step["status"], "passed", "{step:#}");
        assert_eq!(step["outputs"]["total"], count, "{step:#}");
    }
    assert_eq!(report_objective(&report, "rto")["passed"], true);
    // 50 records of each collection spread over it and the 10 the probe queries are (some of
    // them among the 50), read from the restored files, served identically.
    let compared = report_step(&report, "records")["outputs"]["compared"]
        .as_u64()
        .unwrap();
    assert!((100..=120).contains(&compared), "{compared}");
    assert_eq!(report_step(&report, "records")["outputs"]["mismatches"], 0);
    // The backup's 10 probes per collection, judged against their exact neighbours.
    let neighbours = report_step(&report, "neighbours");
    assert_eq!(neighbours["status"], "passed", "{neighbours:#}");
    assert_eq!(neighbours["outputs"]["probes"], 20);
    let recall = neighbours["outputs"]["mean_recall"].as_f64().unwrap();
    // A few hundred low-dimensional records: HNSW finds every neighbour.
    assert!((0.9..=1.0).contains(&recall), "{neighbours:#}");
    let rto = report["rto_ms"].as_f64().expect("rto measured");
    let restore = report_step(&report, "restore")["duration_ms"]
        .as_f64()
        .unwrap();
    assert!(
        rto >= restore && rto < 300_000.0,
        "rto {rto}, restore {restore}"
    );

    let port = port_of(&report);
    assert!(
        port > 0 && !port_is_open(port),
        "the server on {port} still runs"
    );
    assert_eq!(tree_hashes(&data), live, "the live directory changed");

    // The verdict is kept beside the backup: list and info show it.
    let listed = vecdrill(["list", "--repo", &repo, "--json"]);
    listed.expect_code(0);
    let proof = &listed.json()[0]["proof"];
    assert_eq!(proof["passed"], true, "{proof:#}");
    assert_eq!(proof["rto_ms"].as_f64(), Some(rto), "{proof:#}");
    assert_eq!(proof["counts"]["docs"], 600);
    assert_eq!(proof["recall"].as_f64(), Some(recall), "{proof:#}");
    assert_eq!(proof["run_id"], report["run_id"]);
    let restore_ms = proof["restore_ms"].as_f64().unwrap();
    let healthy_ms = proof["start_to_healthy_ms"].as_f64().unwrap();
    assert!(restore_ms > 0.0 && healthy_ms > 0.0 && restore_ms + healthy_ms <= rto + 1.0);
    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]);
    assert_eq!(info.json()["proof"]["passed"], true);
    // The history keeps the proof as a run of `prove`, naming the backup it proved.
    let history = vecdrill(["history", "--scenario", "prove", "--json"]).json();
    let recorded = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == report["run_id"])
        .expect("the proof in the history");
    assert_eq!(recorded["backup_id"], info.json()["id"], "{recorded:#}");
    assert_eq!(recorded["passed"], true);
    let text = vecdrill(["info", "--repo", &repo, "latest"]);
    assert!(text.stdout().contains("proven: yes"), "{}", text.stdout());

    // Proven: the check passes, and its metrics say when and with what RTO.
    let metrics = tmp.path().join("check.prom");
    vecdrill([
        "check",
        "--repo",
        &repo,
        "--max-unproven-age",
        "0s",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ])
    .expect_code(0);
    let samples = crate::common::prometheus_samples(&metrics);
    let sample = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(sample("vecdrill_backup_unproven_seconds"), Some(0.0));
    assert!(sample("vecdrill_backup_last_proven_timestamp_seconds").is_some_and(|t| t > 0.0));
    let proven_rto = sample("vecdrill_backup_proven_rto_seconds").unwrap();
    assert!(
        (proven_rto * 1000.0 - rto).abs() < 1.0,
        "{proven_rto} vs {rto}"
    );

    // A newer backup is unproven; pruning the proven one removes its proof with it.
    backup_json(&repo, &data, &["--read-all"]);
    unproven("0s").expect_code(1);
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert!(listed[1]["proof"].is_null(), "{listed:#}");
    // --keep-proven keeps the last backup known to restore whatever --keep-last says.
    let kept = vecdrill([
        "prune",
        "--repo",
        &repo,
        "--keep-last",
        "1",
        "--keep-proven",
        "1",
        "--json",
    ]);
    kept.expect_code(0);
    assert_eq!(kept.json()["removed"].as_array().unwrap().len(), 0);
    vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]).expect_code(0);
    assert!(crate::common::files_under(&tmp.path().join("repo/proofs")).is_empty());
}

#[test]
fn issue_21_a_server_that_answers_for_other_data_or_too_slowly_fails_the_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);

    // A server that serves another (empty) directory than the one restored.
    let elsewhere = tmp.path().join("elsewhere");
    let wrong = format!(
        "env RESTORED={{dir}} {} run --path {} --port {{port}}",
        chroma_bin().display(),
        elsewhere.display()
    );
    let run = prove(&repo, &tmp.path().join("reports"), Some(wrong), &[]);
    run.expect_code(1);
    let report = run.json();
    let step = report_step(&report, "count docs");
    assert_eq!(step["status"], "failed", "{step:#}");
    assert!(
        step["error"].as_str().unwrap_or_default().contains("docs"),
        "{step:#}"
    );
    let proof = &vecdrill(["list", "--repo", &repo, "--json"]).json()[0]["proof"];
    assert_eq!(proof["passed"], false, "{proof:#}");
    assert!(
        proof["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("count docs"),
        "{proof:#}"
    );

    // A server with the same collection and count but other records: the counts pass, the
    // records do not.
    let lookalike = seeded_data_dir(&tmp.path().join("lookalike"), &[("docs", 300, 16)]);
    let wrong = format!(
        "env RESTORED={{dir}} {} run --path {} --port {{port}}",
        chroma_bin().display(),
        lookalike.display()
    );
    let run = prove(&repo, &tmp.path().join("reports"), Some(wrong), &[]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report_step(&report, "count docs")["status"], "passed");
    let records = report_step(&report, "records");
    assert_eq!(records["status"], "failed", "{records:#}");
    let error = records["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("\"docs\"") && error.contains("differ"),
        "{records:#}"
    );

    // An RTO no restore can meet.
    let run = prove(&repo, &tmp.path().join("reports"), None, &["--rto", "1ms"]);
    run.expect_code(1);
    assert_eq!(report_objective(&run.json(), "rto")["passed"], false);

    // A command without its placeholders is refused before anything runs.
    let run = prove(
        &repo,
        &tmp.path().join("reports"),
        Some("chroma run".into()),
        &[],
    );
    run.expect_code(2);
    assert!(run.stderr().contains("{dir}"), "{}", run.stderr());

    // So is a recall that is no fraction, before anything is restored or kept as a verdict.
    let proven_before = vecdrill(["list", "--repo", &repo, "--json"]).json()[0]["proof"].clone();
    let run = vecdrill(["prove", "--repo", &repo, "latest", "--min-recall", "2"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--min-recall"), "{}", run.stderr());
    let proven_after = vecdrill(["list", "--repo", &repo, "--json"]).json()[0]["proof"].clone();
    assert_eq!(proven_after, proven_before);
}

#[test]
fn issue_21_a_server_whose_search_answers_otherwise_fails_on_the_probes_naming_them() {
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    // What the backup recorded: 10 probe queries, each a record with its exact neighbours.
    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]).json();
    let probes = info["database"]["collections"][0]["probes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(probes.len(), 10, "{info:#}");
    let probe_records: Vec<&str> = probes
        .iter()
        .map(|p| p["record"].as_str().unwrap())
        .collect();
    for probe in &probes {
        // Its own record is its nearest neighbour, at distance 0; the rest farther each.
        assert_eq!(probe["neighbours"][0], probe["record"], "{probe:#}");
        assert_eq!(probe["neighbours"].as_array().unwrap().len(), 10);
        let distances: Vec<f64> = probe["distances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap())
            .collect();
        assert!(distances[0].abs() < 1e-6 && distances.windows(2).all(|w| w[0] <= w[1]));
    }

    // A lookalike: the same records, except that every one the proof reads back (the probe
    // queries' records and every 6th, its sample) keeps its vector and the rest point the
    // other way. Counts and sampled records agree; search does not.
    let export = tmp.path().join("export.jsonl");
    vecdrill([
        "export",
        "--chroma-dir",
        data.to_str().unwrap(),
        "--all",
        "--out",
        export.to_str().unwrap(),
    ])
    .expect_code(0);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut at = 0usize;
    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            if value["type"] != "record" {
                return line.to_string();
            }
            let sampled = at % 6 == 0 || probe_records.contains(&value["id"].as_str().unwrap());
            at += 1;
            if !sampled {
                let mut bytes = b64.decode(value["embedding"].as_str().unwrap()).unwrap();
                for float in bytes.chunks_exact_mut(4) {
                    float[3] ^= 0x80;
                }
                value["embedding"] = b64.encode(bytes).into();
            }
            value.to_string()
        })
        .collect();
    std::fs::write(&export, lines.join("\n") + "\n").unwrap();
    let lookalike = tmp.path().join("lookalike");
    std::fs::create_dir_all(&lookalike).unwrap();
    let server = crate::common::ChromaServer::start(&lookalike);
    vecdrill([
        "import",
        "--url",
        &server.url(),
        "--in",
        export.to_str().unwrap(),
    ])
    .expect_code(0);
    server.stop();

    let wrong = format!(
        "env RESTORED={{dir}} {} run --path {} --port {{port}}",
        chroma_bin().display(),
        lookalike.display()
    );
    // 300 records of 8 dimensions: a healthy index finds every neighbour (below).
    let strict = ["--min-recall", "0.9"];
    let run = prove(&repo, &tmp.path().join("reports"), Some(wrong), &strict);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report_step(&report, "count docs")["status"], "passed");
    assert_eq!(report_step(&report, "records")["status"], "passed");
    let neighbours = report_step(&report, "neighbours");
    assert_eq!(neighbours["status"], "failed", "{neighbours:#}");
    let error = neighbours["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("\"docs\"")
            && error.contains("recall")
            && probe_records.iter().any(|r| error.contains(r)),
        "{neighbours:#}"
    );
    let recall = neighbours["outputs"]["mean_recall"].as_f64().unwrap();
    assert!(recall < 0.9, "{neighbours:#}");
    let proof = &vecdrill(["list", "--repo", &repo, "--json"]).json()[0]["proof"];
    assert_eq!(proof["passed"], false);
    assert_eq!(proof["recall"].as_f64(), Some(recall), "{proof:#}");

    // The same backup on its own files passes, with the recall its index gives.
    let run = prove(&repo, &tmp.path().join("reports"), None, &strict);
    run.expect_code(0);
    let healthy = report_step(&run.json(), "neighbours")["outputs"]["mean_recall"]
        .as_f64()
        .unwrap();
    assert!(healthy >= 0.9, "{healthy}");
}

#[test]
fn issue_21_ctrl_c_during_a_proof_stops_its_server_and_removes_its_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    // The server says where it listens, then runs as usual.
    let started = tmp.path().join("started");
    let server = format!(
        "sh -c 'echo \"$1\" > {started}; exec {chroma} run --path \"$0\" --port \"$1\"' {{dir}} {{port}}",
        started = started.display(),
        chroma = chroma_bin().display(),
    );
    let child = crate::common::vecdrill_command()
        .args(["prove", "--repo", &repo, "latest", "--server-cmd", &server])
        .args(["--report-dir", tmp.path().join("reports").to_str().unwrap()])
        .env("TMPDIR", &scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let port: u16 = loop {
        if let Some(port) = std::fs::read_to_string(&started)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break port;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!port_is_open(port), "the server on {port} still runs");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "sandbox left behind: {left:?}");
}

#[test]
fn issue_21_an_encrypted_backup_is_proven_with_the_password_given_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 200, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let password = tmp.path().join("password");
    std::fs::write(&password, "proof password").unwrap();
    let password = password.to_str().unwrap();
    crate::common::vecdrill(["init", "--repo", &repo, "--password-file", password]).expect_code(0);
    crate::common::vecdrill([
        "backup",
        "--repo",
        &repo,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--password-file",
        password,
    ])
    .expect_code(0);
    let run = prove(
        &repo,
        &tmp.path().join("reports"),
        None,
        &["--password-file", password],
    );
    run.expect_code(0);
    assert_eq!(
        report_step(&run.json(), "count docs")["outputs"]["total"],
        200
    );

    // Typed at a terminal instead: asked once, for the opening and for the proof's steps.
    let server = format!(
        "{} run --path {{dir}} --port {{port}}",
        chroma_bin().display()
    );
    let reports = tmp.path().join("typed");
    let typed = crate::common::vecdrill_on_terminal(
        &[
            "prove",
            "--repo",
            &repo,
            "latest",
            "--server-cmd",
            &server,
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &["proof password\r"],
        None,
    );
    let shown = typed.stdout();
    assert_eq!(typed.code(), 0, "{shown}");
    assert_eq!(shown.matches("enter the password").count(), 1, "{shown}");
    assert!(!shown.contains("proof password"), "{shown}");
}

#[test]
fn issue_21_backup_prove_proves_the_new_backup_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 150, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let server = format!(
        "{} run --path {{dir}} --port {{port}}",
        chroma_bin().display()
    );
    let run = vecdrill([
        "backup",
        "--repo",
        &repo,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--prove",
        "--server-cmd",
        &server,
        "--report-dir",
        tmp.path().join("reports").to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    // The backup's results alone are on stdout; the proof's verdict went to stderr.
    let backup = run.json();
    let id = backup["backup"]["manifest"]["id"]
        .as_str()
        .expect("the backup's id")
        .to_string();
    assert!(run.stderr().contains("PASSED"), "{}", run.stderr());
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["proof"]["passed"], true, "{listed:#}");

    // `prove unproven` proves what is not yet, and then finds nothing left to prove.
    backup_json(&repo, &data, &["--read-all"]);
    let reports = tmp.path().join("reports");
    let run = vecdrill([
        "prove",
        "--repo",
        &repo,
        "unproven",
        "--server-cmd",
        &server,
        "--report-dir",
        reports.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let proved = run.json();
    assert_eq!(proved.as_array().unwrap().len(), 1, "{proved:#}");
    assert_eq!(proved[0]["passed"], true);
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["proof"]["passed"] == true));
    let again = vecdrill([
        "prove",
        "--repo",
        &repo,
        "unproven",
        "--report-dir",
        reports.to_str().unwrap(),
        "--json",
    ]);
    again.expect_code(0);
    assert_eq!(again.json(), serde_json::json!([]));
}

#[test]
fn issue_21_a_prove_step_proves_the_backup_a_drill_just_made() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 120, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let text = format!(
        "name: backup-then-prove\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:{port}\n  data_dir: {data}\n\
         repo: {repo}\n\
         steps:\n  - {{ id: backup, do: backup, with: {{ mode: offline }} }}\n  \
         - {{ id: proof, do: prove, with: {{ server_cmd: \"{chroma} run --path {{dir}} --port {{port}}\", rto: 5m }} }}\n",
        port = crate::common::free_port(),
        data = data.display(),
        chroma = chroma_bin().display(),
    );
    let path = tmp.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    vecdrill(["validate", path.to_str().unwrap()]).expect_code(0);
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let run = vecdrill_env(
        [
            "run",
            path.to_str().unwrap(),
            "--report-dir",
            tmp.path().join("reports").to_str().unwrap(),
            "--json",
        ],
        &[("TMPDIR", scratch.display().to_string())],
    );
    run.expect_code(0);
    let report = run.json();
    let proof = report_step(&report, "proof");
    assert_eq!(proof["outputs"]["passed"], true, "{proof:#}");
    assert!(proof["outputs"]["rto_ms"].as_f64().unwrap() > 0.0);
    let backup = report_step(&report, "backup")["outputs"]["id"].clone();
    assert_eq!(proof["outputs"]["backup"], backup);
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert_eq!(listed[0]["proof"]["passed"], true, "{listed:#}");
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "sandbox left behind"
    );
}

#[test]
fn issue_21_a_faiss_and_redis_backup_is_proven_with_a_throwaway_redis_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (indexes, redis, described) = crate::faiss_redis::store(tmp.path());
    let repo = repo_url(&tmp.path().join("repo"));
    let names: Vec<&str> = described.keys().map(String::as_str).collect();
    vecdrill(crate::faiss_redis::backup_args(
        &repo, &indexes, &names, &redis,
    ))
    .expect_code(0);
    let live = tree_hashes(&indexes);
    let keys_before = redis.cli(&["DBSIZE"]);

    // The default server command: redis-server on PATH, on a free port, in the sandbox.
    let reports = tmp.path().join("reports");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let run = vecdrill_env(
        [
            "prove",
            "--repo",
            &repo,
            "latest",
            "--report-dir",
            reports.to_str().unwrap(),
            "--json",
        ],
        &[("TMPDIR", scratch.display().to_string())],
    );
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    // The snapshot loaded into a Redis of the proof's own, with the backup's key counts.
    let loaded = report_step(&report, "redis");
    assert_eq!(loaded["status"], "passed", "{loaded:#}");
    assert_eq!(loaded["outputs"]["keys"], 1575, "{loaded:#}");
    assert_eq!(
        loaded["outputs"]["prefixes"]["chimera-vectors:"], 1200,
        "{loaded:#}"
    );
    // Every index file parsed, as recorded.
    let checked = report_step(&report, "indexes");
    assert_eq!(checked["status"], "passed", "{checked:#}");
    let parsed = checked["outputs"]["indexes"].as_object().unwrap();
    assert_eq!(parsed.len(), described.len(), "{checked:#}");
    // The flat indexes answered the probe queries the backup recorded (10 each), exactly.
    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]).json();
    let recorded: usize = info["faiss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"]["probes"].as_array().map_or(0, Vec::len))
        .sum();
    // Flat indexes, and ID maps over one.
    let is_flat = |kind: &Value| kind.as_str().unwrap_or_default().starts_with("IndexFlat");
    let flat = info["faiss"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            is_flat(&d["type"])
                || (d["type"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("IndexIDMap")
                    && is_flat(&d["inner"]))
        })
        .count();
    assert!(flat > 0 && recorded == 10 * flat, "{info:#}");
    assert_eq!(checked["outputs"]["probes"], recorded, "{checked:#}");
    // The IVF indexes' inverted lists' ids, recorded and found again.
    let ivf: Vec<&Value> = info["faiss"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("IndexIVF")
        })
        .collect();
    assert_eq!(ivf.len(), 2, "{info:#}");
    for index in ivf {
        assert!(index["content"]["list_ids_blake3"].is_string(), "{index:#}");
    }
    for (name, recorded) in &described {
        assert_eq!(parsed[name]["ntotal"], recorded["ntotal"], "{name}");
    }
    let proof = &vecdrill(["list", "--repo", &repo, "--json"]).json()[0]["proof"];
    assert_eq!(proof["passed"], true, "{proof:#}");
    assert!(proof["start_to_healthy_ms"]
        .as_f64()
        .is_some_and(|ms| ms > 0.0));
    assert!(proof["rto_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    // Its Redis is gone, the live store untouched, the sandbox removed.
    let port = port_of(&report);
    assert!(
        !port_is_open(port),
        "the proof's Redis on {port} still runs"
    );
    assert_eq!(tree_hashes(&indexes), live);
    assert_eq!(redis.cli(&["DBSIZE"]), keys_before);
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);

    // A Redis that loads something else than the snapshot: caught by its key counts.
    let other = tmp.path().join("other-redis");
    std::fs::create_dir_all(&other).unwrap();
    let wrong = format!(
        "env RESTORED={{dir}} redis-server --port {{port}} --dir {} --save '' --appendonly no --dbfilename elsewhere.rdb",
        other.display()
    );
    let run = prove(&repo, &reports, Some(wrong), &[]);
    run.expect_code(1);
    let report = run.json();
    let loaded = report_step(&report, "redis");
    assert_eq!(loaded["status"], "failed", "{loaded:#}");
    assert!(
        loaded["error"]
            .as_str()
            .unwrap_or_default()
            .contains("1575"),
        "{loaded:#}"
    );
}

#[test]
fn issue_21_a_proof_killed_outright_has_its_server_stopped_by_the_next_and_a_kept_sandbox_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 200, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let reports = tmp.path().join("reports");

    // A sandbox kept on request survives the cleanup the next proofs do.
    let kept = vecdrill_env(
        [
            "prove",
            "--repo",
            &repo,
            "latest",
            "--keep",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[("TMPDIR", scratch.display().to_string())],
    );
    kept.expect_code(0);
    let kept_dirs = crate::common::names_in(&scratch);
    assert_eq!(kept_dirs.len(), 1, "{kept_dirs:?}");
    assert!(
        kept_dirs[0].starts_with("vecdrill-prove-kept-"),
        "{kept_dirs:?}"
    );
    assert!(kept.stderr().contains(&kept_dirs[0]), "{}", kept.stderr());
    std::fs::remove_dir_all(scratch.join(&kept_dirs[0])).unwrap();

    // The server says where it listens, then runs as usual.
    let started = tmp.path().join("started");
    let server = format!(
        "sh -c 'echo \"$1\" > {started}; exec {chroma} run --path \"$0\" --port \"$1\"' {{dir}} {{port}}",
        started = started.display(),
        chroma = chroma_bin().display(),
    );
    let mut child = crate::common::vecdrill_command()
        .args(["prove", "--repo", &repo, "latest", "--server-cmd", &server])
        .args(["--report-dir", reports.to_str().unwrap()])
        .env("TMPDIR", &scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let port: u16 = loop {
        let port = std::fs::read_to_string(&started)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if let Some(port) = port.filter(|p| port_is_open(*p)) {
            break port;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed outright, the proof could stop nothing: its server still serves its sandbox.
    assert!(port_is_open(port), "the server on {port} is gone already");
    assert_eq!(crate::common::names_in(&scratch).len(), 1);

    // The next proof stops it and removes the sandbox (`prove` checks TMPDIR is empty after).
    prove(&repo, &reports, None, &[]).expect_code(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while port_is_open(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "the killed proof's server on {port} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
