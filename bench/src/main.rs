//! `zonekeeper-bench run ...` drives a workload and prints a JSON report;
//! `zonekeeper-bench ceiling ...` serves the transport-ceiling responder.

use std::time::Duration;

use clap::{Parser, Subcommand};
use zkbench::{RunConfig, Workload};

#[derive(Parser)]
#[command(
    name = "zonekeeper-bench",
    version,
    about = "ZooKeeper-protocol load generator (docs/performance.md)"
)]
struct Cli {
    /// Runtime worker threads (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one workload and print its JSON report on stdout.
    Run(RunArgs),
    /// Serve the transport-ceiling responder (canned valid replies) until interrupted.
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:22181")]
        listen: String,
        /// Size of the value getData answers with.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Servers, comma-separated host:port; sessions are spread over them.
    #[arg(long, default_value = "127.0.0.1:2181", value_delimiter = ',')]
    servers: Vec<String>,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Sessions (one connection each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests outstanding per session (closed loop).
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Open loop: total requests per second over all sessions; latency is
    /// then measured from each request's scheduled time.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Znodes the get/set/exists/mixed/multi workloads use.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Fraction of reads in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    /// setData operations per multi.
    #[arg(long, default_value_t = 4)]
    multi_ops: usize,
    /// Watch fan-out: watcher sessions.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Watch fan-out: rounds (setData + all notifications).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Load: znodes to create.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Load: creates per multi.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Parent znode of everything the run creates.
    #[arg(long, default_value = "/bench")]
    root: String,
    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value_t = 5.0)]
    progress: f64,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Ceiling { listen, value_size } => {
                let (addr, task) = zkbench::ceiling::start(&listen, value_size).await?;
                eprintln!("ceiling responder on {addr}");
                tokio::signal::ctrl_c().await?;
                task.abort();
                Ok(())
            }
            Cmd::Run(a) => {
                let cfg = RunConfig {
                    servers: a.servers,
                    workload: a.workload,
                    clients: a.clients,
                    inflight: a.inflight,
                    rate: a.rate,
                    duration: Duration::from_secs_f64(a.duration),
                    warmup: Duration::from_secs_f64(a.warmup),
                    value_size: a.value_size,
                    keys: a.keys.max(1),
                    read_ratio: a.read_ratio,
                    multi_ops: a.multi_ops.max(1),
                    watchers: a.watchers,
                    rounds: a.rounds,
                    count: a.count,
                    batch: a.batch,
                    root: a.root,
                    progress: (a.progress > 0.0).then(|| Duration::from_secs_f64(a.progress)),
                };
                let report = zkbench::run(&cfg).await?;
                let text = serde_json::to_string_pretty(&report)?;
                if let Some(p) = a.json {
                    std::fs::write(&p, &text)?;
                }
                println!("{text}");
                if report.error_count() > 0 {
                    eprintln!(
                        "{} errors: {:?} {:?}",
                        report.error_count(),
                        report.errors,
                        report.failures.iter().take(3).collect::<Vec<_>>()
                    );
                }
                Ok(())
            }
        }
    })
}
