//! The latency engine against a local HTTP server whose delay is known: it must measure what
//! the server does, and in constant-rate mode it must count a stall as queueing delay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vecdrill::latency::{run_load, LoadPlan};

/// An HTTP/1.1 keep-alive server answering every request after `delay(n)` for the n-th request.
async fn delayed_server(delay: impl Fn(u64) -> Duration + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let delay = Arc::new(delay);
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (delay, counter) = (delay.clone(), counter.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = find(&buffer, b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay(n)).await;
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    format!("http://{addr}/")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn get(
    url: String,
) -> impl Fn(
    usize,
    u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
       + Send
       + Sync
       + 'static {
    let client = vecdrill::net::client_builder().build().unwrap();
    move |_, _| {
        let request = client.get(&url);
        Box::pin(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            response.bytes().await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_known_delay_within_ten_percent() {
    let delay = Duration::from_millis(40);
    let url = delayed_server(move |_| delay).await;
    let plan = LoadPlan {
        queries: 120,
        concurrency: 4,
        rate: None,
        warmup: 4,
    };
    let summary = run_load(&plan, get(url)).await;
    assert_eq!(summary.errors, 0);
    for (name, value) in [("p50", summary.p50_ms), ("p90", summary.p90_ms)] {
        let error = (value - 40.0).abs() / 40.0;
        assert!(
            error < 0.10,
            "{name} {value:.2} ms is not within 10% of the injected 40 ms: {summary:?}"
        );
    }
    // Four workers each waiting 40 ms: about 100 queries a second, whatever the machine.
    assert!(summary.qps > 70.0 && summary.qps < 105.0, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_reports_the_queueing_delay_of_a_stall() {
    // Request 20 stalls for 600 ms; every other request answers in about a millisecond.
    let url = delayed_server(|n| {
        if n == 20 {
            Duration::from_millis(600)
        } else {
            Duration::from_millis(1)
        }
    })
    .await;
    let plan = LoadPlan {
        queries: 100,
        concurrency: 1,
        rate: Some(100.0),
        warmup: 0,
    };
    let summary = run_load(&plan, get(url.clone())).await;
    assert_eq!(summary.errors, 0);
    // The requests due during the stall waited for it: that is queueing, and it is counted.
    assert!(summary.queue_delay_max_ms > 450.0, "{summary:?}");
    assert!(summary.max_ms > 550.0, "{summary:?}");
    // About 60 requests were due while the server stalled, so p50 sees it too; a closed-loop
    // measurement of the same stall would have hidden it in one sample.
    assert!(summary.p90_ms > 100.0, "{summary:?}");
}
