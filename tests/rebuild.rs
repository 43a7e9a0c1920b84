//! Rebuild from source documents: real Chroma, real SQLite and PostgreSQL sources, and the
//! embedding endpoint STAND-IN (the one component that cannot run here).

use std::path::Path;

use serde_json::{json, Value};
use vecdrill::targets::chroma::ChromaClient;

use crate::common::{
    chroma_bin, free_port, project_root, report_step, run_scenario, vecdrill, vecdrill_env,
    ChromaServer, EmbeddingStandin, PostgresServer,
};

/// Document `i`: a dozen words from a 400-word vocabulary (distinct enough that nearest
/// neighbours are well defined), a section and a year.
fn document(i: u64) -> Value {
    let text: Vec<String> = (0..12u64)
        .map(|j| format!("w{}", (i * 7919 + j * 104_729 + i * j * 31) % 400))
        .collect();
    json!({"id": format!("doc-{i}"), "text": format!("{} {i}", text.join(" ")), "section": format!("s{}", i % 5), "year": 2000 + i % 20})
}

fn write_jsonl(path: &Path, range: std::ops::Range<u64>) {
    let lines: Vec<String> = range.map(|i| document(i).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn rebuild_args<'a>(url: &'a str, embed: &'a str, source: &'a str) -> Vec<&'a str> {
    vec![
        "rebuild",
        "--url",
        url,
        "--collection",
        "documents",
        "--source",
        source,
        "--embed-url",
        embed,
        "--model",
        "standin-embed",
        "--embed-batch",
        "50",
        "--json",
    ]
}

/// Every stored record as (document, metadata, embedding), by id.
fn stored(url: &str) -> std::collections::BTreeMap<String, (String, Value, Vec<f32>)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = ChromaClient::new(url);
        let id = client.collection("documents").await.unwrap().id;
        let page = client
            .get_page(&id, 0, 100_000, &["documents", "metadatas", "embeddings"])
            .await
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        let (docs, metas, vectors) = (
            page.documents.unwrap(),
            page.metadatas.unwrap(),
            page.embeddings.unwrap(),
        );
        for (i, id) in page.ids.into_iter().enumerate() {
            out.insert(
                id,
                (
                    docs[i].clone().unwrap(),
                    metas[i].clone().unwrap_or(Value::Null),
                    vectors[i].clone(),
                ),
            );
        }
        out
    })
}

/// What the endpoint answers for one text (the reference the stored vector must equal).
fn reference_embedding(embed: &str, text: &str) -> Vec<f32> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        // The stand-in may be told to throttle or fail: ask until it answers.
        loop {
            let response: Value = vecdrill::net::client_builder()
                .build()
                .unwrap()
                .post(format!("{embed}/v1/embeddings"))
                .bearer_auth("sk-test-secret")
                .json(&json!({"model": "standin-embed", "input": [text]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Ok(vector) = serde_json::from_value(response["data"][0]["embedding"].clone()) {
                return vector;
            }
        }
    })
}

#[test]
fn rebuild_from_jsonl_stores_text_metadata_and_embeddings_and_resumes_without_paying_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    std::fs::create_dir_all(&data).unwrap();
    let chroma = ChromaServer::start(&data);
    // Every 5th request rate-limited, every 7th failing: retries must absorb both.
    let standin = EmbeddingStandin::start(&[
        "--api-key",
        "sk-test-secret",
        "--throttle-every",
        "5",
        "--fail-every",
        "7",
    ]);
    let key = [("OPENAI_API_KEY", "sk-test-secret".to_string())];
    let (url, embed) = (chroma.url(), standin.url());
    let half = tmp.path().join("half.jsonl");
    let full = tmp.path().join("full.jsonl");
    write_jsonl(&half, 0..600);
    write_jsonl(&full, 0..1200);

    let mut args = rebuild_args(&url, &embed, half.to_str().unwrap());
    args.push("-vv");
    let run = vecdrill_env(&args, &key);
    run.expect_code(0);
    assert!(
        !run.stderr().contains("sk-test-secret"),
        "the API key leaked into the log"
    );
    let first = run.json();
    assert_eq!(first["embedded"], 600);
    assert!(first["embed_retries"].as_u64().unwrap() > 0, "{first}");

    let texts_before = standin.stats()["texts"].as_u64().unwrap();
    let run = vecdrill_env(rebuild_args(&url, &embed, full.to_str().unwrap()), &key);
    run.expect_code(0);
    let second = run.json();
    assert_eq!(second["skipped_existing"], 600);
    assert_eq!(second["embedded"], 600);
    assert_eq!(second["count_after"], 1200);
    assert_eq!(
        standin.stats()["texts"].as_u64().unwrap() - texts_before,
        600,
        "documents already stored are not embedded again"
    );

    let records = stored(&url);
    assert_eq!(records.len(), 1200);
    for i in [0u64, 599, 600, 1199] {
        let source = document(i);
        let (doc, metadata, vector) = &records[&format!("doc-{i}")];
        assert_eq!(doc, source["text"].as_str().unwrap());
        assert_eq!(
            metadata,
            &json!({"section": source["section"], "year": source["year"]})
        );
        assert_eq!(vector, &reference_embedding(&embed, doc));
    }

    // Without the key the endpoint refuses, and the error says what to check.
    let run = vecdrill(
        rebuild_args(&url, &embed, full.to_str().unwrap())
            .into_iter()
            .chain(["--reembed-existing"]),
    );
    run.expect_code(3);
    assert!(
        run.stderr().contains("401") && run.stderr().contains("API key"),
        "{}",
        run.stderr()
    );
}

#[test]
fn rebuild_from_sqlite_csv_and_postgres_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chroma");
    std::fs::create_dir_all(&data).unwrap();
    let chroma = ChromaServer::start(&data);
    let standin = EmbeddingStandin::start(&[]);
    let (url, embed) = (chroma.url(), standin.url());
    let expected_text = |i: u64| document(i)["text"].as_str().unwrap().to_string();

    // SQLite: a table with id, body and two metadata columns, mapped by flags.
    let db = tmp.path().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE articles (key TEXT, body TEXT, section TEXT, year INTEGER, draft INTEGER)",
    )
    .unwrap();
    for i in 0..300u64 {
        let d = document(i);
        conn.execute(
            "INSERT INTO articles VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![
                d["id"].as_str(),
                d["text"].as_str(),
                d["section"].as_str(),
                d["year"].as_i64()
            ],
        )
        .unwrap();
    }
    drop(conn);
    let source = format!("sqlite:{}", db.display());
    let mut args = rebuild_args(&url, &embed, &source);
    args.extend([
        "--table",
        "articles",
        "--id-field",
        "key",
        "--text-field",
        "body",
        "--metadata-fields",
        "section,year",
    ]);
    vecdrill(&args).expect_code(0);
    let records = stored(&url);
    assert_eq!(records.len(), 300);
    assert_eq!(records["doc-42"].0, expected_text(42));
    assert_eq!(records["doc-42"].1, json!({"section": "s2", "year": 2002}));

    // CSV: numbers are stored as numbers.
    let csv = tmp.path().join("more.csv");
    let mut text = String::from("id,text,year\n");
    for i in 300..400u64 {
        text.push_str(&format!(
            "doc-{i},\"{}\",{}\n",
            expected_text(i),
            2000 + i % 20
        ));
    }
    std::fs::write(&csv, text).unwrap();
    vecdrill(rebuild_args(&url, &embed, csv.to_str().unwrap())).expect_code(0);
    let records = stored(&url);
    assert_eq!(records.len(), 400);
    assert_eq!(records["doc-350"].1, json!({"year": 2010}));

    // PostgreSQL, the production case: a query over a real server.
    let pg = PostgresServer::start();
    pg.psql("CREATE TABLE docs (id text primary key, text text, section text, year int, score float8, published bool)");
    let values: Vec<String> = (400..700u64)
        .map(|i| {
            format!(
                "('doc-{i}', '{}', 's{}', {}, {}.5, {})",
                expected_text(i),
                i % 5,
                2000 + i % 20,
                i,
                i % 2 == 0
            )
        })
        .collect();
    pg.psql(&format!("INSERT INTO docs VALUES {}", values.join(",")));
    let pg_url = pg.url("postgres");
    let mut args = rebuild_args(&url, &embed, &pg_url);
    args.extend([
        "--query",
        "SELECT id, text, year, score, published FROM docs WHERE year >= 2000",
    ]);
    let run = vecdrill(&args);
    run.expect_code(0);
    assert_eq!(run.json()["embedded"], 300);
    let records = stored(&url);
    assert_eq!(records.len(), 700);
    assert_eq!(records["doc-401"].0, expected_text(401));
    assert_eq!(
        records["doc-401"].1,
        json!({"year": 2001, "score": 401.5, "published": false})
    );
    assert_eq!(
        records["doc-401"].2,
        reference_embedding(&embed, &expected_text(401))
    );

    // A bad source line is named and what came before it is kept.
    let broken = tmp.path().join("broken.jsonl");
    std::fs::write(&broken, format!("{}\n{{\"id\": \"x\"}}\n", document(900))).unwrap();
    let run = vecdrill(rebuild_args(&url, &embed, broken.to_str().unwrap()));
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("broken.jsonl:2: document \"x\" has no text"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_rebuild_from_source_scenario_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("documents.jsonl");
    write_jsonl(&source, 0..2000);
    let standin = EmbeddingStandin::start(&["--throttle-every", "9", "--dim", "128"]);
    let port = free_port();
    let vars = [
        format!("data_dir={}", tmp.path().join("chroma").display()),
        format!("port={port}"),
        format!("chroma={}", chroma_bin().display()),
        format!("source={}", source.display()),
        format!("embed_url={}", standin.url()),
        "model=standin-embed".to_string(),
    ];
    let scenario = project_root().join("scenarios/rebuild-from-source.yaml");
    let run = run_scenario(&scenario, &tmp.path().join("reports"), &vars, &[]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report_step(&report, "rebuild")["outputs"]["embedded"], 2000);
    assert_eq!(report_step(&report, "counts")["outputs"]["total"], 2000);
    assert!(
        report_step(&report, "verify")["outputs"]["mean_overlap"]
            .as_f64()
            .unwrap()
            >= 0.8
    );
    assert!(report["rto_ms"].as_f64().unwrap() > 0.0);
}
