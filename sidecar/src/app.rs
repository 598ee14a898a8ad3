//! The running sidecar: its ensemble session, app leases and holdings, the
//! HTTP server and (optionally) the ZooKeeper proxy, with one shutdown path.
//!
//! Background tasks, each selecting on the shutdown signal:
//! - the lease reaper releases the holdings of lapsed app leases;
//! - the session supervisor tracks the session state (readiness, metrics)
//!   and, if the ensemble expires the session, forgets every holding (the
//!   ensemble already deleted their nodes) and opens a new session.
//!
//! Shutdown (SIGTERM): stop accepting, release every holding, close the
//! session (its ephemerals go at once), then return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};
use zonekeeper_client::{Client, ClientConfig, SessionState};

use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::holdings::Holdings;
use crate::leases::Leases;
use crate::metrics::Metrics;

/// Shared by every request handler.
pub struct App {
    client: RwLock<Client>,
    pub config: Config,
    pub leases: Leases,
    pub holdings: Holdings,
    pub metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
}

impl App {
    /// The current ensemble session (a new one after an expiry).
    pub fn client(&self) -> Client {
        self.client.read().unwrap().clone()
    }

    /// The znode of `name` in the area `area` (e.g. `locks`).
    pub fn path(&self, area: &str, name: &str) -> String {
        format!("{}/{area}/{name}", self.config.root)
    }

    /// Err(shutting_down) once shutdown has begun: no new grants then.
    pub fn check_running(&self) -> Result<(), ApiError> {
        if *self.shutdown.borrow() {
            return Err(ApiError::new(
                Code::ShuttingDown,
                "the sidecar is shutting down and releasing what it holds; retry against the next sidecar instance",
            ));
        }
        Ok(())
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// True while the session is connected (readiness).
    pub fn ready(&self) -> (bool, SessionState) {
        let state = self.client().state();
        (matches!(state, SessionState::Connected { .. }), state)
    }

    /// Releases every holding of `lease` (lapsed or revoked).
    pub async fn release_lease(&self, lease: &str, reason: &str) -> usize {
        let held = self.holdings.take_lease(lease);
        let n = held.len();
        for h in held {
            h.release(reason, &self.metrics).await;
        }
        n
    }
}

pub fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new(config.servers.clone()).with_session_timeout(config.session_timeout);
    if let Some(z) = &config.zone {
        c = c.with_zone(z.clone());
    }
    c
}

/// A started sidecar: addresses and the way to stop it.
pub struct Running {
    pub app: Arc<App>,
    pub http_addr: SocketAddr,
    pub proxy_addr: Option<SocketAddr>,
    tasks: tokio::task::JoinSet<()>,
}

/// Connects to the ensemble, binds the listeners and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let client = Client::connect(client_config(&config))
        .await
        .map_err(|e| anyhow::anyhow!("cannot open a session with the ensemble {}: {e}", config.servers))?;
    start_with(config, client).await
}

/// Binds the listeners and starts serving with an established session.
pub async fn start_with(config: Config, client: Client) -> anyhow::Result<Running> {
    let metrics = Arc::new(Metrics::new());
    info!(session = format!("0x{:x}", client.session_id()), zone = ?client.own_zone(), "session established");
    let http = TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (--listen): {e}; pick a free port",
            config.listen
        )
    })?;
    let http_addr = http.local_addr()?;
    let proxy = match config.zk_proxy {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {a} (--zk-proxy): {e}; pick a free port"))?,
        ),
        None => None,
    };
    let proxy_addr = proxy.as_ref().map(|l| l.local_addr()).transpose()?;
    let (shutdown, _) = watch::channel(false);
    let app = Arc::new(App {
        client: RwLock::new(client),
        config: config.clone(),
        leases: Leases::new(),
        holdings: Holdings::new(metrics.clone()),
        metrics,
        shutdown,
    });
    let mut tasks = tokio::task::JoinSet::new();
    {
        let app = app.clone();
        tasks.spawn(async move { reap_leases(app).await });
    }
    {
        let app = app.clone();
        tasks.spawn(async move { supervise_session(app).await });
    }
    {
        let app2 = app.clone();
        let router = crate::api::router(app.clone());
        tasks.spawn(async move {
            let stop = async move { app2.shutting_down().await };
            if let Err(e) = axum::serve(http, router).with_graceful_shutdown(stop).await {
                warn!(error = %e, "HTTP server failed");
            }
        });
    }
    if let Some(listener) = proxy {
        let app = app.clone();
        tasks.spawn(async move { crate::proxy::serve(listener, app).await });
    }
    info!(http = %http_addr, proxy = ?proxy_addr, "sidecar serving");
    Ok(Running {
        app,
        http_addr,
        proxy_addr,
        tasks,
    })
}

impl Running {
    /// Clean shutdown: no new requests or grants, every holding released,
    /// the session closed.
    pub async fn shutdown(mut self) {
        let app = self.app.clone();
        app.shutdown.send_replace(true);
        let held = app.holdings.take_all();
        info!(holdings = held.len(), "shutting down: releasing everything held");
        for h in held {
            h.release("shutdown", &app.metrics).await;
        }
        if let Err(e) = app.client().close().await {
            warn!(error = %e, "closing the session failed; its ephemerals go when it expires");
        }
        // In-flight requests had their chance; background tasks end on the
        // shutdown signal (a long SSE stream is cut).
        if tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            self.tasks.abort_all();
        }
        info!("sidecar stopped");
    }

    /// Ends the sidecar without releasing anything or closing the session
    /// (tests: what a crash leaves behind is up to session expiry).
    pub fn abandon(mut self) {
        self.app.shutdown.send_replace(true);
        self.tasks.abort_all();
    }
}

/// Runs until `shutdown` resolves, then shuts down cleanly. Waits (with
/// backoff, logging) for the ensemble if no server accepts a session yet,
/// so a pod that starts before its ensemble does not crash-loop.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(500);
    let client = loop {
        tokio::select! {
            r = Client::connect(client_config(&config)) => match r {
                Ok(c) => break c,
                Err(e) => warn!(servers = %config.servers, error = %e,
                    "no session with the ensemble yet; retrying (check --servers and that the servers run)"),
            },
            _ = &mut shutdown => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    };
    let running = start_with(config, client).await?;
    println!("sidecar: http://{}", running.http_addr);
    if let Some(p) = running.proxy_addr {
        println!("zk-proxy: {p}");
    }
    shutdown.await;
    running.shutdown().await;
    Ok(())
}

async fn reap_leases(app: Arc<App>) {
    loop {
        let lapsed = tokio::select! {
            l = app.leases.next_lapsed() => l,
            _ = app.shutting_down() => return,
        };
        for id in lapsed {
            app.metrics.lease_lapses.inc();
            app.metrics.leases.set(app.leases.len() as i64);
            let n = app.release_lease(&id, "lease_lapsed").await;
            warn!(lease = %id, released = n, "app lease lapsed (not renewed within its TTL); released what it held");
        }
    }
}

fn state_label(s: &SessionState) -> &'static str {
    match s {
        SessionState::Connecting => "connecting",
        SessionState::Connected { .. } => "connected",
        SessionState::Disconnected => "disconnected",
        SessionState::Expired => "expired",
        SessionState::AuthFailed => "auth_failed",
        SessionState::Closed => "closed",
    }
}

async fn supervise_session(app: Arc<App>) {
    loop {
        let mut rx = app.client().state_changes();
        loop {
            let state = rx.borrow_and_update().clone();
            app.metrics
                .session_connected
                .set(i64::from(matches!(state, SessionState::Connected { .. })));
            app.metrics
                .session_transitions
                .with_label_values(&[state_label(&state)])
                .inc();
            match &state {
                SessionState::Connected { server } => {
                    info!(server = %server.host_port(), zone = ?server.zone, "session connected")
                }
                s if s.is_terminal() => break,
                s => warn!(
                    state = state_label(s),
                    "session not connected; requests wait or fail with 503"
                ),
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = app.shutting_down() => return,
            }
        }
        // Terminal: the session is gone (or the client closed).
        if *app.shutdown.borrow() {
            return;
        }
        let lost = app.holdings.take_all();
        warn!(
            holdings = lost.len(),
            "the ensemble expired the session: every lock, permit, membership and \
            leadership it held is gone; opening a new session"
        );
        for h in lost {
            app.metrics.released.with_label_values(&["session_expired"]).inc();
            drop(h);
        }
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                r = Client::connect(client_config(&app.config)) => match r {
                    Ok(c) => {
                        info!(session = format!("0x{:x}", c.session_id()), "new session established");
                        *app.client.write().unwrap() = c;
                        break;
                    }
                    Err(e) => warn!(error = %e, "cannot open a new session yet; retrying"),
                },
                _ = app.shutting_down() => return,
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
