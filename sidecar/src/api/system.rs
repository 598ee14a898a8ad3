//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/v1/holdings`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zonekeeper_client::SessionState;

use crate::app::App;
use crate::holdings::HoldingInfo;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/holdings", get(holdings))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, operation_id = "system_healthz", path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// True while the ensemble session is connected.
    pub ready: bool,
    /// `connecting`, `connected`, `disconnected`, `expired`, `closed`, …
    pub session: String,
    /// Session id in hex.
    pub session_id: String,
    /// The server the session is connected to, `host:port`.
    pub server: Option<String>,
    /// That server's zone.
    pub server_zone: Option<String>,
    /// The sidecar's own zone (configured or measured).
    pub own_zone: Option<String>,
}

/// Readiness: 200 while the ensemble session is connected, else 503.
#[utoipa::path(get, operation_id = "system_readyz", path = "/readyz", tag = "system", responses(
    (status = 200, body = Readiness, description = "connected"),
    (status = 503, body = Readiness, description = "no connected session")))]
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let (ready, state) = app.ready();
    let client = app.client();
    let (session, server, server_zone) = match &state {
        SessionState::Connected { server } => ("connected", Some(server.host_port()), server.zone.clone()),
        SessionState::Connecting => ("connecting", None, None),
        SessionState::Disconnected => ("disconnected", None, None),
        SessionState::Expired => ("expired", None, None),
        SessionState::AuthFailed => ("auth_failed", None, None),
        SessionState::Closed => ("closed", None, None),
    };
    let body = Readiness {
        ready,
        session: session.into(),
        session_id: format!("0x{:x}", client.session_id()),
        server,
        server_zone,
        own_zone: client.own_zone(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus metrics (text format).
#[utoipa::path(get, operation_id = "system_metrics", path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3 document (also checked in as sidecar/openapi.json).
#[utoipa::path(get, operation_id = "system_openapi", path = "/openapi.json", tag = "system", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HoldingList {
    pub holdings: Vec<HoldingInfo>,
}

/// Everything this sidecar holds for applications: locks, permits,
/// memberships, leaderships.
#[utoipa::path(get, operation_id = "system_holdings", path = "/v1/holdings", tag = "system", responses((status = 200, body = HoldingList)))]
pub async fn holdings(State(app): State<Arc<App>>) -> axum::Json<HoldingList> {
    axum::Json(HoldingList {
        holdings: app.holdings.list(),
    })
}
