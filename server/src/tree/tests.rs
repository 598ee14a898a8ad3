//! Data tree rules from ZooKeeper's DataTree: Stat bookkeeping on create,
//! delete and setData, the ephemeral index, and rollback by save/restore.

use super::*;

fn acl() -> Vec<Acl> {
    crate::acl::open_acl_unsafe()
}

#[test]
fn fresh_tree_has_root_and_zookeeper_nodes() {
    let t = DataTree::new();
    assert!(t.contains("/"));
    assert!(t.contains("/zookeeper/quota"));
    assert_eq!(t.get("/").unwrap().children.len(), 1);
}

#[test]
fn create_updates_parent_cversion_pzxid_and_child_count() {
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    let st = t
        .create("/a", Some(b"x".to_vec()), acl(), 0, 5, 100, &mut ch)
        .unwrap();
    assert_eq!(
        (st.czxid, st.mzxid, st.pzxid, st.ctime, st.data_length),
        (5, 5, 5, 100, 1)
    );
    let root = t.stat("/").unwrap();
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 5, 2));
    assert_eq!(
        ch,
        vec![Change::Created("/a".into()), Change::ChildrenChanged("/".into())]
    );
    assert_eq!(
        t.create("/a", None, acl(), 0, 6, 0, &mut ch),
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        t.create("/x/y", None, acl(), 0, 6, 0, &mut ch),
        Err(ErrorCode::NoNode)
    );
}

#[test]
fn delete_shows_in_cversion_and_refuses_non_empty_nodes() {
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    t.create("/a", None, acl(), 0, 2, 0, &mut ch).unwrap();
    t.create("/a/b", None, acl(), 0, 3, 0, &mut ch).unwrap();
    assert_eq!(t.delete("/a", 4, &mut ch), Err(ErrorCode::NotEmpty));
    t.delete("/a/b", 4, &mut ch).unwrap();
    let a = t.stat("/a").unwrap();
    assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 4, 0));
}

#[test]
fn set_data_bumps_version_and_tracks_data_size() {
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    let before = t.approximate_data_size();
    t.create("/a", Some(b"12".to_vec()), acl(), 0, 2, 0, &mut ch)
        .unwrap();
    let st = t.set_data("/a", Some(b"12345".to_vec()), 3, 9, &mut ch).unwrap();
    assert_eq!((st.version, st.mzxid, st.mtime, st.czxid), (1, 3, 9, 2));
    assert_eq!(t.approximate_data_size(), before + 2 + 5);
}

#[test]
fn ephemerals_are_indexed_by_owner_and_restore_undoes_everything() {
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    let saved_root = t.save("/");
    let saved_e = t.save("/e");
    let size = t.approximate_data_size();
    t.create("/e", Some(b"d".to_vec()), acl(), 77, 2, 0, &mut ch)
        .unwrap();
    assert_eq!(t.ephemerals_of(77), vec!["/e".to_string()]);
    assert_eq!(t.ephemeral_count(), 1);
    t.restore("/e", saved_e);
    t.restore("/", saved_root);
    assert!(!t.contains("/e"));
    assert_eq!(t.ephemeral_count(), 0);
    assert_eq!(t.approximate_data_size(), size);
    assert_eq!(t.stat("/").unwrap().num_children, 1);
}

#[test]
fn node_kind_round_trips_through_ephemeral_owner() {
    for k in [
        NodeKind::Persistent,
        NodeKind::Ephemeral(0x1234),
        NodeKind::Container,
        NodeKind::Ttl(5000),
    ] {
        assert_eq!(NodeKind::from_owner_value(k.owner_value()), k);
    }
    // EphemeralType.TTL: 0xFF in the high byte, the TTL in the low bits.
    assert_eq!(NodeKind::Ttl(1).owner_value() as u64, 0xff00_0000_0000_0001);
}

#[test]
fn reaps_only_used_empty_containers_and_expired_ttl_nodes() {
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    t.create(
        "/c",
        None,
        acl(),
        NodeKind::Container.owner_value(),
        2,
        0,
        &mut ch,
    )
    .unwrap();
    t.create(
        "/t",
        None,
        acl(),
        NodeKind::Ttl(100).owner_value(),
        3,
        1000,
        &mut ch,
    )
    .unwrap();
    assert!(t.reap_candidates(1050).is_empty());
    t.create("/c/x", None, acl(), 0, 4, 0, &mut ch).unwrap();
    t.delete("/c/x", 5, &mut ch).unwrap();
    assert_eq!(t.reap_candidates(1050), vec!["/c".to_string()]);
    assert_eq!(t.reap_candidates(1101), vec!["/c".to_string(), "/t".to_string()]);
}

#[test]
fn null_data_is_kept_apart_from_empty() {
    // ZooKeeper stores null data as null; getData returns null, not b"".
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    t.create("/n", None, acl(), 0, 2, 0, &mut ch).unwrap();
    t.create("/e", Some(vec![]), acl(), 0, 3, 0, &mut ch).unwrap();
    assert_eq!(t.get("/n").unwrap().data, None);
    assert_eq!(t.get("/e").unwrap().data, Some(vec![]));
    assert_eq!(t.stat("/n").unwrap().data_length, 0);
}

#[test]
fn sequence_numbers_count_creates_while_stat_cversion_counts_creates_and_deletes() {
    // Checked against ZooKeeper 3.8: create /p/a, delete it, then a
    // sequential child is "…0000000001" while getData shows cversion 2
    // (DataNode.copyStat reports 2 * creates - children).
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    t.create("/p", None, acl(), 0, 2, 0, &mut ch).unwrap();
    t.create("/p/a", None, acl(), 0, 3, 0, &mut ch).unwrap();
    t.delete("/p/a", 4, &mut ch).unwrap();
    assert_eq!(t.stat("/p").unwrap().cversion, 2);
    assert_eq!(t.get("/p").unwrap().cversion, 1, "next sequential suffix");
}

#[test]
fn restore_in_reverse_undoes_creates_and_deletes_without_copying_child_lists() {
    // A multi's rollback: saves are taken before each change and restored
    // in reverse; the parent's child list comes back through the children.
    let mut t = DataTree::new();
    let mut ch = Vec::new();
    t.create("/p", None, acl(), 0, 2, 0, &mut ch).unwrap();
    for i in 0..5 {
        t.create(&format!("/p/c{i}"), None, acl(), 0, 3, 0, &mut ch)
            .unwrap();
    }
    let before: Vec<_> = t.iter().map(|(p, n)| (p.clone(), n.clone())).collect();
    let mut saved = Vec::new();
    for p in ["/p/c1", "/p"] {
        saved.push((p.to_string(), t.save(p)));
    }
    assert!(
        saved[1].1.as_ref().unwrap().children.is_empty(),
        "saved without the child list"
    );
    t.delete("/p/c1", 4, &mut ch).unwrap();
    for p in ["/p/new", "/p"] {
        saved.push((p.to_string(), t.save(p)));
    }
    t.create("/p/new", Some(b"x".to_vec()), acl(), 0, 4, 0, &mut ch)
        .unwrap();
    for p in ["/p/new/deeper", "/p/new"] {
        saved.push((p.to_string(), t.save(p)));
    }
    t.create("/p/new/deeper", None, acl(), 9, 4, 0, &mut ch).unwrap();
    for (p, n) in saved.into_iter().rev() {
        t.restore(&p, n);
    }
    let mut after: Vec<_> = t.iter().map(|(p, n)| (p.clone(), n.clone())).collect();
    let mut before = before;
    before.sort_by(|a, b| a.0.cmp(&b.0));
    after.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(before, after);
    assert_eq!(t.ephemeral_count(), 0);
}
