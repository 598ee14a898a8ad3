//! The exclusive lock against a three-member ensemble of real
//! `zonekeeper-server` processes, one member per zone, with six sessions
//! spread over the members: mutual exclusion and strictly increasing
//! fencing tokens hold while the leader is killed (`kill -9`) in the
//! middle of the contention and the sessions fail over to the survivors.
//!
//! The protected resource is a znode counter written with its version
//! (the resource's own fencing): a write whose reply was lost in the
//! failover and that lands late is refused instead of undoing a later
//! holder's increment.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, within, Ensemble};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper_client::recipes::Lock;
use zonekeeper_client::{acl_open_unsafe, Client, ClientConfig, CreateMode, Error, ErrorCode};

/// Retries a test-side request after connection loss.
async fn persist<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("request failed: {e}"),
        }
    }
}

/// Increments the counter under the lock: read, then write at the version
/// read. After a lost reply a BadVersion must be our own write (nobody
/// else writes while we hold the lock).
async fn increment(c: &Client) {
    let (data, stat) = persist(|| c.get_data("/counter")).await;
    let v: u64 = String::from_utf8(data).unwrap().parse().unwrap();
    let next = (v + 1).to_string();
    let mut lost_reply = false;
    loop {
        match c.set_data("/counter", next.as_bytes(), Some(stat.version)).await {
            Ok(_) => return,
            Err(e) if e.is_retriable() => {
                lost_reply = true;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(Error::Server(ErrorCode::BadVersion)) if lost_reply => {
                let (now, _) = persist(|| c.get_data("/counter")).await;
                assert_eq!(now, next.as_bytes(), "the counter moved while the lock was held");
                return;
            }
            Err(e) => panic!("counter write under the lock: {e}"),
        }
    }
}

/// `srvr` says `Mode: leader`.
async fn is_leader(addr: std::net::SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(b"srvr").await.is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.contains("Mode: leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_holds_across_a_leader_kill() {
    let mut ens = Ensemble::start(3).await;
    let mut clients = Vec::new();
    for i in 0..6 {
        let cfg = ClientConfig::new(ens.connect_string().parse().unwrap())
            .with_zone(ens.zone(i % 3))
            .with_request_timeout(Duration::from_secs(10));
        clients.push(
            within("connect", Client::connect(cfg))
                .await
                .expect("client connects"),
        );
    }
    clients[0]
        .create("/counter", b"0", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create the counter");
    const ROUNDS: u64 = 12;
    let started = std::time::Instant::now();
    let inside = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in clients.clone() {
        let (inside, done, tokens) = (inside.clone(), done.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(c.clone(), "/locks/ens").unwrap();
            for _ in 0..ROUNDS {
                let g = lock.acquire(None).await.expect("acquire");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                tokens.lock().unwrap().push(g.token);
                increment(&c).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                g.release().await.expect("release");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill the leader once the contention is under way.
    eventually("some grants before the kill", || {
        let done = done.clone();
        async move { (done.load(Ordering::SeqCst) >= 15).then_some(()) }
    })
    .await;
    let mut leader = None;
    for i in 0..3 {
        if is_leader(ens.addr(i)).await {
            leader = Some(i);
        }
    }
    let leader = leader.expect("a leader");
    let before_kill = started.elapsed();
    ens.kill9(leader);
    let at_kill = done.load(Ordering::SeqCst);
    let killed = std::time::Instant::now();
    let d2 = done.clone();
    eventually("a grant after the kill", || {
        let d2 = d2.clone();
        async move { (d2.load(Ordering::SeqCst) > at_kill).then_some(()) }
    })
    .await;
    let first_after = killed.elapsed();
    for t in tasks {
        within("contenders across the leader kill", t).await.unwrap();
    }
    println!(
        "killed member {leader} (leader) after {at_kill} of {} grants ({before_kill:?}); next grant {first_after:?} later; rest done {:?} after the kill",
        6 * ROUNDS,
        killed.elapsed()
    );
    let survivor = clients
        .iter()
        .find(|c| c.server().is_some_and(|s| ens.index_of_port(s.port) != leader))
        .expect("a client on a survivor");
    let (v, _) = persist(|| survivor.get_data("/counter")).await;
    assert_eq!(
        String::from_utf8(v).unwrap(),
        (6 * ROUNDS).to_string(),
        "lost increments"
    );
    let t = tokens.lock().unwrap().clone();
    assert!(
        t.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing: {t:x?}"
    );
    let (kids, _) = persist(|| survivor.get_children("/locks/ens")).await;
    assert!(kids.is_empty(), "left over: {kids:?}");
}
