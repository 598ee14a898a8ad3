//! Watch fan-out: `watchers` sessions each set a data watch on one znode
//! (getData with watch); one more session sets its data; the round's time
//! is from sending that setData to the arrival of the last notification.
//! Each watcher then re-arms and the next round starts once all have.
//!
//! The histogram holds every single notification's delay; `extra` has the
//! time to the last one per round (the number the issue asks for).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::report::{error_names, Latency, Live, Report, Tally};
use crate::wire::{self, Session};
use crate::workload::RunConfig;

/// How long a round may take before the run gives up on it.
const ROUND_LIMIT: Duration = Duration::from_secs(120);

async fn arm(s: &mut Session, path: &str) -> anyhow::Result<()> {
    let err = wire::call(s, 1, &wire::get_data(path, true)).await?;
    if err != 0 {
        bail!("getData with watch on {path} failed with error code {err}");
    }
    Ok(())
}

/// One watcher session: arm, wait for the notification, report its arrival,
/// re-arm; pings while idle so the session outlives a slow setup.
async fn watcher(
    mut s: Session,
    path: String,
    armed: Arc<AtomicUsize>,
    arrivals: mpsc::UnboundedSender<Instant>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    arm(&mut s, &path).await?;
    armed.fetch_add(1, Ordering::SeqCst);
    let ping = wire::ping();
    let every = Duration::from_millis((s.timeout_ms.max(3000) / 3) as u64);
    let mut tick = tokio::time::interval(every);
    let mut out = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                out.clear();
                ping.stamp(proto::opcode::xid::PING, &mut out);
                s.writer.write_all(&out).await?;
            }
            r = s.reader.fill() => {
                r?;
                while let Some(f) = s.reader.try_frame()? {
                    let h = wire::reply_header(&f)?;
                    if h.xid == proto::opcode::xid::NOTIFICATION {
                        let _ = arrivals.send(Instant::now());
                        arm(&mut s, &path).await?;
                        armed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
    }
    wire::close(s).await;
    Ok(())
}

pub async fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    let path = format!("{}/watched", cfg.root);
    let value = vec![b'v'; cfg.value_size];
    let mut setter = wire::connect(&cfg.servers[0]).await?;
    for p in [cfg.root.as_str(), path.as_str()] {
        let err = wire::call(&mut setter, 1, &wire::create(p, &value, 0)).await?;
        if err != 0 && err != proto::ErrorCode::NodeExists.code() {
            bail!("creating {p} failed with error code {err}");
        }
    }
    let live = Arc::new(Live::default());
    let armed = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = cfg.progress.map(|every| {
        let armed = armed.clone();
        let w = cfg.watchers;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("watch: {} of {w} watchers armed", armed.load(Ordering::SeqCst));
            }
        })
    });
    // Connect the watchers, a few hundred handshakes at a time.
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    let setup_start = Instant::now();
    for i in 0..cfg.watchers {
        let addr = cfg.servers[i % cfg.servers.len()].clone();
        let (path, armed, tx, stop) = (path.clone(), armed.clone(), tx.clone(), stop_rx.clone());
        let gate = gate.clone();
        tasks.spawn(async move {
            let s = {
                let _permit = gate.acquire().await.context("gate")?;
                wire::connect(&addr).await?
            };
            watcher(s, path, armed, tx, stop).await
        });
    }
    drop(tx);
    let mut failures = Vec::new();
    let wait_armed = |target: usize, armed: Arc<AtomicUsize>| async move {
        let deadline = Instant::now() + ROUND_LIMIT;
        while armed.load(Ordering::SeqCst) < target {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    };
    let mut tally = Tally::default();
    let mut rounds = Vec::new();
    if wait_armed(cfg.watchers, armed.clone()).await {
        let setup_seconds = setup_start.elapsed().as_secs_f64();
        let set = wire::set_data(&path, &value);
        for round in 0..cfg.rounds {
            armed.store(0, Ordering::SeqCst);
            let t0 = Instant::now();
            let err = wire::call(&mut setter, 100 + round as i32, &set).await?;
            if err != 0 {
                bail!("setData on {path} failed with error code {err}");
            }
            let mut last = t0;
            let mut got = 0;
            while got < cfg.watchers {
                match tokio::time::timeout_at((t0 + ROUND_LIMIT).into(), rx.recv()).await {
                    Ok(Some(at)) => {
                        got += 1;
                        last = last.max(at);
                        tally.record(at - t0, 0);
                        live.add(0);
                    }
                    _ => break,
                }
            }
            if got < cfg.watchers {
                failures.push(format!(
                    "round {round}: only {got} of {} notifications arrived",
                    cfg.watchers
                ));
                break;
            }
            rounds.push((last - t0).as_secs_f64() * 1000.0);
            if round + 1 < cfg.rounds && !wait_armed(cfg.watchers, armed.clone()).await {
                failures.push(format!("round {round}: watchers did not re-arm"));
                break;
            }
        }
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("watchers".into(), serde_json::json!(cfg.watchers));
        extra.insert("setup_seconds".into(), serde_json::json!(setup_seconds));
        extra.insert("time_to_last_ms".into(), serde_json::json!(rounds));
        let mut sorted = rounds.clone();
        sorted.sort_by(f64::total_cmp);
        if !sorted.is_empty() {
            extra.insert(
                "median_time_to_last_ms".into(),
                serde_json::json!(sorted[sorted.len() / 2]),
            );
        }
        let _ = stop_tx.send(true);
        collect(&mut tasks, &mut failures).await;
        wire::close(setter).await;
        if let Some(p) = progress {
            p.abort();
        }
        let total: f64 = rounds.iter().sum::<f64>() / 1000.0;
        return Ok(Report {
            workload: "watch".into(),
            servers: cfg.servers.clone(),
            clients: cfg.watchers,
            inflight: 1,
            rate: None,
            value_size: cfg.value_size,
            seconds: total,
            ops: tally.ops,
            throughput: if total > 0.0 {
                tally.ops as f64 / total
            } else {
                0.0
            },
            latency_us: Latency::of(&tally.hist),
            errors: error_names(&tally.errors),
            failures,
            extra,
        });
    }
    let n = armed.load(Ordering::SeqCst);
    let _ = stop_tx.send(true);
    collect(&mut tasks, &mut failures).await;
    if let Some(p) = progress {
        p.abort();
    }
    bail!(
        "only {n} of {} watchers armed within {ROUND_LIMIT:?}: {}",
        cfg.watchers,
        failures
            .first()
            .map(String::as_str)
            .unwrap_or("no error reported")
    )
}

async fn collect(tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>, failures: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline.into(), tasks.join_next()).await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) if failures.len() < 20 => failures.push(format!("{e:#}")),
            Ok(Err(_)) => {}
            Err(e) => failures.push(format!("watcher task failed: {e}")),
        }
    }
    tasks.abort_all();
}
