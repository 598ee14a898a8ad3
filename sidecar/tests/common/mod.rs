//! Shared setup for the sidecar's integration tests: the client crate's
//! harness (an ensemble of real `zonekeeper-server` processes in zones,
//! deadline-bounded waits), sidecars in this process ([`Sidecar`]) or as
//! processes of the real binary ([`SidecarProc`]), and a small HTTP client
//! (real TCP, hyper) that returns status and JSON.
#![allow(dead_code)]

#[path = "../../../client/tests/common/mod.rs"]
pub mod zk;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use zonekeeper_sidecar::app::{self, Running};
use zonekeeper_sidecar::config::{Cli, Config};

#[allow(unused_imports)]
pub use zk::{eventually, within, Ensemble, DEADLINE};

type Http = HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn http() -> Http {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

/// A checked sidecar config for `servers` (loopback port 0).
pub fn config(servers: &str, extra: &[&str]) -> Config {
    let mut args = vec![
        "zonekeeper-sidecar",
        "--servers",
        servers,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let cli = <Cli as clap::Parser>::try_parse_from(args).expect("sidecar flags");
    Config::from_cli(&cli).expect("sidecar config")
}

/// An HTTP endpoint of a sidecar.
#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    http: Http,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        Api { addr, http: http() }
    }

    /// `method path` with a JSON body (or none); status and JSON answer
    /// (`Value::Null` if the answer is not JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, bytes, &[("content-type", "application/json")])
            .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = within(&format!("{method} {path}"), self.http.request(req))
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// Opens an SSE stream and returns a reader of its `snapshot` events.
    pub async fn sse(&self, path: &str) -> Sse {
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("http://{}{path}", self.addr))
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = within("opening an SSE stream", self.http.request(req))
            .await
            .expect("SSE request");
        assert_eq!(resp.status().as_u16(), 200, "SSE {path}");
        Sse {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// Waits until `/readyz` is 200; its JSON.
    pub async fn ready(&self) -> Value {
        eventually("the sidecar to be ready", || async {
            let (s, v) = self.get("/readyz").await;
            (s == 200).then_some(v)
        })
        .await
    }
}

pub struct Sse {
    body: hyper::body::Incoming,
    buf: String,
}

impl Sse {
    /// The next `snapshot` event's data.
    pub async fn next(&mut self) -> Value {
        within("the next SSE event", async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let event: String = self.buf.drain(..end + 2).collect();
                    let is_snapshot = event.lines().any(|l| l == "event: snapshot");
                    let data: String = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                        .collect();
                    if event.lines().any(|l| l == "event: error") {
                        panic!("SSE error event: {data}");
                    }
                    if is_snapshot {
                        return serde_json::from_str(&data).expect("snapshot JSON");
                    }
                    continue;
                }
                let frame = self
                    .body
                    .frame()
                    .await
                    .expect("SSE stream ended")
                    .expect("SSE frame");
                if let Ok(data) = frame.into_data() {
                    self.buf.push_str(&String::from_utf8_lossy(&data));
                }
            }
        })
        .await
    }

    /// Skips events until one satisfies `pred`.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }
}

/// A sidecar running in this process (its own session).
pub struct Sidecar {
    running: Option<Running>,
    pub api: Api,
}

impl Sidecar {
    pub async fn start(servers: &str, extra: &[&str]) -> Sidecar {
        zk::init_tracing();
        let running = within("the sidecar to start", app::start(config(servers, extra)))
            .await
            .expect("sidecar starts");
        let api = Api::new(running.http_addr);
        Sidecar {
            running: Some(running),
            api,
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// Clean shutdown (as on SIGTERM): releases everything, closes the session.
    pub async fn stop(mut self) {
        let r = self.running.take().unwrap();
        within("the sidecar to stop", r.shutdown()).await;
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.abandon();
        }
    }
}

/// A `zonekeeper-sidecar` process (the real binary), killed on drop.
pub struct SidecarProc {
    child: Option<Child>,
    pub api: Api,
    log: tempfile::NamedTempFile,
}

impl SidecarProc {
    pub async fn start(servers: &str, extra: &[&str]) -> SidecarProc {
        let log = tempfile::NamedTempFile::new().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zonekeeper-sidecar"))
            .args(["--servers", servers, "--listen", &addr.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.reopen().unwrap()))
            .stderr(Stdio::from(log.reopen().unwrap()))
            .env_remove("ZONE")
            .spawn()
            .expect("spawning zonekeeper-sidecar");
        let p = SidecarProc {
            child: Some(child),
            api: Api::new(addr),
            log,
        };
        eventually("the sidecar process to be ready", || async {
            let ok = tokio::time::timeout(
                Duration::from_secs(1),
                p.api.http.request(
                    http::Request::get(format!("http://{addr}/readyz"))
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                ),
            )
            .await;
            matches!(ok, Ok(Ok(ref r)) if r.status() == 200).then_some(())
        })
        .await;
        p
    }

    /// `kill -9`: nothing is released; the session expires on its own.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, and waits (polling, bounded) for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        eventually("the sidecar to exit after SIGTERM", || {
            let r = child.try_wait().expect("polling the child");
            async move { r }
        })
        .await
    }
}

impl Drop for SidecarProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sidecar log ---\n{}", self.log());
        }
        self.kill9();
    }
}

/// A plain client of the ensemble, to look at what the sidecar did.
pub async fn zk_client(servers: &str) -> zonekeeper_client::Client {
    let cfg = zonekeeper_client::ClientConfig::new(servers.parse().unwrap());
    within("a client to connect", zonekeeper_client::Client::connect(cfg))
        .await
        .expect("client connects")
}

/// A four-letter word's answer from `addr` (empty if it does not answer).
pub async fn four_letter(addr: SocketAddr, word: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(word.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}
