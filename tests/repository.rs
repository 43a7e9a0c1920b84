//! The backup repository end to end: real Chroma directories, a local repository and an
//! S3-protocol server on loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use vecdrill::targets::chroma::state::{self, ProbeSettings};
use vecdrill::targets::chroma::ChromaClient;

use crate::common::{
    backup_json, backup_run, copy_tree, files_under, flip_byte, repo_url, seeded_data_dir,
    tree_hashes, vecdrill, vecdrill_env, ChromaServer, S3Server,
};

/// `vecdrill restore --repo REPO latest --to DIR --yes`.
fn restore_latest(repo: &str, to: &Path) -> crate::common::Run {
    crate::common::restore_run(repo, "latest", to, &[])
}

fn list(repo: &str) -> Vec<Value> {
    let run = vecdrill(["list", "--repo", repo, "--json"]);
    run.expect_code(0);
    run.json().as_array().unwrap().clone()
}

/// Counts and probe neighbours of a directory, read through a Chroma server started on it.
fn answers(data: &Path) -> state::TargetState {
    let server = ChromaServer::start(data);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime
        .block_on(state::capture(
            &ChromaClient::new(&server.url()),
            ProbeSettings { probes: 25, k: 10 },
            None,
        ))
        .unwrap();
    server.stop();
    state
}

// Counts are multiples of Chroma's sync threshold (1000), so the HNSW files hold every vector
// and a restarted server answers identically (see DESIGN.md on approximate search).
const COLLECTIONS: &[(&str, u64, usize)] = &[("docs", 3000, 32), ("faq", 2000, 16)];

#[test]
fn backup_corrupt_restore_answers_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), COLLECTIONS);
    let repo = repo_url(&tmp.path().join("repo"));
    let created = backup_json(&repo, &data, &["--tag", "before"]);
    let id = created["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = answers(&data);
    assert_eq!(before.total_count(), 5000);

    // Break the live data: garbage over the SQLite header, and a segment file gone.
    let sqlite = data.join("chroma.sqlite3");
    for offset in [0, 100, 4096] {
        flip_byte(&sqlite, offset);
    }
    let segment = files_under(&data)
        .into_iter()
        .find(|p| p.ends_with("data_level0.bin"))
        .unwrap();
    std::fs::remove_file(&segment).unwrap();
    let broken = tree_hashes(&data);

    let run = vecdrill([
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        data.to_str().unwrap(),
        "--yes",
        "--json",
    ]);
    run.expect_code(0);
    let outcome = run.json();
    assert_eq!(outcome["status"], "restored");
    assert_eq!(outcome["backup"], id);
    // The broken data is kept, untouched, as the safety copy.
    let safety = PathBuf::from(outcome["safety_copy"].as_str().expect("a safety copy"));
    assert_eq!(tree_hashes(&safety), broken);

    let after = answers(&data);
    assert_eq!(after.counts(), before.counts());
    for (name, collection) in &before.collections {
        let restored = &after.collections[name];
        for (a, b) in collection.probes.iter().zip(&restored.probes) {
            assert_eq!(
                a.neighbours, b.neighbours,
                "top-k of probe {} in {name}",
                a.source_id
            );
        }
    }

    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]);
    info.expect_code(0);
    let collections = info.json()["collections"].clone();
    assert_eq!(collections[0]["name"], "docs");
    assert_eq!(collections[0]["count"], 3000);
    assert_eq!(collections[0]["dimension"], 32);
    assert_eq!(collections[1]["count"], 2000);
}

/// A database whose full-text index no longer matches its documents (a write behind FTS5's
/// back: every b-tree is still sound) fails the backup's checks: the backup exits 1 naming
/// the check and the table, and the repository still holds only the good backup before it.
#[test]
fn a_damaged_database_is_refused_and_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 500, 16)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let good = backup_json(&repo, &data, &[]);
    let conn = rusqlite::Connection::open(data.join("chroma.sqlite3")).unwrap();
    let removed = conn
        .execute(
            "DELETE FROM embedding_fulltext_search_content WHERE rowid IN \
             (SELECT rowid FROM embedding_fulltext_search_content LIMIT 5)",
            [],
        )
        .unwrap();
    assert_eq!(removed, 5, "the seeded records have documents");
    drop(conn);

    let run = backup_run(&repo, &data, &[]);
    run.expect_code(1);
    let stderr = run.stderr();
    assert!(stderr.contains("not committed"), "{stderr}");
    assert!(
        stderr.contains("sqlite_integrity")
            && stderr.contains("FTS5 table main.embedding_fulltext_search"),
        "the failed check and the table are named: {stderr}"
    );
    let listed = list(&repo);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], good["backup"]["manifest"]["id"]);
}

/// A vector segment whose `index_metadata.pickle` no longer agrees with `header.bin` fails the
/// HNSW check, and one cut short fails to parse: each backup exits 1 naming the collection's
/// check, and nothing is committed.
#[test]
fn a_damaged_vector_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // 1000 records: Chroma's sync threshold, so the HNSW files hold them all.
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let pickle = files_under(&data)
        .into_iter()
        .find(|p| p.ends_with("index_metadata.pickle"))
        .expect("a flushed segment");
    let original = std::fs::read(&pickle).unwrap();
    let serde_pickle::Value::Dict(mut metadata) =
        serde_pickle::value_from_slice(&original, Default::default()).unwrap()
    else {
        panic!("index_metadata.pickle is a dict");
    };
    metadata.insert(
        serde_pickle::HashableValue::String("total_elements_added".into()),
        serde_pickle::Value::I64(1005),
    );
    let miscounted =
        serde_pickle::value_to_vec(&serde_pickle::Value::Dict(metadata), Default::default())
            .unwrap();

    for (damaged, expected) in [
        (
            miscounted,
            "index_metadata.pickle counts 1005 elements; header.bin 1000",
        ),
        (
            original[..original.len() / 2].to_vec(),
            "index_metadata.pickle does not parse",
        ),
    ] {
        std::fs::write(&pickle, damaged).unwrap();
        let run = backup_run(&repo, &data, &[]);
        run.expect_code(1);
        let stderr = run.stderr();
        assert!(
            stderr.contains("hnsw:docs") && stderr.contains(expected),
            "expected {expected:?}: {stderr}"
        );
    }
    std::fs::write(&pickle, &original).unwrap();

    // A header.bin whose element size no file could hold (1 TiB): refused by the checks, and
    // nothing reading the index beside them (the probe queries' scan) sizes a buffer by it.
    let header = files_under(&data)
        .into_iter()
        .find(|p| p.ends_with("header.bin"))
        .unwrap();
    let mut bytes = std::fs::read(&header).unwrap();
    bytes[28..36].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&header, bytes).unwrap();
    let run = backup_run(&repo, &data, &[]);
    run.expect_code(1);
    assert!(run.stderr().contains("hnsw:docs"), "{}", run.stderr());
    assert!(list(&repo).is_empty(), "nothing was committed");
}

#[test]
fn an_unchanged_rebackup_stores_under_one_percent_and_a_change_stores_about_the_change() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), COLLECTIONS);
    let repo = repo_url(&tmp.path().join("repo"));
    let first = backup_json(&repo, &data, &[]);
    let logical = first["backup"]["manifest"]["totals"]["logical_bytes"]
        .as_f64()
        .unwrap();
    let second = backup_json(&repo, &data, &[]);
    let stored = second["backup"]["manifest"]["totals"]["stored_bytes"]
        .as_f64()
        .unwrap();
    assert!(
        stored / logical < 0.01,
        "re-backup stored {stored} of {logical} bytes"
    );

    // Add 100 records in a new collection: the next backup stores the database file's changed
    // chunks and the new collection, never the untouched collections' index files again.
    let untouched: Vec<String> = first["backup"]["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().contains('/'))
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let server = ChromaServer::start(&data);
    vecdrill([
        "seed",
        "--url",
        &server.url(),
        "--collection",
        "faq-extra",
        "--count",
        "100",
        "--dim",
        "16",
        "--seed",
        "5",
    ])
    .expect_code(0);
    server.stop();
    let third = backup_json(&repo, &data, &[]);
    let manifest = &third["backup"]["manifest"];
    let new = manifest["totals"]["new_bytes"].as_f64().unwrap();
    let logical = manifest["totals"]["logical_bytes"].as_f64().unwrap();
    let unchanged: f64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            untouched
                .iter()
                .any(|dir| f["path"].as_str().unwrap().starts_with(dir.as_str()))
        })
        .map(|f| f["size"].as_f64().unwrap())
        .sum();
    assert!(unchanged > 0.0);
    eprintln!(
        "a change of 100 records stored {new} of {logical} bytes ({:.1}%)",
        100.0 * new / logical
    );
    assert!(
        new <= logical - unchanged,
        "stored {new} bytes, more than all but the {unchanged} untouched bytes of {logical}"
    );
    assert_eq!(list(&repo).len(), 3);
}

/// (name, passed, detail) of every check a `backup --json` reports.
fn checks_of(backup: &Value) -> Vec<(String, bool, String)> {
    backup["backup"]["manifest"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["passed"].as_bool().unwrap(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn checks_are_carried_over_only_for_files_a_checked_backup_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), COLLECTIONS);
    let repo = repo_url(&tmp.path().join("repo"));
    let first = backup_json(&repo, &data, &[]);
    let first_id = first["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first_checks = checks_of(&first);
    assert!(first_checks.iter().any(|c| c.0 == "sqlite_integrity"));
    assert!(first_checks.iter().any(|c| c.0.starts_with("hnsw:")));
    assert!(first_checks
        .iter()
        .all(|(_, passed, detail)| *passed && !detail.starts_with("unchanged")));

    // Nothing changed: every check is the first backup's, named as such, and so is the
    // description of the database.
    let second = backup_json(&repo, &data, &[]);
    let second_checks = checks_of(&second);
    assert_eq!(second_checks.len(), first_checks.len());
    for ((name, passed, detail), (first_name, _, first_detail)) in
        second_checks.iter().zip(&first_checks)
    {
        assert_eq!(name, first_name);
        assert!(passed);
        assert_eq!(
            detail,
            &format!("unchanged since backup {first_id}, which passed: {first_detail}")
        );
    }
    assert_eq!(
        second["backup"]["manifest"]["database"],
        first["backup"]["manifest"]["database"]
    );

    // One index file touched (a new mtime, same bytes): the database is still the one checked,
    // the index files are checked again.
    let header = files_under(&data)
        .into_iter()
        .find(|p| p.ends_with("header.bin"))
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&header)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let third = backup_json(&repo, &data, &[]);
    for (name, passed, detail) in checks_of(&third) {
        assert!(passed, "{name}: {detail}");
        if name == "sqlite_integrity" {
            assert!(
                detail.starts_with(&format!("unchanged since backup {first_id}, ")),
                "{detail}"
            );
        } else {
            assert!(
                !detail.starts_with("unchanged"),
                "{name} ran again: {detail}"
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_any_object_is_caught_and_never_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let pristine = tmp.path().join("pristine");
    backup_json(&repo_url(&pristine), &data, &[]);
    let objects: Vec<PathBuf> = files_under(&pristine)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/locks/"))
        .collect();
    let kinds: Vec<&str> = ["config", "snapshots/", "index/", "packs/"].to_vec();
    for kind in kinds {
        assert!(
            objects.iter().any(|o| o.to_string_lossy().contains(kind)),
            "no {kind} object"
        );
    }
    let target = tmp.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep-me"), "live data").unwrap();
    for object in &objects {
        let rel = object.strip_prefix(&pristine).unwrap();
        let copy = tmp.path().join("damaged");
        let _ = std::fs::remove_dir_all(&copy);
        copy_tree(&pristine, &copy);
        let victim = copy.join(rel);
        let len = std::fs::metadata(&victim).unwrap().len() as usize;
        flip_byte(&victim, len / 2);
        let repo = repo_url(&copy);

        let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
        assert_eq!(
            verify.code(),
            1,
            "verify missed a flipped byte in {}\n{}{}",
            rel.display(),
            verify.stdout(),
            verify.stderr()
        );
        let said = format!("{}{}", verify.stdout(), verify.stderr());
        let name = rel
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".json", "");
        assert!(
            said.contains(&*name) || said.contains("config"),
            "verify did not name {}: {said}",
            rel.display()
        );

        let restore = restore_latest(&repo, &target);
        assert_ne!(
            restore.code(),
            0,
            "restored from a repository with {} damaged",
            rel.display()
        );
        assert!(
            restore.stderr().contains("corrupt") || restore.stderr().contains("missing"),
            "{}",
            restore.stderr()
        );
        assert_eq!(
            std::fs::read_to_string(target.join("keep-me")).unwrap(),
            "live data"
        );
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            1,
            "restore left something behind"
        );
    }
}

/// A data directory with a large incompressible file beside the database, so a backup or a
/// restore runs long enough to be killed in the middle.
fn bulky_data_dir(root: &Path, megabytes: usize, seed: u8) -> PathBuf {
    let data = seeded_data_dir(root, &[("docs", 1000, 16)]);
    let mut bytes = vec![0u8; megabytes << 20];
    let mut state = 0x9e3779b97f4a7c15u64 ^ seed as u64;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(data.join("bulk.bin"), bytes).unwrap();
    data
}

fn kill_when(mut child: std::process::Child, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ready() {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the condition never came");
}

#[test]
fn sigkill_during_backup_leaves_only_complete_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bulky_data_dir(tmp.path(), 160, 1);
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    backup_json(&repo, &data, &[]);
    flip_byte(&data.join("bulk.bin"), 5); // so the next backup has new chunks to upload
    std::fs::write(
        data.join("bulk2.bin"),
        std::fs::read(data.join("bulk.bin"))
            .unwrap()
            .iter()
            .map(|b| b.wrapping_add(1))
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let packs_before = files_under(&repo_dir.join("packs")).len();
    let child = crate::common::vecdrill_command()
        .args([
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has uploaded at least one new pack, well before it can finish.
    let killed = kill_when(child, || {
        files_under(&repo_dir.join("packs")).len() > packs_before
    });
    assert!(killed, "the backup finished before it could be killed");
    assert_eq!(list(&repo).len(), 1, "a killed backup must not be listed");
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
    // The next backup completes and reuses what the killed one uploaded.
    let next = backup_json(&repo, &data, &[]);
    assert_eq!(list(&repo).len(), 2);
    let totals = &next["backup"]["manifest"]["totals"];
    assert!(totals["new_bytes"].as_u64() < totals["logical_bytes"].as_u64());
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
}

#[test]
fn sigkill_during_restore_leaves_the_live_directory_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let data = bulky_data_dir(tmp.path(), 160, 2);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let live = tmp.path().join("live");
    std::fs::create_dir_all(live.join("segment")).unwrap();
    std::fs::write(live.join("chroma.sqlite3"), "the live database").unwrap();
    std::fs::write(live.join("segment/data_level0.bin"), vec![7u8; 4096]).unwrap();
    let before = tree_hashes(&live);
    let child = crate::common::vecdrill_command()
        .args([
            "restore",
            "--repo",
            &repo,
            "latest",
            "--to",
            live.to_str().unwrap(),
            "--yes",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staging_has_data = || {
        std::fs::read_dir(tmp.path()).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains("vecdrill-restore") && !files_under(&e.path()).is_empty()
        })
    };
    assert!(
        kill_when(child, staging_has_data),
        "the restore finished before it could be killed"
    );
    assert_eq!(tree_hashes(&live), before, "the live directory changed");
    // Running it again replaces the leftover staging copy and completes.
    restore_latest(&repo, &live).expect_code(0);
    assert_eq!(tree_hashes(&live), tree_hashes(&data));
}

#[test]
fn prune_keeps_the_newest_and_every_chunk_a_kept_backup_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let repo = repo_url(&tmp.path().join("repo"));
    for i in 0..4u8 {
        std::fs::write(data.join("extra.bin"), vec![i; 3 << 20]).unwrap();
        backup_json(&repo, &data, &["--tag", &format!("n{i}")]);
    }
    let ids: Vec<String> = list(&repo)
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    let run = vecdrill([
        "prune",
        "--repo",
        &repo,
        "--keep-last",
        "2",
        "--dry-run",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["removed"].as_array().unwrap().len(), 2);
    assert_eq!(list(&repo).len(), 4, "--dry-run removed something");

    let run = vecdrill([
        "prune",
        "--repo",
        &repo,
        "--keep-last",
        "2",
        "--limit",
        "1",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["deferred"].as_array().unwrap().len(), 1);
    assert_eq!(list(&repo).len(), 3);

    let stats_before: Value = {
        let r = vecdrill(["stats", "--repo", &repo, "--json"]);
        r.expect_code(0);
        r.json()
    };
    let run = vecdrill(["prune", "--repo", &repo, "--keep-last", "1", "--json"]);
    run.expect_code(0);
    let remaining: Vec<String> = list(&repo)
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        remaining,
        vec![ids[3].clone()],
        "the newest backup must stay"
    );
    let stats_after: Value = {
        let r = vecdrill(["stats", "--repo", &repo, "--json"]);
        r.expect_code(0);
        r.json()
    };
    assert!(stats_after["stored_bytes"].as_u64() < stats_before["stored_bytes"].as_u64());
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
    let target = tmp.path().join("restored");
    restore_latest(&repo, &target).expect_code(0);
    assert_eq!(tree_hashes(&target), tree_hashes(&data));
}

#[test]
fn min_interval_keep_last_if_newer_and_a_directory_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &["--keep-last", "2"]);
    let skipped = backup_json(&repo, &data, &["--min-interval", "1h"]);
    assert_eq!(skipped["backup"]["status"], "skipped");
    for _ in 0..2 {
        backup_json(&repo, &data, &["--keep-last", "2"]);
    }
    assert_eq!(
        list(&repo).len(),
        2,
        "--keep-last 2 rotates after each backup"
    );

    // Restore-on-start: the local data is newer than nothing, older than the backup.
    let target = tmp.path().join("fresh");
    let run = vecdrill([
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        target.to_str().unwrap(),
        "--if-newer",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "restored");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(target.join("chroma.sqlite3-touch"), "newer local write").unwrap();
    let run = vecdrill([
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        target.to_str().unwrap(),
        "--if-newer",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "skipped");
    let run = vecdrill([
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        target.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "plan");
    assert!(
        target.join("chroma.sqlite3-touch").exists(),
        "--dry-run changed the directory"
    );

    // A directory a server holds is refused without a mode, and taken hot with one.
    let server = ChromaServer::start(&data);
    let run = backup_run(&repo, &data, &[]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("in use by a running server"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("--mode hot"), "{}", run.stderr());
    let hot = backup_json(&repo, &data, &["--mode", "hot"]);
    assert_eq!(hot["backup"]["manifest"]["capture"]["mode"], "hot");
    let run = restore_latest(&repo, &data);
    run.expect_code(2);
    assert!(
        run.stderr().contains("in use by a running server"),
        "{}",
        run.stderr()
    );
    server.stop();

    let run = vecdrill(["info", "--repo", &repo, "nope"]);
    run.expect_code(2);
    assert!(run.stderr().contains("vecdrill list"), "{}", run.stderr());
    let run = vecdrill(["list", "--repo", &repo_url(&tmp.path().join("not-a-repo"))]);
    run.expect_code(2);
}

#[test]
fn hot_backup_under_a_continuous_writer_restores_exactly_what_was_written() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use vecdrill::seed::RecordGenerator;

    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let server = ChromaServer::start(&data);
    let url = server.url();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, url) = (stop.clone(), written.clone(), url.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let client = ChromaClient::new(&url);
                let collection = client
                    .get_or_create_collection("stream", None)
                    .await
                    .unwrap();
                let mut generator = RecordGenerator::new(77, 16);
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = generator.batch(50);
                    batch.ids = batch.ids.iter().map(|id| format!("w-{id}")).collect();
                    client.add(&collection.id, &batch).await.unwrap();
                    written.fetch_add(50, Ordering::Relaxed);
                }
            });
        })
    };
    while written.load(Ordering::Relaxed) < 1500 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let repo = repo_url(&tmp.path().join("repo"));
    let hot = backup_json(&repo, &data, &["--mode", "hot", "--max-write-stall", "60s"]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    server.stop();
    let manifest = &hot["backup"]["manifest"];
    let recorded: u64 = manifest["database"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stream")
        .map(|c| c["count"].as_u64().unwrap())
        .unwrap();
    assert!(
        recorded >= 1500,
        "the backup holds {recorded} streamed records"
    );

    let restored = tmp.path().join("restored");
    restore_latest(&repo, &restored).expect_code(0);
    let server = ChromaServer::start(&restored);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ChromaClient::new(&server.url());
        let stream = client.collection("stream").await.unwrap();
        assert_eq!(client.count(&stream.id).await.unwrap(), recorded);
        let expected = RecordGenerator::new(77, 16).batch(recorded as usize);
        let mut offset = 0;
        while offset < recorded {
            let page = client
                .get_page(&stream.id, offset, 500, &["embeddings"])
                .await
                .unwrap();
            for (id, vector) in page.ids.iter().zip(page.embeddings.unwrap()) {
                let i: usize = id.trim_start_matches("w-rec-").parse().unwrap();
                assert!(
                    (i as u64) < recorded,
                    "record {id} is beyond what the backup counted"
                );
                assert_eq!(vector, expected.embeddings[i], "vector of {id}");
            }
            offset += 500;
        }
        let docs = client.collection("docs").await.unwrap();
        assert_eq!(client.count(&docs.id).await.unwrap(), 1000);
    });
}

/// Backup, an unchanged re-backup that stores nothing new, list, verify with the data read,
/// restore to the same bytes, prune, verify again: the same round trip on every storage
/// backend, through `repo` with `env` (the object store's settings).
pub(crate) fn storage_round_trip(
    repo: &str,
    env: &[(&'static str, String)],
    scratch: &Path,
    data: &Path,
) {
    let backup = || {
        let run = vecdrill_env(
            [
                "backup",
                "--repo",
                repo,
                "--chroma-dir",
                data.to_str().unwrap(),
                "--json",
            ],
            env,
        );
        run.expect_code(0);
        run.json()
    };
    let first = backup();
    let id = first["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        backup()["backup"]["manifest"]["totals"]["new_chunks"],
        0,
        "{repo}"
    );
    let run = vecdrill_env(["list", "--repo", repo, "--json"], env);
    run.expect_code(0);
    assert_eq!(run.json().as_array().unwrap().len(), 2, "{repo}");
    vecdrill_env(["verify", "--repo", repo, "--read-data"], env).expect_code(0);
    let target = scratch.join("restored");
    vecdrill_env(
        [
            "restore",
            "--repo",
            repo,
            &id,
            "--to",
            target.to_str().unwrap(),
            "--yes",
        ],
        env,
    )
    .expect_code(0);
    assert_eq!(tree_hashes(&target), tree_hashes(data), "{repo}");
    vecdrill_env(["prune", "--repo", repo, "--keep-last", "1"], env).expect_code(0);
    vecdrill_env(["verify", "--repo", repo, "--read-data"], env).expect_code(0);
}

#[test]
fn the_storage_round_trip_on_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), COLLECTIONS);
    let s3 = S3Server::start("drills");
    // A local folder needs no settings.
    let no_settings: Vec<(&'static str, String)> = Vec::new();
    let backends = [
        (
            "local folder",
            repo_url(&tmp.path().join("repo")),
            no_settings,
        ),
        ("S3", "s3://drills/chroma/prod".to_string(), s3.env()),
    ];
    for (name, repo, env) in &backends {
        let scratch = tmp.path().join(name.replace(' ', "-"));
        std::fs::create_dir_all(&scratch).unwrap();
        storage_round_trip(repo, env, &scratch, &data);
    }
    // A wrong endpoint is a runtime failure with a hint, not a hang.
    let mut bad = s3.env();
    bad.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    bad.push((
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", crate::common::free_port()),
    ));
    let run = vecdrill_env(["list", "--repo", "s3://drills/chroma/prod"], &bad);
    assert_eq!(run.code(), 3, "{}", run.stderr());
}

/// The in-memory backend lives as long as its process: the same round trip through the
/// library, in one process.
#[test]
fn the_storage_round_trip_in_memory() {
    use vecdrill::commands::backup::{backup, BackupOptions, BackupSettings, ChromaSource};
    use vecdrill::commands::verify::{verify, Backups, VerifyOptions};
    use vecdrill::progress::NoProgress;
    use vecdrill::repo::Repository;
    use vecdrill::targets::protect::{restore, BackupOutcome, RestoreRequest, RestoreSource};

    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), COLLECTIONS);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let repo = Repository::open_or_create("memory://").await.unwrap();
        let options = BackupOptions {
            source: Box::new(ChromaSource {
                dir: data.clone(),
                mode: None,
                staging_parent: None,
                read_all: false,
            }),
            settings: BackupSettings {
                tags: Vec::new(),
                max_write_stall: Duration::from_secs(30),
                min_interval: None,
            },
            keep_last: Some(1),
        };
        for _ in 0..2 {
            let backed = backup(&repo, &options, None, &NoProgress).await.unwrap();
            assert!(matches!(backed.outcome, BackupOutcome::Created { .. }));
        }
        // The rotation kept one.
        assert_eq!(repo.manifests().await.unwrap().len(), 1);
        let verification = verify(
            &repo,
            &VerifyOptions {
                backups: Backups::All,
                source: Default::default(),
                read_data: true,
                expect_match: Vec::new(),
            },
            &NoProgress,
        )
        .await
        .unwrap();
        assert!(verification.passed(), "{:?}", verification.failures());
        let target = tmp.path().join("restored");
        let request = RestoreRequest {
            backup: "latest".into(),
            source: Default::default(),
            to: target.clone(),
            keep_safety_copies: 1,
            if_newer: false,
            dry_run: false,
            then: None,
        };
        restore(RestoreSource::Repo(&repo), &request, &NoProgress)
            .await
            .unwrap();
        assert_eq!(tree_hashes(&target), tree_hashes(&data));
    });
}

#[test]
fn a_portable_archive_moves_a_backup_and_a_damaged_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 16)]);
    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    let archive = tmp.path().join("chroma.tar.zst");
    let run = vecdrill([
        "archive",
        "--repo",
        &repo,
        "latest",
        "--out",
        archive.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    assert!(run.json()["archive_bytes"].as_u64().unwrap() > 0);

    // On "another machine": no repository, only the file.
    let target = tmp.path().join("moved");
    let run = vecdrill([
        "restore",
        "--archive",
        archive.to_str().unwrap(),
        "--to",
        target.to_str().unwrap(),
        "--yes",
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "restored");
    assert_eq!(tree_hashes(&target), tree_hashes(&data));

    let bytes = std::fs::read(&archive).unwrap();
    let truncated = tmp.path().join("truncated.tar.zst");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let other = tmp.path().join("untouched");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep-me"), "live").unwrap();
    let run = vecdrill([
        "restore",
        "--archive",
        truncated.to_str().unwrap(),
        "--to",
        other.to_str().unwrap(),
        "--yes",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("truncated.tar.zst"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}
