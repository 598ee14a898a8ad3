//! The transport's Prometheus instruments, registered into the server's
//! registry (`Metrics::registry`) so `/metrics` shows them.
//!
//! Byte counts are of message frames as they travel: 4-byte length prefix,
//! kind byte and payload. Handshakes are not counted (a few dozen bytes per
//! connection), so the counters add up exactly to the frames of the
//! messages sent. A byte is counted once the write that carried it has
//! completed (sent) or once its whole frame has been read (received).
//!
//! Names and labels are part of the operations contract:
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `zonekeeper_peer_bytes_sent_total` | `peer` | bytes written to that peer |
//! | `zonekeeper_peer_bytes_received_total` | `peer` | bytes read from that peer |
//! | `zonekeeper_zone_bytes_total` | `from_zone`, `to_zone` | bytes this member sent, by its zone and the receiver's |
//! | `zonekeeper_peer_messages_sent_total` | `peer` | messages written |
//! | `zonekeeper_peer_messages_received_total` | `peer` | messages read and decoded |
//! | `zonekeeper_peer_messages_dropped_total` | `peer` | messages that never reached the socket |
//! | `zonekeeper_peer_connected` | `peer` | 1 while the outbound connection is up |
//! | `zonekeeper_peer_connect_failures_total` | `peer` | failed dials and refused handshakes |
//! | `zonekeeper_peer_handshakes_rejected_total` | `reason` | inbound connections refused |
//!
//! `zonekeeper_zone_bytes_total` is counted by the sender only: on one
//! member `from_zone` is always its own zone, and summing the series of
//! every member gives the ensemble's zone-to-zone matrix with each byte
//! counted once. A relay forwarding entries counts them again as their
//! sender, which is what makes the tree's cross-zone saving visible.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The transport's instruments. Share one per registry (`Arc`).
pub struct TransportMetrics {
    bytes_sent: IntCounterVec,
    bytes_received: IntCounterVec,
    zone_bytes: IntCounterVec,
    messages_sent: IntCounterVec,
    messages_received: IntCounterVec,
    dropped: IntCounterVec,
    connected: IntGaugeVec,
    connect_failures: IntCounterVec,
    handshakes_rejected: IntCounterVec,
}

/// One peer's labelled series, looked up once when the peer is added so
/// the send path does no label hashing. Clones share the same series.
#[derive(Clone)]
pub(super) struct PeerCounters {
    pub bytes_sent: IntCounter,
    pub bytes_received: IntCounter,
    /// `zone_bytes{from_zone=self, to_zone=peer's}`.
    pub zone_bytes: IntCounter,
    pub messages_sent: IntCounter,
    pub messages_received: IntCounter,
    pub dropped: IntCounter,
    pub connected: IntGauge,
    pub connect_failures: IntCounter,
}

impl TransportMetrics {
    /// Creates the instruments and registers them into `registry`; fails
    /// only if they are already registered there.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn counter(
            r: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let connected = IntGaugeVec::new(
            Opts::new(
                "zonekeeper_peer_connected",
                "1 while the outbound connection to the peer is established (handshake accepted), else 0.",
            ),
            &["peer"],
        )?;
        registry.register(Box::new(connected.clone()))?;
        Ok(TransportMetrics {
            bytes_sent: counter(
                registry,
                "zonekeeper_peer_bytes_sent_total",
                "Bytes of peer message frames written to the peer (length prefix included, handshakes excluded).",
                &["peer"],
            )?,
            bytes_received: counter(
                registry,
                "zonekeeper_peer_bytes_received_total",
                "Bytes of peer message frames read from the peer (length prefix included, handshakes excluded).",
                &["peer"],
            )?,
            zone_bytes: counter(
                registry,
                "zonekeeper_zone_bytes_total",
                "Bytes of peer message frames this member sent, by its zone and the receiver's zone (counted by the sender only).",
                &["from_zone", "to_zone"],
            )?,
            messages_sent: counter(
                registry,
                "zonekeeper_peer_messages_sent_total",
                "Peer messages written to the peer.",
                &["peer"],
            )?,
            messages_received: counter(
                registry,
                "zonekeeper_peer_messages_received_total",
                "Peer messages read from the peer and decoded.",
                &["peer"],
            )?,
            dropped: counter(
                registry,
                "zonekeeper_peer_messages_dropped_total",
                "Peer messages dropped before reaching the socket: queue full, too large, or lost with a failed connection.",
                &["peer"],
            )?,
            connected,
            connect_failures: counter(
                registry,
                "zonekeeper_peer_connect_failures_total",
                "Attempts to connect to the peer that failed (unreachable, timed out, or handshake refused).",
                &["peer"],
            )?,
            handshakes_rejected: counter(
                registry,
                "zonekeeper_peer_handshakes_rejected_total",
                "Inbound peer connections refused at the handshake, by reason.",
                &["reason"],
            )?,
        })
    }

    /// The series of one peer, as seen from a member in `self_zone`.
    pub(super) fn peer(&self, self_zone: &str, id: u64, zone: &str) -> PeerCounters {
        let peer = id.to_string();
        let p = [peer.as_str()];
        let connected = self.connected.with_label_values(&p);
        connected.set(0);
        PeerCounters {
            bytes_sent: self.bytes_sent.with_label_values(&p),
            bytes_received: self.bytes_received.with_label_values(&p),
            zone_bytes: self.zone_bytes.with_label_values(&[self_zone, zone]),
            messages_sent: self.messages_sent.with_label_values(&p),
            messages_received: self.messages_received.with_label_values(&p),
            dropped: self.dropped.with_label_values(&p),
            connected,
            connect_failures: self.connect_failures.with_label_values(&p),
        }
    }

    /// A peer left the ensemble: its connected gauge disappears (a stale
    /// 0 would look like an outage). Its counters stay; counters never go
    /// back.
    pub(super) fn forget(&self, id: u64) {
        let _ = self.connected.remove_label_values(&[&id.to_string()]);
    }

    pub(super) fn handshake_rejected(&self, reason: &str) {
        self.handshakes_rejected.with_label_values(&[reason]).inc();
    }

    /// Inbound handshakes refused for `reason` so far (a
    /// `HandshakeError::label`).
    pub fn handshakes_rejected(&self, reason: &str) -> u64 {
        self.handshakes_rejected.with_label_values(&[reason]).get()
    }

    /// Bytes this member sent from `from_zone` to members in `to_zone`.
    pub fn zone_bytes(&self, from_zone: &str, to_zone: &str) -> u64 {
        self.zone_bytes.with_label_values(&[from_zone, to_zone]).get()
    }
}
