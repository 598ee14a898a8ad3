//! One peer's outbound task: dial (with backoff), handshake, then write the
//! queued frames, batching whatever has accumulated into one write.
//!
//! The connection is write-only after the handshake; the task still reads
//! it, because the acceptor never writes again and so a read returning
//! (end of stream) is how a closed or restarted peer is noticed while idle.
//! Counters are updated only after a write completes; the frames of a
//! failed write are counted as dropped.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::handshake::{self, Ack, HandshakeError, Hello, Status};
use super::{read_frame, shut_down, PeerShared, TransportError, TransportOptions};

pub(super) struct PeerTask {
    pub self_id: u64,
    pub self_zone: String,
    pub shared: Arc<PeerShared>,
    pub queue: mpsc::Receiver<Bytes>,
    pub options: TransportOptions,
    /// Changes (errors) when the handle drops this peer.
    pub stop: watch::Receiver<()>,
    pub shutdown: watch::Receiver<bool>,
}

/// Resolves when the transport shuts down or this peer is removed.
async fn stopped(stop: &mut watch::Receiver<()>, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = shut_down(shutdown) => {}
    }
}

pub(super) async fn run(mut task: PeerTask) {
    let id = task.shared.info.id;
    let mut backoff = task.options.reconnect_min;
    let mut failures = 0u32;
    loop {
        let mut stop = task.stop.clone();
        let mut shutdown = task.shutdown.clone();
        let dialed = tokio::select! {
            _ = stopped(&mut stop, &mut shutdown) => return,
            r = connect(&task) => r,
        };
        match dialed {
            Ok(stream) => {
                info!(peer = id, addr = %task.shared.info.addr, "connected to peer");
                failures = 0;
                backoff = task.options.reconnect_min;
                task.shared.counters.connected.set(1);
                let ended = tokio::select! {
                    _ = stopped(&mut stop, &mut shutdown) => None,
                    r = pump(&mut task, stream) => Some(r),
                };
                task.shared.counters.connected.set(0);
                match ended {
                    None | Some(Ok(())) => return,
                    Some(Err(e)) => info!(peer = id, error = %e, "connection to peer lost; redialing"),
                }
                // Redial at once: a restarted peer is usually back already.
                continue;
            }
            Err(e) => {
                failures += 1;
                task.shared.counters.connect_failures.inc();
                // The first failure of a streak is worth a warning; the
                // rest would repeat it every few seconds.
                if failures == 1 {
                    warn!(peer = id, addr = %task.shared.info.addr, error = %e, "cannot reach peer; retrying");
                } else {
                    debug!(peer = id, addr = %task.shared.info.addr, error = %e, failures, "cannot reach peer");
                }
            }
        }
        let jittered = backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.0));
        tokio::select! {
            _ = stopped(&mut stop, &mut shutdown) => return,
            _ = tokio::time::sleep(jittered) => {}
        }
        backoff = (backoff * 2).min(task.options.reconnect_max);
    }
}

/// Dials the peer (resolving its address anew) and completes the
/// handshake.
async fn connect(task: &PeerTask) -> Result<TcpStream, TransportError> {
    let info = &task.shared.info;
    let mut stream = timeout(
        task.options.connect_timeout,
        TcpStream::connect(info.addr.as_str()),
    )
    .await
    .map_err(|_| TransportError::Timeout("connect"))??;
    let _ = stream.set_nodelay(true);
    let hello = Hello {
        from: task.self_id,
        to: info.id,
        zone: task.self_zone.clone(),
    };
    let exchange = async {
        let mut frame = Vec::new();
        proto::frame::write_frame(&mut frame, &hello.encode());
        stream.write_all(&frame).await?;
        let mut buf = BytesMut::with_capacity(64);
        let body = read_frame(&mut stream, &mut buf, handshake::MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or(TransportError::ClosedByPeer)?;
        Ok::<Ack, TransportError>(Ack::decode(&body)?)
    };
    let ack = timeout(task.options.handshake_timeout, exchange)
        .await
        .map_err(|_| TransportError::Handshake(HandshakeError::Timeout))??;
    if ack.status != Status::Accepted {
        return Err(HandshakeError::Refused(ack.status).into());
    }
    if ack.id != info.id {
        return Err(HandshakeError::WrongMember {
            expected: info.id,
            got: ack.id,
        }
        .into());
    }
    Ok(stream)
}

/// Writes queued frames until the connection fails (`Err`) or the queue is
/// closed (`Ok`).
async fn pump(task: &mut PeerTask, stream: TcpStream) -> Result<(), TransportError> {
    let (mut rd, mut wr) = stream.into_split();
    let counters = &task.shared.counters;
    let mut probe = [0u8; 1];
    loop {
        let first = tokio::select! {
            r = rd.read(&mut probe) => {
                return Err(match r {
                    Ok(0) => TransportError::ClosedByPeer,
                    Ok(_) => TransportError::Io(std::io::Error::other("unexpected data from the peer")),
                    Err(e) => e.into(),
                });
            }
            f = task.queue.recv() => match f {
                Some(f) => f,
                None => return Ok(()),
            },
        };
        let mut batch = vec![first];
        let mut bytes = batch[0].len();
        while bytes < task.options.batch_bytes {
            match task.queue.try_recv() {
                Ok(f) => {
                    bytes += f.len();
                    batch.push(f);
                }
                Err(_) => break,
            }
        }
        task.shared.queued_bytes.fetch_sub(bytes, Relaxed);
        let write = async {
            if let [one] = &batch[..] {
                wr.write_all(one).await
            } else {
                let mut joined = Vec::with_capacity(bytes);
                for f in &batch {
                    joined.extend_from_slice(f);
                }
                wr.write_all(&joined).await
            }
        };
        match timeout(write_deadline(&task.options, bytes), write).await {
            Ok(Ok(())) => {
                counters.bytes_sent.inc_by(bytes as u64);
                counters.zone_bytes.inc_by(bytes as u64);
                counters.messages_sent.inc_by(batch.len() as u64);
            }
            Ok(Err(e)) => {
                counters.dropped.inc_by(batch.len() as u64);
                return Err(e.into());
            }
            Err(_) => {
                counters.dropped.inc_by(batch.len() as u64);
                return Err(TransportError::Timeout("write"));
            }
        }
    }
}

/// `write_timeout`, stretched for big batches at a floor of 1 MiB/s so a
/// large snapshot on a slow link is not mistaken for a dead peer.
fn write_deadline(options: &TransportOptions, bytes: usize) -> Duration {
    options.write_timeout + Duration::from_secs((bytes / (1024 * 1024)) as u64)
}
