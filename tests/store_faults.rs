//! Issue 17: an object store that fails. A fault-injecting proxy sits between vecdrill and a
//! real S3-protocol server (moto) and answers requests with connection resets, 500 and 503
//! (with and without `Retry-After`), slow answers, truncated bodies and a PUT that is stored
//! yet reported failed. Transient faults are retried by object_store and change nothing;
//! persistent ones end the command with exit 3 naming the object, and never leave a listed
//! backup that does not restore.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::s3_faults::{Fault, FaultyS3, Plan};
use crate::common::{copy_tree, seeded_data_dir, tree_hashes, vecdrill_env, Run, S3Server};

const REPO: &str = "s3://faults/chroma/prod";
/// A secret that must never reach output, whatever fails.
const SECRET: &str = "faults-secret-never-shown";

fn with_secret(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    for (key, value) in &mut env {
        if *key == "AWS_SECRET_ACCESS_KEY" {
            *value = SECRET.into();
        }
    }
    env
}

/// Run `vecdrill -v ARGS`; the secret is never in what it prints.
fn run(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut with_v = vec!["-v"];
    with_v.extend_from_slice(args);
    let run = vecdrill_env(with_v, env);
    assert!(
        !run.stdout().contains(SECRET) && !run.stderr().contains(SECRET),
        "the secret reached the output of {args:?}"
    );
    run
}

/// object_store's own retry lines at `-v`.
fn retries(run: &Run) -> usize {
    run.stderr()
        .lines()
        .filter(|l| l.contains("backing off") || l.to_lowercase().contains("retrying in"))
        .count()
}

fn backup_id(run: &Run) -> String {
    run.json()["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn restore(repo: &str, backup: &str, to: &Path, env: &[(&'static str, String)]) -> Run {
    run(
        &[
            "restore",
            "--repo",
            repo,
            backup,
            "--to",
            to.to_str().unwrap(),
            "--yes",
            "--no-safety-backup",
        ],
        env,
    )
}

/// Through the healthy server: the repository verifies and every listed backup restores to
/// data that was backed up.
fn nothing_lost(
    repo: &str,
    direct: &[(&'static str, String)],
    taken_of: &[BTreeMap<String, String>],
    scratch: &Path,
) {
    run(&["verify", "--repo", repo, "--read-data"], direct).expect_code(0);
    let listed = run(&["list", "--repo", repo, "--json"], direct);
    listed.expect_code(0);
    for backup in listed.json().as_array().unwrap() {
        let id = backup["id"].as_str().unwrap();
        let to = scratch.join(format!("check-{id}"));
        restore(repo, id, &to, direct).expect_code(0);
        assert!(
            taken_of.contains(&tree_hashes(&to)),
            "backup {id} restored data that was never backed up"
        );
        std::fs::remove_dir_all(&to).unwrap();
    }
}

/// The seeds the transient plan runs with: one in CI, ten with `VECDRILL_FAULTS=full`.
fn seeds() -> Vec<u64> {
    if std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full") {
        (17..27).collect()
    } else {
        vec![17]
    }
}

/// What one command met: runs, faults injected while it ran, object_store retries shown.
#[derive(Default)]
struct Met {
    runs: usize,
    faults: usize,
    retries: usize,
}

#[test]
fn issue_17_transient_store_faults_are_retried_and_change_nothing() {
    let s3 = S3Server::start("faults");
    let proxy = FaultyS3::start(s3.port, Plan::Healthy);
    let (env, direct) = (with_secret(proxy.env()), with_secret(s3.env()));
    let tmp = tempfile::tempdir().unwrap();
    let first = seeded_data_dir(&tmp.path().join("first"), &[("docs", 1500, 32)]);
    let second = tmp.path().join("second");
    copy_tree(&first, &second);
    std::fs::write(second.join("notes.bin"), vec![3u8; 2 << 20]).unwrap();
    let taken_of = [tree_hashes(&first), tree_hashes(&second)];
    let dir = |p: &Path| p.to_str().unwrap().to_string();
    let mut met: BTreeMap<String, Met> = BTreeMap::new();

    for seed in seeds() {
        let repo = format!("s3://faults/seed-{seed}");
        let repo = repo.as_str();
        proxy.set_plan(Plan::Transient {
            seed,
            percent: 40,
            in_a_row: 2,
        });
        // Every command succeeds through the faults.
        let mut ok = |args: &[&str]| {
            let injected_before: usize = proxy.injected().values().sum();
            let run = run(args, &env);
            run.expect_code(0);
            let tally = met.entry(args[0].to_string()).or_default();
            tally.runs += 1;
            tally.faults += proxy.injected().values().sum::<usize>() - injected_before;
            tally.retries += retries(&run);
            run
        };
        let one = backup_id(&ok(&[
            "backup",
            "--repo",
            repo,
            "--chroma-dir",
            &dir(&first),
            "--json",
        ]));
        let two = backup_id(&ok(&[
            "backup",
            "--repo",
            repo,
            "--chroma-dir",
            &dir(&second),
            "--json",
        ]));
        let listed = ok(&["list", "--repo", repo, "--json"]);
        assert_eq!(listed.json().as_array().unwrap().len(), 2);
        for (id, expected) in [(&one, &taken_of[0]), (&two, &taken_of[1])] {
            let to = tmp.path().join(format!("restored-{id}"));
            ok(&["restore", "--repo", repo, id, "--to", &dir(&to), "--yes"]);
            assert_eq!(
                &tree_hashes(&to),
                expected,
                "seed {seed}: backup {id} restored through faults"
            );
            std::fs::remove_dir_all(&to).unwrap();
        }
        ok(&["verify", "--repo", repo, "--read-data"]);
        ok(&["prune", "--repo", repo, "--keep-last", "1"]);
        ok(&["verify", "--repo", repo, "--read-data"]);
        proxy.set_plan(Plan::Healthy);
        nothing_lost(repo, &direct, &taken_of, tmp.path());
    }

    let injected = proxy.injected();
    for fault in Fault::ALL {
        assert!(
            injected.get(&fault).copied().unwrap_or(0) > 0,
            "no {fault:?} was injected: {injected:?}"
        );
    }
    // Reached only when every run succeeded, restored what was backed up, and the repository
    // verified through the healthy server afterwards.
    eprintln!("store faults injected by kind: {injected:?}");
    eprintln!("command  runs  faults injected  retries shown at -v  (all succeeded, nothing lost)");
    for (command, tally) in &met {
        eprintln!(
            "{command:<7} {:>5}  {:>15}  {:>19}",
            tally.runs, tally.faults, tally.retries
        );
    }
    // Every fault but a slow answer makes object_store retry, and says so at -v.
    let retried: usize = met.values().map(|m| m.retries).sum();
    assert!(retried > 0, "no retry was shown at -v");
}

/// A persistent fault: the command `what` fails with exit 3 naming an object under `names`
/// (or, where what failed is confirmed written, succeeds saying so), and nothing committed is
/// lost.
struct Persistent {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    fault: Fault,
    code: i32,
    names: &'static str,
}

#[test]
fn issue_17_persistent_store_faults_end_in_exit_3_naming_the_object() {
    let s3 = S3Server::start("faults");
    let proxy = FaultyS3::start(s3.port, Plan::Healthy);
    let (env, direct) = (with_secret(proxy.env()), with_secret(s3.env()));
    let tmp = tempfile::tempdir().unwrap();
    let first = seeded_data_dir(&tmp.path().join("first"), &[("docs", 800, 16)]);
    let second = tmp.path().join("second");
    copy_tree(&first, &second);
    std::fs::write(second.join("notes.bin"), vec![5u8; 1 << 20]).unwrap();
    let taken_of = [tree_hashes(&first), tree_hashes(&second)];
    let (first_dir, second_dir) = (first.to_str().unwrap(), second.to_str().unwrap());
    let one = backup_id(&run(
        &[
            "backup",
            "--repo",
            REPO,
            "--chroma-dir",
            first_dir,
            "--json",
        ],
        &env,
    ));

    let live = tmp.path().join("live");
    copy_tree(&first, &live);
    std::fs::write(live.join("local-only.txt"), "mine").unwrap();
    let live_before = tree_hashes(&live);
    let live_dir = live.to_str().unwrap().to_string();

    let cases = [
        Persistent {
            what: "backup",
            method: "PUT",
            path: "/packs/",
            fault: Fault::SlowDown,
            code: 3,
            names: "packs/",
        },
        Persistent {
            what: "backup",
            method: "PUT",
            path: "/snapshots/",
            fault: Fault::ServedThenFailed,
            // The manifest reads back whole: the backup is committed, and says so.
            code: 0,
            names: "snapshots/",
        },
        Persistent {
            what: "list",
            method: "GET",
            path: "list-type",
            fault: Fault::TruncatedBody,
            code: 3,
            // Opening lists keys/ first: an unencrypted config beside key files was replaced.
            names: "list of keys",
        },
        Persistent {
            what: "restore",
            method: "GET",
            path: "/packs/",
            fault: Fault::TruncatedBody,
            code: 3,
            names: "packs/",
        },
        Persistent {
            what: "verify",
            method: "GET",
            path: "/packs/",
            fault: Fault::InternalError,
            code: 3,
            names: "packs/",
        },
        Persistent {
            what: "prune",
            // object_store deletes with S3's bulk DeleteObjects.
            method: "POST",
            path: "?delete",
            fault: Fault::Reset,
            code: 3,
            names: "snapshots/",
        },
    ];
    for case in &cases {
        let args: Vec<&str> = match case.what {
            "backup" => vec!["backup", "--repo", REPO, "--chroma-dir", second_dir],
            "restore" => vec!["restore", "--repo", REPO, &one, "--to", &live_dir, "--yes"],
            "verify" => vec!["verify", "--repo", REPO, "--read-data"],
            "list" => vec!["list", "--repo", REPO],
            _ => vec!["prune", "--repo", REPO, "--keep-last", "1"],
        };
        proxy.set_plan(Plan::Persistent {
            method: case.method,
            path: case.path,
            fault: case.fault,
        });
        let failed = run(&args, &env);
        let label = format!(
            "{} with every {} {}* {:?}",
            case.what, case.method, case.path, case.fault
        );
        assert_eq!(
            failed.code(),
            case.code,
            "{label}: {}{}",
            failed.stdout(),
            failed.stderr()
        );
        let said = if case.code == 0 {
            "yet it reads back whole"
        } else {
            "error: object store"
        };
        assert!(
            failed.stderr().contains(said) && failed.stderr().contains(case.names),
            "{label}: the object is not named: {}",
            failed.stderr()
        );
        assert!(
            retries(&failed) > 0,
            "{label}: no retry shown at -v: {}",
            failed.stderr()
        );
        proxy.set_plan(Plan::Healthy);

        // The live directory is as it was, with nothing beside it; the repository verifies
        // and every listed backup restores.
        assert_eq!(
            tree_hashes(&live),
            live_before,
            "{label}: the live data changed"
        );
        let beside: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with(".live") || n.starts_with(".second") || n.starts_with(".first")
            })
            .collect();
        assert!(beside.is_empty(), "{label}: left behind {beside:?}");
        nothing_lost(REPO, &direct, &taken_of, tmp.path());
        // The same command runs at once on a healthy store: no lock is left in its way.
        run(&args, &env).expect_code(0);
        nothing_lost(REPO, &direct, &taken_of, tmp.path());
        if case.what == "restore" {
            // Put the live directory back as it was for the next case.
            std::fs::remove_dir_all(&live).unwrap();
            copy_tree(&first, &live);
            std::fs::write(live.join("local-only.txt"), "mine").unwrap();
            for entry in std::fs::read_dir(tmp.path()).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with("live.before-restore-") {
                    std::fs::remove_dir_all(tmp.path().join(name)).unwrap();
                }
            }
        }
    }
    eprintln!("persistent store faults: {:?}", proxy.injected());
}

/// A bucket that does not exist (a typo in `--repo`) is said to be one, with what to do: not
/// "object keys/... is missing from the repository", which sent users to `verify`, nor "not a
/// vecdrill repository". Credentials the store refuses and a store that is not there are
/// each named as what they are.
#[test]
fn issue_25_a_missing_bucket_refused_credentials_and_no_store_are_each_named() {
    let s3 = S3Server::start("present");
    let env = with_secret(s3.env());
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 50, 4)]);
    let data = data.to_str().unwrap();
    for args in [
        vec![
            "init",
            "--repo",
            "s3://absent/chroma",
            "--encryption",
            "none",
        ],
        vec![
            "backup",
            "--repo",
            "s3://absent/chroma",
            "--chroma-dir",
            data,
        ],
    ] {
        let refused = run(&args, &env);
        refused.expect_code(2);
        let said = refused.stderr();
        assert!(
            said.contains("s3://absent/chroma") && said.contains("does not exist"),
            "{said}"
        );
        assert!(said.contains("create the bucket first"), "{said}");
        assert!(!said.contains("is missing from the repository"), "{said}");
    }
    // Said before any password is asked: an encrypted init with none given names the bucket.
    let init = run(&["init", "--repo", "s3://absent/chroma"], &env);
    init.expect_code(2);
    assert!(
        init.stderr().contains("does not exist"),
        "{}",
        init.stderr()
    );
    // Read commands say so too, rather than "not a vecdrill repository".
    let listed = run(&["list", "--repo", "s3://absent/chroma"], &env);
    listed.expect_code(2);
    assert!(
        listed.stderr().contains("does not exist"),
        "{}",
        listed.stderr()
    );
    // The bucket that is there works.
    run(
        &[
            "backup",
            "--repo",
            "s3://present/chroma",
            "--chroma-dir",
            data,
        ],
        &env,
    )
    .expect_code(0);

    // Credentials the store refuses (403): said so, in one line, with what to check, never
    // the store's XML answer or the secret (checked by `run`).
    let refusing = S3Server::start_refusing();
    for args in [
        vec!["list", "--repo", "s3://present/chroma"],
        vec![
            "backup",
            "--repo",
            "s3://present/chroma",
            "--chroma-dir",
            data,
        ],
    ] {
        let refused = run(&args, &with_secret(refusing.env()));
        refused.expect_code(3);
        let said = refused.stderr();
        assert!(
            said.contains("refused") && said.contains("credentials"),
            "{said}"
        );
        assert!(!said.contains("<?xml"), "{said}");
    }
    // Nothing listening where the store should be: the connection refused is named.
    let port = crate::common::free_port();
    let nowhere = run(
        &["list", "--repo", "s3://present/chroma"],
        &with_secret(S3Server::env_for_port(port)),
    );
    nowhere.expect_code(3);
    assert!(
        nowhere.stderr().contains("Connection refused"),
        "{}",
        nowhere.stderr()
    );
}
