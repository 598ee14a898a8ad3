//! `zonekeeper-server`: parses flags and the config file, sets up logging,
//! and runs the server until SIGTERM or ctrl-c. All behaviour lives in the
//! library (`zonekeeper_server::server::run`).

use clap::Parser;
use zonekeeper_server::config::{Cli, Command, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Dev(_)) = &cli.command {
        anyhow::bail!("`zonekeeper-server dev` (a local multi-member ensemble) arrives with the ensemble; run a standalone server with --data-dir, --client-addr and --admin-addr");
    }
    let config = Config::load(&cli)?;
    zonekeeper_server::telemetry::init(&config);
    zonekeeper_server::server::run(config, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
