//! Tests that expose known server bugs: each states the ZooKeeper rule,
//! what ZooKeeper does and what zonekeeper does. They are kept apart so
//! that the other test files stay green; a fix makes the test here pass,
//! and it then moves next to its area.

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{DeleteRequest, GetChildrenRequest};
use proto::request::RequestBody;
use proto::response::ResponseBody;
use proto::ErrorCode;
use tokio::io::AsyncWriteExt;

/// ZooKeeper's FIFO client order (Hunt et al., "ZooKeeper: Wait-free
/// coordination for Internet-scale systems", §2.3: "all requests from a
/// given client are executed in the order that they were sent by the
/// client"; docs/ordering.md rule 1). A read sent between two writes of
/// the same session must see the first write and not the second: in
/// standalone ZooKeeper every request passes the single
/// Prep→Sync→Final chain in order, and in a quorum the CommitProcessor
/// waits for the session's earlier reads (`waitForEmptyPool`) before it
/// applies the next write.
///
/// zonekeeper proposes every write as soon as it is decoded and runs a
/// read only when it reaches the front of the session's queue, so by then
/// writes sent after the read may already be applied and the read sees
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_between_pipelined_writes_sees_only_the_earlier_writes() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    let mut push = |raw: &mut Raw, op: OpCode, body: RequestBody| {
        let x = raw.take_xid();
        batch.extend(Raw::frame(x, op, body));
        expect.push((x, op));
    };
    let list = || {
        RequestBody::GetChildren(GetChildrenRequest {
            path: "/kb".into(),
            watch: false,
        })
    };
    push(
        &mut raw,
        OpCode::Create,
        RequestBody::Create(create_req("/kb", b"", 0)),
    );
    for i in 0..20 {
        let child = RequestBody::Create(create_req(&format!("/kb/n{i}"), b"", 0));
        push(&mut raw, OpCode::Create, child);
        push(&mut raw, OpCode::GetChildren, list());
    }
    raw.stream.write_all(&batch).await.unwrap();

    let mut seen = Vec::new();
    for (x, op) in expect {
        let (err, body) = raw.reply_to(op, x).await;
        assert_eq!(err, ErrorCode::Ok);
        if let Some(ResponseBody::GetChildren(c)) = body {
            seen.push(c.children.len());
        }
    }
    let want: Vec<usize> = (1..=20).collect();
    assert_eq!(
        seen, want,
        "the k-th getChildren, sent after k creates and before the rest, must list exactly k children"
    );
    ts.shutdown().await;
}

/// The same bug in a recipe-shaped sequence: create a node, read the
/// parent, delete the node, all pipelined. The read was sent while the
/// node existed and must list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_before_a_pipelined_delete_still_sees_the_node() {
    let ts = TestServer::start().await;
    let mut raw = ts.raw().await;
    assert_eq!(
        raw.code(OpCode::Create, RequestBody::Create(create_req("/kd", b"", 0)))
            .await,
        ErrorCode::Ok
    );
    let mut misses = 0;
    for round in 0..10 {
        let path = format!("/kd/r{round}");
        let (c, g, d) = (raw.take_xid(), raw.take_xid(), raw.take_xid());
        let mut batch = Raw::frame(c, OpCode::Create, RequestBody::Create(create_req(&path, b"", 0)));
        batch.extend(Raw::frame(
            g,
            OpCode::GetChildren,
            RequestBody::GetChildren(GetChildrenRequest {
                path: "/kd".into(),
                watch: false,
            }),
        ));
        batch.extend(Raw::frame(
            d,
            OpCode::Delete,
            RequestBody::Delete(DeleteRequest { path, version: -1 }),
        ));
        raw.stream.write_all(&batch).await.unwrap();
        assert_eq!(raw.reply_to(OpCode::Create, c).await.0, ErrorCode::Ok);
        let (_, body) = raw.reply_to(OpCode::GetChildren, g).await;
        let Some(ResponseBody::GetChildren(kids)) = body else {
            panic!("getChildren failed")
        };
        if kids.children != [format!("r{round}")] {
            misses += 1;
        }
        assert_eq!(raw.reply_to(OpCode::Delete, d).await.0, ErrorCode::Ok);
    }
    assert_eq!(misses, 0, "rounds whose read saw the later delete");
    ts.shutdown().await;
}
