//! [`Client`]: the handle applications hold. Each method checks its
//! arguments, applies the chroot, hands one request to the session task and
//! turns the reply into a result. All clones share one session.

use std::sync::Arc;

use proto::opcode::OpCode;
use proto::records::*;
use proto::request::{MultiOp, RequestBody};
use proto::response::{MultiResult, ResponseBody};
use proto::watch::AddWatchMode;
use proto::ErrorCode;
use tokio::sync::{mpsc, oneshot, watch};

use crate::chroot::{validate_path, Chroot};
use crate::config::ClientConfig;
use crate::connect_string::ServerAddr;
use crate::error::Error;
use crate::ops::{CreateMode, Op, OpResult};
use crate::session::{self, Handle};
use crate::watcher::{OneshotWatcher, PendingWatch, PersistentWatcher, WatchKind};

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// No session yet, or (after a loss) looking for a server to resume on.
    Connecting,
    /// Connected to `server`; requests flow.
    Connected { server: ServerAddr },
    /// The connection was lost; the session may still be alive and the
    /// client is reconnecting (requests wait until the request timeout).
    Disconnected,
    /// The ensemble expired the session: ephemerals and watches are gone.
    /// Terminal; create a new client.
    Expired,
    /// The server refused the configured authentication. Terminal.
    AuthFailed,
    /// [`Client::close`] was called (or every handle dropped). Terminal.
    Closed,
}

impl SessionState {
    /// True for the states a client never leaves.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
}

/// Counters since the client was created, for the caller's metrics (the
/// sidecar exports them to Prometheus).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Successful handshakes (the first one, reconnects and moves home).
    pub connects: u64,
    /// Connection attempts that failed: unreachable, timed out, or refused
    /// (not serving, or behind the session's last zxid).
    pub failed_attempts: u64,
    /// Established connections that were lost.
    pub connection_losses: u64,
    /// Planned moves back to the own zone.
    pub moves_home: u64,
    /// Requests sent (pings and internal requests excluded).
    pub requests: u64,
}

/// A ZooKeeper client session. Cheap to clone; all clones share the session,
/// and it is closed when [`Client::close`] is called or the last clone is
/// dropped.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: Handle,
    chroot: Chroot,
}

impl Client {
    /// Picks the own zone (explicit or measured), connects to a server of
    /// it if one answers (else of another zone) and creates a session.
    /// Returns once the session exists; fails with `Timeout` if no server
    /// accepted a session within the request timeout.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        if config.servers.servers.is_empty() {
            return Err(Error::InvalidArgument(
                "the connection string lists no servers".into(),
            ));
        }
        let chroot = Chroot::new(config.servers.chroot.clone());
        let handle = session::start(config, chroot.clone()).await?;
        Ok(Client {
            inner: Arc::new(Inner { handle, chroot }),
        })
    }

    /// The session id (as the server logs it, `0x…` in hex).
    pub fn session_id(&self) -> i64 {
        self.inner.handle.session_id()
    }

    /// The session password (with [`Client::session_id`], what resumes the
    /// session on another connection; keep it secret).
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.handle.session_password()
    }

    pub fn state(&self) -> SessionState {
        self.inner.handle.state.borrow().clone()
    }

    /// A receiver that sees every state transition.
    pub fn state_changes(&self) -> watch::Receiver<SessionState> {
        self.inner.handle.state.clone()
    }

    /// The zone this client considers home (configured or measured);
    /// `None` if it could not be determined (no server has a zone, or none
    /// answered the measurement).
    pub fn own_zone(&self) -> Option<String> {
        self.inner.handle.own_zone.clone()
    }

    /// The server currently connected to, if any.
    pub fn server(&self) -> Option<ServerAddr> {
        match self.state() {
            SessionState::Connected { server } => Some(server),
            _ => None,
        }
    }

    /// Connection and request counters.
    pub fn stats(&self) -> ClientStats {
        self.inner.handle.stats()
    }

    /// The last zxid this session has seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.inner.handle.last_zxid()
    }

    fn path(&self, path: &str) -> Result<String, Error> {
        validate_path(path).map_err(|e| Error::InvalidArgument(format!("path {path:?}: {e}")))?;
        Ok(self.inner.chroot.to_server(path))
    }

    async fn call(
        &self,
        op: OpCode,
        body: RequestBody,
        watch: Option<(String, PendingWatch)>,
    ) -> Result<ResponseBody, Error> {
        self.inner.handle.call(op, body, watch).await
    }

    /// Creates a node (create2: the reply carries the stat). Returns the
    /// client path actually created (with the sequence suffix for
    /// sequential modes).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat), Error> {
        let p = self.path(path)?;
        if acl.is_empty() {
            return Err(Error::InvalidArgument(
                "an ACL must have at least one entry".into(),
            ));
        }
        let (op, body) = create_body(p, data, acl, mode);
        match self.call(op, body, None).await? {
            ResponseBody::Create2(r) => Ok((self.inner.chroot.to_client(&r.path), r.stat)),
            other => Err(unexpected(op, &other)),
        }
    }

    /// Deletes a node; `version` `None` deletes whatever the version.
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        let path = self.path(path)?;
        let body = RequestBody::Delete(DeleteRequest {
            path,
            version: version.unwrap_or(-1),
        });
        self.call(OpCode::Delete, body, None).await.map(|_| ())
    }

    /// Sets a node's data; `version` `None` sets whatever the version.
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error> {
        let path = self.path(path)?;
        let body = RequestBody::SetData(SetDataRequest {
            path,
            data: Some(data.to_vec()),
            version: version.unwrap_or(-1),
        });
        stat_of(OpCode::SetData, self.call(OpCode::SetData, body, None).await?)
    }

    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), Error> {
        self.get_data_inner(path, None).await
    }

    /// `None` if the node does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        self.exists_inner(path, None).await
    }

    /// The node's children (names, unsorted) and its stat (getChildren2).
    pub async fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        self.get_children_inner(path, None).await
    }

    /// [`Client::get_data`] and a one-time watch for the node's next data
    /// change or deletion.
    pub async fn get_data_w(&self, path: &str) -> Result<((Vec<u8>, Stat), OneshotWatcher), Error> {
        let (tx, rx) = oneshot::channel();
        let r = self
            .get_data_inner(path, Some(PendingWatch::Oneshot(WatchKind::Data, tx)))
            .await?;
        Ok((r, OneshotWatcher { rx }))
    }

    /// [`Client::exists`] and a one-time watch for its creation, data change
    /// or deletion (set whether or not the node exists).
    pub async fn exists_w(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher), Error> {
        let (tx, rx) = oneshot::channel();
        let r = self
            .exists_inner(path, Some(PendingWatch::Oneshot(WatchKind::Exist, tx)))
            .await?;
        Ok((r, OneshotWatcher { rx }))
    }

    /// [`Client::get_children`] and a one-time watch for a change of the
    /// child list or the node's deletion.
    pub async fn get_children_w(&self, path: &str) -> Result<((Vec<String>, Stat), OneshotWatcher), Error> {
        let (tx, rx) = oneshot::channel();
        let r = self
            .get_children_inner(path, Some(PendingWatch::Oneshot(WatchKind::Child, tx)))
            .await?;
        Ok((r, OneshotWatcher { rx }))
    }

    /// A persistent watch (addWatch) on `path`, recursive over its subtree
    /// if `recursive`. The node need not exist. The watch stays on the
    /// server until the session ends; dropping the watcher only stops the
    /// delivery (the client removes the server watch when the next event
    /// for it finds no holder).
    pub async fn watch(&self, path: &str, recursive: bool) -> Result<PersistentWatcher, Error> {
        let p = self.path(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mode = if recursive {
            AddWatchMode::PersistentRecursive
        } else {
            AddWatchMode::Persistent
        };
        let body = RequestBody::AddWatch(AddWatchRequest {
            path: p.clone(),
            mode: mode as i32,
        });
        self.call(
            OpCode::AddWatch,
            body,
            Some((p, PendingWatch::Persistent { recursive, tx })),
        )
        .await?;
        Ok(PersistentWatcher { rx })
    }

    /// Runs `ops` atomically. On success, one result per op. If the multi
    /// fails, nothing was applied and the error is `Server(code)` of the
    /// first failing op; use [`Client::multi_results`] to see every op's
    /// outcome.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let results = self.multi_results(ops).await?;
        for r in &results {
            if let OpResult::Error(code) = r {
                if *code != ErrorCode::Ok && *code != ErrorCode::RuntimeInconsistency {
                    return Err(Error::Server(*code));
                }
            }
        }
        if results.iter().any(|r| matches!(r, OpResult::Error(_))) {
            return Err(Error::Server(ErrorCode::RuntimeInconsistency));
        }
        Ok(results)
    }

    /// Like [`Client::multi`], but a failed multi is `Ok` with
    /// [`OpResult::Error`] entries (the failing op's code; `Ok` for ops
    /// rolled back, `RuntimeInconsistency` for ops never attempted).
    pub async fn multi_results(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let mut wire = Vec::with_capacity(ops.len());
        for op in ops {
            let path = self.path(op.path())?;
            wire.push(match op {
                Op::Create { data, acl, mode, .. } => match create_body(path, &data, &acl, mode).1 {
                    RequestBody::Create(req) => MultiOp::Create {
                        op: create_op(mode),
                        req,
                    },
                    RequestBody::CreateTtl(req) => MultiOp::CreateTtl(req),
                    _ => unreachable!("create_body builds a create"),
                },
                Op::Delete { version, .. } => MultiOp::Delete(DeleteRequest {
                    path,
                    version: version.unwrap_or(-1),
                }),
                Op::SetData { data, version, .. } => MultiOp::SetData(SetDataRequest {
                    path,
                    data: Some(data),
                    version: version.unwrap_or(-1),
                }),
                Op::Check { version, .. } => MultiOp::Check(CheckVersionRequest {
                    path,
                    version: version.unwrap_or(-1),
                }),
            });
        }
        let results = match self.call(OpCode::Multi, RequestBody::Multi(wire), None).await? {
            ResponseBody::Multi(r) => r,
            other => return Err(unexpected(OpCode::Multi, &other)),
        };
        Ok(results
            .into_iter()
            .map(|r| match r {
                MultiResult::Create(c) => OpResult::Create {
                    path: self.inner.chroot.to_client(&c.path),
                    stat: Stat::default(),
                },
                MultiResult::Create2(c) => OpResult::Create {
                    path: self.inner.chroot.to_client(&c.path),
                    stat: c.stat,
                },
                MultiResult::Delete => OpResult::Delete,
                MultiResult::SetData(stat) => OpResult::SetData { stat },
                MultiResult::Check => OpResult::Check,
                MultiResult::Error(code) => OpResult::Error(code),
                MultiResult::GetData(_) | MultiResult::GetChildren(_) => {
                    OpResult::Error(ErrorCode::MarshallingError)
                }
            })
            .collect())
    }

    /// Waits until the server this client is connected to has applied
    /// everything the leader committed before the sync.
    pub async fn sync(&self, path: &str) -> Result<(), Error> {
        let path = self.path(path)?;
        self.call(OpCode::Sync, RequestBody::Sync(SyncRequest { path }), None)
            .await
            .map(|_| ())
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        let path = self.path(path)?;
        match self
            .call(OpCode::GetAcl, RequestBody::GetAcl(GetAclRequest { path }), None)
            .await?
        {
            ResponseBody::GetAcl(r) => Ok((r.acl, r.stat)),
            other => Err(unexpected(OpCode::GetAcl, &other)),
        }
    }

    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat, Error> {
        let path = self.path(path)?;
        let body = RequestBody::SetAcl(SetAclRequest {
            path,
            acl: acl.to_vec(),
            version: version.unwrap_or(-1),
        });
        stat_of(OpCode::SetAcl, self.call(OpCode::SetAcl, body, None).await?)
    }

    /// Closes the session (closeSession): its ephemeral nodes are deleted
    /// now, not at expiry. Every clone sees `Closed` afterwards.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.handle.close().await
    }

    async fn get_data_inner(&self, path: &str, w: Option<PendingWatch>) -> Result<(Vec<u8>, Stat), Error> {
        let p = self.path(path)?;
        let body = RequestBody::GetData(GetDataRequest {
            path: p.clone(),
            watch: w.is_some(),
        });
        match self.call(OpCode::GetData, body, w.map(|w| (p, w))).await? {
            ResponseBody::GetData(r) => Ok((r.data.unwrap_or_default(), r.stat)),
            other => Err(unexpected(OpCode::GetData, &other)),
        }
    }

    async fn exists_inner(&self, path: &str, w: Option<PendingWatch>) -> Result<Option<Stat>, Error> {
        let p = self.path(path)?;
        let body = RequestBody::Exists(ExistsRequest {
            path: p.clone(),
            watch: w.is_some(),
        });
        match self.call(OpCode::Exists, body, w.map(|w| (p, w))).await {
            Ok(ResponseBody::Stat(s)) => Ok(Some(s)),
            Ok(other) => Err(unexpected(OpCode::Exists, &other)),
            Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_children_inner(
        &self,
        path: &str,
        w: Option<PendingWatch>,
    ) -> Result<(Vec<String>, Stat), Error> {
        let p = self.path(path)?;
        let body = RequestBody::GetChildren(GetChildrenRequest {
            path: p.clone(),
            watch: w.is_some(),
        });
        match self.call(OpCode::GetChildren2, body, w.map(|w| (p, w))).await? {
            ResponseBody::GetChildren2(r) => Ok((r.children, r.stat)),
            other => Err(unexpected(OpCode::GetChildren2, &other)),
        }
    }
}

fn create_op(mode: CreateMode) -> OpCode {
    match mode {
        CreateMode::Container => OpCode::CreateContainer,
        CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => OpCode::CreateTtl,
        _ => OpCode::Create2,
    }
}

fn create_body(path: String, data: &[u8], acl: &[Acl], mode: CreateMode) -> (OpCode, RequestBody) {
    let op = create_op(mode);
    let body = match mode.ttl_ms() {
        Some(ttl) => RequestBody::CreateTtl(CreateTtlRequest {
            path,
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flag(),
            ttl,
        }),
        None => RequestBody::Create(CreateRequest {
            path,
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flag(),
        }),
    };
    (op, body)
}

fn stat_of(op: OpCode, body: ResponseBody) -> Result<Stat, Error> {
    match body {
        ResponseBody::Stat(s) => Ok(s),
        other => Err(unexpected(op, &other)),
    }
}

fn unexpected(op: OpCode, body: &ResponseBody) -> Error {
    Error::Protocol(format!("unexpected reply to {op:?}: {body:?}"))
}
