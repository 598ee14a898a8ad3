//! zonekeeper-bench: a load generator that speaks the ZooKeeper client
//! protocol directly (on `proto/`), for measuring zonekeeper and Apache
//! ZooKeeper the same way, and the transport-ceiling responder.
//!
//! # Layout
//! - [`wire`]: handshake, framing, pre-encoded request templates.
//! - [`workload`]: the workloads, closed and open loop drivers, `run`.
//! - [`fanout`]: the watch fan-out workload.
//! - [`ceiling`]: the cheapest possible protocol responder.
//! - [`report`]: histograms, the JSON report, the progress line.
//!
//! docs/performance.md explains the numbers and the comparison script.

pub mod ceiling;
pub mod fanout;
pub mod report;
pub mod wire;
pub mod workload;

pub use report::Report;
pub use workload::{run, RunConfig, Workload};
