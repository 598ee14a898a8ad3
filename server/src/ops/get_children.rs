//! getChildren and getChildren2 (the latter adds the parent's `Stat`):
//! READ on the node; a child watch is set only if the node exists.

use proto::records::{perms, GetChildren2Response, GetChildrenRequest, GetChildrenResponse};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::acl;
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetChildrenRequest, with_stat: bool) -> OpResult {
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)?;
    let children: Vec<String> = node.children.iter().cloned().collect();
    let body = if with_stat {
        ResponseBody::GetChildren2(GetChildren2Response {
            children,
            stat: node.stat(),
        })
    } else {
        ResponseBody::GetChildren(GetChildrenResponse { children })
    };
    if req.watch {
        state.watches.add_child_watch(ctx.session, &req.path);
    }
    Ok(body)
}
