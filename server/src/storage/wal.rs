//! The durable raft log.
//!
//! # Files
//!
//! A directory of segment files `log-{number:020}.wal`, replayed in
//! ascending `number` order. `number` is the index the segment was expected
//! to start at when it was created (`last_index + 1`), bumped if needed so
//! that numbers strictly increase; it is an ordering key only (after a raft
//! conflict a later segment may rewrite lower indices).
//!
//! A segment is an 8-byte header (`b"ZKWL"`, `u32` LE version 1) followed by
//! records:
//!
//! ```text
//! [u32 LE payload length][u32 LE crc32 of kind byte + payload][u8 kind][payload]
//! ```
//!
//! Kinds:
//! - `1` Entries: a contiguous batch of raft `Entry`s, each as
//!   `[u32 LE length][protobuf bytes]`. A batch starting at an index at or
//!   below the last index replaces that index and everything after it.
//! - `2` HardState: protobuf bytes; the last one wins.
//! - `3` Compacted: `u64` LE index; entries at or below it are covered by a
//!   snapshot and are forgotten.
//!
//! Every segment starts with a HardState record (and a Compacted record if
//! anything was compacted), so deleting older segments never loses the
//! latest hard state.
//!
//! # Contract
//!
//! `append`, `set_hard_state` only write; [`Wal::sync`] makes everything
//! written so far durable with one fsync. Nothing may be acknowledged (to a
//! client or to a raft peer) before `sync` returns Ok. Any I/O error poisons
//! the Wal: the failing call returns the error and every later call returns
//! [`StorageError::Poisoned`]; the server must stop and reopen, and recovery
//! decides from what is durable. `open` itself syncs what it recovered: data
//! a crashed process wrote but never synced may still be in the page cache,
//! and is about to be treated as durable.
//!
//! Within one raft `Ready`, write entries before the hard state: a crash
//! keeps a prefix of what was written, so a durable commit index then never
//! points past the durable entries.
//!
//! # Recovery caveats
//!
//! - Under `TolerateTailCorruption` a damaged last record is dropped whether
//!   it was torn by a crash or synced and later damaged on the medium; the two
//!   look alike. `AbsoluteConsistency` refuses both.
//! - To tell a torn tail from damage in the middle, recovery looks for any
//!   valid record after the damaged one. Entry payloads are client data, so
//!   a payload that embeds a well-formed record can make a genuine torn tail
//!   look like mid-file damage: recovery then fails closed (an error), never
//!   silently drops data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message;
use raft::eraftpb::{Entry, HardState};

use super::disk::{Disk, LogFile};
use super::{RecoveryMode, Result, StorageError};

/// Default size at which the active segment is closed and a new one begun.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

const SEGMENT_MAGIC: &[u8; 4] = b"ZKWL";
const SEGMENT_VERSION: u32 = 1;
const SEGMENT_HEADER_LEN: usize = 8;
const RECORD_HEADER_LEN: usize = 9;
/// Records larger than this are treated as damaged when read, and entries
/// whose encoding is larger are refused when written.
const MAX_RECORD_PAYLOAD: usize = 256 << 20;
/// Entry batches are split into records of about this many payload bytes.
const TARGET_RECORD_PAYLOAD: usize = 4 << 20;

const KIND_ENTRIES: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_COMPACTED: u8 = 3;

/// Options for [`Wal::open_with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    pub recovery_mode: RecoveryMode,
    /// The active segment is rotated before a record is written once it has
    /// at least this many bytes.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            recovery_mode: RecoveryMode::default(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    /// The last hard state written (default if none).
    pub hard_state: HardState,
    /// The log after conflict resolution and compaction: contiguous,
    /// ascending, all above the last compaction index.
    pub entries: Vec<Entry>,
}

struct Segment {
    number: u64,
    path: PathBuf,
    /// Highest entry index ever written to this segment (0 if none).
    max_index: u64,
}

/// The durable raft log. See the module documentation.
pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: WalOptions,
    /// Oldest first; the last one is the active segment.
    segments: Vec<Segment>,
    active: Box<dyn LogFile>,
    hard_state: HardState,
    /// (first, last) index of the entries held, if any.
    held: Option<(u64, u64)>,
    compacted: u64,
    dirty: bool,
    poisoned: Option<String>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("last_index", &self.last_index())
            .field("compacted", &self.compacted)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

fn segment_name(number: u64) -> String {
    format!("log-{number:020}.wal")
}

fn parse_segment_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix("log-")?.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..4].copy_from_slice(SEGMENT_MAGIC);
    h[4..].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

fn record_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

fn encode_record(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(kind, payload).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

fn encode_hard_state(hs: &HardState) -> Result<Vec<u8>> {
    hs.write_to_bytes().map_err(|e| StorageError::InvalidRequest {
        detail: format!("cannot encode hard state: {e}"),
    })
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A structurally sound, checksum-verified record: `(kind, payload range,
/// next offset)`, `None` at end of file, or a description of the damage.
fn read_record(
    data: &[u8],
    pos: usize,
) -> std::result::Result<Option<(u8, std::ops::Range<usize>, usize)>, String> {
    let rest = data.len() - pos;
    if rest == 0 {
        return Ok(None);
    }
    if rest < RECORD_HEADER_LEN {
        return Err(format!("torn record header ({rest} bytes before end of file)"));
    }
    let len = le_u32(&data[pos..]) as usize;
    let crc = le_u32(&data[pos + 4..]);
    let kind = data[pos + 8];
    if len > MAX_RECORD_PAYLOAD {
        return Err(format!("implausible record length {len}"));
    }
    let start = pos + RECORD_HEADER_LEN;
    if len > data.len() - start {
        return Err(format!(
            "record of {len} payload bytes runs past end of file ({} bytes left)",
            data.len() - start
        ));
    }
    let payload = start..start + len;
    if record_crc(kind, &data[payload.clone()]) != crc {
        return Err("record checksum mismatch".to_string());
    }
    Ok(Some((kind, payload.clone(), payload.end)))
}

fn is_valid_record_at(data: &[u8], pos: usize) -> bool {
    matches!(
        read_record(data, pos),
        Ok(Some((KIND_ENTRIES | KIND_HARD_STATE | KIND_COMPACTED, _, _)))
    )
}

/// Offset of the first valid record strictly after `pos`, if any.
fn find_valid_record_after(data: &[u8], pos: usize) -> Option<usize> {
    (pos + 1..data.len()).find(|&p| is_valid_record_at(data, p))
}

/// Replay state while opening.
#[derive(Default)]
struct Replay {
    hard_state: HardState,
    entries: Vec<Entry>,
    compacted: u64,
}

impl Replay {
    /// Applies one record; `Err` describes why the record is inconsistent.
    /// Returns the highest entry index in the record (0 if none).
    fn apply(&mut self, kind: u8, payload: &[u8]) -> std::result::Result<u64, String> {
        match kind {
            KIND_ENTRIES => self.apply_entries(payload),
            KIND_HARD_STATE => {
                self.hard_state = HardState::parse_from_bytes(payload)
                    .map_err(|e| format!("undecodable hard state: {e}"))?;
                Ok(0)
            }
            KIND_COMPACTED => {
                let b: [u8; 8] = payload
                    .try_into()
                    .map_err(|_| format!("compacted record of {} bytes", payload.len()))?;
                let through = u64::from_le_bytes(b);
                if through > self.compacted {
                    self.compacted = through;
                    let keep_from = self.entries.partition_point(|e| e.index <= through);
                    self.entries.drain(..keep_from);
                }
                Ok(0)
            }
            other => Err(format!("unknown record kind {other}")),
        }
    }

    fn apply_entries(&mut self, payload: &[u8]) -> std::result::Result<u64, String> {
        let mut batch = Vec::new();
        let mut p = 0;
        while p < payload.len() {
            if payload.len() - p < 4 {
                return Err("truncated entry length in entries record".to_string());
            }
            let len = le_u32(&payload[p..]) as usize;
            p += 4;
            if len > payload.len() - p {
                return Err("entry runs past end of entries record".to_string());
            }
            let e = Entry::parse_from_bytes(&payload[p..p + len])
                .map_err(|e| format!("undecodable entry: {e}"))?;
            p += len;
            batch.push(e);
        }
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Err("empty entries record".to_string());
        };
        let (f, l) = (first.index, last.index);
        if batch.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err("entries record is not contiguous".to_string());
        }
        if f <= self.compacted {
            return Err(format!(
                "entries record starts at index {f}, at or below the compacted index {}",
                self.compacted
            ));
        }
        match (self.entries.first(), self.entries.last()) {
            (Some(hf), Some(hl)) => {
                let (hf, hl) = (hf.index, hl.index);
                if f <= hf {
                    self.entries = batch;
                } else if f <= hl + 1 {
                    self.entries.truncate((f - hf) as usize);
                    self.entries.extend(batch);
                } else {
                    return Err(format!(
                        "entries jump from index {hl} to {f}; a record or segment is missing"
                    ));
                }
            }
            _ => self.entries = batch,
        }
        Ok(l)
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` with the default segment
    /// size, replaying what is on disk. See [`Wal::open_with_options`].
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        mode: RecoveryMode,
    ) -> Result<(Wal, Recovered), StorageError> {
        Self::open_with_options(
            disk,
            dir,
            WalOptions {
                recovery_mode: mode,
                ..WalOptions::default()
            },
        )
    }

    /// Opens (creating if needed) the log in `dir` and replays it.
    ///
    /// A damaged record at the tail of the newest segment, with no valid
    /// record after it, is truncated away under
    /// [`RecoveryMode::TolerateTailCorruption`]; every other damage is a
    /// [`StorageError::Corruption`] naming the file and offset.
    pub fn open_with_options(
        disk: Arc<dyn Disk>,
        dir: &Path,
        opts: WalOptions,
    ) -> Result<(Wal, Recovered), StorageError> {
        disk.create_dir_all(dir)
            .map_err(|e| StorageError::io("creating the log directory", dir, e))?;
        let listed = disk
            .list(dir)
            .map_err(|e| StorageError::io("listing the log directory", dir, e))?;
        let mut found: Vec<(u64, PathBuf)> = listed
            .into_iter()
            .filter_map(|p| parse_segment_name(&p).map(|n| (n, p)))
            .collect();
        found.sort();

        let mut replay = Replay::default();
        let mut segments = Vec::with_capacity(found.len());
        // Where to cut the newest segment back to (a tolerated torn tail).
        let mut cut_tail_at = None;
        let n = found.len();
        for (i, (number, path)) in found.into_iter().enumerate() {
            let data = disk
                .read(&path)
                .map_err(|e| StorageError::io("reading a log segment", &path, e))?;
            let (max_index, cut) = replay_segment(&path, &data, i + 1 == n, opts.recovery_mode, &mut replay)?;
            cut_tail_at = cut;
            segments.push(Segment {
                number,
                path,
                max_index,
            });
        }

        let active = match segments.last() {
            Some(seg) => reopen_newest(disk.as_ref(), dir, &seg.path, cut_tail_at, &replay)?,
            None => {
                let number = replay.entries.last().map_or(replay.compacted, |e| e.index) + 1;
                let (seg, file) =
                    create_segment(disk.as_ref(), dir, number, &replay.hard_state, replay.compacted)?;
                segments.push(seg);
                file
            }
        };

        let held = match (replay.entries.first(), replay.entries.last()) {
            (Some(f), Some(l)) => Some((f.index, l.index)),
            _ => None,
        };
        let wal = Wal {
            disk,
            dir: dir.to_path_buf(),
            opts,
            segments,
            active,
            hard_state: replay.hard_state.clone(),
            held,
            compacted: replay.compacted,
            dirty: false,
            poisoned: None,
        };
        let recovered = Recovered {
            hard_state: replay.hard_state,
            entries: replay.entries,
        };
        Ok((wal, recovered))
    }

    /// Writes `entries` (contiguous, ascending; not synced). An entry whose
    /// index is at or below [`last_index`](Wal::last_index) replaces that
    /// index and everything after it. The first index must be above the
    /// compacted index and at most `last_index() + 1` (any index above the
    /// compacted one if the log holds no entries); otherwise
    /// [`StorageError::InvalidRequest`] and nothing is written.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.check_poisoned()?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let (f, l) = (first.index, last.index);
        if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err(StorageError::InvalidRequest {
                detail: "appended entries are not contiguous".to_string(),
            });
        }
        if f <= self.compacted {
            return Err(StorageError::InvalidRequest {
                detail: format!(
                    "append at index {f} is at or below the compacted index {}",
                    self.compacted
                ),
            });
        }
        if let Some((_, hl)) = self.held {
            if f > hl + 1 {
                return Err(StorageError::InvalidRequest {
                    detail: format!("append at index {f} leaves a gap after last index {hl}"),
                });
            }
        }
        // Encode everything before writing anything, so an encoding problem
        // leaves the log untouched.
        let mut records: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut payload = Vec::new();
        for e in entries {
            let bytes = e.write_to_bytes().map_err(|err| StorageError::InvalidRequest {
                detail: format!("cannot encode entry {}: {err}", e.index),
            })?;
            if bytes.len() + 4 > MAX_RECORD_PAYLOAD {
                return Err(StorageError::InvalidRequest {
                    detail: format!("entry {} is {} bytes, too large", e.index, bytes.len()),
                });
            }
            if !payload.is_empty() && payload.len() + 4 + bytes.len() > TARGET_RECORD_PAYLOAD {
                records.push((std::mem::take(&mut payload), e.index - 1));
            }
            payload.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            payload.extend_from_slice(&bytes);
        }
        records.push((payload, l));

        let res = (|| {
            for (payload, rec_last) in &records {
                self.write_record(KIND_ENTRIES, payload)?;
                let seg = self.segments.last_mut().expect("an active segment");
                seg.max_index = seg.max_index.max(*rec_last);
            }
            Ok(())
        })();
        self.poison_on_err(res)?;
        self.held = match self.held {
            Some((hf, _)) if f > hf => Some((hf, l)),
            _ => Some((f, l)),
        };
        Ok(())
    }

    /// Writes the hard state (not synced). The last one written wins.
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.check_poisoned()?;
        let payload = encode_hard_state(hs)?;
        let res = self.write_record(KIND_HARD_STATE, &payload);
        self.poison_on_err(res)?;
        self.hard_state = hs.clone();
        Ok(())
    }

    /// One fsync for everything written since the last sync: the group
    /// commit point. Nothing may be acknowledged before this returns Ok.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_poisoned()?;
        if !self.dirty {
            return Ok(());
        }
        let res = self.sync_active();
        self.poison_on_err(res)
    }

    /// Records that entries at or below `through_index` are covered by a
    /// snapshot, makes that (and everything written before) durable, and
    /// deletes the oldest segments that hold only such entries. The active
    /// segment is never deleted. A `through_index` at or below an earlier
    /// one is a no-op. `through_index` may exceed `last_index()` (a snapshot
    /// received from the leader); the log is then empty and the next append
    /// may start at any index above `through_index`.
    pub fn compact(&mut self, through_index: u64) -> Result<(), StorageError> {
        self.check_poisoned()?;
        if through_index <= self.compacted {
            return Ok(());
        }
        let res = self.compact_inner(through_index);
        self.poison_on_err(res)
    }

    /// Index of the last entry held, or the compacted index if none (0 for a
    /// new log).
    pub fn last_index(&self) -> u64 {
        self.held.map_or(self.compacted, |h| h.1)
    }

    /// The last hard state written (synced or not).
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The segment files, oldest first (the last is being appended to).
    pub fn segment_files(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Why the Wal is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(StorageError::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    fn poison_on_err(&mut self, res: Result<()>) -> Result<()> {
        if let Err(e) = &res {
            tracing::error!(error = %e, "write-ahead log poisoned");
            self.poisoned = Some(e.to_string());
        }
        res
    }

    fn active_path(&self) -> &Path {
        &self.segments.last().expect("an active segment").path
    }

    fn sync_active(&mut self) -> Result<()> {
        self.active
            .sync()
            .map_err(|e| StorageError::io("syncing the log", self.active_path(), e))?;
        self.dirty = false;
        Ok(())
    }

    fn write_record(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        if self.active.len() >= self.opts.segment_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::new();
        encode_record(kind, payload, &mut buf);
        self.dirty = true;
        let path = &self.segments.last().expect("an active segment").path;
        self.active
            .append(&buf)
            .map_err(|e| StorageError::io("appending to the log", path, e))
    }

    fn rotate(&mut self) -> Result<()> {
        // The closed segment must be durable: `sync` only syncs the active one.
        if self.dirty {
            self.sync_active()?;
        }
        let prev = self.segments.last().expect("an active segment").number;
        let number = (self.last_index() + 1).max(prev + 1);
        let (seg, file) = create_segment(
            self.disk.as_ref(),
            &self.dir,
            number,
            &self.hard_state,
            self.compacted,
        )?;
        tracing::debug!(file = %seg.path.display(), "rotated to a new log segment");
        self.segments.push(seg);
        self.active = file;
        Ok(())
    }

    fn compact_inner(&mut self, through: u64) -> Result<()> {
        self.write_record(KIND_COMPACTED, &through.to_le_bytes())?;
        self.sync_active()?;
        self.compacted = through;
        self.held = match self.held {
            Some((_, hl)) if through >= hl => None,
            Some((hf, hl)) => Some((hf.max(through + 1), hl)),
            None => None,
        };
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[0].max_index <= through {
            let path = self.segments[0].path.clone();
            self.disk
                .remove(&path)
                .map_err(|e| StorageError::io("removing a compacted log segment", &path, e))?;
            self.segments.remove(0);
            removed = true;
        }
        if removed {
            self.disk
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("syncing the log directory", &self.dir, e))?;
        }
        Ok(())
    }
}

fn check_header(data: &[u8]) -> std::result::Result<(), String> {
    if data.len() < SEGMENT_HEADER_LEN {
        return Err(format!("torn segment header ({} bytes)", data.len()));
    }
    if &data[..4] != SEGMENT_MAGIC {
        return Err("not a zonekeeper log segment (bad magic)".to_string());
    }
    let version = le_u32(&data[4..]);
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported log segment version {version}"));
    }
    Ok(())
}

/// The records every segment starts with: the hard state, and the
/// compaction index if any.
fn preamble(hs: &HardState, compacted: u64, out: &mut Vec<u8>) -> Result<()> {
    encode_record(KIND_HARD_STATE, &encode_hard_state(hs)?, out);
    if compacted > 0 {
        encode_record(KIND_COMPACTED, &compacted.to_le_bytes(), out);
    }
    Ok(())
}

/// Replays one segment into `replay`. Returns the highest entry index in it
/// and, for a tolerated torn tail of the newest segment, the offset to cut
/// it back to.
fn replay_segment(
    path: &Path,
    data: &[u8],
    is_last: bool,
    mode: RecoveryMode,
    replay: &mut Replay,
) -> Result<(u64, Option<usize>)> {
    let tolerate = mode == RecoveryMode::TolerateTailCorruption;
    if let Err(detail) = check_header(data) {
        if is_last && tolerate && data.len() < SEGMENT_HEADER_LEN {
            tracing::warn!(
                file = %path.display(),
                "newest log segment has a torn header ({} bytes); rewriting it",
                data.len()
            );
            return Ok((0, Some(0)));
        }
        return Err(StorageError::corruption(path, 0, detail));
    }
    let mut max_index = 0;
    let mut pos = SEGMENT_HEADER_LEN;
    loop {
        let detail = match read_record(data, pos) {
            Ok(None) => return Ok((max_index, None)),
            Ok(Some((kind, payload, next))) => {
                let l = replay
                    .apply(kind, &data[payload])
                    .map_err(|d| StorageError::corruption(path, pos as u64, d))?;
                max_index = max_index.max(l);
                pos = next;
                continue;
            }
            Err(detail) => detail,
        };
        // A damaged record: a torn tail only if it is the last thing in the
        // newest segment.
        let why_not_tail = if !is_last {
            Some("this is not the newest segment, so it is not a torn write".to_string())
        } else {
            find_valid_record_after(data, pos)
                .map(|p| format!("a valid record follows at offset {p}, so this is not a torn tail"))
        };
        if let Some(why) = why_not_tail {
            return Err(StorageError::corruption(
                path,
                pos as u64,
                format!("{detail}; {why}"),
            ));
        }
        if !tolerate {
            return Err(StorageError::corruption(
                path,
                pos as u64,
                format!(
                    "{detail} at the tail of the newest segment, and recovery-mode is \
                     absolute-consistency"
                ),
            ));
        }
        tracing::warn!(
            file = %path.display(),
            offset = pos,
            dropped_bytes = data.len() - pos,
            "truncating a damaged record at the tail of the newest log segment ({detail})"
        );
        return Ok((max_index, Some(pos)));
    }
}

/// Opens the newest segment for appending, cutting a tolerated torn tail,
/// and makes what was recovered durable.
fn reopen_newest(
    disk: &dyn Disk,
    dir: &Path,
    path: &Path,
    cut_tail_at: Option<usize>,
    replay: &Replay,
) -> Result<Box<dyn LogFile>> {
    let mut file = disk
        .open_append(path)
        .map_err(|e| StorageError::io("opening the newest log segment", path, e))?;
    if let Some(off) = cut_tail_at {
        file.truncate(off as u64)
            .map_err(|e| StorageError::io("truncating a torn log tail", path, e))?;
        // The cut may have taken the header or the leading hard state (a
        // crash while the segment was being created); restate them so that
        // deleting older segments stays safe.
        let mut buf = Vec::new();
        if off == 0 {
            buf.extend_from_slice(&segment_header());
        }
        preamble(&replay.hard_state, replay.compacted, &mut buf)?;
        file.append(&buf)
            .map_err(|e| StorageError::io("writing to a repaired log segment", path, e))?;
    }
    // What was recovered may have been written but never synced by the
    // previous process (it survives a process crash, not a power loss). It is
    // about to be reported to raft as durable, so make it so, along with
    // earlier creations and removals in the directory.
    file.sync()
        .map_err(|e| StorageError::io("syncing the newest log segment", path, e))?;
    disk.sync_dir(dir)
        .map_err(|e| StorageError::io("syncing the log directory", dir, e))?;
    Ok(file)
}

/// Creates segment `number` with its header and preamble, durably (file and
/// directory entry).
fn create_segment(
    disk: &dyn Disk,
    dir: &Path,
    number: u64,
    hs: &HardState,
    compacted: u64,
) -> Result<(Segment, Box<dyn LogFile>)> {
    let path = dir.join(segment_name(number));
    let mut file = disk
        .open_append(&path)
        .map_err(|e| StorageError::io("creating a log segment", &path, e))?;
    if !file.is_empty() {
        // Left over from a failed attempt in this process.
        file.truncate(0)
            .map_err(|e| StorageError::io("truncating a log segment", &path, e))?;
    }
    let mut buf = segment_header().to_vec();
    preamble(hs, compacted, &mut buf)?;
    file.append(&buf)
        .map_err(|e| StorageError::io("writing a new log segment", &path, e))?;
    file.sync()
        .map_err(|e| StorageError::io("syncing a new log segment", &path, e))?;
    disk.sync_dir(dir)
        .map_err(|e| StorageError::io("syncing the log directory", dir, e))?;
    let seg = Segment {
        number,
        path,
        max_index: 0,
    };
    Ok((seg, file))
}
