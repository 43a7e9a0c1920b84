//! Issue 18: one conformance suite for the backup formats (`targets::BackupFormat`), run on
//! every target: what a format says of a real backup of its kind must hold of the backup and
//! of its restore, and its checks must catch a damaged copy.

use std::path::Path;

use vecdrill::repo::{Repository, SourceChoice};
use vecdrill::targets::{format_of, FORMATS};

use crate::common::{repo_url, restore_run, seeded_data_dir, vecdrill};

/// Check the format of the newest backup in `repo` against that backup and its restore into
/// `scratch`; `damage` breaks one file of a restored copy in a way its checks must catch.
fn conforms(repo: &str, scratch: &Path, damage: impl Fn(&Path)) -> &'static str {
    let restored = scratch.join("restored");
    restore_run(repo, "latest", &restored, &[]).expect_code(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let manifest = runtime.block_on(async {
        let repo = Repository::open(repo).await.unwrap();
        repo.backup("latest", &SourceChoice::default())
            .await
            .unwrap()
    });
    let format = format_of(&manifest);
    let kind = format.source_kind();
    assert_eq!(
        kind, manifest.source.kind,
        "the format read is the backup's own"
    );
    assert!(
        FORMATS.iter().any(|f| f.source_kind() == kind),
        "{kind} is listed"
    );
    let files: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let required = format.required_files(&manifest);
    assert!(!required.is_empty(), "{kind}: a backup requires something");
    for (path, why) in &required {
        assert!(
            files.contains(&path.as_str()),
            "{kind}: {path} ({why}) is not in the backup"
        );
    }
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(
        format.data_present(&restored),
        "{kind}: the restore holds its data"
    );
    assert!(
        !format.data_present(&empty),
        "{kind}: an empty directory holds none"
    );
    assert!(
        format.data_time(&restored).is_some(),
        "{kind}: restored data has a time"
    );
    format
        .check_replaceable(&manifest, &restored)
        .unwrap_or_else(|e| panic!("{kind}: its own restore is replaceable: {e}"));
    let checks = format.check_staged(&restored, &manifest);
    assert!(!checks.is_empty(), "{kind}: a staged copy is checked");
    assert!(
        checks.iter().all(|c| c.passed),
        "{kind}: the restore passes its checks: {checks:?}"
    );
    let recorded = format.recorded_counts(&manifest);
    assert!(
        !recorded.is_empty(),
        "{kind}: the backup records what it holds"
    );
    assert_eq!(
        recorded,
        format.counts_in(&restored),
        "{kind}: the restore holds what the backup recorded"
    );
    damage(&restored);
    let checks = format.check_staged(&restored, &manifest);
    assert!(
        checks.iter().any(|c| !c.passed),
        "{kind}: a damaged copy passes its checks: {checks:?}"
    );
    kind
}

#[test]
fn issue_18_every_backup_format_conforms() {
    let tmp = tempfile::tempdir().unwrap();
    let mut kinds = Vec::new();

    // Chroma: a seeded directory; its database cut short.
    let data = seeded_data_dir(&tmp.path().join("chroma"), &[("docs", 400, 8)]);
    let repo = repo_url(&tmp.path().join("chroma-repo"));
    crate::common::backup_json(&repo, &data, &[]);
    let scratch = tmp.path().join("chroma-scratch");
    kinds.push(conforms(&repo, &scratch, |dir| {
        let db = dir.join("chroma.sqlite3");
        let len = std::fs::metadata(&db).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.set_len(len / 2).unwrap();
    }));

    // FAISS + Redis: index files of every family and a Redis; one index cut short.
    let (indexes, redis, _) = crate::faiss_redis::store(&tmp.path().join("faiss"));
    let repo = repo_url(&tmp.path().join("faiss-repo"));
    vecdrill(crate::faiss_redis::backup_args(
        &repo,
        &indexes,
        &["flat_l2.faiss"],
        &redis,
    ))
    .expect_code(0);
    let scratch = tmp.path().join("faiss-scratch");
    kinds.push(conforms(&repo, &scratch, |dir| {
        let index = dir.join("faiss/flat_l2.faiss");
        let len = std::fs::metadata(&index).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&index)
            .unwrap();
        file.set_len(len / 2).unwrap();
    }));

    // Every listed format was run.
    let listed: Vec<&str> = FORMATS.iter().map(|f| f.source_kind()).collect();
    kinds.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(kinds, expected, "the suite runs on every format listed");
}
