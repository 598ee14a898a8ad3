//! An async ZooKeeper-protocol client (for zonekeeper and Apache ZooKeeper
//! 3.6+) that knows which zone each server is in: it prefers servers of its
//! own zone, fails over to other zones when they fail, and moves back home
//! when they recover, without losing the session, its ephemerals or its
//! watches. See `docs/client.md` for the user-facing contract.
//!
//! # Layout
//! - [`connect_string`]: `host:port@zone,…[/chroot]` parsing.
//! - [`config`]: [`ClientConfig`], what a connection is made with.
//! - [`error`]: [`Error`], split by who must react (retry, give up, fix).
//! - [`ops`]: operation-level types: [`CreateMode`], [`Op`]/[`OpResult`]
//!   for multi, ACL helpers.
//! - [`watcher`]: [`WatchedEvent`], one-shot and persistent watchers, and
//!   the registry that routes notifications and lists watches to
//!   re-register after a reconnect.
//! - `chroot`: prefixing outgoing and stripping incoming paths.
//! - [`host_selection`]: zones: measuring the own zone, the order servers
//!   are tried in, when to move back home.
//! - `session`: the one task that owns the connection and the session
//!   (`session::state` is the pure part: xids, pending replies, zxids;
//!   `session::conn` the socket and handshake; `session::task` the loop).
//! - [`recipes`]: locks, semaphore, election, membership, barriers,
//!   queue and key/value on top of [`Client`] (`docs/recipes.md`).
//! - [`client`]: [`Client`], the handle applications hold; each method
//!   builds one request and awaits its reply.

pub mod client;
pub mod config;
pub mod connect_string;
pub mod error;
pub mod host_selection;
pub mod ops;
pub mod recipes;
pub mod watcher;

mod chroot;
mod session;

pub use client::{Client, ClientStats, SessionState};
pub use config::ClientConfig;
pub use connect_string::{ConnectString, ServerAddr};
pub use error::Error;
pub use ops::{acl_creator_all, acl_open_unsafe, acl_read_unsafe, digest_id, CreateMode, Op, OpResult};
pub use proto::records::{perms, Acl, Id, Stat};
pub use proto::watch::EventType;
pub use proto::ErrorCode;
pub use watcher::{OneshotWatcher, PersistentWatcher, WatchedEvent};

/// The examples of `docs/client.md`, compiled as doctests.
#[doc = include_str!("../../docs/client.md")]
#[cfg(doctest)]
pub struct ClientDocTests;
