//! Wires the parts together: recovers the state, starts the consensus
//! task, the admin HTTP server and the client listener, and stops them all
//! on one shutdown signal (mini-redis `server::run`). Tests call [`start`]
//! with port 0 and get the bound addresses back.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::admin::{self, AdminState};
use crate::config::{Config, MemberRole};
use crate::conn::{self, ConnConfig, ConnCtx};
use crate::consensus::{Consensus, ConsensusConfig, ConsensusError};
use crate::hub::Hub;
use crate::membership::MemberInfo;
use crate::metrics::Metrics;
use crate::status::{
    self, ConnectionInfo, MemberStatus, Role, ServerStats, ServerStatus, SessionInfo, StatusSource,
};
use crate::storage::RealDisk;
use crate::transport::{PeerInfo, Transport, TransportMetrics};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} for {what}: {source}; is another server using it? choose another address with --{flag}")]
    Bind {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the data directory: {0}")]
    Consensus(#[from] ConsensusError),
    #[error("a server task failed: {0}")]
    Task(String),
}

/// A started server.
pub struct RunningServer {
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    consensus: JoinHandle<Result<(), ConsensusError>>,
    listener: JoinHandle<()>,
    admin: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, closes connections, stops the consensus task after
    /// its current batch (everything acknowledged is already durable).
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        let _ = self.listener.await;
        let _ = self.admin.await;
        match self.consensus.await {
            Ok(r) => r.map_err(ServerError::from),
            Err(e) => Err(ServerError::Task(e.to_string())),
        }
    }

    /// Resolves if the consensus task stops on its own (a storage failure).
    pub async fn stopped(&mut self) -> Result<(), ServerError> {
        match (&mut self.consensus).await {
            Ok(r) => r.map_err(ServerError::from),
            Err(e) => Err(ServerError::Task(e.to_string())),
        }
    }
}

/// Runs until `shutdown` resolves (SIGTERM/ctrl-c in the binary) or a fatal
/// storage error.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServerError> {
    let mut server = start(config).await?;
    tokio::select! {
        _ = shutdown => {
            info!("shutting down");
            server.shutdown().await
        }
        r = server.stopped() => {
            if let Err(e) = &r {
                error!(error = %e, "consensus stopped; the server cannot continue");
            }
            let _ = server.shutdown.send(true);
            r
        }
    }
}

pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let client_listener = bind(config.client_addr, "clients", "client-addr").await?;
    let admin_listener = bind(config.admin_addr, "admin HTTP", "admin-addr").await?;
    let client_addr = client_listener.local_addr().expect("bound");
    let admin_addr = admin_listener.local_addr().expect("bound");

    let cc = ConsensusConfig {
        id: config.id,
        data_dir: config.data_dir.clone(),
        tick: Duration::from_millis(100),
        snapshot_every: config.snapshot_every_entries,
        snapshots_to_keep: config.snapshots_to_keep as usize,
        wal_segment_bytes: config.wal_segment_bytes,
        recovery_mode: config.recovery_mode,
        reap_interval: config.container_check_interval,
        fsync: config.fsync,
        members: config.members.iter().map(MemberInfo::from).collect(),
        join: config.join,
        voters: config
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Voter)
            .map(|m| m.id)
            .collect(),
        observers: config
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Observer)
            .map(|m| m.id)
            .collect(),
    };
    let (mut consensus, hub, proposer) =
        tokio::task::block_in_place(|| Consensus::open(cc, Arc::new(RealDisk), metrics.clone()))?;
    let caught_up = consensus.caught_up();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // An ensemble: the peer transport carries raft traffic, forwarded
    // writes and session liveness.
    let peers = if config.is_standalone() {
        None
    } else {
        let listener = bind(config.peer_addr, "peers", "peer-addr").await?;
        let transport_metrics = Arc::new(
            TransportMetrics::new(metrics.registry())
                .map_err(|e| ServerError::Task(format!("registering transport metrics: {e}")))?,
        );
        let peers: Vec<PeerInfo> = config.members.iter().map(PeerInfo::from).collect();
        Some(Transport::start(
            config.id,
            config.zone.clone(),
            listener,
            peers,
            transport_metrics,
            shutdown_rx.clone(),
        ))
    };
    let mut rx = shutdown_rx.clone();
    let consensus = tokio::spawn(consensus.run(peers, async move {
        let _ = rx.wait_for(|v| *v).await;
    }));

    let source: Arc<dyn StatusSource> = Arc::new(HubStatus {
        hub: hub.clone(),
        config: config.clone(),
    });
    let admin_state = AdminState {
        source: source.clone(),
        metrics: metrics.clone(),
        membership: (!config.is_standalone()).then(|| proposer.clone()),
    };
    let mut rx = shutdown_rx.clone();
    let admin = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        if let Err(e) = admin::serve(admin_listener, admin_state, stop).await {
            warn!(error = %e, "admin HTTP server stopped");
        }
    });

    // Serve clients only once the recovered log is applied: until then the
    // state lacks the log tail (see `Consensus::caught_up`). The listener is
    // bound already, so early clients wait in its backlog.
    let recovering = std::time::Instant::now();
    if caught_up.await.is_err() {
        let _ = shutdown_tx.send(true);
        let _ = admin.await;
        return Err(match consensus.await {
            Ok(Err(e)) => ServerError::Consensus(e),
            Ok(Ok(())) => ServerError::Task("consensus stopped before applying the recovered log".into()),
            Err(e) => ServerError::Task(e.to_string()),
        });
    }
    info!(
        ms = recovering.elapsed().as_millis() as u64,
        "recovered log applied; accepting clients"
    );

    let ctx = Arc::new(ConnCtx {
        hub: hub.clone(),
        proposer,
        cfg: ConnConfig {
            max_packet: config.max_packet_bytes,
            min_session_timeout_ms: config.min_session_timeout.as_millis() as u32,
            max_session_timeout_ms: config.max_session_timeout.as_millis() as u32,
            max_connections_per_ip: config.max_client_connections,
            super_digest: config.super_digest.clone(),
            extended_types_enabled: config.extended_types_enabled,
            reconfig_enabled: config.reconfig_enabled,
            four_letter_words: config.four_letter_words.clone(),
            conf_summary: config.conf_summary(),
        },
        metrics,
        status: source,
    });
    let listener = tokio::spawn(accept_loop(client_listener, ctx, shutdown_rx));
    info!(%client_addr, %admin_addr, id = config.id, zone = %config.zone, data_dir = %config.data_dir.display(), "zonekeeper server started");
    Ok(RunningServer {
        client_addr,
        admin_addr,
        hub,
        shutdown: shutdown_tx,
        consensus,
        listener,
        admin,
    })
}

/// Binds a listener; the error names the flag that moves it.
async fn bind(addr: SocketAddr, what: &'static str, flag: &'static str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind {
        what,
        flag,
        addr,
        source,
    })
}

async fn accept_loop(listener: TcpListener, ctx: Arc<ConnCtx>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(5);
    let conn_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|v| *v).await; } => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, remote)) => {
                    backoff = Duration::from_millis(5);
                    tokio::spawn(conn::serve(socket, remote, ctx.clone(), conn_shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// The server as status reports see it.
struct HubStatus {
    hub: Arc<Hub>,
    config: Arc<Config>,
}

fn epoch_ms_of(i: std::time::Instant) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(i.elapsed()).as_millis() as u64
}

impl StatusSource for HubStatus {
    fn status(&self) -> ServerStatus {
        let r = &self.hub.raft;
        let leader = r.leader_id.load(Relaxed);
        let role = if self.config.is_standalone() {
            Role::Standalone
        } else if self
            .config
            .self_member()
            .is_some_and(|m| m.role == MemberRole::Observer)
        {
            Role::Observer
        } else if r.is_leader.load(Relaxed) {
            Role::Leader
        } else {
            Role::Follower
        };
        // One lock for both figures: a second `state()` inside the struct
        // literal would deadlock (temporaries live to the end of it).
        let (last_zxid, replicated_members) = {
            let state = self.hub.state();
            let members: Vec<MemberStatus> = state.members.values().map(MemberStatus::from).collect();
            (state.last_zxid, members)
        };
        ServerStatus {
            id: self.config.id,
            zone: self.config.zone.clone(),
            role,
            leader_id: (leader != 0).then_some(leader),
            last_zxid,
            // The replicated member list once there is one (it follows
            // runtime changes); the configured list before.
            members: if replicated_members.is_empty() {
                self.config.member_statuses()
            } else {
                replicated_members
            },
            version: status::VERSION.to_string(),
            uptime_ms: self.hub.started.elapsed().as_millis() as u64,
            raft_term: r.term.load(Relaxed),
            raft_commit_index: r.commit.load(Relaxed),
            raft_applied_index: r.applied.load(Relaxed),
        }
    }

    fn stats(&self) -> ServerStats {
        let (lat_min, lat_avg, lat_max) = self.hub.latency.snapshot();
        let st = self.hub.state();
        ServerStats {
            znode_count: st.tree.node_count() as u64,
            watch_count: st.watches.watch_count() as u64,
            ephemerals_count: st.tree.ephemeral_count() as u64,
            approximate_data_size: st.tree.approximate_data_size(),
            outstanding_requests: self.hub.outstanding.load(Relaxed),
            num_alive_connections: self.hub.connection_count() as u64,
            packets_received: self.hub.packets_received.load(Relaxed),
            packets_sent: self.hub.packets_sent.load(Relaxed),
            min_latency_ms: lat_min,
            avg_latency_ms: lat_avg,
            max_latency_ms: lat_max,
            session_count: st.sessions.len() as u64,
            last_zxid: st.last_zxid,
            ..ServerStats::default()
        }
    }

    fn connections(&self) -> Vec<ConnectionInfo> {
        self.hub
            .connections()
            .iter()
            .map(|c| ConnectionInfo {
                remote: c.remote.to_string(),
                interest_ops: 1,
                queued: c.outstanding.load(Relaxed),
                received: c.received.load(Relaxed),
                sent: c.sent.load(Relaxed),
                session_id: c.session_id.load(Relaxed) as i64,
                last_op: String::new(),
                established_ms: epoch_ms_of(c.established),
                timeout_ms: c.timeout_ms.load(Relaxed) as u32,
                last_cxid: c.last_cxid.load(Relaxed) as i32 as i64,
                last_zxid: c.last_zxid.load(Relaxed) as i64,
                last_response_ms: 0,
                last_latency_ms: 0,
                min_latency_ms: 0,
                avg_latency_ms: 0,
                max_latency_ms: 0,
            })
            .collect()
    }

    fn watches_by_session(&self) -> Vec<(i64, Vec<String>)> {
        self.hub.state().watches.by_session()
    }

    fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.hub.state().watches.by_path()
    }

    fn watch_summary(&self) -> (usize, usize, usize) {
        let s = self.hub.state().watches.summary();
        (s.num_connections, s.num_paths, s.total_watches)
    }

    fn sessions_with_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        self.hub.state().tree.all_ephemerals()
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        self.hub
            .state()
            .sessions
            .iter()
            .map(|s| SessionInfo {
                session_id: s.id,
                timeout_ms: s.timeout_ms,
            })
            .collect()
    }

    fn session_count(&self) -> usize {
        self.hub.state().sessions.len()
    }

    fn is_ready(&self) -> bool {
        self.hub.raft.leader_id.load(Relaxed) != 0
    }

    fn reset_server_stats(&self) {
        self.hub.latency.reset();
        self.hub.packets_received.store(0, Relaxed);
        self.hub.packets_sent.store(0, Relaxed);
    }

    fn reset_connection_stats(&self) {
        for c in self.hub.connections() {
            c.received.store(0, Relaxed);
            c.sent.store(0, Relaxed);
        }
    }
}
