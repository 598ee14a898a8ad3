//! The zonekeeper coordination server.
//!
//! # Layout
//! Pure core (no I/O, time passed in as `now`, testable without sockets):
//! - [`path`]: znode path validation and parent/child helpers.
//! - [`acl`]: ACL schemes (world, auth, digest, ip, super) and checks.
//! - [`tree`]: the data tree of znodes and their `Stat`s.
//! - [`watch`]: the watch manager (one-time, persistent, recursive).
//! - [`session`]: the session table and expiry clock.
//! - [`txn`]: log entries: what the leader proposes and every member applies.
//! - [`membership`]: the member list and the rules for changing it.
//! - [`ops`]: one file per opcode: `prepare` (request → txn) and `apply`
//!   (txn → tree change, reply and watch events).
//! - [`state`]: tree + sessions + watches, and deterministic apply of a
//!   committed entry.
//!
//! I/O shells:
//! - [`storage`]: disk behind one trait with fail points; the durable raft
//!   log (WAL) and snapshots.
//! - [`consensus`]: the one task that owns the raft node and runs its Ready
//!   loop.
//! - [`transport`]: the peer transport: connections between members, the
//!   `PeerMessage` envelope, per-peer queues and per-zone byte counts.
//! - [`conn`]: one task per client connection: framing, handshake, per
//!   session ordering, four-letter words.
//! - [`hub`]: the state behind its lock and the live connections by
//!   session: where apply hands watch events to sockets.
//! - [`fourletter`]: the four-letter-word commands.
//! - [`admin`]: admin HTTP (`/healthz`, `/readyz`, `/metrics`, `/v1/status`).
//! - [`metrics`]: Prometheus metrics.
//! - [`status`]: the read-only view of the server that admin, metrics and
//!   four-letter words report from.
//! - [`config`]: the TOML config file and command-line flags.
//! - [`telemetry`]: logging setup.
//! - [`dev`]: `zonekeeper-server dev`, a local multi-zone ensemble of
//!   member processes.
//! - [`server`]: wires the parts together: `run(config, shutdown)`.

pub mod acl;
pub mod admin;
pub mod config;
pub mod conn;
pub mod consensus;
pub mod dev;
pub mod fourletter;
pub mod hub;
pub mod membership;
pub mod metrics;
pub mod ops;
pub mod path;
pub mod server;
pub mod session;
pub mod state;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod transport;
pub mod tree;
pub mod txn;
pub mod watch;
