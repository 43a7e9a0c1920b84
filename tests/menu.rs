//! Issue 25: `vecdrill menu`, seed 002's interactive tool, driven through a pseudo-terminal:
//! list, restore with its pre-restore backup and confirmation, verify, exit; and never a
//! prompt without a terminal.

use serde_json::Value;

use crate::common::{
    add_records, backup_json, repo_url, tree_hashes, vecdrill, vecdrill_on_terminal, workspace,
};

fn list(repo: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["list", "--repo", repo, "--json"];
    args.extend_from_slice(extra);
    let run = vecdrill(&args);
    run.expect_code(0);
    run.json().as_array().unwrap().clone()
}

/// Add records in a new collection, so that the data differs from the backup.
fn change(data: &std::path::Path) {
    add_records(data, "later", 40, 8);
}

#[test]
fn issue_25_the_menu_lists_then_restores_after_a_pre_restore_backup_and_confirmation() {
    let ws = workspace(&[("docs", 600, 16)]);
    let taken = backup_json(&ws.repo, &ws.data, &[]);
    let id = taken["backup"]["manifest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let backed_up = tree_hashes(&ws.data);
    change(&ws.data);
    let changed = tree_hashes(&ws.data);
    assert_ne!(changed, backed_up);

    let data = ws.data.to_str().unwrap();
    // list; restore backup 1 into the directory (Enter: the one given), yes; exit.
    let run = vecdrill_on_terminal(
        &["menu", "--repo", &ws.repo, "--chroma-dir", data],
        &["2\r", "5\r", "1\r", "\r", "y\r", "8\r"],
        None,
    );
    let shown = run.stdout();
    assert_eq!(run.code(), 0, "{shown}");
    // Each choice shows the command that does the same.
    for line in [
        format!("$ vecdrill list --repo {}", ws.repo),
        format!(
            "$ vecdrill restore --repo {} {id} --to {data} --dry-run",
            ws.repo
        ),
        format!(
            "$ vecdrill backup --repo {} --chroma-dir {data} --tag pre-restore",
            ws.repo
        ),
        format!(
            "$ vecdrill restore --repo {} {id} --to {data} --yes",
            ws.repo
        ),
    ] {
        assert!(shown.contains(&line), "missing {line:?} in:\n{shown}");
    }
    assert!(shown.contains("verified:"), "{shown}");
    // The data is the backup's again; what was there is a backup of its own.
    assert_eq!(tree_hashes(&ws.data), backed_up);
    let backups = list(&ws.repo, &[]);
    assert_eq!(backups.len(), 2);
    let pre = backups
        .iter()
        .find(|b| b["tags"] == serde_json::json!(["pre-restore"]))
        .expect("a pre-restore backup");
    let scratch = tempfile::tempdir().unwrap();
    let to = scratch.path().join("chroma");
    crate::common::restore_run(&ws.repo, pre["id"].as_str().unwrap(), &to, &[]).expect_code(0);
    assert_eq!(tree_hashes(&to), changed);
}

#[test]
fn issue_25_a_no_at_the_menus_confirmation_restores_nothing() {
    let ws = workspace(&[("docs", 300, 8)]);
    backup_json(&ws.repo, &ws.data, &[]);
    change(&ws.data);
    let before = tree_hashes(&ws.data);
    let data = ws.data.to_str().unwrap();
    let run = vecdrill_on_terminal(
        &["menu", "--repo", &ws.repo, "--chroma-dir", data],
        // A backup named before-upgrade (a directory nobody serves), then a restore declined
        // (after an answer that is neither).
        &[
            "1\r",
            "\r",
            "\r",
            "before-upgrade\r",
            "5\r",
            "1\r",
            "\r",
            "sure\r",
            "n\r",
            "8\r",
        ],
        None,
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    // An answer that is neither yes nor no is asked again, not taken for either.
    assert!(run.stdout().contains("answer y or n"), "{}", run.stdout());
    let tags: Vec<Value> = list(&ws.repo, &[])
        .iter()
        .map(|b| b["tags"].clone())
        .collect();
    assert!(
        tags.contains(&serde_json::json!(["before-upgrade"])),
        "{tags:?}"
    );
    assert!(
        run.stdout().contains("nothing restored"),
        "{}",
        run.stdout()
    );
    assert_eq!(tree_hashes(&ws.data), before);
    assert!(!run.stdout().contains("--yes"), "{}", run.stdout());
}

#[test]
fn issue_25_the_menu_asks_an_encrypted_repositorys_password_once() {
    let ws = workspace(&[("docs", 300, 8)]);
    let pw = ws.tmp.path().join("pw");
    std::fs::write(&pw, "menu secret").unwrap();
    let repo = repo_url(&ws.tmp.path().join("sealed"));
    backup_json(&repo, &ws.data, &["--password-file", pw.to_str().unwrap()]);
    let offsite = repo_url(&ws.tmp.path().join("offsite"));
    let offsite_answer = format!("{offsite}\r");
    // The password; list; verify backup 1 reading every byte; show it; copy it into a new
    // repository, encrypted as its source is, under the new password asked for it; exit.
    let run = vecdrill_on_terminal(
        &["menu", "--repo", &repo],
        &[
            "menu secret\r",
            "2\r",
            "4\r",
            "1\r",
            "\r",
            "3\r",
            "1\r",
            "6\r",
            "1\r",
            &offsite_answer,
            "offsite secret\r",
            "offsite secret\r",
            "8\r",
        ],
        None,
    );
    let shown = run.stdout();
    assert_eq!(run.code(), 0, "{shown}");
    // The copy's command read the source with the password typed once.
    assert!(shown.contains(&format!("--repo {offsite}")), "{shown}");
    let offsite_pw = ws.tmp.path().join("offsite-pw");
    std::fs::write(&offsite_pw, "offsite secret").unwrap();
    let offsite_pw = ["--password-file", offsite_pw.to_str().unwrap()];
    assert_eq!(list(&offsite, &offsite_pw).len(), 1, "{shown}");
    vecdrill(["list", "--repo", &offsite]).expect_code(2);
    assert!(
        shown.contains("enter a password for the new repository"),
        "{shown}"
    );
    assert_eq!(shown.matches("enter the password").count(), 1, "{shown}");
    assert!(shown.contains("--read-data"), "{shown}");
    assert!(
        !shown.contains("menu secret") && !shown.contains("offsite secret"),
        "the password is never shown: {shown}"
    );
    assert!(shown.contains("collection docs"), "{shown}");
}

#[test]
fn issue_25_without_a_terminal_the_menu_never_prompts_and_bare_vecdrill_suggests_it_on_one() {
    let ws = workspace(&[("docs", 50, 4)]);
    let run = vecdrill(["menu", "--repo", &ws.repo]);
    run.expect_code(2);
    assert!(run.stderr().contains("no terminal"), "{}", run.stderr());
    assert!(run.stdout().is_empty());

    // Ctrl-C at a question ends the menu at once.
    let interrupted = vecdrill_on_terminal(&["menu", "--repo", &ws.repo], &["\x03"], None);
    assert_eq!(interrupted.code(), 130, "{}", interrupted.stdout());

    let bare = vecdrill::<[&str; 0], &str>([]);
    bare.expect_code(2);
    assert!(
        !bare.stderr().contains("vecdrill menu"),
        "{}",
        bare.stderr()
    );
    let on_terminal = vecdrill_on_terminal(&[], &[], None);
    assert_eq!(on_terminal.code(), 2);
    assert!(
        on_terminal.stdout().contains("`vecdrill menu`"),
        "{}",
        on_terminal.stdout()
    );
}

/// Removing a backup from the menu asks first, no by default, then runs `forget` with the
/// chosen backup's id: the other backup stays. A backup whose manifest cannot be read is shown,
/// and removed by its id; `q` at the choice goes back to the menu.
#[test]
fn issue_25_the_menu_removes_a_backup_only_when_told_yes() {
    let ws = workspace(&[("docs", 50, 4)]);
    let id = |taken: Value| {
        taken["backup"]["manifest"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = id(backup_json(&ws.repo, &ws.data, &[]));
    let second = id(backup_json(&ws.repo, &ws.data, &[]));
    let damaged = id(backup_json(&ws.repo, &ws.data, &[]));
    let manifest = ws.repo_dir.join(format!("snapshots/{damaged}.json"));
    std::fs::write(&manifest, "{ damaged").unwrap();
    let damaged_answer = format!("{damaged}\r");
    // Remove the older readable one (2nd shown, newest first): declined by default, then
    // confirmed; back with q; then the damaged one, by its id.
    let run = vecdrill_on_terminal(
        &[
            "menu",
            "--repo",
            &ws.repo,
            "--chroma-dir",
            ws.data.to_str().unwrap(),
        ],
        &[
            "7\r",
            "2\r",
            "\r",
            "7\r",
            "2\r",
            "y\r",
            "7\r",
            "q\r",
            "7\r",
            &damaged_answer,
            "y\r",
            "8\r",
        ],
        None,
    );
    let shown = run.stdout();
    assert_eq!(run.code(), 0, "{shown}");
    assert!(shown.contains("nothing removed"), "{shown}");
    assert!(shown.contains(&format!("DAMAGED {damaged}")), "{shown}");
    for removed in [&first, &damaged] {
        let forget = format!("vecdrill forget --repo {} {removed}", ws.repo);
        assert_eq!(shown.matches(&forget).count(), 1, "{shown}");
    }
    assert!(!manifest.exists());
    let ids: Vec<Value> = list(&ws.repo, &[])
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(ids, vec![Value::from(second)]);
}
