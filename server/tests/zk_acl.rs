//! Authentication and access control: digest auth (addauth), ACL
//! enforcement per operation (NoAuth), ACL validation (InvalidAcl), the
//! `auth` scheme, `ip` ACLs, the super user, whoAmI, and a failed auth
//! (AuthFailed, connection closed).
//!
//! Rules cited: ZooKeeper Programmer's Guide, "ZooKeeper access control
//! using ACLs" (permissions per operation, built-in schemes, "the
//! ADMIN/READ for getACL" of 3.6+), and the server code:
//! PrepRequestProcessor.fixupACL and checkACL (delete needs DELETE on the
//! parent, create needs CREATE on the parent), FinalRequestProcessor
//! (exists has no ACL check), DigestAuthenticationProvider (super digest),
//! ZooKeeperServer.processPacket (AuthFailed closes the connection),
//! AuthUtil.getClientInfos (whoAmI).

mod common;

use base64::Engine as _;
use common::*;
use proto::opcode::{xid, OpCode};
use proto::records::AuthPacket;
use proto::request::RequestBody;
use proto::ErrorCode;
use sha1::Digest as _;
use zookeeper_client as zk;

/// `DigestAuthenticationProvider.generateDigest`, computed here
/// independently of the server: `user:base64(sha1("user:password"))`.
fn digest(user: &str, password: &str) -> String {
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The super user of ZooKeeper's documentation ("super:test").
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

async fn authed(ts: &TestServer, user_password: &str) -> zk::Client {
    let zk = ts.client().await;
    zk.auth("digest".into(), user_password.as_bytes().to_vec())
        .await
        .unwrap();
    zk
}

fn creator_all() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all())
}

/// Per-operation permissions ("ACL Permissions"): getData, getChildren,
/// getAllChildrenNumber and check need READ; setData WRITE; create CREATE
/// on the parent; delete DELETE on the parent; setACL ADMIN; getACL READ or
/// ADMIN; exists needs nothing. The `auth` scheme in an ACL expands to the
/// creator's digest identities (fixupACL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_is_enforced_per_operation() {
    let ts = TestServer::start().await;
    let alice = authed(&ts, "alice:secret").await;
    let stranger = ts.client().await;

    alice.create("/secure", b"s", &creator_all()).await.unwrap();
    alice.create("/secure/child", b"", &creator_all()).await.unwrap();
    let (acl, _) = alice.get_acl("/secure").await.unwrap();
    assert_eq!(
        acl,
        [zk::Acl::new(
            zk::Permission::ALL,
            zk::AuthId::new("digest", &digest("alice", "secret"))
        )],
        "auth:<empty> became digest:alice:<hash>"
    );

    // exists has no ACL check.
    assert!(stranger.check_stat("/secure").await.unwrap().is_some());
    let no_auth = zk::Error::NoAuth;
    assert_eq!(stranger.get_data("/secure").await.unwrap_err(), no_auth);
    assert_eq!(stranger.list_children("/secure").await.unwrap_err(), no_auth);
    assert_eq!(stranger.get_children("/secure").await.unwrap_err(), no_auth);
    assert_eq!(
        stranger.count_descendants_number("/secure").await.unwrap_err(),
        no_auth
    );
    assert_eq!(stranger.get_acl("/secure").await.unwrap_err(), no_auth);
    assert_eq!(
        stranger.set_data("/secure", b"x", None).await.unwrap_err(),
        no_auth
    );
    assert_eq!(
        stranger
            .set_acl("/secure", &zk::Acls::anyone_all(), None)
            .await
            .unwrap_err(),
        no_auth
    );
    assert_eq!(
        stranger.create("/secure/x", b"", PERSISTENT).await.unwrap_err(),
        no_auth
    );
    assert_eq!(stranger.delete("/secure/child", None).await.unwrap_err(), no_auth);
    // check (in a multi) needs READ.
    let mut check = stranger.new_multi_writer();
    check.add_check_version("/secure", 0).unwrap();
    assert_eq!(
        check.commit().await.unwrap_err(),
        zk::MultiWriteError::OperationFailed {
            index: 0,
            source: no_auth.clone()
        }
    );
    // multiRead reports NoAuth per operation.
    let mut reads = stranger.new_multi_reader();
    reads.add_get_data("/secure").unwrap();
    reads.add_get_children("/secure").unwrap();
    let results = reads.commit().await.unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        assert!(
            matches!(r, zk::MultiReadResult::Error { err } if *err == no_auth),
            "{r:?}"
        );
    }

    // PrepRequestProcessor checks the parent's DELETE and CREATE
    // permissions before looking for the node: NoAuth, not NoNode / not
    // NodeExists.
    assert_eq!(
        stranger.delete("/secure/missing", None).await.unwrap_err(),
        no_auth
    );
    assert_eq!(
        stranger
            .create("/secure/child", b"", PERSISTENT)
            .await
            .unwrap_err(),
        no_auth
    );

    // Deleting needs DELETE on the parent only: the node's own ACL does
    // not protect it.
    alice.create("/open", b"", PERSISTENT).await.unwrap();
    alice.create("/open/locked", b"", &creator_all()).await.unwrap();
    stranger.delete("/open/locked", None).await.unwrap();

    // Nothing the stranger tried changed anything.
    let (data, stat) = alice.get_data("/secure").await.unwrap();
    assert_eq!((data.as_slice(), stat.version, stat.aversion), (&b"s"[..], 0, 0));
    assert_eq!(alice.list_children("/secure").await.unwrap(), ["child"]);
    ts.shutdown().await;
}

/// A digest identity only matches with the right password (digest auth
/// itself never fails: any password yields some identity); adding the
/// right one grants access on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_identity_needs_the_right_password() {
    let ts = TestServer::start().await;
    let alice = authed(&ts, "alice:secret").await;
    alice.create("/mine", b"m", &creator_all()).await.unwrap();

    let other = authed(&ts, "alice:guess").await;
    assert_eq!(other.get_data("/mine").await.unwrap_err(), zk::Error::NoAuth);
    other
        .auth("digest".into(), b"alice:secret".to_vec())
        .await
        .unwrap();
    assert_eq!(other.get_data("/mine").await.unwrap().0, b"m");

    // Identities given at connect time count too.
    let preauthed = ts
        .client_with(|c| {
            c.auth("digest".into(), b"alice:secret".to_vec());
        })
        .await;
    assert_eq!(preauthed.get_data("/mine").await.unwrap().0, b"m");
    ts.shutdown().await;
}

/// getACL is allowed with READ or ADMIN (ZooKeeper 3.6+, ZOOKEEPER-1392):
/// an ADMIN-only identity can read the ACL but not the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_acl_needs_read_or_admin() {
    let ts = TestServer::start().await;
    let admin = authed(&ts, "admin:pw").await;
    let reader = authed(&ts, "reader:pw").await;
    let nobody = authed(&ts, "nobody:pw").await;
    let acl = [
        zk::Acl::new(
            zk::Permission::ADMIN,
            zk::AuthId::new("digest", &digest("admin", "pw")),
        ),
        zk::Acl::new(
            zk::Permission::READ,
            zk::AuthId::new("digest", &digest("reader", "pw")),
        ),
    ];
    admin
        .create(
            "/a",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)),
        )
        .await
        .unwrap();
    assert_eq!(admin.get_acl("/a").await.unwrap().0, acl);
    assert_eq!(admin.get_data("/a").await.unwrap_err(), zk::Error::NoAuth);
    // READ suffices too. (Without ADMIN ZooKeeper masks digest ids as
    // "user:x"; known_bugs.rs checks that.)
    let (seen, _) = reader.get_acl("/a").await.unwrap();
    let perms: Vec<_> = seen
        .iter()
        .map(|a| (a.permission(), a.scheme().to_string()))
        .collect();
    assert_eq!(
        perms,
        [
            (zk::Permission::ADMIN, "digest".to_string()),
            (zk::Permission::READ, "digest".to_string())
        ]
    );
    assert_eq!(nobody.get_acl("/a").await.unwrap_err(), zk::Error::NoAuth);
    // setACL needs ADMIN.
    assert_eq!(
        reader
            .set_acl("/a", &zk::Acls::anyone_all(), None)
            .await
            .unwrap_err(),
        zk::Error::NoAuth
    );
    admin
        .set_acl("/a", &zk::Acls::anyone_all(), Some(0))
        .await
        .unwrap();
    assert_eq!(nobody.get_data("/a").await.unwrap().1.aversion, 1);
    ts.shutdown().await;
}

/// fixupACL: an empty list, `auth` without any authenticated identity, an
/// unknown scheme, a `world` id other than `anyone`, a digest id without
/// `user:`, and a malformed `ip` are all InvalidAcl, for create and setACL.
/// For create the ACL is checked before the parent is looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_acls_are_refused() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/n", b"", PERSISTENT).await.unwrap();
    let bad: Vec<(&str, zk::Acl)> = vec![
        (
            "auth without identities",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed()),
        ),
        (
            "unknown scheme",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("foo", "bar")),
        ),
        (
            "world:nobody",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("world", "nobody")),
        ),
        (
            "digest without user",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", "nocolon")),
        ),
        (
            "bad ip",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "999.1.2.3")),
        ),
        (
            "super",
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("super", "")),
        ),
    ];
    for (what, acl) in &bad {
        let list = [acl.clone()];
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&list));
        assert_eq!(
            zk.create("/n/x", b"", &opts).await.unwrap_err(),
            zk::Error::InvalidAcl,
            "{what}"
        );
        assert_eq!(
            zk.create("/missing/x", b"", &opts).await.unwrap_err(),
            zk::Error::InvalidAcl,
            "{what}: before NoNode"
        );
        assert_eq!(
            zk.set_acl("/n", &list, None).await.unwrap_err(),
            zk::Error::InvalidAcl,
            "{what}: setACL"
        );
        assert_eq!(
            zk.set_acl("/missing", &list, None).await.unwrap_err(),
            zk::Error::InvalidAcl,
            "{what}: setACL checks the ACL before the node"
        );
    }
    // The crate refuses an empty list itself; on the wire it is InvalidAcl.
    let mut raw = ts.raw().await;
    let mut req = create_req("/n/empty", b"", 0);
    req.acl.clear();
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(req)).await,
        ErrorCode::InvalidAcl
    );
    assert_eq!(zk.list_children("/n").await.unwrap(), Vec::<String>::new());
    assert_eq!(zk.get_acl("/n").await.unwrap().1.aversion, 0);
    ts.shutdown().await;
}

/// The `auth` scheme expands to every digest identity of the connection
/// (and not to its `ip` identity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_scheme_expands_to_all_digest_identities() {
    let ts = TestServer::start().await;
    let zk = authed(&ts, "u1:p1").await;
    zk.auth("digest".into(), b"u2:p2".to_vec()).await.unwrap();
    zk.create("/both", b"", &creator_all()).await.unwrap();
    let (mut acl, _) = zk.get_acl("/both").await.unwrap();
    acl.sort_by(|a, b| a.id().cmp(b.id()));
    assert_eq!(
        acl,
        [
            zk::Acl::new(
                zk::Permission::ALL,
                zk::AuthId::new("digest", &digest("u1", "p1"))
            ),
            zk::Acl::new(
                zk::Permission::ALL,
                zk::AuthId::new("digest", &digest("u2", "p2"))
            ),
        ]
    );
    let u2 = authed(&ts, "u2:p2").await;
    u2.set_data("/both", b"ok", None).await.unwrap();
    ts.shutdown().await;
}

/// "Built in ACL schemes", ip: an `ip:addr` or `ip:addr/bits` entry matches
/// the client's address; an `ip` addauth is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_acls_match_the_client_address() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let local = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("ip", "127.0.0.1"),
    )];
    let subnet = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("ip", "127.0.0.0/8"),
    )];
    let elsewhere = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "10.1.2.3")),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("ip", "192.168.0.0/16")),
    ];
    for (p, acl) in [
        ("/local", &local[..]),
        ("/subnet", &subnet[..]),
        ("/elsewhere", &elsewhere[..]),
    ] {
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(acl));
        zk.create(p, b"d", &opts).await.unwrap();
    }
    assert_eq!(zk.get_data("/local").await.unwrap().0, b"d");
    assert_eq!(zk.get_data("/subnet").await.unwrap().0, b"d");
    assert_eq!(zk.get_data("/elsewhere").await.unwrap_err(), zk::Error::NoAuth);
    zk.auth("ip".into(), Vec::new()).await.unwrap();
    assert_eq!(zk.get_data("/local").await.unwrap().0, b"d");
    ts.shutdown().await;
}

/// DigestAuthenticationProvider: the configured super digest makes a
/// connection that authenticates as it pass every ACL check; the wrong
/// password does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_user_bypasses_acls() {
    let ts = TestServer::start_with(|c| c.super_digest = Some(SUPER_DIGEST.into())).await;
    assert_eq!(digest("super", "test"), SUPER_DIGEST, "the documented example");
    let alice = authed(&ts, "alice:secret").await;
    let locked = [zk::Acl::new(
        zk::Permission::READ,
        zk::AuthId::new("digest", &digest("alice", "secret")),
    )];
    alice
        .create(
            "/locked",
            b"l",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&locked)),
        )
        .await
        .unwrap();

    let not_super = authed(&ts, "super:wrong").await;
    assert_eq!(
        not_super.get_data("/locked").await.unwrap_err(),
        zk::Error::NoAuth
    );

    let root = authed(&ts, "super:test").await;
    assert_eq!(root.get_data("/locked").await.unwrap().0, b"l");
    root.set_data("/locked", b"by super", None).await.unwrap();
    root.create("/locked/c", b"", PERSISTENT).await.unwrap();
    root.delete("/locked/c", None).await.unwrap();
    root.set_acl("/locked", &zk::Acls::anyone_all(), None)
        .await
        .unwrap();
    assert_eq!(not_super.get_data("/locked").await.unwrap().0, b"by super");

    // Without a configured super digest, "super:test" is just a user.
    let plain = TestServer::start().await;
    let a = authed(&plain, "alice:secret").await;
    a.create(
        "/locked",
        b"",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&locked)),
    )
    .await
    .unwrap();
    let s = authed(&plain, "super:test").await;
    assert_eq!(s.get_data("/locked").await.unwrap_err(), zk::Error::NoAuth);
    plain.shutdown().await;
    ts.shutdown().await;
}

/// whoAmI (ZooKeeper 3.7, AuthUtil.getClientInfos): the connection's
/// identities as (scheme, user): the `ip` identity every connection has,
/// then each digest user (the user part only, no hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_lists_the_connections_identities() {
    let ts = TestServer::start_with(|c| c.super_digest = Some(SUPER_DIGEST.into())).await;
    let zk = ts.client().await;
    assert_eq!(
        zk.list_auth_users().await.unwrap(),
        [zk::AuthUser::new("ip", "127.0.0.1")]
    );
    zk.auth("digest".into(), b"alice:secret".to_vec()).await.unwrap();
    zk.auth("digest".into(), b"alice:secret".to_vec()).await.unwrap();
    let mut users = zk.list_auth_users().await.unwrap();
    users.sort_by(|a, b| (a.scheme(), a.user()).cmp(&(b.scheme(), b.user())));
    assert_eq!(
        users,
        [
            zk::AuthUser::new("digest", "alice"),
            zk::AuthUser::new("ip", "127.0.0.1")
        ],
        "a repeated addauth adds nothing"
    );

    let root = authed(&ts, "super:test").await;
    let users = root.list_auth_users().await.unwrap();
    assert!(users.contains(&zk::AuthUser::new("digest", "super")), "{users:?}");
    assert!(users.iter().any(|u| u.scheme() == "super"), "{users:?}");
    ts.shutdown().await;
}

/// ZooKeeperServer.processPacket: an addauth with a scheme no provider
/// handles is answered AUTHFAILED (-115) and the connection closed; the
/// client library then reports the terminal AuthFailed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_auth_scheme_fails_and_closes_the_connection() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    raw.send_with_xid(
        xid::AUTH,
        OpCode::Auth,
        RequestBody::Auth(AuthPacket {
            type_: 0,
            scheme: "nope".into(),
            auth: b"x".to_vec(),
        }),
    )
    .await;
    match raw.next().await.expect("the auth reply") {
        Packet::Reply(h, _) => {
            assert_eq!((h.xid, h.err), (xid::AUTH, ErrorCode::AuthFailed.code()));
        }
        Packet::Event(e, _) => panic!("unexpected event {e:?}"),
    }
    assert_closed(&mut raw.stream, "the close after AUTHFAILED").await;

    let zk = ts.client().await;
    let mut states = zk.state_watcher();
    assert_eq!(
        zk.auth("nope".into(), b"x".to_vec()).await.unwrap_err(),
        zk::Error::AuthFailed
    );
    let state = within("AuthFailed state", async {
        loop {
            let s = states.changed().await;
            if s.is_terminated() {
                return s;
            }
        }
    })
    .await;
    assert_eq!(state, zk::SessionState::AuthFailed);
    assert_eq!(zk.get_data("/").await.unwrap_err(), zk::Error::AuthFailed);

    // Others are unaffected.
    let other = ts.client().await;
    other.create("/still", b"", PERSISTENT).await.unwrap();
    ts.shutdown().await;
}

/// ZooKeeperServer.processPacket handles an auth packet as soon as it is
/// read, before the packets behind it are submitted, so a write sent right
/// after `addauth` carries the new identity. (The Java client's
/// `addAuthInfo` does not wait for an answer; `addAuthInfo` followed by
/// `create(..., CREATOR_ALL_ACL)` is the usual pattern.) Sent in one TCP
/// write here, so the server sees them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_right_behind_addauth_carries_the_identity() {
    use proto::opcode::xid;
    use proto::records::{Acl, AuthPacket, Id};
    use tokio::io::AsyncWriteExt;
    let ts = TestServer::start().await;

    // Set-up: /locked, writable only by digest alice:pw.
    let owner = ts.client().await;
    owner.auth("digest".into(), b"alice:pw".to_vec()).await.unwrap();
    owner
        .create(
            "/locked",
            b"",
            &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::creator_all()),
        )
        .await
        .unwrap();

    let mut raw = ts.raw().await;
    let auth = RequestBody::Auth(AuthPacket {
        type_: 0,
        scheme: "digest".into(),
        auth: b"alice:pw".to_vec(),
    });
    let mut creator_all = create_req("/mine", b"", 0);
    creator_all.acl = vec![Acl {
        perms: proto::records::perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }];
    let (c1, c2) = (raw.take_xid(), raw.take_xid());
    let mut batch = Raw::frame(xid::AUTH, OpCode::Auth, auth);
    batch.extend(Raw::frame(c1, OpCode::Create, RequestBody::Create(creator_all)));
    batch.extend(Raw::frame(
        c2,
        OpCode::Create,
        RequestBody::Create(create_req("/locked/child", b"", 0)),
    ));
    raw.stream.write_all(&batch).await.unwrap();
    let auth_reply = raw.reply_to(OpCode::Auth, xid::AUTH).await.0;
    let first = raw.reply_to(OpCode::Create, c1).await.0;
    let second = raw.reply_to(OpCode::Create, c2).await.0;
    assert_eq!(
        (auth_reply, first, second),
        (ErrorCode::Ok, ErrorCode::Ok, ErrorCode::Ok),
        "auth, create with the auth ACL, create under alice's node"
    );
    ts.shutdown().await;
}

/// ZooKeeper 3.8.4+/3.9.2+ (CVE-2024-23944, NIOServerCnxn.process with the
/// node's ACL): a watcher is not told about a node it may not READ, so a
/// recursive watch on "/" cannot enumerate protected paths. A child event
/// is checked against the parent's ACL. The watcher still gets events for
/// nodes it may read, and once it authenticates it gets the protected ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_need_read_permission_on_the_node() {
    let ts = TestServer::start().await;
    let owner = authed(&ts, "alice:pw").await;
    owner.create("/open", b"", PERSISTENT).await.unwrap();
    owner.create("/vault", b"", &creator_all()).await.unwrap();

    let spy = ts.client().await;
    let mut w = spy
        .watch("/", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    // Protected first, then open: the first event the spy sees must be the
    // open one.
    owner.create("/vault/secret", b"", &creator_all()).await.unwrap();
    owner.set_data("/vault", b"x", None).await.unwrap();
    owner.create("/open/a", b"", PERSISTENT).await.unwrap();
    let ev = within("event on the open node", w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, "/open/a")
    );

    spy.auth("digest".into(), b"alice:pw".to_vec()).await.unwrap();
    owner.set_data("/vault", b"y", None).await.unwrap();
    let ev = within("event after authenticating", w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/vault")
    );
    ts.shutdown().await;
}
