//! Double barrier (the ZooKeeper recipe): `count` members enter together
//! and leave together. Layout: `<path>/members/<member>` (ephemeral) and
//! `<path>/ready` (created by the member that completes the count). Every
//! wait is on one node: `ready` when entering; the highest or lowest member
//! when leaving. One round per path (`ready` stays).

use std::time::Duration;

use super::{
    check_name, check_path, child, deadline_of, delete_quietly, ensure_dir, ensure_node, retry, until,
    RecipeError,
};
use crate::{acl_open_unsafe, Client, CreateMode, Error, ErrorCode};

/// A double barrier for `count` members at a path.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    members: String,
    ready: String,
    count: u32,
    member: String,
}

impl DoubleBarrier {
    /// `member` names this participant (unique among the `count`).
    pub fn new(client: Client, path: &str, count: u32, member: &str) -> Result<DoubleBarrier, RecipeError> {
        let path = check_path(path)?;
        check_name("member", member)?;
        if count == 0 {
            return Err(RecipeError::InvalidName(
                "a double barrier needs a count of at least 1".into(),
            ));
        }
        Ok(DoubleBarrier {
            client,
            members: child(&path, "members"),
            ready: child(&path, "ready"),
            path,
            count,
            member: member.to_string(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn own(&self) -> String {
        child(&self.members, &self.member)
    }

    async fn list(&self) -> Result<Vec<String>, RecipeError> {
        let c = &self.client;
        let mut kids = retry(c, || async {
            match c.get_children(&self.members).await {
                Ok((k, _)) => Ok(k),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await?;
        kids.sort();
        Ok(kids)
    }

    /// Joins and waits until `count` members have joined.
    pub async fn enter(&self, timeout: Option<Duration>) -> Result<(), RecipeError> {
        let deadline = deadline_of(timeout);
        let c = &self.client;
        let acl = acl_open_unsafe();
        let own = self.own();
        loop {
            match c.create(&own, b"", &acl, CreateMode::Ephemeral).await {
                Ok(_) => break,
                Err(Error::Server(ErrorCode::NoNode)) => ensure_dir(c, &self.members).await?,
                Err(Error::Server(ErrorCode::NodeExists)) => {
                    let stat = retry(c, || c.exists(&own)).await?;
                    match stat {
                        Some(s) if s.ephemeral_owner == c.session_id() => break,
                        Some(_) => return Err(RecipeError::MemberExists(self.member.clone())),
                        None => continue,
                    }
                }
                Err(e) if e.is_retriable() => super::wait_connected(c, None).await?,
                Err(e) => return Err(e.into()),
            }
        }
        let entered = async {
            if self.list().await?.len() >= self.count as usize {
                ensure_node(c, &self.ready, CreateMode::Persistent).await?;
                return Ok(());
            }
            loop {
                let (stat, w) = retry(c, || c.exists_w(&self.ready)).await?;
                if stat.is_some() {
                    return Ok(());
                }
                until(deadline, w.changed()).await??;
            }
        };
        match entered.await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = delete_quietly(c, &own).await;
                Err(e)
            }
        }
    }

    /// Waits until every member has left (or is leaving), then returns.
    pub async fn leave(&self, timeout: Option<Duration>) -> Result<(), RecipeError> {
        let deadline = deadline_of(timeout);
        let c = &self.client;
        let own = self.member.as_str();
        loop {
            let kids = self.list().await?;
            if kids.is_empty() {
                return Ok(());
            }
            let present = kids.iter().any(|k| k == own);
            if present && kids.len() == 1 {
                delete_quietly(c, &self.own()).await?;
                return Ok(());
            }
            let wait_for = if present && kids[0] == own {
                // Lowest: wait for the highest to go.
                kids.last().unwrap().clone()
            } else {
                if present {
                    delete_quietly(c, &self.own()).await?;
                }
                kids[0].clone()
            };
            if wait_for == own {
                continue;
            }
            let node = child(&self.members, &wait_for);
            let (stat, w) = retry(c, || c.exists_w(&node)).await?;
            if stat.is_some() {
                until(deadline, w.changed()).await??;
            }
        }
    }
}
