//! One znode and the encoding of its kind in `ephemeralOwner`, which
//! ZooKeeper overloads: a session id for ephemerals, `0x8000…` for
//! containers and `0xFF…` plus the TTL for TTL nodes (`EphemeralType`).

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::records::{Acl, Stat};

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte of an extended `ephemeralOwner` (`EphemeralType.EXTENDED_MASK`).
const EXTENDED_MASK: u64 = 0xff00_0000_0000_0000;
/// Bits holding the TTL in a TTL node's `ephemeralOwner` (40 bits).
pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

/// What kind of node, decoded from `ephemeral_owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

impl NodeKind {
    pub fn owner_value(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(s) => s,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl) => (EXTENDED_MASK | (ttl as u64 & MAX_TTL_MS as u64)) as i64,
        }
    }

    pub fn from_owner_value(v: i64) -> NodeKind {
        if v == 0 {
            NodeKind::Persistent
        } else if v == CONTAINER_OWNER {
            NodeKind::Container
        } else if (v as u64) & EXTENDED_MASK == EXTENDED_MASK {
            NodeKind::Ttl(v & MAX_TTL_MS)
        } else {
            NodeKind::Ephemeral(v)
        }
    }
}

/// A node's ACL list, shared: nodes created with the same ACL (almost all
/// of them, usually `world:anyone`) point at one copy, as ZooKeeper's
/// `ReferenceCountedACLCache` does, instead of holding one each.
pub type AclList = Arc<Vec<Acl>>;

/// A znode. `Stat` fields that are derived (data length, child count) are
/// computed, not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` is ZooKeeper's null data, distinct from empty.
    pub data: Option<Vec<u8>>,
    pub acl: AclList,
    pub children: BTreeSet<String>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Child creates so far (ZooKeeper's stored cversion): the sequential
    /// suffix of the next child. Clients see [`Node::stat`]'s cversion.
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
}

impl Node {
    pub fn new(data: Option<Vec<u8>>, acl: AclList, ephemeral_owner: i64, zxid: i64, time: i64) -> Node {
        Node {
            data,
            acl,
            children: BTreeSet::new(),
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
        }
    }

    /// A copy without the child list (what multi saves for rollback).
    pub fn without_children(&self) -> Node {
        Node {
            data: self.data.clone(),
            acl: self.acl.clone(),
            children: BTreeSet::new(),
            ..*self
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len)
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner_value(self.ephemeral_owner)
    }

    pub fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            // DataNode.copyStat: the stored cversion counts child creates;
            // clients see creates + deletes = 2 * creates - children.
            cversion: self
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(self.children.len() as i32),
            aversion: self.aversion,
            // DataTree.getClientEphemeralOwner: clients see 0 for
            // containers and TTL nodes, the session only for ephemerals.
            ephemeral_owner: match self.kind() {
                NodeKind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: self.data_len() as i32,
            num_children: self.children.len() as i32,
            pzxid: self.pzxid,
        }
    }

    /// ContainerManager: a container is reaped once it has had a child and
    /// has none; a TTL node once `ttl` has passed since its last change.
    pub fn is_reapable(&self, now: i64) -> bool {
        match self.kind() {
            NodeKind::Container => self.cversion > 0,
            NodeKind::Ttl(ttl) => now > self.mtime.saturating_add(ttl),
            _ => false,
        }
    }
}
