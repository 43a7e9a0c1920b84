//! The latency engine behind `search_latency` steps and `vecdrill bench`.
//!
//! Workers issue operations and record into their own HDR histogram; the histograms are merged
//! once at the end, so memory is constant whatever the number of queries. In constant-rate mode
//! each operation has an intended send time and its latency is measured from that moment, so a
//! stalled server shows up as queueing delay instead of silently slowing the load
//! (no coordinated omission).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

pub mod chroma_query;

/// What load to apply.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Measured operations (warm-up excluded).
    pub queries: u64,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Constant rate in operations per second; `None` sends as fast as the workers go.
    pub rate: Option<f64>,
    /// Unmeasured operations first, to open connections and warm caches.
    pub warmup: u64,
}

impl Default for LoadPlan {
    fn default() -> Self {
        Self {
            queries: 100,
            concurrency: 4,
            rate: None,
            warmup: 10,
        }
    }
}

/// The merged result of one load run. Every `*_ms` field is in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub queries: u64,
    pub errors: u64,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub qps: f64,
    pub duration_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Time operations waited past their intended send time (constant-rate mode only).
    pub queue_delay_p99_ms: f64,
    pub queue_delay_max_ms: f64,
    pub first_error: Option<String>,
    /// Latency at fixed percentiles from p0 to p100, for drawing the distribution.
    pub distribution: Vec<LatencyPoint>,
}

/// One point of the latency distribution: `ms` at `percentile` (0-100).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyPoint {
    pub percentile: f64,
    pub ms: f64,
}

/// Percentiles recorded in [`LatencySummary::distribution`]: dense in the tail, where
/// regressions show first.
const DISTRIBUTION_PERCENTILES: &[f64] = &[
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0, 99.5,
    99.9, 100.0,
];

impl LatencySummary {
    /// The percentile named by an objective (`p50`, `p90`, `p99`, `max`).
    pub fn percentile_ms(&self, name: &str) -> Option<f64> {
        match name {
            "p50" => Some(self.p50_ms),
            "p90" => Some(self.p90_ms),
            "p99" => Some(self.p99_ms),
            "max" => Some(self.max_ms),
            _ => None,
        }
    }

    /// The run in one sentence, as reports print it: `200 queries at concurrency 4: p50
    /// 8.5 ms, p90 9.4 ms, p99 14.1 ms, max 16.2 ms, 458 qps, 0 errors.`
    pub fn sentence(&self) -> String {
        let rate = self.rate.map(|r| format!(" and {r}/s")).unwrap_or_default();
        let mut sentence = format!(
            "{} queries at concurrency {}{rate}: p50 {}, p90 {}, p99 {}, max {}, {:.0} qps, {} errors.",
            self.queries,
            self.concurrency,
            format_latency(self.p50_ms),
            format_latency(self.p90_ms),
            format_latency(self.p99_ms),
            format_latency(self.max_ms),
            self.qps,
            self.errors
        );
        for thin in self.thin_percentiles() {
            sentence.push(' ');
            sentence.push_str(&thin);
        }
        if let Some(error) = &self.first_error {
            sentence.push_str(&format!(" First error: {error}"));
        }
        sentence
    }

    /// A note for each reported percentile that rests on fewer than ten of the slowest
    /// answers (p99 of 200 queries is decided by 2 of them): read it as rough.
    pub fn thin_percentiles(&self) -> Vec<String> {
        let answered = self.queries.saturating_sub(self.errors);
        [("p90", 90.0), ("p99", 99.0)]
            .into_iter()
            .filter_map(|(name, percentile)| {
                let beyond = (answered as f64 * (100.0 - percentile) / 100.0).floor() as u64;
                (answered > 0 && beyond < 10).then(|| {
                    format!(
                        "{name} rests on the slowest {beyond} of {answered} answers: a rough figure."
                    )
                })
            })
            .collect()
    }
}

/// A latency in milliseconds, keeping a decimal below a second: `3.5 ms` tells more than
/// `4ms`.
pub fn format_latency(ms: f64) -> String {
    if ms >= 1000.0 {
        crate::duration::format_ms(ms)
    } else {
        format!("{ms:.1} ms")
    }
}

/// One worker's records; merged by [`run_load`] when all workers are done.
struct WorkerRecord {
    latency_us: Histogram<u64>,
    queue_us: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 3 significant digits: about 30 KB per histogram.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Run `plan` against `op`, which performs operation number `i` for worker `w` (`op(w, i)`:
/// a worker's operations run one at a time, so it may keep a connection of its own) and
/// reports success.
pub async fn run_load<Op, Fut>(plan: &LoadPlan, op: Op) -> LatencySummary
where
    Op: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    for i in 0..plan.warmup {
        let _ = op(0, u64::MAX - i).await;
    }
    let concurrency = plan.concurrency.max(1);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let (op, next, plan) = (op.clone(), next.clone(), plan.clone());
        workers.push(tokio::spawn(async move {
            let mut record = WorkerRecord {
                latency_us: histogram(),
                queue_us: histogram(),
                errors: 0,
                first_error: None,
                last_done: started,
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.queries {
                    break;
                }
                let intended = plan
                    .rate
                    .map(|rate| started + Duration::from_secs_f64(i as f64 / rate));
                if let Some(at) = intended {
                    tokio::time::sleep_until(at.into()).await;
                }
                let sent = Instant::now();
                let result = op(worker, i).await;
                let done = Instant::now();
                record.last_done = done;
                match result {
                    Ok(()) => {
                        let from = intended.unwrap_or(sent);
                        record.latency_us.saturating_record(micros(done - from));
                        if let Some(at) = intended {
                            record
                                .queue_us
                                .saturating_record(micros(sent.saturating_duration_since(at)));
                        }
                    }
                    Err(err) => {
                        record.errors += 1;
                        record.first_error.get_or_insert(err);
                    }
                }
            }
            record
        }));
    }
    let mut latency = histogram();
    let mut queue = histogram();
    let (mut errors, mut first_error, mut last_done) = (0, None, started);
    for worker in workers {
        let record = match worker.await {
            Ok(record) => record,
            Err(err) => {
                errors += 1;
                first_error.get_or_insert(format!("load worker failed: {err}"));
                continue;
            }
        };
        // Same bounds on both sides, so merging cannot fail.
        let _ = latency.add(&record.latency_us);
        let _ = queue.add(&record.queue_us);
        errors += record.errors;
        if first_error.is_none() {
            first_error = record.first_error;
        }
        last_done = last_done.max(record.last_done);
    }
    let elapsed = last_done.duration_since(started);
    let ms = |us: u64| us as f64 / 1000.0;
    LatencySummary {
        queries: plan.queries,
        errors,
        concurrency,
        rate: plan.rate,
        qps: latency.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        mean_ms: latency.mean() / 1000.0,
        p50_ms: ms(latency.value_at_quantile(0.50)),
        p90_ms: ms(latency.value_at_quantile(0.90)),
        p99_ms: ms(latency.value_at_quantile(0.99)),
        max_ms: ms(latency.max()),
        queue_delay_p99_ms: ms(queue.value_at_quantile(0.99)),
        queue_delay_max_ms: ms(queue.max()),
        first_error,
        distribution: DISTRIBUTION_PERCENTILES
            .iter()
            .map(|&percentile| LatencyPoint {
                percentile,
                ms: ms(latency.value_at_quantile(percentile / 100.0)),
            })
            .collect(),
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}
