//! App leases: `POST /v1/leases`, `GET|DELETE /v1/leases/{lease}`,
//! `POST /v1/leases/{lease}/renew`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, Path};
use crate::leases::{LeaseInfo, Leases};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/leases", post(create).get(list))
        .route("/v1/leases/{lease}", get(show).delete(revoke))
        .route("/v1/leases/{lease}/renew", post(renew))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLease {
    /// Time to live in milliseconds (500..=3600000): the lease lapses unless
    /// renewed within this time after its creation or last renewal.
    pub ttl_ms: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    pub lease: String,
    pub ttl_ms: u64,
    /// Milliseconds left before it lapses unless renewed.
    pub remaining_ms: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaseList {
    pub leases: Vec<Lease>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    pub lease: String,
    /// How many holdings were released with it.
    pub released: usize,
}

fn lease(i: LeaseInfo) -> Lease {
    Lease {
        lease: i.id,
        ttl_ms: i.ttl.as_millis() as u64,
        remaining_ms: i.remaining.as_millis() as u64,
    }
}

/// Creates an app lease. Pass its id as `lease` when acquiring, joining or
/// campaigning; renew it more often than `ttl_ms`.
#[utoipa::path(post, operation_id = "leases_create", path = "/v1/leases", tag = "leases", request_body = CreateLease, responses(
    (status = 201, body = Lease), (status = 400, body = ErrorBody)))]
pub async fn create(State(app): State<Arc<App>>, Body(req): Body<CreateLease>) -> ApiResult<Response> {
    app.check_running()?;
    let ttl = Leases::check_ttl(req.ttl_ms)?;
    let l = app.leases.create(ttl);
    app.metrics.leases.set(app.leases.len() as i64);
    Ok((StatusCode::CREATED, axum::Json(lease(l))).into_response())
}

/// Lists the live app leases.
#[utoipa::path(get, operation_id = "leases_list", path = "/v1/leases", tag = "leases", responses((status = 200, body = LeaseList)))]
pub async fn list(State(app): State<Arc<App>>) -> axum::Json<LeaseList> {
    axum::Json(LeaseList {
        leases: app.leases.list().into_iter().map(lease).collect(),
    })
}

/// One lease.
#[utoipa::path(get, operation_id = "leases_show", path = "/v1/leases/{lease}", tag = "leases", params(("lease" = String, Path)), responses(
    (status = 200, body = Lease), (status = 404, body = ErrorBody)))]
pub async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<axum::Json<Lease>> {
    Ok(axum::Json(lease(app.leases.get(&id)?)))
}

/// Renews a lease: it now lapses `ttl_ms` from now.
#[utoipa::path(post, operation_id = "leases_renew", path = "/v1/leases/{lease}/renew", tag = "leases", params(("lease" = String, Path)), responses(
    (status = 200, body = Lease), (status = 404, body = ErrorBody, description = "lease_not_found: it lapsed or never existed")))]
pub async fn renew(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<axum::Json<Lease>> {
    Ok(axum::Json(lease(app.leases.renew(&id)?)))
}

/// Revokes a lease and releases everything held under it.
#[utoipa::path(delete, operation_id = "leases_revoke", path = "/v1/leases/{lease}", tag = "leases", params(("lease" = String, Path)), responses(
    (status = 200, body = Revoked), (status = 404, body = ErrorBody)))]
pub async fn revoke(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<axum::Json<Revoked>> {
    app.leases.revoke(&id)?;
    app.metrics.leases.set(app.leases.len() as i64);
    let released = app.release_lease(&id, "lease_revoked").await;
    Ok(axum::Json(Revoked { lease: id, released }))
}
