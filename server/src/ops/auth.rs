//! auth (addauth): adds an identity to the connection. A failure gets
//! AuthFailed and ZooKeeper then closes the connection; the caller does.

use proto::records::AuthPacket;
use proto::ErrorCode;

use crate::acl::{self, AuthInfo};

pub fn run(auth: &mut AuthInfo, req: &AuthPacket, super_digest: Option<&str>) -> Result<(), ErrorCode> {
    let id = acl::authenticate(&req.scheme, &req.auth)?;
    auth.add(id, super_digest);
    Ok(())
}
