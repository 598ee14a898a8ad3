//! One file per opcode, like mini-redis's `cmd/`. Every write opcode has an
//! `apply` that runs on every member while applying a committed entry
//! (deterministic: all inputs come from the entry and the tree) and makes
//! all of ZooKeeper's checks there, in ZooKeeper's order, so the error a
//! client sees is the one ZooKeeper would give. Reads have a `read` that
//! runs on the member the client is connected to. Session-local requests
//! (auth, watches, whoAmI) have their own functions.
//!
//! This module is the dispatch: which opcode is which kind, and one `match`
//! per kind.

pub mod add_watch;
pub mod auth;
pub mod check;
pub mod create;
pub mod delete;
pub mod exists;
pub mod get_acl;
pub mod get_all_children_number;
pub mod get_children;
pub mod get_data;
pub mod get_ephemerals;
pub mod multi;
pub mod reconfig;
pub mod remove_watches;
pub mod set_acl;
pub mod set_data;
pub mod set_watches;
pub mod sync;
pub mod who_am_i;

use proto::opcode::OpCode;
use proto::request::{Request, RequestBody};
use proto::response::ResponseBody;
use proto::ErrorCode;

use crate::acl::AuthInfo;
use crate::state::State;
use crate::tree::Change;

/// What applying a write needs besides the state: all of it comes from the
/// log entry, so every member computes the same result.
#[derive(Debug, Clone, Copy)]
pub struct WriteCtx<'a> {
    pub zxid: i64,
    pub time: i64,
    pub session: i64,
    pub auth: &'a AuthInfo,
}

/// Who is reading: watches are registered for `session`, ACLs checked
/// against `auth`.
#[derive(Debug, Clone, Copy)]
pub struct ReadCtx<'a> {
    pub session: i64,
    pub auth: &'a AuthInfo,
}

pub type OpResult = Result<ResponseBody, ErrorCode>;

/// How the pipeline handles a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes through the consensus log and is applied everywhere.
    Write,
    /// Answered from the local tree once the session's earlier requests
    /// are done.
    Read,
    /// Changes only this connection's state (auth, watches) or nothing.
    Local,
}

pub fn kind(op: OpCode) -> Kind {
    match op {
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTtl
        | OpCode::Delete
        | OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Check
        | OpCode::Multi
        | OpCode::Sync
        | OpCode::CloseSession => Kind::Write,
        OpCode::Exists
        | OpCode::GetData
        | OpCode::GetAcl
        | OpCode::GetChildren
        | OpCode::GetChildren2
        | OpCode::GetAllChildrenNumber
        | OpCode::GetEphemerals
        | OpCode::MultiRead => Kind::Read,
        _ => Kind::Local,
    }
}

/// Applies a client write to the state. `changes` collects what changed,
/// for watches; on error nothing has changed.
pub fn apply_write(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    req: &Request,
    changes: &mut Vec<Change>,
) -> OpResult {
    match (&req.body, req.op) {
        (RequestBody::Create(r), op) => create::apply(state, ctx, op, r, None, changes),
        (RequestBody::CreateTtl(r), _) => {
            let base = proto::records::CreateRequest {
                path: r.path.clone(),
                data: r.data.clone(),
                acl: r.acl.clone(),
                flags: r.flags,
            };
            create::apply(state, ctx, OpCode::CreateTtl, &base, Some(r.ttl), changes)
        }
        (RequestBody::Delete(r), _) => delete::apply(state, ctx, r, changes),
        (RequestBody::SetData(r), _) => set_data::apply(state, ctx, r, changes),
        (RequestBody::SetAcl(r), _) => set_acl::apply(state, ctx, r),
        (RequestBody::Check(r), _) => check::apply(state, ctx, r),
        (RequestBody::Multi(ops), OpCode::Multi) => Ok(multi::apply(state, ctx, ops, changes)),
        (RequestBody::Sync(r), _) => sync::apply(r),
        _ => Err(ErrorCode::Unimplemented),
    }
}

/// Answers a read from the local state (registering watches it asks for).
pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &Request) -> OpResult {
    match (&req.body, req.op) {
        (RequestBody::Exists(r), _) => exists::read(state, ctx, r),
        (RequestBody::GetData(r), _) => get_data::read(state, ctx, r),
        (RequestBody::GetAcl(r), _) => get_acl::read(state, ctx, r),
        (RequestBody::GetChildren(r), OpCode::GetChildren) => get_children::read(state, ctx, r, false),
        (RequestBody::GetChildren(r), _) => get_children::read(state, ctx, r, true),
        (RequestBody::GetAllChildrenNumber(r), _) => get_all_children_number::read(state, ctx, r),
        (RequestBody::GetEphemerals(r), _) => get_ephemerals::read(state, ctx, r),
        (RequestBody::Multi(ops), OpCode::MultiRead) => Ok(multi::read(state, ctx, ops)),
        _ => Err(ErrorCode::Unimplemented),
    }
}

/// `checkAndIncVersion`: -1 matches any version.
pub(crate) fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testing;
