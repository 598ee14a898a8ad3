//! The client of the servers' admin HTTP API (docs/admin-api.md): reads
//! `/v1/status` and makes the membership changes the planner asks for.
//!
//! Owns: the contract types as the operator reads them ([`ServerStatus`],
//! [`EnsembleMember`], [`NewMember`]), the one error type [`AdminError`],
//! the request timeout, and where a member's admin port is ([`Endpoints`]).
//!
//! Must not: decide anything (plan.rs decides, controller.rs calls this).
//! Every call is bounded by [`AdminClient::timeout`]: a hung server must not
//! hang a reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::desired::{Names, ADMIN_PORT};

/// How long one admin request may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `/v1/status`, the fields the operator relies on (docs/admin-api.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerStatus {
    pub id: i64,
    #[serde(default)]
    pub zone: String,
    /// `leader`, `follower`, `observer` or `standalone`.
    pub role: String,
    /// The leader this server knows of; `None` while an election runs or
    /// while a joiner has not been added yet.
    pub leader_id: Option<i64>,
    pub last_zxid: i64,
    /// The ensemble as this server knows it (the leader's view is the truth).
    #[serde(default)]
    pub members: Vec<EnsembleMember>,
    #[serde(default)]
    pub raft_commit_index: u64,
    #[serde(default)]
    pub raft_applied_index: u64,
    /// Whether the server serves clients (as `/readyz`).
    #[serde(default)]
    pub ready: bool,
}

/// One member in `/v1/status` `members` and `/v1/members`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EnsembleMember {
    pub id: i64,
    #[serde(default)]
    pub zone: String,
    /// `voter` or `observer`.
    pub role: String,
    #[serde(default)]
    pub client_addr: String,
    #[serde(default)]
    pub peer_addr: String,
}

/// The body of `POST /v1/members`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMember {
    pub id: i64,
    pub zone: String,
    pub peer_addr: String,
    pub client_addr: String,
    /// Always `observer`: voters join as observers and are promoted once
    /// caught up (the server refuses a voter that is not replicating yet).
    pub role: String,
}

/// Why an admin call failed. The controller reports it (Warning event,
/// failure metric, status) and retries on a later pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdminError {
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    /// The server answered with an error (`{"error": {"code", "message"}}`).
    #[error("{url}: {status} {code}: {message}")]
    Refused {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{url}: unexpected answer: {message}")]
    BadResponse { url: String, message: String },
}

/// Where members' admin ports are.
#[derive(Debug, Clone, Default)]
pub enum Endpoints {
    /// `<pod>.<cluster>-peers.<namespace>.svc:8080`, through cluster DNS.
    #[default]
    Dns,
    /// Pod name to `host:port` (tests; port-forwarded setups).
    Fixed(BTreeMap<String, String>),
}

/// The admin API client.
#[derive(Clone)]
pub struct AdminClient {
    http: Client<HttpConnector, Full<Bytes>>,
    pub timeout: Duration,
    pub endpoints: Endpoints,
}

impl Default for AdminClient {
    fn default() -> Self {
        AdminClient::new(DEFAULT_TIMEOUT, Endpoints::Dns)
    }
}

impl AdminClient {
    pub fn new(timeout: Duration, endpoints: Endpoints) -> AdminClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        AdminClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            endpoints,
        }
    }

    /// `host:port` of the admin port of `pod` (member of zone `zone`,
    /// ordinal `ordinal`).
    pub fn endpoint(&self, names: &Names, zone: &str, ordinal: i32) -> String {
        let pod = names.pod(zone, ordinal);
        match &self.endpoints {
            Endpoints::Dns => format!("{}:{ADMIN_PORT}", names.pod_host(zone, ordinal)),
            Endpoints::Fixed(map) => map
                .get(&pod)
                .cloned()
                .unwrap_or_else(|| format!("{pod}:{ADMIN_PORT}")),
        }
    }

    /// `GET /v1/status`.
    pub async fn status(&self, endpoint: &str) -> Result<ServerStatus, AdminError> {
        let (url, body) = self.call(endpoint, http::Method::GET, "/v1/status", None).await?;
        serde_json::from_slice(&body).map_err(|e| AdminError::BadResponse {
            url,
            message: e.to_string(),
        })
    }

    /// `POST /v1/members`, on the leader.
    pub async fn add_member(&self, leader: &str, member: &NewMember) -> Result<(), AdminError> {
        let body = serde_json::to_vec(member).expect("a member serializes");
        self.call(leader, http::Method::POST, "/v1/members", Some(body))
            .await
            .map(drop)
    }

    /// `POST /v1/members/{id}/promote`, on the leader.
    pub async fn promote(&self, leader: &str, id: i64) -> Result<(), AdminError> {
        let path = format!("/v1/members/{id}/promote");
        self.call(leader, http::Method::POST, &path, None).await.map(drop)
    }

    /// `DELETE /v1/members/{id}`, on the leader.
    pub async fn remove(&self, leader: &str, id: i64) -> Result<(), AdminError> {
        let path = format!("/v1/members/{id}");
        self.call(leader, http::Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    /// `POST /v1/leader` `{"id": to}`, on the leader.
    pub async fn transfer_leader(&self, leader: &str, to: i64) -> Result<(), AdminError> {
        let body = serde_json::to_vec(&serde_json::json!({ "id": to })).expect("json");
        self.call(leader, http::Method::POST, "/v1/leader", Some(body))
            .await
            .map(drop)
    }

    async fn call(
        &self,
        endpoint: &str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(String, Bytes), AdminError> {
        let url = format!("http://{endpoint}{path}");
        let mut request = http::Request::builder().method(method).uri(&url);
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| AdminError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| AdminError::Unreachable {
                    url: url.clone(),
                    message: format!("{e:?}"),
                })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| AdminError::Unreachable {
                    url: url.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, AdminError>((status, bytes))
        };
        let (status, bytes) =
            tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| AdminError::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                })??;
        if status.is_success() {
            return Ok((url, bytes));
        }
        let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(AdminError::Refused {
            url,
            status: status.as_u16(),
            code: error["error"]["code"].as_str().unwrap_or("unknown").to_string(),
            message: error["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        })
    }
}
