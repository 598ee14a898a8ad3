//! getAllChildrenNumber: the number of descendants; READ on the node.

use proto::records::{perms, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::acl;
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetAllChildrenNumberRequest) -> OpResult {
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)?;
    Ok(ResponseBody::GetAllChildrenNumber(GetAllChildrenNumberResponse {
        total_number: state.tree.descendant_count(&req.path) as i32,
    }))
}
