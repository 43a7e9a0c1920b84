//! Issue 15: bounded, deterministic mutation tests over every kind of repository object and
//! over scenario files.
//!
//! Repositories:
//! Each case damages one object of a real repository — a bit flip, a cut, or a field changed
//! and the object resealed with a correct checksum, as anyone with write access to a bucket
//! can — then runs `verify --read-data` and `restore`. Whatever the damage: no panic, no
//! abort, no hang, nothing written beside the target, `verify --read-data` and `restore` agree
//! on whether the backup restores, and a restore that succeeds produced exactly the files its
//! backup records.
//!
//! Scenarios: each shipped scenario damaged at random (a bit flipped, cut short, YAML syntax
//! or a hostile value put in, a line repeated or dropped), then validated: never a crash or a
//! hang, always exit 0 or 2, and every exit 2 names the file with a line and column.
//!
//! CI runs a fixed number of cases from a fixed seed; `VECDRILL_MUTATIONS=N` runs N of each,
//! and `VECDRILL_MUTATION_SEED=S` another sequence.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use vecdrill::repo::format::{Manifest, PackIndex, RepoConfig, Sealed};

use crate::common::{
    copy_tree, files_under, repo_url, seeded_data_dir, tree_hashes, vecdrill, vecdrill_env,
};

const CI_CASES: usize = 60;
const CI_ENCRYPTED_CASES: usize = 40;
const CI_SCENARIO_CASES: usize = 300;

/// Values a forger would try for a number.
fn hostile_number(rng: &mut ChaCha8Rng, near: u64) -> u64 {
    match rng.random_range(0..7) {
        0 => 0,
        1 => near.wrapping_add(1),
        2 => near.wrapping_sub(1),
        3 => 1 << 40,
        4 => u64::MAX,
        5 => near.wrapping_mul(2),
        _ => rng.random(),
    }
}

fn hostile_text(rng: &mut ChaCha8Rng) -> String {
    let choices = [
        "../../victim",
        "x/../../victim",
        "",
        ".",
        "..",
        "/etc/passwd",
        "a//b",
        "\u{1b}[2J",
        "chroma.sqlite3",
    ];
    if rng.random_bool(0.2) {
        return "z".repeat(5000);
    }
    choices[rng.random_range(0..choices.len())].to_string()
}

/// Change one field of a manifest the way a forger would.
fn mutate_manifest(m: &mut Manifest, rng: &mut ChaCha8Rng) -> String {
    let f = rng.random_range(0..m.files.len());
    match rng.random_range(0..12) {
        11 => {
            // The database's own description: what a restore compares the restored one with.
            let collections = m.database["collections"].as_array_mut().unwrap();
            let c = rng.random_range(0..collections.len());
            let count = collections[c]["count"].as_u64().unwrap();
            collections[c]["count"] = hostile_number(rng, count).into();
            "collection count".into()
        }
        9 => {
            m.files[f].path.push_str(".moved");
            "file renamed".into()
        }
        10 => {
            // Same size, other order: only the whole-file hash tells.
            m.files[f].chunks.reverse();
            "chunk list reversed".into()
        }
        0 => {
            m.id = hostile_text(rng);
            "manifest id".into()
        }
        1 => {
            m.files[f].size = hostile_number(rng, m.files[f].size);
            "file size".into()
        }
        2 => {
            m.files[f].chunks.clear();
            "chunk list emptied".into()
        }
        3 => {
            let first = m.files[f].chunks.first().copied();
            m.files[f].chunks.extend(first);
            "chunk duplicated".into()
        }
        4 => {
            m.files[f].chunks.reverse();
            let g = rng.random_range(0..m.files.len());
            let other = m.files[g].chunks.clone();
            m.files[f].chunks = other;
            "chunk lists swapped".into()
        }
        5 => {
            m.files[f].path = hostile_text(rng);
            "file path".into()
        }
        6 => {
            let g = rng.random_range(0..m.files.len());
            m.files[f].path = m.files[g].path.clone();
            "file listed twice".into()
        }
        7 => {
            m.totals.logical_bytes = hostile_number(rng, m.totals.logical_bytes);
            "totals".into()
        }
        _ => {
            m.files.remove(f);
            "file dropped".into()
        }
    }
}

fn mutate_index(index: &mut PackIndex, rng: &mut ChaCha8Rng) -> String {
    let e = rng.random_range(0..index.entries.len());
    let entry = &mut index.entries[e];
    match rng.random_range(0..6) {
        0 => {
            entry.offset = hostile_number(rng, entry.offset);
            "entry offset".into()
        }
        1 => {
            entry.length = hostile_number(rng, entry.length);
            "entry length".into()
        }
        2 => {
            entry.raw_length = hostile_number(rng, entry.raw_length);
            "entry raw length".into()
        }
        3 => {
            index.pack_size = hostile_number(rng, index.pack_size);
            "pack size".into()
        }
        4 => {
            index.pack = hostile_text(rng);
            "pack name".into()
        }
        _ => {
            index.entries.clear();
            "entries emptied".into()
        }
    }
}

fn mutate_config(config: &mut RepoConfig, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..3) {
        0 => config.chunker.max_size = hostile_number(rng, 1 << 20) as u32,
        1 => config.chunker.min_size = hostile_number(rng, 1 << 16) as u32,
        _ => config.id = hostile_text(rng),
    }
    "config".into()
}

fn reseal<T: Sealed>(path: &Path, change: impl FnOnce(&mut T) -> String) -> String {
    let mut value: T = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let what = change(&mut value);
    std::fs::write(path, value.seal()).unwrap();
    what
}

/// Damage one object of `repo`; says what was done. An encrypted repository's sealed objects
/// are not resealed (that takes the key): their siblings are swapped in instead.
fn mutate(repo: &Path, rng: &mut ChaCha8Rng, encrypted: bool) -> String {
    let objects: Vec<PathBuf> = files_under(repo)
        .into_iter()
        .filter(|p| !p.starts_with(repo.join("locks")))
        .collect();
    let object = &objects[rng.random_range(0..objects.len())];
    let name = object.strip_prefix(repo).unwrap().display().to_string();
    let mut bytes = std::fs::read(object).unwrap();
    let sibling = objects
        .iter()
        .find(|o| *o != object && o.parent() == object.parent());
    let what = match rng.random_range(0..4) {
        0 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
            std::fs::write(object, &bytes).unwrap();
            format!("bit flipped at {at}")
        }
        1 => {
            let keep = rng.random_range(0..bytes.len().max(1));
            std::fs::write(object, &bytes[..keep]).unwrap();
            format!("cut to {keep} bytes")
        }
        2 if encrypted && sibling.is_some() => {
            let sibling = sibling.unwrap();
            let theirs = std::fs::read(sibling).unwrap();
            std::fs::write(sibling, &bytes).unwrap();
            std::fs::write(object, theirs).unwrap();
            format!(
                "swapped with {}",
                sibling.strip_prefix(repo).unwrap().display()
            )
        }
        _ if name == "config" => reseal::<RepoConfig>(object, |c| mutate_config(c, rng)),
        2 if encrypted && !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 0x80;
            std::fs::write(object, &bytes).unwrap();
            format!("high bit flipped at {at}")
        }
        _ if !encrypted && name.starts_with("snapshots/") => {
            reseal::<Manifest>(object, |m| mutate_manifest(m, rng))
        }
        _ if !encrypted && name.starts_with("index/") => {
            reseal::<PackIndex>(object, |i| mutate_index(i, rng))
        }
        _ => {
            std::fs::remove_file(object).unwrap();
            "removed".into()
        }
    };
    format!("{name}: {what}")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn crashed(code: i32) -> bool {
    // 101: a Rust panic; a signal (abort, segfault) has no code.
    code == 101 || code < 0
}

#[test]
fn issue_15_mutated_repositories_never_panic_never_escape_and_verify_agrees_with_restore() {
    mutation_sequence(false, CI_CASES);
}

/// Issue 20: the same on an encrypted repository, where more is promised: every change but a
/// whole manifest deleted is found by `verify --read-data` and names the object changed.
#[test]
fn issue_20_every_mutation_of_an_encrypted_repository_is_found_and_named() {
    mutation_sequence(true, CI_ENCRYPTED_CASES);
}

fn mutation_sequence(encrypted: bool, ci_cases: usize) {
    let cases = env_number("VECDRILL_MUTATIONS", ci_cases as u64) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(env_number("VECDRILL_MUTATION_SEED", 15));
    let tmp = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = if encrypted {
        vec![("VECDRILL_PASSWORD", "mutation sequence".into())]
    } else {
        Vec::new()
    };
    let run = |args: &[&str]| vecdrill_env(args, &env);
    // Two collections and two backups, so packs are shared and indexes have several entries.
    let data = seeded_data_dir(tmp.path(), &[("docs", 1000, 8), ("faq", 1000, 4)]);
    let pristine = tmp.path().join("pristine");
    let pristine_url = repo_url(&pristine);
    let data_arg = data.to_str().unwrap();
    for extra in [None, Some("--read-all")] {
        let mut args = vec!["backup", "--repo", &pristine_url, "--chroma-dir", data_arg];
        args.extend(extra);
        run(&args).expect_code(0);
    }
    let restored_right = |url: &str, target: &Path| {
        if encrypted {
            // Recorded hashes are keyed: compare with the source itself.
            tree_hashes(target) == tree_hashes(&data)
        } else {
            restored_as_recorded(url, target)
        }
    };
    // The undamaged repository verifies and restores: every failure below is the damage's.
    run(&["verify", "--repo", &pristine_url, "--read-data"]).expect_code(0);
    let clean = tmp.path().join("clean");
    run(&[
        "restore",
        "--repo",
        &pristine_url,
        "latest",
        "--to",
        clean.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(0);
    assert!(restored_right(&pristine_url, &clean));
    let (mut panics, mut disagreements, mut escapes, mut restored_wrong) = (0, 0, 0, 0);
    let (mut misclassified, mut unnoticed) = (0, 0);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..cases {
        let work = tmp.path().join(format!("case-{case}"));
        let repo = work.join("repo");
        copy_tree(&pristine, &repo);
        let what = mutate(&repo, &mut rng, encrypted);
        let url = repo_url(&repo);
        // The backup the restore below picks: a damaged older one is not its business.
        let verify = run(&["verify", "--repo", &url, "latest", "--read-data"]);
        let target = work.join("restored");
        let restore = run(&[
            "restore",
            "--repo",
            &url,
            "latest",
            "--to",
            target.to_str().unwrap(),
            "--yes",
        ]);
        if encrypted && !(what.starts_with("snapshots/") && what.ends_with("removed")) {
            let all = run(&["verify", "--repo", &url, "--read-data", "--json"]);
            let object = what.split(':').next().unwrap();
            let said = format!("{}{}", all.stdout(), all.stderr());
            // The config is named as such; a removed object may be named by what misses it.
            let named = said.contains(object) || what.ends_with("removed");
            if all.code() == 0 || !named {
                unnoticed += 1;
                eprintln!(
                    "UNNOTICED case {case} ({what}): verify {}: {said}",
                    all.code()
                );
            }
        }
        let context = format!(
            "case {case} ({what})\nverify {}: {}\nrestore {}: {}",
            verify.code(),
            verify.stderr(),
            restore.code(),
            restore.stderr()
        );
        if crashed(verify.code()) || crashed(restore.code()) {
            panics += 1;
            eprintln!("CRASH {context}");
        }
        // Damage is exit 1 ("corrupt"), never 3, which blames the store or the credentials.
        if ![0, 1].contains(&verify.code()) || ![0, 1].contains(&restore.code()) {
            misclassified += 1;
            eprintln!("EXIT {context}");
        }
        if (verify.code() == 0) != (restore.code() == 0) {
            disagreements += 1;
            eprintln!("DISAGREE {context}");
        }
        let mut beside: Vec<String> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "repo" && n != "restored")
            .collect();
        beside.sort();
        if !beside.is_empty() {
            escapes += 1;
            eprintln!("LEFT {beside:?} {context}");
        }
        if restore.code() == 0 && !restored_right(&url, &target) {
            restored_wrong += 1;
            eprintln!("WRONG {context}");
        }
        eprintln!(
            "case {case}: {what}: verify {}, restore {}",
            verify.code(),
            restore.code()
        );
        *outcomes
            .entry(format!(
                "verify {} / restore {}",
                verify.code(),
                restore.code()
            ))
            .or_default() += 1;
        std::fs::remove_dir_all(&work).unwrap();
    }
    eprintln!("{cases} cases: {outcomes:?}");
    eprintln!("panics {panics}, disagreements {disagreements}, writes beside the target {escapes}, wrong restores {restored_wrong}, exit codes other than 0 or 1 {misclassified}, changes verify did not name {unnoticed}");
    assert_eq!(
        (
            panics,
            disagreements,
            escapes,
            restored_wrong,
            misclassified,
            unnoticed
        ),
        (0, 0, 0, 0, 0, 0),
        "see the cases above"
    );
    // Mutations that matter were made: most cases must have been caught by verify.
    let caught: usize = outcomes
        .iter()
        .filter(|(k, _)| !k.starts_with("verify 0"))
        .map(|(_, n)| n)
        .sum();
    assert!(caught * 2 > cases, "{outcomes:?}");
}

/// Whether `target` holds exactly the files of the repository's latest backup, by BLAKE3.
fn restored_as_recorded(url: &str, target: &Path) -> bool {
    let run = vecdrill(["info", "--repo", url, "latest", "--json"]);
    if run.code() != 0 {
        return false;
    }
    let info: Value = run.json();
    let recorded: std::collections::BTreeMap<String, String> = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let found: std::collections::BTreeMap<String, String> = files_under(target)
        .iter()
        .map(|p| {
            (
                p.strip_prefix(target).unwrap().display().to_string(),
                blake3::hash(&std::fs::read(p).unwrap())
                    .to_hex()
                    .to_string(),
            )
        })
        .collect();
    recorded == found
}

/// Text a forger or a clumsy editor would put into a scenario.
const YAML_INSERTS: &[&str] = &[
    "&a ",
    "*a",
    "*nope",
    ": ",
    "[",
    "]",
    "{",
    "}",
    "- ",
    "!!binary ",
    "!!python/object ",
    "%YAML 1.2\n---\n",
    "\t",
    "\n",
    "'",
    "\"",
    "? ",
    "|",
    ">",
    "<<: *a\n",
    "\u{0}",
    "\u{feff}",
    "${",
    "${nope}",
    "\\",
    "#",
    "---\n",
    "...\n",
];

const HOSTILE_VALUES: &[&str] = &[
    "1e400",
    "-1",
    "18446744073709551616",
    ".nan",
    ".inf",
    "0x7fffffffffffffff",
    "99999999999d",
    "0s",
    "\"\"",
    "../../etc/passwd",
    "${nope}",
    "~",
    "[]",
    "{}",
    "!!binary AAAA",
    "1_000_000_000_000_000_000_000",
];

/// Damage a scenario's text; says what was done.
fn mutate_scenario(text: &str, rng: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let mut bytes = text.as_bytes().to_vec();
    let at = rng.random_range(0..bytes.len());
    let lines: Vec<&str> = text.lines().collect();
    let line = rng.random_range(0..lines.len());
    match rng.random_range(0..7) {
        0 => {
            bytes[at] ^= 1 << rng.random_range(0..8);
            (bytes, format!("bit flipped at {at}"))
        }
        1 => {
            bytes.truncate(at);
            (bytes, format!("cut to {at} bytes"))
        }
        2 => {
            let insert = YAML_INSERTS[rng.random_range(0..YAML_INSERTS.len())];
            bytes.splice(at..at, insert.bytes());
            (bytes, format!("{insert:?} put in at {at}"))
        }
        3 => {
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            changed.insert(line, lines[line].to_string());
            (
                changed.join("\n").into_bytes(),
                format!("line {} repeated", line + 1),
            )
        }
        4 => {
            let mut changed: Vec<&str> = lines.clone();
            changed.remove(line);
            (
                changed.join("\n").into_bytes(),
                format!("line {} dropped", line + 1),
            )
        }
        5 => {
            let value = HOSTILE_VALUES[rng.random_range(0..HOSTILE_VALUES.len())];
            // The value after a key on some line that has one.
            let keyed: Vec<usize> = (0..lines.len())
                .filter(|i| lines[*i].contains(": "))
                .collect();
            let line = keyed[rng.random_range(0..keyed.len())];
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let key_end = changed[line].find(": ").unwrap() + 2;
            changed[line].replace_range(key_end.., value);
            (
                changed.join("\n").into_bytes(),
                format!("line {} set to {value:?}", line + 1),
            )
        }
        _ => {
            let repeat = lines[line].repeat(rng.random_range(2..2000));
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            changed[line] = repeat;
            (
                changed.join("\n").into_bytes(),
                format!("line {} repeated in place", line + 1),
            )
        }
    }
}

/// Seconds a validation may take before it counts as a hang.
const VALIDATE_BOUND_SECS: &str = "20";

#[test]
fn issue_15_mutated_scenarios_are_reported_with_a_position_never_a_crash_or_a_hang() {
    let cases = env_number("VECDRILL_MUTATIONS", CI_SCENARIO_CASES as u64) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(env_number("VECDRILL_MUTATION_SEED", 15) + 1);
    let root = crate::common::project_root();
    let mut shipped: Vec<PathBuf> = files_under(&root.join("scenarios"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    shipped.sort();
    let tmp = tempfile::tempdir().unwrap();
    let (mut crashes, mut hangs, mut unexpected, mut unplaced) = (0, 0, 0, 0);
    let mut outcomes = std::collections::BTreeMap::<i32, usize>::new();
    for case in 0..cases {
        let source = &shipped[rng.random_range(0..shipped.len())];
        let text = std::fs::read_to_string(source).unwrap();
        let (bytes, what) = mutate_scenario(&text, &mut rng);
        let name = format!("case-{case}.yaml");
        let path = tmp.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let run = std::process::Command::new("timeout")
            .args(["-s", "KILL", VALIDATE_BOUND_SECS])
            .arg(env!("CARGO_BIN_EXE_vecdrill"))
            .arg("validate")
            .arg(&path)
            .current_dir(&root)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let code = run.status.code().unwrap_or(-1);
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        let context = format!(
            "case {case} ({} {what}): exit {code}\n{output}",
            source.strip_prefix(&root).unwrap().display()
        );
        *outcomes.entry(code).or_default() += 1;
        match code {
            0 => {}
            2 if placed(&output, &name) => {}
            2 => {
                unplaced += 1;
                eprintln!("UNPLACED {context}");
            }
            // `timeout -s KILL` ends a hang with 137.
            137 => {
                hangs += 1;
                eprintln!("HANG {context}");
            }
            code if crashed(code) => {
                crashes += 1;
                eprintln!("CRASH {context}");
            }
            _ => {
                unexpected += 1;
                eprintln!("EXIT {context}");
            }
        }
    }
    eprintln!("{cases} scenario cases, by exit code: {outcomes:?}");
    assert_eq!(
        (crashes, hangs, unexpected, unplaced),
        (0, 0, 0, 0),
        "(crashes, hangs, other exit codes, problems without a position): see the cases above"
    );
    // Mutations that matter were made: most damaged files must have been refused.
    assert!(
        outcomes.get(&2).copied().unwrap_or(0) * 2 > cases,
        "{outcomes:?}"
    );
}

/// Whether `output` names `file` with a line and a column (`file:LINE:COL`).
fn placed(output: &str, file: &str) -> bool {
    output
        .match_indices(&format!("{file}:"))
        .any(|(at, found)| {
            let rest = &output[at + found.len()..];
            let mut parts = rest.splitn(3, ':');
            let is_number = |p: Option<&str>| {
                p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            };
            is_number(parts.next()) && is_number(parts.next())
        })
}
