//! Unit tests for the WAL and snapshot store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use raft::eraftpb::{Entry, HardState, SnapshotMetadata};

use super::wal::WalOptions;
use super::*;

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

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn summary(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

fn small(segment_bytes: u64) -> WalOptions {
    WalOptions {
        recovery_mode: RecoveryMode::TolerateTailCorruption,
        segment_bytes,
    }
}

fn open_mem(disk: &MemDisk, opts: WalOptions) -> (Wal, Recovered) {
    Wal::open_with_options(Arc::new(disk.clone()), Path::new("/wal"), opts).expect("open")
}

fn segment_numbers(files: &[PathBuf]) -> Vec<u64> {
    files
        .iter()
        .map(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n["log-".len()..n.len() - ".wal".len()].parse().unwrap()
        })
        .collect()
}

#[test]
fn append_sync_reopen_on_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(RealDisk);
    {
        let (mut wal, rec) = Wal::open(disk.clone(), dir.path(), RecoveryMode::default()).unwrap();
        assert_eq!(rec, Recovered::default());
        assert_eq!(wal.last_index(), 0);
        wal.append(&ents(1..=10, 1)).unwrap();
        wal.set_hard_state(&hs(1, 2, 7)).unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.last_index(), 10);
    }
    let (wal, rec) = Wal::open(disk, dir.path(), RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(rec.entries, ents(1..=10, 1));
    assert_eq!(rec.hard_state, hs(1, 2, 7));
    assert_eq!(wal.last_index(), 10);
    assert_eq!(wal.hard_state(), &hs(1, 2, 7));
    assert_eq!(wal.segment_files().len(), 1);
}

#[test]
fn new_log_creates_first_segment() {
    let disk = MemDisk::new();
    let (wal, _) = open_mem(&disk, WalOptions::default());
    let files = wal.segment_files();
    assert_eq!(files, vec![PathBuf::from("/wal/log-00000000000000000001.wal")]);
    drop(wal);
    // The new segment and its directory entry are durable.
    disk.crash();
    let (wal, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(wal.segment_files(), files);
    assert_eq!(rec, Recovered::default());
}

#[test]
fn conflicting_append_replaces_suffix() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=10, 1)).unwrap();
    wal.append(&ents(5..=7, 2)).unwrap();
    assert_eq!(wal.last_index(), 7);
    wal.append(&ents(8..=8, 2)).unwrap();
    // Replacing from the very first index.
    wal.append(&ents(1..=2, 3)).unwrap();
    wal.append(&ents(3..=4, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, [ents(1..=2, 3), ents(3..=4, 3)].concat());
    assert_eq!(wal.last_index(), 4);
}

#[test]
fn conflict_across_segments_and_rotation_order() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, small(200));
    for i in 1..=30 {
        wal.append(&[ent(i, 1)]).unwrap();
    }
    let before = wal.segment_files().len();
    assert!(before > 3, "expected rotation, got {before} segments");
    // Rewrite from index 3 (in the first segment), long enough to rotate.
    for i in 3..=12 {
        wal.append(&[ent(i, 2)]).unwrap();
    }
    wal.sync().unwrap();
    let numbers = segment_numbers(&wal.segment_files());
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    drop(wal);
    let (wal, rec) = open_mem(&disk, small(200));
    assert_eq!(rec.entries, [ents(1..=2, 1), ents(3..=12, 2)].concat());
    assert_eq!(wal.last_index(), 12);
}

#[test]
fn rotation_spreads_log_over_segments() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(RealDisk);
    let (mut wal, _) = Wal::open_with_options(disk.clone(), dir.path(), small(1024)).unwrap();
    for i in 1..=200 {
        wal.append(&[ent(i, 1)]).unwrap();
        if i % 10 == 0 {
            wal.set_hard_state(&hs(1, 1, i)).unwrap();
            wal.sync().unwrap();
        }
    }
    let files = wal.segment_files();
    assert!(files.len() >= 5, "{} segments", files.len());
    let numbers = segment_numbers(&files);
    assert_eq!(numbers[0], 1);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    drop(wal);
    let (_, rec) = Wal::open_with_options(disk, dir.path(), small(1024)).unwrap();
    assert_eq!(rec.entries, ents(1..=200, 1));
    assert_eq!(rec.hard_state, hs(1, 1, 200));
}

#[test]
fn compaction_deletes_only_covered_segments() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, small(300));
    for i in 1..=50 {
        wal.append(&[ent(i, 1)]).unwrap();
    }
    wal.set_hard_state(&hs(1, 1, 40)).unwrap();
    wal.sync().unwrap();
    let files = wal.segment_files();
    wal.compact(20).unwrap();
    let left = wal.segment_files();
    assert!(left.len() < files.len(), "nothing deleted");
    assert_eq!(left, files[files.len() - left.len()..].to_vec());
    // The first remaining segment still holds entry 21 or earlier.
    let first_left = segment_numbers(&left)[0];
    assert!(
        first_left <= 21,
        "deleted a segment holding entry 21: {first_left}"
    );
    assert_eq!(wal.last_index(), 50);
    drop(wal);
    disk.crash();
    let (mut wal, rec) = open_mem(&disk, small(300));
    assert_eq!(rec.entries, ents(21..=50, 1));
    assert_eq!(rec.hard_state, hs(1, 1, 40));
    // Compaction at or below an earlier one is a no-op.
    wal.compact(10).unwrap();
    wal.compact(50).unwrap();
    assert_eq!(wal.segment_files().len(), 1, "all but the active segment go");
    assert_eq!(wal.last_index(), 50);
    drop(wal);
    let (_, rec) = open_mem(&disk, small(300));
    assert!(rec.entries.is_empty());
    assert_eq!(rec.hard_state, hs(1, 1, 40));
}

#[test]
fn compact_past_the_end_then_append() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=5, 1)).unwrap();
    wal.set_hard_state(&hs(1, 1, 5)).unwrap();
    // A snapshot at 100 arrives from the leader.
    wal.compact(100).unwrap();
    assert_eq!(wal.last_index(), 100);
    let err = wal.append(&ents(50..=51, 2)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest { .. }), "{err}");
    wal.append(&ents(101..=103, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash();
    let (wal, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, ents(101..=103, 2));
    assert_eq!(wal.last_index(), 103);
}

#[test]
fn hard_state_last_wins_across_rotation_and_compaction() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, small(150));
    wal.set_hard_state(&hs(1, 0, 0)).unwrap();
    wal.set_hard_state(&hs(2, 3, 0)).unwrap();
    for i in 1..=20 {
        wal.append(&[ent(i, 2)]).unwrap();
    }
    wal.set_hard_state(&hs(2, 3, 20)).unwrap();
    // Many rotations after the last hard state record.
    for i in 21..=40 {
        wal.append(&[ent(i, 2)]).unwrap();
    }
    wal.sync().unwrap();
    wal.compact(39).unwrap();
    assert_eq!(wal.segment_files().len(), 2);
    drop(wal);
    disk.crash();
    let (_, rec) = open_mem(&disk, small(150));
    assert_eq!(rec.hard_state, hs(2, 3, 20));
    assert_eq!(summary(&rec.entries), vec![(40, 2)]);
}

#[test]
fn invalid_appends_are_refused_without_poisoning() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=3, 1)).unwrap();
    let gap = wal.append(&ents(5..=6, 1)).unwrap_err();
    assert!(matches!(gap, StorageError::InvalidRequest { .. }), "{gap}");
    let mut holes = ents(4..=4, 1);
    holes.push(ent(6, 1));
    let err = wal.append(&holes).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest { .. }), "{err}");
    wal.compact(2).unwrap();
    let err = wal.append(&ents(2..=3, 2)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest { .. }), "{err}");
    assert!(wal.poisoned().is_none());
    wal.append(&[]).unwrap();
    wal.append(&ents(4..=4, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, ents(3..=4, 1));
}

#[test]
fn large_batch_is_split_into_records() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    let big: Vec<Entry> = (1..=12)
        .map(|i| {
            let mut e = ent(i, 1);
            e.data = vec![i as u8; 1 << 20].into();
            e
        })
        .collect();
    wal.append(&big).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, big);
}

#[test]
fn unsynced_writes_are_lost_on_crash() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=3, 1)).unwrap();
    wal.set_hard_state(&hs(1, 1, 2)).unwrap();
    wal.sync().unwrap();
    wal.append(&ents(4..=6, 1)).unwrap();
    wal.set_hard_state(&hs(1, 1, 5)).unwrap();
    // Sync with nothing new is free, and does not change anything.
    drop(wal);
    disk.crash();
    let (mut wal, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, ents(1..=3, 1));
    assert_eq!(rec.hard_state, hs(1, 1, 2));
    wal.sync().unwrap();
    wal.append(&ents(4..=4, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash();
    let (_, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, [ents(1..=3, 1), ents(4..=4, 2)].concat());
}

#[test]
fn stray_files_are_ignored() {
    let disk = MemDisk::new();
    disk.create_dir_all(Path::new("/wal")).unwrap();
    disk.set_contents(Path::new("/wal/README"), b"hello".to_vec());
    disk.set_contents(Path::new("/wal/log-1.wal"), b"junk".to_vec());
    disk.set_contents(Path::new("/wal/.log-00000000000000000009.wal.tmp"), b"x".to_vec());
    let (mut wal, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec, Recovered::default());
    wal.append(&ents(1..=1, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = open_mem(&disk, WalOptions::default());
    assert_eq!(rec.entries, ents(1..=1, 1));
}

#[test]
fn bad_segment_header_is_corruption() {
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=2, 1)).unwrap();
    wal.sync().unwrap();
    let path = wal.segment_files()[0].clone();
    drop(wal);
    let mut data = disk.contents(&path).unwrap();
    data[0] = b'X';
    disk.set_contents(&path, data);
    match Wal::open(Arc::new(disk.clone()), Path::new("/wal"), RecoveryMode::default()) {
        Err(StorageError::Corruption { file, offset, .. }) => {
            assert_eq!(file, path);
            assert_eq!(offset, 0);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a segment with a bad header"),
    }
}

#[test]
fn torn_tail_at_every_offset_in_memory() {
    // Build a log, then cut the last segment at every offset inside its last
    // record (the full-file cut keeps everything).
    let disk = MemDisk::new();
    let (mut wal, _) = open_mem(&disk, WalOptions::default());
    wal.append(&ents(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    let path = wal.segment_files()[0].clone();
    let before_last = disk.contents(&path).unwrap().len();
    wal.append(&ents(4..=5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let full = disk.contents(&path).unwrap();
    for cut in before_last..full.len() {
        let d = MemDisk::new();
        d.create_dir_all(Path::new("/wal")).unwrap();
        d.set_contents(&path, full[..cut].to_vec());
        let strict = Wal::open(
            Arc::new(d.clone()),
            Path::new("/wal"),
            RecoveryMode::AbsoluteConsistency,
        );
        if cut == before_last {
            assert_eq!(strict.unwrap().1.entries, ents(1..=3, 1));
        } else {
            match strict {
                Err(StorageError::Corruption { offset, .. }) => {
                    assert_eq!(offset, before_last as u64)
                }
                Err(e) => panic!("cut {cut}: {e}"),
                Ok(_) => panic!("cut {cut}: absolute consistency accepted a torn tail"),
            }
        }
        let (mut wal, rec) = open_mem(&d, WalOptions::default());
        assert_eq!(rec.entries, ents(1..=3, 1), "cut {cut}");
        assert_eq!(d.contents(&path).unwrap()[..before_last], full[..before_last]);
        wal.append(&ents(4..=4, 2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, rec) = open_mem(&d, WalOptions::default());
        assert_eq!(rec.entries, [ents(1..=3, 1), ents(4..=4, 2)].concat());
    }
}

#[test]
fn recovery_mode_config_names() {
    let m: RecoveryMode = serde_json::from_str("\"absolute-consistency\"").unwrap();
    assert_eq!(m, RecoveryMode::AbsoluteConsistency);
    let m: RecoveryMode = serde_json::from_str("\"tolerate-tail-corruption\"").unwrap();
    assert_eq!(m, RecoveryMode::TolerateTailCorruption);
    assert!(serde_json::from_str::<RecoveryMode>("\"skip-everything\"").is_err());
    assert_eq!(RecoveryMode::default(), RecoveryMode::TolerateTailCorruption);
}

// ---------------------------------------------------------------- snapshots

fn meta(index: u64, term: u64) -> SnapshotMetadata {
    let mut m = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    m.mut_conf_state().voters = vec![1, 2, 3];
    m
}

#[test]
fn snapshot_save_and_load_latest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(Arc::new(RealDisk), &dir.path().join("snap")).unwrap();
    assert!(store.load_latest().unwrap().is_none());
    store.save(&meta(10, 1), b"ten").unwrap();
    store.save(&meta(30, 2), b"thirty").unwrap();
    store.save(&meta(20, 2), b"twenty").unwrap();
    let (m, data) = store.load_latest().unwrap().unwrap();
    assert_eq!(m, meta(30, 2));
    assert_eq!(data, b"thirty");
    // Saving the same index and term again replaces it.
    store.save(&meta(30, 2), b"thirty again").unwrap();
    assert_eq!(store.load_latest().unwrap().unwrap().1, b"thirty again");
    let names: Vec<(u64, u64)> = store.list().unwrap().iter().map(|f| (f.index, f.term)).collect();
    assert_eq!(names, vec![(10, 1), (20, 2), (30, 2)]);
    // Empty data round-trips.
    store.save(&meta(31, 2), b"").unwrap();
    assert_eq!(store.load_latest().unwrap().unwrap(), (meta(31, 2), Vec::new()));
}

#[test]
fn snapshot_purge_keeps_newest() {
    let disk = MemDisk::new();
    let dir = Path::new("/snap");
    let store = SnapshotStore::open(Arc::new(disk.clone()), dir).unwrap();
    for i in 1..=5 {
        store.save(&meta(i * 10, 1), &[i as u8; 10]).unwrap();
    }
    disk.set_contents(
        &dir.join(".snap-00000000000000000060-00000000000000000001.snap.tmp"),
        vec![1],
    );
    disk.set_contents(&dir.join("unrelated"), vec![1]);
    assert_eq!(store.purge().unwrap(), 3);
    let left: Vec<u64> = store.list().unwrap().iter().map(|f| f.index).collect();
    assert_eq!(left, vec![30, 40, 50]);
    assert!(disk.contents(&dir.join("unrelated")).is_some());
    let store = store.with_keep(1);
    assert_eq!(store.purge().unwrap(), 2);
    assert_eq!(store.load_latest().unwrap().unwrap().0, meta(50, 1));
    assert_eq!(store.purge().unwrap(), 0);
}

#[test]
fn damaged_newest_snapshot_is_an_error_not_a_fallback() {
    let disk = MemDisk::new();
    let dir = Path::new("/snap");
    let store = SnapshotStore::open(Arc::new(disk.clone()), dir).unwrap();
    store.save(&meta(10, 1), b"older").unwrap();
    store.save(&meta(20, 1), b"newer data").unwrap();
    let newest = store.list().unwrap().pop().unwrap().path;
    let good = disk.contents(&newest).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        disk.set_contents(&newest, bad);
        match store.load_latest() {
            Err(StorageError::Corruption { file, .. }) => assert_eq!(file, newest),
            Err(e) => panic!("byte {i}: {e}"),
            Ok(_) => panic!("byte {i}: a damaged snapshot was used"),
        }
    }
    for len in 0..good.len() {
        disk.set_contents(&newest, good[..len].to_vec());
        assert!(
            matches!(store.load_latest(), Err(StorageError::Corruption { .. })),
            "len {len}"
        );
    }
    // Not deleted behind the operator's back.
    assert!(disk.contents(&newest).is_some());
    // A file whose name disagrees with its metadata is refused too.
    disk.remove(&newest).unwrap();
    disk.set_contents(
        &dir.join("snap-00000000000000000099-00000000000000000001.snap"),
        good,
    );
    let err = store.load_latest().unwrap_err();
    assert!(err.to_string().contains("file name says index 99"), "{err}");
}

// ---------------------------------------------------------------- model test

#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries starting `back` entries before the end.
    Append {
        back: u64,
        count: u64,
        term: u64,
    },
    HardState {
        term: u64,
        vote: u64,
        commit: u64,
    },
    Sync,
    /// Compact `ahead` entries past the compacted index (may pass the end).
    Compact {
        ahead: u64,
    },
    /// Close and reopen cleanly (no crash).
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..4, 1u64..5, 1u64..4).prop_map(|(back, count, term)| Op::Append { back, count, term }),
        2 => (1u64..5, 0u64..4, 0u64..50).prop_map(|(term, vote, commit)| Op::HardState { term, vote, commit }),
        2 => Just(Op::Sync),
        1 => (1u64..12).prop_map(|ahead| Op::Compact { ahead }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    entries: Vec<Entry>,
    hard_state: HardState,
    compacted: u64,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.compacted, |e| e.index)
    }

    fn append(&mut self, batch: Vec<Entry>) {
        let f = batch[0].index;
        self.entries.retain(|e| e.index < f);
        self.entries.extend(batch);
    }

    fn compact(&mut self, through: u64) {
        self.compacted = self.compacted.max(through);
        self.entries.retain(|e| e.index > through);
    }
}

/// Runs `ops`; returns the model state after every op and the position of
/// the last state known durable.
fn run(disk: &MemDisk, opts: WalOptions, ops: &[Op]) -> (Vec<Model>, usize) {
    let (mut wal, _) = open_mem(disk, opts);
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    let mut durable = 0;
    for op in ops {
        match *op {
            Op::Append { back, count, term } => {
                let f = (model.last_index() + 1)
                    .saturating_sub(back)
                    .max(model.compacted + 1);
                let batch = ents(f..=f + count - 1, term);
                wal.append(&batch).unwrap();
                model.append(batch);
            }
            Op::HardState { term, vote, commit } => {
                wal.set_hard_state(&hs(term, vote, commit)).unwrap();
                model.hard_state = hs(term, vote, commit);
            }
            Op::Sync => wal.sync().unwrap(),
            Op::Compact { ahead } => {
                wal.compact(model.compacted + ahead).unwrap();
                model.compact(model.compacted + ahead);
            }
            Op::Reopen => {
                drop(wal);
                let (w, rec) = open_mem(disk, opts);
                wal = w;
                assert_eq!(summary(&rec.entries), summary(&model.entries));
                assert_eq!(rec.entries, model.entries);
                assert_eq!(rec.hard_state, model.hard_state);
            }
        }
        assert_eq!(wal.last_index(), model.last_index());
        states.push(model.clone());
        if matches!(op, Op::Sync | Op::Compact { .. } | Op::Reopen) {
            durable = states.len() - 1;
        }
    }
    (states, durable)
}

fn matches_model(rec: &Recovered, m: &Model) -> bool {
    rec.entries == m.entries && rec.hard_state == m.hard_state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reopen_yields_model_state(
        ops in prop::collection::vec(op(), 1..80),
        segment_bytes in prop_oneof![Just(1u64), 100u64..400, Just(1 << 20)],
    ) {
        let disk = MemDisk::new();
        let opts = small(segment_bytes);
        let (states, _) = run(&disk, opts, &ops);
        let (_, rec) = open_mem(&disk, opts);
        let model = states.last().unwrap();
        prop_assert_eq!(&rec.entries, &model.entries);
        prop_assert_eq!(&rec.hard_state, &model.hard_state);
    }

    #[test]
    fn crash_recovers_a_state_at_or_after_the_last_sync(
        ops in prop::collection::vec(op(), 1..80),
        segment_bytes in prop_oneof![Just(1u64), 100u64..400, Just(1 << 20)],
        tears in prop::collection::vec(any::<usize>(), 8),
    ) {
        let disk = MemDisk::new();
        let opts = small(segment_bytes);
        let (states, durable) = run(&disk, opts, &ops);
        let mut i = 0;
        disk.crash_with(|_, unsynced| {
            i += 1;
            tears[i % tears.len()] % (unsynced + 1)
        });
        let (_, rec) = open_mem(&disk, opts);
        prop_assert!(
            states[durable..].iter().any(|m| matches_model(&rec, m)),
            "recovered {:?} / {:?}, durable from state {} of {}",
            summary(&rec.entries), rec.hard_state, durable, states.len() - 1
        );
    }
}
