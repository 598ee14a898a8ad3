//! Recipes while connections keep breaking: every client talks to the
//! server through a relay that is cut and healed every few milliseconds,
//! so requests lose their replies (ConnectionLoss) while sessions live on.
//! Creates whose replies are lost must not leave a second contender node
//! behind (protected names), retried puts must not duplicate queue items
//! and retried takes must not lose them; the recipes surface no
//! ConnectionLoss of their own. The workload is fixed; the cuts are random.

mod recipes_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recipes_common::*;
use zonekeeper_client::recipes::{Lock, Queue, RecipeError, Semaphore};
use zonekeeper_client::{acl_open_unsafe, Client, CreateMode, Error};

/// Retries a test-side request after connection loss (the test's own
/// reads and writes are not recipes).
async fn persist<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("request failed: {e}"),
        }
    }
}

async fn flaky_clients(ts: &TestServer, n: usize) -> (Vec<Client>, Vec<Arc<Relay>>) {
    let (mut cs, mut rs) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (c, r) = ts.flaky_client().await;
        cs.push(c);
        rs.push(r);
    }
    (cs, rs)
}

/// Lock and semaphore under connection cuts: mutual exclusion (a znode
/// counter read-modify-written under the lock loses nothing), at most N
/// permit holders, strictly increasing lock tokens, and no contender node
/// left over at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_semaphore_survive_connection_loss() {
    let ts = TestServer::start().await;
    let (clients, relays) = flaky_clients(&ts, 4).await;
    let direct = ts.client().await;
    direct
        .create("/fc", b"0", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let disconnects: Vec<_> = clients.iter().map(count_disconnects).collect();
    // The test keeps the relays alive after the chaos stops.
    let chaos = Chaos::start(relays.clone());
    let inside = Arc::new(AtomicUsize::new(0));
    let sem_inside = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    const ROUNDS: u64 = 12;
    let mut tasks = Vec::new();
    for c in clients.clone() {
        let (inside, sem_inside, tokens) = (inside.clone(), sem_inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(c.clone(), "/fl").unwrap();
            let sem = Semaphore::new(c.clone(), "/fs", 2).unwrap();
            for _ in 0..ROUNDS {
                let g = lock.acquire(None).await.expect("acquire");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                tokens.lock().unwrap().push(g.token);
                let (v, _) = persist(|| c.get_data("/fc")).await;
                let v: u64 = String::from_utf8(v).unwrap().parse().unwrap();
                // Unconditional, so a retry after a lost reply is harmless
                // (nobody else writes while we hold the lock).
                let next = (v + 1).to_string();
                persist(|| c.set_data("/fc", next.as_bytes(), None)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                g.release().await.expect("release");

                let p = sem.acquire(None).await.expect("permit");
                let n = sem_inside.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(n <= 2, "{n} holders of a 2-permit semaphore");
                persist(|| c.exists("/fs")).await;
                sem_inside.fetch_sub(1, Ordering::SeqCst);
                p.release().await.expect("permit release");
            }
        }));
    }
    for t in tasks {
        within("contenders under connection cuts", t).await.unwrap();
    }
    let cuts = chaos.stop().await;
    let lost: u64 = disconnects.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    println!("{cuts} cuts, {lost} disconnects seen by the clients");
    assert!(
        lost > 0,
        "the clients never lost a connection: the test tested nothing"
    );
    let (v, _) = direct.get_data("/fc").await.unwrap();
    assert_eq!(
        String::from_utf8(v).unwrap(),
        (4 * ROUNDS).to_string(),
        "lost increments"
    );
    let t = tokens.lock().unwrap().clone();
    assert!(t.windows(2).all(|w| w[0] < w[1]), "tokens not increasing: {t:x?}");
    for dir in ["/fl", "/fs/lock", "/fs/leases"] {
        let (kids, _) = direct.get_children(dir).await.unwrap();
        assert!(kids.is_empty(), "left over in {dir}: {kids:?}");
    }
    ts.shutdown().await;
}

/// Queue under connection cuts: two producers, two consumers; every item is
/// delivered exactly once and in order per producer and consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_exactly_once_under_connection_loss() {
    let ts = TestServer::start().await;
    let (clients, relays) = flaky_clients(&ts, 4).await;
    let disconnects: Vec<_> = clients.iter().map(count_disconnects).collect();
    // The test keeps the relays alive after the chaos stops.
    let chaos = Chaos::start(relays.clone());
    const PER_PRODUCER: usize = 30;
    let mut producers = Vec::new();
    for (p, c) in clients[..2].iter().cloned().enumerate() {
        producers.push(tokio::spawn(async move {
            let q = Queue::new(c, "/fq").unwrap();
            for i in 0..PER_PRODUCER {
                q.put(format!("{p}:{i:03}").as_bytes()).await.expect("put");
            }
        }));
    }
    let taken = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for c in clients[2..].iter().cloned() {
        let taken = taken.clone();
        consumers.push(tokio::spawn(async move {
            let q = Queue::new(c, "/fq").unwrap();
            let mut got = Vec::new();
            while taken.load(Ordering::SeqCst) < 2 * PER_PRODUCER {
                match q.take(Some(Duration::from_millis(300))).await {
                    Ok(v) => {
                        taken.fetch_add(1, Ordering::SeqCst);
                        got.push(String::from_utf8(v).unwrap());
                    }
                    Err(RecipeError::Timeout) => {}
                    Err(e) => panic!("take: {e}"),
                }
            }
            got
        }));
    }
    for p in producers {
        within("producers", p).await.unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let got = within("consumers", c).await.unwrap();
        for p in ["0:", "1:"] {
            let mine: Vec<&String> = got.iter().filter(|s| s.starts_with(p)).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order: {mine:?}");
        }
        all.extend(got);
    }
    let cuts = chaos.stop().await;
    let lost: u64 = disconnects.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    println!("{cuts} cuts, {lost} disconnects seen by the clients");
    assert!(
        lost > 0,
        "the clients never lost a connection: the test tested nothing"
    );
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "an item delivered twice");
    assert_eq!(all.len(), 2 * PER_PRODUCER, "items lost");
    // A put whose reply was lost keeps its marker until the session ends
    // (so the lost attempt cannot land late); then nothing is left.
    for c in &clients {
        c.close().await.unwrap();
    }
    let direct = ts.client().await;
    let (kids, _) = direct.get_children("/fq").await.unwrap();
    assert!(kids.iter().all(|k| k == "takers"), "left over: {kids:?}");
    ts.shutdown().await;
}
