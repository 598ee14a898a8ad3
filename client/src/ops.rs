//! Operation-level types: create modes, the operations of a multi and their
//! results, and ready-made ACLs.

use std::time::Duration;

use base64::Engine;
use proto::records::{create_mode, perms, Acl, Id, Stat};
use proto::ErrorCode;
use sha1::{Digest, Sha1};

/// How a node is created (ZooKeeper `CreateMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    /// Deleted by the server once its last child is gone.
    Container,
    /// Deleted by the server when unmodified and childless for the TTL.
    PersistentWithTtl(Duration),
    PersistentSequentialWithTtl(Duration),
}

impl CreateMode {
    /// The wire flag.
    pub fn flag(self) -> i32 {
        match self {
            CreateMode::Persistent => create_mode::PERSISTENT,
            CreateMode::Ephemeral => create_mode::EPHEMERAL,
            CreateMode::PersistentSequential => create_mode::PERSISTENT_SEQUENTIAL,
            CreateMode::EphemeralSequential => create_mode::EPHEMERAL_SEQUENTIAL,
            CreateMode::Container => create_mode::CONTAINER,
            CreateMode::PersistentWithTtl(_) => create_mode::PERSISTENT_WITH_TTL,
            CreateMode::PersistentSequentialWithTtl(_) => create_mode::PERSISTENT_SEQUENTIAL_WITH_TTL,
        }
    }

    /// The TTL in milliseconds, for the TTL modes.
    pub fn ttl_ms(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl(t) | CreateMode::PersistentSequentialWithTtl(t) => {
                Some(t.as_millis().min(i64::MAX as u128) as i64)
            }
            _ => None,
        }
    }
}

/// One operation of a [`crate::Client::multi`]. Paths are client paths
/// (the chroot is applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        acl: Vec<Acl>,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: Option<i32>,
    },
}

impl Op {
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// The result of one operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The created node's path (client path, with a sequence suffix if
    /// sequential) and stat.
    Create {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    /// In a failed multi: the failing op's code; `Ok` for ops that were
    /// rolled back, `RuntimeInconsistency` for ops never attempted.
    Error(ErrorCode),
}

/// `world:anyone` with every permission (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub fn acl_open_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// Every permission for the authenticated creator (`CREATOR_ALL_ACL`); the
/// session must carry an authentication (e.g. digest).
pub fn acl_creator_all() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }]
}

/// `world:anyone` may read (`READ_ACL_UNSAFE`).
pub fn acl_read_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// The `digest` ACL id of `user:password`
/// (`DigestAuthenticationProvider.generateDigest`):
/// `user:base64(sha1("user:password"))`.
pub fn digest_id(user: &str, password: &str) -> Id {
    let hash = Sha1::digest(format!("{user}:{password}").as_bytes());
    Id {
        scheme: "digest".into(),
        id: format!(
            "{user}:{}",
            base64::engine::general_purpose::STANDARD.encode(hash)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(
            digest_id("super", "test").id,
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn flags() {
        assert_eq!(CreateMode::EphemeralSequential.flag(), 3);
        assert_eq!(
            CreateMode::PersistentWithTtl(Duration::from_secs(2)).ttl_ms(),
            Some(2000)
        );
        assert_eq!(CreateMode::Persistent.ttl_ms(), None);
    }
}
