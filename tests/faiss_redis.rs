//! FAISS indexes with Redis metadata: real index files written by faiss-cpu, a real
//! redis-server, the repository on a local folder.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecdrill::targets::faiss;

use crate::common::project_root;

/// The Python with faiss-cpu (`.venv-fixtures`, made by `.ci/setup`).
fn fixtures_python() -> PathBuf {
    let path = project_root().join(".venv-fixtures/bin/python");
    assert!(
        path.exists(),
        "run `bash .ci/setup` first: it installs faiss-cpu into .venv-fixtures"
    );
    path
}

/// Index files of every family vecdrill walks; returns what faiss says of each.
fn write_indexes(dir: &Path, count: u64, dim: u32, seed: u64) -> serde_json::Map<String, Value> {
    let output = std::process::Command::new(fixtures_python())
        .arg(project_root().join("tests/fixtures/faiss_indexes.py"))
        .arg(dir)
        .args([count.to_string(), dim.to_string(), seed.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_index_family_faiss_writes_is_read_and_truncation_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = write_indexes(tmp.path(), 1500, 32, 3);
    assert!(expected.len() >= 7);
    for (name, want) in &expected {
        let path = tmp.path().join(name);
        let info = faiss::inspect(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.kind, want["type"], "{name}");
        assert_eq!(
            u64::from(info.dimension),
            want["dimension"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(info.ntotal, want["ntotal"].as_u64().unwrap(), "{name}");
        assert!(info.structure_checked, "{name}");

        let bytes = std::fs::read(&path).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2, 30] {
            let err = faiss::inspect_bytes(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{name} cut at {cut}: {err}");
        }
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 16]);
        assert!(
            faiss::inspect_bytes(&padded).is_err(),
            "{name} with trailing bytes"
        );
    }
}
