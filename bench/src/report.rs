//! Results: latency histograms (hdrhistogram, microseconds), error counts
//! by ZooKeeper error code, the JSON a run prints, and the progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, 1 µs .. 10 min, 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// What one connection task measured; merged into a [`Report`].
pub struct Tally {
    /// Latency of every request sent in the measuring window, whenever it
    /// completed.
    pub hist: Histogram<u64>,
    /// Replies that arrived within the window (throughput).
    pub ops: u64,
    /// Error replies by ZooKeeper error code.
    pub errors: BTreeMap<i32, u64>,
    /// Connections that failed (lost, refused), with the reason.
    pub failures: Vec<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            hist: new_histogram(),
            ops: 0,
            errors: BTreeMap::new(),
            failures: Vec::new(),
        }
    }
}

impl Tally {
    pub fn record(&mut self, latency: Duration, err: i32) {
        self.ops += 1;
        self.record_latency(latency);
        if err != 0 {
            *self.errors.entry(err).or_default() += 1;
        }
    }

    pub fn record_latency(&mut self, latency: Duration) {
        let _ = self.hist.record((latency.as_micros() as u64).max(1));
    }

    /// A reply that arrived in the window, without its latency.
    pub fn count(&mut self, err: i32) {
        self.ops += 1;
        if err != 0 {
            *self.errors.entry(err).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Tally) {
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.failures.extend(other.failures);
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The JSON document a run prints.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub workload: String,
    pub servers: Vec<String>,
    pub clients: usize,
    pub inflight: usize,
    /// Open loop target rate (ops/s); absent for a closed loop.
    pub rate: Option<f64>,
    pub value_size: usize,
    /// Seconds measured (after warm-up).
    pub seconds: f64,
    /// Operations completed while measuring (error replies included).
    pub ops: u64,
    pub throughput: f64,
    /// Open loop: measured from each request's intended start, so a stalled
    /// server is charged for the requests it delayed (coordinated omission
    /// corrected). Closed loop: from the actual send.
    pub latency_us: Latency,
    /// Error replies, by ZooKeeper error name.
    pub errors: BTreeMap<String, u64>,
    /// Connections lost or refused.
    pub failures: Vec<String>,
    /// Workload-specific numbers (watch fan-out: time to the last
    /// notification per round, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.failures.len() as u64
    }
}

pub fn error_names(errors: &BTreeMap<i32, u64>) -> BTreeMap<String, u64> {
    errors
        .iter()
        .map(|(code, n)| {
            let name = proto::ErrorCode::from_code(*code)
                .map(|e| e.name().to_string())
                .unwrap_or_else(|| format!("code {code}"));
            (name, *n)
        })
        .collect()
}

/// Shared live counters for the progress line.
#[derive(Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn add(&self, err: i32) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if err != 0 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints `[  12s/30s] 45678 ops, 3800/s, 0 errors` to stderr every
/// `every` until the returned handle is aborted.
pub fn progress(
    label: String,
    live: Arc<Live>,
    total: Duration,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = 0u64;
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let ops = live.ops.load(Ordering::Relaxed);
            let errs = live.errors.load(Ordering::Relaxed);
            eprintln!(
                "[{:>4}s/{}s] {label}: {ops} ops, {:.0}/s, {errs} errors",
                start.elapsed().as_secs(),
                total.as_secs(),
                (ops - last) as f64 / every.as_secs_f64()
            );
            last = ops;
        }
    })
}
