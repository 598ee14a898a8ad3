//! Leader election between operator replicas on a `coordination.k8s.io/v1`
//! Lease, so that two replicas can run and only one acts.
//!
//! Owns: [`decide`] (pure: a Lease as read, who we are and the time ->
//! what to do) and [`Elector`], the thin I/O around it. Writes use the
//! Lease's `resourceVersion` (optimistic concurrency): of two replicas
//! racing for an expired Lease, the API server lets exactly one replace
//! it; the other gets 409 Conflict and stays a follower.
//!
//! The holder renews every [`Elector::renew_every`]; a Lease not renewed
//! for `leaseDurationSeconds` may be taken. A holder that cannot renew in
//! time stops acting (main.rs exits, the Deployment restarts it as a
//! follower), so two replicas never act at once for longer than the clock
//! skew between their nodes. On shutdown the holder releases the Lease so
//! the other replica takes over at once.
//!
//! Must not: know about clusters; it only says who leads.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::Client;
use tracing::info;

/// What to do about the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Another holder's Lease expired (or was released): take it over.
    Take,
    /// Another replica holds it.
    Follow { holder: String },
}

/// The pure rule; `now` and the Lease's own times decide expiry.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return if lease.is_some() {
            Decision::Take
        } else {
            Decision::Create
        };
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Take;
    }
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(15).into());
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    if renewed + duration < now {
        Decision::Take
    } else {
        Decision::Follow { holder }
    }
}

/// Campaigns for and keeps one Lease.
pub struct Elector {
    api: Api<Lease>,
    pub name: String,
    pub identity: String,
    /// `leaseDurationSeconds`.
    pub duration: Duration,
    /// How often the holder renews and a follower retries.
    pub renew_every: Duration,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    /// One round: read, decide, write. `Ok(true)` while we hold the Lease.
    pub async fn round(&self) -> Result<bool, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        let now = Timestamp::now();
        let decision = decide(lease.as_ref(), &self.identity, now);
        let spec = |acquired: Option<MicroTime>, transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let written = match (decision, lease) {
            (Decision::Follow { .. }, _) => return Ok(false),
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(None, 0)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (decision, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                let transitions = old.lease_transitions.unwrap_or(0);
                lease.spec = Some(if decision == Decision::Renew {
                    spec(old.acquire_time, transitions)
                } else {
                    info!(lease = %self.name, previous = ?old.holder_identity, "taking over the lease");
                    spec(None, transitions + 1)
                });
                // carries metadata.resourceVersion: a concurrent writer wins, we get 409
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
            (_, None) => unreachable!("decide() says Create when there is no Lease"),
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Returns once this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.round().await {
                Ok(true) => {
                    info!(lease = %self.name, identity = %self.identity, "leading");
                    return;
                }
                Ok(false) => tracing::debug!(lease = %self.name, "another replica leads"),
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "lease round failed"),
            }
            tokio::time::sleep(self.renew_every).await;
        }
    }

    /// Renews until a renewal fails for longer than the lease lasts (or
    /// another replica took over); then returns, and the caller must stop
    /// acting.
    pub async fn keep(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.renew_every).await;
            match self.round().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "another replica took the lease");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "could not renew the lease");
                    // stop before the lease can expire under us
                    if last_ok.elapsed() + self.renew_every >= self.duration {
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown), so a follower takes over at once.
    pub async fn release(&self) -> Result<(), kube::Error> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await? {
            if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(&self.identity) {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                }
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn lease(holder: Option<&str>, renewed: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, "a", at(0)), Decision::Create);
    }

    #[test]
    fn the_holder_renews_whatever_the_time() {
        assert_eq!(
            decide(Some(&lease(Some("a"), at(0))), "a", at(100)),
            Decision::Renew
        );
    }

    #[test]
    fn a_live_lease_of_another_is_followed_until_it_expires() {
        let l = lease(Some("b"), at(0));
        assert_eq!(
            decide(Some(&l), "a", at(15)),
            Decision::Follow { holder: "b".into() },
            "exactly at expiry it still holds"
        );
        assert_eq!(decide(Some(&l), "a", at(16)), Decision::Take);
    }

    #[test]
    fn a_released_or_empty_lease_is_taken() {
        assert_eq!(decide(Some(&lease(None, at(0))), "a", at(1)), Decision::Take);
        let empty = Lease {
            metadata: ObjectMeta::default(),
            spec: None,
        };
        assert_eq!(decide(Some(&empty), "a", at(1)), Decision::Take);
    }
}

#[cfg(test)]
mod api_test {
    //! [`Elector::round`] against the mock API server: the calls it makes
    //! and how it reads the answers (a 409 is a lost race, not an error).

    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{json, Value};

    fn elector() -> (Elector, tower_test::mock::Handle<Request<Body>, Response<Body>>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "ops");
        (Elector::new(client, "ops", "zk-operator", "pod-a"), handle)
    }

    fn respond(status: u16, body: Value) -> Response<Body> {
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    }

    fn not_found() -> Response<Body> {
        respond(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/zk-operator";

    #[tokio::test]
    async fn the_first_replica_creates_the_lease_holding_it() {
        let (e, mut api) = elector();
        let server = tokio::spawn(async move {
            let (req, send) = api.next_request().await.unwrap();
            assert_eq!((req.method().as_str(), req.uri().path()), ("GET", PATH));
            send.send_response(not_found());
            let (req, send) = api.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            assert_eq!(
                req.uri().path(),
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases"
            );
            let body: Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
            assert_eq!(body["spec"]["holderIdentity"], "pod-a");
            assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
            send.send_response(respond(201, body));
        });
        assert!(e.round().await.unwrap());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn losing_the_race_for_an_expired_lease_is_a_conflict_and_we_follow() {
        let (e, mut api) = elector();
        let server = tokio::spawn(async move {
            let (_, send) = api.next_request().await.unwrap();
            send.send_response(respond(
                200,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "zk-operator", "namespace": "ops", "resourceVersion": "41"},
                       "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
                                "renewTime": "2020-01-01T00:00:00.000000Z", "leaseTransitions": 3}}),
            ));
            let (req, send) = api.next_request().await.unwrap();
            assert_eq!((req.method().as_str(), req.uri().path()), ("PUT", PATH));
            let body: Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
            assert_eq!(
                body["metadata"]["resourceVersion"], "41",
                "optimistic concurrency"
            );
            assert_eq!(body["spec"]["holderIdentity"], "pod-a");
            assert_eq!(body["spec"]["leaseTransitions"], 4);
            send.send_response(respond(
                409,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                       "message": "the object has been modified"}),
            ));
        });
        assert!(!e.round().await.unwrap(), "another replica won");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_live_lease_of_another_replica_is_not_written() {
        let (e, mut api) = elector();
        let now = Timestamp::now();
        let server = tokio::spawn(async move {
            let (_, send) = api.next_request().await.unwrap();
            send.send_response(respond(
                200,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "zk-operator", "namespace": "ops", "resourceVersion": "7"},
                       "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
                                "renewTime": MicroTime(now)}}),
            ));
            // no second call: the handle is dropped with the task
        });
        assert!(!e.round().await.unwrap());
        server.await.unwrap();
    }
}
