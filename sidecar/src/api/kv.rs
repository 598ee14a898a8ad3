//! Key/value: get, put (upsert, create-only, or compare-and-set on the
//! version), delete (optionally at a version), watch (SSE or long-poll).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zonekeeper_client::recipes::{Expected, Kv};
use zonekeeper_client::{Client, Error, ErrorCode, OneshotWatcher};

use super::common::{bytes_of, recipe_error, Payload, Waited};
use super::watching::{respond, WatchQuery};
use crate::app::App;
use crate::error::{ApiError, ApiResult, Code, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::names;
use crate::watch::Snapshots;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/kv/{key}", get(get_key).put(put).delete(delete))
        .route("/v1/kv/{key}/watch", get(watch))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    pub key: String,
    #[serde(flatten)]
    pub value: Payload,
    /// Version: 0 when created, +1 per put.
    pub version: i32,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Put {
    /// The value as text.
    pub value: Option<String>,
    /// The value in base64 (binary values).
    pub value_base64: Option<String>,
    /// Compare-and-set: write only if the key is at this version.
    pub expected_version: Option<i32>,
    /// Write only if the key does not exist.
    #[serde(default)]
    pub create_only: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Written {
    pub key: String,
    /// The version after the write.
    pub version: i32,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete only if the key is at this version.
    pub expected_version: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub key: String,
    pub deleted: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyState {
    pub key: String,
    pub exists: bool,
    #[serde(flatten)]
    pub value: Payload,
    pub version: Option<i32>,
    /// Hash of this state, for the long-poll.
    pub etag: Option<String>,
}

fn kv(app: &App) -> ApiResult<Kv> {
    Kv::new(app.client(), &format!("{}/kv", app.config.root))
        .map_err(|e| recipe_error(e, Waited::Other, "kv"))
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(
        Code::KeyNotFound,
        format!("key {key:?} does not exist; create it with PUT /v1/kv/{key}"),
    )
}

/// The value and version of a key. 404 `key_not_found` if absent.
#[utoipa::path(get, operation_id = "kv_get", path = "/v1/kv/{key}", tag = "kv", params(("key" = String, Path)),
    responses((status = 200, body = Entry), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_key(State(app): State<Arc<App>>, Path(key): Path<String>) -> ApiResult<axum::Json<Entry>> {
    names::check("key", &key)?;
    let (data, version) = kv(&app)?
        .get(&key)
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("key {key:?}")))?
        .ok_or_else(|| not_found(&key))?;
    Ok(axum::Json(Entry {
        key,
        value: Payload::of(&data),
        version,
    }))
}

/// Writes a key: unconditionally, only if absent (`create_only`), or only
/// at `expected_version` (compare-and-set). 409 `version_conflict` if the
/// condition fails; nothing changes then.
#[utoipa::path(put, operation_id = "kv_put", path = "/v1/kv/{key}", tag = "kv", params(("key" = String, Path)), request_body = Put,
    responses((status = 200, body = Written), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "version_conflict"),
    (status = 413, body = ErrorBody, description = "body_too_large")))]
pub async fn put(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Body(req): Body<Put>,
) -> ApiResult<axum::Json<Written>> {
    names::check("key", &key)?;
    if req.value.is_none() && req.value_base64.is_none() {
        return Err(ApiError::invalid(
            "give the value as \"value\" (text) or \"value_base64\"",
        ));
    }
    let data = bytes_of(&req.value, &req.value_base64, "value")?;
    let expected = match (req.create_only, req.expected_version) {
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "give create_only or expected_version, not both",
            ))
        }
        (true, None) => Expected::Absent,
        (false, v) => Expected::from(v),
    };
    let version = kv(&app)?
        .put(&key, &data, expected)
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("key {key:?}")))?;
    Ok(axum::Json(Written { key, version }))
}

/// Deletes a key (at `expected_version` if given: 409 `version_conflict`
/// otherwise). Deleting an absent key without a version is not an error.
#[utoipa::path(delete, operation_id = "kv_delete", path = "/v1/kv/{key}", tag = "kv", params(("key" = String, Path), DeleteQuery),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<axum::Json<Deleted>> {
    names::check("key", &key)?;
    kv(&app)?
        .delete(&key, Expected::from(q.expected_version))
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &format!("key {key:?}")))?;
    Ok(axum::Json(Deleted { key, deleted: true }))
}

/// The key's state and a watch that fires on its next change.
async fn read_watched(c: &Client, node: &str, key: &str) -> Result<(KeyState, OneshotWatcher), Error> {
    loop {
        match c.get_data_w(node).await {
            Ok(((data, stat), w)) => {
                return Ok((
                    KeyState {
                        key: key.to_string(),
                        exists: true,
                        value: Payload::of(&data),
                        version: Some(stat.version),
                        etag: None,
                    },
                    w,
                ))
            }
            Err(Error::Server(ErrorCode::NoNode)) => {
                let (stat, w) = c.exists_w(node).await?;
                if stat.is_some() {
                    continue; // created in between: read it
                }
                return Ok((
                    KeyState {
                        key: key.to_string(),
                        exists: false,
                        value: Payload::default(),
                        version: None,
                        etag: None,
                    },
                    w,
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Watches a key (also while absent): SSE (`Accept: text/event-stream`),
/// each event a KeyState; otherwise a long-poll.
#[utoipa::path(get, operation_id = "kv_watch", path = "/v1/kv/{key}/watch", tag = "kv", params(("key" = String, Path), WatchQuery),
    responses((status = 200, body = KeyState, description = "long-poll answer, or an SSE stream of KeyState events")))]
pub async fn watch(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Query(q): Query<WatchQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    names::check("key", &key)?;
    let node = format!("{}/kv/{key}", app.config.root);
    let client = app.client();
    let snapshots: Snapshots = futures::stream::unfold(
        (client, node, key, None::<OneshotWatcher>),
        |(c, node, key, pending)| async move {
            if let Some(w) = pending {
                if let Err(e) = w.changed().await {
                    return Some((Err(ApiError::from(e)), (c, node, key, None)));
                }
            }
            match read_watched(&c, &node, &key).await {
                Ok((state, w)) => {
                    let v = serde_json::to_value(state).unwrap_or_default();
                    Some((Ok(v), (c, node, key, Some(w))))
                }
                Err(e) => Some((Err(ApiError::from(e)), (c, node, key, None))),
            }
        },
    )
    .boxed();
    respond(&app, snapshots, &q, &headers).await
}
