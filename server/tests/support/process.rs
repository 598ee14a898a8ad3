//! One `zonekeeper-server` child process and what every process test
//! needs: free loopback ports, start and wait for readiness (polled, with a
//! deadline), `kill -9`, SIGTERM, runs that must fail, a ZooKeeper client,
//! the admin HTTP API, four-letter words, log tails, and a reader of the WAL
//! segment framing (to damage records on purpose).

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client::{Client, SessionInfo};

/// The server binary Cargo built for this test.
pub const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper-server");

/// How long a server may take to become ready (recovery included).
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM, or to refuse to start.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(20);
/// How long a client may take to establish a session.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// Poll interval of every wait.
const POLL: Duration = Duration::from_millis(10);

/// A loopback port that was free a moment ago (bind port 0, read, drop).
/// Another process can take it before the server binds it; [`Server::start`]
/// retries with new ports when the server says it cannot listen.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free loopback port")
        .port()
}

/// A scratch directory for one test: `data/` is the server's data directory,
/// `logs/` holds each run's stderr.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    runs: AtomicU64,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("zonekeeper-crash-")
            .tempdir()
            .expect("creating a temp dir");
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        Scratch {
            dir,
            runs: AtomicU64::new(0),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir().join("wal")
    }

    fn next_log(&self) -> PathBuf {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join("logs").join(format!("run-{n:03}.stderr"))
    }
}

/// How a server process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

/// A running `zonekeeper-server` child. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub stderr_path: PathBuf,
    /// From spawn to ready (`ruok` answered and `/readyz` 200): recovery
    /// time as a client sees it.
    pub ready_after: Duration,
}

/// Why [`Server::try_start`] did not produce a ready server.
#[derive(Debug)]
pub enum StartError {
    /// The process exited before becoming ready.
    Exited(Exit),
    /// Still not ready at the deadline (the process was killed).
    NotReady(String),
}

fn spawn(scratch: &Scratch, args: &[String]) -> (Child, SocketAddr, SocketAddr, PathBuf) {
    let client_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let stderr_path = scratch.next_log();
    let stderr = File::create(&stderr_path).expect("creating the stderr log");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(scratch.data_dir())
        .arg("--client-addr")
        .arg(client_addr.to_string())
        .arg("--admin-addr")
        .arg(admin_addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .env_remove("RUST_LOG");
    // Settings must come from the flags above only.
    for (k, _) in std::env::vars() {
        if k.starts_with("ZONEKEEPER_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().expect("spawning zonekeeper-server");
    (child, client_addr, admin_addr, stderr_path)
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// `GET path` on the admin port; the status code.
pub async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    http_get(addr, path).await.map(|(code, _)| code)
}

/// `GET path` on the admin port; the status code and the body. `None` if
/// no answer within 2 s (a frozen or dead member).
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_within(addr, "GET", path, "", Duration::from_secs(2)).await
}

/// One HTTP/1.1 request to an admin port (`Connection: close`, so the body
/// is the rest of the stream); the status code and the body. `None` if no
/// answer within 15 s (a membership change waits for its entry to apply).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_within(addr, method, path, body, Duration::from_secs(15)).await
}

async fn http_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    within: Duration,
) -> Option<(u16, String)> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out);
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    };
    tokio::time::timeout(within, attempt).await.ok().flatten()
}

/// A four-letter word on a client port; `None` if no answer within 2 s.
pub async fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    four_letter_within(addr, word, Duration::from_secs(2)).await
}

async fn four_letter_within(addr: SocketAddr, word: &str, within: Duration) -> Option<String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(word.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(within, attempt).await.ok().flatten()
}

/// `ruok` on the client port answers `imok` within `within` (a server that
/// has not yet applied its recovered log leaves connections in the listen
/// backlog).
pub async fn ruok(addr: SocketAddr, within: Duration) -> bool {
    four_letter_within(addr, "ruok", within).await.as_deref() == Some("imok")
}

/// Whether every port in `ports` can be bound on 127.0.0.1 now (all held at
/// once, then released).
pub fn all_free(ports: impl IntoIterator<Item = u16>) -> bool {
    let held: Result<Vec<TcpListener>, _> = ports
        .into_iter()
        .map(|p| TcpListener::bind(("127.0.0.1", p)))
        .collect();
    held.is_ok()
}

/// `n` ports, free now, below Linux's ephemeral range (32768+), so no
/// outgoing connection of another process can take one while its server is
/// down; a random base keeps parallel test processes apart.
pub fn free_ports(n: usize) -> Vec<u16> {
    for _ in 0..500 {
        let base = 20000 + (rand::random::<u16>() % 10000);
        let ps: Vec<u16> = (0..n as u16).map(|i| base + i * 7).collect();
        if all_free(ps.iter().copied()) {
            return ps;
        }
    }
    panic!("no {n} free ports found");
}

/// The last `lines` lines of `text` (a log).
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Server {
    /// Starts a server on `scratch`'s data directory with `args` on top of
    /// `--data-dir`, `--client-addr` and `--admin-addr`, and waits until it
    /// is ready. Panics with its stderr if it exits or is not ready in time.
    pub async fn start(scratch: &Scratch, args: &[String]) -> Server {
        match Server::try_start(scratch, args).await {
            Ok(s) => s,
            Err(StartError::Exited(e)) => panic!(
                "zonekeeper-server exited with {} before becoming ready; stderr:\n{}",
                e.status, e.stderr
            ),
            Err(StartError::NotReady(stderr)) => {
                panic!("zonekeeper-server not ready within {START_DEADLINE:?}; stderr:\n{stderr}")
            }
        }
    }

    /// As [`start`](Server::start), returning what happened instead of
    /// panicking. Retries with fresh ports if the chosen ones were taken.
    pub async fn try_start(scratch: &Scratch, args: &[String]) -> Result<Server, StartError> {
        for attempt in 0.. {
            match Server::try_start_once(scratch, args).await {
                Err(StartError::Exited(e)) if attempt < 3 && e.stderr.contains("cannot listen on") => {
                    continue;
                }
                r => return r,
            }
        }
        unreachable!()
    }

    async fn try_start_once(scratch: &Scratch, args: &[String]) -> Result<Server, StartError> {
        let t = Instant::now();
        let (child, client_addr, admin_addr, stderr_path) = spawn(scratch, args);
        let mut server = Server {
            child: Some(child),
            client_addr,
            admin_addr,
            stderr_path,
            ready_after: Duration::ZERO,
        };
        loop {
            if let Some(status) = server.child_mut().try_wait().expect("polling the child") {
                server.child = None;
                return Err(StartError::Exited(Exit {
                    status,
                    stderr: read_log(&server.stderr_path),
                    elapsed: t.elapsed(),
                }));
            }
            if ruok(client_addr, Duration::from_secs(2)).await
                && http_status(admin_addr, "/readyz").await == Some(200)
            {
                server.ready_after = t.elapsed();
                return Ok(server);
            }
            if t.elapsed() > START_DEADLINE {
                server.kill9();
                return Err(StartError::NotReady(server.stderr()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spawns the server and returns at once, without waiting for it to be
    /// ready (for clients that race its startup).
    pub fn spawn_unready(scratch: &Scratch, args: &[String]) -> Server {
        let (child, client_addr, admin_addr, stderr_path) = spawn(scratch, args);
        Server {
            child: Some(child),
            client_addr,
            admin_addr,
            stderr_path,
            ready_after: Duration::ZERO,
        }
    }

    /// Runs the server on a data directory it must refuse: waits for it to
    /// exit, panicking (after killing it) if it becomes ready instead.
    pub async fn expect_refusal(scratch: &Scratch, args: &[String]) -> Exit {
        let t = Instant::now();
        let (child, client_addr, admin_addr, stderr_path) = spawn(scratch, args);
        let mut server = Server {
            child: Some(child),
            client_addr,
            admin_addr,
            stderr_path,
            ready_after: Duration::ZERO,
        };
        loop {
            if let Some(status) = server.child_mut().try_wait().expect("polling the child") {
                server.child = None;
                return Exit {
                    status,
                    stderr: server.stderr(),
                    elapsed: t.elapsed(),
                };
            }
            if http_status(admin_addr, "/readyz").await == Some(200) || t.elapsed() > EXIT_DEADLINE {
                server.kill9();
                panic!(
                    "zonekeeper-server was expected to refuse to start, but it is running after {:?}; stderr:\n{}",
                    t.elapsed(),
                    server.stderr()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server process is running")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server process is running").id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_log(&self.stderr_path)
    }

    /// `kill -9`: `Child::kill` sends SIGKILL on Unix. Reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (polling) for the process to exit. Panics if
    /// it is still running at `EXIT_DEADLINE` (after killing it).
    pub async fn terminate(mut self) -> Exit {
        let t = Instant::now();
        let pid = self.pid();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("polling the child") {
                self.child = None;
                return Exit {
                    status,
                    stderr: self.stderr(),
                    elapsed: t.elapsed(),
                };
            }
            if t.elapsed() > EXIT_DEADLINE {
                self.kill9();
                panic!(
                    "zonekeeper-server still running {EXIT_DEADLINE:?} after SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, and asserts a clean exit (code 0, no panic).
    pub async fn stop_cleanly(self) -> Exit {
        let exit = self.terminate().await;
        assert_eq!(
            exit.status.code(),
            Some(0),
            "SIGTERM must lead to exit code 0, got {}; stderr:\n{}",
            exit.status,
            exit.stderr
        );
        assert_no_panic(&exit.stderr);
        exit
    }

    /// A ZooKeeper client with a fresh session.
    pub async fn client(&self) -> Client {
        self.client_with(Client::connector().session_timeout(Duration::from_secs(10)))
            .await
            .expect("connecting a client")
    }

    /// A client built by `connector` (session timeout, resumed session…).
    pub async fn client_with(
        &self,
        connector: &mut zookeeper_client::Connector,
    ) -> Result<Client, zookeeper_client::Error> {
        let addr = self.client_addr.to_string();
        match tokio::time::timeout(CONNECT_DEADLINE, connector.connect(&addr)).await {
            Ok(r) => r,
            Err(_) => panic!(
                "no session established with {addr} within {CONNECT_DEADLINE:?}; server stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Resumes `session` (id and password) on this server.
    pub async fn resume(
        &self,
        session: SessionInfo,
        timeout: Duration,
    ) -> Result<Client, zookeeper_client::Error> {
        self.client_with(Client::connector().session(session).session_timeout(timeout))
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "zonekeeper-server panicked; stderr:\n{stderr}"
    );
}

/// Polls `check` every few milliseconds until it returns true or `deadline`
/// passes; returns whether it succeeded and how long it took.
pub async fn poll_until<F, Fut>(deadline: Duration, mut check: F) -> (bool, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    loop {
        if check().await {
            return (true, t.elapsed());
        }
        if t.elapsed() > deadline {
            return (false, t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// WAL framing (server/src/storage/wal.rs): segment `log-{n:020}.wal` is an
// 8-byte header (b"ZKWL", u32 LE version) then records
// `[u32 LE len][u32 LE crc][u8 kind][payload]`. Kind 1 = entries
// (`[u32 LE len][protobuf Entry]`…), 2 = hard state, 3 = compacted.

pub const SEGMENT_HEADER_LEN: usize = 8;
pub const RECORD_HEADER_LEN: usize = 9;
pub const KIND_ENTRIES: u8 = 1;
pub const KIND_HARD_STATE: u8 = 2;
pub const KIND_COMPACTED: u8 = 3;

/// One record of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of the record header in the file.
    pub offset: usize,
    pub kind: u8,
    /// Offset of the payload and its length.
    pub payload_at: usize,
    pub payload_len: usize,
}

impl Record {
    pub fn end(&self) -> usize {
        self.payload_at + self.payload_len
    }
}

/// The WAL segment files, oldest first.
pub fn wal_segments(wal_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(wal_dir)
        .expect("listing the wal directory")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log-") && n.ends_with(".wal"))
        })
        .collect();
    v.sort();
    v
}

/// The records of an undamaged segment (framing only; checksums are the
/// server's business).
pub fn records(data: &[u8]) -> Vec<Record> {
    assert!(
        data.len() >= SEGMENT_HEADER_LEN && &data[..4] == b"ZKWL",
        "not a WAL segment"
    );
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        assert!(
            data.len() - pos >= RECORD_HEADER_LEN,
            "torn record header at {pos}"
        );
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = data[pos + 8];
        let payload_at = pos + RECORD_HEADER_LEN;
        assert!(payload_at + len <= data.len(), "torn record at {pos}");
        out.push(Record {
            offset: pos,
            kind,
            payload_at,
            payload_len: len,
        });
        pos = payload_at + len;
    }
    out
}

/// The raft indices of the entries in an entries record.
pub fn entry_indices(data: &[u8], rec: &Record) -> Vec<u64> {
    use protobuf::Message;
    assert_eq!(rec.kind, KIND_ENTRIES);
    let payload = &data[rec.payload_at..rec.end()];
    let mut out = Vec::new();
    let mut p = 0;
    while p < payload.len() {
        let len = u32::from_le_bytes(payload[p..p + 4].try_into().unwrap()) as usize;
        let e = raft::eraftpb::Entry::parse_from_bytes(&payload[p + 4..p + 4 + len]).expect("an entry");
        out.push(e.index);
        p += 4 + len;
    }
    out
}

/// Raft index of a zxid (`term << 32 | index`).
pub fn index_of(zxid: i64) -> u64 {
    (zxid as u64) & 0xffff_ffff
}
