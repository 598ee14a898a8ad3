//! whoAmI: the connection's authenticated identities, as
//! `(scheme, user name)` (for digest the user name is the part before ':').

use proto::records::{ClientInfo, WhoAmIResponse};
use proto::response::ResponseBody;

use crate::acl::AuthInfo;

pub fn run(auth: &AuthInfo) -> ResponseBody {
    let client_info = auth
        .ids
        .iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: match id.scheme.as_str() {
                "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                _ => id.id.clone(),
            },
        })
        .collect();
    ResponseBody::WhoAmI(WhoAmIResponse { client_info })
}
