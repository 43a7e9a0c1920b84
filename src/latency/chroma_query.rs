//! Search load against a Chroma collection: query vectors are drawn from the collection's own
//! stored vectors and the request bodies are serialised once, up front, so the measuring side
//! spends its time on the network and not on JSON.
//!
//! The load runs on a thread of its own with a single-threaded runtime and an HTTP client made
//! there, as each of wrk's threads runs its own event loop: every connection, request and
//! answer stays on that one thread. On the multi-threaded runtime an answer read by a
//! connection's task woke the query's task on the other worker thread, a cross-thread wake-up
//! per query taken from the server the machine's cores are measuring.

use bytes::Bytes;
use serde_json::json;

use super::{run_load, LatencySummary, LoadPlan};
use crate::targets::chroma::{ChromaClient, ChromaError};

/// How many distinct stored vectors to cycle through as queries.
const QUERY_POOL: u64 = 256;

pub struct SearchLoad {
    pub collection: String,
    pub k: usize,
    pub plan: LoadPlan,
}

pub async fn run_search_load(
    client: &ChromaClient,
    load: &SearchLoad,
) -> Result<LatencySummary, ChromaError> {
    let collection = client.collection(&load.collection).await?;
    let count = client.count(&collection.id).await?;
    if count == 0 {
        return Err(ChromaError::Api {
            method: "GET".into(),
            path: format!("collection {}", load.collection),
            status: 0,
            error: "EmptyCollection".into(),
            message: "the collection holds no vectors to draw queries from".into(),
        });
    }
    let pool = QUERY_POOL.min(count);
    let mut bodies = Vec::with_capacity(pool as usize);
    for i in 0..pool {
        let page = client
            .get_page(&collection.id, i * count / pool, 1, &["embeddings"])
            .await?;
        if let Some(vector) = page.embeddings.and_then(|e| e.into_iter().next()) {
            let body = json!({ "query_embeddings": [vector], "n_results": load.k, "include": [] });
            bodies.push(Bytes::from(body.to_string()));
        }
    }
    let url = client.query_url(&collection.id).await?;
    let plan = load.plan.clone();
    let (mut answer, summary) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("vecdrill-load".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = answer.send(Err(format!("cannot start the load's runtime: {e}")));
                    return;
                }
            };
            let summary = runtime.block_on(async {
                tokio::select! {
                    summary = search(&plan, &url, bodies) => Some(summary),
                    // Nobody waits for it any more (an interrupted drill): the load stops.
                    () = answer.closed() => None,
                }
            });
            if let Some(summary) = summary {
                let _ = answer.send(summary);
            }
        });
    let failed = |message: String| ChromaError::Api {
        method: "POST".into(),
        path: format!("collection {} query", load.collection),
        status: 0,
        error: "LoadGenerator".into(),
        message,
    };
    spawned.map_err(|e| failed(format!("cannot start the load's thread: {e}")))?;
    summary
        .await
        .map_err(|_| failed("the load's thread ended without a result".into()))?
        .map_err(failed)
}

/// `plan`'s queries, `bodies` in turn, posted to `url` by a client of this runtime's own.
async fn search(plan: &LoadPlan, url: &str, bodies: Vec<Bytes>) -> Result<LatencySummary, String> {
    if bodies.is_empty() {
        return Err("no stored vector could be read to query with".into());
    }
    let url = reqwest::Url::parse(url).map_err(|e| format!("bad query URL {url}: {e}"))?;
    let http = crate::net::client_builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(120))
        .pool_max_idle_per_host(plan.concurrency.max(1))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let bodies = std::sync::Arc::new(bodies);
    let summary = run_load(plan, move |i| {
        let body = bodies[(i % bodies.len() as u64) as usize].clone();
        let request = http
            .post(url.clone())
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            // Read the whole body: a query is done when its answer has arrived.
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ))
            }
        }
    })
    .await;
    Ok(summary)
}
