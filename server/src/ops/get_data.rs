//! getData: READ on the node; the watch is set only if the node exists
//! and the caller may read it.

use proto::records::{perms, GetDataRequest, GetDataResponse};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::acl;
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetDataRequest) -> OpResult {
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)?;
    let body = ResponseBody::GetData(GetDataResponse {
        data: node.data.clone(),
        stat: node.stat(),
    });
    if req.watch {
        state.watches.add_data_watch(ctx.session, &req.path);
    }
    Ok(body)
}
