//! Container and TTL reaping: the leader's periodic sweep
//! (`container_check_interval`, ZooKeeper's
//! `znode.container.checkIntervalMs`) deletes empty containers that have
//! had children and childless TTL nodes whose TTL has passed, as ordinary
//! deletes that fire watches.
//!
//! Rules cited: ZooKeeper Programmer's Guide, "Container Nodes" ("when the
//! last child of a container is deleted, the container becomes a candidate
//! to be deleted by the server at some point in the future") and "TTL
//! Nodes" ("if the znode has not been modified within the given TTL and
//! has no children it will become a candidate to be deleted");
//! ContainerManager.getCandidates (a container needs cversion > 0 and no
//! children; a TTL node needs no children and `now - mtime > ttl`).
//!
//! Time has to pass here; the tests await the NodeDeleted watch events with
//! a deadline and never assert how long reaping took. That a node was
//! *not* reaped is shown by a sweep that reaped another node, created
//! earlier, in the same state.

mod common;

use std::time::Duration;

use common::*;
use zookeeper_client as zk;

fn fast_sweeps(c: &mut zonekeeper_server::config::Config) {
    c.container_check_interval = Duration::from_millis(100);
    c.extended_types_enabled = true;
}

/// "Container Nodes": an emptied container is deleted by the server, with
/// NodeDeleted for its watchers and NodeChildrenChanged for its parent's;
/// one that never had a child, or still has one, is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_containers_are_reaped() {
    let ts = TestServer::start_with(fast_sweeps).await;
    let zk = ts.client().await;
    zk.create("/parent", b"", PERSISTENT).await.unwrap();
    for c in ["/never", "/parent/used", "/busy"] {
        zk.create(c, b"", CONTAINER).await.unwrap();
    }
    zk.create("/parent/used/x", b"", PERSISTENT).await.unwrap();
    zk.create("/busy/a", b"", PERSISTENT).await.unwrap();
    zk.create("/busy/b", b"", PERSISTENT).await.unwrap();
    zk.delete("/busy/a", None).await.unwrap();

    let (_, node_w) = zk.check_and_watch_stat("/parent/used").await.unwrap();
    let (_, parent_w) = zk.list_and_watch_children("/parent").await.unwrap();
    zk.delete("/parent/used/x", None).await.unwrap();

    let ev = within("the container's NodeDeleted", node_w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDeleted, "/parent/used")
    );
    let ev = within("the parent's NodeChildrenChanged", parent_w.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeChildrenChanged, "/parent")
    );
    assert_eq!(zk.check_stat("/parent/used").await.unwrap(), None);
    assert!(
        zk.check_stat("/never").await.unwrap().is_some(),
        "never had children"
    );
    assert_eq!(
        zk.list_children("/busy").await.unwrap(),
        ["b"],
        "still has a child"
    );
    assert!(
        zk.check_stat("/parent").await.unwrap().is_some(),
        "not a container"
    );
    ts.shutdown().await;
}

/// "TTL Nodes": a childless TTL node unmodified for its TTL is deleted by
/// the server; one with a child is left alone, and a persistent node is
/// never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_ttl_nodes_are_reaped() {
    let ts = TestServer::start_with(fast_sweeps).await;
    let zk = ts.client().await;
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_millis(200));
    zk.create("/plain", b"", PERSISTENT).await.unwrap();
    zk.create("/parent-ttl", b"", &ttl).await.unwrap();
    zk.create("/parent-ttl/kid", b"", PERSISTENT).await.unwrap();
    let (_, w) = zk.check_and_watch_stat("/ttl").await.unwrap();
    zk.create("/ttl", b"", &ttl).await.unwrap();
    assert_eq!(
        within("NodeCreated", w.changed()).await.event_type,
        zk::EventType::NodeCreated
    );

    // (Unless a sweep was quicker than this exists: then it is gone
    // already, and the exist watch would wait for a creation.)
    let (stat, w) = zk.check_and_watch_stat("/ttl").await.unwrap();
    if stat.is_some() {
        let ev = within("the TTL node's NodeDeleted", w.changed()).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeDeleted, "/ttl")
        );
    }
    assert_eq!(zk.check_stat("/ttl").await.unwrap(), None);
    assert!(
        zk.check_stat("/parent-ttl").await.unwrap().is_some(),
        "has a child"
    );
    assert!(zk.check_stat("/plain").await.unwrap().is_some());

    // Once its child is gone it goes too.
    let (_, w) = zk.check_and_watch_stat("/parent-ttl").await.unwrap();
    zk.delete("/parent-ttl/kid", None).await.unwrap();
    let ev = within("NodeDeleted of the emptied TTL node", w.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    ts.shutdown().await;
}

/// Sequential TTL nodes are reaped like the others, and the reaping does
/// not disturb the parent's sequence counter (which counts child creates,
/// so the next suffix follows the reaped node's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_ttl_nodes_are_reaped_and_numbering_goes_on() {
    let ts = TestServer::start_with(fast_sweeps).await;
    let zk = ts.client().await;
    zk.create("/q", b"", PERSISTENT).await.unwrap();
    let ttl_seq = zk::CreateMode::PersistentSequential
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_millis(100));
    let (_, w) = zk.list_and_watch_children("/q").await.unwrap();
    let (_, s0) = zk.create("/q/t-", b"", &ttl_seq).await.unwrap();
    assert_eq!(s0.into_i64(), 0);
    assert_eq!(
        within("child created", w.changed()).await.event_type,
        zk::EventType::NodeChildrenChanged
    );
    let (children, w) = zk.list_and_watch_children("/q").await.unwrap();
    if !children.is_empty() {
        let ev = within("child reaped", w.changed()).await;
        assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    }
    assert_eq!(zk.list_children("/q").await.unwrap(), Vec::<String>::new());
    let (_, s) = zk.create("/q/p-", b"", PERSISTENT_SEQ).await.unwrap();
    assert_eq!(
        s.into_i64(),
        1,
        "numbering counts creates; the reap is not reused"
    );
    ts.shutdown().await;
}
