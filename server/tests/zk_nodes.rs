//! Node operations through the `zookeeper-client` crate against an
//! in-process server: create in every mode (create2's `Stat`), exists,
//! getData, setData and delete with versions, getChildren/getChildren2,
//! getAllChildrenNumber, getEphemerals, getACL/setACL, sync, chroot, and
//! the exact `Stat` fields along a sequence of operations.
//!
//! Rules cited are ZooKeeper's: the Programmer's Guide ("ZooKeeper Stat
//! Structure", "Sequence Nodes", "Ephemeral Nodes", "Container Nodes",
//! "TTL Nodes") and the server code the behaviour follows
//! (PrepRequestProcessor, DataTree, EphemeralType).

mod common;

use std::time::Duration;

use common::*;
use zonekeeper_server::tree::NodeKind;
use zookeeper_client as zk;

/// Programmer's Guide, "ZooKeeper Stat Structure": a new node has
/// czxid = mzxid = pzxid (its creation), version/cversion/aversion 0,
/// ephemeralOwner 0 unless ephemeral, dataLength = the data's size and no
/// children; create2 returns that Stat and exists/getData report the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create2_returns_the_new_nodes_stat() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let (stat, seq) = zk.create("/a", b"hello", PERSISTENT).await.unwrap();
    assert_eq!(seq.into_i64(), -1, "not sequential");
    assert!(stat.czxid > 0);
    assert_eq!(stat.mzxid, stat.czxid);
    assert_eq!(stat.pzxid, stat.czxid);
    assert_eq!(stat.ctime, stat.mtime);
    assert!(stat.ctime > 0, "ctime is wall-clock milliseconds");
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);

    assert_eq!(zk.check_stat("/a").await.unwrap(), Some(stat));
    let (data, s2) = zk.get_data("/a").await.unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(s2, stat);

    // Empty data is a zero-length node, not a missing one.
    let (empty, _) = zk.create("/empty", b"", PERSISTENT).await.unwrap();
    assert_eq!(empty.data_length, 0);
    assert_eq!(zk.get_data("/empty").await.unwrap().0, Vec::<u8>::new());
    ts.shutdown().await;
}

/// NodeExists for an existing path, NoNode for a missing parent
/// (PrepRequestProcessor.pRequest2TxnCreate), NoNode from getData,
/// getChildren, getACL, setData and delete on a missing node, and exists
/// answering "no node" with an empty result rather than an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_existing_nodes_get_zookeepers_errors() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/a", b"", PERSISTENT).await.unwrap();
    assert_eq!(
        zk.create("/a", b"", PERSISTENT).await.unwrap_err(),
        zk::Error::NodeExists
    );
    assert_eq!(
        zk.create("/x/y", b"", PERSISTENT).await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(
        zk.create("/x/y", b"", EPHEMERAL).await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(zk.get_data("/nope").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(zk.list_children("/nope").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(zk.get_children("/nope").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(zk.get_acl("/nope").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(
        zk.count_descendants_number("/nope").await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(
        zk.set_data("/nope", b"x", None).await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(
        zk.set_acl("/nope", &zk::Acls::anyone_all(), None)
            .await
            .unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(zk.delete("/nope", None).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(zk.check_stat("/nope").await.unwrap(), None);
    ts.shutdown().await;
}

/// Programmer's Guide, "Sequence Nodes": the suffix is the parent's
/// sequence counter formatted %010d; the counter is the parent's cversion
/// (PrepRequestProcessor), so every child create or delete under the
/// parent, sequential or not, advances it, and persistent and ephemeral
/// sequential nodes share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_suffix_is_the_parents_cversion() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/q", b"", PERSISTENT).await.unwrap();

    let (_, s0) = zk.create("/q/n-", b"", PERSISTENT_SEQ).await.unwrap();
    assert_eq!(s0.into_i64(), 0);
    assert_eq!(s0.to_string(), "0000000000");
    assert!(zk.check_stat("/q/n-0000000000").await.unwrap().is_some());

    // ZooKeeper numbers by child creates (DataTree's stored cversion); the
    // Stat shows creates + deletes (DataNode.copyStat: 2 * creates -
    // children). Checked against ZooKeeper 3.8: create and delete a child,
    // and the next suffix is 1 higher, not 2.
    zk.create("/q/plain", b"", PERSISTENT).await.unwrap();
    zk.delete("/q/plain", None).await.unwrap();
    let (_, s2) = zk.create("/q/n-", b"", EPHEMERAL_SEQ).await.unwrap();
    assert_eq!(s2.into_i64(), 2);
    let (_, stat) = zk.get_data("/q/n-0000000002").await.unwrap();
    assert_eq!(stat.ephemeral_owner, zk.session_id().0);

    // Another prefix under the same parent continues the same counter.
    let (_, s3) = zk.create("/q/other-", b"", PERSISTENT_SEQ).await.unwrap();
    assert_eq!(s3.into_i64(), 3);
    let (_, parent) = zk.get_children("/q").await.unwrap();
    assert_eq!(parent.cversion, 5, "4 creates and 1 delete");

    let mut children = zk.list_children("/q").await.unwrap();
    children.sort();
    assert_eq!(children, ["n-0000000000", "n-0000000002", "other-0000000003"]);
    ts.shutdown().await;
}

/// Programmer's Guide, "Ephemeral Nodes": ephemeralOwner is the creating
/// session; ephemerals may not have children (NoChildrenForEphemerals,
/// also for sequential children); getEphemerals lists the calling session's
/// ephemerals whose path starts with the given string ("/" = all)
/// (FinalRequestProcessor getEphemerals: a string prefix, not a subtree).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_are_owned_childless_and_listed_per_session() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let other = ts.client().await;
    zk.create("/dir", b"", PERSISTENT).await.unwrap();
    let (e, _) = zk.create("/e1", b"x", EPHEMERAL).await.unwrap();
    assert_eq!(e.ephemeral_owner, zk.session_id().0);
    zk.create("/e1x", b"", EPHEMERAL).await.unwrap();
    zk.create("/dir/e2", b"", EPHEMERAL).await.unwrap();
    other.create("/dir/theirs", b"", EPHEMERAL).await.unwrap();

    assert_eq!(
        zk.create("/e1/child", b"", PERSISTENT).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    assert_eq!(
        zk.create("/e1/seq-", b"", EPHEMERAL_SEQ).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );

    let mut all = zk.list_ephemerals("/").await.unwrap();
    all.sort();
    assert_eq!(all, ["/dir/e2", "/e1", "/e1x"]);
    let mut e1 = zk.list_ephemerals("/e1").await.unwrap();
    e1.sort();
    assert_eq!(e1, ["/e1", "/e1x"], "a string prefix, not a subtree");
    assert_eq!(zk.list_ephemerals("/dir").await.unwrap(), ["/dir/e2"]);
    assert_eq!(zk.list_ephemerals("/none").await.unwrap(), Vec::<String>::new());
    assert_eq!(other.list_ephemerals("/").await.unwrap(), ["/dir/theirs"]);
    ts.shutdown().await;
}

/// createContainer answers like create2. The server stores the container
/// mark in ephemeralOwner (EphemeralType.CONTAINER_EPHEMERAL_OWNER), but
/// clients see 0 there (DataTree.getClientEphemeralOwner: only NORMAL
/// ephemeral owners are shown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_nodes_show_no_ephemeral_owner() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let (stat, _) = zk.create("/c", b"data", CONTAINER).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(zk.check_stat("/c").await.unwrap().unwrap().ephemeral_owner, 0);
    let kind = ts.hub().state().tree.get("/c").unwrap().kind();
    assert_eq!(kind, NodeKind::Container);
    assert_eq!(stat.data_length, 4);
    zk.create("/c/child", b"", PERSISTENT).await.unwrap();
    assert_eq!(zk.get_children("/c").await.unwrap().1.num_children, 1);
    ts.shutdown().await;
}

/// Programmer's Guide, "TTL Nodes": createTTL is refused with
/// Unimplemented unless zookeeper.extendedTypesEnabled is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_are_unimplemented_when_extended_types_are_disabled() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_secs(60));
    assert_eq!(
        zk.create("/t", b"", &ttl).await.unwrap_err(),
        zk::Error::Unimplemented
    );
    let ttl_seq = zk::CreateMode::PersistentSequential
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_secs(60));
    assert_eq!(
        zk.create("/t-", b"", &ttl_seq).await.unwrap_err(),
        zk::Error::Unimplemented
    );
    assert_eq!(zk.check_stat("/t").await.unwrap(), None, "nothing was created");
    ts.shutdown().await;
}

/// "TTL Nodes": with extended types enabled createTTL creates the node
/// (the TTL lives in the stored ephemeralOwner, EphemeralType.TTL, which
/// clients see as 0: DataTree.getClientEphemeralOwner); sequential TTL
/// nodes get the usual suffix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_when_extended_types_are_enabled() {
    let ts = TestServer::start_with(|c| c.extended_types_enabled = true).await;
    let zk = ts.client().await;
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_millis(60_000));
    let (stat, _) = zk.create("/t", b"v", &ttl).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    let kind = ts.hub().state().tree.get("/t").unwrap().kind();
    assert_eq!(kind, NodeKind::Ttl(60_000));
    assert_eq!(stat.data_length, 1);
    let ttl_seq = zk::CreateMode::PersistentSequential
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_millis(60_000));
    let (_, seq) = zk.create("/t/s-", b"", &ttl_seq).await.unwrap();
    assert_eq!(seq.into_i64(), 0);
    assert!(zk.check_stat("/t/s-0000000000").await.unwrap().is_some());
    ts.shutdown().await;
}

/// Programmer's Guide, "Conditional updates": setData with version -1
/// always applies; otherwise it must equal the current version (BadVersion)
/// and each successful setData increments it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_data_checks_and_increments_the_version() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let (created, _) = zk.create("/v", b"0", PERSISTENT).await.unwrap();
    let s1 = zk.set_data("/v", b"one", None).await.unwrap();
    assert_eq!(s1.version, 1);
    assert_eq!(s1.data_length, 3);
    let s2 = zk.set_data("/v", b"two!", Some(1)).await.unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(
        zk.set_data("/v", b"x", Some(1)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    assert_eq!(
        zk.set_data("/v", b"x", Some(7)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    let (data, now) = zk.get_data("/v").await.unwrap();
    assert_eq!(data, b"two!", "a refused setData changes nothing");
    assert_eq!(now, s2);
    assert_eq!(now.czxid, created.czxid);
    ts.shutdown().await;
}

/// delete: version -1 matches any version, another version must match
/// (BadVersion); a node with children cannot be deleted (NotEmpty);
/// PrepRequestProcessor checks the version before the children.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_checks_version_then_children() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/d", b"", PERSISTENT).await.unwrap();
    zk.create("/d/c", b"", PERSISTENT).await.unwrap();
    zk.set_data("/d", b"x", None).await.unwrap();
    assert_eq!(zk.delete("/d", Some(0)).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(zk.delete("/d", Some(1)).await.unwrap_err(), zk::Error::NotEmpty);
    assert_eq!(zk.delete("/d", None).await.unwrap_err(), zk::Error::NotEmpty);
    assert_eq!(
        zk.delete("/d/c", Some(5)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    zk.delete("/d/c", Some(0)).await.unwrap();
    zk.delete("/d", Some(1)).await.unwrap();
    assert_eq!(zk.check_stat("/d").await.unwrap(), None);
    assert_eq!(zk.delete("/d", None).await.unwrap_err(), zk::Error::NoNode);
    ts.shutdown().await;
}

/// getChildren lists child names (not paths); getChildren2 adds the
/// parent's Stat, whose numChildren matches the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_children_and_get_children2() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/p", b"", PERSISTENT).await.unwrap();
    assert_eq!(zk.list_children("/p").await.unwrap(), Vec::<String>::new());
    for name in ["b", "a", "c"] {
        zk.create(&format!("/p/{name}"), b"", PERSISTENT).await.unwrap();
    }
    zk.create("/p/a/deep", b"", PERSISTENT).await.unwrap();
    let mut names = zk.list_children("/p").await.unwrap();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    let (mut names2, stat) = zk.get_children("/p").await.unwrap();
    names2.sort();
    assert_eq!(names2, names);
    assert_eq!(stat.num_children, 3);
    assert_eq!(stat.cversion, 3);
    assert_eq!(stat, zk.check_stat("/p").await.unwrap().unwrap());
    ts.shutdown().await;
}

/// getAllChildrenNumber (ZooKeeper 3.6, DataTree.getAllChildrenNumber):
/// every descendant, not counting the node itself; for "/" that includes
/// the /zookeeper, /zookeeper/quota and /zookeeper/config system nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_children_number_counts_descendants() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.create("/n", b"", PERSISTENT).await.unwrap();
    assert_eq!(zk.count_descendants_number("/n").await.unwrap(), 0);
    for p in ["/n/a", "/n/a/b", "/n/a/b/c", "/n/d"] {
        zk.create(p, b"", PERSISTENT).await.unwrap();
    }
    assert_eq!(zk.count_descendants_number("/n").await.unwrap(), 4);
    assert_eq!(zk.count_descendants_number("/n/a").await.unwrap(), 2);
    assert_eq!(zk.count_descendants_number("/").await.unwrap(), 5 + 3);
    ts.shutdown().await;
}

/// getACL returns the node's ACL and Stat; setACL compares the expected
/// version with aversion (BadVersion), increments aversion and leaves
/// version and mzxid alone (DataTree.setACL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_acl_and_set_acl_use_aversion() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let (created, _) = zk.create("/acl", b"", PERSISTENT).await.unwrap();
    let (acl, stat) = zk.get_acl("/acl").await.unwrap();
    assert_eq!(acl, zk::Acls::anyone_all().to_vec());
    assert_eq!(stat, created);

    let s1 = zk
        .set_acl("/acl", &zk::Acls::anyone_all(), Some(0))
        .await
        .unwrap();
    assert_eq!(s1.aversion, 1);
    assert_eq!(s1.version, 0);
    assert_eq!(s1.mzxid, created.mzxid, "setACL does not modify the data");
    assert_eq!(
        zk.set_acl("/acl", &zk::Acls::anyone_all(), Some(0))
            .await
            .unwrap_err(),
        zk::Error::BadVersion
    );
    let s2 = zk
        .set_acl("/acl", &zk::Acls::anyone_read(), Some(1))
        .await
        .unwrap();
    assert_eq!(s2.aversion, 2);
    let (acl, stat) = zk.get_acl("/acl").await.unwrap();
    assert_eq!(acl, zk::Acls::anyone_read().to_vec());
    assert_eq!(stat, s2);
    // world:anyone READ only: no write, no admin. ADMIN is checked before
    // the version (PrepRequestProcessor setACL), so even the right
    // version gets NoAuth.
    assert_eq!(
        zk.set_data("/acl", b"x", None).await.unwrap_err(),
        zk::Error::NoAuth
    );
    assert_eq!(
        zk.set_acl("/acl", &zk::Acls::anyone_all(), Some(2))
            .await
            .unwrap_err(),
        zk::Error::NoAuth
    );
    assert_eq!(
        zk.set_acl("/acl", &zk::Acls::anyone_all(), Some(9))
            .await
            .unwrap_err(),
        zk::Error::NoAuth
    );
    ts.shutdown().await;
}

/// sync: answers OK with the path once the writes before it are applied;
/// ZooKeeper does not check that the node exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_succeeds_for_any_valid_path() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    zk.sync("/").await.unwrap();
    zk.create("/s", b"", PERSISTENT).await.unwrap();
    zk.sync("/s").await.unwrap();
    zk.sync("/not/there").await.unwrap();
    ts.shutdown().await;
}

/// "ZooKeeper Stat Structure": czxid is fixed at creation; mzxid moves on
/// setData only; pzxid moves on child create and delete only; version
/// counts data changes, cversion child changes, aversion ACL changes;
/// numChildren and dataLength follow the node. Checked as relations between
/// zxids (later transactions have larger zxids), never absolute values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_fields_follow_a_sequence_of_operations() {
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let (c, _) = zk.create("/s", b"abc", PERSISTENT).await.unwrap();

    // setData: mzxid moves past czxid; pzxid and cversion stay.
    let s = zk.set_data("/s", b"abcdef", Some(0)).await.unwrap();
    assert_eq!(s.czxid, c.czxid);
    assert!(s.mzxid > c.czxid);
    assert_eq!(s.pzxid, c.pzxid);
    assert_eq!((s.version, s.cversion, s.aversion), (1, 0, 0));
    assert_eq!(s.data_length, 6);
    assert!(s.mtime >= c.mtime);
    assert_eq!(s.ctime, c.ctime);

    // A child create: the parent's pzxid becomes the child's czxid,
    // cversion and numChildren go up, its data stat does not move.
    let (child, _) = zk.create("/s/k", b"", PERSISTENT).await.unwrap();
    assert!(child.czxid > s.mzxid);
    let p1 = zk.check_stat("/s").await.unwrap().unwrap();
    assert_eq!(p1.pzxid, child.czxid);
    assert_eq!((p1.cversion, p1.num_children), (1, 1));
    assert_eq!((p1.mzxid, p1.version), (s.mzxid, 1));

    // An ephemeral child: same parent bookkeeping; its owner is us.
    let (eph, _) = zk.create("/s/e", b"", EPHEMERAL).await.unwrap();
    assert_eq!(eph.ephemeral_owner, zk.session_id().0);
    let p2 = zk.check_stat("/s").await.unwrap().unwrap();
    assert_eq!(p2.pzxid, eph.czxid);
    assert_eq!((p2.cversion, p2.num_children), (2, 2));

    // setData on a child does not touch the parent.
    let k1 = zk.set_data("/s/k", b"z", None).await.unwrap();
    assert_eq!(zk.check_stat("/s").await.unwrap().unwrap(), p2);

    // A child delete: pzxid moves to the delete's zxid (after the last
    // write, before the next), cversion up, numChildren down.
    zk.delete("/s/k", None).await.unwrap();
    let p3 = zk.check_stat("/s").await.unwrap().unwrap();
    assert!(p3.pzxid > k1.mzxid);
    assert_eq!((p3.cversion, p3.num_children), (3, 1));
    let later = zk.set_data("/s", b"", None).await.unwrap();
    assert!(later.mzxid > p3.pzxid);
    assert_eq!(later.pzxid, p3.pzxid);
    assert_eq!((later.version, later.data_length), (2, 0));

    // setACL: aversion only.
    let a = zk.set_acl("/s", &zk::Acls::anyone_all(), Some(0)).await.unwrap();
    assert_eq!(
        (a.version, a.cversion, a.aversion, a.mzxid, a.pzxid),
        (2, 3, 1, later.mzxid, later.pzxid)
    );

    // Failed operations change nothing.
    assert_eq!(
        zk.set_data("/s", b"x", Some(0)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    assert_eq!(
        zk.create("/s/e", b"", PERSISTENT).await.unwrap_err(),
        zk::Error::NodeExists
    );
    assert_eq!(zk.check_stat("/s").await.unwrap().unwrap(), a);
    ts.shutdown().await;
}

/// Programmer's Guide, "Connection strings": an optional chroot suffix makes
/// every path relative to it, on requests, replies (created paths,
/// ephemerals) and watch events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_makes_paths_relative() {
    let ts = TestServer::start().await;
    let root = ts.client().await;
    root.create("/app", b"", PERSISTENT).await.unwrap();

    let chrooted = within(
        "chroot connect",
        zk::Client::connector().connect(&format!("{}/app", ts.connect_string())),
    )
    .await
    .unwrap();
    assert_eq!(chrooted.path(), "/app");
    chrooted.create("/x", b"in app", PERSISTENT).await.unwrap();
    assert_eq!(root.get_data("/app/x").await.unwrap().0, b"in app");
    let (_, seq) = chrooted.create("/x/s-", b"", EPHEMERAL_SEQ).await.unwrap();
    assert_eq!(seq.into_i64(), 0);
    assert_eq!(chrooted.list_ephemerals("/").await.unwrap(), ["/x/s-0000000000"]);
    assert_eq!(chrooted.list_children("/").await.unwrap(), ["x"]);

    let (_, _, w) = chrooted.get_and_watch_data("/x").await.unwrap();
    root.set_data("/app/x", b"changed", None).await.unwrap();
    let ev = within("data event", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(ev.path, "/x");

    // Client::chroot on an existing client shares its session.
    let sub = root.clone().chroot("/app/x").unwrap();
    assert_eq!(sub.get_data("/").await.unwrap().0, b"changed");
    assert_eq!(sub.session_id(), root.session_id());
    ts.shutdown().await;
}

/// Null data (a jute buffer of length -1, what a Java client sends for
/// `create(path, null, …)`) stays null: getData answers it as null, and
/// dataLength is 0 (DataTree keeps the null; Stat counts 0 bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_data_stays_null() {
    use proto::opcode::OpCode;
    use proto::records::{GetDataRequest, SetDataRequest};
    use proto::request::RequestBody;
    use proto::response::ResponseBody;
    use proto::ErrorCode;
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let get = || {
        RequestBody::GetData(GetDataRequest {
            path: "/null".into(),
            watch: false,
        })
    };
    let mut req = create_req("/null", b"", 0);
    req.data = None;
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(req)).await,
        ErrorCode::Ok
    );
    let Some(ResponseBody::GetData(d)) = raw.call(OpCode::GetData, get()).await.1 else {
        panic!()
    };
    assert_eq!((d.data, d.stat.data_length), (None, 0));

    let set = |data: Option<Vec<u8>>| {
        RequestBody::SetData(SetDataRequest {
            path: "/null".into(),
            data,
            version: -1,
        })
    };
    assert_eq!(raw.code(OpCode::SetData, set(Some(vec![]))).await, ErrorCode::Ok);
    let Some(ResponseBody::GetData(d)) = raw.call(OpCode::GetData, get()).await.1 else {
        panic!()
    };
    assert_eq!(d.data, Some(vec![]), "empty is not null");
    assert_eq!(raw.code(OpCode::SetData, set(None)).await, ErrorCode::Ok);
    let Some(ResponseBody::GetData(d)) = raw.call(OpCode::GetData, get()).await.1 else {
        panic!()
    };
    assert_eq!((d.data, d.stat.version), (None, 2));
    // The client library reads null data as empty.
    let zk = ts.client().await;
    assert_eq!(zk.get_data("/null").await.unwrap().0, Vec::<u8>::new());
    ts.shutdown().await;
}
