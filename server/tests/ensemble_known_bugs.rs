//! Real-process ensemble tests that fail because of known server bugs.
//! They are `#[ignore]`d so CI stays green; run them with
//! `cargo test -p zonekeeper-server --test ensemble_known_bugs -- --ignored --nocapture`.
//! Each test's doc comment describes the bug; remove the `#[ignore]` with
//! the fix.

mod common_ens;
mod common_proc;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common_ens::*;
use zookeeper_client::{Client, SessionState};

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
/// A design decision, hence not fixed here.
#[test]
#[ignore = "known bug: a partitioned follower keeps its clients connected while the leader expires their sessions"]
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

/// A write forwarded by a follower cut off from the leader is applied after
/// the same session's later write, made through another member: session
/// order (FIFO client order) is violated.
///
/// Setup: 3 members, peers linked through cuttable relays. Session S is
/// connected to follower F. F is cut off from the others; S sends
/// `setData(/x, "A")`. F forwards it (`PeerMessage::Forward`) to the leader
/// it knew; the transport keeps the message queued while the link is down.
/// S's client hears nothing (its pings queue behind the write), gives up on
/// F after its connection timeout, reconnects to member G with the same
/// session, and sends `setData(/x, "B")`, which commits: S has seen /x = B.
/// The partition heals; F's transport reconnects and delivers the queued
/// forward; the leader (the same one, same term: F never disrupted it)
/// proposes it and /x becomes "A", a write S sent before "B" applied after
/// it, without any further request from S.
///
/// Where: `transport` queues messages across reconnects (by design, fine
/// for raft, which tolerates stale messages), and the leader proposes any
/// `Forward` it receives (`Consensus::on_peer_message`) without checking
/// that the session still belongs to the forwarding member. Dropping the
/// queue on reconnect would narrow the window but not close it (a real
/// partition that drops packets leaves the forward in TCP's retransmit
/// queue, delivered late all the same). ZooKeeper closes it with session
/// ownership: the leader tracks which server owns each session (it changes,
/// through the log, when the session reconnects elsewhere) and rejects a
/// request from a non-owner with SESSIONMOVED (`PrepRequestProcessor` /
/// `SessionTrackerImpl.checkSession(id, owner)`).
#[test]
#[ignore = "known bug: a forward delivered after its session moved to another member is applied out of session order"]
fn a_late_forwarded_write_is_not_applied_after_the_sessions_later_write() {
    let _serial = serial("late-forward");
    let _seed = seed("late-forward");
    rt().block_on(async {
        let ens = Ensemble::start(
            "late-forward",
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
        let g = all.iter().copied().find(|&i| i != l && i != f).unwrap();
        // S on F first (connect string F then G; the client shuffles, so
        // retry until it lands on F).
        let timeout = Duration::from_secs(5);
        let s = {
            let mut landed = None;
            for _ in 0..60 {
                let c = ens.client(&[f, g], timeout).await;
                if ens.serves_session(f, c.session_id().0).await {
                    landed = Some(c);
                    break;
                }
            }
            landed.expect("a client landing on the follower")
        };
        let sid = s.session_id();
        s.create("/x", b"0", &PERSISTENT).await.unwrap();

        ens.partition(&[&[f], &[l, g]]);
        let a = s.set_data("/x", b"A", None);
        let a = tokio::time::timeout(Duration::from_secs(20), a).await;
        println!("[late-forward] write A through the cut-off follower: {a:?}");
        assert!(
            !matches!(a, Ok(Ok(_))),
            "the cut-off follower acknowledged a write"
        );
        // The client fails over to G with its session and writes B.
        let b = retry_on_loss("write B", || s.set_data("/x", b"B", None))
            .await
            .unwrap();
        assert_eq!(s.session_id(), sid);
        assert!(
            ens.serves_session(g, sid.0).await,
            "the session moved to the other follower"
        );
        assert_eq!(s.get_data("/x").await.unwrap().0, b"B");
        println!(
            "[late-forward] session {sid} moved to member {} and wrote B at zxid {:#x}",
            ens.id(g),
            b.mzxid
        );

        ens.heal();
        ens.wait_leader(&all).await;
        // A fresh session through F: its creation is forwarded on the same
        // link, after anything F queued before it, so once it exists the
        // fate of A is settled.
        let probe = ens.client(&[f], Duration::from_secs(15)).await;
        retry_on_loss("sync", || probe.sync("/x")).await.unwrap();
        ens.wait_converged(&all).await;
        let (d, st) = retry_on_loss("read", || s.get_data("/x")).await.unwrap();
        println!(
            "[late-forward] after healing /x = {:?} (mzxid {:#x})",
            String::from_utf8_lossy(&d),
            st.mzxid
        );
        assert_eq!(
            d, b"B",
            "session {sid}'s write A, sent before its write B, was applied after B (at zxid {:#x})",
            st.mzxid
        );
    });
}
