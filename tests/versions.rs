//! The version matrix: every Chroma release line vecdrill supports, each with its own server
//! and its own Python client, through backup (hot and offline), verify, restore, offline
//! export (of the directory and of a backup), API export and import (into the same version
//! and into the newest), and a restart drill.
//!
//! The versions are the main one (`.venv`) and each line of `.ci/chroma-versions`, whose
//! virtual environments `.ci/setup` installs (cached per machine). `VECDRILL_CHROMA_VERSIONS`
//! (space-separated) narrows the list.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecdrill::targets::chroma::state::{self, ProbeSettings};
use vecdrill::targets::chroma::ChromaClient;

use crate::common::{
    by_id, chroma_bin, free_port, names_in, project_root, read_export, repo_url, vecdrill,
    vecdrill_command, ChromaServer, Export, Run,
};
use crate::transfer::{embedding, export_api};

/// One installed Chroma: its server command and its Python.
pub(crate) struct Chroma {
    pub version: String,
    pub bin: PathBuf,
    pub python: PathBuf,
}

impl Chroma {
    /// The main version, from the project's `.venv`.
    pub fn main() -> Self {
        let bin = chroma_bin();
        let python = bin.with_file_name("python");
        let version = version_of(&python);
        Self {
            version,
            bin,
            python,
        }
    }

    /// An older line, from its cached virtual environment.
    pub fn older(version: &str) -> Self {
        let venvs = std::env::var_os("VECDRILL_VENVS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/vecdrill/venvs")
            });
        let venv = venvs.join(format!("chroma-{version}"));
        let python = venv.join("bin/python");
        assert!(
            python.exists(),
            "Chroma {version} is not installed at {}: run `bash .ci/setup` (it installs every version in .ci/chroma-versions)",
            venv.display()
        );
        assert_eq!(version_of(&python), version, "{}", venv.display());
        Self {
            version: version.to_string(),
            bin: venv.join("bin/chroma"),
            python,
        }
    }

    fn start(&self, data_dir: &Path) -> ChromaServer {
        std::fs::create_dir_all(data_dir).unwrap();
        ChromaServer::start_with(&self.bin, data_dir)
    }

    /// The matrix's data, written by this version's own client.
    fn write_data(&self, server: &ChromaServer) {
        let script = project_root().join("tests/fixtures/chroma_versions/write_data.py");
        let out = std::process::Command::new(&self.python)
            .arg(script)
            .args(["127.0.0.1", &server.port.to_string()])
            .env("ANONYMIZED_TELEMETRY", "False")
            .output()
            .expect("run the version's Python");
        assert!(
            out.status.success(),
            "write_data.py on Chroma {}: {}",
            self.version,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn version_of(python: &Path) -> String {
    let out = std::process::Command::new(python)
        .args(["-c", "import chromadb; print(chromadb.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The older lines `.ci/chroma-versions` lists.
pub(crate) fn older_versions() -> Vec<String> {
    let listed = std::fs::read_to_string(project_root().join(".ci/chroma-versions")).unwrap();
    listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Whether `VECDRILL_CHROMA_VERSIONS` (when set) names `version`.
pub(crate) fn wanted(version: &str) -> bool {
    match std::env::var("VECDRILL_CHROMA_VERSIONS") {
        Ok(list) => list.split_whitespace().any(|v| v == version),
        Err(_) => true,
    }
}

const COLLECTIONS: [(&str, &str); 3] = [("l2s", "l2"), ("cos", "cosine"), ("ips", "ip")];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The distance space an export gives a collection: its configuration's, else its metadata's.
fn space(collection: &Value) -> String {
    collection
        .pointer("/configuration/hnsw/space")
        .or_else(|| collection.pointer("/metadata/hnsw:space"))
        .and_then(Value::as_str)
        .unwrap_or("l2")
        .to_string()
}

/// Two exports hold the same collections and the same records, bit for bit: documents,
/// metadata and vectors (cosine ones too: the offline reader rounds as each version's server
/// does, for vectors in its index and in its log).
fn assert_same_records(want: &Export, got: &Export, what: &str) {
    let names = |e: &Export| e.records.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(want), names(got), "{what}: collections");
    for (name, records) in &want.records {
        let (want_by_id, got_by_id) = (by_id(records), by_id(&got.records[name]));
        assert_eq!(want_by_id.len(), got_by_id.len(), "{what}: {name} records");
        for (id, record) in &want_by_id {
            let other = got_by_id
                .get(id)
                .unwrap_or_else(|| panic!("{what}: {name} lacks {id}"));
            for field in ["document", "metadata"] {
                assert_eq!(
                    record.get(field),
                    other.get(field),
                    "{what}: {name} {id} {field}"
                );
            }
            assert_eq!(
                embedding(record),
                embedding(other),
                "{what}: {name} {id} embedding"
            );
        }
    }
}

/// Mean top-10 overlap of two servers' answers to the same queries (drawn from the data).
async fn overlap(a: &ChromaClient, b: &ChromaClient, name: &str, queries: &[Vec<f32>]) -> f64 {
    let ids = |c: &ChromaClient| {
        let c = c.clone();
        async move { c.collection(name).await.unwrap().id }
    };
    let (a_id, b_id) = (ids(a).await, ids(b).await);
    let (x, y) = (
        a.query(&a_id, queries, 10).await.unwrap(),
        b.query(&b_id, queries, 10).await.unwrap(),
    );
    let shared: usize = x
        .iter()
        .zip(&y)
        .map(|(p, q)| p.iter().filter(|id| q.contains(id)).count())
        .sum();
    shared as f64 / (queries.len() * 10) as f64
}

fn ok(run: Run, what: &str) -> Run {
    assert_eq!(
        run.code(),
        0,
        "{what}\nstdout: {}\nstderr: {}",
        run.stdout(),
        run.stderr()
    );
    run
}

/// A cold backup: the service stopped by its stop command, copied, and started again by its
/// start command (here a server started in the background, its pid in a file).
fn cold_backup(chroma: &Chroma, data: &Path, repo: &str) {
    let v = &chroma.version;
    let port = free_port();
    let pid = data.with_extension("pid");
    let start = format!(
        "cd {dir} && ANONYMIZED_TELEMETRY=False nohup {bin} run --path {data} --port {port} > {log} 2>&1 & echo $! > {pid}",
        dir = data.parent().unwrap().display(),
        bin = chroma.bin.display(),
        data = data.display(),
        log = data.with_extension("cold.log").display(),
        pid = pid.display(),
    );
    let stop = format!(
        "p=$(cat {pid}); kill $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done",
        pid = pid.display()
    );
    let shell = |command: &str| {
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
    };
    let healthy = || {
        let client = ChromaClient::new(&format!("http://127.0.0.1:{port}"));
        runtime().block_on(async {
            for _ in 0..300 {
                if client
                    .heartbeat(std::time::Duration::from_secs(1))
                    .await
                    .is_ok()
                {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            false
        })
    };
    shell(&start);
    assert!(healthy(), "Chroma {v} started for the cold backup");
    ok(
        vecdrill([
            "backup",
            "--chroma-dir",
            data.to_str().unwrap(),
            "--repo",
            repo,
            "--mode",
            "cold",
            "--stop-cmd",
            &stop,
            "--start-cmd",
            &start,
        ]),
        &format!("Chroma {v}: cold backup"),
    );
    assert!(
        healthy(),
        "Chroma {v}: the cold backup started the server again"
    );
    shell(&stop);
}

/// `seed` writes into a new collection and `bench` queries it.
fn seed_and_bench(v: &str, url: &str) {
    let seeded = ok(
        vecdrill([
            "seed",
            "--url",
            url,
            "--collection",
            "seeded",
            "--count",
            "500",
            "--dim",
            "8",
            "--json",
        ]),
        &format!("Chroma {v}: seed"),
    )
    .json();
    assert_eq!(seeded["count_after"], 500, "Chroma {v}: {seeded}");
    let bench = ok(
        vecdrill([
            "bench",
            "--url",
            url,
            "--collection",
            "seeded",
            "--queries",
            "50",
            "--json",
        ]),
        &format!("Chroma {v}: bench"),
    )
    .json();
    assert_eq!(bench["errors"], 0, "Chroma {v}: {bench}");
    assert_eq!(bench["queries"], 50, "Chroma {v}: {bench}");
}

fn matrix(chroma: &Chroma) {
    let began = std::time::Instant::now();
    let v = &chroma.version;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let repo = repo_url(&tmp.path().join("repo"));
    let rt = runtime();

    // Data written by the version's own client, partly flushed, partly in the log.
    let server = chroma.start(&data);
    chroma.write_data(&server);
    let client = ChromaClient::new(&server.url());
    let api = export_api(&server.url(), &tmp.path().join("api.jsonl"));
    for (name, want_space) in COLLECTIONS {
        assert_eq!(
            api.records[name].len(),
            329,
            "Chroma {v}: {name} via the API"
        );
        let header = api.collections.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(space(header), want_space, "Chroma {v}: {name}'s space");
    }
    // The export names the server's version where the server tells it (0.x); every 1.x
    // answers "1.0.0", which says only that it is a 1.x.
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(tmp.path().join("api.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let want = if v.starts_with("0.") {
        v.to_string()
    } else {
        "unknown (1.x)".to_string()
    };
    assert_eq!(
        header["source"]["chroma_version"],
        want.as_str(),
        "{header}"
    );
    let baseline = rt
        .block_on(state::capture(
            &client,
            ProbeSettings { probes: 10, k: 10 },
            None,
        ))
        .unwrap();

    // A hot backup of the live server, then an offline one once it has stopped.
    let data_arg = data.to_str().unwrap();
    ok(
        vecdrill([
            "backup",
            "--chroma-dir",
            data_arg,
            "--repo",
            &repo,
            "--mode",
            "hot",
        ]),
        &format!("Chroma {v}: hot backup"),
    );
    server.stop();
    cold_backup(chroma, &data, &repo);
    ok(
        vecdrill(["backup", "--chroma-dir", data_arg, "--repo", &repo]),
        &format!("Chroma {v}: offline backup"),
    );
    ok(
        vecdrill(["verify", "--read-data", "--repo", &repo]),
        &format!("Chroma {v}: verify --read-data"),
    );
    let info = ok(
        vecdrill(["info", "--repo", &repo, "latest", "--json"]),
        "info",
    )
    .json();
    let line = match v.as_str() {
        v if v.starts_with("0.4.") => "0.4.x",
        v if v.starts_with("0.5.") || v.starts_with("0.6.") => "0.5.x-0.6.x",
        v if ["1.0.", "1.1.", "1.2."].iter().any(|l| v.starts_with(l)) => "1.0.x-1.2.x",
        _ => "1.3.x or newer",
    };
    assert_eq!(
        info["database"]["chroma_versions"], line,
        "Chroma {v}: the manifest names the schema's release line"
    );

    // Offline exports, of the stopped directory and of the backup, equal the API's.
    let offline_file = tmp.path().join("offline.jsonl");
    ok(
        vecdrill([
            "export",
            "--chroma-dir",
            data_arg,
            "--all",
            "--out",
            offline_file.to_str().unwrap(),
        ]),
        &format!("Chroma {v}: offline export"),
    );
    let offline = read_export(&offline_file);
    assert_same_records(&api, &offline, &format!("Chroma {v}: offline export"));
    for (name, want_space) in COLLECTIONS {
        let header = offline.collections.iter().find(|c| c["name"] == name);
        assert_eq!(
            space(header.unwrap()),
            want_space,
            "Chroma {v}: {name}'s space offline"
        );
    }
    let backup_file = tmp.path().join("from-backup.jsonl");
    ok(
        vecdrill([
            "export",
            "--repo",
            &repo,
            "--backup",
            "latest",
            "--all",
            "--out",
            backup_file.to_str().unwrap(),
        ]),
        &format!("Chroma {v}: export from a backup"),
    );
    assert_same_records(
        &api,
        &read_export(&backup_file),
        &format!("Chroma {v}: export of a backup"),
    );

    // Restored into a new directory, the version's own server answers as before.
    let restored = tmp.path().join("restored");
    ok(
        vecdrill([
            "restore",
            "latest",
            "--repo",
            &repo,
            "--to",
            restored.to_str().unwrap(),
            "--yes",
        ]),
        &format!("Chroma {v}: restore"),
    );
    let again = chroma.start(&restored);
    let comparison = rt
        .block_on(state::compare(&ChromaClient::new(&again.url()), &baseline))
        .unwrap();
    assert!(
        comparison.counts_equal(),
        "Chroma {v}: counts after restore: {comparison:?}"
    );
    assert_eq!(
        comparison.identical_probes, comparison.total_probes,
        "Chroma {v}: top-10 after restore: {comparison:?}"
    );
    again.stop();

    // Imported into an empty server of this version and of the newest, each collection
    // keeps its space and answers like the original.
    let queries: Vec<Vec<f32>> = api.records["l2s"]
        .iter()
        .step_by(33)
        .map(embedding)
        .collect();
    let original = chroma.start(&data);
    let main = Chroma::main();
    let mut targets = vec![chroma];
    if main.version != *v {
        targets.push(&main);
    }
    for target in targets {
        let empty = target.start(&tmp.path().join(format!("import-{}", target.version)));
        ok(
            vecdrill([
                "import",
                "--url",
                &empty.url(),
                "--in",
                tmp.path().join("api.jsonl").to_str().unwrap(),
            ]),
            &format!("Chroma {v} into {}: import", target.version),
        );
        let copy = export_api(
            &empty.url(),
            &tmp.path().join(format!("copy-{}.jsonl", target.version)),
        );
        if target.version == *v {
            seed_and_bench(v, &empty.url());
        }
        for (name, want_space) in COLLECTIONS {
            let header = copy.collections.iter().find(|c| c["name"] == name).unwrap();
            assert_eq!(
                space(header),
                want_space,
                "Chroma {v} into {}: {name}'s space",
                target.version
            );
            assert_eq!(copy.records[name].len(), 329);
            let shared = rt.block_on(overlap(
                &ChromaClient::new(&original.url()),
                &ChromaClient::new(&empty.url()),
                name,
                &queries,
            ));
            assert!(
                shared >= 0.9,
                "Chroma {v} into {}: {name} top-10 overlap {shared:.2}",
                target.version
            );
        }
        empty.stop();
    }
    original.stop();

    // The restart and snapshot-restore drills on the restored directory, run by the
    // version's own server: every step kind a Chroma drill uses.
    let drill_repo = repo_url(&tmp.path().join("drill-repo"));
    for (scenario, extra) in [
        ("restart", None),
        ("snapshot-restore", Some(format!("repo={drill_repo}"))),
    ] {
        let mut command = vecdrill_command();
        command
            .current_dir(tmp.path())
            .arg("run")
            .arg(project_root().join(format!("scenarios/{scenario}.yaml")))
            .args(["--report-dir", tmp.path().join("reports").to_str().unwrap()])
            .args(["--var", &format!("chroma={}", chroma.bin.display())])
            .args(["--var", &format!("data_dir={}", restored.display())])
            .args(["--var", &format!("port={}", free_port())])
            .args(["--var", "expected_min=329"]);
        if let Some(extra) = extra {
            command.args(["--var", &extra]);
        }
        let drill = command.output().unwrap();
        assert!(
            drill.status.success(),
            "Chroma {v}: {scenario} drill\n{}\n{}",
            String::from_utf8_lossy(&drill.stdout),
            String::from_utf8_lossy(&drill.stderr)
        );
    }
    // The drill's backup recorded exact probe neighbours, read offline from this version's
    // files, and its proof found them through this version's search.
    let info = vecdrill(["info", "--repo", &drill_repo, "latest", "--json"]);
    info.expect_code(0);
    let info = info.json();
    for collection in info["database"]["collections"].as_array().unwrap() {
        let probes = collection["probes"].as_array().map_or(0, Vec::len);
        assert!(
            collection["count"] == 0 || probes == 10,
            "Chroma {v}: {collection:#}"
        );
    }
    let recall = info["proof"]["recall"].as_f64();
    assert!(
        recall.is_some_and(|r| r >= 0.9),
        "Chroma {v}: {:#}",
        info["proof"]
    );
    eprintln!(
        "Chroma {v}: backup (hot, cold, offline), verify, exports, restore, import, seed, bench, restart and snapshot-restore drills passed in {:.0} s",
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn every_supported_chroma_is_backed_up_restored_exported_imported_and_drilled() {
    let mut versions: Vec<Chroma> = older_versions()
        .iter()
        .filter(|v| wanted(v))
        .map(|v| Chroma::older(v))
        .collect();
    let main = Chroma::main();
    if wanted(&main.version) {
        versions.push(main);
    }
    assert!(
        !versions.is_empty(),
        "VECDRILL_CHROMA_VERSIONS names no supported version"
    );
    // Two at a time: each runs up to two servers.
    std::thread::scope(|scope| {
        for pair in versions.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|chroma| scope.spawn(move || matrix(chroma)))
                .collect();
            for (handle, chroma) in handles.into_iter().zip(pair) {
                if let Err(panic) = handle.join() {
                    eprintln!("Chroma {} failed", chroma.version);
                    std::panic::resume_unwind(panic);
                }
            }
        }
    });
}

/// A database with `records` records in one collection, written by `chroma`'s own server
/// (seeded through vecdrill), the server stopped.
fn seeded_by(chroma: &Chroma, dir: &Path, records: &str) {
    let server = chroma.start(dir);
    ok(
        vecdrill([
            "seed",
            "--url",
            &server.url(),
            "--collection",
            "docs",
            "--count",
            records,
            "--dim",
            "8",
        ]),
        &format!("Chroma {}: seed", chroma.version),
    );
    server.stop();
}

#[test]
fn a_newer_chromas_backup_is_refused_by_an_older_one_and_an_unknown_schema_is_unsupported_not_damage(
) {
    let oldest = older_versions()
        .first()
        .cloned()
        .expect(".ci/chroma-versions lists a version");
    let (old, main) = (Chroma::older(&oldest), Chroma::main());
    let tmp = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (tmp.path().join("old"), tmp.path().join("new"));
    seeded_by(&old, &old_dir, "100");
    seeded_by(&main, &new_dir, "200");
    let repo = repo_url(&tmp.path().join("repo"));
    ok(
        vecdrill([
            "backup",
            "--chroma-dir",
            new_dir.to_str().unwrap(),
            "--repo",
            &repo,
        ]),
        "backup of the newer database",
    );

    // Restoring it over the older Chroma's directory is refused before anything is written,
    // naming both release lines.
    let before = crate::common::tree_hashes(&old_dir);
    let around = names_in(tmp.path());
    let run = vecdrill([
        "restore",
        "latest",
        "--repo",
        &repo,
        "--to",
        old_dir.to_str().unwrap(),
        "--yes",
    ]);
    run.expect_code(2);
    let said = run.stderr();
    assert!(
        said.contains("Chroma 1.3.x or newer") && said.contains("Chroma 0.4.x"),
        "{said}"
    );
    assert_eq!(
        crate::common::tree_hashes(&old_dir),
        before,
        "nothing was written"
    );
    assert_eq!(names_in(tmp.path()), around, "nothing beside the target");

    // Proving it with the older Chroma is refused the same way, before anything is restored.
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let run = crate::common::vecdrill_env(
        [
            "prove",
            "--repo",
            &repo,
            "latest",
            "--server-cmd",
            &format!("{} run --path {{dir}} --port {{port}}", old.bin.display()),
            "--report-dir",
            tmp.path().join("reports").to_str().unwrap(),
        ],
        &[("TMPDIR", scratch.display().to_string())],
    );
    run.expect_code(2);
    let said = run.stderr();
    assert!(
        said.contains(&format!("Chroma {}", old.version)) && said.contains("Chroma 1.3.x or newer"),
        "{said}"
    );
    assert_eq!(names_in(&scratch), Vec::<String>::new(), "nothing restored");

    // A schema newer than any vecdrill knows is unsupported, and said to be so, not damage.
    let forged = tmp.path().join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    for entry in walk(&new_dir) {
        let to = forged.join(entry.strip_prefix(&new_dir).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    rusqlite::Connection::open(forged.join("chroma.sqlite3"))
        .unwrap()
        .execute(
            "INSERT INTO migrations (dir, version, filename, sql, hash) VALUES ('metadb', 99, 'future.sql', '', '')",
            [],
        )
        .unwrap();
    let run = vecdrill([
        "backup",
        "--chroma-dir",
        forged.to_str().unwrap(),
        "--repo",
        &repo_url(&tmp.path().join("repo2")),
    ]);
    run.expect_code(2);
    let said = run.stderr();
    assert!(
        said.contains("does not support")
            && said.contains("metadb")
            && said.contains("upgrade vecdrill"),
        "{said}"
    );
    assert!(!said.contains("damaged"), "{said}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn verify_says_when_a_repository_has_no_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let data = crate::common::seeded_data_dir(tmp.path(), &[("docs", 50, 8)]);
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    ok(
        vecdrill([
            "backup",
            "--chroma-dir",
            data.to_str().unwrap(),
            "--repo",
            &repo,
        ]),
        "backup",
    );
    // The repository loses its one backup (as if pruned by hand).
    for entry in std::fs::read_dir(repo_dir.join("snapshots")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let run = vecdrill(["verify", "--repo", &repo]);
    run.expect_code(0);
    assert!(run.stdout().contains("no backups"), "{}", run.stdout());
    for asked in ["latest", "20260101"] {
        let run = vecdrill(["verify", "--repo", &repo, asked]);
        run.expect_code(1);
        assert!(run.stderr().contains("no backups"), "{}", run.stderr());
    }
}

#[test]
fn the_upgrade_drill_moves_an_old_chromas_database_to_the_newest() {
    let oldest = older_versions()
        .first()
        .cloned()
        .expect(".ci/chroma-versions lists a version");
    let (old, main) = (Chroma::older(&oldest), Chroma::main());
    let tmp = tempfile::tempdir().unwrap();
    let old_dir = tmp.path().join("old");
    let server = old.start(&old_dir);
    old.write_data(&server);
    server.stop();
    let new_dir = tmp.path().join("new");
    let run = vecdrill_command()
        .current_dir(tmp.path())
        .arg("run")
        .arg(project_root().join("scenarios/upgrade.yaml"))
        .args(["--report-dir", tmp.path().join("reports").to_str().unwrap()])
        .args(["--var", &format!("old_chroma={}", old.bin.display())])
        .args(["--var", &format!("new_chroma={}", main.bin.display())])
        .args(["--var", &format!("old_dir={}", old_dir.display())])
        .args(["--var", &format!("new_dir={}", new_dir.display())])
        .args(["--var", &format!("old_port={}", free_port())])
        .args(["--var", &format!("new_port={}", free_port())])
        .args([
            "--var",
            &format!("repo={}", tmp.path().join("repo").display()),
        ])
        .args([
            "--var",
            &format!("export={}", tmp.path().join("export.jsonl").display()),
        ])
        .arg("--json")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let step = |id: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}: {report}"))
            .clone()
    };
    assert_eq!(step("verify")["outputs"]["counts_equal"], true, "{report}");
    assert!(step("verify")["outputs"]["mean_overlap"].as_f64() >= Some(0.9));
    assert_eq!(step("import")["outputs"]["records"], 3 * 329);
    assert!(
        report["rto_ms"].as_f64().is_some(),
        "the cutover is timed: {report}"
    );
    // The old server went down with the drill; the new directory holds a database the new
    // version wrote, with every collection's space.
    assert!(!old_dir.with_extension("upgrade.pid").exists());
    let copy = export_api_of(&main, &new_dir, &tmp.path().join("after.jsonl"));
    for (name, want_space) in COLLECTIONS {
        let header = copy.collections.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(space(header), want_space, "{name}");
        assert_eq!(copy.records[name].len(), 329, "{name}");
    }
}

/// What `chroma`'s server on `dir` exports.
fn export_api_of(chroma: &Chroma, dir: &Path, out: &Path) -> Export {
    let server = chroma.start(dir);
    let export = export_api(&server.url(), out);
    server.stop();
    export
}
