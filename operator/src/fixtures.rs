//! Test fixtures: builder resources and a mock API server.
//!
//! `CoordinationCluster::test()` builds a resource as the API server would
//! hand it over (namespace, uid, generation). [`Context::test`] backs a
//! `kube::Client` with `tower_test::mock::pair`; the [`ApiServerVerifier`]
//! then plays a [`Scenario`]: the exact sequence of calls one reconcile is
//! expected to make, each checked (method, path, field manager, body) and
//! answered as the API server would. A missing call times out, an
//! unexpected one fails the assertion on the next expected call.

use std::sync::Arc;

use http::{Request, Response};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use std::time::Duration;

use crate::admin::{AdminClient, Endpoints};
use crate::controller::Context;
use crate::crd::{CoordinationCluster, CoordinationClusterSpec, ZoneSpec};
use crate::desired::{desired, Object, Platform};
use crate::metrics::Metrics;

impl CoordinationCluster {
    /// `coord` in `default`: three zones `a`, `b`, `c` with one voter each.
    pub fn test() -> Self {
        let spec: CoordinationClusterSpec = serde_json::from_value(json!({
            "image": "zonekeeper:test",
            "zones": [{"name": "a", "voters": 1}, {"name": "b", "voters": 1}, {"name": "c", "voters": 1}],
        }))
        .expect("valid spec");
        let mut cc = CoordinationCluster::new("coord", spec);
        cc.metadata.namespace = Some("default".into());
        cc.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
        cc.metadata.generation = Some(1);
        cc
    }

    /// Replaces the zones with `(name, voters, observers)`.
    pub fn with_zones(mut self, zones: &[(&str, i32, i32)]) -> Self {
        self.spec.zones = zones
            .iter()
            .map(|&(name, voters, observers)| ZoneSpec {
                name: name.into(),
                voters,
                observers,
            })
            .collect();
        self
    }

    pub fn paused(mut self) -> Self {
        self.spec.paused = true;
        self
    }

    /// As if the previous reconcile had recorded its ids in status.
    pub fn allocated(mut self) -> Self {
        let d = desired(&self, Platform::KUBERNETES_1_28).expect("valid fixture");
        let mut status = self.status.take().unwrap_or_default();
        status.members = d.members;
        status.retiring = d.retiring;
        status.next_member_id = Some(d.next_member_id);
        self.status = Some(status);
        self
    }
}

/// A pod of `set` on `revision`, ready or not.
pub fn pod(name: &str, set: &str, revision: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default",
            "labels": {"controller-revision-hash": revision},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": set, "uid": "x", "controller": true}],
        },
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .expect("valid pod")
}

/// A settled StatefulSet whose current template is `revision`.
pub fn settled(set: &StatefulSet, revision: &str) -> StatefulSet {
    let mut s = set.clone();
    s.metadata.generation = Some(1);
    let mut v = serde_json::to_value(&s).unwrap();
    v["status"] = json!({"observedGeneration": 1, "replicas": 1, "updateRevision": revision});
    serde_json::from_value(v).unwrap()
}

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Plays the API server's side of a [`Scenario`].
pub struct ApiServerVerifier(pub ApiServerHandle);

/// The call sequences reconcile is expected to make.
pub enum Scenario {
    /// A new cluster: ids recorded in status, every object applied,
    /// StatefulSets, Services and pods listed (none yet), status written.
    Create(CoordinationCluster),
    /// `paused`: one status write, nothing else.
    Paused(CoordinationCluster),
    /// A spec desired() refuses: a Warning event and one status write.
    Invalid(CoordinationCluster),
    /// A cluster whose ids are recorded: apply, then the lists answer
    /// `sets`, `services` and `pods`; `prune` names the StatefulSets and
    /// Services expected to be deleted, `restart` the pod expected to be
    /// deleted; then the status write.
    Steady {
        cc: CoordinationCluster,
        sets: Vec<StatefulSet>,
        services: Vec<Value>,
        pods: Vec<Pod>,
        prune: Vec<(&'static str, String)>,
        restart: Option<String>,
    },
}

/// What the verifier saw: the status bodies written, in order.
pub type StatusWrites = Vec<Value>;

impl ApiServerVerifier {
    /// Plays `scenario`; the task yields the status bodies written.
    pub fn run(self, scenario: Scenario) -> tokio::task::JoinHandle<StatusWrites> {
        tokio::spawn(async move {
            let mut v = self;
            let mut statuses = Vec::new();
            match scenario {
                Scenario::Create(cc) => {
                    statuses.push(v.status_write(&cc).await);
                    v.applies(&cc).await;
                    v.list(
                        "/apis/apps/v1/namespaces/default/statefulsets",
                        "StatefulSetList",
                        vec![],
                    )
                    .await;
                    v.list("/api/v1/namespaces/default/services", "ServiceList", vec![])
                        .await;
                    v.list("/api/v1/namespaces/default/pods", "PodList", vec![]).await;
                    statuses.push(v.status_write(&cc).await);
                }
                Scenario::Paused(cc) => statuses.push(v.status_write(&cc).await),
                Scenario::Invalid(cc) => {
                    v.event().await;
                    statuses.push(v.status_write(&cc).await);
                }
                Scenario::Steady {
                    cc,
                    sets,
                    services,
                    pods,
                    prune,
                    restart,
                } => {
                    v.applies(&cc).await;
                    let sets = sets.iter().map(|s| serde_json::to_value(s).unwrap()).collect();
                    v.list(
                        "/apis/apps/v1/namespaces/default/statefulsets",
                        "StatefulSetList",
                        sets,
                    )
                    .await;
                    for (kind, name) in prune.iter().filter(|(k, _)| *k == "StatefulSet") {
                        v.delete(
                            &format!("/apis/apps/v1/namespaces/default/statefulsets/{name}"),
                            kind,
                        )
                        .await;
                        v.event().await;
                    }
                    v.list("/api/v1/namespaces/default/services", "ServiceList", services)
                        .await;
                    for (kind, name) in prune.iter().filter(|(k, _)| *k == "Service") {
                        v.delete(&format!("/api/v1/namespaces/default/services/{name}"), kind)
                            .await;
                        v.event().await;
                    }
                    let pods = pods.iter().map(|p| serde_json::to_value(p).unwrap()).collect();
                    v.list("/api/v1/namespaces/default/pods", "PodList", pods).await;
                    if let Some(pod) = restart {
                        v.delete(&format!("/api/v1/namespaces/default/pods/{pod}"), "Pod")
                            .await;
                        v.event().await;
                    }
                    statuses.push(v.status_write(&cc).await);
                }
            }
            statuses
        })
    }

    async fn next(&mut self) -> (Request<Body>, tower_test::mock::SendResponse<Response<Body>>) {
        self.0
            .next_request()
            .await
            .expect("the controller made the expected call")
    }

    /// One server-side apply per desired object, in order, each with the
    /// operator's field manager and force, and exactly desired()'s body.
    async fn applies(&mut self, cc: &CoordinationCluster) {
        let d = desired(cc, Platform::KUBERNETES_1_28).expect("valid fixture");
        for object in &d.objects {
            let (request, send) = self.next().await;
            let collection = match object {
                Object::ConfigMap(_) => "/api/v1/namespaces/default/configmaps",
                Object::Service(_) => "/api/v1/namespaces/default/services",
                Object::StatefulSet(_) => "/apis/apps/v1/namespaces/default/statefulsets",
                Object::PodDisruptionBudget(_) => "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            };
            assert_eq!(request.method(), http::Method::PATCH);
            assert_eq!(request.uri().path(), format!("{collection}/{}", object.name()));
            assert_ssa(&request);
            let body = body_json(request).await;
            assert_eq!(
                body,
                object.to_value(),
                "apply body of {} {}",
                object.kind(),
                object.name()
            );
            send.send_response(json_response(&body));
        }
    }

    /// A status write: server-side apply on the status subresource. Answers
    /// with the resource carrying that status.
    async fn status_write(&mut self, cc: &CoordinationCluster) -> Value {
        let (request, send) = self.next().await;
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(
            request.uri().path(),
            format!(
                "/apis/zonekeeper.io/v1alpha1/namespaces/default/coordinationclusters/{}/status",
                cc.name_any()
            )
        );
        assert_ssa(&request);
        let body = body_json(request).await;
        assert_eq!(body["apiVersion"], "zonekeeper.io/v1alpha1");
        assert_eq!(body["kind"], "CoordinationCluster");
        let mut answer = serde_json::to_value(cc).unwrap();
        answer["status"] = body["status"].clone();
        send.send_response(json_response(&answer));
        body["status"].clone()
    }

    async fn list(&mut self, path: &str, kind: &str, items: Vec<Value>) {
        let (request, send) = self.next().await;
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().path(), path);
        let query = request.uri().query().unwrap_or_default().to_string();
        assert!(
            query.contains(
                "labelSelector=app.kubernetes.io%2Finstance%3Dcoord%2Capp.kubernetes.io%2Fname%3Dzonekeeper"
            ),
            "list selects this cluster's objects: {query}"
        );
        send.send_response(json_response(
            &json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items}),
        ));
    }

    async fn delete(&mut self, path: &str, kind: &str) {
        let (request, send) = self.next().await;
        assert_eq!(
            request.method(),
            http::Method::DELETE,
            "expected a delete of {path}"
        );
        assert_eq!(request.uri().path(), path);
        let name = path.rsplit('/').next().unwrap();
        send.send_response(json_response(&json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": kind.to_lowercase()},
        })));
    }

    async fn event(&mut self) {
        let (request, send) = self.next().await;
        // a new event is created, a repeated one (same reason) patched
        assert!(
            matches!(*request.method(), http::Method::POST | http::Method::PATCH),
            "event: {}",
            request.method()
        );
        assert!(request
            .uri()
            .path()
            .starts_with("/apis/events.k8s.io/v1/namespaces/default/events"));
        let body = body_json(request).await;
        send.send_response(json_response(&body));
    }
}

fn assert_ssa(request: &Request<Body>) {
    let query = request.uri().query().unwrap_or_default();
    assert!(
        query.contains("fieldManager=zonekeeper-operator"),
        "field manager: {query}"
    );
    assert!(query.contains("force=true"), "force: {query}");
    assert_eq!(
        request.headers().get(http::header::CONTENT_TYPE).unwrap(),
        "application/apply-patch+yaml",
        "server-side apply content type"
    );
}

async fn body_json(request: Request<Body>) -> Value {
    let bytes = request.into_body().collect_bytes().await.unwrap();
    serde_json::from_slice(&bytes).expect("JSON body")
}

fn json_response(v: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

impl Context {
    /// A context whose client talks to the returned verifier.
    pub fn test() -> (Arc<Context>, ApiServerVerifier) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let admin = AdminClient::new(Duration::from_millis(500), Endpoints::Fixed(Default::default()));
        let ctx = Context::new(
            client,
            Arc::new(Metrics::default()),
            Platform::KUBERNETES_1_28,
            admin,
        );
        (Arc::new(ctx), ApiServerVerifier(handle))
    }
}
