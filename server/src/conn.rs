//! One client connection: the handshake (or a four-letter word), then the
//! request loop. A reader (this task) decodes frames and keeps the
//! session's requests in order; a writer task owns the socket's write half
//! and drains one FIFO channel that carries both replies and the watch
//! events the apply loop queues (see `hub` for why that keeps events ahead
//! of later replies).
//!
//! Ordering (docs/ordering.md): a session's writes are proposed as soon as
//! they are decoded, so they pipeline into the log in order — unless a read
//! of the session is still waiting, in which case later writes are held
//! until it has run (ZooKeeper's CommitProcessor does the same), so the read
//! sees exactly the writes sent before it. A read or session-local request
//! runs only when every earlier request of the session has been answered.
//!
//! A malformed or oversized frame closes this connection only.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use proto::frame;
use proto::jute::Record;
use proto::opcode::{xid, OpCode};
use proto::records::{ConnectRequest, ConnectResponse, CreateMode, RequestHeader};
use proto::request::{MultiOp, Request, RequestBody};
use proto::response::{encode_reply, ResponseBody};
use proto::ErrorCode;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::acl::AuthInfo;
use crate::consensus::{monotonic_ms, Proposer, ReplySink};
use crate::fourletter::{self, ConfSummary, Whitelist};
use crate::hub::{send_frame, ConnHandle, ConnInfo, Hub, Outbound, OUTBOUND_SOFT_LIMIT};
use crate::metrics::{Metrics, RejectReason};
use crate::ops::{self, Kind, ReadCtx};
use crate::state::Applied;
use crate::status::StatusSource;
use crate::txn::TxnKind;

/// Requests a connection may have in flight before we stop reading from
/// it (back-pressure instead of unbounded queues).
const MAX_OUTSTANDING: usize = 1000;

/// Settings a connection needs. `Debug` leaves out the super digest.
#[derive(Clone)]
pub struct ConnConfig {
    pub max_packet: usize,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub max_connections_per_ip: u32,
    pub super_digest: Option<String>,
    pub extended_types_enabled: bool,
    /// Serve `reconfig` (else RECONFIGDISABLED).
    pub reconfig_enabled: bool,
    pub four_letter_words: Whitelist,
    pub conf_summary: ConfSummary,
}

impl std::fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnConfig")
            .field("max_packet", &self.max_packet)
            .field("min_session_timeout_ms", &self.min_session_timeout_ms)
            .field("max_session_timeout_ms", &self.max_session_timeout_ms)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("super_digest", &self.super_digest.as_ref().map(|_| "<redacted>"))
            .field("extended_types_enabled", &self.extended_types_enabled)
            .field("four_letter_words", &self.four_letter_words)
            .field("conf_summary", &self.conf_summary)
            .finish()
    }
}

/// What every connection shares.
pub struct ConnCtx {
    pub hub: Arc<Hub>,
    pub proposer: Proposer,
    pub cfg: ConnConfig,
    pub metrics: Arc<Metrics>,
    pub status: Arc<dyn StatusSource>,
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] frame::FrameError),
    #[error("malformed packet: {0}")]
    Decode(#[from] proto::DecodeError),
    #[error("server is not serving requests (shutting down or no leader)")]
    NotServing,
}

/// Serves one accepted socket until it closes, the session ends or the
/// server shuts down.
pub async fn serve(
    socket: TcpStream,
    remote: SocketAddr,
    ctx: Arc<ConnCtx>,
    shutdown: watch::Receiver<bool>,
) {
    let Some(info) = ctx.hub.admit(remote, ctx.cfg.max_connections_per_ip) else {
        warn!(%remote, limit = ctx.cfg.max_connections_per_ip,
            "too many connections from this address (max_client_connections); closing");
        ctx.metrics.connection_rejected(RejectReason::Limit);
        return;
    };
    ctx.metrics.connection_accepted();
    let _ = socket.set_nodelay(true);
    match run(socket, info.clone(), &ctx, shutdown).await {
        Ok(()) => debug!(%remote, "connection closed"),
        Err(ConnError::Io(e)) => debug!(%remote, error = %e, "connection closed"),
        Err(e) => {
            match &e {
                ConnError::Frame(frame::FrameError::TooLarge { .. }) => {
                    ctx.metrics.connection_rejected(RejectReason::Oversized)
                }
                ConnError::Frame(_) | ConnError::Decode(_) => {
                    ctx.metrics.connection_rejected(RejectReason::BadFrame)
                }
                _ => {}
            }
            info!(%remote, error = %e, "closing connection")
        }
    }
    ctx.hub.release(&info);
}

/// Reads until a whole frame is buffered; `None` at a clean end of stream.
async fn read_frame(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<BytesMut>, ConnError> {
    loop {
        if let Some(len) = frame::check(buf, max)? {
            buf.advance(4);
            return Ok(Some(buf.split_to(len)));
        }
        if rd.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn run(
    socket: TcpStream,
    info: Arc<ConnInfo>,
    ctx: &ConnCtx,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let (mut rd, mut wr) = socket.into_split();
    let mut rbuf = BytesMut::with_capacity(4096);
    // The first four bytes tell a four-letter word from a connect request.
    let handshake_deadline = Duration::from_millis(ctx.cfg.max_session_timeout_ms as u64);
    let first = tokio::time::timeout(handshake_deadline, async {
        while rbuf.len() < 4 {
            if rd.read_buf(&mut rbuf).await? == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
        }
        Ok(true)
    })
    .await;
    match first {
        Ok(Ok(true)) => {}
        _ => return Ok(()),
    }
    let first4 = [rbuf[0], rbuf[1], rbuf[2], rbuf[3]];
    if let Some(word) = fourletter::detect(&first4) {
        let text = fourletter::respond(
            word,
            &ctx.cfg.four_letter_words,
            &*ctx.status,
            &ctx.cfg.conf_summary,
        );
        wr.write_all(text.as_bytes()).await?;
        let _ = wr.shutdown().await;
        return Ok(());
    }
    let Ok(frame) = tokio::time::timeout(
        handshake_deadline,
        read_frame(&mut rd, &mut rbuf, ctx.cfg.max_packet),
    )
    .await
    else {
        return Ok(());
    };
    let Some(payload) = frame? else {
        return Ok(());
    };
    let connect = ConnectRequest::decode(&payload)?;
    info.received.fetch_add(1, Relaxed);

    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(
        wr,
        out_rx,
        info.clone(),
        ctx.hub.clone(),
        ctx.metrics.clone(),
    ));
    let Some((session, owner)) = establish(&connect, &info, ctx, &out_tx).await? else {
        let _ = out_tx.send(Outbound::Close);
        let _ = writer.await;
        return Ok(());
    };
    let mut conn = Connection {
        ctx,
        info: info.clone(),
        session,
        owner,
        auth: AuthInfo::new(Some(info.remote.ip())),
        out: out_tx.clone(),
        queue: VecDeque::new(),
        closing: false,
    };
    let result = conn.request_loop(&mut rd, &mut rbuf, &mut shutdown).await;
    // Writes still in flight or held are no longer outstanding for us.
    let left = conn
        .queue
        .iter()
        .filter(|p| matches!(p.what, PendingKind::Proposed(_) | PendingKind::Held(_)))
        .count();
    ctx.hub.outstanding.fetch_sub(left as u64, Relaxed);
    drop(conn);
    let _ = out_tx.send(Outbound::Close);
    let _ = writer.await;
    result
}

/// Creates or resumes the session named in the connect request and sends
/// the connect response; returns the session and this connection's owner
/// token. `None`: the connection must close (refused, or an unknown/expired
/// session, which gets ZooKeeper's zeroed response).
///
/// Both creating and resuming go through the log (`CreateSession`,
/// `Attach`), recording this connection as the session's owner, and the
/// response is sent only once that entry applied: every write an earlier
/// connection of the session got into the log before it has been applied,
/// and any that reaches the log after it is refused with SESSIONMOVED
/// (docs/ordering.md, "Session order across connections").
async fn establish(
    req: &ConnectRequest,
    info: &Arc<ConnInfo>,
    ctx: &ConnCtx,
    out: &mpsc::UnboundedSender<Outbound>,
) -> Result<Option<(i64, u64)>, ConnError> {
    if ctx.hub.raft.leader_id.load(Relaxed) == 0 {
        // No leader known (an election, or cut off from the majority): not
        // serving, like a ZooKeeper member without a quorum; the client
        // tries another server.
        info!(remote = %info.remote, "refusing a session: no leader is known");
        return Ok(None);
    }
    if !ctx.hub.raft.joined.load(Relaxed) {
        // A member being added, before it has applied the state that added
        // it: its tree is empty or stale (see `RaftView::joined`).
        info!(remote = %info.remote, "refusing a session: this member is still joining the ensemble");
        return Ok(None);
    }
    let last_zxid = ctx.hub.state().last_zxid;
    if req.last_zxid_seen > last_zxid {
        // ZooKeeper: the client has seen a newer state than ours; it must
        // try another server.
        warn!(remote = %info.remote, client_zxid = format!("{:#x}", req.last_zxid_seen),
            our_zxid = format!("{last_zxid:#x}"),
            "refusing session: client has seen a zxid newer than this server's");
        return Ok(None);
    }
    let timeout = crate::session::negotiate_timeout(
        req.timeout,
        ctx.cfg.min_session_timeout_ms,
        ctx.cfg.max_session_timeout_ms,
    );
    // Drawn at random so tokens stay distinct across restarts of this
    // member (a write sent before a crash may still be in the log's future).
    let owner = rand::random::<u64>() | 1;
    // A member that lost its leader fails the proposal (pending cleared);
    // one whose forward is stuck on a cut link gives up with the client.
    let attach_deadline = Duration::from_millis(u64::from(timeout));
    let (session_id, password) = if req.session_id == 0 {
        let mut password = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut password);
        let applied = tokio::time::timeout(
            attach_deadline,
            ctx.proposer.create_session(timeout, password.clone(), owner),
        )
        .await
        .map_err(|_| ConnError::NotServing)?
        .map_err(|_| ConnError::NotServing)?;
        (applied.session_id, password)
    } else {
        let (session_id, password) = (req.session_id, req.passwd.clone());
        let known = {
            let state = ctx.hub.state();
            let known = state.sessions.password_matches(session_id, &password)
                && !state.sessions.is_closing(session_id);
            known.then(|| state.sessions.get(session_id).map_or(0, |s| s.owner))
        };
        let attached = if let Some(expected_owner) = known {
            let err = tokio::time::timeout(
                attach_deadline,
                ctx.proposer
                    .attach(session_id, password.clone(), owner, expected_owner),
            )
            .await
            .map_err(|_| ConnError::NotServing)?
            .map_err(|_| ConnError::NotServing)?
            .err;
            if err == ErrorCode::SessionMoved {
                // Another connection attached the session after we read its
                // owner (or this member had not applied the latest attach
                // yet): not an expiry; close, and the client retries.
                info!(
                    session = format!("{session_id:#x}"),
                    "session attached elsewhere meanwhile; closing"
                );
                return Err(ConnError::NotServing);
            }
            err == ErrorCode::Ok
        } else {
            false
        };
        if !attached {
            info!(
                session = format!("{session_id:#x}"),
                "reconnect to an expired or unknown session"
            );
            send_connect_response(out, info, 0, 0, vec![0; 16], req.read_only);
            return Ok(None);
        }
        (session_id, password)
    };
    // Check the session, push its deadline, bind this connection and queue
    // the connect response under one hold of the state lock: an expiry
    // cannot slip in between (a "resumed" session that no longer exists),
    // and no event can be queued ahead of the response.
    let mut state = ctx.hub.state();
    let now = monotonic_ms(ctx.hub.started);
    let alive = state.sessions.password_matches(session_id, &password)
        && !state.sessions.is_closing(session_id)
        && state.sessions.touch(session_id, now);
    if !alive {
        drop(state);
        info!(
            session = format!("{session_id:#x}"),
            "reconnect to an expired or unknown session"
        );
        send_connect_response(out, info, 0, 0, vec![0; 16], req.read_only);
        return Ok(None);
    }
    ctx.hub.note_touched(session_id);
    info.session_id.store(session_id as u64, Relaxed);
    info.timeout_ms.store(timeout as u64, Relaxed);
    ctx.hub.bind_session(
        &mut state,
        session_id,
        ConnHandle {
            info: info.clone(),
            tx: out.clone(),
        },
    );
    send_connect_response(out, info, timeout, session_id, password, req.read_only);
    drop(state);
    debug!(
        session = format!("{session_id:#x}"),
        owner = format!("{owner:#x}"),
        timeout,
        "session established"
    );
    Ok(Some((session_id, owner)))
}

fn send_connect_response(
    out: &mpsc::UnboundedSender<Outbound>,
    info: &ConnInfo,
    timeout: u32,
    session_id: i64,
    passwd: Vec<u8>,
    read_only: Option<bool>,
) {
    let rsp = ConnectResponse {
        protocol_version: 0,
        timeout: timeout as i32,
        session_id,
        passwd,
        read_only: read_only.map(|_| false),
    };
    let mut f = Vec::new();
    frame::write_frame(&mut f, &rsp.encode());
    send_frame(out, info, f);
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    info: Arc<ConnInfo>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
) {
    let mut buf = Vec::with_capacity(4096);
    while let Some(first) = rx.recv().await {
        let mut close = false;
        let mut frames = 0u64;
        let mut push = |o: Outbound, close: &mut bool| match o {
            Outbound::Frame(f) => {
                buf.extend_from_slice(&f);
                frames += 1;
            }
            Outbound::Close => *close = true,
        };
        push(first, &mut close);
        while !close {
            match rx.try_recv() {
                Ok(o) => push(o, &mut close),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            if wr.write_all(&buf).await.is_err() {
                break;
            }
            metrics.packets_sent(frames, buf.len());
            info.queued_bytes.fetch_sub(buf.len() as u64, Relaxed);
            info.drained.notify_one();
            buf.clear();
        }
        info.sent.fetch_add(frames, Relaxed);
        hub.packets_sent.fetch_add(frames, Relaxed);
        if close {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// A request waiting for its turn to be answered.
struct Pending {
    xid: i32,
    op: OpCode,
    started: Instant,
    what: PendingKind,
}

enum PendingKind {
    /// A write in the log; answered when it applies.
    Proposed(oneshot::Receiver<Applied>),
    /// A write sent after a read that has not run yet: proposed only once
    /// that read has run, so the read cannot see it.
    Held(TxnKind),
    /// A read or session-local request, run when it reaches the front.
    Deferred(Request),
    /// An answer known at once, held back to keep the session's order.
    Answered(ErrorCode),
    /// A `reconfig`, started when it reaches the front (ops/reconfig.rs).
    ReconfigQueued(proto::records::ReconfigRequest),
    /// A running `reconfig`; `None` if its outcome is unknown.
    Reconfig(oneshot::Receiver<Option<(ErrorCode, ResponseBody)>>),
}

struct Connection<'a> {
    ctx: &'a ConnCtx,
    info: Arc<ConnInfo>,
    session: i64,
    /// This connection's token, recorded in the log as the session's owner
    /// when it attached; its writes carry it (`Txn::owner`).
    owner: u64,
    auth: AuthInfo,
    out: mpsc::UnboundedSender<Outbound>,
    queue: VecDeque<Pending>,
    /// Set after closeSession or a failed auth: answer what is queued, then
    /// close.
    closing: bool,
}

impl Connection<'_> {
    async fn request_loop(
        &mut self,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        rbuf: &mut BytesMut,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ConnError> {
        let max = self.ctx.cfg.max_packet;
        let out = self.out.clone();
        loop {
            // Frames already buffered (several may arrive in one read).
            if self.info.replaced.load(Relaxed) {
                // Another connection owns the session now, or it ended.
                return Ok(());
            }
            while !self.closing
                && self.queue.len() < MAX_OUTSTANDING
                && self.info.queued_bytes.load(Relaxed) <= OUTBOUND_SOFT_LIMIT
            {
                let Some(len) = frame::check(rbuf, max)? else {
                    break;
                };
                rbuf.advance(4);
                let payload = rbuf.split_to(len);
                self.ctx.metrics.packet_received(len + 4);
                match Request::decode(&payload) {
                    Ok(req) => self.on_request(req),
                    Err(e) => self.on_undecodable(&payload, e)?,
                }
                // Answer as we go, so the back-pressure check above sees
                // the replies this batch produced.
                self.run_front();
            }
            self.run_front();
            if self.closing && self.queue.is_empty() {
                return Ok(());
            }
            let front_proposed = matches!(
                self.queue.front(),
                Some(Pending {
                    what: PendingKind::Proposed(_),
                    ..
                })
            );
            let front_reconfig = matches!(
                self.queue.front(),
                Some(Pending {
                    what: PendingKind::Reconfig(_),
                    ..
                })
            );
            // Back-pressure: stop reading while the client has not read
            // what it was sent; the writer wakes us when it drains.
            let backlog = self.info.queued_bytes.load(Relaxed) > OUTBOUND_SOFT_LIMIT;
            tokio::select! {
                n = rd.read_buf(rbuf), if !self.closing && !backlog && self.queue.len() < MAX_OUTSTANDING => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                done = wait_front(&mut self.queue), if front_proposed || front_reconfig => {
                    let p = self.queue.pop_front().expect("front exists");
                    let applied = match done {
                        FrontDone::Write(applied) => applied,
                        FrontDone::Reconfig(Ok(Some((err, body)))) => {
                            let zxid = self.ctx.hub.state().last_zxid;
                            self.reply(p.xid, p.op, p.started, zxid, err, &body);
                            continue;
                        }
                        // The change's outcome is unknown to us: the client
                        // learns that as a connection loss.
                        FrontDone::Reconfig(_) => return Err(ConnError::NotServing),
                    };
                    self.ctx.hub.outstanding.fetch_sub(1, Relaxed);
                    match applied {
                        // The apply loop has queued the reply already.
                        Ok(a) => self.record(p.xid, p.op, p.started, a.zxid, a.err),
                        Err(_) => return Err(ConnError::NotServing),
                    }
                    if p.op == OpCode::CloseSession {
                        self.closing = true;
                    }
                }
                _ = self.info.drained.notified(), if backlog => {}
                _ = out.closed() => return Ok(()),
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    fn on_request(&mut self, req: Request) {
        self.info.received.fetch_add(1, Relaxed);
        self.info.last_cxid.store(req.xid as u64, Relaxed);
        self.ctx.hub.packets_received.fetch_add(1, Relaxed);
        let live = {
            let mut state = self.ctx.hub.state();
            let now = monotonic_ms(self.ctx.hub.started);
            state.sessions.touch(self.session, now)
        };
        if live {
            self.ctx.hub.note_touched(self.session);
        } else {
            // Expired (or expiring): ZooKeeper closes the connection and the
            // client learns on reconnect that the session is gone.
            self.closing = true;
            return;
        }
        let started = Instant::now();
        let what = match ops::kind(req.op) {
            _ if self.ctx.cfg.reconfig_enabled && matches!(req.body, RequestBody::Reconfig(_)) => {
                let RequestBody::Reconfig(r) = &req.body else {
                    unreachable!("matched above")
                };
                PendingKind::ReconfigQueued(r.clone())
            }
            Kind::Write => match self.prepare(&req) {
                Err(code) => PendingKind::Answered(code),
                Ok(kind) => {
                    self.ctx.hub.outstanding.fetch_add(1, Relaxed);
                    // Propose at once only behind other proposed writes: then
                    // the apply loop can answer it in order (see
                    // `ReplySink`); anything else ahead must run first.
                    let only_writes_ahead = self
                        .queue
                        .iter()
                        .all(|p| matches!(p.what, PendingKind::Proposed(_)));
                    if only_writes_ahead {
                        self.propose(req.xid, kind)
                    } else {
                        PendingKind::Held(kind)
                    }
                }
            },
            Kind::Read | Kind::Local => match &req.body {
                RequestBody::Multi(ops) if ops.iter().any(|o| !o.is_read()) => {
                    PendingKind::Answered(ErrorCode::MarshallingError)
                }
                _ => PendingKind::Deferred(req.clone()),
            },
        };
        self.queue.push_back(Pending {
            xid: req.xid,
            op: req.op,
            started,
            what,
        });
    }

    /// A packet whose body does not decode. ZooKeeper closes the connection
    /// when even the header is unreadable; answers an unknown opcode with
    /// UNIMPLEMENTED and closes (UnimplementedRequestProcessor); and answers
    /// a known opcode with a malformed body with MARSHALLINGERROR, keeping
    /// the connection.
    fn on_undecodable(&mut self, payload: &[u8], e: proto::DecodeError) -> Result<(), ConnError> {
        let header = RequestHeader::decode(payload.get(..8).unwrap_or(payload))?;
        self.info.received.fetch_add(1, Relaxed);
        let (op, code) = match OpCode::from_code(header.op_type) {
            Err(_) => {
                warn!(remote = %self.info.remote, op = header.op_type, "unknown opcode; closing the connection");
                self.closing = true;
                (OpCode::Error, ErrorCode::Unimplemented)
            }
            Ok(op) => {
                debug!(remote = %self.info.remote, op = op.name(), error = %e, "malformed request body");
                (op, ErrorCode::MarshallingError)
            }
        };
        self.queue.push_back(Pending {
            xid: header.xid,
            op,
            started: Instant::now(),
            what: PendingKind::Answered(code),
        });
        Ok(())
    }

    /// Checks that depend on this server's settings, not on the tree.
    fn prepare(&self, req: &Request) -> Result<TxnKind, ErrorCode> {
        if req.op == OpCode::CloseSession {
            return Ok(TxnKind::CloseSession);
        }
        if let RequestBody::Multi(ops) = &req.body {
            // MultiOperationRecord refuses to mix reads into a multi.
            if ops.iter().any(|o| o.is_read()) {
                return Err(ErrorCode::MarshallingError);
            }
        }
        // ZooKeeper decides by the create mode (the flags), not the opcode
        // (PrepRequestProcessor.validateCreateRequest).
        let ttl_flags = |flags: i32| CreateMode::from_flag(flags).is_some_and(|m| m.ttl);
        let uses_ttl = match &req.body {
            RequestBody::CreateTtl(r) => ttl_flags(r.flags),
            RequestBody::Create(r) => ttl_flags(r.flags),
            RequestBody::Multi(ops) => ops.iter().any(|o| match o {
                MultiOp::CreateTtl(r) => ttl_flags(r.flags),
                MultiOp::Create { req, .. } => ttl_flags(req.flags),
                _ => false,
            }),
            _ => false,
        };
        if uses_ttl && !self.ctx.cfg.extended_types_enabled {
            // ZooKeeper without zookeeper.extendedTypesEnabled.
            return Err(ErrorCode::Unimplemented);
        }
        Ok(TxnKind::Write(req.clone()))
    }

    fn propose(&mut self, xid: i32, kind: TxnKind) -> PendingKind {
        let sink = ReplySink {
            tx: self.out.clone(),
            info: self.info.clone(),
            xid,
        };
        PendingKind::Proposed(self.ctx.proposer.propose(
            self.session,
            self.owner,
            self.auth.clone(),
            kind,
            Some(sink),
        ))
    }

    /// Answers every request at the front that no longer waits on the log,
    /// and proposes held writes whose preceding reads have all run.
    fn run_front(&mut self) {
        while let Some(p) = self.queue.front() {
            if self.closing
                && matches!(
                    p.what,
                    PendingKind::Held(_) | PendingKind::Deferred(_) | PendingKind::ReconfigQueued(_)
                )
            {
                // After a failed auth ZooKeeper closes the connection and
                // runs nothing the client sent after it: drop what has not
                // run (writes behind the auth were held, never proposed).
                let held = self
                    .queue
                    .iter()
                    .filter(|p| matches!(p.what, PendingKind::Held(_)))
                    .count();
                self.queue.retain(|p| matches!(p.what, PendingKind::Proposed(_)));
                self.ctx.hub.outstanding.fetch_sub(held as u64, Relaxed);
                return;
            }
            match p.what {
                PendingKind::Proposed(_) | PendingKind::Reconfig(_) => return,
                PendingKind::ReconfigQueued(_) => {
                    let front = self.queue.front_mut().expect("front exists");
                    let (tx, rx) = oneshot::channel();
                    let PendingKind::ReconfigQueued(req) =
                        std::mem::replace(&mut front.what, PendingKind::Reconfig(rx))
                    else {
                        unreachable!("matched above")
                    };
                    let (proposer, hub, auth) =
                        (self.ctx.proposer.clone(), self.ctx.hub.clone(), self.auth.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(ops::reconfig::run(proposer, hub, auth, req).await);
                    });
                    return;
                }
                PendingKind::Held(_) => {
                    // Every earlier request is answered: propose this write
                    // and the held writes right behind it, up to the next
                    // request this task answers itself.
                    for i in 0..self.queue.len() {
                        match &self.queue[i].what {
                            PendingKind::Held(_) => {
                                let xid = self.queue[i].xid;
                                let PendingKind::Held(kind) = std::mem::replace(
                                    &mut self.queue[i].what,
                                    PendingKind::Answered(ErrorCode::Ok),
                                ) else {
                                    unreachable!("matched above")
                                };
                                self.queue[i].what = self.propose(xid, kind);
                            }
                            PendingKind::Proposed(_) => {}
                            // Answered by this task, so it must go first.
                            PendingKind::Deferred(_)
                            | PendingKind::Answered(_)
                            | PendingKind::ReconfigQueued(_)
                            | PendingKind::Reconfig(_) => break,
                        }
                    }
                    return;
                }
                _ => {}
            }
            let p = self.queue.pop_front().expect("front exists");
            match p.what {
                PendingKind::Answered(code) => {
                    let zxid = self.ctx.hub.state().last_zxid;
                    self.reply(p.xid, p.op, p.started, zxid, code, &ResponseBody::Empty);
                }
                PendingKind::Deferred(req) => self.execute(req, p.started),
                PendingKind::Proposed(_)
                | PendingKind::Held(_)
                | PendingKind::ReconfigQueued(_)
                | PendingKind::Reconfig(_) => unreachable!("handled above"),
            }
        }
    }

    /// Runs a read or session-local request now.
    fn execute(&mut self, req: Request, started: Instant) {
        let super_digest = self.ctx.cfg.super_digest.as_deref();
        let mut state = self.ctx.hub.state();
        let zxid = state.last_zxid;
        let (err, body) = match (&req.body, req.op) {
            (RequestBody::Ping, _) => (ErrorCode::Ok, ResponseBody::Empty),
            (RequestBody::Auth(a), _) => match ops::auth::run(&mut self.auth, a, super_digest) {
                Ok(()) => {
                    *self.info.auth.lock().unwrap_or_else(|p| p.into_inner()) = self.auth.clone();
                    (ErrorCode::Ok, ResponseBody::Empty)
                }
                Err(e) => {
                    // ZooKeeper answers AuthFailed and closes the connection.
                    self.closing = true;
                    (e, ResponseBody::Empty)
                }
            },
            (RequestBody::SetWatches(w), _) => {
                for event in ops::set_watches::run(&mut state, self.session, w) {
                    let mut f = Vec::new();
                    frame::write_frame(&mut f, &proto::response::encode_notification(&event));
                    send_frame(&self.out, &self.info, f);
                }
                (ErrorCode::Ok, ResponseBody::Empty)
            }
            (RequestBody::AddWatch(a), _) => split(ops::add_watch::run(&mut state, self.session, a)),
            (RequestBody::RemoveWatches(r), op) => split(ops::remove_watches::run(
                &mut state,
                self.session,
                r,
                op == OpCode::RemoveWatches,
            )),
            (RequestBody::WhoAmI, _) => (ErrorCode::Ok, ops::who_am_i::run(&self.auth)),
            (RequestBody::Reconfig(_), _) => (ErrorCode::ReconfigDisabled, ResponseBody::Empty),
            (RequestBody::Sasl(_), _) => (ErrorCode::Unimplemented, ResponseBody::Empty),
            _ => {
                let ctx = ReadCtx {
                    session: self.session,
                    auth: &self.auth,
                };
                split(ops::read(&mut state, &ctx, &req))
            }
        };
        // Reply while holding the lock, so no event of a later write can
        // be queued ahead of this answer.
        self.reply(req.xid, req.op, started, zxid, err, &body);
        drop(state);
    }

    fn reply(&self, xid_: i32, op: OpCode, started: Instant, zxid: i64, err: ErrorCode, body: &ResponseBody) {
        let mut f = Vec::new();
        frame::write_frame(&mut f, &encode_reply(xid_, zxid, err, body));
        send_frame(&self.out, &self.info, f);
        self.record(xid_, op, started, zxid, err);
    }

    /// Bookkeeping for an answered request (figures for `cons`, `srvr`
    /// and Prometheus).
    fn record(&self, xid_: i32, op: OpCode, started: Instant, zxid: i64, err: ErrorCode) {
        self.info.last_zxid.store(zxid as u64, Relaxed);
        if xid_ != xid::PING {
            self.ctx.hub.latency.record(started.elapsed().as_millis() as u64);
            self.ctx
                .metrics
                .observe_request(op.name(), err.name(), started.elapsed().as_secs_f64());
        }
    }
}

fn split(r: Result<ResponseBody, ErrorCode>) -> (ErrorCode, ResponseBody) {
    match r {
        Ok(b) => (ErrorCode::Ok, b),
        Err(e) => (e, ResponseBody::Empty),
    }
}

/// What the request at the front was waiting for.
enum FrontDone {
    Write(Result<Applied, oneshot::error::RecvError>),
    Reconfig(Result<Option<(ErrorCode, ResponseBody)>, oneshot::error::RecvError>),
}

async fn wait_front(queue: &mut VecDeque<Pending>) -> FrontDone {
    match queue.front_mut() {
        Some(Pending {
            what: PendingKind::Proposed(rx),
            ..
        }) => FrontDone::Write(rx.await),
        Some(Pending {
            what: PendingKind::Reconfig(rx),
            ..
        }) => FrontDone::Reconfig(rx.await),
        _ => std::future::pending().await,
    }
}
