//! Invalid arguments on well-formed requests: invalid paths, create flags
//! and TTLs, deleting the root, reconfig and SASL. The client library
//! validates paths itself (like ZooKeeper's Java client, it never sends an
//! invalid one), so these go over the wire with [`Raw`].
//!
//! Rules cited: ZooKeeper's `PathUtils.validatePath` (what a valid path is)
//! and where PrepRequestProcessor applies it: create
//! (`validatePathForCreate`, then the full check after the sequence suffix
//! is appended, once the parent was found), setData, setACL and check
//! (the full check first), delete (`getParentPathAndValidate`: no `/`, a
//! NUL, or one of the special paths); FinalRequestProcessor's exists (NUL
//! only). `CreateMode.fromFlag` and `EphemeralType.validateTTL` for flags
//! and TTLs. Where zonekeeper answers differently from ZooKeeper the test
//! is in `known_bugs.rs`.

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{
    CheckVersionRequest, CreateTtlRequest, DeleteRequest, ExistsRequest, SetAclRequest, SetDataRequest,
};
use proto::request::{MultiOp, RequestBody};
use proto::response::{MultiResult, ResponseBody};
use proto::ErrorCode;
use zookeeper_client as zk;

/// Paths `PathUtils.validatePath` rejects whose parent (everything before
/// the last `/`) exists, so that create reaches the full check: no leading
/// slash, empty, trailing slash, empty segment, `.` and `..` segments, and
/// the forbidden characters (controls, DEL and C1 controls, the
/// U+D800–U+F8FF and U+FFF0–U+FFFF ranges, and anything outside the BMP,
/// which Java sees as surrogates).
const INVALID: &[&str] = &[
    "",
    "a",
    "/a/",
    "//b",
    "/.",
    "/..",
    "/a/.",
    "/a/..",
    "/bad\u{1}",
    "/bad\u{1f}",
    "/bad\u{0}nul",
    "/bad\u{7f}",
    "/bad\u{9f}",
    "/bad\u{e000}",
    "/bad\u{fff0}",
    "/bad\u{1F600}",
];

/// More invalid paths, whose parent does not exist: create and delete would
/// answer NoNode first in ZooKeeper; setData, setACL and check validate
/// first.
const INVALID_NO_PARENT: &[&str] = &["a/b", "/a//b", "/./a", "/../a", "/a/./b", "/a/../b"];

async fn setup(raw: &mut Raw) {
    let c = RequestBody::Create(create_req("/a", b"", 0));
    assert_eq!(raw.code(OpCode::Create, c).await, ErrorCode::Ok);
}

/// create/create2/createContainer with an invalid path: BadArguments, and
/// nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_an_invalid_path_is_bad_arguments() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    setup(&mut raw).await;
    for p in INVALID {
        for (op, flags) in [
            (OpCode::Create, 0),
            (OpCode::Create2, 0),
            (OpCode::Create, 1),
            (OpCode::CreateContainer, 4),
        ] {
            let body = RequestBody::Create(create_req(p, b"", flags));
            assert_eq!(raw.code(op, body).await, ErrorCode::BadArguments, "{op:?} {p:?}");
        }
    }
    let zk = ts.client().await;
    assert_eq!(zk.count_descendants_number("/").await.unwrap(), 3 + 1);
    ts.shutdown().await;
}

/// setData, setACL and check validate the whole path first (BadArguments
/// even where the parent is missing); exists answers BadArguments for a
/// NUL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_data_set_acl_and_check_with_an_invalid_path_are_bad_arguments() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    setup(&mut raw).await;
    for p in INVALID.iter().chain(INVALID_NO_PARENT) {
        let set = RequestBody::SetData(SetDataRequest {
            path: p.to_string(),
            data: Some(b"x".to_vec()),
            version: -1,
        });
        assert_eq!(
            raw.code(OpCode::SetData, set).await,
            ErrorCode::BadArguments,
            "setData {p:?}"
        );
        let acl = RequestBody::SetAcl(SetAclRequest {
            path: p.to_string(),
            acl: open_acl(),
            version: -1,
        });
        assert_eq!(
            raw.code(OpCode::SetAcl, acl).await,
            ErrorCode::BadArguments,
            "setACL {p:?}"
        );
        let check = MultiOp::Check(CheckVersionRequest {
            path: p.to_string(),
            version: -1,
        });
        let (err, body) = raw.call(OpCode::Multi, RequestBody::Multi(vec![check])).await;
        assert_eq!(err, ErrorCode::Ok);
        assert_eq!(
            body,
            Some(ResponseBody::Multi(vec![MultiResult::Error(
                ErrorCode::BadArguments
            )])),
            "check {p:?}"
        );
    }
    let exists = RequestBody::Exists(ExistsRequest {
        path: "/a\u{0}".into(),
        watch: true,
    });
    assert_eq!(raw.code(OpCode::Exists, exists).await, ErrorCode::BadArguments);
    ts.shutdown().await;
}

/// delete (getParentPathAndValidate): no `/`, a NUL, the root and
/// ZooKeeper's own nodes are bad arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_unnamed_root_or_nul_paths_is_bad_arguments() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    setup(&mut raw).await;
    for p in ["", "a", "/a\u{0}", "/"] {
        let del = RequestBody::Delete(DeleteRequest {
            path: p.into(),
            version: -1,
        });
        assert_eq!(
            raw.code(OpCode::Delete, del).await,
            ErrorCode::BadArguments,
            "{p:?}"
        );
    }
    // The client library refuses to send a delete of "/" itself.
    let zk = ts.client().await;
    assert!(matches!(
        zk.delete("/", None).await,
        Err(zk::Error::BadArguments(_))
    ));
    assert!(zk.check_stat("/a").await.unwrap().is_some());
    ts.shutdown().await;
}

/// `PathUtils.validatePath(path, isSequential)`: a sequential create is
/// validated with the suffix in place, so a trailing `/` or a last segment
/// of `.` is fine there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_names_may_end_in_a_slash_or_dot() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    setup(&mut raw).await;
    for (p, want) in [
        ("/a/", "/a/0000000000"),
        ("/a/.", "/a/.0000000001"),
        ("/a/..", "/a/..0000000002"),
    ] {
        let (err, body) = raw
            .call(OpCode::Create, RequestBody::Create(create_req(p, b"", 2)))
            .await;
        assert_eq!(err, ErrorCode::Ok, "{p:?}");
        let Some(ResponseBody::Create(c)) = body else {
            panic!("{body:?}")
        };
        assert_eq!(c.path, want);
    }
    // Still invalid with the suffix: an empty segment before it.
    let (err, _) = raw
        .call(OpCode::Create, RequestBody::Create(create_req("//", b"", 2)))
        .await;
    assert_eq!(err, ErrorCode::BadArguments);
    ts.shutdown().await;
}

/// `CreateMode.fromFlag`: an unknown flag is a bad argument.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_create_flags_are_bad_arguments() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    for flags in [7, 8, -1, 100] {
        let body = RequestBody::Create(create_req("/f", b"", flags));
        assert_eq!(
            raw.code(OpCode::Create2, body).await,
            ErrorCode::BadArguments,
            "flags {flags}"
        );
    }
    ts.shutdown().await;
}

/// `EphemeralType.TTL.validateTTL`: with extended types on, a TTL must be
/// in 1..=0xFFFFFFFFFF ms; `validateTTL(mode, ttl)` also refuses a TTL for
/// a mode that has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_outside_its_range_is_bad_arguments() {
    let ts = TestServer::start_with(|c| c.extended_types_enabled = true).await;
    let mut raw = ts.raw().await;
    let ttl_req = |flags: i32, ttl: i64| {
        RequestBody::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: Some(vec![]),
            acl: open_acl(),
            flags,
            ttl,
        })
    };
    for ttl in [0, -1, 0x100_0000_0000, i64::MAX] {
        assert_eq!(
            raw.code(OpCode::CreateTtl, ttl_req(5, ttl)).await,
            ErrorCode::BadArguments,
            "ttl {ttl}"
        );
    }
    for flags in [0, 1, 2, 3, 4] {
        assert_eq!(
            raw.code(OpCode::CreateTtl, ttl_req(flags, 1000)).await,
            ErrorCode::BadArguments,
            "flags {flags}"
        );
    }
    assert_eq!(
        raw.code(OpCode::CreateTtl, ttl_req(5, 0xFF_FFFF_FFFF)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        raw.code(OpCode::CreateTtl, ttl_req(6, 1)).await,
        ErrorCode::Ok,
        "a sequential TTL node"
    );
    ts.shutdown().await;
}

/// reconfig without dynamic reconfiguration: RECONFIGDISABLED (-123), as
/// ZooKeeper with `reconfigEnabled=false` (docs/compatibility.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_is_disabled() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let update = zk::EnsembleUpdate::New {
        ensemble: ["server.1=127.0.0.1:2888:3888;2181"].into_iter(),
    };
    assert_eq!(
        zk.update_ensemble(update, None).await.unwrap_err(),
        zk::Error::ReconfigDisabled
    );
    let update = zk::EnsembleUpdate::Incremental {
        joinings: ["server.2=127.0.0.1:2889:3889;2182"].into_iter(),
        leavings: ["3"].into_iter(),
    };
    assert_eq!(
        zk.update_ensemble(update, Some(7)).await.unwrap_err(),
        zk::Error::ReconfigDisabled
    );
    // /zookeeper/config exists and can be read (getConfig).
    zk.get_config().await.unwrap();
    zk.create("/after", b"", PERSISTENT).await.unwrap();
    ts.shutdown().await;
}

/// SASL (opcode 102) is answered UNIMPLEMENTED (docs/compatibility.md) and
/// the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_is_unimplemented() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let sasl = RequestBody::Sasl(proto::records::GetSaslRequest { token: vec![1, 2, 3] });
    assert_eq!(raw.code(OpCode::Sasl, sasl).await, ErrorCode::Unimplemented);
    let c = RequestBody::Create(create_req("/after", b"", 0));
    assert_eq!(raw.code(OpCode::Create, c).await, ErrorCode::Ok);
    ts.shutdown().await;
}

/// deleteContainer (opcode 20) is what ZooKeeper's ContainerManager sends
/// internally; a client sending it does not get a node deleted here, and
/// its session goes on. (Whether ZooKeeper itself would honour it from a
/// client is not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_container_from_a_client_deletes_nothing() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let c = RequestBody::Create(create_req("/box", b"", 4));
    assert_eq!(raw.code(OpCode::CreateContainer, c).await, ErrorCode::Ok);
    let del = RequestBody::Delete(DeleteRequest {
        path: "/box".into(),
        version: -1,
    });
    let (err, _) = raw.call(OpCode::DeleteContainer, del).await;
    assert_ne!(err, ErrorCode::Ok);
    let exists = RequestBody::Exists(ExistsRequest {
        path: "/box".into(),
        watch: false,
    });
    assert_eq!(raw.code(OpCode::Exists, exists).await, ErrorCode::Ok);
    ts.shutdown().await;
}
