//! The accept loop and one task per inbound connection: handshake, then
//! read frames and deliver `(from, message)` to the consumer.
//!
//! A bad handshake or a bad frame closes that connection only, with a log
//! line and a count; other connections and the outbound side are
//! untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::handshake::{self, Ack, HandshakeError, Hello, Status};
use super::{read_frame, shut_down, Inner, PeerMessage, PeerShared, TransportError};

/// Accepts until shutdown or until the consumer drops its receiver.
pub(super) async fn accept_loop(
    listener: TcpListener,
    inner: Arc<Inner>,
    tx: mpsc::Sender<(u64, PeerMessage)>,
) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shut_down(&mut shutdown) => break,
            _ = tx.closed() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((socket, remote)) => {
                tokio::spawn(serve(socket, remote, inner.clone(), tx.clone()));
            }
            Err(e) => {
                // Usually out of file descriptors; pausing lets
                // connections close instead of spinning on the error.
                warn!(error = %e, "cannot accept peer connection");
                tokio::select! {
                    _ = shut_down(&mut shutdown) => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    debug!("peer listener closed");
}

async fn serve(
    mut socket: TcpStream,
    remote: SocketAddr,
    inner: Arc<Inner>,
    tx: mpsc::Sender<(u64, PeerMessage)>,
) {
    let _ = socket.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(4096);
    let (from, shared, mut stop) = match accept(&mut socket, &mut buf, &inner, remote).await {
        Ok(Some(accepted)) => accepted,
        Ok(None) => {
            // Connected and closed without a byte: a TCP probe.
            debug!(%remote, "peer port probed");
            return;
        }
        Err(e) => {
            if let TransportError::Handshake(h) = &e {
                inner.metrics.handshake_rejected(h.label());
            }
            // Refusals were logged with their details by `accept`.
            if !matches!(e, TransportError::Handshake(HandshakeError::Refused(_))) {
                warn!(%remote, error = %e, "peer connection refused");
            }
            return;
        }
    };
    info!(peer = from, %remote, "peer connected");
    let mut shutdown = inner.shutdown.clone();
    let counters = &shared.counters;
    let max = inner.options.max_frame_bytes;
    let result: Result<(), TransportError> = async {
        loop {
            let body = tokio::select! {
                _ = shut_down(&mut shutdown) => return Ok(()),
                _ = stop.changed() => return Ok(()),
                r = read_frame(&mut socket, &mut buf, max) => match r? {
                    Some(body) => body,
                    None => return Err(TransportError::ClosedByPeer),
                },
            };
            counters.bytes_received.inc_by(4 + body.len() as u64);
            let msg = PeerMessage::decode(&body)?;
            counters.messages_received.inc();
            tokio::select! {
                _ = shut_down(&mut shutdown) => return Ok(()),
                _ = stop.changed() => return Ok(()),
                r = tx.send((from, msg)) => if r.is_err() { return Ok(()) },
            }
        }
    }
    .await;
    match result {
        Ok(()) | Err(TransportError::ClosedByPeer) => debug!(peer = from, "peer connection closed"),
        Err(TransportError::Io(e)) => debug!(peer = from, error = %e, "peer connection closed"),
        Err(e) => warn!(peer = from, %remote, error = %e, "closing peer connection"),
    }
}

/// Reads and checks the hello, answers it, and on success registers the
/// connection as the peer's current one (closing the previous). `None` if
/// the connection closed before sending anything.
async fn accept(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    inner: &Inner,
    remote: SocketAddr,
) -> Result<Option<Accepted>, TransportError> {
    let body = timeout(
        inner.options.handshake_timeout,
        read_frame(socket, buf, handshake::MAX_HANDSHAKE_BYTES),
    )
    .await
    .map_err(|_| HandshakeError::Timeout)?;
    let body = match body {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        // A length prefix over the handshake limit: not one of ours.
        Err(TransportError::Frame(_)) => return Err(HandshakeError::BadMagic.into()),
        Err(e) => return Err(e),
    };
    let refuse = |status| Ack {
        status,
        id: inner.self_id,
    };
    let hello = match Hello::decode(&body) {
        Ok(h) => h,
        Err(e @ HandshakeError::UnsupportedVersion(_)) => {
            let _ = socket
                .write_all(&ack_frame(refuse(Status::UnsupportedVersion)))
                .await;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let status = if hello.from == inner.self_id {
        Status::SameId
    } else if hello.to != inner.self_id {
        Status::WrongTarget
    } else {
        Status::Accepted
    };
    let registered = (status == Status::Accepted)
        .then(|| {
            let mut peers = inner.peers.lock().expect("peer map lock poisoned");
            peers.get_mut(&hello.from).map(|entry| {
                let (stop_tx, stop_rx) = watch::channel(());
                // Replacing the sender closes the previous connection.
                entry.stop_inbound = Some(stop_tx);
                (entry.shared.clone(), stop_rx)
            })
        })
        .flatten();
    let Some((shared, stop)) = registered else {
        let status = if status == Status::Accepted {
            Status::UnknownPeer
        } else {
            status
        };
        let _ = socket.write_all(&ack_frame(refuse(status))).await;
        let _ = socket.shutdown().await;
        let detail = match status {
            Status::WrongTarget => format!(" (it meant to reach member {})", hello.to),
            _ => String::new(),
        };
        warn!(%remote, from = hello.from, zone = %hello.zone, "refusing peer handshake: {status:?}{detail}");
        return Err(HandshakeError::Refused(status).into());
    };
    if hello.zone != shared.info.zone {
        warn!(
            peer = hello.from,
            configured = %shared.info.zone,
            announced = %hello.zone,
            "peer announces a zone other than its configured one; byte counts use the configured zone"
        );
    }
    socket
        .write_all(&ack_frame(Ack {
            status: Status::Accepted,
            id: inner.self_id,
        }))
        .await?;
    Ok(Some((hello.from, shared, stop)))
}

/// A peer's id, its shared state, and the signal that closes this
/// connection (when the peer dials again or is removed).
type Accepted = (u64, Arc<PeerShared>, watch::Receiver<()>);

fn ack_frame(ack: Ack) -> Vec<u8> {
    let mut out = Vec::new();
    proto::frame::write_frame(&mut out, &ack.encode());
    out
}
