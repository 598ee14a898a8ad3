//! Storage under injected disk failures.
//!
//! Run with `cargo test -p zonekeeper-server --features failpoints --test failpoints`.
//! Fail points are process-global: every test holds a `fail::FailScenario`,
//! which serializes the tests and clears all fail points when dropped (also
//! when a test panics).

#![cfg(feature = "failpoints")]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use fail::FailScenario;
use raft::eraftpb::{Entry, HardState, SnapshotMetadata};
use zonekeeper_server::storage::{
    Disk, RealDisk, RecoveryMode, SnapshotStore, StorageError, Wal, WalOptions,
};

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}").into_bytes().into(),
        ..Default::default()
    }
}

fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| ent(i, term)).collect()
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: 1,
        commit,
        ..Default::default()
    }
}

fn disk() -> Arc<dyn Disk> {
    Arc::new(RealDisk)
}

fn opts(mode: RecoveryMode, segment_bytes: u64) -> WalOptions {
    WalOptions {
        recovery_mode: mode,
        segment_bytes,
    }
}

fn open(dir: &Path) -> (Wal, Vec<Entry>, HardState) {
    let (wal, rec) = Wal::open_with_options(disk(), dir, opts(RecoveryMode::TolerateTailCorruption, 1 << 20))
        .expect("open");
    (wal, rec.entries, rec.hard_state)
}

fn assert_io(err: &StorageError, what: &str) {
    assert!(
        matches!(err, StorageError::Io { .. }),
        "{what}: expected an I/O error, got {err}"
    );
    assert!(err.to_string().contains("injected failure"), "{what}: {err}");
}

fn assert_poisoned(wal: &mut Wal) {
    assert!(wal.poisoned().is_some());
    let calls: [(&str, StorageError); 4] = [
        ("append", wal.append(&ents(100..=100, 9)).unwrap_err()),
        ("set_hard_state", wal.set_hard_state(&hs(9, 9)).unwrap_err()),
        ("sync", wal.sync().unwrap_err()),
        ("compact", wal.compact(1000).unwrap_err()),
    ];
    for (name, err) in calls {
        assert!(
            matches!(err, StorageError::Poisoned { .. }),
            "{name} after a failure: {err}"
        );
    }
}

#[test]
fn failed_append_poisons_and_reopen_recovers_the_synced_prefix() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path());
    wal.append(&ents(1..=5, 1)).unwrap();
    wal.set_hard_state(&hs(1, 3)).unwrap();
    wal.sync().unwrap();

    fail::cfg("disk::append", "return").unwrap();
    let err = wal.append(&ents(6..=7, 1)).unwrap_err();
    assert_io(&err, "append");
    fail::remove("disk::append");
    assert_poisoned(&mut wal);
    drop(wal);

    let (_, entries, hard_state) = open(dir.path());
    assert_eq!(entries, ents(1..=5, 1));
    assert_eq!(hard_state, hs(1, 3));
}

#[test]
fn failed_hard_state_write_poisons() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path());
    wal.append(&ents(1..=2, 1)).unwrap();
    wal.set_hard_state(&hs(1, 1)).unwrap();
    wal.sync().unwrap();
    fail::cfg("disk::append", "return").unwrap();
    assert_io(&wal.set_hard_state(&hs(2, 2)).unwrap_err(), "set_hard_state");
    fail::remove("disk::append");
    assert_poisoned(&mut wal);
    assert_eq!(wal.hard_state(), &hs(1, 1));
    drop(wal);
    assert_eq!(open(dir.path()).2, hs(1, 1));
}

#[test]
fn torn_append_recovers_the_synced_prefix_or_errors_when_strict() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path());
    wal.append(&ents(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    let seg = wal.segment_files().pop().unwrap();
    let synced_len = fs::metadata(&seg).unwrap().len();

    fail::cfg("disk::append::torn", "return").unwrap();
    assert_io(&wal.append(&ents(6..=8, 1)).unwrap_err(), "torn append");
    fail::remove("disk::append::torn");
    assert_poisoned(&mut wal);
    drop(wal);
    assert!(
        fs::metadata(&seg).unwrap().len() > synced_len,
        "half a record is on disk"
    );

    let strict = Wal::open_with_options(
        disk(),
        dir.path(),
        opts(RecoveryMode::AbsoluteConsistency, 1 << 20),
    );
    match strict {
        Err(StorageError::Corruption { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, synced_len);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("absolute consistency accepted a torn record"),
    }

    let synced_bytes = fs::read(&seg).unwrap()[..synced_len as usize].to_vec();
    let (mut wal, entries, _) = open(dir.path());
    assert_eq!(entries, ents(1..=5, 1));
    // The torn half record is gone; the synced prefix is untouched.
    assert_eq!(fs::read(&seg).unwrap()[..synced_len as usize], synced_bytes[..]);
    wal.append(&ents(6..=6, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(dir.path()).1, [ents(1..=5, 1), ents(6..=6, 2)].concat());
}

#[test]
fn failed_sync_poisons_and_nothing_unwritten_appears() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path());
    wal.append(&ents(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    wal.append(&ents(6..=7, 1)).unwrap();

    fail::cfg("disk::sync", "return").unwrap();
    assert_io(&wal.sync().unwrap_err(), "sync");
    fail::remove("disk::sync");
    assert_poisoned(&mut wal);
    drop(wal);

    // Entries 6 and 7 reached the page cache, so a process restart may see
    // them (and recovery syncs them); what must hold is that the synced
    // prefix is there and nothing else.
    let (_, entries, _) = open(dir.path());
    assert!(entries.starts_with(&ents(1..=5, 1)), "{entries:?}");
    assert!(ents(1..=7, 1).starts_with(&entries), "{entries:?}");
}

#[test]
fn failures_while_rotating_poison() {
    let _scenario = FailScenario::setup();
    for point in ["disk::sync", "disk::open", "disk::sync_dir"] {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(RecoveryMode::TolerateTailCorruption, 300);
        let (mut wal, _) = Wal::open_with_options(disk(), dir.path(), o).unwrap();
        let mut next = 1;
        // Fill the first segment and part of the second, synced.
        while wal.segment_files().len() == 1 {
            wal.append(&[ent(next, 1)]).unwrap();
            next += 1;
        }
        wal.sync().unwrap();
        let synced = next - 1;
        // Fill the second segment up to the rotation threshold, unsynced.
        let active = wal.segment_files().pop().unwrap();
        while fs::metadata(&active).unwrap().len() < 300 {
            wal.append(&[ent(next, 1)]).unwrap();
            next += 1;
        }
        assert_eq!(wal.segment_files().len(), 2);
        // The next append rotates.
        fail::cfg(point, "return").unwrap();
        let err = wal.append(&[ent(next, 1)]).unwrap_err();
        fail::remove(point);
        assert_io(&err, point);
        assert_poisoned(&mut wal);
        drop(wal);
        let (_, rec) = Wal::open_with_options(disk(), dir.path(), o).unwrap();
        let got: Vec<u64> = rec.entries.iter().map(|e| e.index).collect();
        assert!(
            got.len() as u64 >= synced,
            "{point}: lost synced entries: {got:?}"
        );
        assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>(), "{point}");
        assert!((got.len() as u64) < next, "{point}: {got:?}");
    }
}

#[test]
fn failed_compaction_poisons_and_recovery_is_consistent() {
    let _scenario = FailScenario::setup();
    for point in ["disk::remove", "disk::sync_dir", "disk::sync"] {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(RecoveryMode::TolerateTailCorruption, 300);
        let (mut wal, _) = Wal::open_with_options(disk(), dir.path(), o).unwrap();
        for i in 1..=40 {
            wal.append(&[ent(i, 1)]).unwrap();
        }
        wal.set_hard_state(&hs(1, 40)).unwrap();
        wal.sync().unwrap();
        fail::cfg(point, "return").unwrap();
        let err = wal.compact(30).unwrap_err();
        fail::remove(point);
        assert_io(&err, point);
        assert_poisoned(&mut wal);
        drop(wal);
        let (_, rec) = Wal::open_with_options(disk(), dir.path(), o).unwrap();
        let got: Vec<u64> = rec.entries.iter().map(|e| e.index).collect();
        // Either the compaction marker made it (31..=40) or not (1..=40).
        assert!(
            got == (31..=40).collect::<Vec<_>>() || got == (1..=40).collect::<Vec<_>>(),
            "{point}: {got:?}"
        );
        assert_eq!(rec.hard_state, hs(1, 40), "{point}");
    }
}

#[test]
fn failed_open_reports_io_error_with_path() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    fail::cfg("disk::open", "return").unwrap();
    let err = Wal::open(disk(), dir.path(), RecoveryMode::default())
        .map(|_| ())
        .unwrap_err();
    fail::remove("disk::open");
    assert_io(&err, "open");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    // Nothing half-made stops a later open.
    let (_, entries, _) = open(dir.path());
    assert!(entries.is_empty());
}

fn meta(index: u64, term: u64) -> SnapshotMetadata {
    SnapshotMetadata {
        index,
        term,
        ..Default::default()
    }
}

#[test]
fn failed_snapshot_save_leaves_the_previous_one_loadable() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(disk(), dir.path()).unwrap();
    store.save(&meta(10, 1), b"state at 10").unwrap();

    for point in ["disk::rename", "disk::write_atomic"] {
        fail::cfg(point, "return").unwrap();
        let err = store.save(&meta(20, 2), b"state at 20").unwrap_err();
        fail::remove(point);
        assert_io(&err, point);
        let (m, data) = store.load_latest().unwrap().unwrap();
        assert_eq!((m.index, m.term), (10, 1), "{point}");
        assert_eq!(data, b"state at 10");
    }
    // The failed rename left its temporary file; purge clears it.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    assert_eq!(store.purge().unwrap(), 1);

    store.save(&meta(20, 2), b"state at 20").unwrap();
    let (m, data) = store.load_latest().unwrap().unwrap();
    assert_eq!((m.index, m.term, data.as_slice()), (20, 2, &b"state at 20"[..]));
}

#[test]
fn failed_snapshot_purge_reports_and_keeps_the_newest() {
    let _scenario = FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(disk(), dir.path()).unwrap().with_keep(1);
    store.save(&meta(10, 1), b"a").unwrap();
    store.save(&meta(20, 1), b"b").unwrap();
    fail::cfg("disk::remove", "return").unwrap();
    assert_io(&store.purge().unwrap_err(), "purge");
    fail::remove("disk::remove");
    assert_eq!(store.load_latest().unwrap().unwrap().1, b"b");
    assert_eq!(store.purge().unwrap(), 1);
    assert_eq!(store.list().unwrap().len(), 1);
}
