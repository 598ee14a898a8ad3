//! Log entries: what a server proposes and every member applies, in log
//! order. An entry carries the client's write request as it arrived (after
//! the stateless checks of `ops::*::prepare`), plus everything apply needs
//! to be deterministic everywhere: the session, its auth ids and the
//! proposer's clock. The zxid comes from the entry's raft term and index.
//!
//! Encoded with jute, like the rest of the protocol; a version byte leads so
//! the format can evolve.

use proto::jute::{self, DecodeError, Reader, Record};
use proto::records::Id;
use proto::request::Request;

use crate::acl::AuthInfo;

/// Version 2 added `owner`; version 1 entries decode with owner 0.
const FORMAT_VERSION: u8 = 2;

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Server that proposed it, and its proposal number, so that server can
    /// answer the waiting client when it applies the entry.
    pub origin: u64,
    pub proposal: u64,
    pub session_id: i64,
    /// The session attachment (connection) that sent the request: a token
    /// the serving member drew when the client connected, recorded as the
    /// session's owner by `CreateSession`/`Attach`. A `Write` or
    /// `CloseSession` whose owner is not the session's current one is
    /// refused with SESSIONMOVED (docs/ordering.md). 0: not tied to a
    /// connection (expiry, reaper, entries written before version 2).
    pub owner: u64,
    /// Proposer's wall clock (ms since the epoch): ctime/mtime and TTLs.
    pub time_ms: i64,
    pub auth: AuthInfo,
    pub kind: TxnKind,
}

/// `Debug` leaves out session passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum TxnKind {
    CreateSession {
        timeout_ms: u32,
        password: Vec<u8>,
    },
    /// An explicit closeSession or an expiry decided by the leader.
    CloseSession,
    /// A client reattached the session (same password) on a new
    /// connection: the entry's `owner` becomes the session's owner, so the
    /// old connection's writes still on their way are refused. Only if the
    /// session is still owned by `expected_owner` (the owner the proposing
    /// member saw): an attach that sat in a forward queue while the client
    /// moved on and attached elsewhere must not take the session back from
    /// its live connection.
    Attach {
        password: Vec<u8>,
        expected_owner: u64,
    },
    /// A client write: create*, delete, setData, setACL, check, multi, sync.
    Write(Request),
    /// The container/TTL reaper: delete `path` if it is still reapable.
    Reap {
        path: String,
    },
}

impl std::fmt::Debug for TxnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnKind::CreateSession { timeout_ms, .. } => f
                .debug_struct("CreateSession")
                .field("timeout_ms", timeout_ms)
                .field("password", &"<redacted>")
                .finish(),
            TxnKind::CloseSession => f.write_str("CloseSession"),
            TxnKind::Attach { .. } => f.debug_struct("Attach").field("password", &"<redacted>").finish(),
            TxnKind::Write(req) => f.debug_tuple("Write").field(req).finish(),
            TxnKind::Reap { path } => f.debug_struct("Reap").field("path", path).finish(),
        }
    }
}

const KIND_CREATE_SESSION: i32 = 1;
const KIND_CLOSE_SESSION: i32 = 2;
const KIND_WRITE: i32 = 3;
const KIND_REAP: i32 = 4;
const KIND_ATTACH: i32 = 5;

impl Txn {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        jute::write_i64(&mut out, self.origin as i64);
        jute::write_i64(&mut out, self.proposal as i64);
        jute::write_i64(&mut out, self.session_id);
        jute::write_i64(&mut out, self.time_ms);
        jute::write_i64(&mut out, self.owner as i64);
        jute::write_bool(&mut out, self.auth.is_super);
        jute::write_i32(&mut out, self.auth.ids.len() as i32);
        for id in &self.auth.ids {
            id.write(&mut out);
        }
        match &self.kind {
            TxnKind::CreateSession { timeout_ms, password } => {
                jute::write_i32(&mut out, KIND_CREATE_SESSION);
                jute::write_i32(&mut out, *timeout_ms as i32);
                jute::write_buffer(&mut out, password);
            }
            TxnKind::CloseSession => jute::write_i32(&mut out, KIND_CLOSE_SESSION),
            TxnKind::Attach {
                password,
                expected_owner,
            } => {
                jute::write_i32(&mut out, KIND_ATTACH);
                jute::write_buffer(&mut out, password);
                jute::write_i64(&mut out, *expected_owner as i64);
            }
            TxnKind::Write(req) => {
                jute::write_i32(&mut out, KIND_WRITE);
                jute::write_buffer(&mut out, &req.encode());
            }
            TxnKind::Reap { path } => {
                jute::write_i32(&mut out, KIND_REAP);
                jute::write_string(&mut out, path);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Txn, DecodeError> {
        let (&version, rest) = buf.split_first().ok_or(DecodeError::Truncated { needed: 1 })?;
        if version != FORMAT_VERSION && version != 1 {
            return Err(DecodeError::Invalid("unknown log entry format version"));
        }
        let mut r = Reader::new(rest);
        let origin = r.read_i64()? as u64;
        let proposal = r.read_i64()? as u64;
        let session_id = r.read_i64()?;
        let time_ms = r.read_i64()?;
        let owner = if version >= 2 { r.read_i64()? as u64 } else { 0 };
        let is_super = r.read_bool()?;
        let ids: Vec<Id> = r.read_vec()?;
        let kind = match r.read_i32()? {
            KIND_CREATE_SESSION => TxnKind::CreateSession {
                timeout_ms: r.read_i32()? as u32,
                password: r.read_buffer()?,
            },
            KIND_CLOSE_SESSION => TxnKind::CloseSession,
            KIND_ATTACH => TxnKind::Attach {
                password: r.read_buffer()?,
                expected_owner: r.read_i64()? as u64,
            },
            KIND_WRITE => TxnKind::Write(Request::decode(&r.read_buffer()?)?),
            KIND_REAP => TxnKind::Reap {
                path: r.read_string()?,
            },
            _ => return Err(DecodeError::Invalid("unknown log entry kind")),
        };
        r.finish()?;
        Ok(Txn {
            origin,
            proposal,
            session_id,
            owner,
            time_ms,
            auth: AuthInfo { ids, is_super },
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::opcode::OpCode;
    use proto::records::SetDataRequest;
    use proto::request::RequestBody;

    #[test]
    fn every_kind_round_trips() {
        let auth = AuthInfo {
            ids: vec![Id {
                scheme: "digest".into(),
                id: "u:h".into(),
            }],
            is_super: true,
        };
        let kinds = vec![
            TxnKind::CreateSession {
                timeout_ms: 4000,
                password: vec![7; 16],
            },
            TxnKind::CloseSession,
            TxnKind::Attach {
                password: vec![9; 16],
                expected_owner: 0xabc,
            },
            TxnKind::Write(Request {
                xid: 3,
                op: OpCode::SetData,
                body: RequestBody::SetData(SetDataRequest {
                    path: "/a".into(),
                    data: Some(b"x".to_vec()),
                    version: -1,
                }),
            }),
            TxnKind::Reap { path: "/c".into() },
        ];
        for kind in kinds {
            let t = Txn {
                origin: 1,
                proposal: 9,
                session_id: 0x55,
                owner: 0xfeed,
                time_ms: 1234,
                auth: auth.clone(),
                kind,
            };
            assert_eq!(Txn::decode(&t.encode()).unwrap(), t);
        }
    }

    #[test]
    fn version_1_entries_decode_without_an_owner() {
        let t = Txn {
            origin: 2,
            proposal: 3,
            session_id: 0x77,
            owner: 0xabc,
            time_ms: 5,
            auth: AuthInfo::default(),
            kind: TxnKind::CloseSession,
        };
        // Version 1 is version 2 without the owner field.
        let v2 = t.encode();
        let mut v1 = vec![1u8];
        // origin, proposal, session, time: 4 × 8 bytes; then the owner.
        v1.extend_from_slice(&v2[1..1 + 32]);
        v1.extend_from_slice(&v2[1 + 40..]);
        let d = Txn::decode(&v1).unwrap();
        assert_eq!(d.owner, 0);
        assert_eq!(Txn { owner: 0, ..t }, d);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Txn::decode(&[]).is_err());
        assert!(Txn::decode(&[2, 0, 0]).is_err());
        assert!(Txn::decode(&[1, 0, 0]).is_err());
    }
}
