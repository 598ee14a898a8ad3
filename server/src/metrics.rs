//! Prometheus metrics of the server.
//!
//! Owns: the [`Metrics`] registry, the instruments the request pipeline,
//! connections and storage update (counters and histograms, which only ever
//! grow), and the scrape-time gauges read from a [`StatusSource`] when
//! [`Metrics::render`] runs. Metric names and label sets are part of the
//! operations contract: rename one and dashboards break.
//!
//! Must not: hold server state, block, or hand-format the exposition text
//! (the `prometheus` crate's `TextEncoder` does). The counters here never
//! reset; ZooKeeper's resettable figures (`srst`) live behind the
//! [`StatusSource`] instead.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::status::{Role, StatusSource};

/// Content type of [`Metrics::render`]'s output
/// (`text/plain; version=0.0.4`).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Why a client connection was refused, the `reason` label of
/// `zonekeeper_connections_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Too many connections from one IP (`max_client_connections`,
    /// ZooKeeper's `maxClientCnxns`).
    Limit,
    /// A frame that does not decode; the connection is closed.
    BadFrame,
    /// A length prefix above `max_packet_bytes` (ZooKeeper's
    /// `jute.maxbuffer` "Len error").
    Oversized,
}

impl RejectReason {
    /// The label value: `limit`, `bad_frame`, `oversized`.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Limit => "limit",
            RejectReason::BadFrame => "bad_frame",
            RejectReason::Oversized => "oversized",
        }
    }
}

/// Request latency buckets, seconds: 100 µs (a local read) to 10 s (a
/// write stuck behind an election).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// fsync duration buckets, seconds: NVMe (~50 µs) to a struggling disk (1 s+).
const FSYNC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Group-commit batch sizes (entries per fsync): 1, 2, 4, … 4096.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// The server's Prometheus instruments. Cheap to share (`Arc<Metrics>`);
/// every update is a lock-free atomic add.
pub struct Metrics {
    /// Everything updated by the server. Other components may register
    /// their own collectors here ([`Metrics::registry`]).
    registry: Registry,
    /// `zonekeeper_request_duration_seconds{op}`: receipt to reply, per
    /// opcode name (ZooKeeper's names, `proto::OpCode::name`).
    request_duration: HistogramVec,
    /// `zonekeeper_requests_total{op,result}`: result is the ZooKeeper
    /// error-code name (`OK`, `NONODE`, …, `proto::ErrorCode::name`).
    requests: IntCounterVec,
    /// `zonekeeper_packets_received_total`: client packets (ZooKeeper
    /// `packets_received`, but never reset).
    packets_received: IntCounter,
    /// `zonekeeper_packets_sent_total`.
    packets_sent: IntCounter,
    /// `zonekeeper_received_bytes_total`: client bytes including framing.
    bytes_received: IntCounter,
    /// `zonekeeper_sent_bytes_total`.
    bytes_sent: IntCounter,
    /// `zonekeeper_connections_accepted_total`.
    connections_accepted: IntCounter,
    /// `zonekeeper_connections_rejected_total{reason}`.
    connections_rejected: IntCounterVec,
    /// `zonekeeper_watch_events_sent_total`: notifications delivered.
    watch_events_sent: IntCounter,
    /// `zonekeeper_fsync_duration_seconds`: one observation per group
    /// commit.
    fsync_duration: Histogram,
    /// `zonekeeper_fsync_batch_entries`: log entries made durable by one
    /// fsync; shows how well group commit batches under load.
    fsync_batch_entries: Histogram,
    /// `zonekeeper_snapshots_total`: snapshots written.
    snapshots: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the instruments in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        // The names and label sets below are fixed and distinct, so
        // creation and registration cannot fail.
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone()))
                .expect("metric names are fixed and unique");
            c
        }
        let counter = |name: &str, help: &str| {
            reg(
                &registry,
                IntCounter::with_opts(Opts::new(name, help)).expect("valid counter"),
            )
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            reg(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
                    .expect("valid histogram"),
            )
        };
        Metrics {
            request_duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "zonekeeper_request_duration_seconds",
                        "Time from receiving a client request to sending its reply, by opcode.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["op"],
                )
                .expect("valid histogram vec"),
            ),
            requests: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "zonekeeper_requests_total",
                        "Client requests answered, by opcode and ZooKeeper result code.",
                    ),
                    &["op", "result"],
                )
                .expect("valid counter vec"),
            ),
            packets_received: counter("zonekeeper_packets_received_total", "Client packets received."),
            packets_sent: counter("zonekeeper_packets_sent_total", "Client packets sent."),
            bytes_received: counter(
                "zonekeeper_received_bytes_total",
                "Bytes received from clients, including framing.",
            ),
            bytes_sent: counter(
                "zonekeeper_sent_bytes_total",
                "Bytes sent to clients, including framing.",
            ),
            connections_accepted: counter(
                "zonekeeper_connections_accepted_total",
                "Client connections accepted.",
            ),
            connections_rejected: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "zonekeeper_connections_rejected_total",
                        "Client connections refused or closed for bad input, by reason.",
                    ),
                    &["reason"],
                )
                .expect("valid counter vec"),
            ),
            watch_events_sent: counter(
                "zonekeeper_watch_events_sent_total",
                "Watch notifications sent to clients.",
            ),
            fsync_duration: histogram(
                "zonekeeper_fsync_duration_seconds",
                "Duration of one write-ahead-log fsync (one group commit).",
                FSYNC_BUCKETS,
            ),
            fsync_batch_entries: histogram(
                "zonekeeper_fsync_batch_entries",
                "Log entries made durable by one fsync (group commit batch size).",
                BATCH_BUCKETS,
            ),
            snapshots: counter("zonekeeper_snapshots_total", "Snapshots written."),
            registry,
        }
    }

    /// The registry, for components that register their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// One answered request: `op` is the opcode name
    /// (`proto::OpCode::name`, e.g. `"getData"`), `result` the error code
    /// name (`proto::ErrorCode::name`, `"OK"` on success), `seconds`
    /// receipt to reply.
    pub fn observe_request(&self, op: &str, result: &str, seconds: f64) {
        self.request_duration.with_label_values(&[op]).observe(seconds);
        self.requests.with_label_values(&[op, result]).inc();
    }

    /// One client packet of `bytes` bytes (framing included) received.
    pub fn packet_received(&self, bytes: usize) {
        self.packets_received.inc();
        self.bytes_received.inc_by(bytes as u64);
    }

    /// One client packet of `bytes` bytes (framing included) sent.
    /// `packets` frames totalling `bytes` written in one go (the writer
    /// batches replies and events).
    pub fn packets_sent(&self, packets: u64, bytes: usize) {
        self.packets_sent.inc_by(packets);
        self.bytes_sent.inc_by(bytes as u64);
    }

    /// A client connection was accepted.
    pub fn connection_accepted(&self) {
        self.connections_accepted.inc();
    }

    /// A client connection was refused or closed for bad input.
    pub fn connection_rejected(&self, reason: RejectReason) {
        self.connections_rejected
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// `n` watch notifications were sent.
    pub fn watch_events_sent(&self, n: u64) {
        self.watch_events_sent.inc_by(n);
    }

    /// One group commit: an fsync that took `seconds` and made `entries`
    /// log entries durable.
    pub fn observe_fsync(&self, seconds: f64, entries: usize) {
        self.fsync_duration.observe(seconds);
        self.fsync_batch_entries.observe(entries as f64);
    }

    /// A snapshot was written.
    pub fn snapshot_taken(&self) {
        self.snapshots.inc();
    }

    /// The Prometheus text exposition of every instrument plus gauges read
    /// from `src` now (the `zk_*` figures of `mntr` and the server's role).
    pub fn render(&self, src: &dyn StatusSource) -> String {
        let mut families = self.registry.gather();
        families.extend(scrape_gauges(src).gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding of well-formed families cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Builds a throwaway registry of gauges holding `src`'s current figures.
///
/// A fresh registry per scrape keeps concurrent scrapes from overwriting
/// each other's values and lets labelled series (role) disappear when they
/// stop being true.
fn scrape_gauges(src: &dyn StatusSource) -> Registry {
    let registry = Registry::new();
    let status = src.status();
    let stats = src.stats();
    let int = |name: &str, help: &str, value: i64| {
        let g = IntGauge::new(name, help).expect("valid gauge");
        g.set(value);
        registry
            .register(Box::new(g))
            .expect("scrape gauge names are unique");
    };
    let sat = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    int(
        "zonekeeper_znode_count",
        "Znodes in the data tree (zk_znode_count).",
        sat(stats.znode_count),
    );
    int(
        "zonekeeper_watch_count",
        "Watches set (zk_watch_count).",
        sat(stats.watch_count),
    );
    int(
        "zonekeeper_ephemerals_count",
        "Ephemeral znodes (zk_ephemerals_count).",
        sat(stats.ephemerals_count),
    );
    int(
        "zonekeeper_approximate_data_size_bytes",
        "Sum of znode path and data sizes (zk_approximate_data_size).",
        sat(stats.approximate_data_size),
    );
    int(
        "zonekeeper_outstanding_requests",
        "Requests received and not yet answered (zk_outstanding_requests).",
        sat(stats.outstanding_requests),
    );
    int(
        "zonekeeper_num_alive_connections",
        "Open client connections (zk_num_alive_connections).",
        sat(stats.num_alive_connections),
    );
    int(
        "zonekeeper_session_count",
        "Live sessions (zk_global_sessions).",
        sat(src.session_count() as u64),
    );
    int(
        "zonekeeper_last_zxid",
        "zxid of the last transaction applied locally.",
        status.last_zxid,
    );
    int(
        "zonekeeper_is_leader",
        "1 if this server is the leader (or standalone), else 0.",
        i64::from(matches!(status.role, Role::Leader | Role::Standalone)),
    );
    int(
        "zonekeeper_ready",
        "1 while the server serves clients (see /readyz).",
        i64::from(src.is_ready()),
    );
    int(
        "zonekeeper_raft_term",
        "Current raft term.",
        sat(status.raft_term),
    );
    int(
        "zonekeeper_raft_commit_index",
        "Highest raft log index known committed.",
        sat(status.raft_commit_index),
    );
    int(
        "zonekeeper_raft_applied_index",
        "Highest raft log index applied to the tree.",
        sat(status.raft_applied_index),
    );
    int(
        "zonekeeper_open_file_descriptors",
        "File descriptors open (zk_open_file_descriptor_count).",
        sat(stats.open_file_descriptor_count),
    );
    let uptime =
        Gauge::new("zonekeeper_uptime_seconds", "Time since the server started.").expect("valid gauge");
    uptime.set(status.uptime_ms as f64 / 1000.0);
    registry
        .register(Box::new(uptime))
        .expect("scrape gauge names are unique");
    let info = IntGaugeVec::new(
        Opts::new(
            "zonekeeper_server_info",
            "Always 1; labels name this server, its zone, role and version.",
        ),
        &["id", "zone", "role", "version"],
    )
    .expect("valid gauge vec");
    info.with_label_values(&[
        status.id.to_string().as_str(),
        status.zone.as_str(),
        status.role.as_str(),
        status.version.as_str(),
    ])
    .set(1);
    registry
        .register(Box::new(info))
        .expect("scrape gauge names are unique");
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fake::FakeStatus;

    /// Finds the value of the sample line `series` (name plus labels exactly
    /// as rendered).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn request_counters_and_histogram_by_op_and_result() {
        let m = Metrics::new();
        m.observe_request("create", "OK", 0.002);
        m.observe_request("create", "NODEEXISTS", 0.001);
        m.observe_request("getData", "OK", 0.0002);
        let text = m.render(&FakeStatus::standalone());
        assert_eq!(
            sample(&text, r#"zonekeeper_requests_total{op="create",result="OK"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"zonekeeper_requests_total{op="create",result="NODEEXISTS"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"zonekeeper_request_duration_seconds_count{op="create"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"zonekeeper_request_duration_seconds_bucket{op="getData",le="0.00025"}"#
            ),
            Some(1.0)
        );
        assert!(text.contains("# TYPE zonekeeper_request_duration_seconds histogram"));
    }

    #[test]
    fn io_connection_watch_and_storage_instruments() {
        let m = Metrics::new();
        m.packet_received(100);
        m.packet_received(20);
        m.packets_sent(1, 16);
        m.connection_accepted();
        m.connection_rejected(RejectReason::Limit);
        m.connection_rejected(RejectReason::Oversized);
        m.connection_rejected(RejectReason::Oversized);
        m.watch_events_sent(3);
        m.observe_fsync(0.0008, 12);
        m.snapshot_taken();
        let text = m.render(&FakeStatus::standalone());
        assert_eq!(sample(&text, "zonekeeper_packets_received_total"), Some(2.0));
        assert_eq!(sample(&text, "zonekeeper_received_bytes_total"), Some(120.0));
        assert_eq!(sample(&text, "zonekeeper_packets_sent_total"), Some(1.0));
        assert_eq!(sample(&text, "zonekeeper_sent_bytes_total"), Some(16.0));
        assert_eq!(sample(&text, "zonekeeper_connections_accepted_total"), Some(1.0));
        assert_eq!(
            sample(
                &text,
                r#"zonekeeper_connections_rejected_total{reason="oversized"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"zonekeeper_connections_rejected_total{reason="limit"}"#),
            Some(1.0)
        );
        assert_eq!(sample(&text, "zonekeeper_watch_events_sent_total"), Some(3.0));
        assert_eq!(
            sample(&text, "zonekeeper_fsync_duration_seconds_count"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"zonekeeper_fsync_batch_entries_bucket{le="16"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"zonekeeper_fsync_batch_entries_bucket{le="8"}"#),
            Some(0.0)
        );
        assert_eq!(sample(&text, "zonekeeper_snapshots_total"), Some(1.0));
    }

    /// The `mntr` figures (ZooKeeper `ZooKeeperServer.registerMetrics`) are
    /// read from the status source at scrape time.
    #[test]
    fn scrape_time_gauges_follow_the_source() {
        let m = Metrics::new();
        let src = FakeStatus::leader_of_three();
        src.with_stats(|s| {
            s.watch_count = 7;
            s.ephemerals_count = 2;
            s.outstanding_requests = 1;
            s.num_alive_connections = 4;
        });
        let text = m.render(&src);
        assert_eq!(sample(&text, "zonekeeper_znode_count"), Some(5.0));
        assert_eq!(sample(&text, "zonekeeper_watch_count"), Some(7.0));
        assert_eq!(sample(&text, "zonekeeper_ephemerals_count"), Some(2.0));
        assert_eq!(
            sample(&text, "zonekeeper_approximate_data_size_bytes"),
            Some(42.0)
        );
        assert_eq!(sample(&text, "zonekeeper_outstanding_requests"), Some(1.0));
        assert_eq!(sample(&text, "zonekeeper_num_alive_connections"), Some(4.0));
        assert_eq!(sample(&text, "zonekeeper_session_count"), Some(0.0));
        assert_eq!(
            sample(&text, "zonekeeper_last_zxid"),
            Some(0x1_0000_0005u64 as f64)
        );
        assert_eq!(sample(&text, "zonekeeper_is_leader"), Some(1.0));
        assert_eq!(sample(&text, "zonekeeper_ready"), Some(1.0));
        assert_eq!(sample(&text, "zonekeeper_raft_term"), Some(3.0));
        assert!(text.contains(r#"zonekeeper_server_info{id="1",role="leader",version=""#));

        src.with_status(|s| s.role = Role::Follower);
        src.set_ready(false);
        let text = m.render(&src);
        assert_eq!(sample(&text, "zonekeeper_is_leader"), Some(0.0));
        assert_eq!(sample(&text, "zonekeeper_ready"), Some(0.0));
        assert!(!text.contains(r#"role="leader""#), "stale role series");
    }

    /// Output is the standard text format: HELP/TYPE before each family,
    /// families sorted by name.
    #[test]
    fn render_is_prometheus_text_format() {
        let text = Metrics::new().render(&FakeStatus::standalone());
        assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4");
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = types.clone();
        sorted.sort();
        assert_eq!(types, sorted);
        assert!(types.contains(&"zonekeeper_uptime_seconds"));
        assert!(types.iter().all(|t| t.starts_with("zonekeeper_")));
    }
}
