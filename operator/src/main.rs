//! `zonekeeper-operator`: runs the controller (default), or renders the
//! objects of a `CoordinationCluster` file without a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use zonekeeper_operator::controller::{self, Context};
use zonekeeper_operator::desired::Platform;
use zonekeeper_operator::metrics::Metrics;
use zonekeeper_operator::{http, render, telemetry};

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
    let ctx = Arc::new(Context::new(client, metrics.clone(), platform));

    let listener = tokio::net::TcpListener::bind(cli.http_addr)
        .await
        .context("binding the HTTP port")?;
    let server = axum::serve(listener, http::router(metrics)).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let (_, served) = tokio::join!(controller::run(ctx), server);
    served.context("HTTP server")?;
    Ok(())
}
