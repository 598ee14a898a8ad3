//! setWatches / setWatches2: a reconnecting client re-registers its
//! watches, with the last zxid it saw. ZooKeeper (DataTree.setWatches)
//! fires at once the events the client missed, and registers the rest:
//! a data watch on a missing node fires NodeDeleted, on a node changed
//! after `relative_zxid` NodeDataChanged; an exist watch on a node that now
//! exists fires NodeCreated; a child watch fires NodeDeleted or
//! NodeChildrenChanged likewise. Persistent watches are just re-added.

use proto::records::{SetWatches2, WatcherEvent};
use proto::watch::{AddWatchMode, EventType, KeeperState};

use crate::state::State;

/// Registers the watches and returns the events to send right away.
pub fn run(state: &mut State, session: i64, req: &SetWatches2) -> Vec<WatcherEvent> {
    let rel = req.relative_zxid;
    let mut events = Vec::new();
    let mut fire = |t: EventType, path: &str| {
        events.push(WatcherEvent {
            type_: t as i32,
            state: KeeperState::SyncConnected as i32,
            path: path.to_string(),
        })
    };
    for p in &req.data_watches {
        match state.tree.get(p) {
            None => fire(EventType::NodeDeleted, p),
            Some(n) if n.mzxid > rel => fire(EventType::NodeDataChanged, p),
            Some(_) => state.watches.add_data_watch(session, p),
        }
    }
    for p in &req.exist_watches {
        if state.tree.contains(p) {
            fire(EventType::NodeCreated, p);
        } else {
            state.watches.add_data_watch(session, p);
        }
    }
    for p in &req.child_watches {
        match state.tree.get(p) {
            None => fire(EventType::NodeDeleted, p),
            Some(n) if n.pzxid > rel => fire(EventType::NodeChildrenChanged, p),
            Some(_) => state.watches.add_child_watch(session, p),
        }
    }
    for p in &req.persistent_watches {
        state.watches.add_persistent(session, p, AddWatchMode::Persistent);
    }
    for p in &req.persistent_recursive_watches {
        state
            .watches
            .add_persistent(session, p, AddWatchMode::PersistentRecursive);
    }
    events
}
