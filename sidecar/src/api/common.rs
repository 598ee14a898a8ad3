//! What the recipe-backed routes share: mapping recipe errors to API
//! errors, running a blocking acquire so that a caller who goes away does
//! not leave a grant behind, registering a grant as a holding under its app
//! lease, and the encoding of values (UTF-8 text or base64).

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::ToSchema;
use zonekeeper_client::recipes::{Lost, RecipeError};

use crate::app::App;
use crate::error::{ApiError, ApiResult, Code};
use crate::holdings::{Holding, HoldingInfo};

/// What a timeout means for the route that waited.
#[derive(Clone, Copy)]
pub enum Waited {
    /// A lock or permit: `lock_busy`.
    Lock,
    /// A campaign or barrier: `timed_out`.
    Other,
}

pub fn recipe_error(e: RecipeError, waited: Waited, what: &str) -> ApiError {
    match e {
        RecipeError::Client(e) => e.into(),
        RecipeError::Timeout => match waited {
            Waited::Lock => ApiError::new(
                Code::LockBusy,
                format!("{what} is held by others and was not granted within timeout_ms; nothing is held — retry later or with a longer timeout_ms"),
            ),
            Waited::Other => ApiError::new(
                Code::TimedOut,
                format!("{what} did not complete within timeout_ms; nothing is held — retry, or use a longer timeout_ms"),
            ),
        },
        RecipeError::NotHeld(n) => ApiError::new(
            Code::NotHolder,
            format!("{what}: {n} no longer exists (released, or lost with a session); acquire again"),
        ),
        RecipeError::Conflict { current } => ApiError::new(
            Code::VersionConflict,
            match current {
                Some(v) => format!("{what}: the current version is {v}, not the expected one; nothing was changed — GET it, then retry with expected_version {v}"),
                None => format!("{what}: it does not exist, so the expected version cannot match; nothing was changed — create it without expected_version"),
            },
        ),
        RecipeError::MemberExists(m) => ApiError::new(
            Code::AlreadyMember,
            format!("member {m:?} is already in the group, joined by another sidecar or app lease; leave it there first or pick another member name"),
        ),
        RecipeError::InvalidName(m) => ApiError::new(Code::InvalidName, format!("{m}; fix the name")),
    }
}

/// Checks `lease` (if given) exists; returns it as the owner label.
pub fn check_lease(app: &App, lease: &Option<String>) -> ApiResult<()> {
    if let Some(l) = lease {
        app.leases.get(l)?;
    }
    Ok(())
}

/// Runs `grant` (an acquire that may block) on its own task. If the HTTP
/// caller goes away first, the attempt is dropped (the recipe removes its
/// node); if the grant arrives after the caller went away, `abandon`
/// releases it. So a client timeout never leaves a lock held.
pub async fn detached<T, F>(app: &Arc<App>, grant: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: Future<Output = ApiResult<(T, Option<String>)>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<ApiResult<T>>();
    let app2 = app.clone();
    tokio::spawn(async move {
        let mut tx = tx;
        let out = tokio::select! {
            r = grant => Some(r),
            _ = tx.closed() => None,
            _ = app2.shutting_down() => Some(Err(ApiError::new(Code::ShuttingDown,
                "the sidecar is shutting down; nothing was granted"))),
        };
        if let Some(r) = out {
            match r {
                Ok((v, holding_id)) => {
                    if tx.send(Ok(v)).is_err() {
                        if let Some(id) = holding_id {
                            if let Some(h) = app2.holdings.forget(&id) {
                                h.release("abandoned", &app2.metrics).await;
                            }
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        }
    });
    rx.await
        .map_err(|_| ApiError::internal("the acquire task ended without an answer"))?
}

/// Registers a grant: inserts the holding, then checks its lease is still
/// alive (insert-then-check closes the race with the lease reaper, which
/// removes the lease before taking its holdings). Spawns a watcher that
/// forgets the holding when the grant is lost (node deleted, session ended).
pub async fn register<L>(app: &Arc<App>, holding: Holding, lost: L) -> ApiResult<HoldingInfo>
where
    L: Future<Output = Lost> + Send + 'static,
{
    let id = holding.id.clone();
    let lease = holding.lease.clone();
    let (info, seq) = app.holdings.insert(holding);
    if let Some(l) = &lease {
        if let Err(e) = app.leases.get(l) {
            if let Some(h) = app.holdings.forget_instance(&id, seq) {
                h.release("lease_lapsed", &app.metrics).await;
            }
            return Err(e);
        }
    }
    let app2 = app.clone();
    tokio::spawn(async move {
        tokio::select! {
            why = lost => {
                if app2.holdings.forget_instance(&id, seq).is_some() {
                    tracing::warn!(%id, ?why, "a grant was lost (its node is gone); forgot the holding");
                    app2.metrics.released.with_label_values(&["lost"]).inc();
                }
            }
            _ = app2.shutting_down() => {}
        }
    });
    Ok(info)
}

/// Builds the release action of a holding.
pub fn release_fn<F, Fut>(f: F) -> crate::holdings::ReleaseFn
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), RecipeError>> + Send + 'static,
{
    Box::new(move || {
        Box::pin(async move {
            match f().await {
                Ok(()) | Err(RecipeError::NotHeld(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })
    })
}

/// The last path segment of a node path (holder ids are node names).
pub fn node_name(node: &str) -> String {
    node.rsplit('/').next().unwrap_or(node).to_string()
}

/// A value in a response: `value` if it is UTF-8 text, else `value_base64`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payload {
    /// The value as text (absent if it is not UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in base64 (only if it is not UTF-8 text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

impl Payload {
    pub fn of(bytes: &[u8]) -> Payload {
        match std::str::from_utf8(bytes) {
            Ok(s) => Payload {
                value: Some(s.to_string()),
                value_base64: None,
            },
            Err(_) => Payload {
                value: None,
                value_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// A value in a request: `value` (text) or `value_base64`, not both;
/// neither is empty data.
pub fn bytes_of(value: &Option<String>, value_base64: &Option<String>, field: &str) -> ApiResult<Vec<u8>> {
    match (value, value_base64) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "give either {field} or {field}_base64, not both"
        ))),
        (Some(s), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| ApiError::invalid(format!("{field}_base64 is not base64 ({e})"))),
        (None, None) => Ok(Vec::new()),
    }
}

/// Request body of release/renew/resign.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolderRef {
    /// The holder id returned by the acquire/campaign.
    pub holder: String,
    /// The fencing token returned with it; checked when given.
    pub token: Option<u64>,
}

/// Answer of renew.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Renewed {
    pub holder: String,
    pub token: u64,
    /// The lease renewed with it, if the grant is under one.
    pub lease: Option<String>,
    pub lease_remaining_ms: Option<u64>,
}

/// Answer of release/resign/leave.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Released {
    pub holder: String,
    pub released: bool,
}
