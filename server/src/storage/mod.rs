//! Durable storage: the raft log (WAL) and state-machine snapshots.
//!
//! Everything here reaches the operating system through one small trait,
//! [`disk::Disk`], so that tests can break the disk on purpose: the real
//! implementation carries fail points (see [`disk`]) that turn chosen calls
//! into I/O errors when the crate is built with the `failpoints` feature.
//!
//! - [`wal::Wal`]: the durable raft log — entries and the raft `HardState`,
//!   in checksummed records across size-rotated segment files. `append` and
//!   `set_hard_state` only write; `sync` is the single fsync (group commit
//!   point) after which the written records may be acknowledged.
//! - [`mem::MemDisk`]: an in-memory disk that simulates power loss, for
//!   tests of anything built on storage.
//! - [`snapshot::SnapshotStore`]: whole state-machine snapshots, each written
//!   atomically (temporary file, fsync, rename, fsync of the directory) with
//!   a checksum over the whole file.
//!
//! # Failure contract
//!
//! After any failed write, sync, truncate or remove, a [`wal::Wal`] is
//! *poisoned*: the call returns the I/O error and every later call returns
//! [`StorageError::Poisoned`]. The on-disk state after such a failure is
//! unknown (a write may be partly on disk, an fsync failure may have dropped
//! dirty pages), so the server must stop and reopen the log, whose recovery
//! then decides from what is actually durable. Nothing written since the
//! last successful `sync` may have been acknowledged to anyone.
//!
//! # Recovery
//!
//! Every record carries a CRC32. How a damaged record is treated on open is
//! the operator's named choice, [`RecoveryMode`]:
//! - [`RecoveryMode::TolerateTailCorruption`] (default): a torn or corrupt
//!   record at the very end of the last segment — what a crash in the middle
//!   of a write leaves behind — is truncated away (with a warning), provided
//!   no valid record follows it. Such a record was never synced, so it was
//!   never acknowledged.
//! - [`RecoveryMode::AbsoluteConsistency`]: any damaged record is an error.
//!
//! Damage anywhere else (a non-last segment, or a bad record followed by
//! valid ones) is always a [`StorageError::Corruption`] naming the file and
//! byte offset: a record followed by valid records is never dropped.

pub mod disk;
pub mod mem;
pub mod snapshot;
pub mod wal;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use disk::{Disk, LogFile, RealDisk};
pub use mem::MemDisk;
pub use snapshot::SnapshotStore;
pub use wal::{Recovered, Wal, WalOptions};

/// How [`wal::Wal::open`] treats a damaged record. Config names are
/// `"absolute-consistency"` and `"tolerate-tail-corruption"`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryMode {
    /// Any torn or corrupt record, even at the tail of the last segment, is
    /// an error.
    AbsoluteConsistency,
    /// A torn or corrupt record at the very tail of the last segment (and
    /// nothing valid after it) is truncated away; anything else is an error.
    #[default]
    TolerateTailCorruption,
}

/// Errors from storage. Callers act on the variant:
/// - `Io`: an operating-system error; for the WAL it also poisons it.
/// - `Corruption`: the data on disk cannot be trusted; the operator must act
///   (the message says how).
/// - `Poisoned`: an earlier failure left the WAL in an unknown state; stop
///   and reopen.
/// - `InvalidRequest`: a caller bug (e.g. a gap in appended indices);
///   nothing was written and the WAL stays usable.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error while {context} ({}): {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "corrupt data in {} at byte offset {offset}: {detail}. The data directory \
         cannot be used as is. If this is a torn record at the tail of the newest \
         log segment, restarting with --recovery-mode tolerate-tail-corruption (the \
         default; recovery_mode in the config file) truncates it; otherwise restore \
         this member from a healthy peer (remove its data directory and let it \
         rejoin) or from a backup",
        file.display()
    )]
    Corruption {
        file: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error(
        "storage is poisoned by an earlier failure ({cause}); the on-disk state is \
         unknown, so the server must stop and reopen it"
    )]
    Poisoned { cause: String },
    #[error("invalid storage request: {detail}")]
    InvalidRequest { detail: String },
}

impl StorageError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Self {
        StorageError::Corruption {
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }
}

/// Result type of this module.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
