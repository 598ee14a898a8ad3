//! Shared setup for the client-protocol integration tests: an in-process
//! server on port 0 with its own data directory ([`TestServer`]), clients of
//! the `zookeeper-client` crate connected to it, and a raw protocol client
//! ([`Raw`]) for what that crate will not send (invalid paths, checkWatches,
//! removeWatches on a missing watch, malformed frames).
//!
//! Owns: starting, connecting and stopping; waiting with a deadline. Must
//! not: assert anything about the server's behaviour (the test files do
//! that, each citing the ZooKeeper rule it checks), or sleep where an event
//! can be awaited.
//!
//! Every test binary compiles this module separately and uses a different
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::frame;
use proto::jute::Record;
use proto::opcode::{xid, OpCode};
use proto::records::{Acl, ConnectRequest, ConnectResponse, CreateRequest, Id, ReplyHeader, WatcherEvent};
use proto::request::{Request, RequestBody};
use proto::response::{decode_reply_header, ResponseBody};
use proto::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper_server::config::Config;
use zonekeeper_server::server::{self, RunningServer};
use zookeeper_client as zk;

/// How long any awaited event or polled condition may take before the test
/// fails. Generous: the machine is shared and may be slow; no test asserts
/// on how long something took.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Create options most tests use: persistent, `world:anyone` with all
/// permissions (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub const PERSISTENT: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
pub const EPHEMERAL: &zk::CreateOptions<'static> =
    &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
pub const PERSISTENT_SEQ: &zk::CreateOptions<'static> =
    &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
pub const EPHEMERAL_SEQ: &zk::CreateOptions<'static> =
    &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
pub const CONTAINER: &zk::CreateOptions<'static> =
    &zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());

/// A server running in this process on 127.0.0.1 with ephemeral ports and
/// a temporary data directory, removed when this is dropped.
pub struct TestServer {
    server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// What it was started with, for [`TestServer::restart`].
    config: Config,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts after the test
    /// defaults (addresses on port 0, a temporary data directory) are set.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config {
            client_addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        let server = server::start(config.clone()).await.expect("server starts");
        let ts = TestServer {
            addr: server.client_addr,
            admin_addr: server.admin_addr,
            server: Some(server),
            config,
            _dir: dir,
        };
        ts.wait_for_leader().await;
        ts
    }

    /// A one-member ensemble campaigns at start; until it leads, new
    /// sessions cannot be created.
    async fn wait_for_leader(&self) {
        let hub = self.hub().clone();
        eventually("the server to become leader", || {
            let hub = hub.clone();
            async move { hub.raft.is_leader.load(std::sync::atomic::Ordering::Relaxed) }
        })
        .await;
    }

    /// Stops the server and starts it again on the same addresses and data
    /// directory (what an operator's restart does).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            within("shutdown", s.shutdown()).await.expect("clean shutdown");
        }
        let mut config = self.config.clone();
        config.client_addr = self.addr;
        config.admin_addr = self.admin_addr;
        let server = server::start(config).await.expect("server restarts");
        self.server = Some(server);
        self.wait_for_leader().await;
    }

    /// The server's shared state, for white-box checks of what a client
    /// cannot see (which watches the server holds).
    pub fn hub(&self) -> &std::sync::Arc<zonekeeper_server::hub::Hub> {
        &self.server.as_ref().expect("running").hub
    }

    /// The connect string, `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// A client with the crate's defaults (6 s session timeout requested).
    pub async fn client(&self) -> zk::Client {
        self.client_with(|_| {}).await
    }

    /// A client whose connector `f` configures first.
    pub async fn client_with(&self, f: impl FnOnce(&mut zk::Connector)) -> zk::Client {
        let mut c = zk::Client::connector();
        f(&mut c);
        within("connect", c.connect(&self.connect_string()))
            .await
            .expect("client connects")
    }

    /// A raw protocol session (see [`Raw`]).
    pub async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    /// A bare TCP connection to the client port.
    pub async fn tcp(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("tcp connect")
    }

    /// Stops the server and waits for its tasks.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            within("shutdown", s.shutdown()).await.expect("clean shutdown");
        }
    }
}

/// Awaits `fut`, failing the test after [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Polls `cond` until it holds, failing the test after [`DEADLINE`]. Only
/// for conditions that time must make true (expiry, reaping) or that no
/// event announces.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if cond().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True if `fut` is already complete when first polled. Used to show that
/// an event was (or was not) delivered before a reply the test has
/// received: the server sends both on one connection in order, and the
/// client library dispatches them in that order.
pub async fn is_ready<T>(fut: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::ZERO, fut).await.ok()
}

/// `world:anyone` with all permissions, on the wire.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: proto::records::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A raw create request body with the open ACL.
pub fn create_req(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: open_acl(),
        flags,
    }
}

/// One packet from the server.
#[derive(Debug)]
pub enum Packet {
    /// A watch notification (xid -1) and the zxid in its header.
    Event(WatcherEvent, i64),
    /// A reply: header and raw body.
    Reply(ReplyHeader, Vec<u8>),
}

/// A session on a raw socket, speaking the protocol through the `proto`
/// crate. Requests get increasing xids; [`Raw::call`] keeps the
/// notifications it reads past in [`Raw::events`].
pub struct Raw {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout: i32,
    next_xid: i32,
    pub events: Vec<WatcherEvent>,
}

impl Raw {
    /// Connects and completes the handshake of a new session.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let rsp = handshake(&mut stream, new_session_request())
            .await
            .expect("connect response");
        Raw::established(stream, rsp)
    }

    /// A session on `stream` whose handshake the caller did.
    pub fn established(stream: TcpStream, rsp: ConnectResponse) -> Raw {
        assert_ne!(rsp.session_id, 0, "the server refused the session");
        Raw {
            stream,
            session_id: rsp.session_id,
            passwd: rsp.passwd,
            timeout: rsp.timeout,
            next_xid: 1,
            events: Vec::new(),
        }
    }

    /// Sends a request without waiting; returns its xid.
    pub async fn send(&mut self, op: OpCode, body: RequestBody) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_with_xid(xid, op, body).await;
        xid
    }

    /// Sends a request with a given xid (pings use -2).
    pub async fn send_with_xid(&mut self, xid: i32, op: OpCode, body: RequestBody) {
        self.stream
            .write_all(&Self::frame(xid, op, body))
            .await
            .expect("write request");
    }

    /// The framed bytes of a request, for tests that batch several into
    /// one write.
    pub fn frame(xid: i32, op: OpCode, body: RequestBody) -> Vec<u8> {
        let mut f = Vec::new();
        frame::write_frame(&mut f, &Request { xid, op, body }.encode());
        f
    }

    /// Takes the next xid without sending anything (see [`Raw::frame`]).
    pub fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid += 1;
        x
    }

    /// Reads the next packet; `None` once the server has closed the
    /// connection.
    pub async fn next(&mut self) -> Option<Packet> {
        let payload = within("a packet", read_frame(&mut self.stream)).await?;
        let (h, body) = decode_reply_header(&payload).expect("reply header");
        if h.xid == xid::NOTIFICATION {
            let ev = WatcherEvent::decode(body).expect("watch event");
            return Some(Packet::Event(ev, h.zxid));
        }
        Some(Packet::Reply(h, body.to_vec()))
    }

    /// Reads up to the reply to `xid` (keeping events in `self.events`).
    /// Panics on another reply first: a session's replies come in order.
    pub async fn reply_to(&mut self, op: OpCode, xid_: i32) -> (ErrorCode, Option<ResponseBody>) {
        loop {
            match self.next().await.expect("connection closed before the reply") {
                Packet::Event(ev, _) => self.events.push(ev),
                Packet::Reply(h, body) => {
                    assert_eq!(h.xid, xid_, "replies must come in request order");
                    let err = ErrorCode::from_code(h.err).expect("known error code");
                    let body = (err == ErrorCode::Ok)
                        .then(|| ResponseBody::decode(op, &body).expect("reply body decodes"));
                    return (err, body);
                }
            }
        }
    }

    /// Sends a request and reads its reply.
    pub async fn call(&mut self, op: OpCode, body: RequestBody) -> (ErrorCode, Option<ResponseBody>) {
        let x = self.send(op, body).await;
        self.reply_to(op, x).await
    }

    /// Sends a request and returns only its error code.
    pub async fn code(&mut self, op: OpCode, body: RequestBody) -> ErrorCode {
        self.call(op, body).await.0
    }
}

/// A connect request for a new session (30 s timeout, read-only flag sent
/// as 3.x clients do).
pub fn new_session_request() -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
}

/// Sends a connect request and reads the response; `None` if the server
/// closed the connection instead.
pub async fn handshake(stream: &mut TcpStream, req: ConnectRequest) -> Option<ConnectResponse> {
    let mut f = Vec::new();
    frame::write_frame(&mut f, &req.encode());
    stream.write_all(&f).await.ok()?;
    let payload = within("the connect response", read_frame(stream)).await?;
    Some(ConnectResponse::decode(&payload).expect("connect response decodes"))
}

/// Reads one length-prefixed frame; `None` at end of stream or on a reset.
pub async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let len = i32::from_be_bytes(len);
    assert!(len >= 0, "the server sent a negative frame length");
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// Waits until the server closes `stream` (end of stream or reset),
/// discarding anything it sends first.
pub async fn assert_closed(stream: &mut TcpStream, what: &str) {
    within(what, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
}

/// Everything the server sends on `stream` until it closes it.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    within("the server to close the connection", async {
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    })
    .await
}
