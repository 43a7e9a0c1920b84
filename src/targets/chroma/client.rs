//! HTTP client for Chroma's v2 API (Chroma 1.x), tenant- and database-aware.
//!
//! Data operations address a collection by its UUID; lookups go by name. The client resolves
//! names once per call site through [`ChromaClient::collection`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::exit::{self, Classify};
use crate::net::describe_reqwest;

pub const DEFAULT_TENANT: &str = "default_tenant";
pub const DEFAULT_DATABASE: &str = "default_database";

#[derive(Debug, thiserror::Error)]
pub enum ChromaError {
    #[error("cannot reach Chroma at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} is not a Chroma v2 server: {reason}")]
    NotChroma { url: String, reason: String },
    #[error("collection {name:?} does not exist on {url}")]
    CollectionNotFound { url: String, name: String },
    #[error("Chroma answered {status} to {method} {path}: {error}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        error: String,
        message: String,
    },
    #[error("Chroma answered {method} {path} with a body vecdrill cannot read: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
}

impl Classify for ChromaError {
    fn exit_code(&self) -> i32 {
        exit::RUNTIME
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Unreachable { .. } => Some(
                "check that the Chroma server is running and that --url names its host and port"
                    .into(),
            ),
            Self::NotChroma { .. } => Some(
                "vecdrill speaks Chroma's /api/v2 (Chroma 1.x); point --url at the server's base URL, e.g. http://127.0.0.1:8000".into(),
            ),
            Self::CollectionNotFound { .. } => {
                Some("list the collections with `curl URL/api/v2/tenants/default_tenant/databases/default_database/collections`".into())
            }
            _ => None,
        }
    }
}

/// A collection as Chroma describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collection {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub dimension: Option<u64>,
    #[serde(default)]
    pub configuration_json: Option<Value>,
}

/// Records to add or upsert; every vector must have the collection's dimension.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Records {
    pub ids: Vec<String>,
    pub embeddings: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadatas: Option<Vec<Value>>,
}

/// A page of stored records as returned by `get`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordPage {
    pub ids: Vec<String>,
    #[serde(default)]
    pub embeddings: Option<Vec<Vec<f32>>>,
    #[serde(default)]
    pub documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    pub metadatas: Option<Vec<Option<Value>>>,
    #[serde(default)]
    pub uris: Option<Vec<Option<String>>>,
}

#[derive(Debug, Deserialize)]
struct QueryResponse {
    ids: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
}

/// Client for one Chroma server, one tenant and one database.
#[derive(Debug, Clone)]
pub struct ChromaClient {
    http: reqwest::Client,
    base: String,
    tenant: String,
    database: String,
}

impl ChromaClient {
    pub fn new(url: &str) -> Self {
        Self::with_database(url, DEFAULT_TENANT, DEFAULT_DATABASE)
    }

    pub fn with_database(url: &str, tenant: &str, database: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a reqwest client with static settings always builds");
        Self {
            http,
            base: url.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            database: database.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client, shared by the latency engine so connections are reused.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn db_path(&self, rest: &str) -> String {
        format!(
            "/api/v2/tenants/{}/databases/{}{}",
            self.tenant, self.database, rest
        )
    }

    /// Full URL of a collection's query endpoint, for callers that build raw requests.
    pub fn query_url(&self, collection_id: &str) -> String {
        format!(
            "{}{}",
            self.base,
            self.db_path(&format!("/collections/{collection_id}/query"))
        )
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<T, ChromaError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|err| ChromaError::Unreachable {
                url: self.base.clone(),
                reason: describe_reqwest(&err),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| ChromaError::Unreachable {
                url: self.base.clone(),
                reason: describe_reqwest(&err),
            })?;
        if !status.is_success() {
            return Err(self.api_error(&method, path, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|err| ChromaError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            reason: err.to_string(),
        })
    }

    fn api_error(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        body: &[u8],
    ) -> ChromaError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody {
                error: Some(error),
                message,
            }) => ChromaError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                error,
                message: message.unwrap_or_default(),
            },
            // Not Chroma's error shape: say so, with a glimpse of what answered.
            _ => ChromaError::NotChroma {
                url: self.base.clone(),
                reason: format!(
                    "{method} {path} answered {status} with {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(120)])
                ),
            },
        }
    }

    /// Heartbeat; returns the server's nanosecond clock. Anything else answering is reported as
    /// "not a Chroma v2 server".
    pub async fn heartbeat(&self, timeout: Duration) -> Result<u64, ChromaError> {
        let value: Value = self
            .call(Method::GET, "/api/v2/heartbeat", None, Some(timeout))
            .await
            .map_err(|err| match err {
                ChromaError::Decode { reason, .. } => ChromaError::NotChroma {
                    url: self.base.clone(),
                    reason: format!("/api/v2/heartbeat did not answer JSON ({reason})"),
                },
                other => other,
            })?;
        value
            .get("nanosecond heartbeat")
            .and_then(Value::as_u64)
            .ok_or_else(|| ChromaError::NotChroma {
                url: self.base.clone(),
                reason: format!(
                    "/api/v2/heartbeat answered {value}, without \"nanosecond heartbeat\""
                ),
            })
    }

    pub async fn version(&self) -> Result<String, ChromaError> {
        self.call(Method::GET, "/api/v2/version", None, None).await
    }

    /// The largest batch the server accepts for add/upsert.
    pub async fn max_batch_size(&self) -> Result<usize, ChromaError> {
        let value: Value = self
            .call(Method::GET, "/api/v2/pre-flight-checks", None, None)
            .await?;
        Ok(value
            .get("max_batch_size")
            .and_then(Value::as_u64)
            .unwrap_or(1000) as usize)
    }

    /// Every collection in the database, paged.
    pub async fn list_collections(&self) -> Result<Vec<Collection>, ChromaError> {
        const PAGE: usize = 100;
        let mut all = Vec::new();
        loop {
            let path = self.db_path(&format!("/collections?limit={PAGE}&offset={}", all.len()));
            let page: Vec<Collection> = self.call(Method::GET, &path, None, None).await?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn collection(&self, name: &str) -> Result<Collection, ChromaError> {
        let path = self.db_path(&format!("/collections/{name}"));
        self.call(Method::GET, &path, None, None)
            .await
            .map_err(|err| self.not_found_as(err, name))
    }

    fn not_found_as(&self, err: ChromaError, name: &str) -> ChromaError {
        match err {
            ChromaError::Api { error, .. } if error == "NotFoundError" => {
                ChromaError::CollectionNotFound {
                    url: self.base.clone(),
                    name: name.to_string(),
                }
            }
            other => other,
        }
    }

    pub async fn get_or_create_collection(
        &self,
        name: &str,
        metadata: Option<Value>,
    ) -> Result<Collection, ChromaError> {
        self.get_or_create_configured(name, metadata, None).await
    }

    /// Get the collection, or create it with this metadata and configuration (Chroma's
    /// `configuration_json` shape: `{"hnsw": {"space": ...}, ...}`).
    pub async fn get_or_create_configured(
        &self,
        name: &str,
        metadata: Option<Value>,
        configuration: Option<Value>,
    ) -> Result<Collection, ChromaError> {
        let mut body = json!({ "name": name, "get_or_create": true });
        if let Some(metadata) = metadata {
            body["metadata"] = metadata;
        }
        if let Some(configuration) = configuration {
            body["configuration"] = configuration;
        }
        let path = self.db_path("/collections");
        self.call(Method::POST, &path, Some(&body), None).await
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), ChromaError> {
        let path = self.db_path(&format!("/collections/{name}"));
        self.call::<Value>(Method::DELETE, &path, None, None)
            .await
            .map(drop)
            .map_err(|err| self.not_found_as(err, name))
    }

    pub async fn count(&self, collection_id: &str) -> Result<u64, ChromaError> {
        let path = self.db_path(&format!("/collections/{collection_id}/count"));
        self.call(Method::GET, &path, None, None).await
    }

    /// One page of records in storage order; `include` names the fields to return
    /// (`embeddings`, `documents`, `metadatas`).
    pub async fn get_page(
        &self,
        collection_id: &str,
        offset: u64,
        limit: u64,
        include: &[&str],
    ) -> Result<RecordPage, ChromaError> {
        let body = json!({ "offset": offset, "limit": limit, "include": include });
        let path = self.db_path(&format!("/collections/{collection_id}/get"));
        self.call(Method::POST, &path, Some(&body), None).await
    }

    /// Records by id, with their embeddings.
    pub async fn get_by_ids(
        &self,
        collection_id: &str,
        ids: &[String],
        include: &[&str],
    ) -> Result<RecordPage, ChromaError> {
        let body = json!({ "ids": ids, "include": include });
        let path = self.db_path(&format!("/collections/{collection_id}/get"));
        self.call(Method::POST, &path, Some(&body), None).await
    }

    /// Ids of the `k` nearest neighbours of each query vector.
    pub async fn query(
        &self,
        collection_id: &str,
        vectors: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, ChromaError> {
        let body = json!({ "query_embeddings": vectors, "n_results": k, "include": [] });
        let path = self.db_path(&format!("/collections/{collection_id}/query"));
        let response: QueryResponse = self.call(Method::POST, &path, Some(&body), None).await?;
        Ok(response.ids)
    }

    pub async fn add(&self, collection_id: &str, records: &Records) -> Result<(), ChromaError> {
        self.write(collection_id, "add", records).await
    }

    /// Upsert any body of Chroma's shape (`ids`, `embeddings`, optional `documents`,
    /// `metadatas`, `uris`, each entry possibly null).
    pub async fn upsert<T: Serialize>(
        &self,
        collection_id: &str,
        records: &T,
    ) -> Result<(), ChromaError> {
        self.write(collection_id, "upsert", records).await
    }

    async fn write<T: Serialize>(
        &self,
        collection_id: &str,
        op: &str,
        records: &T,
    ) -> Result<(), ChromaError> {
        let body = serde_json::to_value(records).map_err(|err| ChromaError::Decode {
            method: "POST".into(),
            path: op.into(),
            reason: err.to_string(),
        })?;
        let path = self.db_path(&format!("/collections/{collection_id}/{op}"));
        self.call::<Value>(Method::POST, &path, Some(&body), None)
            .await
            .map(drop)
    }
}

/// A JSON object without its null members (Chroma's `configuration_json` lists unset
/// sections as null, which it does not accept back on create).
pub fn without_nulls(value: &Value) -> Option<Value> {
    let Value::Object(map) = value else {
        return (!value.is_null()).then(|| value.clone());
    };
    let kept: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}
