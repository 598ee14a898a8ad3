//! Coordination recipes on top of [`Client`]: locks, semaphores, elections,
//! membership, barriers, a queue and a versioned key/value store. The
//! contract (znode layouts, guarantees, the fencing-token argument, failure
//! behaviour) is `docs/recipes.md`; this module holds what the recipes share:
//!
//! - [`RecipeError`], the one error every recipe returns;
//! - names: path, member/key and owner-label checks, per-attempt guids,
//!   sequence suffixes;
//! - the holder data envelope (owner label + data) of grant nodes;
//! - retrying idempotent requests across reconnects, ensuring directories;
//! - protected creates (find the own node after a lost reply) and removing
//!   an abandoned attempt's nodes by guid;
//! - the herd-free wait of a contender for its predecessor, which the lock,
//!   read/write lock, semaphore and election share;
//! - [`LockGuard`], the grant those return, and [`release`] by node path.
//!
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use zonekeeper_client::{Client, ClientConfig};
//! use zonekeeper_client::recipes::{self, Election, Lock};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(ClientConfig::new("10.0.0.1:2181@a,10.0.0.2:2181@b".parse()?)).await?;
//! let lock = Lock::new(client.clone(), "/app/locks/schema")?.with_owner("pod-7")?;
//! let guard = lock.acquire(Some(Duration::from_secs(30))).await?;
//! // Pass guard.token to the resource; it refuses tokens below the highest
//! // it has seen.
//! tokio::select! {
//!     lost = guard.lost() => eprintln!("lock lost: {lost:?}"),
//!     _ = tokio::time::sleep(Duration::from_secs(1)) => {}
//! }
//! recipes::release(&client, &guard.node).await?; // from any clone, or guard.release()
//!
//! let election = Election::new(client.clone(), "/app/leader")?.with_data(b"10.0.0.7:8080".to_vec());
//! let mut watch = election.watch();
//! println!("leader now: {:?}", watch.next().await?);
//! let leadership = election.campaign(None).await?;
//! println!("leading with term {:#x}", leadership.term);
//! leadership.resign().await?;
//! # Ok(()) }
//! ```
//!
//! Must not: talk to the server other than through [`Client`]'s public
//! methods, or keep state beyond one recipe object (grants are plain values
//! a sidecar can store and release from another clone).

pub mod barrier;
pub mod double_barrier;
pub mod election;
pub mod kv;
pub mod lock;
pub mod membership;
pub mod queue;
pub mod rwlock;
pub mod semaphore;

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::{acl_open_unsafe, Client, CreateMode, Error, ErrorCode, EventType, SessionState, Stat};

pub use barrier::Barrier;
pub use double_barrier::DoubleBarrier;
pub use election::{Election, LeaderInfo, LeaderWatch, Leadership};
pub use kv::{Expected, Kv};
pub use lock::{Holder, Lock};
pub use membership::{Group, GroupWatch, Member, Membership};
pub use queue::Queue;
pub use rwlock::{LockMode, ReadWriteLock};
pub use semaphore::{Permit, Semaphore};

/// Why a recipe operation failed. See the table in `docs/recipes.md`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    /// The client failed; after `SessionExpired` every grant of the
    /// session is lost.
    #[error(transparent)]
    Client(#[from] Error),
    /// The deadline passed while waiting; the attempt's node was removed.
    #[error("timed out waiting; nothing is held (the attempt's node was removed)")]
    Timeout,
    /// The node of a grant or membership no longer exists.
    #[error("{0} no longer exists: the grant was released or lost (session expiry)")]
    NotHeld(String),
    /// A key/value condition failed; `current` is the key's version now
    /// (`None`: the key does not exist).
    #[error("version conflict: the key's current version is {current:?}; re-read and retry")]
    Conflict { current: Option<i32> },
    /// The member name is taken by another session or owner.
    #[error(
        "member {0:?} already exists (held by another session or owner): leave it first or pick another name"
    )]
    MemberExists(String),
    /// A path, member name, key or owner label is not acceptable.
    #[error("invalid name: {0}")]
    InvalidName(String),
}

impl RecipeError {
    /// The server's error code, if the client reported one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RecipeError::Client(e) => e.code(),
            _ => None,
        }
    }
}

/// Why a grant ended, as [`LockGuard::lost`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The grant's node was deleted (released, possibly by another client
    /// such as a sidecar ending an app lease).
    Deleted,
    /// The session expired: the server deleted the session's nodes.
    SessionExpired,
    /// The client was closed (or its authentication failed).
    SessionClosed,
}

// ---------------------------------------------------------------- names

/// Longest member name, key or owner label accepted.
const MAX_NAME: usize = 200;
const MAX_OWNER: usize = 128;

/// Checks a recipe's base path: absolute, not the root, no empty, `.` or
/// `..` components, no trailing slash. Returns it owned.
pub(crate) fn check_path(path: &str) -> Result<String, RecipeError> {
    let bad = |why: &str| Err(RecipeError::InvalidName(format!("path {path:?}: {why}")));
    if !path.starts_with('/') {
        return bad("must start with '/'");
    }
    if path == "/" {
        return bad("a recipe needs its own node, not the root");
    }
    if path.ends_with('/') {
        return bad("must not end with '/'");
    }
    for c in path[1..].split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return bad("empty, '.' or '..' component");
        }
        if c.chars().any(|ch| ch == '\0' || ch.is_control()) {
            return bad("control characters are not allowed");
        }
    }
    Ok(path.to_string())
}

/// Checks a member name or key: 1–200 characters of `[A-Za-z0-9._:@-]`,
/// not `.` or `..`, and not `zookeeper` (reserved by ZooKeeper at the root).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), RecipeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RecipeError::InvalidName(format!(
            "{what} {name:?}: use 1-{MAX_NAME} characters of A-Z a-z 0-9 . _ : @ - (not '.' or '..')"
        )))
    }
}

/// Checks an owner label: 1–128 printable ASCII characters, no spaces.
pub(crate) fn check_owner(owner: &str) -> Result<(), RecipeError> {
    if !owner.is_empty() && owner.len() <= MAX_OWNER && owner.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(RecipeError::InvalidName(format!(
            "owner label {owner:?}: use 1-{MAX_OWNER} printable ASCII characters without spaces"
        )))
    }
}

/// A fresh 128-bit id (32 hex digits) naming one attempt's nodes.
pub(crate) fn new_guid() -> String {
    let v: u128 = rand::thread_rng().gen();
    format!("{v:032x}")
}

/// The sequence suffix of a sequential node's name (`…-0000000042`).
pub(crate) fn sequence_of(name: &str) -> Option<i64> {
    let (_, digits) = name.rsplit_once('-')?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `dir/name`.
pub(crate) fn child(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// A node's fencing token: its czxid (see `docs/recipes.md`, "Fencing
/// tokens"). zxids are non-negative.
pub(crate) fn token_of(stat: &Stat) -> u64 {
    stat.czxid.max(0) as u64
}

// ---------------------------------------------------------------- envelope

const ENVELOPE_MAGIC: &[u8] = b"zkr1";

/// Encodes a grant node's data: an optional owner label, then the data
/// (`docs/recipes.md`, "Holder data envelope").
pub fn encode_holder_data(owner: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_MAGIC.len() + 8 + owner.map_or(0, str::len) + data.len());
    out.extend_from_slice(ENVELOPE_MAGIC);
    if let Some(o) = owner {
        out.extend_from_slice(b" owner=");
        out.extend_from_slice(o.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// Decodes what [`encode_holder_data`] wrote: `(owner, data)`. Data of
/// another shape (a node made by another recipe library) is all data.
pub fn decode_holder_data(raw: &[u8]) -> (Option<String>, Vec<u8>) {
    let Some(rest) = raw.strip_prefix(ENVELOPE_MAGIC) else {
        return (None, raw.to_vec());
    };
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return (None, raw.to_vec());
    };
    let header = &rest[..nl];
    let data = rest[nl + 1..].to_vec();
    if header.is_empty() {
        return (None, data);
    }
    match header.strip_prefix(b" owner=") {
        Some(o) if !o.is_empty() => match std::str::from_utf8(o) {
            Ok(s) if check_owner(s).is_ok() => (Some(s.to_string()), data),
            _ => (None, raw.to_vec()),
        },
        _ => (None, raw.to_vec()),
    }
}

// ---------------------------------------------------------------- retries

/// Pause between attempts of a retried request, so a client whose requests
/// fail at once (no server) does not spin.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Waits until the session is connected. `SessionExpired`/`Closed`/
/// `AuthFailed` if it ended; `Timeout` at `deadline`.
pub(crate) async fn wait_connected(client: &Client, deadline: Option<Instant>) -> Result<(), RecipeError> {
    let mut states = client.state_changes();
    loop {
        let state = states.borrow_and_update().clone();
        match state {
            SessionState::Connected { .. } => return Ok(()),
            SessionState::Expired => return Err(Error::SessionExpired.into()),
            SessionState::Closed => return Err(Error::Closed.into()),
            SessionState::AuthFailed => return Err(Error::AuthFailed.into()),
            SessionState::Connecting | SessionState::Disconnected => {}
        }
        if until(deadline, states.changed()).await?.is_err() {
            return Err(Error::Closed.into());
        }
    }
}

/// Runs `fut` until `deadline` (`None`: no deadline); `Timeout` after.
pub(crate) async fn until<T>(
    deadline: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Result<T, RecipeError> {
    match deadline {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .map_err(|_| RecipeError::Timeout),
    }
}

/// Runs an idempotent request (a read, a delete that tolerates `NoNode`),
/// retrying it after connection loss or timeout while the session lives.
pub(crate) async fn retry<T, F, Fut>(client: &Client, f: F) -> Result<T, RecipeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retry_until(client, None, f).await
}

/// [`retry`], giving up with `Timeout` if the connection is not back by
/// `deadline`.
pub(crate) async fn retry_until<T, F, Fut>(
    client: &Client,
    deadline: Option<Instant>,
    mut f: F,
) -> Result<T, RecipeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retriable() => {
                until(deadline, tokio::time::sleep(RETRY_PAUSE)).await?;
                wait_connected(client, deadline).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates `path` as a container if missing, and its missing ancestors as
/// persistent nodes.
pub(crate) async fn ensure_dir(client: &Client, path: &str) -> Result<(), RecipeError> {
    ensure_node(client, path, CreateMode::Container).await
}

/// Creates `path` with `mode` (empty data) if missing, and its missing
/// ancestors as persistent nodes. Idempotent, so retried.
pub(crate) async fn ensure_node(client: &Client, path: &str, mode: CreateMode) -> Result<(), RecipeError> {
    let acl = acl_open_unsafe();
    // Fast path: it usually exists.
    if retry(client, || client.exists(path)).await?.is_some() {
        return Ok(());
    }
    let mut prefix = String::new();
    let comps: Vec<&str> = path[1..].split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        prefix.push('/');
        prefix.push_str(c);
        let m = if i + 1 == comps.len() {
            mode
        } else {
            CreateMode::Persistent
        };
        let r = retry(client, || async {
            match client.create(&prefix, b"", &acl, m).await {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await;
        match r {
            Ok(()) => {}
            // A container ancestor reaped meanwhile: start over.
            Err(RecipeError::Client(Error::Server(ErrorCode::NoNode))) => {
                return Box::pin(ensure_node(client, path, mode)).await
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes a node, tolerating its absence and retrying after connection
/// loss. True if this call removed it — or may have: `NoNode` after a lost
/// reply counts as removed by the lost attempt.
pub(crate) async fn delete_quietly(client: &Client, path: &str) -> Result<bool, RecipeError> {
    let mut lost_reply = false;
    loop {
        match client.delete(path, None).await {
            Ok(()) => return Ok(true),
            Err(Error::Server(ErrorCode::NoNode)) => return Ok(lost_reply),
            Err(e) if e.is_retriable() => {
                lost_reply = true;
                tokio::time::sleep(RETRY_PAUSE).await;
                wait_connected(client, None).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deletes a grant or membership node by path, from any clone of any
/// client: how a sidecar releases one application's locks, permits,
/// leaderships or memberships when that application's lease ends.
/// `NotHeld` if the node is already gone.
///
/// Also removes *ghosts* of the same attempt: a contender node whose create
/// lost its reply can still be applied after the retry created another
/// (`docs/recipes.md`, "Protected names"); it carries the same guid.
pub async fn release(client: &Client, node: &str) -> Result<(), RecipeError> {
    check_path(node)?;
    let deleted = delete_quietly(client, node).await?;
    if let (Some((dir, name)), true) = (node.rsplit_once('/'), !node.ends_with('/')) {
        if let Some(guid) = guid_of(name) {
            let dir = if dir.is_empty() { "/" } else { dir };
            if dir != "/" {
                delete_by_guid(client, &[dir.to_string()], guid).await?;
            }
        }
    }
    if deleted {
        Ok(())
    } else {
        Err(RecipeError::NotHeld(node.to_string()))
    }
}

/// The guid of a protected name `<prefix>-<guid>-<seq>`.
pub(crate) fn guid_of(name: &str) -> Option<&str> {
    let mut parts = name.split('-');
    let (_, guid, _) = (parts.next()?, parts.next()?, parts.next()?);
    (guid.len() == 32 && guid.bytes().all(|b| b.is_ascii_hexdigit())).then_some(guid)
}

// ---------------------------------------------------------------- protected creates

/// Creates `dir/<prefix>-<guid>-<seq>` (sequential `mode`), finding the
/// node again by `guid` after a lost reply instead of creating a second
/// one. Creates `dir` (a container) if it is missing. Returns the node's
/// path and stat.
///
/// `deadline` bounds waiting for a lost connection to come back (each
/// request is bounded by the client's request timeout).
pub(crate) async fn create_protected(
    client: &Client,
    dir: &str,
    prefix: &str,
    guid: &str,
    data: &[u8],
    mode: CreateMode,
    deadline: Option<Instant>,
) -> Result<(String, Stat), RecipeError> {
    let acl = acl_open_unsafe();
    let path = child(dir, &format!("{prefix}-{guid}-"));
    loop {
        match client.create(&path, data, &acl, mode).await {
            Ok(r) => return Ok(r),
            Err(Error::Server(ErrorCode::NoNode)) => ensure_dir(client, dir).await?,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(RETRY_PAUSE).await;
                wait_connected(client, deadline).await?;
                if let Some(found) = find_by_guid(client, dir, guid).await?.into_iter().next() {
                    tracing::debug!(dir, node = %found, "a create whose reply was lost was applied; adopting its node");
                    let p = child(dir, &found);
                    if let Some(stat) = retry(client, || client.exists(&p)).await? {
                        return Ok((p, stat));
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Children of `dir` whose names carry `guid`, lowest sequence first.
/// Empty if `dir` does not exist.
pub(crate) async fn find_by_guid(client: &Client, dir: &str, guid: &str) -> Result<Vec<String>, RecipeError> {
    let kids = retry(client, || async {
        match client.get_children(dir).await {
            Ok((k, _)) => Ok(k),
            Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    })
    .await?;
    let mut mine: Vec<String> = kids.into_iter().filter(|k| k.contains(guid)).collect();
    mine.sort_by_key(|k| sequence_of(k).unwrap_or(i64::MAX));
    Ok(mine)
}

/// Deletes every child of each of `dirs` carrying `guid`: the nodes of an
/// abandoned attempt, including one whose create reply never arrived.
pub(crate) async fn delete_by_guid(client: &Client, dirs: &[String], guid: &str) -> Result<(), RecipeError> {
    for dir in dirs {
        for name in find_by_guid(client, dir, guid).await? {
            delete_quietly(client, &child(dir, &name)).await?;
        }
    }
    Ok(())
}

/// Removes an attempt's nodes if the attempt does not finish: armed while
/// an acquire/campaign/take runs; if its future is dropped (cancelled),
/// the removal is spawned on the runtime.
pub(crate) struct AttemptCleanup {
    client: Client,
    dirs: Vec<String>,
    guid: String,
    armed: bool,
}

impl AttemptCleanup {
    pub(crate) fn new(client: &Client, dirs: Vec<String>, guid: &str) -> Self {
        AttemptCleanup {
            client: client.clone(),
            dirs,
            guid: guid.to_string(),
            armed: true,
        }
    }

    /// The attempt succeeded: keep its nodes.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// The attempt failed: remove its nodes now — or, while the client is
    /// not connected, in the background (so a timed-out attempt returns on
    /// time).
    pub(crate) async fn run(mut self) {
        if !matches!(self.client.state(), SessionState::Connected { .. }) {
            return; // still armed: Drop spawns the removal
        }
        self.armed = false;
        if let Err(e) = delete_by_guid(&self.client, &self.dirs, &self.guid).await {
            tracing::warn!(guid = %self.guid, error = %e, "could not remove an abandoned attempt's nodes; they go with the session");
        }
    }
}

impl Drop for AttemptCleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (client, dirs, guid) = (
                self.client.clone(),
                std::mem::take(&mut self.dirs),
                self.guid.clone(),
            );
            rt.spawn(async move {
                if let Err(e) = delete_by_guid(&client, &dirs, &guid).await {
                    tracing::warn!(%guid, error = %e, "could not remove a cancelled attempt's nodes; they go with the session");
                }
            });
        }
    }
}

/// Deletes one node if dropped while armed (spawned on the runtime): an
/// internal grant held only for the duration of an operation.
pub(crate) struct DeleteOnDrop {
    client: Client,
    node: Option<String>,
}

impl DeleteOnDrop {
    pub(crate) fn new(client: &Client, node: String) -> Self {
        DeleteOnDrop {
            client: client.clone(),
            node: Some(node),
        }
    }

    /// Deletes the node now.
    pub(crate) async fn run(mut self) -> Result<(), RecipeError> {
        match self.node.take() {
            Some(n) => delete_quietly(&self.client, &n).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let (Some(node), Ok(rt)) = (self.node.take(), tokio::runtime::Handle::try_current()) {
            let client = self.client.clone();
            rt.spawn(async move {
                let _ = delete_quietly(&client, &node).await;
            });
        }
    }
}

// ---------------------------------------------------------------- contenders

/// One sequential node in a contender directory, as listed.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub seq: i64,
}

impl Entry {
    /// The part of the name before the guid (`lock`, `read`, `write`…).
    pub fn kind(&self) -> &str {
        self.name.split('-').next().unwrap_or("")
    }
}

/// The children of `dir` named `<prefix>-…-<seq>` for one of `prefixes`,
/// lowest sequence first. `None` if `dir` does not exist.
pub(crate) async fn list_sorted(
    client: &Client,
    dir: &str,
    prefixes: &[&str],
) -> Result<Option<Vec<Entry>>, RecipeError> {
    list_sorted_until(client, dir, prefixes, None).await
}

/// [`list_sorted`] giving up at `deadline` while disconnected.
pub(crate) async fn list_sorted_until(
    client: &Client,
    dir: &str,
    prefixes: &[&str],
    deadline: Option<Instant>,
) -> Result<Option<Vec<Entry>>, RecipeError> {
    let kids = retry_until(client, deadline, || async {
        match client.get_children(dir).await {
            Ok((k, _)) => Ok(Some(k)),
            Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(kids.map(|k| sort_entries(k, prefixes)))
}

pub(crate) fn sort_entries(kids: Vec<String>, prefixes: &[&str]) -> Vec<Entry> {
    let mut v: Vec<Entry> = kids
        .into_iter()
        .filter(|k| {
            prefixes
                .iter()
                .any(|p| k.starts_with(p) && k[p.len()..].starts_with('-'))
        })
        .filter_map(|name| sequence_of(&name).map(|seq| Entry { name, seq }))
        .collect();
    v.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.name.cmp(&b.name)));
    v
}

/// Waits until the contender `own` (a child of `dir` created with `guid`)
/// is granted. `blocker(entries, own_index)` names the node the contender
/// must wait for (`None`: granted). Watches only that node (herd-free) and
/// re-lists after every wake-up. Deletes ghosts (other nodes with `guid`).
/// `NotHeld` if the own node disappears, `Timeout` at `deadline`.
pub(crate) async fn wait_for_grant(
    client: &Client,
    dir: &str,
    own: &str,
    guid: &str,
    prefixes: &[&str],
    deadline: Option<Instant>,
    blocker: impl Fn(&[Entry], usize) -> Option<usize>,
) -> Result<(), RecipeError> {
    let own_name = own.rsplit('/').next().unwrap_or(own);
    loop {
        let entries = list_sorted_until(client, dir, prefixes, deadline)
            .await?
            .unwrap_or_default();
        let mut ghosts = false;
        for e in entries
            .iter()
            .filter(|e| e.name != own_name && e.name.contains(guid))
        {
            tracing::info!(dir, ghost = %e.name, "deleting a late-applied duplicate of this attempt's node");
            delete_quietly(client, &child(dir, &e.name)).await?;
            ghosts = true;
        }
        if ghosts {
            continue;
        }
        let Some(i) = entries.iter().position(|e| e.name == own_name) else {
            return Err(RecipeError::NotHeld(own.to_string()));
        };
        let Some(b) = blocker(&entries, i) else {
            tracing::debug!(node = own, "granted");
            return Ok(());
        };
        let pred = child(dir, &entries[b].name);
        tracing::debug!(node = own, waits_for = %pred, "waiting for the predecessor");
        let watched = retry_until(client, deadline, || client.exists_w(&pred)).await?;
        if let (Some(_), w) = watched {
            until(deadline, w.changed()).await??;
        }
    }
}

// ---------------------------------------------------------------- grants

/// A granted lock, read/write lock or semaphore permit. A plain value: the
/// node's path and the fencing token, plus a client to release it with.
/// Dropping it does **not** release it; call [`LockGuard::release`] (or
/// [`release`] with the node path from anywhere).
#[must_use = "a grant is held until released or the session ends"]
#[derive(Clone)]
pub struct LockGuard {
    /// The grant's node (full client path).
    pub node: String,
    /// Fencing token: strictly increases across grants of this lock
    /// (`docs/recipes.md`, "Fencing tokens").
    pub token: u64,
    client: Client,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("node", &self.node)
            .field("token", &format_args!("{:#x}", self.token))
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    pub(crate) fn new(client: &Client, node: String, stat: &Stat) -> Self {
        LockGuard {
            node,
            token: token_of(stat),
            client: client.clone(),
        }
    }

    /// Releases the grant (deletes its node). `NotHeld` if it was already
    /// gone (released elsewhere or lost with the session).
    pub async fn release(self) -> Result<(), RecipeError> {
        release(&self.client, &self.node).await
    }

    /// True if the node still exists and belongs to this client's session,
    /// as the connected server sees it now.
    pub async fn is_held(&self) -> Result<bool, RecipeError> {
        is_own_node(&self.client, &self.node).await
    }

    /// Resolves when the grant is lost: its node deleted, the session
    /// expired or the client closed. While the client is disconnected the
    /// grant is *possibly* lost; watch [`Client::state_changes`] for that.
    pub async fn lost(&self) -> Lost {
        node_lost(&self.client, &self.node).await
    }
}

pub(crate) async fn is_own_node(client: &Client, node: &str) -> Result<bool, RecipeError> {
    let stat = retry(client, || client.exists(node)).await?;
    Ok(stat.is_some_and(|s| s.ephemeral_owner == client.session_id()))
}

/// How a request error ends a grant, if it does. A request racing with the
/// session's end may report `Closed` although the session expired; the
/// session state says which.
fn lost_of(client: &Client, e: &Error) -> Option<Lost> {
    match e {
        Error::SessionExpired => Some(Lost::SessionExpired),
        Error::Closed | Error::AuthFailed if client.state() == SessionState::Expired => {
            Some(Lost::SessionExpired)
        }
        Error::Closed | Error::AuthFailed => Some(Lost::SessionClosed),
        _ => None,
    }
}

/// See [`LockGuard::lost`].
pub(crate) async fn node_lost(client: &Client, node: &str) -> Lost {
    let session = client.session_id();
    loop {
        match client.exists_w(node).await {
            Ok((None, _)) => return Lost::Deleted,
            Ok((Some(stat), _)) if stat.ephemeral_owner != session => return Lost::Deleted,
            Ok((Some(_), w)) => match w.changed().await {
                Ok(ev) if ev.event_type == EventType::NodeDeleted => return Lost::Deleted,
                Ok(_) => continue,
                Err(e) => return lost_of(client, &e).unwrap_or(Lost::SessionClosed),
            },
            Err(e) => {
                if let Some(l) = lost_of(client, &e) {
                    return l;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                if let Err(RecipeError::Client(e)) = wait_connected(client, None).await {
                    return lost_of(client, &e).unwrap_or(Lost::SessionClosed);
                }
            }
        }
    }
}

/// A deadline `timeout` from now.
pub(crate) fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_tolerates_foreign_data() {
        let e = encode_holder_data(Some("app-1"), b"hello\nworld");
        assert_eq!(
            decode_holder_data(&e),
            (Some("app-1".into()), b"hello\nworld".to_vec())
        );
        let e = encode_holder_data(None, b"");
        assert_eq!(e, b"zkr1\n");
        assert_eq!(decode_holder_data(&e), (None, Vec::new()));
        assert_eq!(
            decode_holder_data(b"10.0.0.1:9092"),
            (None, b"10.0.0.1:9092".to_vec())
        );
        assert_eq!(
            decode_holder_data(b"zkr1 garbage\nx"),
            (None, b"zkr1 garbage\nx".to_vec())
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("member", "worker-1.zone_a@host:80").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä", &"x".repeat(201)] {
            assert!(
                matches!(check_name("member", bad), Err(RecipeError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(check_owner("lease-42").is_ok());
        assert!(check_owner("has space").is_err());
        assert!(check_owner("").is_err());
        assert!(check_path("/a/b").is_ok());
        for bad in ["a", "/", "/a/", "/a//b", "/a/./b", "/a/../b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entries_sort_by_sequence_across_prefixes() {
        let kids = vec![
            "write-ab-0000000003".to_string(),
            "read-cd-0000000001".to_string(),
            "read-ef-0000000002".to_string(),
            "other".to_string(),
            "lock-xx-0000000000".to_string(),
        ];
        let v = sort_entries(kids, &["read", "write"]);
        let names: Vec<_> = v.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["read-cd-0000000001", "read-ef-0000000002", "write-ab-0000000003"]
        );
        assert_eq!(v[2].kind(), "write");
        assert_eq!(sequence_of("x-y-2147483647"), Some(2147483647));
        assert_eq!(sequence_of("x-y-12"), None);
        let g = new_guid();
        assert_eq!(guid_of(&format!("lock-{g}-0000000001")), Some(g.as_str()));
        assert_eq!(guid_of("m1"), None);
        assert_eq!(guid_of("lock-short-0000000001"), None);
    }
}
