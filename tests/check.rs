//! `vecdrill check` against a real Chroma and a real repository.

use crate::common::{
    backup_json, prometheus_samples, repo_url, seeded_data_dir, vecdrill, ChromaServer,
};

#[test]
fn check_passes_on_a_healthy_setup_and_fails_on_a_stale_backup_and_a_dead_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 500, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let server = ChromaServer::start(&data);
    let metrics = tmp.path().join("vecdrill.prom");

    let healthy = vecdrill([
        "check",
        "--url",
        &server.url(),
        "--repo",
        &repo,
        "--max-backup-age",
        "1h",
        "--data-dir",
        data.to_str().unwrap(),
        "--max-disk-use",
        "100%",
        "--metrics-file",
        metrics.to_str().unwrap(),
        "--json",
    ]);
    healthy.expect_code(0);
    let report = healthy.json();
    assert_eq!(report["checks"].as_array().unwrap().len(), 4);
    let samples = prometheus_samples(&metrics);
    for check in ["heartbeat", "object_store", "backup_age", "disk_use"] {
        let name = format!("vecdrill_check_passed{{check=\"{check}\"}}");
        assert_eq!(
            samples.iter().find(|(n, _)| *n == name).map(|s| s.1),
            Some(1.0),
            "{check}"
        );
    }
    assert!(samples
        .iter()
        .any(|(n, v)| n == "vecdrill_backup_age_seconds" && *v < 3600.0));

    // A stale backup (older than 1 ms) fails and is named.
    let stale = vecdrill(["check", "--repo", &repo, "--max-backup-age", "1ms"]);
    stale.expect_code(1);
    assert!(
        stale.stdout().contains("FAIL backup_age"),
        "{}",
        stale.stdout()
    );

    // A dead server fails after the consecutive failures. The port is held by a listener that
    // drops every connection, so no other test's server can take it meanwhile.
    let dead_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead_listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for connection in dead_listener.incoming() {
            drop(connection);
        }
    });
    let dead = vecdrill([
        "check",
        "--url",
        &format!("http://127.0.0.1:{dead_port}"),
        "--failures",
        "3",
        "--interval",
        "50ms",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    dead.expect_code(1);
    assert!(
        dead.stdout().contains("3 failed heartbeats in a row"),
        "{}",
        dead.stdout()
    );
    let samples = prometheus_samples(&metrics);
    assert!(samples
        .iter()
        .any(|(n, v)| n == "vecdrill_check_passed{check=\"heartbeat\"}" && *v == 0.0));
}

#[test]
fn issue_25_redis_object_store_and_faiss_checks_pass_and_fail_as_they_should() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = crate::common::RedisServer::start(&tmp.path().join("redis"));
    redis.fill("vectors:", 12);
    let index = tmp.path().join("content.faiss");
    std::fs::write(&index, crate::faiss_redis::flat_l2_index(8, 20)).unwrap();

    // A FIFO given as an index is refused, not opened (the open would wait for a writer).
    let fifo = tmp.path().join("index.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let refused = vecdrill(["check", "--faiss", fifo.to_str().unwrap()]);
    refused.expect_code(1);
    assert!(
        refused.stdout().contains("not a regular file"),
        "{}",
        refused.stdout()
    );

    // A metrics file that cannot be written does not hide the results.
    let unwritable = tmp.path().join("no-such-dir/check.prom");
    let run = vecdrill(
        ["check", "--faiss", index.to_str().unwrap(), "--json"]
            .into_iter()
            .chain(["--metrics-file", unwritable.to_str().unwrap()]),
    );
    run.expect_code(3);
    assert_eq!(run.json()["checks"][0]["name"], "faiss", "{}", run.stdout());
    assert!(run.stderr().contains("cannot write"), "{}", run.stderr());
    let metrics = tmp.path().join("check.prom");
    let healthy = vecdrill([
        "check",
        "--redis",
        &redis.url(),
        "--redis-prefix",
        "vectors:",
        "--faiss",
        index.to_str().unwrap(),
        "--metrics-file",
        metrics.to_str().unwrap(),
        "--json",
    ]);
    healthy.expect_code(0);
    let report = healthy.json();
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
    };
    assert!(check("redis")["detail"]
        .as_str()
        .unwrap()
        .contains("12 under \"vectors:\""));
    assert!(check("faiss")["detail"]
        .as_str()
        .unwrap()
        .contains("20 vectors, dimension 8"));
    let samples = prometheus_samples(&metrics);
    assert!(samples.iter().any(|(n, _)| n == "vecdrill_redis_seconds"));

    // A truncated index, a Redis that is gone and an unreachable object store each fail,
    // named, each on its own line.
    std::fs::write(&index, &crate::faiss_redis::flat_l2_index(8, 20)[..100]).unwrap();
    let url = redis.url();
    redis.stop();
    let failing = vecdrill([
        "check",
        "--redis",
        &url,
        "--faiss",
        index.to_str().unwrap(),
        "--repo",
        "s3://no-such-bucket-vecdrill/x",
    ]);
    failing.expect_code(1);
    let out = failing.stdout();
    for name in ["redis", "faiss", "object_store"] {
        assert!(out.contains(&format!("FAIL {name}")), "{name}: {out}");
    }
}
