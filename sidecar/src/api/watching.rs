//! The `…/watch` routes' common shape: Server-Sent Events when the client
//! sends `Accept: text/event-stream`, a JSON long-poll otherwise.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::watch::{self, Snapshots, MAX_WAIT};

#[derive(Debug, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// Long-poll: the etag of the state you have; the answer comes when the
    /// state differs from it (at once without it).
    pub etag: Option<String>,
    /// Long-poll: how long to wait for a change, in ms (default 30000, at
    /// most 300000); after it the unchanged state is returned.
    pub wait_ms: Option<u64>,
}

pub async fn respond(
    app: &Arc<App>,
    snapshots: Snapshots,
    q: &WatchQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if sse {
        // End the stream when the sidecar shuts down, so graceful shutdown
        // does not wait for watchers.
        let app2 = app.clone();
        let stop = Box::pin(async move { app2.shutting_down().await });
        let snapshots = snapshots.take_until(stop).boxed();
        return Ok(watch::sse(snapshots, app.metrics.clone()).into_response());
    }
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(30_000));
    if wait > MAX_WAIT {
        return Err(ApiError::invalid(format!(
            "wait_ms {} is too long; use at most {}",
            wait.as_millis(),
            MAX_WAIT.as_millis()
        )));
    }
    let v = watch::long_poll(snapshots, q.etag.as_deref(), wait, app.metrics.clone()).await?;
    Ok(axum::Json(v).into_response())
}
