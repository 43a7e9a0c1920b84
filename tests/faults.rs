//! Issue 17: SIGKILL at counted system calls of `backup` and `restore`, and what must hold after
//! each: the repository passes `verify --read-data`, every backup `list` shows restores to the
//! data it was taken of, the live directory is as it was or as a committed backup (never
//! absent), the next run succeeds without waiting for a lock, and nothing is left beside the
//! live directory once it has.
//!
//! Kill points are chosen by counted operations: strace's fault injection stops the process
//! on entering its Nth call of a kind (rename, fsync, unlink, open, write, mkdir). strace
//! counts per thread, so N is the Nth call of whichever thread gets there first: many distinct
//! points, each a real moment of a commit or a swap. CI runs a bounded plan;
//! `VECDRILL_FAULTS=full` runs every N up to 40 for every kind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::{copy_tree, files_under, repo_url, seeded_data_dir, tree_hashes, vecdrill};

/// System call kinds a kill point is counted in.
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("rename", "rename,renameat,renameat2"),
    ("fsync", "fsync,fdatasync"),
    ("unlink", "unlink,unlinkat,rmdir"),
    ("open", "openat"),
    ("write", "write,pwrite64"),
    ("mkdir", "mkdir,mkdirat"),
    // A copy (cold and hot captures copy the data directory) and the listing it walks.
    ("copy", "copy_file_range,sendfile"),
    ("readdir", "getdents64"),
];

/// The Ns tried for each kind: a bounded spread in CI, every N up to 40 in full.
pub(crate) fn counts() -> Vec<u32> {
    if std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full") {
        (1..=40).collect()
    } else {
        vec![1, 2, 3, 5, 8]
    }
}

/// Run `vecdrill ARGS` under strace, killed on entering the `n`th call of `syscalls` of some
/// thread; whether it was killed (it may finish first).
pub(crate) fn killed_at(syscalls: &str, n: u32, args: &[&str]) -> bool {
    let history = tempfile::tempdir().unwrap();
    killed_at_with_history(syscalls, n, args, &history.path().join("history.sqlite"))
}

/// [`killed_at`], recording into the history database `history`.
fn killed_at_with_history(syscalls: &str, n: u32, args: &[&str], history: &Path) -> bool {
    let status = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-e")
        .arg(format!("inject={syscalls}:signal=KILL:when={n}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_vecdrill"))
        .args(args)
        .env("VECDRILL_HISTORY", history)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("strace runs (bash .ci/setup installs it)");
    use std::os::unix::process::ExitStatusExt;
    // strace dies of the signal that killed its tracee (or reports it as 128 + the signal).
    match (status.code(), status.signal()) {
        (Some(0), _) => false,
        (Some(137), _) | (None, Some(9)) => true,
        other => panic!("vecdrill {args:?} ended with {other:?}, neither done nor killed"),
    }
}

/// Every backup `list` shows restores, to the tree of the data it was taken of.
fn every_backup_restores(
    repo: &str,
    taken_of: &BTreeMap<String, BTreeMap<String, String>>,
    scratch: &Path,
) -> Result<usize, String> {
    let listed = vecdrill(["list", "--repo", repo, "--json"]);
    if listed.code() != 0 {
        return Err(format!("list: {}", listed.stderr()));
    }
    let mut restored = 0;
    for backup in listed.json().as_array().unwrap() {
        let id = backup["id"].as_str().unwrap();
        let to = scratch.join(format!("check-{id}"));
        let run = vecdrill([
            "restore",
            "--repo",
            repo,
            id,
            "--to",
            to.to_str().unwrap(),
            "--yes",
            "--no-safety-backup",
        ]);
        if run.code() != 0 {
            return Err(format!("backup {id} does not restore: {}", run.stderr()));
        }
        let tree = tree_hashes(&to);
        if !taken_of.values().any(|t| *t == tree) {
            return Err(format!(
                "backup {id} restored data that was never backed up"
            ));
        }
        std::fs::remove_dir_all(&to).unwrap();
        restored += 1;
    }
    Ok(restored)
}

/// Names beside `dir` that a user would trip over: anything but `dir` itself, its safety
/// copies and `keep`.
fn left_beside(dir: &Path, keep: &[&str]) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| *n != name && !n.starts_with(&format!("{name}.before-restore-")))
        .filter(|n| !n.starts_with(&format!("{name}.interrupted-restore-")))
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// The trees of `dir` and of every directory beside it whose name starts with `.NAME.` or
/// `NAME.` (its safety copies, what a restore kept or left): where data that was in `dir`
/// can be.
fn trees_in_and_beside(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == name || n.starts_with(&format!("{name}.")) || n.starts_with(&format!(".{name}."))
        })
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| tree_hashes(&e.path()))
        .collect()
}

/// One injection's own copy of the world: `work/repo`, a copy of the pristine repository, and
/// `work/live`, a copy of `data` with a file of its own (so it differs from every backup).
struct Workplace {
    work: std::path::PathBuf,
    repo_dir: std::path::PathBuf,
    repo: String,
    live: std::path::PathBuf,
    /// The live directory's tree before the injection.
    before: BTreeMap<String, String>,
}

fn workplace(work: std::path::PathBuf, pristine: &Path, data: &Path) -> Workplace {
    let repo_dir = work.join("repo");
    copy_tree(pristine, &repo_dir);
    let live = work.join("live");
    copy_tree(data, &live);
    std::fs::write(live.join("local-only.txt"), "written after the backups").unwrap();
    Workplace {
        repo: repo_url(&repo_dir),
        before: tree_hashes(&live),
        work,
        repo_dir,
        live,
    }
}

#[derive(Default)]
struct Tally {
    runs: usize,
    killed: usize,
    points: std::collections::BTreeSet<String>,
    failures: Vec<String>,
}

/// What the killed command acts on: the live directory (backed up from, restored onto), an
/// archive file (written), or only the repository (pruned, or its lost indexes repaired).
const COMMANDS: &[&str] = &[
    "backup",
    "backup-hot",
    "backup-cold",
    "restore",
    "restore-archive",
    "drill-restore",
    "archive",
    "prune",
    "repair",
];

/// Whether a kill of `command` at a call of `kind` is a kill of vecdrill. strace counts the
/// calls of every process vecdrill starts: a cold backup's stop and start commands open and
/// write (their `sh` and its redirection), so a kill there is a failed service command, which
/// vecdrill reports, not a crash of its own. Those processes never rename, sync, unlink or
/// make directories.
fn kills_vecdrill(command: &str, kind: &str) -> bool {
    command != "backup-cold" || !matches!(kind, "open" | "write")
}

/// Whether `command` replaces the live directory with a backup.
fn restores(command: &str) -> bool {
    matches!(command, "restore" | "restore-archive" | "drill-restore")
}

#[test]
fn issue_17_sigkill_at_counted_calls_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Two states of the data, both backed up in the pristine repository (so a prune has a
    // backup to remove); the live directory then gets a file of its own.
    let first = seeded_data_dir(&tmp.path().join("first"), &[("docs", 600, 16)]);
    let source = tmp.path().join("source");
    copy_tree(&first, &source);
    let pristine = tmp.path().join("pristine");
    let pristine_url = repo_url(&pristine);
    crate::common::backup_json(&pristine_url, &source, &[]);
    std::fs::write(source.join("notes.bin"), vec![7u8; 3 << 20]).unwrap();
    crate::common::backup_json(&pristine_url, &source, &[]);
    let second = source;
    let archive = tmp.path().join("pristine.tar.zst");
    vecdrill([
        "archive",
        "--repo",
        &pristine_url,
        "latest",
        "--out",
        archive.to_str().unwrap(),
    ])
    .expect_code(0);
    let taken_of: BTreeMap<String, BTreeMap<String, String>> = [
        ("first".to_string(), tree_hashes(&first)),
        ("second".to_string(), tree_hashes(&second)),
    ]
    .into();

    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut swap_kills = 0;
    for (kind, syscalls) in KINDS {
        for n in counts() {
            for command in COMMANDS.iter().filter(|c| kills_vecdrill(c, kind)) {
                let Workplace {
                    work,
                    repo_dir,
                    repo,
                    live,
                    before,
                } = workplace(
                    tmp.path().join(format!("{command}-{kind}-{n}")),
                    &pristine,
                    &first,
                );
                // What a backup of the live directory would hold.
                let mut backed_up = taken_of.clone();
                backed_up.insert("live".into(), before.clone());
                let out = work.join("out.tar.zst");
                // A cold backup's service: its state in a file its stop and start commands
                // write; it must be running after every run, killed or not.
                let service = work.join("service");
                std::fs::write(&service, "running\n").unwrap();
                let stop = format!("echo stopped > {}", service.display());
                let start = format!("echo running > {}", service.display());
                // A drill whose one step restores the latest backup into the live directory.
                let scenario = work.join("restore.yaml");
                std::fs::write(
                    &scenario,
                    format!(
                        "name: crash-restore\ntarget: {{ kind: chroma, url: \"http://127.0.0.1:9\", data_dir: {} }}\n\
                         repo: {repo}\nsteps:\n  - {{ id: restore, do: restore, with: {{ backup: latest }} }}\n",
                        live.display()
                    ),
                )
                .unwrap();
                let reports = work.join("reports");
                let (scenario_str, reports_str) =
                    (scenario.to_str().unwrap(), reports.to_str().unwrap());
                let (live_str, out_str, archive_str) = (
                    live.to_str().unwrap(),
                    out.to_str().unwrap(),
                    archive.to_str().unwrap(),
                );
                let args: Vec<&str> = match *command {
                    "backup" => vec!["backup", "--repo", &repo, "--chroma-dir", live_str],
                    // A copy taken under SQLite's lock into a staging directory beside it.
                    "backup-hot" => vec![
                        "backup",
                        "--repo",
                        &repo,
                        "--chroma-dir",
                        live_str,
                        "--mode",
                        "hot",
                    ],
                    // Stop, copy, start: the service is never left stopped.
                    "backup-cold" => vec![
                        "backup",
                        "--repo",
                        &repo,
                        "--chroma-dir",
                        live_str,
                        "--mode",
                        "cold",
                        "--stop-cmd",
                        &stop,
                        "--start-cmd",
                        &start,
                    ],
                    "restore" => vec![
                        "restore", "--repo", &repo, "latest", "--to", live_str, "--yes",
                    ],
                    "drill-restore" => vec!["run", scenario_str, "--report-dir", reports_str],
                    "restore-archive" => vec![
                        "restore",
                        "--archive",
                        archive_str,
                        "--to",
                        live_str,
                        "--yes",
                    ],
                    "archive" => vec!["archive", "--repo", &repo, "latest", "--out", out_str],
                    "repair" => vec!["repair", "index", "--repo", &repo],
                    _ => vec!["prune", "--repo", &repo, "--keep-last", "1"],
                };
                // A repair starts from lost indexes: the repository verifies only once a run
                // of it has ended (checked after the next run, below).
                let repairs = *command == "repair";
                if repairs {
                    std::fs::remove_dir_all(repo_dir.join("index")).unwrap();
                }
                let tally = tallies.entry(command).or_default();
                tally.runs += 1;
                let killed = killed_at(syscalls, n, &args);
                let mut fail = |what: String| {
                    tally
                        .failures
                        .push(format!("{command} killed at {kind} #{n}: {what}"))
                };
                if killed {
                    tally.killed += 1;
                    tally.points.insert(format!("{kind}#{n}"));
                }
                if !repairs {
                    let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
                    if verify.code() != 0 {
                        fail(format!(
                            "the repository does not verify: {}{}",
                            verify.stdout(),
                            verify.stderr()
                        ));
                    }
                    if let Err(why) = every_backup_restores(&repo, &backed_up, &work) {
                        fail(why);
                    }
                }
                // A killed restore destroys nothing: the data that was live is still there,
                // live or beside it (its safety copy, or the swap the next restore keeps).
                if restores(command) && !trees_in_and_beside(&live).contains(&before) {
                    fail("the data that was live is gone (no safety copy holds it)".into());
                }
                // Killed between the exchange and keeping the safety copy: the previous data
                // is only at the swap, which the next restore must keep.
                let only_at_swap = restores(command)
                    && live.exists()
                    && tree_hashes(&live) != before
                    && !std::fs::read_dir(&work).unwrap().any(|e| {
                        let e = e.unwrap();
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("live.before-restore-")
                            && tree_hashes(&e.path()) == before
                    });
                // The live directory: as it was, or (a restore) a committed backup.
                if !live.exists() {
                    fail("the live directory is gone".into());
                } else {
                    let now = tree_hashes(&live);
                    let restored = restores(command) && taken_of.values().any(|t| *t == now);
                    if now != before && !restored {
                        fail(
                            "the live directory is neither as it was nor a committed backup".into(),
                        );
                    }
                }
                // An archive is whole or absent: what is there restores.
                if out.exists() {
                    let check = work.join("from-archive");
                    let run = vecdrill([
                        "restore",
                        "--archive",
                        out_str,
                        "--to",
                        check.to_str().unwrap(),
                        "--yes",
                    ]);
                    if run.code() != 0 {
                        fail(format!(
                            "a killed archive left a file that does not restore: {}",
                            run.stderr()
                        ));
                    }
                    let _ = std::fs::remove_dir_all(&check);
                }
                let running = || std::fs::read_to_string(&service).unwrap() == "running\n";
                if !running() {
                    fail("the service was left stopped".into());
                }
                // The next run of the same command succeeds at once and tidies up.
                let again = vecdrill(&args);
                if again.code() != 0 {
                    fail(format!("the next run failed: {}", again.stderr()));
                }
                if !running() {
                    fail("the service is stopped after the next run".into());
                }
                if repairs {
                    let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
                    if verify.code() != 0 {
                        fail(format!(
                            "the repository does not verify after the next repair: {}",
                            verify.stdout()
                        ));
                    }
                    if let Err(why) = every_backup_restores(&repo, &backed_up, &work) {
                        fail(why);
                    }
                }
                // What a restore kept of one it interrupted is data that was live or a backup.
                let mut kept_before = false;
                for kept in std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().path()) {
                    let n = kept.file_name().unwrap().to_string_lossy().into_owned();
                    if n.starts_with("live.interrupted-restore-") {
                        let tree = tree_hashes(&kept);
                        kept_before |= tree == before;
                        if tree != before && !taken_of.values().any(|t| *t == tree) {
                            fail(format!("{n} holds neither the live data nor a backup"));
                        }
                    }
                }
                if only_at_swap {
                    swap_kills += 1;
                    if !kept_before {
                        fail("the data that was live is gone: the next run did not keep the swap that held it".into());
                    }
                }
                let left = left_beside(
                    &live,
                    &["repo", "out.tar.zst", "service", "restore.yaml", "reports"],
                );
                if !left.is_empty() {
                    fail(format!(
                        "left beside the live directory after the next run: {left:?}"
                    ));
                }
                // (A killed upload may leave the store's own partial file, `NAME#N`, which no
                // listing shows; a lock is a `.json` object.)
                let locks: Vec<_> = files_under(&repo_dir.join("locks"))
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect();
                if !locks.is_empty() {
                    fail(format!("a lock was left after the next run: {locks:?}"));
                }
                std::fs::remove_dir_all(&work).unwrap();
            }
        }
    }
    eprintln!(
        "command          runs  killed  points  failures  data lost  repos unreadable  locks left  service down"
    );
    for (command, tally) in &tallies {
        let count = |words: &[&str]| {
            tally
                .failures
                .iter()
                .filter(|f| words.iter().any(|w| f.contains(w)))
                .count()
        };
        eprintln!(
            "{command:<15} {:>5}  {:>6}  {:>6}  {:>8}  {:>9}  {:>16}  {:>10}  {:>12}",
            tally.runs,
            tally.killed,
            tally.points.len(),
            tally.failures.len(),
            count(&[
                "does not restore",
                "never backed up",
                "is gone",
                "neither as it was",
                "no safety copy holds it",
                "holds neither",
                "did not keep the swap",
            ]),
            count(&["does not verify"]),
            count(&["lock was left", "next run failed"]),
            count(&["stopped"]),
        );
    }
    eprintln!("restores killed between the exchange and keeping the safety copy: {swap_kills}");
    let failures: Vec<&String> = tallies.values().flat_map(|t| &t.failures).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        swap_kills > 0,
        "no restore was killed between its exchange and its safety copy"
    );
    // The plan must really have hit the commands mid-flight.
    let points: usize = tallies.values().map(|t| t.points.len()).sum();
    assert!(points >= 50, "only {points} kill points hit");
    assert!(tallies["repair"].killed > 0, "no repair was killed");
}

/// Run `script` (sh) in a private mount namespace with a `size` tmpfs mounted at `mount`;
/// what it writes under `out` comes back. Needs the privilege to mount (CI has it, as it has
/// network namespaces).
fn on_a_small_filesystem(mount: &Path, size: &str, script: &str) {
    std::fs::create_dir_all(mount).unwrap();
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} vecdrill-test {} && {script}",
            mount.display()
        ))
        .env("VECDRILL", env!("CARGO_BIN_EXE_vecdrill"))
        .status()
        .expect("unshare runs");
    assert!(status.success(), "the small filesystem could not be set up");
}

#[test]
fn issue_17_a_full_disk_is_a_clear_error_that_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(&tmp.path().join("data"), &[("docs", 2000, 64)]);
    let repo = repo_url(&tmp.path().join("repo"));
    crate::common::backup_json(&repo, &data, &[]);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mount = tmp.path().join("small");
    let history = tmp.path().join("history.sqlite");

    // A restore into a filesystem too small for the staged copy is refused before it starts.
    on_a_small_filesystem(
        &mount,
        "1m",
        &format!(
            "mkdir {m}/live && echo mine > {m}/live/local-only.txt && \
             VECDRILL_HISTORY={h} \"$VECDRILL\" restore --repo {repo} latest --to {m}/live --yes 2> {o}/restore.err; \
             echo $? > {o}/restore.rc; ls -A {m} > {o}/restore.left; cat {m}/live/local-only.txt > {o}/live",
            m = mount.display(),
            h = history.display(),
            o = out.display(),
        ),
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    assert_eq!(read("restore.rc").trim(), "3", "{}", read("restore.err"));
    assert!(
        read("restore.err").contains("needs") && read("restore.err").contains("free"),
        "{}",
        read("restore.err")
    );
    assert_eq!(
        read("restore.left").trim(),
        "live",
        "nothing beside the live directory"
    );
    assert_eq!(read("live").trim(), "mine", "the live data is untouched");

    // A backup into a file:// repository on a full filesystem fails with exit 3, naming the
    // cause, and leaves no backup that would not restore.
    on_a_small_filesystem(
        &mount,
        "1m",
        &format!(
            "VECDRILL_HISTORY={h} \"$VECDRILL\" backup --repo file://{m}/repo --chroma-dir {d} 2> {o}/backup.err; \
             echo $? > {o}/backup.rc; \
             VECDRILL_HISTORY={h} \"$VECDRILL\" list --repo file://{m}/repo --json > {o}/list.json 2> {o}/list.err; \
             VECDRILL_HISTORY={h} \"$VECDRILL\" verify --repo file://{m}/repo > {o}/verify.out 2>&1; echo $? > {o}/verify.rc",
            m = mount.display(),
            h = history.display(),
            d = data.display(),
            o = out.display(),
        ),
    );
    assert_eq!(read("backup.rc").trim(), "3", "{}", read("backup.err"));
    assert!(
        read("backup.err").contains("No space left")
            && read("backup.err").contains("the filesystem is full"),
        "{}",
        read("backup.err")
    );
    let listed: serde_json::Value = serde_json::from_str(&read("list.json")).unwrap_or_default();
    assert_eq!(
        listed.as_array().map(Vec::len).unwrap_or(0),
        0,
        "a backup was committed: {listed}"
    );
}

#[test]
fn issue_17_the_history_survives_sigkill_while_a_drill_records_itself() {
    let tmp = tempfile::tempdir().unwrap();
    // A drill that needs no server: it runs, reports and records itself in a moment.
    let scenario = tmp.path().join("tiny.yaml");
    std::fs::write(
        &scenario,
        "name: tiny\ntarget: { kind: chroma, url: \"http://127.0.0.1:9\" }\n\
         steps:\n  - { id: pause, do: sleep, with: { duration: 0s } }\n",
    )
    .unwrap();
    let history = tmp.path().join("history.sqlite");
    let reports = tmp.path().join("reports");
    let history_str = history.to_str().unwrap();
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
        "--history",
        history_str,
    ];
    let runs = || -> Result<Vec<String>, String> {
        let listed = vecdrill(["history", "--history", history_str, "--json"]);
        if listed.code() != 0 {
            return Err(format!("history unreadable: {}", listed.stderr()));
        }
        let ids: Vec<String> = listed
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        // Whole runs only: each one shows with its objectives and its report.
        for id in &ids {
            let shown = vecdrill(["history", "--history", history_str, "show", id, "--json"]);
            if shown.code() != 0 || shown.json()["detail"].is_null() {
                return Err(format!("run {id} is not whole: {}", shown.stderr()));
            }
        }
        Ok(ids)
    };
    vecdrill(args).expect_code(0);
    let mut recorded = runs().unwrap().len();
    assert_eq!(recorded, 1);
    let (mut killed, mut failures) = (0, Vec::new());
    for (kind, syscalls) in [
        ("fsync", "fsync,fdatasync"),
        ("pwrite", "pwrite64"),
        ("open", "openat"),
    ] {
        for n in counts() {
            if killed_at_with_history(syscalls, n, &args, &history) {
                killed += 1;
            }
            match runs() {
                // One more whole run, or none.
                Ok(ids) if ids.len() == recorded || ids.len() == recorded + 1 => {
                    recorded = ids.len()
                }
                Ok(ids) => {
                    failures.push(format!("{kind} #{n}: {} runs after {recorded}", ids.len()))
                }
                Err(why) => failures.push(format!("{kind} #{n}: {why}")),
            }
        }
    }
    eprintln!("history: {killed} drills killed while recording, {recorded} whole runs kept");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(killed >= 5, "only {killed} kills");
}

/// Run `vecdrill ARGS` under strace, every call of `syscalls` from the `n`th on (of some
/// thread) failing with ENOSPC: a filesystem that fills up part way through.
fn out_of_space_from(syscalls: &str, n: u32, args: &[&str]) -> crate::common::Run {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-e")
        .arg(format!("inject={syscalls}:error=ENOSPC:when={n}+"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_vecdrill"))
        .args(args)
        // cargo's library path makes the dynamic loader search (and open) far more.
        .env_remove("LD_LIBRARY_PATH");
    let description = format!("{command:?}");
    let output = command
        .output()
        .expect("strace runs (bash .ci/setup installs it)");
    crate::common::Run {
        description,
        output,
    }
}

/// Calls a full filesystem fails, and the first call of each that fails: the dynamic
/// loader's own opens come first, so opens fail from the 8th on.
fn enospc_points() -> Vec<(&'static str, &'static str, u32)> {
    let full = std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full");
    let mut points = Vec::new();
    for (kind, syscalls, first, bounded) in [
        ("open", "openat", 8, &[8, 12, 20, 40][..]),
        ("fsync", "fsync,fdatasync", 1, &[1, 2, 4, 8][..]),
        ("mkdir", "mkdir,mkdirat", 1, &[1, 2, 3][..]),
        ("rename", "rename,renameat,renameat2", 1, &[1, 2, 3][..]),
    ] {
        let ns: Vec<u32> = if full {
            (first..first + 30).collect()
        } else {
            bounded.to_vec()
        };
        points.extend(ns.into_iter().map(|n| (kind, syscalls, n)));
    }
    points
}

#[test]
fn issue_17_a_disk_that_fills_part_way_changes_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(&tmp.path().join("data"), &[("docs", 600, 16)]);
    let pristine = tmp.path().join("pristine");
    let pristine_url = repo_url(&pristine);
    crate::common::backup_json(&pristine_url, &data, &[]);
    let backed_up = tree_hashes(&data);
    let (mut runs, mut failed_cleanly, mut failures) = (0, 0, Vec::new());
    for (kind, syscalls, n) in enospc_points() {
        for command in ["restore", "backup"] {
            let Workplace {
                work,
                repo,
                live,
                before,
                ..
            } = workplace(
                tmp.path().join(format!("{command}-{kind}-{n}")),
                &pristine,
                &data,
            );
            let live_str = live.to_str().unwrap();
            let args: Vec<&str> = if command == "restore" {
                vec![
                    "restore", "--repo", &repo, "latest", "--to", live_str, "--yes",
                ]
            } else {
                vec![
                    "backup",
                    "--repo",
                    &repo,
                    "--chroma-dir",
                    live_str,
                    "--no-history",
                ]
            };
            let run = out_of_space_from(syscalls, n, &args);
            runs += 1;
            let mut fail =
                |what: String| failures.push(format!("{command}, ENOSPC from {kind} #{n}: {what}"));
            match run.code() {
                0 => {}
                3 if run.stderr().contains("No space left")
                    && run.stderr().contains("the filesystem is full") =>
                {
                    failed_cleanly += 1
                }
                code => fail(format!("exit {code}, not 0 or a clear 3: {}", run.stderr())),
            }
            // The live data: as it was, or the backup (a restore that succeeded, or one that
            // could not put the previous data back after a second failure) with the previous
            // data kept beside it.
            let now = tree_hashes(&live);
            let restored = command == "restore"
                && now == backed_up
                && trees_in_and_beside(&live).contains(&before);
            if now != before && !restored {
                fail(format!(
                    "the live data changed (exit {}): {}",
                    run.code(),
                    run.stderr()
                ));
            }
            let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
            if verify.code() != 0 {
                fail(format!(
                    "the repository does not verify: {}",
                    verify.stderr()
                ));
            }
            let taken_of: BTreeMap<String, BTreeMap<String, String>> =
                [("data".into(), backed_up.clone()), ("live".into(), before)].into();
            if let Err(why) = every_backup_restores(&repo, &taken_of, &work) {
                fail(why);
            }
            // Once there is space again, the same command succeeds and tidies up after the
            // one that failed.
            let again = vecdrill(&args);
            if again.code() != 0 {
                fail(format!("the next run failed: {}", again.stderr()));
            }
            let left = left_beside(&live, &["repo"]);
            if !left.is_empty() {
                fail(format!(
                    "left beside the live directory after the next run: {left:?}"
                ));
            }
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
    eprintln!("ENOSPC part way: {runs} runs, {failed_cleanly} failed with a clear exit 3, the rest finished; {} problems", failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        failed_cleanly >= runs / 4,
        "only {failed_cleanly} of {runs} runs met a full disk"
    );
}

/// A writer adding records to `stream` through Chroma's API until stopped; how many it has
/// had acknowledged.
struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(url: &str) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, written, url) = (stop.clone(), written.clone(), url.to_string());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let client = vecdrill::targets::chroma::ChromaClient::new(&url);
                    let collection = client
                        .get_or_create_collection("stream", None)
                        .await
                        .unwrap();
                    let mut generator = vecdrill::seed::RecordGenerator::new(17, 16);
                    while !stop.load(Ordering::Relaxed) {
                        let batch = generator.batch(20);
                        client.add(&collection.id, &batch).await.unwrap();
                        written.fetch_add(20, Ordering::Relaxed);
                    }
                });
            })
        };
        Self {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait until `more` records beyond `from` are acknowledged; false after 60 s.
    fn makes_progress(&self, from: u64, more: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.written() < from + more {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written()
    }
}

#[test]
fn issue_17_sigkill_of_a_hot_backup_under_a_writer_loses_nothing() {
    use crate::common::ChromaServer;
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(&tmp.path().join("live"), &[("docs", 600, 16)]);
    let server = ChromaServer::start(&data);
    let writer = Writer::start(&server.url());
    assert!(writer.makes_progress(0, 200), "the writer never started");
    let repo = repo_url(&tmp.path().join("repo"));
    let args = [
        "backup",
        "--repo",
        &repo,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--mode",
        "hot",
        "--max-write-stall",
        "60s",
    ];
    let ns: Vec<u32> = if std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full") {
        (1..=20).collect()
    } else {
        vec![1, 3, 8]
    };
    let (mut runs, mut killed, mut failures) = (0, 0, Vec::new());
    for (kind, syscalls) in KINDS {
        for &n in &ns {
            let before = writer.written();
            runs += 1;
            if killed_at(syscalls, n, &args) {
                killed += 1;
            }
            // Writers never wait on a dead backup: SQLite's lock died with it.
            if !writer.makes_progress(before, 100) {
                failures.push(format!("{kind} #{n}: writes stopped after the kill"));
            }
        }
    }
    // The next backup succeeds and removes what the killed ones staged.
    let again = vecdrill(args);
    if again.code() != 0 {
        failures.push(format!("the next backup failed: {}", again.stderr()));
    }
    let left: Vec<String> = std::fs::read_dir(data.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    if !left.is_empty() {
        failures.push(format!("left beside the live directory: {left:?}"));
    }
    let written = writer.stop();
    // Every acknowledged write is in the live database.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let live_count = runtime.block_on(async {
        let client = vecdrill::targets::chroma::ChromaClient::new(&server.url());
        let stream = client.collection("stream").await.unwrap();
        client.count(&stream.id).await.unwrap()
    });
    if live_count != written {
        failures.push(format!(
            "the live database holds {live_count} of {written} acknowledged records"
        ));
    }
    server.stop();
    let verify = vecdrill(["verify", "--repo", &repo, "--read-data"]);
    if verify.code() != 0 {
        failures.push(format!(
            "the repository does not verify: {}",
            verify.stderr()
        ));
    }
    // Every listed backup restores (its read-back checks open the database and count it).
    let listed = vecdrill(["list", "--repo", &repo, "--json"]);
    let backups = listed.json().as_array().unwrap().clone();
    for backup in &backups {
        let id = backup["id"].as_str().unwrap();
        let to = tmp.path().join(format!("check-{id}"));
        let run = crate::common::restore_run(&repo, id, &to, &[]);
        if run.code() != 0 {
            failures.push(format!("backup {id} does not restore: {}", run.stderr()));
        }
        let _ = std::fs::remove_dir_all(&to);
    }
    eprintln!(
        "hot backup under a writer: {runs} runs, {killed} killed, {} backups committed, {written} records written, {} problems",
        backups.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        killed >= runs / 2,
        "only {killed} of {runs} runs were killed"
    );
}

#[test]
fn issue_17_sigkill_of_an_import_then_a_rerun_imports_every_record_once() {
    use crate::common::{by_id, read_export, ChromaServer};
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(&tmp.path().join("source"), &[("docs", 1500, 16)]);
    let file = tmp.path().join("docs.jsonl.zst");
    let file_str = file.to_str().unwrap();
    vecdrill([
        "export",
        "--chroma-dir",
        data.to_str().unwrap(),
        "--all",
        "--out",
        file_str,
    ])
    .expect_code(0);
    let expected = by_id(&read_export(&file).records["docs"]);
    let server = ChromaServer::start(&tmp.path().join("target"));
    let url = server.url();
    let ns: Vec<u32> = if std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full") {
        (1..=40).collect()
    } else {
        vec![1, 4, 12, 30]
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut runs, mut killed, mut part_way, mut failures) = (0, 0, 0, Vec::new());
    for (kind, syscalls) in [
        ("connect", "connect"),
        ("send", "write,writev,sendto,sendmsg"),
        ("receive", "read,recvfrom,recvmsg"),
    ] {
        for &n in &ns {
            let name = format!("docs-{kind}-{n}");
            // Small batches: the kill lands between upserts.
            let args = [
                "import",
                "--url",
                &url,
                "--in",
                file_str,
                "--collection",
                "docs",
                "--as",
                &name,
                "--batch-size",
                "100",
            ];
            runs += 1;
            if killed_at(syscalls, n, &args) {
                killed += 1;
                let count = runtime.block_on(async {
                    let client = vecdrill::targets::chroma::ChromaClient::new(&url);
                    match client.collection(&name).await {
                        Ok(c) => client.count(&c.id).await.unwrap(),
                        Err(_) => 0,
                    }
                });
                if count > 0 && (count as usize) < expected.len() {
                    part_way += 1;
                }
            }
            // Run again, it completes the import: every record once, as exported.
            let again = vecdrill(args);
            if again.code() != 0 {
                failures.push(format!("{kind} #{n}: the rerun failed: {}", again.stderr()));
                continue;
            }
            let out = tmp.path().join(format!("{name}.jsonl"));
            vecdrill([
                "export",
                "--url",
                &url,
                "--collection",
                &name,
                "--out",
                out.to_str().unwrap(),
            ])
            .expect_code(0);
            let imported = read_export(&out);
            let records = &imported.records[&name];
            if records.len() != expected.len() || by_id(records) != expected {
                failures.push(format!(
                    "{kind} #{n}: {} records after the rerun, {} exported, or their contents differ",
                    records.len(),
                    expected.len()
                ));
            }
        }
    }
    eprintln!(
        "import: {runs} runs, {killed} killed ({part_way} part way through), each rerun checked record by record; {} problems",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(part_way > 0, "no kill landed part way through an import");
    assert!(
        killed >= runs / 2,
        "only {killed} of {runs} runs were killed"
    );
}

/// Issue 20: SIGKILL during `init` of an encrypted repository, `key passwd`, `key add` and an
/// encrypted backup. After each: a password opens the repository (never zero usable keys), it
/// passes `verify --read-data`, and every backup restores to the data it was taken of. A killed
/// `init` leaves either no repository (a second `init` makes one) or one that opens.
#[test]
fn issue_20_sigkill_during_init_key_changes_and_encrypted_backups_never_loses_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 300, 8)]);
    let (old_pw, new_pw) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::write(&old_pw, "the old password").unwrap();
    std::fs::write(&new_pw, "the new password").unwrap();
    let (old, new) = (old_pw.to_str().unwrap(), new_pw.to_str().unwrap());
    let pristine = tmp.path().join("pristine");
    let pristine_url = repo_url(&pristine);
    vecdrill(["init", "--repo", &pristine_url, "--password-file", old]).expect_code(0);
    vecdrill([
        "backup",
        "--repo",
        &pristine_url,
        "--chroma-dir",
        data.to_str().unwrap(),
        "--password-file",
        old,
    ])
    .expect_code(0);
    let taken_of: BTreeMap<String, BTreeMap<String, String>> =
        [("data".to_string(), tree_hashes(&data))].into();
    let opens = |url: &str, password: &str| {
        vecdrill(["list", "--repo", url, "--password-file", password]).code() == 0
    };
    let mut tally = Tally::default();
    let ns = if std::env::var("VECDRILL_FAULTS").as_deref() == Ok("full") {
        counts()
    } else {
        vec![1, 2, 4]
    };
    for command in ["init", "key-passwd", "key-add", "backup"] {
        for (kind, syscalls) in KINDS
            .iter()
            .filter(|(k, _)| !matches!(*k, "copy" | "readdir"))
        {
            for &n in &ns {
                let work = tmp.path().join(format!("{command}-{kind}-{n}"));
                let repo_dir = work.join("repo");
                let url = repo_url(&repo_dir);
                if command != "init" {
                    copy_tree(&pristine, &repo_dir);
                }
                let data_arg = data.to_str().unwrap();
                let args: Vec<&str> = match command {
                    "init" => vec!["init", "--repo", &url, "--password-file", old],
                    "key-passwd" | "key-add" => vec![
                        "key",
                        command.trim_start_matches("key-"),
                        "--repo",
                        &url,
                        "--password-file",
                        old,
                        "--new-password-file",
                        new,
                    ],
                    _ => vec![
                        "backup",
                        "--repo",
                        &url,
                        "--chroma-dir",
                        data_arg,
                        "--read-all",
                        "--password-file",
                        old,
                    ],
                };
                tally.runs += 1;
                if !killed_at(syscalls, n, &args) {
                    continue;
                }
                tally.killed += 1;
                tally.points.insert(format!("{command} at {kind} #{n}"));
                let point = format!("{command} killed at {kind} #{n}");
                if command == "init" && !repo_dir.join("config").exists() {
                    // Nothing made: a second init makes the repository.
                    let again = vecdrill(["init", "--repo", &url, "--password-file", old]);
                    if again.code() != 0 {
                        tally
                            .failures
                            .push(format!("{point}: init again: {}", again.stderr()));
                    }
                    continue;
                }
                let password = if opens(&url, old) {
                    old
                } else if opens(&url, new) {
                    new
                } else {
                    tally
                        .failures
                        .push(format!("{point}: no password opens the repository"));
                    continue;
                };
                let verify = vecdrill([
                    "verify",
                    "--repo",
                    &url,
                    "--read-data",
                    "--password-file",
                    password,
                ]);
                if verify.code() != 0 {
                    tally.failures.push(format!(
                        "{point}: verify: {}{}",
                        verify.stdout(),
                        verify.stderr()
                    ));
                }
                if command != "init" {
                    let listed = vecdrill([
                        "list",
                        "--repo",
                        &url,
                        "--json",
                        "--password-file",
                        password,
                    ]);
                    for backup in listed.json().as_array().unwrap() {
                        let id = backup["id"].as_str().unwrap();
                        let to = work.join(format!("check-{id}"));
                        let run = vecdrill([
                            "restore",
                            "--repo",
                            &url,
                            id,
                            "--to",
                            to.to_str().unwrap(),
                            "--yes",
                            "--password-file",
                            password,
                        ]);
                        if run.code() != 0 || !taken_of.values().any(|t| *t == tree_hashes(&to)) {
                            tally.failures.push(format!(
                                "{point}: backup {id} does not restore: {}",
                                run.stderr()
                            ));
                        }
                    }
                }
                std::fs::remove_dir_all(&work).unwrap();
            }
        }
    }
    eprintln!(
        "{} runs, {} killed at {} distinct points",
        tally.runs,
        tally.killed,
        tally.points.len()
    );
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    // The plan must have killed each command somewhere, or it checked nothing.
    for command in ["init", "key-passwd", "key-add", "backup"] {
        assert!(
            tally
                .points
                .iter()
                .any(|p| p.starts_with(&format!("{command} at"))),
            "{command} was never killed: {:?}",
            tally.points
        );
    }
}
