//! The ZooKeeper client wire protocol (3.9), as pure code: no sockets, no
//! clocks, no allocation before a length has been checked.
//!
//! # Layout
//! - [`jute`]: the jute primitive encoding (big-endian ints, length-prefixed
//!   buffers and strings, vectors) and the [`jute::Record`] trait.
//! - [`records`]: every record a 3.8/3.9 client sends or expects.
//! - [`opcode`]: operation codes and the special xids.
//! - [`error`]: ZooKeeper's error codes (`KeeperException.Code`).
//! - [`frame`]: length-prefixed framing with a maximum packet size.
//! - [`request`] / [`response`]: a whole client request (header + body) and
//!   a whole reply, decoded/encoded in one place.
//! - [`watch`]: watch event types, keeper states and watch modes.

pub mod error;
pub mod frame;
pub mod jute;
pub mod opcode;
pub mod records;
pub mod request;
pub mod response;
pub mod watch;

pub use error::ErrorCode;
pub use jute::{DecodeError, Record};
pub use opcode::OpCode;
