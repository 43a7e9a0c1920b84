//! Encrypted repositories (`vecdrill init`, `--encryption repokey`): the round trip on every
//! backend, nothing of the plaintext in any stored object, a wrong or missing password as one
//! clear error that changes nothing, every password source, and changes made without the key
//! caught and named.

use std::path::{Path, PathBuf};

use crate::common::{
    files_under, repo_url, seeded_data_dir, tree_hashes, vecdrill, vecdrill_env, S3Server,
};
use crate::repository::storage_round_trip;

const PASSWORD: &str = "correct horse battery staple";

struct Encrypted {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    repo_dir: PathBuf,
    repo: String,
    password_file: PathBuf,
}

impl Encrypted {
    /// A seeded Chroma directory and an encrypted repository holding one backup of it.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = seeded_data_dir(&root, &[("confidential-notes", 800, 16)]);
        let repo_dir = root.join("repo");
        let repo = repo_url(&repo_dir);
        let password_file = root.join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let this = Self {
            _tmp: tmp,
            root,
            data,
            repo_dir,
            repo,
            password_file,
        };
        let run = this.run(&["init", "--repo", &this.repo.clone()]);
        run.expect_code(0);
        assert!(run.stdout().contains("encrypted"), "{}", run.stdout());
        this.run(&[
            "backup",
            "--repo",
            &this.repo.clone(),
            "--chroma-dir",
            this.data.to_str().unwrap(),
        ])
        .expect_code(0);
        this
    }

    /// vecdrill with the password in `VECDRILL_PASSWORD_FILE`.
    fn run(&self, args: &[&str]) -> crate::common::Run {
        vecdrill_env(
            args,
            &[(
                "VECDRILL_PASSWORD_FILE",
                self.password_file.display().to_string(),
            )],
        )
    }

    fn manifest(&self) -> PathBuf {
        let mut manifests = files_under(&self.repo_dir.join("snapshots"));
        assert_eq!(manifests.len(), 1);
        manifests.remove(0)
    }
}

#[test]
fn issue_20_an_encrypted_repository_round_trips_on_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 1500, 16)]);
    let s3 = S3Server::start("sealed");
    let mut local = vec![("VECDRILL_PASSWORD", PASSWORD.to_string())];
    let mut remote = s3.env();
    remote.push(("VECDRILL_PASSWORD", PASSWORD.to_string()));
    let backends = [
        ("local", repo_url(&tmp.path().join("repo")), &mut local),
        ("s3", "s3://sealed/chroma".to_string(), &mut remote),
    ];
    for (name, repo, env) in backends {
        vecdrill_env(["init", "--repo", &repo], env).expect_code(0);
        let scratch = tmp.path().join(name);
        std::fs::create_dir_all(&scratch).unwrap();
        storage_round_trip(&repo, env, &scratch, &data);
        let info = vecdrill_env(["stats", "--repo", &repo, "--json"], env);
        info.expect_code(0);
        assert_eq!(info.json()["encrypted"], true, "{name}");
    }
}

#[test]
fn issue_20_no_stored_object_reveals_the_plaintext() {
    let enc = Encrypted::new();
    // What an unencrypted backup of the same directory names: chunk ids and file hashes.
    let plain_repo = repo_url(&enc.root.join("plain"));
    vecdrill([
        "backup",
        "--repo",
        &plain_repo,
        "--chroma-dir",
        enc.data.to_str().unwrap(),
    ])
    .expect_code(0);
    let plain_manifest =
        std::fs::read_to_string(files_under(&enc.root.join("plain/snapshots")).remove(0)).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&plain_manifest).unwrap();
    let mut secrets: Vec<String> = vec![
        "confidential-notes".into(),
        "SQLite format 3".into(),
        "chroma.sqlite3".into(),
        enc.data.display().to_string(),
    ];
    for file in manifest["files"].as_array().unwrap() {
        secrets.push(file["hash"].as_str().unwrap().to_string());
        for chunk in file["chunks"].as_array().unwrap() {
            secrets.push(chunk.as_str().unwrap().to_string());
        }
    }
    // A document the seeded records carry.
    let export = enc.root.join("export.jsonl");
    vecdrill([
        "export",
        "--chroma-dir",
        enc.data.to_str().unwrap(),
        "--all",
        "--out",
        export.to_str().unwrap(),
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&export).unwrap();
    let record: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.contains("\"type\":\"record\""))
            .unwrap(),
    )
    .unwrap();
    secrets.push(record["document"].as_str().unwrap().to_string());
    secrets.push(record["id"].as_str().unwrap().to_string());

    let mut objects = 0;
    for object in files_under(&enc.repo_dir) {
        let rel = object
            .strip_prefix(&enc.repo_dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "config" || rel.starts_with("keys/") {
            continue;
        }
        objects += 1;
        let bytes = std::fs::read(&object).unwrap();
        if rel.ends_with(".json") {
            assert_eq!(&bytes[..4], b"VDEN", "{rel} is a sealed object");
        }
        for secret in &secrets {
            let needle = secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{rel} holds {secret:?}"
            );
        }
        assert!(
            !bytes.windows(4).any(|w| w == [0x28, 0xb5, 0x2f, 0xfd]),
            "{rel} holds a zstd frame in the clear"
        );
    }
    assert!(objects >= 3, "a manifest, an index and a pack: {objects}");
    // Two repositories of the same data share no pack name.
    let packs = |dir: &Path| -> Vec<String> {
        files_under(&dir.join("packs"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let plain_packs = packs(&enc.root.join("plain"));
    assert!(packs(&enc.repo_dir)
        .iter()
        .all(|p| !plain_packs.contains(p)));
    let info = enc.run(&["info", "--repo", &enc.repo, "latest", "--json"]);
    info.expect_code(0);
    assert_eq!(info.json()["encrypted"], true);
}

#[test]
fn issue_20_a_wrong_or_missing_password_is_one_clear_error_and_changes_nothing() {
    let enc = Encrypted::new();
    let before = tree_hashes(&enc.repo_dir);
    let target = enc.root.join("target");
    let data = enc.data.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["list", "--repo", &enc.repo],
        vec!["backup", "--repo", &enc.repo, "--chroma-dir", data],
        vec!["verify", "--repo", &enc.repo, "--read-data"],
        vec!["prune", "--repo", &enc.repo, "--keep-last", "1"],
        vec!["stats", "--repo", &enc.repo],
        vec![
            "restore",
            "latest",
            "--repo",
            &enc.repo,
            "--to",
            target.to_str().unwrap(),
            "--yes",
        ],
    ];
    for args in &commands {
        for (env, says) in [
            (
                vec![("VECDRILL_PASSWORD", "wrong".to_string())],
                "opens none of the 1 key",
            ),
            (Vec::new(), "no password was given"),
        ] {
            let run = vecdrill_env(args.iter().copied(), &env);
            run.expect_code(2);
            let stderr = run.stderr();
            assert!(stderr.contains(says), "{args:?}: {stderr}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert!(
                lines.len() == 2 && lines[0].starts_with("error:") && lines[1].starts_with("hint:"),
                "{args:?}: one error and its hint: {stderr}"
            );
            assert!(!stderr.contains("wrong\n") && !stderr.contains(PASSWORD));
        }
    }
    assert_eq!(
        tree_hashes(&enc.repo_dir),
        before,
        "the repository is untouched"
    );
    assert!(!target.exists(), "nothing restored, nothing created");
}

#[test]
fn issue_20_every_password_source_opens_it() {
    let enc = Encrypted::new();
    let file = enc.password_file.display().to_string();
    let command = format!("cat {file}");
    let list = |flags: &[&str], env: &[(&'static str, String)]| {
        let mut args = vec!["list", "--repo", &enc.repo];
        args.extend_from_slice(flags);
        vecdrill_env(args, env)
    };
    list(&["--password-file", &file], &[]).expect_code(0);
    list(&["--password-command", &command], &[]).expect_code(0);
    list(&[], &[("VECDRILL_PASSWORD_FILE", file.clone())]).expect_code(0);
    list(&[], &[("VECDRILL_PASSWORD_COMMAND", command.clone())]).expect_code(0);
    list(&[], &[("VECDRILL_PASSWORD", PASSWORD.to_string())]).expect_code(0);
    // A file or command wins over VECDRILL_PASSWORD.
    list(
        &["--password-file", &file],
        &[("VECDRILL_PASSWORD", "wrong".to_string())],
    )
    .expect_code(0);
    let both = list(
        &["--password-file", &file, "--password-command", &command],
        &[],
    );
    both.expect_code(2);
    assert!(both.stderr().contains("both given"), "{}", both.stderr());
    let failing = list(&["--password-command", "false"], &[]);
    failing.expect_code(2);
    assert!(failing.stderr().contains("password command false failed"));
    // Never shown, at any level of logging.
    for source in [
        ("VECDRILL_PASSWORD", PASSWORD.to_string()),
        ("VECDRILL_PASSWORD_COMMAND", command.clone()),
    ] {
        let run = vecdrill_env(
            [
                "-vv",
                "backup",
                "--repo",
                &enc.repo,
                "--chroma-dir",
                enc.data.to_str().unwrap(),
                "--json",
            ],
            &[source],
        );
        run.expect_code(0);
        let said = format!("{}{}", run.stdout(), run.stderr());
        assert!(said.contains("INFO"), "-vv logs: {said}");
        assert!(
            !said.contains(PASSWORD),
            "the password in the output: {said}"
        );
    }
}

#[test]
fn issue_20_a_change_made_without_the_key_is_caught_and_named() {
    let enc = Encrypted::new();
    let manifest = enc.manifest();
    let name = format!(
        "snapshots/{}",
        manifest.file_name().unwrap().to_string_lossy()
    );
    let pristine = std::fs::read(&manifest).unwrap();
    let target = enc.root.join("target");
    let refused = |what: &str| {
        let run = enc.run(&["verify", "--repo", &enc.repo, "--read-data"]);
        run.expect_code(1);
        let said = format!("{}{}", run.stdout(), run.stderr());
        assert!(said.contains(what), "{what}: {said}");
        let run = enc.run(&[
            "restore",
            "latest",
            "--repo",
            &enc.repo,
            "--to",
            target.to_str().unwrap(),
            "--yes",
        ]);
        assert_ne!(run.code(), 0, "{what}: restored anyway");
        assert!(!target.exists(), "{what}: nothing restored");
    };

    // One flipped bit.
    let mut flipped = pristine.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&manifest, &flipped).unwrap();
    refused(&name);

    // The manifest replaced by a plaintext one resealed with its recomputed checksum (an
    // unencrypted backup's manifest, its id made this one's).
    let plain_repo = enc.root.join("plain");
    vecdrill([
        "backup",
        "--repo",
        &repo_url(&plain_repo),
        "--chroma-dir",
        enc.data.to_str().unwrap(),
    ])
    .expect_code(0);
    let forged = std::fs::read(files_under(&plain_repo.join("snapshots")).remove(0)).unwrap();
    std::fs::write(&manifest, &forged).unwrap();
    refused("not an encrypted object");
    std::fs::write(&manifest, &pristine).unwrap();

    // A flipped bit in a pack.
    let pack = files_under(&enc.repo_dir.join("packs")).remove(0);
    let original = std::fs::read(&pack).unwrap();
    let mut damaged = original.clone();
    damaged[10] ^= 0x01;
    std::fs::write(&pack, &damaged).unwrap();
    refused(&pack.file_name().unwrap().to_string_lossy());
    std::fs::write(&pack, &original).unwrap();

    // The config's plaintext changed with its checksum recomputed.
    use vecdrill::repo::format::{RepoConfig, Sealed};
    let config_path = enc.repo_dir.join("config");
    let config_bytes = std::fs::read(&config_path).unwrap();
    let mut config = RepoConfig::unseal(&config_bytes).unwrap();
    config.chunker.min_size *= 2;
    std::fs::write(&config_path, config.seal()).unwrap();
    let run = enc.run(&["list", "--repo", &enc.repo]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("authenticated copy"),
        "{}",
        run.stderr()
    );
    // Or swapped for an unencrypted config, keys left in place.
    config.encryption = "none".into();
    config.authenticated = None;
    config.version = 1;
    std::fs::write(&config_path, config.seal()).unwrap();
    let run = enc.run(&["list", "--repo", &enc.repo]);
    run.expect_code(1);
    assert!(run.stderr().contains("it was replaced"), "{}", run.stderr());
    std::fs::write(&config_path, &config_bytes).unwrap();
    enc.run(&["verify", "--repo", &enc.repo, "--read-data"])
        .expect_code(0);
}

#[test]
fn issue_20_an_archive_of_an_encrypted_repository_is_sealed_and_opens_with_its_password() {
    let enc = Encrypted::new();
    // A second password: an archive opens with any the repository had when it was written.
    let second = enc.root.join("second");
    std::fs::write(&second, "the ops team's password").unwrap();
    enc.run(&[
        "key",
        "add",
        "--repo",
        &enc.repo,
        "--new-password-file",
        second.to_str().unwrap(),
    ])
    .expect_code(0);
    let out = enc.root.join("backup.vdar");
    let run = enc.run(&[
        "archive",
        "--repo",
        &enc.repo,
        "latest",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["encrypted"], true);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], b"VDAR");
    for plain in [
        "confidential-notes",
        "SQLite format 3",
        "chroma.sqlite3",
        "vecdrill-manifest.json",
        "data/",
    ] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} is readable in the archive"
        );
    }
    let tar = std::process::Command::new("tar")
        .args(["--zstd", "-tf"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!tar.status.success(), "tar read a sealed archive");

    // Restored on "another machine", with each way of giving a password.
    let restore = |to: &Path, env: &[(&str, String)], extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--archive",
            out.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--yes",
        ];
        args.extend(extra);
        vecdrill_env(args, env)
    };
    let by_file = enc.root.join("by-file");
    restore(
        &by_file,
        &[(
            "VECDRILL_PASSWORD_FILE",
            enc.password_file.display().to_string(),
        )],
        &[],
    )
    .expect_code(0);
    assert_eq!(tree_hashes(&by_file), tree_hashes(&enc.data));
    let by_env = enc.root.join("by-env");
    restore(&by_env, &[("VECDRILL_PASSWORD", PASSWORD.into())], &[]).expect_code(0);
    assert_eq!(tree_hashes(&by_env), tree_hashes(&enc.data));
    let by_second = enc.root.join("by-second");
    let command = format!("cat {}", second.display());
    restore(&by_second, &[], &["--password-command", &command]).expect_code(0);
    assert_eq!(tree_hashes(&by_second), tree_hashes(&enc.data));
    let typed = enc.root.join("typed");
    crate::common::vecdrill_on_terminal(
        &[
            "restore",
            "--archive",
            out.to_str().unwrap(),
            "--to",
            typed.to_str().unwrap(),
            "--yes",
        ],
        &[&format!("{PASSWORD}\r")],
        None,
    )
    .expect_code(0);
    assert_eq!(tree_hashes(&typed), tree_hashes(&enc.data));

    // A wrong or missing password, and damage anywhere: refused, the live directory as it was.
    let live = enc.root.join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("keep-me"), "live data").unwrap();
    let before = tree_hashes(&live);
    let unchanged = |run: &crate::common::Run, code: i32, named: &str| {
        run.expect_code(code);
        assert!(run.stderr().contains(named), "{named}: {}", run.stderr());
        assert_eq!(tree_hashes(&live), before);
        let leftovers: Vec<_> = std::fs::read_dir(&enc.root)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".live") || n.contains("staging"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };
    let wrong = restore(&live, &[("VECDRILL_PASSWORD", "not it".into())], &[]);
    unchanged(&wrong, 2, "opens none");
    let missing = restore(&live, &[], &[]);
    unchanged(&missing, 2, "no password");

    let header_end = 9 + u32::from_le_bytes(bytes[5..9].try_into().unwrap()) as usize;
    let damaged = |name: &str, bytes: Vec<u8>| {
        let path = enc.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        vecdrill_env(
            [
                "restore",
                "--archive",
                path.to_str().unwrap(),
                "--to",
                live.to_str().unwrap(),
                "--yes",
            ],
            &[("VECDRILL_PASSWORD", PASSWORD.into())],
        )
    };
    let header_text = String::from_utf8_lossy(&bytes[9..header_end]).into_owned();
    let nonce_at = 9 + header_text.find("\"nonce\":\"").unwrap() + 10;
    for (name, changed) in [
        ("header.vdar", {
            let mut b = bytes.clone();
            b[nonce_at] = if b[nonce_at] == b'A' { b'B' } else { b'A' };
            b
        }),
        ("segment.vdar", {
            let mut b = bytes.clone();
            b[header_end + 40] ^= 0x01;
            b
        }),
        ("tag.vdar", {
            let mut b = bytes.clone();
            let last = b.len() - 1;
            b[last] ^= 0x80;
            b
        }),
        ("cut.vdar", bytes[..bytes.len() - 1].to_vec()),
        ("headless.vdar", bytes[..header_end].to_vec()),
    ] {
        unchanged(&damaged(name, changed), 1, name);
    }
}

#[test]
fn issue_20_a_key_file_another_repository_left_does_not_block_an_unencrypted_one() {
    // As an `init` killed between its key file and its config leaves it, then an unencrypted
    // repository created there.
    let enc = Encrypted::new();
    let plain = enc.root.join("plain");
    let plain_url = repo_url(&plain);
    vecdrill(["init", "--repo", &plain_url, "--encryption", "none"]).expect_code(0);
    std::fs::create_dir_all(plain.join("keys")).unwrap();
    for key in files_under(&enc.repo_dir.join("keys")) {
        std::fs::copy(&key, plain.join("keys").join(key.file_name().unwrap())).unwrap();
    }
    vecdrill(["list", "--repo", &plain_url]).expect_code(0);
    let again = vecdrill(["init", "--repo", &plain_url, "--encryption", "none"]);
    again.expect_code(2);
    assert!(again.stderr().contains("already a vecdrill repository"));
}

/// The ids in `key list --json`, with which one is in use.
fn key_ids(run: &crate::common::Run) -> Vec<(String, bool)> {
    run.json()
        .as_array()
        .expect("a list of keys")
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["current"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn issue_20_keys_are_added_changed_and_removed_and_the_last_one_is_kept() {
    let enc = Encrypted::new();
    let repo = enc.repo.clone();
    let write = |name: &str, password: &str| {
        let path = enc.root.join(name);
        std::fs::write(&path, password).unwrap();
        path.display().to_string()
    };
    let (first, second, third) = (
        enc.password_file.display().to_string(),
        write("second", "a second password"),
        write("third", "a third password"),
    );
    let with = |file: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--repo", &repo, "--password-file", file]);
        vecdrill(all)
    };

    // One key, in use; its fields.
    let listed = with(&first, &["key", "list", "--json"]);
    listed.expect_code(0);
    let key = &listed.json()[0];
    for field in ["hostname", "username", "created_at", "kdf"] {
        assert!(!key[field].is_null(), "{field} in {key}");
    }
    assert_eq!(key["kdf"]["algorithm"], "argon2id");
    assert_eq!(key["intact"], true);
    let ids = key_ids(&listed);
    assert_eq!(ids.len(), 1);
    let first_id = ids[0].0.clone();
    assert!(ids[0].1);
    let text = with(&first, &["key", "list"]);
    assert!(
        text.stdout().contains("│ * │") && text.stdout().contains(&first_id[..8]),
        "{}",
        text.stdout()
    );

    // The last key is not removed.
    let last = with(&first, &["key", "remove", &first_id[..8]]);
    last.expect_code(2);
    assert!(
        last.stderr().contains("last intact key"),
        "{}",
        last.stderr()
    );

    // Added: both passwords open it, and the data is untouched.
    let packs_before = files_under(&enc.repo_dir.join("packs"));
    with(&first, &["key", "add", "--new-password-file", &second]).expect_code(0);
    let both = key_ids(&with(&second, &["key", "list", "--json"]));
    assert_eq!(both.len(), 2);
    let second_id = both.iter().find(|(_, current)| *current).unwrap().0.clone();
    assert_ne!(second_id, first_id);
    with(&first, &["list"]).expect_code(0);

    // The key in use is not removed; an unknown id is named.
    let in_use = with(&second, &["key", "remove", &second_id]);
    in_use.expect_code(2);
    assert!(in_use.stderr().contains("in use"), "{}", in_use.stderr());
    let unknown = with(&second, &["key", "remove", "ffffffffffff"]);
    unknown.expect_code(2);
    assert!(unknown.stderr().contains("no key"), "{}", unknown.stderr());

    // passwd: the second password is replaced by a third; the first still opens.
    let changed = with(
        &second,
        &[
            "key",
            "passwd",
            "--new-password-file",
            &third,
            "--json",
            "-vv",
        ],
    );
    changed.expect_code(0);
    let said = format!("{}{}", changed.stdout(), changed.stderr());
    assert!(
        said.contains("DEBUG") || said.contains("INFO"),
        "-vv logs: {said}"
    );
    for secret in ["a second password", "a third password"] {
        assert!(!said.contains(secret), "{secret} shown: {said}");
    }
    assert_eq!(changed.json()["removed"], second_id.as_str());
    let refused = with(&second, &["list"]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("opens none"),
        "{}",
        refused.stderr()
    );
    with(&third, &["list"]).expect_code(0);

    // The first key removed with the third's password; the third is then the last.
    with(&third, &["key", "remove", &first_id[..6]]).expect_code(0);
    with(&first, &["list"]).expect_code(2);
    let only = key_ids(&with(&third, &["key", "list", "--json"]));
    assert_eq!(only.len(), 1);
    with(&third, &["key", "remove", &only[0].0]).expect_code(2);

    // No backup was rewritten, and every one still reads back whole.
    assert_eq!(files_under(&enc.repo_dir.join("packs")), packs_before);
    with(&third, &["verify", "--read-data"]).expect_code(0);
}

#[test]
fn issue_20_forged_and_ambiguous_key_files_are_shown_and_can_be_removed() {
    let enc = Encrypted::new();
    let keys = enc.repo_dir.join("keys");
    let real = files_under(&keys).remove(0);
    // Two planted files whose names share a prefix; one a copy of the real key under a
    // name that is not its id.
    std::fs::copy(&real, keys.join(format!("ab00{}.json", "0".repeat(28)))).unwrap();
    std::fs::write(
        keys.join(format!("ab11{}.json", "1".repeat(28))),
        "{ not a key",
    )
    .unwrap();
    let listed = enc.run(&["key", "list", "--repo", &enc.repo, "--json"]);
    listed.expect_code(1);
    let damaged: Vec<_> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["intact"] == false)
        .map(|k| k["problem"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    let ambiguous = enc.run(&["key", "remove", "--repo", &enc.repo, "ab"]);
    ambiguous.expect_code(2);
    assert!(
        ambiguous.stderr().contains("2 key ids"),
        "{}",
        ambiguous.stderr()
    );
    enc.run(&["key", "remove", "--repo", &enc.repo, "ab0"])
        .expect_code(0);
    enc.run(&["key", "remove", "--repo", &enc.repo, "ab1"])
        .expect_code(0);
    enc.run(&["key", "list", "--repo", &enc.repo])
        .expect_code(0);
}

#[test]
fn issue_20_key_commands_on_an_unencrypted_repository_say_it_has_no_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let url = repo_url(&tmp.path().join("plain"));
    vecdrill(["init", "--repo", &url, "--encryption", "none"]).expect_code(0);
    let run = vecdrill(["key", "list", "--repo", &url]);
    run.expect_code(2);
    assert!(run.stderr().contains("not encrypted"), "{}", run.stderr());
}

#[test]
fn issue_20_a_key_change_waits_for_an_exclusive_lock() {
    use vecdrill::repo::keyfile::KdfParams;
    use vecdrill::repo::password::PasswordSources;
    use vecdrill::repo::{keyring, lock, Encryption, RepoError, Repository};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sources = PasswordSources {
            env: Some(zeroize::Zeroizing::new(PASSWORD.to_string())),
            ..PasswordSources::default()
        };
        let repo = Repository::init("memory://", Encryption::RepoKey, &sources, None)
            .await
            .unwrap();
        let other = keyring::add(&repo, b"other", KdfParams::FOR_TESTS)
            .await
            .unwrap();
        // A backup is running.
        let running = lock::acquire(&repo, false, "backup").await.unwrap();
        let removed = keyring::remove(&repo, &other).await;
        assert!(
            matches!(removed, Err(RepoError::Locked { .. })),
            "{removed:?}"
        );
        let changed = keyring::change_password(&repo, b"new", KdfParams::FOR_TESTS).await;
        assert!(
            matches!(changed, Err(RepoError::Locked { .. })),
            "{changed:?}"
        );
        running.release().await;
        assert_eq!(keyring::remove(&repo, &other).await.unwrap(), other);
        assert_eq!(keyring::list(&repo).await.unwrap().len(), 1);
    });
}

#[test]
fn issue_20_a_password_typed_on_a_terminal_is_not_shown() {
    let enc = Encrypted::new();
    let typed = crate::common::vecdrill_on_terminal(
        &["list", "--repo", &enc.repo],
        &[&format!("{PASSWORD}\r")],
        None,
    );
    typed.expect_code(0);
    assert!(typed.stdout().contains("enter the password of repository"));
    assert!(!typed.stdout().contains(PASSWORD), "{}", typed.stdout());

    // init asks twice: two different answers make nothing.
    let fresh = enc.root.join("fresh");
    let url = repo_url(&fresh);
    let differ = crate::common::vecdrill_on_terminal(
        &["init", "--repo", &url],
        &["one password\r", "another\r"],
        None,
    );
    differ.expect_code(2);
    assert!(differ.stdout().contains("differ"), "{}", differ.stdout());
    assert!(!fresh.exists());
    crate::common::vecdrill_on_terminal(
        &["init", "--repo", &url],
        &["typed twice\r", "typed twice\r"],
        None,
    )
    .expect_code(0);
    vecdrill_env(
        ["list", "--repo", &url],
        &[("VECDRILL_PASSWORD", "typed twice".into())],
    )
    .expect_code(0);

    // Ctrl-C at the prompt: exit 130, and the terminal echoes again.
    let interrupted = crate::common::vecdrill_on_terminal(
        &["list", "--repo", &enc.repo],
        &["half typ\x03"],
        Some("stty -a"),
    );
    let shown = interrupted.stdout();
    assert!(shown.contains("vecdrill exited 130"), "{shown}");
    assert!(
        shown.contains("interrupted at the password prompt"),
        "{shown}"
    );
    let settings: Vec<&str> = shown.split_whitespace().collect();
    assert!(
        settings.contains(&"echo") && !settings.contains(&"-echo"),
        "{shown}"
    );
    assert!(
        settings.contains(&"icanon") && settings.contains(&"isig"),
        "{shown}"
    );
}

/// One way of damaging an encrypted repository, and the object it must be named by.
struct Tamper {
    what: String,
    /// The objects `verify --read-data` must name (every one damaged).
    named: Vec<String>,
    /// The backup a restore of which must be refused (None: restores still work).
    breaks: Option<String>,
    /// Damage to bytes a restore does not read (a pack's trailer or framing): the restore may
    /// go on, every chunk it reads being authenticated, and must then be byte-identical.
    unread: bool,
    apply: Box<dyn Fn(&Path)>,
}

fn relative(repo: &Path, path: &Path) -> String {
    path.strip_prefix(repo).unwrap().display().to_string()
}

fn flip_at(path: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn cut(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

fn swap(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    std::fs::write(a, y).unwrap();
    std::fs::write(b, x).unwrap();
}

#[test]
fn issue_20_every_kind_of_object_changed_without_the_key_is_named_and_refused() {
    use vecdrill::repo::format::Sealed;
    use vecdrill::repo::keyfile::KeyFile;
    let enc = Encrypted::new();
    let repo = enc.repo_dir.clone();
    let objects = |dir: &str| -> Vec<String> {
        files_under(&repo.join(dir))
            .iter()
            .map(|p| relative(&repo, p))
            .collect()
    };
    let (first_manifests, first_indexes, first_packs) =
        (objects("snapshots"), objects("index"), objects("packs"));
    // A second backup (of another directory) and a second key.
    let other = seeded_data_dir(&enc.root.join("other"), &[("second-notes", 300, 8)]);
    enc.run(&[
        "backup",
        "--repo",
        &enc.repo,
        "--chroma-dir",
        other.to_str().unwrap(),
    ])
    .expect_code(0);
    let second_password = enc.root.join("second-password");
    std::fs::write(&second_password, "another password").unwrap();
    let keys_before = objects("keys");
    enc.run(&[
        "key",
        "add",
        "--repo",
        &enc.repo,
        "--new-password-file",
        second_password.to_str().unwrap(),
    ])
    .expect_code(0);
    let added_key = objects("keys")
        .into_iter()
        .find(|k| !keys_before.contains(k))
        .unwrap();
    let new_only = |dir: &str, before: &[String]| -> String {
        objects(dir)
            .into_iter()
            .find(|o| !before.contains(o))
            .unwrap()
    };
    let (m1, i1, p1) = (
        first_manifests[0].clone(),
        first_indexes[0].clone(),
        first_packs[0].clone(),
    );
    let (m2, i2, p2) = (
        new_only("snapshots", &first_manifests),
        new_only("index", &first_indexes),
        new_only("packs", &first_packs),
    );
    let backup_of = |manifest: &str| {
        manifest
            .trim_start_matches("snapshots/")
            .trim_end_matches(".json")
            .to_string()
    };
    let (b1, b2) = (backup_of(&m1), backup_of(&m2));
    // A plaintext index with a correct checksum: an unencrypted repository's, of the same data.
    let plain = enc.root.join("plain");
    vecdrill([
        "backup",
        "--repo",
        &repo_url(&plain),
        "--chroma-dir",
        enc.data.to_str().unwrap(),
    ])
    .expect_code(0);
    let plain_index = std::fs::read(files_under(&plain.join("index")).remove(0)).unwrap();

    let at = |rel: &str| -> Box<dyn Fn(&Path) -> PathBuf> {
        let rel = rel.to_string();
        Box::new(move |root: &Path| root.join(&rel))
    };
    let mut cases: Vec<Tamper> = Vec::new();
    let mut add = |what: &str, named: &[&str], breaks: Option<&str>, apply: Box<dyn Fn(&Path)>| {
        cases.push(Tamper {
            what: what.into(),
            named: named.iter().map(|n| n.to_string()).collect(),
            breaks: breaks.map(str::to_string),
            unread: what.contains("trailer") || what.contains("framing"),
            apply,
        })
    };
    // A pack is named by its name alone (`packs/xx/` is how it is stored).
    let named = |object: &str| object.trim_start_matches("packs/").to_string();
    // What, where, the backup it breaks, the byte flipped (of the object's length).
    type Flip<'a> = (&'a str, &'a String, Option<&'a String>, fn(usize) -> usize);
    let flips: [Flip; 6] = [
        ("manifest: a bit flipped", &m1, Some(&b1), |n| n / 2),
        ("index: a bit flipped", &i1, Some(&b1), |n| n / 2),
        ("pack: a bit flipped in a chunk", &p1, Some(&b1), |n| n / 2),
        ("pack: a bit flipped in its trailer", &p1, Some(&b1), |n| {
            n - 20
        }),
        ("pack: its framing (version byte)", &p1, Some(&b1), |n| {
            n - 1
        }),
        ("key (not in use): a bit flipped", &added_key, None, |n| {
            n / 2
        }),
    ];
    for (what, object, breaks, offset) in flips {
        let p = at(object);
        add(
            what,
            &[&named(object)],
            breaks.map(String::as_str),
            Box::new(move |r| flip_at(&p(r), offset)),
        );
    }
    for (kind, object, other) in [
        ("manifest", &m1, &m2),
        ("index", &i1, &i2),
        ("pack", &p1, &p2),
    ] {
        let p = at(object);
        add(
            &format!("{kind}: cut short"),
            &[&named(object)],
            Some(&b1),
            Box::new(move |r| cut(&p(r))),
        );
        let (pa, pb) = (at(object), at(other));
        add(
            &format!("{kind}: swapped with another"),
            &[&named(object), &named(other)],
            Some(&b1),
            Box::new(move |r| swap(&pa(r), &pb(r))),
        );
    }
    let p = at(&i2);
    let forged = plain_index.clone();
    add(
        "index: a plaintext one with its checksum",
        &[&i2],
        Some(&b2),
        Box::new(move |r| std::fs::write(p(r), &forged).unwrap()),
    );
    let p = at(&added_key);
    add(
        "key (not in use): its wrapped key edited, checksum recomputed",
        &[&added_key],
        None,
        Box::new(move |r| {
            let mut key = KeyFile::unseal(&std::fs::read(p(r)).unwrap()).unwrap();
            let at = key.wrapped.len() / 2;
            let replaced = if &key.wrapped[at..=at] == "A" {
                "B"
            } else {
                "A"
            };
            key.wrapped.replace_range(at..=at, replaced);
            std::fs::write(p(r), key.seal()).unwrap();
        }),
    );
    let (pa, in_use) = (at(&added_key), at(&keys_before[0]));
    add(
        "key (not in use): replaced by the one in use",
        &[&added_key],
        None,
        Box::new(move |r| std::fs::copy(in_use(r), pa(r)).map(|_| ()).unwrap()),
    );

    let pristine = enc.root.join("pristine");
    crate::common::copy_tree(&repo, &pristine);
    for (n, case) in cases.iter().enumerate() {
        let work = enc.root.join(format!("case-{n}"));
        let damaged = work.join("repo");
        crate::common::copy_tree(&pristine, &damaged);
        (case.apply)(&damaged);
        let url = repo_url(&damaged);
        let verify = enc.run(&["verify", "--repo", &url, "--read-data", "--json"]);
        let said = format!("{}{}", verify.stdout(), verify.stderr());
        assert_eq!(verify.code(), 1, "{}: {said}", case.what);
        for named in &case.named {
            assert!(
                said.contains(named),
                "{}: {named} not named in {said}",
                case.what
            );
        }

        let live = work.join("live");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(live.join("keep-me"), "live data").unwrap();
        let backup = case.breaks.clone().unwrap_or_else(|| b1.clone());
        let restore = enc.run(&[
            "restore",
            "--repo",
            &url,
            &backup,
            "--to",
            live.to_str().unwrap(),
            "--yes",
            "--no-safety-backup",
        ]);
        if case.unread && restore.code() == 0 {
            let source = if backup == b1 { &enc.data } else { &other };
            assert_eq!(tree_hashes(&live), tree_hashes(source), "{}", case.what);
        } else if case.breaks.is_some() {
            assert_eq!(restore.code(), 1, "{}: {}", case.what, restore.stderr());
            assert_eq!(
                std::fs::read_dir(&live).unwrap().count(),
                1,
                "{}",
                case.what
            );
        } else {
            restore.expect_code(0);
            assert_eq!(tree_hashes(&live), tree_hashes(&enc.data), "{}", case.what);
        }
        let beside: Vec<String> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "repo" && n != "live")
            .collect();
        assert!(beside.is_empty(), "{}: left {beside:?}", case.what);
    }

    // A forged lock stops a backup, named; the key file in use damaged is named when opening.
    let work = enc.root.join("lock");
    crate::common::copy_tree(&pristine, &work);
    std::fs::create_dir_all(work.join("locks")).unwrap();
    let lock = format!("locks/{}.json", "e".repeat(32));
    std::fs::write(work.join(&lock), br#"{"type":"vecdrill-lock","version":1}"#).unwrap();
    let run = enc.run(&[
        "backup",
        "--repo",
        &repo_url(&work),
        "--chroma-dir",
        enc.data.to_str().unwrap(),
    ]);
    run.expect_code(3);
    assert!(
        run.stderr().contains(&lock) && run.stderr().contains("delete that object"),
        "{}",
        run.stderr()
    );
    flip_at(&work.join(&keys_before[0]), |n| n / 2);
    let run = enc.run(&["list", "--repo", &repo_url(&work)]);
    run.expect_code(2);
    assert!(run.stderr().contains(&keys_before[0]), "{}", run.stderr());
}

#[test]
fn issue_20_a_drill_with_a_wrong_password_stops_before_its_first_step() {
    let enc = Encrypted::new();
    let marker = enc.root.join("first-step-ran");
    let text = format!(
        "name: encrypted-drill\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:9\n  data_dir: {data}\n\
         repo: {repo}\n\
         steps:\n  - {{ do: shell, with: {{ command: touch {marker} }} }}\n  \
         - {{ do: restore, with: {{ backup: latest }} }}\n",
        data = enc.data.display(),
        repo = enc.repo,
        marker = marker.display(),
    );
    let path = enc.root.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    let reports = enc.root.join("reports");
    for (env, said) in [
        (
            vec![("VECDRILL_PASSWORD", "not the password".to_string())],
            "opens none",
        ),
        (Vec::new(), "no password was given"),
    ] {
        let run = crate::common::run_scenario(&path, &reports, &[], &env);
        run.expect_code(2);
        assert!(run.stderr().contains(said), "{}", run.stderr());
        assert!(
            !run.stderr().contains("not the password"),
            "{}",
            run.stderr()
        );
        assert!(!marker.exists(), "a step ran");
        assert!(!reports.exists(), "a run was started");
    }

    // The repository a copy step copies into is checked too: under another password, the
    // drill stops before its first step, not at the copy.
    let other = repo_url(&enc.root.join("other"));
    vecdrill_env(
        ["init", "--repo", &other],
        &[("VECDRILL_PASSWORD", "another password".into())],
    )
    .expect_code(0);
    let text = format!(
        "name: encrypted-copy-drill\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:9\n  data_dir: {data}\n\
         repo: {repo}\n\
         steps:\n  - {{ do: shell, with: {{ command: touch {marker} }} }}\n  \
         - {{ do: copy, with: {{ to: \"{other}\" }} }}\n",
        data = enc.data.display(),
        repo = enc.repo,
        marker = marker.display(),
    );
    std::fs::write(&path, text).unwrap();
    let run = crate::common::run_scenario(
        &path,
        &reports,
        &[],
        &[("VECDRILL_PASSWORD", PASSWORD.to_string())],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("opens none") && run.stderr().contains(&other),
        "{}",
        run.stderr()
    );
    assert!(!marker.exists(), "a step ran");
}

/// tests/fixtures/repo-format-1 was written by vecdrill at commit 34af40d, before encryption
/// existed: a backup of a 20-record Chroma directory, tagged `written-before-encryption`.
#[test]
fn issue_20_a_repository_written_before_encryption_still_reads_and_takes_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    crate::common::copy_tree(
        &crate::common::project_root().join("tests/fixtures/repo-format-1"),
        &repo_dir,
    );
    let url = repo_url(&repo_dir);
    let config_before = std::fs::read(repo_dir.join("config")).unwrap();
    let listed = vecdrill(["list", "--repo", &url, "--json"]);
    listed.expect_code(0);
    assert_eq!(listed.json()[0]["tags"][0], "written-before-encryption");
    vecdrill(["verify", "--repo", &url, "--read-data"]).expect_code(0);
    let info = vecdrill(["info", "--repo", &url, "latest", "--json"]);
    info.expect_code(0);
    assert_eq!(info.json()["encrypted"], false);
    let to = tmp.path().join("restored");
    vecdrill([
        "restore",
        "--repo",
        &url,
        "latest",
        "--to",
        to.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(0);
    for file in info.json()["files"].as_array().unwrap() {
        let bytes = std::fs::read(to.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            file["hash"].as_str().unwrap()
        );
    }

    // A new backup into it (with a password in the environment: it must not matter) stays in
    // the old format: the config unchanged, chunks zstd only, pack names unkeyed BLAKE3.
    let fresh = seeded_data_dir(&tmp.path().join("fresh"), &[("fresh", 40, 8)]);
    let packs_before = files_under(&repo_dir.join("packs"));
    vecdrill_env(
        [
            "backup",
            "--repo",
            &url,
            "--chroma-dir",
            fresh.to_str().unwrap(),
        ],
        &[("VECDRILL_PASSWORD", PASSWORD.into())],
    )
    .expect_code(0);
    assert_eq!(
        std::fs::read(repo_dir.join("config")).unwrap(),
        config_before
    );
    for pack in files_under(&repo_dir.join("packs")) {
        let bytes = std::fs::read(&pack).unwrap();
        assert_eq!(
            pack.file_name().unwrap().to_string_lossy(),
            blake3::hash(&bytes).to_hex().as_str()
        );
        assert_eq!(bytes[bytes.len() - 1], 1, "pack version byte");
    }
    for index in files_under(&repo_dir.join("index")) {
        let text = std::fs::read_to_string(&index).unwrap();
        assert!(!text.contains("xchacha"), "{text}");
    }
    assert!(files_under(&repo_dir.join("packs")).len() > packs_before.len());
    vecdrill(["prune", "--repo", &url, "--keep-last", "1"]).expect_code(0);
    vecdrill(["verify", "--repo", &url, "--read-data"]).expect_code(0);
}
