//! One TCP connection to a server: length-prefixed framing (proto's
//! `frame`) and the connect handshake. Reading is cancel-safe (bytes are
//! kept in the connection's buffer), so the session task can `select!` on
//! [`Conn::read_packet`].

use std::io;
use std::time::Duration;

use proto::frame;
use proto::jute::{Reader, Record};
use proto::records::{ConnectRequest, ConnectResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::connect_string::ServerAddr;

/// Why a connection attempt or an established connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("timed out")]
    TimedOut,
    #[error("server closed the connection")]
    Closed,
    #[error("bad packet: {0}")]
    Bad(String),
}

pub(crate) struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects and performs the handshake within `timeout`. A server that
    /// refuses the session (not serving, or behind the client's last zxid)
    /// closes the connection: [`ConnError::Closed`].
    pub(crate) async fn open(
        server: &ServerAddr,
        req: &ConnectRequest,
        timeout: Duration,
    ) -> Result<(Conn, ConnectResponse), ConnError> {
        tokio::time::timeout(timeout, async {
            let stream = TcpStream::connect(server.host_port()).await?;
            stream.set_nodelay(true)?;
            let (rd, wr) = stream.into_split();
            let mut conn = Conn {
                rd,
                wr,
                buf: Vec::with_capacity(4096),
            };
            let mut payload = Vec::new();
            req.write(&mut payload);
            conn.send(&payload).await?;
            let reply = conn.read_packet().await?;
            let resp = ConnectResponse::read(&mut Reader::new(&reply))
                .map_err(|e| ConnError::Bad(format!("connect response: {e}")))?;
            Ok((conn, resp))
        })
        .await
        .map_err(|_| ConnError::TimedOut)?
    }

    /// Writes one packet (the length prefix is added here).
    pub(crate) async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        frame::write_frame(&mut out, payload);
        self.wr.write_all(&out).await
    }

    /// Reads the next whole packet (without its length prefix).
    pub(crate) async fn read_packet(&mut self) -> Result<Vec<u8>, ConnError> {
        loop {
            match frame::check(&self.buf, frame::DEFAULT_MAX_PACKET) {
                Ok(Some(len)) => {
                    let packet = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Ok(packet);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnError::Bad(e.to_string())),
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(ConnError::Closed);
            }
        }
    }
}
