//! zonekeeper-sidecar: a per-pod agent that gives applications a localhost
//! HTTP API for membership, locks, semaphores, elections, barriers,
//! key/value and watches, backed by `zonekeeper-client` and its recipes; and
//! optionally a localhost ZooKeeper-protocol proxy for existing clients.
//!
//! # Layout
//! - [`error`]: the JSON error model and its stable codes.
//! - [`extract`]: request extractors that fail with our JSON errors.
//! - [`names`]: validation of group, lock, election, barrier and key names.
//! - [`leases`]: app leases (TTL, renew, lapse).
//! - [`holdings`]: what the sidecar holds for applications, and releasing it.
//! - [`watch`]: Server-Sent Events and long-poll from snapshot streams.
//! - [`metrics`]: Prometheus metrics.

pub mod error;
pub mod extract;
pub mod holdings;
pub mod leases;
pub mod metrics;
pub mod names;
pub mod watch;
