//! Export and import end to end, between real Chroma servers, from stopped directories and
//! from backups.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vecdrill::targets::chroma::ChromaClient;

use crate::common::{backup_json, by_id, read_export, repo_url, vecdrill, ChromaServer, Export};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Deterministic pseudo-random vectors (no shared state with the code under test).
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 10_000.0 - 1.0
        })
        .collect()
}

async fn post(client: &ChromaClient, collection: &str, op: &str, body: Value) {
    let url = format!(
        "{}/api/v2/tenants/default_tenant/databases/default_database/collections/{collection}/{op}",
        client.url()
    );
    let response = client.http().post(&url).json(&body).send().await.unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{op}: {status} {}",
        response.text().await.unwrap()
    );
}

/// Three collections that exercise everything an export must carry:
/// - `notes` (l2, 8-d): documents, every metadata type, uris; 1200 added, then 50 deleted,
///   20 updated and 300 more added, so the last writes are only in the write-ahead log;
/// - `cosine-docs` (cosine, 16-d, custom ef_search): 700 records, never flushed to HNSW;
/// - `empty`: metadata and no records.
async fn write_rich_data(client: &ChromaClient) {
    let notes = client
        .get_or_create_configured(
            "notes",
            Some(json!({"owner": "search", "version": 2})),
            None,
        )
        .await
        .unwrap();
    let note = |i: u64| {
        (
            format!("note-{i}"),
            vector(i, 8),
            format!("note number {i}"),
            json!({"i": i, "f": i as f64 + 0.5, "tag": format!("t{}", i % 7), "even": i % 2 == 0}),
            if i % 3 == 0 {
                Value::from(format!("s3://notes/{i}"))
            } else {
                Value::Null
            },
        )
    };
    let batch = |range: std::ops::Range<u64>| {
        let rows: Vec<_> = range.map(note).collect();
        json!({
            "ids": rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            "embeddings": rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            "documents": rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
            "metadatas": rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
            "uris": rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>(),
        })
    };
    post(client, &notes.id, "add", batch(0..1200)).await;
    let deleted: Vec<String> = (100..150).map(|i| format!("note-{i}")).collect();
    post(client, &notes.id, "delete", json!({ "ids": deleted })).await;
    let updated: Vec<String> = (200..220).map(|i| format!("note-{i}")).collect();
    post(
        client,
        &notes.id,
        "update",
        json!({
            "ids": updated,
            "embeddings": (200..220).map(|i| vector(i + 10_000, 8)).collect::<Vec<_>>(),
            "documents": (200..220).map(|i| format!("revised note {i}")).collect::<Vec<_>>(),
            "metadatas": (200..220).map(|_| json!({"tag": "revised"})).collect::<Vec<_>>(),
        }),
    )
    .await;
    post(client, &notes.id, "add", batch(1200..1500)).await;

    let cosine = client
        .get_or_create_configured(
            "cosine-docs",
            None,
            Some(json!({"hnsw": {"space": "cosine", "ef_search": 120}})),
        )
        .await
        .unwrap();
    post(
        client,
        &cosine.id,
        "add",
        json!({
            "ids": (0..700).map(|i| format!("c-{i}")).collect::<Vec<_>>(),
            "embeddings": (0..700).map(|i| vector(i + 50_000, 16)).collect::<Vec<_>>(),
            "documents": (0..700).map(|i| format!("cosine doc {i}")).collect::<Vec<_>>(),
        }),
    )
    .await;
    client
        .get_or_create_collection("empty", Some(json!({"purpose": "placeholder"})))
        .await
        .unwrap();
}

pub(crate) fn embedding(record: &Value) -> Vec<f32> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(record["embedding"].as_str().unwrap())
        .unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub(crate) fn export_api(url: &str, out: &Path) -> Export {
    vecdrill([
        "export",
        "--url",
        url,
        "--all",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ])
    .expect_code(0);
    read_export(out)
}

/// Recall@k of the server's answers against brute force over the exported vectors.
async fn recall(
    client: &ChromaClient,
    collection: &str,
    vectors: &[(String, Vec<f32>)],
    k: usize,
) -> f64 {
    let id = client.collection(collection).await.unwrap().id;
    let queries: Vec<Vec<f32>> = (0..30)
        .map(|i| vector(i + 90_000, vectors[0].1.len()))
        .collect();
    let answers = client.query(&id, &queries, k).await.unwrap();
    let mut hits = 0;
    for (query, answer) in queries.iter().zip(answers) {
        let mut distances: Vec<(f32, &str)> = vectors
            .iter()
            .map(|(id, v)| {
                (
                    v.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum(),
                    id.as_str(),
                )
            })
            .collect();
        distances.sort_by(|a, b| a.0.total_cmp(&b.0));
        let truth: Vec<&str> = distances.iter().take(k).map(|d| d.1).collect();
        hits += answer
            .iter()
            .filter(|id| truth.contains(&id.as_str()))
            .count();
    }
    hits as f64 / (queries.len() * k) as f64
}

#[test]
fn export_all_then_import_into_an_empty_server_carries_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let a = ChromaServer::start(&a_dir);
    let b = ChromaServer::start(&b_dir);
    let rt = runtime();
    rt.block_on(write_rich_data(&ChromaClient::new(&a.url())));

    let file = tmp.path().join("all.jsonl.zst");
    let original = export_api(&a.url(), &file);
    assert_eq!(original.records["notes"].len(), 1450);
    assert_eq!(original.records["cosine-docs"].len(), 700);
    assert!(original.records["empty"].is_empty());

    let run = vecdrill([
        "import",
        "--url",
        &b.url(),
        "--in",
        file.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["records"], 2150);

    let copy = export_api(&b.url(), &tmp.path().join("copy.jsonl"));
    assert_eq!(
        copy.collections, original.collections,
        "configuration, metadata, counts"
    );
    for (name, records) in &original.records {
        let (want, got) = (by_id(records), by_id(&copy.records[name]));
        assert_eq!(want.len(), got.len(), "{name}");
        for (id, record) in &want {
            let other = &got[id];
            for field in ["document", "metadata", "uri"] {
                assert_eq!(record.get(field), other.get(field), "{name} {id} {field}");
            }
            let (x, y) = (embedding(record), embedding(other));
            if name == "cosine-docs" {
                // A cosine index keeps unit vectors and norms: a second load rounds again.
                for (p, q) in x.iter().zip(&y) {
                    assert!(
                        (p - q).abs() <= 1e-6 * p.abs().max(1.0),
                        "{name} {id}: {x:?} vs {y:?}"
                    );
                }
            } else {
                assert_eq!(x, y, "{name} {id} embedding");
            }
        }
    }
    let updated = &by_id(&copy.records["notes"])["note-205"];
    assert_eq!(updated["document"], "revised note 205");
    assert_eq!(updated["metadata"]["tag"], "revised");
    assert_eq!(
        updated["metadata"]["i"], 205,
        "an update keeps the keys it does not name"
    );

    let vectors: Vec<(String, Vec<f32>)> = original.records["notes"]
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), embedding(r)))
        .collect();
    let (recall_a, recall_b) = rt.block_on(async {
        (
            recall(&ChromaClient::new(&a.url()), "notes", &vectors, 10).await,
            recall(&ChromaClient::new(&b.url()), "notes", &vectors, 10).await,
        )
    });
    assert!(
        recall_b >= recall_a - 0.03,
        "recall after import {recall_b:.3}, original {recall_a:.3}"
    );
}

#[test]
fn offline_exports_of_a_stopped_directory_and_of_a_backup_equal_the_api_export() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    std::fs::create_dir_all(&data).unwrap();
    let server = ChromaServer::start(&data);
    runtime().block_on(write_rich_data(&ChromaClient::new(&server.url())));
    let api = export_api(&server.url(), &tmp.path().join("api.jsonl"));
    let offline = tmp.path().join("offline.jsonl");
    let run = vecdrill([
        "export",
        "--chroma-dir",
        data.to_str().unwrap(),
        "--all",
        "--out",
        offline.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("in use"),
        "a live directory is refused: {}",
        run.stderr()
    );
    server.stop();

    vecdrill([
        "export",
        "--chroma-dir",
        data.to_str().unwrap(),
        "--all",
        "--out",
        offline.to_str().unwrap(),
    ])
    .expect_code(0);
    let offline = read_export(&offline);
    assert_eq!(offline.collections, api.collections);
    assert_eq!(
        offline.records, api.records,
        "record for record, in the same order"
    );
    // A selection (a proof's sample) reads the records it keeps as the whole reading does,
    // the log's updates, deletions and later additions included.
    let db = vecdrill::targets::chroma::offline::OfflineDatabase::open(&data).unwrap();
    for collection in db.collections() {
        let mut all = Vec::new();
        db.for_each_record(collection, |r| -> Result<(), String> {
            all.push(r);
            Ok(())
        })
        .unwrap();
        let last = all.last().map(|r| r.id.clone());
        let keep = |at: usize, id: &str| at % 7 == 3 || Some(id) == last.as_deref();
        let mut selected = Vec::new();
        let kept = db
            .for_each_record_where(
                collection,
                |at, id| keep(at as usize, id),
                |r| -> Result<(), String> {
                    selected.push(r);
                    Ok(())
                },
            )
            .unwrap();
        let expected: Vec<_> = (all.iter().enumerate())
            .filter(|(at, r)| keep(*at, &r.id))
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(kept as usize, expected.len(), "{}", collection.info.name);
        assert!(
            selected == expected,
            "{}: the selection differs",
            collection.info.name
        );
    }
    drop(db); // An open database is a server to a backup.

    let repo = repo_url(&tmp.path().join("repo"));
    backup_json(&repo, &data, &[]);
    std::fs::remove_dir_all(&data).unwrap();
    let from_backup = tmp.path().join("from-backup.jsonl.zst");
    vecdrill([
        "export",
        "--repo",
        &repo,
        "--backup",
        "latest",
        "--collection",
        "notes",
        "--out",
        from_backup.to_str().unwrap(),
    ])
    .expect_code(0);
    let from_backup = read_export(&from_backup);
    let notes: Vec<Value> = api
        .collections
        .iter()
        .filter(|c| c["name"] == "notes")
        .cloned()
        .collect();
    assert_eq!(from_backup.collections, notes);
    assert_eq!(from_backup.records["notes"], api.records["notes"]);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".vecdrill-export-")
        })
        .collect();
    assert!(leftovers.is_empty(), "the scratch directory is removed");
}

/// A 6,000-record export of one collection.
fn seeded_export(tmp: &Path) -> std::path::PathBuf {
    let source = tmp.join("source");
    std::fs::create_dir_all(&source).unwrap();
    let server = ChromaServer::start(&source);
    vecdrill([
        "seed",
        "--url",
        &server.url(),
        "--collection",
        "bulk",
        "--count",
        "6000",
        "--dim",
        "32",
    ])
    .expect_code(0);
    let file = tmp.join("bulk.jsonl");
    export_api(&server.url(), &file);
    file
}

fn count(url: &str, collection: &str) -> Option<u64> {
    runtime().block_on(async {
        let client = ChromaClient::new(url);
        let id = client.collection(collection).await.ok()?.id;
        client.count(&id).await.ok()
    })
}

#[test]
fn an_import_killed_midway_and_run_again_ends_with_exact_records() {
    let tmp = tempfile::tempdir().unwrap();
    let file = seeded_export(tmp.path());
    let target = tmp.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let server = ChromaServer::start(&target);
    let url = server.url();

    let mut child = crate::common::vecdrill_command()
        .args([
            "import",
            "--url",
            &url,
            "--in",
            file.to_str().unwrap(),
            "--batch-size",
            "100",
            "--parallel",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&url, "bulk").unwrap_or(0) < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count(&url, "bulk").unwrap();
    assert!(
        partial > 0 && partial < 6000,
        "killed midway at {partial} records"
    );

    vecdrill(["import", "--url", &url, "--in", file.to_str().unwrap()]).expect_code(0);
    assert_eq!(count(&url, "bulk"), Some(6000));
    let copy = export_api(&url, &tmp.path().join("copy.jsonl"));
    assert_eq!(
        by_id(&copy.records["bulk"]),
        by_id(&read_export(&file).records["bulk"]),
        "every record, once, as exported"
    );
}

#[test]
fn a_malformed_file_names_its_line_and_nothing_after_it_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let file = seeded_export(tmp.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let truncated = tmp.path().join("truncated.jsonl");
    std::fs::write(&truncated, lines[..4000].join("\n")).unwrap();
    // Line 2503 is record 2501: break it in the middle of a 500-record batch.
    let bad_line = 2503;
    lines[bad_line - 1] = lines[bad_line - 1].replace("\"embedding\":\"", "\"embedding\":[\"");
    let broken = tmp.path().join("broken.jsonl");
    std::fs::write(&broken, lines.join("\n")).unwrap();

    let target = tmp.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let server = ChromaServer::start(&target);
    let run = vecdrill([
        "import",
        "--url",
        &server.url(),
        "--in",
        broken.to_str().unwrap(),
        "--batch-size",
        "500",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr().contains(&format!("broken.jsonl:{bad_line}:")),
        "{}",
        run.stderr()
    );
    assert_eq!(
        count(&server.url(), "bulk"),
        Some(bad_line as u64 - 3),
        "records before the line, none after"
    );

    let run = vecdrill([
        "import",
        "--url",
        &server.url(),
        "--in",
        truncated.to_str().unwrap(),
        "--collection",
        "bulk",
        "--as",
        "cut",
    ]);
    run.expect_code(2);
    assert!(run.stderr().contains("incomplete"), "{}", run.stderr());
}

#[test]
fn import_as_renames_exactly_one_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("none.jsonl");
    std::fs::write(&file, "").unwrap();
    // Refused before any server is reached (none listens on port 9).
    let run = vecdrill([
        "import",
        "--url",
        "http://127.0.0.1:9",
        "--in",
        file.to_str().unwrap(),
        "--collection",
        "a",
        "--collection",
        "b",
        "--as",
        "c",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("name exactly one with --collection"),
        "{}",
        run.stderr()
    );
}
