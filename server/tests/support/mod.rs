//! Support for the tests that run real `zonekeeper-server` processes: one
//! module, three parts.
//!
//! - [`process`]: one server process ([`process::Server`] on a
//!   [`process::Scratch`] data directory), loopback ports, the admin HTTP
//!   API, four-letter words, polling with deadlines, log tails, and the WAL
//!   framing (to damage records on purpose). Everything else builds on it.
//! - [`ensemble`]: an ensemble of member processes configured as
//!   `zonekeeper-server dev` configures them, with kill/stop/partition, and
//!   a write load that books what was acknowledged.
//! - [`lincheck`]: recording a concurrent history and checking it for
//!   linearizability (docs/ensemble.md, "Linearizability check").
//!
//! The in-process server of the `zk_*` tests is `tests/common`.
//!
//! Nothing here sleeps for a fixed time to let something happen: every wait
//! polls a condition until a deadline and then fails with what it saw.

#![allow(dead_code)]

pub mod ensemble;
pub mod lincheck;
pub mod process;
