//! Exclusive lock, read/write lock and semaphore against a real server with
//! several sessions: mutual exclusion (a non-atomic read-modify-write of a
//! znode counter loses no increment, no two holders overlap), fencing
//! tokens (a grant's token exceeds that of every grant released before it;
//! `docs/recipes.md`, "Fencing tokens"), herd-free waiting, timeouts and
//! cancellation leaving nothing behind, release by node path from another
//! client, and loss of the grant on session expiry.

mod recipes_common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recipes_common::*;
use zonekeeper_client::recipes::{self, Lock, LockMode, Lost, ReadWriteLock, RecipeError, Semaphore};
use zonekeeper_client::{acl_open_unsafe, Client, CreateMode};

/// What the protected "resource" remembers: the highest token of a grant
/// that has been released, and every grant in the order it was observed.
#[derive(Default)]
struct Fence {
    released_max: AtomicU64,
    log: Mutex<Vec<u64>>,
}

impl Fence {
    /// Called right after a grant: its token must exceed every token whose
    /// grant was released before (the fencing property).
    fn granted(&self, token: u64) {
        let before = self.released_max.load(Ordering::SeqCst);
        assert!(
            token > before,
            "token {token:#x} not above released token {before:#x}"
        );
        self.log.lock().unwrap().push(token);
    }

    /// For holders that coexist (semaphore): the token must exceed every
    /// token released before the acquire began (`floor`).
    fn granted_after(&self, floor: u64, token: u64) {
        assert!(
            token > floor,
            "token {token:#x} not above token {floor:#x} released before the acquire"
        );
        self.log.lock().unwrap().push(token);
    }

    fn floor(&self) -> u64 {
        self.released_max.load(Ordering::SeqCst)
    }

    /// Called right before the release.
    fn releasing(&self, token: u64) {
        self.released_max.fetch_max(token, Ordering::SeqCst);
    }
}

async fn read_counter(c: &Client, path: &str) -> u64 {
    let (data, _) = c.get_data(path).await.expect("read counter");
    String::from_utf8(data).unwrap().parse().unwrap()
}

/// Mutual exclusion under contention: five sessions increment a znode
/// counter with a plain get + set (no version check) inside the lock; no
/// increment may be lost and no two holders may overlap. Tokens strictly
/// increase in grant order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_excludes_and_tokens_increase_under_contention() {
    let ts = TestServer::start().await;
    let clients = ts.clients(5).await;
    clients[0]
        .create("/counter", b"0", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    const ROUNDS: u64 = 15;
    let inside = Arc::new(AtomicUsize::new(0));
    let fence = Arc::new(Fence::default());
    let mut tasks = Vec::new();
    for c in clients.clone() {
        let (inside, fence) = (inside.clone(), fence.clone());
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(c.clone(), "/locks/counter").unwrap();
            for _ in 0..ROUNDS {
                let g = lock.acquire(None).await.expect("acquire");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                fence.granted(g.token);
                let v = read_counter(&c, "/counter").await;
                tokio::task::yield_now().await;
                c.set_data("/counter", (v + 1).to_string().as_bytes(), None)
                    .await
                    .unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
                fence.releasing(g.token);
                g.release().await.expect("release");
            }
        }));
    }
    for t in tasks {
        within("contending clients", t).await.unwrap();
    }
    assert_eq!(
        read_counter(&clients[0], "/counter").await,
        5 * ROUNDS,
        "lost increments"
    );
    let log = fence.log.lock().unwrap().clone();
    assert_eq!(log.len() as u64, 5 * ROUNDS);
    assert!(
        log.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing: {log:x?}"
    );
    // Nothing left behind.
    let (kids, _) = clients[0].get_children("/locks/counter").await.unwrap();
    assert!(kids.is_empty(), "{kids:?}");
    ts.shutdown().await;
}

/// Herd-free: with one holder and four waiters, each waiter watches only
/// its predecessor (four distinct nodes, one watcher each) and nobody
/// watches the lock's child list. Waiters are then granted in queue order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_watch_only_their_predecessor_and_are_served_in_order() {
    let ts = TestServer::start().await;
    let clients = ts.clients(5).await;
    let sessions: Vec<i64> = clients.iter().map(|c| c.session_id()).collect();
    let first = Lock::new(clients[0].clone(), "/herd")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate().skip(1) {
        // Queue one at a time so the queue order is known.
        let lock = Lock::new(c.clone(), "/herd").unwrap();
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let g = lock.acquire(None).await.unwrap();
            order.lock().unwrap().push(i);
            g.release().await.unwrap();
        }));
        eventually("the waiter's node", || async {
            clients[0].get_children("/herd").await.unwrap().0.len() == i + 1
        })
        .await;
    }
    eventually("each waiter to watch its predecessor", || async {
        let (data, _) = ts.watchers_under("/herd/", "/herd", &sessions);
        data.len() == 4 && data.iter().all(|(_, s)| s.len() == 1)
    })
    .await;
    let (data, child) = ts.watchers_under("/herd/", "/herd", &sessions);
    assert!(
        child.is_empty(),
        "sessions watching the lock's children (a herd): {child:x?}"
    );
    let watchers: Vec<i64> = data.iter().map(|(_, s)| s[0]).collect();
    let mut distinct = watchers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "one waiter per watched node: {data:?}");
    assert!(!watchers.contains(&sessions[0]), "the holder waits for nobody");
    first.release().await.unwrap();
    for t in tasks {
        within("waiters", t).await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 3, 4]);
    ts.shutdown().await;
}

/// try_acquire on a held lock gives None, a timed-out acquire gives
/// Timeout, a cancelled acquire is withdrawn: none leaves a node behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_timeout_and_cancel_leave_no_node() {
    let ts = TestServer::start().await;
    let (a, b) = (ts.client().await, ts.client().await);
    let held = Lock::new(a.clone(), "/l").unwrap().acquire(None).await.unwrap();
    let lock_b = Lock::new(b.clone(), "/l").unwrap();
    assert!(lock_b.try_acquire().await.unwrap().is_none());
    assert_eq!(
        lock_b
            .acquire(Some(Duration::from_millis(100)))
            .await
            .unwrap_err(),
        RecipeError::Timeout
    );
    assert_eq!(a.get_children("/l").await.unwrap().0.len(), 1);
    // Cancel a waiting acquire by dropping its future once it is queued.
    let waiting = tokio::spawn(async move { lock_b.acquire(None).await });
    eventually("the waiter to queue", || async {
        a.get_children("/l").await.unwrap().0.len() == 2
    })
    .await;
    waiting.abort();
    eventually("the cancelled waiter's node to go", || async {
        a.get_children("/l").await.unwrap().0.len() == 1
    })
    .await;
    // The holder is unaffected.
    assert!(held.is_held().await.unwrap());
    held.release().await.unwrap();
    assert!(a.get_children("/l").await.unwrap().0.is_empty());
    ts.shutdown().await;
}

/// The sidecar case: a holder labelled with an owner is visible to every
/// client, and another client releases it by node path; the holder's
/// `lost()` reports the deletion and the next waiter is granted with a
/// higher token. Releasing again is NotHeld.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_label_and_release_by_path_from_another_client() {
    let ts = TestServer::start().await;
    let (holder_c, waiter_c, admin) = (ts.client().await, ts.client().await, ts.client().await);
    let lock = Lock::new(holder_c.clone(), "/app/lock")
        .unwrap()
        .with_owner("lease-7")
        .unwrap()
        .with_data(b"pod-a".to_vec());
    let g = lock.acquire(None).await.unwrap();
    let seen = Lock::new(admin.clone(), "/app/lock")
        .unwrap()
        .holder()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.node, g.node);
    assert_eq!(seen.owner.as_deref(), Some("lease-7"));
    assert_eq!(seen.data, b"pod-a");
    assert_eq!(seen.token, g.token);
    assert_eq!(seen.session_id, holder_c.session_id());

    let waiter = tokio::spawn(async move { Lock::new(waiter_c, "/app/lock").unwrap().acquire(None).await });
    let node = g.node.clone();
    let lost = tokio::spawn(async move { g.lost().await });
    recipes::release(&admin, &node).await.unwrap();
    assert_eq!(within("lost()", lost).await.unwrap(), Lost::Deleted);
    let next = within("the waiter's grant", waiter).await.unwrap().unwrap();
    assert!(next.token > seen.token);
    assert_eq!(
        recipes::release(&admin, &node).await.unwrap_err(),
        RecipeError::NotHeld(node)
    );
    assert!(matches!(
        Lock::new(admin.clone(), "/x").unwrap().with_owner("has space"),
        Err(RecipeError::InvalidName(_))
    ));
    ts.shutdown().await;
}

/// Session expiry loses the grant: the holder's `lost()` reports it, a
/// waiter is granted, and its token is above the lost holder's (which a
/// fenced resource would now refuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_passes_the_lock_with_a_higher_token() {
    let ts = TestServer::start().await;
    let (holder_c, relay) = ts.cuttable_client().await;
    let (waiter_c, observer) = (ts.client().await, ts.client().await);
    let g = Lock::new(holder_c.clone(), "/exp")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let waiter = tokio::spawn(async move { Lock::new(waiter_c, "/exp").unwrap().acquire(None).await });
    eventually("the waiter to queue", || async {
        observer.get_children("/exp").await.unwrap().0.len() == 2
    })
    .await;
    let node = g.node.clone();
    expire_session(&holder_c, &relay, || async {
        observer.exists(&node).await.unwrap().is_none()
    })
    .await;
    assert_eq!(within("lost()", g.lost()).await, Lost::SessionExpired);
    let next = within("the waiter's grant", waiter).await.unwrap().unwrap();
    assert!(next.token > g.token, "{:#x} <= {:#x}", next.token, g.token);
    ts.shutdown().await;
}

/// The token is the czxid, not the sequence number: after the lock's
/// container directory is reaped and recreated the sequence restarts, but
/// the token still grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_grows_across_a_reaped_and_recreated_directory() {
    let ts = TestServer::start_with(|c| c.container_check_interval = Duration::from_millis(50)).await;
    let c = ts.client().await;
    let lock = Lock::new(c.clone(), "/reaped/lock").unwrap();
    let g1 = lock.acquire(None).await.unwrap();
    let (t1, n1) = (g1.token, g1.node.clone());
    g1.release().await.unwrap();
    eventually("the empty container to be reaped", || async {
        c.exists("/reaped/lock").await.unwrap().is_none()
    })
    .await;
    let g2 = lock.acquire(None).await.unwrap();
    assert!(g2.token > t1);
    // Same sequence number both times: it cannot be the token.
    assert_eq!(n1.rsplit('-').next(), g2.node.rsplit('-').next());
    g2.release().await.unwrap();
    ts.shutdown().await;
}

/// Read/write lock semantics: readers share, a writer excludes everyone, a
/// reader arriving behind a waiting writer waits for it; under contention
/// no writer overlaps anyone, increments are not lost, and a writer's token
/// exceeds every earlier grant's, a reader's every earlier writer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_lock_semantics_and_tokens() {
    let ts = TestServer::start().await;
    let clients = ts.clients(5).await;
    let rw = |i: usize| ReadWriteLock::new(clients[i].clone(), "/rw").unwrap();

    // Three readers together.
    let mut readers = Vec::new();
    for i in 0..3 {
        // Granted while the earlier readers hold it.
        readers.push(within("a reader", rw(i).read(None)).await.unwrap());
    }
    // A writer must wait; a reader behind the waiting writer too.
    assert!(rw(3).write(Some(Duration::ZERO)).await.unwrap_err() == RecipeError::Timeout);
    let w3 = rw(3);
    let writer = tokio::spawn(async move { w3.write(None).await });
    eventually("the writer to queue", || async {
        clients[4].get_children("/rw").await.unwrap().0.len() == 4
    })
    .await;
    assert_eq!(
        rw(4).read(Some(Duration::ZERO)).await.unwrap_err(),
        RecipeError::Timeout
    );
    let max_read = readers.iter().map(|g| g.token).max().unwrap();
    // Inspection: the three readers hold it (not the waiting writer).
    let h: Vec<u64> = rw(4).holders().await.unwrap().iter().map(|h| h.token).collect();
    assert_eq!(h, readers.iter().map(|g| g.token).collect::<Vec<_>>());
    for g in readers {
        g.release().await.unwrap();
    }
    let wg = within("the writer", writer).await.unwrap().unwrap();
    assert!(wg.token > max_read);
    let h = rw(4).holders().await.unwrap();
    assert_eq!((h.len(), h[0].node.as_str()), (1, wg.node.as_str()));
    wg.release().await.unwrap();

    // Contention.
    clients[0]
        .create("/rwcount", b"0", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let state = Arc::new(Mutex::new((0usize, 0usize))); // (readers, writers) inside
    let log = Arc::new(Mutex::new(Vec::<(LockMode, u64)>::new()));
    let writes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let (state, log, writes) = (state.clone(), log.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let lock = ReadWriteLock::new(c.clone(), "/rw").unwrap();
            for round in 0..10 {
                let mode = if (i + round) % 3 == 0 {
                    LockMode::Write
                } else {
                    LockMode::Read
                };
                let g = lock.acquire(mode, None).await.unwrap();
                {
                    let mut s = state.lock().unwrap();
                    match mode {
                        LockMode::Write => {
                            assert_eq!(*s, (0, 0), "writer overlapping");
                            s.1 = 1;
                        }
                        LockMode::Read => {
                            assert_eq!(s.1, 0, "reader overlapping a writer");
                            s.0 += 1;
                        }
                    }
                    let mut l = log.lock().unwrap();
                    let before_max = l.iter().map(|e| e.1).max().unwrap_or(0);
                    let before_write = l
                        .iter()
                        .filter(|e| e.0 == LockMode::Write)
                        .map(|e| e.1)
                        .max()
                        .unwrap_or(0);
                    match mode {
                        LockMode::Write => {
                            assert!(g.token > before_max, "write token below an earlier grant")
                        }
                        LockMode::Read => {
                            assert!(g.token > before_write, "read token below an earlier write")
                        }
                    }
                    l.push((mode, g.token));
                }
                if mode == LockMode::Write {
                    let v = read_counter(&c, "/rwcount").await;
                    c.set_data("/rwcount", (v + 1).to_string().as_bytes(), None)
                        .await
                        .unwrap();
                    writes.fetch_add(1, Ordering::SeqCst);
                } else {
                    let _ = read_counter(&c, "/rwcount").await;
                }
                {
                    let mut s = state.lock().unwrap();
                    match mode {
                        LockMode::Write => s.1 = 0,
                        LockMode::Read => s.0 -= 1,
                    }
                }
                g.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        within("read/write contenders", t).await.unwrap();
    }
    assert_eq!(
        read_counter(&clients[0], "/rwcount").await,
        writes.load(Ordering::SeqCst)
    );
    ts.shutdown().await;
}

/// Semaphore with 3 permits and 6 contending sessions: never more than 3
/// holders; every permit's token exceeds those of permits released before
/// its acquire began, and tokens are distinct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_never_exceeds_its_permits() {
    let ts = TestServer::start().await;
    let clients = ts.clients(6).await;
    let inside = Arc::new(AtomicUsize::new(0));
    let fence = Arc::new(Fence::default());
    let mut tasks = Vec::new();
    for c in clients.clone() {
        let (inside, fence) = (inside.clone(), fence.clone());
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(c.clone(), "/sem", 3).unwrap();
            for _ in 0..8 {
                let floor = fence.floor();
                let p = sem.acquire(None).await.expect("permit");
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(n <= 3, "{n} holders of a 3-permit semaphore");
                fence.granted_after(floor, p.token);
                // Hold across a round trip so holders overlap.
                c.exists("/sem").await.unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
                fence.releasing(p.token);
                p.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        within("semaphore contenders", t).await.unwrap();
    }
    let mut log = fence.log.lock().unwrap().clone();
    log.sort();
    let n = log.len();
    log.dedup();
    assert_eq!(log.len(), n, "duplicate tokens");
    assert_eq!(n, 48);
    // Three permits held, a fourth only after a release.
    let sem = |i: usize| Semaphore::new(clients[i].clone(), "/sem", 3).unwrap();
    let held = vec![
        sem(0).acquire(None).await.unwrap(),
        sem(1).acquire(None).await.unwrap(),
        sem(2).acquire(None).await.unwrap(),
    ];
    assert!(sem(3).try_acquire().await.unwrap().is_none());
    assert_eq!(sem(3).held().await.unwrap(), 3);
    let h: Vec<String> = sem(3)
        .holders()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.node)
        .collect();
    assert_eq!(h, held.iter().map(|p| p.node.clone()).collect::<Vec<_>>());
    let s4 = sem(4);
    let fourth = tokio::spawn(async move { s4.acquire(None).await });
    let mut held = held.into_iter();
    held.next().unwrap().release().await.unwrap();
    let p4 = within("the fourth permit", fourth).await.unwrap().unwrap();
    p4.release().await.unwrap();
    for p in held {
        p.release().await.unwrap();
    }
    ts.shutdown().await;
}

/// A permit holder whose session expires loses its permit: a waiter gets it,
/// and the lost holder's `lost()` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_permit_is_lost_with_the_session() {
    let ts = TestServer::start().await;
    let (a, relay) = ts.cuttable_client().await;
    let (b, observer) = (ts.client().await, ts.client().await);
    let pa = Semaphore::new(a.clone(), "/sx", 1)
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let sb = Semaphore::new(b.clone(), "/sx", 1).unwrap();
    let waiter = tokio::spawn(async move { sb.acquire(None).await });
    eventually("the waiter's lease", || async {
        observer
            .get_children("/sx/leases")
            .await
            .map(|k| k.0.len())
            .unwrap_or(0)
            == 2
    })
    .await;
    assert!(!waiter.is_finished(), "two holders of a 1-permit semaphore");
    let node = pa.node.clone();
    expire_session(&a, &relay, || async {
        observer.exists(&node).await.unwrap().is_none()
    })
    .await;
    assert_eq!(within("lost()", pa.lost()).await, Lost::SessionExpired);
    let pb = within("the waiter's permit", waiter).await.unwrap().unwrap();
    assert!(pb.token > pa.token);
    ts.shutdown().await;
}
