//! multi (atomic writes, including check) and multiRead, through the
//! client library and, where the library hides the per-operation results,
//! on the wire.
//!
//! Rules cited: ZooKeeper Programmer's Guide / javadoc of
//! `ZooKeeper.multi` ("executes multiple ZooKeeper operations. In case of
//! transactions all of them or none of them will be executed"),
//! PrepRequestProcessor (the results of a failed multi: OK for the
//! operations before the failure, its error, RUNTIMEINCONSISTENCY for the
//! rest; one zxid for the whole multi), `ZooKeeper.multiRead` (3.6: each
//! read answered on its own), MultiOperationRecord (no reads in a multi,
//! no writes in a multiRead).

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{
    CheckVersionRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, SetDataRequest,
};
use proto::request::{MultiOp, RequestBody};
use proto::response::{MultiResult, ResponseBody};
use proto::ErrorCode;
use zookeeper_client as zk;

/// A successful multi applies every operation in order, in one
/// transaction (one zxid), and answers one result per operation: the
/// created path and Stat, setData's Stat, check and delete without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_multi_returns_a_result_per_operation() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/old", b"", PERSISTENT).await.unwrap();

    let mut m = zk.new_multi_writer();
    m.add_create("/m", b"v0", PERSISTENT).unwrap();
    m.add_create("/m/s-", b"", PERSISTENT_SEQ).unwrap();
    m.add_set_data("/m", b"v1", Some(0)).unwrap();
    m.add_check_version("/m", 1).unwrap();
    m.add_create("/m/e", b"", EPHEMERAL).unwrap();
    m.add_delete("/old", Some(0)).unwrap();
    let results = m.commit().await.unwrap();
    assert_eq!(results.len(), 6);
    let zk::MultiWriteResult::Create { path, stat: c1 } = &results[0] else {
        panic!("{:?}", results[0])
    };
    assert_eq!(path, "/m");
    let zk::MultiWriteResult::Create { path, stat: c2 } = &results[1] else {
        panic!("{:?}", results[1])
    };
    assert_eq!(path, "/m/s-0000000000");
    let zk::MultiWriteResult::SetData { stat: s } = &results[2] else {
        panic!("{:?}", results[2])
    };
    assert_eq!(results[3], zk::MultiWriteResult::Check);
    let zk::MultiWriteResult::Create { stat: e, .. } = &results[4] else {
        panic!("{:?}", results[4])
    };
    assert_eq!(results[5], zk::MultiWriteResult::Delete);

    // One transaction: one zxid for every change.
    assert_eq!(c2.czxid, c1.czxid);
    assert_eq!(s.mzxid, c1.czxid);
    assert_eq!(s.version, 1);
    assert_eq!(e.ephemeral_owner, zk.session_id().0);
    let (data, now) = zk.get_data("/m").await.unwrap();
    assert_eq!(
        (data.as_slice(), now.version, now.num_children, now.cversion),
        (&b"v1"[..], 1, 2, 2)
    );
    assert_eq!(now.pzxid, c1.czxid);
    assert_eq!(zk.check_stat("/old").await.unwrap(), None);
    ts.shutdown().await;
}

/// All or nothing: a multi whose third operation fails leaves the tree as
/// it was (no node created, no data changed, no sequence number used, the
/// parent's cversion untouched) and fires no watch; the client library
/// reports the failing index and its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_changes_nothing_and_fires_nothing() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let watcher = ts.client().await;
    zk.create("/base", b"orig", PERSISTENT).await.unwrap();
    let before = zk.check_stat("/base").await.unwrap().unwrap();
    let mut events = watcher
        .watch("/base", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    let mut m = zk.new_multi_writer();
    m.add_create("/base/new", b"", PERSISTENT).unwrap();
    m.add_create("/base/s-", b"", PERSISTENT_SEQ).unwrap();
    m.add_set_data("/base", b"changed", Some(5)).unwrap();
    m.add_delete("/base", None).unwrap();
    assert_eq!(
        m.commit().await.unwrap_err(),
        zk::MultiWriteError::OperationFailed {
            index: 2,
            source: zk::Error::BadVersion
        }
    );
    let (data, after) = zk.get_data("/base").await.unwrap();
    assert_eq!(data, b"orig");
    assert_eq!(after, before);
    assert_eq!(zk.list_children("/base").await.unwrap(), Vec::<String>::new());
    let (_, seq) = zk.create("/base/s-", b"", PERSISTENT_SEQ).await.unwrap();
    assert_eq!(
        seq.into_i64(),
        0,
        "the rolled-back create used no sequence number"
    );

    // The first event the watcher sees is the create just made.
    let ev = within("event", events.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, "/base/s-0000000000")
    );
    ts.shutdown().await;
}

fn raw_create(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create {
        op: OpCode::Create2,
        req: create_req(path, b"", flags),
    }
}

/// PrepRequestProcessor's result pattern for a failed multi, on the wire:
/// OK for each operation before the failure, the failure's own code, then
/// RUNTIMEINCONSISTENCY for every operation after it — each as an error
/// result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_results_follow_zookeepers_pattern() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(create_req("/x", b"", 0)))
            .await,
        ErrorCode::Ok
    );
    let cases: Vec<(Vec<MultiOp>, usize, ErrorCode)> = vec![
        (
            vec![
                raw_create("/a", 0),
                raw_create("/x", 0),
                raw_create("/b", 0),
                raw_create("/c", 0),
            ],
            1,
            ErrorCode::NodeExists,
        ),
        (
            vec![raw_create("/a", 0), raw_create("/nope/child", 0)],
            1,
            ErrorCode::NoNode,
        ),
        (
            vec![
                raw_create("/a", 0),
                raw_create("/a/b", 0),
                MultiOp::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
                raw_create("/z", 0),
            ],
            2,
            ErrorCode::NotEmpty,
        ),
        (
            vec![raw_create("/e", 1), raw_create("/e/c", 0), raw_create("/z", 0)],
            1,
            ErrorCode::NoChildrenForEphemerals,
        ),
        (
            vec![MultiOp::Check(CheckVersionRequest {
                path: "/x".into(),
                version: 3,
            })],
            0,
            ErrorCode::BadVersion,
        ),
        (
            vec![
                MultiOp::SetData(SetDataRequest {
                    path: "/x".into(),
                    data: Some(b"1".to_vec()),
                    version: 0,
                }),
                // Sees the setData before it: version is now 1.
                MultiOp::Check(CheckVersionRequest {
                    path: "/x".into(),
                    version: 0,
                }),
            ],
            1,
            ErrorCode::BadVersion,
        ),
        (
            vec![
                raw_create("/a", 0),
                MultiOp::Check(CheckVersionRequest {
                    path: "/missing".into(),
                    version: -1,
                }),
            ],
            1,
            ErrorCode::NoNode,
        ),
    ];
    for (i, (ops, at, code)) in cases.into_iter().enumerate() {
        let n = ops.len();
        let (err, body) = raw.call(OpCode::Multi, RequestBody::Multi(ops)).await;
        // The reply header of a failed multi carries OK; the outcome is in
        // the results.
        assert_eq!(err, ErrorCode::Ok, "case {i}");
        let Some(ResponseBody::Multi(results)) = body else {
            panic!("case {i}: {body:?}")
        };
        let mut want = vec![MultiResult::Error(ErrorCode::Ok); at];
        want.push(MultiResult::Error(code));
        want.resize(n, MultiResult::Error(ErrorCode::RuntimeInconsistency));
        assert_eq!(results, want, "case {i}");
    }
    // Nothing of it happened.
    let (err, body) = raw
        .call(
            OpCode::GetChildren,
            RequestBody::GetChildren(GetChildrenRequest {
                path: "/".into(),
                watch: false,
            }),
        )
        .await;
    assert_eq!(err, ErrorCode::Ok);
    let Some(ResponseBody::GetChildren(mut c)) = body else {
        panic!()
    };
    c.children.sort();
    assert_eq!(c.children, ["x", "zookeeper"]);
    ts.shutdown().await;
}

/// The client library's CheckWriter: a multi that starts with a check;
/// a wrong version or a missing node fails the check and nothing else
/// happens; a right one lets the rest apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_guards_the_rest_of_the_multi() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/guard", b"", PERSISTENT).await.unwrap();
    zk.set_data("/guard", b"1", None).await.unwrap();

    let mut w = zk.new_check_writer("/guard", Some(0)).unwrap();
    w.add_create("/guarded", b"", PERSISTENT).unwrap();
    assert_eq!(
        w.commit().await.unwrap_err(),
        zk::CheckWriteError::CheckFailed {
            source: zk::Error::BadVersion
        }
    );
    let mut w = zk.new_check_writer("/nope", None).unwrap();
    w.add_create("/guarded", b"", PERSISTENT).unwrap();
    assert_eq!(
        w.commit().await.unwrap_err(),
        zk::CheckWriteError::CheckFailed {
            source: zk::Error::NoNode
        }
    );
    assert_eq!(zk.check_stat("/guarded").await.unwrap(), None);

    let mut w = zk.new_check_writer("/guard", Some(1)).unwrap();
    w.add_create("/guarded", b"", PERSISTENT).unwrap();
    let results = w.commit().await.unwrap();
    assert!(matches!(&results[..], [zk::MultiWriteResult::Create { path, .. }] if path == "/guarded"));
    ts.shutdown().await;
}

/// A multi's watch events fire on success, one per change, after which
/// the reply arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_multi_fires_each_changes_watches() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/mw", b"", PERSISTENT).await.unwrap();
    zk.create("/mw/gone", b"", PERSISTENT).await.unwrap();
    let (_, _, data_w) = zk.get_and_watch_data("/mw").await.unwrap();
    let (_, child_w) = zk.list_and_watch_children("/mw").await.unwrap();
    let (_, exist_w) = zk.check_and_watch_stat("/mw/new").await.unwrap();
    let (_, _, gone_w) = zk.get_and_watch_data("/mw/gone").await.unwrap();

    let mut m = zk.new_multi_writer();
    m.add_set_data("/mw", b"x", None).unwrap();
    m.add_create("/mw/new", b"", PERSISTENT).unwrap();
    m.add_delete("/mw/gone", None).unwrap();
    m.commit().await.unwrap();
    use zk::EventType::*;
    for (w, t, p) in [
        (data_w, NodeDataChanged, "/mw"),
        (child_w, NodeChildrenChanged, "/mw"),
        (exist_w, NodeCreated, "/mw/new"),
        (gone_w, NodeDeleted, "/mw/gone"),
    ] {
        let ev = is_ready(w.changed())
            .await
            .expect("event before the multi's reply");
        assert_eq!((ev.event_type, ev.path.as_str()), (t, p));
    }
    ts.shutdown().await;
}

/// multiRead (3.6): getData and getChildren answered together from one
/// state, each on its own: a missing node is an error for that read only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_read_answers_each_read() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/mr", b"top", PERSISTENT).await.unwrap();
    zk.create("/mr/a", b"", PERSISTENT).await.unwrap();
    let mut r = zk.new_multi_reader();
    r.add_get_data("/mr").unwrap();
    r.add_get_children("/mr").unwrap();
    r.add_get_data("/mr/missing").unwrap();
    r.add_get_children("/mr/missing").unwrap();
    let results = r.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        matches!(&results[0], zk::MultiReadResult::Data { data, stat } if data == b"top" && stat.num_children == 1),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(&results[1], zk::MultiReadResult::Children { children } if children == &["a"]),
        "{:?}",
        results[1]
    );
    for r in &results[2..] {
        assert!(
            matches!(
                r,
                zk::MultiReadResult::Error {
                    err: zk::Error::NoNode
                }
            ),
            "{r:?}"
        );
    }
    ts.shutdown().await;
}

/// MultiOperationRecord: an empty multi is valid and answers no results;
/// read operations inside a multi, or write operations inside a multiRead,
/// are refused with MARSHALLINGERROR (docs/ordering.md, "Bad input") and
/// nothing is applied; the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_mixed_multis_on_the_wire() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let (err, body) = raw.call(OpCode::Multi, RequestBody::Multi(vec![])).await;
    assert_eq!((err, body), (ErrorCode::Ok, Some(ResponseBody::Multi(vec![]))));
    let (err, body) = raw.call(OpCode::MultiRead, RequestBody::Multi(vec![])).await;
    assert_eq!((err, body), (ErrorCode::Ok, Some(ResponseBody::Multi(vec![]))));

    let read = MultiOp::GetData(GetDataRequest {
        path: "/".into(),
        watch: false,
    });
    let mixed = vec![raw_create("/mixed", 0), read.clone()];
    assert_eq!(
        raw.code(OpCode::Multi, RequestBody::Multi(mixed.clone())).await,
        ErrorCode::MarshallingError
    );
    assert_eq!(
        raw.code(OpCode::MultiRead, RequestBody::Multi(mixed)).await,
        ErrorCode::MarshallingError
    );
    let (err, body) = raw.call(OpCode::MultiRead, RequestBody::Multi(vec![read])).await;
    assert_eq!(err, ErrorCode::Ok);
    assert!(matches!(body, Some(ResponseBody::Multi(r)) if matches!(r[..], [MultiResult::GetData(_)])));
    let exists = RequestBody::Exists(proto::records::ExistsRequest {
        path: "/mixed".into(),
        watch: false,
    });
    assert_eq!(raw.code(OpCode::Exists, exists).await, ErrorCode::NoNode);
    ts.shutdown().await;
}

/// TTL creates inside a multi follow the server setting: Unimplemented
/// for the whole multi when extended types are disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_create_in_a_multi_needs_extended_types() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(std::time::Duration::from_secs(30));
    let mut m = zk.new_multi_writer();
    m.add_create("/plain", b"", PERSISTENT).unwrap();
    m.add_create("/ttl", b"", &ttl).unwrap();
    assert_eq!(
        m.commit().await.unwrap_err(),
        zk::MultiWriteError::RequestFailed {
            source: zk::Error::Unimplemented
        }
    );
    assert_eq!(zk.check_stat("/plain").await.unwrap(), None);

    let on = TestServer::start_with(|c| c.extended_types_enabled = true).await;
    let zk = on.client().await;
    let mut m = zk.new_multi_writer();
    m.add_create("/plain", b"", PERSISTENT).unwrap();
    m.add_create("/ttl", b"", &ttl).unwrap();
    assert_eq!(m.commit().await.unwrap().len(), 2);
    assert!(zk.check_stat("/ttl").await.unwrap().is_some());
    on.shutdown().await;
    ts.shutdown().await;
}
