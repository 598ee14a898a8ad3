//! `zonekeeper-sidecar`: parses flags (and env), sets up logging, runs the
//! sidecar until SIGTERM or ctrl-c, then releases everything it holds. All
//! behaviour lives in the library (`zonekeeper_sidecar::app::run`).

use clap::Parser;
use zonekeeper_sidecar::config::{Cli, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::from_cli(&cli)?;
    zonekeeper_sidecar::app::run(config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
