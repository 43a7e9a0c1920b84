//! Issue 25 (`--quiet`): nothing printed when a command succeeds, for cron; a failure prints
//! what it would have, its error included, with the same exit code.

use crate::common::{repo_url, seeded_data_dir, vecdrill};

#[test]
fn issue_25_quiet_prints_nothing_on_success_and_everything_on_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 40, 8)]);
    let repo = repo_url(&tmp.path().join("repo"));

    // A first backup creates the repository (a warning: unencrypted) and reports itself:
    // with --quiet, neither.
    let backed = vecdrill([
        "--quiet",
        "backup",
        "--repo",
        &repo,
        "--chroma-dir",
        data.to_str().unwrap(),
    ]);
    backed.expect_code(0);
    assert_eq!(backed.stdout(), "");
    assert_eq!(backed.stderr(), "");
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "the backup was made");

    // A failure: its error and hint, with its exit code.
    let failed = vecdrill([
        "-q",
        "restore",
        "--repo",
        &repo,
        "no-such-backup",
        "--to",
        tmp.path().join("to").to_str().unwrap(),
    ]);
    failed.expect_code(2);
    assert!(
        failed.stderr().contains("error: no backup"),
        "{}",
        failed.stderr()
    );
    assert!(failed.stderr().contains("hint:"), "{}", failed.stderr());

    // A check that fails: its results (stdout) are shown after all.
    let checked = vecdrill(["-q", "check", "--repo", &repo, "--max-backup-age", "0s"]);
    checked.expect_code(1);
    assert!(checked.stdout().contains("FAIL"), "{}", checked.stdout());
    // And one that passes says nothing.
    let fine = vecdrill(["-q", "check", "--repo", &repo, "--max-backup-age", "1h"]);
    fine.expect_code(0);
    assert_eq!(fine.stdout(), "");
    assert_eq!(fine.stderr(), "");
}

/// Seed 002's cron line (`--quiet --max-backups 30`) works as written: `--max-backups` is
/// `--keep-last`, and the rotation is as silent as the backup.
#[test]
fn issue_25_seed_002s_cron_flags_rotate_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 20, 4)]);
    let repo = repo_url(&tmp.path().join("repo"));
    let dir = data.to_str().unwrap();
    for _ in 0..3 {
        let run = vecdrill([
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            dir,
            "--quiet",
            "--max-backups",
            "2",
        ]);
        run.expect_code(0);
        assert_eq!((run.stdout().as_str(), run.stderr().as_str()), ("", ""));
    }
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    // Seed 001's cleanup spelling, `--keep`, is prune's --keep-last.
    vecdrill(["prune", "--repo", &repo, "--keep", "1"]).expect_code(0);
    let listed = vecdrill(["list", "--repo", &repo, "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
}
