//! The HTTP API: one router, one file per area. Every route answers JSON;
//! every failure is an [`ApiError`](crate::error::ApiError) — unknown
//! routes and wrong methods too — and bodies over `--max-body-bytes` get 413.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::app::App;
use crate::error::{ApiError, Code};

pub mod barriers;
pub mod common;
pub mod elections;
pub mod groups;
pub mod kv;
pub mod leases;
pub mod locks;
pub mod system;
pub mod watching;

/// Longest blocking wait a request may ask for (acquire, campaign, barrier
/// wait, long-poll).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// `timeout_ms` of a request: `None` → wait without limit (capped at
/// [`MAX_TIMEOUT`]), `Some(0)` → try once.
pub fn timeout(ms: Option<u64>) -> Result<Duration, ApiError> {
    match ms {
        None => Ok(MAX_TIMEOUT),
        Some(ms) if Duration::from_millis(ms) <= MAX_TIMEOUT => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(ApiError::invalid(format!(
            "timeout_ms {ms} is too long; use at most {} and retry in a loop",
            MAX_TIMEOUT.as_millis()
        ))),
    }
}

pub fn router(app: Arc<App>) -> Router {
    let max_body = app.config.max_body_bytes;
    Router::new()
        .merge(system::routes())
        .merge(leases::routes())
        .merge(groups::routes())
        .merge(locks::routes())
        .merge(elections::routes())
        .merge(barriers::routes())
        .merge(kv::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        Code::RouteNotFound,
        format!("no route {}; GET /openapi.json lists every route", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "{method} is not allowed on {}; GET /openapi.json lists the methods of every route",
            uri.path()
        ),
    )
}

/// Metrics and a log line per request.
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let t = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    app.metrics
        .requests
        .with_label_values(&[&route, method.as_str(), status.as_str()])
        .inc();
    app.metrics
        .request_seconds
        .with_label_values(&[&route])
        .observe(t.elapsed().as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(%method, %route, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(%method, %route, status = status.as_u16(), "request");
    }
    resp
}
