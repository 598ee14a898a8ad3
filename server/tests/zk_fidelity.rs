//! Finer points of ZooKeeper's behaviour that zonekeeper once got wrong:
//! each test states the ZooKeeper rule (and where it lives in ZooKeeper's
//! source) and checks the answer a raw client gets: getACL masking, reads
//! of invalid paths, check order on create/delete, ZooKeeper's own nodes,
//! TTL decided by the create mode, nothing run after a failed auth.

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{DeleteRequest, GetChildrenRequest};
use proto::request::RequestBody;
use proto::response::ResponseBody;
use proto::ErrorCode;

/// FinalRequestProcessor getACL (ZooKeeper 3.8.0 and later): a caller
/// with READ but not ADMIN gets the ACL with every digest id masked as
/// `user:x`, so the password hashes are not disclosed; only ADMIN (or
/// super) sees them. zonekeeper returns the hashes to any reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_acl_masks_digests_for_callers_without_admin() {
    use zookeeper_client as zk;
    let ts = TestServer::start().await;
    let owner = ts.client().await;
    owner.auth("digest".into(), b"owner:pw".to_vec()).await.unwrap();
    let hash = {
        use base64::Engine as _;
        use sha1::Digest as _;
        let h = sha1::Sha1::digest(b"owner:pw");
        format!("owner:{}", base64::engine::general_purpose::STANDARD.encode(h))
    };
    let acl = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &hash)),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    owner
        .create(
            "/masked",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)),
        )
        .await
        .unwrap();
    assert_eq!(
        owner.get_acl("/masked").await.unwrap().0,
        acl,
        "ADMIN sees the hash"
    );

    let reader = ts.client().await;
    let (seen, _) = reader.get_acl("/masked").await.unwrap();
    assert_eq!(
        seen,
        [
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", "owner:x")),
            zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
        ],
        "a READ-only caller must not see the digest hash"
    );
    ts.shutdown().await;
}

/// FinalRequestProcessor answers reads without validating the path: an
/// invalid path simply names no node. getData, getChildren, getChildren2,
/// getACL and getAllChildrenNumber answer NONODE; exists answers NONODE
/// (BADARGUMENTS only for a NUL); checkWatches/removeWatches answer
/// NOWATCHER; addWatch and sync answer OK; getEphemerals matches the raw
/// prefix string (so "/e/" lists the ephemerals under /e). zonekeeper
/// validates every path and answers BADARGUMENTS, contrary to the promise
/// in server/src/path.rs ("a client must get BadArguments from us exactly
/// when it would from ZooKeeper"). Java clients validate paths themselves
/// and never send these; other clients can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_invalid_paths_get_zookeepers_answers() {
    use proto::records::{
        AddWatchRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest, GetDataRequest,
        GetEphemeralsRequest, RemoveWatchesRequest, SyncRequest,
    };
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    for p in ["/e", "/e/1"] {
        let flags = if p == "/e" { 0 } else { 1 };
        assert_eq!(
            raw.code(OpCode::Create, RequestBody::Create(create_req(p, b"", flags)))
                .await,
            ErrorCode::Ok
        );
    }
    let mut wrong = Vec::new();
    for p in ["a", "/e/", "/e//1", "/./e", "/e\u{1}"] {
        let path = p.to_string();
        let cases: Vec<(OpCode, RequestBody, ErrorCode)> = vec![
            (
                OpCode::GetData,
                RequestBody::GetData(GetDataRequest {
                    path: path.clone(),
                    watch: false,
                }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::GetChildren,
                RequestBody::GetChildren(GetChildrenRequest {
                    path: path.clone(),
                    watch: false,
                }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::GetChildren2,
                RequestBody::GetChildren(GetChildrenRequest {
                    path: path.clone(),
                    watch: false,
                }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::GetAcl,
                RequestBody::GetAcl(GetAclRequest { path: path.clone() }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::GetAllChildrenNumber,
                RequestBody::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: path.clone() }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::Exists,
                RequestBody::Exists(ExistsRequest {
                    path: path.clone(),
                    watch: false,
                }),
                ErrorCode::NoNode,
            ),
            (
                OpCode::CheckWatches,
                RequestBody::RemoveWatches(RemoveWatchesRequest {
                    path: path.clone(),
                    type_: 3,
                }),
                ErrorCode::NoWatcher,
            ),
            (
                OpCode::RemoveWatches,
                RequestBody::RemoveWatches(RemoveWatchesRequest {
                    path: path.clone(),
                    type_: 3,
                }),
                ErrorCode::NoWatcher,
            ),
            (
                OpCode::AddWatch,
                RequestBody::AddWatch(AddWatchRequest {
                    path: path.clone(),
                    mode: 0,
                }),
                ErrorCode::Ok,
            ),
            (
                OpCode::Sync,
                RequestBody::Sync(SyncRequest { path: path.clone() }),
                ErrorCode::Ok,
            ),
        ];
        for (op, body, want) in cases {
            let got = raw.code(op, body).await;
            if got != want {
                wrong.push(format!("{op:?} {p:?}: {} instead of {}", got.name(), want.name()));
            }
        }
    }
    let (err, body) = raw
        .call(
            OpCode::GetEphemerals,
            RequestBody::GetEphemerals(GetEphemeralsRequest {
                prefix_path: "/e/".into(),
            }),
        )
        .await;
    match (err, body) {
        (ErrorCode::Ok, Some(ResponseBody::GetEphemerals(e))) if e.ephemerals == ["/e/1"] => {}
        other => wrong.push(format!("getEphemerals \"/e/\": {other:?} instead of [\"/e/1\"]")),
    }
    assert!(
        wrong.is_empty(),
        "{} answers differ from ZooKeeper:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    ts.shutdown().await;
}

/// PrepRequestProcessor's order of checks. create: flags/TTL, then only
/// `validatePathForCreate` (a `/` and no NUL), fixupACL (INVALIDACL), the
/// parent (NONODE), CREATE permission (NOAUTH), and the full path check
/// (BADARGUMENTS) last. delete: `getParentPathAndValidate` (a `/`, no NUL,
/// not a special path), the parent (NONODE), DELETE permission, then the
/// node (NONODE): an invalid path under an existing parent is NONODE.
/// zonekeeper runs the full path check first and answers BADARGUMENTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_paths_lose_to_earlier_checks_as_in_zookeeper() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(create_req("/x", b"", 0)))
            .await,
        ErrorCode::Ok
    );
    let mut bad_acl = create_req("/x/", b"", 0);
    bad_acl.acl[0].id.id = "nobody".into();
    let cases: Vec<(&str, OpCode, RequestBody, ErrorCode)> = vec![
        (
            "create under a missing parent",
            OpCode::Create,
            RequestBody::Create(create_req("/missing/", b"", 0)),
            ErrorCode::NoNode,
        ),
        (
            "create with an empty segment",
            OpCode::Create,
            RequestBody::Create(create_req("/x//y", b"", 0)),
            ErrorCode::NoNode,
        ),
        (
            "create with a bad ACL",
            OpCode::Create,
            RequestBody::Create(bad_acl),
            ErrorCode::InvalidAcl,
        ),
        (
            "delete with a trailing slash",
            OpCode::Delete,
            RequestBody::Delete(DeleteRequest {
                path: "/x/".into(),
                version: -1,
            }),
            ErrorCode::NoNode,
        ),
        (
            "delete with a dot segment",
            OpCode::Delete,
            RequestBody::Delete(DeleteRequest {
                path: "/x/.".into(),
                version: -1,
            }),
            ErrorCode::NoNode,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, op, body, want) in cases {
        let got = raw.code(op, body).await;
        if got != want {
            wrong.push(format!("{what}: {} instead of {}", got.name(), want.name()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    ts.shutdown().await;
}

/// ZooKeeper protects its own nodes. PrepRequestProcessor
/// .getParentPathAndValidate refuses to delete DataTree's special paths
/// (`isSpecialPath`: "/", "/zookeeper", "/zookeeper/quota",
/// "/zookeeper/config") with BADARGUMENTS, whatever their children; and
/// `DataTree.addConfigNode` gives /zookeeper/config the ACL
/// `READ_ACL_UNSAFE` (world:anyone READ, ZOOKEEPER-2014), so only the
/// super user may change it. zonekeeper lets any client delete all three
/// and write /zookeeper/config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeepers_own_nodes_are_protected() {
    use proto::records::{GetAclRequest, SetDataRequest};
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut wrong = Vec::new();
    let (err, body) = raw
        .call(
            OpCode::GetAcl,
            RequestBody::GetAcl(GetAclRequest {
                path: "/zookeeper/config".into(),
            }),
        )
        .await;
    match (err, body) {
        (ErrorCode::Ok, Some(ResponseBody::GetAcl(a)))
            if a.acl.len() == 1 && a.acl[0].perms == proto::records::perms::READ => {}
        other => wrong.push(format!(
            "getACL /zookeeper/config: {other:?}, not world:anyone READ"
        )),
    }
    let set = RequestBody::SetData(SetDataRequest {
        path: "/zookeeper/config".into(),
        data: Some(b"server.1=evil".to_vec()),
        version: -1,
    });
    let got = raw.code(OpCode::SetData, set).await;
    if got != ErrorCode::NoAuth {
        wrong.push(format!("setData /zookeeper/config: {}", got.name()));
    }
    for p in ["/zookeeper/config", "/zookeeper/quota", "/zookeeper"] {
        let del = RequestBody::Delete(DeleteRequest {
            path: p.into(),
            version: -1,
        });
        let got = raw.code(OpCode::Delete, del).await;
        if got != ErrorCode::BadArguments {
            wrong.push(format!("delete {p}: {}", got.name()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    ts.shutdown().await;
}

/// PrepRequestProcessor.validateCreateRequest: whether a create is a TTL
/// create is decided by its mode (flags), not its opcode. Without
/// extended types, a create/create2 with a TTL mode is UNIMPLEMENTED; a
/// createTTL with a non-TTL mode is BADARGUMENTS
/// (`EphemeralType.validateTTL`: a TTL given for a mode without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_support_is_decided_by_the_create_mode() {
    use proto::records::CreateTtlRequest;
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut wrong = Vec::new();
    for flags in [5, 6] {
        let got = raw
            .code(OpCode::Create2, RequestBody::Create(create_req("/t", b"", flags)))
            .await;
        if got != ErrorCode::Unimplemented {
            wrong.push(format!("create2 flags {flags}: {}", got.name()));
        }
    }
    let ttl_op = RequestBody::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: Some(vec![]),
        acl: open_acl(),
        flags: 0,
        ttl: 1000,
    });
    let got = raw.code(OpCode::CreateTtl, ttl_op).await;
    if got != ErrorCode::BadArguments {
        wrong.push(format!("createTTL flags 0: {}", got.name()));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    ts.shutdown().await;
}

/// ZooKeeperServer.processPacket answers a failed auth with AUTHFAILED
/// and closes the connection before it reads further packets, so a write
/// pipelined behind the bad auth never happens. zonekeeper holds that
/// write until the auth has run (conn.rs `PendingKind::Held`), but after
/// the auth fails and sets `closing`, `run_front` still proposes the held
/// writes, so the create is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_behind_a_failed_auth_is_not_applied() {
    use proto::opcode::xid;
    use proto::records::{AuthPacket, ExistsRequest};
    use tokio::io::AsyncWriteExt;
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let auth = RequestBody::Auth(AuthPacket {
        type_: 0,
        scheme: "nope".into(),
        auth: b"x".to_vec(),
    });
    let c = raw.take_xid();
    let mut batch = Raw::frame(xid::AUTH, OpCode::Auth, auth);
    batch.extend(Raw::frame(
        c,
        OpCode::Create,
        RequestBody::Create(create_req("/sneaky", b"", 0)),
    ));
    raw.stream.write_all(&batch).await.unwrap();
    assert_eq!(
        raw.reply_to(OpCode::Auth, xid::AUTH).await.0,
        ErrorCode::AuthFailed
    );
    assert_closed(&mut raw.stream, "the close after AUTHFAILED").await;

    let mut other = ts.raw().await;
    let exists = RequestBody::Exists(ExistsRequest {
        path: "/sneaky".into(),
        watch: false,
    });
    assert_eq!(
        other.code(OpCode::Exists, exists).await,
        ErrorCode::NoNode,
        "the create behind the failed auth was applied"
    );
    ts.shutdown().await;
}
