//! Client for an OpenAI-compatible `POST /v1/embeddings` endpoint: batched input, retries
//! with exponential backoff on 429, 5xx and dropped connections (honouring `Retry-After`).
//! The API key is sent as a bearer token and never logged or put in an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::exit::{self, Classify};

#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// Base URL: `https://api.openai.com` or `http://127.0.0.1:8080` (with or without `/v1`).
    pub url: String,
    pub model: String,
    /// The key itself (read from the environment by the caller); `None` sends no header.
    pub api_key: Option<String>,
    /// Attempts per request, the first included.
    pub attempts: u32,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the embedding endpoint {url} answered {status}: {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the embedding endpoint {url} failed {attempts} times; last: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("the embedding endpoint {url} answered something else than embeddings: {reason}")]
    Malformed { url: String, reason: String },
}

impl Classify for EmbedError {
    fn exit_code(&self) -> i32 {
        exit::RUNTIME
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Rejected { status: 401 | 403, .. } => {
                "check the API key (its environment variable is named by --api-key-env)".into()
            }
            Self::Rejected { .. } => "check --embed-url and --model".into(),
            Self::GaveUp { .. } => {
                "the endpoint is down or rate-limiting: run the same rebuild again later (records already stored are skipped)".into()
            }
            Self::Malformed { .. } => {
                "--embed-url must point at an OpenAI-compatible server (POST /v1/embeddings)".into()
            }
        })
    }
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// Counters shared by every request of one client.
#[derive(Debug, Default)]
pub struct EmbedStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

#[derive(Clone)]
pub struct EmbeddingClient {
    http: reqwest::Client,
    endpoint: String,
    settings: Arc<EmbedSettings>,
    pub stats: Arc<EmbedStats>,
}

impl EmbeddingClient {
    pub fn new(settings: EmbedSettings) -> Self {
        let base = settings.url.trim_end_matches('/');
        let endpoint = if base.ends_with("/v1") {
            format!("{base}/embeddings")
        } else {
            format!("{base}/v1/embeddings")
        };
        let http = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(settings.timeout)
            .build()
            .expect("a reqwest client with static settings always builds");
        Self {
            http,
            endpoint,
            settings: Arc::new(settings),
            stats: Arc::default(),
        }
    }

    /// One embedding per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = json!({ "model": self.settings.model, "input": texts });
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        let attempts = self.settings.attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.post(&self.endpoint).json(&body);
            if let Some(key) = &self.settings.api_key {
                request = request.bearer_auth(key);
            }
            let wait = match request.send().await {
                Err(err) => {
                    last = crate::net::describe_reqwest(&err);
                    delay
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let bytes = response.bytes().await.map_err(|e| EmbedError::Malformed {
                            url: self.endpoint.clone(),
                            reason: e.to_string(),
                        })?;
                        return self.parse(&bytes, texts.len());
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)));
                    let text = response.text().await.unwrap_or_default();
                    let message: String = text.chars().take(300).collect();
                    if !(status.as_u16() == 429 || status.is_server_error()) {
                        return Err(EmbedError::Rejected {
                            url: self.endpoint.clone(),
                            status: status.as_u16(),
                            message,
                        });
                    }
                    last = format!("{status}: {message}");
                    retry_after.unwrap_or(delay)
                }
            };
            if attempt < attempts {
                tracing::debug!(attempt, wait = ?wait, reason = %last, "embedding request retried");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
        }
        Err(EmbedError::GaveUp {
            url: self.endpoint.clone(),
            attempts,
            last,
        })
    }

    fn parse(&self, bytes: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let malformed = |reason: String| EmbedError::Malformed {
            url: self.endpoint.clone(),
            reason,
        };
        let response: Response =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if response.data.len() != expected {
            return Err(malformed(format!(
                "{} embeddings for {expected} inputs",
                response.data.len()
            )));
        }
        let mut ordered: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, datum) in response.data.into_iter().enumerate() {
            let at = datum.index.unwrap_or(position);
            let slot = ordered
                .get_mut(at)
                .ok_or_else(|| malformed(format!("index {at} out of range")))?;
            *slot = Some(datum.embedding);
        }
        ordered
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| malformed(format!("no embedding for input {i}"))))
            .collect()
    }
}
