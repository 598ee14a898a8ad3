//! Leader election: candidates are `candidate-<guid>-<seq>` ephemeral
//! sequential children carrying their data; the lowest leads. Campaigning
//! is acquiring an exclusive lock (herd-free), the term is the leader
//! node's czxid, so it strictly increases from leader to leader
//! (`docs/recipes.md`). Observers watch the current leader's node, not the
//! candidate list.

use std::time::Duration;

use super::lock::{acquire_exclusive, lowest_holder};
use super::{
    check_owner, check_path, decode_holder_data, list_sorted, retry, token_of, LockGuard, Lost, RecipeError,
};
use crate::{Client, Error, ErrorCode, OneshotWatcher};

const PREFIX: &str = "candidate";

/// An election at a path.
#[derive(Debug, Clone)]
pub struct Election {
    client: Client,
    path: String,
    owner: Option<String>,
    data: Vec<u8>,
}

/// The leader as observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's candidate node (full path).
    pub node: String,
    pub owner: Option<String>,
    /// The data the leader campaigned with.
    pub data: Vec<u8>,
    /// Strictly increases from one leadership to the next.
    pub term: u64,
    pub session_id: i64,
}

/// Won leadership. Not released on drop: [`Leadership::resign`], or the
/// session's end.
#[must_use = "leadership is held until resigned or the session ends"]
#[derive(Debug, Clone)]
pub struct Leadership {
    /// The leader's candidate node (full path).
    pub node: String,
    /// Fencing token of this leadership.
    pub term: u64,
    grant: LockGuard,
}

impl Leadership {
    /// Steps down (deletes the candidate node).
    pub async fn resign(self) -> Result<(), RecipeError> {
        self.grant.release().await
    }

    /// Resolves when leadership is lost (see [`LockGuard::lost`]).
    pub async fn lost(&self) -> Lost {
        self.grant.lost().await
    }

    /// True if the candidate node still exists for this session.
    pub async fn is_leader(&self) -> Result<bool, RecipeError> {
        self.grant.is_held().await
    }
}

impl Election {
    pub fn new(client: Client, path: &str) -> Result<Election, RecipeError> {
        Ok(Election {
            client,
            path: check_path(path)?,
            owner: None,
            data: Vec::new(),
        })
    }

    /// Labels the candidate node with `owner`.
    pub fn with_owner(mut self, owner: &str) -> Result<Election, RecipeError> {
        check_owner(owner)?;
        self.owner = Some(owner.to_string());
        Ok(self)
    }

    /// The candidate's data (e.g. its address), shown to observers while it
    /// leads.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Election {
        self.data = data.into();
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs for leader and waits until elected; `timeout` as
    /// [`super::Lock::acquire`] (on `Timeout` the candidacy is withdrawn).
    pub async fn campaign(&self, timeout: Option<Duration>) -> Result<Leadership, RecipeError> {
        let grant = acquire_exclusive(
            &self.client,
            &self.path,
            PREFIX,
            &[PREFIX],
            self.owner.as_deref(),
            &self.data,
            timeout,
        )
        .await?;
        Ok(Leadership {
            node: grant.node.clone(),
            term: grant.token,
            grant,
        })
    }

    /// Steps down.
    pub async fn resign(&self, leadership: Leadership) -> Result<(), RecipeError> {
        leadership.resign().await
    }

    /// The current leader, if any.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, RecipeError> {
        Ok(lowest_holder(&self.client, &self.path, &[PREFIX])
            .await?
            .map(|h| LeaderInfo {
                node: h.node,
                owner: h.owner,
                data: h.data,
                term: h.token,
                session_id: h.session_id,
            }))
    }

    /// Observes leadership: the first [`LeaderWatch::next`] returns the
    /// current leader, each later one the next different one.
    pub fn watch(&self) -> LeaderWatch {
        LeaderWatch {
            client: self.client.clone(),
            path: self.path.clone(),
            last: None,
            pending: None,
        }
    }
}

/// A stream of leadership changes (see [`Election::watch`]). Pull-based:
/// each `next` reads the current state, so a slow observer skips
/// intermediate leaders but never misses the latest.
#[derive(Debug)]
pub struct LeaderWatch {
    client: Client,
    path: String,
    last: Option<Option<LeaderInfo>>,
    pending: Option<OneshotWatcher>,
}

impl LeaderWatch {
    /// The current leader the first time, then the next change. Errors
    /// when the observing session ends.
    pub async fn next(&mut self) -> Result<Option<LeaderInfo>, RecipeError> {
        loop {
            if let Some(w) = self.pending.take() {
                w.changed().await?;
            }
            let (info, w) = self.read_watched().await?;
            self.pending = Some(w);
            if self.last.as_ref() != Some(&info) {
                self.last = Some(info.clone());
                return Ok(info);
            }
        }
    }

    /// The current leader and a watch that fires when it may have changed:
    /// on the leader's node if there is a leader, else on the candidate
    /// list (or on the directory's creation).
    async fn read_watched(&self) -> Result<(Option<LeaderInfo>, OneshotWatcher), RecipeError> {
        let c = &self.client;
        loop {
            let Some(entries) = list_sorted(c, &self.path, &[PREFIX]).await? else {
                let (stat, w) = retry(c, || c.exists_w(&self.path)).await?;
                if stat.is_none() {
                    return Ok((None, w));
                }
                continue;
            };
            let Some(first) = entries.first() else {
                let r = retry(c, || async {
                    match c.get_children_w(&self.path).await {
                        Ok(r) => Ok(Some(r)),
                        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .await?;
                match r {
                    Some(((kids, _), w)) if !kids.iter().any(|k| k.starts_with(PREFIX)) => {
                        return Ok((None, w))
                    }
                    _ => continue,
                }
            };
            let node = super::child(&self.path, &first.name);
            let r = retry(c, || async {
                match c.get_data_w(&node).await {
                    Ok(r) => Ok(Some(r)),
                    Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
            if let Some(((raw, stat), w)) = r {
                let (owner, data) = decode_holder_data(&raw);
                return Ok((
                    Some(LeaderInfo {
                        node,
                        owner,
                        data,
                        term: token_of(&stat),
                        session_id: stat.ephemeral_owner,
                    }),
                    w,
                ));
            }
        }
    }
}
