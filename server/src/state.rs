//! The replicated state machine: data tree, session table and watch
//! manager, and the one function that changes them, [`State::apply`],
//! which every member runs on every committed entry in log order. Pure:
//! no clock (the entry carries the proposer's time), no I/O (watch events
//! are returned, not sent).
//!
//! Also the snapshot format of this state.

use std::collections::BTreeMap;

use proto::jute::{self, DecodeError, Reader, Record};
use proto::records::Acl;
use proto::response::ResponseBody;
use proto::ErrorCode;

use crate::membership::MemberInfo;
use crate::ops::{self, WriteCtx};
use crate::session::SessionTable;
use crate::tree::{AclList, Change, DataTree, Node};
use crate::txn::{Txn, TxnKind};
use crate::watch::{Notification, WatchManager};

#[derive(Default)]
pub struct State {
    pub tree: DataTree,
    pub sessions: SessionTable,
    pub watches: WatchManager,
    /// zxid of the last applied entry.
    pub last_zxid: i64,
    /// The ensemble's members and their addresses (empty when standalone),
    /// changed by configuration-change entries; part of snapshots so a
    /// restarted or new member knows whom to talk to.
    pub members: BTreeMap<u64, MemberInfo>,
}

/// The outcome of applying one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub zxid: i64,
    pub session_id: i64,
    pub err: ErrorCode,
    pub body: ResponseBody,
    /// Watch events to deliver, in order, each with the ACL of the node it
    /// is about: a session that may not READ it is not told.
    pub notifications: Vec<(Notification, AclList)>,
    /// A session that ended (closed or expired): its connection is closed.
    pub ended_session: Option<i64>,
}

impl State {
    pub fn new() -> State {
        State {
            tree: DataTree::new(),
            sessions: SessionTable::new(),
            watches: WatchManager::default(),
            last_zxid: 0,
            members: BTreeMap::new(),
        }
    }

    /// Applies a committed entry. `now_ms` is this member's clock, used only
    /// for session deadlines (which are local, not replicated).
    pub fn apply(&mut self, zxid: i64, txn: &Txn, now_ms: u64) -> Applied {
        self.last_zxid = zxid;
        let mut changes = Vec::new();
        let mut ended_session = None;
        let result = match &txn.kind {
            TxnKind::CreateSession { timeout_ms, password } => {
                self.sessions
                    .insert(txn.session_id, *timeout_ms, password.clone(), now_ms);
                self.sessions.set_owner(txn.session_id, txn.owner);
                Ok(ResponseBody::Empty)
            }
            TxnKind::Attach {
                password,
                expected_owner,
            } => {
                let current = self.sessions.get(txn.session_id).map(|s| s.owner);
                if !self.sessions.password_matches(txn.session_id, password) {
                    Err(ErrorCode::SessionExpired)
                } else if current != Some(*expected_owner) && current != Some(0) {
                    // Another connection attached the session after this
                    // attach was proposed: it stays the owner; this
                    // connection closes and the client retries.
                    Err(ErrorCode::SessionMoved)
                } else {
                    self.sessions.set_owner(txn.session_id, txn.owner);
                    Ok(ResponseBody::Empty)
                }
            }
            // A close sent on a connection the session has since left
            // (ZooKeeper: SessionMovedException) ends nothing.
            TxnKind::CloseSession if !self.sessions.owned_by(txn.session_id, txn.owner) => {
                Err(ErrorCode::SessionMoved)
            }
            TxnKind::CloseSession => {
                self.close_session(txn.session_id, zxid, &mut changes);
                ended_session = Some(txn.session_id);
                Ok(ResponseBody::Empty)
            }
            TxnKind::Write(req) => {
                if !self.sessions.contains(txn.session_id) {
                    Err(ErrorCode::SessionExpired)
                } else if !self.sessions.owned_by(txn.session_id, txn.owner) {
                    // Sent on a connection the session has left: applying
                    // it now would put it after the session's later
                    // requests (docs/ordering.md, "Session order across
                    // connections").
                    Err(ErrorCode::SessionMoved)
                } else {
                    let ctx = WriteCtx {
                        zxid,
                        time: txn.time_ms,
                        session: txn.session_id,
                        auth: &txn.auth,
                    };
                    ops::apply_write(self, &ctx, req, &mut changes)
                }
            }
            TxnKind::Reap { path } => {
                let reapable = self
                    .tree
                    .get(path)
                    .is_some_and(|n| n.children.is_empty() && n.is_reapable(txn.time_ms));
                if reapable {
                    self.tree
                        .delete(path, zxid, &mut changes)
                        .map(|_| ResponseBody::Empty)
                } else {
                    Err(ErrorCode::NoNode)
                }
            }
        };
        let notifications = self.fire(&changes);
        let (err, body) = match result {
            Ok(b) => (ErrorCode::Ok, b),
            Err(e) => (e, ResponseBody::Empty),
        };
        Applied {
            zxid,
            session_id: txn.session_id,
            err,
            body,
            notifications,
            ended_session,
        }
    }

    /// Rewrites `/zookeeper/config` from the member list, in ZooKeeper's
    /// dynamic-config format with version `zxid` (ops/reconfig.rs): on
    /// every member when a membership change applies, and at founding.
    /// Returns the watch events of the change. A standalone server (no
    /// members) keeps the node empty, as ZooKeeper does.
    pub fn refresh_config(&mut self, zxid: i64) -> Vec<(Notification, AclList)> {
        if self.members.is_empty() {
            return Vec::new();
        }
        let path = ops::reconfig::CONFIG_NODE;
        let data = ops::reconfig::render(&self.members, zxid).into_bytes();
        // Conf-change entries carry no time; keep the node's, so every
        // member writes the same stat.
        let time = self.tree.get(path).map_or(0, |n| n.mtime);
        let mut changes = Vec::new();
        if self
            .tree
            .set_data(path, Some(data), zxid, time, &mut changes)
            .is_err()
        {
            return Vec::new();
        }
        self.last_zxid = self.last_zxid.max(zxid);
        self.fire(&changes)
    }

    /// Deletes the session's ephemerals and forgets it and its watches.
    fn close_session(&mut self, session: i64, zxid: i64, changes: &mut Vec<Change>) {
        self.watches.remove_session(session);
        for p in self.tree.ephemerals_of(session) {
            let _ = self.tree.delete(&p, zxid, changes);
        }
        self.sessions.remove(session);
    }

    /// Turns tree changes into watch notifications (DataTree's
    /// triggerWatch calls).
    fn fire(&mut self, changes: &[Change]) -> Vec<(Notification, AclList)> {
        let mut out = Vec::new();
        for c in changes {
            let fired = match c {
                Change::Created(p) => self.watches.node_created(p),
                Change::Deleted(p, _) => self.watches.node_deleted(p),
                Change::DataChanged(p) => self.watches.node_data_changed(p),
                Change::ChildrenChanged(p) => self.watches.node_children_changed(p),
            };
            // Most changes fire nothing; look the ACL up only when one does.
            if fired.is_empty() {
                continue;
            }
            let acl = match c {
                Change::Deleted(_, acl) => acl.clone(),
                // NIOServerCnxn.process: a child event is checked against
                // the parent's ACL, the node it is about.
                Change::Created(p) | Change::DataChanged(p) | Change::ChildrenChanged(p) => {
                    self.acl_of(p, changes)
                }
            };
            out.extend(fired.into_iter().map(|n| (n, acl.clone())));
        }
        out
    }

    /// The ACL of `path` now, or, if a multi deleted it again, the one it
    /// had when deleted.
    fn acl_of(&self, path: &str, changes: &[Change]) -> AclList {
        if let Some(n) = self.tree.get(path) {
            return n.acl.clone();
        }
        changes
            .iter()
            .find_map(|c| match c {
                Change::Deleted(p, acl) if p == path => Some(acl.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Serializes the tree and sessions (watches are per connection and are
    /// re-registered by clients; deadlines are local).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        // This runs under the state lock, stopping reads and writes: size
        // the buffer once (paths, data, and about 120 bytes of ACL, stat and
        // lengths per node) instead of growing it by copies.
        let estimate = self.tree.approximate_data_size() as usize + self.tree.node_count() * 120 + 4096;
        let mut out = Vec::with_capacity(estimate);
        out.push(SNAPSHOT_VERSION);
        jute::write_i64(&mut out, self.last_zxid);
        jute::write_i32(&mut out, self.tree.node_count() as i32);
        let mut nodes: Vec<_> = self.tree.iter().collect();
        // Paths are unique, so an unstable sort gives the same order.
        nodes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (path, n) in nodes {
            jute::write_string(&mut out, path);
            match &n.data {
                Some(d) => jute::write_buffer(&mut out, d),
                None => jute::write_i32(&mut out, -1),
            }
            jute::write_i32(&mut out, n.acl.len() as i32);
            for a in n.acl.iter() {
                a.write(&mut out);
            }
            for v in [n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime, n.ephemeral_owner] {
                jute::write_i64(&mut out, v);
            }
            for v in [n.version, n.cversion, n.aversion] {
                jute::write_i32(&mut out, v);
            }
        }
        let sessions: Vec<_> = self.sessions.iter().collect();
        jute::write_i32(&mut out, sessions.len() as i32);
        for s in sessions {
            jute::write_i64(&mut out, s.id);
            jute::write_i32(&mut out, s.timeout_ms as i32);
            jute::write_buffer(&mut out, &s.password);
            jute::write_i64(&mut out, s.owner as i64);
        }
        jute::write_i32(&mut out, self.members.len() as i32);
        for m in self.members.values() {
            crate::membership::encode_member(&mut out, m);
        }
        out
    }

    /// Rebuilds the state from a snapshot; every session gets a full
    /// timeout from `now_ms`.
    pub fn decode_snapshot(buf: &[u8], now_ms: u64) -> Result<State, DecodeError> {
        let (&v, rest) = buf.split_first().ok_or(DecodeError::Truncated { needed: 1 })?;
        // Version 1 had no member list, version 2 no session owners.
        if !(1..=SNAPSHOT_VERSION).contains(&v) {
            return Err(DecodeError::Invalid("unknown snapshot format version"));
        }
        let mut r = Reader::new(rest);
        let last_zxid = r.read_i64()?;
        let count = r.read_i32()?;
        let mut tree = DataTree::empty();
        let mut paths = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count {
            let path = r.read_string()?;
            let data = r.read_nullable_buffer()?;
            let acl: Vec<Acl> = r.read_vec()?;
            let acl = tree.intern_acl(acl);
            let mut n = Node::new(data, acl, 0, 0, 0);
            n.czxid = r.read_i64()?;
            n.mzxid = r.read_i64()?;
            n.pzxid = r.read_i64()?;
            n.ctime = r.read_i64()?;
            n.mtime = r.read_i64()?;
            n.ephemeral_owner = r.read_i64()?;
            n.version = r.read_i32()?;
            n.cversion = r.read_i32()?;
            n.aversion = r.read_i32()?;
            tree.insert_raw(path.clone(), n);
            paths.push(path);
        }
        for p in &paths {
            if p != "/" {
                tree.link_child(p);
            }
        }
        let mut sessions = SessionTable::new();
        let count = r.read_i32()?;
        for _ in 0..count {
            let id = r.read_i64()?;
            let timeout = r.read_i32()? as u32;
            let password = r.read_buffer()?;
            let owner = if v >= 3 { r.read_i64()? as u64 } else { 0 };
            sessions.insert(id, timeout, password, now_ms);
            sessions.set_owner(id, owner);
        }
        let mut members = BTreeMap::new();
        if v >= 2 {
            let count = r.read_i32()?;
            for _ in 0..count {
                let m = crate::membership::decode_member(&mut r)?;
                members.insert(m.id, m);
            }
        }
        r.finish()?;
        for (s, _) in tree.all_ephemerals() {
            if !sessions.contains(s) {
                return Err(DecodeError::Invalid("ephemeral owned by an unknown session"));
            }
        }
        Ok(State {
            tree,
            sessions,
            watches: WatchManager::default(),
            last_zxid,
            members,
        })
    }
}

const SNAPSHOT_VERSION: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::AuthInfo;
    use proto::opcode::OpCode;
    use proto::records::{create_mode, CreateRequest};
    use proto::request::{Request, RequestBody};

    fn txn(session: i64, kind: TxnKind) -> Txn {
        Txn {
            origin: 1,
            proposal: 0,
            session_id: session,
            owner: 0,
            time_ms: 1000,
            auth: AuthInfo::new(None),
            kind,
        }
    }

    fn create(path: &str, flags: i32) -> TxnKind {
        TxnKind::Write(Request {
            xid: 1,
            op: OpCode::Create,
            body: RequestBody::Create(CreateRequest {
                path: path.into(),
                data: Some(b"v".to_vec()),
                acl: crate::acl::open_acl_unsafe(),
                flags,
            }),
        })
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals_and_fires_watches() {
        let mut s = State::new();
        let open = |_id: i64| TxnKind::CreateSession {
            timeout_ms: 5000,
            password: vec![1; 16],
        };
        s.apply(1, &txn(7, open(7)), 0);
        s.apply(2, &txn(8, open(8)), 0);
        assert_eq!(
            s.apply(3, &txn(7, create("/e", create_mode::EPHEMERAL)), 0).err,
            ErrorCode::Ok
        );
        s.watches.add_data_watch(8, "/e");
        let a = s.apply(4, &txn(7, TxnKind::CloseSession), 0);
        assert_eq!(a.ended_session, Some(7));
        assert!(!s.tree.contains("/e"));
        assert_eq!(a.notifications.len(), 1);
        assert_eq!(a.notifications[0].0.session, 8);
        // A write from a closed session is refused.
        assert_eq!(
            s.apply(5, &txn(7, create("/x", 0)), 0).err,
            ErrorCode::SessionExpired
        );
        assert_eq!(s.last_zxid, 5);
    }

    #[test]
    fn writes_from_a_connection_the_session_left_are_refused() {
        let mut s = State::new();
        let on = |owner: u64, kind: TxnKind| Txn {
            owner,
            ..txn(7, kind)
        };
        let password = vec![1; 16];
        let open = TxnKind::CreateSession {
            timeout_ms: 5000,
            password: password.clone(),
        };
        s.apply(1, &on(0xa, open), 0);
        assert_eq!(s.apply(2, &on(0xa, create("/a", 0)), 0).err, ErrorCode::Ok);
        // Reattached on connection 0xb, with a wrong password first.
        let attach = |password: Vec<u8>| TxnKind::Attach {
            password,
            expected_owner: 0xa,
        };
        assert_eq!(
            s.apply(3, &on(0xb, attach(vec![2; 16])), 0).err,
            ErrorCode::SessionExpired
        );
        assert_eq!(s.apply(4, &on(0xa, create("/b", 0)), 0).err, ErrorCode::Ok);
        assert_eq!(s.apply(5, &on(0xb, attach(password)), 0).err, ErrorCode::Ok);
        // The old connection's late write and close are refused.
        assert_eq!(
            s.apply(6, &on(0xa, create("/c", 0)), 0).err,
            ErrorCode::SessionMoved
        );
        assert!(!s.tree.contains("/c"));
        let close = s.apply(7, &on(0xa, TxnKind::CloseSession), 0);
        assert_eq!((close.err, close.ended_session), (ErrorCode::SessionMoved, None));
        assert!(s.sessions.contains(7));
        // The new one's go through; so does the leader's expiry (owner 0).
        assert_eq!(s.apply(8, &on(0xb, create("/d", 0)), 0).err, ErrorCode::Ok);
        // An attach proposed while 0xa owned it, applied after 0xb attached
        // (it sat in a forward queue), leaves the session with 0xb.
        let stale = TxnKind::Attach {
            password: vec![1; 16],
            expected_owner: 0xa,
        };
        assert_eq!(s.apply(81, &on(0xc, stale), 0).err, ErrorCode::SessionMoved);
        assert_eq!(s.sessions.get(7).unwrap().owner, 0xb);
        assert_eq!(s.apply(82, &on(0xb, create("/e", 0)), 0).err, ErrorCode::Ok);
        // The owner survives a snapshot.
        let r = State::decode_snapshot(&s.encode_snapshot(), 0).unwrap();
        assert_eq!(r.sessions.get(7).unwrap().owner, 0xb);
        assert_eq!(s.apply(9, &on(0, TxnKind::CloseSession), 0).err, ErrorCode::Ok);
        assert!(!s.sessions.contains(7));
    }

    #[test]
    fn snapshot_round_trips_tree_and_sessions() {
        let mut s = State::new();
        s.apply(
            1,
            &txn(
                7,
                TxnKind::CreateSession {
                    timeout_ms: 5000,
                    password: vec![1; 16],
                },
            ),
            0,
        );
        s.apply(2, &txn(7, create("/a", 0)), 0);
        s.apply(3, &txn(7, create("/a/e", create_mode::EPHEMERAL_SEQUENTIAL)), 0);
        let snap = s.encode_snapshot();
        let r = State::decode_snapshot(&snap, 0).unwrap();
        assert_eq!(r.last_zxid, 3);
        assert_eq!(r.tree.node_count(), s.tree.node_count());
        assert_eq!(r.tree.stat("/a"), s.tree.stat("/a"));
        assert_eq!(r.tree.ephemerals_of(7), vec!["/a/e0000000000".to_string()]);
        assert_eq!(r.tree.approximate_data_size(), s.tree.approximate_data_size());
        assert!(r.sessions.contains(7));
        assert_eq!(r.encode_snapshot(), snap);
        for cut in [0, 1, snap.len() / 2, snap.len() - 1] {
            assert!(State::decode_snapshot(&snap[..cut], 0).is_err());
        }
    }
}
