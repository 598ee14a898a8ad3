//! Operator metrics (Prometheus): reconciles, failures by error, durations
//! and the actions taken on clusters.
//!
//! Owns: the registry and its instruments. Must not: decide anything; the
//! controller reports what happened.

use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// Every instrument of the operator, registered in `registry`.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounter,
    pub failures: IntCounterVec,
    pub duration: Histogram,
    pub actions: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounter::new("zonekeeper_operator_reconciles_total", "Reconciliations started")
            .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "zonekeeper_operator_reconcile_failures_total",
                "Reconciliations that failed, by error",
            ),
            &["error"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "zonekeeper_operator_reconcile_duration_seconds",
                "Time one reconciliation took",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("valid metric");
        let actions = IntCounterVec::new(
            Opts::new(
                "zonekeeper_operator_actions_total",
                "Changes made to clusters, by action (allocate_ids, apply, prune, delete_volumes, \
                 add_member, promote_member, remove_member, transfer_leader, restart_member, retire_member) and \
                 result (ok, failed)",
            ),
            &["action", "result"],
        )
        .expect("valid metric");
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(actions.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            actions,
        }
    }
}

impl Metrics {
    /// Counts a reconcile and returns a guard that records its duration when
    /// dropped, whichever way the reconcile ends.
    pub fn reconcile_started(&self) -> ReconcileMeasurer {
        self.reconciles.inc();
        ReconcileMeasurer {
            start: Instant::now(),
            histogram: self.duration.clone(),
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out
    }
}

/// Records a reconcile's duration on drop.
pub struct ReconcileMeasurer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileMeasurer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
