//! The session table and its expiry clock.
//!
//! Owns: the replicated set of live sessions (id, negotiated timeout,
//! password) and, on top of it, the member-local
//! expiry schedule (deadlines). Every member holds the table; only the
//! leader's clock drives expiry, by proposing a close for each id that
//! [`SessionTable::expired`] reports.
//!
//! Must not: read a clock (time comes in as `now`, milliseconds), do I/O,
//! or know about the data tree (which owns the ephemerals of each session:
//! `DataTree::ephemerals_of`).
//!
//! Deadlines are not replicated and not part of a snapshot (they are
//! `#[serde(skip)]`): after loading a snapshot, restarting, or becoming
//! leader, call [`SessionTable::reset_deadlines`] so every session gets a
//! full timeout, as a new ZooKeeper leader does when it rebuilds its
//! `SessionTrackerImpl` from the database. Until then loaded sessions have
//! no deadline and never expire.
//!
//! ZooKeeper (`ExpiryQueue`) rounds deadlines up to the next tick and
//! checks once a tick; we keep exact deadlines in an ordered index, so
//! finding the expired sessions costs O(expired + log n).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// One live session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: i64,
    /// The negotiated timeout.
    pub timeout_ms: u32,
    /// The 16 bytes the client must present to reattach. Never logged
    /// (see the `Debug` impl).
    pub password: Vec<u8>,
    /// The attachment (connection token, `Txn::owner`) the session was last
    /// created or reattached with, through the log; 0 if unknown (a
    /// snapshot older than format 3). Writes from another attachment are
    /// refused with SESSIONMOVED.
    #[serde(default)]
    pub owner: u64,
}

impl std::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", &format_args!("{:#x}", self.id))
            .field("timeout_ms", &self.timeout_ms)
            .field("password", &"<redacted>")
            .field("owner", &format_args!("{:#x}", self.owner))
            .finish()
    }
}

/// All live sessions, plus the member-local expiry schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionTable {
    /// Ordered by id so a snapshot is deterministic.
    sessions: BTreeMap<i64, SessionInfo>,
    /// id → deadline (ms); absent for sessions not scheduled (closing, or
    /// loaded and not yet reset).
    #[serde(skip)]
    deadlines: HashMap<i64, u64>,
    /// (deadline, id), the expiry index.
    #[serde(skip)]
    by_deadline: BTreeSet<(u64, i64)>,
    /// Sessions whose close has been proposed (`SessionImpl.isClosing`).
    #[serde(skip)]
    closing: HashSet<i64>,
}

impl SessionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session (a committed createSession) with deadline
    /// `now + timeout_ms`. Re-inserting an existing id updates its timeout
    /// and password.
    pub fn insert(&mut self, id: i64, timeout_ms: u32, password: Vec<u8>, now: u64) {
        match self.sessions.get_mut(&id) {
            Some(s) => {
                s.timeout_ms = timeout_ms;
                s.password = password;
            }
            None => {
                self.sessions.insert(
                    id,
                    SessionInfo {
                        id,
                        timeout_ms,
                        password,
                        owner: 0,
                    },
                );
            }
        }
        self.closing.remove(&id);
        self.schedule(id, now.saturating_add(u64::from(timeout_ms)));
    }

    /// Removes a session (a committed closeSession).
    pub fn remove(&mut self, id: i64) -> Option<SessionInfo> {
        self.unschedule(id);
        self.closing.remove(&id);
        self.sessions.remove(&id)
    }

    pub fn get(&self, id: i64) -> Option<&SessionInfo> {
        self.sessions.get(&id)
    }

    /// Records the session's current attachment (a committed
    /// createSession or attach). False if the session is unknown.
    pub fn set_owner(&mut self, id: i64, owner: u64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) => {
                s.owner = owner;
                true
            }
            None => false,
        }
    }

    /// Whether a request sent through attachment `owner` may still act for
    /// the session: it is the session's current attachment, or either side
    /// is untagged (0: expiry, reaper, entries or snapshots from before
    /// owners were recorded).
    pub fn owned_by(&self, id: i64, owner: u64) -> bool {
        match self.sessions.get(&id) {
            Some(s) => owner == 0 || s.owner == 0 || s.owner == owner,
            None => false,
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Liveness (any request or ping): pushes the deadline to
    /// `now + timeout`. False if the session is unknown or closing
    /// (`SessionTrackerImpl.touchSession`).
    pub fn touch(&mut self, id: i64, now: u64) -> bool {
        if self.closing.contains(&id) {
            return false;
        }
        let Some(s) = self.sessions.get(&id) else {
            return false;
        };
        let deadline = now.saturating_add(u64::from(s.timeout_ms));
        self.schedule(id, deadline);
        true
    }

    /// Sessions whose deadline is `<= now` (ZooKeeper's `ExpiryQueue.poll`
    /// expires when `now >= expirationTime`), earliest first. They stay
    /// reported until removed or marked closing.
    pub fn expired(&self, now: u64) -> Vec<i64> {
        self.by_deadline
            .range(..=(now, i64::MAX))
            .map(|&(_, id)| id)
            .collect()
    }

    /// The earliest deadline, for sleeping until the next expiry check.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|&(d, _)| d)
    }

    /// The session's current deadline, if scheduled.
    pub fn deadline(&self, id: i64) -> Option<u64> {
        self.deadlines.get(&id).copied()
    }

    /// Marks a session as closing once its close has been proposed
    /// (`SessionTrackerImpl.setSessionClosing`): it leaves the expiry index
    /// (so [`Self::expired`] stops reporting it) and [`Self::touch`] fails.
    /// False if unknown.
    pub fn mark_closing(&mut self, id: i64) -> bool {
        if !self.sessions.contains_key(&id) {
            return false;
        }
        self.unschedule(id);
        self.closing.insert(id);
        true
    }

    pub fn is_closing(&self, id: i64) -> bool {
        self.closing.contains(&id)
    }

    /// After a restart, snapshot load or leader change: every session gets
    /// a full timeout from `now`, and pending closes are forgotten (their
    /// proposals may have been lost; they are re-detected if still dead).
    pub fn reset_deadlines(&mut self, now: u64) {
        self.deadlines.clear();
        self.by_deadline.clear();
        self.closing.clear();
        for s in self.sessions.values() {
            let deadline = now.saturating_add(u64::from(s.timeout_ms));
            self.deadlines.insert(s.id, deadline);
            self.by_deadline.insert((deadline, s.id));
        }
    }

    /// Whether `password` is the session's (`ZooKeeperServer.checkPasswd`),
    /// compared without an early exit.
    pub fn password_matches(&self, id: i64, password: &[u8]) -> bool {
        match self.sessions.get(&id) {
            Some(s) if s.password.len() == password.len() => {
                s.password
                    .iter()
                    .zip(password)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// All sessions, by id.
    pub fn iter(&self) -> impl Iterator<Item = &SessionInfo> {
        self.sessions.values()
    }

    fn schedule(&mut self, id: i64, deadline: u64) {
        if let Some(old) = self.deadlines.insert(id, deadline) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((deadline, id));
    }

    fn unschedule(&mut self, id: i64) {
        if let Some(old) = self.deadlines.remove(&id) {
            self.by_deadline.remove(&(old, id));
        }
    }
}

/// ZooKeeper's session timeout negotiation
/// (`ZooKeeperServer.processConnectRequest`): raise to `min_ms`, then lower
/// to `max_ms` (so if min > max, max wins). ZooKeeper's defaults are
/// `2 * tickTime` and `20 * tickTime`. A negative request gets `min_ms`.
pub fn negotiate_timeout(requested_ms: i32, min_ms: u32, max_ms: u32) -> u32 {
    let mut t = i64::from(requested_ms);
    if t < i64::from(min_ms) {
        t = i64::from(min_ms);
    }
    if t > i64::from(max_ms) {
        t = i64::from(max_ms);
    }
    t as u32
}

/// The first session id a server hands out
/// (`SessionTrackerImpl.initializeNextSessionId`): the server id in the top
/// byte, the low 40 bits of the clock (ms) in the next five bytes, and 16
/// zero bits for a counter the caller increments per session. Ids do not
/// repeat across restarts as long as the clock moves forward and fewer than
/// 65 536 sessions per millisecond of uptime were created; the 40-bit time
/// field wraps every ~34.8 years.
///
/// `server_id` is truncated to 8 bits. With ZooKeeper's extended ephemeral
/// types, owners with top byte 0xFF mean TTL nodes, so server id 255 should
/// not be used; the one value that collides with the container owner marker
/// (`i64::MIN`) is skipped, as ZooKeeper does.
pub fn initial_session_id(server_id: u64, now_ms: u64) -> i64 {
    let id = ((now_ms << 24) >> 8) | ((server_id & 0xFF) << 56);
    let id = id as i64;
    if id == i64::MIN {
        id + 1
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw() -> Vec<u8> {
        vec![7; 16]
    }

    #[test]
    fn insert_get_remove() {
        let mut t = SessionTable::new();
        assert!(t.is_empty());
        t.insert(1, 10_000, pw(), 0);
        assert!(t.contains(1));
        assert_eq!(t.len(), 1);
        let s = t.get(1).unwrap();
        assert_eq!((s.id, s.timeout_ms, s.password.len()), (1, 10_000, 16));
        let removed = t.remove(1).unwrap();
        assert_eq!(removed.id, 1);
        assert!(!t.contains(1));
        assert_eq!(t.remove(1), None);
        assert_eq!(t.expired(u64::MAX), Vec::<i64>::new());
    }

    #[test]
    fn deadline_is_now_plus_timeout_and_touch_pushes_it() {
        // SessionTrackerImpl.touchSession → updateSessionExpiry(now + timeout).
        let mut t = SessionTable::new();
        t.insert(1, 1000, pw(), 100);
        assert_eq!(t.deadline(1), Some(1100));
        assert_eq!(t.expired(1099), Vec::<i64>::new());
        // ExpiryQueue.poll: expired once now >= expiration time.
        assert_eq!(t.expired(1100), vec![1]);
        assert!(t.touch(1, 900));
        assert_eq!(t.deadline(1), Some(1900));
        assert_eq!(t.expired(1100), Vec::<i64>::new());
        assert_eq!(t.expired(1900), vec![1]);
        assert!(!t.touch(2, 900), "unknown session");
    }

    #[test]
    fn expired_is_ordered_by_deadline() {
        let mut t = SessionTable::new();
        t.insert(3, 300, pw(), 0);
        t.insert(1, 100, pw(), 0);
        t.insert(2, 200, pw(), 0);
        assert_eq!(t.next_deadline(), Some(100));
        assert_eq!(t.expired(250), vec![1, 2]);
        assert_eq!(t.expired(1000), vec![1, 2, 3]);
    }

    #[test]
    fn closing_session_is_not_reported_or_touchable() {
        // SessionImpl.isClosing: touchSession returns false.
        let mut t = SessionTable::new();
        t.insert(1, 100, pw(), 0);
        assert_eq!(t.expired(100), vec![1]);
        assert!(t.mark_closing(1));
        assert!(t.is_closing(1));
        assert_eq!(t.expired(100), Vec::<i64>::new());
        assert!(!t.touch(1, 50));
        assert!(t.contains(1), "still live until the close commits");
        assert!(!t.mark_closing(9));
        t.remove(1);
        assert!(!t.is_closing(1));
    }

    #[test]
    fn reset_deadlines_gives_everyone_a_full_timeout() {
        // A new leader re-adds every session with now + timeout.
        let mut t = SessionTable::new();
        t.insert(1, 100, pw(), 0);
        t.insert(2, 5000, pw(), 0);
        t.mark_closing(1);
        t.reset_deadlines(10_000);
        assert!(!t.is_closing(1));
        assert_eq!(t.deadline(1), Some(10_100));
        assert_eq!(t.deadline(2), Some(15_000));
        assert_eq!(t.expired(10_099), Vec::<i64>::new());
        assert_eq!(t.expired(10_100), vec![1]);
    }

    #[test]
    fn reinsert_updates_timeout_and_password() {
        let mut t = SessionTable::new();
        t.insert(1, 100, pw(), 0);
        t.insert(1, 200, vec![1; 16], 50);
        assert_eq!(t.get(1).unwrap().timeout_ms, 200);
        assert!(t.password_matches(1, &[1; 16]));
        assert_eq!(t.deadline(1), Some(250));
        assert_eq!(t.expired(u64::MAX), vec![1]);
    }

    #[test]
    fn password_check() {
        let mut t = SessionTable::new();
        t.insert(1, 100, pw(), 0);
        assert!(t.password_matches(1, &pw()));
        assert!(!t.password_matches(1, &[7; 15]));
        assert!(!t.password_matches(1, &[8; 16]));
        assert!(!t.password_matches(2, &pw()));
    }

    #[test]
    fn snapshot_roundtrip_drops_deadlines() {
        let mut t = SessionTable::new();
        t.insert(2, 4000, pw(), 0);
        t.insert(1, 3000, vec![1; 16], 0);
        let json = serde_json::to_string(&t).unwrap();
        assert!(!json.contains("deadline"));
        let mut back: SessionTable = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.iter().cloned().collect::<Vec<_>>(),
            t.iter().cloned().collect::<Vec<_>>()
        );
        // Not scheduled until reset.
        assert_eq!(back.deadline(1), None);
        assert_eq!(back.expired(u64::MAX), Vec::<i64>::new());
        back.reset_deadlines(100);
        assert_eq!(back.expired(u64::MAX), vec![1, 2]);
    }

    #[test]
    fn iter_is_by_id() {
        let mut t = SessionTable::new();
        for id in [5, -3, 9, 0] {
            t.insert(id, 100, pw(), 0);
        }
        let ids: Vec<i64> = t.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![-3, 0, 5, 9]);
    }

    #[test]
    fn ten_thousand_sessions_expire_efficiently() {
        let mut t = SessionTable::new();
        for id in 0..10_000i64 {
            t.insert(id, 1000 + (id as u32 % 100), pw(), 0);
        }
        for id in (0..10_000i64).step_by(2) {
            assert!(t.touch(id, 5000));
        }
        let e = t.expired(2000);
        assert_eq!(e.len(), 5000);
        assert!(e.iter().all(|id| id % 2 == 1));
    }

    #[test]
    fn negotiate_timeout_clamps() {
        // ZooKeeperServer.processConnectRequest: < min → min, > max → max.
        assert_eq!(negotiate_timeout(30_000, 4000, 40_000), 30_000);
        assert_eq!(negotiate_timeout(1000, 4000, 40_000), 4000);
        assert_eq!(negotiate_timeout(100_000, 4000, 40_000), 40_000);
        assert_eq!(negotiate_timeout(-5, 4000, 40_000), 4000);
        assert_eq!(negotiate_timeout(0, 4000, 40_000), 4000);
        assert_eq!(negotiate_timeout(i32::MAX, 4000, u32::MAX), i32::MAX as u32);
        // min > max: the max check runs last.
        assert_eq!(negotiate_timeout(5000, 9000, 6000), 6000);
    }

    #[test]
    fn initial_session_id_layout() {
        // SessionTrackerImpl.initializeNextSessionId:
        // (time << 24 >>> 8) | (sid << 56).
        assert_eq!(initial_session_id(1, 0), 1 << 56);
        let now = 0x0123_4567_89AB_u64;
        let id = initial_session_id(3, now);
        assert_eq!(id >> 56, 3);
        assert_eq!((id >> 16) & 0xFF_FFFF_FFFF, (now & 0xFF_FFFF_FFFF) as i64);
        assert_eq!(id & 0xFFFF, 0);
        // Later clock → larger id for the same server.
        assert!(initial_session_id(3, now + 1) > id);
        // Server ids >= 128 give negative ids, like Java's signed long.
        assert!(initial_session_id(200, now) < 0);
        // The container owner marker (Long.MIN_VALUE) is skipped.
        assert_eq!(initial_session_id(0x80, 0), i64::MIN + 1);
        // Only the low 8 bits of the server id are used.
        assert_eq!(initial_session_id(0x101, 0), initial_session_id(1, 0));
    }
}
