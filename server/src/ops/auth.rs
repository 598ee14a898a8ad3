//! auth (addauth): adds an identity to the connection (digest or ip, as
//! ZooKeeper's providers allow). A failure gets AuthFailed and ZooKeeper
//! then closes the connection; the caller does.

use proto::records::AuthPacket;
use proto::ErrorCode;

use crate::acl::AuthInfo;

pub fn run(auth: &mut AuthInfo, req: &AuthPacket, super_digest: Option<&str>) -> Result<(), ErrorCode> {
    auth.add_auth(&req.scheme, &req.auth, super_digest)
}
