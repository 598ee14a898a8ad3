//! multi (atomic writes) and multiRead (independent reads).
//!
//! multi applies its operations in order on the live tree, saving each node
//! it is about to touch; on the first failure it restores them all, and the
//! results follow ZooKeeper's pattern: `Ok` errors for the operations before
//! the failure (they were rolled back), the failure's code, then
//! `RuntimeInconsistency` for the rest. Watch events fire only on success.

use proto::opcode::OpCode;
use proto::records::{Create2Response, CreateRequest, CreateResponse, GetChildrenResponse, GetDataResponse};
use proto::request::MultiOp;
use proto::response::{MultiResult, ResponseBody};
use proto::ErrorCode;

use super::{ReadCtx, WriteCtx};
use crate::path;
use crate::state::State;
use crate::tree::{Change, Node};

pub fn apply(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    ops: &[MultiOp],
    changes: &mut Vec<Change>,
) -> ResponseBody {
    let mut saved: Vec<(String, Option<Node>)> = Vec::new();
    let mut local_changes = Vec::new();
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        save_touched(state, op, &mut saved);
        match apply_one(state, ctx, op, &mut local_changes) {
            Ok((r, created)) => {
                // A sequential create's final path was not known before it
                // ran; it did not exist, so rollback must remove it.
                if let Some(p) = created {
                    saved.push((p, None));
                }
                results.push(r)
            }
            Err(code) => {
                for (p, node) in saved.into_iter().rev() {
                    state.tree.restore(&p, node);
                }
                let mut out = vec![MultiResult::Error(ErrorCode::Ok); i];
                out.push(MultiResult::Error(code));
                out.resize(ops.len(), MultiResult::Error(ErrorCode::RuntimeInconsistency));
                return ResponseBody::Multi(out);
            }
        }
    }
    changes.append(&mut local_changes);
    ResponseBody::Multi(results)
}

/// Saves the nodes `op` may change, the node and its parent, before it runs.
fn save_touched(state: &State, op: &MultiOp, saved: &mut Vec<(String, Option<Node>)>) {
    let p = op.path();
    if !p.starts_with('/') {
        return;
    }
    for q in [p, path::parent(p)] {
        if !q.is_empty() {
            saved.push((q.to_string(), state.tree.save(q)));
        }
    }
}

fn apply_one(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    op: &MultiOp,
    changes: &mut Vec<Change>,
) -> Result<(MultiResult, Option<String>), ErrorCode> {
    Ok(match op {
        MultiOp::Create { op, req } => {
            let (p, stat) = super::create::create(state, ctx, *op, req, None, changes)?;
            let created = Some(p.clone());
            let r = match op {
                OpCode::Create => MultiResult::Create(CreateResponse { path: p }),
                _ => MultiResult::Create2(Create2Response { path: p, stat }),
            };
            (r, created)
        }
        MultiOp::CreateTtl(r) => {
            let base = CreateRequest {
                path: r.path.clone(),
                data: r.data.clone(),
                acl: r.acl.clone(),
                flags: r.flags,
            };
            let (p, stat) =
                super::create::create(state, ctx, OpCode::CreateTtl, &base, Some(r.ttl), changes)?;
            (
                MultiResult::Create2(Create2Response {
                    path: p.clone(),
                    stat,
                }),
                Some(p),
            )
        }
        MultiOp::Delete(r) => {
            super::delete::delete(state, ctx, r, changes)?;
            (MultiResult::Delete, None)
        }
        MultiOp::SetData(r) => (
            MultiResult::SetData(super::set_data::set_data(state, ctx, r, changes)?),
            None,
        ),
        MultiOp::Check(r) => {
            super::check::check(state, ctx, r)?;
            (MultiResult::Check, None)
        }
        MultiOp::GetChildren(_) | MultiOp::GetData(_) => return Err(ErrorCode::BadArguments),
    })
}

pub fn read(state: &mut State, ctx: &ReadCtx<'_>, ops: &[MultiOp]) -> ResponseBody {
    let results = ops
        .iter()
        .map(|op| match op {
            MultiOp::GetData(r) => match super::get_data::read(state, ctx, r) {
                Ok(ResponseBody::GetData(d)) => MultiResult::GetData(GetDataResponse {
                    data: d.data,
                    stat: d.stat,
                }),
                Ok(_) => MultiResult::Error(ErrorCode::SystemError),
                Err(e) => MultiResult::Error(e),
            },
            MultiOp::GetChildren(r) => match super::get_children::read(state, ctx, r, false) {
                Ok(ResponseBody::GetChildren(c)) => {
                    MultiResult::GetChildren(GetChildrenResponse { children: c.children })
                }
                Ok(_) => MultiResult::Error(ErrorCode::SystemError),
                Err(e) => MultiResult::Error(e),
            },
            _ => MultiResult::Error(ErrorCode::BadArguments),
        })
        .collect();
    ResponseBody::Multi(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;
    use proto::records::{CheckVersionRequest, DeleteRequest, SetDataRequest};

    fn create(path: &str, flags: i32) -> MultiOp {
        MultiOp::Create {
            op: OpCode::Create,
            req: create_req(path, flags),
        }
    }

    #[test]
    fn a_failed_multi_changes_nothing_and_reports_zookeepers_pattern() {
        let mut s = state_with_session(1);
        let before_nodes = s.tree.node_count();
        let before_root = s.tree.stat("/").unwrap();
        let ops = vec![
            create("/a", 0),
            create("/a/seq-", 2),
            MultiOp::SetData(SetDataRequest {
                path: "/a".into(),
                data: Some(vec![1]),
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 7,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/a".into(),
                version: -1,
            }),
        ];
        let mut ch = vec![];
        let r = apply(&mut s, &wctx(2, 1), &ops, &mut ch);
        assert_eq!(
            r,
            ResponseBody::Multi(vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::BadVersion),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert!(ch.is_empty(), "no watch may fire for a rolled-back multi");
        assert_eq!(s.tree.node_count(), before_nodes);
        assert_eq!(s.tree.stat("/").unwrap(), before_root);
        assert!(!s.tree.contains("/a/seq-0000000000"));
    }

    #[test]
    fn a_successful_multi_applies_in_order() {
        let mut s = state_with_session(1);
        let ops = vec![
            create("/a", 0),
            create("/a/b", 0),
            MultiOp::Delete(DeleteRequest {
                path: "/a/b".into(),
                version: 0,
            }),
        ];
        let mut ch = vec![];
        let r = apply(&mut s, &wctx(2, 1), &ops, &mut ch);
        let ResponseBody::Multi(res) = r else { panic!() };
        assert_eq!(res[2], MultiResult::Delete);
        assert!(s.tree.contains("/a") && !s.tree.contains("/a/b"));
        assert_eq!(s.tree.stat("/a").unwrap().cversion, 2);
    }
}
