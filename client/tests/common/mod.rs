//! Shared setup for the client's integration tests: a real server in this
//! process ([`InProc`]), an ensemble of real `zonekeeper-server` processes
//! in three zones ([`Ensemble`]), a raw protocol connection that takes over
//! a session ([`steal_session`]) to force a client to reconnect or to close
//! its session behind its back, and deadline-bounded waits.
//!
//! Nothing here sleeps for a fixed time to let something happen: waits poll
//! a condition until [`DEADLINE`] and then fail with what they saw.
#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use proto::frame;
use proto::jute::Record;
use proto::opcode::OpCode;
use proto::records::{ConnectRequest, SetDataRequest};
use proto::request::{Request, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper_client::{Client, ClientConfig, SessionState};
use zonekeeper_server::config::{Config, DevArgs};
use zonekeeper_server::dev::{config_for, plan, DevMember};
use zonekeeper_server::server::{self, RunningServer};

/// How long anything awaited may take (generous: 2 shared cores).
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "zonekeeper_client=debug".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Awaits `fut` or fails the test after [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the client's state satisfies `pred`.
pub async fn wait_state(client: &Client, what: &str, pred: impl Fn(&SessionState) -> bool) -> SessionState {
    let mut rx = client.state_changes();
    within(what, async {
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            if rx.changed().await.is_err() {
                let s = rx.borrow().clone();
                assert!(pred(&s), "state channel closed in {s:?} while waiting for {what}");
                return s;
            }
        }
    })
    .await
}

/// A single server in this process, on 127.0.0.1 with ephemeral ports.
pub struct InProc {
    server: Option<RunningServer>,
    pub addr: SocketAddr,
    config: Config,
    _dir: tempfile::TempDir,
}

impl InProc {
    pub async fn start() -> InProc {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> InProc {
        init_tracing();
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config {
            client_addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        let server = server::start(config.clone()).await.expect("server starts");
        InProc {
            addr: server.client_addr,
            server: Some(server),
            config,
            _dir: dir,
        }
    }

    /// Shuts the server down (its clients see the connection close).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            within("shutdown", s.shutdown()).await.expect("clean shutdown");
        }
    }

    /// Starts it again on the same address and data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.client_addr = self.addr;
        let server = server::start(config).await.expect("server restarts");
        self.server = Some(server);
    }

    pub fn connect_string(&self) -> String {
        format!("{}@zone-a", self.addr)
    }

    /// A client of this server; `suffix` is appended to the connection
    /// string (e.g. a chroot).
    pub async fn client(&self) -> Client {
        self.client_with(|c| c).await
    }

    pub async fn client_with(&self, f: impl FnOnce(ClientConfig) -> ClientConfig) -> Client {
        let cfg = ClientConfig::new(self.connect_string().parse().unwrap());
        // A one-member ensemble campaigns at start; connect retries until
        // it serves (within the request timeout).
        within("connect", Client::connect(f(cfg.with_request_timeout(DEADLINE))))
            .await
            .expect("client connects")
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        drop(self.server.take());
    }
}

/// Opens a raw connection to `addr` that takes over the session (the
/// server closes the session's previous connection and drops its
/// watches), optionally pipelining a setData of `set` right behind the
/// handshake, so it happens before the owner can reconnect.
pub async fn steal_session(
    addr: SocketAddr,
    session_id: i64,
    passwd: Vec<u8>,
    set: Option<(&str, &[u8])>,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("raw connect");
    let mut out = Vec::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 10_000,
        session_id,
        passwd,
        read_only: Some(false),
    };
    let mut p = Vec::new();
    req.write(&mut p);
    frame::write_frame(&mut out, &p);
    if let Some((path, data)) = set {
        let r = Request {
            xid: 1,
            op: OpCode::SetData,
            body: RequestBody::SetData(SetDataRequest {
                path: path.into(),
                data: Some(data.to_vec()),
                version: -1,
            }),
        };
        frame::write_frame(&mut out, &r.encode());
    }
    s.write_all(&out).await.expect("raw write");
    s
}

/// Takes over the session and closes it in the same write (before the
/// owner can reconnect), then waits for the server to close the raw
/// connection.
pub async fn close_session_behind_its_back(addr: SocketAddr, session_id: i64, passwd: Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("raw connect");
    let mut out = Vec::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 10_000,
        session_id,
        passwd,
        read_only: Some(false),
    };
    let mut p = Vec::new();
    req.write(&mut p);
    frame::write_frame(&mut out, &p);
    let r = Request {
        xid: 1,
        op: OpCode::CloseSession,
        body: RequestBody::CloseSession,
    };
    frame::write_frame(&mut out, &r.encode());
    s.write_all(&out).await.expect("raw write");
    let mut buf = vec![0u8; 4096];
    within("the server to close the raw connection", async {
        while s.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    })
    .await;
}

/// The `zonekeeper-server` binary, built on first use (Cargo gives a path
/// to binaries of the package under test only): `ZONEKEEPER_SERVER_BIN`
/// if set, else `cargo build -p zonekeeper-server --bin zonekeeper-server`
/// into this test's target directory.
pub fn server_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    if let Ok(p) = std::env::var("ZONEKEEPER_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> → target/<profile>/zonekeeper-server
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let bin = profile_dir.join("zonekeeper-server");
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        // target/debug is the `dev` profile; other directories are named
        // after their profile.
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(p) => p.to_string(),
        };
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "zonekeeper-server",
                "--bin",
                "zonekeeper-server",
            ])
            .args(["--profile", &profile, "--manifest-path", manifest])
            .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"))
            .status()
            .expect("running cargo build for zonekeeper-server");
        assert!(status.success(), "building zonekeeper-server failed");
    });
    bin
}

/// An ensemble of `zonekeeper-server` processes on 127.0.0.1, member `i`
/// in zone `zone-a`, `zone-b`, `zone-c`… (the dev layout: client port
/// `base+i`, admin `base+1000+i`, peer `base+2000+i`).
pub struct Ensemble {
    pub members: Vec<DevMember>,
    procs: Vec<Option<Child>>,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn pick_base(n: u16) -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..500 {
        let base: u16 = rng.gen_range(12_000..=29_000);
        let ports = (0..n).flat_map(|i| [base + i, base + 1000 + i, base + 2000 + i]);
        let held: Result<Vec<TcpListener>, _> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if held.is_ok() {
            return base;
        }
    }
    panic!("no free base port for {n} members");
}

impl Ensemble {
    /// Starts `n` members in `n` zones and waits until each serves.
    pub async fn start(n: u16) -> Ensemble {
        init_tracing();
        let bin = server_bin();
        let dir = tempfile::Builder::new()
            .prefix("zonekeeper-client-ens-")
            .tempdir()
            .expect("temp dir");
        let args = DevArgs {
            members: n,
            zones: n,
            data_dir: dir.path().to_path_buf(),
            base_port: pick_base(n),
        };
        let members = plan(&args).expect("planning the ensemble");
        for m in &members {
            std::fs::create_dir_all(&m.dir).unwrap();
            let text = config_for(m, &members).expect("member config");
            std::fs::write(m.dir.join("zonekeeper.toml"), text).unwrap();
        }
        let mut e = Ensemble {
            procs: members.iter().map(|_| None).collect(),
            members,
            dir,
            bin,
        };
        for i in 0..e.members.len() {
            e.spawn(i);
        }
        for i in 0..e.members.len() {
            e.wait_serving(i).await;
        }
        e
    }

    pub fn spawn(&mut self, i: usize) {
        assert!(self.procs[i].is_none(), "member {i} already runs");
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("server.log"))
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        // The server reads ZONEKEEPER_* variables as settings: none of the
        // test environment's may leak into a member.
        for (k, _) in std::env::vars() {
            if k.starts_with("ZONEKEEPER_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("--config")
            .arg(m.dir.join("zonekeeper.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .spawn()
            .expect("spawning zonekeeper-server");
        self.procs[i] = Some(child);
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        format!("127.0.0.1:{}", self.members[i].client_port)
            .parse()
            .unwrap()
    }

    pub fn zone(&self, i: usize) -> &str {
        &self.members[i].zone
    }

    /// `127.0.0.1:port@zone,…` for every member.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}@{}", m.client_port, m.zone))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the member listening on `port`.
    pub fn index_of_port(&self, port: u16) -> usize {
        self.members
            .iter()
            .position(|m| m.client_port == port)
            .expect("a member port")
    }

    /// Waits until member `i` answers `srvr` with a zxid (it serves).
    pub async fn wait_serving(&self, i: usize) {
        let addr = self.addr(i);
        eventually(&format!("member {i} to serve"), || async move {
            let mut s = TcpStream::connect(addr).await.ok()?;
            s.write_all(b"srvr").await.ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).await.ok()?;
            (out.contains("Zxid:") && out.contains("Mode:")).then_some(())
        })
        .await;
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.members[i].dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill9(i);
        }
        if std::thread::panicking() {
            for i in 0..self.members.len() {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("--- member {} log tail ---", i + 1);
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let _ = &self.dir;
    }
}
