//! exists: no ACL check (as ZooKeeper); a watch is left even when the node
//! does not exist, to fire on its creation.

use proto::records::ExistsRequest;
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &ExistsRequest) -> OpResult {
    // FinalRequestProcessor only refuses a NUL; any other string is looked up.
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    if req.watch {
        state.watches.add_data_watch(ctx.session, &req.path);
    }
    state
        .tree
        .stat(&req.path)
        .map(ResponseBody::Stat)
        .ok_or(ErrorCode::NoNode)
}
