//! The workloads and the two ways of driving them.
//!
//! - Closed loop: `clients` sessions, each keeping `inflight` requests
//!   outstanding; latency is from send to reply.
//! - Open loop: the same sessions send at a fixed total `rate`, each request
//!   at its scheduled time whatever the replies do; latency is from the
//!   *scheduled* time, so a server that stalls is charged for every request
//!   it held up (coordinated omission corrected).
//!
//! Every session pipelines on one connection and reads replies in order
//! (ZooKeeper answers a session's requests in the order sent), checking
//! each reply's xid.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use proto::opcode::OpCode;
use proto::records::create_mode;
use proto::request::MultiOp;
use proto::ErrorCode;
use tokio::io::AsyncWriteExt;

use crate::report::{error_names, Latency, Live, Report, Tally};
use crate::wire::{self, Session, Template};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// create of new persistent znodes (unique paths).
    Create,
    /// setData on `keys` existing znodes.
    Set,
    /// getData on `keys` existing znodes.
    Get,
    /// exists on `keys` existing znodes.
    Exists,
    /// getData / setData mixed by `read_ratio`.
    Mixed,
    /// multi of `multi_ops` setData each.
    Multi,
    /// `watchers` sessions watch one znode; time from setData to the last
    /// notification (see [`crate::fanout`]).
    Watch,
    /// connect, handshake, closeSession.
    SessionChurn,
    /// connect, create an ephemeral znode, closeSession (which deletes it).
    EphemeralChurn,
    /// lock contention: every session loops acquire + release of one lock
    /// through the `zonekeeper-client` lock recipe (one operation is one
    /// acquire and release).
    Lock,
    /// create `count` znodes of `value_size` bytes, in multis of `batch`
    /// (the memory row: load, then read the server's RSS).
    Load,
}

impl Workload {
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// `host:port` of each server; sessions are spread over them in turn.
    pub servers: Vec<String>,
    pub workload: Workload,
    pub clients: usize,
    pub inflight: usize,
    /// Open loop total rate (ops/s); `None` = closed loop.
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub value_size: usize,
    pub keys: usize,
    pub read_ratio: f64,
    pub multi_ops: usize,
    pub watchers: usize,
    pub rounds: usize,
    pub count: usize,
    pub batch: usize,
    /// Parent of everything the run creates.
    pub root: String,
    /// Print a progress line this often (none if `None`).
    pub progress: Option<Duration>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            servers: vec!["127.0.0.1:2181".into()],
            workload: Workload::Get,
            clients: 64,
            inflight: 1,
            rate: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            value_size: 100,
            keys: 1000,
            read_ratio: 0.9,
            multi_ops: 4,
            watchers: 1000,
            rounds: 5,
            count: 100_000,
            batch: 100,
            root: "/bench".into(),
            progress: None,
        }
    }
}

/// A unique tag for this process's run, so repeated runs against the same
/// server do not collide on paths.
fn run_tag() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}{:x}", std::process::id(), t.subsec_nanos())
}

/// What a session sends next.
enum Gen {
    /// Cycles through pre-encoded requests (get/set/exists/multi), starting
    /// at a per-session offset.
    Cycle {
        templates: Arc<Vec<Template>>,
        at: usize,
    },
    /// Reads and writes mixed by a ratio.
    Mixed {
        reads: Arc<Vec<Template>>,
        writes: Arc<Vec<Template>>,
        at: usize,
        read_per_mille: u64,
        rng: u64,
    },
    /// Creates of new znodes under `prefix`.
    Create {
        prefix: String,
        value: Vec<u8>,
        seq: u64,
    },
    /// Batches of creates, taken from a shared counter until `count`.
    Load {
        next: Arc<AtomicUsize>,
        batches: usize,
        batch: usize,
        base: String,
        value: Vec<u8>,
    },
}

impl Gen {
    /// Appends the next request with `xid`; false when there is no more work.
    fn write(&mut self, xid: i32, out: &mut Vec<u8>) -> bool {
        match self {
            Gen::Cycle { templates, at } => {
                templates[*at].stamp(xid, out);
                *at = (*at + 1) % templates.len();
            }
            Gen::Mixed {
                reads,
                writes,
                at,
                read_per_mille,
                rng,
            } => {
                // xorshift64: cheap and good enough to mix op kinds.
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                let t = if *rng % 1000 < *read_per_mille {
                    reads
                } else {
                    writes
                };
                t[*at].stamp(xid, out);
                *at = (*at + 1) % t.len();
            }
            Gen::Create { prefix, value, seq } => {
                wire::create(&format!("{prefix}{seq}"), value, create_mode::PERSISTENT).stamp(xid, out);
                *seq += 1;
            }
            Gen::Load {
                next,
                batches,
                batch,
                base,
                value,
            } => {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= *batches {
                    return false;
                }
                let ops = (0..*batch)
                    .map(|i| {
                        let n = b * *batch + i;
                        MultiOp::Create {
                            op: OpCode::Create,
                            req: wire::create_req(
                                &format!("{base}/p{}/n{n}", n / 1000),
                                value,
                                create_mode::PERSISTENT,
                            ),
                        }
                    })
                    .collect();
                wire::multi(ops).stamp(xid, out);
            }
        }
        true
    }
}

/// Creates `path`; an existing node is fine.
async fn ensure(s: &mut Session, path: &str, value: &[u8]) -> anyhow::Result<()> {
    let err = wire::call(s, 1, &wire::create(path, value, create_mode::PERSISTENT)).await?;
    if err != 0 && err != ErrorCode::NodeExists.code() {
        bail!("creating {path} failed with error code {err}");
    }
    Ok(())
}

/// Creates many nodes pipelined on one session; existing ones are fine.
async fn ensure_many(s: &mut Session, paths: &[String], value: &[u8]) -> anyhow::Result<()> {
    for chunk in paths.chunks(256) {
        let mut out = Vec::new();
        for (i, p) in chunk.iter().enumerate() {
            wire::create(p, value, create_mode::PERSISTENT).stamp(i as i32 + 10, &mut out);
        }
        s.writer.write_all(&out).await?;
        let mut got = 0;
        while got < chunk.len() {
            let f = s.reader.frame().await?;
            let h = wire::reply_header(&f)?;
            if h.xid < 0 {
                continue;
            }
            if h.err != 0 && h.err != ErrorCode::NodeExists.code() {
                bail!("creating {} failed with error code {}", chunk[got], h.err);
            }
            got += 1;
        }
    }
    Ok(())
}

fn key_paths(cfg: &RunConfig) -> Vec<String> {
    (0..cfg.keys).map(|i| format!("{}/k-{i}", cfg.root)).collect()
}

/// Prepares the tree and returns one generator factory.
async fn setup(cfg: &RunConfig) -> anyhow::Result<Box<dyn Fn(usize) -> Gen + Send + Sync>> {
    let value = vec![b'v'; cfg.value_size];
    let mut s = wire::connect(&cfg.servers[0]).await?;
    ensure(&mut s, &cfg.root, b"").await?;
    let tag = run_tag();
    let factory: Box<dyn Fn(usize) -> Gen + Send + Sync> = match cfg.workload {
        Workload::Get | Workload::Set | Workload::Exists | Workload::Mixed | Workload::Multi => {
            let keys = key_paths(cfg);
            ensure_many(&mut s, &keys, &value).await?;
            let reads: Arc<Vec<Template>> = Arc::new(match cfg.workload {
                Workload::Exists => keys.iter().map(|k| wire::exists(k)).collect(),
                _ => keys.iter().map(|k| wire::get_data(k, false)).collect(),
            });
            let writes: Arc<Vec<Template>> = Arc::new(match cfg.workload {
                Workload::Multi => (0..keys.len())
                    .map(|i| {
                        wire::multi(
                            (0..cfg.multi_ops)
                                .map(|j| {
                                    MultiOp::SetData(proto::records::SetDataRequest {
                                        path: keys[(i + j) % keys.len()].clone(),
                                        data: Some(value.clone()),
                                        version: -1,
                                    })
                                })
                                .collect(),
                        )
                    })
                    .collect(),
                _ => keys.iter().map(|k| wire::set_data(k, &value)).collect(),
            });
            let n = keys.len();
            let workload = cfg.workload;
            let read_per_mille = (cfg.read_ratio.clamp(0.0, 1.0) * 1000.0).round() as u64;
            Box::new(move |client| {
                let at = (client * 7919) % n;
                match workload {
                    Workload::Get | Workload::Exists => Gen::Cycle {
                        templates: reads.clone(),
                        at,
                    },
                    Workload::Set | Workload::Multi => Gen::Cycle {
                        templates: writes.clone(),
                        at,
                    },
                    _ => Gen::Mixed {
                        reads: reads.clone(),
                        writes: writes.clone(),
                        at,
                        read_per_mille,
                        rng: 0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                    },
                }
            })
        }
        Workload::Create => {
            let parent = format!("{}/c-{tag}", cfg.root);
            ensure(&mut s, &parent, b"").await?;
            Box::new(move |client| Gen::Create {
                prefix: format!("{parent}/{client}-"),
                value: value.clone(),
                seq: 0,
            })
        }
        Workload::Load => {
            let base = format!("{}/m-{tag}", cfg.root);
            ensure(&mut s, &base, b"").await?;
            let parents: Vec<String> = (0..cfg.count.div_ceil(1000))
                .map(|p| format!("{base}/p{p}"))
                .collect();
            ensure_many(&mut s, &parents, b"").await?;
            let next = Arc::new(AtomicUsize::new(0));
            let batches = cfg.count.div_ceil(cfg.batch.max(1));
            let batch = cfg.batch.max(1);
            Box::new(move |_| Gen::Load {
                next: next.clone(),
                batches,
                batch,
                base: base.clone(),
                value: value.clone(),
            })
        }
        Workload::Watch | Workload::SessionChurn | Workload::EphemeralChurn | Workload::Lock => {
            unreachable!("driven elsewhere")
        }
    };
    wire::close(s).await;
    Ok(factory)
}

/// Starts all sessions together: each connects, then waits until every
/// session has, and only then learns the measuring window.
struct Start {
    connected: tokio::sync::Barrier,
    go: tokio::sync::Barrier,
    window: std::sync::OnceLock<Window>,
}

impl Start {
    async fn wait(&self) -> Window {
        self.connected.wait().await;
        self.go.wait().await;
        *self.window.get().expect("set between the barriers")
    }
}

/// The measuring window shared by all sessions.
#[derive(Clone, Copy)]
struct Window {
    /// When sending starts (warm-up begins).
    begin: Instant,
    from: Instant,
    until: Instant,
}

impl Window {
    /// Throughput counts the replies that arrived in the window; latency is
    /// recorded for every request sent in it, however late its reply (an
    /// overloaded server in an open loop shows as latency, not as nothing).
    fn count(&self, t: &mut Tally, live: &Live, sent: Instant, now: Instant, err: i32) {
        live.add(err);
        if now >= self.from && now <= self.until {
            t.count(err);
        }
        if sent >= self.from && sent < self.until {
            t.record_latency(now - sent);
        }
    }
}

/// Reads every buffered reply, matching each to the oldest outstanding
/// request. Notifications and pings are skipped.
fn drain_replies(
    s: &mut Session,
    inflight: &mut VecDeque<(i32, Instant)>,
    tally: &mut Tally,
    live: &Live,
    w: Window,
) -> anyhow::Result<()> {
    while let Some(f) = s.reader.try_frame()? {
        let now = Instant::now();
        let h = wire::reply_header(&f)?;
        if h.xid < 0 {
            continue;
        }
        let (xid, sent) = inflight
            .pop_front()
            .ok_or_else(|| anyhow!("reply with xid {} to no outstanding request", h.xid))?;
        if xid != h.xid {
            bail!("reply out of order: expected xid {xid}, got {}", h.xid);
        }
        w.count(tally, live, sent, now, h.err);
    }
    Ok(())
}

/// One closed-loop session: keeps `k` requests outstanding until the window
/// ends (or the generator runs out), then waits for the last replies.
async fn closed_session(
    addr: String,
    mut gen: Gen,
    k: usize,
    start: Arc<Start>,
    live: Arc<Live>,
) -> anyhow::Result<Tally> {
    let s = wire::connect(&addr).await;
    let w = start.wait().await;
    let mut s = s?;
    let mut tally = Tally::default();
    let mut inflight: VecDeque<(i32, Instant)> = VecDeque::with_capacity(k);
    let mut out = Vec::with_capacity(k * 256);
    let mut xid = 1i32;
    let mut exhausted = false;
    loop {
        let now = Instant::now();
        if now < w.until && !exhausted {
            while inflight.len() < k {
                if !gen.write(xid, &mut out) {
                    exhausted = true;
                    break;
                }
                inflight.push_back((xid, now));
                xid = xid.wrapping_add(1) & 0x3fff_ffff;
            }
        }
        if !out.is_empty() {
            s.writer.write_all(&out).await?;
            out.clear();
        }
        if inflight.is_empty() {
            break;
        }
        s.reader.fill().await?;
        drain_replies(&mut s, &mut inflight, &mut tally, &live, w)?;
    }
    wire::close(s).await;
    Ok(tally)
}

/// One open-loop session: sends at `interval`, charging latency from each
/// request's scheduled time.
async fn open_session(
    addr: String,
    mut gen: Gen,
    interval: Duration,
    stagger: f64,
    start: Arc<Start>,
    live: Arc<Live>,
) -> anyhow::Result<Tally> {
    let s = wire::connect(&addr).await;
    let w = start.wait().await;
    let mut s = s?;
    let first = w.begin + interval.mul_f64(stagger);
    let mut tally = Tally::default();
    let mut inflight: VecDeque<(i32, Instant)> = VecDeque::new();
    let mut out = Vec::new();
    let mut xid = 1i32;
    let mut next = first;
    loop {
        let sending = next < w.until;
        if !sending && inflight.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()), if sending => {
                let now = Instant::now();
                while next <= now && next < w.until {
                    if !gen.write(xid, &mut out) {
                        next = w.until;
                        break;
                    }
                    inflight.push_back((xid, next));
                    xid = xid.wrapping_add(1) & 0x3fff_ffff;
                    next += interval;
                }
                s.writer.write_all(&out).await?;
                out.clear();
            }
            r = s.reader.fill(), if !inflight.is_empty() => {
                r?;
                drain_replies(&mut s, &mut inflight, &mut tally, &live, w)?;
            }
        }
    }
    wire::close(s).await;
    Ok(tally)
}

/// One churn session loop: connect, (create an ephemeral,) close, repeat.
async fn churn_session(
    addr: String,
    ephemeral: Option<String>,
    value: Vec<u8>,
    start: Arc<Start>,
    live: Arc<Live>,
) -> anyhow::Result<Tally> {
    let w = start.wait().await;
    let mut tally = Tally::default();
    let mut seq = 0u64;
    let close = wire::close_session();
    while Instant::now() < w.until {
        let sent = Instant::now();
        let mut s = match wire::connect(&addr).await {
            Ok(s) => s,
            Err(e) => {
                live.add(-1);
                if tally.failures.len() < 20 {
                    tally.failures.push(format!("{e:#}"));
                }
                continue;
            }
        };
        let mut err = 0;
        if let Some(prefix) = &ephemeral {
            err = wire::call(
                &mut s,
                1,
                &wire::create(&format!("{prefix}{seq}"), &value, create_mode::EPHEMERAL),
            )
            .await?;
            seq += 1;
        }
        let e2 = wire::call(&mut s, 2, &close).await?;
        if err == 0 {
            err = e2;
        }
        w.count(&mut tally, &live, sent, Instant::now(), err);
    }
    Ok(tally)
}

/// One lock-contention session: acquire, release, repeat, through the
/// client crate's lock recipe.
async fn lock_session(
    servers: String,
    path: String,
    start: Arc<Start>,
    live: Arc<Live>,
) -> anyhow::Result<Tally> {
    let cs: zonekeeper_client::connect_string::ConnectString = servers
        .parse()
        .map_err(|e| anyhow!("connect string {servers}: {e:?}"))?;
    let client = zonekeeper_client::Client::connect(zonekeeper_client::ClientConfig::new(cs)).await;
    let w = start.wait().await;
    let client = client.map_err(|e| anyhow!("connecting: {e}"))?;
    let lock = zonekeeper_client::recipes::Lock::new(client.clone(), &path).map_err(|e| anyhow!("{e}"))?;
    let mut tally = Tally::default();
    while Instant::now() < w.until {
        let sent = Instant::now();
        let guard = lock.acquire(None).await.map_err(|e| anyhow!("acquire: {e}"))?;
        lock.release(guard).await.map_err(|e| anyhow!("release: {e}"))?;
        w.count(&mut tally, &live, sent, Instant::now(), 0);
    }
    let _ = client.close().await;
    Ok(tally)
}

/// Runs a workload and reports what it measured. Connection failures are
/// reported in [`Report::failures`], not returned as errors, so a partial
/// result is still printed; setup failures are errors.
pub async fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    if cfg.servers.is_empty() {
        bail!("no servers given");
    }
    if cfg.workload == Workload::Watch {
        return crate::fanout::run(cfg).await;
    }
    let live = Arc::new(Live::default());
    let churn = matches!(
        cfg.workload,
        Workload::SessionChurn | Workload::EphemeralChurn | Workload::Lock
    );
    let tag = run_tag();
    let factory = if churn { None } else { Some(setup(cfg).await?) };
    let mut eph_parent = None;
    if matches!(cfg.workload, Workload::EphemeralChurn | Workload::Lock) {
        let mut s = wire::connect(&cfg.servers[0]).await?;
        ensure(&mut s, &cfg.root, b"").await?;
        let p = format!("{}/e-{}", cfg.root, run_tag());
        ensure(&mut s, &p, b"").await?;
        wire::close(s).await;
        eph_parent = Some(p);
    }
    let load = cfg.workload == Workload::Load;
    // A load runs until the generator runs out; it is all measured.
    let (warmup, duration) = if load {
        (Duration::ZERO, Duration::from_secs(24 * 3600))
    } else {
        (cfg.warmup, cfg.duration)
    };
    let start = Arc::new(Start {
        connected: tokio::sync::Barrier::new(cfg.clients + 1),
        go: tokio::sync::Barrier::new(cfg.clients + 1),
        window: std::sync::OnceLock::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..cfg.clients {
        let addr = cfg.servers[c % cfg.servers.len()].clone();
        let live = live.clone();
        if cfg.workload == Workload::Lock {
            let path = format!("{}/lock-{}", cfg.root, tag);
            tasks.spawn(lock_session(cfg.servers.join(","), path, start.clone(), live));
            continue;
        }
        if churn {
            let eph = eph_parent.as_ref().map(|p| format!("{p}/{c}-"));
            let value = vec![b'v'; cfg.value_size];
            tasks.spawn(churn_session(addr, eph, value, start.clone(), live));
            continue;
        }
        let gen = factory.as_ref().expect("set up")(c);
        match cfg.rate {
            Some(rate) if !load => {
                let interval = Duration::from_secs_f64(cfg.clients as f64 / rate.max(0.001));
                // Stagger the sessions evenly over one interval.
                let stagger = c as f64 / cfg.clients as f64;
                tasks.spawn(open_session(addr, gen, interval, stagger, start.clone(), live));
            }
            _ => {
                tasks.spawn(closed_session(
                    addr,
                    gen,
                    cfg.inflight.max(1),
                    start.clone(),
                    live,
                ));
            }
        }
    }
    start.connected.wait().await;
    let begin = Instant::now();
    let w = Window {
        begin,
        from: begin + warmup,
        until: begin + warmup + duration,
    };
    start.window.set(w).ok().expect("set once");
    start.go.wait().await;
    let progress = cfg
        .progress
        .map(|every| crate::report::progress(cfg.workload.name(), live.clone(), warmup + duration, every));
    let mut total = Tally::default();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(t)) => total.merge(t),
            Ok(Err(e)) => total.failures.push(format!("{e:#}")),
            Err(e) => total.failures.push(format!("session task failed: {e}")),
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let seconds = if load {
        begin.elapsed().as_secs_f64()
    } else {
        duration.as_secs_f64()
    };
    let mut extra = std::collections::BTreeMap::new();
    // Everything the servers did, warm-up and drain included (for ops per
    // CPU-second, measured by the caller over the whole run).
    extra.insert(
        "total_ops".into(),
        serde_json::json!(live.ops.load(std::sync::atomic::Ordering::Relaxed)),
    );
    if load {
        extra.insert("znodes".into(), serde_json::json!(cfg.count));
        extra.insert(
            "znodes_per_second".into(),
            serde_json::json!(cfg.count as f64 / seconds),
        );
    }
    if cfg.workload == Workload::Multi {
        extra.insert("ops_per_multi".into(), serde_json::json!(cfg.multi_ops));
    }
    Ok(Report {
        workload: cfg.workload.name(),
        servers: cfg.servers.clone(),
        clients: cfg.clients,
        inflight: if cfg.rate.is_some() || churn {
            0
        } else {
            cfg.inflight
        },
        rate: cfg.rate.filter(|_| !load),
        value_size: cfg.value_size,
        seconds,
        ops: total.ops,
        throughput: total.ops as f64 / seconds,
        latency_us: Latency::of(&total.hist),
        errors: error_names(&total.errors),
        failures: total.failures,
        extra,
    })
}
