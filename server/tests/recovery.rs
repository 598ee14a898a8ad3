//! WAL recovery from damaged files on a real disk: torn tails, flipped
//! bytes. No fail points needed; see `failpoints.rs` for injected errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft::eraftpb::{Entry, HardState};
use zonekeeper_server::storage::{Disk, RealDisk, RecoveryMode, StorageError, Wal, WalOptions};

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}").into_bytes().into(),
        ..Default::default()
    }
}

fn disk() -> Arc<dyn Disk> {
    Arc::new(RealDisk)
}

fn open(dir: &Path, mode: RecoveryMode) -> Result<(Wal, Vec<u64>), StorageError> {
    let opts = WalOptions {
        recovery_mode: mode,
        segment_bytes: 1 << 20,
    };
    Wal::open_with_options(disk(), dir, opts)
        .map(|(w, rec)| (w, rec.entries.iter().map(|e| e.index).collect()))
}

/// Writes entries 1..=n, one record each, synced one by one. Returns the
/// segment path and the file length after each record (`ends[i]` is the
/// end of entry i+1's record).
fn build(dir: &Path, n: u64) -> (PathBuf, Vec<usize>) {
    let (mut wal, _) = open(dir, RecoveryMode::AbsoluteConsistency).unwrap();
    let path = wal.segment_files().pop().unwrap();
    let mut ends = Vec::new();
    for i in 1..=n {
        wal.append(&[ent(i, 1)]).unwrap();
        wal.sync().unwrap();
        ends.push(fs::metadata(&path).unwrap().len() as usize);
    }
    (path, ends)
}

fn expect_corruption(
    res: Result<(Wal, Vec<u64>), StorageError>,
    file: &Path,
    offset: usize,
    what: &str,
) -> String {
    match res {
        Err(StorageError::Corruption {
            file: f,
            offset: o,
            detail,
        }) => {
            assert_eq!(f, file, "{what}");
            assert_eq!(o, offset as u64, "{what}: {detail}");
            detail
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok((_, entries)) => panic!("{what}: opened with entries {entries:?}"),
    }
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let src = tempfile::tempdir().unwrap();
    let (path, ends) = build(src.path(), 4);
    let full = fs::read(&path).unwrap();
    let last_start = ends[2];
    for cut in last_start..full.len() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(path.file_name().unwrap());
        fs::write(&seg, &full[..cut]).unwrap();

        let strict = open(dir.path(), RecoveryMode::AbsoluteConsistency);
        if cut == last_start {
            assert_eq!(strict.unwrap().1, vec![1, 2, 3]);
        } else {
            let detail = expect_corruption(strict, &seg, last_start, &format!("cut {cut}"));
            assert!(detail.contains("absolute-consistency"), "{detail}");
        }

        let (mut wal, entries) = open(dir.path(), RecoveryMode::TolerateTailCorruption).unwrap();
        assert_eq!(entries, vec![1, 2, 3], "cut {cut}");
        // The torn bytes are gone; the kept prefix is untouched.
        assert_eq!(fs::read(&seg).unwrap()[..last_start], full[..last_start]);
        // The log continues cleanly after the truncation.
        wal.append(&[ent(4, 2)]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, entries) = open(dir.path(), RecoveryMode::AbsoluteConsistency).unwrap();
        assert_eq!(entries, vec![1, 2, 3, 4]);
    }
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption_in_both_modes() {
    let src = tempfile::tempdir().unwrap();
    let (path, ends) = build(src.path(), 4);
    let full = fs::read(&path).unwrap();
    let (start, end) = (ends[0], ends[1]);
    for i in start..end {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(path.file_name().unwrap());
        let mut bad = full.clone();
        bad[i] ^= 0x01;
        fs::write(&seg, &bad).unwrap();
        for mode in [
            RecoveryMode::AbsoluteConsistency,
            RecoveryMode::TolerateTailCorruption,
        ] {
            let what = format!("byte {i} under {mode:?}");
            let detail = expect_corruption(open(dir.path(), mode), &seg, start, &what);
            if mode == RecoveryMode::TolerateTailCorruption {
                assert!(detail.contains("valid record follows"), "{what}: {detail}");
            }
        }
        // Nothing was truncated or rewritten.
        assert_eq!(fs::read(&seg).unwrap(), bad);
    }
}

#[test]
fn corruption_message_tells_the_operator_what_to_do() {
    let src = tempfile::tempdir().unwrap();
    let (path, ends) = build(src.path(), 3);
    let mut bad = fs::read(&path).unwrap();
    bad[ends[0] + 12] ^= 0xff;
    fs::write(&path, &bad).unwrap();
    let err = open(src.path(), RecoveryMode::TolerateTailCorruption).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {}", ends[0])), "{msg}");
    assert!(msg.contains("restore this member"), "{msg}");
}

#[test]
fn damaged_tail_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        recovery_mode: RecoveryMode::TolerateTailCorruption,
        segment_bytes: 200,
    };
    let (mut wal, _) = Wal::open_with_options(disk(), dir.path(), opts).unwrap();
    for i in 1..=20 {
        wal.append(&[ent(i, 1)]).unwrap();
    }
    wal.sync().unwrap();
    let files = wal.segment_files();
    assert!(files.len() > 2);
    drop(wal);
    // Cut the last byte of the first segment: in the newest segment this
    // would be a torn tail; here it cannot be.
    let first = &files[0];
    let data = fs::read(first).unwrap();
    fs::write(first, &data[..data.len() - 1]).unwrap();
    let res = Wal::open_with_options(disk(), dir.path(), opts);
    match res {
        Err(StorageError::Corruption { file, detail, .. }) => {
            assert_eq!(&file, first);
            assert!(detail.contains("not the newest segment"), "{detail}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a log with a damaged older segment"),
    }
}

#[test]
fn missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        recovery_mode: RecoveryMode::TolerateTailCorruption,
        segment_bytes: 200,
    };
    let (mut wal, _) = Wal::open_with_options(disk(), dir.path(), opts).unwrap();
    for i in 1..=20 {
        wal.append(&[ent(i, 1)]).unwrap();
    }
    wal.sync().unwrap();
    let files = wal.segment_files();
    drop(wal);
    fs::remove_file(&files[1]).unwrap();
    let err = Wal::open_with_options(disk(), dir.path(), opts)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StorageError::Corruption { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn damaged_last_record_is_dropped_only_when_tolerated() {
    // A fully written but damaged last record looks exactly like a torn
    // write: tolerated (dropped) by default, an error under absolute
    // consistency.
    let src = tempfile::tempdir().unwrap();
    let (path, ends) = build(src.path(), 3);
    let mut bad = fs::read(&path).unwrap();
    bad[ends[2] - 1] ^= 0x80;
    fs::write(&path, &bad).unwrap();
    expect_corruption(
        open(src.path(), RecoveryMode::AbsoluteConsistency),
        &path,
        ends[1],
        "absolute",
    );
    let (_, entries) = open(src.path(), RecoveryMode::TolerateTailCorruption).unwrap();
    assert_eq!(entries, vec![1, 2]);
}

#[test]
fn torn_start_of_a_new_last_segment_is_tolerated() {
    // A crash while creating the next segment left only part of its header,
    // or the header and part of its leading hard state record.
    let mut header_and_half_a_record = b"ZKWL\x01\x00\x00\x00".to_vec();
    header_and_half_a_record.extend_from_slice(&[7, 0, 0, 0, 1]);
    for torn in [b"ZKW".to_vec(), header_and_half_a_record] {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            recovery_mode: RecoveryMode::TolerateTailCorruption,
            segment_bytes: 1 << 20,
        };
        let (mut wal, _) = Wal::open_with_options(disk(), dir.path(), opts).unwrap();
        wal.append(&[ent(1, 1), ent(2, 1)]).unwrap();
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: 2,
            ..Default::default()
        };
        wal.set_hard_state(&hs).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let next = dir.path().join("log-00000000000000000003.wal");
        fs::write(&next, &torn).unwrap();
        let strict = Wal::open_with_options(
            disk(),
            dir.path(),
            WalOptions {
                recovery_mode: RecoveryMode::AbsoluteConsistency,
                ..opts
            },
        );
        assert!(matches!(strict, Err(StorageError::Corruption { .. })));
        let (mut wal, rec) = Wal::open_with_options(disk(), dir.path(), opts).unwrap();
        assert_eq!(rec.entries, vec![ent(1, 1), ent(2, 1)]);
        assert_eq!(rec.hard_state, hs);
        // The repaired segment restates the hard state, so the older
        // segment can go.
        wal.append(&[ent(3, 1)]).unwrap();
        wal.compact(2).unwrap();
        assert_eq!(wal.segment_files(), vec![next.clone()]);
        drop(wal);
        let (_, rec) = Wal::open_with_options(disk(), dir.path(), opts).unwrap();
        assert_eq!(rec.entries, vec![ent(3, 1)]);
        assert_eq!(rec.hard_state, hs);
    }
}
