//! Locks (shared and exclusive, one read/write lock per name) and
//! semaphores: acquire (try, or block with a timeout), release, renew,
//! inspect. Every grant carries a fencing token that only grows across
//! grants of that lock (docs/recipes.md, "Fencing tokens").

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zonekeeper_client::recipes::{decode_holder_data, LockMode, ReadWriteLock, Semaphore};

use super::common::{
    bytes_of, check_lease, detached, node_name, recipe_error, register, release_fn, HolderRef, Payload,
    Released, Renewed, Waited,
};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Path};
use crate::holdings::{Holding, Kind};
use crate::names;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/locks/{name}", get(inspect))
        .route("/v1/locks/{name}/acquire", post(acquire))
        .route("/v1/locks/{name}/release", post(release))
        .route("/v1/locks/{name}/renew", post(renew))
        .route("/v1/semaphores/{name}", get(semaphore_inspect))
        .route("/v1/semaphores/{name}/acquire", post(semaphore_acquire))
        .route("/v1/semaphores/{name}/release", post(semaphore_release))
        .route("/v1/semaphores/{name}/renew", post(semaphore_renew))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One holder at a time (a write lock).
    #[default]
    Exclusive,
    /// Many holders together, none while an exclusive holder holds it (a
    /// read lock).
    Shared,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireLock {
    #[serde(default)]
    pub mode: Mode,
    /// How long to wait: 0 = try once, absent = up to 300000 ms.
    pub timeout_ms: Option<u64>,
    /// App lease to take it under (released when the lease lapses).
    pub lease: Option<String>,
    /// Data stored with the grant, shown by GET (text).
    pub data: Option<String>,
    /// The same, in base64.
    pub data_base64: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// The lock or semaphore name.
    pub name: String,
    /// Holder id: pass it to release and renew.
    pub holder: String,
    /// Fencing token: strictly increases across grants of this lock.
    pub token: u64,
    /// `exclusive`, `shared`, or absent for a semaphore permit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    pub lease: Option<String>,
    /// The grant's znode.
    pub node: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    pub holder: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    pub token: u64,
    /// Owner label (the app lease) if any.
    pub owner: Option<String>,
    #[serde(flatten)]
    pub data: Payload,
    /// The holder's session, hex.
    pub session_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LockState {
    pub name: String,
    /// Current holders: one exclusive, or one or more shared.
    pub holders: Vec<HolderView>,
    /// Contenders waiting behind them.
    pub waiting: usize,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquirePermit {
    /// Number of permits of this semaphore; every participant must pass
    /// the same number.
    pub permits: u32,
    /// How long to wait: 0 = try once, absent = up to 300000 ms.
    pub timeout_ms: Option<u64>,
    pub lease: Option<String>,
    pub data: Option<String>,
    pub data_base64: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SemaphoreState {
    pub name: String,
    /// Lease nodes in grant order: the granted permits (at most `permits`),
    /// possibly followed by the one waiter that is being granted.
    pub holders: Vec<HolderView>,
}

/// Acquires a lock (exclusive or shared). With `timeout_ms: 0` it tries
/// once; otherwise it waits up to `timeout_ms`. 409 `lock_busy` if not
/// granted in time.
#[utoipa::path(post, operation_id = "locks_acquire", path = "/v1/locks/{name}/acquire", tag = "locks", params(("name" = String, Path)),
    request_body = AcquireLock, responses(
    (status = 200, body = Grant), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "lease_not_found"),
    (status = 409, body = ErrorBody, description = "lock_busy"), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn acquire(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<AcquireLock>,
) -> ApiResult<axum::Json<Grant>> {
    names::check("lock", &name)?;
    app.check_running()?;
    let timeout = super::timeout(req.timeout_ms)?;
    check_lease(&app, &req.lease)?;
    let data = bytes_of(&req.data, &req.data_base64, "data")?;
    let what = format!("lock {name:?}");
    let mut lock = ReadWriteLock::new(app.client(), &app.path("locks", &name))
        .map_err(|e| recipe_error(e, Waited::Lock, &what))?
        .with_data(data);
    if let Some(l) = &req.lease {
        lock = lock
            .with_owner(l)
            .map_err(|e| recipe_error(e, Waited::Lock, &what))?;
    }
    let mode = req.mode;
    let lease = req.lease.clone();
    let app2 = app.clone();
    detached(&app, async move {
        let rmode = match mode {
            Mode::Exclusive => LockMode::Write,
            Mode::Shared => LockMode::Read,
        };
        let guard = lock
            .acquire(rmode, Some(timeout))
            .await
            .map_err(|e| recipe_error(e, Waited::Lock, &what))?;
        let id = node_name(&guard.node);
        let g2 = guard.clone();
        let g3 = guard.clone();
        let holding = Holding::new(
            id.clone(),
            Kind::Lock,
            &name,
            guard.token,
            lease.clone(),
            guard.node.clone(),
            release_fn(move || g2.release()),
        );
        register(&app2, holding, async move { g3.lost().await }).await?;
        Ok((
            Grant {
                name,
                holder: id.clone(),
                token: guard.token,
                mode: Some(mode),
                lease,
                node: guard.node,
            },
            Some(id),
        ))
    })
    .await
    .map(axum::Json)
}

async fn release_kind(app: &App, kind: Kind, name: &str, req: HolderRef) -> ApiResult<axum::Json<Released>> {
    names::check(kind.as_str(), name)?;
    let h = app.holdings.take(kind, name, &req.holder, req.token)?;
    h.release("request", &app.metrics).await;
    Ok(axum::Json(Released {
        holder: req.holder,
        released: true,
    }))
}

async fn renew_kind(app: &App, kind: Kind, name: &str, req: HolderRef) -> ApiResult<axum::Json<Renewed>> {
    names::check(kind.as_str(), name)?;
    let info = app.holdings.check(kind, name, &req.holder, req.token)?;
    // Confirm with the ensemble that the grant's node is still ours.
    let client = app.client();
    let stat = client.exists(&info.node).await?;
    let ours = matches!(stat, Some(s) if s.ephemeral_owner == client.session_id());
    if !ours {
        app.holdings.forget(&info.id);
        return Err(app.holdings.check(kind, name, &req.holder, None).unwrap_err());
    }
    let (lease, lease_remaining_ms) = match &info.lease {
        Some(l) => {
            let li = app.leases.renew(l)?;
            (Some(l.clone()), Some(li.remaining.as_millis() as u64))
        }
        None => (None, None),
    };
    Ok(axum::Json(Renewed {
        holder: info.id,
        token: info.token,
        lease,
        lease_remaining_ms,
    }))
}

/// Releases a lock grant. 409 `not_holder` if the holder id is not a
/// current holder; 403 `token_mismatch` if the token is not its token.
/// Nothing changes on either error.
#[utoipa::path(post, operation_id = "locks_release", path = "/v1/locks/{name}/release", tag = "locks", params(("name" = String, Path)),
    request_body = HolderRef, responses((status = 200, body = Released), (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "token_mismatch"), (status = 409, body = ErrorBody, description = "not_holder")))]
pub async fn release(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<HolderRef>,
) -> ApiResult<axum::Json<Released>> {
    release_kind(&app, Kind::Lock, &name, req).await
}

/// Confirms the grant is still held (asks the ensemble) and renews its app
/// lease, if any. 409 `not_holder` if it was lost.
#[utoipa::path(post, operation_id = "locks_renew", path = "/v1/locks/{name}/renew", tag = "locks", params(("name" = String, Path)),
    request_body = HolderRef, responses((status = 200, body = Renewed), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "lease_not_found"), (status = 409, body = ErrorBody)))]
pub async fn renew(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<HolderRef>,
) -> ApiResult<axum::Json<Renewed>> {
    renew_kind(&app, Kind::Lock, &name, req).await
}

/// The grant nodes under `dir` with prefix in `prefixes`, ordered by
/// sequence: (name, prefix, owner, data, token, session).
async fn contenders(app: &App, dir: &str, prefixes: &[&str]) -> ApiResult<Vec<(String, String, HolderView)>> {
    let client = app.client();
    let kids = match client.get_children(dir).await {
        Ok((k, _)) => k,
        Err(zonekeeper_client::Error::Server(zonekeeper_client::ErrorCode::NoNode)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut seq: Vec<(i64, String, String)> = kids
        .into_iter()
        .filter_map(|k| {
            let prefix = prefixes
                .iter()
                .find(|p| k.starts_with(&format!("{p}-")))?
                .to_string();
            let n: i64 = k.rsplit_once('-')?.1.parse().ok()?;
            Some((n, k, prefix))
        })
        .collect();
    seq.sort();
    let mut out = Vec::new();
    for (_, k, prefix) in seq {
        match client.get_data(&format!("{dir}/{k}")).await {
            Ok((raw, stat)) => {
                let (owner, data) = decode_holder_data(&raw);
                out.push((
                    k.clone(),
                    prefix,
                    HolderView {
                        holder: k,
                        mode: None,
                        token: stat.czxid.max(0) as u64,
                        owner,
                        data: Payload::of(&data),
                        session_id: format!("0x{:x}", stat.ephemeral_owner),
                    },
                ));
            }
            Err(zonekeeper_client::Error::Server(zonekeeper_client::ErrorCode::NoNode)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Who holds the lock now, and how many wait.
#[utoipa::path(get, operation_id = "locks_inspect", path = "/v1/locks/{name}", tag = "locks", params(("name" = String, Path)),
    responses((status = 200, body = LockState), (status = 400, body = ErrorBody)))]
pub async fn inspect(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<LockState>> {
    names::check("lock", &name)?;
    let all = contenders(&app, &app.path("locks", &name), &["read", "write"]).await?;
    let mut holders = Vec::new();
    for (_, prefix, mut v) in all.iter().cloned() {
        let mode = if prefix == "write" {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        v.mode = Some(mode);
        if mode == Mode::Exclusive {
            if holders.is_empty() {
                holders.push(v);
            }
            break;
        }
        holders.push(v);
    }
    let waiting = all.len() - holders.len();
    Ok(axum::Json(LockState {
        name,
        holders,
        waiting,
    }))
}

/// Acquires one permit of a semaphore of `permits` permits.
#[utoipa::path(post, operation_id = "semaphores_acquire", path = "/v1/semaphores/{name}/acquire", tag = "semaphores", params(("name" = String, Path)),
    request_body = AcquirePermit, responses((status = 200, body = Grant), (status = 400, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "lock_busy"), (status = 503, body = ErrorBody)))]
pub async fn semaphore_acquire(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<AcquirePermit>,
) -> ApiResult<axum::Json<Grant>> {
    names::check("semaphore", &name)?;
    app.check_running()?;
    if req.permits == 0 || req.permits > 10_000 {
        return Err(ApiError::invalid(
            "permits must be 1..=10000, the same for every participant",
        ));
    }
    let timeout = super::timeout(req.timeout_ms)?;
    check_lease(&app, &req.lease)?;
    let data = bytes_of(&req.data, &req.data_base64, "data")?;
    let what = format!("semaphore {name:?}");
    let mut sem = Semaphore::new(app.client(), &app.path("semaphores", &name), req.permits)
        .map_err(|e| recipe_error(e, Waited::Lock, &what))?
        .with_data(data);
    if let Some(l) = &req.lease {
        sem = sem
            .with_owner(l)
            .map_err(|e| recipe_error(e, Waited::Lock, &what))?;
    }
    let lease = req.lease.clone();
    let app2 = app.clone();
    detached(&app, async move {
        let permit = sem
            .acquire(Some(timeout))
            .await
            .map_err(|e| recipe_error(e, Waited::Lock, &what))?;
        let id = node_name(&permit.node);
        let (p2, p3) = (permit.clone(), permit.clone());
        let holding = Holding::new(
            id.clone(),
            Kind::Semaphore,
            &name,
            permit.token,
            lease.clone(),
            permit.node.clone(),
            release_fn(move || p2.release()),
        );
        register(&app2, holding, async move { p3.lost().await }).await?;
        Ok((
            Grant {
                name,
                holder: id.clone(),
                token: permit.token,
                mode: None,
                lease,
                node: permit.node,
            },
            Some(id),
        ))
    })
    .await
    .map(axum::Json)
}

/// Releases a permit (same errors as lock release).
#[utoipa::path(post, operation_id = "semaphores_release", path = "/v1/semaphores/{name}/release", tag = "semaphores", params(("name" = String, Path)),
    request_body = HolderRef, responses((status = 200, body = Released), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn semaphore_release(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<HolderRef>,
) -> ApiResult<axum::Json<Released>> {
    release_kind(&app, Kind::Semaphore, &name, req).await
}

/// Confirms a permit is held and renews its lease.
#[utoipa::path(post, operation_id = "semaphores_renew", path = "/v1/semaphores/{name}/renew", tag = "semaphores", params(("name" = String, Path)),
    request_body = HolderRef, responses((status = 200, body = Renewed), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn semaphore_renew(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(req): Body<HolderRef>,
) -> ApiResult<axum::Json<Renewed>> {
    renew_kind(&app, Kind::Semaphore, &name, req).await
}

/// The permits held now.
#[utoipa::path(get, operation_id = "semaphores_inspect", path = "/v1/semaphores/{name}", tag = "semaphores", params(("name" = String, Path)),
    responses((status = 200, body = SemaphoreState)))]
pub async fn semaphore_inspect(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<SemaphoreState>> {
    names::check("semaphore", &name)?;
    let dir = format!("{}/leases", app.path("semaphores", &name));
    let holders = contenders(&app, &dir, &["lease"])
        .await?
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    Ok(axum::Json(SemaphoreState { name, holders }))
}
