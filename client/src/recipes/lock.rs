//! Exclusive lock: the lowest `lock-<guid>-<seq>` ephemeral sequential
//! child of the lock's directory holds it; every other contender watches
//! only its predecessor (herd-free). The grant's fencing token is the
//! czxid of its node. Layout and argument: `docs/recipes.md`.

use std::time::Duration;

use super::{
    check_owner, check_path, create_protected, deadline_of, decode_holder_data, encode_holder_data,
    list_sorted, new_guid, retry, token_of, wait_for_grant, AttemptCleanup, LockGuard, RecipeError,
};
use crate::{Client, CreateMode, Error, ErrorCode};

const PREFIX: &str = "lock";

/// A distributed exclusive lock at a path. Cheap; create one per use if
/// each acquire needs its own owner label or data.
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    path: String,
    owner: Option<String>,
    data: Vec<u8>,
}

/// Who holds a lock (or leads an election), as any client can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's node (full path); [`super::release`] takes it.
    pub node: String,
    pub owner: Option<String>,
    pub data: Vec<u8>,
    /// The holder's fencing token.
    pub token: u64,
    /// The holder's session.
    pub session_id: i64,
}

impl Lock {
    /// A lock whose nodes live under `path` (created on first use).
    pub fn new(client: Client, path: &str) -> Result<Lock, RecipeError> {
        Ok(Lock {
            client,
            path: check_path(path)?,
            owner: None,
            data: Vec::new(),
        })
    }

    /// Labels grants with `owner` (e.g. a sidecar's app lease id).
    pub fn with_owner(mut self, owner: &str) -> Result<Lock, RecipeError> {
        check_owner(owner)?;
        self.owner = Some(owner.to_string());
        Ok(self)
    }

    /// Data stored in the holder's node, for [`Lock::holder`].
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Lock {
        self.data = data.into();
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits for the lock; `timeout` bounds the wait for earlier holders
    /// (`None`: until granted or the session ends; `Some(ZERO)`: one look).
    /// On `Timeout`, cancellation or error the attempt's node is removed.
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<LockGuard, RecipeError> {
        acquire_exclusive(
            &self.client,
            &self.path,
            PREFIX,
            &[PREFIX],
            self.owner.as_deref(),
            &self.data,
            timeout,
        )
        .await
    }

    /// Takes the lock if it is free now; `None` if someone holds it.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, RecipeError> {
        match self.acquire(Some(Duration::ZERO)).await {
            Ok(g) => Ok(Some(g)),
            Err(RecipeError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Releases a grant of this lock (deletes its node).
    pub async fn release(&self, guard: LockGuard) -> Result<(), RecipeError> {
        guard.release().await
    }

    /// The current holder, if any.
    pub async fn holder(&self) -> Result<Option<Holder>, RecipeError> {
        lowest_holder(&self.client, &self.path, &[PREFIX]).await
    }
}

/// The exclusive-lock protocol, shared with the election and the
/// semaphore's internal lock: create `dir/<prefix>-<guid>-<seq>`, wait for
/// the predecessor among `prefixes` until own node is the lowest.
pub(crate) async fn acquire_exclusive(
    client: &Client,
    dir: &str,
    prefix: &str,
    prefixes: &[&str],
    owner: Option<&str>,
    data: &[u8],
    timeout: Option<Duration>,
) -> Result<LockGuard, RecipeError> {
    let deadline = deadline_of(timeout);
    let guid = new_guid();
    let cleanup = AttemptCleanup::new(client, vec![dir.to_string()], &guid);
    let body = encode_holder_data(owner, data);
    let attempt = async {
        let (node, stat) = create_protected(
            client,
            dir,
            prefix,
            &guid,
            &body,
            CreateMode::EphemeralSequential,
            deadline,
        )
        .await?;
        wait_for_grant(client, dir, &node, &guid, prefixes, deadline, |_, i| {
            i.checked_sub(1)
        })
        .await?;
        Ok::<_, RecipeError>(LockGuard::new(client, node, &stat))
    };
    match attempt.await {
        Ok(g) => {
            cleanup.disarm();
            Ok(g)
        }
        Err(e) => {
            cleanup.run().await;
            Err(e)
        }
    }
}

/// The lowest node among `prefixes` in `dir`, read with its data.
pub(crate) async fn lowest_holder(
    client: &Client,
    dir: &str,
    prefixes: &[&str],
) -> Result<Option<Holder>, RecipeError> {
    loop {
        let Some(entries) = list_sorted(client, dir, prefixes).await? else {
            return Ok(None);
        };
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        let node = super::child(dir, &first.name);
        let read = retry(client, || async {
            match client.get_data(&node).await {
                Ok(r) => Ok(Some(r)),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        // Gone between list and read: the next one holds it now.
        if let Some((raw, stat)) = read {
            let (owner, data) = decode_holder_data(&raw);
            return Ok(Some(Holder {
                node,
                owner,
                data,
                token: token_of(&stat),
                session_id: stat.ephemeral_owner,
            }));
        }
    }
}

/// The holders among the nodes of `dir` (sorted by sequence): `granted`
/// picks the indices of the entries that hold the grant. Read with their
/// data; nodes gone between list and read are skipped.
pub(crate) async fn granted_holders(
    client: &Client,
    dir: &str,
    prefixes: &[&str],
    granted: impl Fn(&[super::Entry]) -> Vec<usize>,
) -> Result<Vec<Holder>, RecipeError> {
    let Some(entries) = list_sorted(client, dir, prefixes).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for i in granted(&entries) {
        let node = super::child(dir, &entries[i].name);
        let read = retry(client, || async {
            match client.get_data(&node).await {
                Ok(r) => Ok(Some(r)),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        if let Some((raw, stat)) = read {
            let (owner, data) = decode_holder_data(&raw);
            out.push(Holder {
                node,
                owner,
                data,
                token: token_of(&stat),
                session_id: stat.ephemeral_owner,
            });
        }
    }
    Ok(out)
}
