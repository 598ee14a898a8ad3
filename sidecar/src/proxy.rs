//! The optional localhost ZooKeeper-protocol proxy (`--zk-proxy`): existing
//! ZooKeeper clients in the pod connect here; each accepted connection is
//! piped, bytes unchanged, to one server chosen like the client crate
//! chooses (own zone first, the `srvr` probe must say it serves), and when
//! either side closes — the upstream server died, say — the other is closed
//! too. The ZooKeeper client then reconnects through the proxy, lands on a
//! healthy server (of another zone if its own is down) and resumes its
//! session: sessions are global to the ensemble.
//!
//! The proxy does not look inside the stream, so it supports every opcode
//! and four-letter word the servers do.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};
use zonekeeper_client::host_selection::{probe, HostSelector};
use zonekeeper_client::ServerAddr;

use crate::app::App;

/// How long one upstream probe or connect may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = app.shutting_down() => return,
        };
        let (down, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "zk proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        app.metrics.proxy_accepted.inc();
        let app = app.clone();
        tokio::spawn(async move {
            app.metrics.proxy_active.inc();
            pipe(down, &app).await;
            app.metrics.proxy_active.dec();
            debug!(%peer, "zk proxy: connection closed");
        });
    }
}

/// The servers in the order to try them: own zone first, each group
/// shuffled (the client crate's order).
fn candidates(app: &App) -> Vec<ServerAddr> {
    let home = app.config.zone.clone().or_else(|| app.client().own_zone());
    HostSelector::new(app.config.servers.servers.clone(), home).round(&mut rand::thread_rng())
}

/// Connects to the first candidate that serves.
async fn upstream(app: &App) -> Option<(TcpStream, ServerAddr)> {
    for s in candidates(app) {
        let zone = s.zone.clone().unwrap_or_default();
        if probe(&s, UPSTREAM_TIMEOUT).await.is_none() {
            app.metrics
                .proxy_upstream_failures
                .with_label_values(&[&zone])
                .inc();
            continue;
        }
        match tokio::time::timeout(UPSTREAM_TIMEOUT, TcpStream::connect(s.host_port())).await {
            Ok(Ok(conn)) => return Some((conn, s)),
            _ => app
                .metrics
                .proxy_upstream_failures
                .with_label_values(&[&zone])
                .inc(),
        }
    }
    None
}

async fn pipe(mut down: TcpStream, app: &App) {
    let Some((mut up, server)) = upstream(app).await else {
        warn!("zk proxy: no server of the ensemble serves; closing the client connection");
        let _ = down.shutdown().await;
        return;
    };
    info!(server = %server.host_port(), zone = ?server.zone, "zk proxy: piping a client connection");
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (mut dr, mut dw) = down.split();
    let (mut ur, mut uw) = up.split();
    let up_bytes = app.metrics.proxy_bytes.with_label_values(&["up"]);
    let down_bytes = app.metrics.proxy_bytes.with_label_values(&["down"]);
    // Either direction ending (EOF or error) ends both: a dead upstream must
    // close the downstream so the ZooKeeper client reconnects.
    let ended = tokio::select! {
        r = pump(&mut dr, &mut uw, &up_bytes) => r.map(|()| "client"),
        r = pump(&mut ur, &mut dw, &down_bytes) => r.map(|()| "server"),
        _ = app.shutting_down() => Ok("shutdown"),
    };
    match ended {
        Ok(side) => debug!(side, server = %server.host_port(), "zk proxy: one side closed; closing both"),
        Err(e) => {
            debug!(error = %e, server = %server.host_port(), "zk proxy: connection failed; closing both")
        }
    }
}

/// Copies `r` to `w` until EOF, counting bytes.
async fn pump<R, W>(r: &mut R, w: &mut W, bytes: &prometheus::IntCounter) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        bytes.inc_by(n as u64);
    }
}
