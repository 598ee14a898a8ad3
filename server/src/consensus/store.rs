//! The raft log as raft-rs reads it: the in-memory `MemStorage` (filled
//! from the WAL at start and kept in step by the Ready loop), plus the
//! latest full snapshot of the state machine, which raft sends to a
//! follower that has fallen behind the compacted log or is new.
//!
//! `MemStorage` alone would send followers snapshot metadata without the
//! data; this wrapper is the only reason it exists.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use raft::eraftpb::{Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

#[derive(Clone, Default)]
pub struct RaftStore {
    pub mem: MemStorage,
    /// The newest snapshot taken or received, with its data.
    latest: Arc<Mutex<Snapshot>>,
    /// Raft needed a snapshot the latest one cannot serve (too old, or from
    /// before the receiver joined): the consensus task takes one soon.
    wanted: Arc<AtomicBool>,
}

impl RaftStore {
    pub fn new(mem: MemStorage) -> RaftStore {
        RaftStore {
            mem,
            latest: Arc::new(Mutex::new(Snapshot::default())),
            wanted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether raft asked for a fresher snapshot since the last call.
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    /// Index of the newest snapshot recorded (0 if none).
    pub fn latest_index(&self) -> u64 {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_metadata()
            .index
    }

    /// Records the newest snapshot; raft hands it to followers that need
    /// one.
    pub fn set_latest(&self, snap: Snapshot) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = snap;
    }
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    /// The newest full snapshot. If it is older than what raft asks for
    /// (the follower needs entries the snapshot lacks but the log has
    /// compacted), raft retries later; a new snapshot is taken on schedule.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let snap = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let meta = snap.get_metadata();
        let cs = meta.get_conf_state();
        // raft-rs refuses a snapshot whose configuration lacks the
        // receiver, so a member added after the latest snapshot needs a
        // new one.
        let includes_receiver = cs.voters.contains(&to) || cs.learners.contains(&to);
        if meta.index == 0 || meta.index < request_index || !includes_receiver {
            self.wanted.store(true, Ordering::Relaxed);
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(snap)
    }
}
