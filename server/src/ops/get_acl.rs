//! getACL: needs READ or ADMIN on the node (ZooKeeper 3.6+); digests are
//! masked for callers without ADMIN.

use proto::records::{perms, Acl, GetAclRequest, GetAclResponse, Id};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, ReadCtx};
use crate::acl;
use crate::state::State;

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, req: &GetAclRequest) -> OpResult {
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::READ, ctx.auth)
        .or_else(|_| acl::check(&node.acl, perms::ADMIN, ctx.auth))?;
    // FinalRequestProcessor: without ADMIN, digest hashes are masked
    // ("user:x") so readers cannot brute-force them offline.
    let acl = if acl::check(&node.acl, perms::ADMIN, ctx.auth).is_ok() {
        node.acl.to_vec()
    } else {
        node.acl
            .iter()
            .map(|a| match a.id.scheme.as_str() {
                "digest" => Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: a.id.scheme.clone(),
                        id: format!("{}:x", a.id.id.split(':').next().unwrap_or_default()),
                    },
                },
                _ => a.clone(),
            })
            .collect()
    };
    Ok(ResponseBody::GetAcl(GetAclResponse {
        acl,
        stat: node.stat(),
    }))
}
