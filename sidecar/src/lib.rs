//! zonekeeper-sidecar: a per-pod agent that gives applications a localhost
//! HTTP API for membership, locks, semaphores, elections, barriers,
//! key/value and watches, backed by `zonekeeper-client` and its recipes; and
//! optionally a localhost ZooKeeper-protocol proxy for existing clients.
//! The HTTP reference is docs/sidecar.md.
//!
//! # Layout
//! - [`config`]: flags/env and their checks (loopback only).
//! - [`app`]: the running sidecar: session supervision, lease reaper,
//!   start/run/shutdown (which releases everything held).
//! - [`api`]: the router, one file per area (system, leases, groups,
//!   locks, semaphores, elections, barriers, kv).
//! - [`error`]: the JSON error model and its stable codes.
//! - [`extract`]: request extractors that fail with our JSON errors.
//! - [`names`]: validation of group, lock, election, barrier and key names.
//! - [`leases`]: app leases (TTL, renew, lapse).
//! - [`holdings`]: what the sidecar holds for applications, and releasing it.
//! - [`watch`]: Server-Sent Events and long-poll from snapshot streams.
//! - [`proxy`]: the ZooKeeper-protocol proxy.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`metrics`]: Prometheus metrics.

pub mod api;
pub mod app;
pub mod config;
pub mod error;
pub mod extract;
pub mod holdings;
pub mod leases;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod proxy;
pub mod watch;
