//! Barriers (set / remove / wait until removed) and double barriers
//! (enter when `count` members arrived, leave when all left).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zonekeeper_client::recipes::{Barrier, DoubleBarrier};

use super::common::{recipe_error, Waited};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Path};
use crate::names;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/barriers/{name}", get(state).put(set).delete(remove))
        .route("/v1/barriers/{name}/wait", post(wait))
        .route("/v1/double-barriers/{name}/enter", post(enter))
        .route("/v1/double-barriers/{name}/leave", post(leave))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BarrierState {
    pub barrier: String,
    /// True while the barrier is up (waiters block).
    pub set: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long to wait, ms: 0 = just check, absent = up to 300000.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoubleBarrierRequest {
    /// This participant's name, unique within the barrier.
    pub member: String,
    /// Participants that must enter before anyone proceeds (same for all).
    pub count: u32,
    /// How long to wait, ms (absent = up to 300000).
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DoubleBarrierState {
    pub barrier: String,
    pub member: String,
    /// `entered` or `left`.
    pub state: String,
}

fn barrier(app: &App, name: &str) -> ApiResult<Barrier> {
    Barrier::new(app.client(), &app.path("barriers", name))
        .map_err(|e| recipe_error(e, Waited::Other, &format!("barrier {name:?}")))
}

/// Whether the barrier is set.
#[utoipa::path(get, operation_id = "barriers_state", path = "/v1/barriers/{name}", tag = "barriers", params(("name" = String, Path)),
    responses((status = 200, body = BarrierState), (status = 400, body = ErrorBody)))]
pub async fn state(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<BarrierState>> {
    names::check("barrier", &name)?;
    let set = barrier(&app, &name)?
        .is_set()
        .await
        .map_err(|e| recipe_error(e, Waited::Other, "barrier"))?;
    Ok(axum::Json(BarrierState { barrier: name, set }))
}

/// Sets (raises) the barrier; idempotent.
#[utoipa::path(put, operation_id = "barriers_set", path = "/v1/barriers/{name}", tag = "barriers", params(("name" = String, Path)),
    responses((status = 200, body = BarrierState), (status = 400, body = ErrorBody)))]
pub async fn set(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<BarrierState>> {
    names::check("barrier", &name)?;
    barrier(&app, &name)?
        .set()
        .await
        .map_err(|e| recipe_error(e, Waited::Other, "barrier"))?;
    Ok(axum::Json(BarrierState {
        barrier: name,
        set: true,
    }))
}

/// Removes (lowers) the barrier, releasing every waiter; idempotent.
#[utoipa::path(delete, operation_id = "barriers_remove", path = "/v1/barriers/{name}", tag = "barriers", params(("name" = String, Path)),
    responses((status = 200, body = BarrierState), (status = 400, body = ErrorBody)))]
pub async fn remove(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<BarrierState>> {
    names::check("barrier", &name)?;
    barrier(&app, &name)?
        .remove()
        .await
        .map_err(|e| recipe_error(e, Waited::Other, "barrier"))?;
    Ok(axum::Json(BarrierState {
        barrier: name,
        set: false,
    }))
}

/// Waits until the barrier is not set. 409 `timed_out` if still set after
/// `timeout_ms`.
#[utoipa::path(post, operation_id = "barriers_wait", path = "/v1/barriers/{name}/wait", tag = "barriers", params(("name" = String, Path)),
    request_body = Wait, responses((status = 200, body = BarrierState), (status = 409, body = ErrorBody, description = "timed_out")))]
pub async fn wait(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<Wait>,
) -> ApiResult<axum::Json<BarrierState>> {
    names::check("barrier", &name)?;
    let timeout = super::timeout(req.timeout_ms)?;
    barrier(&app, &name)?
        .wait(Some(timeout))
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("waiting on barrier {name:?}")))?;
    Ok(axum::Json(BarrierState {
        barrier: name,
        set: false,
    }))
}

fn double(app: &App, name: &str, req: &DoubleBarrierRequest) -> ApiResult<DoubleBarrier> {
    names::check("double barrier", name)?;
    names::check("member", &req.member)?;
    if req.count == 0 || req.count > 10_000 {
        return Err(ApiError::invalid(
            "count must be 1..=10000, the same for every participant",
        ));
    }
    DoubleBarrier::new(
        app.client(),
        &app.path("double-barriers", name),
        req.count,
        &req.member,
    )
    .map_err(|e| recipe_error(e, Waited::Other, &format!("double barrier {name:?}")))
}

/// Enters: answers once `count` participants have entered.
#[utoipa::path(post, operation_id = "double_barriers_enter", path = "/v1/double-barriers/{name}/enter", tag = "barriers", params(("name" = String, Path)),
    request_body = DoubleBarrierRequest, responses((status = 200, body = DoubleBarrierState), (status = 400, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "timed_out")))]
pub async fn enter(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<DoubleBarrierRequest>,
) -> ApiResult<axum::Json<DoubleBarrierState>> {
    let b = double(&app, &name, &req)?;
    app.check_running()?;
    let timeout = super::timeout(req.timeout_ms)?;
    b.enter(Some(timeout))
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("entering double barrier {name:?}")))?;
    Ok(axum::Json(DoubleBarrierState {
        barrier: name,
        member: req.member,
        state: "entered".into(),
    }))
}

/// Leaves: answers once every participant has left.
#[utoipa::path(post, operation_id = "double_barriers_leave", path = "/v1/double-barriers/{name}/leave", tag = "barriers", params(("name" = String, Path)),
    request_body = DoubleBarrierRequest, responses((status = 200, body = DoubleBarrierState), (status = 400, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "timed_out")))]
pub async fn leave(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<DoubleBarrierRequest>,
) -> ApiResult<axum::Json<DoubleBarrierState>> {
    let b = double(&app, &name, &req)?;
    let timeout = super::timeout(req.timeout_ms)?;
    b.leave(Some(timeout))
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("leaving double barrier {name:?}")))?;
    Ok(axum::Json(DoubleBarrierState {
        barrier: name,
        member: req.member,
        state: "left".into(),
    }))
}
