//! The session: one task owns the connection and all session state; the
//! [`Handle`] (held by every `Client` clone) talks to it over a channel.
//!
//! - [`state`]: the pure part: xids, the FIFO of sent requests, zxids,
//!   deadlines. No I/O, no clock of its own.
//! - [`conn`]: one TCP connection: framing and the connect handshake.
//! - [`task`]: the loop: pick a server, connect, re-authenticate,
//!   re-register watches, pipeline requests, ping, detect loss, move home.

pub(crate) mod conn;
pub(crate) mod state;
pub(crate) mod task;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use proto::opcode::OpCode;
use proto::request::RequestBody;
use proto::response::ResponseBody;
use tokio::sync::{mpsc, oneshot, watch};

use crate::chroot::Chroot;
use crate::client::SessionState;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::watcher::PendingWatch;

/// A request from a `Client` to the session task.
#[derive(Debug)]
pub(crate) struct Call {
    pub op: OpCode,
    pub body: RequestBody,
    /// The watch to register (server path) when the reply arrives.
    pub watch: Option<(String, PendingWatch)>,
    pub reply: oneshot::Sender<Result<ResponseBody, Error>>,
}

#[derive(Debug)]
pub(crate) enum Command {
    Call(Call),
    Close(oneshot::Sender<Result<(), Error>>),
}

/// Values the task publishes for `Client` getters.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub session_id: AtomicI64,
    pub last_zxid: AtomicI64,
    pub passwd: std::sync::Mutex<Vec<u8>>,
    pub connects: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub connection_losses: AtomicU64,
    pub moves_home: AtomicU64,
    pub requests: AtomicU64,
}

impl Shared {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `Client`'s side of the session task.
#[derive(Debug)]
pub(crate) struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    pub state: watch::Receiver<SessionState>,
    pub own_zone: Option<String>,
    shared: Arc<Shared>,
}

impl Handle {
    pub fn session_id(&self) -> i64 {
        self.shared.session_id.load(Ordering::Relaxed)
    }

    pub fn session_password(&self) -> Vec<u8> {
        self.shared
            .passwd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stats(&self) -> crate::client::ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::client::ClientStats {
            connects: get(&self.shared.connects),
            failed_attempts: get(&self.shared.failed_attempts),
            connection_losses: get(&self.shared.connection_losses),
            moves_home: get(&self.shared.moves_home),
            requests: get(&self.shared.requests),
        }
    }

    pub fn last_zxid(&self) -> i64 {
        self.shared.last_zxid.load(Ordering::Relaxed)
    }

    pub async fn call(
        &self,
        op: OpCode,
        body: RequestBody,
        watch: Option<(String, PendingWatch)>,
    ) -> Result<ResponseBody, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Call(Call {
                op,
                body,
                watch,
                reply,
            }))
            .map_err(|_| self.end_error())?;
        rx.await.unwrap_or_else(|_| Err(self.end_error()))
    }

    pub async fn close(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// The error for a request that can no longer be served.
    fn end_error(&self) -> Error {
        match &*self.state.borrow() {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        }
    }
}

/// Starts the session task and waits for the first session.
pub(crate) async fn start(config: ClientConfig, chroot: Chroot) -> Result<Handle, Error> {
    task::start(config, chroot).await
}
