//! Versioned key/value store: one persistent node per key under the
//! store's path; the value is the node's data and the version its
//! `stat.version`. Writes are conditional on [`Expected`] (compare-and-set
//! through the server's version check). A conditional write whose reply was
//! lost is retried; if the retry's condition fails, the first attempt may
//! have been applied (and even overwritten since), which no read can tell:
//! that is reported as `Client(ConnectionLoss)`, "outcome unknown".

use super::{check_name, check_path, child, ensure_node, retry, wait_connected, RecipeError};
use crate::{acl_open_unsafe, Client, CreateMode, Error, ErrorCode, Stat};

/// The condition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Unconditional (upsert; delete if present).
    Any,
    /// Only if the key does not exist (create).
    Absent,
    /// Only if the key exists at exactly this version (compare-and-set).
    Version(i32),
}

impl From<Option<i32>> for Expected {
    /// `None` → `Any`, `Some(v)` → `Version(v)`.
    fn from(v: Option<i32>) -> Self {
        v.map_or(Expected::Any, Expected::Version)
    }
}

/// A key/value store at a path.
#[derive(Debug, Clone)]
pub struct Kv {
    client: Client,
    path: String,
}

impl Kv {
    pub fn new(client: Client, path: &str) -> Result<Kv, RecipeError> {
        Ok(Kv {
            client,
            path: check_path(path)?,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn node(&self, key: &str) -> Result<String, RecipeError> {
        check_name("key", key)?;
        Ok(child(&self.path, key))
    }

    /// The value and version, `None` if absent.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, i32)>, RecipeError> {
        let node = self.node(key)?;
        Ok(self.read(&node).await?.map(|(d, s)| (d, s.version)))
    }

    async fn read(&self, node: &str) -> Result<Option<(Vec<u8>, Stat)>, RecipeError> {
        let c = &self.client;
        retry(c, || async {
            match c.get_data(node).await {
                Ok(r) => Ok(Some(r)),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn current_version(&self, node: &str) -> Result<Option<i32>, RecipeError> {
        let c = &self.client;
        Ok(retry(c, || c.exists(node)).await?.map(|s| s.version))
    }

    /// The keys, sorted.
    pub async fn keys(&self) -> Result<Vec<String>, RecipeError> {
        let c = &self.client;
        let mut k = retry(c, || async {
            match c.get_children(&self.path).await {
                Ok((k, _)) => Ok(k),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await?;
        k.sort();
        Ok(k)
    }

    /// Writes `value` if `expected` holds; returns the new version.
    /// `Conflict { current }` if it does not; `Client(ConnectionLoss)` if a
    /// lost reply leaves the outcome unknown (re-read and decide).
    pub async fn put(&self, key: &str, value: &[u8], expected: Expected) -> Result<i32, RecipeError> {
        let node = self.node(key)?;
        let c = &self.client;
        let acl = acl_open_unsafe();
        // Set when an attempt's reply was lost: a failed condition on the
        // next attempt may be our own write.
        let mut lost_reply = false;
        loop {
            let r = match expected {
                Expected::Absent => c
                    .create(&node, value, &acl, CreateMode::Persistent)
                    .await
                    .map(|(_, s)| s.version),
                Expected::Version(v) => c.set_data(&node, value, Some(v)).await.map(|s| s.version),
                Expected::Any => match c.set_data(&node, value, None).await {
                    Err(Error::Server(ErrorCode::NoNode)) => {
                        match c.create(&node, value, &acl, CreateMode::Persistent).await {
                            Ok((_, s)) => Ok(s.version),
                            // Created by someone meanwhile: set it.
                            Err(Error::Server(ErrorCode::NodeExists)) => continue,
                            Err(e) => Err(e),
                        }
                    }
                    r => r.map(|s| s.version),
                },
            };
            match r {
                Ok(v) => return Ok(v),
                Err(Error::Server(ErrorCode::NoNode))
                    if matches!(expected, Expected::Absent | Expected::Any) =>
                {
                    ensure_dir_persistent(c, &self.path).await?
                }
                // After a lost reply, a failed condition may be our own
                // write (applied, maybe overwritten since): unknowable.
                Err(Error::Server(ErrorCode::NoNode | ErrorCode::NodeExists | ErrorCode::BadVersion))
                    if lost_reply =>
                {
                    return Err(Error::ConnectionLoss.into())
                }
                Err(Error::Server(ErrorCode::NoNode | ErrorCode::NodeExists | ErrorCode::BadVersion)) => {
                    return Err(RecipeError::Conflict {
                        current: self.current_version(&node).await?,
                    })
                }
                Err(e) if e.is_retriable() => {
                    lost_reply = true;
                    wait_connected(c, None).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes `key` if `expected` holds (`Absent` is not a delete
    /// condition: `InvalidName`). Deleting an absent key with `Any` is not
    /// an error; with `Version` it is a `Conflict { current: None }`.
    pub async fn delete(&self, key: &str, expected: Expected) -> Result<(), RecipeError> {
        let node = self.node(key)?;
        let c = &self.client;
        let version = match expected {
            Expected::Any => None,
            Expected::Version(v) => Some(v),
            Expected::Absent => {
                return Err(RecipeError::InvalidName(
                    "delete takes Any or Version(v), not Absent".into(),
                ))
            }
        };
        let mut lost_reply = false;
        loop {
            match c.delete(&node, version).await {
                Ok(()) => return Ok(()),
                Err(Error::Server(ErrorCode::NoNode)) if version.is_none() => return Ok(()),
                Err(Error::Server(ErrorCode::NoNode | ErrorCode::BadVersion)) if lost_reply => {
                    return Err(Error::ConnectionLoss.into())
                }
                Err(Error::Server(ErrorCode::NoNode | ErrorCode::BadVersion)) => {
                    return Err(RecipeError::Conflict {
                        current: self.current_version(&node).await?,
                    })
                }
                Err(e) if e.is_retriable() => {
                    lost_reply = true;
                    wait_connected(c, None).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The store's directory: persistent (a container would vanish with its
/// last key, which is harmless but surprising to someone browsing).
async fn ensure_dir_persistent(c: &Client, path: &str) -> Result<(), RecipeError> {
    ensure_node(c, path, CreateMode::Persistent).await
}
