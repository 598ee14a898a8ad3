//! Barrier: a single persistent node; while it exists, `wait` blocks.
//! Waiters watch that one node (the ZooKeeper barrier recipe).

use std::time::Duration;

use super::{check_path, deadline_of, delete_quietly, ensure_node, retry, retry_until, until, RecipeError};
use crate::{Client, CreateMode};

/// A barrier at a path: up while the node exists.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    pub fn new(client: Client, path: &str) -> Result<Barrier, RecipeError> {
        Ok(Barrier {
            client,
            path: check_path(path)?,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Raises the barrier (idempotent).
    pub async fn set(&self) -> Result<(), RecipeError> {
        ensure_node(&self.client, &self.path, CreateMode::Persistent).await
    }

    /// Lowers the barrier, releasing every waiter (idempotent).
    pub async fn remove(&self) -> Result<(), RecipeError> {
        delete_quietly(&self.client, &self.path).await.map(|_| ())
    }

    /// True while the barrier is up.
    pub async fn is_set(&self) -> Result<bool, RecipeError> {
        Ok(retry(&self.client, || self.client.exists(&self.path))
            .await?
            .is_some())
    }

    /// Returns once the barrier is down; `Timeout` at the deadline.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<(), RecipeError> {
        let deadline = deadline_of(timeout);
        loop {
            let (stat, w) = retry_until(&self.client, deadline, || self.client.exists_w(&self.path)).await?;
            if stat.is_none() {
                return Ok(());
            }
            until(deadline, w.changed()).await??;
        }
    }
}
