//! The HTTP API against one real server process: every area's happy path,
//! and bad requests (illegal names, malformed JSON, oversized bodies, wrong
//! holder or token, unknown routes) get the documented 4xx JSON error and
//! change nothing (docs/sidecar.md, "Errors").

mod common;

use common::{zk_client, Ensemble, Sidecar};
use serde_json::{json, Value};

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

async fn setup() -> (Ensemble, Sidecar) {
    let ens = Ensemble::start(1).await;
    let sc = Sidecar::start(&ens.connect_string(), &["--max-body-bytes", "2048"]).await;
    (ens, sc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_4xx_and_change_nothing() {
    let (ens, sc) = setup().await;
    let api = &sc.api;
    // Illegal names in every area: 400 invalid_name.
    for (method, path, body) in [
        ("POST", "/v1/locks/a%2Fb/acquire", json!({"timeout_ms": 0})),
        ("POST", "/v1/locks/bad%20name/acquire", json!({})),
        ("POST", "/v1/semaphores/x%3Ay/acquire", json!({"permits": 1})),
        ("PUT", "/v1/groups/g%2A/members/m", json!({})),
        ("PUT", "/v1/groups/g/members/..", json!({})),
        ("POST", "/v1/elections/%C3%BC/campaign", json!({"timeout_ms": 0})),
        ("PUT", "/v1/kv/k%24", json!({"value": "v"})),
        ("PUT", "/v1/barriers/b%2Fc", json!({})),
    ] {
        let (s, v) = api.call(method, path, Some(body)).await;
        assert_eq!((s, code(&v)), (400, "invalid_name"), "{method} {path}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("use 1-128 characters"),
            "{v}"
        );
    }
    // Malformed JSON, wrong types, unknown fields.
    let (s, v) = api.raw("PUT", "/v1/kv/k", b"{\"value\": ".to_vec(), &[]).await;
    assert_eq!((s, code(&v)), (400, "malformed_json"), "{v}");
    let (s, v) = api
        .raw(
            "POST",
            "/v1/locks/l/acquire",
            b"[1,2".to_vec(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!((s, code(&v)), (400, "malformed_json"), "{v}");
    let (s, v) = api.put("/v1/kv/k", json!({"value": 5})).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
    let (s, v) = api.post("/v1/locks/l/acquire", json!({"timeout": 5})).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
    let (s, v) = api
        .post("/v1/locks/l/acquire", json!({"timeout_ms": 10_000_000}))
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
    // Oversized body: 413 body_too_large.
    let big = json!({"value": "x".repeat(4096)});
    let (s, v) = api.put("/v1/kv/big", big).await;
    assert_eq!((s, code(&v)), (413, "body_too_large"), "{v}");
    // Unknown route, wrong method: JSON too.
    let (s, v) = api.get("/v1/nope").await;
    assert_eq!((s, code(&v)), (404, "route_not_found"), "{v}");
    let (s, v) = api.call("PATCH", "/v1/kv/k", None).await;
    assert_eq!((s, code(&v)), (405, "method_not_allowed"), "{v}");
    // Unknown lease.
    let (s, v) = api
        .post(
            "/v1/locks/l/acquire",
            json!({"lease": "lease-nope", "timeout_ms": 0}),
        )
        .await;
    assert_eq!((s, code(&v)), (404, "lease_not_found"), "{v}");
    // Nothing reached the ensemble: the sidecar's root does not exist.
    let c = zk_client(&ens.connect_string()).await;
    assert_eq!(
        c.exists("/zonekeeper").await.unwrap(),
        None,
        "a bad request changed the tree"
    );
    assert_eq!(api.get("/v1/holdings").await.1["holdings"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_holder_or_token_is_refused_and_the_lock_stays_held() {
    let (ens, sc) = setup().await;
    let other = Sidecar::start(&ens.connect_string(), &[]).await;
    let api = &sc.api;
    let (s, g) = api
        .post("/v1/locks/db/acquire", json!({"timeout_ms": 0, "data": "app-1"}))
        .await;
    assert_eq!(s, 200, "{g}");
    let holder = g["holder"].as_str().unwrap().to_string();
    let token = g["token"].as_u64().unwrap();
    assert!(token > 0);
    // Wrong holder id: 409 not_holder. Wrong token: 403 token_mismatch.
    let (s, v) = api
        .post(
            "/v1/locks/db/release",
            json!({"holder": "write-x-0000000001", "token": token}),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "{v}");
    let (s, v) = api
        .post(
            "/v1/locks/db/release",
            json!({"holder": holder, "token": token + 1}),
        )
        .await;
    assert_eq!((s, code(&v)), (403, "token_mismatch"), "{v}");
    // Another sidecar cannot release it either (it does not hold it).
    let (s, v) = other
        .api
        .post("/v1/locks/db/release", json!({"holder": holder, "token": token}))
        .await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "{v}");
    // Still held: inspect shows it, a try from the other sidecar is busy.
    let (s, v) = other.api.get("/v1/locks/db").await;
    assert_eq!(s, 200);
    assert_eq!(v["holders"][0]["holder"], holder.as_str(), "{v}");
    assert_eq!(v["holders"][0]["value"], "app-1", "{v}");
    assert_eq!(v["holders"][0]["mode"], "exclusive", "{v}");
    let (s, v) = other
        .api
        .post("/v1/locks/db/acquire", json!({"timeout_ms": 0}))
        .await;
    assert_eq!((s, code(&v)), (409, "lock_busy"), "{v}");
    // Renew confirms; the right release works; then the other gets it with
    // a larger token.
    let (s, v) = api.post("/v1/locks/db/renew", json!({"holder": holder})).await;
    assert_eq!((s, v["token"].as_u64()), (200, Some(token)), "{v}");
    let (s, v) = api
        .post("/v1/locks/db/release", json!({"holder": holder, "token": token}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .post("/v1/locks/db/release", json!({"holder": holder, "token": token}))
        .await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "released twice: {v}");
    let (s, v) = other
        .api
        .post("/v1/locks/db/acquire", json!({"timeout_ms": 5000}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["token"].as_u64().unwrap() > token,
        "fencing token must grow: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_versions_and_compare_and_set() {
    let (_ens, sc) = setup().await;
    let api = &sc.api;
    let (s, v) = api.get("/v1/kv/color").await;
    assert_eq!((s, code(&v)), (404, "key_not_found"));
    let (s, v) = api
        .put("/v1/kv/color", json!({"value": "red", "create_only": true}))
        .await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(0)), "{v}");
    let (s, v) = api
        .put("/v1/kv/color", json!({"value": "blue", "create_only": true}))
        .await;
    assert_eq!((s, code(&v)), (409, "version_conflict"), "{v}");
    let (s, v) = api
        .put("/v1/kv/color", json!({"value": "green", "expected_version": 0}))
        .await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(1)), "{v}");
    let (s, v) = api
        .put("/v1/kv/color", json!({"value": "stale", "expected_version": 0}))
        .await;
    assert_eq!((s, code(&v)), (409, "version_conflict"), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("current version is 1"),
        "{v}"
    );
    let (s, v) = api.get("/v1/kv/color").await;
    assert_eq!(
        (s, &v["value"], v["version"].as_i64()),
        (200, &json!("green"), Some(1)),
        "{v}"
    );
    // Binary values travel as base64.
    let (s, _) = api.put("/v1/kv/bin", json!({"value_base64": "/wA="})).await;
    assert_eq!(s, 200);
    assert_eq!(api.get("/v1/kv/bin").await.1["value_base64"], "/wA=");
    let (s, v) = api.delete("/v1/kv/color?expected_version=0").await;
    assert_eq!((s, code(&v)), (409, "version_conflict"), "{v}");
    let (s, _) = api.delete("/v1/kv/color?expected_version=1").await;
    assert_eq!(s, 200);
    assert_eq!(api.get("/v1/kv/color").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_locks_semaphores_barriers_and_leases() {
    let (_ens, sc) = setup().await;
    let api = &sc.api;
    // Shared holders together; exclusive waits.
    let (s1, r1) = api
        .post(
            "/v1/locks/cfg/acquire",
            json!({"mode": "shared", "timeout_ms": 0}),
        )
        .await;
    let (s2, r2) = api
        .post(
            "/v1/locks/cfg/acquire",
            json!({"mode": "shared", "timeout_ms": 0}),
        )
        .await;
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    let (s, v) = api
        .post(
            "/v1/locks/cfg/acquire",
            json!({"mode": "exclusive", "timeout_ms": 0}),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "lock_busy"), "{v}");
    assert_eq!(
        api.get("/v1/locks/cfg").await.1["holders"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Semaphore of 2.
    let (a, _) = api
        .post(
            "/v1/semaphores/slots/acquire",
            json!({"permits": 2, "timeout_ms": 0}),
        )
        .await;
    let (b, pb) = api
        .post(
            "/v1/semaphores/slots/acquire",
            json!({"permits": 2, "timeout_ms": 0}),
        )
        .await;
    let (c, vc) = api
        .post(
            "/v1/semaphores/slots/acquire",
            json!({"permits": 2, "timeout_ms": 0}),
        )
        .await;
    assert_eq!((a, b, c, code(&vc)), (200, 200, 409, "lock_busy"), "{vc}");
    let (s, _) = api
        .post(
            "/v1/semaphores/slots/release",
            json!({"holder": pb["holder"], "token": pb["token"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.post(
            "/v1/semaphores/slots/acquire",
            json!({"permits": 2, "timeout_ms": 0})
        )
        .await
        .0,
        200
    );
    // Barrier.
    assert_eq!(api.put("/v1/barriers/deploy", json!({})).await.0, 200);
    let (s, v) = api
        .post("/v1/barriers/deploy/wait", json!({"timeout_ms": 0}))
        .await;
    assert_eq!((s, code(&v)), (409, "timed_out"), "{v}");
    assert_eq!(api.delete("/v1/barriers/deploy").await.0, 200);
    assert_eq!(
        api.post("/v1/barriers/deploy/wait", json!({"timeout_ms": 1000}))
            .await
            .0,
        200
    );
    // Leases: revoking releases what was taken under it.
    let (s, l) = api.post("/v1/leases", json!({"ttl_ms": 60000})).await;
    assert_eq!(s, 201, "{l}");
    let lease = l["lease"].as_str().unwrap();
    let (s, v) = api
        .put("/v1/groups/g/members/m1", json!({"lease": lease, "data": "d"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        api.post(&format!("/v1/leases/{lease}/renew"), json!({})).await.0,
        200
    );
    let (s, v) = api.delete(&format!("/v1/leases/{lease}")).await;
    assert_eq!((s, v["released"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(api.get("/v1/groups/g/members").await.1["members"], json!([]));
    let (s, v) = api.post(&format!("/v1/leases/{lease}/renew"), json!({})).await;
    assert_eq!((s, code(&v)), (404, "lease_not_found"), "{v}");
    let (s, v) = api.post("/v1/leases", json!({"ttl_ms": 1})).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_routes() {
    let (_ens, sc) = setup().await;
    let api = &sc.api;
    assert_eq!(api.get("/healthz").await, (200, json!({"status": "ok"})));
    let r = api.ready().await;
    assert_eq!(r["session"], "connected", "{r}");
    let (s, doc) = api.get("/openapi.json").await;
    assert_eq!(s, 200);
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc, checked_in,
        "GET /openapi.json differs from sidecar/openapi.json"
    );
    let _ = api.get("/v1/kv/x").await;
    let m = common::Api::new(api.addr);
    let req_text = {
        use http_body_util::BodyExt;
        let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Full<bytes::Bytes>>();
        let resp = c
            .request(
                http::Request::get(format!("http://{}/metrics", m.addr))
                    .body(Default::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    assert!(
        req_text.contains(
            "zonekeeper_sidecar_http_requests_total{method=\"GET\",route=\"/v1/kv/{key}\",status=\"404\"} 1"
        ),
        "{req_text}"
    );
    assert!(
        req_text.contains("zonekeeper_sidecar_session_connected 1"),
        "{req_text}"
    );
}

#[test]
fn the_binary_refuses_non_loopback_addresses() {
    for args in [["--listen", "0.0.0.0:7181"], ["--zk-proxy", "192.0.2.1:2181"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zonekeeper-sidecar"))
            .args(["--servers", "127.0.0.1:1@zone-a"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must be refused");
        assert!(err.contains("not a loopback address"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_session_expiry_holdings_are_forgotten_and_a_new_session_serves() {
    let (ens, sc) = setup().await;
    let api = &sc.api;
    let (s, g) = api.post("/v1/locks/l/acquire", json!({"timeout_ms": 0})).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(api.put("/v1/groups/g/members/m", json!({})).await.0, 200);
    let old = sc.running().app.client();
    let old_sid = format!("0x{:x}", old.session_id());
    // The ensemble ends the session behind the sidecar's back.
    common::zk::close_session_behind_its_back(ens.addr(0), old.session_id(), old.session_password()).await;
    let r = common::eventually("a new session", || async {
        let (s, r) = api.get("/readyz").await;
        (s == 200 && r["session_id"] != old_sid.as_str()).then_some(r)
    })
    .await;
    assert_eq!(r["session"], "connected");
    // What the old session held is gone, and the sidecar says so.
    let (s, v) = api
        .post("/v1/locks/l/renew", json!({"holder": g["holder"]}))
        .await;
    assert_eq!((s, code(&v)), (409, "not_holder"), "{v}");
    assert_eq!(api.get("/v1/holdings").await.1["holdings"], json!([]));
    assert_eq!(api.get("/v1/groups/g/members").await.1["members"], json!([]));
    // The new session works.
    let (s, v) = api.post("/v1/locks/l/acquire", json!({"timeout_ms": 0})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["token"].as_u64() > g["token"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_acquire_whose_caller_hangs_up_leaves_nothing_held() {
    use tokio::io::AsyncWriteExt;
    let (ens, a) = setup().await;
    let b = Sidecar::start(&ens.connect_string(), &[]).await;
    let (s, g) = a.api.post("/v1/locks/l/acquire", json!({"timeout_ms": 0})).await;
    assert_eq!(s, 200, "{g}");
    // A caller of b asks to wait a minute, then hangs up.
    let body = json!({"timeout_ms": 60000}).to_string();
    let mut raw = tokio::net::TcpStream::connect(b.api.addr).await.unwrap();
    let req = format!(
        "POST /v1/locks/l/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw.write_all(req.as_bytes()).await.unwrap();
    common::eventually("b's attempt to queue", || async {
        (a.api.get("/v1/locks/l").await.1["waiting"] == 1).then_some(())
    })
    .await;
    drop(raw);
    // Its queued attempt is withdrawn, so a's release does not hand the
    // lock to nobody: b's next caller gets it right away.
    common::eventually("the abandoned attempt to be withdrawn", || async {
        (a.api.get("/v1/locks/l").await.1["waiting"] == 0).then_some(())
    })
    .await;
    let (s, _) = a
        .api
        .post("/v1/locks/l/release", json!({"holder": g["holder"]}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = b.api.post("/v1/locks/l/acquire", json!({"timeout_ms": 0})).await;
    assert_eq!(s, 200, "the abandoned attempt kept the lock: {v}");
    assert_eq!(
        b.api.get("/v1/holdings").await.1["holdings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
