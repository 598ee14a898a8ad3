//! whoAmI: the connection's authenticated identities.

use proto::records::WhoAmIResponse;
use proto::response::ResponseBody;

use crate::acl::AuthInfo;

pub fn run(auth: &AuthInfo) -> ResponseBody {
    ResponseBody::WhoAmI(WhoAmIResponse {
        client_info: auth.client_infos(),
    })
}
