//! delete (PrepRequestProcessor.pRequest2TxnDelete + DataTree.deleteNode).

use proto::records::{perms, DeleteRequest};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{check_version, OpResult, WriteCtx};
use crate::state::State;
use crate::tree::Change;
use crate::{acl, path};

pub fn apply(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    req: &DeleteRequest,
    changes: &mut Vec<Change>,
) -> OpResult {
    delete(state, ctx, req, changes)?;
    Ok(ResponseBody::Empty)
}

pub(crate) fn delete(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    req: &DeleteRequest,
    changes: &mut Vec<Change>,
) -> Result<(), ErrorCode> {
    // getParentPathAndValidate: a '/' somewhere, no NUL, not a special path.
    let parent_path = path::parent_for_lookup(&req.path).ok_or(ErrorCode::BadArguments)?;
    if path::is_special(&req.path) {
        return Err(ErrorCode::BadArguments);
    }
    let parent = state.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    acl::check(&parent.acl, perms::DELETE, ctx.auth)?;
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    check_version(node.version, req.version)?;
    if !node.children.is_empty() {
        return Err(ErrorCode::NotEmpty);
    }
    state.tree.delete(&req.path, ctx.zxid, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;
    use proto::opcode::OpCode;

    fn del(path: &str, version: i32) -> DeleteRequest {
        DeleteRequest {
            path: path.into(),
            version,
        }
    }

    #[test]
    fn checks_existence_version_and_children_in_order() {
        let mut s = state_with_session(1);
        let mut ch = vec![];
        crate::ops::create::apply(
            &mut s,
            &wctx(2, 1),
            OpCode::Create,
            &create_req("/a", 0),
            None,
            &mut ch,
        )
        .unwrap();
        crate::ops::create::apply(
            &mut s,
            &wctx(3, 1),
            OpCode::Create,
            &create_req("/a/b", 0),
            None,
            &mut ch,
        )
        .unwrap();
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/nope", -1), &mut ch),
            Err(ErrorCode::NoNode)
        );
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/a", 3), &mut ch),
            Err(ErrorCode::BadVersion)
        );
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/a", 0), &mut ch),
            Err(ErrorCode::NotEmpty)
        );
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/", -1), &mut ch),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("a", -1), &mut ch),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/zookeeper/quota", -1), &mut ch),
            Err(ErrorCode::BadArguments)
        );
        // ZooKeeper does not validate the rest of a delete path: it is looked up.
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &del("/a/", -1), &mut ch),
            Err(ErrorCode::NoNode)
        );
        apply(&mut s, &wctx(4, 1), &del("/a/b", 0), &mut ch).unwrap();
        apply(&mut s, &wctx(5, 1), &del("/a", -1), &mut ch).unwrap();
        assert!(!s.tree.contains("/a"));
    }
}
