//! The transport ceiling: the cheapest responder of the ZooKeeper protocol
//! that still does the protocol's work per request. It completes the
//! handshake, decodes every request in full, and answers each with a
//! canned valid reply of the right shape (getData returns a value of the
//! configured size), batching the replies to what one read brought in.
//! No tree, no log, no fsync, no locks: what the load generator measures
//! against it is the limit of this machine's loopback, syscalls and the
//! generator itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use proto::jute::Record;
use proto::opcode::OpCode;
use proto::records::{
    ConnectRequest, ConnectResponse, Create2Response, CreateResponse, GetChildrenResponse, GetDataResponse,
    Stat, SyncResponse,
};
use proto::request::{MultiOp, Request, RequestBody};
use proto::response::{encode_reply, MultiResult, ResponseBody};
use proto::ErrorCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::wire::FrameReader;

/// Binds `addr` and serves until the task is dropped; returns the bound
/// address and the serving task.
pub async fn start(
    addr: &str,
    value_size: usize,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let value = Arc::new(vec![b'v'; value_size]);
    let sessions = Arc::new(AtomicI64::new(1));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let id = sessions.fetch_add(1, Ordering::Relaxed);
            let value = value.clone();
            tokio::spawn(async move {
                let _ = serve(stream, id, value).await;
            });
        }
    });
    Ok((local, task))
}

fn reply(req: &Request, value: &[u8]) -> ResponseBody {
    let stat = Stat::default;
    match &req.body {
        RequestBody::GetData(_) => ResponseBody::GetData(GetDataResponse {
            data: Some(value.to_vec()),
            stat: stat(),
        }),
        RequestBody::Exists(_) | RequestBody::SetData(_) | RequestBody::SetAcl(_) => {
            ResponseBody::Stat(stat())
        }
        RequestBody::Create(c) if req.op == OpCode::Create => {
            ResponseBody::Create(CreateResponse { path: c.path.clone() })
        }
        RequestBody::Create(c) => ResponseBody::Create2(Create2Response {
            path: c.path.clone(),
            stat: stat(),
        }),
        RequestBody::GetChildren(_) => ResponseBody::GetChildren(GetChildrenResponse { children: vec![] }),
        RequestBody::Sync(s) => ResponseBody::Sync(SyncResponse { path: s.path.clone() }),
        RequestBody::Multi(ops) => ResponseBody::Multi(
            ops.iter()
                .map(|op| match op {
                    MultiOp::Create { req, .. } => MultiResult::Create(CreateResponse {
                        path: req.path.clone(),
                    }),
                    MultiOp::CreateTtl(r) => MultiResult::Create(CreateResponse { path: r.path.clone() }),
                    MultiOp::Delete(_) => MultiResult::Delete,
                    MultiOp::SetData(_) => MultiResult::SetData(stat()),
                    MultiOp::Check(_) => MultiResult::Check,
                    MultiOp::GetData(_) => MultiResult::GetData(GetDataResponse {
                        data: Some(value.to_vec()),
                        stat: stat(),
                    }),
                    MultiOp::GetChildren(_) => {
                        MultiResult::GetChildren(GetChildrenResponse { children: vec![] })
                    }
                })
                .collect(),
        ),
        _ => ResponseBody::Empty,
    }
}

async fn serve(stream: TcpStream, session_id: i64, value: Arc<Vec<u8>>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut reader = FrameReader::new(rd);
    let hello = reader.frame().await?;
    let req =
        ConnectRequest::read(&mut proto::jute::Reader::new(&hello)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut payload = Vec::new();
    ConnectResponse {
        protocol_version: 0,
        timeout: req.timeout,
        session_id,
        passwd: vec![0; 16],
        read_only: req.read_only,
    }
    .write(&mut payload);
    let mut out = Vec::with_capacity(64 * 1024);
    proto::frame::write_frame(&mut out, &payload);
    wr.write_all(&out).await?;
    loop {
        out.clear();
        let mut closing = false;
        while let Some(f) = reader.try_frame()? {
            let req = Request::decode(&f).map_err(|e| anyhow::anyhow!("{e}"))?;
            let body = reply(&req, &value);
            proto::frame::write_frame(&mut out, &encode_reply(req.xid, 1, ErrorCode::Ok, &body));
            if req.op == OpCode::CloseSession {
                closing = true;
                break;
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
        }
        if closing {
            return Ok(());
        }
        reader.fill().await?;
    }
}
