//! Search load against a Chroma collection: query vectors are drawn from the collection's own
//! stored vectors and the request bodies are serialised once, up front, so the measuring side
//! spends its time on the network and not on JSON.

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
    let bodies = std::sync::Arc::new(bodies);
    let http = client.http().clone();
    let url = client.query_url(&collection.id).await?;
    let summary = run_load(&load.plan, move |i| {
        let body = bodies[(i % bodies.len() as u64) as usize].clone();
        let request = http
            .post(&url)
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
