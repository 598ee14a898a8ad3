//! Admin HTTP: health, readiness, Prometheus metrics, status and members.
//!
//! Owns: the routes (`/healthz`, `/readyz`, `/metrics`, `/v1/status`,
//! `/v1/members`; ARCHITECTURE.md "Contracts"), their JSON shapes, the one
//! error type [`ApiError`] and the listener loop [`serve`] with graceful
//! shutdown. [`router`] is a plain `Router`, so tests call
//! `router(state).oneshot(request)` without a socket.
//!
//! Must not: change server state. It only reads through [`StatusSource`] and
//! [`Metrics`]; membership changes answer 501 until the ensemble work adds
//! them.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::consensus::Proposer;
use crate::membership::{MemberInfo, MembershipChange, MembershipError};
use crate::metrics::{self, Metrics};
use crate::status::{MemberStatus, ServerStats, ServerStatus, StatusSource};

/// What the handlers read from.
#[derive(Clone)]
pub struct AdminState {
    /// The server's read-only view.
    pub source: Arc<dyn StatusSource>,
    /// The server's Prometheus instruments.
    pub metrics: Arc<Metrics>,
    /// Membership changes go to the consensus task; `None` for a
    /// standalone server.
    pub membership: Option<Proposer>,
}

/// Every error the admin API returns, as
/// `{"error": {"code": "...", "message": "..."}}` with a matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server is up but not serving clients (`/readyz`, 503).
    #[error("not ready: {reason}")]
    NotReady {
        /// Why, e.g. no leader elected yet.
        reason: String,
    },
    /// No such route or resource (404).
    #[error("{what} not found")]
    NotFound {
        /// The path or resource asked for.
        what: String,
    },
    /// The route exists but not with this method (405).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
    },
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Membership changes on a standalone server (501).
    #[error(
        "this server is standalone: membership changes need an ensemble; start the servers \
         with a `members` list (an ensemble of one is a list with only this server)"
    )]
    MembershipChangeUnavailable,
    /// A membership change was refused or did not complete.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MembershipChangeUnavailable => StatusCode::NOT_IMPLEMENTED,
            ApiError::Membership(e) => match e {
                MembershipError::Unknown(_) => StatusCode::NOT_FOUND,
                MembershipError::Invalid(_) => StatusCode::BAD_REQUEST,
                MembershipError::Aborted => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            },
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotReady { .. } => "not_ready",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MembershipChangeUnavailable => "not_implemented",
            ApiError::Membership(e) => match e {
                MembershipError::NotLeader { .. } => "not_leader",
                MembershipError::InProgress => "change_in_progress",
                MembershipError::Exists(_) => "member_exists",
                MembershipError::Unknown(_) => "unknown_member",
                MembershipError::NotObserver(_) => "not_observer",
                MembershipError::NotCaughtUp { .. } => "not_caught_up",
                MembershipError::WouldLoseQuorum(_) => "would_lose_quorum",
                MembershipError::Invalid(_) => "invalid_member",
                MembershipError::Aborted => "aborted",
            },
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        (self.status(), Json(body)).into_response()
    }
}

/// `/v1/status`: the [`ServerStatus`] fields at top level (`id`, `zone`,
/// `role`, `leader_id`, `last_zxid`, `members`, …) plus readiness and stats.
#[derive(Serialize)]
struct StatusBody {
    #[serde(flatten)]
    status: ServerStatus,
    ready: bool,
    session_count: usize,
    stats: ServerStats,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/members", get(members).post(add_member))
        .route("/v1/members/{id}", get(member).delete(remove_member))
        .route("/v1/members/{id}/promote", post(promote_member))
        .route("/v1/leader", post(transfer_leader))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` completes, then
/// finishes in-flight requests and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin HTTP listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Liveness: 200 while the process can answer at all.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 while serving clients, else 503 saying why.
async fn readyz(State(state): State<AdminState>) -> Result<&'static str, ApiError> {
    if state.source.is_ready() {
        return Ok("ok");
    }
    let st = state.source.status();
    let reason = match st.leader_id {
        None => format!(
            "no leader elected yet (role {}, raft term {})",
            st.role, st.raft_term
        ),
        Some(leader) => format!(
            "catching up with leader {leader}: applied index {} of committed {}",
            st.raft_applied_index, st.raft_commit_index
        ),
    };
    Err(ApiError::NotReady { reason })
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(state.source.as_ref()),
    )
}

async fn status(State(state): State<AdminState>) -> Json<StatusBody> {
    let src = state.source.as_ref();
    Json(StatusBody {
        status: src.status(),
        ready: src.is_ready(),
        session_count: src.session_count(),
        stats: src.stats(),
    })
}

async fn members(State(state): State<AdminState>) -> Json<Vec<MemberStatus>> {
    Json(state.source.status().members)
}

async fn member(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<MemberStatus>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("member id \"{id}\" is not a number")))?;
    state
        .source
        .status()
        .members
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or(ApiError::NotFound {
            what: format!("member {id}"),
        })
}

fn membership(state: &AdminState) -> Result<&Proposer, ApiError> {
    state
        .membership
        .as_ref()
        .ok_or(ApiError::MembershipChangeUnavailable)
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("member id {id:?} is not a number")))
}

/// `POST /v1/members` with a member (`id`, `zone`, `peer_addr`,
/// `client_addr`, `role`): adds it; answers the new member list once the
/// change is applied. Add voters as observers first and promote them once
/// they have caught up (a voter that is not replicating yet is refused).
async fn add_member(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<Json<Vec<MemberInfo>>, ApiError> {
    let proposer = membership(&state)?;
    let member: MemberInfo = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected a member as JSON: {e}")))?;
    Ok(Json(
        proposer.change_membership(MembershipChange::Add(member)).await?,
    ))
}

/// `POST /v1/members/{id}/promote`: an observer becomes a voter.
async fn promote_member(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<MemberInfo>>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(
        membership(&state)?
            .change_membership(MembershipChange::Promote(id))
            .await?,
    ))
}

/// `DELETE /v1/members/{id}`: the member leaves the ensemble.
async fn remove_member(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<MemberInfo>>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(
        membership(&state)?
            .change_membership(MembershipChange::Remove(id))
            .await?,
    ))
}

#[derive(serde::Deserialize)]
struct TransferRequest {
    id: u64,
}

/// `POST /v1/leader` with `{"id": N}`: hands leadership to voter N.
async fn transfer_leader(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let proposer = membership(&state)?;
    let req: TransferRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!(r#"expected {{"id": N}}: {e}"#)))?;
    proposer.transfer_leader(req.id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound {
        what: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fake::FakeStatus;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn state_with(fake: FakeStatus) -> (AdminState, Arc<FakeStatus>) {
        let fake = Arc::new(fake);
        let state = AdminState {
            source: fake.clone(),
            metrics: Arc::new(Metrics::new()),
            membership: None,
        };
        (state, fake)
    }

    async fn call(state: &AdminState, method: &str, uri: &str) -> (StatusCode, String, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = router(state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).expect("JSON body")
    }

    /// ARCHITECTURE.md "Contracts": `/healthz` is 200 while the process is
    /// up, ready or not.
    #[tokio::test]
    async fn healthz_is_ok_even_when_not_ready() {
        let (state, fake) = state_with(FakeStatus::standalone());
        fake.set_ready(false);
        let (code, _, body) = call(&state, "GET", "/healthz").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "ok");
    }

    /// `/readyz`: 200 when serving, 503 with a JSON reason otherwise.
    #[tokio::test]
    async fn readyz_follows_is_ready() {
        let (state, fake) = state_with(FakeStatus::leader_of_three());
        let (code, _, body) = call(&state, "GET", "/readyz").await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "ok"));

        fake.set_ready(false);
        fake.with_status(|s| s.leader_id = None);
        let (code, ctype, body) = call(&state, "GET", "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ctype, "application/json");
        let v = json(&body);
        assert_eq!(v["error"]["code"], "not_ready");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no leader elected yet"));

        fake.with_status(|s| {
            s.leader_id = Some(2);
            s.raft_applied_index = 3;
            s.raft_commit_index = 9;
        });
        let (_, _, body) = call(&state, "GET", "/readyz").await;
        assert!(json(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("catching up with leader 2: applied index 3 of committed 9"));
    }

    /// `/metrics`: Prometheus text format 0.0.4.
    #[tokio::test]
    async fn metrics_endpoint_serves_prometheus_text() {
        let (state, _) = state_with(FakeStatus::standalone());
        state.metrics.observe_request("getData", "OK", 0.001);
        let (code, ctype, body) = call(&state, "GET", "/metrics").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(ctype, "text/plain; version=0.0.4");
        assert!(body.contains("zonekeeper_requests_total{op=\"getData\",result=\"OK\"} 1"));
        assert!(body.contains("zonekeeper_znode_count 5"));
    }

    /// ARCHITECTURE.md "Contracts": `/v1/status` has at least `id`, `zone`,
    /// `role`, `leader_id`, `last_zxid`, `members`.
    #[tokio::test]
    async fn status_has_contract_fields() {
        let (state, _) = state_with(FakeStatus::leader_of_three());
        let (code, ctype, body) = call(&state, "GET", "/v1/status").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(ctype, "application/json");
        let v = json(&body);
        assert_eq!(v["id"], 1);
        assert_eq!(v["zone"], "a");
        assert_eq!(v["role"], "leader");
        assert_eq!(v["leader_id"], 1);
        assert_eq!(v["last_zxid"], 0x1_0000_0005i64);
        assert_eq!(v["members"].as_array().unwrap().len(), 4);
        assert_eq!(v["members"][3]["role"], "observer");
        assert_eq!(v["ready"], true);
        assert_eq!(v["stats"]["znode_count"], 5);
    }

    #[tokio::test]
    async fn status_role_names() {
        let (state, fake) = state_with(FakeStatus::standalone());
        let (_, _, body) = call(&state, "GET", "/v1/status").await;
        assert_eq!(json(&body)["role"], "standalone");
        fake.with_status(|s| {
            s.role = crate::status::Role::Follower;
            s.leader_id = None;
        });
        let (_, _, body) = call(&state, "GET", "/v1/status").await;
        let v = json(&body);
        assert_eq!(v["role"], "follower");
        assert!(v["leader_id"].is_null());
    }

    #[tokio::test]
    async fn members_list_and_single_member() {
        let (state, _) = state_with(FakeStatus::leader_of_three());
        let (code, _, body) = call(&state, "GET", "/v1/members").await;
        assert_eq!(code, StatusCode::OK);
        let v = json(&body);
        let ids: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(v[1]["zone"], "b");
        assert_eq!(v[1]["role"], "voter");
        assert!(v[1]["client_addr"].is_string() && v[1]["peer_addr"].is_string());

        let (code, _, body) = call(&state, "GET", "/v1/members/3").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(json(&body)["zone"], "c");
        let (code, _, body) = call(&state, "GET", "/v1/members/9").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(json(&body)["error"]["code"], "not_found");
        let (code, _, body) = call(&state, "GET", "/v1/members/x").await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(json(&body)["error"]["code"], "bad_request");
    }

    /// A standalone server has no membership to change: 501 with a JSON
    /// error saying how to run an ensemble.
    #[tokio::test]
    async fn membership_changes_are_501() {
        let (state, _) = state_with(FakeStatus::leader_of_three());
        for (method, uri) in [
            ("POST", "/v1/members"),
            ("DELETE", "/v1/members/2"),
            ("POST", "/v1/members/2/promote"),
            ("POST", "/v1/leader"),
        ] {
            let (code, ctype, body) = call(&state, method, uri).await;
            assert_eq!(code, StatusCode::NOT_IMPLEMENTED, "{method} {uri}");
            assert_eq!(ctype, "application/json");
            let v = json(&body);
            assert_eq!(v["error"]["code"], "not_implemented");
            assert!(v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("membership changes need an ensemble"));
        }
    }

    #[tokio::test]
    async fn unknown_route_and_method_are_json_errors() {
        let (state, _) = state_with(FakeStatus::standalone());
        let (code, _, body) = call(&state, "GET", "/v2/nothing").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(json(&body)["error"]["message"], "/v2/nothing not found");
        let (code, _, body) = call(&state, "POST", "/v1/status").await;
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json(&body)["error"]["code"], "method_not_allowed");
    }

    /// `serve` answers on a real listener and returns once the shutdown
    /// future completes (STYLE.md item 10: explicit shutdown).
    #[tokio::test]
    async fn serve_stops_on_shutdown() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (state, _) = state_with(FakeStatus::standalone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, state, async {
            let _ = rx.await;
        }));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("ok"), "{reply}");

        tx.send(()).unwrap();
        let done = tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("serve returns after shutdown");
        done.unwrap().unwrap();
    }
}
