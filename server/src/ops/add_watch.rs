//! addWatch: a persistent or persistent-recursive watch; the node need not
//! exist.

use proto::records::AddWatchRequest;
use proto::response::ResponseBody;
use proto::watch::AddWatchMode;
use proto::ErrorCode;

use super::OpResult;
use crate::state::State;

pub fn run(state: &mut State, session: i64, req: &AddWatchRequest) -> OpResult {
    let mode = AddWatchMode::from_code(req.mode).ok_or(ErrorCode::BadArguments)?;
    state.watches.add_persistent(session, &req.path, mode);
    // ZooKeeper answers addWatch with an ErrorResponse body (err 0).
    Ok(ResponseBody::AddWatch)
}
