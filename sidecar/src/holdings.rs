//! What the sidecar holds on behalf of applications: lock grants, semaphore
//! permits, group memberships and leaderships. Each holding has an id (given
//! to the application, needed to release it), the fencing token of its grant,
//! and optionally the app lease it was taken under.
//!
//! A holding carries its own release action (a boxed future built by the
//! route that acquired it), so this table does not know the recipes and the
//! three ways things get released share one path: the application asks, its
//! lease lapses, or the sidecar shuts down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Code};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Lock,
    Semaphore,
    Membership,
    Leadership,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lock => "lock",
            Kind::Semaphore => "semaphore",
            Kind::Membership => "membership",
            Kind::Leadership => "leadership",
        }
    }
}

/// Releases a holding in the ensemble; Err is a message for the log.
pub type ReleaseFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

pub struct Holding {
    pub id: String,
    pub kind: Kind,
    /// The lock/semaphore/group/election name.
    pub resource: String,
    pub token: u64,
    pub lease: Option<String>,
    /// The grant's znode (full path).
    pub node: String,
    /// Instance number, set by [`Holdings::insert`]: a rejoined membership
    /// has the same id as the one it replaced, not the same instance.
    seq: u64,
    release: ReleaseFn,
}

/// A holding as reported to applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldingInfo {
    pub id: String,
    pub kind: Kind,
    pub resource: String,
    pub token: u64,
    pub lease: Option<String>,
    /// The grant's znode (full path, inspectable with any ZooKeeper tool).
    pub node: String,
}

impl Holding {
    pub fn new(
        id: String,
        kind: Kind,
        resource: &str,
        token: u64,
        lease: Option<String>,
        node: String,
        release: ReleaseFn,
    ) -> Holding {
        Holding {
            id,
            kind,
            resource: resource.to_string(),
            token,
            lease,
            node,
            seq: 0,
            release,
        }
    }

    pub fn info(&self) -> HoldingInfo {
        HoldingInfo {
            id: self.id.clone(),
            kind: self.kind,
            resource: self.resource.clone(),
            token: self.token,
            lease: self.lease.clone(),
            node: self.node.clone(),
        }
    }

    /// Releases it in the ensemble; logs a failure (the node then goes with
    /// the session at the latest).
    pub async fn release(self, reason: &str, metrics: &Metrics) {
        let (id, kind, resource) = (self.id, self.kind, self.resource);
        match (self.release)().await {
            Ok(()) => tracing::info!(%id, kind = kind.as_str(), %resource, reason, "released"),
            Err(e) => tracing::warn!(%id, kind = kind.as_str(), %resource, reason, error = %e,
                "release failed; the node goes when the session ends"),
        }
        metrics.released.with_label_values(&[reason]).inc();
    }
}

pub struct Holdings {
    table: Mutex<HashMap<String, Holding>>,
    next_seq: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
}

fn not_holder(kind: Kind, resource: &str, id: &str) -> ApiError {
    ApiError::new(
        Code::NotHolder,
        format!(
            "{id:?} is not a current holder of {} {resource:?}: it was released, its app lease lapsed, \
             the sidecar's session expired, or it was never granted here; nothing was changed — \
             acquire again to get a new holder id and fencing token",
            kind.as_str()
        ),
    )
}

impl Holdings {
    pub fn new(metrics: Arc<Metrics>) -> Holdings {
        Holdings {
            table: Mutex::new(HashMap::new()),
            next_seq: std::sync::atomic::AtomicU64::new(1),
            metrics,
        }
    }

    fn gauge(&self, kind: Kind, delta: i64) {
        self.metrics
            .holdings
            .with_label_values(&[kind.as_str()])
            .add(delta);
    }

    /// Adds a holding (replacing one with the same id); returns its info
    /// and instance number (for [`forget_instance`](Holdings::forget_instance)).
    pub fn insert(&self, mut h: Holding) -> (HoldingInfo, u64) {
        h.seq = self.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (info, seq) = (h.info(), h.seq);
        self.gauge(h.kind, 1);
        if let Some(old) = self.table.lock().unwrap().insert(h.id.clone(), h) {
            self.gauge(old.kind, -1);
        }
        (info, seq)
    }

    /// Removes the holding `id` only if it is still instance `seq` (a
    /// watcher of an earlier instance must not remove a later one).
    pub fn forget_instance(&self, id: &str, seq: u64) -> Option<Holding> {
        let mut t = self.table.lock().unwrap();
        if t.get(id).map(|h| h.seq) != Some(seq) {
            return None;
        }
        let h = t.remove(id)?;
        drop(t);
        self.gauge(h.kind, -1);
        Some(h)
    }

    /// The holding `id` of `kind` on `resource`, if `token` (when given)
    /// matches. Errors: `not_holder` (409) or `token_mismatch` (403).
    pub fn check(
        &self,
        kind: Kind,
        resource: &str,
        id: &str,
        token: Option<u64>,
    ) -> Result<HoldingInfo, ApiError> {
        let t = self.table.lock().unwrap();
        let h = t
            .get(id)
            .filter(|h| h.kind == kind && h.resource == resource)
            .ok_or_else(|| not_holder(kind, resource, id))?;
        if let Some(token) = token {
            if token != h.token {
                return Err(ApiError::new(
                    Code::TokenMismatch,
                    format!(
                        "fencing token {token} is not the token of {id:?} on {} {resource:?}; \
                         nothing was changed — send the token returned by the acquire that gave you this holder id",
                        kind.as_str()
                    ),
                ));
            }
        }
        Ok(h.info())
    }

    /// As [`check`](Holdings::check), and removes it (to be released).
    pub fn take(
        &self,
        kind: Kind,
        resource: &str,
        id: &str,
        token: Option<u64>,
    ) -> Result<Holding, ApiError> {
        self.check(kind, resource, id, token)?;
        let h = self
            .table
            .lock()
            .unwrap()
            .remove(id)
            .ok_or_else(|| not_holder(kind, resource, id))?;
        self.gauge(h.kind, -1);
        Ok(h)
    }

    /// Removes the holding `id` if it is still there (its grant ended by
    /// itself, e.g. a leadership lost with the session).
    pub fn forget(&self, id: &str) -> Option<Holding> {
        let h = self.table.lock().unwrap().remove(id)?;
        self.gauge(h.kind, -1);
        Some(h)
    }

    pub fn take_lease(&self, lease: &str) -> Vec<Holding> {
        self.take_where(|h| h.lease.as_deref() == Some(lease))
    }

    pub fn take_all(&self) -> Vec<Holding> {
        self.take_where(|_| true)
    }

    fn take_where(&self, f: impl Fn(&Holding) -> bool) -> Vec<Holding> {
        let mut t = self.table.lock().unwrap();
        let ids: Vec<String> = t.values().filter(|h| f(h)).map(|h| h.id.clone()).collect();
        let out: Vec<Holding> = ids.iter().filter_map(|id| t.remove(id)).collect();
        drop(t);
        for h in &out {
            self.gauge(h.kind, -1);
        }
        out
    }

    pub fn list(&self) -> Vec<HoldingInfo> {
        let mut v: Vec<_> = self.table.lock().unwrap().values().map(Holding::info).collect();
        v.sort_by(|a, b| (a.kind.as_str(), &a.resource, &a.id).cmp(&(b.kind.as_str(), &b.resource, &b.id)));
        v
    }

    pub fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn holding(
        id: &str,
        kind: Kind,
        res: &str,
        token: u64,
        lease: Option<&str>,
        n: &Arc<AtomicUsize>,
    ) -> Holding {
        let n = n.clone();
        Holding::new(
            id.into(),
            kind,
            res,
            token,
            lease.map(String::from),
            format!("/zonekeeper/x/{id}"),
            Box::new(move || {
                Box::pin(async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            }),
        )
    }

    #[tokio::test]
    async fn wrong_holder_or_token_changes_nothing() {
        let m = Arc::new(Metrics::new());
        let hs = Holdings::new(m.clone());
        let n = Arc::new(AtomicUsize::new(0));
        hs.insert(holding("h1", Kind::Lock, "db", 7, None, &n));
        assert_eq!(
            hs.take(Kind::Lock, "db", "h2", None).err().unwrap().code,
            Code::NotHolder
        );
        assert_eq!(
            hs.take(Kind::Lock, "other", "h1", None).err().unwrap().code,
            Code::NotHolder
        );
        assert_eq!(
            hs.take(Kind::Semaphore, "db", "h1", None).err().unwrap().code,
            Code::NotHolder
        );
        assert_eq!(
            hs.take(Kind::Lock, "db", "h1", Some(6)).err().unwrap().code,
            Code::TokenMismatch
        );
        assert_eq!(hs.len(), 1);
        hs.take(Kind::Lock, "db", "h1", Some(7))
            .unwrap()
            .release("request", &m)
            .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(hs.is_empty());
        assert_eq!(m.holdings.with_label_values(&["lock"]).get(), 0);
    }

    #[tokio::test]
    async fn a_lease_takes_only_its_own_holdings() {
        let m = Arc::new(Metrics::new());
        let hs = Holdings::new(m);
        let n = Arc::new(AtomicUsize::new(0));
        hs.insert(holding("a", Kind::Lock, "x", 1, Some("l1"), &n));
        hs.insert(holding("b", Kind::Membership, "g", 0, Some("l2"), &n));
        hs.insert(holding("c", Kind::Leadership, "e", 3, None, &n));
        let taken: Vec<_> = hs.take_lease("l1").into_iter().map(|h| h.id).collect();
        assert_eq!(taken, vec!["a".to_string()]);
        assert_eq!(hs.take_all().len(), 2);
    }

    #[test]
    fn a_replaced_instance_is_not_forgotten_by_its_predecessors_watcher() {
        let hs = Holdings::new(Arc::new(Metrics::new()));
        let n = Arc::new(AtomicUsize::new(0));
        let (_, first) = hs.insert(holding("g/m", Kind::Membership, "g", 0, None, &n));
        let (_, second) = hs.insert(holding("g/m", Kind::Membership, "g", 0, None, &n));
        assert!(hs.forget_instance("g/m", first).is_none());
        assert_eq!(hs.len(), 1);
        assert!(hs.forget_instance("g/m", second).is_some());
        assert!(hs.is_empty());
    }
}
