//! The server-side watch manager: one-time, persistent and persistent
//! recursive watches, with ZooKeeper 3.9 semantics (`server/watch/
//! WatchManager.java` + `WatchStats.java`, and how `DataTree` drives its
//! two managers `dataWatches` and `childWatches`).
//!
//! Owns: which session watches which path in which mode, and which
//! sessions a change notifies. Must not: do I/O, look at the data tree or
//! ACLs, or know about connections. A "watcher" here is a session id; the
//! caller keeps watches only for sessions connected to this member (as in
//! ZooKeeper, watches are per-server, not replicated) and calls
//! [`WatchManager::remove_session`] when the connection goes away.
//!
//! # Two tables
//! Like `DataTree`, there is a data table (`getData`/`exists` watches,
//! persistent and recursive watches) and a child table (`getChildren`
//! watches and persistent watches). `addWatch` puts a persistent watch in
//! both tables and a recursive one in the data table only
//! (`DataTree.addWatch`), so recursive watches never see
//! `NodeChildrenChanged`.
//!
//! # Modes per (session, path)
//! Each table keeps a *set* of modes per (session, path), as ZooKeeper
//! 3.9 does since ZOOKEEPER-4466 (`WatchStats`). A standard watch and a
//! persistent watch by the same session on the same path coexist: a
//! trigger notifies the session once, drops the standard mode and keeps the
//! persistent one; `removeWatches(Data)` drops only the standard mode.
//! ZooKeeper 3.8 (`WatcherModeManager`) kept a single mode per
//! (watcher, path), so there a `getData(watch)` after `addWatch(PERSISTENT)`
//! downgraded the persistent watch to a one-shot one (the bug 4466 fixed);
//! we deliberately follow the fixed behaviour.
//!
//! # Triggering (`WatchManager.triggerWatch`)
//! Every session with any mode on the changed path itself is notified and
//! loses its standard mode (a (session, path) with no mode left is
//! removed). Then, only if the table holds at least one recursive watch
//! (ZooKeeper's `recursiveWatchQty`, so the common case costs one lookup),
//! the ancestors of the path are visited and sessions with a recursive
//! watch there are notified. A session is notified at most once per
//! trigger. Persistent watches survive the deletion of their node.
//!
//! # What the caller still does
//! - Filter each notification by the READ permission of the node's ACL
//!   (the parent's ACL for `NodeChildrenChanged`) with
//!   [`crate::acl::check`]: ZooKeeper (3.8.4+, 3.9.2+) drops, in
//!   `NIOServerCnxn.process(WatchedEvent, List<ACL>)`, events the session
//!   may not read. The one-shot watch is consumed even when the event is
//!   dropped.
//! - Send each event with xid -1 and the zxid of the change.
//! - `removeWatches` sends no event from the server: the client library
//!   generates `DataWatchRemoved`/`ChildWatchRemoved` locally
//!   (`FinalRequestProcessor` only replies OK or `NoWatcher`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proto::records::WatcherEvent;
use proto::watch::{AddWatchMode, EventType, KeeperState, WatcherType};
use proto::ErrorCode;

use crate::path;

pub type SessionId = i64;

/// One watch mode (`WatcherMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// One-time watch set by `getData`/`exists`/`getChildren`.
    Standard,
    /// `addWatch(PERSISTENT)`: fires on every change of the path, stays.
    Persistent,
    /// `addWatch(PERSISTENT_RECURSIVE)`: fires on the path and every
    /// descendant (not for `NodeChildrenChanged`), stays.
    PersistentRecursive,
}

impl WatchMode {
    /// The bit in a [`Modes`] set (`WatchStats` flags: `1 << ordinal`).
    const fn bit(self) -> u8 {
        match self {
            WatchMode::Standard => 1,
            WatchMode::Persistent => 2,
            WatchMode::PersistentRecursive => 4,
        }
    }
}

impl From<AddWatchMode> for WatchMode {
    fn from(mode: AddWatchMode) -> Self {
        match mode {
            AddWatchMode::Persistent => WatchMode::Persistent,
            AddWatchMode::PersistentRecursive => WatchMode::PersistentRecursive,
        }
    }
}

/// A set of [`WatchMode`]s as bit flags; never stored empty.
type Modes = u8;
const ALL_MODES: Modes = 1 | 2 | 4;
const RECURSIVE: Modes = WatchMode::PersistentRecursive.bit();

/// A watch event for one session. `event.state` is always SyncConnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub session: SessionId,
    pub event: WatcherEvent,
}

impl Notification {
    fn new(session: SessionId, type_: EventType, path: &str) -> Self {
        Notification {
            session,
            event: WatcherEvent {
                type_: type_ as i32,
                state: KeeperState::SyncConnected as i32,
                path: path.to_string(),
            },
        }
    }
}

/// `WatchesSummary`, the numbers `wchs` prints (data table only, as
/// ZooKeeper's `DataTree.getWatchesSummary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchesSummary {
    /// Sessions with at least one watch.
    pub num_connections: usize,
    /// Paths with at least one watch.
    pub num_paths: usize,
    /// (session, path) pairs.
    pub total_watches: usize,
}

/// One of ZooKeeper's two `WatchManager`s.
#[derive(Default, Debug)]
struct Table {
    /// `watchTable`: path → session → modes.
    by_path: HashMap<String, HashMap<SessionId, Modes>>,
    /// `watch2Paths`: session → paths (modes live in `by_path`).
    by_session: HashMap<SessionId, HashSet<String>>,
    /// `recursiveWatchQty`: (session, path) entries with the recursive mode.
    recursive: usize,
}

impl Table {
    fn modes(&self, session: SessionId, path: &str) -> Modes {
        self.by_path
            .get(path)
            .and_then(|w| w.get(&session))
            .copied()
            .unwrap_or(0)
    }

    /// `addWatch`: adds `mode` to the session's set on `path`.
    fn add(&mut self, session: SessionId, path: &str, mode: WatchMode) {
        let watchers = self.by_path.entry(path.to_string()).or_default();
        let modes = watchers.entry(session).or_insert(0);
        if *modes == 0 {
            self.by_session
                .entry(session)
                .or_default()
                .insert(path.to_string());
        }
        if mode == WatchMode::PersistentRecursive && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode.bit();
    }

    /// `containsWatcher(path, watcher, mode)`: `mask` is the modes asked
    /// about (`ALL_MODES` for ZooKeeper's `null`).
    fn contains(&self, session: SessionId, path: &str, mask: Modes) -> bool {
        self.modes(session, path) & mask != 0
    }

    /// `removeWatcher(path, watcher, mode)`: clears `mask` from the
    /// session's set; true if anything was cleared.
    fn remove(&mut self, session: SessionId, path: &str, mask: Modes) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = watchers.get_mut(&session) else {
            return false;
        };
        let old = *modes;
        let new = old & !mask;
        if old == new {
            return false;
        }
        if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
            self.recursive -= 1;
        }
        if new == 0 {
            watchers.remove(&session);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            self.unlink(session, path);
        } else {
            *modes = new;
        }
        true
    }

    /// Drops `path` from the session's reverse index.
    fn unlink(&mut self, session: SessionId, path: &str) {
        if let Some(paths) = self.by_session.get_mut(&session) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    /// `removeWatcher(watcher)`: every watch of the session.
    fn remove_session(&mut self, session: SessionId) {
        let Some(paths) = self.by_session.remove(&session) else {
            return;
        };
        for p in paths {
            if let Some(watchers) = self.by_path.get_mut(&p) {
                if let Some(modes) = watchers.remove(&session) {
                    if modes & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if watchers.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// `triggerWatch`: the sessions to notify for a change at `path`,
    /// sorted and distinct; consumes standard watches on `path`.
    fn trigger(&mut self, path: &str) -> BTreeSet<SessionId> {
        let mut fired = BTreeSet::new();
        if let Some(watchers) = self.by_path.get_mut(path) {
            let mut emptied = Vec::new();
            for (&session, modes) in watchers.iter_mut() {
                fired.insert(session);
                *modes &= !WatchMode::Standard.bit();
                if *modes == 0 {
                    emptied.push(session);
                }
            }
            for session in &emptied {
                watchers.remove(session);
            }
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            for session in emptied {
                self.unlink(session, path);
            }
        }
        if self.recursive > 0 {
            for ancestor in path::ancestors(path) {
                if let Some(watchers) = self.by_path.get(ancestor) {
                    fired.extend(
                        watchers
                            .iter()
                            .filter(|(_, &m)| m & RECURSIVE != 0)
                            .map(|(&s, _)| s),
                    );
                }
            }
        }
        fired
    }

    /// `size()`: (path, session) pairs.
    fn size(&self) -> usize {
        self.by_path.values().map(HashMap::len).sum()
    }
}

/// The watch manager of one server: ZooKeeper's `dataWatches` and
/// `childWatches` together.
#[derive(Default, Debug)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// `getData`/`exists` with watch (`exists` on a missing node too): a
    /// one-time watch in the data table.
    pub fn add_data_watch(&mut self, session: SessionId, path: &str) {
        self.data.add(session, path, WatchMode::Standard);
    }

    /// `getChildren` with watch: a one-time watch in the child table.
    pub fn add_child_watch(&mut self, session: SessionId, path: &str) {
        self.child.add(session, path, WatchMode::Standard);
    }

    /// `addWatch` (`DataTree.addWatch`): the data table always, the child
    /// table unless recursive. Also what `setWatches2` does for its
    /// persistent and recursive lists.
    pub fn add_persistent(&mut self, session: SessionId, path: &str, mode: AddWatchMode) {
        let mode = WatchMode::from(mode);
        self.data.add(session, path, mode);
        if mode != WatchMode::PersistentRecursive {
            self.child.add(session, path, mode);
        }
    }

    /// Node created at `path`: `NodeCreated` from the data table for the
    /// path (and recursive watches on its ancestors). The caller also calls
    /// [`Self::node_children_changed`] for the parent (`DataTree.createNode`).
    pub fn node_created(&mut self, path: &str) -> Vec<Notification> {
        Self::notify(self.data.trigger(path), EventType::NodeCreated, path)
    }

    /// `setData`: `NodeDataChanged` from the data table.
    pub fn node_data_changed(&mut self, path: &str) -> Vec<Notification> {
        Self::notify(self.data.trigger(path), EventType::NodeDataChanged, path)
    }

    /// Node deleted (`DataTree.deleteNode`): `NodeDeleted` from the data
    /// table, then from the child table suppressing sessions already
    /// notified (each session gets one event; the child table's one-time
    /// watches on the path are consumed either way). The caller also calls
    /// [`Self::node_children_changed`] for the parent.
    pub fn node_deleted(&mut self, path: &str) -> Vec<Notification> {
        let from_data = self.data.trigger(path);
        let from_child = self.child.trigger(path);
        let mut out = Self::notify(from_data.iter().copied(), EventType::NodeDeleted, path);
        out.extend(Self::notify(
            from_child.difference(&from_data).copied(),
            EventType::NodeDeleted,
            path,
        ));
        out
    }

    /// `NodeChildrenChanged` from the child table on `parent_path`. The
    /// child table holds no recursive watches, so only the path itself is
    /// looked at.
    pub fn node_children_changed(&mut self, parent_path: &str) -> Vec<Notification> {
        Self::notify(
            self.child.trigger(parent_path),
            EventType::NodeChildrenChanged,
            parent_path,
        )
    }

    fn notify(
        sessions: impl IntoIterator<Item = SessionId>,
        type_: EventType,
        path: &str,
    ) -> Vec<Notification> {
        sessions
            .into_iter()
            .map(|s| Notification::new(s, type_, path))
            .collect()
    }

    /// `removeWatches` (`remove == true`, `DataTree.removeWatch`) and
    /// `checkWatches` (`remove == false`, `DataTree.containsWatcher`):
    ///
    /// | kind                | checks / removes                               |
    /// |---------------------|------------------------------------------------|
    /// | Children            | standard mode in the child table               |
    /// | Data                | standard mode in the data table                |
    /// | Persistent          | persistent mode (check: data table; remove: both tables) |
    /// | PersistentRecursive | recursive mode in the data table               |
    /// | Any                 | every mode in both tables                      |
    ///
    /// `Err(NoWatcher)` if there was nothing to find/remove. No events are
    /// produced: the client generates `*WatchRemoved` itself.
    pub fn remove_watches(
        &mut self,
        session: SessionId,
        path: &str,
        kind: WatcherType,
        remove: bool,
    ) -> Result<(), ErrorCode> {
        let std = WatchMode::Standard.bit();
        let per = WatchMode::Persistent.bit();
        let found = if remove {
            match kind {
                WatcherType::Children => self.child.remove(session, path, std),
                WatcherType::Data => self.data.remove(session, path, std),
                WatcherType::Persistent => {
                    let c = self.child.remove(session, path, per);
                    let d = self.data.remove(session, path, per);
                    c || d
                }
                WatcherType::PersistentRecursive => self.data.remove(session, path, RECURSIVE),
                WatcherType::Any => {
                    let c = self.child.remove(session, path, ALL_MODES);
                    let d = self.data.remove(session, path, ALL_MODES);
                    c || d
                }
            }
        } else {
            match kind {
                WatcherType::Children => self.child.contains(session, path, std),
                WatcherType::Data => self.data.contains(session, path, std),
                WatcherType::Persistent => self.data.contains(session, path, per),
                WatcherType::PersistentRecursive => self.data.contains(session, path, RECURSIVE),
                WatcherType::Any => {
                    self.child.contains(session, path, ALL_MODES)
                        || self.data.contains(session, path, ALL_MODES)
                }
            }
        };
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// The modes the session holds on `path` in the data table and in the
    /// child table (for diagnostics and tests).
    pub fn modes(&self, session: SessionId, path: &str) -> (Vec<WatchMode>, Vec<WatchMode>) {
        let list = |m: Modes| {
            [
                WatchMode::Standard,
                WatchMode::Persistent,
                WatchMode::PersistentRecursive,
            ]
            .into_iter()
            .filter(|w| m & w.bit() != 0)
            .collect()
        };
        (
            list(self.data.modes(session, path)),
            list(self.child.modes(session, path)),
        )
    }

    /// Connection closed / session ended (`DataTree.removeCnxn`).
    pub fn remove_session(&mut self, session: SessionId) {
        self.data.remove_session(session);
        self.child.remove_session(session);
    }

    /// mntr's `zk_watch_count` (`DataTree.getWatchCount`): (path, session)
    /// pairs summed over both tables.
    pub fn watch_count(&self) -> usize {
        self.data.size() + self.child.size()
    }

    /// `wchc`: session → watched paths, both sorted. Like ZooKeeper's
    /// `DataTree.dumpWatches`, this reports the data table only (child
    /// watches from `getChildren` are not listed).
    pub fn by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        let sorted: BTreeMap<SessionId, Vec<String>> = self
            .data
            .by_session
            .iter()
            .map(|(&s, paths)| {
                let mut v: Vec<String> = paths.iter().cloned().collect();
                v.sort();
                (s, v)
            })
            .collect();
        sorted.into_iter().collect()
    }

    /// `wchp`: path → watching sessions, both sorted (data table only, see
    /// [`Self::by_session`]).
    pub fn by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        let sorted: BTreeMap<&String, Vec<SessionId>> = self
            .data
            .by_path
            .iter()
            .map(|(p, watchers)| {
                let mut v: Vec<SessionId> = watchers.keys().copied().collect();
                v.sort_unstable();
                (p, v)
            })
            .collect();
        sorted.into_iter().map(|(p, v)| (p.clone(), v)).collect()
    }

    /// `wchs`'s "watching N paths" (data table only).
    pub fn paths_watched(&self) -> usize {
        self.data.by_path.len()
    }

    /// `wchs` / the admin `watch_summary` (data table only).
    pub fn summary(&self) -> WatchesSummary {
        WatchesSummary {
            num_connections: self.data.by_session.len(),
            num_paths: self.data.by_path.len(),
            total_watches: self.data.size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = 0xA;
    const B: SessionId = 0xB;
    const C: SessionId = 0xC;

    fn sessions(n: &[Notification]) -> Vec<SessionId> {
        n.iter().map(|n| n.session).collect()
    }

    fn ev(session: SessionId, t: EventType, path: &str) -> Notification {
        Notification::new(session, t, path)
    }

    /// Internal invariants: both indexes agree and the recursive counter
    /// equals the number of recursive entries.
    fn assert_consistent(w: &WatchManager) {
        for t in [&w.data, &w.child] {
            let mut pairs = 0;
            let mut rec = 0;
            for (p, ws) in &t.by_path {
                assert!(!ws.is_empty(), "empty watcher set kept for {p}");
                for (s, m) in ws {
                    assert_ne!(*m, 0);
                    assert!(t.by_session[s].contains(p));
                    pairs += 1;
                    rec += usize::from(m & RECURSIVE != 0);
                }
            }
            let back: usize = t.by_session.values().map(HashSet::len).sum();
            assert_eq!(pairs, back);
            assert_eq!(rec, t.recursive);
        }
    }

    #[test]
    fn standard_data_watch_fires_once() {
        // WatchManager.triggerWatch: STANDARD mode removed after firing.
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        assert_eq!(
            w.node_data_changed("/a"),
            vec![ev(A, EventType::NodeDataChanged, "/a")]
        );
        assert_eq!(w.node_data_changed("/a"), vec![]);
        assert_eq!(w.watch_count(), 0);
        assert_consistent(&w);
    }

    #[test]
    fn event_carries_sync_connected_state() {
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        let n = w.node_data_changed("/a");
        assert_eq!(n[0].event.state, 3);
        assert_eq!(n[0].event.type_, 3);
        assert_eq!(n[0].event.path, "/a");
    }

    #[test]
    fn exists_watch_on_missing_node_fires_node_created() {
        // DataTree.statNode adds the data watch before looking the node up.
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/new");
        assert_eq!(
            w.node_created("/new"),
            vec![ev(A, EventType::NodeCreated, "/new")]
        );
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn same_watch_twice_is_one_watch() {
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        w.add_data_watch(A, "/a");
        assert_eq!(w.watch_count(), 1);
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
    }

    #[test]
    fn child_watch_fires_on_children_changed_only() {
        // DataTree: getChildren watches live in childWatches; setData and
        // create of the node itself only trigger dataWatches.
        let mut w = WatchManager::new();
        w.add_child_watch(A, "/p");
        assert_eq!(w.node_data_changed("/p"), vec![]);
        assert_eq!(w.node_created("/p"), vec![]);
        assert_eq!(
            w.node_children_changed("/p"),
            vec![ev(A, EventType::NodeChildrenChanged, "/p")]
        );
        assert_eq!(w.node_children_changed("/p"), vec![]);
    }

    #[test]
    fn data_watch_does_not_fire_on_children_changed() {
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/p");
        assert_eq!(w.node_children_changed("/p"), vec![]);
        assert_eq!(w.watch_count(), 1);
    }

    #[test]
    fn delete_notifies_data_and_child_watchers_once_each() {
        // DataTree.deleteNode: dataWatches.triggerWatch, then childWatches
        // with the first result as the suppress set.
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        w.add_child_watch(A, "/a");
        w.add_child_watch(B, "/a");
        let n = w.node_deleted("/a");
        assert_eq!(
            n,
            vec![
                ev(A, EventType::NodeDeleted, "/a"),
                ev(B, EventType::NodeDeleted, "/a"),
            ]
        );
        // A's child watch was consumed even though its event was suppressed.
        assert_eq!(w.watch_count(), 0);
        assert_consistent(&w);
    }

    #[test]
    fn persistent_watch_fires_every_time_and_stays() {
        // WatcherMode.PERSISTENT: removeMode(STANDARD) leaves it in place.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        for _ in 0..3 {
            assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
        }
        assert_eq!(sessions(&w.node_children_changed("/a")), vec![A]);
        assert_eq!(sessions(&w.node_children_changed("/a")), vec![A]);
        assert_eq!(sessions(&w.node_deleted("/a")), vec![A]);
        // Survives the deletion: a re-create is reported.
        assert_eq!(sessions(&w.node_created("/a")), vec![A]);
        // In both tables (DataTree.addWatch).
        assert_eq!(w.watch_count(), 2);
        assert_consistent(&w);
    }

    #[test]
    fn persistent_watch_is_not_recursive() {
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        assert_eq!(w.node_created("/a/b"), vec![]);
        assert_eq!(w.node_data_changed("/a/b"), vec![]);
        assert_eq!(w.node_deleted("/a/b"), vec![]);
    }

    #[test]
    fn recursive_watch_fires_for_path_and_descendants() {
        // PathParentIterator.forAll + hasMode(PERSISTENT_RECURSIVE) at parents.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        assert_eq!(
            w.node_created("/a/b/c"),
            vec![ev(A, EventType::NodeCreated, "/a/b/c")]
        );
        assert_eq!(
            w.node_data_changed("/a/b"),
            vec![ev(A, EventType::NodeDataChanged, "/a/b")]
        );
        assert_eq!(
            w.node_deleted("/a/b/c"),
            vec![ev(A, EventType::NodeDeleted, "/a/b/c")]
        );
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
        assert_eq!(sessions(&w.node_deleted("/a")), vec![A]);
        // Not siblings that merely share a prefix.
        assert_eq!(w.node_created("/ab"), vec![]);
        assert_eq!(w.node_created("/"), vec![]);
        // Only in the data table.
        assert_eq!(w.watch_count(), 1);
        assert_consistent(&w);
    }

    #[test]
    fn recursive_watch_never_gets_children_changed() {
        // DataTree.addWatch: PERSISTENT_RECURSIVE is not added to childWatches.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        assert_eq!(w.node_children_changed("/a"), vec![]);
        assert_eq!(w.node_children_changed("/a/b"), vec![]);
    }

    #[test]
    fn recursive_on_root_sees_everything() {
        let mut w = WatchManager::new();
        w.add_persistent(A, "/", AddWatchMode::PersistentRecursive);
        assert_eq!(sessions(&w.node_created("/x")), vec![A]);
        assert_eq!(sessions(&w.node_data_changed("/x/y/z")), vec![A]);
        assert_eq!(sessions(&w.node_data_changed("/")), vec![A]);
    }

    #[test]
    fn session_notified_once_even_when_matching_several_ways() {
        // triggerWatch collects watchers into a set.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/", AddWatchMode::PersistentRecursive);
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        w.add_persistent(A, "/a/b", AddWatchMode::Persistent);
        w.add_data_watch(A, "/a/b");
        w.add_data_watch(B, "/a/b");
        assert_eq!(sessions(&w.node_data_changed("/a/b")), vec![A, B]);
        // Deleted: A in data table (and child table via persistent) → once.
        w.add_child_watch(C, "/a/b");
        assert_eq!(sessions(&w.node_deleted("/a/b")), vec![A, C]);
        assert_consistent(&w);
    }

    #[test]
    fn standard_and_persistent_on_same_path_coexist() {
        // ZooKeeper 3.9 WatchStats (ZOOKEEPER-4466): modes are a set. The
        // trigger drops only STANDARD; 3.8's WatcherModeManager would have
        // downgraded the persistent watch to standard here.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        w.add_data_watch(A, "/a");
        assert_eq!(
            w.modes(A, "/a").0,
            vec![WatchMode::Standard, WatchMode::Persistent]
        );
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
        assert_eq!(w.modes(A, "/a").0, vec![WatchMode::Persistent]);
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
        // And in the other order.
        w.add_data_watch(B, "/b");
        w.add_persistent(B, "/b", AddWatchMode::Persistent);
        assert_eq!(sessions(&w.node_data_changed("/b")), vec![B]);
        assert_eq!(sessions(&w.node_data_changed("/b")), vec![B]);
        assert_consistent(&w);
    }

    #[test]
    fn persistent_and_recursive_on_same_path_coexist() {
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        assert_eq!(sessions(&w.node_created("/a/b")), vec![A]);
        assert_eq!(sessions(&w.node_children_changed("/a")), vec![A]);
        // Removing the recursive mode keeps the persistent one.
        w.remove_watches(A, "/a", WatcherType::PersistentRecursive, true)
            .unwrap();
        assert_eq!(w.node_created("/a/b"), vec![]);
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![A]);
        assert_eq!(w.data.recursive, 0);
        assert_consistent(&w);
    }

    #[test]
    fn ancestors_are_walked_only_while_a_recursive_watch_exists() {
        // recursiveWatchQty == 0 → PathParentIterator.forPathOnly.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        assert_eq!(w.data.recursive, 1);
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        assert_eq!(w.data.recursive, 1, "same mode twice counts once");
        w.add_persistent(B, "/a/b", AddWatchMode::PersistentRecursive);
        assert_eq!(w.data.recursive, 2);
        w.remove_session(A);
        assert_eq!(w.data.recursive, 1);
        w.remove_watches(B, "/a/b", WatcherType::Any, true).unwrap();
        assert_eq!(w.data.recursive, 0);
        assert_eq!(w.child.recursive, 0);
        assert_consistent(&w);
    }

    #[test]
    fn remove_watches_by_type() {
        // DataTree.removeWatch.
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        w.add_child_watch(A, "/a");
        assert_eq!(w.remove_watches(A, "/a", WatcherType::Children, true), Ok(()));
        assert_eq!(
            w.remove_watches(A, "/a", WatcherType::Children, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(w.remove_watches(A, "/a", WatcherType::Data, true), Ok(()));
        assert_eq!(w.watch_count(), 0);
        // Other sessions' and other paths' watches are not touched.
        w.add_data_watch(B, "/a");
        assert_eq!(
            w.remove_watches(A, "/a", WatcherType::Any, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(
            w.remove_watches(B, "/b", WatcherType::Any, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(w.watch_count(), 1);
        assert_consistent(&w);
    }

    #[test]
    fn remove_data_or_children_leaves_persistent_modes() {
        // removeWatcher(path, watcher, STANDARD) clears only that mode.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        assert_eq!(
            w.remove_watches(A, "/a", WatcherType::Data, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(
            w.remove_watches(A, "/a", WatcherType::Children, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(
            w.remove_watches(A, "/a", WatcherType::PersistentRecursive, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(w.remove_watches(A, "/a", WatcherType::Persistent, true), Ok(()));
        assert_eq!(w.watch_count(), 0, "removed from both tables");
        assert_consistent(&w);
    }

    #[test]
    fn remove_any_clears_every_mode_in_both_tables() {
        let mut w = WatchManager::new();
        w.add_persistent(A, "/a", AddWatchMode::Persistent);
        w.add_persistent(A, "/a", AddWatchMode::PersistentRecursive);
        w.add_data_watch(A, "/a");
        w.add_child_watch(A, "/a");
        assert_eq!(w.remove_watches(A, "/a", WatcherType::Any, true), Ok(()));
        assert_eq!(w.watch_count(), 0);
        assert_eq!(w.node_data_changed("/a"), vec![]);
        assert_eq!(w.node_created("/a/b"), vec![]);
        assert_consistent(&w);
    }

    #[test]
    fn check_watches_does_not_remove() {
        // DataTree.containsWatcher: Persistent is checked in dataWatches.
        let mut w = WatchManager::new();
        w.add_persistent(A, "/p", AddWatchMode::Persistent);
        w.add_persistent(A, "/r", AddWatchMode::PersistentRecursive);
        w.add_data_watch(A, "/d");
        w.add_child_watch(A, "/c");
        let chk = |w: &mut WatchManager, p: &str, t: WatcherType| w.remove_watches(A, p, t, false).is_ok();
        assert!(chk(&mut w, "/p", WatcherType::Persistent));
        assert!(!chk(&mut w, "/p", WatcherType::Data));
        assert!(!chk(&mut w, "/p", WatcherType::Children));
        assert!(chk(&mut w, "/p", WatcherType::Any));
        assert!(chk(&mut w, "/r", WatcherType::PersistentRecursive));
        assert!(!chk(&mut w, "/r", WatcherType::Persistent));
        assert!(chk(&mut w, "/r", WatcherType::Any));
        assert!(chk(&mut w, "/d", WatcherType::Data));
        assert!(!chk(&mut w, "/d", WatcherType::Children));
        assert!(chk(&mut w, "/c", WatcherType::Children));
        assert!(chk(&mut w, "/c", WatcherType::Any));
        assert!(!chk(&mut w, "/x", WatcherType::Any));
        assert_eq!(
            w.remove_watches(B, "/d", WatcherType::Data, false),
            Err(ErrorCode::NoWatcher)
        );
        // /p in both tables, /r, /d and /c in one each: nothing removed.
        assert_eq!(w.watch_count(), 5);
    }

    #[test]
    fn remove_session_drops_all_its_watches() {
        // DataTree.removeCnxn → removeWatcher(watcher) on both tables.
        let mut w = WatchManager::new();
        w.add_data_watch(A, "/a");
        w.add_child_watch(A, "/a");
        w.add_persistent(A, "/p", AddWatchMode::PersistentRecursive);
        w.add_data_watch(B, "/a");
        w.remove_session(A);
        w.remove_session(C); // unknown: no-op
        assert_eq!(w.watch_count(), 1);
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![B]);
        assert_eq!(w.node_created("/p/x"), vec![]);
        assert_consistent(&w);
    }

    #[test]
    fn counts_and_reports() {
        let mut w = WatchManager::new();
        w.add_data_watch(B, "/b");
        w.add_data_watch(A, "/b");
        w.add_data_watch(A, "/a");
        w.add_child_watch(C, "/c");
        w.add_persistent(C, "/p", AddWatchMode::Persistent);
        // zk_watch_count: both tables.
        assert_eq!(w.watch_count(), 6);
        // wchc/wchp/wchs: data table only (DataTree.dumpWatches/getWatches).
        assert_eq!(
            w.by_session(),
            vec![
                (A, vec!["/a".to_string(), "/b".to_string()]),
                (B, vec!["/b".to_string()]),
                (C, vec!["/p".to_string()]),
            ]
        );
        assert_eq!(
            w.by_path(),
            vec![
                ("/a".to_string(), vec![A]),
                ("/b".to_string(), vec![A, B]),
                ("/p".to_string(), vec![C]),
            ]
        );
        assert_eq!(w.paths_watched(), 3);
        assert_eq!(
            w.summary(),
            WatchesSummary {
                num_connections: 3,
                num_paths: 3,
                total_watches: 4
            }
        );
    }

    #[test]
    fn notifications_are_sorted_by_session() {
        let mut w = WatchManager::new();
        for s in [5, 3, 9, 1] {
            w.add_data_watch(s, "/a");
        }
        assert_eq!(sessions(&w.node_data_changed("/a")), vec![1, 3, 5, 9]);
    }

    #[test]
    fn many_watches_trigger_only_touches_the_path() {
        // Efficiency: without recursive watches a trigger is one lookup;
        // 10k unrelated watches stay untouched.
        let mut w = WatchManager::new();
        for i in 0..10_000 {
            w.add_data_watch(i, &format!("/n/{i}"));
        }
        assert_eq!(sessions(&w.node_data_changed("/n/42")), vec![42]);
        assert_eq!(w.watch_count(), 9_999);
        assert_consistent(&w);
    }
}
