//! Watches against a real in-process server: one-time watches fire once,
//! persistent and recursive watches keep firing, and all of them survive a
//! reconnect (re-registered with setWatches2), including a change made
//! while the client was away.

mod common;

use common::{steal_session, wait_state, within, InProc};
use zonekeeper_client::*;

fn open() -> Vec<Acl> {
    acl_open_unsafe()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_watches_fire_once() {
    let s = InProc::start().await;
    let c = s.client().await;
    let other = s.client().await;
    c.create("/w", b"0", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, data_w) = c.get_data_w("/w").await.unwrap();
    let (_, child_w) = c.get_children_w("/w").await.unwrap();
    let (none, exist_w) = c.exists_w("/w/new").await.unwrap();
    assert!(none.is_none());
    other.set_data("/w", b"1", None).await.unwrap();
    let ev = within("data watch", data_w.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/w")
    );
    assert!(ev.zxid > 0 || ev.zxid == -1);
    other
        .create("/w/new", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let ev = within("exists watch", exist_w.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/w/new")
    );
    let ev = within("child watch", child_w.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, "/w")
    );

    // Fired watches are gone: a new watch sees only the next change.
    let ((d, _), w) = c.get_data_w("/w").await.unwrap();
    assert_eq!(d, b"1");
    other.delete("/w/new", None).await.unwrap();
    other.set_data("/w", b"2", None).await.unwrap();
    other.set_data("/w", b"3", None).await.unwrap();
    let ev = within("second data watch", w.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_and_recursive_watches_keep_firing() {
    let s = InProc::start().await;
    let c = s.client().await;
    let other = s.client().await;
    let mut exact = c.watch("/p", false).await.unwrap();
    let mut tree = c.watch("/p", true).await.unwrap();
    other
        .create("/p", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    other
        .create("/p/a", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    other.set_data("/p/a", b"x", None).await.unwrap();
    other.set_data("/p", b"y", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = within("exact persistent watch", exact.next()).await.unwrap();
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/p".to_string()),
            (EventType::NodeChildrenChanged, "/p".to_string()),
            (EventType::NodeDataChanged, "/p".to_string()),
        ]
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = within("recursive watch", tree.next()).await.unwrap();
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/p".to_string()),
            (EventType::NodeCreated, "/p/a".to_string()),
            (EventType::NodeDataChanged, "/p/a".to_string()),
            (EventType::NodeDataChanged, "/p".to_string()),
        ]
    );
    c.close().await.unwrap();
    assert_eq!(within("end of stream", tree.next()).await, None);
}

/// Another connection takes over the session (the server closes ours and
/// drops its watches) and sets the watched node's data right away; the
/// client reconnects, re-registers every watch relative to the last zxid it
/// saw, and so learns of the change it missed and of later ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_survive_a_reconnect() {
    let s = InProc::start().await;
    let c = s.client().await;
    let other = s.client().await;
    c.create("/r", b"0", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/r/kid", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, missed) = c.get_data_w("/r").await.unwrap();
    let (_, child_w) = c.get_children_w("/r").await.unwrap();
    let mut rec = c.watch("/r", true).await.unwrap();
    let sid = c.session_id();
    let mut states = c.state_changes();
    states.borrow_and_update();

    let _raw = steal_session(s.addr, sid, c.session_password(), Some(("/r", b"while-away"))).await;
    within("the client to notice the loss", states.changed())
        .await
        .unwrap();
    wait_state(&c, "reconnected", |s| matches!(s, SessionState::Connected { .. })).await;
    assert_eq!(c.session_id(), sid, "same session");
    // The raw setData is lost if the server dropped the raw connection (the
    // client took its session back) before reading it; then make the
    // change now — the re-registered watch must report it either way.
    other.sync("/").await.unwrap();
    if other.get_data("/r").await.unwrap().0 != b"while-away" {
        other.set_data("/r", b"after", None).await.unwrap();
    }

    let ev = within("the change made while away", missed.changed())
        .await
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/r")
    );
    other.delete("/r/kid", None).await.unwrap();
    let ev = within("child watch after reconnect", child_w.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
    // The recursive watch sees the delete (and possibly the data change,
    // which happened while its registration was gone, first).
    let ev = within("recursive watch after reconnect", async {
        loop {
            let e = rec.next().await.unwrap();
            if e.event_type == EventType::NodeDeleted {
                return e;
            }
        }
    })
    .await;
    assert_eq!(ev.path, "/r/kid");
}
