//! The raft log as raft-rs reads it: the in-memory `MemStorage` (filled
//! from the WAL at start and kept in step by the Ready loop), plus the
//! latest full snapshot of the state machine, which raft sends to a
//! follower that has fallen behind the compacted log or is new.
//!
//! `MemStorage` alone would send followers snapshot metadata without the
//! data; this wrapper is the only reason it exists.

use std::sync::{Arc, Mutex};

use raft::eraftpb::{Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

#[derive(Clone, Default)]
pub struct RaftStore {
    pub mem: MemStorage,
    /// The newest snapshot taken or received, with its data.
    latest: Arc<Mutex<Snapshot>>,
}

impl RaftStore {
    pub fn new(mem: MemStorage) -> RaftStore {
        RaftStore {
            mem,
            latest: Arc::new(Mutex::new(Snapshot::default())),
        }
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
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if snap.get_metadata().index == 0 || snap.get_metadata().index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(snap)
    }
}
