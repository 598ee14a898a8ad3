//! The session task: the one owner of the connection and the session.
//!
//! ```text
//! start ─► establish ──(handshake ok)──► serve ──(loss)──────────► establish
//!              │                           │──(own zone healthy)─► drain ─► establish(home first)
//!              └─(expired/auth/closed)─────┴──────────────────────► finish
//! ```
//!
//! - **establish**: tries servers in [`HostSelector::round`] order (own zone
//!   first), presenting the session id, password and last zxid seen. A
//!   server that closes the connection instead of answering (not serving,
//!   or behind our last zxid) is skipped. A zero timeout in the answer
//!   means the session expired. Calls arriving meanwhile are queued.
//! - **serve**: re-sends the authentications, re-registers the watches
//!   (setWatches2, relative to the last zxid seen), then pipelines calls,
//!   matches replies in FIFO order, routes notifications, pings every third
//!   of the session timeout, and declares the connection lost when nothing
//!   arrived for two thirds of it or a sent request waited longer than the
//!   request timeout. Outside the own zone it probes own-zone servers every
//!   `return_home_interval`; when one is healthy and caught up it stops
//!   sending, waits for in-flight replies, and reconnects there.
//! - **finish**: fails whatever is left with the terminal error and
//!   publishes the terminal state.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::jute::{Reader, Record};
use proto::opcode::{xid, OpCode};
use proto::records::{AuthPacket, ConnectRequest, ConnectResponse, RemoveWatchesRequest, WatcherEvent};
use proto::request::RequestBody;
use proto::response::{decode_reply_header, ResponseBody};
use proto::watch::{EventType, WatcherType};
use proto::ErrorCode;
use rand::seq::SliceRandom;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::conn::{Conn, ConnError};
use super::state::{encode, Matched, Queued, Sent, Session};
use super::{Call, Command, Handle, Shared};
use crate::chroot::Chroot;
use crate::client::SessionState;
use crate::config::ClientConfig;
use crate::connect_string::ServerAddr;
use crate::error::Error;
use crate::host_selection::{measure_own_zone, probe, HostSelector};
use crate::watcher::{PendingWatch, WatchKind, WatchRegistry};

/// How often deadlines (pings, read timeout, request timeouts) are checked.
const TICK: Duration = Duration::from_millis(50);

/// Why the session task stops.
#[derive(Debug)]
enum End {
    Expired,
    AuthFailed,
    Closed,
    /// No session could be created at start.
    NeverConnected(Error),
}

/// What `serve` wants next.
enum Next {
    Reconnect,
    MoveTo(ServerAddr),
    End(End),
}

struct Closing {
    reply: Vec<oneshot::Sender<Result<(), Error>>>,
    since: Instant,
}

struct Task {
    config: ClientConfig,
    selector: HostSelector,
    session: Session,
    watches: WatchRegistry,
    chroot: Chroot,
    state: watch::Sender<SessionState>,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Command>,
    /// Every handle is gone: the session is closed.
    rx_closed: bool,
    /// Answered once, when the first session exists (or cannot be made).
    ready: Option<oneshot::Sender<Result<(), Error>>>,
    closing: Option<Closing>,
    /// The server to try first at the next establish (a move home).
    target: Option<ServerAddr>,
}

pub(crate) async fn start(config: ClientConfig, chroot: Chroot) -> Result<Handle, Error> {
    let own_zone = match &config.zone {
        Some(z) => Some(z.clone()),
        None => measure_own_zone(&config.servers.servers, config.connect_timeout).await,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
    let shared = Arc::new(Shared::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = Task {
        selector: HostSelector::new(config.servers.servers.clone(), own_zone.clone()),
        session: Session::new(config.session_timeout),
        watches: WatchRegistry::default(),
        chroot,
        state: state_tx,
        shared: shared.clone(),
        rx,
        rx_closed: false,
        ready: Some(ready_tx),
        closing: None,
        target: None,
        config,
    };
    tokio::spawn(task.run());
    ready_rx.await.unwrap_or(Err(Error::Closed))?;
    Ok(Handle {
        tx,
        state: state_rx,
        own_zone,
        shared,
    })
}

impl Task {
    async fn run(mut self) {
        let end = loop {
            let (conn, server) = match self.establish().await {
                Ok(c) => c,
                Err(end) => break end,
            };
            match self.serve(conn, &server).await {
                Next::Reconnect => {
                    self.session.fail_sent(&Error::ConnectionLoss);
                    self.set_state(SessionState::Disconnected);
                }
                Next::MoveTo(home) => {
                    info!(session = %hex(self.session.session_id), from = %server, to = %home,
                        "moving the session back to the own zone");
                    self.target = Some(home);
                    self.set_state(SessionState::Disconnected);
                }
                Next::End(end) => break end,
            }
        };
        self.finish(end);
    }

    fn set_state(&self, s: SessionState) {
        self.state.send_replace(s);
    }

    fn finish(mut self, end: End) {
        let (state, err) = match end {
            End::Expired => (SessionState::Expired, Error::SessionExpired),
            End::AuthFailed => (SessionState::AuthFailed, Error::AuthFailed),
            End::Closed => (SessionState::Closed, Error::Closed),
            End::NeverConnected(e) => (SessionState::Closed, e),
        };
        match &state {
            SessionState::Expired => warn!(session = %hex(self.session.session_id), "session expired"),
            SessionState::AuthFailed => {
                warn!(session = %hex(self.session.session_id), "authentication failed")
            }
            _ => info!(session = %hex(self.session.session_id), "session closed"),
        }
        self.set_state(state);
        if let Some(r) = self.ready.take() {
            let _ = r.send(Err(err.clone()));
        }
        self.session.fail_all(&err);
        self.watches.fail_all(err.clone());
        if let Some(c) = self.closing.take() {
            for r in c.reply {
                let _ = r.send(Ok(()));
            }
        }
        // Calls that raced with the end.
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Call(c) => {
                    let _ = c.reply.send(Err(err.clone()));
                }
                Command::Close(r) => {
                    let _ = r.send(Ok(()));
                }
            }
        }
    }

    /// Handles a command while not connected. `Some(end)` stops the task.
    fn on_command_offline(&mut self, cmd: Option<Command>) -> Option<End> {
        match cmd {
            Some(Command::Call(call)) => self.enqueue(call),
            Some(Command::Close(reply)) => {
                if self.session.session_id == 0 {
                    let _ = reply.send(Ok(()));
                    return Some(End::Closed);
                }
                self.start_closing(Some(reply));
            }
            None => {
                self.rx_closed = true;
                if self.session.session_id == 0 {
                    return Some(End::Closed);
                }
                self.start_closing(None);
            }
        }
        None
    }

    fn enqueue(&mut self, call: Call) {
        if self.closing.is_some() {
            let _ = call.reply.send(Err(Error::Closed));
        } else {
            self.session.queued.push_back(Queued {
                call,
                since: Instant::now(),
            });
        }
    }

    /// Returns true if closing just started (a closeSession must be sent).
    fn start_closing(&mut self, reply: Option<oneshot::Sender<Result<(), Error>>>) -> bool {
        let started = self.closing.is_none();
        let c = self.closing.get_or_insert_with(|| Closing {
            reply: Vec::new(),
            since: Instant::now(),
        });
        c.reply.extend(reply);
        if started {
            self.session.fail_all_queued(&Error::Closed);
        }
        started
    }

    /// Deadlines while not connected.
    fn tick_offline(&mut self, started: Instant) -> Option<End> {
        let now = Instant::now();
        let timeout = self.config.request_timeout;
        self.session.expire_queued(now, timeout);
        if self.ready.is_some() && now.duration_since(started) >= timeout {
            warn!(servers = %self.config.servers, "no server accepted a session within the request timeout");
            return Some(End::NeverConnected(Error::Timeout));
        }
        if let Some(c) = &self.closing {
            if now.duration_since(c.since) >= timeout {
                warn!("closing: no server reachable to close the session on; it will expire");
                return Some(End::Closed);
            }
        }
        None
    }

    async fn establish(&mut self) -> Result<(Conn, ServerAddr), End> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut order = self.selector.round(&mut rand::thread_rng());
            if let Some(t) = self.target.take() {
                order.retain(|s| s != &t);
                order.insert(0, t);
            }
            for server in order {
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.session.last_zxid,
                    timeout: self.config.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    session_id: self.session.session_id,
                    passwd: self.session.passwd.clone(),
                    read_only: Some(false),
                };
                let attempt = Conn::open(&server, &req, self.config.connect_timeout);
                tokio::pin!(attempt);
                let result = loop {
                    tokio::select! {
                        r = &mut attempt => break r,
                        cmd = self.rx.recv(), if !self.rx_closed => {
                            if let Some(end) = self.on_command_offline(cmd) {
                                return Err(end);
                            }
                        }
                        _ = tokio::time::sleep(TICK) => {
                            if let Some(end) = self.tick_offline(started) {
                                return Err(end);
                            }
                        }
                    }
                };
                match result {
                    Ok((conn, resp)) => match self.accept(&server, resp) {
                        Ok(true) => return Ok((conn, server.clone())),
                        Ok(false) => {}
                        Err(end) => return Err(end),
                    },
                    Err(e) => {
                        debug!(server = %server, error = %e, "connection attempt failed; trying the next server")
                    }
                }
            }
            let pause = tokio::time::sleep(backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    cmd = self.rx.recv(), if !self.rx_closed => {
                        if let Some(end) = self.on_command_offline(cmd) {
                            return Err(end);
                        }
                    }
                    _ = tokio::time::sleep(TICK) => {
                        if let Some(end) = self.tick_offline(started) {
                            return Err(end);
                        }
                    }
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Takes the server's answer to the handshake: `Ok(true)` connected,
    /// `Ok(false)` try another server, `Err` the session is over.
    fn accept(&mut self, server: &ServerAddr, resp: ConnectResponse) -> Result<bool, End> {
        if resp.timeout <= 0 {
            if self.session.session_id != 0 {
                return Err(End::Expired);
            }
            debug!(server = %server, "server answered a new session with a zero timeout; trying another");
            return Ok(false);
        }
        if self.session.session_id != 0 && resp.session_id != self.session.session_id {
            warn!(server = %server, "server answered with another session id; treating the session as expired");
            return Err(End::Expired);
        }
        let resumed = self.session.session_id != 0;
        self.session.session_id = resp.session_id;
        *self.shared.passwd.lock().unwrap_or_else(|p| p.into_inner()) = resp.passwd.clone();
        self.session.passwd = resp.passwd;
        self.session.timeout = Duration::from_millis(resp.timeout as u64);
        self.shared.session_id.store(resp.session_id, Ordering::Relaxed);
        info!(session = %hex(resp.session_id), server = %server, timeout_ms = resp.timeout,
            home = self.selector.is_home(server), resumed, "connected");
        self.set_state(SessionState::Connected {
            server: server.clone(),
        });
        if let Some(r) = self.ready.take() {
            let _ = r.send(Ok(()));
        }
        Ok(true)
    }

    async fn serve(&mut self, mut conn: Conn, server: &ServerAddr) -> Next {
        match self.resume(&mut conn).await {
            Ok(()) => {}
            Err(e) => {
                warn!(server = %server, error = %e, "connection lost while resuming the session");
                return Next::Reconnect;
            }
        }
        let timeout = self.session.timeout;
        let ping_every = timeout / 3;
        let read_timeout = timeout * 2 / 3;
        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        let away = !self.selector.is_home(server) && !self.selector.home_servers().is_empty();
        let mut next_probe = Instant::now() + self.config.return_home_interval;
        let mut probing: Option<JoinHandle<Option<ServerAddr>>> = None;
        let mut draining: Option<ServerAddr> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let next = loop {
            tokio::select! {
                r = conn.read_packet() => {
                    last_recv = Instant::now();
                    let packet = match r {
                        Ok(p) => p,
                        Err(e) => {
                            warn!(server = %server, error = %e, "connection lost");
                            break Next::Reconnect;
                        }
                    };
                    match self.on_packet(&packet, &mut conn).await {
                        Ok(None) => {}
                        Ok(Some(end)) => break Next::End(end),
                        Err(e) => {
                            warn!(server = %server, error = %e, "connection dropped");
                            break Next::Reconnect;
                        }
                    }
                }
                cmd = self.rx.recv(), if !self.rx_closed => {
                    let close = match cmd {
                        Some(Command::Call(call)) => {
                            self.enqueue(call);
                            false
                        }
                        Some(Command::Close(reply)) => self.start_closing(Some(reply)),
                        None => {
                            self.rx_closed = true;
                            self.start_closing(None)
                        }
                    };
                    let res = if close {
                        self.send_close(&mut conn).await
                    } else if draining.is_none() {
                        self.flush(&mut conn).await
                    } else {
                        Ok(())
                    };
                    last_send = Instant::now();
                    if let Err(e) = res {
                        warn!(server = %server, error = %e, "connection lost while sending");
                        break Next::Reconnect;
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now.duration_since(last_recv) >= read_timeout {
                        warn!(server = %server, silent_ms = now.duration_since(last_recv).as_millis() as u64,
                            "nothing heard from the server for two thirds of the session timeout; reconnecting");
                        break Next::Reconnect;
                    }
                    if self.session.sent_overdue(now, self.config.request_timeout) {
                        warn!(server = %server, "a request got no reply within the request timeout; reconnecting");
                        break Next::Reconnect;
                    }
                    if let Some(c) = &self.closing {
                        if now.duration_since(c.since) >= self.config.request_timeout {
                            warn!("the server did not confirm closeSession in time; the session will expire");
                            break Next::End(End::Closed);
                        }
                    }
                    self.session.expire_queued(now, self.config.request_timeout);
                    if now.duration_since(last_send) >= ping_every {
                        last_send = now;
                        if let Err(e) = conn.send(&encode(xid::PING, OpCode::Ping, &RequestBody::Ping)).await {
                            warn!(server = %server, error = %e, "connection lost while pinging");
                            break Next::Reconnect;
                        }
                    }
                    if away && probing.is_none() && draining.is_none() && self.closing.is_none() && now >= next_probe {
                        probing = Some(self.spawn_home_probe());
                    }
                }
                found = async { probing.as_mut().expect("guarded").await }, if probing.is_some() => {
                    probing = None;
                    next_probe = Instant::now() + self.config.return_home_interval;
                    if let Ok(Some(home)) = found {
                        if self.closing.is_none() {
                            info!(server = %server, home = %home, in_flight = self.session.sent.len(),
                                "an own-zone server is healthy; draining in-flight requests to move back");
                            draining = Some(home);
                        }
                    }
                }
            }
            if let Some(home) = &draining {
                if self.session.sent.is_empty() {
                    break Next::MoveTo(home.clone());
                }
            }
        };
        if let Some(p) = probing {
            p.abort();
        }
        next
    }

    /// Probes the own-zone servers (random order); the first healthy one
    /// that has caught up with our last zxid.
    fn spawn_home_probe(&self) -> JoinHandle<Option<ServerAddr>> {
        let mut homes = self.selector.home_servers();
        homes.shuffle(&mut rand::thread_rng());
        let last_zxid = self.session.last_zxid;
        let timeout = self.config.connect_timeout;
        tokio::spawn(async move {
            for h in homes {
                match probe(&h, timeout).await {
                    Some(p) if p.zxid >= last_zxid => return Some(h),
                    Some(p) => {
                        debug!(server = %h, zxid = p.zxid, last_zxid, "own-zone server behind; not moving yet")
                    }
                    None => debug!(server = %h, "own-zone server not healthy yet"),
                }
            }
            None
        })
    }

    /// After the handshake: authentications, watches, then queued calls (or
    /// the closeSession of a close that waited for a connection).
    async fn resume(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        for (scheme, auth) in &self.config.auth {
            let body = RequestBody::Auth(AuthPacket {
                type_: 0,
                scheme: scheme.clone(),
                auth: auth.clone(),
            });
            conn.send(&encode(xid::AUTH, OpCode::Auth, &body)).await?;
        }
        if let Some(w) = self.watches.set_watches(self.session.last_zxid) {
            debug!(
                watches = self.watches.len(),
                relative_zxid = self.session.last_zxid,
                "re-registering watches"
            );
            conn.send(&encode(
                xid::SET_WATCHES,
                OpCode::SetWatches2,
                &RequestBody::SetWatches(w),
            ))
            .await?;
        }
        if self.closing.is_some() {
            return self.send_close(conn).await;
        }
        self.flush(conn).await
    }

    async fn flush(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        let now = Instant::now();
        while let Some(packet) = self.session.send_next(now) {
            conn.send(&packet).await?;
        }
        Ok(())
    }

    async fn send_close(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        info!(session = %hex(self.session.session_id), "closing the session");
        let (reply, _) = oneshot::channel();
        self.send_internal(conn, OpCode::CloseSession, RequestBody::CloseSession, reply)
            .await
    }

    /// Sends a request whose reply nobody awaits (closeSession,
    /// removeWatches).
    async fn send_internal(
        &mut self,
        conn: &mut Conn,
        op: OpCode,
        body: RequestBody,
        reply: oneshot::Sender<Result<ResponseBody, Error>>,
    ) -> Result<(), ConnError> {
        let xid = self.session.next_xid();
        let packet = encode(xid, op, &body);
        self.session.sent.push_back(Sent {
            xid,
            call: Call {
                op,
                body,
                watch: None,
                reply,
            },
            since: Instant::now(),
        });
        conn.send(&packet).await?;
        Ok(())
    }

    /// One packet from the server. `Ok(Some(end))` ends the session;
    /// `Err` drops the connection.
    async fn on_packet(&mut self, packet: &[u8], conn: &mut Conn) -> Result<Option<End>, ConnError> {
        let (h, body) =
            decode_reply_header(packet).map_err(|e| ConnError::Bad(format!("reply header: {e}")))?;
        match h.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut Reader::new(body))
                    .map_err(|e| ConnError::Bad(format!("notification: {e}")))?;
                let Some(event_type) = event_type(ev.type_) else {
                    debug!(type_ = ev.type_, "ignoring an unknown event type");
                    return Ok(None);
                };
                if event_type == EventType::None {
                    return Ok(None);
                }
                let gone = self.watches.dispatch(event_type, &ev.path, h.zxid, &self.chroot);
                for (recursive, path) in gone {
                    let type_ = if recursive {
                        WatcherType::PersistentRecursive
                    } else {
                        WatcherType::Persistent
                    } as i32;
                    let (reply, _) = oneshot::channel();
                    let body = RequestBody::RemoveWatches(RemoveWatchesRequest { path, type_ });
                    self.send_internal(conn, OpCode::RemoveWatches, body, reply)
                        .await?;
                }
                Ok(None)
            }
            xid::PING => Ok(None),
            xid::AUTH => {
                if h.err != 0 {
                    return Ok(Some(End::AuthFailed));
                }
                Ok(None)
            }
            xid::SET_WATCHES => {
                if h.err != 0 {
                    warn!(err = h.err, "the server refused to re-register watches");
                }
                Ok(None)
            }
            x => {
                let sent = match self.session.take_reply(x) {
                    Matched::Found(s) => s,
                    Matched::OutOfOrder { expected, got } => {
                        return Err(ConnError::Bad(format!(
                            "reply xid {got} out of order (expected {expected:?})"
                        )))
                    }
                };
                self.session.saw_zxid(h.zxid);
                self.shared
                    .last_zxid
                    .store(self.session.last_zxid, Ordering::Relaxed);
                if sent.call.op == OpCode::CloseSession {
                    if h.err != 0 {
                        warn!(
                            err = h.err,
                            "the server refused closeSession; the session will expire instead"
                        );
                    }
                    return Ok(Some(End::Closed));
                }
                self.complete(sent.call, h.err, body);
                Ok(None)
            }
        }
    }

    /// Answers a call and registers its watch.
    fn complete(&mut self, call: Call, err: i32, body: &[u8]) {
        let result = if err == 0 {
            ResponseBody::decode(call.op, body)
                .map_err(|e| Error::Protocol(format!("reply to {:?}: {e}", call.op)))
        } else {
            match ErrorCode::from_code(err) {
                Some(c) => Err(Error::from(c)),
                None => Err(Error::Protocol(format!("unknown error code {err}"))),
            }
        };
        if let Some((path, w)) = call.watch {
            let no_node = result == Err(Error::Server(ErrorCode::NoNode))
                && matches!(w, PendingWatch::Oneshot(WatchKind::Exist, _));
            self.watches.register(&path, w, result.is_ok(), no_node);
        }
        let _ = call.reply.send(result);
    }
}

fn event_type(code: i32) -> Option<EventType> {
    Some(match code {
        -1 => EventType::None,
        1 => EventType::NodeCreated,
        2 => EventType::NodeDeleted,
        3 => EventType::NodeDataChanged,
        4 => EventType::NodeChildrenChanged,
        5 => EventType::DataWatchRemoved,
        6 => EventType::ChildWatchRemoved,
        7 => EventType::PersistentWatchRemoved,
        _ => return None,
    })
}

fn hex(id: i64) -> String {
    format!("{id:#x}")
}
