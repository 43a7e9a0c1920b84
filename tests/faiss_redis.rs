//! FAISS indexes with Redis metadata: real index files written by faiss-cpu, a real
//! redis-server, the repository on a local folder.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecdrill::targets::faiss;

use crate::common::{
    free_port, project_root, repo_url, report_step, run_scenario, tree_hashes, vecdrill,
    RedisServer,
};

const PREFIXES: [(&str, u64); 3] = [
    ("chimera-vectors:", 1200),
    ("chimera-users:", 300),
    ("sessions:", 75),
];

/// A store like seed 003's: index files of every family, and Redis with three prefixes.
pub(crate) fn store(root: &Path) -> (PathBuf, RedisServer, serde_json::Map<String, Value>) {
    let indexes = root.join("indexes");
    let described = write_indexes(&indexes, 1200, 32, 5);
    let redis = RedisServer::start(&root.join("redis"));
    for (prefix, count) in PREFIXES {
        redis.fill(prefix, count);
    }
    (indexes, redis, described)
}

pub(crate) fn backup_args(
    repo: &str,
    indexes: &Path,
    names: &[&str],
    redis: &RedisServer,
) -> Vec<String> {
    let mut args = vec![
        "backup".to_string(),
        "--repo".into(),
        repo.into(),
        "--redis".into(),
        redis.url(),
        "--json".into(),
    ];
    for name in names {
        args.push("--faiss".into());
        args.push(indexes.join(name).display().to_string());
    }
    for (prefix, _) in PREFIXES {
        args.push("--redis-prefix".into());
        args.push(prefix.into());
    }
    args
}

fn listed(repo: &str) -> usize {
    let run = vecdrill(["list", "--repo", repo, "--json"]);
    run.expect_code(0);
    run.json().as_array().map_or(0, Vec::len)
}

/// The Python with faiss-cpu (`.venv-fixtures`, made by `.ci/setup`).
fn fixtures_python() -> PathBuf {
    let path = project_root().join(".venv-fixtures/bin/python");
    assert!(
        path.exists(),
        "run `bash .ci/setup` first: it installs faiss-cpu into .venv-fixtures"
    );
    path
}

/// Index files of every family vecdrill walks; returns what faiss says of each.
fn write_indexes(dir: &Path, count: u64, dim: u32, seed: u64) -> serde_json::Map<String, Value> {
    let output = std::process::Command::new(fixtures_python())
        .arg(project_root().join("tests/fixtures/faiss_indexes.py"))
        .arg(dir)
        .args([count.to_string(), dim.to_string(), seed.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An `IndexFlatL2` file as faiss writes it: code, header, then the vectors.
pub(crate) fn flat_l2_index(dim: u32, count: u64) -> Vec<u8> {
    let mut bytes = b"IxF2".to_vec();
    bytes.extend_from_slice(&(dim as i32).to_le_bytes());
    bytes.extend_from_slice(&(count as i64).to_le_bytes());
    bytes.extend_from_slice(&(1i64 << 20).to_le_bytes());
    bytes.extend_from_slice(&(1i64 << 20).to_le_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&1i32.to_le_bytes());
    bytes.extend_from_slice(&(count * u64::from(dim)).to_le_bytes());
    for i in 0..count * u64::from(dim) {
        bytes.extend_from_slice(&((i % 1000) as f32 / 1000.0).to_le_bytes());
    }
    bytes
}

#[test]
fn every_index_family_faiss_writes_is_read_and_truncation_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = write_indexes(tmp.path(), 1500, 32, 3);
    assert!(expected.len() >= 7);
    for (name, want) in &expected {
        let path = tmp.path().join(name);
        let info = faiss::inspect(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.kind, want["type"], "{name}");
        assert_eq!(
            u64::from(info.dimension),
            want["dimension"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(info.ntotal, want["ntotal"].as_u64().unwrap(), "{name}");
        assert!(info.structure_checked, "{name}");

        let bytes = std::fs::read(&path).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2, 30] {
            let err = faiss::inspect_bytes(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{name} cut at {cut}: {err}");
        }
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 16]);
        assert!(
            faiss::inspect_bytes(&padded).is_err(),
            "{name} with trailing bytes"
        );
    }
}

#[test]
fn round_trip_of_several_index_types_and_a_redis_with_several_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let (indexes, redis, described) = store(tmp.path());
    let repo = repo_url(&tmp.path().join("repo"));
    let names: Vec<&str> = described.keys().map(String::as_str).collect();
    let run = vecdrill(backup_args(&repo, &indexes, &names, &redis));
    run.expect_code(0);

    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]);
    info.expect_code(0);
    let info = info.json();
    for (name, want) in &described {
        let index = info["faiss"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == *name)
            .unwrap();
        assert_eq!(index["type"], want["type"], "{name}");
        assert_eq!(index["dimension"], want["dimension"], "{name}");
        assert_eq!(index["ntotal"], want["ntotal"], "{name}");
    }
    assert_eq!(info["redis"]["keys"], 1575);
    for (prefix, count) in PREFIXES {
        assert_eq!(info["redis"]["prefixes"][prefix], count, "{prefix}");
    }

    // verify: hashes, the indexes read back, and the seed's index-to-prefix cross-check.
    let verify = vecdrill([
        "verify",
        "--repo",
        &repo,
        "latest",
        "--read-data",
        "--json",
        "--expect-match",
        "flat_l2.faiss=chimera-vectors:",
    ]);
    verify.expect_code(0);
    let mismatch = vecdrill([
        "verify",
        "--repo",
        &repo,
        "latest",
        "--expect-match",
        "flat_l2.faiss=chimera-users:",
    ]);
    mismatch.expect_code(1);
    assert!(
        mismatch
            .stdout()
            .contains("holds 1200 vectors; Redis holds 300 keys"),
        "{}",
        mismatch.stdout()
    );

    let restored = tmp.path().join("restored");
    vecdrill([
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        restored.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(0);
    let original = tree_hashes(&indexes);
    let back = tree_hashes(&restored.join("faiss"));
    assert_eq!(original, back, "byte-identical index files");

    // The restored snapshot, loaded by a fresh Redis, holds the same keys.
    let reloaded = RedisServer::start(&restored.join("redis"));
    for (prefix, count) in PREFIXES {
        assert_eq!(reloaded.count(prefix), count, "{prefix}");
        assert_eq!(redis.count(prefix), count);
    }

    // Issue 25: a copy of a FAISS + Redis backup keeps what its format says, and restores the
    // same bytes.
    let offsite = repo_url(&tmp.path().join("offsite"));
    vecdrill(["copy", "--from-repo", &repo, "--repo", &offsite]).expect_code(0);
    let copied = vecdrill(["info", "--repo", &offsite, "latest", "--json"]);
    copied.expect_code(0);
    assert_eq!(copied.json()["faiss"], info["faiss"]);
    assert_eq!(copied.json()["redis"], info["redis"]);
    vecdrill([
        "verify",
        "--repo",
        &offsite,
        "--read-data",
        "--expect-match",
        "flat_l2.faiss=chimera-vectors:",
    ])
    .expect_code(0);
    let from_copy = tmp.path().join("from-copy");
    vecdrill([
        "restore",
        "--repo",
        &offsite,
        "latest",
        "--to",
        from_copy.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(0);
    assert_eq!(tree_hashes(&from_copy.join("faiss")), original);
    let rdb = |dir: &Path| std::fs::read(dir.join("redis/dump.rdb")).unwrap();
    assert!(rdb(&from_copy) == rdb(&restored), "the same Redis snapshot");
}

#[test]
fn a_truncated_index_an_unreachable_or_failing_redis_and_a_changing_index_make_no_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (indexes, redis, _) = store(tmp.path());
    let repo = repo_url(&tmp.path().join("repo"));

    // A truncated index file is named.
    let bytes = std::fs::read(indexes.join("ivf_flat.faiss")).unwrap();
    std::fs::write(
        indexes.join("ivf_flat.faiss"),
        &bytes[..bytes.len() * 2 / 3],
    )
    .unwrap();
    let run = vecdrill(backup_args(
        &repo,
        &indexes,
        &["flat_l2.faiss", "ivf_flat.faiss"],
        &redis,
    ));
    run.expect_code(1);
    assert!(
        run.stderr().contains("ivf_flat.faiss") && run.stderr().contains("truncated"),
        "{}",
        run.stderr()
    );

    // Redis unreachable.
    let mut args = backup_args(&repo, &indexes, &["flat_l2.faiss"], &redis);
    let at = args.iter().position(|a| a == "--redis").unwrap();
    args[at + 1] = format!("redis://127.0.0.1:{}", free_port());
    let run = vecdrill(&args);
    run.expect_code(3);
    assert!(
        run.stderr().contains("cannot reach Redis"),
        "{}",
        run.stderr()
    );

    // BGSAVE failing: Redis's directory is gone, so the snapshot cannot be written.
    let doomed = tmp.path().join("doomed");
    std::fs::create_dir_all(&doomed).unwrap();
    let set = redis.cli(&["CONFIG", "SET", "dir", doomed.to_str().unwrap()]);
    assert_eq!(set.trim(), "OK", "CONFIG SET dir");
    std::fs::remove_dir_all(&doomed).unwrap();
    let run = vecdrill(backup_args(&repo, &indexes, &["flat_l2.faiss"], &redis));
    run.expect_code(3);
    assert!(
        run.stderr().contains("could not save its snapshot"),
        "{}",
        run.stderr()
    );
    redis.cli(&["CONFIG", "SET", "dir", redis.dir.to_str().unwrap()]);

    // An index rewritten during the copy: retried, then refused. A large one (16 MB), so each
    // read lasts far longer than the writer's pauses even on a loaded machine.
    let busy = indexes.join("busy.faiss");
    std::fs::write(&busy, flat_l2_index(64, 64_000)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (busy, stop) = (busy.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(file) = std::fs::File::options().write(true).open(&busy) {
                    let _ = file.set_modified(std::time::SystemTime::now());
                }
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
        })
    };
    let run = vecdrill(backup_args(&repo, &indexes, &["busy.faiss"], &redis));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    run.expect_code(3);
    assert!(
        run.stderr().contains("busy.faiss kept changing"),
        "{}",
        run.stderr()
    );

    assert_eq!(
        listed(&repo),
        0,
        "no backup is listed after any of these failures"
    );
    vecdrill(["verify", "--repo", &repo]).expect_code(0);
}

#[test]
fn the_faiss_redis_restore_scenario_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("vector-store");
    let written = write_indexes(&tmp.path().join("written"), 800, 16, 9);
    std::fs::create_dir_all(data.join("faiss")).unwrap();
    for (from, to) in [
        ("idmap_flat.faiss", "content_index.faiss"),
        ("hnsw_flat.faiss", "user_index.faiss"),
    ] {
        std::fs::copy(
            tmp.path().join("written").join(from),
            data.join("faiss").join(to),
        )
        .unwrap();
    }
    // Redis's directory with a snapshot holding the metadata.
    let redis_dir = tmp.path().join("redis");
    {
        let redis = RedisServer::start(&redis_dir);
        redis.fill("chimera-vectors:", 800);
        redis.fill("chimera-users:", 120);
        redis.cli(&["SAVE"]);
        redis.stop();
    }
    let port = free_port();
    let scenario = project_root().join("scenarios/faiss-redis-restore.yaml");
    let vars = [
        format!("data_dir={}", data.display()),
        format!("redis_dir={}", redis_dir.display()),
        format!("redis_port={port}"),
        format!("repo=file://{}", tmp.path().join("repo").display()),
    ];
    let run = run_scenario(&scenario, &tmp.path().join("reports"), &vars, &[]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report_step(&report, "redis")["outputs"]["keys"], 920);
    assert_eq!(
        report_step(&report, "redis")["outputs"]["prefixes"]["chimera-vectors:"],
        800
    );
    assert_eq!(report_step(&report, "indexes")["outputs"]["ntotal"], 1600);
    assert_eq!(written["idmap_flat.faiss"]["ntotal"], 800);
    assert!(report["rto_ms"].as_f64().unwrap() > 0.0);
}
