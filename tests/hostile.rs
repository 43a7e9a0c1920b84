//! Issue 15: regression tests for the defects found by probing the repository, capture and
//! restore paths as an attacker and as a crash would. Each test names the defect it guards.
//! Repository objects are forged the way anyone with write access to a bucket can: edited and
//! resealed with a correct checksum.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vecdrill::repo::format::{Manifest, PackIndex, Sealed};

use crate::common::{
    backup_json, backup_run, copy_tree, files_under, names_in, repo_url, restore_run,
    seeded_data_dir, tree_hashes, vecdrill,
};

/// A small Chroma directory: enough for every file kind, quick to seed.
const SMALL: &[(&str, u64, usize)] = &[("docs", 1000, 8)];

fn small_data_dir(root: &Path) -> PathBuf {
    seeded_data_dir(root, SMALL)
}

/// A temporary directory holding a small Chroma directory and a `file://` repository with one
/// backup of it: (the temporary directory, the data, the repository's directory, its URL).
fn backed_up() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let w = crate::common::workspace(SMALL);
    backup_json(&w.repo, &w.data, &[]);
    (w.tmp, w.data, w.repo_dir, w.repo)
}

fn read_sealed<T: Sealed>(path: &Path) -> T {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_sealed<T: Sealed>(path: &Path, value: &T) {
    std::fs::write(path, value.seal()).unwrap();
}

fn only_manifest(repo_dir: &Path) -> PathBuf {
    let mut manifests = files_under(&repo_dir.join("snapshots"));
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    manifests.remove(0)
}

/// A directory with one file, to see whether anything touched it.
fn victim(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "do not touch").unwrap();
    dir.to_path_buf()
}

#[test]
fn issue_15_1_a_forged_backup_id_never_deletes_or_moves_outside_the_target() {
    let (tmp, _data, repo_dir, repo) = backed_up();
    let mut forged: Manifest = read_sealed(&only_manifest(&repo_dir));
    // The working directory built from this id would be `<parent>/../victim`.
    forged.id = "x/../../victim".into();
    forged.created_at += chrono::Duration::days(1);
    write_sealed(&repo_dir.join("snapshots/forged.json"), &forged);

    let work = tmp.path().join("work");
    let victim = victim(&work.join("victim"));
    let before = tree_hashes(&victim);
    let target = work.join("a/restored");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();

    let restore = restore_run(&repo, "latest", &target, &[]);
    restore.expect_code(1);
    assert!(
        restore.stderr().contains("snapshots/forged.json"),
        "the forged object is named: {}",
        restore.stderr()
    );
    let out = work.join("a/backup.tar.zst");
    vecdrill([
        "archive",
        "--repo",
        &repo,
        "latest",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(1);
    assert_eq!(tree_hashes(&victim), before, "the victim was touched");
    assert!(!target.exists() && !out.exists());
    assert!(
        names_in(&work.join("a")).is_empty(),
        "{:?}",
        names_in(&work.join("a"))
    );

    // An archive carrying such an id is refused the same way.
    std::fs::remove_file(repo_dir.join("snapshots/forged.json")).unwrap();
    vecdrill([
        "archive",
        "--repo",
        &repo,
        "latest",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    let forged_archive = work.join("a/forged.tar.zst");
    rewrite_archive_manifest(&out, &forged_archive, |m| m.id = "x/../../victim".into());
    let restore = vecdrill([
        "restore",
        "--archive",
        forged_archive.to_str().unwrap(),
        "--to",
        target.to_str().unwrap(),
        "--yes",
    ]);
    restore.expect_code(1);
    assert!(
        restore.stderr().contains("not a valid backup id"),
        "{}",
        restore.stderr()
    );
    assert_eq!(tree_hashes(&victim), before, "the victim was touched");
    assert_eq!(
        names_in(&work.join("a")),
        ["backup.tar.zst", "forged.tar.zst"]
    );

    // An id on the command line is checked too.
    vecdrill([
        "restore",
        "--repo",
        &repo,
        "../../victim",
        "--to",
        target.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(2);
    assert_eq!(tree_hashes(&victim), before);
}

/// Copy archive `from` to `to` with its manifest changed by `change` and resealed.
fn rewrite_archive_manifest(from: &Path, to: &Path, change: impl Fn(&mut Manifest)) {
    let decoder = zstd::Decoder::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut input = tar::Archive::new(decoder);
    let encoder = zstd::Encoder::new(std::fs::File::create(to).unwrap(), 3).unwrap();
    let mut output = tar::Builder::new(encoder);
    for (i, entry) in input.entries().unwrap().enumerate() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if i == 0 {
            let mut manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
            change(&mut manifest);
            bytes = manifest.seal();
        }
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        output.append(&header, bytes.as_slice()).unwrap();
    }
    output.into_inner().unwrap().finish().unwrap();
}

#[test]
fn issue_15_2_capture_never_follows_a_link_in_any_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_dir(tmp.path());
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    let outside = victim(&tmp.path().join("outside"));
    let link = data.join("etcssl");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let cold = [
        "--mode",
        "cold",
        "--stop-cmd",
        "true",
        "--start-cmd",
        "true",
    ];
    for extra in [&[][..], &["--mode", "hot"][..], &cold[..]] {
        let run = backup_run(&repo, &data, extra);
        run.expect_code(2);
        assert!(
            run.stderr().contains(link.to_str().unwrap()),
            "the link is named ({extra:?}): {}",
            run.stderr()
        );
    }
    std::fs::remove_file(&link).unwrap();

    // A link to a file inside a segment directory, and a link loop.
    let segment = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir())
        .unwrap()
        .path();
    let file_link = segment.join("extra.bin");
    std::os::unix::fs::symlink(outside.join("precious.txt"), &file_link).unwrap();
    backup_run(&repo, &data, &["--mode", "hot"]).expect_code(2);
    std::fs::remove_file(&file_link).unwrap();
    std::os::unix::fs::symlink(&data, data.join("loop")).unwrap();
    backup_run(&repo, &data, &[]).expect_code(2);
    std::fs::remove_file(data.join("loop")).unwrap();

    assert!(
        !repo_dir.join("snapshots").exists() || files_under(&repo_dir.join("snapshots")).is_empty()
    );
    // Without links, the same directory backs up.
    backup_json(&repo, &data, &[]);
}

/// Change the first entry of every pack index and reseal; returns the changed index files.
fn forge_indexes(repo_dir: &Path, change: impl Fn(&mut PackIndex)) {
    for path in files_under(&repo_dir.join("index")) {
        let mut index: PackIndex = read_sealed(&path);
        change(&mut index);
        write_sealed(&path, &index);
    }
}

#[test]
fn issue_15_3_sizes_read_from_the_repository_are_bounded_before_allocation() {
    let (tmp, _data, repo_dir, repo) = backed_up();
    let pristine = tmp.path().join("pristine");
    copy_tree(&repo_dir, &pristine);
    for raw_length in [1u64 << 40, u64::MAX] {
        forge_indexes(&repo_dir, |index| index.entries[0].raw_length = raw_length);
        let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
        verify.expect_code(1);
        assert!(verify.stdout().contains("index/") || verify.stderr().contains("index/"));
        let target = tmp.path().join("restored");
        let restore = restore_run(&repo, "latest", &target, &[]);
        restore.expect_code(1);
        assert!(!target.exists());
        let left: Vec<String> = names_in(tmp.path())
            .into_iter()
            .filter(|n| n.contains("restore"))
            .collect();
        assert!(left.is_empty(), "a working directory was left: {left:?}");
        std::fs::remove_dir_all(&repo_dir).unwrap();
        copy_tree(&pristine, &repo_dir);
    }
}

#[test]
fn issue_15_4_prune_on_a_pack_shorter_than_its_index_does_not_panic_and_releases_its_lock() {
    let (_tmp, data, repo_dir, repo) = backed_up();
    // A second backup that shares some chunks of the first and not others.
    let server = crate::common::ChromaServer::start(&data);
    vecdrill([
        "seed",
        "--url",
        &server.url(),
        "--collection",
        "more",
        "--count",
        "1000",
        "--dim",
        "8",
    ])
    .expect_code(0);
    server.stop();
    let second = backup_json(&repo, &data, &[]);
    let used: std::collections::HashSet<String> = second["backup"]["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["chunks"].as_array().unwrap().iter())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    // A pack prune must rewrite: some chunks used by the kept backup, some not. Its index says
    // the pack is longer than it is, and a used chunk lies past the real end.
    let mut forged = false;
    for path in files_under(&repo_dir.join("index")) {
        let mut index: PackIndex = read_sealed(&path);
        let is_used = |e: &vecdrill::repo::format::PackEntry| used.contains(&e.id.to_hex());
        if forged || !index.entries.iter().any(is_used) || index.entries.iter().all(is_used) {
            continue;
        }
        let real = index.pack_size;
        index.pack_size = real + 4096;
        let entry = index.entries.iter_mut().find(|e| is_used(e)).unwrap();
        entry.offset = real + 1;
        entry.length = 100;
        write_sealed(&path, &index);
        forged = true;
    }
    assert!(forged, "no partly used pack to forge");
    let prune = vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]);
    prune.expect_code(1);
    assert!(
        prune.stderr().contains("past the end"),
        "{}",
        prune.stderr()
    );
    assert!(
        files_under(&repo_dir.join("locks")).is_empty(),
        "prune left its lock behind"
    );
}

#[test]
fn issue_15_5_an_interrupted_backup_releases_its_lock_and_a_dead_owners_lock_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_dir(tmp.path());
    std::fs::write(data.join("bulk.bin"), noise(200 << 20)).unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let mut child = crate::common::vecdrill_command()
            .args([
                "backup",
                "--repo",
                &repo,
                "--chroma-dir",
                data.to_str().unwrap(),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !repo_dir.join("locks").exists() || files_under(&repo_dir.join("locks")).is_empty() {
            assert!(Instant::now() < deadline, "the backup never took its lock");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the backup ended before its signal"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{signal}");
        assert!(
            files_under(&repo_dir.join("locks")).is_empty(),
            "{signal} left the lock behind"
        );
    }

    // A lock naming a process of this host that has exited is taken over at once.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let here = format!("{} {}", boot.trim(), namespace.display());
    let leave_lock = |pid_space: Option<&str>| {
        std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
        std::fs::write(
            repo_dir.join("locks/left-behind.json"),
            serde_json::to_vec(&serde_json::json!({
                "type": "vecdrill-lock", "version": 1, "exclusive": true, "operation": "prune",
                "hostname": hostname, "pid": pid, "pid_space": pid_space,
                "created_at": chrono::Utc::now(),
            }))
            .unwrap(),
        )
        .unwrap();
    };
    // The same host name is not enough: another container, or a lock that does not say which
    // pid namespace it is from, cannot be judged by its pid and is waited for.
    for elsewhere in [Some("another-boot pid:[1]"), None] {
        leave_lock(elsewhere);
        let refused = backup_run(&repo, &data, &[]);
        assert_ne!(refused.code(), 0, "{elsewhere:?}: {}", refused.stderr());
        assert!(refused.stderr().contains("locked"), "{}", refused.stderr());
    }
    leave_lock(Some(&here));
    let run = backup_run(&repo, &data, &[]);
    run.expect_code(0);
    assert!(
        run.stderr().contains("taking over lock"),
        "{}",
        run.stderr()
    );
    assert!(files_under(&repo_dir.join("locks")).is_empty());
}

/// Incompressible bytes, deterministic.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545f4914f6cdd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn issue_15_6_a_lost_pack_is_stored_again_instead_of_trusted_from_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_dir(tmp.path());
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    let first = backup_json(&repo, &data, &[]);
    let stored_first = &first["backup"]["manifest"]["totals"]["new_chunks"];
    for pack in files_under(&repo_dir.join("packs")) {
        std::fs::remove_file(pack).unwrap();
    }
    for extra in [&[][..], &["--read-all"][..]] {
        let again = backup_json(&repo, &data, extra);
        assert_eq!(
            &again["backup"]["manifest"]["totals"]["new_chunks"], stored_first,
            "every chunk of a lost pack is stored again ({extra:?})"
        );
        let target = tmp.path().join("restored");
        restore_run(&repo, "latest", &target, &["--no-safety-backup"]).expect_code(0);
        assert_eq!(tree_hashes(&target), tree_hashes(&data));
        for pack in files_under(&repo_dir.join("packs")) {
            std::fs::remove_file(pack).unwrap();
        }
    }
}

#[test]
fn issue_15_9_rotation_put_off_by_another_lock_is_no_failure() {
    let (_tmp, data, repo_dir, repo) = backed_up();
    // Another live backup of this host holds a shared lock: this test process.
    std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    std::fs::write(
        repo_dir.join("locks/other.json"),
        serde_json::to_vec(&serde_json::json!({
            "type": "vecdrill-lock", "version": 1, "exclusive": false, "operation": "backup",
            "hostname": hostname, "pid": std::process::id(), "created_at": chrono::Utc::now(),
        }))
        .unwrap(),
    )
    .unwrap();
    let done = backup_json(&repo, &data, &["--keep-last", "1"]);
    assert_eq!(done["backup"]["status"], "created");
    assert!(done["pruned"].is_null());
    assert!(
        done["rotation_deferred"]
            .as_str()
            .unwrap()
            .contains("locked by backup"),
        "{done:#}"
    );
    assert_eq!(files_under(&repo_dir.join("snapshots")).len(), 2);
}

#[test]
fn issue_15_9_partial_files_are_never_opened_through_a_planted_link_and_leftovers_go() {
    let (tmp, data, _, repo) = backed_up();
    let target_of_link = tmp.path().join("victim.txt");
    std::fs::write(&target_of_link, "do not touch").unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The names the old code wrote through: `OUT` with its extension replaced, or `.partial` added.
    for name in [
        "backup.tar.zst.partial",
        "backup.tar.partial",
        "export.jsonl.partial",
    ] {
        std::os::unix::fs::symlink(&target_of_link, out.join(name)).unwrap();
    }
    // What a SIGKILL leaves (a partial file, an archive's working directory) is removed by
    // the next run; a link with such a name is left alone, and so is another output's.
    std::os::unix::fs::symlink(&target_of_link, out.join(".backup.tar.zst.lnk001.partial"))
        .unwrap();
    std::fs::write(out.join(".backup.tar.zst.old001.partial"), "killed").unwrap();
    std::fs::write(out.join(".backup.tar.zst.zst.old002.partial"), "another's").unwrap();
    std::fs::create_dir_all(out.join(".backup.tar.zst.vecdrill-archive-old003/data")).unwrap();
    std::fs::write(out.join(".export.jsonl.old004.partial"), "killed").unwrap();
    vecdrill([
        "archive",
        "--repo",
        &repo,
        "latest",
        "--out",
        out.join("backup.tar.zst").to_str().unwrap(),
    ])
    .expect_code(0);
    vecdrill([
        "export",
        "--chroma-dir",
        data.to_str().unwrap(),
        "--all",
        "--out",
        out.join("export.jsonl").to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&target_of_link).unwrap(),
        "do not touch"
    );
    assert_eq!(
        names_in(&out),
        [
            ".backup.tar.zst.lnk001.partial",
            ".backup.tar.zst.zst.old002.partial",
            "backup.tar.partial",
            "backup.tar.zst",
            "backup.tar.zst.partial",
            "export.jsonl",
            "export.jsonl.partial"
        ]
    );
}

#[test]
fn issue_15_9_restore_refuses_a_link_or_a_nameless_target_before_reading_anything() {
    let (tmp, _data, _, repo) = backed_up();
    let real = victim(&tmp.path().join("real"));
    let before = tree_hashes(&real);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let nameless = [
        format!("{}/.", tmp.path().join("x").display()),
        format!("{}/..", tmp.path().join("x").display()),
        format!("{}/./", tmp.path().join("x").display()),
    ];
    let link_text = link.to_str().unwrap().to_string();
    for (to, words) in std::iter::once((link_text.as_str(), "is a symbolic link")).chain(
        nameless
            .iter()
            .map(|t| (t.as_str(), "must end in the directory's name")),
    ) {
        for extra in [&[][..], &["--no-safety-backup"][..]] {
            let mut args = vec!["restore", "--repo", &repo, "latest", "--to", to, "--yes"];
            args.extend_from_slice(extra);
            let run = vecdrill(&args);
            run.expect_code(2);
            assert!(run.stderr().contains(words), "{to}: {}", run.stderr());
        }
    }
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(tree_hashes(&real), before);
    let left: Vec<String> = names_in(tmp.path())
        .into_iter()
        .filter(|n| n.contains("vecdrill"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn issue_15_9_strings_from_a_repository_cannot_forge_terminal_output() {
    let (_tmp, _data, repo_dir, repo) = backed_up();
    let path = only_manifest(&repo_dir);
    let mut manifest: Manifest = read_sealed(&path);
    manifest.tags = vec!["\x1b[2J\x1b[1;1Hall backups verified".into()];
    manifest.hostname = "host\x1b]0;owned\x07".into();
    write_sealed(&path, &manifest);
    for command in ["list", "info"] {
        let mut args = vec![command, "--repo", &repo];
        if command == "info" {
            args.push("latest");
        }
        let run = vecdrill(&args);
        run.expect_code(0);
        let shown = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{command}: {shown:?}"
        );
        assert!(shown.contains("\\u{1b}[2J"), "{command}: {shown}");
    }
}

#[test]
fn issue_15_7_a_resealed_manifest_that_renames_the_vector_index_metadata_is_not_restored() {
    let (tmp, _data, repo_dir, repo) = backed_up();
    let path = only_manifest(&repo_dir);
    let mut manifest: Manifest = read_sealed(&path);
    let pickle = manifest
        .files
        .iter_mut()
        .find(|f| f.path.ends_with("/index_metadata.pickle"))
        .expect("a flushed vector index has its metadata file");
    pickle.path = pickle
        .path
        .replace("index_metadata.pickle", "renamed.pickle");
    write_sealed(&path, &manifest);
    // Both decide from the manifest alone, before reading any data.
    for read_data in [&[][..], &["--read-data"][..]] {
        let verify = vecdrill(
            [
                &["verify", "--repo", repo.as_str(), "latest"][..],
                read_data,
            ]
            .concat(),
        );
        verify.expect_code(1);
        assert!(
            verify.stdout().contains("index_metadata.pickle"),
            "{}",
            verify.stdout()
        );
    }
    let target = tmp.path().join("restored");
    let run = restore_run(&repo, "latest", &target, &[]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("does not hold") && run.stderr().contains("index_metadata.pickle"),
        "{}",
        run.stderr()
    );
    assert!(!target.exists());
}

#[test]
fn issue_15_7_files_whose_contents_were_swapped_in_a_resealed_manifest_fail_verify_and_restore() {
    let (tmp, _data, repo_dir, repo) = backed_up();
    let path = only_manifest(&repo_dir);
    let mut manifest: Manifest = read_sealed(&path);
    // Two files trade sizes and chunk lists but keep their hashes: every chunk is intact and
    // every size adds up, so only the whole-file hash tells.
    let a = manifest
        .files
        .iter()
        .position(|f| f.path.ends_with("/header.bin"))
        .unwrap();
    let b = manifest
        .files
        .iter()
        .position(|f| f.path.ends_with("/length.bin"))
        .unwrap();
    let (size_a, chunks_a) = (manifest.files[a].size, manifest.files[a].chunks.clone());
    manifest.files[a].size = manifest.files[b].size;
    manifest.files[a].chunks = manifest.files[b].chunks.clone();
    manifest.files[b].size = size_a;
    manifest.files[b].chunks = chunks_a;
    write_sealed(&path, &manifest);
    let verify = vecdrill(["verify", "--repo", &repo, "latest", "--read-data"]);
    verify.expect_code(1);
    assert!(
        verify.stdout().contains("header.bin"),
        "{}",
        verify.stdout()
    );
    assert!(verify.stdout().contains("BLAKE3"), "{}", verify.stdout());
    let target = tmp.path().join("restored");
    let run = restore_run(&repo, "latest", &target, &[]);
    run.expect_code(1);
    assert!(run.stderr().contains("BLAKE3"), "{}", run.stderr());
    assert!(!target.exists());
}

#[test]
fn issue_15_9_an_index_entry_that_does_not_fit_its_pack_is_corrupt_not_a_store_error() {
    let (tmp, _data, repo_dir, repo) = backed_up();
    let pristine = tmp.path().join("pristine");
    copy_tree(&repo_dir, &pristine);
    type Forgery = (&'static str, fn(&mut PackIndex));
    let forgeries: [Forgery; 3] = [
        ("an empty stored length", |index| {
            index.entries[0].length = 0
        }),
        ("an offset past the pack's end", |index| {
            index.entries[0].offset = index.pack_size
        }),
        ("a pack size larger than the pack", |index| {
            index.pack_size += 1000;
            index.entries[0].offset = index.pack_size - index.entries[0].length;
        }),
    ];
    for (what, forge) in forgeries {
        forge_indexes(&repo_dir, forge);
        let restore = restore_run(&repo, "latest", &tmp.path().join("restored"), &[]);
        restore.expect_code(1);
        assert!(
            restore.stderr().contains("corrupt") && !restore.stderr().contains("credentials"),
            "{what}: {}",
            restore.stderr()
        );
        vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(1);
        std::fs::remove_dir_all(&repo_dir).unwrap();
        copy_tree(&pristine, &repo_dir);
    }
}

#[test]
fn issue_15_6_a_chunk_stored_again_after_its_pack_was_damaged_is_read_from_the_intact_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_dir(tmp.path());
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    backup_json(&repo, &data, &[]);
    // Every pack cut short: its index stays (its other chunks may still be readable), and the
    // next backup stores every chunk again, so each chunk now has two indexed locations.
    let damaged = files_under(&repo_dir.join("packs"));
    for pack in &damaged {
        let bytes = std::fs::read(pack).unwrap();
        std::fs::write(pack, &bytes[..bytes.len() - 10]).unwrap();
    }
    // A new file first in the walk, so the chunks stored again land in other packs than before.
    std::fs::write(data.join("0-new.bin"), noise(3 << 20)).unwrap();
    backup_json(&repo, &data, &[]);
    let packs = files_under(&repo_dir.join("packs"));
    assert!(
        damaged.iter().all(|d| packs.contains(d)) && packs.len() > damaged.len(),
        "the damaged packs stay beside new ones"
    );
    let target = tmp.path().join("restored");
    restore_run(&repo, "latest", &target, &[]).expect_code(0);
    assert_eq!(tree_hashes(&target), tree_hashes(&data));
    vecdrill(["verify", "--repo", &repo, "latest", "--read-data"]).expect_code(0);
    // The first backup still names the damaged packs' chunks: it reads from the intact ones too.
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
}

#[test]
fn issue_15_one_damaged_manifest_does_not_hide_the_other_backups_nor_decide_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_dir(tmp.path());
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    let id = |backup: &serde_json::Value| {
        backup["backup"]["manifest"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let oldest = id(&backup_json(&repo, &data, &[]));
    // Ids tell time to the second: the next backups are later than the oldest.
    std::thread::sleep(Duration::from_millis(1100));
    let middle = id(&backup_json(&repo, &data, &["--tag", "middle"]));
    let newest = id(&backup_json(&repo, &data, &["--tag", "newest"]));
    let manifest = |id: &str| repo_dir.join(format!("snapshots/{id}.json"));
    crate::common::flip_byte(&manifest(&oldest), 40);

    let list = vecdrill(["list", "--repo", &repo, "--json"]);
    list.expect_code(1);
    assert!(list.stderr().contains(&oldest), "{}", list.stderr());
    let listed: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let verify = vecdrill(["verify", "--repo", &repo]);
    verify.expect_code(1);
    assert!(verify.stdout().contains(&oldest), "{}", verify.stdout());
    // The damaged one is the oldest: `latest` is still decided, backups go on, and prune,
    // which must know every chunk in use, refuses.
    let target = tmp.path().join("restored");
    let info = vecdrill(["info", "--repo", &repo, "latest", "--json"]);
    info.expect_code(0);
    assert_eq!(info.json()["id"], newest.as_str());
    restore_run(&repo, &middle, &target, &[]).expect_code(0);
    backup_json(&repo, &data, &["--tag", "after"]);
    let prune = vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]);
    prune.expect_code(1);
    assert!(prune.stderr().contains(&oldest), "{}", prune.stderr());

    // A damaged manifest as new as the newest readable one may be the real latest.
    let backups: Vec<String> = names_in(&repo_dir.join("snapshots"));
    let last = backups
        .last()
        .unwrap()
        .trim_end_matches(".json")
        .to_string();
    crate::common::flip_byte(&manifest(&last), 40);
    let refused = restore_run(&repo, "latest", &tmp.path().join("other"), &[]);
    refused.expect_code(1);
    assert!(
        refused.stderr().contains(&last) && refused.stderr().contains("name a backup"),
        "{}",
        refused.stderr()
    );
    assert!(!tmp.path().join("other").exists());
}

/// A stray file under `index/` or `locks/` (a file manager's `.DS_Store`, anything not named
/// as vecdrill names them) is not vecdrill's and stops nothing; a well-named pack index that
/// cannot be read leaves out only its own chunks (restore goes on, verify names it, prune
/// refuses), and an unreadable lock holds the repository, named, until it is removed.
#[test]
fn issue_25_stray_and_unreadable_index_and_lock_objects_are_told_apart() {
    let (tmp, data, repo_dir, repo) = backed_up();
    std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
    for stray in ["index/.DS_Store", "index/junk.json", "locks/.DS_Store"] {
        std::fs::write(repo_dir.join(stray), "not vecdrill's").unwrap();
    }
    let to = tmp.path().join("restored");
    restore_run(&repo, "latest", &to, &[]).expect_code(0);
    assert_eq!(tree_hashes(&to), tree_hashes(&data));
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
    let offsite = repo_url(&tmp.path().join("offsite"));
    vecdrill(["copy", "--from-repo", &repo, "--repo", &offsite, "--all"]).expect_code(0);
    backup_run(&repo, &data, &[]).expect_code(0);
    vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]).expect_code(0);

    // A well-named index no pack has: its (no) chunks are left out, with a warning naming it.
    let forged = format!("index/{}.json", "0".repeat(64));
    std::fs::write(repo_dir.join(&forged), "{ damaged").unwrap();
    let again = tmp.path().join("again");
    let restored = restore_run(&repo, "latest", &again, &[]);
    restored.expect_code(0);
    assert!(restored.stderr().contains(&forged), "{}", restored.stderr());
    // Logged to a pipe (cron's mail, a file): no terminal colour codes.
    assert!(
        !restored.stderr().contains('\x1b'),
        "{:?}",
        restored.stderr()
    );
    assert_eq!(tree_hashes(&again), tree_hashes(&data));
    let verified = vecdrill(["verify", "--repo", &repo]);
    verified.expect_code(1);
    assert!(verified.stdout().contains(&forged), "{}", verified.stdout());
    let pruned = vecdrill(["prune", "--repo", &repo, "--keep-last", "1"]);
    pruned.expect_code(1);
    assert!(pruned.stderr().contains(&forged), "{}", pruned.stderr());
    std::fs::remove_file(repo_dir.join(&forged)).unwrap();

    // A well-named lock that cannot be read: named, with what to do; gone, all is well.
    let lock = format!("locks/{}.json", "a".repeat(32));
    std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
    std::fs::write(repo_dir.join(&lock), "{ damaged").unwrap();
    let blocked = backup_run(&repo, &data, &[]);
    blocked.expect_code(3);
    assert!(
        blocked.stderr().contains(&lock) && blocked.stderr().contains("delete that object"),
        "{}",
        blocked.stderr()
    );
    std::fs::remove_file(repo_dir.join(&lock)).unwrap();
    backup_run(&repo, &data, &[]).expect_code(0);
}

/// A damaged manifest stops `prune` (it judges every backup): the way out is `forget` with the
/// backup's whole id, which removes it even unreadable, and `prune` then reclaims its space.
#[test]
fn issue_25_a_damaged_manifest_is_forgotten_by_its_whole_id_and_prune_goes_on() {
    let (_tmp, data, repo_dir, repo) = backed_up();
    let manifest = only_manifest(&repo_dir);
    let id = manifest.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::write(&manifest, "{ damaged").unwrap();
    let kept = backup_json(&repo, &data, &["--read-all"])["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = vecdrill(["prune", "--repo", &repo, "--keep-last", "5"]);
    refused.expect_code(1);
    assert!(
        refused
            .stderr()
            .contains(&format!("vecdrill forget --repo URL {id}")),
        "{}",
        refused.stderr()
    );
    // Nothing by a prefix, nothing that is not there.
    vecdrill(["forget", "--repo", &repo, &id[..8]]).expect_code(2);
    vecdrill(["forget", "--repo", &repo, "20000101T000000Z-00000000"]).expect_code(2);
    assert!(manifest.exists());
    vecdrill(["forget", "--repo", &repo, &id]).expect_code(0);
    assert!(!manifest.exists());
    vecdrill(["prune", "--repo", &repo, "--keep-last", "5"]).expect_code(0);
    let listed = vecdrill(["list", "--repo", &repo, "--json"]);
    listed.expect_code(0);
    assert_eq!(listed.json()[0]["id"], kept.as_str());
    vecdrill(["verify", "--repo", &repo, "--read-data"]).expect_code(0);
}
