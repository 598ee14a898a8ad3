//! Prometheus metrics of one sidecar (its own registry, so several sidecars
//! can live in one test process), served at `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Requests by matched route, method and response status.
    pub requests: IntCounterVec,
    /// Request latency by matched route (blocking acquires included).
    pub request_seconds: HistogramVec,
    /// What the sidecar currently holds for applications, by kind.
    pub holdings: IntGaugeVec,
    /// Holdings released, by reason (`request`, `lease_lapsed`, `shutdown`,
    /// `abandoned`: a blocking acquire whose caller went away).
    pub released: IntCounterVec,
    /// Live app leases.
    pub leases: IntGauge,
    /// App leases that lapsed (not renewed in time).
    pub lease_lapses: IntCounter,
    /// 1 while the ensemble session is connected.
    pub session_connected: IntGauge,
    /// Session state transitions, by new state.
    pub session_transitions: IntCounterVec,
    /// Open watch streams (SSE) and long-polls.
    pub watchers: IntGauge,
    /// ZooKeeper-protocol proxy: accepted downstream connections.
    pub proxy_accepted: IntCounter,
    /// ZooKeeper-protocol proxy: connections currently piped.
    pub proxy_active: IntGauge,
    /// ZooKeeper-protocol proxy: failed upstream connects, by zone.
    pub proxy_upstream_failures: IntCounterVec,
    /// ZooKeeper-protocol proxy: bytes piped, by direction (`up`, `down`).
    pub proxy_bytes: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("zonekeeper_sidecar".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .unwrap();
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request duration by route")
                .buckets(vec![0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0, 60.0]),
            &["route"],
        )
        .unwrap();
        let holdings = IntGaugeVec::new(
            Opts::new(
                "holdings",
                "locks, permits, memberships and leaderships held for applications",
            ),
            &["kind"],
        )
        .unwrap();
        let released = IntCounterVec::new(
            Opts::new("released_total", "holdings released, by reason"),
            &["reason"],
        )
        .unwrap();
        let leases = IntGauge::new("app_leases", "live app leases").unwrap();
        let lease_lapses = IntCounter::new(
            "app_lease_lapses_total",
            "app leases that were not renewed in time",
        )
        .unwrap();
        let session_connected =
            IntGauge::new("session_connected", "1 while the ensemble session is connected").unwrap();
        let session_transitions = IntCounterVec::new(
            Opts::new(
                "session_transitions_total",
                "ensemble session state changes, by new state",
            ),
            &["state"],
        )
        .unwrap();
        let watchers = IntGauge::new("watchers", "open watch streams and long-polls").unwrap();
        let proxy_accepted =
            IntCounter::new("proxy_accepted_total", "ZooKeeper proxy connections accepted").unwrap();
        let proxy_active = IntGauge::new(
            "proxy_active_connections",
            "ZooKeeper proxy connections piped now",
        )
        .unwrap();
        let proxy_upstream_failures = IntCounterVec::new(
            Opts::new(
                "proxy_upstream_failures_total",
                "ZooKeeper proxy upstream connect failures, by server zone",
            ),
            &["zone"],
        )
        .unwrap();
        let proxy_bytes = IntCounterVec::new(
            Opts::new(
                "proxy_bytes_total",
                "bytes piped by the ZooKeeper proxy, by direction",
            ),
            &["direction"],
        )
        .unwrap();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(holdings.clone()),
            Box::new(released.clone()),
            Box::new(leases.clone()),
            Box::new(lease_lapses.clone()),
            Box::new(session_connected.clone()),
            Box::new(session_transitions.clone()),
            Box::new(watchers.clone()),
            Box::new(proxy_accepted.clone()),
            Box::new(proxy_active.clone()),
            Box::new(proxy_upstream_failures.clone()),
            Box::new(proxy_bytes.clone()),
        ] {
            registry.register(c).expect("registering a metric");
        }
        Metrics {
            registry,
            requests,
            request_seconds,
            holdings,
            released,
            leases,
            lease_lapses,
            session_connected,
            session_transitions,
            watchers,
            proxy_accepted,
            proxy_active,
            proxy_upstream_failures,
            proxy_bytes,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics");
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
