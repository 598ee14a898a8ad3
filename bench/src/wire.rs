//! The client side of the ZooKeeper wire protocol, as thin as a load
//! generator needs: connect handshake, length-prefixed frames, request
//! packets encoded once and re-stamped with a fresh xid, and reply headers
//! read without decoding the body (the generator must cost the machine as
//! little as possible, since it shares the CPU with the server it measures).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Buf, BytesMut};
use proto::frame;
use proto::jute::Record;
use proto::opcode::OpCode;
use proto::records::{
    perms, Acl, ConnectRequest, ConnectResponse, CreateRequest, ExistsRequest, GetDataRequest, Id,
    ReplyHeader, SetDataRequest,
};
use proto::request::{MultiOp, Request, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The session timeout the generator asks for. Long enough that a session
/// idle through a slow setup phase (10,000 watchers connecting) survives;
/// servers clamp it to their own bounds.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// Reads whole frames from a socket half.
pub struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
}

impl FrameReader {
    pub fn new(rd: OwnedReadHalf) -> Self {
        FrameReader {
            rd,
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// The next frame's payload if one is already buffered (no I/O).
    pub fn try_frame(&mut self) -> anyhow::Result<Option<BytesMut>> {
        match frame::check(&self.buf, 64 * 1024 * 1024)? {
            Some(len) => {
                self.buf.advance(4);
                Ok(Some(self.buf.split_to(len)))
            }
            None => Ok(None),
        }
    }

    /// Reads more bytes from the socket; an error at end of stream.
    /// Cancel safe (a cancelled read loses no bytes).
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(64 * 1024);
        }
        let n = self.rd.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// The next frame, reading as needed.
    pub async fn frame(&mut self) -> anyhow::Result<BytesMut> {
        loop {
            if let Some(f) = self.try_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }
}

/// One connected session: its two socket halves and its id.
pub struct Session {
    pub reader: FrameReader,
    pub writer: OwnedWriteHalf,
    pub session_id: i64,
    pub timeout_ms: i32,
}

/// Connects to `addr` and completes the handshake for a new session.
pub async fn connect(addr: &str) -> anyhow::Result<Session> {
    let stream = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connecting to {addr} timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (rd, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(rd);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: SESSION_TIMEOUT_MS,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let mut payload = Vec::with_capacity(64);
    req.write(&mut payload);
    let mut out = Vec::with_capacity(68);
    frame::write_frame(&mut out, &payload);
    writer.write_all(&out).await?;
    let f = tokio::time::timeout(Duration::from_secs(30), reader.frame())
        .await
        .map_err(|_| anyhow!("handshake with {addr} timed out"))??;
    let resp = ConnectResponse::read(&mut proto::jute::Reader::new(&f))
        .map_err(|e| anyhow!("bad connect response from {addr}: {e}"))?;
    if resp.session_id == 0 {
        bail!("{addr} refused the session (no quorum, or too many connections)");
    }
    Ok(Session {
        reader,
        writer,
        session_id: resp.session_id,
        timeout_ms: resp.timeout,
    })
}

/// `world:anyone` with all permissions (`OPEN_ACL_UNSAFE`).
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A request packet with its length prefix, encoded once. [`Template::stamp`]
/// writes a copy with a new xid into an output buffer.
#[derive(Clone)]
pub struct Template {
    bytes: Vec<u8>,
}

impl Template {
    pub fn new(op: OpCode, body: RequestBody) -> Template {
        let payload = Request { xid: 0, op, body }.encode();
        let mut bytes = Vec::with_capacity(payload.len() + 4);
        frame::write_frame(&mut bytes, &payload);
        Template { bytes }
    }

    /// Appends the packet with `xid` to `out`.
    pub fn stamp(&self, xid: i32, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        out[at + 4..at + 8].copy_from_slice(&xid.to_be_bytes());
    }
}

pub fn get_data(path: &str, watch: bool) -> Template {
    Template::new(
        OpCode::GetData,
        RequestBody::GetData(GetDataRequest {
            path: path.into(),
            watch,
        }),
    )
}

pub fn exists(path: &str) -> Template {
    Template::new(
        OpCode::Exists,
        RequestBody::Exists(ExistsRequest {
            path: path.into(),
            watch: false,
        }),
    )
}

pub fn set_data(path: &str, value: &[u8]) -> Template {
    Template::new(
        OpCode::SetData,
        RequestBody::SetData(SetDataRequest {
            path: path.into(),
            data: Some(value.to_vec()),
            version: -1,
        }),
    )
}

pub fn create_req(path: &str, value: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(value.to_vec()),
        acl: open_acl(),
        flags,
    }
}

pub fn create(path: &str, value: &[u8], flags: i32) -> Template {
    Template::new(
        OpCode::Create,
        RequestBody::Create(create_req(path, value, flags)),
    )
}

pub fn multi(ops: Vec<MultiOp>) -> Template {
    Template::new(OpCode::Multi, RequestBody::Multi(ops))
}

pub fn close_session() -> Template {
    Template::new(OpCode::CloseSession, RequestBody::CloseSession)
}

pub fn ping() -> Template {
    Template::new(OpCode::Ping, RequestBody::Ping)
}

/// The reply header of a reply payload.
pub fn reply_header(payload: &[u8]) -> anyhow::Result<ReplyHeader> {
    ReplyHeader::read(&mut proto::jute::Reader::new(payload)).map_err(|e| anyhow!("bad reply header: {e}"))
}

/// Sends one request and waits for its reply, skipping notifications and
/// pings; returns the reply's error code. For setup steps, not measured.
pub async fn call(s: &mut Session, xid: i32, t: &Template) -> anyhow::Result<i32> {
    let mut out = Vec::new();
    t.stamp(xid, &mut out);
    s.writer.write_all(&out).await?;
    loop {
        let f = s.reader.frame().await?;
        let h = reply_header(&f)?;
        if h.xid == xid {
            return Ok(h.err);
        }
    }
}

/// Closes the session politely (closeSession, wait for its reply), so the
/// server does not keep it, and its ephemerals, until it expires.
pub async fn close(mut s: Session) {
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        call(&mut s, 0x7fff_fff0, &close_session()),
    )
    .await;
}
