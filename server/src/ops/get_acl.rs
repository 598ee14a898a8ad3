//! getACL: needs READ or ADMIN on the node (ZooKeeper 3.6+).

use proto::records::{perms, GetAclRequest, GetAclResponse};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::state::State;
use crate::{acl, path};

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetAclRequest) -> OpResult {
    path::validate(&req.path)?;
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)
        .or_else(|_| acl::check(&node.acl, perms::ADMIN, ctx.auth))?;
    Ok(ResponseBody::GetAcl(GetAclResponse {
        acl: node.acl.clone(),
        stat: node.stat(),
    }))
}
