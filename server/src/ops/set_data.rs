//! setData (PrepRequestProcessor case setData + DataTree.setData).

use proto::records::{perms, SetDataRequest, Stat};
use proto::response::ResponseBody;
use proto::ErrorCode;

use super::{check_version, OpResult, WriteCtx};
use crate::state::State;
use crate::tree::Change;
use crate::{acl, path};

pub fn apply(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    req: &SetDataRequest,
    changes: &mut Vec<Change>,
) -> OpResult {
    set_data(state, ctx, req, changes).map(ResponseBody::Stat)
}

pub(crate) fn set_data(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    req: &SetDataRequest,
    changes: &mut Vec<Change>,
) -> Result<Stat, ErrorCode> {
    path::validate(&req.path)?;
    let node = state.tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
    acl::check(&node.acl, perms::WRITE, ctx.auth)?;
    check_version(node.version, req.version)?;
    state
        .tree
        .set_data(&req.path, req.data.clone(), ctx.zxid, ctx.time, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;
    use proto::opcode::OpCode;

    #[test]
    fn conditional_set_needs_the_current_version() {
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
        let req = |v| SetDataRequest {
            path: "/a".into(),
            data: Some(b"new".to_vec()),
            version: v,
        };
        assert_eq!(
            apply(&mut s, &wctx(3, 1), &req(1), &mut ch),
            Err(ErrorCode::BadVersion)
        );
        let ResponseBody::Stat(st) = apply(&mut s, &wctx(3, 1), &req(0), &mut ch).unwrap() else {
            panic!()
        };
        assert_eq!((st.version, st.mzxid, st.czxid, st.data_length), (1, 3, 2, 3));
        let missing = SetDataRequest {
            path: "/b".into(),
            ..req(-1)
        };
        assert_eq!(
            apply(&mut s, &wctx(4, 1), &missing, &mut ch),
            Err(ErrorCode::NoNode)
        );
    }
}
