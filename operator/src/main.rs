//! `zonekeeper-operator`: runs the controller (default), or renders the
//! objects of a `CoordinationCluster` file without a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::time::Duration;
use zonekeeper_operator::admin::{AdminClient, Endpoints};
use zonekeeper_operator::controller::{self, Context};
use zonekeeper_operator::desired::Platform;
use zonekeeper_operator::metrics::Metrics;
use zonekeeper_operator::{http, lease, render, telemetry};

#[derive(Parser)]
#[command(
    name = "zonekeeper-operator",
    version,
    about = "Kubernetes operator for zonekeeper"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address of the HTTP port (/metrics, /healthz).
    #[arg(long, env = "ZONEKEEPER_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Log one JSON object per line.
    #[arg(long, env = "ZONEKEEPER_OPERATOR_LOG_JSON")]
    log_json: bool,
    /// Campaign for a coordination.k8s.io Lease and act only while holding
    /// it, so several replicas can run (one acts, the others wait).
    #[arg(long, env = "ZONEKEEPER_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// The Lease's namespace (default: the pod's, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// The Lease's name.
    #[arg(
        long,
        env = "ZONEKEEPER_OPERATOR_LEASE_NAME",
        default_value = "zonekeeper-operator"
    )]
    lease_name: String,
    /// This replica's identity in the Lease (default: POD_NAME, else the
    /// host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Timeout of each request to a server's admin API.
    #[arg(long, env = "ZONEKEEPER_OPERATOR_ADMIN_TIMEOUT_MS", default_value_t = 5000)]
    admin_timeout_ms: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Print the objects the operator would create for the
    /// CoordinationClusters in FILE (YAML), without a cluster.
    Render {
        /// Kubernetes version to render for, `MAJOR.MINOR`.
        #[arg(long, default_value = "1.28")]
        kubernetes_version: String,
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Render {
        kubernetes_version,
        file,
    }) = cli.command
    {
        let (major, minor) = kubernetes_version
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .context("--kubernetes-version must be MAJOR.MINOR, e.g. 1.28")?;
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        print!("{}", render::render(&text, Platform::for_version(major, minor))?);
        return Ok(());
    }

    telemetry::init(cli.log_json);
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes config (kubeconfig or in-cluster)")?;
    if let Err(e) = controller::check_crd(&client).await {
        eprintln!("zonekeeper-operator: {e}");
        std::process::exit(1);
    }
    let platform = controller::detect_platform(&client).await?;
    tracing::info!(?platform, "connected");
    let metrics = Arc::new(Metrics::default());
    let admin = AdminClient::new(Duration::from_millis(cli.admin_timeout_ms), Endpoints::Dns);
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), platform, admin));

    let listener = tokio::net::TcpListener::bind(cli.http_addr)
        .await
        .context("binding the HTTP port")?;
    // /healthz answers while waiting for the lease too: a follower is healthy.
    let server = tokio::spawn(async move {
        axum::serve(listener, http::router(metrics))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    if !cli.leader_election {
        controller::run(ctx).await;
        return server.await?.context("HTTP server");
    }
    let identity = cli
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .context("--identity (or POD_NAME/HOSTNAME) is needed for leader election")?;
    let elector = lease::Elector::new(client, &cli.lease_namespace, &cli.lease_name, &identity);
    tokio::select! {
        _ = elector.acquire() => {}
        _ = tokio::signal::ctrl_c() => return Ok(()),
    }
    tokio::select! {
        _ = controller::run(ctx) => {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "could not release the lease");
            }
            server.await?.context("HTTP server")
        }
        _ = elector.keep() => {
            // Stop acting at once: another replica may lead now.
            anyhow::bail!("lost the lease {}; exiting so that only the leader acts", cli.lease_name)
        }
    }
}
