//! A fault-injecting HTTP proxy on loopback, in front of the S3-protocol test server: it
//! forwards each request to moto on a fresh connection and, as its plan says, answers some
//! with a fault instead. Faults are chosen by request order from a fixed seed, so a run is
//! repeatable up to the order concurrent uploads arrive in.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to a request instead of (or besides) forwarding it faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is closed before the request reaches the server.
    Reset,
    /// The server handles the request, then the connection is closed without an answer.
    ResetAfterServed,
    /// `500 InternalError`, not forwarded.
    InternalError,
    /// `503 SlowDown` with `Retry-After: 1`, not forwarded.
    SlowDownRetryAfter,
    /// `503 SlowDown` without `Retry-After`, not forwarded.
    SlowDown,
    /// The server handles the request (a PUT is stored), and the client is told `500`.
    ServedThenFailed,
    /// Forwarded after a pause.
    Slow,
    /// A GET's answer is cut off halfway through its body.
    TruncatedBody,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Reset,
        Fault::ResetAfterServed,
        Fault::InternalError,
        Fault::SlowDownRetryAfter,
        Fault::SlowDown,
        Fault::ServedThenFailed,
        Fault::Slow,
        Fault::TruncatedBody,
    ];

    fn applies_to(self, method: &str) -> bool {
        self != Fault::TruncatedBody || method == "GET"
    }
}

/// When the proxy injects faults.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Every request is forwarded faithfully.
    Healthy,
    /// About `percent` of requests get a fault, the kinds taken in turn; one request (method
    /// and path) is faulted at most `in_a_row` times running, so object_store's retries
    /// always get it through in the end.
    Transient {
        seed: u64,
        percent: u64,
        in_a_row: u32,
    },
    /// Every request with `method` whose path contains `path` gets `fault`, for ever.
    Persistent {
        method: &'static str,
        path: &'static str,
        fault: Fault,
    },
}

struct State {
    plan: Plan,
    /// Faults injected so far, by kind.
    injected: BTreeMap<Fault, usize>,
    /// Faults in a row, by `METHOD path`, for [`Plan::Transient`].
    running: BTreeMap<String, u32>,
    /// How many faults [`Plan::Transient`] has injected into GETs and into other requests:
    /// each class takes the kinds that apply to it in turn, so every kind comes up.
    turns: [usize; 2],
}

pub struct FaultyS3 {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultyS3 {
    /// A proxy on a free loopback port, forwarding to `upstream_port`.
    pub fn start(upstream_port: u16, plan: Plan) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            plan,
            injected: BTreeMap::new(),
            running: BTreeMap::new(),
            turns: [0; 2],
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let (state, counter) = (state.clone(), counter.clone());
                    std::thread::spawn(move || serve(client, upstream_port, &state, &counter));
                }
            });
        }
        Self { port, state, stop }
    }

    pub fn set_plan(&self, plan: Plan) {
        let mut state = self.state.lock().unwrap();
        state.plan = plan;
        state.running.clear();
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, usize> {
        self.state.lock().unwrap().injected.clone()
    }

    /// The environment object_store reads, pointed at this proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        super::S3Server::env_for_port(self.port)
    }
}

impl Drop for FaultyS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request as read from the client.
struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if first.is_empty() {
            first = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().ok()?;
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the proxy reads bodies by Content-Length only: {line}"
        );
        // The proxy opens one upstream connection per request and reads its answer to the end.
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    let mut words = first.split_whitespace();
    Some(Request {
        method: words.next()?.to_string(),
        path: words.next()?.to_string(),
        head,
        body,
    })
}

/// The server's whole answer to `request`.
fn forward(request: &Request, upstream_port: u16) -> Vec<u8> {
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).expect("reach moto");
    upstream.write_all(&request.head).unwrap();
    upstream.write_all(&request.body).unwrap();
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).unwrap();
    answer
}

/// Where an answer's body starts, and its Content-Length if it has one.
fn framing(answer: &[u8]) -> (usize, Option<usize>) {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    (end, length)
}

fn error_answer(status: &str, code: &str, retry_after: bool) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    let retry = if retry_after {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n{retry}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The fault for the `n`th request, if the plan gives it one.
fn choose(state: &Mutex<State>, n: u64, request: &Request) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let key = format!("{} {}", request.method, request.path);
    let fault = match state.plan.clone() {
        Plan::Healthy => None,
        Plan::Persistent {
            method,
            path,
            fault,
        } => (request.method == method && request.path.contains(path)).then_some(fault),
        Plan::Transient {
            seed,
            percent,
            in_a_row,
        } => {
            let running = state.running.get(&key).copied().unwrap_or(0);
            if running < in_a_row && splitmix(seed ^ n) % 100 < percent {
                let applicable: Vec<Fault> = Fault::ALL
                    .into_iter()
                    .filter(|f| f.applies_to(&request.method))
                    .collect();
                let turn = &mut state.turns[usize::from(request.method == "GET")];
                *turn += 1;
                Some(applicable[*turn % applicable.len()])
            } else {
                None
            }
        }
    };
    match fault {
        Some(fault) => {
            *state.running.entry(key).or_default() += 1;
            *state.injected.entry(fault).or_default() += 1;
        }
        None => {
            state.running.remove(&key);
        }
    }
    fault
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Serve one request (the answer says `Connection: close`, as the server's own does when
/// asked to close, so every request comes on a connection of its own).
fn serve(client: TcpStream, upstream_port: u16, state: &Mutex<State>, counter: &AtomicU64) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let answer = match choose(state, n, &request) {
        None => forward(&request, upstream_port),
        Some(Fault::Reset) => Vec::new(),
        Some(Fault::ResetAfterServed) => {
            forward(&request, upstream_port);
            Vec::new()
        }
        Some(Fault::InternalError) => {
            error_answer("500 Internal Server Error", "InternalError", false)
        }
        Some(Fault::SlowDownRetryAfter) => {
            error_answer("503 Service Unavailable", "SlowDown", true)
        }
        Some(Fault::SlowDown) => error_answer("503 Service Unavailable", "SlowDown", false),
        Some(Fault::ServedThenFailed) => {
            forward(&request, upstream_port);
            error_answer("500 Internal Server Error", "InternalError", false)
        }
        Some(Fault::Slow) => {
            std::thread::sleep(Duration::from_millis(1500));
            forward(&request, upstream_port)
        }
        Some(Fault::TruncatedBody) => {
            let mut answer = forward(&request, upstream_port);
            let (start, length) = framing(&answer);
            if let Some(length) = length.filter(|l| *l > 1 && answer.len() >= start + l) {
                answer.truncate(start + length / 2);
            }
            answer
        }
    };
    let _ = writer.write_all(&answer);
    let _ = writer.shutdown(Shutdown::Both);
}
