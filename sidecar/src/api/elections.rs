//! Elections: campaign (blocking with a timeout), resign, current leader
//! and term, watch leadership (SSE or long-poll). The term is the
//! leadership's fencing token: it only grows from one leader to the next.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zonekeeper_client::recipes::{Election, LeaderInfo};

use super::common::{
    bytes_of, check_lease, detached, node_name, recipe_error, register, release_fn, HolderRef, Payload,
    Released, Waited,
};
use super::watching::{respond, WatchQuery};
use crate::app::App;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::holdings::{Holding, Kind};
use crate::names;
use crate::watch::Snapshots;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/elections/{name}", get(leader))
        .route("/v1/elections/{name}/campaign", post(campaign))
        .route("/v1/elections/{name}/resign", post(resign))
        .route("/v1/elections/{name}/watch", get(watch))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Candidate data (e.g. the app's address), shown to observers (text).
    pub data: Option<String>,
    pub data_base64: Option<String>,
    /// How long to wait for leadership: 0 = only if nobody leads and
    /// nobody is ahead, absent = up to 300000 ms.
    pub timeout_ms: Option<u64>,
    /// App lease to campaign under (leadership ends when it lapses).
    pub lease: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Elected {
    pub election: String,
    /// Holder id: pass it to resign.
    pub holder: String,
    /// Fencing token of this leadership; strictly increases across leaders.
    pub term: u64,
    pub lease: Option<String>,
    pub node: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Leader {
    pub holder: String,
    pub term: u64,
    pub owner: Option<String>,
    #[serde(flatten)]
    pub data: Payload,
    pub session_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaderState {
    pub election: String,
    /// The current leader, null if none.
    pub leader: Option<Leader>,
    /// Hash of this state: pass it as `etag` to the watch long-poll.
    pub etag: Option<String>,
}

fn view(name: &str, l: Option<LeaderInfo>) -> LeaderState {
    LeaderState {
        election: name.to_string(),
        leader: l.map(|l| Leader {
            holder: node_name(&l.node),
            term: l.term,
            owner: l.owner,
            data: Payload::of(&l.data),
            session_id: format!("0x{:x}", l.session_id),
        }),
        etag: None,
    }
}

fn election(app: &App, name: &str) -> ApiResult<Election> {
    Election::new(app.client(), &app.path("elections", name))
        .map_err(|e| recipe_error(e, Waited::Other, &format!("election {name:?}")))
}

/// Campaigns for leadership; answers once elected. 409 `timed_out` if not
/// elected within `timeout_ms` (the candidacy is withdrawn).
#[utoipa::path(post, operation_id = "elections_campaign", path = "/v1/elections/{name}/campaign", tag = "elections", params(("name" = String, Path)),
    request_body = Campaign, responses((status = 200, body = Elected), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "lease_not_found"), (status = 409, body = ErrorBody, description = "timed_out")))]
pub async fn campaign(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<Campaign>,
) -> ApiResult<axum::Json<Elected>> {
    names::check("election", &name)?;
    app.check_running()?;
    let timeout = super::timeout(req.timeout_ms)?;
    check_lease(&app, &req.lease)?;
    let data = bytes_of(&req.data, &req.data_base64, "data")?;
    let what = format!("campaign in election {name:?}");
    let mut e = election(&app, &name)?.with_data(data);
    if let Some(l) = &req.lease {
        e = e
            .with_owner(l)
            .map_err(|err| recipe_error(err, Waited::Other, &what))?;
    }
    let lease = req.lease.clone();
    let app2 = app.clone();
    detached(&app, async move {
        let l = e
            .campaign(Some(timeout))
            .await
            .map_err(|err| recipe_error(err, Waited::Other, &what))?;
        let id = node_name(&l.node);
        let (l2, l3) = (l.clone(), l.clone());
        let holding = Holding::new(
            id.clone(),
            Kind::Leadership,
            &name,
            l.term,
            lease.clone(),
            l.node.clone(),
            release_fn(move || l2.resign()),
        );
        register(&app2, holding, async move { l3.lost().await }).await?;
        Ok((
            Elected {
                election: name,
                holder: id.clone(),
                term: l.term,
                lease,
                node: l.node,
            },
            Some(id),
        ))
    })
    .await
    .map(axum::Json)
}

/// Steps down. Same errors as lock release (`token` is the term).
#[utoipa::path(post, operation_id = "elections_resign", path = "/v1/elections/{name}/resign", tag = "elections", params(("name" = String, Path)),
    request_body = HolderRef, responses((status = 200, body = Released), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resign(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<HolderRef>,
) -> ApiResult<axum::Json<Released>> {
    names::check("election", &name)?;
    let h = app
        .holdings
        .take(Kind::Leadership, &name, &req.holder, req.token)?;
    h.release("request", &app.metrics).await;
    Ok(axum::Json(Released {
        holder: req.holder,
        released: true,
    }))
}

/// The current leader and term.
#[utoipa::path(get, operation_id = "elections_leader", path = "/v1/elections/{name}", tag = "elections", params(("name" = String, Path)),
    responses((status = 200, body = LeaderState), (status = 400, body = ErrorBody)))]
pub async fn leader(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<LeaderState>> {
    names::check("election", &name)?;
    let what = format!("election {name:?}");
    let l = election(&app, &name)?
        .leader()
        .await
        .map_err(|e| recipe_error(e, Waited::Other, &what))?;
    let mut v = view(&name, l);
    let (_, tag) = crate::watch::with_etag(serde_json::to_value(&v).unwrap_or_default());
    v.etag = Some(tag);
    Ok(axum::Json(v))
}

/// Watches leadership: SSE (`Accept: text/event-stream`), each event a
/// LeaderState; otherwise a long-poll answering when the state's etag
/// differs from `etag` or after `wait_ms`.
#[utoipa::path(get, operation_id = "elections_watch", path = "/v1/elections/{name}/watch", tag = "elections", params(("name" = String, Path), WatchQuery),
    responses((status = 200, body = LeaderState, description = "long-poll answer, or an SSE stream of LeaderState events")))]
pub async fn watch(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<WatchQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    names::check("election", &name)?;
    let w = election(&app, &name)?.watch();
    let what = format!("election {name:?}");
    let snapshots: Snapshots = futures::stream::unfold((w, name, what), |(mut w, name, what)| async move {
        let item = w
            .next()
            .await
            .map(|l| serde_json::to_value(view(&name, l)).unwrap_or_default())
            .map_err(|e| recipe_error(e, Waited::Other, &what));
        Some((item, (w, name, what)))
    })
    .boxed();
    respond(&app, snapshots, &q, &headers).await
}
