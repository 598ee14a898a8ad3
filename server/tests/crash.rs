//! Crash and restart of the real `zonekeeper-server` binary.
//!
//! - `kill9_under_write_load_keeps_every_acknowledged_write`: concurrent
//!   writers, `kill -9` at a random moment, restart on the same data
//!   directory, check every acknowledged write (several rounds, some with a
//!   small snapshot interval so recovery is snapshot + WAL tail).
//! - `sigterm_under_write_load_exits_cleanly_and_keeps_acknowledged_writes`.
//! - `clean_restart_recovers_*`: exact tree, `Stat`s, ACLs, sequence
//!   counters and zxids after SIGTERM + restart; a resumed session keeps its
//!   ephemeral, an abandoned one expires after restart.
//! - `damaged_log_tail_and_middle`: a torn WAL tail is repaired (default
//!   recovery mode) or refused (`absolute-consistency`); a flipped byte in
//!   an older record is always refused with a message naming the file.
//! - `clients_racing_a_restart_see_the_whole_recovered_log`: sessions
//!   resumed and reads sent the moment a restarted server accepts see the
//!   whole recovered log.
//!
//! Randomness comes from one seed, printed at the start; rerun a failure
//! with `CRASH_SEED=<seed>`. Run with `--nocapture` to see counts and
//! timings. No assertion depends on wall-clock durations.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::process::*;
use zookeeper_client::{Acl, Acls, Client, CreateMode, CreateOptions, Error as ZkError, Stat};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const SEQUENTIAL: CreateOptions<'static> = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
const EPHEMERAL_SEQ: CreateOptions<'static> = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());

/// Small segments so the log rotates and compaction deletes whole files.
fn small_segments() -> Vec<String> {
    args(&["--max-packet-bytes", "8192", "--wal-segment-bytes", "16384"])
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn seed(test: &str) -> u64 {
    let seed = match std::env::var("CRASH_SEED") {
        Ok(s) => s.parse().expect("CRASH_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    println!("[{test}] seed {seed} (rerun with CRASH_SEED={seed})");
    seed
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Write load with recorded expectations.

const SEQ_PARENT: &str = "/crash/seq";
const SEQ_PREFIX: &str = "/crash/seq/s-";

fn hot_path(w: usize) -> String {
    format!("/crash/hot{w}")
}

/// The data of version `v` of a hot node: every version is written by a
/// conditional setData, so the data identifies the version.
fn hot_data(path: &str, v: i32) -> Vec<u8> {
    format!("{path}@{v}").into_bytes()
}

/// What clients were told succeeded, and what they tried.
#[derive(Default)]
struct Book {
    /// Acknowledged creates (plain and sequential): path → data.
    acked: BTreeMap<String, Vec<u8>>,
    /// Highest acknowledged version of each hot node.
    hot: BTreeMap<String, i32>,
    /// Highest zxid in any acknowledgement.
    max_zxid: i64,
    /// Every plain create sent: path → data (acknowledged or not).
    tried: BTreeMap<String, Vec<u8>>,
    /// Every sequential create's data (a unique tag) sent.
    tried_seq: HashSet<Vec<u8>>,
    /// Acknowledged writes (creates and setData).
    acked_writes: u64,
}

impl Book {
    fn ack_zxid(&mut self, z: i64) {
        self.max_zxid = self.max_zxid.max(z);
    }
}

struct Shared {
    book: Mutex<Book>,
    /// Set just before the server is stopped: later client errors are
    /// expected.
    stopping: AtomicBool,
    /// Writers done with their setup.
    ready: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

enum Op {
    Create { path: String, data: Vec<u8> },
    Seq { tag: Vec<u8> },
    Set { path: String, version: i32 },
}

enum Done {
    Created(Stat),
    Seq(String, Stat),
    Set(Stat),
}

type OpFuture<'a> = Pin<Box<dyn Future<Output = Result<Done, ZkError>> + Send + 'a>>;

fn issue<'a>(client: &'a Client, op: &'a Op) -> OpFuture<'a> {
    match op {
        Op::Create { path, data } => {
            let f = client.create(path, data, &PERSISTENT);
            Box::pin(async move { f.await.map(|(s, _)| Done::Created(s)) })
        }
        Op::Seq { tag } => {
            let f = client.create(SEQ_PREFIX, tag, &SEQUENTIAL);
            Box::pin(async move { f.await.map(|(s, seq)| Done::Seq(format!("{SEQ_PREFIX}{seq}"), s)) })
        }
        Op::Set { path, version } => {
            let f = client.set_data(path, &hot_data(path, *version), Some(version - 1));
            Box::pin(async move { f.await.map(Done::Set) })
        }
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct WriterStats {
    acked: u64,
    failed: u64,
}

/// Upper bound of operations one writer sends per round.
const MAX_OPS_PER_WRITER: usize = 20_000;

/// One writer: its own session, batches of 1–8 pipelined writes (creates
/// under its own directory, sequential creates under a shared parent,
/// conditional setData of its hot node), each recorded as acknowledged
/// only when its reply arrived. Stops at the first error.
async fn writer(client: Client, w: usize, round: usize, seed: u64, shared: Arc<Shared>) -> WriterStats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stats = WriterStats::default();
    let fail = |what: String| {
        if !shared.stopping.load(Ordering::SeqCst) {
            shared.unexpected.lock().unwrap().push(what);
        }
    };
    let dir = format!("/crash/r{round}/w{w}");
    let hot = hot_path(w);
    let setup = async {
        let (s, _) = client.create(&dir, b"", &PERSISTENT).await?;
        {
            let mut b = shared.book.lock().unwrap();
            b.tried.insert(dir.clone(), vec![]);
            b.acked.insert(dir.clone(), vec![]);
            b.ack_zxid(s.czxid);
        }
        let (_, st) = client.get_data(&hot).await?;
        Ok::<i32, ZkError>(st.version)
    };
    let mut version = match setup.await {
        Ok(v) => v,
        Err(e) => {
            fail(format!("writer {w} setup: {e}"));
            shared.ready.fetch_add(1, Ordering::SeqCst);
            return stats;
        }
    };
    shared.ready.fetch_add(1, Ordering::SeqCst);

    let mut k = 0usize;
    'outer: while k < MAX_OPS_PER_WRITER {
        let n = rng.gen_range(1..=8);
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            k += 1;
            let op = match rng.gen_range(0..10) {
                0..=3 => {
                    let len = rng.gen_range(0..200);
                    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                    Op::Create {
                        path: format!("{dir}/n{k}"),
                        data,
                    }
                }
                4..=6 => Op::Seq {
                    tag: format!("r{round}w{w}k{k}").into_bytes(),
                },
                _ => {
                    version += 1;
                    Op::Set {
                        path: hot.clone(),
                        version,
                    }
                }
            };
            ops.push(op);
        }
        {
            let mut b = shared.book.lock().unwrap();
            for op in &ops {
                match op {
                    Op::Create { path, data } => {
                        b.tried.insert(path.clone(), data.clone());
                    }
                    Op::Seq { tag } => {
                        b.tried_seq.insert(tag.clone());
                    }
                    Op::Set { .. } => {}
                }
            }
        }
        // All requests are sent now, in order; replies come in order.
        let futs: Vec<OpFuture<'_>> = ops.iter().map(|op| issue(&client, op)).collect();
        let mut dead = false;
        for (op, fut) in ops.iter().zip(futs) {
            let res = match tokio::time::timeout(CONNECT_DEADLINE, fut).await {
                Ok(r) => r,
                Err(_) => {
                    fail(format!("writer {w}: no reply within {CONNECT_DEADLINE:?}"));
                    stats.failed += 1;
                    dead = true;
                    continue;
                }
            };
            match res {
                Ok(done) => {
                    stats.acked += 1;
                    let mut b = shared.book.lock().unwrap();
                    b.acked_writes += 1;
                    match (op, done) {
                        (Op::Create { path, data }, Done::Created(s)) => {
                            b.acked.insert(path.clone(), data.clone());
                            b.ack_zxid(s.czxid);
                        }
                        (Op::Seq { tag }, Done::Seq(path, s)) => {
                            b.acked.insert(path, tag.clone());
                            b.ack_zxid(s.czxid);
                        }
                        (Op::Set { path, version }, Done::Set(s)) => {
                            if s.version != *version {
                                drop(b);
                                fail(format!(
                                    "setData of {path} expecting version {} answered version {}",
                                    version - 1,
                                    s.version
                                ));
                                break 'outer;
                            }
                            b.hot.insert(path.clone(), *version);
                            b.ack_zxid(s.mzxid);
                        }
                        _ => unreachable!("reply kind matches the request"),
                    }
                }
                Err(e) => {
                    stats.failed += 1;
                    if !dead {
                        fail(format!("writer {w}: {e}"));
                    }
                    dead = true;
                }
            }
        }
        if dead || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    stats
}

/// Creates the fixed nodes of the workload (first round only).
async fn setup_workload(client: &Client, writers: usize, book: &Mutex<Book>) {
    for p in ["/crash", SEQ_PARENT] {
        let (s, _) = client.create(p, b"", &PERSISTENT).await.unwrap();
        book.lock().unwrap().ack_zxid(s.czxid);
    }
    for w in 0..writers {
        let p = hot_path(w);
        let (s, _) = client.create(&p, &hot_data(&p, 0), &PERSISTENT).await.unwrap();
        let mut b = book.lock().unwrap();
        b.hot.insert(p, 0);
        b.ack_zxid(s.czxid);
    }
}

#[derive(Debug, Default)]
struct Verified {
    acked_creates: usize,
    /// Nodes present whose create was never acknowledged (it committed but
    /// the reply was lost in the crash): allowed.
    unacked_present: usize,
    /// Sum over hot nodes of recovered version minus acknowledged version.
    unacked_versions: i64,
    took: Duration,
}

/// Checks the recovered tree against the book: every acknowledged create
/// with its data, hot nodes at or past their acknowledged version with the
/// data of that version, no node nobody asked for, no sequential create
/// applied twice, and the sequence counter and zxid continuing. Adds the
/// sequential node it creates to the book.
async fn verify(client: &Client, book: &Mutex<Book>, rounds_done: usize, ctx: &str) -> Verified {
    let t = Instant::now();
    let mut v = Verified::default();
    let (acked, hot, max_zxid, tried, tried_seq) = {
        let b = book.lock().unwrap();
        (
            b.acked.clone(),
            b.hot.clone(),
            b.max_zxid,
            b.tried.clone(),
            b.tried_seq.clone(),
        )
    };

    // Every acknowledged create, pipelined in chunks.
    let paths: Vec<&String> = acked.keys().collect();
    for chunk in paths.chunks(256) {
        let futs: Vec<_> = chunk.iter().map(|p| client.get_data(p)).collect();
        for (p, f) in chunk.iter().zip(futs) {
            match f.await {
                Ok((data, _)) => assert_eq!(
                    data, acked[*p],
                    "{ctx}: acknowledged create of {p} recovered with other data"
                ),
                Err(ZkError::NoNode) => panic!("{ctx}: acknowledged create of {p} is lost"),
                Err(e) => panic!("{ctx}: reading {p}: {e}"),
            }
        }
    }
    v.acked_creates = acked.len();

    // Hot nodes: a setData may have committed without its ack arriving.
    for (p, &acked_version) in &hot {
        let (data, st) = client.get_data(p).await.unwrap();
        assert!(
            st.version >= acked_version,
            "{ctx}: {p} recovered at version {} but version {acked_version} was acknowledged",
            st.version
        );
        assert_eq!(
            data,
            hot_data(p, st.version),
            "{ctx}: {p} at version {} holds the data of another version",
            st.version
        );
        v.unacked_versions += i64::from(st.version - acked_version);
    }

    // No node nobody created; count those committed without an ack.
    for round in 0..rounds_done {
        let Ok(writers) = client.list_children(&format!("/crash/r{round}")).await else {
            continue;
        };
        for w in writers {
            let dir = format!("/crash/r{round}/{w}");
            assert!(tried.contains_key(&dir), "{ctx}: phantom node {dir}");
            let kids = client.list_children(&dir).await.unwrap();
            let futs: Vec<_> = kids
                .iter()
                .map(|k| {
                    let p = format!("{dir}/{k}");
                    let f = client.get_data(&p);
                    (p, f)
                })
                .collect();
            for (p, f) in futs {
                let (data, _) = f.await.unwrap();
                let sent = tried
                    .get(&p)
                    .unwrap_or_else(|| panic!("{ctx}: phantom node {p}: no client created it"));
                assert_eq!(&data, sent, "{ctx}: {p} holds data no client sent");
                if !acked.contains_key(&p) {
                    v.unacked_present += 1;
                }
            }
        }
    }

    // Sequential children: each tag sent once is applied at most once, and
    // the counter continues from the parent's cversion.
    let (kids, parent) = client.get_children(SEQ_PARENT).await.unwrap();
    let futs: Vec<_> = kids
        .iter()
        .map(|k| {
            let p = format!("{SEQ_PARENT}/{k}");
            let f = client.get_data(&p);
            (p, f)
        })
        .collect();
    let mut tags = HashSet::new();
    for (p, f) in futs {
        let (data, _) = f.await.unwrap();
        assert!(tried_seq.contains(&data), "{ctx}: phantom sequential node {p}");
        assert!(
            tags.insert(data.clone()),
            "{ctx}: sequential create {:?} applied twice",
            String::from_utf8_lossy(&data)
        );
        let n: i32 = p[SEQ_PREFIX.len()..].parse().unwrap();
        assert!(
            n < parent.cversion,
            "{ctx}: {p} is numbered at or past the parent's cversion {}",
            parent.cversion
        );
        if !acked.contains_key(&p) {
            v.unacked_present += 1;
        }
    }
    let tag = format!("verify-{rounds_done}").into_bytes();
    book.lock().unwrap().tried_seq.insert(tag.clone());
    let (st, seq) = client.create(SEQ_PREFIX, &tag, &SEQUENTIAL).await.unwrap();
    assert_eq!(
        seq.into_i64(),
        i64::from(parent.cversion),
        "{ctx}: the next sequence number must continue from the parent's cversion"
    );
    assert!(
        st.czxid > max_zxid,
        "{ctx}: new zxid {:#x} is not above the last acknowledged zxid {max_zxid:#x}",
        st.czxid
    );
    {
        let mut b = book.lock().unwrap();
        b.acked.insert(format!("{SEQ_PREFIX}{seq}"), tag);
        b.ack_zxid(st.czxid);
    }
    v.took = t.elapsed();
    v
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    /// `kill -9` with writes in flight.
    Kill9,
    /// Let every writer get the reply of its last batch, then `kill -9`:
    /// nothing is in flight, so the very last acknowledged batch must be on
    /// disk (catches acknowledging before the WAL write deterministically).
    Kill9Quiesced,
    /// SIGTERM with writes in flight.
    Term,
}

/// Starts `writers` writers, lets them run for `load`, stops the server
/// with `stop`, and waits for the writers. Returns their stats and how the
/// server exited.
async fn load_then_stop(
    server: Server,
    shared: &Arc<Shared>,
    writers: usize,
    round: usize,
    rng: &mut StdRng,
    load: Duration,
    stop: Stop,
) -> (WriterStats, Option<Exit>) {
    shared.stopping.store(false, Ordering::SeqCst);
    shared.ready.store(0, Ordering::SeqCst);
    let dir = format!("/crash/r{round}");
    let (st, _) = server
        .client()
        .await
        .create(&dir, b"", &PERSISTENT)
        .await
        .unwrap();
    {
        let mut b = shared.book.lock().unwrap();
        b.tried.insert(dir.clone(), vec![]);
        b.acked.insert(dir, vec![]);
        b.ack_zxid(st.czxid);
    }
    let mut handles = Vec::new();
    for w in 0..writers {
        let client = server.client().await;
        let s = shared.clone();
        handles.push(tokio::spawn(writer(client, w, round, rng.gen(), s)));
    }
    let (ok, _) = poll_until(CONNECT_DEADLINE, || async {
        shared.ready.load(Ordering::SeqCst) == writers
    })
    .await;
    assert!(ok, "writers did not finish their setup");
    // The random moment of the crash.
    tokio::time::sleep(load).await;
    shared.stopping.store(true, Ordering::SeqCst);
    let (total, exit) = match stop {
        Stop::Kill9 => {
            let mut server = server;
            server.kill9();
            (join_writers(handles).await, None)
        }
        Stop::Kill9Quiesced => {
            let total = join_writers(handles).await;
            let mut server = server;
            server.kill9();
            (total, None)
        }
        Stop::Term => {
            let exit = server.stop_cleanly().await;
            (join_writers(handles).await, Some(exit))
        }
    };
    let unexpected = shared.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "writers saw errors before the stop: {unexpected:?}"
    );
    (total, exit)
}

async fn join_writers(handles: Vec<tokio::task::JoinHandle<WriterStats>>) -> WriterStats {
    let mut total = WriterStats::default();
    let deadline = tokio::time::Instant::now() + EXIT_DEADLINE;
    for h in handles {
        let s = tokio::time::timeout_at(deadline, h)
            .await
            .expect("writers must notice the stop")
            .expect("writer task");
        total.acked += s.acked;
        total.failed += s.failed;
    }
    total
}

fn snapshot_count(scratch: &Scratch) -> usize {
    std::fs::read_dir(scratch.data_dir().join("snapshots"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "snap")
            })
            .count()
        })
        .unwrap_or(0)
}

fn data_dir_summary(scratch: &Scratch) -> String {
    let segs = wal_segments(&scratch.wal_dir()).len();
    format!("{segs} WAL segments, {} snapshots", snapshot_count(scratch))
}

const WRITERS: usize = 4;

#[test]
fn kill9_under_write_load_keeps_every_acknowledged_write() {
    const ROUNDS: usize = 5;
    let seed = seed("kill9");
    let mut rng = StdRng::seed_from_u64(seed);
    let scratch = Scratch::new();
    let shared = Arc::new(Shared {
        book: Mutex::new(Book::default()),
        stopping: AtomicBool::new(false),
        ready: AtomicUsize::new(0),
        unexpected: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    rt().block_on(async {
        for round in 0..=ROUNDS {
            // Even rounds snapshot often (recovery = snapshot + WAL tail, and
            // compaction deletes segments); odd rounds use the default.
            let mut a = small_segments();
            if round % 2 == 0 {
                let every = rng.gen_range(10..=100u64).to_string();
                a.extend(args(&[
                    "--snapshot-every-entries",
                    &every,
                    "--snapshots-to-keep",
                    "2",
                ]));
            }
            let server = Server::start(&scratch, &a).await;
            let ctx = format!("seed {seed}, after round {round}");
            let client = server.client().await;
            if round == 0 {
                setup_workload(&client, WRITERS, &shared.book).await;
            }
            let v = verify(&client, &shared.book, round, &ctx).await;
            drop(client);
            println!(
                "[kill9] start {round}: ready after {:?}; verified {} acknowledged creates in {:?}; \
                 committed without ack (all rounds so far): {} creates, {} setData versions",
                server.ready_after, v.acked_creates, v.took, v.unacked_present, v.unacked_versions
            );
            assert_no_panic(&server.stderr());
            if round == ROUNDS {
                server.stop_cleanly().await;
                break;
            }
            let load = Duration::from_millis(rng.gen_range(50..=500));
            let stop = if round % 3 == 1 {
                Stop::Kill9Quiesced
            } else {
                Stop::Kill9
            };
            let t = Instant::now();
            let (stats, _) = load_then_stop(server, &shared, WRITERS, round, &mut rng, load, stop).await;
            println!(
                "[kill9] round {round}: {stop:?} after {load:?} of load ({a:?}): {} writes acknowledged, \
                 {} in flight or refused at the kill; {}; round took {:?}",
                stats.acked,
                stats.failed,
                data_dir_summary(&scratch),
                t.elapsed()
            );
            // Snapshot rounds keep 2, others take none. A kill between
            // saving a snapshot and purging the oldest leaves one more, and
            // the next round's save adds one before its purge: at most 4.
            // (Before purging was wired in, every snapshot stayed.)
            assert!(
                snapshot_count(&scratch) <= 4,
                "old snapshots must be purged: {}",
                data_dir_summary(&scratch)
            );
        }
    });
    let b = shared.book.lock().unwrap();
    println!(
        "[kill9] {ROUNDS} kills, {} acknowledged writes in all, every one recovered; {:?}",
        b.acked_writes,
        started.elapsed()
    );
}

#[test]
fn sigterm_under_write_load_exits_cleanly_and_keeps_acknowledged_writes() {
    let seed = seed("sigterm");
    let mut rng = StdRng::seed_from_u64(seed);
    let scratch = Scratch::new();
    let shared = Arc::new(Shared {
        book: Mutex::new(Book::default()),
        stopping: AtomicBool::new(false),
        ready: AtomicUsize::new(0),
        unexpected: Mutex::new(Vec::new()),
    });
    rt().block_on(async {
        let a = small_segments();
        let server = Server::start(&scratch, &a).await;
        let client = server.client().await;
        setup_workload(&client, WRITERS, &shared.book).await;
        drop(client);
        let load = Duration::from_millis(rng.gen_range(100..=300));
        let (stats, exit) = load_then_stop(server, &shared, WRITERS, 0, &mut rng, load, Stop::Term).await;
        let exit = exit.unwrap();
        println!(
            "[sigterm] SIGTERM after {load:?} of load: exit code {:?} after {:?}; {} writes acknowledged, \
             {} in flight at the stop",
            exit.status.code(),
            exit.elapsed,
            stats.acked,
            stats.failed
        );
        let server = Server::start(&scratch, &a).await;
        let client = server.client().await;
        let v = verify(&client, &shared.book, 1, &format!("seed {seed}")).await;
        println!(
            "[sigterm] restart ready after {:?}; {} acknowledged creates verified; committed without ack: {}",
            server.ready_after, v.acked_creates, v.unacked_present
        );
        drop(client);
        // And an idle server stops cleanly too.
        let exit = server.stop_cleanly().await;
        println!("[sigterm] idle server: exit code 0 after {:?}", exit.elapsed);
    });
}

// ---------------------------------------------------------------------------
// Exact recovery after a clean restart.

type Tree = BTreeMap<String, (Vec<u8>, Stat, Vec<String>)>;

/// Every node: data, stat and sorted children.
async fn walk(client: &Client) -> Tree {
    let mut out = Tree::new();
    let mut todo = vec!["/".to_string()];
    while let Some(p) = todo.pop() {
        let (data, stat) = client.get_data(&p).await.unwrap();
        let mut kids = client.list_children(&p).await.unwrap();
        kids.sort();
        for k in &kids {
            todo.push(if p == "/" {
                format!("/{k}")
            } else {
                format!("{p}/{k}")
            });
        }
        out.insert(p, (data, stat, kids));
    }
    out
}

fn max_zxid(tree: &Tree) -> i64 {
    tree.values()
        .map(|(_, s, _)| s.czxid.max(s.mzxid).max(s.pzxid))
        .max()
        .unwrap_or(0)
}

async fn clean_restart_recovers_exactly(snapshot_every: Option<u64>) {
    let name = if snapshot_every.is_some() {
        "exact+snap"
    } else {
        "exact"
    };
    let scratch = Scratch::new();
    // tick 500 ms: sessions may time out after 1 s to 10 s.
    let mut a = args(&["--tick-ms", "500"]);
    if let Some(n) = snapshot_every {
        a.extend(args(&["--snapshot-every-entries", &n.to_string()]));
    }
    const LOSE_TIMEOUT: Duration = Duration::from_millis(2000);
    let server = Server::start(&scratch, &a).await;
    let c = server.client().await;

    c.create("/exact", b"root", &PERSISTENT).await.unwrap();
    c.create("/exact/a", b"a0", &PERSISTENT).await.unwrap();
    c.set_data("/exact/a", b"a1", Some(0)).await.unwrap();
    c.set_data("/exact/a", b"a2", Some(1)).await.unwrap();
    let acl = [Acl::new(
        zookeeper_client::Permission::ALL,
        zookeeper_client::AuthId::anyone(),
    )];
    c.set_acl("/exact/a", &acl, Some(0)).await.unwrap();
    c.create("/exact/b", b"", &PERSISTENT).await.unwrap();
    c.create("/exact/b/x", b"x", &PERSISTENT).await.unwrap();
    c.create("/exact/b/y", b"y", &PERSISTENT).await.unwrap();
    c.delete("/exact/b/x", None).await.unwrap();
    c.create("/exact/seq", b"", &PERSISTENT).await.unwrap();
    for i in 0..3 {
        c.create("/exact/seq/s-", format!("s{i}").as_bytes(), &SEQUENTIAL)
            .await
            .unwrap();
    }
    c.delete("/exact/seq/s-0000000001", None).await.unwrap();
    c.create("/exact/empty", b"", &PERSISTENT).await.unwrap();
    c.delete("/exact/empty", Some(0)).await.unwrap();
    c.create("/keep", b"", &PERSISTENT).await.unwrap();
    c.create("/lose", b"", &PERSISTENT).await.unwrap();

    // Two detached sessions (not closed when the client goes away): one is
    // resumed after the restart, the other is abandoned.
    let keep = server
        .client_with(
            Client::connector()
                .session_timeout(Duration::from_secs(10))
                .detached(),
        )
        .await
        .unwrap();
    let lose = server
        .client_with(Client::connector().session_timeout(LOSE_TIMEOUT).detached())
        .await
        .unwrap();
    keep.create("/keep/eph", b"k", &EPHEMERAL).await.unwrap();
    lose.create("/lose/eph", b"l", &EPHEMERAL).await.unwrap();
    let (_, lose_seq) = lose.create("/lose/e-", b"l2", &EPHEMERAL_SEQ).await.unwrap();
    let keep_session = keep.session().clone();
    let lose_session = lose.session().clone();
    let keep_id = keep_session.id().0;
    let lose_id = lose_session.id().0;
    assert_eq!(lose.session_timeout(), LOSE_TIMEOUT, "negotiated timeout");

    let before = walk(&c).await;
    let before_acl = c.get_acl("/exact/a").await.unwrap();
    let seq_cversion = before["/exact/seq"].1.cversion;
    assert_eq!(seq_cversion, 4, "3 creates and 1 delete");
    assert_eq!(before["/keep/eph"].1.ephemeral_owner, keep_id);
    drop(c);

    let exit = server.stop_cleanly().await;
    drop(keep);
    drop(lose);

    let server = Server::start(&scratch, &a).await;
    let t_ready = Instant::now();
    let c = server.client().await;
    // The abandoned session's ephemerals are there until it expires, a
    // full timeout after the restart.
    let lose_seen = c.check_stat("/lose/eph").await.unwrap();
    let early = server.ready_after + t_ready.elapsed() < LOSE_TIMEOUT;
    if early {
        let st =
            lose_seen.expect("the abandoned session's ephemeral must survive the restart until it expires");
        assert_eq!(st.ephemeral_owner, lose_id);
    } else {
        println!("[{name}] too slow to see /lose/eph before its session could expire; not checked");
    }
    let after = walk(&c).await;
    for (p, b) in &before {
        if p.starts_with("/lose") {
            continue;
        }
        let a = after
            .get(p)
            .unwrap_or_else(|| panic!("{p} lost in a clean restart"));
        assert_eq!(a, b, "{p}: (data, stat, children) differ after the restart");
    }
    for p in after.keys() {
        assert!(
            before.contains_key(p) || p.starts_with("/lose"),
            "{p} appeared in a clean restart"
        );
    }
    assert_eq!(c.get_acl("/exact/a").await.unwrap(), before_acl);
    // Counters continue.
    let (st, seq) = c.create("/exact/seq/s-", b"s3", &SEQUENTIAL).await.unwrap();
    // ZooKeeper numbers sequential children by child creates (3 here);
    // Stat.cversion counts creates and deletes (DataNode.copyStat).
    assert_eq!(seq.into_i64(), 3, "sequence counter after restart");
    assert!(st.czxid > max_zxid(&before), "zxid goes on increasing");
    let a2 = c.set_data("/exact/a", b"a3", Some(2)).await.unwrap();
    assert_eq!(a2.version, 3);
    assert_eq!(a2.czxid, before["/exact/a"].1.czxid);

    // The kept session resumes (same id and password) with its ephemeral.
    let keep = server
        .resume(keep_session, Duration::from_secs(10))
        .await
        .expect("resuming a live session after a restart");
    assert_eq!(keep.session_id().0, keep_id);
    let st = keep
        .check_stat("/keep/eph")
        .await
        .unwrap()
        .expect("the resumed session's ephemeral");
    assert_eq!(st.ephemeral_owner, keep_id);

    // The abandoned one expires: its ephemerals go, resuming it fails.
    let (gone, took) = poll_until(LOSE_TIMEOUT + Duration::from_secs(15), || async {
        matches!(c.check_stat("/lose/eph").await, Ok(None))
    })
    .await;
    assert!(
        gone,
        "the abandoned session's ephemeral must vanish after its timeout"
    );
    assert_eq!(c.list_children("/lose").await.unwrap(), Vec::<String>::new());
    assert!(c
        .check_stat(&format!("/lose/e-{lose_seq}"))
        .await
        .unwrap()
        .is_none());
    let err = server.resume(lose_session, LOSE_TIMEOUT).await.err();
    assert_eq!(err, Some(ZkError::SessionExpired), "resuming an expired session");
    // The kept session outlived it.
    assert!(c.check_stat("/keep/eph").await.unwrap().is_some());
    // Closing the kept session (not detached now) removes its ephemeral.
    drop(keep);
    let (gone, _) = poll_until(Duration::from_secs(10), || async {
        matches!(c.check_stat("/keep/eph").await, Ok(None))
    })
    .await;
    assert!(gone, "closing the resumed session must delete its ephemeral");
    drop(c);
    println!(
        "[{name}] {} nodes identical after SIGTERM (exit 0 in {:?}) and restart (ready after {:?}); \
         session resumed; abandoned session's ephemerals gone {:?} after the first check",
        before.len(),
        exit.elapsed,
        server.ready_after,
        took
    );
    server.stop_cleanly().await;
    if snapshot_every.is_some() {
        let n = snapshot_count(&scratch);
        assert!(
            (1..=3).contains(&n),
            "snapshots are taken and only the newest 3 (the default) are kept; found {n}"
        );
    }
}

#[test]
fn clean_restart_recovers_tree_stats_counters_and_sessions_from_the_wal() {
    rt().block_on(clean_restart_recovers_exactly(None));
}

#[test]
fn clean_restart_recovers_tree_stats_counters_and_sessions_from_snapshot_and_wal() {
    rt().block_on(clean_restart_recovers_exactly(Some(5)));
}

// ---------------------------------------------------------------------------
// Damaged log.

/// Creates `n` nodes under `/tail`, pipelined; returns path → (data, czxid).
async fn fill(client: &Client, from: usize, n: usize) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let items: Vec<(String, Vec<u8>)> = (from..from + n)
        .map(|i| {
            (
                format!("/tail/n{i:05}"),
                format!("node {i} ").repeat(10).into_bytes(),
            )
        })
        .collect();
    for chunk in items.chunks(16) {
        let futs: Vec<_> = chunk
            .iter()
            .map(|(p, d)| client.create(p, d, &PERSISTENT))
            .collect();
        for ((p, d), f) in chunk.iter().zip(futs) {
            let (st, _) = f.await.unwrap();
            out.insert(p.clone(), (d.clone(), st.czxid));
        }
    }
    out
}

/// Asserts every node of `want` is present with its data, except those whose
/// entry index is in `may_lose`; returns how many of those were lost.
async fn check_nodes(
    client: &Client,
    want: &BTreeMap<String, (Vec<u8>, i64)>,
    may_lose: &BTreeSet<u64>,
    ctx: &str,
) -> usize {
    let mut lost = 0;
    let futs: Vec<_> = want.iter().map(|(p, v)| (p, v, client.get_data(p))).collect();
    for (p, (data, czxid), f) in futs {
        match f.await {
            Ok((d, st)) => {
                assert_eq!(&d, data, "{ctx}: {p} data");
                assert_eq!(st.czxid, *czxid, "{ctx}: {p} czxid");
            }
            Err(ZkError::NoNode) if may_lose.contains(&index_of(*czxid)) => lost += 1,
            Err(e) => panic!(
                "{ctx}: acknowledged {p} (index {}) not recovered: {e}",
                index_of(*czxid)
            ),
        }
    }
    lost
}

/// The `Error: …` line `main` prints when it gives up.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or("(no Error: line)")
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A refusal must exit non-zero, name the damaged file, say it is corrupt and
/// what to do, and leave the file as it was.
fn assert_refusal(exit: &Exit, file: &std::path::Path, bytes_before: &[u8], extra: &str) {
    assert_ne!(
        exit.status.code(),
        Some(0),
        "a damaged log must be refused; stderr:\n{}",
        exit.stderr
    );
    assert!(
        exit.status.code().is_some(),
        "refusal must be an exit, not a signal: {}",
        exit.status
    );
    assert_no_panic(&exit.stderr);
    let name = file_name(file);
    for needle in [name.as_str(), "corrupt data", extra] {
        assert!(
            exit.stderr.contains(needle),
            "stderr must mention {needle:?}:\n{}",
            exit.stderr
        );
    }
    assert!(
        exit.stderr.contains("restore this member") && exit.stderr.contains("--recovery-mode"),
        "stderr must say what to do:\n{}",
        exit.stderr
    );
    assert_eq!(
        std::fs::read(file).unwrap(),
        bytes_before,
        "a refused start must not modify {name}"
    );
}

#[test]
fn damaged_log_tail_and_middle() {
    let scratch = Scratch::new();
    let a = small_segments();
    let strict = {
        let mut s = a.clone();
        s.extend(args(&["--recovery-mode", "absolute-consistency"]));
        s
    };
    rt().block_on(async {
        let server = Server::start(&scratch, &a).await;
        let c = server.client().await;
        c.create("/tail", b"", &PERSISTENT).await.unwrap();
        let mut want = fill(&c, 0, 300).await;
        drop(c);
        server.stop_cleanly().await;

        // 1. A torn tail: cut the last 3 bytes of the newest segment.
        let segs = wal_segments(&scratch.wal_dir());
        let newest = segs.last().unwrap().clone();
        let full = std::fs::read(&newest).unwrap();
        let recs = records(&full);
        let last = recs.last().unwrap().clone();
        // A torn write can only be one nobody was told about. Cutting bytes
        // off a synced record simulates that; only entries in that record
        // may go (the server cannot tell the two cases apart), nothing else.
        let may_lose: BTreeSet<u64> = if last.kind == KIND_ENTRIES {
            entry_indices(&full, &last).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        println!(
            "[tail] {} segments; newest {} has {} records, the last one (kind {}) is torn; \
             entries in it: {may_lose:?}",
            segs.len(),
            file_name(&newest),
            recs.len(),
            last.kind
        );
        let torn = full[..full.len() - 3].to_vec();
        std::fs::write(&newest, &torn).unwrap();

        let exit = Server::expect_refusal(&scratch, &strict).await;
        assert_refusal(&exit, &newest, &torn, "absolute-consistency");
        println!(
            "[tail] absolute-consistency refused the torn tail (exit {:?}) in {:?}: {}",
            exit.status.code(),
            exit.elapsed,
            error_line(&exit.stderr)
        );

        let server = Server::start(&scratch, &a).await;
        let log = server.stderr();
        assert!(
            log.contains("truncating a damaged record at the tail"),
            "the repair must be logged:\n{log}"
        );
        let c = server.client().await;
        let lost = check_nodes(&c, &want, &may_lose, "after a torn tail").await;
        if lost > 0 {
            want.retain(|_, (_, z)| !may_lose.contains(&index_of(*z)));
        }
        // The repaired log takes new writes that survive the next restart.
        let max_before = want.values().map(|(_, z)| *z).max().unwrap();
        let more = fill(&c, 1000, 100).await;
        assert!(more.values().all(|(_, z)| *z > max_before));
        want.extend(more);
        drop(c);
        println!(
            "[tail] default mode repaired the torn tail: ready after {:?}, {lost} acknowledged writes \
             in the torn record lost, {} nodes verified",
            server.ready_after,
            want.len()
        );
        server.stop_cleanly().await;

        let server = Server::start(&scratch, &a).await;
        assert!(!server.stderr().contains("truncating"), "{}", server.stderr());
        let c = server.client().await;
        check_nodes(&c, &want, &BTreeSet::new(), "after repair and restart").await;
        drop(c);
        server.stop_cleanly().await;

        // 2. A flipped byte in the middle of an entries record of an older
        // segment: always refused, in either mode.
        let segs = wal_segments(&scratch.wal_dir());
        assert!(segs.len() >= 2, "the test needs several segments, got {segs:?}");
        let older = segs[0].clone();
        let orig = std::fs::read(&older).unwrap();
        let rec = records(&orig)
            .into_iter()
            .find(|r| r.kind == KIND_ENTRIES)
            .expect("an entries record in the oldest segment");
        let mut bad = orig.clone();
        bad[rec.payload_at + rec.payload_len / 2] ^= 0x40;
        std::fs::write(&older, &bad).unwrap();
        for (mode, a) in [("default", &a), ("absolute-consistency", &strict)] {
            let exit = Server::expect_refusal(&scratch, a).await;
            assert_refusal(&exit, &older, &bad, "not the newest segment");
            println!(
                "[tail] {mode} mode refused a flipped byte in {} at offset {} (exit {:?})",
                file_name(&older),
                rec.offset,
                exit.status.code()
            );
        }
        std::fs::write(&older, &orig).unwrap();

        // 3. A flipped byte in the newest segment with valid records after it:
        // not a torn tail, so refused even in the tolerant mode.
        let newest = wal_segments(&scratch.wal_dir()).pop().unwrap();
        let orig = std::fs::read(&newest).unwrap();
        let recs = records(&orig);
        // Every segment starts with a hard state record and then holds at
        // least the record that made it; prefer an entries record.
        let followed = &recs[..recs.len() - 1];
        let rec = followed
            .iter()
            .rev()
            .find(|r| r.kind == KIND_ENTRIES)
            .or(followed.last())
            .cloned()
            .expect("a record followed by another one in the newest segment");
        let mut bad = orig.clone();
        bad[rec.payload_at + rec.payload_len / 2] ^= 0x01;
        std::fs::write(&newest, &bad).unwrap();
        let exit = Server::expect_refusal(&scratch, &a).await;
        assert_refusal(&exit, &newest, &bad, "a valid record follows");
        println!(
            "[tail] default mode refused a flipped byte mid-file in the newest segment {} (exit {:?}): {}",
            file_name(&newest),
            exit.status.code(),
            error_line(&exit.stderr)
        );
        std::fs::write(&newest, &orig).unwrap();

        // Undamaged again: everything is there.
        let server = Server::start(&scratch, &a).await;
        let c = server.client().await;
        check_nodes(&c, &want, &BTreeSet::new(), "after undoing the damage").await;
        drop(c);
        server.stop_cleanly().await;
    });
}

// ---------------------------------------------------------------------------
// Clients racing the startup of a restarted server. A raw socket connects
// the moment the client port is bound (the zookeeper-client crate backs off
// after a refused connection and so arrives late).

/// A minimal ZooKeeper connection on a raw socket.
struct RawConn {
    stream: tokio::net::TcpStream,
    xid: i32,
}

impl RawConn {
    /// Connects as soon as the port accepts.
    async fn connect_asap(addr: std::net::SocketAddr) -> RawConn {
        let t = Instant::now();
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
                return RawConn { stream, xid: 0 };
            }
            assert!(t.elapsed() < START_DEADLINE, "{addr} never accepted");
            tokio::task::yield_now().await;
        }
    }

    async fn send(&mut self, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut frame = Vec::new();
        proto::frame::write_frame(&mut frame, payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn recv(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.expect("a reply");
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf).await.unwrap();
        buf
    }

    /// The connect handshake: (session id, password); id 0 means the server
    /// declared the session expired or unknown.
    async fn handshake(&mut self, session: i64, passwd: &[u8]) -> (i64, Vec<u8>) {
        use proto::jute::Record;
        let req = proto::records::ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 10_000,
            session_id: session,
            passwd: passwd.to_vec(),
            read_only: Some(false),
        };
        let mut body = Vec::new();
        req.write(&mut body);
        self.send(&body).await;
        let rsp = proto::records::ConnectResponse::decode(&self.recv().await).unwrap();
        (rsp.session_id, rsp.passwd)
    }

    /// getData: the error code and the data.
    async fn get_data(&mut self, path: &str) -> (i32, Vec<u8>) {
        use proto::jute::Record;
        self.xid += 1;
        let req = proto::request::Request {
            xid: self.xid,
            op: proto::opcode::OpCode::GetData,
            body: proto::request::RequestBody::GetData(proto::records::GetDataRequest {
                path: path.to_string(),
                watch: false,
            }),
        };
        self.send(&req.encode()).await;
        let buf = self.recv().await;
        let (h, body) = proto::response::decode_reply_header(&buf).unwrap();
        assert_eq!(h.xid, self.xid);
        if h.err != 0 {
            return (h.err, vec![]);
        }
        let rsp = proto::records::GetDataResponse::decode(body).unwrap();
        (0, rsp.data.unwrap_or_default())
    }
}

/// Regression: the server used to accept clients as soon as the WAL was
/// read, while the consensus task was still applying the recovered log, so
/// for a moment the state was the snapshot alone: a live session created in
/// the log tail was told it had expired, and a session from the snapshot
/// could read a state missing acknowledged writes.
#[test]
fn clients_racing_a_restart_see_the_whole_recovered_log() {
    const EVERY: usize = 5000;
    const NODES: usize = 9000;
    let scratch = Scratch::new();
    let a = args(&["--snapshot-every-entries", &EVERY.to_string()]);
    rt().block_on(async {
        let server = Server::start(&scratch, &a).await;
        // A session in the snapshot…
        let mut raw = RawConn::connect_asap(server.client_addr).await;
        let (old_sid, old_pw) = raw.handshake(0, &[0; 16]).await;
        drop(raw);
        let c = server.client().await;
        c.create("/tail", b"", &PERSISTENT).await.unwrap();
        let t = Instant::now();
        let want = fill(&c, 0, NODES).await;
        let filled = t.elapsed();
        // …and one in the log tail after it.
        let mut raw = RawConn::connect_asap(server.client_addr).await;
        let (new_sid, new_pw) = raw.handshake(0, &[0; 16]).await;
        drop(raw);
        drop(c);
        server.stop_cleanly().await;
        let (last_path, (last_data, _)) = want.iter().next_back().unwrap();

        let server = Server::spawn_unready(&scratch, &a);
        let t = Instant::now();
        let mut old = RawConn::connect_asap(server.client_addr).await;
        let mut new = RawConn::connect_asap(server.client_addr).await;
        let connected = t.elapsed();
        let (sid, _) = new.handshake(new_sid, &new_pw).await;
        assert_eq!(
            sid, new_sid,
            "a live session created in the log tail was declared expired right after a restart"
        );
        let (sid, _) = old.handshake(old_sid, &old_pw).await;
        assert_eq!(sid, old_sid, "a live session was declared expired right after a restart");
        let (err, data) = old.get_data(last_path).await;
        assert_eq!(
            (err, String::from_utf8_lossy(&data)),
            (0, String::from_utf8_lossy(last_data)),
            "a read right after the restart must see the last acknowledged write {last_path}"
        );
        println!(
            "[race] {NODES} writes in {filled:?}; after restart both sessions resumed and read the last write; \
             connected {connected:?} after spawn, answered {:?} after spawn",
            t.elapsed()
        );
        drop((old, new));
        let exit = server.terminate().await;
        assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    });
}
