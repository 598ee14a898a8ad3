//! The data tree: znodes, their data, ACLs and `Stat`s. Pure state: no
//! clock, no I/O, no watches. It is changed only by [`crate::ops`] while
//! applying a committed log entry, which passes in the entry's zxid and
//! time; it reports what changed as [`Change`]s so the caller can fire
//! watches once the whole transaction (a multi, say) has succeeded.

mod node;

pub use node::{AclList, Node, NodeKind, MAX_TTL_MS};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use proto::records::{Acl, Stat};
use proto::ErrorCode;

use crate::path;

/// A change to the tree, in the order it happened; turned into watch
/// events after the transaction commits as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    /// The path and the ACL it had: watchers are told only if they may
    /// READ it (ZooKeeper 3.8.4+, CVE-2024-23944).
    Deleted(String, AclList),
    DataChanged(String),
    ChildrenChanged(String),
}

/// The tree of znodes, indexed by full path.
#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: HashMap<String, Node>,
    /// Ephemeral paths by owning session, so closing a session is
    /// proportional to what it owns.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Sum of path and data lengths, as ZooKeeper's `approximateDataSize`.
    data_size: u64,
    /// ACL lists recently given to nodes, newest last, so a new node with
    /// the same ACL shares the copy (see [`AclList`]). A few entries: most
    /// trees use one or two ACLs; a miss only costs a copy.
    recent_acls: Vec<AclList>,
}

/// How many ACL lists [`DataTree::intern_acl`] remembers.
const RECENT_ACLS: usize = 8;

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with no nodes at all (snapshot loading fills it).
    pub(crate) fn empty() -> Self {
        DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            data_size: 0,
            recent_acls: Vec::new(),
        }
    }

    /// A tree holding `/` and `/zookeeper` (with `/zookeeper/quota` and
    /// `/zookeeper/config`), like a fresh ZooKeeper.
    pub fn new() -> Self {
        let mut t = DataTree::empty();
        t.insert_raw(
            "/".to_string(),
            Node::new(Some(Vec::new()), Arc::new(crate::acl::open_acl_unsafe()), 0, 0, 0),
        );
        for p in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            // ZOOKEEPER-2014: the config node is readable by all, writable
            // by none (reconfig changes it).
            let acl = if p == "/zookeeper/config" {
                crate::acl::read_acl_unsafe()
            } else {
                crate::acl::open_acl_unsafe()
            };
            t.insert_raw(p.to_string(), Node::new(Some(Vec::new()), Arc::new(acl), 0, 0, 0));
            t.link_child(p);
        }
        t
    }

    /// The shared copy of `acl`: one already given to a node if it is
    /// among the recent ones, else a new one that is remembered.
    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> AclList {
        if let Some(i) = self.recent_acls.iter().rposition(|a| **a == acl) {
            let hit = self.recent_acls.remove(i);
            self.recent_acls.push(hit.clone());
            return hit;
        }
        let new = Arc::new(acl);
        if self.recent_acls.len() == RECENT_ACLS {
            self.recent_acls.remove(0);
        }
        self.recent_acls.push(new.clone());
        new
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Paths of the ephemerals `session` owns, sorted.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every session that owns ephemerals, with them (for `dump`).
    pub fn all_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        let mut v: Vec<_> = self
            .ephemerals
            .iter()
            .map(|(s, p)| (*s, p.iter().cloned().collect()))
            .collect();
        v.sort();
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// The node's `Stat` as a client sees it.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(Node::stat)
    }

    /// Number of descendants of `path` (not counting itself), for
    /// getAllChildrenNumber.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                for c in &n.children {
                    count += 1;
                    stack.push(path::join(&p, c));
                }
            }
        }
        count
    }

    /// Creates a node under an existing parent. Checks that are the
    /// caller's (ACLs, parent kind, existence) have been made; this only
    /// refuses what would corrupt the tree.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        zxid: i64,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Stat, ErrorCode> {
        if self.nodes.contains_key(path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = path::parent(path).to_string();
        let parent = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
        parent.cversion += 1;
        parent.pzxid = zxid;
        parent.children.insert(path::basename(path).to_string());
        let acl = self.intern_acl(acl);
        let node = Node::new(data, acl, ephemeral_owner, zxid, time);
        let stat = node.stat();
        self.insert_raw(path.to_string(), node);
        changes.push(Change::Created(path.to_string()));
        changes.push(Change::ChildrenChanged(parent_path));
        Ok(stat)
    }

    /// Deletes a childless node.
    pub fn delete(&mut self, path: &str, zxid: i64, changes: &mut Vec<Change>) -> Result<(), ErrorCode> {
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        let acl = self.remove_raw(path).map(|n| n.acl).unwrap_or_default();
        let parent_path = path::parent(path).to_string();
        if let Some(parent) = self.nodes.get_mut(&parent_path) {
            parent.children.remove(path::basename(path));
            // DataTree.deleteNode: the stored cversion counts creates only
            // (the Stat shows creates + deletes); pzxid only moves forward.
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        }
        changes.push(Change::Deleted(path.to_string(), acl));
        changes.push(Change::ChildrenChanged(parent_path));
        Ok(())
    }

    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        zxid: i64,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        self.data_size = self.data_size - node.data_len() as u64 + data.as_ref().map_or(0, Vec::len) as u64;
        node.data = data;
        node.version += 1;
        node.mzxid = zxid;
        node.mtime = time;
        let stat = node.stat();
        changes.push(Change::DataChanged(path.to_string()));
        Ok(stat)
    }

    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>) -> Result<Stat, ErrorCode> {
        if !self.nodes.contains_key(path) {
            return Err(ErrorCode::NoNode);
        }
        let acl = self.intern_acl(acl);
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        node.acl = acl;
        node.aversion += 1;
        Ok(node.stat())
    }

    /// Saves what `restore` needs to undo changes to `path` (used by
    /// multi to roll back): the node without its child list. Child lists
    /// are put back by restoring the children's own saves (a child created
    /// in the multi is unlinked when restored to absent, a deleted one is
    /// linked again), so a parent with many children is not copied for
    /// every operation under it.
    pub fn save(&self, path: &str) -> Option<Node> {
        self.nodes.get(path).map(Node::without_children)
    }

    /// Puts `path` back to a state saved by [`DataTree::save`]: removed
    /// (and unlinked from its parent) if it did not exist, else its fields
    /// replaced, keeping its current child list, and linked to its parent.
    /// Restoring a multi's saves in reverse order undoes it exactly.
    /// Keeps the indexes right.
    pub fn restore(&mut self, path: &str, saved: Option<Node>) {
        let current = self.remove_raw(path);
        match saved {
            None => {
                if current.is_some() {
                    self.unlink_child(path);
                }
            }
            Some(mut n) => {
                n.children = current.map(|c| c.children).unwrap_or_default();
                self.insert_raw(path.to_string(), n);
                self.link_child(path);
            }
        }
    }

    /// Inserts a node as is, maintaining counters and the ephemeral index
    /// but not the parent's child list (snapshot loading and restore).
    pub(crate) fn insert_raw(&mut self, path: String, node: Node) {
        self.data_size += (path.len() + node.data_len()) as u64;
        if let NodeKind::Ephemeral(owner) = node.kind() {
            self.ephemerals.entry(owner).or_default().insert(path.clone());
        }
        self.nodes.insert(path, node);
    }

    fn remove_raw(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        self.data_size -= (path.len() + node.data_len()) as u64;
        if let NodeKind::Ephemeral(owner) = node.kind() {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        Some(node)
    }

    /// Adds `path` to its parent's child list (snapshot loading, restore).
    pub(crate) fn link_child(&mut self, path: &str) {
        if let Some(p) = self.nodes.get_mut(path::parent(path)) {
            if !p.children.contains(path::basename(path)) {
                p.children.insert(path::basename(path).to_string());
            }
        }
    }

    /// Removes `path` from its parent's child list (restore).
    fn unlink_child(&mut self, path: &str) {
        if let Some(p) = self.nodes.get_mut(path::parent(path)) {
            p.children.remove(path::basename(path));
        }
    }

    /// Containers that have had children and have none left, and TTL nodes
    /// without children whose TTL has passed since their last change
    /// (ZooKeeper's ContainerManager.getCandidates).
    pub fn reap_candidates(&self, now: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.children.is_empty() && n.is_reapable(now))
            .map(|(p, _)| p.clone())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests;
