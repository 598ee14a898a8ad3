//! removeWatches and checkWatches: NoWatcher when the session has no such
//! watch on the path. The client, not the server, raises the
//! *WatchRemoved events (ZooKeeper's ZKWatchManager).

use proto::records::RemoveWatchesRequest;
use proto::response::ResponseBody;
use proto::watch::WatcherType;
use proto::ErrorCode;

use super::OpResult;
use crate::state::State;

pub fn run(state: &mut State, session: i64, req: &RemoveWatchesRequest, remove: bool) -> OpResult {
    let kind = WatcherType::from_code(req.type_).ok_or(ErrorCode::BadArguments)?;
    state.watches.remove_watches(session, &req.path, kind, remove)?;
    Ok(ResponseBody::Empty)
}
