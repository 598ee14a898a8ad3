//! The one task that owns the raft node (raft-rs `RawNode`) and runs its
//! Ready loop: persist entries and hard state to the WAL, fsync once per
//! batch (group commit), only then let raft count them, apply committed
//! entries to the state in log order, answer the proposers, snapshot.
//! Nothing else touches the node; other tasks talk to it through
//! [`Proposer`].
//!
//! The zxid of an entry is `term << 32 | index`: monotonic across leader
//! changes, with the epoch in the high 32 bits as in ZooKeeper.
//!
//! This issue runs an ensemble of one: the node campaigns at start and is
//! its own quorum. The peer transport arrives with the ensemble.

mod raft_log;
mod store;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::response::ResponseBody;
use proto::ErrorCode;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Snapshot};
use raft::eraftpb::{Message, MessageType};
use raft::storage::MemStorage;
use raft::{RawNode, SnapshotStatus, StateRole, Storage};
use store::RaftStore;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::acl::AuthInfo;
use crate::hub::{send_frame, ConnInfo, Hub, Outbound};
use crate::membership::{check_change, MemberInfo, MembershipChange, MembershipError};
use crate::metrics::Metrics;
use crate::state::{Applied, State};
use crate::storage::{Disk, RecoveryMode, SnapshotStore, StorageError, Wal, WalOptions};
use crate::transport::{PeerInfo, PeerMessage, TransportHandle};
use crate::txn::{Txn, TxnKind};

/// Why the consensus task stopped or could not start. Either way the server
/// must stop: continuing could acknowledge writes that are not durable.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// Settings of the consensus task.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    /// One raft tick; elections take 10 ticks, heartbeats 1.
    pub tick: Duration,
    /// Take a snapshot after this many applied entries.
    pub snapshot_every: u64,
    pub snapshots_to_keep: usize,
    pub wal_segment_bytes: u64,
    pub recovery_mode: RecoveryMode,
    /// How often the container/TTL reaper looks for candidates.
    pub reap_interval: Duration,
    /// Members with their addresses, for a new data directory (with
    /// `join`, only whom to talk to). Afterwards the member list lives in
    /// the log and snapshots.
    pub members: Vec<MemberInfo>,
    /// This member joins an existing ensemble: it starts with no raft
    /// configuration and waits for the leader to add it.
    pub join: bool,
    /// The initial membership, used only when the data directory is new
    /// (afterwards membership lives in the log and snapshots): voting
    /// members, and observers (raft learners: they replicate and serve
    /// reads but do not vote).
    pub voters: Vec<u64>,
    pub observers: Vec<u64>,
    /// fsync the WAL before raft counts entries (ZooKeeper `forceSync`).
    /// Off, writes survive a process crash (they are in the page cache) but
    /// not a power loss: only for throwaway test ensembles.
    pub fsync: bool,
}

/// Where the apply loop writes a client's reply: the connection's outbound
/// channel and the request's xid. Replying from the apply loop, under the
/// state lock, puts the reply right after the watch events of the same
/// entry and before those of any later entry (docs/ordering.md).
pub struct ReplySink {
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub info: Arc<ConnInfo>,
    pub xid: i32,
}

/// Who waits for a membership change: the member list once applied.
type MembershipReply = oneshot::Sender<Result<Vec<MemberInfo>, MembershipError>>;

/// A proposal of this server waiting for its entry to apply.
struct Waiting {
    done: oneshot::Sender<Applied>,
    sink: Option<ReplySink>,
}

/// A request to the consensus task.
pub enum Command {
    /// Replicate and apply `kind` on behalf of `session_id`; if `sink` is
    /// given, the reply frame is written there when the entry applies.
    Propose {
        session_id: i64,
        /// The sending connection's token (`Txn::owner`).
        owner: u64,
        auth: AuthInfo,
        kind: TxnKind,
        reply: oneshot::Sender<Applied>,
        sink: Option<ReplySink>,
    },
    /// Change the membership by one step (leader only).
    ChangeMembership {
        change: MembershipChange,
        reply: MembershipReply,
    },
    /// Hand leadership to another voter (leader only).
    TransferLeader {
        to: u64,
        reply: oneshot::Sender<Result<(), MembershipError>>,
    },
    /// Create a session; the task picks its id.
    CreateSession {
        timeout_ms: u32,
        password: Vec<u8>,
        owner: u64,
        reply: oneshot::Sender<Applied>,
    },
}

/// The handle other tasks use to propose. Cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Command>,
}

impl Proposer {
    /// Proposes a write; the receiver yields the applied outcome, or an
    /// error if the server is shutting down or lost leadership.
    /// `owner` is the sending connection's token (`Txn::owner`).
    pub fn propose(
        &self,
        session_id: i64,
        owner: u64,
        auth: AuthInfo,
        kind: TxnKind,
        sink: Option<ReplySink>,
    ) -> oneshot::Receiver<Applied> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Propose {
            session_id,
            owner,
            auth,
            kind,
            reply,
            sink,
        });
        rx
    }

    /// Starts a membership change; resolves when it has been applied (or
    /// refused).
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<Vec<MemberInfo>, MembershipError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::ChangeMembership { change, reply });
        rx.await.unwrap_or(Err(MembershipError::Aborted))
    }

    pub async fn transfer_leader(&self, to: u64) -> Result<(), MembershipError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::TransferLeader { to, reply });
        rx.await.unwrap_or(Err(MembershipError::Aborted))
    }

    /// Creates a session attached to the connection with token `owner`.
    pub fn create_session(
        &self,
        timeout_ms: u32,
        password: Vec<u8>,
        owner: u64,
    ) -> oneshot::Receiver<Applied> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::CreateSession {
            timeout_ms,
            password,
            owner,
            reply,
        });
        rx
    }

    /// Reattaches an existing session to the connection with token `owner`
    /// (`TxnKind::Attach`) if it is still owned by `expected_owner`; applied
    /// with `SessionExpired` if the session is gone or the password is
    /// wrong, `SessionMoved` if another connection attached it meanwhile.
    pub fn attach(
        &self,
        session_id: i64,
        password: Vec<u8>,
        owner: u64,
        expected_owner: u64,
    ) -> oneshot::Receiver<Applied> {
        self.propose(
            session_id,
            owner,
            AuthInfo::default(),
            TxnKind::Attach {
                password,
                expected_owner,
            },
            None,
        )
    }
}

/// Milliseconds on this process's monotonic clock: session deadlines.
pub fn monotonic_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn corrupt_entry(cfg: &ConsensusConfig, entry: &Entry, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corruption {
        file: cfg.data_dir.join("wal"),
        offset: entry.index,
        detail: format!(
            "committed configuration change {} does not decode: {e}",
            entry.index
        ),
    }
}

/// Raft ticks (of `ConsensusConfig::tick`) before a follower that hears
/// nothing from the leader starts an election (randomized up to twice).
const ELECTION_TICKS: usize = 10;

/// How far behind the leader's log a member may be and still count as
/// caught up for a membership change.
const CAUGHT_UP_LAG: u64 = 100;

pub fn zxid_of(term: u64, index: u64) -> i64 {
    ((term as i64) << 32) | (index as i64 & 0xffff_ffff)
}

pub struct Consensus {
    cfg: ConsensusConfig,
    raw: RawNode<RaftStore>,
    /// Peers, when this is an ensemble of more than one member.
    transport: Option<TransportHandle>,
    /// The leader and whether our connection to it was up at the last tick.
    leader_link: Option<(u64, bool)>,
    /// Whether a leader was known at the last check (see
    /// `drop_clients_without_leader`).
    had_leader: bool,
    /// Role and term at the last Ready, to notice changes.
    last_role: StateRole,
    last_term: u64,
    wal: Wal,
    snapshots: SnapshotStore,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    rx: mpsc::UnboundedReceiver<Command>,
    /// Proposals of this server waiting for their entry to apply.
    pending: HashMap<u64, Waiting>,
    next_proposal: u64,
    next_session_id: i64,
    reaping: HashSet<String>,
    applied_index: u64,
    applied_term: u64,
    snapshot_index: u64,
    /// A snapshot being written and fsynced on a blocking thread: its
    /// metadata, and where its data and the result come back. The log is
    /// compacted only once it is durable.
    snapshot_job: Option<SnapshotJob>,
    /// A membership change proposed and not yet applied: its entry index
    /// and who waits for it.
    pending_conf: Option<(u64, MembershipReply)>,
    /// Whether this member has applied a state that lists it (see
    /// `RaftView::joined`); once true, stays true.
    joined: bool,
    /// Fired once the log recovered at startup is applied; see
    /// [`Consensus::caught_up`].
    caught_up: Option<oneshot::Sender<()>>,
}

/// A snapshot save in flight (see `Consensus::maybe_snapshot`).
struct SnapshotJob {
    meta: raft::eraftpb::SnapshotMetadata,
    started: Instant,
    done: oneshot::Receiver<(Result<(), StorageError>, Vec<u8>)>,
}

impl Consensus {
    /// Recovers state from the data directory (latest snapshot, then the
    /// WAL) and builds the raft node. Returns the hub holding the
    /// recovered state and the proposer handle.
    pub fn open(
        cfg: ConsensusConfig,
        disk: Arc<dyn Disk>,
        metrics: Arc<Metrics>,
    ) -> Result<(Consensus, Arc<Hub>, Proposer), ConsensusError> {
        let started = Instant::now();
        let snapshots = SnapshotStore::open(disk.clone(), &cfg.data_dir.join("snapshots"))?
            .with_keep(cfg.snapshots_to_keep);
        let (wal, recovered) = Wal::open_with_options(
            disk.clone(),
            &cfg.data_dir.join("wal"),
            WalOptions {
                recovery_mode: cfg.recovery_mode,
                segment_bytes: cfg.wal_segment_bytes,
            },
        )?;
        let storage = RaftStore::new(MemStorage::new());
        let mut state = State::new();
        let mut snapshot_index = 0;
        let mut snapshot_term = 0;
        match snapshots.load_latest()? {
            Some((meta, data)) => {
                state = State::decode_snapshot(&data, 0).map_err(|e| StorageError::Corruption {
                    file: cfg.data_dir.join("snapshots"),
                    offset: 0,
                    detail: format!(
                        "snapshot at index {} does not decode ({e}); move it aside to recover from an older one",
                        meta.index
                    ),
                })?;
                snapshot_index = meta.index;
                snapshot_term = meta.term;
                let mut snap = Snapshot::default();
                snap.set_metadata(meta);
                snap.data = data.into();
                storage.set_latest(snap.clone());
                snap.data = Default::default();
                storage.mem.wl().apply_snapshot(snap)?;
            }
            None if cfg.join => {
                // Nothing yet: the leader adds us and sends a snapshot.
                storage.mem.initialize_with_conf_state(ConfState::default());
            }
            None if !recovered.entries.is_empty() => {
                // A log without a snapshot (written before bootstrap
                // snapshots existed): it starts at index 1 from the
                // configured membership.
                let voters = if cfg.voters.is_empty() {
                    vec![cfg.id]
                } else {
                    cfg.voters.clone()
                };
                storage
                    .mem
                    .initialize_with_conf_state(ConfState::from((voters, cfg.observers.clone())));
                state.members = cfg.members.iter().map(|m| (m.id, m.clone())).collect();
            }
            None => {
                // A new ensemble: found it with a snapshot at index 1 that
                // holds the initial state and membership, as raft-rs's own
                // examples do. Members added later then always start from
                // a snapshot, so they replay the log on top of the founding
                // configuration instead of an empty one.
                let voters = if cfg.voters.is_empty() {
                    vec![cfg.id]
                } else {
                    cfg.voters.clone()
                };
                state.members = cfg.members.iter().map(|m| (m.id, m.clone())).collect();
                state.refresh_config(zxid_of(1, 1));
                let mut meta = raft::eraftpb::SnapshotMetadata {
                    index: 1,
                    term: 1,
                    ..Default::default()
                };
                meta.set_conf_state(ConfState::from((voters, cfg.observers.clone())));
                let data = state.encode_snapshot();
                snapshots.save(&meta, &data)?;
                let mut snap = Snapshot::default();
                snap.set_metadata(meta);
                snap.data = data.into();
                storage.set_latest(snap.clone());
                snap.data = Default::default();
                storage.mem.wl().apply_snapshot(snap)?;
                snapshot_index = 1;
                snapshot_term = 1;
            }
        }
        let entries: Vec<Entry> = recovered
            .entries
            .into_iter()
            .filter(|e| e.index > snapshot_index)
            .collect();
        if let Some(first) = entries.first() {
            if first.index != snapshot_index + 1 {
                return Err(ConsensusError::Storage(StorageError::Corruption {
                    file: cfg.data_dir.join("wal"),
                    offset: 0,
                    detail: format!(
                        "log starts at index {} but the latest snapshot ends at {snapshot_index}: entries are missing",
                        first.index
                    ),
                }));
            }
        }
        let recovered_entries = entries.len();
        storage.mem.wl().append(&entries)?;
        let mut hs = recovered.hard_state;
        if hs.commit < snapshot_index {
            hs.commit = snapshot_index;
        }
        if hs.term < snapshot_term {
            hs.term = snapshot_term;
        }
        let last = storage.mem.last_index().unwrap_or(snapshot_index);
        if hs.commit > last {
            hs.commit = last;
        }
        storage.mem.wl().set_hardstate(hs);
        info!(
            snapshot_index,
            recovered_entries,
            last_zxid = format!("{:#x}", state.last_zxid),
            "recovered state from {}",
            cfg.data_dir.display()
        );

        let raft_cfg = raft::Config {
            id: cfg.id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: 1,
            applied: snapshot_index,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            // Proposals taken in one batch (see `take_queued`) go to each
            // follower as one append message, not one message each.
            batch_append: true,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_cfg.validate()?;
        let logger = raft_log::logger();
        let mut raw = RawNode::new(&raft_cfg, storage, &logger)?;
        // An ensemble of one is its own quorum: elect ourselves now.
        if raw.raft.prs().conf().voters().ids().len() == 1 {
            let _ = raw.campaign();
        }
        state.sessions.reset_deadlines(0);
        let joined = !cfg.join || state.members.contains_key(&cfg.id);
        let hub = Hub::new(state);
        hub.raft
            .joined
            .store(joined, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let seed = crate::session::initial_session_id(cfg.id, wall_ms() as u64);
        debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "consensus node ready"
        );
        Ok((
            Consensus {
                cfg,
                raw,
                transport: None,
                leader_link: None,
                had_leader: false,
                last_role: StateRole::Follower,
                last_term: 0,
                wal,
                snapshots,
                hub: hub.clone(),
                metrics,
                rx,
                pending: HashMap::new(),
                // Proposal numbers are unique across restarts too, so an
                // entry proposed by an earlier run never answers a new one.
                next_proposal: (wall_ms() as u64) << 20,
                next_session_id: seed,
                reaping: HashSet::new(),
                applied_index: snapshot_index,
                applied_term: snapshot_term,
                snapshot_index,
                snapshot_job: None,
                pending_conf: None,
                joined,
                caught_up: None,
            },
            hub,
            Proposer { tx },
        ))
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// Resolves once [`run`](Consensus::run) has applied an entry of the
    /// node's current raft term (for a leader, its own first entry, whose
    /// commit commits everything before it) and so every entry recovered
    /// from the log. Until then the state is the snapshot plus part of the
    /// log at best: clients must not be served yet, or a live session from
    /// the log tail looks expired and reads miss acknowledged writes. Fails
    /// if the task stops first.
    pub fn caught_up(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.caught_up = Some(tx);
        rx
    }

    fn signal_caught_up(&mut self) {
        if self.caught_up.is_some()
            && self.applied_term == self.raw.raft.term
            && self.applied_index >= self.raw.raft.raft_log.committed
        {
            if let Some(tx) = self.caught_up.take() {
                debug!(applied = self.applied_index, "recovered log applied");
                let _ = tx.send(());
            }
        }
    }

    /// Runs until `shutdown` resolves or storage fails. A storage failure
    /// stops the node: continuing with an unknown log state could lose
    /// acknowledged writes.
    pub async fn run(
        mut self,
        peers: Option<(TransportHandle, mpsc::Receiver<(u64, PeerMessage)>)>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ConsensusError> {
        tokio::pin!(shutdown);
        let mut inbound = match peers {
            Some((handle, rx)) => {
                self.transport = Some(handle);
                Some(rx)
            }
            None => None,
        };
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reap = tokio::time::interval(self.cfg.reap_interval);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.raw.tick();
                    self.watch_leader_connection();
                    self.drop_clients_without_leader();
                    self.expire_sessions();
                    self.forward_touches();
                    self.publish();
                }
                msg = async { inbound.as_mut().expect("guarded").recv().await }, if inbound.is_some() => {
                    match msg {
                        Some((from, msg)) => {
                            self.on_peer_message(from, msg);
                            self.take_queued(&mut inbound);
                        }
                        None => inbound = None,
                    }
                }
                _ = reap.tick() => self.reap(),
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.handle(cmd);
                    self.take_queued(&mut inbound);
                }
            }
            self.on_ready()?;
            self.signal_caught_up();
        }
        info!("consensus task stopping");
        Ok(())
    }

    /// Takes what is already queued, client commands and peer messages
    /// alike, before the next Ready: one fsync (and one append message per
    /// follower) for the lot. A leader under load then commits a batch per
    /// round trip instead of a forward or an append response per fsync.
    /// Bounded, so ticks are not starved.
    fn take_queued(&mut self, inbound: &mut Option<mpsc::Receiver<(u64, PeerMessage)>>) {
        const MAX_BATCH: usize = 4096;
        for _ in 0..MAX_BATCH {
            let mut took = false;
            if let Ok(cmd) = self.rx.try_recv() {
                self.handle(cmd);
                took = true;
            }
            if let Some(rx) = inbound.as_mut() {
                if let Ok((from, msg)) = rx.try_recv() {
                    self.on_peer_message(from, msg);
                    took = true;
                }
            }
            if !took {
                break;
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Propose {
                session_id,
                owner,
                auth,
                kind,
                reply,
                sink,
            } => {
                self.propose(session_id, owner, auth, kind, Some(Waiting { done: reply, sink }));
            }
            Command::ChangeMembership { change, reply } => match self.start_membership_change(change) {
                Ok(index) => self.pending_conf = Some((index, reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::TransferLeader { to, reply } => {
                let r = if !self.is_leader() {
                    Err(MembershipError::NotLeader {
                        leader_id: self.raw.raft.leader_id,
                    })
                } else if !self.raw.raft.prs().conf().voters().contains(to) {
                    Err(MembershipError::Unknown(to))
                } else {
                    info!(to, "transferring leadership");
                    self.raw.transfer_leader(to);
                    Ok(())
                };
                let _ = reply.send(r);
            }
            Command::CreateSession {
                timeout_ms,
                password,
                owner,
                reply,
            } => {
                let id = self.next_session_id;
                self.next_session_id += 1;
                self.propose(
                    id,
                    owner,
                    AuthInfo::default(),
                    TxnKind::CreateSession { timeout_ms, password },
                    Some(Waiting {
                        done: reply,
                        sink: None,
                    }),
                );
            }
        }
    }

    /// Returns whether raft took the proposal.
    fn propose(
        &mut self,
        session_id: i64,
        owner: u64,
        auth: AuthInfo,
        kind: TxnKind,
        waiting: Option<Waiting>,
    ) -> bool {
        let proposal = self.next_proposal;
        self.next_proposal += 1;
        let txn = Txn {
            origin: self.cfg.id,
            proposal,
            session_id,
            owner,
            time_ms: wall_ms(),
            auth,
            kind,
        };
        if !self.is_leader() {
            // A follower or observer forwards the write to the leader; the
            // reply is sent here when the entry applies locally.
            let leader = self.raw.raft.leader_id;
            let sent = match &self.transport {
                Some(t) if leader != 0 => t
                    .send(
                        leader,
                        PeerMessage::Forward {
                            origin: self.cfg.id,
                            payload: txn.encode(),
                        },
                    )
                    .is_ok(),
                _ => false,
            };
            if sent {
                if let Some(w) = waiting {
                    self.pending.insert(proposal, w);
                }
            } else {
                debug!(leader, "no leader to forward a write to; dropped");
            }
            return sent;
        }
        match self.raw.propose(vec![], txn.encode()) {
            Ok(()) => {
                if let Some(w) = waiting {
                    self.pending.insert(proposal, w);
                }
                true
            }
            // Dropping `waiting` tells the client's connection to give up;
            // the client reconnects and retries elsewhere.
            Err(e) => {
                debug!(error = %e, "proposal dropped");
                false
            }
        }
    }

    /// Checks and proposes one membership step; returns the index of its
    /// configuration-change entry.
    fn start_membership_change(&mut self, change: MembershipChange) -> Result<u64, MembershipError> {
        if !self.is_leader() {
            return Err(MembershipError::NotLeader {
                leader_id: self.raw.raft.leader_id,
            });
        }
        if self.pending_conf.is_some() || self.raw.raft.has_pending_conf() {
            return Err(MembershipError::InProgress);
        }
        let voters: BTreeSet<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        // Live: connected now (a dead process closes its connection at
        // once, while raft's `recent_active` lags up to an election
        // timeout), heard from recently, and caught up with the log (a
        // member that answers heartbeats but lacks the log cannot help
        // commit).
        let last = self.raw.raft.raft_log.last_index();
        let connected: BTreeSet<u64> = self
            .transport
            .as_ref()
            .map(|t| {
                t.stats()
                    .into_iter()
                    .filter(|s| s.connected)
                    .map(|s| s.id)
                    .collect()
            })
            .unwrap_or_default();
        let mut active: BTreeSet<u64> = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(id, p)| connected.contains(id) && p.recent_active && p.matched + CAUGHT_UP_LAG >= last)
            .map(|(id, _)| *id)
            .collect();
        active.insert(self.cfg.id);
        // An observer that has not caught up: say so, rather than what a
        // promotion would do to quorum while it is behind.
        if let MembershipChange::Promote(id) = change {
            if self.raw.raft.prs().conf().learners().contains(&id) {
                self.check_caught_up(id)?;
            }
        }
        let members = self.hub.state().members.clone();
        check_change(&members, &voters, &active, &change)?;
        info!(?change, "proposing a membership change");
        self.raw
            .propose_conf_change(vec![], change.to_conf_change())
            .map_err(|_| MembershipError::Aborted)?;
        Ok(self.raw.raft.raft_log.last_index())
    }

    /// An observer may be promoted only once caught up, as the leader's
    /// progress tracker sees it: no snapshot is on its way to it, it has
    /// acknowledged entries (`matched`: what it persisted, and for a
    /// snapshot installed) and is within `CAUGHT_UP_LAG` of the leader's
    /// commit index.
    /// A voter that is not caught up cannot help commit, and a reader of
    /// `/v1/status` might take its empty tree for the ensemble's.
    fn check_caught_up(&self, id: u64) -> Result<(), MembershipError> {
        let commit = self.raw.raft.raft_log.committed;
        let (matched, no_snapshot_pending) = self
            .raw
            .raft
            .prs()
            .get(id)
            .map(|p| (p.matched, p.state != raft::ProgressState::Snapshot))
            .unwrap_or((0, false));
        if no_snapshot_pending && matched > 0 && matched + CAUGHT_UP_LAG >= commit {
            return Ok(());
        }
        Err(MembershipError::NotCaughtUp {
            id,
            matched,
            commit,
            lag: CAUGHT_UP_LAG,
        })
    }

    /// Peers to keep connections to: every member the state knows.
    fn sync_peers(&self) {
        if let Some(t) = &self.transport {
            let peers: Vec<PeerInfo> = self.hub.state().members.values().map(PeerInfo::from).collect();
            if !peers.is_empty() {
                t.update_peers(peers);
            }
        }
    }

    /// A message from a peer: raft traffic, a write forwarded by a
    /// follower (the leader proposes it as is), or session liveness.
    fn on_peer_message(&mut self, from: u64, msg: PeerMessage) {
        match msg {
            PeerMessage::Raft(m) => {
                if let Err(e) = self.raw.step(m) {
                    debug!(from, error = %e, "raft message refused");
                }
            }
            PeerMessage::Forward { origin, payload } => {
                if self.is_leader() {
                    if let Err(e) = self.raw.propose(vec![], payload) {
                        debug!(origin, error = %e, "forwarded write dropped");
                    }
                } else {
                    // Leadership moved on: the origin's client times out
                    // or loses its connection and retries.
                    debug!(origin, "forwarded write reached a non-leader; dropped");
                }
            }
            PeerMessage::Touch { sessions } => {
                if self.is_leader() {
                    let now = monotonic_ms(self.hub.started);
                    let mut state = self.hub.state();
                    for s in sessions {
                        state.sessions.touch(s, now);
                    }
                }
            }
            PeerMessage::Relay { .. } => debug!(from, "relay messages are not routed yet; dropped"),
        }
    }

    /// A member that no longer knows a leader (cut off from the majority,
    /// or an election is running) closes its client connections, as a
    /// ZooKeeper follower does when it loses its leader: its clients then
    /// see Disconnected and reconnect to a member that has one, instead of
    /// staying connected while the majority's leader expires their
    /// sessions (a lock holder must learn it may have lost the lock). New
    /// connections are refused until a leader is known (`conn::establish`).
    fn drop_clients_without_leader(&mut self) {
        if self.transport.is_none() {
            return;
        }
        let has_leader = self.raw.raft.leader_id != 0;
        if self.had_leader && !has_leader {
            let closed = {
                let _state = self.hub.state();
                self.hub.close_all_sessions()
            };
            // Their replies cannot be delivered; the writes may still commit
            // (ConnectionLoss: the outcome is unknown to the client).
            self.pending.clear();
            info!(
                closed,
                "no leader known: closed client connections until one is elected"
            );
        }
        self.had_leader = has_leader;
    }

    /// A follower whose connection to the leader just broke (the leader's
    /// process died, as ZooKeeper followers notice from their socket)
    /// fast-forwards its election clock instead of waiting out the whole
    /// election timeout: at once past the leader's lease (so it grants the
    /// pre-vote of another follower that noticed too), and to within a few
    /// ticks of campaigning, staggered by id so that two followers that
    /// noticed together do not split the vote. Pre-vote keeps this safe: if
    /// the leader is in fact fine, the followers that still hear from it
    /// refuse the pre-vote.
    fn watch_leader_connection(&mut self) {
        let leader = self.raw.raft.leader_id;
        let connected = match (&self.transport, self.is_leader(), leader) {
            (Some(t), false, l) if l != 0 => t.stats().iter().any(|s| s.id == l && s.connected),
            _ => {
                self.leader_link = None;
                return;
            }
        };
        let was = self.leader_link.replace((leader, connected));
        if was == Some((leader, true)) && !connected {
            info!(
                leader,
                "lost the connection to the leader; starting an election early"
            );
            let raft = &mut self.raw.raft;
            let stagger = 1 + (self.cfg.id as usize % 3);
            let target = raft
                .randomized_election_timeout()
                .saturating_sub(stagger)
                .max(raft.election_timeout());
            raft.election_elapsed = raft.election_elapsed.max(target);
        }
    }

    /// Followers tell the leader which of their clients' sessions were
    /// active, since only the leader expires sessions.
    fn forward_touches(&mut self) {
        let touched = self.hub.take_touched();
        if touched.is_empty() || self.is_leader() {
            return;
        }
        let leader = self.raw.raft.leader_id;
        if let (Some(t), true) = (&self.transport, leader != 0) {
            let _ = t.send(leader, PeerMessage::Touch { sessions: touched });
        }
    }

    /// Sends raft messages to peers; a peer that cannot be reached is
    /// reported so raft probes it instead of streaming to it.
    fn send_messages(&mut self, msgs: Vec<Message>) {
        let Some(t) = &self.transport else { return };
        let mut unreachable = Vec::new();
        for m in msgs {
            let (to, is_snapshot) = (m.to, m.get_msg_type() == MessageType::MsgSnapshot);
            if t.send(to, PeerMessage::Raft(m)).is_err() {
                unreachable.push((to, is_snapshot));
            }
        }
        for (to, is_snapshot) in unreachable {
            self.raw.report_unreachable(to);
            if is_snapshot {
                self.raw.report_snapshot(to, SnapshotStatus::Failure);
            }
        }
    }

    /// A follower installs a snapshot from the leader: the state machine is
    /// replaced, the snapshot is saved and the log before it dropped.
    ///
    /// The entries the snapshot covers are never applied here, so neither
    /// the watch events they would trigger nor the replies to this
    /// member's proposals among them would ever be sent. As a ZooKeeper
    /// learner that syncs by snapshot has no client connections left, this
    /// member closes its clients' connections and fails its waiting
    /// proposals (ConnectionLoss: outcome unknown): each client reconnects
    /// and re-registers its watches with the last zxid it saw, and
    /// setWatches fires what it missed against the new state.
    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), ConsensusError> {
        let meta = snap.get_metadata().clone();
        let now = monotonic_ms(self.hub.started);
        let fresh = State::decode_snapshot(&snap.data, now).map_err(|e| StorageError::Corruption {
            file: self.cfg.data_dir.join("snapshots"),
            offset: meta.index,
            detail: format!("snapshot {} from the leader does not decode: {e}", meta.index),
        })?;
        tokio::task::block_in_place(|| self.snapshots.save(&meta, &snap.data))?;
        let closed = {
            let mut state = self.hub.state();
            // The watches go with the connections closed just below.
            *state = fresh;
            self.joined |= state.members.contains_key(&self.cfg.id);
            self.hub.close_all_sessions()
        };
        self.pending.clear();
        let mut header = snap.clone();
        self.raw.store().set_latest(snap.clone());
        header.data = Default::default();
        self.raw.store().mem.wl().apply_snapshot(header)?;
        tokio::task::block_in_place(|| self.wal.compact(meta.index))?;
        self.applied_index = meta.index;
        self.applied_term = meta.term;
        self.snapshot_index = meta.index;
        info!(
            index = meta.index,
            closed_connections = closed,
            "installed a snapshot from the leader"
        );
        self.sync_peers();
        Ok(())
    }

    /// On a change of leader or term: a new leader gives every session a
    /// full timeout (it did not see their pings), a deposed leader forgets
    /// the session closes it proposed, and proposals waiting on an old term
    /// are failed so their clients retry (the write may still commit:
    /// ConnectionLoss means "unknown").
    fn on_role_change(&mut self) {
        let (role, term) = (self.raw.raft.state, self.raw.raft.term);
        if role == self.last_role && term == self.last_term {
            return;
        }
        info!(?role, term, leader = self.raw.raft.leader_id, "raft role changed");
        // A deposed leader must drop its `closing` marks too: the closes
        // it proposed may never commit (a leader thawed after a stall
        // expires every session it did not hear from, then learns of the
        // new leader), and until dropped the marks make `touch` and
        // session resumption refuse sessions the new leader keeps alive,
        // so their clients are told their session expired. A close that
        // does commit ends the session here when it applies.
        if role == StateRole::Leader || self.last_role == StateRole::Leader {
            let now = monotonic_ms(self.hub.started);
            self.hub.state().sessions.reset_deadlines(now);
        }
        if self.last_term != 0 && term != self.last_term {
            if let Some((_, reply)) = self.pending_conf.take() {
                let _ = reply.send(Err(MembershipError::Aborted));
            }
            self.pending.clear();
            self.reaping.clear();
        }
        self.last_role = role;
        self.last_term = term;
    }

    /// The leader expires sessions whose deadline passed.
    fn expire_sessions(&mut self) {
        if !self.is_leader() {
            return;
        }
        let now = monotonic_ms(self.hub.started);
        let expired = self.hub.state().sessions.expired(now);
        for s in expired {
            info!(session = format!("{s:#x}"), "session expired");
            if self.propose(s, 0, AuthInfo::default(), TxnKind::CloseSession, None) {
                // The session table's closing mark unschedules the session
                // (`expired` never reports it again) and refuses resumes
                // and touches until the close applies.
                self.hub.state().sessions.mark_closing(s);
            }
        }
    }

    /// The leader proposes deletion of empty containers and expired TTL
    /// nodes (ZooKeeper's ContainerManager).
    fn reap(&mut self) {
        if !self.is_leader() {
            return;
        }
        let candidates = self.hub.state().tree.reap_candidates(wall_ms());
        for path in candidates {
            if self.reaping.insert(path.clone())
                && !self.propose(
                    0,
                    0,
                    AuthInfo::default(),
                    TxnKind::Reap { path: path.clone() },
                    None,
                )
            {
                self.reaping.remove(&path);
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), ConsensusError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // raft-rs's order: messages of this Ready may go out before the
        // persist (a leader's appends); a snapshot is installed first;
        // `persisted_messages` (votes, append responses) only after the
        // fsync, so nothing is promised that is not on disk.
        if !ready.messages().is_empty() {
            let msgs = ready.take_messages();
            self.send_messages(msgs);
        }
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.install_snapshot(&snap)?;
        }
        let committed = ready.take_committed_entries();
        self.apply_entries(committed)?;
        if !ready.entries().is_empty() {
            self.wal.append(ready.entries())?;
            self.raw.store().mem.wl().append(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            self.wal.set_hard_state(hs)?;
            self.raw.store().mem.wl().set_hardstate(hs.clone());
        }
        if ready.must_sync() && self.cfg.fsync {
            let batch = ready.entries().len();
            let t = Instant::now();
            tokio::task::block_in_place(|| self.wal.sync())?;
            self.metrics.observe_fsync(t.elapsed().as_secs_f64(), batch);
        }
        let persisted = ready.take_persisted_messages();
        self.send_messages(persisted);
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.store().mem.wl().mut_hard_state().set_commit(commit);
            // Recorded without an fsync of its own: the commit index is an
            // optimisation for restart (raft re-learns it), never a promise.
            let hs = self.raw.store().mem.rl().hard_state().clone();
            self.wal.set_hard_state(&hs)?;
        }
        let msgs = light.take_messages();
        self.send_messages(msgs);
        let committed = light.take_committed_entries();
        self.apply_entries(committed)?;
        self.raw.advance_apply();
        self.trim_memory_log();
        self.maybe_snapshot()?;
        self.on_role_change();
        self.drop_clients_without_leader();
        self.publish();
        Ok(())
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), ConsensusError> {
        for entry in entries {
            self.applied_index = entry.index;
            self.applied_term = entry.term;
            match entry.get_entry_type() {
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(entry.get_data())
                        .map_err(|e| corrupt_entry(&self.cfg, &entry, e))?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.raw.store().mem.wl().set_conf_state(cs);
                    continue;
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(entry.get_data())
                        .map_err(|e| corrupt_entry(&self.cfg, &entry, e))?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.raw.store().mem.wl().set_conf_state(cs);
                    if !cc.context.is_empty() {
                        let change = MembershipChange::decode(&cc.context)
                            .map_err(|e| corrupt_entry(&self.cfg, &entry, e))?;
                        let members = {
                            let mut state = self.hub.state();
                            change.apply(&mut state.members);
                            let zxid = zxid_of(entry.term, entry.index);
                            let notifications = state.refresh_config(zxid);
                            // Under the lock, as for a write: a getConfig
                            // watcher hears of the new configuration.
                            let events = self.hub.deliver_events(&Applied {
                                zxid,
                                session_id: 0,
                                err: ErrorCode::Ok,
                                body: ResponseBody::Empty,
                                notifications,
                                ended_session: None,
                            });
                            self.metrics.watch_events_sent(events);
                            state.members.values().cloned().collect::<Vec<_>>()
                        };
                        self.joined |= members.iter().any(|m| m.id == self.cfg.id);
                        info!(?change, index = entry.index, "membership changed");
                        self.sync_peers();
                        if self.pending_conf.as_ref().is_some_and(|(i, _)| *i == entry.index) {
                            let (_, reply) = self.pending_conf.take().expect("checked");
                            let _ = reply.send(Ok(members));
                        }
                    }
                    continue;
                }
                // A new leader's empty entry.
                EntryType::EntryNormal if entry.get_data().is_empty() => continue,
                EntryType::EntryNormal => {}
            }
            let txn = Txn::decode(entry.get_data()).map_err(|e| StorageError::Corruption {
                file: self.cfg.data_dir.join("wal"),
                offset: entry.index,
                detail: format!("committed entry {} does not decode: {e}", entry.index),
            })?;
            let zxid = zxid_of(entry.term, entry.index);
            let now = monotonic_ms(self.hub.started);
            let waiting = if txn.origin == self.cfg.id {
                self.pending.remove(&txn.proposal)
            } else {
                None
            };
            let applied = {
                let mut state = self.hub.state();
                let applied = state.apply(zxid, &txn, now);
                // Under the lock, in this order: the entry's watch events,
                // its reply, then the close of a session it ended.
                let events = self.hub.deliver_events(&applied);
                if let Some(sink) = waiting.as_ref().and_then(|w| w.sink.as_ref()) {
                    let mut frame = Vec::new();
                    proto::frame::write_frame(
                        &mut frame,
                        &proto::response::encode_reply(sink.xid, zxid, applied.err, &applied.body),
                    );
                    send_frame(&sink.tx, &sink.info, frame);
                }
                self.hub.deliver_close(&applied);
                self.metrics.watch_events_sent(events);
                applied
            };
            if let TxnKind::Reap { path } = &txn.kind {
                self.reaping.remove(path);
            }
            if let Some(w) = waiting {
                let _ = w.done.send(applied);
            }
        }
        Ok(())
    }

    /// A standalone server has no follower to send entries to, so its
    /// in-memory copy of applied entries (otherwise everything since the
    /// last snapshot, up to `snapshot_every` entries: hundreds of MB for a
    /// bulk load) is dropped once applied; the WAL still holds them. Members
    /// keep theirs for followers catching up by log.
    fn trim_memory_log(&mut self) {
        const KEEP_AT_MOST: u64 = 1024;
        if self.transport.is_some() {
            return;
        }
        let Ok(first) = Storage::first_index(&self.raw.store().mem) else {
            return;
        };
        if self.applied_index > first + KEEP_AT_MOST {
            if let Err(e) = self.raw.store().mem.wl().compact(self.applied_index) {
                warn!(error = %e, "could not compact the in-memory log");
            }
        }
    }

    /// Takes a snapshot every `snapshot_every` applied entries, or when
    /// raft asked for a fresher one. The state is encoded here, under the
    /// state lock (a consistent cut at `applied_index`); writing and
    /// fsyncing the file, which takes far longer on a big tree, runs on a
    /// blocking thread so writes keep flowing meanwhile. Once it is durable
    /// (`finish_snapshot`) the log is compacted and raft may send it.
    fn maybe_snapshot(&mut self) -> Result<(), ConsensusError> {
        if let Some(job) = self.snapshot_job.as_mut() {
            match job.done.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => return Ok(()),
                Ok((result, data)) => {
                    let job = self.snapshot_job.take().expect("checked");
                    result?;
                    self.finish_snapshot(job, data)?;
                }
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.snapshot_job = None;
                    return Err(StorageError::Io {
                        context: "writing a snapshot",
                        path: self.cfg.data_dir.join("snapshots"),
                        source: std::io::Error::other("the snapshot writer thread panicked"),
                    }
                    .into());
                }
            }
        }
        let wanted = self.raw.store().take_wanted() && self.applied_index > self.snapshot_index;
        if !wanted && self.applied_index < self.snapshot_index + self.cfg.snapshot_every {
            return Ok(());
        }
        let started = Instant::now();
        let data = self.hub.state().encode_snapshot();
        let conf_state = self.raw.store().initial_state()?.conf_state;
        let mut meta = raft::eraftpb::SnapshotMetadata {
            index: self.applied_index,
            term: self.applied_term,
            ..Default::default()
        };
        meta.set_conf_state(conf_state);
        // Not taken again until this one is done.
        self.snapshot_index = self.applied_index;
        let (tx, done) = oneshot::channel();
        let store = self.snapshots.clone();
        let m = meta.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.save(&m, &data);
            let _ = tx.send((result, data));
        });
        self.snapshot_job = Some(SnapshotJob { meta, started, done });
        Ok(())
    }

    /// A snapshot is durable: hand it to raft, compact the in-memory log
    /// and the WAL up to it, purge old snapshot files.
    fn finish_snapshot(&mut self, job: SnapshotJob, data: Vec<u8>) -> Result<(), ConsensusError> {
        let index = job.meta.index;
        // A snapshot installed from the leader meanwhile is newer.
        if self.raw.store().latest_index() > index {
            return Ok(());
        }
        let bytes = data.len();
        let mut full = Snapshot::default();
        full.set_metadata(job.meta);
        full.data = data.into();
        self.raw.store().set_latest(full);
        // Keep the in-memory log from growing without bound; the WAL drops
        // whole segments covered by the snapshot.
        if let Err(e) = self.raw.store().mem.wl().compact(index) {
            warn!(error = %e, "could not compact the in-memory log");
        }
        tokio::task::block_in_place(|| self.wal.compact(index))?;
        // Recovery never falls back to an older snapshot once the log is
        // compacted past it; keep only `snapshots_to_keep` of them. Failing
        // to delete one endangers nothing, so it is not fatal.
        match tokio::task::block_in_place(|| self.snapshots.purge()) {
            Ok(0) => {}
            Ok(removed) => debug!(removed, "purged old snapshots"),
            Err(e) => warn!(error = %e, "could not purge old snapshots"),
        }
        self.metrics.snapshot_taken();
        info!(
            index,
            bytes,
            ms = job.started.elapsed().as_millis() as u64,
            "snapshot taken"
        );
        Ok(())
    }

    /// Publishes raft figures for status reports.
    fn publish(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let v = &self.hub.raft;
        v.term.store(self.raw.raft.term, Relaxed);
        v.commit.store(self.raw.raft.raft_log.committed, Relaxed);
        v.applied.store(self.applied_index, Relaxed);
        v.leader_id.store(self.raw.raft.leader_id, Relaxed);
        v.is_leader.store(self.is_leader(), Relaxed);
        v.joined.store(self.joined, Relaxed);
    }
}
