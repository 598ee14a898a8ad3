//! getEphemerals: the calling session's ephemerals under a path prefix
//! (a string prefix, as ZooKeeper matches it; "/" or "" means all).

use proto::records::{GetEphemeralsRequest, GetEphemeralsResponse};
use proto::response::ResponseBody;

use super::{OpResult, ReadCtx};
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetEphemeralsRequest) -> OpResult {
    // A plain string prefix, as ZooKeeper matches it.
    let prefix = req.prefix_path.trim();
    let all = prefix.is_empty() || prefix == "/";
    let ephemerals = state
        .tree
        .ephemerals_of(ctx.session)
        .into_iter()
        .filter(|p| all || p.starts_with(prefix))
        .collect();
    Ok(ResponseBody::GetEphemerals(GetEphemeralsResponse { ephemerals }))
}
