//! The peer transport: how members of the ensemble send each other
//! [`PeerMessage`]s (raft traffic, forwarded writes, session liveness) over
//! TCP.
//!
//! Owns: the peer listener and every peer connection, one bounded outbound
//! queue and one task per peer, the handshake ([`handshake`]), the message
//! envelope and its bytes ([`message`]), and the per-peer and per-zone-pair
//! byte counts ([`TransportMetrics`], [`TransportHandle::stats`]).
//!
//! Must not: interpret what it carries (raft, txns and sessions are the
//! consensus task's), block its caller ([`TransportHandle::send`] only
//! enqueues), retransmit (raft does; a dropped message is counted and
//! reported to the caller, nothing more), or know the contract ports
//! (`config` does).
//!
//! # Shape
//! - Each member dials every peer it sends to and only writes on that
//!   connection; it only reads on the connections peers dial to it. A pair
//!   of members thus has two connections, one per direction, and a
//!   restarted member is reconnected by everyone without a race over who
//!   dials.
//! - Per peer, a task connects (resolving the peer's `host:port` on every
//!   attempt, so a Kubernetes pod's DNS name follows the pod), retries with
//!   jittered exponential backoff, handshakes, then drains the queue,
//!   writing whatever is queued in one write. Messages queued while the
//!   peer is down wait in the queue (up to its bounds) and go out on
//!   reconnect; beyond the bounds `send` refuses and counts the message.
//! - One accept loop; per inbound connection, a task reads the handshake
//!   (refusing unknown ids and dialers that meant another member), then
//!   frames, and delivers `(from, message)` on one bounded channel. When
//!   that channel is full the reader stops reading: back-pressure reaches
//!   the sender through TCP instead of growing memory.
//! - Relay-ready: the zone relay will receive [`PeerMessage::Relay`] and
//!   re-send `inner` to several peers through the same handle; queues,
//!   counters and connections are per peer, so forwarding for many peers
//!   is just more `send` calls.
//!
//! No authentication or encryption yet: the peer port must be reachable
//! only by members (a NetworkPolicy in Kubernetes).

pub mod handshake;
mod inbound;
pub mod message;
pub mod metrics;
mod outbound;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use proto::frame::{self, FrameError};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::config::Member;
pub use handshake::HandshakeError;
pub use message::{CodecError, PeerMessage};
use metrics::PeerCounters;
pub use metrics::TransportMetrics;

/// Default largest message body: raft snapshots and append batches travel
/// here, so far above the client limit (`jute.maxbuffer`).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// One member the transport talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: u64,
    pub zone: String,
    /// `host:port` of its peer listener; a DNS name is resolved on every
    /// connection attempt.
    pub addr: String,
}

impl From<&Member> for PeerInfo {
    fn from(m: &Member) -> Self {
        PeerInfo {
            id: m.id,
            zone: m.zone.clone(),
            addr: m.peer_addr.clone(),
        }
    }
}

/// Tuning knobs; the defaults suit a LAN or WAN ensemble.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Largest message body sent or accepted. A larger length prefix
    /// closes the connection; a larger message is refused by `send`.
    pub max_frame_bytes: usize,
    /// Messages a peer's outbound queue holds.
    pub queue_messages: usize,
    /// Bytes a peer's outbound queue holds (approximate bound, checked
    /// before enqueueing). A message is always accepted into an empty
    /// queue, so one maximal snapshot fits whatever this is.
    pub queue_bytes: usize,
    /// Received messages buffered for the consumer before readers stop
    /// reading their sockets.
    pub inbound_capacity: usize,
    /// A write gathers queued frames until it holds this many bytes.
    pub batch_bytes: usize,
    pub connect_timeout: Duration,
    /// Both sides' limit for the handshake exchange.
    pub handshake_timeout: Duration,
    /// A write that makes no progress for this long means a dead or stuck
    /// peer (a vanished host sends no reset); the connection is dropped
    /// and redialed.
    pub write_timeout: Duration,
    /// First retry delay after a failed connection attempt; doubles per
    /// failure up to `reconnect_max`, with jitter, and resets once a
    /// handshake succeeds.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_messages: 1024,
            queue_bytes: 2 * DEFAULT_MAX_FRAME_BYTES,
            inbound_capacity: 4096,
            batch_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
        }
    }
}

/// Why a send was refused or a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `send` to an id that is not a peer (never added, or removed).
    #[error("no peer with id {0}")]
    UnknownPeer(u64),
    /// The peer's outbound queue is full: it is down or slower than the
    /// sender. The message was dropped (and counted); raft retransmits,
    /// and the consensus task may report the peer unreachable.
    #[error("outbound queue to peer {0} is full; message dropped")]
    QueueFull(u64),
    /// The transport has shut down.
    #[error("the peer transport is shut down")]
    Closed,
    /// The message cannot be encoded or exceeds `max_frame_bytes`
    /// (sending), or a received frame is not a valid message.
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the peer")]
    ClosedByPeer,
    #[error("{0} timed out")]
    Timeout(&'static str),
}

/// A snapshot of one peer's link, for tests and `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    pub id: u64,
    pub zone: String,
    pub addr: String,
    /// The outbound connection is up (handshake accepted).
    pub connected: bool,
    /// Failed attempts to connect (or handshakes refused) so far.
    pub connect_failures: u64,
    /// Frame bytes written to the peer (see [`metrics`] for what counts).
    pub bytes_sent: u64,
    /// Frame bytes read from the peer.
    pub bytes_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub messages_dropped: u64,
    /// Messages waiting in the outbound queue.
    pub queued_messages: usize,
}

/// Bytes this member sent from its zone to one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStats {
    pub from_zone: String,
    pub to_zone: String,
    pub bytes_sent: u64,
}

/// State of one peer shared by the handle, its outbound task and the
/// inbound connection it dialed.
struct PeerShared {
    info: PeerInfo,
    counters: PeerCounters,
    /// Bytes in the outbound queue, for the `queue_bytes` bound: added by
    /// `send` before enqueueing, subtracted by the task when it dequeues.
    queued_bytes: AtomicUsize,
}

/// A peer as the handle holds it.
struct PeerEntry {
    shared: Arc<PeerShared>,
    queue: mpsc::Sender<Bytes>,
    /// Dropping it stops the peer's outbound task.
    _stop_outbound: watch::Sender<()>,
    /// Dropping it closes the peer's current inbound connection: replaced
    /// when the peer dials again (the old connection may be half-open after
    /// a crash), dropped when the peer is removed.
    stop_inbound: Option<watch::Sender<()>>,
}

struct Inner {
    self_id: u64,
    self_zone: String,
    options: TransportOptions,
    metrics: Arc<TransportMetrics>,
    /// std `Mutex`: held for map lookups only, never across an `.await`.
    peers: Mutex<HashMap<u64, PeerEntry>>,
    shutdown: watch::Receiver<bool>,
}

/// The transport's entry point.
pub struct Transport;

impl Transport {
    /// Starts the transport with default options; see
    /// [`Transport::start_with`].
    pub fn start(
        self_id: u64,
        self_zone: String,
        listener: TcpListener,
        peers: Vec<PeerInfo>,
        metrics: Arc<TransportMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> (TransportHandle, mpsc::Receiver<(u64, PeerMessage)>) {
        Self::start_with(
            TransportOptions::default(),
            self_id,
            self_zone,
            listener,
            peers,
            metrics,
            shutdown,
        )
    }

    /// Accepts peers on `listener`, starts one outbound task per entry of
    /// `peers` (an entry with `self_id` is skipped, so `Config.members` can
    /// be passed as is), and returns the handle to send with and the
    /// channel of received `(from, message)`. Runs until `shutdown` turns
    /// true (or its sender is dropped), or the receiver is dropped (which
    /// stops accepting). Must be called inside a tokio runtime.
    pub fn start_with(
        options: TransportOptions,
        self_id: u64,
        self_zone: String,
        listener: TcpListener,
        peers: Vec<PeerInfo>,
        metrics: Arc<TransportMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> (TransportHandle, mpsc::Receiver<(u64, PeerMessage)>) {
        let (tx, rx) = mpsc::channel(options.inbound_capacity.max(1));
        let handle = TransportHandle {
            inner: Arc::new(Inner {
                self_id,
                self_zone,
                options,
                metrics,
                peers: Mutex::new(HashMap::new()),
                shutdown,
            }),
        };
        handle.update_peers(peers);
        info!(
            id = self_id,
            zone = %handle.inner.self_zone,
            addr = ?listener.local_addr().ok(),
            "peer transport listening"
        );
        tokio::spawn(inbound::accept_loop(listener, handle.inner.clone(), tx));
        (handle, rx)
    }
}

/// Sends to peers and reads their stats. Cheap to clone.
#[derive(Clone)]
pub struct TransportHandle {
    inner: Arc<Inner>,
}

impl TransportHandle {
    /// Queues `msg` for peer `to` and returns at once; never blocks or
    /// awaits. The message is encoded here (so its size is known and a
    /// too-large one is refused now). On `Err` the message was dropped and,
    /// if the peer is known, counted in `messages_dropped`. `Ok` means
    /// queued, not delivered: a message queued when the connection fails is
    /// lost too (and counted), and raft retransmits.
    pub fn send(&self, to: u64, msg: PeerMessage) -> Result<(), TransportError> {
        let (shared, queue) = {
            let peers = self.inner.peers.lock().expect("peer map lock poisoned");
            let entry = peers.get(&to).ok_or(TransportError::UnknownPeer(to))?;
            (entry.shared.clone(), entry.queue.clone())
        };
        let frame = match msg.encode_frame(self.inner.options.max_frame_bytes) {
            Ok(f) => f,
            Err(e) => {
                shared.counters.dropped.inc();
                return Err(e.into());
            }
        };
        let len = frame.len();
        let before = shared.queued_bytes.fetch_add(len, Relaxed);
        let refused = if before > 0 && before + len > self.inner.options.queue_bytes {
            Some(TransportError::QueueFull(to))
        } else {
            match queue.try_send(frame) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some(TransportError::QueueFull(to)),
                Err(mpsc::error::TrySendError::Closed(_)) => Some(TransportError::Closed),
            }
        };
        match refused {
            None => Ok(()),
            Some(e) => {
                shared.queued_bytes.fetch_sub(len, Relaxed);
                shared.counters.dropped.inc();
                debug!(peer = to, kind = msg.kind_name(), error = %e, "peer message dropped");
                Err(e)
            }
        }
    }

    /// Makes `peers` the peer set (entries with this member's id are
    /// skipped): starts tasks for new ids, stops those of removed ids
    /// (dropping their queues and closing their inbound connection), and
    /// restarts a peer whose zone or address changed. Unchanged peers keep
    /// their connections and queues.
    pub fn update_peers(&self, peers: Vec<PeerInfo>) {
        let inner = &self.inner;
        let mut map = inner.peers.lock().expect("peer map lock poisoned");
        let wanted: HashMap<u64, PeerInfo> = peers
            .into_iter()
            .filter(|p| p.id != inner.self_id)
            .map(|p| (p.id, p))
            .collect();
        map.retain(|id, entry| {
            let keep = wanted.get(id) == Some(&entry.shared.info);
            if !keep {
                info!(peer = id, "peer removed from the transport");
                inner.metrics.forget(*id);
            }
            keep
        });
        for (id, info) in wanted {
            if map.contains_key(&id) {
                continue;
            }
            info!(peer = id, zone = %info.zone, addr = %info.addr, "peer added to the transport");
            let counters = inner.metrics.peer(&inner.self_zone, id, &info.zone);
            let shared = Arc::new(PeerShared {
                info,
                counters,
                queued_bytes: AtomicUsize::new(0),
            });
            let (queue, rx) = mpsc::channel(inner.options.queue_messages.max(1));
            let (stop_tx, stop_rx) = watch::channel(());
            tokio::spawn(outbound::run(outbound::PeerTask {
                self_id: inner.self_id,
                self_zone: inner.self_zone.clone(),
                shared: shared.clone(),
                queue: rx,
                options: inner.options.clone(),
                stop: stop_rx,
                shutdown: inner.shutdown.clone(),
            }));
            map.insert(
                id,
                PeerEntry {
                    shared,
                    queue,
                    _stop_outbound: stop_tx,
                    stop_inbound: None,
                },
            );
        }
    }

    /// Every peer's link, by id.
    pub fn stats(&self) -> Vec<PeerStats> {
        let peers = self.inner.peers.lock().expect("peer map lock poisoned");
        let mut out: Vec<PeerStats> = peers
            .values()
            .map(|e| {
                let s = &e.shared;
                let c = &s.counters;
                PeerStats {
                    id: s.info.id,
                    zone: s.info.zone.clone(),
                    addr: s.info.addr.clone(),
                    connected: c.connected.get() == 1,
                    connect_failures: c.connect_failures.get(),
                    bytes_sent: c.bytes_sent.get(),
                    bytes_received: c.bytes_received.get(),
                    messages_sent: c.messages_sent.get(),
                    messages_received: c.messages_received.get(),
                    messages_dropped: c.dropped.get(),
                    queued_messages: e.queue.max_capacity() - e.queue.capacity(),
                }
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Bytes sent from this member's zone to each zone it has peers in.
    pub fn zone_stats(&self) -> Vec<ZoneStats> {
        let mut zones: Vec<String> = {
            let peers = self.inner.peers.lock().expect("peer map lock poisoned");
            peers.values().map(|e| e.shared.info.zone.clone()).collect()
        };
        zones.sort();
        zones.dedup();
        zones
            .into_iter()
            .map(|to_zone| ZoneStats {
                bytes_sent: self.inner.metrics.zone_bytes(&self.inner.self_zone, &to_zone),
                from_zone: self.inner.self_zone.clone(),
                to_zone,
            })
            .collect()
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.inner.self_id
    }
}

/// Reads until a whole frame is buffered and returns its body; `None` at a
/// clean end of stream. Reserves room for the announced frame at once, so
/// a large snapshot is not read in small increments.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, TransportError> {
    loop {
        if let Some(len) = frame::check(buf, max)? {
            buf.advance(4);
            return Ok(Some(buf.split_to(len).freeze()));
        }
        if let Some(len) = frame::peek_len(buf) {
            // Checked against `max` by `check` above.
            buf.reserve((4 + len as usize).saturating_sub(buf.len()));
        }
        if rd.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(TransportError::ClosedByPeer);
        }
    }
}

/// Resolves when `shutdown` turns true or its sender is gone.
async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
