//! Smoke test of the load generator: every workload runs briefly against a
//! real in-process zonekeeper server (and the read/write workloads against
//! the transport-ceiling responder) over real TCP, and must complete
//! operations without an error reply or a lost connection. It asserts
//! nothing about speed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zkbench::{RunConfig, Workload};
use zonekeeper_server::config::Config;

fn quick(servers: Vec<String>, workload: Workload) -> RunConfig {
    RunConfig {
        servers,
        workload,
        clients: 4,
        inflight: 2,
        duration: Duration::from_millis(400),
        warmup: Duration::ZERO,
        keys: 20,
        watchers: 20,
        rounds: 2,
        count: 2_500,
        batch: 50,
        ..RunConfig::default()
    }
}

fn assert_clean(r: &zkbench::Report) {
    assert!(r.ops > 0, "{}: no operation completed: {r:?}", r.workload);
    assert_eq!(r.error_count(), 0, "{}: errors: {r:?}", r.workload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_completes_against_zonekeeper() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        client_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let server = zonekeeper_server::server::start(config)
        .await
        .expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.hub.raft.is_leader.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the server did not become leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let servers = vec![server.client_addr.to_string()];
    for w in [
        Workload::Create,
        Workload::Set,
        Workload::Get,
        Workload::Exists,
        Workload::Mixed,
        Workload::Multi,
        Workload::SessionChurn,
        Workload::EphemeralChurn,
        Workload::Watch,
        Workload::Load,
        Workload::Lock,
    ] {
        let r = zkbench::run(&quick(servers.clone(), w)).await.expect("run");
        assert_clean(&r);
        if w == Workload::Watch {
            assert_eq!(r.ops, 40, "every watcher notified in every round: {r:?}");
        }
        if w == Workload::Load {
            assert_eq!(r.ops, 50, "2,500 znodes in multis of 50: {r:?}");
        }
    }
    // Open loop at a modest rate.
    let mut open = quick(servers, Workload::Get);
    open.rate = Some(200.0);
    let r = zkbench::run(&open).await.expect("open loop run");
    assert_clean(&r);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_answers_every_request_shape() {
    let (addr, task) = zkbench::ceiling::start("127.0.0.1:0", 100).await.unwrap();
    let servers = vec![addr.to_string()];
    for w in [
        Workload::Get,
        Workload::Exists,
        Workload::Set,
        Workload::Create,
        Workload::Multi,
        Workload::SessionChurn,
    ] {
        let r = zkbench::run(&quick(servers.clone(), w)).await.expect("run");
        assert_clean(&r);
    }
    task.abort();
}
