//! Issue 25: `vecdrill copy` between repositories (file and S3, encrypted and not),
//! `backup --copy-to`, `check --copy-repo`, and a copy killed midway.

use std::path::Path;

use serde_json::Value;

use crate::common::{
    add_records, backup_json, repo_url, restore_run_env, tree_hashes, vecdrill, vecdrill_env,
    workspace, S3Server,
};

const COLLECTIONS: &[(&str, u64, usize)] = &[("docs", 1500, 32), ("faq", 300, 16)];

/// `vecdrill copy --from-repo FROM --repo TO [EXTRA]... --json` with `env`, which must succeed.
fn copy_json(from: &str, to: &str, extra: &[&str], env: &[(&str, String)]) -> Value {
    let mut args = vec!["copy", "--from-repo", from, "--repo", to, "--json"];
    args.extend_from_slice(extra);
    let run = vecdrill_env(&args, env);
    run.expect_code(0);
    run.json()
}

fn list_json(repo: &str, env: &[(&str, String)]) -> Vec<Value> {
    let run = vecdrill_env(["list", "--repo", repo, "--json"], env);
    run.expect_code(0);
    run.json().as_array().unwrap().clone()
}

fn id_of(backup: &Value) -> String {
    backup["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The files `backup` of `repo` restores to (restored into a scratch directory under `tmp`).
fn restored(repo: &str, backup: &str, tmp: &Path, env: &[(&str, String)]) -> Vec<(String, String)> {
    let scratch = tempfile::tempdir_in(tmp).unwrap();
    let to = scratch.path().join("chroma");
    let run = restore_run_env(repo, backup, &to, &["--no-safety-backup"], env);
    run.expect_code(0);
    tree_hashes(&to).into_iter().collect()
}

#[test]
fn issue_25_copy_file_to_s3_and_back_sends_only_what_the_destination_lacks() {
    let ws = workspace(COLLECTIONS);
    let s3 = S3Server::start("offsite");
    let env = s3.env();
    let offsite = "s3://offsite/chroma";
    let backup = backup_json(&ws.repo, &ws.data, &[]);
    let first = id_of(&backup);

    let copied = copy_json(&ws.repo, offsite, &["latest"], &env);
    let report = &copied["copies"][0];
    assert_eq!(report["backup"], first.as_str());
    assert_eq!(report["already_there"], false);
    assert_eq!(
        report["bytes_read"], backup["backup"]["manifest"]["totals"]["logical_bytes"],
        "a new destination holds nothing: every byte is read"
    );
    let uploaded_first = report["uploaded_bytes"].as_u64().unwrap();
    assert!(uploaded_first > 0);
    assert!(report["packs_read_back"].as_u64().unwrap() >= 1);

    // Again: nothing is sent.
    let again = copy_json(&ws.repo, offsite, &[&first], &env);
    assert_eq!(again["copies"][0]["already_there"], true);
    assert_eq!(again["copies"][0]["uploaded_bytes"], 0);

    // A second backup after a small change: `--all` sends only that change.
    add_records(&ws.data, "extra", 50, 16);
    let second_backup = backup_json(&ws.repo, &ws.data, &[]);
    let second = id_of(&second_backup);
    let stored_second = second_backup["backup"]["manifest"]["totals"]["stored_bytes"]
        .as_u64()
        .unwrap();
    let all = copy_json(&ws.repo, offsite, &["--all"], &env);
    let copies = all["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0]["already_there"], true);
    assert_eq!(copies[1]["backup"], second.as_str());
    assert!(copies[1]["files_reused"].as_u64().unwrap() > 0);
    let uploaded_second = copies[1]["uploaded_bytes"].as_u64().unwrap();
    // What the second backup added to the source, give or take packing: not the whole.
    assert!(
        uploaded_second <= stored_second + stored_second / 10 && uploaded_second < uploaded_first,
        "the second copy uploaded {uploaded_second} bytes, the backup stored {stored_second}, the first copy {uploaded_first}"
    );

    // Each side says where the copies are; the copies keep ids, times and sources.
    let source_id = vecdrill(["info", "--repo", &ws.repo, "--json"]).json();
    let local = list_json(&ws.repo, &[]);
    let remote = list_json(offsite, &env);
    assert_eq!(local.len(), 2);
    assert_eq!(remote.len(), 2);
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(l["id"], r["id"]);
        assert_eq!(l["created_at"], r["created_at"]);
        assert_eq!(l["source"], r["source"]);
        assert_eq!(l["copies"][0]["url"], offsite, "{l}");
        assert!(r["copied_from"]["repository"].is_string(), "{r}");
    }
    assert!(source_id["copies"][0]["repository"].is_string());

    // Both restore the same files; `latest` of the copy is the same backup.
    assert_eq!(
        restored(&ws.repo, "latest", ws.tmp.path(), &[]),
        restored(offsite, "latest", ws.tmp.path(), &env)
    );

    // S3 → file: the copy of the copy verifies byte for byte.
    let back = repo_url(&ws.tmp.path().join("back"));
    let home = copy_json(offsite, &back, &["--all"], &env);
    assert_eq!(home["copies"].as_array().unwrap().len(), 2);
    assert!(home["copies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["already_there"] == false));
    vecdrill(["verify", "--repo", &back, "--read-data"]).expect_code(0);
    assert_eq!(
        restored(&back, &first, ws.tmp.path(), &[]),
        restored(&ws.repo, &first, ws.tmp.path(), &[])
    );
}

#[test]
fn issue_25_copy_between_encrypted_and_unencrypted_repositories_reencrypts() {
    let ws = workspace(COLLECTIONS);
    let pw = ws.tmp.path().join("pw");
    std::fs::write(&pw, "first secret").unwrap();
    let pw2 = ws.tmp.path().join("pw2");
    std::fs::write(&pw2, "second secret").unwrap();
    let encrypted = repo_url(&ws.tmp.path().join("encrypted"));
    let pw_arg = pw.to_str().unwrap();
    let first = id_of(&backup_json(
        &encrypted,
        &ws.data,
        &["--password-file", pw_arg],
    ));

    // Encrypted → unencrypted: not into a repository that would be created unencrypted only
    // because no password was given for it; into one created so on purpose.
    let plain = repo_url(&ws.tmp.path().join("plain"));
    let refused = vecdrill([
        "copy",
        "--from-repo",
        &encrypted,
        "--repo",
        &plain,
        "--from-password-file",
        pw_arg,
    ]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr()
            .contains("init --repo URL --encryption none"),
        "{}",
        refused.stderr()
    );
    assert!(!ws.tmp.path().join("plain").exists());
    vecdrill(["init", "--repo", &plain, "--encryption", "none"]).expect_code(0);
    let out = copy_json(&encrypted, &plain, &["--from-password-file", pw_arg], &[]);
    assert_eq!(out["encrypted"], false);
    assert_eq!(out["copies"][0]["backup"], first.as_str());
    vecdrill(["verify", "--repo", &plain, "--read-data"]).expect_code(0);
    // check reads the encrypted repository with --password-file, the copy unencrypted.
    let checked = vecdrill([
        "check",
        "--repo",
        &encrypted,
        "--password-file",
        pw_arg,
        "--max-backup-age",
        "1h",
        "--copy-repo",
        &plain,
    ]);
    checked.expect_code(0);
    // Without it, each repository check says it cannot open the repository.
    let unopened = vecdrill(["check", "--repo", &encrypted, "--max-backup-age", "1h"]);
    unopened.expect_code(1);
    assert!(
        unopened.stdout().contains("no password was given"),
        "{}",
        unopened.stdout()
    );

    // A second backup: the unchanged files are taken from the earlier copy, not read again.
    add_records(&ws.data, "extra", 50, 16);
    let second = id_of(&backup_json(
        &encrypted,
        &ws.data,
        &["--password-file", pw_arg],
    ));
    let out = copy_json(&encrypted, &plain, &["--from-password-file", pw_arg], &[]);
    let report = &out["copies"][0];
    assert_eq!(report["backup"], second.as_str());
    assert!(report["files_reused"].as_u64().unwrap() > 0, "{report}");
    let manifest = vecdrill(["info", "--repo", &plain, &second, "--json"]).json();
    let logical = manifest["totals"]["logical_bytes"].as_u64().unwrap();
    assert!(report["bytes_read"].as_u64().unwrap() < logical, "{report}");

    // Unencrypted → a new repository encrypted under another password.
    let sealed = repo_url(&ws.tmp.path().join("sealed"));
    let out = copy_json(
        &plain,
        &sealed,
        &["--all", "--password-file", pw2.to_str().unwrap()],
        &[],
    );
    assert_eq!(out["encrypted"], true);
    assert_eq!(out["copies"].as_array().unwrap().len(), 2);
    let manifest_file = ws
        .tmp
        .path()
        .join("sealed/snapshots")
        .join(format!("{second}.json"));
    let stored = std::fs::read(&manifest_file).unwrap();
    assert!(
        serde_json::from_slice::<Value>(&stored).is_err(),
        "the copy's manifest is sealed, not plain JSON"
    );
    vecdrill([
        "verify",
        "--repo",
        &sealed,
        "--read-data",
        "--password-file",
        pw2.to_str().unwrap(),
    ])
    .expect_code(0);
    // The first password does not open it.
    vecdrill(["list", "--repo", &sealed, "--password-file", pw_arg]).expect_code(2);

    let pw2_env = [("VECDRILL_PASSWORD_FILE", pw2.display().to_string())];
    let pw_env = [("VECDRILL_PASSWORD_FILE", pw.display().to_string())];
    for id in [&first, &second] {
        assert_eq!(
            restored(&sealed, id, ws.tmp.path(), &pw2_env),
            restored(&encrypted, id, ws.tmp.path(), &pw_env)
        );
    }
}

#[test]
fn issue_25_backup_copy_to_keeps_a_second_copy_and_check_requires_it() {
    let ws = workspace(&COLLECTIONS[..1]);
    let second_repo = repo_url(&ws.tmp.path().join("second"));
    let out = backup_json(&ws.repo, &ws.data, &["--copy-to", &second_repo]);
    let id = id_of(&out);
    assert_eq!(out["copy"]["copies"][0]["backup"], id.as_str(), "{out}");
    let listed = list_json(&second_repo, &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());

    let check = |expect: i32| {
        let run = vecdrill([
            "check",
            "--repo",
            &ws.repo,
            "--copy-repo",
            &second_repo,
            "--json",
        ]);
        run.expect_code(expect);
        let checks = run.json()["checks"].as_array().unwrap().clone();
        checks.into_iter().find(|c| c["name"] == "copy").unwrap()
    };
    assert_eq!(check(0)["passed"], true);

    // A backup without --copy-to: the second repository lacks the newest one.
    let newer = id_of(&backup_json(&ws.repo, &ws.data, &[]));
    let failed = check(1);
    assert!(
        failed["detail"].as_str().unwrap().contains(&newer),
        "{failed}"
    );

    // The text list says where each backup's copy is.
    let text = vecdrill(["list", "--repo", &ws.repo]);
    text.expect_code(0);
    assert!(
        text.stdout().contains(&format!("in {second_repo}")),
        "{}",
        text.stdout()
    );

    // A copy that cannot be made fails the command, and says the backup is committed.
    let blocked = ws.tmp.path().join("blocked");
    std::fs::write(&blocked, "not a directory").unwrap();
    let run = crate::common::backup_run(
        &ws.repo,
        &ws.data,
        &["--copy-to", &repo_url(&blocked.join("repo"))],
    );
    assert_ne!(run.code(), 0);
    assert!(run.stderr().contains("is committed"), "{}", run.stderr());
    assert_eq!(list_json(&ws.repo, &[]).len(), 3);

    // The next backup with --copy-to catches up what the second repository lacks.
    let caught_up = backup_json(&ws.repo, &ws.data, &["--copy-to", &second_repo]);
    assert_eq!(
        caught_up["copy"]["copies"].as_array().unwrap().len(),
        4,
        "{caught_up}"
    );
    assert_eq!(list_json(&second_repo, &[]).len(), 4);
    assert_eq!(check(0)["passed"], true);

    // The second repository keeps fewer (its own prune): catching up does not send back what
    // its retention removed, and says so; a copy by id sends one back on purpose.
    vecdrill(["prune", "--repo", &second_repo, "--keep-last", "1"]).expect_code(0);
    let pruned_there: Vec<String> = caught_up["copy"]["copies"].as_array().unwrap()[..3]
        .iter()
        .map(|c| c["backup"].as_str().unwrap().to_string())
        .collect();
    let next = backup_json(&ws.repo, &ws.data, &["--copy-to", &second_repo]);
    let sent: Vec<&Value> = next["copy"]["copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["already_there"] == false)
        .collect();
    assert_eq!(sent.len(), 1, "{next}");
    assert_eq!(sent[0]["backup"], id_of(&next).as_str(), "{next}");
    assert_eq!(
        next["copy"]["removed_there"],
        serde_json::json!(pruned_there)
    );
    assert_eq!(list_json(&second_repo, &[]).len(), 2);
    // The source's list stops saying they are there.
    let copy_of = |id: &str| {
        list_json(&ws.repo, &[])
            .into_iter()
            .find(|b| b["id"] == id)
            .unwrap()["copies"][0]
            .clone()
    };
    assert!(copy_of(&pruned_there[0])["removed_there_at"].is_string());
    let text = vecdrill(["list", "--repo", &ws.repo]).stdout();
    assert!(text.contains("removed from"), "{text}");
    let again = copy_json(&ws.repo, &second_repo, &[&pruned_there[0]], &[]);
    assert_eq!(again["copies"][0]["already_there"], false, "{again}");
    assert_eq!(again["removed_there"], serde_json::json!([]));
    assert_eq!(list_json(&second_repo, &[]).len(), 3);
    assert!(copy_of(&pruned_there[0])["removed_there_at"].is_null());

    // --keep-last rotates both repositories.
    let kept = id_of(&backup_json(
        &ws.repo,
        &ws.data,
        &["--copy-to", &second_repo, "--keep-last", "1"],
    ));
    for repo in [&ws.repo, &second_repo] {
        let ids: Vec<Value> = list_json(repo, &[])
            .iter()
            .map(|b| b["id"].clone())
            .collect();
        assert_eq!(ids, vec![Value::from(kept.as_str())], "{repo}");
    }
}

#[test]
fn issue_25_backup_copy_to_at_a_terminal_asks_the_password_once_and_seals_the_new_copy() {
    let ws = workspace(&COLLECTIONS[..1]);
    let pw = ws.tmp.path().join("pw");
    std::fs::write(&pw, "typed secret").unwrap();
    let sealed = repo_url(&ws.tmp.path().join("sealed"));
    vecdrill([
        "init",
        "--repo",
        &sealed,
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .expect_code(0);
    let offsite = repo_url(&ws.tmp.path().join("offsite"));
    let data = ws.data.to_str().unwrap();
    // The repository's password, typed once for the backup and its copy; then the new
    // copy repository's own, typed twice: two that differ create nothing (the backup stays).
    let backup_copied_to = |answers: &[&str]| {
        crate::common::vecdrill_on_terminal(
            &[
                "backup",
                "--repo",
                &sealed,
                "--chroma-dir",
                data,
                "--copy-to",
                &offsite,
            ],
            answers,
            None,
        )
    };
    let mistyped = backup_copied_to(&["typed secret\r", "offsite secret\r", "offsite secert\r"]);
    let shown = mistyped.stdout();
    assert_eq!(mistyped.code(), 2, "{shown}");
    assert!(shown.contains("the two passwords typed differ"), "{shown}");
    assert!(!ws.tmp.path().join("offsite/config").exists(), "{shown}");
    let run = backup_copied_to(&["typed secret\r", "offsite secret\r", "offsite secret\r"]);
    let shown = run.stdout();
    assert_eq!(run.code(), 0, "{shown}");
    assert_eq!(shown.matches("enter the password").count(), 1, "{shown}");
    assert!(
        shown.contains("enter a password for the new repository")
            && shown.contains("enter the same password again"),
        "{shown}"
    );
    let offsite_pw = ws.tmp.path().join("offsite-pw");
    std::fs::write(&offsite_pw, "offsite secret").unwrap();
    let env = [("VECDRILL_PASSWORD_FILE", offsite_pw.display().to_string())];
    // The backup the mistyped run committed is caught up with the new one.
    assert_eq!(list_json(&offsite, &env).len(), 2);
    vecdrill(["list", "--repo", &offsite]).expect_code(2);
}

#[test]
fn issue_25_a_killed_copy_leaves_the_destination_verifiable_and_a_rerun_completes_it() {
    let ws = workspace(COLLECTIONS);
    let id = id_of(&backup_json(&ws.repo, &ws.data, &[]));
    let expected = restored(&ws.repo, &id, ws.tmp.path(), &[]);
    let mut kills = 0;
    for n in [1, 2, 4, 7] {
        let dest_dir = ws.tmp.path().join(format!("dest-{n}"));
        let dest = repo_url(&dest_dir);
        let args = ["copy", "--from-repo", &ws.repo, "--repo", &dest, "latest"];
        if crate::faults::killed_at("rename,renameat,renameat2", n, &args) {
            kills += 1;
            // Either no repository yet, or one whose listed backups all verify.
            if dest_dir.join("config").exists() {
                let listed = list_json(&dest, &[]);
                assert!(listed.len() <= 1);
                vecdrill(["verify", "--repo", &dest, "--read-data"]).expect_code(0);
            }
        }
        // The source's lock taken by the killed copy does not stop the rerun.
        let out = copy_json(&ws.repo, &dest, &["latest"], &[]);
        assert_eq!(out["copies"][0]["backup"], id.as_str());
        vecdrill(["verify", "--repo", &dest, "--read-data"]).expect_code(0);
        assert_eq!(restored(&dest, &id, ws.tmp.path(), &[]), expected);
    }
    assert!(kills > 0, "no kill point was reached");
}

#[test]
fn issue_25_a_damaged_source_backup_is_not_copied_and_the_others_are() {
    let ws = workspace(&COLLECTIONS[..1]);
    let damaged = id_of(&backup_json(&ws.repo, &ws.data, &[]));
    for pack in crate::common::files_under(&ws.repo_dir.join("packs")) {
        let len = std::fs::metadata(&pack).unwrap().len() as usize;
        crate::common::flip_byte(&pack, len / 2);
    }
    let dest = repo_url(&ws.tmp.path().join("dest"));
    let run = vecdrill(["copy", "--from-repo", &ws.repo, "--repo", &dest, "latest"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains(&format!("NOT COPIED {damaged}")),
        "{}",
        run.stderr()
    );
    assert!(list_json(&dest, &[]).is_empty(), "nothing is listed");
    vecdrill(["verify", "--repo", &dest]).expect_code(0);

    // Another source's backup, in packs of its own: `--all` copies it and names the other.
    let other = crate::common::seeded_data_dir(&ws.tmp.path().join("other"), &[("faq", 200, 8)]);
    let intact = id_of(&backup_json(&ws.repo, &other, &[]));
    // Every backup copied, some not: exit 1, each named in --json.
    let copy_all_failing = || {
        let run = vecdrill([
            "copy",
            "--from-repo",
            &ws.repo,
            "--repo",
            &dest,
            "--all",
            "--json",
        ]);
        run.expect_code(1);
        run.json()["copies"].as_array().unwrap().clone()
    };
    let copies = copy_all_failing();
    assert!(copies[0]["failed"].is_string(), "{copies:?}");
    assert!(copies[1]["failed"].is_null(), "{copies:?}");
    let listed: Vec<Value> = list_json(&dest, &[])
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(listed, vec![Value::from(intact.as_str())]);
    vecdrill(["verify", "--repo", &dest, "--read-data"]).expect_code(0);

    // A repository is not copied into itself; nor backed up into and copied to at once
    // (refused before the backup, however the path is written).
    let itself = vecdrill(["copy", "--from-repo", &ws.repo, "--repo", &ws.repo, "--all"]);
    itself.expect_code(2);
    assert!(
        itself.stderr().contains("being copied from"),
        "{}",
        itself.stderr()
    );
    let before = list_json(&ws.repo, &[]).len();
    let same = ws
        .repo_dir
        .join("..")
        .join(ws.repo_dir.file_name().unwrap());
    let data = other.to_str().unwrap();
    let twice = vecdrill(
        [
            "backup",
            "--repo",
            &ws.repo,
            "--chroma-dir",
            data,
            "--copy-to",
        ]
        .into_iter()
        .chain([same.to_str().unwrap()]),
    );
    twice.expect_code(2);
    assert!(twice.stderr().contains("--copy-to"), "{}", twice.stderr());
    assert_eq!(list_json(&ws.repo, &[]).len(), before, "no backup was made");

    // A source no backup has is named as such, with the sources there are.
    let nope = vecdrill(
        ["copy", "--from-repo", &ws.repo, "--repo", &dest, "--all"]
            .into_iter()
            .chain(["--source", "nowhere:/nothing"]),
    );
    nope.expect_code(2);
    assert!(
        nope.stderr().contains("nowhere:/nothing"),
        "{}",
        nope.stderr()
    );
    let listed = vecdrill(["list", "--repo", &ws.repo, "--source", "nowhere:/nothing"]);
    listed.expect_code(2);
    assert!(
        listed.stderr().contains("its sources"),
        "{}",
        listed.stderr()
    );

    // A manifest that cannot be read is not copied: named, and the exit code says so.
    let manifest = ws.repo_dir.join(format!("snapshots/{intact}.json"));
    std::fs::write(&manifest, "{ truncated").unwrap();
    let copies = copy_all_failing();
    let unreadable = copies
        .iter()
        .find(|c| c["backup"] == intact.as_str())
        .expect("the unreadable manifest reported");
    assert!(
        unreadable["failed"]
            .as_str()
            .unwrap()
            .contains(&format!("snapshots/{intact}.json")),
        "{copies:?}"
    );
}

#[test]
fn issue_25_the_offsite_restore_drill_recovers_from_the_copy_alone() {
    let ws = workspace(&[("docs", 1200, 32)]);
    let offsite = repo_url(&ws.tmp.path().join("offsite"));
    let scenario = crate::common::project_root().join("scenarios/offsite-restore.yaml");
    let run = crate::common::run_scenario(
        &scenario,
        &ws.tmp.path().join("reports"),
        &[
            format!("data_dir={}", ws.data.display()),
            format!("port={}", crate::common::free_port()),
            format!("chroma={}", crate::common::chroma_bin().display()),
            format!("repo={}", ws.repo),
            format!("offsite={offsite}"),
        ],
        &[],
    );
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    let copy = crate::common::report_step(&report, "offsite_copy");
    assert_eq!(copy["outputs"]["copied"], 1);
    let restore = crate::common::report_step(&report, "restore");
    assert_eq!(restore["outputs"]["backup"], copy["outputs"]["backup"]);
    // The restored backup is the copy's: the off-site repository lists it as one.
    let listed = list_json(&offsite, &[]);
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["copied_from"]["repository"].is_string());
}

#[test]
fn issue_25_planted_copy_records_and_log_objects_are_not_believed_or_carried() {
    let ws = workspace(&COLLECTIONS[..1]);
    let id = id_of(&backup_json(&ws.repo, &ws.data, &[]));
    // A copy record too large to be one, and one that is not JSON of its type.
    let records = ws.repo_dir.join("copies").join(&id);
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(records.join("a".repeat(32) + ".json"), vec![b' '; 100_000]).unwrap();
    std::fs::write(records.join("b".repeat(32) + ".json"), "{}").unwrap();
    // An object beside a chain that no follower writes.
    let chain = ws.repo_dir.join("logs").join(&id);
    std::fs::create_dir_all(&chain).unwrap();
    std::fs::write(chain.join("evil.json"), "{}").unwrap();

    let listed = list_json(&ws.repo, &[]);
    assert_eq!(listed[0]["copies"], serde_json::json!([]), "{listed:?}");
    let dest_dir = ws.tmp.path().join("dest");
    let out = copy_json(&ws.repo, &repo_url(&dest_dir), &[], &[]);
    assert_eq!(out["copies"][0]["log_segments"], 0, "{out}");
    assert!(!dest_dir.join("logs").join(&id).join("evil.json").exists());
    // The real record is read beside the planted ones.
    assert_eq!(
        list_json(&ws.repo, &[])[0]["copies"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
