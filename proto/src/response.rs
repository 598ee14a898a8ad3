//! A whole reply: header (xid, zxid, error) and, on success, the body the
//! request's opcode calls for. Also watch notifications (xid -1).

use crate::error::ErrorCode;
use crate::jute::{DecodeError, Reader, Record};
use crate::opcode::{xid, OpCode};
use crate::records::*;

/// The body of a successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// delete, check, ping, auth, setWatches, setWatches2, checkWatches,
    /// removeWatches, closeSession: header only.
    Empty,
    /// addWatch: ZooKeeper answers with an `ErrorResponse` whose `err` is 0
    /// (`FinalRequestProcessor`), and the Java client reads that body: a
    /// header-only reply makes it fail with a connection loss.
    AddWatch,
    Create(CreateResponse),
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(Stat),
    /// getData, and reconfig (the new configuration and the stat of
    /// `/zookeeper/config`).
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    GetEphemerals(GetEphemeralsResponse),
    Sync(SyncResponse),
    Multi(Vec<MultiResult>),
    WhoAmI(WhoAmIResponse),
    Sasl(SetSaslResponse),
}

/// One result of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(CreateResponse),
    Create2(Create2Response),
    Delete,
    SetData(Stat),
    Check,
    GetData(GetDataResponse),
    GetChildren(GetChildrenResponse),
    /// A failed operation, or (in a failed multi) `Ok` for an operation that
    /// was rolled back and `RuntimeInconsistency` for one never attempted.
    Error(ErrorCode),
}

impl MultiResult {
    fn type_code(&self) -> i32 {
        match self {
            MultiResult::Create(_) => OpCode::Create.code(),
            MultiResult::Create2(_) => OpCode::Create2.code(),
            MultiResult::Delete => OpCode::Delete.code(),
            MultiResult::SetData(_) => OpCode::SetData.code(),
            MultiResult::Check => OpCode::Check.code(),
            MultiResult::GetData(_) => OpCode::GetData.code(),
            MultiResult::GetChildren(_) => OpCode::GetChildren.code(),
            MultiResult::Error(_) => OpCode::Error.code(),
        }
    }
}

impl ResponseBody {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ResponseBody::Empty => {}
            ResponseBody::AddWatch => ErrorResponse { err: 0 }.write(out),
            ResponseBody::Create(r) => r.write(out),
            ResponseBody::Create2(r) => r.write(out),
            ResponseBody::Stat(s) => s.write(out),
            ResponseBody::GetData(r) => r.write(out),
            ResponseBody::GetAcl(r) => r.write(out),
            ResponseBody::GetChildren(r) => r.write(out),
            ResponseBody::GetChildren2(r) => r.write(out),
            ResponseBody::GetAllChildrenNumber(r) => r.write(out),
            ResponseBody::GetEphemerals(r) => r.write(out),
            ResponseBody::Sync(r) => r.write(out),
            ResponseBody::WhoAmI(r) => r.write(out),
            ResponseBody::Sasl(r) => r.write(out),
            ResponseBody::Multi(results) => {
                for res in results {
                    let err = match res {
                        MultiResult::Error(e) => e.code(),
                        _ => 0,
                    };
                    MultiHeader {
                        type_: res.type_code(),
                        done: false,
                        err,
                    }
                    .write(out);
                    match res {
                        MultiResult::Create(r) => r.write(out),
                        MultiResult::Create2(r) => r.write(out),
                        MultiResult::Delete | MultiResult::Check => {}
                        MultiResult::SetData(s) => s.write(out),
                        MultiResult::GetData(r) => r.write(out),
                        MultiResult::GetChildren(r) => r.write(out),
                        MultiResult::Error(e) => ErrorResponse { err: e.code() }.write(out),
                    }
                }
                MultiHeader {
                    type_: -1,
                    done: true,
                    err: -1,
                }
                .write(out);
            }
        }
    }

    /// Decodes the body of a successful reply to `op` (clients and tests).
    pub fn decode(op: OpCode, buf: &[u8]) -> Result<ResponseBody, DecodeError> {
        let mut r = Reader::new(buf);
        let body = match op {
            OpCode::Create => ResponseBody::Create(CreateResponse::read(&mut r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                ResponseBody::Create2(Create2Response::read(&mut r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => ResponseBody::Stat(Stat::read(&mut r)?),
            OpCode::GetData | OpCode::Reconfig => ResponseBody::GetData(GetDataResponse::read(&mut r)?),
            OpCode::AddWatch => {
                ErrorResponse::read(&mut r)?;
                ResponseBody::AddWatch
            }
            OpCode::GetAcl => ResponseBody::GetAcl(GetAclResponse::read(&mut r)?),
            OpCode::GetChildren => ResponseBody::GetChildren(GetChildrenResponse::read(&mut r)?),
            OpCode::GetChildren2 => ResponseBody::GetChildren2(GetChildren2Response::read(&mut r)?),
            OpCode::GetAllChildrenNumber => {
                ResponseBody::GetAllChildrenNumber(GetAllChildrenNumberResponse::read(&mut r)?)
            }
            OpCode::GetEphemerals => ResponseBody::GetEphemerals(GetEphemeralsResponse::read(&mut r)?),
            OpCode::Sync => ResponseBody::Sync(SyncResponse::read(&mut r)?),
            OpCode::WhoAmI => ResponseBody::WhoAmI(WhoAmIResponse::read(&mut r)?),
            OpCode::Sasl => ResponseBody::Sasl(SetSaslResponse::read(&mut r)?),
            OpCode::Multi | OpCode::MultiRead => {
                let mut results = Vec::new();
                loop {
                    let h = MultiHeader::read(&mut r)?;
                    if h.done {
                        break;
                    }
                    let res = match OpCode::from_code(h.type_)? {
                        OpCode::Create => MultiResult::Create(CreateResponse::read(&mut r)?),
                        OpCode::Create2 => MultiResult::Create2(Create2Response::read(&mut r)?),
                        OpCode::Delete => MultiResult::Delete,
                        OpCode::Check => MultiResult::Check,
                        OpCode::SetData => MultiResult::SetData(Stat::read(&mut r)?),
                        OpCode::GetData => MultiResult::GetData(GetDataResponse::read(&mut r)?),
                        OpCode::GetChildren => MultiResult::GetChildren(GetChildrenResponse::read(&mut r)?),
                        OpCode::Error => {
                            let e = ErrorResponse::read(&mut r)?;
                            MultiResult::Error(
                                ErrorCode::from_code(e.err)
                                    .ok_or(DecodeError::Invalid("unknown error code"))?,
                            )
                        }
                        _ => return Err(DecodeError::Invalid("unexpected opcode in multi response")),
                    };
                    results.push(res);
                }
                ResponseBody::Multi(results)
            }
            _ => ResponseBody::Empty,
        };
        r.finish()?;
        Ok(body)
    }
}

/// Encodes a reply packet (without the length prefix). A body is written
/// only when `err` is `Ok`, as ZooKeeper does.
pub fn encode_reply(xid: i32, zxid: i64, err: ErrorCode, body: &ResponseBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .write(&mut out);
    if err == ErrorCode::Ok {
        body.write(&mut out);
    }
    out
}

/// Encodes a watch notification packet with xid -1 and zxid -1 (what
/// ZooKeeper before 3.9 always sent, and 3.9 sends for events no
/// transaction triggered).
pub fn encode_notification(event: &WatcherEvent) -> Vec<u8> {
    encode_notification_with_zxid(event, -1)
}

/// Encodes a watch notification packet (xid -1) carrying the zxid of the
/// transaction that triggered it, as ZooKeeper 3.9 does (the Java client
/// exposes it as `WatchedEvent.getZxid()`); -1 means none.
pub fn encode_notification_with_zxid(event: &WatcherEvent, zxid: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .write(&mut out);
    event.write(&mut out);
    out
}

/// Splits a reply packet into its header and body bytes (clients and tests).
pub fn decode_reply_header(buf: &[u8]) -> Result<(ReplyHeader, &[u8]), DecodeError> {
    let mut r = Reader::new(buf);
    let h = ReplyHeader::read(&mut r)?;
    Ok((h, &buf[buf.len() - r.remaining()..]))
}
