//! check (version check, used inside multi): needs READ on the node.

use proto::records::{perms, CheckVersionRequest};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{check_version, OpResult, WriteCtx};
use crate::state::State;
use crate::{acl, path};

pub fn apply(state: &mut State, ctx: &WriteCtx<'_>, req: &CheckVersionRequest) -> OpResult {
    check(state, ctx, req)?;
    Ok(ResponseBody::Empty)
}

pub(crate) fn check(state: &State, ctx: &WriteCtx<'_>, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
    path::validate(&req.path)?;
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)?;
    check_version(node.version, req.version)
}
