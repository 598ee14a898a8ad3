//! A replicated ensemble of real `zonekeeper-server` processes on
//! 127.0.0.1, configured exactly as `zonekeeper-server dev` configures its
//! members (`dev::plan` + `dev::config_for`), each member a child process
//! of the test.
//!
//! - `three_members_replicate_and_serve_reads_everywhere`: writes through a
//!   follower and through the leader are on every member after `sync`, with
//!   identical `Stat`s; a follower answers its own session's reads after its
//!   writes without `sync`; watches set on one member fire for writes made
//!   on another; ephemerals of a closed session vanish everywhere; a
//!   session on a follower stays alive through forwarded pings and is
//!   expired by the leader once its client goes silent.
//! - `killing_the_leader_under_write_load_loses_no_acknowledged_write`: 3
//!   rounds of `kill -9` of the leader under write load; prints the time
//!   from the kill to the first acknowledged write issued after it (and the
//!   median); a client of the killed leader keeps its session, ephemeral
//!   and watch; the killed member restarts and catches up; no acknowledged
//!   write is lost on any member.
//! - `a_member_down_during_many_writes_catches_up_by_log_and_by_snapshot`:
//!   a follower stopped by SIGTERM misses ~2000 writes (creates, setData,
//!   deletes), restarts and ends with exactly the leader's tree; once with
//!   the default snapshot interval (it catches up from the leader's log)
//!   and once with a snapshot every 100 entries (the leader's log is
//!   compacted: it must install a snapshot); then `kill -9` and restart of
//!   that member recovers the same tree from its own disk.
//! - `kill_9_of_every_member_then_restart_loses_no_acknowledged_write`: 3
//!   rounds of `kill -9` of all members under write load (the last two with
//!   a snapshot every 100 entries, so recovery is snapshot + log tail);
//!   writes resume, every acknowledged write is on every member.
//! - `a_minority_cannot_write_and_heals` (SIGSTOP as the partition): a
//!   leader alone takes no write, steps down and still answers reads with
//!   the old data; a follower alone likewise; both heal; with the leader
//!   frozen the others elect a new one and take writes, and the thawed old
//!   leader follows and catches up.
//! - `a_network_partition_loses_no_acknowledged_write_and_heals`: peer
//!   links cut by relays (all processes running): an isolated leader takes
//!   a write it can never commit, steps down and answers reads with old
//!   data while the majority elects a new leader and takes writes; after
//!   healing the isolated write is nowhere; an isolated follower likewise,
//!   and all members end with the same tree.
//! - `a_thawed_leader_keeps_serving_sessions_the_new_leader_kept_alive`: a
//!   leader frozen longer than a session's timeout, thawed, must not treat
//!   that live session as expired (regression test).
//! - `an_observer_serves_reads_forwards_writes_and_never_leads`: reads,
//!   forwarded writes, watches and session liveness on an observer; after
//!   the leader's kill a voter leads, never the observer.
//! - `watches_fire_for_changes_a_member_catches_up_on_by_snapshot`: a
//!   client of a follower that falls behind and installs a snapshot still
//!   gets its data, exists and child watch events (regression test).
//!
//! The tests run one at a time (each is several processes on few cores).
//! Randomness comes from one seed per test, printed at the start; rerun
//! with `ENSEMBLE_SEED=<seed>`; `ENSEMBLE_KEEP=1` keeps the data
//! directories and member logs. Run with `--nocapture` for measurements.
//! Every wait polls a condition with a deadline. The only durations the
//! tests wait out are the "nothing may happen" windows of session liveness
//! (two session timeouts of a pinging client) and the freeze of a leader
//! past a session timeout.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use support::ensemble::*;
use zookeeper_client::{Client, Error as ZkError, EventType, SessionState};

const WATCH_DEADLINE: Duration = Duration::from_secs(10);

fn others(all: &[usize], not: usize) -> Vec<usize> {
    all.iter().copied().filter(|&i| i != not).collect()
}

/// Syncs through a client of member `i` and reads `path` there.
async fn read_at(ens: &Ensemble, i: usize, path: &str) -> Option<(Vec<u8>, zookeeper_client::Stat)> {
    let c = ens.client(&[i], Duration::from_secs(15)).await;
    retry_on_loss("sync", || c.sync(path)).await.unwrap();
    match retry_on_loss("read", || c.get_data(path)).await {
        Ok(v) => Some(v),
        Err(ZkError::NoNode) => None,
        Err(e) => panic!("reading {path} on member {}: {e}", ens.id(i)),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn three_members_replicate_and_serve_reads_everywhere() {
    let _serial = serial("replicate");
    let _seed = seed("replicate");
    rt().block_on(async {
        let ens = Ensemble::start(
            "replicate",
            3,
            Opts {
                min_session_timeout_ms: Some(1000),
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let l = ens.wait_leader(&all).await;
        let f = others(&all, l);
        let (f1, f2) = (f[0], f[1]);
        println!(
            "[replicate] leader {}, followers {} and {}",
            ens.id(l),
            ens.id(f1),
            ens.id(f2)
        );
        let t10 = Duration::from_secs(10);
        let cl = ens.client(&[l], t10).await;
        let c1 = ens.client(&[f1], t10).await;
        let c2 = ens.client(&[f2], t10).await;

        // Writes through a follower and through the leader.
        c1.create("/r", b"root", &PERSISTENT).await.unwrap();
        let (st, _) = c1.create("/r/via-follower", b"f", &PERSISTENT).await.unwrap();
        // Read-your-writes on the follower, without sync: the reply came
        // after the entry applied there.
        let (d, st_read) = c1.get_data("/r/via-follower").await.unwrap();
        assert_eq!((d.as_slice(), st_read), (&b"f"[..], st));
        cl.create("/r/via-leader", b"l", &PERSISTENT).await.unwrap();
        let st = c2.set_data("/r/via-leader", b"l2", Some(0)).await.unwrap();
        assert_eq!(st.version, 1);
        let st = cl.set_data("/r/via-follower", b"f2", Some(0)).await.unwrap();
        assert_eq!(st.version, 1);
        // A follower's session sees its own write even when another
        // member made the previous one.
        assert_eq!(c2.get_data("/r/via-leader").await.unwrap().0, b"l2");

        for path in ["/r/via-follower", "/r/via-leader"] {
            let mut seen = Vec::new();
            for &i in &all {
                let (d, st) = read_at(&ens, i, path)
                    .await
                    .unwrap_or_else(|| panic!("{path} missing on member {} after sync", ens.id(i)));
                seen.push((ens.id(i), d, st));
            }
            for s in &seen[1..] {
                assert_eq!(
                    (&s.1, &s.2),
                    (&seen[0].1, &seen[0].2),
                    "{path}: member {} and member {} disagree after sync",
                    s.0,
                    seen[0].0
                );
            }
        }

        // Watches: set on one member, fired by a write through another.
        let (_, _, data_watch) = c2.get_and_watch_data("/r/via-follower").await.unwrap();
        let (_, _, child_watch) = cl.get_and_watch_children("/r").await.unwrap();
        let exists_watch = match c1.check_and_watch_stat("/r/later").await.unwrap() {
            (None, w) => w,
            (Some(_), _) => panic!("/r/later exists already"),
        };
        cl.set_data("/r/via-follower", b"f3", Some(1)).await.unwrap();
        let ev = tokio::time::timeout(WATCH_DEADLINE, data_watch.changed())
            .await
            .expect("data watch set on a follower did not fire for a write through the leader");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDataChanged, "/r/via-follower"));
        // The event comes before the data: a read after it sees the write.
        assert_eq!(c2.get_data("/r/via-follower").await.unwrap().0, b"f3");
        c2.create("/r/later", b"", &PERSISTENT).await.unwrap();
        let ev = tokio::time::timeout(WATCH_DEADLINE, exists_watch.changed())
            .await
            .expect("exists watch set on one follower did not fire for a create through the other");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/r/later"));
        let ev = tokio::time::timeout(WATCH_DEADLINE, child_watch.changed())
            .await
            .expect("child watch set on the leader did not fire for a create through a follower");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/r"));
        println!("[replicate] data, exists and child watches fired across members");

        // Ephemerals of a session closed on a follower vanish everywhere.
        let e = ens.client(&[f1], t10).await;
        let owner = e.session_id().0;
        e.create("/r/eph", b"", &EPHEMERAL).await.unwrap();
        let (_, seq) = e.create("/r/eph-seq-", b"", &EPHEMERAL_SEQ).await.unwrap();
        let seq_path = format!("/r/eph-seq-{seq}");
        for &i in &all {
            for p in ["/r/eph", seq_path.as_str()] {
                let (_, st) = read_at(&ens, i, p)
                    .await
                    .unwrap_or_else(|| panic!("{p} missing on member {}", ens.id(i)));
                assert_eq!(st.ephemeral_owner, owner, "{p} on member {}", ens.id(i));
            }
        }
        drop(e);
        for &i in &all {
            let c = ens.client(&[i], t10).await;
            wait_for(
                &format!("ephemerals of a closed session gone on member {}", ens.id(i)),
                SETTLE_DEADLINE,
                || async {
                    retry_on_loss("sync", || c.sync("/r")).await.unwrap();
                    let left: Vec<String> = c
                        .list_children("/r")
                        .await
                        .unwrap()
                        .into_iter()
                        .filter(|k| k.starts_with("eph"))
                        .collect();
                    if left.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("still there: {left:?}"))
                    }
                },
            )
            .await;
        }
        println!("[replicate] ephemerals of a closed session vanished on every member");

        // A session on a follower is kept alive by its pings (the follower
        // forwards liveness to the leader, which owns expiry) and expired
        // by the leader once its client goes silent.
        let timeout = Duration::from_millis(3000);
        let s = ens
            .client_with(&[f2], Client::connector().session_timeout(timeout).detached())
            .await
            .unwrap();
        assert_eq!(s.session_timeout(), timeout, "negotiated session timeout");
        s.create("/r/live", b"", &EPHEMERAL).await.unwrap();
        // Nothing must happen for two timeouts: polled, so an early expiry
        // fails at once.
        let t = Instant::now();
        while t.elapsed() < timeout * 2 {
            assert!(
                cl.check_stat("/r/live").await.unwrap().is_some(),
                "a live session on a follower expired after {:?} (timeout {timeout:?})",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Silence: the detached client's drop neither closes nor pings.
        let t = Instant::now();
        drop(s);
        for &i in &all {
            let c = ens.client(&[i], t10).await;
            wait_for(
                &format!("expired session's ephemeral gone on member {}", ens.id(i)),
                SETTLE_DEADLINE,
                || async {
                    retry_on_loss("sync", || c.sync("/r")).await.unwrap();
                    match c.check_stat("/r/live").await.unwrap() {
                        None => Ok(()),
                        Some(st) => Err(format!("still there, owner {:#x}", st.ephemeral_owner)),
                    }
                },
            )
            .await;
        }
        println!(
            "[replicate] silent session expired everywhere {:?} after its client stopped (timeout {timeout:?})",
            t.elapsed()
        );

        // Every member holds the same tree.
        let mut trees = Vec::new();
        for &i in &all {
            let c = ens.client(&[i], t10).await;
            retry_on_loss("sync", || c.sync("/")).await.unwrap();
            trees.push(dump(&c).await);
        }
        for (k, t) in trees.iter().enumerate().skip(1) {
            assert_same_tree(&trees[0], t, &format!("member {} vs member {}", ens.id(all[0]), ens.id(all[k])));
        }
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

fn assert_no_panic_in(ens: &Ensemble, i: usize) {
    support::process::assert_no_panic(&ens.log(i));
}

// ---------------------------------------------------------------------------

/// A client with a fresh session on a connect string naming every member
/// in `all`, whose connection happens to be to member `target` (the client
/// picks a member at random; sessions on other members are closed and it
/// tries again).
async fn client_landing_on(
    ens: &Ensemble,
    target: usize,
    all: &[usize],
    timeout: Duration,
) -> (Client, usize) {
    for attempt in 1..=60 {
        let c = ens.client(all, timeout).await;
        if ens.serves_session(target, c.session_id().0).await {
            return (c, attempt);
        }
    }
    panic!("60 clients in a row avoided member {}", ens.id(target));
}

#[test]
fn killing_the_leader_under_write_load_loses_no_acknowledged_write() {
    let _serial = serial("leader-kill");
    let seed = seed("leader-kill");
    let mut rng = StdRng::seed_from_u64(seed);
    rt().block_on(async {
        let mut ens = Ensemble::start("leader-kill", 3, Opts::default()).await;
        let all = ens.all();
        let session_timeout = Duration::from_secs(15);
        let load = Load::start(&ens, "/load", 4, session_timeout, rng.gen()).await;
        let mut times = Vec::new();
        let mut probes_ephemerals = Vec::new();
        for round in 0..3 {
            load.wait_acks(rng.gen_range(100..400)).await;
            let l = ens.wait_leader(&all).await;
            let survivors = others(&all, l);

            // A client of the leader with an ephemeral and a watch.
            let (probe, attempts) = client_landing_on(&ens, l, &all, session_timeout).await;
            let sid = probe.session_id();
            let eph = format!("/eph-r{round}");
            probe.create(&eph, b"", &EPHEMERAL).await.unwrap();
            let watched = format!("/watched-r{round}");
            let watch = match probe.check_and_watch_stat(&watched).await.unwrap() {
                (None, w) => w,
                (Some(_), _) => panic!("{watched} exists already"),
            };

            let acks_before = load.acks();
            let kill_at = Instant::now();
            ens.kill9(l);
            let took = wait_for(
                "a write issued after the leader's kill acknowledged",
                SETTLE_DEADLINE,
                || async {
                    load.first_ack_issued_after(kill_at).ok_or_else(|| {
                        format!(
                            "{} acknowledged in all, {} connection losses",
                            load.acks(),
                            load.shared.lost.load(std::sync::atomic::Ordering::SeqCst)
                        )
                    })
                },
            )
            .await;
            times.push(took);
            let nl = ens.wait_leader(&survivors).await;
            println!(
                "[leader-kill] round {round}: killed leader {} after {acks_before} acknowledged writes; \
                 member {} leads; first write issued after the kill acknowledged {took:?} after it \
                 (probe landed on the leader at attempt {attempts})",
                ens.id(l),
                ens.id(nl)
            );

            // The leader's client failed over with its session, ephemeral
            // and watch.
            retry_on_loss("a write of the failed-over probe", || {
                probe.set_data(&eph, b"after", None)
            })
            .await
            .unwrap_or_else(|e| panic!("round {round}: the leader's client could not write after failover: {e}"));
            assert_eq!(probe.session_id(), sid, "round {round}: the probe's session changed");
            let other = ens.client(&survivors, session_timeout).await;
            match retry_on_loss("creating the watched node", || other.create(&watched, b"", &PERSISTENT)).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => panic!("round {round}: creating {watched}: {e}"),
            }
            let ev = tokio::time::timeout(WATCH_DEADLINE, watch.changed())
                .await
                .unwrap_or_else(|_| panic!("round {round}: the probe's watch did not survive failover"));
            assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, watched.as_str()));
            for &i in &survivors {
                let (d, st) = read_at(&ens, i, &eph)
                    .await
                    .unwrap_or_else(|| panic!("round {round}: the probe's ephemeral is gone on member {}", ens.id(i)));
                assert_eq!((d.as_slice(), st.ephemeral_owner), (&b"after"[..], sid.0));
            }

            let back = ens.restart(l).await;
            println!("[leader-kill] round {round}: member {} back and serving after {back:?}", ens.id(l));
            drop(probe);
            probes_ephemerals.push(eph);
        }
        let (acks, lost) = (load.acks(), load.shared.lost.load(std::sync::atomic::Ordering::SeqCst));
        let book = load.stop().await;

        // The probes' sessions closed: their ephemerals vanish everywhere.
        for &i in &all {
            let c = ens.client(&[i], session_timeout).await;
            wait_for(
                &format!("closed probes' ephemerals gone on member {}", ens.id(i)),
                SETTLE_DEADLINE,
                || async {
                    retry_on_loss("sync", || c.sync("/")).await.unwrap();
                    let mut left = Vec::new();
                    for p in &probes_ephemerals {
                        if c.check_stat(p).await.unwrap().is_some() {
                            left.push(p.clone());
                        }
                    }
                    if left.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("still there: {left:?}"))
                    }
                },
            )
            .await;
        }

        verify_members(&ens, &all, &book, "/load", "after 3 leader kills").await;
        let st = ens.wait_converged(&all).await;
        println!(
            "[leader-kill] all members at last_zxid {:#x} with {} znodes; {} writes acknowledged, {} connection losses",
            st.last_zxid,
            st.znode_count,
            acks, lost
        );
        println!(
            "[leader-kill] leader kill to first acknowledged write: {:?}; median {:?}",
            times,
            median(&times)
        );
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

// ---------------------------------------------------------------------------

/// What [`catch_up`] measured.
struct CatchUp {
    restart: Duration,
    caught_up: Duration,
    writes: usize,
    installed_snapshot: bool,
}

/// Stops a follower with SIGTERM, writes `writes` times (creates, setData
/// and deletes, pipelined, through the leader and the other follower),
/// restarts the follower and checks it holds exactly the leader's tree.
async fn catch_up(name: &str, snapshot_every: Option<u64>, writes: usize, rng: &mut StdRng) -> CatchUp {
    let mut ens = Ensemble::start(
        name,
        3,
        Opts {
            snapshot_every_entries: snapshot_every,
            ..Opts::default()
        },
    )
    .await;
    let all = ens.all();
    let l = ens.wait_leader(&all).await;
    let f = others(&all, l);
    let (down, up) = if rng.gen() { (f[0], f[1]) } else { (f[1], f[0]) };
    let t15 = Duration::from_secs(15);
    let cl = ens.client(&[l], t15).await;
    let cu = ens.client(&[up], t15).await;
    cl.create("/bulk", b"", &PERSISTENT).await.unwrap();
    // A node the down member will only see changed after its restart.
    cl.create("/bulk-before", b"before", &PERSISTENT).await.unwrap();
    let before = ens.status(down).await.expect("status of the member to stop");
    let stopped_after = ens.terminate(down).await;
    println!(
        "[{name}] member {} stopped by SIGTERM in {stopped_after:?} at last_zxid {:#x}",
        ens.id(down),
        before.last_zxid
    );

    // Creates, pipelined in chunks, alternating the two live members.
    let creates = writes * 8 / 10;
    let mut done = 0;
    let mut k = 0;
    while k < creates {
        let c = if (k / 100) % 2 == 0 { &cl } else { &cu };
        let n = (creates - k).min(100);
        let datas: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = rng.gen_range(0..100);
                (0..len).map(|_| rng.gen()).collect()
            })
            .collect();
        let paths: Vec<String> = (k..k + n).map(|j| format!("/bulk/n{j:05}")).collect();
        let futs: Vec<_> = paths
            .iter()
            .zip(&datas)
            .map(|(p, d)| c.create(p, d, &PERSISTENT))
            .collect();
        for (p, f) in paths.iter().zip(futs) {
            f.await.unwrap_or_else(|e| panic!("[{name}] create {p}: {e}"));
            done += 1;
        }
        k += n;
    }
    // setData of some, deletes of others: the log replays every kind.
    let sets = writes / 10;
    let futs: Vec<_> = (0..sets)
        .map(|j| {
            let p = format!("/bulk/n{:05}", (j * 7) % creates);
            let d = format!("set-{j}").into_bytes();
            (p.clone(), cu.set_data(&p, &d, None))
        })
        .collect();
    for (p, f) in futs {
        f.await.unwrap_or_else(|e| panic!("[{name}] setData {p}: {e}"));
        done += 1;
    }
    let deletes = writes - creates - sets;
    let futs: Vec<_> = (0..deletes)
        .map(|j| {
            let p = format!("/bulk/n{:05}", creates - 1 - j);
            (p.clone(), cl.delete(&p, None))
        })
        .collect();
    for (p, f) in futs {
        f.await.unwrap_or_else(|e| panic!("[{name}] delete {p}: {e}"));
        done += 1;
    }
    cl.set_data("/bulk-before", b"after", None).await.unwrap();
    done += 1;
    let leader_status = ens.status(l).await.unwrap();
    println!(
        "[{name}] {done} writes while member {} was down; leader at last_zxid {:#x}, commit index {}",
        ens.id(down),
        leader_status.last_zxid,
        leader_status.commit
    );

    let t = Instant::now();
    let restart = ens.restart(down).await;
    // Serving means its recovered log is applied and it knows the leader,
    // not that it has what it missed: a member that is behind refuses the
    // sessions of clients that saw more, and a new session waits for its
    // own creation to apply there. Poll until it has caught up.
    let target = leader_status.last_zxid;
    wait_for(
        &format!("[{name}] member {} catching up to {target:#x}", ens.id(down)),
        SETTLE_DEADLINE,
        || async {
            match ens.status(down).await {
                Some(s) if s.last_zxid >= target => Ok(()),
                s => Err(format!("{s:?}")),
            }
        },
    )
    .await;
    let caught_up = t.elapsed();
    let installed_snapshot = ens.log(down).contains("installed a snapshot from the leader");
    println!(
        "[{name}] member {} serving again after {restart:?}, caught up after {caught_up:?} ({})",
        ens.id(down),
        if installed_snapshot {
            "installed a snapshot"
        } else {
            "by log"
        }
    );

    // The restarted member's data equals the leader's: the children list,
    // a few nodes' data and Stat, then the whole tree.
    let cd = ens.client(&[down], t15).await;
    retry_on_loss("sync", || cd.sync("/")).await.unwrap();
    retry_on_loss("sync", || cl.sync("/")).await.unwrap();
    let (mut kids_l, st_l) = cl.get_children("/bulk").await.unwrap();
    let (mut kids_d, st_d) = cd.get_children("/bulk").await.unwrap();
    kids_l.sort();
    kids_d.sort();
    assert_eq!(
        kids_d.len(),
        creates - deletes,
        "[{name}] children of /bulk on the restarted member"
    );
    assert_eq!(
        kids_d, kids_l,
        "[{name}] children of /bulk differ from the leader's"
    );
    assert_eq!(st_d, st_l, "[{name}] Stat of /bulk differs from the leader's");
    for _ in 0..20 {
        let p = format!("/bulk/{}", kids_l.choose(rng).unwrap());
        assert_eq!(
            cd.get_data(&p).await.unwrap(),
            cl.get_data(&p).await.unwrap(),
            "[{name}] {p} differs from the leader's"
        );
    }
    assert_eq!(cd.get_data("/bulk-before").await.unwrap().0, b"after");
    let leader_tree = dump(&cl).await;
    assert_same_tree(
        &leader_tree,
        &dump(&cd).await,
        &format!("[{name}] leader vs restarted member"),
    );
    drop(cd);
    // What it caught up with is durable: after kill -9 it recovers the
    // same tree from its own disk (the installed snapshot and the log
    // after it).
    ens.kill9(down);
    let again = ens.restart(down).await;
    let cd = ens.client(&[down], t15).await;
    retry_on_loss("sync", || cd.sync("/")).await.unwrap();
    assert_same_tree(
        &leader_tree,
        &dump(&cd).await,
        &format!("[{name}] leader vs restarted member after its kill -9"),
    );
    println!(
        "[{name}] after kill -9 member {} serving again in {again:?} with the same tree",
        ens.id(down)
    );
    ens.wait_converged(&all).await;
    for i in all {
        assert_no_panic_in(&ens, i);
    }
    CatchUp {
        restart,
        caught_up,
        writes: done,
        installed_snapshot,
    }
}

#[test]
fn a_member_down_during_many_writes_catches_up_by_log_and_by_snapshot() {
    let _serial = serial("catch-up");
    let seed = seed("catch-up");
    let mut rng = StdRng::seed_from_u64(seed);
    rt().block_on(async {
        // The default snapshot interval (100000) is far above the writes:
        // the leader still holds every entry the follower missed.
        let by_log = catch_up("catch-up-log", None, 2000, &mut rng).await;
        assert!(
            !by_log.installed_snapshot,
            "the leader had every missed entry, yet the follower installed a snapshot"
        );
        // A snapshot every 100 entries compacts the leader's log far past
        // the follower's last entry: only a snapshot can catch it up.
        let by_snap = catch_up("catch-up-snapshot", Some(100), 2000, &mut rng).await;
        assert!(
            by_snap.installed_snapshot,
            "the leader's log was compacted past the follower, yet it caught up without a snapshot"
        );
        println!(
            "[catch-up] by log: {} writes missed, serving {:?} and caught up {:?} after restart; \
             by snapshot: {} writes missed, serving {:?} and caught up {:?} after restart",
            by_log.writes,
            by_log.restart,
            by_log.caught_up,
            by_snap.writes,
            by_snap.restart,
            by_snap.caught_up
        );
    });
}

// ---------------------------------------------------------------------------

#[test]
fn kill_9_of_every_member_then_restart_loses_no_acknowledged_write() {
    let _serial = serial("kill-all");
    let seed = seed("kill-all");
    let mut rng = StdRng::seed_from_u64(seed);
    rt().block_on(async {
        let mut ens = Ensemble::start("kill-all", 3, Opts::default()).await;
        let all = ens.all();
        // Long enough that sessions outlive the whole ensemble's restart.
        let session_timeout = Duration::from_secs(30);
        let load = Load::start(&ens, "/load", 4, session_timeout, rng.gen()).await;
        for round in 0..3 {
            load.wait_acks(rng.gen_range(150..500)).await;
            let mut order = all.clone();
            order.shuffle(&mut rng);
            let acks = load.acks();
            for &i in &order {
                ens.kill9(i);
            }
            let acks_at_kill = load.acks();
            if round == 1 {
                // From now on a snapshot every 100 entries: round 1's
                // restart snapshots, round 2's recovers from snapshot + log.
                ens.set_opts(Opts {
                    snapshot_every_entries: Some(100),
                    ..Opts::default()
                });
            }
            let t = Instant::now();
            for &i in &all {
                ens.spawn(i);
            }
            for &i in &all {
                ens.restart_wait(i).await;
            }
            let l = ens.wait_leader(&all).await;
            println!(
                "[kill-all] round {round}: kill -9 of members {:?} after {acks}..{acks_at_kill} acknowledged writes; \
                 all serving again after {:?}, member {} leads",
                order.iter().map(|&i| ens.id(i)).collect::<Vec<_>>(),
                t.elapsed(),
                ens.id(l)
            );
            // Writes resume.
            load.wait_acks(50).await;
        }
        let (acks, lost) = (load.acks(), load.shared.lost.load(std::sync::atomic::Ordering::SeqCst));
        let book = load.stop().await;
        verify_members(&ens, &all, &book, "/load", "after kill -9 of every member, 3 times").await;
        let st = ens.wait_converged(&all).await;
        let snapshots = all
            .iter()
            .filter(|&&i| ens.log(i).contains("snapshot taken"))
            .count();
        assert_eq!(snapshots, all.len(), "every member took snapshots after round 1");
        println!(
            "[kill-all] all members at last_zxid {:#x} with {} znodes; {acks} writes acknowledged, {lost} connection losses",
            st.last_zxid, st.znode_count
        );
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

// ---------------------------------------------------------------------------

#[test]
fn a_minority_cannot_write_and_heals() {
    let _serial = serial("minority");
    let seed = seed("minority");
    let mut rng = StdRng::seed_from_u64(seed);
    rt().block_on(async {
        let mut ens = Ensemble::start("minority", 3, Opts::default()).await;
        let all = ens.all();
        let t30 = Duration::from_secs(30);

        let setup = ens.client(&all, t30).await;
        setup.create("/p", b"old", &PERSISTENT).await.unwrap();

        // Part 0: the leader alone (both followers frozen by SIGSTOP). It
        // is alive and takes the write, but cannot commit it; it steps down
        // (check_quorum) and still answers reads with the old data.
        let l = ens.wait_leader(&all).await;
        let f = others(&all, l);
        let writer = ens.client(&[l], t30).await;
        let reader = ens.client(&[l], t30).await;
        retry_on_loss("sync", || reader.sync("/p")).await.unwrap();
        let before = ens.status(l).await.unwrap();
        ens.sigstop(f[0]);
        ens.sigstop(f[1]);
        let t = Instant::now();
        let write = tokio::time::timeout(Duration::from_secs(5), writer.set_data("/p", b"new0", None)).await;
        match &write {
            Ok(Ok(st)) => panic!("a leader cut off from its followers acknowledged a write: {st:?}"),
            Ok(Err(e)) => println!("[minority] the lone leader's write failed: {e}"),
            Err(_) => println!("[minority] the lone leader's write did not complete in 5 s"),
        }
        // A read there answers the old data, or — once the member has lost
        // its leader and closed its clients, as a ZooKeeper member without
        // a quorum does — fails; it never answers data no majority accepted.
        match tokio::time::timeout(Duration::from_secs(5), reader.get_data("/p")).await {
            Ok(Ok((d, _))) => assert_eq!(d, b"old", "the lone leader answered data no majority accepted"),
            Ok(Err(e)) => println!("[minority] the lone leader stopped serving its clients: {e}"),
            Err(_) => println!("[minority] a read on the lone leader waited (client reconnecting)"),
        }
        let during = wait_for("the lone leader stepping down", SETTLE_DEADLINE, || async {
            match ens.status(l).await {
                Some(s) if s.role != "leader" => Ok(s),
                s => Err(format!("{s:?}")),
            }
        })
        .await;
        assert_eq!(during.last_zxid, before.last_zxid, "the lone leader applied something alone");
        println!(
            "[minority] lone leader {} stepped down within {:?} of losing its followers: {during:?}",
            ens.id(l),
            t.elapsed()
        );
        ens.sigcont(f[0]);
        ens.sigcont(f[1]);
        let t = Instant::now();
        ens.wait_leader(&all).await;
        retry_on_loss("a write through the old lone leader", || writer.set_data("/p", b"old", None))
            .await
            .unwrap();
        println!("[minority] healed; its client wrote again {:?} after SIGCONT", t.elapsed());
        drop((writer, reader));

        // Part 1: one follower alone (the leader and the other follower
        // frozen by SIGSTOP).
        let l = ens.wait_leader(&all).await;
        let mut f = others(&all, l);
        f.shuffle(&mut rng);
        let (lone, other) = (f[0], f[1]);
        // Sessions are created through the log, so the lone member's
        // clients connect before the partition.
        let writer = ens.client(&[lone], t30).await;
        let reader = ens.client(&[lone], t30).await;
        retry_on_loss("sync", || reader.sync("/p")).await.unwrap();
        assert_eq!(reader.get_data("/p").await.unwrap().0, b"old");

        ens.sigstop(l);
        ens.sigstop(other);
        println!(
            "[minority] froze leader {} and follower {}; member {} is alone",
            ens.id(l),
            ens.id(other),
            ens.id(lone)
        );
        // Long enough for the lone member's election timeout (at most 2 s)
        // to pass several times while the write waits.
        let write = tokio::time::timeout(Duration::from_secs(6), writer.set_data("/p", b"new", None)).await;
        match &write {
            Ok(Ok(st)) => panic!("a member cut off from the majority acknowledged a write: {st:?}"),
            Ok(Err(e)) => println!("[minority] the lone member's write failed: {e}"),
            Err(_) => println!("[minority] the lone member's write did not complete in 6 s"),
        }
        // Without a leader the member closes its clients (ZooKeeper: a
        // member without a quorum does not serve): a read fails or waits;
        // it never answers data no majority accepted.
        match tokio::time::timeout(Duration::from_secs(5), reader.get_data("/p")).await {
            Ok(Ok((d, _))) => assert_eq!(d, b"old", "the minority side read data no majority accepted"),
            Ok(Err(e)) => println!("[minority] the lone member stopped serving its clients: {e}"),
            Err(_) => println!("[minority] a read on the lone member waited (client reconnecting)"),
        }
        let during = ens.status(lone).await.expect("status of the lone member");
        assert_ne!(during.role, "leader", "a lone member of 3 became leader");
        println!("[minority] lone member during the partition: {during:?}");

        ens.sigcont(l);
        ens.sigcont(other);
        let t = Instant::now();
        let l2 = ens.wait_leader(&all).await;
        // It heals: the lone member's clients write again, and everyone
        // agrees.
        retry_on_loss("a write through the healed member", || writer.set_data("/p", b"healed", None))
            .await
            .unwrap();
        println!(
            "[minority] healed: member {} leads, the lone member's client wrote again {:?} after SIGCONT",
            ens.id(l2),
            t.elapsed()
        );
        for &i in &all {
            let (d, _) = read_at(&ens, i, "/p").await.unwrap();
            assert_eq!(d, b"healed", "member {}", ens.id(i));
        }
        drop((writer, reader));

        // Part 2: the leader alone (frozen): the two others elect a new
        // leader and take writes; when it thaws it follows and catches up.
        let l = ens.wait_leader(&all).await;
        let majority = others(&all, l);
        let c = ens.client(&majority, t30).await;
        let old_leader_client = ens.client(&[l], t30).await;
        let before = ens.status(l).await.unwrap();
        ens.sigstop(l);
        let t = Instant::now();
        let nl = ens.wait_leader(&majority).await;
        assert_ne!(nl, l);
        let elected = t.elapsed();
        for k in 0..50 {
            // A retried create whose first attempt committed finds its node.
            let path = format!("/p/m{k}");
            match retry_on_loss("a write through the majority", || c.create(&path, b"", &PERSISTENT))
            .await
            {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => panic!("a write through the majority failed: {e}"),
            }
        }
        println!(
            "[minority] leader {} frozen at term {}: member {} elected {elected:?} after SIGSTOP, 50 writes through the majority",
            ens.id(l),
            before.term,
            ens.id(nl)
        );
        ens.sigcont(l);
        let t = Instant::now();
        let l3 = ens.wait_leader(&all).await;
        let st = ens.wait_converged(&all).await;
        println!(
            "[minority] old leader {} thawed: follows member {} and converged after {:?} (last_zxid {:#x})",
            ens.id(l),
            ens.id(l3),
            t.elapsed(),
            st.last_zxid
        );
        // Its client, frozen with it, goes on with its session.
        retry_on_loss("sync", || old_leader_client.sync("/p")).await.unwrap();
        assert_eq!(old_leader_client.list_children("/p").await.unwrap().len(), 50);

        let mut trees = Vec::new();
        for &i in &all {
            let c = ens.client(&[i], t30).await;
            retry_on_loss("sync", || c.sync("/")).await.unwrap();
            trees.push(dump(&c).await);
        }
        for (k, t) in trees.iter().enumerate().skip(1) {
            assert_same_tree(&trees[0], t, &format!("member {} vs member {}", ens.id(all[0]), ens.id(all[k])));
        }
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

// ---------------------------------------------------------------------------

#[test]
fn an_observer_serves_reads_forwards_writes_and_never_leads() {
    let _serial = serial("observer");
    let _seed = seed("observer");
    rt().block_on(async {
        let mut ens = Ensemble::start(
            "observer",
            4,
            Opts {
                observers: vec![4],
                min_session_timeout_ms: Some(1000),
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let obs = ens.index_of(4);
        let t15 = Duration::from_secs(15);
        let l = ens.wait_leader(&all).await;
        assert_ne!(l, obs, "the observer leads");
        assert_eq!(ens.status(obs).await.unwrap().role, "observer");

        let co = ens.client(&[obs], t15).await;
        let cl = ens.client(&[l], t15).await;
        // A write through the observer is forwarded, acknowledged after it
        // applied there, and replicated.
        co.create("/o", b"via-observer", &PERSISTENT).await.unwrap();
        assert_eq!(co.get_data("/o").await.unwrap().0, b"via-observer");
        assert_eq!(read_at(&ens, l, "/o").await.unwrap().0, b"via-observer");
        // The observer serves reads of writes made elsewhere, and watches.
        let (_, _, watch) = co.get_and_watch_data("/o").await.unwrap();
        cl.set_data("/o", b"via-leader", None).await.unwrap();
        let ev = tokio::time::timeout(WATCH_DEADLINE, watch.changed())
            .await
            .expect("a watch set on the observer did not fire");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert_eq!(co.get_data("/o").await.unwrap().0, b"via-leader");
        // A session on the observer is kept alive (the observer forwards
        // its liveness to the leader) for two timeouts.
        let timeout = Duration::from_millis(3000);
        let s = ens
            .client_with(&[obs], Client::connector().session_timeout(timeout))
            .await
            .unwrap();
        s.create("/o-live", b"", &EPHEMERAL).await.unwrap();
        let t = Instant::now();
        while t.elapsed() < timeout * 2 {
            assert!(
                cl.check_stat("/o-live").await.unwrap().is_some(),
                "a live session on the observer expired after {:?} (timeout {timeout:?})",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(s);

        // The leader dies: a voter takes over, never the observer, and the
        // observer's client writes again.
        ens.kill9(l);
        let rest = others(&all, l);
        let t = Instant::now();
        let nl = ens.wait_leader(&rest).await;
        assert_ne!(nl, obs, "the observer became leader");
        retry_on_loss("a write through the observer after failover", || {
            co.set_data("/o", b"after-failover", None)
        })
        .await
        .unwrap();
        println!(
            "[observer] leader {} killed; member {} leads; the observer's client wrote again {:?} after the kill",
            ens.id(l),
            ens.id(nl),
            t.elapsed()
        );
        ens.restart(l).await;
        ens.wait_leader(&all).await;
        ens.wait_converged(&all).await;
        let mut trees = Vec::new();
        for &i in &all {
            let c = ens.client(&[i], t15).await;
            retry_on_loss("sync", || c.sync("/")).await.unwrap();
            trees.push(dump(&c).await);
            let st = ens.status(i).await.unwrap();
            assert_eq!(st.role == "observer", i == obs, "role of member {}: {st:?}", ens.id(i));
        }
        for (k, t) in trees.iter().enumerate().skip(1) {
            assert_same_tree(&trees[0], t, &format!("member {} vs member {}", ens.id(all[0]), ens.id(all[k])));
        }
        assert_eq!(trees[obs]["/o"].0, b"after-failover");
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

// ---------------------------------------------------------------------------

#[test]
fn a_thawed_leader_keeps_serving_sessions_the_new_leader_kept_alive() {
    let _serial = serial("thaw");
    let _seed = seed("thaw");
    rt().block_on(async {
        let mut ens = Ensemble::start(
            "thaw",
            3,
            Opts {
                min_session_timeout_ms: Some(1000),
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let l = ens.wait_leader(&all).await;
        let rest = others(&all, l);
        let timeout = Duration::from_millis(3000);
        // A session on a follower, kept alive by its pings throughout.
        let c = ens
            .client_with(&[rest[0]], Client::connector().session_timeout(timeout))
            .await
            .unwrap();
        let sid = c.session_id();
        c.create("/alive", b"", &EPHEMERAL).await.unwrap();

        ens.sigstop(l);
        let frozen = Instant::now();
        let nl = ens.wait_leader(&rest).await;
        // The frozen leader's clock runs on: once it has not heard of the
        // session for longer than its timeout, its deadline there passed.
        while frozen.elapsed() < timeout * 2 {
            assert!(c.check_stat("/alive").await.unwrap().is_some());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ens.sigcont(l);
        ens.wait_leader(&all).await;
        ens.wait_converged(&all).await;
        println!(
            "[thaw] leader {} frozen {:?}; member {} leads; session {sid} alive there",
            ens.id(l),
            frozen.elapsed(),
            ens.id(nl)
        );
        for &i in &all {
            assert!(
                read_at(&ens, i, "/alive").await.is_some(),
                "the live session's ephemeral is gone on member {}",
                ens.id(i)
            );
        }
        // The session is alive: resuming it on the thawed member works.
        let resumed = ens
            .client_with(
                &[l],
                Client::connector()
                    .session(c.session().clone())
                    .session_timeout(timeout),
            )
            .await;
        match resumed {
            Ok(r) => {
                assert_eq!(r.session_id(), sid);
                retry_on_loss("a write of the resumed session", || {
                    r.set_data("/alive", b"x", None)
                })
                .await
                .unwrap();
            }
            Err(e) => panic!(
                "resuming live session {sid} on the thawed old leader {} failed: {e}",
                ens.id(l)
            ),
        }
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

// ---------------------------------------------------------------------------

#[test]
fn watches_fire_for_changes_a_member_catches_up_on_by_snapshot() {
    let _serial = serial("snapshot-watch");
    let _seed = seed("snapshot-watch");
    rt().block_on(async {
        let mut ens = Ensemble::start(
            "snapshot-watch",
            3,
            Opts {
                snapshot_every_entries: Some(100),
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let l = ens.wait_leader(&all).await;
        let victim = others(&all, l)[0];
        // A client of one follower only, with three kinds of watches. Its
        // connection outlives the follower's freeze below (the client gives
        // up on a silent connection after 2/5 of the session timeout).
        let timeout = Duration::from_secs(40);
        let c = ens.client(&[victim], timeout).await;
        c.create("/w", b"", &PERSISTENT).await.unwrap();
        c.create("/w/x", b"v0", &PERSISTENT).await.unwrap();
        let (_, _, data_watch) = c.get_and_watch_data("/w/x").await.unwrap();
        let (_, _, child_watch) = c.get_and_watch_children("/w").await.unwrap();
        let exists_watch = match c.check_and_watch_stat("/w/y").await.unwrap() {
            (None, w) => w,
            (Some(_), _) => panic!("/w/y exists already"),
        };

        // The follower freezes; the watched nodes change, and the leader's
        // log is compacted past them.
        ens.sigstop(victim);
        let frozen = Instant::now();
        let cl = ens.client(&[l], timeout).await;
        cl.create("/fill", b"", &PERSISTENT).await.unwrap();
        // One write at a time: each is one append message to the frozen
        // follower, and raft stops sending after 256 unanswered ones, so
        // the later entries can only reach it in a snapshot.
        for k in 0..300 {
            cl.create(&format!("/fill/a{k}"), b"", &PERSISTENT).await.unwrap();
        }
        cl.set_data("/w/x", b"v1", None).await.unwrap();
        let (st, _) = cl.create("/w/y", b"", &PERSISTENT).await.unwrap();
        for k in 0..150 {
            cl.create(&format!("/fill/b{k}"), b"", &PERSISTENT).await.unwrap();
        }
        let changed_at = index_of(st.czxid);
        ens.sigcont(victim);
        println!(
            "[snapshot-watch] follower {} frozen {:?} while the watched nodes changed (index {changed_at})",
            ens.id(victim),
            frozen.elapsed()
        );
        ens.wait_converged(&all).await;
        let log = ens.log(victim);
        assert!(
            log.contains("installed a snapshot from the leader"),
            "the follower was expected to catch up by snapshot"
        );

        // Every watched change happened: every watch fires.
        let ev = tokio::time::timeout(WATCH_DEADLINE, data_watch.changed())
            .await
            .expect("the data watch never fired for a change the follower got in a snapshot");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/w/x")
        );
        let ev = tokio::time::timeout(WATCH_DEADLINE, exists_watch.changed())
            .await
            .expect("the exists watch never fired for a create the follower got in a snapshot");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, "/w/y")
        );
        let ev = tokio::time::timeout(WATCH_DEADLINE, child_watch.changed())
            .await
            .expect("the child watch never fired for a create the follower got in a snapshot");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, "/w")
        );
        assert_eq!(
            retry_on_loss("read", || c.get_data("/w/x")).await.unwrap().0,
            b"v1"
        );
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

/// Raft index of a zxid (`term << 32 | index`).
fn index_of(zxid: i64) -> u64 {
    (zxid as u64) & 0xffff_ffff
}

// ---------------------------------------------------------------------------

/// Whether `path` exists on member `i` after a sync there.
async fn exists_at(ens: &Ensemble, i: usize, path: &str) -> bool {
    read_at(ens, i, path).await.is_some()
}

#[test]
fn a_network_partition_loses_no_acknowledged_write_and_heals() {
    let _serial = serial("partition");
    let seed = seed("partition");
    let mut rng = StdRng::seed_from_u64(seed);
    rt().block_on(async {
        let ens = Ensemble::start(
            "partition",
            3,
            Opts {
                partitionable: true,
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let t30 = Duration::from_secs(30);
        let setup = ens.client(&all, t30).await;
        setup.create("/q", b"old", &PERSISTENT).await.unwrap();

        // Part 1: the leader cut off from both followers (both directions,
        // all processes running). It takes a write it cannot commit, steps
        // down, and still answers reads with the old data; the majority
        // elects a new leader and takes writes.
        let l = ens.wait_leader(&all).await;
        let majority = others(&all, l);
        let on_old = ens.client(&[l], t30).await;
        let reader = ens.client(&[l], t30).await;
        let on_majority = ens.client(&majority, t30).await;
        ens.partition(&[&[l], &majority]);
        let cut = Instant::now();
        let write = tokio::time::timeout(
            Duration::from_secs(5),
            on_old.create("/q/from-isolated-leader", b"", &PERSISTENT),
        )
        .await;
        if let Ok(Ok(_)) = write {
            panic!("a leader cut off from its followers acknowledged a write");
        }
        // A read there answers the old data, or fails once the member has
        // lost its leader and closed its clients (ZooKeeper: no quorum, no
        // service); never data no majority accepted.
        match tokio::time::timeout(Duration::from_secs(5), reader.get_data("/q")).await {
            Ok(Ok((d, _))) => assert_eq!(d, b"old"),
            Ok(Err(e)) => println!("[partition] the isolated old leader stopped serving its clients: {e}"),
            Err(_) => println!("[partition] a read on the isolated old leader waited (client reconnecting)"),
        }
        let nl = ens.wait_leader(&majority).await;
        let elected = cut.elapsed();
        for k in 0..20 {
            let path = format!("/q/m{k}");
            match retry_on_loss("a write through the majority", || on_majority.create(&path, b"", &PERSISTENT)).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => panic!("a write through the majority failed: {e}"),
            }
        }
        let isolated = wait_for("the isolated old leader stepping down", SETTLE_DEADLINE, || async {
            match ens.status(l).await {
                Some(s) if s.role != "leader" => Ok(s),
                s => Err(format!("{s:?}")),
            }
        })
        .await;
        println!(
            "[partition] leader {} cut off: member {} leads (agreed {elected:?} after the cut); isolated: {isolated:?}",
            ens.id(l),
            ens.id(nl)
        );
        ens.heal();
        let t = Instant::now();
        ens.wait_leader(&all).await;
        ens.wait_converged(&all).await;
        println!("[partition] healed; converged {:?} later", t.elapsed());
        // The isolated leader's write was never acknowledged and no
        // majority had it: it is gone for good, on every member.
        for &i in &all {
            assert!(
                !exists_at(&ens, i, "/q/from-isolated-leader").await,
                "the write taken by the isolated old leader was applied on member {}",
                ens.id(i)
            );
            let kids = retry_on_loss("list", || on_majority.list_children("/q")).await.unwrap();
            assert_eq!(kids.len(), 20);
        }
        drop((on_old, reader));

        // Part 2: a follower cut off. Its client's write is not
        // acknowledged, its reads answer old data; the others go on; after
        // healing it catches up.
        let l = ens.wait_leader(&all).await;
        let f = others(&all, l);
        let lone = f[rng.gen_range(0..2)];
        let rest = others(&all, lone);
        let writer = ens.client(&[lone], t30).await;
        let reader = ens.client(&[lone], t30).await;
        retry_on_loss("sync", || reader.sync("/q")).await.unwrap();
        ens.partition(&[&[lone], &rest]);
        let write = tokio::time::timeout(Duration::from_secs(5), writer.set_data("/q", b"from-lone", None)).await;
        if let Ok(Ok(_)) = write {
            panic!("a follower cut off from the others acknowledged a write");
        }
        let on_rest = ens.client(&rest, t30).await;
        retry_on_loss("a write through the majority", || on_rest.set_data("/q", b"majority", None))
            .await
            .unwrap();
        // Old data, or no service once it has lost its leader; never the
        // majority's newer data it cannot have.
        match tokio::time::timeout(Duration::from_secs(5), reader.get_data("/q")).await {
            Ok(Ok((d, _))) => assert_eq!(d, b"old", "the cut-off follower answered data it cannot have"),
            Ok(Err(e)) => println!("[partition] the cut-off follower stopped serving its clients: {e}"),
            Err(_) => println!("[partition] a read on the cut-off follower waited (client reconnecting)"),
        }
        ens.heal();
        ens.wait_leader(&all).await;
        // Its pending write may still commit (outcome unknown): its
        // forward waits in the member's peer queue until the link is back.
        // A new session through it is forwarded behind it on the same
        // link, so once that exists the write's fate is settled.
        let probe = ens.client(&[lone], t30).await;
        retry_on_loss("sync", || probe.sync("/q")).await.unwrap();
        ens.wait_converged(&all).await;
        // Then the final value is one of the two, the same everywhere.
        let mut finals = Vec::new();
        for &i in &all {
            finals.push(read_at(&ens, i, "/q").await.unwrap().0);
        }
        assert!(finals.iter().all(|v| v == &finals[0]), "members disagree: {finals:?}");
        assert!(
            finals[0] == b"majority" || finals[0] == b"from-lone",
            "unexpected final value {:?}",
            String::from_utf8_lossy(&finals[0])
        );
        println!(
            "[partition] follower {} cut off and healed; final value {:?}",
            ens.id(lone),
            String::from_utf8_lossy(&finals[0])
        );
        let mut trees = Vec::new();
        for &i in &all {
            let c = ens.client(&[i], t30).await;
            retry_on_loss("sync", || c.sync("/")).await.unwrap();
            trees.push(dump(&c).await);
        }
        for (k, t) in trees.iter().enumerate().skip(1) {
            assert_same_tree(&trees[0], t, &format!("member {} vs member {}", ens.id(all[0]), ens.id(all[k])));
        }
        for i in all {
            assert_no_panic_in(&ens, i);
        }
    });
}

/// A partitioned follower keeps answering its clients' pings, so they never
/// notice they are cut off while the leader expires their sessions.
///
/// Setup: 3 members, a client connected only to follower F (session
/// timeout 4 s) holding an ephemeral node (a lock). F is cut off from the
/// other two by a network partition (peer links only; the client still
/// reaches F).
///
/// What happens: F answers pings locally (`conn.rs`: `Ping` is a local
/// request, answered whether or not F has a leader) and its touches never
/// reach the leader (`Consensus::forward_touches` drops them when
/// `leader_id == 0`, and the link is cut anyway). The leader expires the
/// session after its timeout and deletes the ephemeral; another client can
/// take the lock. Meanwhile the first client is still `SyncConnected`, its
/// pings answered and its reads (F's stale state) still showing its lock:
/// two clients believe they hold it, for as long as the partition lasts.
///
/// ZooKeeper's guarantee (what recipes like Curator's locks rely on): a
/// client hears `Disconnected` before its session can expire, because a
/// follower that loses its leader stops serving and closes its client
/// connections (after `syncLimit` ticks), and the client's read timeout
/// (2/3 of the session timeout) is shorter than the session timeout.
///
/// A fix along ZooKeeper's lines: a follower or observer that has had no
/// leader for about the election timeout closes its client connections and
/// refuses sessions (new and resumed) until it has a leader again; clients
/// then fail over to a member of the majority, which keeps their sessions
/// alive, or learn they are disconnected. That conflicts with the brief's
/// expectation that a minority member keeps answering reads (see
/// `a_minority_cannot_write_and_heals` in `ensemble.rs`): answering reads
/// but not pings (so clients time out and fail over) is the other option.
/// Fixed: a member that no longer knows a leader closes its client
/// connections (`Consensus::drop_clients_without_leader`), as a ZooKeeper
/// member without a quorum does.
#[test]
fn a_client_of_a_partitioned_follower_is_disconnected_before_its_session_expires() {
    let _serial = serial("partitioned-follower-session");
    let _seed = seed("partitioned-follower-session");
    rt().block_on(async {
        let ens = Ensemble::start(
            "partitioned-follower-session",
            3,
            Opts {
                partitionable: true,
                ..Opts::default()
            },
        )
        .await;
        let all = ens.all();
        let l = ens.wait_leader(&all).await;
        let f = all.iter().copied().find(|&i| i != l).unwrap();
        let majority: Vec<usize> = all.iter().copied().filter(|&i| i != f).collect();

        let timeout = Duration::from_secs(4);
        let c = ens
            .client_with(&[f], Client::connector().session_timeout(timeout))
            .await
            .unwrap();
        assert_eq!(c.session_timeout(), timeout);
        // Every session state change the client goes through, timed.
        let states: Arc<Mutex<Vec<(Instant, SessionState)>>> = Arc::default();
        {
            let states = states.clone();
            let mut watcher = c.state_watcher();
            tokio::spawn(async move {
                loop {
                    let s = watcher.changed().await;
                    states.lock().unwrap().push((Instant::now(), s));
                    if s.is_terminated() {
                        break;
                    }
                }
            });
        }
        c.create("/lock", b"", &EPHEMERAL).await.unwrap();
        let other = ens.client(&majority, Duration::from_secs(30)).await;

        ens.partition(&[&[f], &majority]);
        let cut = Instant::now();
        // The majority expires the session and deletes the lock.
        wait_for(
            "the majority expiring the cut-off client's session",
            SETTLE_DEADLINE,
            || async {
                match retry_on_loss("exists", || other.check_stat("/lock"))
                    .await
                    .unwrap()
                {
                    None => Ok(()),
                    Some(st) => Err(format!("/lock still held by {:#x}", st.ephemeral_owner)),
                }
            },
        )
        .await;
        let expired = Instant::now();
        // What the client of the cut-off follower sees at that moment.
        let still_sees_lock = tokio::time::timeout(Duration::from_secs(2), c.check_stat("/lock"))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .is_some();
        let seen: Vec<(Duration, SessionState)> = states
            .lock()
            .unwrap()
            .iter()
            .map(|(t, s)| (t.saturating_duration_since(cut), *s))
            .collect();
        println!(
            "[partitioned-follower-session] session expired at the majority {:?} after the cut; \
             client state {:?}, its states since the cut {seen:?}, still sees its lock: {still_sees_lock}",
            expired - cut,
            c.state()
        );
        let warned = states
            .lock()
            .unwrap()
            .iter()
            .any(|(t, s)| *t <= expired && *s != SessionState::SyncConnected);
        assert!(
            warned,
            "the client of the cut-off follower was never told it was disconnected, yet the majority \
             expired its session {:?} after the cut (it still sees its ephemeral lock: {still_sees_lock})",
            expired - cut
        );
        ens.heal();
    });
}
