//! Group membership: each member is an ephemeral child named after it,
//! carrying its data (and an owner label) in the holder envelope. Members
//! vanish with their session. Observers get the member list and then each
//! changed list (one child watch per observer; every observer needs every
//! change, so that is not a herd).

use super::{
    check_name, check_owner, check_path, child, decode_holder_data, encode_holder_data, ensure_dir,
    node_lost, retry, Lost, RecipeError,
};
use crate::{acl_open_unsafe, Client, CreateMode, Error, ErrorCode, OneshotWatcher};

/// A group at a path.
#[derive(Debug, Clone)]
pub struct Group {
    client: Client,
    path: String,
}

/// One member as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub owner: Option<String>,
    pub data: Vec<u8>,
    /// The member's session.
    pub session_id: i64,
}

/// A joined member: its node path, for [`Group::leave`] or
/// [`super::release`] from anywhere.
#[must_use = "a membership lasts until left or the session ends"]
#[derive(Clone)]
pub struct Membership {
    pub name: String,
    pub node: String,
    client: Client,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("name", &self.name)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Resolves when the membership ends (node deleted, session ended).
    pub async fn lost(&self) -> Lost {
        node_lost(&self.client, &self.node).await
    }
}

impl Group {
    pub fn new(client: Client, path: &str) -> Result<Group, RecipeError> {
        Ok(Group {
            client,
            path: check_path(path)?,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Joins as `member` with `data`, labelled with `owner`. Joining again
    /// with the same session and owner (e.g. a retry) is not an error;
    /// a name held by another session or owner is `MemberExists`.
    pub async fn join(
        &self,
        member: &str,
        owner: Option<&str>,
        data: &[u8],
    ) -> Result<Membership, RecipeError> {
        check_name("member", member)?;
        if let Some(o) = owner {
            check_owner(o)?;
        }
        let c = &self.client;
        let node = child(&self.path, member);
        let body = encode_holder_data(owner, data);
        let acl = acl_open_unsafe();
        let done = || Membership {
            name: member.to_string(),
            node: node.clone(),
            client: c.clone(),
        };
        loop {
            match c.create(&node, &body, &acl, CreateMode::Ephemeral).await {
                Ok(_) => return Ok(done()),
                Err(Error::Server(ErrorCode::NoNode)) => ensure_dir(c, &self.path).await?,
                Err(Error::Server(ErrorCode::NodeExists)) => {
                    if self.is_ours(&node, owner).await? {
                        // Same session and owner: a retried join, or a
                        // rejoin; make the data current.
                        let _ = retry(c, || c.set_data(&node, &body, None)).await?;
                        return Ok(done());
                    }
                    return Err(RecipeError::MemberExists(member.to_string()));
                }
                Err(e) if e.is_retriable() => super::wait_connected(c, None).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether `node` exists, belongs to this session and carries `owner`.
    /// Absent: also `false` (the caller's create will retry and succeed).
    async fn is_ours(&self, node: &str, owner: Option<&str>) -> Result<bool, RecipeError> {
        let c = &self.client;
        let r = retry(c, || async {
            match c.get_data(node).await {
                Ok(r) => Ok(Some(r)),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(match r {
            Some((raw, stat)) => {
                stat.ephemeral_owner == c.session_id() && decode_holder_data(&raw).0.as_deref() == owner
            }
            None => false,
        })
    }

    /// Leaves (deletes the member's node, whoever's it is: a sidecar uses
    /// this for an app whose lease ended). `NotHeld` if it is not a member.
    pub async fn leave(&self, member: &str) -> Result<(), RecipeError> {
        check_name("member", member)?;
        super::release(&self.client, &child(&self.path, member)).await
    }

    /// The current members, sorted by name.
    pub async fn members(&self) -> Result<Vec<Member>, RecipeError> {
        let c = &self.client;
        let kids = retry(c, || async {
            match c.get_children(&self.path).await {
                Ok((k, _)) => Ok(k),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await?;
        self.read_members(kids).await
    }

    async fn read_members(&self, mut kids: Vec<String>) -> Result<Vec<Member>, RecipeError> {
        let c = &self.client;
        kids.sort();
        let mut out = Vec::with_capacity(kids.len());
        for name in kids {
            let node = child(&self.path, &name);
            let r = retry(c, || async {
                match c.get_data(&node).await {
                    Ok(r) => Ok(Some(r)),
                    Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
            // Gone since the listing: it left; the next listing shows that.
            if let Some((raw, stat)) = r {
                let (owner, data) = decode_holder_data(&raw);
                out.push(Member {
                    name,
                    owner,
                    data,
                    session_id: stat.ephemeral_owner,
                });
            }
        }
        Ok(out)
    }

    /// Observes the member list: the first [`GroupWatch::next`] returns the
    /// current list, each later one the next different list.
    pub fn watch(&self) -> GroupWatch {
        GroupWatch {
            group: self.clone(),
            last: None,
            pending: None,
        }
    }
}

/// A stream of member lists (see [`Group::watch`]). Pull-based: a slow
/// observer skips intermediate lists but always converges on the latest.
#[derive(Debug)]
pub struct GroupWatch {
    group: Group,
    last: Option<Vec<Member>>,
    pending: Option<OneshotWatcher>,
}

impl GroupWatch {
    /// The list the first time, then the next different one. Errors when
    /// the observing session ends.
    pub async fn next(&mut self) -> Result<Vec<Member>, RecipeError> {
        let c = self.group.client.clone();
        loop {
            if let Some(w) = self.pending.take() {
                w.changed().await?;
            }
            let path = &self.group.path;
            let r = retry(&c, || async {
                match c.get_children_w(path).await {
                    Ok(((k, _), w)) => Ok(Some((k, w))),
                    Err(Error::Server(ErrorCode::NoNode)) => match c.exists_w(path).await? {
                        // No group yet: no members; wait for its creation.
                        (None, w) => Ok(Some((Vec::new(), w))),
                        // Created meanwhile: list again.
                        (Some(_), _) => Ok(None),
                    },
                    Err(e) => Err(e),
                }
            })
            .await?;
            let Some((kids, w)) = r else { continue };
            let list = if kids.is_empty() {
                Vec::new()
            } else {
                self.group.read_members(kids).await?
            };
            self.pending = Some(w);
            if self.last.as_ref() != Some(&list) {
                self.last = Some(list.clone());
                return Ok(list);
            }
        }
    }
}
