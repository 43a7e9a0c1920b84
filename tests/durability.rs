//! What a power cut would leave. A backup to a local repository publishes each object only
//! once its bytes are synced, syncs the directory after, and publishes the manifest only after
//! every pack and index it needs is durable; a restore syncs every file and directory before
//! swapping the copy in, and the swap before deleting what was there.
//!
//! A power cut cannot be staged here, so the tests read the order of the system calls that
//! decide it (fsync, rename, unlink), traced by strace, which `.ci/setup` installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{project_root, repo_url, seeded_data_dir};

/// One traced system call that matters for durability, in the order they happened.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Fsync(PathBuf),
    /// `exchange`: both swapped in one `renameat2(RENAME_EXCHANGE)`.
    Rename {
        from: PathBuf,
        to: PathBuf,
        exchange: bool,
    },
    Unlink(PathBuf),
}

/// Run the vecdrill binary under strace and return its durability calls in order.
fn traced(args: &[&str]) -> Vec<Call> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let history = tempfile::tempdir().unwrap();
    let output = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "4096", "-o"])
        .arg(trace.path())
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,rmdir",
            "--",
            env!("CARGO_BIN_EXE_vecdrill"),
        ])
        .args(args)
        .current_dir(project_root())
        .env("VECDRILL_HISTORY", history.path().join("history.sqlite"))
        .output()
        .expect("strace runs (bash .ci/setup installs it)");
    assert!(
        output.status.success(),
        "vecdrill {args:?} under strace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(trace.path()).unwrap();
    let calls: Vec<Call> = text.lines().filter_map(parse).collect();
    assert!(
        calls.iter().any(|c| matches!(c, Call::Fsync(_))),
        "strace recorded no fsync at all:\n{text}"
    );
    calls
}

/// A strace line (`PID name(args) = rc`, or an `<unfinished ...>` call whose arguments are
/// already printed) as a [`Call`]; failed calls and resumptions are skipped.
fn parse(line: &str) -> Option<Call> {
    // strace pads the pid: `9514  fsync(...)`.
    let (_pid, call) = line.split_once(' ')?;
    let call = call.trim_start();
    if call.starts_with("<...") || call.contains("= -1") {
        return None;
    }
    let (name, args) = call.split_once('(')?;
    let quoted: Vec<PathBuf> = args
        .split('"')
        .skip(1)
        .step_by(2)
        .map(PathBuf::from)
        .collect();
    match name {
        "fsync" | "fdatasync" => {
            // fsync(9</tmp/repo/packs/ab>) = 0
            let path = args.split_once('<')?.1.split_once('>')?.0;
            Some(Call::Fsync(PathBuf::from(path)))
        }
        "rename" | "renameat" | "renameat2" => {
            let [from, to] = <[PathBuf; 2]>::try_from(quoted).ok()?;
            Some(Call::Rename {
                from,
                to,
                exchange: args.contains("RENAME_EXCHANGE"),
            })
        }
        "unlink" | "unlinkat" | "rmdir" => {
            // unlinkat(5</tmp/x/.data.before-restore-…>, "chroma.sqlite3", 0): relative to the fd.
            let base = args
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(dir, _)| PathBuf::from(dir))
                .unwrap_or_default();
            Some(Call::Unlink(base.join(quoted.first()?)))
        }
        _ => None,
    }
}

fn is_fsync_of(call: &Call, path: &Path) -> bool {
    matches!(call, Call::Fsync(p) if p == path)
}

#[test]
fn a_local_backup_is_durable_before_its_manifest_is_published() {
    let root = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(root.path(), &[("docs", 300, 8)]);
    let repo_dir = root.path().join("repo");
    let repo = repo_url(&repo_dir);
    let calls = traced(&[
        "backup",
        "--repo",
        &repo,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--json",
    ]);
    let repo_dir = repo_dir.canonicalize().unwrap();

    // Each object: its staged bytes synced, then renamed into place, then its directory synced.
    let published: Vec<(PathBuf, usize, usize)> = calls
        .iter()
        .enumerate()
        .filter_map(|(at, call)| match call {
            Call::Rename { from, to, .. } if to.starts_with(&repo_dir) => Some((from, to, at)),
            _ => None,
        })
        .map(|(from, to, renamed_at)| {
            let synced = calls[..renamed_at]
                .iter()
                .position(|c| is_fsync_of(c, from));
            assert!(
                synced.is_some(),
                "{} was published without syncing its bytes first",
                to.display()
            );
            let dir_synced = calls[renamed_at..]
                .iter()
                .position(|c| is_fsync_of(c, to.parent().unwrap()))
                .map(|i| renamed_at + i)
                .unwrap_or_else(|| panic!("{}'s directory was never synced", to.display()));
            (to.clone(), renamed_at, dir_synced)
        })
        .collect();
    let kind = |path: &Path| {
        path.strip_prefix(&repo_dir)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let manifests: Vec<_> = published
        .iter()
        .filter(|p| kind(&p.0) == "snapshots")
        .collect();
    assert_eq!(manifests.len(), 1, "one manifest published: {published:?}");
    let data_objects: Vec<_> = published
        .iter()
        .filter(|p| matches!(kind(&p.0).as_str(), "packs" | "index"))
        .collect();
    assert!(
        data_objects.iter().any(|p| kind(&p.0) == "packs"),
        "no pack was published: {published:?}"
    );
    // Every object on disk went through this path, none was written in place.
    for file in crate::common::files_under(&repo_dir) {
        if matches!(kind(&file).as_str(), "packs" | "index" | "snapshots") {
            assert!(
                published.iter().any(|p| p.0 == file),
                "{} was never published by a rename",
                file.display()
            );
        }
    }
    let manifest_at = manifests[0].1;
    for (object, _, durable_at) in &data_objects {
        assert!(
            *durable_at < manifest_at,
            "the manifest was published before {} was durable",
            object.display()
        );
    }
}

#[test]
fn a_restore_is_durable_before_the_previous_data_is_deleted() {
    let root = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(root.path(), &[("docs", 300, 8)]);
    let repo = repo_url(&root.path().join("repo"));
    crate::common::backup_json(&repo, &data, &[]);
    let calls = traced(&[
        "restore",
        "--repo",
        &repo,
        "latest",
        "--to",
        data.to_str().unwrap(),
        "--yes",
        "--no-safety-backup",
        "--json",
    ]);
    let target = data.canonicalize().unwrap();
    let parent = target.parent().unwrap();

    // The swap: the restored copy exchanged with the live directory in one atomic call, so the
    // live path is never absent.
    let (staging, swapped_at) = calls
        .iter()
        .enumerate()
        .find_map(|(at, call)| match call {
            Call::Rename {
                from,
                to,
                exchange: true,
            } if to == &target => Some((from.clone(), at)),
            _ => None,
        })
        .expect("the restored copy was exchanged with the live directory");
    let before_swap = &calls[..swapped_at];
    // The copy was written under a staging name, then renamed to the swap's name.
    let written_at = before_swap
        .iter()
        .rev()
        .find_map(|call| match call {
            Call::Rename {
                from,
                to,
                exchange: false,
            } if to == &staging => Some(from.clone()),
            _ => None,
        })
        .expect("the checked copy was renamed to its swap name");
    for file in crate::common::files_under(&target) {
        let staged = written_at.join(file.strip_prefix(&target).unwrap());
        assert!(
            before_swap.iter().any(|c| is_fsync_of(c, &staged)),
            "{} was swapped in before it was synced",
            staged.display()
        );
        let directory = staged.parent().unwrap();
        assert!(
            before_swap.iter().any(|c| is_fsync_of(c, directory)),
            "directory {} was swapped in before it was synced",
            directory.display()
        );
    }
    let parent_synced = calls[swapped_at..]
        .iter()
        .position(|c| is_fsync_of(c, parent))
        .map(|i| swapped_at + i)
        .expect("the swap was never made durable");
    assert!(
        !calls[..swapped_at]
            .iter()
            .any(|c| matches!(c, Call::Rename { from, .. } if from == &target)),
        "the live directory was moved away before the swap"
    );
    // After the exchange the previous data is where the restored copy was staged.
    let aside = staging.clone();
    let first_deletion = calls
        .iter()
        .position(|c| matches!(c, Call::Unlink(p) if p.starts_with(&aside)))
        .expect("--no-safety-backup deletes the previous data");
    assert!(
        parent_synced < first_deletion,
        "the previous data was deleted before the swap was durable"
    );
    assert!(!aside.exists(), "the previous data is gone, as asked");
}
