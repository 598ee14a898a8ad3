//! Watches: one-time data/exist/child watches and their event types,
//! persistent and persistent-recursive watches (addWatch), removeWatches
//! and checkWatches (NoWatcher), setWatches on reconnect, and the ordering
//! guarantees between events and replies.
//!
//! Rules cited: ZooKeeper Programmer's Guide, "ZooKeeper Watches" (what
//! triggers which event, one-time semantics, "a client will see a watch
//! event for a znode it is watching before seeing the new data"), "Persistent,
//! Recursive Watches" (3.6), and the server code (WatchManager,
//! DataTree.setWatches, FinalRequestProcessor removeWatches/checkWatches).
//!
//! NOWATCHER: ZooKeeper's `KeeperException.Code.NOWATCHER` is -121 and the
//! server puts -121 on the wire. zookeeper-client 0.9.3 uses the same
//! number (`src/proto/error_code.rs`: `NoWatcher = -121`, mapped to
//! `Error::NoWatcher`), but it never sends checkWatches and sends
//! removeWatches only for watches it knows the server holds, so the tests
//! of that error drive the wire directly with [`Raw`].

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{
    AddWatchRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, RemoveWatchesRequest, SetDataRequest,
    SetWatches2,
};
use proto::request::RequestBody;
use proto::response::ResponseBody;
use proto::watch::{EventType, WatcherType};
use proto::ErrorCode;
use zonekeeper_server::watch::WatchMode;
use zookeeper_client as zk;

/// "ZooKeeper Watches": a data watch (getData) fires NodeDataChanged on
/// setData and NodeDeleted on delete; the event carries the path and (3.9,
/// ZOOKEEPER-4655) the zxid of the transaction that triggered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_watch_fires_on_set_data_and_delete() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;
    zk.create("/w", b"", PERSISTENT).await.unwrap();

    let (_, _, w) = zk.get_and_watch_data("/w").await.unwrap();
    let stat = writer.set_data("/w", b"new", None).await.unwrap();
    let ev = within("NodeDataChanged", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(ev.path, "/w");
    assert_eq!(ev.zxid, stat.mzxid);
    assert_eq!(ev.session_state, zk::SessionState::SyncConnected);

    let (_, _, w) = zk.get_and_watch_data("/w").await.unwrap();
    writer.delete("/w", None).await.unwrap();
    let ev = within("NodeDeleted", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    assert_eq!(ev.path, "/w");
    ts.shutdown().await;
}

/// "ZooKeeper Watches": exists sets a watch even when the node does not
/// exist; it fires NodeCreated on creation, then (set again) NodeDataChanged
/// and NodeDeleted like a data watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exist_watch_fires_on_create_change_and_delete() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;

    let (stat, w) = zk.check_and_watch_stat("/later").await.unwrap();
    assert_eq!(stat, None);
    let (created, _) = writer.create("/later", b"", PERSISTENT).await.unwrap();
    let ev = within("NodeCreated", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeCreated);
    assert_eq!(ev.path, "/later");
    assert_eq!(ev.zxid, created.czxid);

    let (_, w) = zk.check_and_watch_stat("/later").await.unwrap();
    writer.set_data("/later", b"x", None).await.unwrap();
    assert_eq!(
        within("NodeDataChanged", w.changed()).await.event_type,
        zk::EventType::NodeDataChanged
    );
    let (_, w) = zk.check_and_watch_stat("/later").await.unwrap();
    writer.delete("/later", None).await.unwrap();
    assert_eq!(
        within("NodeDeleted", w.changed()).await.event_type,
        zk::EventType::NodeDeleted
    );
    ts.shutdown().await;
}

/// "ZooKeeper Watches": a child watch (getChildren/getChildren2) fires
/// NodeChildrenChanged, with the parent's path, when a child is created or
/// deleted, and NodeDeleted when the node itself is deleted; a child's data
/// change does not trigger it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_watch_fires_on_child_create_delete_and_node_delete() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;
    zk.create("/p", b"", PERSISTENT).await.unwrap();
    zk.create("/p/existing", b"", PERSISTENT).await.unwrap();

    let (_, w) = zk.list_and_watch_children("/p").await.unwrap();
    // Not child changes: they must not fire it (the zxid below shows the
    // event is the create's).
    writer.set_data("/p/existing", b"x", None).await.unwrap();
    writer.set_data("/p", b"x", None).await.unwrap();
    let (created, _) = writer.create("/p/c", b"", PERSISTENT).await.unwrap();
    let ev = within("NodeChildrenChanged", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    assert_eq!(ev.path, "/p");
    assert_eq!(ev.zxid, created.czxid, "the first event is the child create's");

    let (_, _, w) = zk.get_and_watch_children("/p").await.unwrap();
    writer.delete("/p/c", None).await.unwrap();
    assert_eq!(
        within("NodeChildrenChanged", w.changed()).await.event_type,
        zk::EventType::NodeChildrenChanged
    );

    writer.delete("/p/existing", None).await.unwrap();
    let (_, _, w) = zk.get_and_watch_children("/p").await.unwrap();
    writer.delete("/p", None).await.unwrap();
    let ev = within("NodeDeleted", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    assert_eq!(ev.path, "/p");
    ts.shutdown().await;
}

/// "Persistent, Recursive Watches": addWatch(PERSISTENT) fires for every
/// change of the node (create, data, children, delete) and stays set after
/// firing; it does not fire for grandchildren.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_streams_events_and_stays() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;

    let mut w = zk.watch("/pw", zk::AddWatchMode::Persistent).await.unwrap();
    writer.create("/pw", b"", PERSISTENT).await.unwrap();
    writer.set_data("/pw", b"1", None).await.unwrap();
    writer.set_data("/pw", b"2", None).await.unwrap();
    writer.create("/pw/c", b"", PERSISTENT).await.unwrap();
    writer.create("/pw/c/g", b"", PERSISTENT).await.unwrap();
    writer.set_data("/pw/c", b"", None).await.unwrap();
    writer.delete("/pw/c/g", None).await.unwrap();
    writer.delete("/pw/c", None).await.unwrap();
    writer.delete("/pw", None).await.unwrap();
    writer.create("/pw", b"", PERSISTENT).await.unwrap();

    use zk::EventType::*;
    let expected = [
        (NodeCreated, "/pw"),
        (NodeDataChanged, "/pw"),
        (NodeDataChanged, "/pw"),
        (NodeChildrenChanged, "/pw"),
        (NodeChildrenChanged, "/pw"),
        (NodeDeleted, "/pw"),
        (NodeCreated, "/pw"),
    ];
    for (i, (t, p)) in expected.iter().enumerate() {
        let ev = within("persistent watch event", w.changed()).await;
        assert_eq!((ev.event_type, ev.path.as_str()), (*t, *p), "event {i}");
    }
    // Nothing else was queued: the writes on /pw/c and /pw/c/g did not
    // fire it, and every event precedes the reply of our later request.
    zk.sync("/").await.unwrap();
    assert!(is_ready(w.changed()).await.is_none(), "unexpected extra event");
    ts.shutdown().await;
}

/// "Persistent, Recursive Watches": addWatch(PERSISTENT_RECURSIVE) fires
/// for the node and every descendant: NodeCreated, NodeDataChanged and
/// NodeDeleted, but never NodeChildrenChanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_watch_covers_descendants_without_child_events() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;
    writer.create("/r", b"", PERSISTENT).await.unwrap();

    let mut w = zk
        .watch("/r", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    writer.create("/r/a", b"", PERSISTENT).await.unwrap();
    writer.create("/r/a/b", b"", PERSISTENT).await.unwrap();
    let s = writer.set_data("/r/a/b", b"x", None).await.unwrap();
    writer.create("/elsewhere", b"", PERSISTENT).await.unwrap();
    writer.delete("/r/a/b", None).await.unwrap();
    writer.set_data("/r", b"root", None).await.unwrap();

    use zk::EventType::*;
    let expected = [
        (NodeCreated, "/r/a"),
        (NodeCreated, "/r/a/b"),
        (NodeDataChanged, "/r/a/b"),
        (NodeDeleted, "/r/a/b"),
        (NodeDataChanged, "/r"),
    ];
    for (i, (t, p)) in expected.iter().enumerate() {
        let ev = within("recursive watch event", w.changed()).await;
        assert_eq!((ev.event_type, ev.path.as_str()), (*t, *p), "event {i}");
        if i == 2 {
            assert_eq!(ev.zxid, s.mzxid);
        }
    }
    zk.sync("/").await.unwrap();
    assert!(is_ready(w.changed()).await.is_none(), "unexpected extra event");
    ts.shutdown().await;
}

/// removeWatches through the crate: removing a one-time or persistent
/// watcher removes the server's watch (checked in the server's watch
/// table), and a later change sends nothing for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_watchers_through_the_client_clears_the_servers_watch() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let sid = zk.session_id().0;
    zk.create("/rm", b"", PERSISTENT).await.unwrap();
    let modes = |path: &str| ts.hub().state().watches.modes(sid, path);

    let (_, _, w) = zk.get_and_watch_data("/rm").await.unwrap();
    assert_eq!(modes("/rm"), (vec![WatchMode::Standard], vec![]));
    within("remove", w.remove()).await.unwrap();
    assert_eq!(modes("/rm"), (vec![], vec![]));

    let (_, w) = zk.list_and_watch_children("/rm").await.unwrap();
    assert_eq!(modes("/rm"), (vec![], vec![WatchMode::Standard]));
    within("remove", w.remove()).await.unwrap();
    assert_eq!(modes("/rm"), (vec![], vec![]));

    let w = zk
        .watch("/rm", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    assert_eq!(modes("/rm"), (vec![WatchMode::PersistentRecursive], vec![]));
    within("remove", w.remove()).await.unwrap();
    assert_eq!(modes("/rm"), (vec![], vec![]));
    ts.shutdown().await;
}

fn get_data(path: &str, watch: bool) -> RequestBody {
    RequestBody::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn get_children(path: &str, watch: bool) -> RequestBody {
    RequestBody::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

fn watches(path: &str, t: WatcherType) -> RequestBody {
    RequestBody::RemoveWatches(RemoveWatchesRequest {
        path: path.into(),
        type_: t as i32,
    })
}

fn set_data(path: &str, data: &[u8]) -> RequestBody {
    RequestBody::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

/// FinalRequestProcessor checkWatches/removeWatches: NOWATCHER (-121 on the
/// wire) when the session holds no watch of that type on the path; OK when
/// it does. checkWatches leaves the watch, removeWatches removes it; Any
/// covers data, child and persistent watches; an unknown watcher type is
/// a bad argument.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_remove_watches_answer_nowatcher_for_missing_watches() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let create = RequestBody::Create(create_req("/cw", b"", 0));
    assert_eq!(raw.code(OpCode::Create, create).await, ErrorCode::Ok);

    // Nothing registered yet.
    for t in [
        WatcherType::Data,
        WatcherType::Children,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ] {
        for op in [OpCode::CheckWatches, OpCode::RemoveWatches] {
            let (err, _) = raw.call(op, watches("/cw", t)).await;
            assert_eq!(err, ErrorCode::NoWatcher, "{op:?} {t:?}");
            assert_eq!(err.code(), -121);
        }
    }

    // A data watch: checkWatches finds it (and keeps it), a child check
    // does not; removeWatches removes it once.
    assert_eq!(
        raw.code(OpCode::GetData, get_data("/cw", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Data))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Data))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Children))
            .await,
        ErrorCode::NoWatcher
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Any))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::RemoveWatches, watches("/cw", WatcherType::Data))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::RemoveWatches, watches("/cw", WatcherType::Data))
            .await,
        ErrorCode::NoWatcher
    );

    // Any removes child and data watches together.
    assert_eq!(
        raw.code(OpCode::GetChildren, get_children("/cw", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::GetData, get_data("/cw", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::RemoveWatches, watches("/cw", WatcherType::Any))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Any))
            .await,
        ErrorCode::NoWatcher
    );

    // Persistent and recursive watches from addWatch.
    let add = |mode: i32| {
        RequestBody::AddWatch(AddWatchRequest {
            path: "/cw".into(),
            mode,
        })
    };
    let (err, body) = raw.call(OpCode::AddWatch, add(0)).await;
    assert_eq!((err, body), (ErrorCode::Ok, Some(ResponseBody::AddWatch)));
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Persistent))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(
            OpCode::CheckWatches,
            watches("/cw", WatcherType::PersistentRecursive)
        )
        .await,
        ErrorCode::NoWatcher
    );
    assert_eq!(
        raw.code(OpCode::RemoveWatches, watches("/cw", WatcherType::Persistent))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(raw.code(OpCode::AddWatch, add(1)).await, ErrorCode::Ok);
    assert_eq!(
        raw.code(
            OpCode::RemoveWatches,
            watches("/cw", WatcherType::PersistentRecursive)
        )
        .await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CheckWatches, watches("/cw", WatcherType::Any))
            .await,
        ErrorCode::NoWatcher
    );

    // AddWatchMode and WatcherType outside their enums.
    assert_eq!(raw.code(OpCode::AddWatch, add(7)).await, ErrorCode::BadArguments);
    let bad_type = RequestBody::RemoveWatches(RemoveWatchesRequest {
        path: "/cw".into(),
        type_: 9,
    });
    assert_eq!(
        raw.code(OpCode::RemoveWatches, bad_type).await,
        ErrorCode::BadArguments
    );
    assert!(raw.events.is_empty(), "checks and removals send no events");
    ts.shutdown().await;
}

/// "ZooKeeper Watches": a one-time watch fires once and is then gone
/// (checkWatches says NOWATCHER); a second change sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_watch_fires_once() {
    let ts = TestServer::start().await;
    let mut a = ts.raw().await;
    let mut b = ts.raw().await;
    assert_eq!(
        a.code(OpCode::Create, RequestBody::Create(create_req("/once", b"", 0)))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        a.code(OpCode::GetData, get_data("/once", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        b.code(OpCode::SetData, set_data("/once", b"1")).await,
        ErrorCode::Ok
    );
    assert_eq!(
        b.code(OpCode::SetData, set_data("/once", b"2")).await,
        ErrorCode::Ok
    );
    // B's writes are applied; A's next reply comes after any event of them.
    assert_eq!(
        a.code(OpCode::CheckWatches, watches("/once", WatcherType::Data))
            .await,
        ErrorCode::NoWatcher
    );
    assert_eq!(a.events.len(), 1, "exactly one event: {:?}", a.events);
    assert_eq!(a.events[0].type_, EventType::NodeDataChanged as i32);
    assert_eq!(a.events[0].path, "/once");
    ts.shutdown().await;
}

/// WatchManager.triggerWatch collects the watchers of one trigger in a
/// set, so a connection gets one event per change even when it holds
/// several watches that match it (a data and a child watch on a deleted
/// node; a one-time and a persistent watch on a changed node; a watch on
/// the node and a recursive watch on an ancestor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_per_connection_per_change() {
    let ts = TestServer::start().await;
    let mut a = ts.raw().await;
    let mut b = ts.raw().await;
    for p in ["/dup", "/dup/x"] {
        assert_eq!(
            a.code(OpCode::Create, RequestBody::Create(create_req(p, b"", 0)))
                .await,
            ErrorCode::Ok
        );
    }
    let add = |path: &str, mode: i32| {
        RequestBody::AddWatch(AddWatchRequest {
            path: path.into(),
            mode,
        })
    };

    // One-time data watch + persistent watch on /dup/x, recursive on /dup.
    assert_eq!(
        a.code(OpCode::GetData, get_data("/dup/x", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(a.code(OpCode::AddWatch, add("/dup/x", 0)).await, ErrorCode::Ok);
    assert_eq!(a.code(OpCode::AddWatch, add("/dup", 1)).await, ErrorCode::Ok);
    assert_eq!(
        b.code(OpCode::SetData, set_data("/dup/x", b"1")).await,
        ErrorCode::Ok
    );
    assert_eq!(
        a.code(
            OpCode::Sync,
            RequestBody::Sync(proto::records::SyncRequest { path: "/".into() })
        )
        .await,
        ErrorCode::Ok
    );
    assert_eq!(a.events.len(), 1, "one NodeDataChanged: {:?}", a.events);
    assert_eq!(a.events[0].type_, EventType::NodeDataChanged as i32);
    a.events.clear();

    // Data + child one-time watches on a node that is deleted.
    assert_eq!(
        a.code(OpCode::RemoveWatches, watches("/dup/x", WatcherType::Any))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        a.code(OpCode::RemoveWatches, watches("/dup", WatcherType::Any))
            .await,
        ErrorCode::Ok
    );
    assert_eq!(
        a.code(OpCode::GetData, get_data("/dup/x", true)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        a.code(OpCode::GetChildren, get_children("/dup/x", true)).await,
        ErrorCode::Ok
    );
    let del = RequestBody::Delete(DeleteRequest {
        path: "/dup/x".into(),
        version: -1,
    });
    assert_eq!(b.code(OpCode::Delete, del).await, ErrorCode::Ok);
    assert_eq!(
        a.code(
            OpCode::Exists,
            RequestBody::Exists(proto::records::ExistsRequest {
                path: "/dup".into(),
                watch: false
            })
        )
        .await,
        ErrorCode::Ok
    );
    assert_eq!(a.events.len(), 1, "one NodeDeleted: {:?}", a.events);
    assert_eq!(a.events[0].type_, EventType::NodeDeleted as i32);
    assert_eq!(a.events[0].path, "/dup/x");
    ts.shutdown().await;
}

/// DataTree.setWatches (setWatches/setWatches2 sent on reconnect with the
/// last zxid the client saw): events the client missed fire at once
/// (data watch on a node changed since → NodeDataChanged, on a deleted
/// node → NodeDeleted; exist watch on a node that now exists →
/// NodeCreated; child watch on a node whose children changed since →
/// NodeChildrenChanged); the others are registered and fire later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_watches_fires_missed_events_and_registers_the_rest() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    for p in ["/sw", "/sw/changed", "/sw/same", "/sw/kids", "/sw/quiet"] {
        zk.create(p, b"", PERSISTENT).await.unwrap();
    }
    let seen = zk.set_data("/sw", b"mark", None).await.unwrap().mzxid;
    zk.set_data("/sw/changed", b"x", None).await.unwrap();
    zk.create("/sw/kids/k", b"", PERSISTENT).await.unwrap();
    zk.create("/sw/appeared", b"", PERSISTENT).await.unwrap();

    for op in [OpCode::SetWatches2, OpCode::SetWatches] {
        let mut raw = ts.raw().await;
        let req = SetWatches2 {
            relative_zxid: seen,
            data_watches: vec!["/sw/changed".into(), "/sw/same".into(), "/sw/gone".into()],
            exist_watches: vec!["/sw/appeared".into(), "/sw/absent".into()],
            child_watches: vec!["/sw/kids".into(), "/sw/quiet".into()],
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
        };
        let (err, _) = raw.call(op, RequestBody::SetWatches(req)).await;
        assert_eq!(err, ErrorCode::Ok, "{op:?}");
        let mut got: Vec<(i32, String)> = raw.events.drain(..).map(|e| (e.type_, e.path)).collect();
        got.sort();
        let mut want = vec![
            (EventType::NodeDataChanged as i32, "/sw/changed".to_string()),
            (EventType::NodeDeleted as i32, "/sw/gone".to_string()),
            (EventType::NodeCreated as i32, "/sw/appeared".to_string()),
            (EventType::NodeChildrenChanged as i32, "/sw/kids".to_string()),
        ];
        want.sort();
        assert_eq!(got, want, "{op:?}: the missed events, before the reply");
        for (t, p) in [
            (WatcherType::Data, "/sw/same"),
            (WatcherType::Data, "/sw/absent"),
            (WatcherType::Children, "/sw/quiet"),
        ] {
            assert_eq!(
                raw.code(OpCode::CheckWatches, watches(p, t)).await,
                ErrorCode::Ok,
                "{op:?} {p}"
            );
        }
        for (t, p) in [
            (WatcherType::Data, "/sw/changed"),
            (WatcherType::Children, "/sw/kids"),
        ] {
            assert_eq!(
                raw.code(OpCode::CheckWatches, watches(p, t)).await,
                ErrorCode::NoWatcher,
                "{op:?} {p}: fired, so not registered"
            );
        }
    }
    ts.shutdown().await;
}

/// "ZooKeeper Watches": "a client will see a watch event for a znode it is
/// watching before seeing the new data that corresponds to that znode" —
/// here: the event of a write is on the wire before the reply to that
/// write (own session) and before the reply to any later request of the
/// watching session (another session's write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_event_precedes_the_reply_of_a_later_request() {
    let ts = TestServer::start().await;
    let mut a = ts.raw().await;
    let mut b = ts.raw().await;
    assert_eq!(
        a.code(OpCode::Create, RequestBody::Create(create_req("/o", b"", 0)))
            .await,
        ErrorCode::Ok
    );

    // Own write: the event comes before the setData reply.
    assert_eq!(a.code(OpCode::GetData, get_data("/o", true)).await, ErrorCode::Ok);
    let x = a.send(OpCode::SetData, set_data("/o", b"1")).await;
    match a.next().await.expect("a packet") {
        Packet::Event(ev, zxid) => {
            assert_eq!(ev.type_, EventType::NodeDataChanged as i32);
            let (err, body) = a.reply_to(OpCode::SetData, x).await;
            assert_eq!(err, ErrorCode::Ok);
            let Some(ResponseBody::Stat(s)) = body else {
                panic!("stat")
            };
            assert_eq!(zxid, s.mzxid, "the event carries the write's zxid");
        }
        Packet::Reply(h, _) => panic!("reply {h:?} before the watch event"),
    }

    // Another session's write: once B has its reply, A's next reply comes
    // after the event.
    assert_eq!(a.code(OpCode::GetData, get_data("/o", true)).await, ErrorCode::Ok);
    assert_eq!(b.code(OpCode::SetData, set_data("/o", b"2")).await, ErrorCode::Ok);
    let x = a.send(OpCode::GetData, get_data("/o", false)).await;
    match a.next().await.expect("a packet") {
        Packet::Event(ev, _) => assert_eq!(ev.type_, EventType::NodeDataChanged as i32),
        Packet::Reply(h, _) => panic!("reply {h:?} before the watch event"),
    }
    let (_, body) = a.reply_to(OpCode::GetData, x).await;
    let Some(ResponseBody::GetData(d)) = body else {
        panic!("data")
    };
    assert_eq!(d.data.as_deref(), Some(&b"2"[..]));
    ts.shutdown().await;
}

/// The same guarantee seen through the client library: when a later
/// reply has arrived, the watcher already holds its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sees_the_event_before_the_new_data() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let writer = ts.client().await;
    zk.create("/seen", b"0", PERSISTENT).await.unwrap();

    let (_, _, w) = zk.get_and_watch_data("/seen").await.unwrap();
    zk.set_data("/seen", b"own", None).await.unwrap();
    let ev = is_ready(w.changed())
        .await
        .expect("event before the setData reply");
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);

    let (_, _, w) = zk.get_and_watch_data("/seen").await.unwrap();
    writer.set_data("/seen", b"theirs", None).await.unwrap();
    let (data, _) = zk.get_data("/seen").await.unwrap();
    assert_eq!(data, b"theirs");
    let ev = is_ready(w.changed()).await.expect("event before the new data");
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    ts.shutdown().await;
}

/// docs/ordering.md rule 4: events reach a connection in zxid order, also
/// when the writes come from several sessions at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_zxid_order() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/z", b"", PERSISTENT).await.unwrap();
    let mut w = zk
        .watch("/z", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let writers = [ts.client().await, ts.client().await, ts.client().await];
    let paths: Vec<Vec<String>> = (0..3)
        .map(|i| (0..10).map(|j| format!("/z/n{i}-{j}")).collect())
        .collect();
    let mut pending = Vec::new();
    for (c, ps) in writers.iter().zip(&paths) {
        for p in ps {
            pending.push(c.create(p, b"", PERSISTENT));
        }
    }
    for p in pending {
        within("create", p).await.unwrap();
    }
    let mut last = 0;
    for n in 0..30 {
        let ev = within("event", w.changed()).await;
        assert_eq!(ev.event_type, zk::EventType::NodeCreated);
        assert!(ev.zxid > last, "event {n}: zxid {} after {last}", ev.zxid);
        last = ev.zxid;
    }
    ts.shutdown().await;
}
