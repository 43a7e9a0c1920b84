//! `vecdrill seed` and `vecdrill bench` against a real Chroma, and the plain error for a
//! server that is not Chroma.

use std::io::{Read, Write};

use crate::common::{vecdrill, ChromaServer};

#[test]
fn seed_is_deterministic_and_bench_reports_percentiles() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    std::fs::create_dir_all(&data).unwrap();
    let server = ChromaServer::start(&data);
    let url = server.url();
    let seed = |collection: &str, seed: &str| {
        let run = vecdrill([
            "seed",
            "--url",
            &url,
            "--collection",
            collection,
            "--count",
            "700",
            "--dim",
            "24",
            "--seed",
            seed,
            "--batch-size",
            "256",
            "--json",
        ]);
        run.expect_code(0);
        run.json()
    };
    let first = seed("alpha", "9");
    assert_eq!(first["written"], 700);
    assert_eq!(first["count_after"], 700);
    // Seeding again upserts the same records: the count does not grow.
    assert_eq!(seed("alpha", "9")["count_after"], 700);

    let run = vecdrill([
        "bench",
        "--url",
        &url,
        "--collection",
        "alpha",
        "--queries",
        "150",
        "--concurrency",
        "3",
        "--json",
    ]);
    run.expect_code(0);
    let bench = run.json();
    for field in ["qps", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(
            bench[field].as_f64().is_some_and(|v| v > 0.0),
            "{field}: {bench:#}"
        );
    }
    assert_eq!(bench["errors"], 0);
    assert!(bench["p50_ms"].as_f64() <= bench["p99_ms"].as_f64());

    let run = vecdrill(["bench", "--url", &url, "--collection", "nope", "--json"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains("collection \"nope\" does not exist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_server_that_is_not_chroma_is_named_as_such() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 2048];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 18\r\nConnection: close\r\n\r\n<html>nope</html>\n");
        }
    });
    let run = seed_one(port);
    run.expect_code(3);
    assert!(
        run.stderr().contains("is not a Chroma server"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("hint:"), "{}", run.stderr());

    // Nothing listening at all: unreachable, with a hint.
    let port = crate::common::free_port();
    let run = seed_one(port);
    run.expect_code(3);
    assert!(
        run.stderr().contains("cannot reach Chroma"),
        "{}",
        run.stderr()
    );
}

/// Seed one record at a port where no Chroma is.
fn seed_one(port: u16) -> crate::common::Run {
    let url = format!("http://127.0.0.1:{port}");
    vecdrill([
        "seed",
        "--url",
        &url,
        "--collection",
        "x",
        "--count",
        "1",
        "--dim",
        "2",
    ])
}
