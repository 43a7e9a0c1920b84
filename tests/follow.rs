//! Issue 23: `vecdrill follow` ships Chroma's write-ahead log, `restore --at` reaches any
//! second it covers. Real servers, a real writer (Chroma's own Python client), and the
//! restored directory served by Chroma again and read back whole.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    chroma_bin, project_root, prometheus_samples, repo_url, vecdrill, vecdrill_command,
    ChromaServer, Webhook,
};

/// A fresh Chroma directory served by a server of `bin`, and where its repository goes.
struct Live {
    tmp: tempfile::TempDir,
    data: PathBuf,
    repo: String,
    server: ChromaServer,
}

fn live(bin: &Path) -> Live {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    std::fs::create_dir(&data).unwrap();
    let repo = repo_url(&tmp.path().join("repo"));
    let server = ChromaServer::start_with(bin, &data);
    Live {
        tmp,
        data,
        repo,
        server,
    }
}

/// The Python of the Chroma whose `chroma` command is `bin`.
fn python_of(bin: &Path) -> PathBuf {
    bin.with_file_name("python")
}

/// Run the writer fixture's `plan` against `server`: the writer's own record of what the
/// database held at each mark.
fn write(bin: &Path, server: &ChromaServer, plan: Value) -> Value {
    let output = Command::new(python_of(bin))
        .arg(project_root().join("tests/fixtures/log_writer.py"))
        .args(["write", "127.0.0.1", &server.port.to_string()])
        .arg(plan.to_string())
        .output()
        .expect("run the writer");
    assert!(
        output.status.success(),
        "writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the writer's record")
}

/// Every collection's records (id to document) as a server on `dir` answers them.
fn served(bin: &Path, dir: &Path) -> Value {
    let server = ChromaServer::start_with(bin, dir);
    let output = Command::new(python_of(bin))
        .arg(project_root().join("tests/fixtures/log_writer.py"))
        .args(["dump", "127.0.0.1", &server.port.to_string()])
        .output()
        .expect("run the reader");
    assert!(
        output.status.success(),
        "reader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop();
    serde_json::from_slice(&output.stdout).expect("the records")
}

/// `vecdrill follow --repo REPO --chroma-dir DATA --take-over-purge --once --json`.
fn follow_once_args(repo: &str, data: &Path) -> Vec<String> {
    [
        "follow",
        "--repo",
        repo,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--take-over-purge",
        "--once",
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

fn follow_once(repo: &str, data: &Path, extra: &[&str]) -> Value {
    let mut args = follow_once_args(repo, data);
    args.extend(extra.iter().map(|a| a.to_string()));
    vecdrill(args).expect_code(0).json()
}

fn restore_at(repo: &str, at: &str, to: &Path) -> crate::common::Run {
    vecdrill([
        "restore",
        "--repo",
        repo,
        "--at",
        at,
        "--to",
        to.to_str().unwrap(),
        "--json",
    ])
}

/// A whole second as `--at` takes it.
fn second(mark: &Value) -> String {
    let seconds = mark["second"].as_i64().expect("a mark's second");
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339()
}

fn sql(data: &Path, query: &str) -> String {
    let conn = rusqlite::Connection::open(data.join("chroma.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn.prepare(query).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        out.push(match row.get_ref(0).unwrap() {
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            rusqlite::types::ValueRef::Null => "NULL".into(),
            other => format!("{other:?}"),
        });
    }
    out.join("\n")
}

fn purges_itself(data: &Path) -> bool {
    sql(data, "SELECT config_json_str FROM embeddings_queue_config")
        .contains("\"automatically_purge\":true")
}

#[test]
fn issue_23_restore_at_each_moment_gives_back_exactly_what_the_writer_had_then() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);

    let before_base = write(
        &bin,
        &server,
        json!([
            // Its vector index written every 10 records: files a drop must remove.
            {"create": "docs", "sync": 10},
            {"add": "docs", "from": 0, "to": 30},
            {"create": "keep"},
            {"add": "keep", "from": 0, "to": 5},
            {"mark": "m0"}
        ]),
    );
    // The first follow takes the base backup, then ships nothing new.
    let first = follow_once(&repo, &data, &[]);
    assert_eq!(first["bases_taken"], 1, "{first:#}");
    assert!(!purges_itself(&data), "--once keeps the purge taken over");

    let mut record = write(
        &bin,
        &server,
        json!([
            {"add": "docs", "from": 30, "to": 60},
            {"update": "docs", "from": 0, "to": 10},
            {"mark": "m1"},
            // Created after the base: a restore recreates it from the shipped catalog.
            {"create": "late"},
            {"add": "late", "from": 0, "to": 20},
            {"delete": "docs", "from": 50, "to": 60},
            {"mark": "m2"},
            {"add": "late", "from": 20, "to": 25},
            {"add": "keep", "from": 5, "to": 8}
        ]),
    );
    let mut shipped = vec![follow_once(&repo, &data, &[])];
    // Dropped once shipped: its rows leave the log, the chain goes on. The follower reads the
    // catalog once per pass; one pass sees the drop before the next moment is marked.
    write(&bin, &server, json!([{"drop": "late"}]));
    shipped.push(follow_once(&repo, &data, &[]));
    let phase = write(
        &bin,
        &server,
        json!([
            {"add": "docs", "from": 60, "to": 65},
            {"mark": "m3"},
            {"add": "keep", "from": 8, "to": 10}
        ]),
    );
    record["marks"]["m3"] = phase["marks"]["m3"].clone();
    shipped.push(follow_once(&repo, &data, &[]));
    // The disaster: a collection the base has, dropped by mistake. Until a pass reads the
    // catalog, whether it was there is not known.
    let phase = write(
        &bin,
        &server,
        json!([{"drop": "docs"}, {"mark": "unknown"}]),
    );
    record["marks"]["unknown"] = phase["marks"]["unknown"].clone();
    shipped.push(follow_once(&repo, &data, &[]));
    let phase = write(
        &bin,
        &server,
        json!([{"add": "keep", "from": 10, "to": 12}, {"mark": "m4"}]),
    );
    record["marks"]["m4"] = phase["marks"]["m4"].clone();
    shipped.push(follow_once(&repo, &data, &[]));
    for pass in &shipped {
        assert_eq!(pass["bases_taken"], 0, "{pass:#}");
        assert_eq!(pass["gaps"], 0, "{pass:#}");
        assert_eq!(pass["base"], first["base"], "{pass:#}");
    }
    server.stop();

    for mark in ["m1", "m2", "m3"] {
        let mark = &record["marks"][mark];
        let to = tmp.path().join(format!("restored-{}", mark["second"]));
        let restored = restore_at(&repo, &second(mark), &to).expect_code(0).json();
        assert_eq!(restored["status"], "restored", "{restored:#}");
        assert_eq!(
            served(&bin, &to),
            mark["state"],
            "restore --at {} differs from the writer's record",
            second(mark)
        );
        // The follower's base had the purge off; the restored database purges as before.
        assert!(purges_itself(&to));
    }
    let m2 = restore_at(
        &repo,
        &second(&record["marks"]["m2"]),
        &tmp.path().join("again"),
    )
    .expect_code(0)
    .json();
    assert_eq!(m2["point_in_time"]["created"], json!(["late"]), "{m2:#}");

    // Before the base's newest write: nothing restores that second.
    let early = chrono::DateTime::from_timestamp(
        before_base["marks"]["m0"]["second"].as_i64().unwrap() - 60,
        0,
    )
    .unwrap()
    .to_rfc3339();
    let refused = restore_at(&repo, &early, &tmp.path().join("early"));
    refused.expect_code(2);
    assert!(
        refused
            .stderr()
            .contains("it can be restored to any second of:"),
        "{}",
        refused.stderr()
    );
    assert!(!tmp.path().join("early").exists());

    // Between the last read that saw the collection and the first that did not: refused.
    let unknown = restore_at(
        &repo,
        &second(&record["marks"]["unknown"]),
        &tmp.path().join("unknown"),
    );
    unknown.expect_code(2);
    assert!(
        unknown.stderr().contains("docs") && unknown.stderr().contains("is not known"),
        "{}",
        unknown.stderr()
    );
    assert!(!tmp.path().join("unknown").exists());

    // After a collection the base holds was dropped: dropped from the restored copy too
    // (its records, segments and vector index files), and the copy passes every check.
    let dropped = tmp.path().join("dropped");
    let restored = restore_at(&repo, &second(&record["marks"]["m4"]), &dropped)
        .expect_code(0)
        .json();
    assert_eq!(
        restored["point_in_time"]["dropped"],
        json!(["docs"]),
        "{restored:#}"
    );
    let before_drop = tmp
        .path()
        .join(format!("restored-{}", record["marks"]["m3"]["second"]));
    let docs_index = sql(
        &before_drop,
        "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection WHERE c.name = 'docs' AND s.scope = 'VECTOR'",
    );
    assert!(before_drop.join(&docs_index).is_dir(), "{docs_index}");
    assert!(!dropped.join(&docs_index).exists());
    assert_eq!(served(&bin, &dropped), record["marks"]["m4"]["state"]);

    // The dry run says which base and how many rows, and changes nothing.
    let plan = vecdrill([
        "restore",
        "--repo",
        &repo,
        "--at",
        &second(&record["marks"]["m1"]),
        "--to",
        tmp.path().join("planned").to_str().unwrap(),
        "--dry-run",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(plan["status"], "plan");
    assert_eq!(plan["backup"], first["base"]);
    // 30 adds and 10 updates after the base, one row each.
    assert_eq!(plan["point_in_time"]["rows"], 40, "{plan:#}");
    assert!(!tmp.path().join("planned").exists());

    // verify reads every chain back; a damaged segment breaks its chain there, and a moment
    // past the break is refused while one before it still restores.
    let verified = vecdrill(["verify", "--repo", &repo]);
    verified.expect_code(0);
    assert!(
        verified.stdout().contains("log_chain"),
        "{}",
        verified.stdout()
    );
    let chain_dir = tmp
        .path()
        .join("repo/logs")
        .join(first["base"].as_str().unwrap());
    let mut segments = crate::common::names_in(&chain_dir);
    segments.sort();
    assert_eq!(segments.len(), 6, "{segments:?}");
    // `list` tells a chain's reach from its listing, state and last segment: whole, it
    // reaches the last moment restored above; with a hole, only up to the hole.
    let listed_log = || {
        let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == first["base"])
            .unwrap()["log"]
            .clone()
    };
    let reaches_until = |log: &Value| {
        chrono::DateTime::parse_from_rfc3339(log["restores_until"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let m4 = record["marks"]["m4"]["second"].as_i64().unwrap();
    let whole = listed_log();
    assert_eq!(whole["segments"], 6, "{whole:#}");
    assert!(whole["broken"].is_null(), "{whole:#}");
    assert!(reaches_until(&whole) >= m4, "{whole:#}");

    // Segments are read ahead of the one being checked: a damaged third segment is still the
    // break named, not a hole after it, and once it is mended the hole is.
    crate::common::flip_byte(&chain_dir.join(&segments[2]), 200);
    let fifth = std::fs::read(chain_dir.join(&segments[4])).unwrap();
    std::fs::remove_file(chain_dir.join(&segments[4])).unwrap();
    let holed = listed_log();
    assert_eq!(holed["segments"], 4, "{holed:#}");
    assert_eq!(holed["broken"], "segment 5 is missing", "{holed:#}");
    assert!(reaches_until(&holed) < m4, "{holed:#}");
    let verified = vecdrill(["verify", "--repo", &repo]);
    verified.expect_code(1);
    assert!(
        verified.stdout().contains("then breaks")
            && verified
                .stdout()
                .contains(&segments[2].replace(".json", ""))
            && !verified.stdout().contains("missing"),
        "{}",
        verified.stdout()
    );
    crate::common::flip_byte(&chain_dir.join(&segments[2]), 200);
    let verified = vecdrill(["verify", "--repo", &repo]);
    verified.expect_code(1);
    assert!(
        verified
            .stdout()
            .contains("then breaks: segment 5 is missing"),
        "{}",
        verified.stdout()
    );
    std::fs::write(chain_dir.join(&segments[4]), fifth).unwrap();
    crate::common::flip_byte(&chain_dir.join(&segments[2]), 200);
    restore_at(
        &repo,
        &second(&record["marks"]["m1"]),
        &tmp.path().join("before-break"),
    )
    .expect_code(0);
    let past = restore_at(
        &repo,
        &second(&record["marks"]["m3"]),
        &tmp.path().join("past"),
    );
    past.expect_code(2);
    assert!(!tmp.path().join("past").exists());
}

/// A follower as a process: started, then stopped by a signal.
struct Follower {
    child: Child,
}

impl Follower {
    fn start(repo: &str, data: &Path, extra: &[&str]) -> Self {
        let child = vecdrill_command()
            .args(["follow", "--repo", repo, "--chroma-dir"])
            .arg(data)
            .args(["--take-over-purge", "--interval", "200ms", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the follower");
        Self { child }
    }

    fn stop(self, signal: &str) -> (i32, Value) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        let output = self.child.wait_with_output().unwrap();
        let code = output.status.code().unwrap_or(-1);
        let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        assert!(
            code != 0 || report.is_object(),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (code, report)
    }
}

/// The samples of a metrics file by name (first label set).
fn metric(path: &Path, name: &str) -> Option<f64> {
    if !path.exists() {
        return None;
    }
    prometheus_samples(path)
        .into_iter()
        .find(|(sample, _)| sample.starts_with(name))
        .map(|(_, value)| value)
}

#[test]
fn issue_23_a_running_follower_keeps_up_and_gives_the_purge_back_when_stopped() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);
    let metrics = tmp.path().join("follow.prom");
    write(
        &bin,
        &server,
        json!([{"create": "docs"}, {"add": "docs", "from": 0, "to": 10}]),
    );
    assert!(purges_itself(&data));

    // A new base every 2 s: the writes below span at least one.
    let follower = Follower::start(
        &repo,
        &data,
        &[
            "--metrics-file",
            metrics.to_str().unwrap(),
            "--base-every",
            "2s",
        ],
    );
    let record = write(
        &bin,
        &server,
        json!([
            {"add": "docs", "from": 10, "to": 20},
            {"mark": "early"},
            {"add": "docs", "from": 20, "to": 40},
            {"delete": "docs", "from": 0, "to": 5},
            {"mark": "end"}
        ]),
    );
    let newest: f64 = sql(&data, "SELECT MAX(seq_id) FROM embeddings_queue")
        .parse()
        .unwrap();
    // The follower ships on its own: wait (bounded) until it says it has the newest row.
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&metrics, "vecdrill_log_last_shipped_seq") != Some(newest) {
        assert!(
            Instant::now() < deadline,
            "the follower never shipped row {newest}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!purges_itself(&data), "following takes the purge over");
    assert_eq!(metric(&metrics, "vecdrill_log_gaps_total"), Some(0.0));
    let lag = metric(&metrics, "vecdrill_log_lag_seconds").unwrap();
    assert!((0.0..60.0).contains(&lag), "lag {lag}");
    // The server crashes under the follower, which goes on reading its files.
    server.crash();
    std::thread::sleep(Duration::from_millis(500));

    let (code, report) = follower.stop("-TERM");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["purge_restored"], true, "{report:#}");
    assert!(purges_itself(&data), "the purge switch is set back on");
    assert_eq!(report["through"].as_f64(), Some(newest), "{report:#}");

    assert!(report["bases_taken"].as_u64().unwrap() >= 2, "{report:#}");
    // The chains meet across each new base: one window, no second between two chains that
    // neither restores (the old chain ships what was written while the new base was taken).
    let listed = vecdrill(["list", "--repo", &repo]);
    let windows = listed
        .stdout()
        .lines()
        .find(|line| line.contains("restores to any second"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !windows.is_empty() && !windows.contains(';'),
        "{}",
        listed.stdout()
    );

    // Either side of a base taken while following: each moment from its own chain.
    let mut bases = Vec::new();
    for mark in ["early", "end"] {
        let to = tmp.path().join(format!("restored-{mark}"));
        let restored = restore_at(&repo, &second(&record["marks"][mark]), &to)
            .expect_code(0)
            .json();
        bases.push(restored["backup"].clone());
        assert_eq!(served(&bin, &to), record["marks"][mark]["state"], "{mark}");
    }
    assert_ne!(bases[0], bases[1], "the two moments came from one base");
}

#[test]
fn issue_23_rows_gone_before_they_were_shipped_are_a_loud_gap_healed_by_a_new_base() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);
    let metrics = tmp.path().join("follow.prom");
    let hook = Webhook::start(&[]);
    // A vector index written every 10 records: Chroma can purge what it has applied.
    write(
        &bin,
        &server,
        json!([{"create": "docs", "sync": 10}, {"add": "docs", "from": 0, "to": 10}]),
    );
    let first = follow_once(&repo, &data, &[]);
    // The purge switch is turned back on behind the follower's back (a restart with the
    // default configuration), and Chroma purges rows nobody shipped.
    sql(
        &data,
        "UPDATE embeddings_queue_config SET config_json_str = '{\"automatically_purge\":true,\"_type\":\"EmbeddingsQueueConfigurationInternal\"}' RETURNING id",
    );
    let record = write(
        &bin,
        &server,
        json!([
            {"add": "docs", "from": 10, "to": 15},
            {"mark": "mid"},
            {"add": "docs", "from": 15, "to": 40},
            {"mark": "m1"}
        ]),
    );
    let through = first["through"].as_i64().unwrap();
    assert_eq!(
        sql(
            &data,
            &format!("SELECT COUNT(*) FROM embeddings_queue WHERE seq_id = {through}")
        ),
        "0",
        "Chroma purged the rows it applied"
    );
    let url = hook.url();
    let healed = follow_once(
        &repo,
        &data,
        &[
            "--notify",
            &url,
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(healed["gaps"], 1, "{healed:#}");
    assert_eq!(healed["bases_taken"], 1, "{healed:#}");
    assert_ne!(healed["base"], first["base"]);
    assert_eq!(metric(&metrics, "vecdrill_log_gaps_total"), Some(1.0));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "log_gap");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap()
            .contains("gap in the shipped log"),
        "{bodies:?}"
    );
    server.stop();

    // The new base holds what the live database held then; a moment between the old chain's
    // last read and the new base, inside the gap, is refused.
    let to = tmp.path().join("restored");
    let base = healed["base"].as_str().unwrap();
    crate::common::restore_run(&repo, base, &to, &[]).expect_code(0);
    assert!(
        purges_itself(&to),
        "a plain restore of a follower's base gives the purge back"
    );
    assert_eq!(served(&bin, &to), record["marks"]["m1"]["state"]);
    let inside = restore_at(
        &repo,
        &second(&record["marks"]["mid"]),
        &tmp.path().join("gap"),
    );
    inside.expect_code(2);
    assert!(
        inside
            .stderr()
            .contains("it can be restored to any second of:"),
        "{}",
        inside.stderr()
    );
    assert!(!tmp.path().join("gap").exists());

    // The shipped log is checked like the backups: behind by more than asked fails.
    let check = |max: &str| {
        vecdrill(["check", "--repo", &repo, "--max-log-lag", max, "--json"]).json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "log_lag")
            .cloned()
            .unwrap()
    };
    assert_eq!(check("1h")["passed"], true);
    assert_eq!(check("0s")["passed"], false);

    // The old base's chain goes with it when the base is pruned.
    vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]).expect_code(0);
    let chains = crate::common::names_in(&tmp.path().join("repo/logs"));
    assert_eq!(chains, vec![base.to_string()]);
    assert!(!tmp
        .path()
        .join("repo/follow")
        .join(format!("{}.json", first["base"].as_str().unwrap()))
        .exists());
}

#[test]
fn issue_23_every_chroma_line_with_the_purge_switch_is_followed_and_restored_to_a_moment() {
    use crate::versions::{older_versions, wanted, Chroma};
    let mut lines: Vec<Chroma> = older_versions()
        .iter()
        .filter(|v| wanted(v))
        .map(|v| Chroma::older(v))
        .collect();
    lines.push(Chroma::main());
    let mut followed = Vec::new();
    for chroma in lines {
        let Live {
            tmp,
            data,
            repo,
            server,
        } = live(&chroma.bin);
        write(
            &chroma.bin,
            &server,
            json!([{"create": "docs"}, {"add": "docs", "from": 0, "to": 20}]),
        );
        let args = follow_once_args(&repo, &data);
        let switch = purge_switch_of(&data);
        if switch.is_none() {
            // 0.4 (and 0.5 before 0.5.23): no switch, so no following.
            let refused = vecdrill(&args);
            refused.expect_code(2);
            assert!(
                refused.stderr().contains("0.5.23"),
                "Chroma {}: {}",
                chroma.version,
                refused.stderr()
            );
            assert!(!tmp.path().join("repo/logs").exists());
            assert!(
                chroma.version.starts_with("0.4."),
                "Chroma {} has no purge switch",
                chroma.version
            );
            continue;
        }
        vecdrill(&args).expect_code(0);
        let record = write(
            &chroma.bin,
            &server,
            json!([
                {"add": "docs", "from": 20, "to": 40},
                {"update": "docs", "from": 0, "to": 5},
                {"delete": "docs", "from": 35, "to": 40},
                {"create": "late"},
                {"add": "late", "from": 0, "to": 10},
                {"mark": "m1"},
                {"add": "docs", "from": 40, "to": 45}
            ]),
        );
        let shipped = vecdrill(&args).expect_code(0).json();
        assert_eq!(shipped["gaps"], 0, "Chroma {}: {shipped:#}", chroma.version);
        server.stop();
        let to = tmp.path().join("restored");
        restore_at(&repo, &second(&record["marks"]["m1"]), &to).expect_code(0);
        assert_eq!(
            served(&chroma.bin, &to),
            record["marks"]["m1"]["state"],
            "Chroma {}: restore --at differs from the writer's record",
            chroma.version
        );
        followed.push(chroma.version);
    }
    assert!(!followed.is_empty(), "no Chroma line was followed");
}

/// Whether Chroma in `data` has the purge switch (0.5.23 onward) and how it is set.
fn purge_switch_of(data: &Path) -> Option<bool> {
    let has = sql(
        data,
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'embeddings_queue_config'",
    );
    (has == "1").then(|| purges_itself(data))
}

/// Every record of every collection in the Chroma directory `dir`, read offline (the log
/// still to replay included), by collection and id.
fn records_in(dir: &Path, scratch: &Path) -> std::collections::BTreeMap<String, Value> {
    let out = scratch.join("records.jsonl");
    vecdrill([
        "export",
        "--chroma-dir",
        dir.to_str().unwrap(),
        "--all",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    let export = crate::common::read_export(&out);
    std::fs::remove_file(&out).unwrap();
    export
        .records
        .iter()
        .map(|(name, records)| {
            (
                name.clone(),
                serde_json::to_value(crate::common::by_id(records)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn issue_23_a_follower_killed_at_counted_calls_loses_no_row_and_ships_none_twice() {
    use crate::common::copy_tree;
    use crate::faults::{counts, killed_at, KINDS};
    let bin = chroma_bin();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    let repo_dir = tmp.path().join("repo");
    std::fs::create_dir(&data).unwrap();
    let repo = repo_url(&repo_dir);
    let server = ChromaServer::start_with(&bin, &data);
    write(
        &bin,
        &server,
        // A vector index written every 10 records: the follower purges what it applied.
        json!([{"create": "docs", "sync": 10}, {"add": "docs", "from": 0, "to": 20}]),
    );
    follow_once(&repo, &data, &[]);
    let record = write(
        &bin,
        &server,
        json!([
            {"add": "docs", "from": 20, "to": 50},
            {"update": "docs", "from": 0, "to": 5},
            {"create": "late", "sync": 10},
            {"add": "late", "from": 0, "to": 10},
            {"delete": "docs", "from": 45, "to": 50},
            {"mark": "m1"}
        ]),
    );
    server.stop();
    // Every kill point starts from the same data and repository, at the same paths (a
    // chain belongs to the path it follows).
    let (pristine_data, pristine_repo) = (tmp.path().join("p-chroma"), tmp.path().join("p-repo"));
    copy_tree(&data, &pristine_data);
    copy_tree(&repo_dir, &pristine_repo);
    let reset = || {
        for (live, pristine) in [(&data, &pristine_data), (&repo_dir, &pristine_repo)] {
            std::fs::remove_dir_all(live).unwrap();
            copy_tree(pristine, live);
        }
    };
    let m1 = second(&record["marks"]["m1"]);
    let follow_args = follow_once_args(&repo, &data);
    let follow_args: Vec<&str> = follow_args.iter().map(String::as_str).collect();

    // What an uninterrupted follower makes restorable, proven against the writer's record.
    let uninterrupted = follow_once(&repo, &data, &[]);
    assert!(
        uninterrupted["rows_purged"].as_u64().unwrap() > 0,
        "{uninterrupted:#}"
    );
    let reference_dir = tmp.path().join("reference");
    restore_at(&repo, &m1, &reference_dir).expect_code(0);
    assert_eq!(served(&bin, &reference_dir), record["marks"]["m1"]["state"]);
    let reference = records_in(&reference_dir, tmp.path());

    let mut kills = 0;
    let mut by_kind = std::collections::BTreeMap::new();
    for (kind, syscalls) in KINDS
        .iter()
        .filter(|(kind, _)| matches!(*kind, "rename" | "fsync" | "unlink" | "write"))
    {
        for n in counts() {
            reset();
            let killed = killed_at(syscalls, n, &follow_args);
            // The next follower finds the chain as the killed one left it and finishes it.
            let next = follow_once(&repo, &data, &[]);
            let at = format!("killed at {kind} {n}");
            assert_eq!(next["gaps"], 0, "{at}: {next:#}");
            assert_eq!(next["bases_taken"], 0, "{at}: {next:#}");
            let verified = vecdrill(["verify", "--repo", &repo]);
            assert_eq!(verified.code(), 0, "{at}: {}", verified.stdout());
            let to = tmp.path().join("restored");
            let _ = std::fs::remove_dir_all(&to);
            restore_at(&repo, &m1, &to).expect_code(0);
            assert_eq!(records_in(&to, tmp.path()), reference, "{at}");
            if !killed {
                break;
            }
            kills += 1;
            *by_kind.entry(*kind).or_insert(0) += 1;
        }
    }
    // Every kind of call is met by a kill: the segment's write and rename, the purge's
    // journal and its removal.
    assert_eq!(by_kind.len(), 4, "kills by kind: {by_kind:?}");
    assert!(kills >= 10, "only {kills} kills landed: {by_kind:?}");
}

/// `scenarios/point-in-time.yaml` with its data, repository and port in `dir`.
fn point_in_time_drill(dir: &Path, extra: &[String]) -> crate::common::Run {
    let mut vars = vec![
        format!("data_dir={}", dir.join("chroma").display()),
        format!("repo=file://{}", dir.join("repo").display()),
        format!("port={}", crate::common::free_port()),
        format!("chroma={}", chroma_bin().display()),
        "records=500".to_string(),
    ];
    vars.extend(extra.iter().cloned());
    crate::common::run_scenario(
        &project_root().join("scenarios/point-in-time.yaml"),
        &dir.join("reports"),
        &vars,
        &[],
    )
}

#[test]
fn issue_23_the_point_in_time_drill_brings_back_every_acknowledged_write_and_none_after() {
    let tmp = tempfile::tempdir().unwrap();
    let run = point_in_time_drill(tmp.path(), &[]);
    run.expect_code(0);
    let report = run.json();
    let compared = &crate::common::report_step(&report, "writes_back")["outputs"];
    assert!(
        compared["acknowledged"].as_u64().unwrap() > 10,
        "{compared:#}"
    );
    assert_eq!(compared["wrong"], 0, "{compared:#}");
    // The seeded records and the writer's: every acknowledged one, and the write that was in
    // flight (sent, not yet acknowledged) at the moment in or out. `expected_records` counts it
    // as done: an add in flight may be missing, a delete in flight may still be there.
    let recovered = compared["recovered_records"].as_u64().unwrap();
    let expected = compared["expected_records"].as_u64().unwrap();
    let in_flight = compared["in_flight"].as_u64().unwrap();
    assert_eq!(
        compared["count"].as_u64().unwrap(),
        500 + recovered,
        "{compared:#}"
    );
    assert!(
        (expected.saturating_sub(in_flight)..=expected + in_flight).contains(&recovered),
        "{compared:#}"
    );
    let rpo = crate::common::report_objective(&report, "rpo");
    assert_eq!(rpo["passed"], true, "{rpo:#}");
    // A second before the drop, to the second: between one and three seconds of writes.
    let measured = rpo["measured_value"].as_f64().unwrap();
    assert!((1000.0..3000.0).contains(&measured), "{rpo:#}");
    // The purge switch is Chroma's again once the drill is over.
    assert!(purges_itself(&tmp.path().join("chroma")));
    // The writer's record is in the report directory.
    let run_dir = report["run_dir"].as_str().unwrap();
    assert!(Path::new(run_dir).join("writes.json").is_file());
}

/// A base backup of 30 records, then writes after it with the moment `m1` marked among them,
/// shipped: the first follow pass's outcome and the writer's record.
fn base_then_moment(bin: &Path, server: &ChromaServer, repo: &str, data: &Path) -> (Value, Value) {
    write(
        bin,
        server,
        json!([{"create": "docs"}, {"add": "docs", "from": 0, "to": 30}]),
    );
    let first = follow_once(repo, data, &[]);
    let record = write(
        bin,
        server,
        json!([
            {"add": "docs", "from": 30, "to": 50},
            {"delete": "docs", "from": 0, "to": 5},
            {"create": "late"},
            {"add": "late", "from": 0, "to": 7},
            {"mark": "m1"},
            {"add": "docs", "from": 50, "to": 60}
        ]),
    );
    follow_once(repo, data, &[]);
    (first, record)
}

#[test]
fn issue_23_a_moment_is_proven_as_a_backup_is_served_and_counted_in_a_sandbox() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);
    let (first, record) = base_then_moment(&bin, &server, &repo, &data);
    server.stop();
    let server_cmd = format!("{} run --path {{dir}} --port {{port}}", bin.display());
    let reports = tmp.path().join("reports");
    let run = vecdrill([
        "prove",
        "--repo",
        &repo,
        "--at",
        &second(&record["marks"]["m1"]),
        "--server-cmd",
        &server_cmd,
        "--report-dir",
        reports.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let report = run.json();
    let counts = &crate::common::report_step(&report, "counts")["outputs"]["counts"];
    // The moment's counts, not the base's (30 records in docs, no late).
    assert_eq!(counts, &json!({"docs": 45, "late": 7}), "{report:#}");
    assert_eq!(
        crate::common::report_step(&report, "records")["status"],
        "passed"
    );
    // A moment's proof is not the base backup's.
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    let base = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == first["base"])
        .unwrap();
    assert!(base["proof"].is_null(), "{base:#}");
}

#[test]
fn issue_23_the_shipped_log_of_an_encrypted_repository_reveals_nothing() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);
    let repo_dir = tmp.path().join("repo");
    let password = [("VECDRILL_PASSWORD", "correct horse battery".to_string())];
    crate::common::vecdrill_env(["init", "--repo", &repo], &password).expect_code(0);
    write(
        &bin,
        &server,
        json!([{"create": "docs"}, {"add": "docs", "from": 0, "to": 5}]),
    );
    let follow = follow_once_args(&repo, &data);
    crate::common::vecdrill_env(&follow, &password).expect_code(0);
    let record = write(
        &bin,
        &server,
        json!([{"create": "secretive"}, {"add": "secretive", "from": 0, "to": 5}, {"mark": "m1"}]),
    );
    crate::common::vecdrill_env(&follow, &password).expect_code(0);
    server.stop();
    assert!(!crate::common::names_in(&repo_dir.join("logs")).is_empty());
    // No document, record id or collection name written after the base is readable in any
    // stored object.
    for file in crate::common::files_under(&repo_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in ["secretive", "r00003", "doc 3"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} reveals {needle:?}",
                file.display()
            );
        }
    }
    // Without the password, nothing restores; with it, the moment does.
    let to = tmp.path().join("restored");
    let args = [
        "restore",
        "--repo",
        &repo,
        "--at",
        &second(&record["marks"]["m1"]),
        "--to",
        to.to_str().unwrap(),
    ];
    crate::common::vecdrill_env(args, &[("VECDRILL_PASSWORD", "wrong".to_string())]).expect_code(2);
    crate::common::vecdrill_env(args, &password).expect_code(0);
    assert_eq!(served(&bin, &to), record["marks"]["m1"]["state"]);
}

#[test]
fn issue_25_a_copy_carries_the_shipped_log_and_restores_to_a_moment_from_it() {
    let bin = chroma_bin();
    let Live {
        tmp,
        data,
        repo,
        server,
    } = live(&bin);
    let (first, record) = base_then_moment(&bin, &server, &repo, &data);
    assert_eq!(first["bases_taken"], 1, "{first:#}");
    server.stop();

    let offsite = repo_url(&tmp.path().join("offsite"));
    let copy_all = || {
        vecdrill([
            "copy",
            "--from-repo",
            &repo,
            "--repo",
            &offsite,
            "--all",
            "--json",
        ])
        .expect_code(0)
        .json()
    };
    let copied = copy_all();
    let segments = copied["copies"][0]["log_segments"].as_u64().unwrap();
    assert!(segments >= 1, "{copied:#}");
    // Copied again: the chain is there already, nothing is sent.
    let again = copy_all();
    assert_eq!(again["copies"][0]["log_segments"], 0, "{again:#}");

    // The copy alone restores to the moment.
    let mark = &record["marks"]["m1"];
    let to = tmp.path().join("restored");
    let restored = restore_at(&offsite, &second(mark), &to)
        .expect_code(0)
        .json();
    assert_eq!(restored["status"], "restored", "{restored:#}");
    assert_eq!(served(&bin, &to), mark["state"]);
}
