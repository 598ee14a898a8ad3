//! Several sidecars against a real three-member, three-zone ensemble of
//! server processes (issue 4, "Done means"): mutual exclusion under
//! contention with strictly increasing fencing tokens, leadership moving
//! when the leader's app lease lapses or its sidecar dies, membership lists
//! converging (also through SSE and long-poll), clean shutdown releasing
//! everything, zone failover keeping locks and memberships and returning
//! home, and the ZooKeeper proxy failing over with the session kept.
//!
//! Runs in nextest's `server-processes` group (.config/nextest.toml).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{eventually, zk_client, Ensemble, Sidecar, SidecarProc};
use serde_json::{json, Value};

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locks_exclude_each_other_and_fencing_tokens_increase() {
    let ens = Ensemble::start(3).await;
    let mut sidecars = Vec::new();
    for z in ["zone-a", "zone-b", "zone-c"] {
        sidecars.push(Sidecar::start(&ens.connect_string(), &["--zone", z]).await);
    }
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut workers = Vec::new();
    for (i, sc) in sidecars.iter().enumerate() {
        for w in 0..2 {
            let api = sc.api.clone();
            let (inside, tokens) = (inside.clone(), tokens.clone());
            workers.push(tokio::spawn(async move {
                for n in 0..4 {
                    let (s, g) = api
                        .post(
                            "/v1/locks/counter/acquire",
                            json!({"timeout_ms": 60000, "data": format!("{i}/{w}/{n}")}),
                        )
                        .await;
                    assert_eq!(s, 200, "{g}");
                    assert!(
                        !inside.swap(true, Ordering::SeqCst),
                        "two holders of an exclusive lock at once"
                    );
                    tokens.lock().unwrap().push(g["token"].as_u64().unwrap());
                    tokio::task::yield_now().await;
                    inside.store(false, Ordering::SeqCst);
                    let (s, v) = api
                        .post(
                            "/v1/locks/counter/release",
                            json!({"holder": g["holder"], "token": g["token"]}),
                        )
                        .await;
                    assert_eq!(s, 200, "{v}");
                }
            }));
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 24);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens in grant order must strictly increase: {tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_when_the_leaders_app_lease_lapses() {
    let ens = Ensemble::start(3).await;
    let a = Sidecar::start(&ens.connect_string(), &["--zone", "zone-a"]).await;
    let b = Sidecar::start(&ens.connect_string(), &["--zone", "zone-b"]).await;
    let (s, lease) = a.api.post("/v1/leases", json!({"ttl_ms": 1500})).await;
    assert_eq!(s, 201);
    let lease = lease["lease"].as_str().unwrap().to_string();
    let (s, la) = a
        .api
        .post(
            "/v1/elections/primary/campaign",
            json!({"lease": lease, "data": "a", "timeout_ms": 0}),
        )
        .await;
    assert_eq!(s, 200, "{la}");
    // b reads from its own zone's server, which may not have applied a's
    // campaign yet (ZooKeeper reads are sequentially consistent).
    let bapi = b.api.clone();
    eventually("b to see a lead", || {
        let bapi = bapi.clone();
        async move { (bapi.get("/v1/elections/primary").await.1["leader"]["value"] == "a").then_some(()) }
    })
    .await;
    // b campaigns and blocks; a's app stops renewing its lease.
    let bapi = b.api.clone();
    let campaign = tokio::spawn(async move {
        bapi.post(
            "/v1/elections/primary/campaign",
            json!({"data": "b", "timeout_ms": 60000}),
        )
        .await
    });
    let (s, lb) = campaign.await.unwrap();
    assert_eq!(s, 200, "{lb}");
    assert!(
        lb["term"].as_u64() > la["term"].as_u64(),
        "term must grow: {la} then {lb}"
    );
    let (_, cur) = a.api.get("/v1/elections/primary").await;
    assert_eq!(cur["leader"]["value"], "b", "{cur}");
    // a's lease and everything under it are gone; its sidecar lives on.
    let (s, v) = a.api.post(&format!("/v1/leases/{lease}/renew"), json!({})).await;
    assert_eq!((s, code(&v)), (404, "lease_not_found"), "{v}");
    assert_eq!(a.api.get("/v1/holdings").await.1["holdings"], json!([]));
    assert_eq!(a.api.get("/readyz").await.0, 200);
    let (s, v) = a
        .api
        .post("/v1/elections/primary/resign", json!({"holder": la["holder"]}))
        .await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_when_the_leaders_sidecar_dies() {
    let ens = Ensemble::start(3).await;
    let mut a = SidecarProc::start(
        &ens.connect_string(),
        &["--zone", "zone-a", "--session-timeout-ms", "2000"],
    )
    .await;
    let b = Sidecar::start(&ens.connect_string(), &["--zone", "zone-b"]).await;
    let (s, la) = a
        .api
        .post(
            "/v1/elections/primary/campaign",
            json!({"data": "a", "timeout_ms": 0}),
        )
        .await;
    assert_eq!(s, 200, "{la}");
    let mut watch = b.api.sse("/v1/elections/primary/watch").await;
    let first = watch.until(|v| v["leader"]["value"] == "a").await;
    let bapi = b.api.clone();
    let campaign = tokio::spawn(async move {
        bapi.post(
            "/v1/elections/primary/campaign",
            json!({"data": "b", "timeout_ms": 60000}),
        )
        .await
    });
    a.kill9();
    let (s, lb) = campaign.await.unwrap();
    assert_eq!(s, 200, "{lb}");
    assert!(
        lb["term"].as_u64() > la["term"].as_u64(),
        "term must grow: {la} then {lb}"
    );
    let next = watch.until(|v| v["leader"]["value"] == "b").await;
    assert!(next["leader"]["term"].as_u64() > first["leader"]["term"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memberships_converge_and_watchers_see_every_change() {
    let ens = Ensemble::start(3).await;
    let mut sidecars = Vec::new();
    for z in ["zone-a", "zone-b", "zone-c"] {
        sidecars.push(Sidecar::start(&ens.connect_string(), &["--zone", z]).await);
    }
    let mut sse = sidecars[2].api.sse("/v1/groups/web/watch").await;
    for (i, sc) in sidecars.iter().enumerate() {
        let (s, v) = sc
            .api
            .put(
                &format!("/v1/groups/web/members/node-{i}"),
                json!({"data": format!("10.0.0.{i}")}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = vec!["node-0".to_string(), "node-1".into(), "node-2".into()];
    for sc in &sidecars {
        let api = sc.api.clone();
        let all = all.clone();
        eventually("every sidecar to list all members", || {
            let api = api.clone();
            let all = all.clone();
            async move { (names(&api.get("/v1/groups/web/members").await.1) == all).then_some(()) }
        })
        .await;
    }
    let v = sse.until(|v| names(v) == all).await;
    assert_eq!(v["members"][1]["value"], "10.0.0.1", "{v}");
    // Long-poll on b with the current etag answers when a member leaves.
    let (_, cur) = sidecars[1].api.get("/v1/groups/web/members").await;
    let etag = cur["etag"].as_str().unwrap().to_string();
    let bapi = sidecars[1].api.clone();
    let poll = tokio::spawn(async move {
        bapi.get(&format!("/v1/groups/web/watch?etag={etag}&wait_ms=60000"))
            .await
    });
    let (s, _) = sidecars[0].api.delete("/v1/groups/web/members/node-0").await;
    assert_eq!(s, 200);
    let (s, v) = poll.await.unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), vec!["node-1".to_string(), "node-2".into()]);
    sse.until(|v| names(v) == ["node-1", "node-2"]).await;
    // A member of another sidecar cannot be removed through this one.
    let (s, v) = sidecars[0].api.delete("/v1/groups/web/members/node-1").await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_shutdown_releases_everything_it_holds() {
    let ens = Ensemble::start(3).await;
    let a = Sidecar::start(&ens.connect_string(), &[]).await;
    let b = Sidecar::start(&ens.connect_string(), &[]).await;
    assert_eq!(
        a.api
            .post("/v1/locks/job/acquire", json!({"timeout_ms": 0}))
            .await
            .0,
        200
    );
    assert_eq!(a.api.put("/v1/groups/g/members/a", json!({})).await.0, 200);
    let (s, v) = b
        .api
        .post("/v1/locks/job/acquire", json!({"timeout_ms": 0}))
        .await;
    assert_eq!((s, code(&v)), (409, "lock_busy"));
    a.stop().await;
    let (s, v) = b
        .api
        .post("/v1/locks/job/acquire", json!({"timeout_ms": 10000}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(b.api.get("/v1/groups/g/members").await.1["members"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_releases_everything_and_exits_cleanly() {
    let ens = Ensemble::start(3).await;
    let mut a = SidecarProc::start(&ens.connect_string(), &["--session-timeout-ms", "60000"]).await;
    let b = Sidecar::start(&ens.connect_string(), &[]).await;
    assert_eq!(
        a.api
            .post("/v1/locks/job/acquire", json!({"timeout_ms": 0}))
            .await
            .0,
        200
    );
    assert_eq!(
        a.api
            .post("/v1/elections/e/campaign", json!({"timeout_ms": 0}))
            .await
            .0,
        200
    );
    let mut watch = a.api.sse("/v1/groups/g/watch").await;
    watch.next().await;
    let status = a.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0; log:\n{}", a.log());
    // Released at once, not after the 60 s session timeout.
    let (s, v) = b
        .api
        .post("/v1/locks/job/acquire", json!({"timeout_ms": 20000}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = b
        .api
        .post("/v1/elections/e/campaign", json!({"timeout_ms": 20000}))
        .await;
    assert_eq!(s, 200, "{v}");
}

fn server_zone(r: &Value) -> String {
    r["server_zone"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_own_zone_keeps_locks_and_memberships_and_the_sidecar_returns() {
    let mut ens = Ensemble::start(3).await;
    let home = ens.zone(0).to_string();
    let sc = Sidecar::start(&ens.connect_string(), &["--zone", &home]).await;
    let r = sc.api.ready().await;
    assert_eq!(server_zone(&r), home, "connects to its own zone first: {r}");
    let (s, g) = sc
        .api
        .post("/v1/locks/home/acquire", json!({"timeout_ms": 0}))
        .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        sc.api
            .put("/v1/groups/g/members/me", json!({"data": "x"}))
            .await
            .0,
        200
    );
    // Every server of its zone dies.
    let t = std::time::Instant::now();
    ens.kill9(0);
    let api = sc.api.clone();
    let r = eventually("the sidecar to move to another zone", || {
        let api = api.clone();
        let home = home.clone();
        async move {
            let (s, r) = api.get("/readyz").await;
            (s == 200 && !server_zone(&r).is_empty() && server_zone(&r) != home).then_some(r)
        }
    })
    .await;
    eprintln!(
        "moved to {} {:?} after the kill (measured, not asserted)",
        server_zone(&r),
        t.elapsed()
    );
    // Same session: the lock and the membership are still ours.
    let (s, v) = sc
        .api
        .post(
            "/v1/locks/home/renew",
            json!({"holder": g["holder"], "token": g["token"]}),
        )
        .await;
    assert_eq!(s, 200, "lock lost in the failover: {v}");
    let (_, m) = sc.api.get("/v1/groups/g/members").await;
    assert_eq!(m["members"][0]["name"], "me", "{m}");
    let other = Sidecar::start(&ens.connect_string(), &["--zone", "zone-b"]).await;
    let (s, v) = other
        .api
        .post("/v1/locks/home/acquire", json!({"timeout_ms": 0}))
        .await;
    assert_eq!((s, code(&v)), (409, "lock_busy"), "{v}");
    // The zone comes back: the sidecar returns home, still holding.
    ens.spawn(0);
    ens.wait_serving(0).await;
    let t = std::time::Instant::now();
    let api = sc.api.clone();
    eventually("the sidecar to return to its own zone", || {
        let api = api.clone();
        let home = home.clone();
        async move {
            let (s, r) = api.get("/readyz").await;
            (s == 200 && server_zone(&r) == home).then_some(())
        }
    })
    .await;
    eprintln!(
        "returned home {:?} after its zone served again (measured, not asserted)",
        t.elapsed()
    );
    let (s, v) = sc
        .api
        .post(
            "/v1/locks/home/renew",
            json!({"holder": g["holder"], "token": g["token"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_zookeeper_proxy_prefers_the_own_zone_and_fails_over_keeping_the_session() {
    let mut ens = Ensemble::start(3).await;
    let home = ens.zone(0).to_string();
    let sc = Sidecar::start(
        &ens.connect_string(),
        &["--zone", &home, "--zk-proxy", "127.0.0.1:0"],
    )
    .await;
    let proxy = sc.running().proxy_addr.expect("proxy address");
    // An ordinary ZooKeeper client that knows only the proxy.
    let c = zk_client(&proxy.to_string()).await;
    let session = c.session_id();
    c.create(
        "/through-proxy",
        b"1",
        &zonekeeper_client::acl_open_unsafe(),
        zonekeeper_client::CreateMode::Ephemeral,
    )
    .await
    .unwrap();
    // The proxy piped it to the own zone's server: that server knows the session.
    let cons = common::four_letter(ens.addr(0), "cons").await;
    assert!(
        cons.contains(&format!("sid=0x{session:x}")),
        "not on the own-zone server: {cons}"
    );
    let t = std::time::Instant::now();
    ens.kill9(0);
    // The client reconnects through the proxy to another zone; same session.
    eventually("the proxied client to reconnect", || {
        let c = c.clone();
        async move { c.exists("/through-proxy").await.ok().flatten().map(|_| ()) }
    })
    .await;
    eprintln!(
        "proxied client served again {:?} after the kill (measured, not asserted)",
        t.elapsed()
    );
    assert_eq!(c.session_id(), session, "the session must survive the failover");
    let stat = c.exists("/through-proxy").await.unwrap().expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, session);
}
