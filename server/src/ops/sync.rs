//! sync: goes through the log like a write, so when its reply arrives every
//! write committed before it has been applied on this member.

use proto::records::{SyncRequest, SyncResponse};
use proto::response::ResponseBody;

use super::OpResult;

pub fn apply(req: &SyncRequest) -> OpResult {
    Ok(ResponseBody::Sync(SyncResponse {
        path: req.path.clone(),
    }))
}
