//! Distributed FIFO queue. Items are persistent sequential `item-<seq>`
//! children. A put and a take are each one multi that also creates an
//! ephemeral marker (`put-<guid>`, `take-<guid>`), deleted right after: if
//! the reply is lost, the marker says whether the multi was applied, so an
//! item is neither duplicated by a retried put nor lost by a retried take.
//! A take claims the lowest item by deleting it; a consumer that loses the
//! race moves to the next, so items leave in sequence order, each once.
//! Consumers finding the queue empty queue up on an internal herd-free lock
//! (`<path>/takers`); only its holder watches the child list.

use std::time::Duration;

use super::lock::acquire_exclusive;
use super::{
    check_path, child, deadline_of, delete_quietly, ensure_dir, new_guid, retry, sort_entries, until,
    wait_connected, DeleteOnDrop, RecipeError,
};
use crate::{acl_open_unsafe, Client, CreateMode, Error, ErrorCode, Op};

const ITEM: &str = "item";

/// A queue at a path.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
    takers: String,
}

impl Queue {
    pub fn new(client: Client, path: &str) -> Result<Queue, RecipeError> {
        let path = check_path(path)?;
        Ok(Queue {
            client,
            takers: child(&path, "takers"),
            path,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends an item.
    pub async fn put(&self, data: &[u8]) -> Result<(), RecipeError> {
        let c = &self.client;
        let marker = child(&self.path, &format!("put-{}", new_guid()));
        let ops = vec![
            Op::Create {
                path: child(&self.path, &format!("{ITEM}-")),
                data: data.to_vec(),
                acl: acl_open_unsafe(),
                mode: CreateMode::PersistentSequential,
            },
            Op::Create {
                path: marker.clone(),
                data: Vec::new(),
                acl: acl_open_unsafe(),
                mode: CreateMode::Ephemeral,
            },
        ];
        let mut lost_reply = false;
        loop {
            match c.multi(ops.clone()).await {
                Ok(_) => break,
                Err(Error::Server(ErrorCode::NoNode)) => ensure_dir(c, &self.path).await?,
                // Only our own earlier attempt creates this marker.
                Err(Error::Server(ErrorCode::NodeExists)) if lost_reply => break,
                Err(e) if e.is_retriable() => {
                    lost_reply = true;
                    wait_connected(c, None).await?;
                    if retry(c, || c.exists(&marker)).await?.is_some() {
                        break;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !lost_reply {
            delete_quietly(c, &marker).await?;
        }
        // else: the lost attempt may still be in flight (a write sent on
        // the old connection can be applied after this session's next
        // reads); the marker stays until the session ends so that attempt
        // fails instead of adding the item twice.
        Ok(())
    }

    /// Number of items waiting.
    pub async fn len(&self) -> Result<usize, RecipeError> {
        Ok(self.items().await?.len())
    }

    pub async fn is_empty(&self) -> Result<bool, RecipeError> {
        Ok(self.len().await? == 0)
    }

    async fn items(&self) -> Result<Vec<String>, RecipeError> {
        let c = &self.client;
        let kids = retry(c, || async {
            match c.get_children(&self.path).await {
                Ok((k, _)) => Ok(k),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(sort_entries(kids, &[ITEM]).into_iter().map(|e| e.name).collect())
    }

    /// Removes and returns the oldest item, waiting up to `timeout` for one
    /// (`None`: until one arrives or the session ends).
    pub async fn take(&self, timeout: Option<Duration>) -> Result<Vec<u8>, RecipeError> {
        let deadline = deadline_of(timeout);
        let c = &self.client;
        if let Some(v) = self.take_from(self.items().await?).await? {
            return Ok(v);
        }
        let remaining = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        if remaining == Some(Duration::ZERO) {
            return Err(RecipeError::Timeout);
        }
        // Queue up behind other waiting consumers; only the head watches.
        let turn = acquire_exclusive(c, &self.takers, "lock", &["lock"], None, b"", remaining).await?;
        let turn = DeleteOnDrop::new(c, turn.node);
        let got = async {
            loop {
                let r = retry(c, || async {
                    match c.get_children_w(&self.path).await {
                        Ok(((k, _), w)) => Ok(Some((k, w))),
                        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .await?;
                let Some((kids, w)) = r else {
                    ensure_dir(c, &self.path).await?;
                    continue;
                };
                let items = sort_entries(kids, &[ITEM]).into_iter().map(|e| e.name).collect();
                if let Some(v) = self.take_from(items).await? {
                    return Ok(v);
                }
                until(deadline, w.changed()).await??;
            }
        };
        let r = got.await;
        if let Err(e) = turn.run().await {
            // Never drop a taken item for this: the turn goes with the
            // session at the latest.
            tracing::warn!(queue = %self.path, error = %e, "could not release the takers' turn");
        }
        r
    }

    /// Takes the oldest item if there is one now.
    pub async fn try_take(&self) -> Result<Option<Vec<u8>>, RecipeError> {
        self.take_from(self.items().await?).await
    }

    /// Claims the first of `items` (sorted) still there; `None` if every
    /// one was taken by others.
    ///
    /// A claim whose reply was lost is settled by the marker before moving
    /// on: the claim and the marker are one multi, so the marker exists iff
    /// that claim was applied; and a lost claim can land late only while
    /// its item still exists, where the retry meets it.
    async fn take_from(&self, items: Vec<String>) -> Result<Option<Vec<u8>>, RecipeError> {
        let c = &self.client;
        let marker = child(&self.path, &format!("take-{}", new_guid()));
        let marker_exists = || async { retry(c, || c.exists(&marker)).await.map(|s| s.is_some()) };
        for name in items {
            let item = child(&self.path, &name);
            // The item's data, once a claim of it lost its reply.
            let mut lost_claim: Option<Vec<u8>> = None;
            let claimed = loop {
                let read = retry(c, || async {
                    match c.get_data(&item).await {
                        Ok(r) => Ok(Some(r)),
                        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .await?;
                let Some((data, stat)) = read else {
                    // Gone: by our lost claim (the marker says so) or by
                    // another consumer.
                    match lost_claim.take() {
                        Some(d) if marker_exists().await? => break Some(d),
                        _ => break None,
                    }
                };
                let ops = vec![
                    Op::Delete {
                        path: item.clone(),
                        version: Some(stat.version),
                    },
                    Op::Create {
                        path: marker.clone(),
                        data: Vec::new(),
                        acl: acl_open_unsafe(),
                        mode: CreateMode::Ephemeral,
                    },
                ];
                match c.multi(ops).await {
                    Ok(_) => break Some(data),
                    // Our lost claim of this item was applied meanwhile.
                    Err(Error::Server(ErrorCode::NodeExists)) => break Some(data),
                    Err(Error::Server(ErrorCode::NoNode))
                        if lost_claim.is_some() && marker_exists().await? =>
                    {
                        break Some(data)
                    }
                    Err(Error::Server(ErrorCode::NoNode)) => break None,
                    // Changed under us (not by this recipe): read it again.
                    Err(Error::Server(ErrorCode::BadVersion)) => continue,
                    Err(e) if e.is_retriable() => {
                        wait_connected(c, None).await?;
                        if marker_exists().await? {
                            break Some(data);
                        }
                        lost_claim = Some(data);
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            if let Some(data) = claimed {
                delete_quietly(c, &marker).await?;
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}
