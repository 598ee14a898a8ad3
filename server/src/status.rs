//! The read-only view of a running server that admin HTTP, Prometheus
//! metrics and the four-letter words report from.
//!
//! Owns: the plain data structs describing the server ([`ServerStatus`],
//! [`ServerStats`], [`ConnectionInfo`], …), the [`StatusSource`] trait the
//! server implements, and the version strings we report.
//!
//! Must not: mutate server state (apart from the ZooKeeper `srst`/`crst`
//! counter resets), do I/O, or know how any figure is computed. Reporters
//! ([`crate::admin`], [`crate::metrics`], [`crate::fourletter`]) only read
//! through the trait, so they are tested against a fake (`fake::FakeStatus`)
//! without a running server.

use serde::Serialize;

/// This crate's version (zonekeeper's own release number).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The ZooKeeper release whose wire protocol and admin output we match.
///
/// Clients branch on the server version (kazoo's `server_version()`,
/// Curator's feature checks), so we report a ZooKeeper number first and our
/// own after it.
pub const ZOOKEEPER_COMPAT_VERSION: &str = "3.8.0";

/// The version string in ZooKeeper's `Version.getFullVersion()` shape,
/// `"<major.minor.patch>-<revision>, built on <date>"`, as printed by
/// `srvr`, `stat`, `mntr` (`zk_version`) and `envi` (`zookeeper.version=`).
///
/// `zonekeeper_version` is [`ServerStatus::version`]. kazoo's
/// `server_version()` takes the leading digits and dots, so this parses as
/// `(3, 8, 0)`. The build date comes from the `ZONEKEEPER_BUILD_DATE`
/// environment variable at compile time when a release build sets it.
pub fn zookeeper_full_version(zonekeeper_version: &str) -> String {
    let built = option_env!("ZONEKEEPER_BUILD_DATE").unwrap_or("unknown date");
    format!("{ZOOKEEPER_COMPAT_VERSION}-zonekeeper-{zonekeeper_version}, built on {built}")
}

/// The part this server plays, as ZooKeeper names it (`Mode:` in `srvr`,
/// `zk_server_state` in `mntr`, `role` in `/v1/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Replicating leader of an ensemble.
    Leader,
    /// Voting member following the leader.
    Follower,
    /// Non-voting member serving local reads.
    Observer,
    /// An ensemble of one (no `members` configured).
    Standalone,
}

impl Role {
    /// The lowercase name ZooKeeper prints (`"leader"`, `"standalone"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Standalone => "standalone",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured member of the ensemble, as other servers and the admin API
/// see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// Server id (ZooKeeper's `myid`).
    pub id: u64,
    /// Zone the member runs in (`topology.kubernetes.io/zone`).
    pub zone: String,
    /// `"voter"` or `"observer"`.
    pub role: String,
    /// Advertised client (ZooKeeper protocol) address, `host:port`.
    pub client_addr: String,
    /// Advertised peer (replication) address, `host:port`.
    pub peer_addr: String,
}

/// Who this server is and where it stands in the ensemble.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// This server's id.
    pub id: u64,
    /// This server's zone.
    pub zone: String,
    /// Current role.
    pub role: Role,
    /// The leader this server knows of; `None` while an election runs.
    pub leader_id: Option<u64>,
    /// zxid of the last transaction applied to the local tree.
    pub last_zxid: i64,
    /// The configured members (for a standalone server: itself).
    pub members: Vec<MemberStatus>,
    /// zonekeeper's version ([`VERSION`]); four-letter words wrap it with
    /// [`zookeeper_full_version`].
    pub version: String,
    /// Time since the server started.
    pub uptime_ms: u64,
    /// Current raft term.
    pub raft_term: u64,
    /// Highest raft log index known committed.
    pub raft_commit_index: u64,
    /// Highest raft log index applied to the tree.
    pub raft_applied_index: u64,
}

/// Server-wide counters and gauges, the figures ZooKeeper's `srvr`/`mntr`
/// print.
///
/// The latency and packet figures are ZooKeeper's resettable ones (`srst`
/// zeroes them); the Prometheus counters in [`crate::metrics`] are separate
/// and never reset, as Prometheus requires.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerStats {
    /// Number of znodes in the tree, including `/` and `/zookeeper`.
    pub znode_count: u64,
    /// Total watches set (`wchs` "Total watches").
    pub watch_count: u64,
    /// Number of ephemeral znodes.
    pub ephemerals_count: u64,
    /// Sum of path and data lengths over all znodes, in bytes.
    pub approximate_data_size: u64,
    /// Requests received and not yet answered.
    pub outstanding_requests: u64,
    /// Open client connections.
    pub num_alive_connections: u64,
    /// Client packets received since start or the last `srst`.
    pub packets_received: u64,
    /// Client packets sent since start or the last `srst`.
    pub packets_sent: u64,
    /// Smallest request latency since the last reset, in ms.
    pub min_latency_ms: u64,
    /// Mean request latency since the last reset, in ms.
    pub avg_latency_ms: f64,
    /// Largest request latency since the last reset, in ms.
    pub max_latency_ms: u64,
    /// Live sessions (ZooKeeper's `global_sessions`).
    pub session_count: u64,
    /// Process file-descriptor limit (Unix only; 0 when unknown).
    pub max_file_descriptor_count: u64,
    /// File descriptors the process has open (Unix only; 0 when unknown).
    pub open_file_descriptor_count: u64,
    /// zxid of the last transaction applied locally.
    pub last_zxid: i64,
    /// Leader only: followers (voters) that are caught up and receiving
    /// entries (ZooKeeper's `zk_synced_followers`). Added for `mntr`.
    pub synced_followers: u64,
    /// Leader only: observers caught up (`zk_synced_observers`). Added for
    /// `mntr`.
    pub synced_observers: u64,
    /// Leader only: `sync` requests waiting for a quorum
    /// (`zk_pending_syncs`). Added for `mntr`.
    pub pending_syncs: u64,
    /// Bytes used by snapshots in the data dir (`dirs` `datadir_size`,
    /// `conf` `dataDirSize`). Added for `dirs`/`conf`.
    pub data_dir_size: u64,
    /// Bytes used by the write-ahead log (`dirs` `logdir_size`, `conf`
    /// `dataLogSize`). Added for `dirs`/`conf`.
    pub log_dir_size: u64,
}

/// One client connection, the figures ZooKeeper's `cons` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    /// Peer address as `ip:port` (`cons` prefixes the `/` Java prints).
    pub remote: String,
    /// Java NIO interest ops (1 = read, 4 = write); 0 when throttled.
    pub interest_ops: u32,
    /// Requests queued on this connection and not yet answered.
    pub queued: u64,
    /// Packets received on this connection.
    pub received: u64,
    /// Packets sent on this connection.
    pub sent: u64,
    /// Session id; 0 before the handshake completes.
    pub session_id: i64,
    /// Short name of the last operation (`"GETD"`, `"PING"`, … as ZooKeeper's
    /// `Request.op2String`).
    pub last_op: String,
    /// When the connection was established, ms since the Unix epoch.
    pub established_ms: u64,
    /// Negotiated session timeout.
    pub timeout_ms: u32,
    /// Last client xid seen; negative when none (then `cons` omits it).
    pub last_cxid: i64,
    /// Last zxid answered on this connection.
    pub last_zxid: i64,
    /// When the last response was sent, ms since the Unix epoch.
    pub last_response_ms: u64,
    /// Latency of the last request.
    pub last_latency_ms: u64,
    /// Smallest request latency on this connection.
    pub min_latency_ms: u64,
    /// Mean request latency on this connection.
    pub avg_latency_ms: u64,
    /// Largest request latency on this connection.
    pub max_latency_ms: u64,
}

/// One live session, for `dump`'s session list. Added for `dump`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub session_id: i64,
    /// Negotiated timeout.
    pub timeout_ms: u32,
}

/// What the server exposes to its reporters.
///
/// Every method is called from async handlers and connection tasks, so it
/// must return quickly without blocking (no `.await`, no I/O, only short
/// lock holds); figures may be slightly stale.
pub trait StatusSource: Send + Sync + 'static {
    /// Identity, role and replication progress.
    fn status(&self) -> ServerStatus;
    /// Server-wide counters (`srvr`, `mntr`, Prometheus gauges).
    fn stats(&self) -> ServerStats;
    /// Open client connections (`cons`, `stat`).
    fn connections(&self) -> Vec<ConnectionInfo>;
    /// Watched paths per session (`wchc`).
    fn watches_by_session(&self) -> Vec<(i64, Vec<String>)>;
    /// Watching sessions per path (`wchp`).
    fn watches_by_path(&self) -> Vec<(String, Vec<i64>)>;
    /// `(connections with watches, watched paths, total watches)` (`wchs`).
    fn watch_summary(&self) -> (usize, usize, usize);
    /// Ephemeral paths per owning session (`dump`).
    fn sessions_with_ephemerals(&self) -> Vec<(i64, Vec<String>)>;
    /// Live sessions with their timeouts (`dump`). Added for `dump`.
    fn sessions(&self) -> Vec<SessionInfo>;
    /// Number of live sessions.
    fn session_count(&self) -> usize;
    /// Serving clients: a leader is known and the local tree has caught up.
    /// While false, four-letter words other than `ruok`/`envi` answer
    /// ZooKeeper's "not currently serving requests" and `/readyz` is 503.
    fn is_ready(&self) -> bool;
    /// `srst`: zero the server's latency and packet figures.
    fn reset_server_stats(&self);
    /// `crst`: zero every connection's latency and packet figures.
    fn reset_connection_stats(&self);
}

/// A [`StatusSource`] test double with settable figures.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Figures a test sets directly; counts the reset calls.
    pub struct FakeStatus {
        /// Returned by `status()`.
        pub status: Mutex<ServerStatus>,
        /// Returned by `stats()`.
        pub stats: Mutex<ServerStats>,
        /// Returned by `connections()`.
        pub connections: Mutex<Vec<ConnectionInfo>>,
        /// Watches as `(session, path)` pairs; the three watch views derive
        /// from it.
        pub watches: Mutex<Vec<(i64, String)>>,
        /// Returned by `sessions_with_ephemerals()`.
        pub ephemerals: Mutex<Vec<(i64, Vec<String>)>>,
        /// Returned by `sessions()`; `session_count()` is its length.
        pub sessions: Mutex<Vec<SessionInfo>>,
        /// Returned by `is_ready()`.
        pub ready: AtomicBool,
        /// Number of `reset_server_stats` calls.
        pub server_resets: AtomicUsize,
        /// Number of `reset_connection_stats` calls.
        pub connection_resets: AtomicUsize,
    }

    fn member(id: u64, zone: &str, role: &str) -> MemberStatus {
        MemberStatus {
            id,
            zone: zone.to_string(),
            role: role.to_string(),
            client_addr: format!("127.0.0.1:{}", 2180 + id),
            peer_addr: format!("127.0.0.1:{}", 2887 + id),
        }
    }

    impl FakeStatus {
        /// A ready standalone server (id 1, zone "local") with a few znodes
        /// and no connections.
        pub fn standalone() -> Self {
            FakeStatus {
                status: Mutex::new(ServerStatus {
                    id: 1,
                    zone: "local".into(),
                    role: Role::Standalone,
                    leader_id: Some(1),
                    last_zxid: 0x1_0000_0005,
                    members: vec![member(1, "local", "voter")],
                    version: VERSION.into(),
                    uptime_ms: 12_345,
                    raft_term: 1,
                    raft_commit_index: 5,
                    raft_applied_index: 5,
                }),
                stats: Mutex::new(ServerStats {
                    znode_count: 5,
                    approximate_data_size: 42,
                    last_zxid: 0x1_0000_0005,
                    max_file_descriptor_count: 1024,
                    open_file_descriptor_count: 20,
                    ..ServerStats::default()
                }),
                connections: Mutex::new(Vec::new()),
                watches: Mutex::new(Vec::new()),
                ephemerals: Mutex::new(Vec::new()),
                sessions: Mutex::new(Vec::new()),
                ready: AtomicBool::new(true),
                server_resets: AtomicUsize::new(0),
                connection_resets: AtomicUsize::new(0),
            }
        }

        /// The leader (id 1, zone "a") of three voters in zones a, b, c and
        /// one observer in zone d.
        pub fn leader_of_three() -> Self {
            let fake = Self::standalone();
            {
                let mut st = fake.status.lock().unwrap();
                st.zone = "a".into();
                st.role = Role::Leader;
                st.members = vec![
                    member(1, "a", "voter"),
                    member(2, "b", "voter"),
                    member(3, "c", "voter"),
                    member(4, "d", "observer"),
                ];
                st.raft_term = 3;
            }
            {
                let mut stats = fake.stats.lock().unwrap();
                stats.synced_followers = 2;
                stats.synced_observers = 1;
            }
            fake
        }

        /// Sets `is_ready()`.
        pub fn set_ready(&self, ready: bool) {
            self.ready.store(ready, Ordering::SeqCst);
        }

        /// Changes the status in place.
        pub fn with_status(&self, f: impl FnOnce(&mut ServerStatus)) {
            f(&mut self.status.lock().unwrap());
        }

        /// Changes the stats in place.
        pub fn with_stats(&self, f: impl FnOnce(&mut ServerStats)) {
            f(&mut self.stats.lock().unwrap());
        }
    }

    impl StatusSource for FakeStatus {
        fn status(&self) -> ServerStatus {
            self.status.lock().unwrap().clone()
        }
        fn stats(&self) -> ServerStats {
            self.stats.lock().unwrap().clone()
        }
        fn connections(&self) -> Vec<ConnectionInfo> {
            self.connections.lock().unwrap().clone()
        }
        fn watches_by_session(&self) -> Vec<(i64, Vec<String>)> {
            let mut out: Vec<(i64, Vec<String>)> = Vec::new();
            for (sid, path) in self.watches.lock().unwrap().iter() {
                match out.iter_mut().find(|(s, _)| s == sid) {
                    Some((_, paths)) => paths.push(path.clone()),
                    None => out.push((*sid, vec![path.clone()])),
                }
            }
            out
        }
        fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
            let mut out: Vec<(String, Vec<i64>)> = Vec::new();
            for (sid, path) in self.watches.lock().unwrap().iter() {
                match out.iter_mut().find(|(p, _)| p == path) {
                    Some((_, sids)) => sids.push(*sid),
                    None => out.push((path.clone(), vec![*sid])),
                }
            }
            out
        }
        fn watch_summary(&self) -> (usize, usize, usize) {
            let total = self.watches.lock().unwrap().len();
            (
                self.watches_by_session().len(),
                self.watches_by_path().len(),
                total,
            )
        }
        fn sessions_with_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
            self.ephemerals.lock().unwrap().clone()
        }
        fn sessions(&self) -> Vec<SessionInfo> {
            self.sessions.lock().unwrap().clone()
        }
        fn session_count(&self) -> usize {
            self.sessions.lock().unwrap().len()
        }
        fn is_ready(&self) -> bool {
            self.ready.load(Ordering::SeqCst)
        }
        fn reset_server_stats(&self) {
            self.server_resets.fetch_add(1, Ordering::SeqCst);
        }
        fn reset_connection_stats(&self) {
            self.connection_resets.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/v1/status` contract (ARCHITECTURE.md "Contracts"): `role` is one of
    /// `leader`/`follower`/`observer`/`standalone`.
    #[test]
    fn role_serializes_lowercase() {
        for (role, name) in [
            (Role::Leader, "leader"),
            (Role::Follower, "follower"),
            (Role::Observer, "observer"),
            (Role::Standalone, "standalone"),
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), name);
            assert_eq!(role.to_string(), name);
        }
    }

    /// kazoo `server_version()` matches `([\d\.]*).*` on the
    /// `zookeeper.version` value and splits on dots.
    #[test]
    fn full_version_starts_with_zookeeper_digits() {
        let v = zookeeper_full_version("0.1.0");
        assert!(v.starts_with("3.8.0-zonekeeper-0.1.0, built on "), "{v}");
        let digits: String = v
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        assert_eq!(digits, "3.8.0");
    }
}
