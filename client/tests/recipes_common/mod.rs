//! Shared setup of the recipe tests: an in-process zonekeeper server on
//! port 0 with its own data directory, `zonekeeper_client` sessions to it
//! (each a separate session, as separate processes would have), and a TCP
//! relay that can cut a client off so the server expires its session (the
//! client itself keeps pinging, so that is how a test makes a holder lose
//! its session while it thinks it is fine).
//!
//! Owns: starting, connecting, cutting and waiting with a deadline. Must
//! not: assert anything about the recipes (the test files do) or sleep to
//! let something happen.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zonekeeper_client::{Client, ClientConfig, SessionState};
use zonekeeper_server::config::Config;
use zonekeeper_server::server::{self, RunningServer};

/// How long any awaited event may take before the test fails. Generous:
/// the machine is shared; no test asserts how long something took.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Session timeout of clients that a test makes expire.
pub const SHORT_SESSION: Duration = Duration::from_millis(1500);

/// A server in this process on 127.0.0.1 with a temporary data directory.
pub struct TestServer {
    server: Option<RunningServer>,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts after the test
    /// defaults (port 0, temporary data directory, short minimum session
    /// timeout, no per-address connection limit).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config {
            client_addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            min_session_timeout: Duration::from_millis(300),
            max_client_connections: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let server = server::start(config).await.expect("server starts");
        let hub = server.hub.clone();
        eventually("the server to lead its one-member ensemble", || {
            let hub = hub.clone();
            async move { hub.raft.is_leader.load(Ordering::Relaxed) }
        })
        .await;
        TestServer {
            addr: server.client_addr,
            server: Some(server),
            _dir: dir,
        }
    }

    /// The server's shared state, for white-box checks of what no client
    /// can see (which session watches which path).
    pub fn hub(&self) -> &Arc<zonekeeper_server::hub::Hub> {
        &self.server.as_ref().expect("running").hub
    }

    /// Paths under `prefix` with a data/exists watch, and the sessions
    /// watching each; and the sessions holding a child watch on `dir`.
    pub fn watchers_under(
        &self,
        prefix: &str,
        dir: &str,
        sessions: &[i64],
    ) -> (Vec<(String, Vec<i64>)>, Vec<i64>) {
        let state = self.hub().state();
        let data: Vec<(String, Vec<i64>)> = state
            .watches
            .by_path()
            .into_iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .collect();
        let child: Vec<i64> = sessions
            .iter()
            .copied()
            .filter(|&s| !state.watches.modes(s, dir).1.is_empty())
            .collect();
        (data, child)
    }

    /// A new session (default timeouts).
    pub async fn client(&self) -> Client {
        connect(self.addr, Duration::from_secs(10)).await
    }

    /// `n` separate sessions.
    pub async fn clients(&self, n: usize) -> Vec<Client> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.client().await);
        }
        v
    }

    /// A session through a relay the test can cut, with a short session
    /// timeout, so cutting it makes the server expire the session.
    pub async fn cuttable_client(&self) -> (Client, Relay) {
        let relay = Relay::start(self.addr).await;
        let client = connect(relay.addr, SHORT_SESSION).await;
        (client, relay)
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            within("server shutdown", s.shutdown())
                .await
                .expect("clean shutdown");
        }
    }
}

pub async fn connect(addr: SocketAddr, session_timeout: Duration) -> Client {
    let servers = addr.to_string().parse().expect("connect string");
    let config = ClientConfig::new(servers)
        .with_session_timeout(session_timeout)
        .with_request_timeout(Duration::from_secs(10));
    within("connect", Client::connect(config))
        .await
        .expect("client connects")
}

/// Awaits `fut`, failing the test after [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Polls `cond` until it holds, failing after [`DEADLINE`]. Only for
/// conditions no event announces.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        loop {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Waits until `client`'s session state satisfies `pred`.
pub async fn state_reaches(client: &Client, what: &str, pred: impl Fn(&SessionState) -> bool) {
    let mut rx = client.state_changes();
    within(what, async {
        loop {
            if pred(&rx.borrow_and_update()) {
                return;
            }
            if rx.changed().await.is_err() {
                panic!("state channel closed before {what}");
            }
        }
    })
    .await
}

/// A TCP relay to the server. `cut` closes every relayed connection and
/// refuses new ones (accepts and closes them at once) until `heal`.
pub struct Relay {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    pub async fn start(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a relay");
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                // Under the lock `cut` takes, so a connection is either
                // refused or registered before a cut aborts it.
                let mut guard = conns2.lock().unwrap();
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                guard.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Relay {
            addr,
            cut,
            conns,
            accept,
        }
    }

    /// Cuts the client off: its connections close, new ones are refused.
    pub fn cut(&self) {
        let mut guard = self.conns.lock().unwrap();
        self.cut.store(true, Ordering::SeqCst);
        for c in guard.drain(..) {
            c.abort();
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// Cuts `client` off through `relay` until the server has expired its
/// session (seen by `observer`: `gone` becomes true), then lets it
/// reconnect, which tells it the session expired.
pub async fn expire_session<F, Fut>(client: &Client, relay: &Relay, gone: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    relay.cut();
    eventually("the server to expire the cut-off session", gone).await;
    relay.heal();
    state_reaches(client, "the client to learn its session expired", |s| {
        *s == SessionState::Expired
    })
    .await;
}

impl TestServer {
    /// A session through a relay, with the default (long) session timeout:
    /// cutting the relay costs requests their replies (ConnectionLoss) but
    /// not the session.
    pub async fn flaky_client(&self) -> (Client, Arc<Relay>) {
        let relay = Relay::start(self.addr).await;
        let client = connect(relay.addr, Duration::from_secs(10)).await;
        (client, Arc::new(relay))
    }
}

/// Cuts one of `relays` (chosen at random) every few milliseconds and heals
/// it at once, until stopped: every client keeps its session but loses
/// connections, and with them the replies of requests in flight.
pub struct Chaos {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
}

impl Chaos {
    pub fn start(relays: Vec<Arc<Relay>>) -> Chaos {
        use rand::Rng;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut cuts = 0;
            while !s.load(Ordering::SeqCst) {
                let (pause, i) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen_range(5..40), rng.gen_range(0..relays.len()))
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                relays[i].cut();
                relays[i].heal();
                cuts += 1;
            }
            cuts
        });
        Chaos { stop, task }
    }

    /// Stops cutting; returns how many cuts were made.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("chaos task")
    }
}

/// Counts how often `client` lost its connection (entered `Disconnected`).
pub fn count_disconnects(client: &Client) -> Arc<std::sync::atomic::AtomicU64> {
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut rx = client.state_changes();
    let n2 = n.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            if s == SessionState::Disconnected {
                n2.fetch_add(1, Ordering::Relaxed);
            }
            if s.is_terminal() {
                return;
            }
        }
    });
    n
}
