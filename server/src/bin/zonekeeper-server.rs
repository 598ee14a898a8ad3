//! `zonekeeper-server`: parses flags and the config file, sets up logging,
//! and runs the server until SIGTERM or ctrl-c. All behaviour lives in the
//! library (`zonekeeper_server::server::run`).

use clap::Parser;
use zonekeeper_server::config::{Cli, Command, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Dev(args)) = cli.command {
        zonekeeper_server::telemetry::init(&Config::default());
        let exe = std::env::current_exe()?;
        return zonekeeper_server::dev::run(args, exe, shutdown_signal()).await;
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
