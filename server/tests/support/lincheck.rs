//! Recording and checking a concurrent history of znode operations
//! (docs/ensemble.md, "Linearizability check").
//!
//! The model: each key is one znode, a register of `(value, version)`,
//! starting at `(0, 0)`. Every write puts a value no other write puts, so a
//! read names the write it saw.
//!
//! - `setData(path, value, expected)`: with `expected = Some(v)` a
//!   compare-and-set (answers the new version, or BADVERSION and changes
//!   nothing); with `None` an unconditional write. Its outcome is *unknown*
//!   when the connection was lost (or the session expired) before the
//!   answer: it may have taken effect at any point after it was sent, even
//!   after later operations, or never. Such an operation is open-ended: its
//!   return is placed after every other event of the history, where the
//!   checker may linearize it (any answer accepted) or leave it last, which
//!   is the same as never.
//! - `sync` then `getData` on one session: a linearizable read (our `sync`
//!   is a log entry, so the member has applied everything committed before
//!   the `sync` was sent); its interval runs from sending the `sync` to the
//!   `getData` answer. A read whose connection was lost says nothing and is
//!   dropped.
//! - plain `getData`: ZooKeeper promises sequential consistency, not
//!   linearizability, for these. They are checked per session: the state
//!   read is one some write produced, and a session never reads a version
//!   older than one it has already seen (read, or written itself),
//!   including after it moved to another member.
//!
//! Writes, CAS and sync-reads are checked for linearizability with the
//! Wing–Gong–Lowe search of `todc-utils` (memoized on the set of linearized
//! operations and the register state), one key at a time: linearizability is
//! local (Herlihy and Wing), so a history is linearizable iff every key's
//! sub-history is.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use todc_utils::{Action, History, Specification, WGLChecker};

/// The register's state: `(value, version)`.
pub type State = (u64, i32);

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Acknowledged with this new version.
    Ok(i32),
    /// BADVERSION: the CAS saw another version and changed nothing.
    BadVersion,
    /// Connection lost, session expired or no answer: may or may not have
    /// taken effect.
    Unknown,
}

/// One operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `setData(value, expected version)`.
    Write {
        value: u64,
        expected: Option<i32>,
        outcome: Outcome,
    },
    /// `sync` + `getData`: answered `(value, version)`.
    SyncRead { value: u64, version: i32 },
    /// `getData` without `sync`.
    Read { value: u64, version: i32 },
}

/// One recorded operation.
#[derive(Clone, Debug)]
pub struct Record {
    pub client: usize,
    /// Which session of the client (it counts up when the client has to
    /// start a new session after an expiry).
    pub session: u64,
    pub key: usize,
    pub op: Op,
    /// Logical times from [`Recorder::now`]: `call` taken before the request
    /// is sent, `ret` after its answer arrived (`None` when unknown).
    pub call: u64,
    pub ret: Option<u64>,
}

/// A shared clock and the operations recorded so far. The clock is one
/// counter in the test process: if `a.ret < b.call`, `a` answered before `b`
/// was sent, which is the real-time order linearizability respects.
#[derive(Default)]
pub struct Recorder {
    clock: AtomicU64,
    ops: Mutex<Vec<Record>>,
}

impl Recorder {
    pub fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    pub fn record(&self, r: Record) {
        self.ops.lock().unwrap().push(r);
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap().len()
    }

    pub fn history(&self) -> Vec<Record> {
        self.ops.lock().unwrap().clone()
    }
}

/// The sequential specification for `todc-utils`.
struct Register;

impl Specification for Register {
    type State = State;
    type Operation = Op;

    fn init() -> State {
        (0, 0)
    }

    fn apply(op: &Op, &(value, version): &State) -> (bool, State) {
        let matches = |expected: Option<i32>| expected.is_none_or(|e| e == version);
        match *op {
            Op::Write {
                value: new,
                expected,
                outcome,
            } => match outcome {
                Outcome::Ok(v) => (matches(expected) && v == version + 1, (new, v)),
                Outcome::BadVersion => (expected.is_some() && !matches(expected), (value, version)),
                Outcome::Unknown if matches(expected) => (true, (new, version + 1)),
                Outcome::Unknown => (true, (value, version)),
            },
            Op::SyncRead {
                value: v,
                version: ver,
            } => ((v, ver) == (value, version), (value, version)),
            // Plain reads are not part of the linearizable history.
            Op::Read { .. } => (true, (value, version)),
        }
    }
}

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Operations checked for linearizability, per key.
    pub linearizable_ops: BTreeMap<usize, usize>,
    /// Of those, writes whose outcome was unknown.
    pub unknown_writes: usize,
    /// Plain reads checked for per-session sequential consistency.
    pub plain_reads: usize,
    pub elapsed: Duration,
    /// Keys whose sub-history is not linearizable.
    pub not_linearizable: Vec<usize>,
    /// Violations of the per-session guarantees of plain reads.
    pub session_violations: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.not_linearizable.is_empty() && self.session_violations.is_empty()
    }
}

/// Whether the writes, CAS and sync-reads of one key are linearizable.
pub fn linearizable(ops: &[&Record]) -> bool {
    let ops: Vec<&&Record> = ops.iter().filter(|r| !matches!(r.op, Op::Read { .. })).collect();
    if ops.is_empty() {
        return true;
    }
    // Events in time order; open-ended operations return after everything.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, r) in ops.iter().enumerate() {
        events.push((r.call, false, i));
        events.push((r.ret.unwrap_or(u64::MAX), true, i));
    }
    events.sort();
    // Each operation is its own "process", so a client whose earlier
    // operation is still open can go on (calls and returns pair up per
    // process in `History`).
    let actions = events
        .into_iter()
        .map(|(_, is_ret, i)| {
            let op = ops[i].op;
            (
                i,
                if is_ret {
                    Action::Response(op)
                } else {
                    Action::Call(op)
                },
            )
        })
        .collect();
    WGLChecker::<Register>::is_linearizable(History::from_actions(actions))
}

/// Checks plain reads per session: each read state was written by someone
/// (or is the initial one), and a session's versions never go back.
pub fn session_violations(history: &[Record]) -> Vec<String> {
    let mut out = Vec::new();
    // (key, value) -> versions some write may have given it.
    let mut written: HashMap<(usize, u64), Option<i32>> = HashMap::new();
    for r in history {
        if let Op::Write { value, outcome, .. } = r.op {
            let v = match outcome {
                Outcome::Ok(v) => Some(v),
                Outcome::Unknown => None,
                Outcome::BadVersion => continue,
            };
            written.insert((r.key, value), v);
        }
    }
    // Per (client, session), operations in the order the client ran them.
    let mut sessions: BTreeMap<(usize, u64), Vec<&Record>> = BTreeMap::new();
    for r in history {
        sessions.entry((r.client, r.session)).or_default().push(r);
    }
    for ((client, session), mut rs) in sessions {
        rs.sort_by_key(|r| r.call);
        let mut seen: HashMap<usize, i32> = HashMap::new();
        for r in rs {
            let (value, version) = match r.op {
                Op::Read { value, version } | Op::SyncRead { value, version } => (value, version),
                Op::Write {
                    outcome: Outcome::Ok(v),
                    ..
                } => {
                    let s = seen.entry(r.key).or_insert(0);
                    *s = (*s).max(v);
                    continue;
                }
                Op::Write { .. } => continue,
            };
            let known = (value, version) == (0, 0)
                || match written.get(&(r.key, value)) {
                    Some(Some(v)) => *v == version,
                    Some(None) => true,
                    None => false,
                };
            if !known {
                out.push(format!(
                    "client {client} session {session}: key {} read (value {value}, version {version}), which no write produced",
                    r.key
                ));
            }
            let s = seen.entry(r.key).or_insert(0);
            if version < *s {
                out.push(format!(
                    "client {client} session {session}: key {} read version {version} after having seen version {s}",
                    r.key
                ));
            }
            *s = (*s).max(version);
        }
    }
    out
}

/// Checks a whole history: linearizability per key, and the session
/// guarantees of plain reads.
pub fn check(history: &[Record]) -> Report {
    let t = Instant::now();
    let mut by_key: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    for r in history {
        by_key.entry(r.key).or_default().push(r);
    }
    let mut report = Report::default();
    for (key, ops) in &by_key {
        let checked = ops.iter().filter(|r| !matches!(r.op, Op::Read { .. })).count();
        report.linearizable_ops.insert(*key, checked);
        if !linearizable(ops) {
            report.not_linearizable.push(*key);
        }
    }
    report.unknown_writes = history
        .iter()
        .filter(|r| {
            matches!(
                r.op,
                Op::Write {
                    outcome: Outcome::Unknown,
                    ..
                }
            )
        })
        .count();
    report.plain_reads = history.iter().filter(|r| matches!(r.op, Op::Read { .. })).count();
    report.session_violations = session_violations(history);
    report.elapsed = t.elapsed();
    report
}
