//! setACL (PrepRequestProcessor case setACL + DataTree.setACL): needs ADMIN
//! on the node; the version compared is `aversion`.

use proto::records::{perms, SetAclRequest};
use proto::response::ResponseBody;

use super::{check_version, OpResult, WriteCtx};
use crate::state::State;
use crate::{acl, path};

pub fn apply(state: &mut State, ctx: &WriteCtx<'_>, req: &SetAclRequest) -> OpResult {
    path::validate(&req.path)?;
    let new_acl = acl::fixup(&req.acl, ctx.auth)?;
    let node = state.tree.get(&req.path).ok_or(proto::ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::ADMIN, ctx.auth)?;
    check_version(node.aversion, req.version)?;
    state.tree.set_acl(&req.path, new_acl).map(ResponseBody::Stat)
}
