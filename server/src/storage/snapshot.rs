//! State-machine snapshots.
//!
//! One file per snapshot, `snap-{index:020}-{term:020}.snap`, written with
//! [`Disk::write_atomic`] so that after a crash it is either absent or whole:
//!
//! ```text
//! b"ZKSN" | u32 LE version (1) | u32 LE metadata length | SnapshotMetadata (protobuf)
//!        | u64 LE data length | data | u32 LE crc32 of every byte before it
//! ```
//!
//! The data is an opaque blob produced by the state machine.
//!
//! # A damaged newest snapshot
//!
//! [`SnapshotStore::load_latest`] never skips a damaged newest snapshot to
//! fall back on an older one, and never deletes it: the log is compacted up
//! to the newest snapshot's index, so an older snapshot would silently lack
//! the entries between the two. It returns [`StorageError::Corruption`]
//! naming the file; the operator decides (restore from a peer, or move the
//! file aside if the log still holds every entry after the older snapshot).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message;
use raft::eraftpb::SnapshotMetadata;

use super::disk::Disk;
use super::{Result, StorageError};

/// Snapshots kept by [`SnapshotStore::purge`] unless configured otherwise.
pub const DEFAULT_KEEP: usize = 3;

const MAGIC: &[u8; 4] = b"ZKSN";
const VERSION: u32 = 1;

/// A directory of snapshots. See the module documentation. Cloning it
/// gives another handle on the same directory (a save runs off the
/// consensus task).
#[derive(Clone)]
pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    keep: usize,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("dir", &self.dir)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// A snapshot file found in the directory (by name only, not validated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotFile {
    pub index: u64,
    pub term: u64,
    pub path: PathBuf,
}

fn snapshot_name(index: u64, term: u64) -> String {
    format!("snap-{index:020}-{term:020}.snap")
}

fn parse_snapshot_name(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (i, t) = rest.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(t) {
        return None;
    }
    Some((i.parse().ok()?, t.parse().ok()?))
}

fn is_temp_snapshot(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".snap-") && n.ends_with(".snap.tmp"))
}

/// Encodes a snapshot file.
fn encode(meta: &SnapshotMetadata, data: &[u8]) -> Result<Vec<u8>> {
    let meta_bytes = meta.write_to_bytes().map_err(|e| StorageError::InvalidRequest {
        detail: format!("cannot encode snapshot metadata: {e}"),
    })?;
    let mut out = Vec::with_capacity(4 + 4 + 4 + meta_bytes.len() + 8 + data.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta_bytes);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes and verifies a snapshot file; `Err((offset, detail))`.
fn decode(buf: &[u8]) -> std::result::Result<(SnapshotMetadata, Vec<u8>), (u64, String)> {
    const FIXED: usize = 4 + 4 + 4 + 8 + 4;
    if buf.len() < FIXED {
        return Err((0, format!("file too short ({} bytes)", buf.len())));
    }
    let (body, crc_bytes) = buf.split_at(buf.len() - 4);
    let crc = u32::from_le_bytes(crc_bytes.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err((body.len() as u64, "checksum mismatch".to_string()));
    }
    if &body[..4] != MAGIC {
        return Err((0, "not a zonekeeper snapshot (bad magic)".to_string()));
    }
    let version = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err((4, format!("unsupported snapshot version {version}")));
    }
    let meta_len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
    let meta_end = 12usize
        .checked_add(meta_len)
        .filter(|&e| e + 8 <= body.len())
        .ok_or((8, format!("metadata length {meta_len} runs past end of file")))?;
    let meta = SnapshotMetadata::parse_from_bytes(&body[12..meta_end])
        .map_err(|e| (12, format!("undecodable metadata: {e}")))?;
    let data_len = u64::from_le_bytes(body[meta_end..meta_end + 8].try_into().expect("8 bytes"));
    let data_start = meta_end + 8;
    if data_len != (body.len() - data_start) as u64 {
        return Err((
            meta_end as u64,
            format!(
                "data length {data_len} does not match the {} bytes present",
                body.len() - data_start
            ),
        ));
    }
    Ok((meta, body[data_start..].to_vec()))
}

impl SnapshotStore {
    /// Opens (creating if needed) the snapshot directory. Keeps
    /// [`DEFAULT_KEEP`] snapshots on [`purge`](SnapshotStore::purge).
    pub fn open(disk: Arc<dyn Disk>, dir: &Path) -> Result<Self> {
        disk.create_dir_all(dir)
            .map_err(|e| StorageError::io("creating the snapshot directory", dir, e))?;
        Ok(SnapshotStore {
            disk,
            dir: dir.to_path_buf(),
            keep: DEFAULT_KEEP,
        })
    }

    /// How many snapshots [`purge`](SnapshotStore::purge) keeps (at least 1).
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    /// Writes a snapshot atomically and durably. Returns once it is durable.
    /// Does not purge older snapshots; call [`purge`](SnapshotStore::purge)
    /// (after compacting the log).
    pub fn save(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<()> {
        let bytes = encode(meta, data)?;
        let path = self.dir.join(snapshot_name(meta.index, meta.term));
        self.disk
            .write_atomic(&path, &bytes)
            .map_err(|e| StorageError::io("writing a snapshot", &path, e))
    }

    /// Snapshot files by name, oldest (lowest index, then term) first.
    pub fn list(&self) -> Result<Vec<SnapshotFile>> {
        let listed = self
            .disk
            .list(&self.dir)
            .map_err(|e| StorageError::io("listing the snapshot directory", &self.dir, e))?;
        let mut files: Vec<SnapshotFile> = listed
            .into_iter()
            .filter_map(|path| {
                parse_snapshot_name(&path).map(|(index, term)| SnapshotFile { index, term, path })
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Loads and verifies the newest snapshot. `Ok(None)` if there is none;
    /// [`StorageError::Corruption`] if the newest one is damaged (see the
    /// module documentation: it is never skipped).
    pub fn load_latest(&self) -> Result<Option<(SnapshotMetadata, Vec<u8>)>> {
        let Some(newest) = self.list()?.pop() else {
            return Ok(None);
        };
        let buf = self
            .disk
            .read(&newest.path)
            .map_err(|e| StorageError::io("reading a snapshot", &newest.path, e))?;
        let (meta, data) = decode(&buf).map_err(|(offset, detail)| {
            StorageError::corruption(
                &newest.path,
                offset,
                format!(
                    "damaged snapshot: {detail}; it is not skipped, because the log may be \
                     compacted past any older snapshot"
                ),
            )
        })?;
        if meta.index != newest.index || meta.term != newest.term {
            return Err(StorageError::corruption(
                &newest.path,
                0,
                format!(
                    "snapshot metadata says index {} term {}, but the file name says index {} \
                     term {}",
                    meta.index, meta.term, newest.index, newest.term
                ),
            ));
        }
        Ok(Some((meta, data)))
    }

    /// Deletes all but the newest `keep` snapshots, and leftover temporary
    /// files of interrupted saves. Returns how many files were removed.
    pub fn purge(&self) -> Result<usize> {
        let listed = self
            .disk
            .list(&self.dir)
            .map_err(|e| StorageError::io("listing the snapshot directory", &self.dir, e))?;
        let mut doomed: Vec<PathBuf> = listed.into_iter().filter(|p| is_temp_snapshot(p)).collect();
        let files = self.list()?;
        let excess = files.len().saturating_sub(self.keep);
        doomed.extend(files.into_iter().take(excess).map(|f| f.path));
        for path in &doomed {
            self.disk
                .remove(path)
                .map_err(|e| StorageError::io("removing an old snapshot", path, e))?;
        }
        if !doomed.is_empty() {
            self.disk
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("syncing the snapshot directory", &self.dir, e))?;
        }
        Ok(doomed.len())
    }
}
