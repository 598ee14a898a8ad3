//! Group membership: join (with member data, optionally under an app
//! lease), leave, list, watch (SSE or long-poll).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zonekeeper_client::recipes::{Group, Member};

use super::common::{bytes_of, check_lease, recipe_error, register, release_fn, Payload, Released, Waited};
use super::watching::{respond, WatchQuery};
use crate::app::App;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::holdings::{Holding, Kind};
use crate::names;
use crate::watch::Snapshots;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/groups/{group}/members", get(list))
        .route(
            "/v1/groups/{group}/members/{member}",
            axum::routing::put(join).delete(leave),
        )
        .route("/v1/groups/{group}/watch", get(watch))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Member data (e.g. the app's address), text.
    pub data: Option<String>,
    pub data_base64: Option<String>,
    /// App lease to join under (the member leaves when it lapses).
    pub lease: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Joined {
    pub group: String,
    pub member: String,
    pub lease: Option<String>,
    pub node: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub name: String,
    pub owner: Option<String>,
    #[serde(flatten)]
    pub data: Payload,
    pub session_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Members {
    pub group: String,
    /// Sorted by name.
    pub members: Vec<MemberView>,
    /// Hash of this list: pass it as `etag` to the watch long-poll.
    pub etag: Option<String>,
}

fn view(group: &str, mut ms: Vec<Member>) -> Members {
    ms.sort_by(|a, b| a.name.cmp(&b.name));
    Members {
        group: group.to_string(),
        members: ms
            .into_iter()
            .map(|m| MemberView {
                name: m.name,
                owner: m.owner,
                data: Payload::of(&m.data),
                session_id: format!("0x{:x}", m.session_id),
            })
            .collect(),
        etag: None,
    }
}

fn group(app: &App, name: &str) -> ApiResult<Group> {
    Group::new(app.client(), &app.path("groups", name))
        .map_err(|e| recipe_error(e, Waited::Other, &format!("group {name:?}")))
}

fn holding_id(group: &str, member: &str) -> String {
    format!("{group}/{member}")
}

/// Joins `member` to `group` (idempotent for the same sidecar and lease;
/// 409 `already_member` if another sidecar or lease has that name).
#[utoipa::path(put, operation_id = "groups_join", path = "/v1/groups/{group}/members/{member}", tag = "groups",
    params(("group" = String, Path), ("member" = String, Path)), request_body = Join, responses(
    (status = 200, body = Joined), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "lease_not_found"),
    (status = 409, body = ErrorBody, description = "already_member")))]
pub async fn join(
    State(app): State<Arc<App>>,
    Path((name, member)): Path<(String, String)>,
    Body(req): Body<Join>,
) -> ApiResult<axum::Json<Joined>> {
    names::check("group", &name)?;
    names::check("member", &member)?;
    app.check_running()?;
    check_lease(&app, &req.lease)?;
    let data = bytes_of(&req.data, &req.data_base64, "data")?;
    let what = format!("join of {member:?} to group {name:?}");
    let m = group(&app, &name)?
        .join(&member, req.lease.as_deref(), &data)
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &what))?;
    let id = holding_id(&name, &member);
    // A rejoin replaces the earlier holding of the same member (insert).
    let g = group(&app, &name)?;
    let member2 = member.clone();
    let m2 = m.clone();
    let holding = Holding::new(
        id,
        Kind::Membership,
        &name,
        0,
        req.lease.clone(),
        m.node.clone(),
        release_fn(move || async move { g.leave(&member2).await }),
    );
    register(&app, holding, async move { m2.lost().await }).await?;
    Ok(axum::Json(Joined {
        group: name,
        member,
        lease: req.lease,
        node: m.node,
    }))
}

/// Leaves: only a member this sidecar joined (409 `not_holder` otherwise;
/// nothing changes).
#[utoipa::path(delete, operation_id = "groups_leave", path = "/v1/groups/{group}/members/{member}", tag = "groups",
    params(("group" = String, Path), ("member" = String, Path)), responses(
    (status = 200, body = Released), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "not_holder")))]
pub async fn leave(
    State(app): State<Arc<App>>,
    Path((name, member)): Path<(String, String)>,
) -> ApiResult<axum::Json<Released>> {
    names::check("group", &name)?;
    names::check("member", &member)?;
    let id = holding_id(&name, &member);
    let h = app.holdings.take(Kind::Membership, &name, &id, None)?;
    h.release("request", &app.metrics).await;
    Ok(axum::Json(Released {
        holder: id,
        released: true,
    }))
}

/// The group's members.
#[utoipa::path(get, operation_id = "groups_list", path = "/v1/groups/{group}/members", tag = "groups", params(("group" = String, Path)),
    responses((status = 200, body = Members), (status = 400, body = ErrorBody)))]
pub async fn list(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult<axum::Json<Members>> {
    names::check("group", &name)?;
    let what = format!("group {name:?}");
    let ms = group(&app, &name)?
        .members()
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &what))?;
    let mut v = view(&name, ms);
    let (_, tag) = crate::watch::with_etag(serde_json::to_value(&v).unwrap_or_default());
    v.etag = Some(tag);
    Ok(axum::Json(v))
}

/// Watches the member list: SSE (`Accept: text/event-stream`), each event
/// a Members; otherwise a long-poll.
#[utoipa::path(get, operation_id = "groups_watch", path = "/v1/groups/{group}/watch", tag = "groups", params(("group" = String, Path), WatchQuery),
    responses((status = 200, body = Members, description = "long-poll answer, or an SSE stream of Members events")))]
pub async fn watch(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<WatchQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    names::check("group", &name)?;
    let w = group(&app, &name)?.watch();
    let what = format!("group {name:?}");
    let snapshots: Snapshots = futures::stream::unfold((w, name, what), |(mut w, name, what)| async move {
        let item = w
            .next()
            .await
            .map(|ms| serde_json::to_value(view(&name, ms)).unwrap_or_default())
            .map_err(|e| recipe_error(e, Waited::Other, &what));
        Some((item, (w, name, what)))
    })
    .boxed();
    respond(&app, snapshots, &q, &headers).await
}
