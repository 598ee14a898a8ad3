//! Barrier, double barrier, distributed queue and versioned key/value
//! against a real server with several sessions: barriers hold everyone
//! until released and then release all; the queue delivers each item
//! exactly once, in FIFO order, to competing consumers (also ones that were
//! waiting on an empty queue); compare-and-set conflicts are detected and
//! no concurrent increment is lost.

mod recipes_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use recipes_common::*;
use zonekeeper_client::recipes::{Barrier, DoubleBarrier, Expected, Kv, Queue, RecipeError};

/// Waiters block while the barrier is up and are all released by remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_holds_then_releases_all() {
    let ts = TestServer::start().await;
    let clients = ts.clients(4).await;
    let b0 = Barrier::new(clients[0].clone(), "/b/gate").unwrap();
    b0.set().await.unwrap();
    b0.set().await.unwrap();
    assert!(b0.is_set().await.unwrap());
    let mut waiters = Vec::new();
    for c in &clients[1..] {
        let b = Barrier::new(c.clone(), "/b/gate").unwrap();
        waiters.push(tokio::spawn(async move { b.wait(None).await }));
    }
    assert_eq!(
        Barrier::new(clients[1].clone(), "/b/gate")
            .unwrap()
            .wait(Some(Duration::from_millis(50)))
            .await,
        Err(RecipeError::Timeout)
    );
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "released while the barrier is up"
    );
    b0.remove().await.unwrap();
    for w in waiters {
        within("a waiter to be released", w).await.unwrap().unwrap();
    }
    // Down: wait returns at once.
    within("wait on a lowered barrier", b0.wait(None)).await.unwrap();
    ts.shutdown().await;
}

/// Double barrier of 4: nobody gets past enter before all 4 entered, and
/// nobody gets past leave before all 4 started leaving; then no member
/// node is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_enters_and_leaves_together() {
    let ts = TestServer::start().await;
    let clients = ts.clients(4).await;
    let entering = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let (entering, leaving) = (entering.clone(), leaving.clone());
        tasks.push(tokio::spawn(async move {
            let db = DoubleBarrier::new(c, "/db/round-1", 4, &format!("p{i}")).unwrap();
            entering.fetch_add(1, Ordering::SeqCst);
            db.enter(None).await.unwrap();
            assert_eq!(
                entering.load(Ordering::SeqCst),
                4,
                "entered before everyone arrived"
            );
            leaving.fetch_add(1, Ordering::SeqCst);
            db.leave(None).await.unwrap();
            assert_eq!(
                leaving.load(Ordering::SeqCst),
                4,
                "left before everyone was leaving"
            );
        }));
        // Stagger: the first ones really wait.
        if i == 0 {
            eventually("p0 to enter", || async {
                clients[1]
                    .exists("/db/round-1/members/p0")
                    .await
                    .unwrap()
                    .is_some()
            })
            .await;
        }
    }
    for t in tasks {
        within("double barrier participants", t).await.unwrap();
    }
    let (kids, _) = clients[0].get_children("/db/round-1/members").await.unwrap();
    assert!(kids.is_empty(), "{kids:?}");
    // An enter that times out withdraws its member node.
    let db = DoubleBarrier::new(clients[0].clone(), "/db/round-2", 2, "p0").unwrap();
    assert_eq!(
        db.enter(Some(Duration::from_millis(50))).await,
        Err(RecipeError::Timeout)
    );
    assert!(clients[0]
        .get_children("/db/round-2/members")
        .await
        .unwrap()
        .0
        .is_empty());
    ts.shutdown().await;
}

/// Competing consumers: two producers put 40 items each while three
/// consumers take; every item is delivered exactly once, and each
/// consumer sees each producer's items in the order they were put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_each_item_once_in_fifo_order() {
    let ts = TestServer::start().await;
    let clients = ts.clients(5).await;
    const PER_PRODUCER: usize = 40;
    let mut producers = Vec::new();
    for (p, c) in clients[..2].iter().cloned().enumerate() {
        producers.push(tokio::spawn(async move {
            let q = Queue::new(c, "/q/jobs").unwrap();
            for i in 0..PER_PRODUCER {
                q.put(format!("{p}:{i:03}").as_bytes()).await.unwrap();
            }
        }));
    }
    let taken = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for c in clients[2..].iter().cloned() {
        let taken = taken.clone();
        consumers.push(tokio::spawn(async move {
            let q = Queue::new(c, "/q/jobs").unwrap();
            let mut got = Vec::new();
            while taken.load(Ordering::SeqCst) < 2 * PER_PRODUCER {
                match q.take(Some(Duration::from_millis(200))).await {
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
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "out of order for one consumer: {mine:?}"
            );
        }
        all.extend(got);
    }
    assert_eq!(all.len(), 2 * PER_PRODUCER, "duplicates or losses");
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 2 * PER_PRODUCER, "an item delivered twice");
    let q = Queue::new(clients[0].clone(), "/q/jobs").unwrap();
    assert_eq!(q.len().await.unwrap(), 0);
    // No markers or turns left behind.
    let (kids, _) = clients[0].get_children("/q/jobs").await.unwrap();
    assert!(kids.iter().all(|k| k == "takers"), "{kids:?}");
    ts.shutdown().await;
}

/// Consumers waiting on an empty queue each get one of the items put
/// later; a timed-out take leaves no turn behind; a single consumer gets
/// a single producer's items in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_consumers_get_later_items() {
    let ts = TestServer::start().await;
    let clients = ts.clients(4).await;
    let q0 = Queue::new(clients[0].clone(), "/q2").unwrap();
    assert_eq!(
        q0.take(Some(Duration::from_millis(50))).await,
        Err(RecipeError::Timeout)
    );
    assert!(q0.try_take().await.unwrap().is_none());
    let mut waiting = Vec::new();
    for c in &clients[1..] {
        let q = Queue::new(c.clone(), "/q2").unwrap();
        waiting.push(tokio::spawn(async move { q.take(None).await }));
    }
    eventually("the consumers to queue up", || async {
        clients[0]
            .get_children("/q2/takers")
            .await
            .map(|k| k.0.len())
            .unwrap_or(0)
            == 3
    })
    .await;
    for i in 0..3 {
        q0.put(format!("item-{i}").as_bytes()).await.unwrap();
    }
    let mut got = BTreeSet::new();
    for w in waiting {
        got.insert(String::from_utf8(within("a waiting consumer", w).await.unwrap().unwrap()).unwrap());
    }
    assert_eq!(
        got,
        ["item-0", "item-1", "item-2"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(clients[0].get_children("/q2/takers").await.unwrap().0.is_empty());
    for i in 0..5 {
        q0.put(&[i]).await.unwrap();
    }
    assert_eq!(q0.len().await.unwrap(), 5);
    for i in 0..5 {
        assert_eq!(q0.take(None).await.unwrap(), vec![i]);
    }
    ts.shutdown().await;
}

/// Compare-and-set: create-if-absent, versioned updates, stale versions
/// conflict with the current version reported, deletes by version; and
/// five sessions incrementing one key with CAS retries lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_compare_and_set() {
    let ts = TestServer::start().await;
    let clients = ts.clients(5).await;
    let kv = Kv::new(clients[0].clone(), "/kv/config").unwrap();
    assert_eq!(kv.get("a").await.unwrap(), None);
    assert_eq!(kv.put("a", b"1", Expected::Absent).await.unwrap(), 0);
    assert_eq!(
        kv.put("a", b"x", Expected::Absent).await,
        Err(RecipeError::Conflict { current: Some(0) })
    );
    assert_eq!(kv.put("a", b"2", Expected::Version(0)).await.unwrap(), 1);
    assert_eq!(
        kv.put("a", b"3", Expected::Version(0)).await,
        Err(RecipeError::Conflict { current: Some(1) })
    );
    assert_eq!(
        kv.put("b", b"3", Expected::Version(0)).await,
        Err(RecipeError::Conflict { current: None })
    );
    assert_eq!(kv.put("a", b"4", Expected::Any).await.unwrap(), 2);
    assert_eq!(kv.put("c", b"5", Expected::Any).await.unwrap(), 0);
    assert_eq!(kv.get("a").await.unwrap(), Some((b"4".to_vec(), 2)));
    assert_eq!(kv.keys().await.unwrap(), vec!["a", "c"]);
    assert_eq!(
        kv.delete("a", Expected::Version(1)).await,
        Err(RecipeError::Conflict { current: Some(2) })
    );
    kv.delete("a", Expected::Version(2)).await.unwrap();
    kv.delete("a", Expected::Any).await.unwrap();
    assert_eq!(
        kv.delete("a", Expected::Version(0)).await,
        Err(RecipeError::Conflict { current: None })
    );
    assert!(matches!(
        kv.put("no/slash", b"", Expected::Any).await,
        Err(RecipeError::InvalidName(_))
    ));

    kv.put("n", b"0", Expected::Absent).await.unwrap();
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in clients.iter().cloned() {
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            let kv = Kv::new(c, "/kv/config").unwrap();
            for _ in 0..10 {
                loop {
                    let (v, ver) = kv.get("n").await.unwrap().unwrap();
                    let n: u64 = String::from_utf8(v).unwrap().parse().unwrap();
                    match kv
                        .put("n", (n + 1).to_string().as_bytes(), Expected::Version(ver))
                        .await
                    {
                        Ok(new) => {
                            assert_eq!(new, ver + 1);
                            break;
                        }
                        Err(RecipeError::Conflict { current }) => {
                            assert!(current.unwrap() > ver);
                            conflicts.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("put: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        within("CAS incrementers", t).await.unwrap();
    }
    assert_eq!(kv.get("n").await.unwrap(), Some((b"50".to_vec(), 50)));
    println!(
        "CAS conflicts among 5 sessions x 10 increments: {}",
        conflicts.load(Ordering::SeqCst)
    );
    ts.shutdown().await;
}
