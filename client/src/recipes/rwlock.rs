//! Read/write lock: `read-<guid>-<seq>` and `write-<guid>-<seq>` ephemeral
//! sequential children of one directory, so both share one sequence. A
//! writer is granted when it is the lowest node and waits on its
//! predecessor; a reader is granted when no lower writer exists and waits
//! on the closest lower writer. Tokens: `docs/recipes.md`, "Fencing tokens"
//! (point 5: what "strictly increasing" means with concurrent readers).

use std::time::Duration;

use super::{
    check_owner, check_path, create_protected, deadline_of, encode_holder_data, new_guid, wait_for_grant,
    AttemptCleanup, Entry, LockGuard, RecipeError,
};
use crate::{Client, CreateMode};

const READ: &str = "read";
const WRITE: &str = "write";
const BOTH: &[&str] = &[READ, WRITE];

/// Shared (read) or exclusive (write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Read,
    Write,
}

/// A distributed read/write lock at a path.
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    client: Client,
    path: String,
    owner: Option<String>,
    data: Vec<u8>,
}

impl ReadWriteLock {
    pub fn new(client: Client, path: &str) -> Result<ReadWriteLock, RecipeError> {
        Ok(ReadWriteLock {
            client,
            path: check_path(path)?,
            owner: None,
            data: Vec::new(),
        })
    }

    /// Labels grants with `owner`.
    pub fn with_owner(mut self, owner: &str) -> Result<ReadWriteLock, RecipeError> {
        check_owner(owner)?;
        self.owner = Some(owner.to_string());
        Ok(self)
    }

    /// Data stored in the holder's node.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> ReadWriteLock {
        self.data = data.into();
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// A shared grant: held together with other readers, never with a
    /// writer. `timeout` as [`super::Lock::acquire`].
    pub async fn read(&self, timeout: Option<Duration>) -> Result<LockGuard, RecipeError> {
        self.acquire(LockMode::Read, timeout).await
    }

    /// An exclusive grant.
    pub async fn write(&self, timeout: Option<Duration>) -> Result<LockGuard, RecipeError> {
        self.acquire(LockMode::Write, timeout).await
    }

    /// Who holds the lock now: the one writer, or the readers ahead of the
    /// first writer.
    pub async fn holders(&self) -> Result<Vec<super::Holder>, RecipeError> {
        super::lock::granted_holders(&self.client, &self.path, BOTH, |entries| {
            (0..entries.len())
                .filter(|&i| blocker_granted(entries, i))
                .collect()
        })
        .await
    }

    /// `read` or `write`.
    pub async fn acquire(&self, mode: LockMode, timeout: Option<Duration>) -> Result<LockGuard, RecipeError> {
        let deadline = deadline_of(timeout);
        let guid = new_guid();
        let cleanup = AttemptCleanup::new(&self.client, vec![self.path.clone()], &guid);
        let body = encode_holder_data(self.owner.as_deref(), &self.data);
        let prefix = match mode {
            LockMode::Read => READ,
            LockMode::Write => WRITE,
        };
        let attempt = async {
            let (node, stat) = create_protected(
                &self.client,
                &self.path,
                prefix,
                &guid,
                &body,
                CreateMode::EphemeralSequential,
                deadline,
            )
            .await?;
            wait_for_grant(
                &self.client,
                &self.path,
                &node,
                &guid,
                BOTH,
                deadline,
                |entries, i| blocker(mode, entries, i),
            )
            .await?;
            Ok::<_, RecipeError>(LockGuard::new(&self.client, node, &stat))
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
}

/// Whether the entry at `i` holds the lock, judged by its kind.
fn blocker_granted(entries: &[Entry], i: usize) -> bool {
    let mode = if entries[i].kind() == WRITE {
        LockMode::Write
    } else {
        LockMode::Read
    };
    blocker(mode, entries, i).is_none()
}

/// The node a contender of `mode` at index `i` waits for, if any.
fn blocker(mode: LockMode, entries: &[Entry], i: usize) -> Option<usize> {
    match mode {
        LockMode::Write => i.checked_sub(1),
        LockMode::Read => entries[..i].iter().rposition(|e| e.kind() == WRITE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes::sort_entries;

    #[test]
    fn readers_wait_for_the_closest_lower_writer_writers_for_their_predecessor() {
        let e = sort_entries(
            vec![
                "read-a-0000000001".into(),
                "write-b-0000000002".into(),
                "read-c-0000000003".into(),
                "read-d-0000000004".into(),
                "write-e-0000000005".into(),
                "read-f-0000000006".into(),
            ],
            BOTH,
        );
        assert_eq!(blocker(LockMode::Read, &e, 0), None);
        assert_eq!(blocker(LockMode::Write, &e, 1), Some(0));
        assert_eq!(blocker(LockMode::Read, &e, 2), Some(1));
        assert_eq!(blocker(LockMode::Read, &e, 3), Some(1));
        assert_eq!(blocker(LockMode::Write, &e, 4), Some(3));
        assert_eq!(blocker(LockMode::Read, &e, 5), Some(4));
        assert_eq!(blocker(LockMode::Write, &e[..1], 0), None);
    }
}
