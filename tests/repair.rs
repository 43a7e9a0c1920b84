//! `repair index`: pack indexes lost, damaged, forged or wrong are written again from the packs'
//! trailers; the index of a pack that is gone is removed; a damaged pack is named and left.
//! And `prune` never takes a pack whose index was lost for a dead backup's leftover.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecdrill::repo::format::{PackIndex, Sealed};

use crate::common::{
    files_under, flip_byte, repo_url, restore_run_env, seeded_data_dir, tree_hashes, vecdrill_env,
    Run,
};

const PASSWORD: &str = "repair drill password";

/// A repository (encrypted or not) holding backups of two Chroma directories, each in its own
/// packs, and the directories.
struct Repo {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    url: String,
    env: Vec<(&'static str, String)>,
    sources: Vec<PathBuf>,
}

impl Repo {
    fn new(encrypted: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let url = repo_url(&dir);
        let env = match encrypted {
            true => vec![("VECDRILL_PASSWORD", PASSWORD.to_string())],
            false => Vec::new(),
        };
        let encryption = if encrypted { "repokey" } else { "none" };
        vecdrill_env(["init", "--repo", &url, "--encryption", encryption], &env).expect_code(0);
        let mut sources = Vec::new();
        for (name, count) in [("alpha", 600), ("beta", 900)] {
            let root = tmp.path().join(name);
            let data = seeded_data_dir(&root, &[(name, count, 8)]);
            vecdrill_env(
                [
                    "backup",
                    "--repo",
                    &url,
                    "--chroma-dir",
                    data.to_str().unwrap(),
                ],
                &env,
            )
            .expect_code(0);
            sources.push(data);
        }
        Self {
            tmp,
            dir,
            url,
            env,
            sources,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--repo", &self.url]);
        vecdrill_env(&all, &self.env)
    }

    fn repair(&self, extra: &[&str]) -> Value {
        let mut args = vec!["repair", "index", "--json"];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        run.expect_code(0);
        run.json()
    }

    fn packs(&self) -> Vec<PathBuf> {
        files_under(&self.dir.join("packs"))
    }

    fn indexes(&self) -> Vec<PathBuf> {
        files_under(&self.dir.join("index"))
    }

    /// Every backup restores, byte for byte, to the directory it was taken of.
    fn every_backup_restores(&self) {
        for (n, data) in self.sources.iter().enumerate() {
            let to = self.tmp.path().join(format!("restored-{n}"));
            let source = data.to_str().unwrap();
            restore_run_env(&self.url, "latest", &to, &["--source", source], &self.env)
                .expect_code(0);
            assert_eq!(tree_hashes(&to), tree_hashes(data));
            std::fs::remove_dir_all(&to).unwrap();
        }
    }
}

fn objects(repair: &Value, list: &str) -> Vec<String> {
    repair[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object"].as_str().unwrap().to_string())
        .collect()
}

fn index_of(pack: &Path) -> String {
    format!("index/{}.json", pack.file_name().unwrap().to_str().unwrap())
}

/// Every index lost: restores and `verify` name `repair index`, `prune` removes nothing (the
/// packs hold what the backups use), and `repair index` writes them all again from the packs,
/// after which every backup restores and `prune` keeps every pack a backup uses.
#[test]
fn issue_25_lost_indexes_are_rebuilt_from_the_packs_and_prune_never_deletes_their_packs() {
    let repo = Repo::new(false);
    let packs = repo.packs();
    assert!(packs.len() >= 2, "{packs:?}");
    let indexes: Vec<(PathBuf, Vec<u8>)> = repo
        .indexes()
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    for (path, _) in &indexes {
        std::fs::remove_file(path).unwrap();
    }

    let verified = repo.run(&["verify"]);
    verified.expect_code(1);
    assert!(
        verified.stdout().contains("repair index"),
        "{}",
        verified.stdout()
    );
    let to = repo.tmp.path().join("refused");
    let source = repo.sources[0].to_str().unwrap();
    let restored = restore_run_env(&repo.url, "latest", &to, &["--source", source], &repo.env);
    restored.expect_code(1);
    assert!(
        restored.stderr().contains("repair index"),
        "{}",
        restored.stderr()
    );
    let pruned = repo.run(&["prune", "--keep-last", "1"]);
    pruned.expect_code(1);
    assert!(
        pruned.stderr().contains("nothing was removed") && pruned.stderr().contains("repair index"),
        "{}",
        pruned.stderr()
    );
    assert_eq!(
        repo.packs(),
        packs,
        "prune deleted packs whose index was lost"
    );

    // A dry run says what it would write, and writes nothing.
    let dry = repo.repair(&["--dry-run"]);
    assert_eq!(objects(&dry, "rebuilt").len(), packs.len(), "{dry:#}");
    assert!(repo.indexes().is_empty());

    let repaired = repo.repair(&[]);
    let mut rebuilt = objects(&repaired, "rebuilt");
    rebuilt.sort();
    let mut expected: Vec<String> = packs.iter().map(|p| index_of(p)).collect();
    expected.sort();
    assert_eq!(rebuilt, expected, "{repaired:#}");
    assert_eq!(repaired["packs_read"], packs.len());
    // Written again as they were: the trailer repeats the index exactly.
    for (path, bytes) in &indexes {
        let was: PackIndex = serde_json::from_slice(bytes).unwrap();
        let now: PackIndex = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!((now.pack_size, &now.entries), (was.pack_size, &was.entries));
    }
    repo.run(&["verify", "--read-data"]).expect_code(0);
    repo.every_backup_restores();
    repo.run(&["prune", "--keep-last", "1"]).expect_code(0);
    assert_eq!(repo.packs(), packs);
    repo.every_backup_restores();

    // Nothing left to do: nothing read, nothing written.
    let again = repo.repair(&[]);
    assert_eq!(again["packs_read"], 0, "{again:#}");
    assert!(objects(&again, "rebuilt").is_empty(), "{again:#}");

    // An index that reads well but lies about its pack is found by reading every pack.
    let (path, bytes) = &indexes[0];
    let mut wrong: PackIndex = serde_json::from_slice(bytes).unwrap();
    let dropped = wrong.entries.pop().unwrap();
    std::fs::write(path, wrong.seal()).unwrap();
    assert!(objects(&repo.repair(&[]), "rebuilt").is_empty());
    let read_all = repo.repair(&["--read-all-packs"]);
    assert_eq!(read_all["packs_read"], packs.len(), "{read_all:#}");
    let wrote = format!("index/{}.json", wrong.pack);
    assert_eq!(objects(&read_all, "rebuilt"), vec![wrote]);
    let now: PackIndex = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(now.entries.last(), Some(&dropped));
    repo.every_backup_restores();

    // A pack cut to nothing, its index lost with another's: named, and the other one is
    // still written (one bad pack stops nothing else).
    let (cut, other) = (&packs[0], &packs[1]);
    let cut_bytes = std::fs::read(cut).unwrap();
    std::fs::write(cut, b"").unwrap();
    std::fs::remove_file(repo.dir.join(index_of(cut))).unwrap();
    std::fs::remove_file(repo.dir.join(index_of(other))).unwrap();
    let refused = repo.run(&["repair", "index", "--json"]);
    refused.expect_code(1);
    let report = refused.json();
    assert_eq!(
        objects(&report, "rebuilt"),
        vec![index_of(other)],
        "{report:#}"
    );
    let cut_key = cut.strip_prefix(&repo.dir).unwrap().display().to_string();
    assert_eq!(
        objects(&report, "damaged"),
        vec![cut_key.clone()],
        "{report:#}"
    );
    std::fs::write(cut, &cut_bytes).unwrap();
    repo.repair(&[]);

    // A pack moved by hand: named where it is and where it belongs, its index kept, exit 1;
    // put back, all is well.
    let moved = repo
        .dir
        .join("packs/moved-here")
        .join(cut.file_name().unwrap());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(cut, &moved).unwrap();
    let refused = repo.run(&["repair", "index"]);
    refused.expect_code(1);
    let said = refused.stdout();
    assert!(said.contains(&format!("MISSING {cut_key}")), "{said}");
    assert!(said.contains(&format!("belongs at {cut_key}")), "{said}");
    assert!(
        repo.dir.join(index_of(cut)).exists(),
        "the index of a missing pack is kept"
    );
    std::fs::rename(&moved, cut).unwrap();
    let mended = repo.repair(&[]);
    assert!(objects(&mended, "missing").is_empty(), "{mended:#}");
    repo.every_backup_restores();
}

/// In an encrypted repository: a damaged index is written again from its pack's (sealed)
/// trailer, a well-named index of a pack that does not exist is removed, and a pack whose
/// trailer is damaged is named, left byte for byte as it was, and makes the exit code 1; read
/// whole, so is a pack damaged anywhere.
#[test]
fn issue_25_repair_mends_damaged_and_orphaned_indexes_and_names_a_damaged_pack() {
    let repo = Repo::new(true);
    let packs = repo.packs();
    let (first, second) = (&packs[0], &packs[1]);
    let damaged_index = repo.dir.join(index_of(first));
    std::fs::write(&damaged_index, "{ damaged").unwrap();
    let orphan = format!("index/{}.json", "ab".repeat(32));
    std::fs::copy(repo.dir.join(index_of(second)), repo.dir.join(&orphan)).unwrap();
    let stray = repo.dir.join("index/.DS_Store");
    std::fs::write(&stray, "not vecdrill's").unwrap();

    let repaired = repo.repair(&[]);
    assert_eq!(
        objects(&repaired, "rebuilt"),
        vec![index_of(first)],
        "{repaired:#}"
    );
    assert!(
        repaired["rebuilt"][0]["why"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{repaired:#}"
    );
    assert_eq!(objects(&repaired, "removed"), vec![orphan.clone()]);
    assert!(!repo.dir.join(&orphan).exists());
    assert!(stray.exists(), "a stray object is not vecdrill's to remove");
    assert!(objects(&repaired, "damaged").is_empty());
    repo.run(&["verify", "--read-data"]).expect_code(0);
    repo.every_backup_restores();
    // The index written is sealed with the repository's key: nothing of it in the clear.
    let sealed = std::fs::read(&damaged_index).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("\"entries\""));

    // A pack whose index is lost and whose trailer is damaged cannot be indexed: named, left
    // byte for byte as it was, and the exit code is 1.
    std::fs::remove_file(repo.dir.join(index_of(second))).unwrap();
    let size = std::fs::metadata(second).unwrap().len() as usize;
    flip_byte(second, size - 20);
    let before = std::fs::read(second).unwrap();
    let pack_key = second
        .strip_prefix(&repo.dir)
        .unwrap()
        .display()
        .to_string();
    let refused = repo.run(&["repair", "index"]);
    refused.expect_code(1);
    assert!(
        refused.stdout().contains(&format!("DAMAGED {pack_key}")),
        "{}",
        refused.stdout()
    );
    assert!(
        refused.stderr().contains("vecdrill verify"),
        "{}",
        refused.stderr()
    );
    assert_eq!(std::fs::read(second).unwrap(), before);
    assert!(!repo.dir.join(index_of(second)).exists());

    // A chunk damaged in a pack with an intact trailer: indexed from the trailer (the chunk is
    // checked when read: `verify --read-data` names it), and named when every pack is read
    // whole.
    flip_byte(second, size - 20);
    flip_byte(second, 100);
    assert_eq!(
        objects(&repo.repair(&[]), "rebuilt"),
        vec![index_of(second)]
    );
    repo.run(&["verify", "--read-data"]).expect_code(1);
    let read_all = repo.run(&["repair", "index", "--read-all-packs"]);
    read_all.expect_code(1);
    assert!(
        read_all.stdout().contains(&format!("DAMAGED {pack_key}")),
        "{}",
        read_all.stdout()
    );
}
