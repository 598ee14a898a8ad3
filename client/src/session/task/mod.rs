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
//!
//! Files: this one holds the task's state, `run` and `finish`;
//! `establish.rs` the offline phase, `serve.rs` the connected loop and the
//! move home, `packets.rs` what each packet from the server does.

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

mod establish;
mod packets;
mod serve;

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
                    Shared::count(&self.shared.connection_losses);
                    self.session.fail_sent(&Error::ConnectionLoss);
                    self.set_state(SessionState::Disconnected);
                }
                Next::MoveTo(home) => {
                    Shared::count(&self.shared.moves_home);
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
