//! Session lifecycle against a real in-process server: close removes
//! ephemerals, a session closed behind the client's back is reported as
//! expired (state, pending calls, watches), a request outliving a dead
//! connection fails with ConnectionLoss, requests made while no server is
//! reachable time out.

mod common;

use std::time::Duration;

use common::{close_session_behind_its_back, wait_state, within, InProc};
use zonekeeper_client::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_removes_ephemerals_and_ends_every_clone() {
    let s = InProc::start().await;
    let c = s.client().await;
    let observer = s.client().await;
    c.create("/e", b"", &acl_open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, w) = observer.exists_w("/e").await.unwrap();
    let clone = c.clone();
    c.close().await.unwrap();
    let ev = within("the ephemeral to go", w.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert_eq!(clone.state(), SessionState::Closed);
    assert_eq!(clone.exists("/").await, Err(Error::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_session() {
    let s = InProc::start().await;
    let observer = s.client().await;
    let c = s.client().await;
    c.create("/gone", b"", &acl_open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, w) = observer.exists_w("/gone").await.unwrap();
    drop(c);
    let ev = within("the ephemeral to go", w.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_closed_elsewhere_is_expired_here() {
    let s = InProc::start().await;
    let c = s.client().await;
    c.create("/x", b"", &acl_open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, w) = c.get_data_w("/x").await.unwrap();
    let mut persistent = c.watch("/", true).await.unwrap();
    // The client may take its session back before the server reads the
    // closeSession (the server then drops it with the replaced
    // connection): repeat until the close lands.
    let (sid, pw) = (c.session_id(), c.session_password());
    common::eventually("the session to be closed behind the client's back", || {
        let (c, pw) = (c.clone(), pw.clone());
        async move {
            close_session_behind_its_back(s.addr, sid, pw).await;
            let mut states = c.state_changes();
            let expired = tokio::time::timeout(
                Duration::from_millis(500),
                states.wait_for(|s| *s == SessionState::Expired),
            )
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
            expired.then_some(())
        }
    })
    .await;
    assert_eq!(
        within("the watch to fail", w.changed()).await,
        Err(Error::SessionExpired)
    );
    // The persistent watch ends (the close's NodeDeleted may come first).
    within("the persistent watch to end", async {
        while persistent.next().await.is_some() {}
    })
    .await;
    assert_eq!(c.get_data("/").await, Err(Error::SessionExpired));
    assert!(!Error::SessionExpired.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_a_server_then_time_out() {
    let s = InProc::start().await;
    let c = s
        .client_with(|cfg| {
            cfg.with_request_timeout(Duration::from_millis(1500))
                .with_connect_timeout(Duration::from_millis(300))
        })
        .await;
    c.create("/t", b"", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    drop(s); // the server goes away; the session cannot be resumed anywhere
    wait_state(&c, "disconnected", |s| {
        !matches!(s, SessionState::Connected { .. })
    })
    .await;
    let r = within("the request to fail", c.get_data("/t")).await;
    assert!(
        matches!(r, Err(Error::Timeout) | Err(Error::ConnectionLoss)),
        "a request with no server fails retriably: {r:?}"
    );
    assert!(r.unwrap_err().is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_when_no_server_answers() {
    common::init_tracing();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = ClientConfig::new(format!("127.0.0.1:{port}@zone-a").parse().unwrap())
        .with_request_timeout(Duration::from_millis(500));
    let r = within("connect to give up", Client::connect(cfg)).await;
    assert_eq!(r.err(), Some(Error::Timeout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_terminal() {
    let s = InProc::start().await;
    let cfg = ClientConfig::new(s.connect_string().parse().unwrap()).with_auth("nosuchscheme", "x");
    let r = within("connect", Client::connect(cfg)).await;
    match r {
        // The auth reply may arrive before or after connect returns.
        Ok(c) => {
            wait_state(&c, "auth failed", |s| *s == SessionState::AuthFailed).await;
            assert_eq!(c.exists("/").await, Err(Error::AuthFailed));
        }
        Err(e) => assert_eq!(e, Error::AuthFailed),
    }
}

fn zone_of(s: &SessionState) -> Option<&str> {
    match s {
        SessionState::Connected { server } => server.zone.as_deref(),
        _ => None,
    }
}

/// ZooKeeper: a server that has seen less than the client's last zxid
/// refuses it (closes the connection), and the client tries another. Two
/// independent single servers: the client's session lives on A, which has
/// many more transactions than B. While A is down, B refuses every attempt
/// (were it to accept, it would not know the session and report it
/// expired); once A is back, the session resumes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_behind_the_session_is_skipped() {
    let mut a = InProc::start().await;
    let b = InProc::start().await;
    let servers = format!("{}@zone-a,{}@zone-b", a.addr, b.addr);
    let cfg = ClientConfig::new(servers.parse().unwrap())
        .with_zone("zone-a")
        .with_request_timeout(Duration::from_secs(30));
    let c = within("connect", Client::connect(cfg)).await.unwrap();
    assert_eq!(c.server().unwrap().zone.as_deref(), Some("zone-a"));
    let sid = c.session_id();
    c.create("/eph", b"", &acl_open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    for i in 0..50 {
        c.create(&format!("/n{i}"), b"", &acl_open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    let mut states = c.state_changes();
    states.borrow_and_update();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while states.changed().await.is_ok() {
            let s = states.borrow_and_update().clone();
            let done = matches!(&s, SessionState::Connected { .. }) || s.is_terminal();
            seen.push(s);
            if done {
                break;
            }
        }
        seen
    });
    let before = c.stats();
    a.stop().await;
    // Both servers are tried (and fail) several times.
    common::eventually("attempts on both servers", || {
        let c = c.clone();
        async move { (c.stats().failed_attempts >= before.failed_attempts + 4).then_some(()) }
    })
    .await;
    assert_eq!(
        c.state(),
        SessionState::Disconnected,
        "B never accepted the session"
    );
    a.restart().await;
    let seen = within("the states", seen).await.unwrap();
    assert!(!seen.iter().any(|s| s.is_terminal()), "{seen:?}");
    println!("states: {seen:?}");
    let back = wait_state(&c, "resumed on A", |s| {
        matches!(s, SessionState::Connected { .. })
    })
    .await;
    assert_eq!(zone_of(&back), Some("zone-a"));
    assert_eq!(c.session_id(), sid);
    assert!(
        c.exists("/eph").await.unwrap().is_some(),
        "the ephemeral survived"
    );
    let stats = c.stats();
    assert_eq!(stats.connection_losses, before.connection_losses + 1);
    assert_eq!(stats.connects, before.connects + 1);
}
