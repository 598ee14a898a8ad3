//! A whole client request: header (xid, opcode) and the body that opcode
//! carries. This is the one place that knows which record follows which
//! opcode, for both directions.

use crate::jute::{DecodeError, Reader, Record};
use crate::opcode::OpCode;
use crate::records::*;

/// A request after the connect handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub xid: i32,
    pub op: OpCode,
    pub body: RequestBody,
}

/// The body of a request; opcodes that share a record share a variant and
/// the caller tells them apart by [`Request::op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// create, create2, createContainer.
    Create(CreateRequest),
    CreateTtl(CreateTtlRequest),
    /// delete and deleteContainer. ZooKeeper issues deleteContainer only
    /// internally; whether a client may send it is the server's decision.
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    /// getChildren and getChildren2 (same request record).
    GetChildren(GetChildrenRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    GetEphemerals(GetEphemeralsRequest),
    Sync(SyncRequest),
    Check(CheckVersionRequest),
    /// multi and multiRead.
    Multi(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    /// checkWatches and removeWatches.
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    /// setWatches (no persistent lists) and setWatches2.
    SetWatches(SetWatches2),
    AddWatch(AddWatchRequest),
    Sasl(GetSaslRequest),
    Ping,
    WhoAmI,
    CloseSession,
}

/// One operation inside a multi (create*, delete, setData, check) or a
/// multiRead (getChildren, getData).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `op` is create, create2 or createContainer.
    Create {
        op: OpCode,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn op(&self) -> OpCode {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// True for the ops of a multiRead (getChildren, getData). ZooKeeper
    /// refuses a multi that mixes read and write ops, and answers read ops
    /// in a multi or write ops in a multiRead with an error; decoding leaves
    /// that check to the server.
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    fn read(op: OpCode, r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
        Ok(match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => MultiOp::Create {
                op,
                req: CreateRequest::read(r)?,
            },
            OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            OpCode::Delete => MultiOp::Delete(DeleteRequest::read(r)?),
            OpCode::SetData => MultiOp::SetData(SetDataRequest::read(r)?),
            OpCode::Check => MultiOp::Check(CheckVersionRequest::read(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            OpCode::GetData => MultiOp::GetData(GetDataRequest::read(r)?),
            _ => return Err(DecodeError::Invalid("opcode not allowed inside multi")),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            MultiOp::Create { req, .. } => req.write(out),
            MultiOp::CreateTtl(r) => r.write(out),
            MultiOp::Delete(r) => r.write(out),
            MultiOp::SetData(r) => r.write(out),
            MultiOp::Check(r) => r.write(out),
            MultiOp::GetChildren(r) => r.write(out),
            MultiOp::GetData(r) => r.write(out),
        }
    }
}

impl Request {
    /// Decodes a request packet (without the length prefix).
    pub fn decode(payload: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(payload);
        let header = RequestHeader::read(&mut r)?;
        let op = OpCode::from_code(header.op_type)?;
        let body = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                RequestBody::Create(CreateRequest::read(&mut r)?)
            }
            OpCode::CreateTtl => RequestBody::CreateTtl(CreateTtlRequest::read(&mut r)?),
            OpCode::Delete | OpCode::DeleteContainer => RequestBody::Delete(DeleteRequest::read(&mut r)?),
            OpCode::Exists => RequestBody::Exists(ExistsRequest::read(&mut r)?),
            OpCode::GetData => RequestBody::GetData(GetDataRequest::read(&mut r)?),
            OpCode::SetData => RequestBody::SetData(SetDataRequest::read(&mut r)?),
            OpCode::GetAcl => RequestBody::GetAcl(GetAclRequest::read(&mut r)?),
            OpCode::SetAcl => RequestBody::SetAcl(SetAclRequest::read(&mut r)?),
            OpCode::GetChildren | OpCode::GetChildren2 => {
                RequestBody::GetChildren(GetChildrenRequest::read(&mut r)?)
            }
            OpCode::GetAllChildrenNumber => {
                RequestBody::GetAllChildrenNumber(GetAllChildrenNumberRequest::read(&mut r)?)
            }
            OpCode::GetEphemerals => RequestBody::GetEphemerals(GetEphemeralsRequest::read(&mut r)?),
            OpCode::Sync => RequestBody::Sync(SyncRequest::read(&mut r)?),
            OpCode::Check => RequestBody::Check(CheckVersionRequest::read(&mut r)?),
            OpCode::Multi | OpCode::MultiRead => {
                let mut ops = Vec::new();
                // Each header consumes bytes, so the loop is bounded by the packet.
                loop {
                    let h = MultiHeader::read(&mut r)?;
                    if h.done {
                        break;
                    }
                    ops.push(MultiOp::read(OpCode::from_code(h.type_)?, &mut r)?);
                }
                RequestBody::Multi(ops)
            }
            OpCode::Reconfig => RequestBody::Reconfig(ReconfigRequest::read(&mut r)?),
            OpCode::CheckWatches | OpCode::RemoveWatches => {
                RequestBody::RemoveWatches(RemoveWatchesRequest::read(&mut r)?)
            }
            OpCode::Auth => RequestBody::Auth(AuthPacket::read(&mut r)?),
            OpCode::SetWatches => {
                let w = SetWatches::read(&mut r)?;
                RequestBody::SetWatches(SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                })
            }
            OpCode::SetWatches2 => RequestBody::SetWatches(SetWatches2::read(&mut r)?),
            OpCode::AddWatch => RequestBody::AddWatch(AddWatchRequest::read(&mut r)?),
            OpCode::Sasl => RequestBody::Sasl(GetSaslRequest::read(&mut r)?),
            OpCode::Ping => RequestBody::Ping,
            OpCode::WhoAmI => RequestBody::WhoAmI,
            OpCode::CloseSession => RequestBody::CloseSession,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::UnknownOpCode(header.op_type))
            }
        };
        // Clients may pad packets; ZooKeeper ignores trailing bytes too.
        Ok(Request {
            xid: header.xid,
            op,
            body,
        })
    }

    /// Encodes the request packet (without the length prefix). Used by
    /// clients and tests; `SetWatches` is written as setWatches2 unless
    /// `op` says setWatches.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        RequestHeader {
            xid: self.xid,
            op_type: self.op.code(),
        }
        .write(&mut out);
        match &self.body {
            RequestBody::Create(r) => r.write(&mut out),
            RequestBody::CreateTtl(r) => r.write(&mut out),
            RequestBody::Delete(r) => r.write(&mut out),
            RequestBody::Exists(r) => r.write(&mut out),
            RequestBody::GetData(r) => r.write(&mut out),
            RequestBody::SetData(r) => r.write(&mut out),
            RequestBody::GetAcl(r) => r.write(&mut out),
            RequestBody::SetAcl(r) => r.write(&mut out),
            RequestBody::GetChildren(r) => r.write(&mut out),
            RequestBody::GetAllChildrenNumber(r) => r.write(&mut out),
            RequestBody::GetEphemerals(r) => r.write(&mut out),
            RequestBody::Sync(r) => r.write(&mut out),
            RequestBody::Check(r) => r.write(&mut out),
            RequestBody::Multi(ops) => {
                for op in ops {
                    MultiHeader {
                        type_: op.op().code(),
                        done: false,
                        err: -1,
                    }
                    .write(&mut out);
                    op.write(&mut out);
                }
                MultiHeader {
                    type_: -1,
                    done: true,
                    err: -1,
                }
                .write(&mut out);
            }
            RequestBody::Reconfig(r) => r.write(&mut out),
            RequestBody::RemoveWatches(r) => r.write(&mut out),
            RequestBody::Auth(r) => r.write(&mut out),
            RequestBody::SetWatches(w) => {
                if self.op == OpCode::SetWatches {
                    SetWatches {
                        relative_zxid: w.relative_zxid,
                        data_watches: w.data_watches.clone(),
                        exist_watches: w.exist_watches.clone(),
                        child_watches: w.child_watches.clone(),
                    }
                    .write(&mut out)
                } else {
                    w.write(&mut out)
                }
            }
            RequestBody::AddWatch(r) => r.write(&mut out),
            RequestBody::Sasl(r) => r.write(&mut out),
            RequestBody::Ping | RequestBody::WhoAmI | RequestBody::CloseSession => {}
        }
        out
    }
}
