//! Search load against a Chroma collection: query vectors are drawn from the collection's own
//! stored vectors and the request bodies are serialised once, up front, so the measuring side
//! spends its time on the network and not on JSON.
//!
//! The load runs on a thread of its own with a single-threaded runtime and an HTTP client made
//! there, as each of wrk's threads runs its own event loop: every connection, request and
//! answer stays on that one thread. On the multi-threaded runtime an answer read by a
//! connection's task woke the query's task on the other worker thread, a cross-thread wake-up
//! per query taken from the server the machine's cores are measuring.
//!
//! Against `http://` each worker keeps one HTTP/1.1 connection of its own (as each of wrk's
//! connections is), and a query is the prepared request on it: no URL parsed, no header name
//! looked up, no connection pool consulted per query. That halved the client's CPU per query
//! against reqwest's pooled client (see README, "Latency measurement"); `https://` goes through
//! reqwest.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::json;

use super::{run_load, LatencySummary, LoadPlan};
use crate::targets::chroma::{ChromaClient, ChromaError};

/// How many distinct stored vectors to cycle through as queries, read in this many pages
/// spread over the collection (a page each, not a request per vector: `get` at an offset
/// costs the server the offset, and 256 of them took 8 s on 200,000 records).
const QUERY_POOL: u64 = 256;
const POOL_PAGES: u64 = 8;
/// How long one query may take before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest answer read: a query's answer is ids and distances (kilobytes); a server that
/// sends more is broken, and is not given the memory to prove it.
const LARGEST_ANSWER: usize = 16 << 20;

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
    let pages = POOL_PAGES.min(count);
    let per_page = (QUERY_POOL / pages).min(count / pages).max(1);
    let mut bodies = Vec::with_capacity(QUERY_POOL as usize);
    for page in 0..pages {
        let vectors = client
            .get_page(
                &collection.id,
                page * count / pages,
                per_page,
                &["embeddings"],
            )
            .await?
            .embeddings
            .unwrap_or_default();
        for vector in vectors {
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
    let poster = Arc::new(Poster::new(&url, plan.concurrency.max(1))?);
    let bodies = Arc::new(bodies);
    let summary = run_load(plan, move |worker, i| {
        let body = bodies[(i % bodies.len() as u64) as usize].clone();
        let poster = poster.clone();
        async move {
            tokio::time::timeout(QUERY_TIMEOUT, poster.post(worker, body))
                .await
                .map_err(|_| format!("no answer within {}s", QUERY_TIMEOUT.as_secs()))?
        }
    })
    .await;
    Ok(summary)
}

/// Posts a query and reads its whole answer (a query is done when its answer has arrived),
/// which must be a success.
enum Poster {
    /// `http://`: a connection per worker, made on first use and again after a failure.
    Plain {
        address: String,
        request: http::request::Parts,
        connections: Vec<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>>,
    },
    Tls {
        http: reqwest::Client,
        url: reqwest::Url,
    },
}

impl Poster {
    fn new(url: &reqwest::Url, workers: usize) -> Result<Self, String> {
        // TLS, or credentials in the URL (reqwest sends them as basic auth): reqwest's client.
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            let http = crate::net::client_builder()
                .connect_timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(workers)
                .build()
                .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
            return Ok(Self::Tls {
                http,
                url: url.clone(),
            });
        }
        let host = url.host_str().ok_or("the query URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let (request, ()) = http::Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(())
            .map_err(|e| format!("cannot make the query request: {e}"))?
            .into_parts();
        Ok(Self::Plain {
            // `host_str` keeps an IPv6 address's brackets, as a socket address wants them.
            address: format!("{host}:{port}"),
            request,
            connections: (0..workers).map(|_| Default::default()).collect(),
        })
    }

    async fn post(&self, worker: usize, body: Bytes) -> Result<(), String> {
        let (status, answer) = match self {
            Self::Tls { http, url } => {
                let mut response = http
                    .post(url.clone())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| crate::net::describe_reqwest(&e))?;
                let status = response.status();
                let mut answer = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    if answer.len() + chunk.len() > LARGEST_ANSWER {
                        return Err(too_large());
                    }
                    answer.extend_from_slice(&chunk);
                }
                (status, Bytes::from(answer))
            }
            Self::Plain {
                address,
                request,
                connections,
            } => {
                let mut slot = connections[worker % connections.len()].lock().await;
                // A connection the server closed while it was idle (keep-alive timeouts) is
                // replaced before the query, not failed by it.
                let mut sender = match slot.take() {
                    Some(mut sender) => match sender.ready().await {
                        Ok(()) => sender,
                        Err(_) => connect(address).await?,
                    },
                    None => connect(address).await?,
                };
                let mut parts = http::Request::new(Full::new(body));
                *parts.method_mut() = request.method.clone();
                *parts.uri_mut() = request.uri.clone();
                *parts.headers_mut() = request.headers.clone();
                let response = sender
                    .send_request(parts)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let answer = http_body_util::Limited::new(response.into_body(), LARGEST_ANSWER)
                    .collect()
                    .await
                    .map_err(
                        |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                            Some(_) => too_large(),
                            None => e.to_string(),
                        },
                    )?
                    .to_bytes();
                // Kept for the next query only once it has served this one whole.
                *slot = Some(sender);
                (status, answer)
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ))
        }
    }
}

fn too_large() -> String {
    format!("the answer is larger than {} MiB", LARGEST_ANSWER >> 20)
}

/// A keep-alive HTTP/1.1 connection to `address`, driven by a task of this runtime.
async fn connect(address: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .map_err(|_| format!("cannot connect to {address} within 5s"))?
    .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot talk HTTP to {address}: {e}"))?;
    tokio::spawn(connection);
    sender
        .ready()
        .await
        .map_err(|e| format!("{address} closed the connection at once: {e}"))?;
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A local server answering every request with `status` and `body`, closing the
    /// connection after each answer when `close`; counts the connections it accepted.
    async fn server(
        status: &'static str,
        body: &'static str,
        close: bool,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/query", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    loop {
                        let Ok(n) = stream.read(&mut buffer).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buffer[..n]);
                        // Headers, then a body of content-length bytes.
                        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() < end + 4 + length {
                            continue;
                        }
                        request.drain(..end + 4 + length);
                        let connection = if close { "close" } else { "keep-alive" };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn poster_of(url: &str) -> Poster {
        Poster::new(&reqwest::Url::parse(url).unwrap(), 2).unwrap()
    }

    #[tokio::test]
    async fn a_worker_keeps_its_connection_and_makes_another_when_the_server_closes_it() {
        let (url, accepted) = server("200 OK", "{\"ids\": [[\"a\"]]}", false).await;
        let poster = poster_of(&url);
        for _ in 0..5 {
            poster.post(0, Bytes::from_static(b"{}")).await.unwrap();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for worker 0"
        );
        poster.post(1, Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "worker 1 has its own");

        let (url, accepted) = server("200 OK", "{}", true).await;
        let poster = poster_of(&url);
        for _ in 0..3 {
            poster.post(0, Bytes::from_static(b"{}")).await.unwrap();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "a closed connection is replaced"
        );
    }

    #[test]
    fn plain_http_is_addressed_as_the_url_says_and_credentials_go_through_reqwest() {
        let plain = |url: &str| match poster_of(url) {
            Poster::Plain {
                address, request, ..
            } => (
                address,
                request.uri.to_string(),
                request.headers[http::header::HOST].clone(),
            ),
            Poster::Tls { .. } => panic!("{url}: not plain"),
        };
        assert_eq!(
            plain("http://[::1]:8000/api/v2/q?x=1"),
            (
                "[::1]:8000".to_string(),
                "/api/v2/q?x=1".to_string(),
                "[::1]:8000".parse().unwrap()
            )
        );
        assert_eq!(
            plain("http://localhost/q"),
            (
                "localhost:80".to_string(),
                "/q".to_string(),
                "localhost".parse().unwrap()
            )
        );
        for url in [
            "https://chroma.example/q",
            "http://user:secret@127.0.0.1:8000/q",
        ] {
            assert!(matches!(poster_of(url), Poster::Tls { .. }), "{url}");
        }
    }

    #[tokio::test]
    async fn an_answer_that_is_no_success_is_an_error_naming_its_status_and_body() {
        let (url, _) = server(
            "500 Internal Server Error",
            "{\"error\": \"InternalError\"}",
            false,
        )
        .await;
        let err = poster_of(&url)
            .post(0, Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(
            err.starts_with("500 Internal Server Error: {\"error\": \"InternalError\"}"),
            "{err}"
        );
        let huge: &'static str = Box::leak("x".repeat(LARGEST_ANSWER + 1).into_boxed_str());
        let (url, _) = server("200 OK", huge, false).await;
        let err = poster_of(&url).post(0, Bytes::new()).await.unwrap_err();
        assert_eq!(err, too_large());
        let nobody = format!(
            "http://{}/q",
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        );
        let err = poster_of(&nobody).post(0, Bytes::new()).await.unwrap_err();
        assert!(err.starts_with("cannot connect to 127.0.0.1:"), "{err}");
    }
}
