//! Helpers for tests that run a replicated ensemble of real
//! `zonekeeper-server` processes on 127.0.0.1: the member configs come from
//! `zonekeeper_server::dev` (`plan` + `config_for`, the same files
//! `zonekeeper-server dev` writes), and each member is a child process the
//! test owns, so it can `kill -9`, SIGTERM, SIGSTOP and SIGCONT it by PID.
//!
//! Ports: one base port per ensemble, with the dev contract's layout
//! (client `base+i`, admin `base+1000+i`, peer `base+2000+i`), chosen
//! below the kernel's ephemeral range (32768…) and checked free, so no
//! outgoing connection can take a member's port while it is down and a
//! restarted member gets its ports back.
//!
//! With `Opts::partitionable`, each member reaches each other member
//! through a relay in the test process (its config lists the relay as that
//! member's `peer_addr`), and `Ensemble::partition` cuts relays: a network
//! partition of running processes, client connections untouched.
//!
//! Every wait polls a condition until a deadline and then fails with what
//! it saw, and the member logs' tails when a test panics. `ENSEMBLE_KEEP=1`
//! keeps the data directories and logs.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zonekeeper_server::config::{DevArgs, MemberRole, Settings};
use zonekeeper_server::dev::{config_for, plan, DevMember};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError, Stat};

use super::process::{
    all_free, assert_no_panic, four_letter, http_get, http_status, ruok, tail, BIN, CONNECT_DEADLINE,
    EXIT_DEADLINE, START_DEADLINE,
};

/// How long an election, a catch-up or a convergence may take before a
/// test gives up (generous: 2 shared cores).
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// The ensemble tests run one at a time: each runs several server
/// processes, and two ensembles competing for 2 cores would make election
/// timing, not the servers, decide the outcome.
static SERIAL: Mutex<()> = Mutex::new(());

/// Held for a whole test: runs it alone, and prints how long it took.
pub struct Serial {
    name: &'static str,
    started: Instant,
    _lock: MutexGuard<'static, ()>,
}

pub fn serial(name: &'static str) -> Serial {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Serial {
        name,
        started: Instant::now(),
        _lock: lock,
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        println!("[{}] test took {:?}", self.name, self.started.elapsed());
    }
}

pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("ENSEMBLE_SEED") {
        Ok(s) => s.parse().expect("ENSEMBLE_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    println!("[{test}] seed {seed} (rerun with ENSEMBLE_SEED={seed})");
    seed
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Settings applied on top of the dev config of every member.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub snapshot_every_entries: Option<u64>,
    pub min_session_timeout_ms: Option<u64>,
    /// Ids of the members that are observers (raft learners).
    pub observers: Vec<u64>,
    /// Route every member's peer connections through relays the test can
    /// cut ([`Ensemble::partition`]): a network partition on loopback.
    pub partitionable: bool,
}

/// What `/v1/status` says about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: u64,
    pub role: String,
    pub leader_id: Option<u64>,
    pub last_zxid: i64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub znode_count: u64,
}

/// One member process.
struct Proc {
    child: Child,
    stopped: bool,
}

pub struct Ensemble {
    pub name: String,
    /// The peer relays, one per ordered pair of members, when
    /// [`Opts::partitionable`].
    links: Vec<Link>,
    /// `None` once kept for inspection (see `Drop`).
    dir: Option<tempfile::TempDir>,
    pub members: Vec<DevMember>,
    opts: Opts,
    procs: Vec<Option<Proc>>,
}

/// A base port whose derived ports (client, admin, peer of `n` members)
/// are all free now, below the ephemeral port range.
fn pick_base(n: u16) -> u16 {
    let mut rng = rand::thread_rng();
    for _ in 0..500 {
        let base: u16 = rng.gen_range(12_000..=29_000);
        if all_free((0..n).flat_map(|i| [base + i, base + 1000 + i, base + 2000 + i])) {
            return base;
        }
    }
    panic!("no free base port found for {n} members");
}

impl Ensemble {
    /// Starts `n` members (ids 1..=n, zones round robin over 3) and waits
    /// until every one serves clients.
    pub async fn start(name: &str, n: u16, opts: Opts) -> Ensemble {
        for attempt in 0.. {
            let mut e = Ensemble::create(name, n, opts.clone());
            for i in 0..e.members.len() {
                e.spawn(i);
            }
            match e.try_wait_all_serving().await {
                Ok(t) => {
                    println!(
                        "[{name}] {n} members serving after {t:?} (base port {})",
                        e.members[0].client_port
                    );
                    return e;
                }
                Err(msg) if attempt < 2 && msg.contains("cannot listen on") => {
                    println!("[{name}] a port was taken, retrying with other ports: {msg}");
                    continue;
                }
                Err(msg) => panic!("[{name}] ensemble did not start: {msg}"),
            }
        }
        unreachable!()
    }

    fn create(name: &str, n: u16, opts: Opts) -> Ensemble {
        let dir = tempfile::Builder::new()
            .prefix(&format!("zonekeeper-ens-{name}-"))
            .tempdir()
            .expect("creating a temp dir");
        let args = DevArgs {
            members: n,
            zones: n.min(3),
            data_dir: dir.path().to_path_buf(),
            base_port: pick_base(n),
        };
        let members = plan(&args).expect("planning the ensemble");
        let mut links = Vec::new();
        if opts.partitionable {
            for from in &members {
                for to in &members {
                    if from.id != to.id {
                        links.push(Link::start(from.id, to.id, to.peer_port));
                    }
                }
            }
        }
        let e = Ensemble {
            name: name.to_string(),
            links,
            dir: Some(dir),
            procs: members.iter().map(|_| None).collect(),
            members,
            opts,
        };
        for i in 0..e.members.len() {
            fs::create_dir_all(&e.members[i].dir).unwrap();
            e.write_config(i);
        }
        e
    }

    /// The dev config of member `i` with [`Opts`] applied.
    fn write_config(&self, i: usize) {
        let text = config_for(&self.members[i], &self.members).expect("rendering a member config");
        let mut s = Settings::from_toml(&text).expect("the dev config parses");
        if let Some(n) = self.opts.snapshot_every_entries {
            s.snapshot_every_entries = Some(n);
        }
        if let Some(ms) = self.opts.min_session_timeout_ms {
            s.min_session_timeout_ms = Some(ms);
        }
        let me = self.members[i].id;
        for m in s.members.as_mut().expect("dev configs list members") {
            if self.opts.observers.contains(&m.id) {
                m.role = MemberRole::Observer;
            }
            // This member reaches the others through its relays (it still
            // binds its own peer_addr; members are told apart by the id in
            // the handshake, not by address).
            if let Some(link) = self.links.iter().find(|l| l.from == me && l.to == m.id) {
                m.peer_addr = link.addr.to_string();
            }
        }
        fs::write(self.config_path(i), s.to_toml().unwrap()).unwrap();
    }

    /// Rewrites every member's config with `opts` (takes effect at each
    /// member's next start).
    pub fn set_opts(&mut self, opts: Opts) {
        self.opts = opts;
        for i in 0..self.members.len() {
            self.write_config(i);
        }
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.members[i].dir.join("zonekeeper.toml")
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.members[i].dir.join("server.log")
    }

    /// Member `i`'s log so far (all its runs, appended).
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    pub fn n(&self) -> usize {
        self.members.len()
    }

    pub fn id(&self, i: usize) -> u64 {
        self.members[i].id
    }

    pub fn index_of(&self, id: u64) -> usize {
        self.members.iter().position(|m| m.id == id).expect("a member id")
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        format!("127.0.0.1:{}", self.members[i].client_port)
            .parse()
            .unwrap()
    }

    pub fn admin_addr(&self, i: usize) -> SocketAddr {
        format!("127.0.0.1:{}", self.members[i].admin_port)
            .parse()
            .unwrap()
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.procs[i].is_some()
    }

    pub fn pid(&self, i: usize) -> Pid {
        Pid::from_raw(self.procs[i].as_ref().expect("member is running").child.id() as i32)
    }

    /// Starts member `i`'s process (it must not be running).
    pub fn spawn(&mut self, i: usize) {
        assert!(
            self.procs[i].is_none(),
            "member {} is already running",
            self.id(i)
        );
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("opening the member log");
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.config_path(i))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .env_remove("RUST_LOG")
            // Plain text logs (tracing-subscriber honours NO_COLOR).
            .env("NO_COLOR", "1");
        for (k, _) in std::env::vars() {
            if k.starts_with("ZONEKEEPER_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd.spawn().expect("spawning zonekeeper-server");
        self.procs[i] = Some(Proc {
            child,
            stopped: false,
        });
    }

    /// Starts member `i` and waits until it serves clients.
    pub async fn restart(&mut self, i: usize) -> Duration {
        let t = Instant::now();
        self.spawn(i);
        if let Err(msg) = self.try_wait_serving(i).await {
            panic!("[{}] member {} did not come back: {msg}", self.name, self.id(i));
        }
        t.elapsed()
    }

    /// Waits until member `i` (spawned already) serves clients.
    pub async fn restart_wait(&mut self, i: usize) {
        if let Err(msg) = self.try_wait_serving(i).await {
            panic!("[{}] member {} did not come back: {msg}", self.name, self.id(i));
        }
    }

    async fn try_wait_all_serving(&mut self) -> Result<Duration, String> {
        let t = Instant::now();
        for i in 0..self.n() {
            self.try_wait_serving(i).await?;
        }
        Ok(t.elapsed())
    }

    /// Polls until member `i` answers `ruok` on its client port (it
    /// accepts clients only once its recovered log is applied) and
    /// `/readyz` (it knows a leader).
    async fn try_wait_serving(&mut self, i: usize) -> Result<(), String> {
        let t = Instant::now();
        loop {
            let proc = self.procs[i].as_mut().expect("member is running");
            if let Some(status) = proc.child.try_wait().expect("polling the child") {
                self.procs[i] = None;
                return Err(format!(
                    "member {} exited with {status} during start-up; log:\n{}",
                    self.id(i),
                    tail(&self.log(i), 60)
                ));
            }
            if http_status(self.admin_addr(i), "/readyz").await == Some(200)
                && ruok(self.client_addr(i), Duration::from_millis(500)).await
            {
                return Ok(());
            }
            if t.elapsed() > START_DEADLINE {
                return Err(format!(
                    "member {} not serving within {START_DEADLINE:?}; log:\n{}",
                    self.id(i),
                    tail(&self.log(i), 60)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `kill -9` of member `i`; reaps it.
    pub fn kill9(&mut self, i: usize) {
        let mut p = self.procs[i].take().expect("member is running");
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    /// SIGTERM; waits for a clean exit (code 0, no panic).
    pub async fn terminate(&mut self, i: usize) -> Duration {
        let t = Instant::now();
        kill(self.pid(i), Signal::SIGTERM).expect("sending SIGTERM");
        loop {
            let p = self.procs[i].as_mut().expect("member is running");
            if let Some(status) = p.child.try_wait().expect("polling the child") {
                self.procs[i] = None;
                let log = self.log(i);
                assert_eq!(
                    status.code(),
                    Some(0),
                    "member {} exited with {status} after SIGTERM; log:\n{}",
                    self.id(i),
                    tail(&log, 60)
                );
                assert_no_panic(&log);
                return t.elapsed();
            }
            if t.elapsed() > EXIT_DEADLINE {
                panic!(
                    "member {} still running {EXIT_DEADLINE:?} after SIGTERM; log:\n{}",
                    self.id(i),
                    tail(&self.log(i), 60)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGSTOP: the process freezes with its sockets open (peers' packets
    /// queue in its buffers), a cheap partition.
    ///
    /// `kill` returns before the process has stopped (only one of its
    /// threads is woken to start the group stop; on a loaded machine the
    /// others can keep running for a while), so this waits until every
    /// thread shows state `T` in `/proc`: a write sent afterwards cannot be
    /// handled by the frozen member.
    pub fn sigstop(&mut self, i: usize) {
        let pid = self.pid(i);
        kill(pid, Signal::SIGSTOP).expect("sending SIGSTOP");
        self.procs[i].as_mut().unwrap().stopped = true;
        let t = Instant::now();
        while !all_threads_stopped(pid) {
            assert!(
                t.elapsed() < SETTLE_DEADLINE,
                "member {} not stopped {SETTLE_DEADLINE:?} after SIGSTOP",
                self.id(i)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn sigcont(&mut self, i: usize) {
        kill(self.pid(i), Signal::SIGCONT).expect("sending SIGCONT");
        self.procs[i].as_mut().unwrap().stopped = false;
    }

    /// Cuts every peer link between members of different `groups`
    /// (member indices; a member in no group is cut from everyone), in both
    /// directions, and closes the connections already open on them. Client
    /// connections are untouched. Needs [`Opts::partitionable`].
    pub fn partition(&self, groups: &[&[usize]]) {
        assert!(
            !self.links.is_empty(),
            "the ensemble was not started partitionable"
        );
        let group_of = |id: u64| groups.iter().position(|g| g.iter().any(|&i| self.id(i) == id));
        for l in &self.links {
            let apart = match (group_of(l.from), group_of(l.to)) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            };
            if apart {
                l.cut();
            } else {
                l.restore();
            }
        }
    }

    /// Restores every peer link.
    pub fn heal(&self) {
        for l in &self.links {
            l.restore();
        }
    }

    /// `/v1/status` of member `i`, if it answers.
    pub async fn status(&self, i: usize) -> Option<Status> {
        let (code, body) = http_get(self.admin_addr(i), "/v1/status").await?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(Status {
            id: v["id"].as_u64()?,
            role: v["role"].as_str()?.to_string(),
            leader_id: v["leader_id"].as_u64(),
            last_zxid: v["last_zxid"].as_i64()?,
            term: v["raft_term"].as_u64()?,
            commit: v["raft_commit_index"].as_u64()?,
            applied: v["raft_applied_index"].as_u64()?,
            znode_count: v["stats"]["znode_count"].as_u64()?,
        })
    }

    /// Polls until every member in `live` reports the same leader, that
    /// leader is in `live` and calls itself leader; returns its index.
    pub async fn wait_leader(&self, live: &[usize]) -> usize {
        let t = Instant::now();
        let mut seen = Vec::new();
        loop {
            seen.clear();
            for &i in live {
                seen.push(self.status(i).await);
            }
            if let Some(Some(first)) = seen.first() {
                if let Some(leader) = first.leader_id {
                    let agreed = seen
                        .iter()
                        .all(|s| s.as_ref().is_some_and(|s| s.leader_id == Some(leader)));
                    let li = self.members.iter().position(|m| m.id == leader);
                    if let (true, Some(li)) = (agreed, li) {
                        let k = live.iter().position(|&i| i == li);
                        if let Some(k) = k {
                            if seen[k].as_ref().is_some_and(|s| s.role == "leader") {
                                return li;
                            }
                        }
                    }
                }
            }
            if t.elapsed() > SETTLE_DEADLINE {
                panic!(
                    "[{}] no agreed leader among members {:?} within {SETTLE_DEADLINE:?}; statuses: {seen:?}",
                    self.name,
                    live.iter().map(|&i| self.id(i)).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the members in `live` have applied the same log (same
    /// `last_zxid` and znode count); returns the status of the first.
    pub async fn wait_converged(&self, live: &[usize]) -> Status {
        let t = Instant::now();
        loop {
            let mut seen = Vec::new();
            for &i in live {
                seen.push(self.status(i).await);
            }
            if seen.iter().all(Option::is_some) {
                let s: Vec<Status> = seen.iter().map(|s| s.clone().unwrap()).collect();
                if s.iter()
                    .all(|x| x.last_zxid == s[0].last_zxid && x.znode_count == s[0].znode_count)
                {
                    return s[0].clone();
                }
            }
            if t.elapsed() > SETTLE_DEADLINE {
                panic!(
                    "[{}] members {:?} did not converge within {SETTLE_DEADLINE:?}; statuses: {seen:?}",
                    self.name,
                    live.iter().map(|&i| self.id(i)).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `host:port,…` of the members `which`.
    pub fn connect_string(&self, which: &[usize]) -> String {
        which
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.members[i].client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    /// A client with a fresh session on one of `which`.
    pub async fn client(&self, which: &[usize], session_timeout: Duration) -> Client {
        self.client_with(which, Client::connector().session_timeout(session_timeout))
            .await
            .unwrap_or_else(|e| panic!("[{}] connecting to members {which:?}: {e}", self.name))
    }

    pub async fn client_with(
        &self,
        which: &[usize],
        connector: &mut zookeeper_client::Connector,
    ) -> Result<Client, ZkError> {
        let cs = self.connect_string(which);
        match tokio::time::timeout(CONNECT_DEADLINE, connector.connect(&cs)).await {
            Ok(r) => r,
            Err(_) => panic!(
                "[{}] no session established with {cs} within {CONNECT_DEADLINE:?}",
                self.name
            ),
        }
    }

    /// Whether member `i`'s `cons` lists a connection of `session`.
    pub async fn serves_session(&self, i: usize, session: i64) -> bool {
        four_letter(self.client_addr(i), "cons")
            .await
            .is_some_and(|out| out.contains(&format!("sid={session:#x},")))
    }

    /// Prints the tails of the member logs (on failure).
    pub fn dump_logs(&self, lines: usize) {
        for i in 0..self.n() {
            eprintln!(
                "----- [{}] member {} log ({}) -----\n{}",
                self.name,
                self.id(i),
                self.log_path(i).display(),
                tail(&self.log(i), lines)
            );
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs(40);
        }
        for p in self.procs.iter_mut().flatten() {
            // SIGKILL also ends a SIGSTOPped process.
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for l in &self.links {
            l.stop();
        }
        if std::env::var_os("ENSEMBLE_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("[{}] kept data and logs in {}", self.name, dir.keep().display());
            }
        }
    }
}

/// Whether every thread of `pid` is stopped (state `T` or `t` in
/// `/proc/PID/task/TID/stat`).
fn all_threads_stopped(pid: Pid) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                // "TID (comm) STATE …": comm may hold spaces and parentheses.
                let (_, rest) = stat.rsplit_once(')')?;
                rest.trim_start().chars().next()
            })
            // A thread that exited meanwhile does not run either.
            .is_none_or(|state| state == 'T' || state == 't')
    })
}

/// A relay from member `from` to member `to`'s peer listener: the address
/// `from` dials to reach `to`. Cut, it closes its open connections and
/// every new one at once, so no message passes in either direction.
struct Link {
    from: u64,
    to: u64,
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::AbortHandle,
}

impl Link {
    fn start(from: u64, to: u64, target_port: u16) -> Link {
        let std_listener = TcpListener::bind("127.0.0.1:0").expect("binding a relay");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("a tokio runtime");
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let target: SocketAddr = format!("127.0.0.1:{target_port}").parse().unwrap();
        let accept = {
            let (cut, conns) = (cut.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    // Under the lock `cut` takes, so a connection is either
                    // refused or registered before the cut closes it.
                    let mut c = conns.lock().unwrap();
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    c.retain(|h| !h.is_finished());
                    c.push(task.abort_handle());
                }
            })
            .abort_handle()
        };
        Link {
            from,
            to,
            addr,
            cut,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        let mut c = self.conns.lock().unwrap();
        self.cut.store(true, Ordering::SeqCst);
        for h in c.drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    fn stop(&self) {
        self.cut();
        self.accept.abort();
    }
}

/// Polls `check` until it yields `Some` or `deadline` passes; panics with
/// `what` and the last value seen.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let t = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                if t.elapsed() > deadline {
                    panic!("{what}: not within {deadline:?}; last: {last}");
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a request failed because its connection was lost (the outcome
/// of a write is then unknown). zookeeper-client 0.9 reports
/// `ConnectionLoss` for requests it could not send, and `Error::Custom`
/// for those in flight when the connection broke: the I/O error of the
/// socket (`Error::other`) or "no response from connection in …ms".
pub fn is_connection_loss(e: &ZkError) -> bool {
    matches!(e, ZkError::ConnectionLoss | ZkError::Custom(_))
}

/// Retries `op` while it fails with a connection loss (a client failing
/// over); other errors are returned.
pub async fn retry_on_loss<T, F, Fut>(what: &str, mut op: F) -> Result<T, ZkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ZkError>>,
{
    let t = Instant::now();
    loop {
        match tokio::time::timeout(SETTLE_DEADLINE, op()).await {
            Ok(Err(e)) if is_connection_loss(&e) && t.elapsed() < SETTLE_DEADLINE => {
                tokio::time::sleep(POLL).await;
            }
            Ok(r) => return r,
            Err(_) => panic!("{what}: no answer within {SETTLE_DEADLINE:?}"),
        }
    }
}

/// Every znode below `/` except `/zookeeper`: path → (data, stat).
pub type Tree = BTreeMap<String, (Vec<u8>, Stat)>;

/// Reads the whole tree through `client`, one level at a time with the
/// reads of a level pipelined.
pub async fn dump(client: &Client) -> Tree {
    let mut tree = Tree::new();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for chunk in level.chunks(256) {
            let datas: Vec<_> = chunk.iter().map(|p| client.get_data(p)).collect();
            let kids: Vec<_> = chunk.iter().map(|p| client.list_children(p)).collect();
            for ((p, d), k) in chunk.iter().zip(datas).zip(kids) {
                let (data, stat) = d.await.unwrap_or_else(|e| panic!("reading {p}: {e}"));
                tree.insert(p.clone(), (data, stat));
                for child in k.await.unwrap_or_else(|e| panic!("listing {p}: {e}")) {
                    let cp = if p == "/" {
                        format!("/{child}")
                    } else {
                        format!("{p}/{child}")
                    };
                    if cp != "/zookeeper" {
                        next.push(cp);
                    }
                }
            }
        }
        level = next;
    }
    tree
}

/// Panics with the first differences if two dumps differ.
pub fn assert_same_tree(a: &Tree, b: &Tree, ctx: &str) {
    if a == b {
        return;
    }
    let mut diffs = Vec::new();
    for (p, va) in a {
        match b.get(p) {
            None => diffs.push(format!("{p}: only in the first")),
            Some(vb) if vb != va => diffs.push(format!("{p}: {va:?} != {vb:?}")),
            _ => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            diffs.push(format!("{p}: only in the second"));
        }
    }
    let n = diffs.len();
    diffs.truncate(10);
    panic!(
        "{ctx}: trees differ ({} vs {} nodes, {n} differences); first:\n{}",
        a.len(),
        b.len(),
        diffs.join("\n")
    );
}

pub fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        Duration::ZERO
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2
    }
}

// ---------------------------------------------------------------------------
// Write load with a record of what was acknowledged.

pub const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
pub const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
pub const EPHEMERAL_SEQ: CreateOptions<'static> =
    CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());

/// What the writers were told succeeded, and what they tried.
#[derive(Default, Clone)]
pub struct Book {
    /// Acknowledged creates: path → data.
    pub acked: BTreeMap<String, Vec<u8>>,
    /// Every create sent (acknowledged or not): path → data.
    pub tried: BTreeMap<String, Vec<u8>>,
    /// Highest acknowledged version of each writer's hot node.
    pub hot: BTreeMap<String, i32>,
    /// Highest zxid in any acknowledgement.
    pub max_zxid: i64,
}

/// The data of version `v` of a hot node (every version is written by a
/// conditional setData, so the data names the version).
pub fn hot_data(path: &str, v: i32) -> Vec<u8> {
    format!("{path}@{v}").into_bytes()
}

#[derive(Default)]
pub struct LoadShared {
    pub stop: AtomicBool,
    pub book: Mutex<Book>,
    pub acks: AtomicU64,
    /// Writes that failed with a retriable error (connection loss).
    pub lost: AtomicU64,
    /// (issued, acknowledged) of every acknowledged write.
    pub successes: Mutex<Vec<(Instant, Instant)>>,
    /// Errors no failover explains.
    pub unexpected: Mutex<Vec<String>>,
}

impl LoadShared {
    fn unexpected(&self, what: String) {
        println!("unexpected: {what}");
        self.unexpected.lock().unwrap().push(what);
    }
}

/// Writers, each with its own session on a connect string naming every
/// member, writing one request at a time until stopped: creates under
/// `{prefix}/w{w}` (a fresh path each time, random data) and conditional
/// setData of `{prefix}/hot{w}`.
pub struct Load {
    pub shared: Arc<LoadShared>,
    pub prefix: String,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub async fn start(
        ens: &Ensemble,
        prefix: &str,
        writers: usize,
        session_timeout: Duration,
        seed: u64,
    ) -> Load {
        let shared = Arc::new(LoadShared::default());
        let setup = ens.client(&ens.all(), session_timeout).await;
        let st = setup.create(prefix, b"", &PERSISTENT).await.unwrap().0;
        let mut book = Book {
            max_zxid: st.czxid,
            ..Book::default()
        };
        book.acked.insert(prefix.to_string(), vec![]);
        book.tried.insert(prefix.to_string(), vec![]);
        for w in 0..writers {
            let dir = format!("{prefix}/w{w}");
            setup.create(&dir, b"", &PERSISTENT).await.unwrap();
            book.acked.insert(dir.clone(), vec![]);
            book.tried.insert(dir, vec![]);
            let hot = format!("{prefix}/hot{w}");
            let (st, _) = setup.create(&hot, &hot_data(&hot, 0), &PERSISTENT).await.unwrap();
            book.hot.insert(hot, 0);
            book.max_zxid = book.max_zxid.max(st.czxid);
        }
        *shared.book.lock().unwrap() = book;
        let mut handles = Vec::new();
        for w in 0..writers {
            let client = ens.client(&ens.all(), session_timeout).await;
            let rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
            handles.push(tokio::spawn(writer(
                client,
                prefix.to_string(),
                w,
                rng,
                shared.clone(),
            )));
        }
        Load {
            shared,
            prefix: prefix.to_string(),
            handles,
        }
    }

    pub fn acks(&self) -> u64 {
        self.shared.acks.load(Ordering::SeqCst)
    }

    /// Polls until `more` further writes are acknowledged.
    pub async fn wait_acks(&self, more: u64) {
        let target = self.acks() + more;
        wait_for("writers making progress", SETTLE_DEADLINE, || async {
            let a = self.acks();
            if a >= target {
                Ok(())
            } else {
                Err(format!(
                    "{a} of {target} acknowledged; unexpected: {:?}",
                    self.shared.unexpected.lock().unwrap()
                ))
            }
        })
        .await
    }

    /// The earliest acknowledgement, measured from `t`, of a write issued
    /// at or after `t`.
    pub fn first_ack_issued_after(&self, t: Instant) -> Option<Duration> {
        self.shared
            .successes
            .lock()
            .unwrap()
            .iter()
            .filter(|(issued, _)| *issued >= t)
            .map(|(_, done)| *done - t)
            .min()
    }

    /// Stops the writers and waits for them; returns the book.
    pub async fn stop(self) -> Book {
        self.shared.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            h.await.expect("a writer panicked");
        }
        let unexpected = self.shared.unexpected.lock().unwrap().clone();
        assert!(
            unexpected.is_empty(),
            "writers saw unexpected errors: {unexpected:#?}"
        );
        let book = self.shared.book.lock().unwrap().clone();
        book
    }
}

/// A writer's pause after a connection loss (bounds the error rate while
/// no member is reachable; small next to an election).
const LOSS_BACKOFF: Duration = Duration::from_millis(10);

async fn writer(client: Client, prefix: String, w: usize, mut rng: StdRng, shared: Arc<LoadShared>) {
    let hot = format!("{prefix}/hot{w}");
    let mut version = 0;
    let mut k = 0u64;
    // A session's writes apply in order, and zxids grow across leader
    // changes (the term is their high half).
    let mut last_zxid = 0i64;
    let mut in_order = |zxid: i64, what: &str| {
        if zxid <= last_zxid {
            shared.unexpected(format!(
                "writer {w}: {what} acknowledged with zxid {zxid:#x}, not above this session's previous {last_zxid:#x}"
            ));
        }
        last_zxid = zxid;
    };
    let op_deadline = Duration::from_secs(30);
    while !shared.stop.load(Ordering::SeqCst) {
        k += 1;
        if rng.gen_range(0..10) < 7 {
            let path = format!("{prefix}/w{w}/n{k}");
            let len = rng.gen_range(0..64);
            let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            shared
                .book
                .lock()
                .unwrap()
                .tried
                .insert(path.clone(), data.clone());
            let issued = Instant::now();
            match tokio::time::timeout(op_deadline, client.create(&path, &data, &PERSISTENT)).await {
                Ok(Ok((st, _))) => {
                    let done = Instant::now();
                    in_order(st.czxid, &path);
                    let mut b = shared.book.lock().unwrap();
                    b.acked.insert(path, data);
                    b.max_zxid = b.max_zxid.max(st.czxid);
                    drop(b);
                    shared.successes.lock().unwrap().push((issued, done));
                    shared.acks.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Err(e)) if is_connection_loss(&e) => {
                    shared.lost.fetch_add(1, Ordering::SeqCst);
                    // Don't spin while no member is reachable.
                    tokio::time::sleep(LOSS_BACKOFF).await;
                }
                Ok(Err(e)) => {
                    shared.unexpected(format!("writer {w}: create {path}: {e}"));
                    if matches!(e, ZkError::SessionExpired) {
                        return;
                    }
                }
                Err(_) => shared.unexpected(format!(
                    "writer {w}: create {path}: no reply within {op_deadline:?}"
                )),
            }
        } else {
            let v = version + 1;
            let issued = Instant::now();
            let res = tokio::time::timeout(
                op_deadline,
                client.set_data(&hot, &hot_data(&hot, v), Some(version)),
            )
            .await;
            let resync = match res {
                Ok(Ok(st)) => {
                    let done = Instant::now();
                    in_order(st.mzxid, &hot);
                    if st.version != v {
                        shared.unexpected(format!(
                            "writer {w}: setData of {hot} expecting version {version} answered version {}",
                            st.version
                        ));
                    }
                    version = v;
                    let mut b = shared.book.lock().unwrap();
                    b.hot.insert(hot.clone(), v);
                    b.max_zxid = b.max_zxid.max(st.mzxid);
                    drop(b);
                    shared.successes.lock().unwrap().push((issued, done));
                    shared.acks.fetch_add(1, Ordering::SeqCst);
                    false
                }
                Ok(Err(e)) if is_connection_loss(&e) => {
                    shared.lost.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(LOSS_BACKOFF).await;
                    true
                }
                // An earlier setData whose outcome was unknown committed.
                Ok(Err(ZkError::BadVersion)) => true,
                Ok(Err(e)) => {
                    shared.unexpected(format!("writer {w}: setData {hot}: {e}"));
                    if matches!(e, ZkError::SessionExpired) {
                        return;
                    }
                    true
                }
                Err(_) => {
                    shared.unexpected(format!(
                        "writer {w}: setData {hot}: no reply within {op_deadline:?}"
                    ));
                    true
                }
            };
            if resync {
                // The outcome is unknown: learn the current version.
                while !shared.stop.load(Ordering::SeqCst) {
                    match tokio::time::timeout(op_deadline, client.get_data(&hot)).await {
                        Ok(Ok((_, st))) => {
                            version = st.version;
                            break;
                        }
                        Ok(Err(e)) if is_connection_loss(&e) => tokio::time::sleep(POLL).await,
                        Ok(Err(e)) => {
                            shared.unexpected(format!("writer {w}: getData {hot}: {e}"));
                            return;
                        }
                        Err(_) => {
                            shared.unexpected(format!(
                                "writer {w}: getData {hot}: no reply within {op_deadline:?}"
                            ));
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Checks `tree` (a member's dump) against the book: every acknowledged
/// create with its data, hot nodes at or past their acknowledged version
/// with that version's data, and no node under the load's prefix that no
/// writer sent. Returns how many nodes were committed without an ack.
pub fn verify_book(tree: &Tree, book: &Book, prefix: &str, ctx: &str) -> usize {
    for (p, data) in &book.acked {
        match tree.get(p) {
            Some((d, _)) => assert_eq!(d, data, "{ctx}: acknowledged create of {p} has other data"),
            None => panic!("{ctx}: acknowledged create of {p} is lost"),
        }
    }
    for (p, &v) in &book.hot {
        let (d, st) = tree
            .get(p)
            .unwrap_or_else(|| panic!("{ctx}: hot node {p} is lost"));
        assert!(
            st.version >= v,
            "{ctx}: {p} is at version {} but version {v} was acknowledged",
            st.version
        );
        assert_eq!(
            d,
            &hot_data(p, st.version),
            "{ctx}: {p} holds the data of another version"
        );
    }
    let mut unacked = 0;
    let dir_prefix = format!("{prefix}/");
    for (p, (d, _)) in tree.range(dir_prefix.clone()..) {
        if !p.starts_with(&dir_prefix) {
            break;
        }
        if book.hot.contains_key(p) {
            continue;
        }
        let sent = book
            .tried
            .get(p)
            .unwrap_or_else(|| panic!("{ctx}: phantom node {p}: no writer created it"));
        assert_eq!(d, sent, "{ctx}: {p} holds data no writer sent");
        if !book.acked.contains_key(p) {
            unacked += 1;
        }
    }
    unacked
}

/// Syncs and dumps every member in `which` through a client of its own,
/// checks each against `book`, and checks all dumps are identical.
/// Returns the first dump.
pub async fn verify_members(ens: &Ensemble, which: &[usize], book: &Book, prefix: &str, ctx: &str) -> Tree {
    let mut first: Option<(usize, Tree)> = None;
    for &i in which {
        let c = ens.client(&[i], Duration::from_secs(15)).await;
        retry_on_loss("sync", || c.sync("/")).await.unwrap();
        let tree = dump(&c).await;
        let unacked = verify_book(&tree, book, prefix, &format!("{ctx}, member {}", ens.id(i)));
        println!(
            "[{}] {ctx}: member {} has all {} acknowledged creates ({} nodes, {unacked} committed without an ack)",
            ens.name,
            ens.id(i),
            book.acked.len(),
            tree.len()
        );
        match &first {
            None => first = Some((i, tree)),
            Some((j, t)) => assert_same_tree(
                t,
                &tree,
                &format!("{ctx}: member {} vs member {}", ens.id(*j), ens.id(i)),
            ),
        }
    }
    first.expect("at least one member").1
}
