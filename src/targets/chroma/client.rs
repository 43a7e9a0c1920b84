//! HTTP client for Chroma's API, tenant- and database-aware: `/api/v2` where the server has it
//! (Chroma 0.5 onward), `/api/v1` where it has not (0.4), chosen once per server.
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
    #[error("{url} is not a Chroma server: {reason}")]
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
                "vecdrill speaks Chroma's HTTP API (/api/v2, or /api/v1 on Chroma 0.4); point --url at the server's base URL, e.g. http://127.0.0.1:8000".into(),
            ),
            Self::CollectionNotFound { .. } => {
                Some("check the name: `curl URL/api/v2/tenants/default_tenant/databases/default_database/collections` lists them (`URL/api/v1/collections` on Chroma 0.4)".into())
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
    #[serde(default)]
    distances: Option<Vec<Vec<Option<f32>>>>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
    /// FastAPI's own shape, which Chroma 0.x answers validation errors with.
    detail: Option<Value>,
}

/// Which HTTP API a server speaks. The same calls and bodies under both; only the paths differ
/// (v1 names the tenant and database as query parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/api/v1` only: Chroma 0.4.
    V1,
    /// `/api/v2`: Chroma 0.5 onward (1.x answers v1 with 410 Gone).
    V2,
}

/// Client for one Chroma server, one tenant and one database.
#[derive(Debug, Clone)]
pub struct ChromaClient {
    http: reqwest::Client,
    base: String,
    tenant: String,
    database: String,
    /// The server's API, found on the first call (clones share it).
    api: std::sync::Arc<tokio::sync::OnceCell<Api>>,
    /// The version the server reports, asked once.
    version: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl ChromaClient {
    pub fn new(url: &str) -> Self {
        Self::with_database(url, DEFAULT_TENANT, DEFAULT_DATABASE)
    }

    pub fn with_database(url: &str, tenant: &str, database: &str) -> Self {
        let http = crate::net::client_builder()
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
            api: Default::default(),
            version: Default::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client, shared by the latency engine so connections are reused.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's API: `/api/v2` when its heartbeat answers there, else `/api/v1` when that
    /// answers (asked once; an unreachable server is asked again next time).
    pub async fn api(&self, timeout: Option<Duration>) -> Result<Api, ChromaError> {
        self.api
            .get_or_try_init(|| async {
                let v2 = self
                    .call::<Value>(Method::GET, "/api/v2/heartbeat", None, timeout)
                    .await;
                match v2 {
                    Ok(_) => Ok(Api::V2),
                    // No v2 here: a 0.4 server answers v1 (anything else keeps v2's error).
                    Err(
                        v2_error @ (ChromaError::Api { status: 404, .. }
                        | ChromaError::NotChroma { .. }),
                    ) => {
                        match self
                            .call::<Value>(Method::GET, "/api/v1/heartbeat", None, timeout)
                            .await
                        {
                            Ok(_) => Ok(Api::V1),
                            Err(_) => Err(v2_error),
                        }
                    }
                    Err(other) => Err(other),
                }
            })
            .await
            .copied()
    }

    /// A server-wide path (`/heartbeat`, `/version`, ...) under the server's API.
    async fn server_path(&self, rest: &str) -> Result<String, ChromaError> {
        Ok(match self.api(None).await? {
            Api::V1 => format!("/api/v1{rest}"),
            Api::V2 => format!("/api/v2{rest}"),
        })
    }

    /// A path in this client's tenant and database (`/collections...`).
    async fn db_path(&self, rest: &str) -> Result<String, ChromaError> {
        Ok(match self.api(None).await? {
            Api::V1 => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let mut path = format!(
                    "/api/v1{path}?tenant={}&database={}",
                    self.tenant, self.database
                );
                if !query.is_empty() {
                    path.push('&');
                    path.push_str(query);
                }
                path
            }
            Api::V2 => format!(
                "/api/v2/tenants/{}/databases/{}{rest}",
                self.tenant, self.database
            ),
        })
    }

    /// Full URL of a collection's query endpoint, for callers that build raw requests.
    pub async fn query_url(&self, collection_id: &str) -> Result<String, ChromaError> {
        let path = self
            .db_path(&format!("/collections/{collection_id}/query"))
            .await?;
        Ok(format!("{}{path}", self.base))
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
                ..
            }) => ChromaError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                error,
                message: message.unwrap_or_default(),
            },
            // 0.x's validation errors (a 404 of a path it lacks is not one: no such API).
            Ok(ErrorBody {
                detail: Some(detail),
                ..
            }) if status != StatusCode::NOT_FOUND => ChromaError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                error: "Error".into(),
                message: match detail {
                    Value::String(text) => text,
                    other => other.to_string(),
                },
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
    /// "not a Chroma server".
    pub async fn heartbeat(&self, timeout: Duration) -> Result<u64, ChromaError> {
        let path = match self.api(Some(timeout)).await? {
            Api::V1 => "/api/v1/heartbeat",
            Api::V2 => "/api/v2/heartbeat",
        };
        let value: Value = self
            .call(Method::GET, path, None, Some(timeout))
            .await
            .map_err(|err| match err {
                ChromaError::Decode { reason, .. } => ChromaError::NotChroma {
                    url: self.base.clone(),
                    reason: format!("{path} did not answer JSON ({reason})"),
                },
                other => other,
            })?;
        value
            .get("nanosecond heartbeat")
            .and_then(Value::as_u64)
            .ok_or_else(|| ChromaError::NotChroma {
                url: self.base.clone(),
                reason: format!("{path} answered {value}, without \"nanosecond heartbeat\""),
            })
    }

    /// The version the server reports (1.x servers report "1.0.0" whatever they are: see
    /// [`ChromaClient::version_label`]).
    pub async fn version(&self) -> Result<String, ChromaError> {
        self.version
            .get_or_try_init(|| async {
                let path = self.server_path("/version").await?;
                self.call(Method::GET, &path, None, None).await
            })
            .await
            .cloned()
    }

    /// The version as a record should show it: what the server reports, except that every
    /// 1.x server answers "1.0.0", which says only that it is a 1.x.
    pub async fn version_label(&self) -> Result<String, ChromaError> {
        let version = self.version().await?;
        Ok(if version == "1.0.0" {
            "unknown (1.x)".to_string()
        } else {
            version
        })
    }

    /// Whether the server keeps a collection's space and HNSW settings in its `hnsw:*`
    /// metadata keys (Chroma 0.x) rather than in its configuration (1.x).
    pub async fn settings_in_metadata(&self) -> Result<bool, ChromaError> {
        Ok(self.version().await?.starts_with("0."))
    }

    /// The largest batch the server accepts for add/upsert.
    pub async fn max_batch_size(&self) -> Result<usize, ChromaError> {
        let value: Value = self
            .call(
                Method::GET,
                &self.server_path("/pre-flight-checks").await?,
                None,
                None,
            )
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
            let path = self
                .db_path(&format!("/collections?limit={PAGE}&offset={}", all.len()))
                .await?;
            let page: Vec<Collection> = self.call(Method::GET, &path, None, None).await?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn collection(&self, name: &str) -> Result<Collection, ChromaError> {
        let path = self.db_path(&format!("/collections/{name}")).await?;
        self.call(Method::GET, &path, None, None)
            .await
            .map_err(|err| self.not_found_as(err, name))
    }

    fn not_found_as(&self, err: ChromaError, name: &str) -> ChromaError {
        match err {
            // 1.x: NotFoundError; 0.5-0.6: InvalidCollection or a message; 0.4: a ValueError
            // saying so.
            ChromaError::Api { error, message, .. }
                if error == "NotFoundError"
                    || error == "InvalidCollection"
                    || error.contains("does not exist")
                    || message.contains("does not exist") =>
            {
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
        // Chroma 0.4 replaces an existing collection's metadata on get_or_create (dropping
        // its `hnsw:space`): there, an existing collection is only looked up.
        if self.api(None).await? == Api::V1 {
            match self.collection(name).await {
                Err(ChromaError::CollectionNotFound { .. }) => {}
                found => return found,
            }
        }
        let mut body = json!({ "name": name, "get_or_create": true });
        if let Some(metadata) = metadata {
            body["metadata"] = metadata;
        }
        if let Some(configuration) = configuration {
            body["configuration"] = configuration;
        }
        let path = self.db_path("/collections").await?;
        self.call(Method::POST, &path, Some(&body), None).await
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), ChromaError> {
        let path = self.db_path(&format!("/collections/{name}")).await?;
        self.call::<Value>(Method::DELETE, &path, None, None)
            .await
            .map(drop)
            .map_err(|err| self.not_found_as(err, name))
    }

    pub async fn count(&self, collection_id: &str) -> Result<u64, ChromaError> {
        let path = self
            .db_path(&format!("/collections/{collection_id}/count"))
            .await?;
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
        let path = self
            .db_path(&format!("/collections/{collection_id}/get"))
            .await?;
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
        let path = self
            .db_path(&format!("/collections/{collection_id}/get"))
            .await?;
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
        let path = self
            .db_path(&format!("/collections/{collection_id}/query"))
            .await?;
        let response: QueryResponse = self.call(Method::POST, &path, Some(&body), None).await?;
        Ok(response.ids)
    }

    /// Like [`Self::query`], each neighbour with the distance the server answers for it.
    pub async fn query_with_distances(
        &self,
        collection_id: &str,
        vectors: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<(String, f32)>>, ChromaError> {
        let body = json!({ "query_embeddings": vectors, "n_results": k, "include": ["distances"] });
        let path = self
            .db_path(&format!("/collections/{collection_id}/query"))
            .await?;
        let response: QueryResponse = self.call(Method::POST, &path, Some(&body), None).await?;
        let distances = response.distances.unwrap_or_default();
        Ok(response
            .ids
            .into_iter()
            .enumerate()
            .map(|(at, ids)| {
                let answered = distances.get(at);
                ids.into_iter()
                    .enumerate()
                    .map(|(n, id)| {
                        let d = answered.and_then(|d| d.get(n).copied().flatten());
                        // No distance: never counted as a tie.
                        (id, d.unwrap_or(f32::INFINITY))
                    })
                    .collect()
            })
            .collect())
    }

    pub async fn add(&self, collection_id: &str, records: &Records) -> Result<(), ChromaError> {
        self.write(collection_id, "add", records).await
    }

    pub async fn update(&self, collection_id: &str, records: &Records) -> Result<(), ChromaError> {
        self.write(collection_id, "update", records).await
    }

    /// Delete the records `ids`.
    pub async fn delete_records(
        &self,
        collection_id: &str,
        ids: &[String],
    ) -> Result<(), ChromaError> {
        self.write(collection_id, "delete", &json!({ "ids": ids }))
            .await
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
        let path = self
            .db_path(&format!("/collections/{collection_id}/{op}"))
            .await?;
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
