//! Watches: what applications hold ([`OneshotWatcher`],
//! [`PersistentWatcher`]) and the registry the session task keeps, which
//! routes each notification to its watchers (ZooKeeper's
//! `ZKWatchManager.materialize`) and lists the watches to re-register with
//! setWatches2 after a reconnect.
//!
//! The registry is keyed by server paths (chroot included); event paths are
//! turned into client paths when delivered.

use std::collections::HashMap;

use proto::records::SetWatches2;
use proto::watch::EventType;
use tokio::sync::{mpsc, oneshot};

use crate::chroot::Chroot;
use crate::error::Error;

/// A change a watch reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    /// The client path (chroot stripped) of the node the event is about.
    pub path: String,
    /// The zxid of the change, or -1 when the server did not say.
    pub zxid: i64,
}

/// A one-time watch (ZooKeeper's standard watch): fires once, on the first
/// change after it was set. Survives reconnects (it is re-registered with
/// the session); dropping it just discards the event.
#[derive(Debug)]
pub struct OneshotWatcher {
    pub(crate) rx: oneshot::Receiver<Result<WatchedEvent, Error>>,
}

impl OneshotWatcher {
    /// Waits for the event. `Err(SessionExpired)` or `Err(Closed)` if the
    /// session ends first (the watch is gone with it).
    pub async fn changed(self) -> Result<WatchedEvent, Error> {
        self.rx.await.unwrap_or(Err(Error::Closed))
    }
}

/// A persistent (optionally recursive) watch set with addWatch: reports
/// every change until dropped or the session ends.
#[derive(Debug)]
pub struct PersistentWatcher {
    pub(crate) rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl PersistentWatcher {
    /// The next event; `None` once the session has ended (expired or
    /// closed).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

/// The most path bytes one setWatches2 packet carries (ZooKeeper's
/// `SET_WATCHES_MAX_LENGTH`, 128 KiB).
pub(crate) const SET_WATCHES_MAX_BYTES: usize = 128 * 1024;

/// Where a one-time watch's event (or the end of the session) goes.
pub(crate) type OneshotTx = oneshot::Sender<Result<WatchedEvent, Error>>;

/// Which list a watch belongs to (the lists of setWatches2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WatchKind {
    Data,
    Exist,
    Child,
}

/// What a request wants registered when its reply arrives.
#[derive(Debug)]
pub(crate) enum PendingWatch {
    /// One-time watch: `Exist` becomes a data watch when the node exists
    /// (as in ZooKeeper's `ExistsWatchRegistration`).
    Oneshot(WatchKind, OneshotTx),
    Persistent {
        recursive: bool,
        tx: mpsc::UnboundedSender<WatchedEvent>,
    },
}

/// All watches of one session.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    oneshot: HashMap<(WatchKind, String), Vec<OneshotTx>>,
    persistent: HashMap<(bool, String), Vec<mpsc::UnboundedSender<WatchedEvent>>>,
}

impl WatchRegistry {
    /// Registers `w` on `server_path` after the request that set it was
    /// answered: `ok` (success) or, for exists, `no_node`.
    pub(crate) fn register(&mut self, server_path: &str, w: PendingWatch, ok: bool, no_node: bool) {
        match w {
            PendingWatch::Oneshot(kind, tx) => {
                let kind = match (kind, ok, no_node) {
                    (WatchKind::Exist, true, _) => WatchKind::Data,
                    (WatchKind::Exist, false, true) => WatchKind::Exist,
                    (k, true, _) => k,
                    _ => return,
                };
                self.oneshot
                    .entry((kind, server_path.to_string()))
                    .or_default()
                    .push(tx);
            }
            PendingWatch::Persistent { recursive, tx } => {
                if ok {
                    self.persistent
                        .entry((recursive, server_path.to_string()))
                        .or_default()
                        .push(tx);
                }
            }
        }
    }

    /// Delivers a notification. Returns the persistent watch paths whose
    /// every holder is gone (the caller may remove them on the server).
    pub(crate) fn dispatch(
        &mut self,
        event_type: EventType,
        server_path: &str,
        zxid: i64,
        chroot: &Chroot,
    ) -> Vec<(bool, String)> {
        let event = WatchedEvent {
            event_type,
            path: chroot.to_client(server_path),
            zxid,
        };
        let kinds: &[WatchKind] = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data, WatchKind::Exist],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            _ => &[],
        };
        for k in kinds {
            if let Some(txs) = self.oneshot.remove(&(*k, server_path.to_string())) {
                for tx in txs {
                    let _ = tx.send(Ok(event.clone()));
                }
            }
        }
        let mut gone = Vec::new();
        let mut deliver = |key: (bool, String), registry: &mut HashMap<_, Vec<mpsc::UnboundedSender<_>>>| {
            if let Some(txs) = registry.get_mut(&key) {
                txs.retain(|tx| tx.send(event.clone()).is_ok());
                if txs.is_empty() {
                    registry.remove(&key);
                    gone.push(key);
                }
            }
        };
        if !matches!(event_type, EventType::None) {
            deliver((false, server_path.to_string()), &mut self.persistent);
            // Recursive watches see every event at or below them, except
            // child-list changes (the server does not send those for
            // recursive watches; a standard child watch may trigger one).
            if event_type != EventType::NodeChildrenChanged {
                for anc in ancestors(server_path) {
                    deliver((true, anc), &mut self.persistent);
                }
            }
        }
        gone
    }

    /// The setWatches2 requests that re-register every live watch, with
    /// `relative_zxid` the last zxid the session has seen (the server fires
    /// what changed since). Split like ZooKeeper's client, so no packet
    /// carries more than [`SET_WATCHES_MAX_BYTES`] of paths. Watchers whose
    /// holder is gone are dropped.
    pub(crate) fn set_watches(&mut self, relative_zxid: i64) -> Vec<SetWatches2> {
        self.oneshot.retain(|_, txs| {
            txs.retain(|tx| !tx.is_closed());
            !txs.is_empty()
        });
        self.persistent.retain(|_, txs| {
            txs.retain(|tx| !tx.is_closed());
            !txs.is_empty()
        });
        let fresh = || SetWatches2 {
            relative_zxid,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut cur = fresh();
        let mut bytes = 0;
        let all = self
            .oneshot
            .keys()
            .map(|(k, p)| (Some(*k), false, p))
            .chain(self.persistent.keys().map(|(r, p)| (None, *r, p)));
        for (kind, recursive, path) in all {
            if bytes > 0 && bytes + path.len() > SET_WATCHES_MAX_BYTES {
                out.push(std::mem::replace(&mut cur, fresh()));
                bytes = 0;
            }
            bytes += path.len();
            let list = match (kind, recursive) {
                (Some(WatchKind::Data), _) => &mut cur.data_watches,
                (Some(WatchKind::Exist), _) => &mut cur.exist_watches,
                (Some(WatchKind::Child), _) => &mut cur.child_watches,
                (None, false) => &mut cur.persistent_watches,
                (None, true) => &mut cur.persistent_recursive_watches,
            };
            list.push(path.clone());
        }
        if bytes > 0 {
            out.push(cur);
        }
        out
    }

    /// The session ended: one-time watchers get `err`, persistent watchers
    /// see the end of their stream.
    pub(crate) fn fail_all(&mut self, err: Error) {
        for (_, txs) in self.oneshot.drain() {
            for tx in txs {
                let _ = tx.send(Err(err.clone()));
            }
        }
        self.persistent.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.oneshot.values().map(Vec::len).sum::<usize>()
            + self.persistent.values().map(Vec::len).sum::<usize>()
    }
}

/// `/a/b` → `/a/b`, `/a`, `/`.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    let mut p = path;
    while p != "/" {
        p = match p.rfind('/') {
            Some(0) => "/",
            Some(i) => &p[..i],
            None => break,
        };
        out.push(p.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oneshot_watch(
        reg: &mut WatchRegistry,
        kind: WatchKind,
        path: &str,
        ok: bool,
        no_node: bool,
    ) -> OneshotWatcher {
        let (tx, rx) = oneshot::channel();
        reg.register(path, PendingWatch::Oneshot(kind, tx), ok, no_node);
        OneshotWatcher { rx }
    }

    #[test]
    fn ancestors_up_to_root() {
        assert_eq!(ancestors("/a/b"), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/"), vec!["/"]);
    }

    #[tokio::test]
    async fn events_route_by_kind_and_fire_once() {
        let mut reg = WatchRegistry::default();
        let c = Chroot::new(Some("/r".into()));
        let data = oneshot_watch(&mut reg, WatchKind::Data, "/r/a", true, false);
        let child = oneshot_watch(&mut reg, WatchKind::Child, "/r/a", true, false);
        let exist_missing = oneshot_watch(&mut reg, WatchKind::Exist, "/r/b", false, true);
        let failed = oneshot_watch(&mut reg, WatchKind::Data, "/r/c", false, true);
        drop(failed);
        assert_eq!(reg.len(), 3);
        reg.dispatch(EventType::NodeChildrenChanged, "/r/a", 7, &c);
        let ev = child.changed().await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str(), ev.zxid),
            (EventType::NodeChildrenChanged, "/a", 7)
        );
        reg.dispatch(EventType::NodeCreated, "/r/b", 8, &c);
        assert_eq!(exist_missing.changed().await.unwrap().path, "/b");
        let w = reg.set_watches(9);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].relative_zxid, 9);
        assert_eq!(w[0].data_watches, vec!["/r/a".to_string()]);
        assert!(w[0].exist_watches.is_empty() && w[0].child_watches.is_empty());
        reg.fail_all(Error::SessionExpired);
        assert_eq!(data.changed().await, Err(Error::SessionExpired));
        assert!(reg.set_watches(9).is_empty());
    }

    #[test]
    fn many_watches_are_split_into_bounded_packets() {
        let mut reg = WatchRegistry::default();
        let mut keep = Vec::new();
        let long = "x".repeat(1000);
        for i in 0..300 {
            let (tx, rx) = oneshot::channel();
            reg.register(
                &format!("/{long}/{i}"),
                PendingWatch::Oneshot(WatchKind::Child, tx),
                true,
                false,
            );
            keep.push(rx);
        }
        let packets = reg.set_watches(1);
        assert_eq!(packets.len(), 3);
        let total: usize = packets.iter().map(|p| p.child_watches.len()).sum();
        assert_eq!(total, 300);
        for p in &packets {
            assert!(p.child_watches.iter().map(String::len).sum::<usize>() <= SET_WATCHES_MAX_BYTES);
        }
    }

    #[tokio::test]
    async fn recursive_watches_see_descendants_but_not_child_lists() {
        let mut reg = WatchRegistry::default();
        let c = Chroot::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        reg.register(
            "/a",
            PendingWatch::Persistent { recursive: true, tx },
            true,
            false,
        );
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        reg.register(
            "/a",
            PendingWatch::Persistent {
                recursive: false,
                tx: tx2,
            },
            true,
            false,
        );
        reg.dispatch(EventType::NodeCreated, "/a/b/c", 1, &c);
        reg.dispatch(EventType::NodeChildrenChanged, "/a", 2, &c);
        reg.dispatch(EventType::NodeDataChanged, "/a", 3, &c);
        assert_eq!(rx.recv().await.unwrap().path, "/a/b/c");
        assert_eq!(rx.recv().await.unwrap().zxid, 3);
        assert_eq!(rx2.recv().await.unwrap().zxid, 2);
        assert_eq!(rx2.recv().await.unwrap().zxid, 3);
        drop(rx2);
        let gone = reg.dispatch(EventType::NodeDataChanged, "/a", 4, &c);
        assert_eq!(gone, vec![(false, "/a".to_string())]);
    }
}
