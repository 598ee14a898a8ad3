//! Sessions: closeSession and expiry (ephemerals deleted, watches of other
//! sessions fired, the connection closed), reattaching to a live session,
//! refusing an expired or unknown one (SessionExpired), timeout
//! negotiation, ping, and the order in which a session's pipelined
//! requests complete.
//!
//! Rules cited: ZooKeeper Programmer's Guide, "ZooKeeper Sessions" and
//! "Ephemeral Nodes"; "ZooKeeper guarantees": sequential consistency
//! ("updates from a client will be applied in the order that they were
//! sent"); ZooKeeperServer.processConnectRequest / reopenSession
//! (timeout clamping, the zeroed response for an invalid session).

mod common;

use std::time::Duration;

use common::*;
use proto::opcode::{xid, OpCode};
use proto::records::{ConnectRequest, GetChildrenRequest, GetDataRequest};
use proto::request::RequestBody;
use proto::response::ResponseBody;
use proto::ErrorCode;
use zookeeper_client as zk;

/// Short session timeouts for the expiry tests (the defaults clamp to at
/// least 2 ticks = 4 s).
fn short_sessions(c: &mut zonekeeper_server::config::Config) {
    c.min_session_timeout = Duration::from_millis(300);
}

/// "Ephemeral Nodes": ephemerals are removed when the session ends; closing
/// the session (the client library sends closeSession when the last
/// handle is dropped) deletes them at once and fires the NodeDeleted and
/// NodeChildrenChanged watches other sessions set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_deletes_ephemerals_and_fires_other_sessions_watches() {
    let ts = TestServer::start().await;
    let owner = ts.client().await;
    let observer = ts.client().await;
    let sid = owner.session_id().0;
    owner.create("/p", b"", PERSISTENT).await.unwrap();
    owner.create("/e", b"", EPHEMERAL).await.unwrap();
    owner.create("/p/e", b"", EPHEMERAL).await.unwrap();
    owner.create("/p/s-", b"", EPHEMERAL_SEQ).await.unwrap();
    owner.create("/p/keep", b"", PERSISTENT).await.unwrap();

    let (_, w_node) = observer.check_and_watch_stat("/e").await.unwrap();
    let (_, w_kids) = observer.list_and_watch_children("/p").await.unwrap();
    let (_, before) = observer.get_children("/p").await.unwrap();
    drop(owner);

    let ev = within("NodeDeleted for /e", w_node.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDeleted, "/e")
    );
    let ev = within("NodeChildrenChanged for /p", w_kids.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeChildrenChanged, "/p")
    );
    assert_eq!(observer.check_stat("/e").await.unwrap(), None);
    assert_eq!(observer.list_children("/p").await.unwrap(), ["keep"]);
    // DataTree.killSession deletes each ephemeral like a delete: the
    // parent's cversion counts both, its pzxid moves to the close.
    let (_, after) = observer.get_children("/p").await.unwrap();
    assert_eq!(after.cversion, before.cversion + 2);
    assert_eq!(after.num_children, 1);
    assert!(after.pzxid > before.pzxid);
    assert_eq!(after.mzxid, before.mzxid);
    assert!(!ts.hub().state().sessions.contains(sid), "the session is gone");
    ts.shutdown().await;
}

/// closeSession on the wire: answered OK, then the server closes the
/// connection; reconnecting to the closed session gets ZooKeeper's zeroed
/// connect response (timeout 0, session id 0) and a closed connection,
/// which clients report as SessionExpired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_on_the_wire_then_the_session_is_unknown() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let (sid, passwd) = (raw.session_id, raw.passwd.clone());
    let (err, _) = raw.call(OpCode::CloseSession, RequestBody::CloseSession).await;
    assert_eq!(err, ErrorCode::Ok);
    assert_closed(&mut raw.stream, "the close after closeSession").await;

    let mut s = ts.tcp().await;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            session_id: sid,
            passwd,
            ..new_session_request()
        },
    )
    .await
    .expect("a connect response");
    assert_eq!((rsp.session_id, rsp.timeout), (0, 0));
    assert_closed(&mut s, "the close after the zeroed response").await;
    ts.shutdown().await;
}

/// "ZooKeeper Sessions": a session whose client stops sending (no
/// requests, no pings) expires after its timeout; the server then deletes
/// its ephemerals, fires other sessions' watches, and closes its
/// connection. Reattaching to it then fails with SessionExpired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_session_expires_and_its_ephemerals_go() {
    let ts = TestServer::start_with(short_sessions).await;
    let observer = ts.client().await;
    let owner = ts
        .client_with(|c| {
            c.session_timeout(Duration::from_millis(1000)).detached();
        })
        .await;
    assert_eq!(owner.session_timeout(), Duration::from_millis(1000));
    owner.create("/gone", b"", EPHEMERAL).await.unwrap();
    let info = owner.session().clone();
    let (_, w) = observer.check_and_watch_stat("/gone").await.unwrap();
    // Detached: dropping the last handle closes the socket but sends no
    // closeSession, so only expiry can end the session.
    drop(owner);

    let ev = within("NodeDeleted after expiry", w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDeleted, "/gone")
    );
    assert_eq!(observer.check_stat("/gone").await.unwrap(), None);

    let err = within(
        "reconnect to the expired session",
        zk::Client::connector()
            .session(info)
            .connect(&ts.connect_string()),
    )
    .await
    .unwrap_err();
    assert_eq!(err, zk::Error::SessionExpired);
    ts.shutdown().await;
}

/// The raw view of expiry: a connected client that sends nothing for its
/// timeout has its connection closed by the server (ZooKeeper's
/// SessionTracker expires it and closes the session's connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_connection_is_closed() {
    let ts = TestServer::start_with(short_sessions).await;
    let mut s = ts.tcp().await;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            timeout: 500,
            ..new_session_request()
        },
    )
    .await
    .unwrap();
    assert_eq!(rsp.timeout, 500);
    assert_closed(&mut s, "the expired session's connection to close").await;
    let sid = rsp.session_id;
    let hub = ts.hub().clone();
    eventually("the session to leave the table", move || {
        let hub = hub.clone();
        async move { !hub.state().sessions.contains(sid) }
    })
    .await;
    ts.shutdown().await;
}

/// "ZooKeeper Sessions": a client may reconnect with its session id and
/// password and keep the session: same id, its ephemerals still there
/// and still its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_keeps_the_session_and_its_ephemerals() {
    let ts = TestServer::start().await;
    let first = ts
        .client_with(|c| {
            c.detached();
        })
        .await;
    let sid = first.session_id();
    first.create("/mine", b"", EPHEMERAL).await.unwrap();
    let info = first.session().clone();
    drop(first);

    let again = ts
        .client_with(|c| {
            c.session(info);
        })
        .await;
    assert_eq!(again.session_id(), sid);
    let (_, stat) = again.get_data("/mine").await.unwrap();
    assert_eq!(stat.ephemeral_owner, sid.0);
    assert_eq!(again.list_ephemerals("/").await.unwrap(), ["/mine"]);
    again.create("/more", b"", EPHEMERAL).await.unwrap();

    // Closing it now removes both.
    let observer = ts.client().await;
    drop(again);
    let o = &observer;
    eventually("the ephemerals to go", move || async move {
        o.check_stat("/mine").await.unwrap().is_none() && o.check_stat("/more").await.unwrap().is_none()
    })
    .await;
    ts.shutdown().await;
}

/// ZooKeeperServer.reopenSession: the right session id with a wrong
/// password gets the zeroed response and a closed connection; the session
/// itself lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_the_session_survives() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut s = ts.tcp().await;
    let mut wrong = raw.passwd.clone();
    wrong[0] ^= 0xff;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            session_id: raw.session_id,
            passwd: wrong,
            ..new_session_request()
        },
    )
    .await
    .unwrap();
    assert_eq!((rsp.session_id, rsp.timeout), (0, 0));
    assert_closed(&mut s, "the refused reconnect").await;
    let sync = RequestBody::Sync(proto::records::SyncRequest { path: "/".into() });
    assert_eq!(raw.code(OpCode::Sync, sync).await, ErrorCode::Ok);

    // An id the server never issued: the same.
    let mut s = ts.tcp().await;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            session_id: 0x0bad_cafe,
            ..new_session_request()
        },
    )
    .await
    .unwrap();
    assert_eq!((rsp.session_id, rsp.timeout), (0, 0));
    assert_closed(&mut s, "the unknown session").await;
    ts.shutdown().await;
}

/// ZooKeeperServer.processConnectRequest: the requested timeout is clamped
/// to [minSessionTimeout, maxSessionTimeout] (defaults 2 and 20 ticks:
/// 4000 and 40000 ms with the default 2000 ms tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_is_clamped_to_the_configured_range() {
    let ts = TestServer::start().await;
    for (asked, granted) in [(1, 4000), (10_000, 10_000), (10_000_000, 40_000)] {
        let mut s = ts.tcp().await;
        let rsp = handshake(
            &mut s,
            ConnectRequest {
                timeout: asked,
                ..new_session_request()
            },
        )
        .await
        .unwrap();
        assert_eq!(rsp.timeout, granted, "asked {asked}");
        assert_ne!(rsp.session_id, 0);
        assert_eq!(rsp.passwd.len(), 16);
    }
    let zk = ts
        .client_with(|c| {
            c.session_timeout(Duration::from_secs(100));
        })
        .await;
    assert_eq!(zk.session_timeout(), Duration::from_secs(40));
    ts.shutdown().await;
}

/// Ping (xid -2) is answered with xid -2 and keeps the session alive past
/// its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_keep_the_session() {
    let ts = TestServer::start_with(short_sessions).await;
    let mut s = ts.tcp().await;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            timeout: 400,
            ..new_session_request()
        },
    )
    .await
    .unwrap();
    let mut raw = Raw::established(s, rsp);
    // Several timeouts' worth of pings, one every 100 ms.
    for _ in 0..15 {
        raw.send_with_xid(xid::PING, OpCode::Ping, RequestBody::Ping)
            .await;
        match raw.next().await.expect("the ping reply") {
            Packet::Reply(h, body) => {
                assert_eq!((h.xid, h.err), (xid::PING, 0));
                assert!(body.is_empty());
            }
            Packet::Event(e, _) => panic!("unexpected event {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ts.hub().state().sessions.contains(raw.session_id));
    ts.shutdown().await;
}

/// "ZooKeeper guarantees", sequential consistency: a session's requests
/// are applied and answered in the order sent, so requests pipelined
/// without waiting complete in order and a read issued after writes sees
/// them. The client library sends each request when the future is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_complete_in_order() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/pipe", b"", PERSISTENT).await.unwrap();
    let writes: Vec<_> = (0..50)
        .map(|i| zk.set_data("/pipe", format!("{i}").as_bytes(), None))
        .collect();
    let creates: Vec<_> = (0..20)
        .map(|_| zk.create("/pipe/s-", b"", PERSISTENT_SEQ))
        .collect();
    let read = zk.get_data("/pipe");
    let kids = zk.list_children("/pipe");
    for (i, w) in writes.into_iter().enumerate() {
        assert_eq!(within("setData", w).await.unwrap().version, i as i32 + 1);
    }
    for (i, c) in creates.into_iter().enumerate() {
        assert_eq!(within("create", c).await.unwrap().1.into_i64(), i as i64);
    }
    let (data, stat) = within("getData", read).await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"49"[..], 50));
    assert_eq!(within("getChildren", kids).await.unwrap().len(), 20);
    ts.shutdown().await;
}

/// The same on the wire: many requests in one TCP write are answered in
/// xid order, and reads sent after the writes see all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_one_write_are_answered_in_order() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    let mut push = |raw: &mut Raw, op: OpCode, body: RequestBody| {
        let x = raw.take_xid();
        batch.extend(Raw::frame(x, op, body));
        expect.push((x, op));
    };
    push(
        &mut raw,
        OpCode::Create,
        RequestBody::Create(create_req("/b", b"", 0)),
    );
    for i in 0..30 {
        let (path, data, flags) = (format!("/b/n{i}"), format!("{i}"), 0);
        push(
            &mut raw,
            OpCode::Create,
            RequestBody::Create(create_req(&path, data.as_bytes(), flags)),
        );
        push(
            &mut raw,
            OpCode::SetData,
            RequestBody::SetData(proto::records::SetDataRequest {
                path: "/b".into(),
                data: Some(data.into_bytes()),
                version: i,
            }),
        );
    }
    let children = RequestBody::GetChildren(GetChildrenRequest {
        path: "/b".into(),
        watch: false,
    });
    push(&mut raw, OpCode::GetChildren, children);
    let data = RequestBody::GetData(GetDataRequest {
        path: "/b".into(),
        watch: false,
    });
    push(&mut raw, OpCode::GetData, data);
    use tokio::io::AsyncWriteExt;
    raw.stream.write_all(&batch).await.unwrap();

    let mut last_mzxid = 0;
    for (x, op) in expect {
        let (err, body) = raw.reply_to(op, x).await;
        // Every conditional setData names the version the previous one
        // produced: only in-order application makes them all succeed.
        assert_eq!(err, ErrorCode::Ok, "xid {x} {op:?}");
        match body.unwrap() {
            ResponseBody::Create(_) => {}
            ResponseBody::Stat(s) => {
                assert!(s.mzxid > last_mzxid, "zxids grow in request order");
                last_mzxid = s.mzxid;
            }
            ResponseBody::GetChildren(c) => assert_eq!(c.children.len(), 30),
            ResponseBody::GetData(d) => {
                assert_eq!(d.data.as_deref(), Some(&b"29"[..]));
                assert_eq!(
                    (d.stat.version, d.stat.num_children, d.stat.cversion),
                    (30, 30, 30)
                );
                assert_eq!(d.stat.mzxid, last_mzxid);
            }
            other => panic!("unexpected body {other:?}"),
        }
    }
    ts.shutdown().await;
}

/// ZooKeeper's FIFO client order (Hunt et al., "ZooKeeper: Wait-free
/// coordination for Internet-scale systems", §2.3: "all requests from a
/// given client are executed in the order that they were sent by the
/// client"; docs/ordering.md rule 1). A read sent between two writes of
/// the same session sees the first write and not the second: in
/// standalone ZooKeeper every request passes the single Prep→Sync→Final
/// chain in order, and in a quorum the CommitProcessor waits for the
/// session's earlier reads (`waitForEmptyPool`) before it applies the
/// next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_between_pipelined_writes_sees_only_the_earlier_writes() {
    use tokio::io::AsyncWriteExt;
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    let mut push = |raw: &mut Raw, op: OpCode, body: RequestBody| {
        let x = raw.take_xid();
        batch.extend(Raw::frame(x, op, body));
        expect.push((x, op));
    };
    let list = || {
        RequestBody::GetChildren(GetChildrenRequest {
            path: "/kb".into(),
            watch: false,
        })
    };
    push(
        &mut raw,
        OpCode::Create,
        RequestBody::Create(create_req("/kb", b"", 0)),
    );
    for i in 0..20 {
        let child = RequestBody::Create(create_req(&format!("/kb/n{i}"), b"", 0));
        push(&mut raw, OpCode::Create, child);
        push(&mut raw, OpCode::GetChildren, list());
    }
    raw.stream.write_all(&batch).await.unwrap();

    let mut seen = Vec::new();
    for (x, op) in expect {
        let (err, body) = raw.reply_to(op, x).await;
        assert_eq!(err, ErrorCode::Ok);
        if let Some(ResponseBody::GetChildren(c)) = body {
            seen.push(c.children.len());
        }
    }
    let want: Vec<usize> = (1..=20).collect();
    assert_eq!(
        seen, want,
        "the k-th getChildren, sent after k creates and before the rest, must list exactly k children"
    );
    ts.shutdown().await;
}

/// The same in a recipe-shaped sequence: create a node, read the parent,
/// delete the node, all pipelined. The read was sent while the
/// node existed and must list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_before_a_pipelined_delete_still_sees_the_node() {
    use proto::records::DeleteRequest;
    use tokio::io::AsyncWriteExt;
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(create_req("/kd", b"", 0)))
            .await,
        ErrorCode::Ok
    );
    let mut misses = 0;
    for round in 0..10 {
        let path = format!("/kd/r{round}");
        let (c, g, d) = (raw.take_xid(), raw.take_xid(), raw.take_xid());
        let mut batch = Raw::frame(c, OpCode::Create, RequestBody::Create(create_req(&path, b"", 0)));
        batch.extend(Raw::frame(
            g,
            OpCode::GetChildren,
            RequestBody::GetChildren(GetChildrenRequest {
                path: "/kd".into(),
                watch: false,
            }),
        ));
        batch.extend(Raw::frame(
            d,
            OpCode::Delete,
            RequestBody::Delete(DeleteRequest { path, version: -1 }),
        ));
        raw.stream.write_all(&batch).await.unwrap();
        assert_eq!(raw.reply_to(OpCode::Create, c).await.0, ErrorCode::Ok);
        let (_, body) = raw.reply_to(OpCode::GetChildren, g).await;
        let Some(ResponseBody::GetChildren(kids)) = body else {
            panic!("getChildren failed")
        };
        if kids.children != [format!("r{round}")] {
            misses += 1;
        }
        assert_eq!(raw.reply_to(OpCode::Delete, d).await.0, ErrorCode::Ok);
    }
    assert_eq!(misses, 0, "rounds whose read saw the later delete");
    ts.shutdown().await;
}

/// "ZooKeeper Sessions": a session outlives a server restart (it is in
/// the replicated state, and docs/ordering.md gives every session a full
/// timeout to come back); the client library reconnects on its own, keeps
/// its session and ephemerals, and re-registers its watches with
/// setWatches, so a change made while it was away still reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_watches_survive_a_server_restart() {
    let mut ts = TestServer::start().await;
    let zk = ts.client().await;
    let sid = zk.session_id();
    zk.create("/w", b"0", PERSISTENT).await.unwrap();
    zk.create("/eph", b"", EPHEMERAL).await.unwrap();
    let (_, _, data_w) = zk.get_and_watch_data("/w").await.unwrap();

    ts.restart().await;
    let other = ts.client().await;
    other.set_data("/w", b"after restart", None).await.unwrap();

    let ev = within("the data watch after the restart", data_w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w")
    );
    assert_eq!(zk.state(), zk::SessionState::SyncConnected);
    assert_eq!(zk.session_id(), sid);
    let (data, _) = zk.get_data("/w").await.unwrap();
    assert_eq!(data, b"after restart");
    let (_, eph) = other.get_data("/eph").await.unwrap();
    assert_eq!(
        eph.ephemeral_owner, sid.0,
        "the ephemeral survived with its owner"
    );
    ts.shutdown().await;
}

/// ZooKeeperServer.processConnectRequest: reattaching a session that is
/// still connected elsewhere closes the old connection
/// (`closeSession(sessionId, CLIENT_RECONNECT)`); the session, its
/// ephemerals and its requests carry on over the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reattaching_a_connected_session_closes_the_old_connection() {
    let ts = TestServer::start().await;
    let mut old = ts.raw().await;
    let c = RequestBody::Create(create_req("/mine", b"", 1));
    assert_eq!(old.code(OpCode::Create, c).await, ErrorCode::Ok);

    let mut s = ts.tcp().await;
    let rsp = handshake(
        &mut s,
        ConnectRequest {
            session_id: old.session_id,
            passwd: old.passwd.clone(),
            ..new_session_request()
        },
    )
    .await
    .unwrap();
    assert_eq!(rsp.session_id, old.session_id);
    assert_eq!(rsp.passwd, old.passwd);
    assert_closed(&mut old.stream, "the old connection").await;

    let mut new = Raw::established(s, rsp);
    let (err, body) = new
        .call(
            OpCode::GetData,
            RequestBody::GetData(GetDataRequest {
                path: "/mine".into(),
                watch: false,
            }),
        )
        .await;
    assert_eq!(err, ErrorCode::Ok);
    let Some(ResponseBody::GetData(d)) = body else {
        panic!()
    };
    assert_eq!(d.stat.ephemeral_owner, new.session_id);
    ts.shutdown().await;
}

/// ZooKeeperServer.processConnectRequest: a client that has seen a zxid
/// newer than the server's last one is refused (the connection is closed
/// without a response, so it tries another server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ahead_of_the_server_is_refused() {
    let ts = TestServer::start().await;
    let mut s = ts.tcp().await;
    let req = ConnectRequest {
        last_zxid_seen: i64::MAX,
        ..new_session_request()
    };
    assert!(handshake(&mut s, req).await.is_none(), "no connect response");
    let sessions = ts.hub().state().sessions.len();
    assert_eq!(sessions, 0, "no session was created");
    // The same client with a zxid the server has seen is welcome.
    let mut s = ts.tcp().await;
    let last = ts.hub().state().last_zxid;
    let req = ConnectRequest {
        last_zxid_seen: last,
        ..new_session_request()
    };
    assert_ne!(handshake(&mut s, req).await.unwrap().session_id, 0);
    ts.shutdown().await;
}

/// Clients before 3.3 send no read-only flag in the connect request and
/// must get none back (it would be trailing garbage to them); clients that
/// send it get `false` from a read-write server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_flag_is_answered_only_when_asked() {
    let ts = TestServer::start().await;
    for (asked, answered) in [
        (None, None),
        (Some(false), Some(false)),
        (Some(true), Some(false)),
    ] {
        let mut s = ts.tcp().await;
        let rsp = handshake(
            &mut s,
            ConnectRequest {
                read_only: asked,
                ..new_session_request()
            },
        )
        .await
        .unwrap();
        assert_eq!(rsp.read_only, answered, "asked {asked:?}");
        assert_ne!(rsp.session_id, 0);
    }
    ts.shutdown().await;
}

/// Session order across connections (docs/ordering.md): ZooKeeper orders a
/// session's requests by session, not by connection. A client that
/// pipelined writes on a connection and reattached on another before they
/// were all read must not see any of them applied after a write it sent on
/// the new connection. Each round pipelines 800 setData("A") without
/// reading a reply, reattaches at once, writes "B", and checks, once the
/// old connection is closed and a sync has run, that "B" is still the last
/// write of the node; every old write is either before it or refused
/// (SESSIONMOVED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_a_replaced_connection_never_apply_after_the_new_ones() {
    let ts = TestServer::start().await;
    let set = |path: &str, data: &[u8]| {
        RequestBody::SetData(proto::records::SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version: -1,
        })
    };
    for round in 0..20 {
        let path = format!("/order{round}");
        let mut old = ts.raw().await;
        let c = RequestBody::Create(create_req(&path, b"0", 0));
        assert_eq!(old.code(OpCode::Create, c).await, ErrorCode::Ok);
        let mut batch = Vec::new();
        for _ in 0..800 {
            let x = old.take_xid();
            batch.extend(Raw::frame(x, OpCode::SetData, set(&path, b"A")));
        }
        use tokio::io::AsyncWriteExt;
        old.stream.write_all(&batch).await.unwrap();

        let mut s = ts.tcp().await;
        let rsp = handshake(
            &mut s,
            ConnectRequest {
                session_id: old.session_id,
                passwd: old.passwd.clone(),
                ..new_session_request()
            },
        )
        .await
        .unwrap();
        assert_eq!(rsp.session_id, old.session_id);
        let mut new = Raw::established(s, rsp);
        let (err, body) = new.call(OpCode::SetData, set(&path, b"B")).await;
        assert_eq!(err, ErrorCode::Ok);
        let Some(ResponseBody::Stat(b)) = body else {
            panic!("setData reply: {body:?}")
        };
        assert_closed(&mut old.stream, "the old connection").await;
        let sync = RequestBody::Sync(proto::records::SyncRequest { path: path.clone() });
        assert_eq!(new.code(OpCode::Sync, sync).await, ErrorCode::Ok);
        let (err, body) = new
            .call(
                OpCode::GetData,
                RequestBody::GetData(GetDataRequest {
                    path: path.clone(),
                    watch: false,
                }),
            )
            .await;
        assert_eq!(err, ErrorCode::Ok);
        let Some(ResponseBody::GetData(d)) = body else {
            panic!("getData reply: {body:?}")
        };
        assert_eq!(
            (d.data.as_deref(), d.stat.mzxid),
            (Some(&b"B"[..]), b.mzxid),
            "round {round}: a write of the old connection applied after the new connection's \
             write (version {} after B's {})",
            d.stat.version,
            b.version
        );
    }
    ts.shutdown().await;
}
