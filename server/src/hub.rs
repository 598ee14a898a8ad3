//! Where the I/O tasks meet: the state machine behind one mutex, and the
//! live client connections by session, so the apply loop can hand watch
//! events to the right socket.
//!
//! Ordering rule (docs/ordering.md): watch events are queued on a
//! connection's outbound channel by the apply loop *while it still holds
//! the state lock*, and a connection queues a reply only after it has
//! read or applied under that lock. Both go through the same FIFO channel,
//! so an event always precedes the reply of any later request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::state::{Applied, State};

/// What a connection's writer task is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// A whole frame (length prefix included).
    Frame(Vec<u8>),
    /// Flush and close the connection (session ended or moved).
    Close,
}

/// Bytes waiting in one connection's outbound queue above which it stops
/// reading requests until its client reads what it was sent.
pub const OUTBOUND_SOFT_LIMIT: u64 = 8 << 20;
/// Above this the connection is closed: its client does not read its
/// socket, and watch events (which the apply loop cannot hold back) would
/// otherwise pile up without bound.
pub const OUTBOUND_HARD_LIMIT: u64 = 64 << 20;

/// Queues one frame for a connection's writer, counting its bytes; closes
/// the connection instead if its queue is over [`OUTBOUND_HARD_LIMIT`].
pub fn send_frame(tx: &mpsc::UnboundedSender<Outbound>, info: &ConnInfo, frame: Vec<u8>) -> bool {
    let n = frame.len() as u64;
    let queued = info.queued_bytes.fetch_add(n, Ordering::Relaxed) + n;
    if queued > OUTBOUND_HARD_LIMIT {
        if !info.replaced.swap(true, Ordering::Relaxed) {
            tracing::warn!(remote = %info.remote, queued,
                "closing a connection whose client does not read its replies and events");
        }
        let _ = tx.send(Outbound::Close);
        return false;
    }
    tx.send(Outbound::Frame(frame)).is_ok()
}

/// Live figures about one connection, for `cons` and `/v1/status`.
#[derive(Debug)]
pub struct ConnInfo {
    pub conn_id: u64,
    pub remote: SocketAddr,
    pub established: Instant,
    pub session_id: AtomicU64,
    pub timeout_ms: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub last_cxid: AtomicU64,
    pub last_zxid: AtomicU64,
    pub outstanding: AtomicU64,
    /// Bytes queued for the writer and not yet written (back-pressure).
    pub queued_bytes: AtomicU64,
    /// Signalled by the writer after it wrote, to wake a reader that
    /// stopped reading because the queue was over the soft limit.
    pub drained: tokio::sync::Notify,
    /// The identities the connection has authenticated, for filtering
    /// watch events by READ permission; the connection updates it on
    /// addauth (under the state lock, like delivery reads it).
    pub auth: Mutex<crate::acl::AuthInfo>,
    /// Set when another connection took over the session or the session
    /// ended: this connection must stop running requests at once.
    pub replaced: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub info: Arc<ConnInfo>,
    pub tx: mpsc::UnboundedSender<Outbound>,
}

pub struct Hub {
    state: Mutex<State>,
    /// Connections that own a session.
    by_session: Mutex<HashMap<i64, ConnHandle>>,
    /// Every open connection (with or without a session yet), by id.
    all: Mutex<HashMap<u64, Arc<ConnInfo>>>,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    next_conn_id: AtomicU64,
    /// Requests received but not yet answered, server-wide (mntr).
    pub outstanding: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub started: Instant,
    /// The consensus task's latest view of raft, for status reports.
    pub raft: RaftView,
    /// Request latencies since start or the last `srst`.
    pub latency: LatencyStats,
    /// Sessions that showed life since the consensus task last asked; a
    /// follower forwards them to the leader, which owns expiry.
    touched: Mutex<std::collections::HashSet<i64>>,
}

/// Min/avg/max request latency in ms, as ZooKeeper's `srvr` reports them.
#[derive(Debug)]
pub struct LatencyStats {
    min: AtomicU64,
    max: AtomicU64,
    total: AtomicU64,
    count: AtomicU64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            total: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl LatencyStats {
    pub fn record(&self, ms: u64) {
        self.min.fetch_min(ms, Ordering::Relaxed);
        self.max.fetch_max(ms, Ordering::Relaxed);
        self.total.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (min, avg, max); zeros before the first request.
    pub fn snapshot(&self) -> (u64, f64, u64) {
        let n = self.count.load(Ordering::Relaxed);
        if n == 0 {
            return (0, 0.0, 0);
        }
        (
            self.min.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed) as f64 / n as f64,
            self.max.load(Ordering::Relaxed),
        )
    }

    pub fn reset(&self) {
        self.min.store(u64::MAX, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }
}

/// Raft figures published by the consensus task after each Ready.
#[derive(Debug, Default)]
pub struct RaftView {
    pub term: AtomicU64,
    pub commit: AtomicU64,
    pub applied: AtomicU64,
    /// 0 while there is no leader.
    pub leader_id: AtomicU64,
    /// This member has applied a state that lists it as a member: always
    /// for a founding member, and for a joiner once it has applied the
    /// snapshot or log entry that added it. Until then it is not ready and
    /// refuses client sessions (its tree is empty or stale).
    pub joined: std::sync::atomic::AtomicBool,
    pub is_leader: std::sync::atomic::AtomicBool,
}

impl Hub {
    pub fn new(state: State) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(state),
            by_session: Mutex::new(HashMap::new()),
            all: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            outstanding: AtomicU64::new(0),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            started: Instant::now(),
            raft: RaftView::default(),
            latency: LatencyStats::default(),
            touched: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Locks the state. Never held across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the watch events an applied entry produced; returns how many
    /// were queued. Call with the state lock held (see the module doc).
    pub fn deliver_events(&self, applied: &Applied) -> u64 {
        if applied.notifications.is_empty() {
            return 0;
        }
        let mut sent = 0;
        let conns = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        let mut last: Option<(&proto::records::WatcherEvent, Vec<u8>)> = None;
        for (n, acl) in &applied.notifications {
            if let Some(c) = conns.get(&n.session) {
                // ZooKeeper 3.8.4+ (CVE-2024-23944): no event about a node
                // the session may not READ. The one-time watch is used up.
                let auth = c.info.auth.lock().unwrap_or_else(|p| p.into_inner());
                if crate::acl::check(acl, proto::records::perms::READ, &auth).is_err() {
                    continue;
                }
                drop(auth);
                // One change fires the same event for every watcher of the
                // node (10,000 of them, say): encode it once and copy.
                let frame = match &last {
                    Some((event, frame)) if *event == &n.event => frame.clone(),
                    _ => {
                        let mut frame = Vec::new();
                        // ZooKeeper 3.9 stamps events with the triggering zxid.
                        proto::frame::write_frame(
                            &mut frame,
                            &proto::response::encode_notification_with_zxid(&n.event, applied.zxid),
                        );
                        last = Some((&n.event, frame.clone()));
                        frame
                    }
                };
                if send_frame(&c.tx, &c.info, frame) {
                    sent += 1;
                }
            }
        }
        sent
    }

    /// Closes the connection of a session the entry ended (after its reply
    /// was queued, so a closeSession is answered before the close).
    pub fn deliver_close(&self, applied: &Applied) {
        if let Some(s) = applied.ended_session {
            let conns = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = conns.get(&s) {
                c.info.replaced.store(true, Ordering::Relaxed);
                let _ = c.tx.send(Outbound::Close);
            }
        }
    }

    /// Closes the connection of every session (a member that replaced
    /// its state with a snapshot; see `Consensus::install_snapshot`). Each
    /// connection ends once it has written what was queued before; its
    /// client reconnects and re-registers its watches. Call with the state
    /// lock held, so no session binds between the swap and the close.
    pub fn close_all_sessions(&self) -> usize {
        let conns = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        for c in conns.values() {
            c.info.replaced.store(true, Ordering::Relaxed);
            let _ = c.tx.send(Outbound::Close);
        }
        conns.len()
    }

    /// Admits a new connection unless its address has `limit` already
    /// (0 = no limit). Returns its info on success.
    pub fn admit(&self, remote: SocketAddr, limit: u32) -> Option<Arc<ConnInfo>> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = per_ip.entry(remote.ip()).or_insert(0);
        if limit != 0 && *n >= limit {
            return None;
        }
        *n += 1;
        let info = Arc::new(ConnInfo {
            conn_id: self.next_conn_id.fetch_add(1, Ordering::Relaxed),
            remote,
            established: Instant::now(),
            session_id: AtomicU64::new(0),
            timeout_ms: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_cxid: AtomicU64::new(0),
            last_zxid: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            replaced: std::sync::atomic::AtomicBool::new(false),
            auth: Mutex::new(crate::acl::AuthInfo::new(Some(remote.ip()))),
            queued_bytes: AtomicU64::new(0),
            drained: tokio::sync::Notify::new(),
        });
        self.all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info.conn_id, info.clone());
        Some(info)
    }

    /// Detaches a connection from its session if it still owns it; the
    /// session's watches go with it (a reconnecting client re-registers
    /// them). Events and closes for the session are then dropped.
    pub fn unbind(&self, info: &ConnInfo) {
        let session = info.session_id.load(Ordering::Relaxed) as i64;
        if session != 0 {
            let mut state = self.state();
            let mut conns = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
            if conns
                .get(&session)
                .is_some_and(|c| c.info.conn_id == info.conn_id)
            {
                conns.remove(&session);
                state.watches.remove_session(session);
            }
        }
    }

    /// Forgets a connection (and unbinds it from its session).
    pub fn release(&self, info: &ConnInfo) {
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per_ip.get_mut(&info.remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&info.remote.ip());
                }
            }
        }
        self.all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&info.conn_id);
        self.unbind(info);
    }

    /// Makes `handle` the connection of `session`, closing any previous
    /// one and dropping its watches (ZooKeeper: one connection per session).
    /// Takes the state lock the caller holds, so checking the session,
    /// binding and answering the connect are one step.
    pub fn bind_session(&self, state: &mut State, session: i64, handle: ConnHandle) {
        let mut conns = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = conns.insert(session, handle) {
            old.info.replaced.store(true, Ordering::Relaxed);
            let _ = old.tx.send(Outbound::Close);
            state.watches.remove_session(session);
        }
    }

    /// Notes that `session` showed life here (see `touched`).
    pub fn note_touched(&self, session: i64) {
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session);
    }

    /// The sessions noted since the last call.
    pub fn take_touched(&self) -> Vec<i64> {
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        t.drain().collect()
    }

    pub fn connections(&self) -> Vec<Arc<ConnInfo>> {
        let mut v: Vec<_> = self
            .all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.conn_id);
        v
    }

    pub fn connection_count(&self) -> usize {
        self.all.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
