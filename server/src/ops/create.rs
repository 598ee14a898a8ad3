//! create, create2, createContainer and createTTL
//! (PrepRequestProcessor.pRequest2TxnCreate + DataTree.createNode).

use proto::opcode::OpCode;
use proto::records::{perms, Create2Response, CreateMode, CreateRequest, CreateResponse};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{OpResult, WriteCtx};
use crate::state::State;
use crate::tree::{Change, NodeKind, MAX_TTL_MS};
use crate::{acl, path};

/// `ttl` is `Some` for createTTL.
pub fn apply(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    op: OpCode,
    req: &CreateRequest,
    ttl: Option<i64>,
    changes: &mut Vec<Change>,
) -> OpResult {
    let (path, stat) = create(state, ctx, op, req, ttl, changes)?;
    Ok(match op {
        OpCode::Create => ResponseBody::Create(CreateResponse { path }),
        _ => ResponseBody::Create2(Create2Response { path, stat }),
    })
}

/// The create itself, shared with multi: returns the actual path (with the
/// sequence suffix) and the new node's `Stat`.
pub(crate) fn create(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    op: OpCode,
    req: &CreateRequest,
    ttl: Option<i64>,
    changes: &mut Vec<Change>,
) -> Result<(String, proto::records::Stat), ErrorCode> {
    let mode = CreateMode::from_flag(req.flags).ok_or(ErrorCode::BadArguments)?;
    // EphemeralType.validateTTL: a TTL mode needs a TTL in (0, max]; other
    // modes must not carry one. createContainer must ask for a container.
    match ttl {
        Some(t) if !mode.ttl || t <= 0 || t > MAX_TTL_MS => return Err(ErrorCode::BadArguments),
        None if mode.ttl => return Err(ErrorCode::BadArguments),
        _ => {}
    }
    if (op == OpCode::CreateContainer) != mode.container {
        return Err(ErrorCode::BadArguments);
    }
    // validatePathForCreate: only "has a '/', no NUL" here; the full
    // validation runs on the final path, after the ACL and parent checks.
    let parent_path = path::parent_for_lookup(&req.path).ok_or(ErrorCode::BadArguments)?;
    let acl = acl::fixup(&req.acl, ctx.auth)?;
    let parent = state.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    acl::check(&parent.acl, perms::CREATE, ctx.auth)?;
    let path = if mode.sequential {
        format!("{}{:010}", req.path, parent.cversion)
    } else {
        req.path.clone()
    };
    path::validate(&path)?;
    if state.tree.contains(&path) {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(parent.kind(), NodeKind::Ephemeral(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let kind = if mode.ephemeral {
        if !state.sessions.contains(ctx.session) {
            return Err(ErrorCode::SessionExpired);
        }
        NodeKind::Ephemeral(ctx.session)
    } else if mode.container {
        NodeKind::Container
    } else if let Some(t) = ttl {
        NodeKind::Ttl(t)
    } else {
        NodeKind::Persistent
    };
    let stat = state.tree.create(
        &path,
        req.data.clone(),
        acl,
        kind.owner_value(),
        ctx.zxid,
        ctx.time,
        changes,
    )?;
    Ok((path, stat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn sequential_suffix_is_the_parents_cversion_zero_padded() {
        let mut s = state_with_session(1);
        let a = create_req("/q-", create_mode_flag(false, true));
        let r = apply(&mut s, &wctx(2, 1), OpCode::Create, &a, None, &mut vec![]).unwrap();
        assert_eq!(
            r,
            ResponseBody::Create(CreateResponse {
                path: "/q-0000000000".into()
            })
        );
    }

    #[test]
    fn error_order_matches_zookeeper() {
        let mut s = state_with_session(1);
        let bad_acl = CreateRequest {
            acl: vec![],
            ..create_req("/x/y", 0)
        };
        // fixupACL runs before the parent lookup.
        assert_eq!(
            apply(&mut s, &wctx(2, 1), OpCode::Create, &bad_acl, None, &mut vec![]),
            Err(ErrorCode::InvalidAcl)
        );
        let orphan = create_req("/x/y", 0);
        assert_eq!(
            apply(&mut s, &wctx(2, 1), OpCode::Create, &orphan, None, &mut vec![]),
            Err(ErrorCode::NoNode)
        );
        // The full path check comes last: "/x/" has no parent "/x".
        let bad_path = create_req("/x/", 0);
        assert_eq!(
            apply(&mut s, &wctx(2, 1), OpCode::Create, &bad_path, None, &mut vec![]),
            Err(ErrorCode::NoNode)
        );
        let bad_name = create_req("/.", 0);
        assert_eq!(
            apply(&mut s, &wctx(2, 1), OpCode::Create, &bad_name, None, &mut vec![]),
            Err(ErrorCode::BadArguments)
        );
    }

    #[test]
    fn ephemerals_cannot_have_children_and_need_a_live_session() {
        let mut s = state_with_session(1);
        apply(
            &mut s,
            &wctx(2, 1),
            OpCode::Create,
            &create_req("/e", 1),
            None,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(
            apply(
                &mut s,
                &wctx(3, 1),
                OpCode::Create,
                &create_req("/e/c", 0),
                None,
                &mut vec![]
            ),
            Err(ErrorCode::NoChildrenForEphemerals)
        );
        assert_eq!(
            apply(
                &mut s,
                &wctx(4, 99),
                OpCode::Create,
                &create_req("/e2", 1),
                None,
                &mut vec![]
            ),
            Err(ErrorCode::SessionExpired)
        );
    }

    #[test]
    fn ttl_and_container_modes_are_validated() {
        let mut s = state_with_session(1);
        let ttl_req = create_req("/t", proto::records::create_mode::PERSISTENT_WITH_TTL);
        assert_eq!(
            apply(
                &mut s,
                &wctx(2, 1),
                OpCode::CreateTtl,
                &ttl_req,
                Some(0),
                &mut vec![]
            ),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            apply(&mut s, &wctx(2, 1), OpCode::Create, &ttl_req, None, &mut vec![]),
            Err(ErrorCode::BadArguments)
        );
        let r = apply(
            &mut s,
            &wctx(2, 1),
            OpCode::CreateTtl,
            &ttl_req,
            Some(500),
            &mut vec![],
        )
        .unwrap();
        let ResponseBody::Create2(c) = r else { panic!() };
        // DataTree.getClientEphemeralOwner: clients see 0 for TTL nodes.
        assert_eq!(c.stat.ephemeral_owner, 0);
        assert_eq!(s.tree.get("/t").unwrap().kind(), NodeKind::Ttl(500));
        let cont = create_req("/c", proto::records::create_mode::CONTAINER);
        assert_eq!(
            apply(&mut s, &wctx(3, 1), OpCode::Create, &cont, None, &mut vec![]),
            Err(ErrorCode::BadArguments)
        );
        apply(
            &mut s,
            &wctx(3, 1),
            OpCode::CreateContainer,
            &cont,
            None,
            &mut vec![],
        )
        .unwrap();
    }
}
