//! A linearizability check of a concurrent history recorded against a
//! 3-member ensemble of real processes while leaders are killed, frozen
//! and partitioned away (docs/ensemble.md, "Linearizability check").
//!
//! - `a_history_recorded_during_failures_is_linearizable`: 5 clients, each
//!   with its own session on a connect string naming every member, run
//!   reads after `sync`, plain reads, unconditional writes and
//!   compare-and-set (`setData` with a version) on 5 znodes, one request at
//!   a time, while a nemesis kills the leader (`kill -9`, restart), cuts it
//!   off by a network partition (peer relays), freezes it (SIGSTOP), and
//!   cuts a follower off. Each fault lasts until the clients have completed
//!   a number of operations (progress, not wall-clock time), then heals.
//!   The recorded history is checked by `lincheck` (Wing–Gong–Lowe search,
//!   crate `todc-utils`): writes, CAS and sync-reads linearizable per
//!   znode, with every write whose answer was lost open-ended; plain reads
//!   sequentially consistent per session.
//! - The other tests are the checker's controls: fabricated histories it
//!   must accept, and non-linearizable ones it must reject (so the check
//!   above can fail).
//!
//! Rerun a seed with `ENSEMBLE_SEED=<seed>`; `--nocapture` prints the
//! history size, the checker's time and the operations completed under
//! each fault.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::ensemble::*;
use support::lincheck::{check, linearizable, session_violations, Op, Outcome, Record, Recorder};
use zookeeper_client::{Client, Error as ZkError};

const CLIENTS: usize = 5;
const KEYS: usize = 5;
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// A request with no answer by then counts as unknown (write) or dropped
/// (read).
const OP_DEADLINE: Duration = Duration::from_secs(30);
/// Completed operations each fault must see before it heals, and after
/// healing before the next one.
const DURING: u64 = 150;
const BETWEEN: u64 = 60;

fn key_path(key: usize) -> String {
    format!("/lin/k{key}")
}

fn parse_value(data: &[u8]) -> u64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("znode data {data:?} is no value a client wrote"))
}

struct Shared {
    rec: Recorder,
    stop: AtomicBool,
    /// Operations with a known outcome (the progress the nemesis waits for).
    completed: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

impl Shared {
    fn unexpected(&self, what: String) {
        println!("unexpected: {what}");
        self.unexpected.lock().unwrap().push(what);
    }

    fn completed(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }
}

async fn connect(connect_string: &str) -> Client {
    let t = Instant::now();
    loop {
        let mut connector = Client::connector();
        let attempt = connector.session_timeout(SESSION_TIMEOUT).connect(connect_string);
        match tokio::time::timeout(SETTLE_DEADLINE, attempt).await {
            Ok(Ok(c)) => return c,
            _ if t.elapsed() < SETTLE_DEADLINE => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("no session with {connect_string}: {other:?}"),
        }
    }
}

/// How a failed request is treated.
enum Failure {
    /// Connection lost or no answer: outcome unknown, the session goes on.
    Unknown,
    /// The session expired: outcome unknown, start a new session.
    Expired,
    /// Anything else a failover does not explain.
    Other(ZkError),
}

fn classify(r: Result<ZkError, tokio::time::error::Elapsed>) -> Failure {
    match r {
        Err(_) => Failure::Unknown,
        Ok(e) if is_connection_loss(&e) => Failure::Unknown,
        Ok(ZkError::SessionExpired) => Failure::Expired,
        Ok(e) => Failure::Other(e),
    }
}

/// One client: one request at a time until stopped, every one recorded.
async fn client_loop(connect_string: String, client: usize, mut rng: StdRng, shared: Arc<Shared>) {
    let mut zk = connect(&connect_string).await;
    let mut session = 0u64;
    // The newest version this client knows of each key (what its CAS expects).
    let mut known = [0i32; KEYS];
    let mut counter = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let key = rng.gen_range(0..KEYS);
        let path = key_path(key);
        let dice = rng.gen_range(0..100);
        let call = shared.rec.now();
        let (op, failure) = if dice < 50 {
            // A read: after `sync` (linearizable) or plain.
            let synced = dice < 35;
            let sync = if synced {
                tokio::time::timeout(OP_DEADLINE, zk.sync(&path)).await
            } else {
                Ok(Ok(()))
            };
            let read = match sync {
                Ok(Ok(())) => tokio::time::timeout(OP_DEADLINE, zk.get_data(&path)).await,
                Ok(Err(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            };
            match read {
                Ok(Ok((data, stat))) => {
                    let (value, version) = (parse_value(&data), stat.version);
                    known[key] = known[key].max(version);
                    let op = if synced {
                        Op::SyncRead { value, version }
                    } else {
                        Op::Read { value, version }
                    };
                    (Some(op), None)
                }
                // A read that failed tells nothing: not recorded.
                Ok(Err(e)) => (None, Some(classify(Ok(e)))),
                Err(e) => (None, Some(classify(Err(e)))),
            }
        } else {
            counter += 1;
            let value = ((client as u64 + 1) << 32) | counter;
            let expected = (dice < 75).then_some(known[key]);
            let res = tokio::time::timeout(
                OP_DEADLINE,
                zk.set_data(&path, value.to_string().as_bytes(), expected),
            )
            .await;
            let (outcome, failure) = match res {
                Ok(Ok(stat)) => {
                    known[key] = known[key].max(stat.version);
                    (Outcome::Ok(stat.version), None)
                }
                Ok(Err(ZkError::BadVersion)) if expected.is_some() => (Outcome::BadVersion, None),
                Ok(Err(e)) => (Outcome::Unknown, Some(classify(Ok(e)))),
                Err(e) => (Outcome::Unknown, Some(classify(Err(e)))),
            };
            let op = Op::Write {
                value,
                expected,
                outcome,
            };
            // A write that failed for another reason did not take effect,
            // as ZooKeeper defines it; it is reported below and kept out of
            // the history.
            let op = match failure {
                Some(Failure::Other(_)) => None,
                _ => Some(op),
            };
            (op, failure)
        };
        let ret = match failure {
            None => Some(shared.rec.now()),
            Some(_) => None,
        };
        if let Some(op) = op {
            shared.rec.record(Record {
                client,
                session,
                key,
                op,
                call,
                ret,
            });
            if ret.is_some() {
                shared.completed.fetch_add(1, Ordering::SeqCst);
            }
        }
        match failure {
            None => {}
            Some(Failure::Unknown) => tokio::time::sleep(Duration::from_millis(50)).await,
            Some(Failure::Expired) => {
                println!("client {client}: session expired, starting a new one");
                zk = connect(&connect_string).await;
                session += 1;
            }
            Some(Failure::Other(e)) => {
                shared.unexpected(format!("client {client}: {path}: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Polls until the clients have completed `more` further operations.
async fn progress(shared: &Shared, more: u64, what: &str) -> (u64, Duration) {
    let t = Instant::now();
    let from = shared.completed();
    wait_for(what, SETTLE_DEADLINE * 2, || async {
        let done = shared.completed() - from;
        if done >= more {
            Ok(())
        } else {
            Err(format!(
                "{done} of {more} operations completed; unexpected: {:?}",
                shared.unexpected.lock().unwrap()
            ))
        }
    })
    .await;
    (shared.completed() - from, t.elapsed())
}

#[test]
fn a_history_recorded_during_failures_is_linearizable() {
    let _serial = serial("linearizability");
    let seed = seed("linearizability");
    rt().block_on(async {
        let mut ens = Ensemble::start(
            "lin",
            3,
            Opts {
                partitionable: true,
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let setup = ens.client(&all, SESSION_TIMEOUT).await;
        setup.create("/lin", b"", &PERSISTENT).await.unwrap();
        for k in 0..KEYS {
            setup.create(&key_path(k), b"0", &PERSISTENT).await.unwrap();
        }
        drop(setup);

        let shared = Arc::new(Shared {
            rec: Recorder::default(),
            stop: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            unexpected: Mutex::default(),
        });
        let cs = ens.connect_string(&all);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let rng = StdRng::seed_from_u64(seed.wrapping_add(c as u64));
                tokio::spawn(client_loop(cs.clone(), c, rng, shared.clone()))
            })
            .collect();
        progress(&shared, BETWEEN, "clients starting").await;

        let mut rng = StdRng::seed_from_u64(seed);
        let mut faults = Vec::new();
        for round in 0..8 {
            let l = ens.wait_leader(&all).await;
            let majority: Vec<usize> = all.iter().copied().filter(|&i| i != l).collect();
            let what = match round % 4 {
                0 => {
                    ens.kill9(l);
                    let (n, t) = progress(&shared, DURING, "operations with the leader killed").await;
                    ens.restart(l).await;
                    format!("kill -9 of the leader {}: {n} operations in {t:?}", ens.id(l))
                }
                1 => {
                    ens.partition(&[&[l], &majority]);
                    let (n, t) = progress(&shared, DURING, "operations with the leader partitioned").await;
                    ens.heal();
                    format!("leader {} partitioned away: {n} operations in {t:?}", ens.id(l))
                }
                2 => {
                    ens.sigstop(l);
                    let (n, t) = progress(&shared, DURING, "operations with the leader frozen").await;
                    ens.sigcont(l);
                    format!("leader {} frozen (SIGSTOP): {n} operations in {t:?}", ens.id(l))
                }
                _ => {
                    let f = majority[rng.gen_range(0..majority.len())];
                    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != f).collect();
                    ens.partition(&[&[f], &rest]);
                    let (n, t) = progress(&shared, DURING, "operations with a follower partitioned").await;
                    ens.heal();
                    format!("follower {} partitioned away: {n} operations in {t:?}", ens.id(f))
                }
            };
            println!("[lin] round {round}: {what}");
            faults.push(what);
            progress(&shared, BETWEEN, "operations after healing").await;
        }
        shared.stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.await.expect("a client panicked");
        }
        ens.wait_converged(&all).await;

        let history = shared.rec.history();
        let report = check(&history);
        println!(
            "[lin] history: {} operations ({} completed, {} writes with unknown outcome, {} plain reads); linearizable ops per znode {:?}; checked in {:?}",
            history.len(),
            shared.completed(),
            report.unknown_writes,
            report.plain_reads,
            report.linearizable_ops,
            report.elapsed
        );
        let unexpected = shared.unexpected.lock().unwrap().clone();
        assert!(unexpected.is_empty(), "errors no failover explains: {unexpected:?}");
        assert!(
            report.not_linearizable.is_empty(),
            "znodes {:?} have a non-linearizable history (seed {seed}); history:\n{:#?}",
            report.not_linearizable,
            history
                .iter()
                .filter(|r| report.not_linearizable.contains(&r.key))
                .collect::<Vec<_>>()
        );
        assert!(
            report.session_violations.is_empty(),
            "plain reads broke their sessions' order: {:?}",
            report.session_violations
        );
    });
}

// ---------------------------------------------------------------------------
// The checker's controls: fabricated histories.

fn w(
    client: usize,
    value: u64,
    expected: Option<i32>,
    outcome: Outcome,
    call: u64,
    ret: Option<u64>,
) -> Record {
    Record {
        client,
        session: 0,
        key: 0,
        op: Op::Write {
            value,
            expected,
            outcome,
        },
        call,
        ret,
    }
}

fn r(client: usize, value: u64, version: i32, call: u64, ret: u64) -> Record {
    Record {
        client,
        session: 0,
        key: 0,
        op: Op::SyncRead { value, version },
        call,
        ret: Some(ret),
    }
}

fn plain(client: usize, value: u64, version: i32, call: u64, ret: u64) -> Record {
    Record {
        op: Op::Read { value, version },
        ..r(client, value, version, call, ret)
    }
}

fn lin(h: &[Record]) -> bool {
    linearizable(&h.iter().collect::<Vec<_>>())
}

#[test]
fn checker_accepts_concurrent_operations_in_any_order_that_explains_them() {
    // Two overlapping writes; reads see the second, then the first: the
    // first write took effect last.
    let h = [
        w(0, 10, None, Outcome::Ok(2), 0, Some(5)),
        w(1, 11, None, Outcome::Ok(1), 1, Some(6)),
        r(2, 11, 1, 2, 3),
        r(2, 10, 2, 7, 8),
    ];
    assert!(lin(&h));
    // A CAS that lost to a concurrent one.
    let h = [
        w(0, 10, Some(0), Outcome::Ok(1), 0, Some(3)),
        w(1, 11, Some(0), Outcome::BadVersion, 1, Some(4)),
        r(1, 10, 1, 5, 6),
    ];
    assert!(lin(&h));
}

#[test]
fn checker_treats_a_lost_answer_as_possibly_taking_effect_at_any_later_time() {
    // The write's answer was lost; it took effect after later reads.
    let h = [
        w(0, 10, Some(0), Outcome::Unknown, 0, None),
        r(1, 0, 0, 1, 2),
        r(1, 0, 0, 3, 4),
        r(1, 10, 1, 5, 6),
    ];
    assert!(lin(&h));
    // Or never.
    let h = [
        w(0, 10, None, Outcome::Unknown, 0, None),
        r(1, 0, 0, 1, 2),
        r(1, 0, 0, 9, 10),
    ];
    assert!(lin(&h));
    // But not before it was sent.
    let h = [r(1, 10, 1, 0, 1), w(0, 10, None, Outcome::Unknown, 2, None)];
    assert!(!lin(&h));
    // And not twice, nor un-done: once read, a lost write stays.
    let h = [
        w(0, 10, None, Outcome::Unknown, 0, None),
        r(1, 10, 1, 1, 2),
        r(1, 0, 0, 3, 4),
    ];
    assert!(!lin(&h));
}

#[test]
fn checker_rejects_a_stale_read_after_an_acknowledged_write() {
    let h = [w(0, 10, None, Outcome::Ok(1), 0, Some(1)), r(1, 0, 0, 2, 3)];
    assert!(!lin(&h));
}

#[test]
fn checker_rejects_two_compare_and_sets_from_the_same_version() {
    let h = [
        w(0, 10, Some(0), Outcome::Ok(1), 0, Some(4)),
        w(1, 11, Some(0), Outcome::Ok(1), 1, Some(5)),
    ];
    assert!(!lin(&h));
    // Nor a CAS refused although the version it expected was current.
    let h = [
        w(0, 10, None, Outcome::Ok(1), 0, Some(1)),
        w(1, 11, Some(1), Outcome::BadVersion, 2, Some(3)),
        r(0, 10, 1, 4, 5),
    ];
    assert!(!lin(&h));
}

#[test]
fn checker_rejects_a_lost_acknowledged_write() {
    // Acknowledged, then gone: a later read sees the value it replaced.
    let h = [
        w(0, 10, None, Outcome::Ok(1), 0, Some(1)),
        w(1, 11, Some(1), Outcome::Ok(2), 2, Some(3)),
        r(2, 10, 1, 4, 5),
    ];
    assert!(!lin(&h));
}

#[test]
fn plain_reads_may_lag_but_never_go_back_within_a_session() {
    // A plain read may miss a write another client finished (sequential
    // consistency, not linearizability).
    let h = [w(0, 10, None, Outcome::Ok(1), 0, Some(1)), plain(1, 0, 0, 2, 3)];
    assert!(session_violations(&h).is_empty());
    // But not go back.
    let h = [
        w(0, 10, None, Outcome::Ok(1), 0, Some(1)),
        plain(1, 10, 1, 2, 3),
        plain(1, 0, 0, 4, 5),
    ];
    assert_eq!(session_violations(&h).len(), 1);
    // Nor miss the session's own write.
    let h = [w(1, 10, None, Outcome::Ok(1), 0, Some(1)), plain(1, 0, 0, 2, 3)];
    assert_eq!(session_violations(&h).len(), 1);
    // Nor read something no write wrote.
    let h = [plain(1, 99, 1, 0, 1)];
    assert_eq!(session_violations(&h).len(), 1);
}
