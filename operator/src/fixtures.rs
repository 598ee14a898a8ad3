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
use crate::controller::{Context, FINALIZER};
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
        cc.metadata.finalizers = Some(vec![FINALIZER.into()]);
        cc
    }

    /// As if a leader had been seen (membership goes through the admin API).
    pub fn bootstrapped(mut self) -> Self {
        self.status.get_or_insert_with(Default::default).bootstrapped = true;
        self
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
    /// A new cluster: ids recorded in status (and an event), every object applied,
    /// StatefulSets, Services and pods listed (none yet), status written.
    Create(CoordinationCluster),
    /// `paused`: one status write, nothing else.
    Paused(CoordinationCluster),
    /// A spec desired() refuses: a Warning event and one status write.
    Invalid(CoordinationCluster),
    /// A cluster without the finalizer: one JSON patch adding it.
    AddFinalizer(CoordinationCluster),
    /// A deleted cluster: `claims` listed (and deleted when the policy
    /// is Delete), an event, the finalizer removed.
    Deleted {
        cc: CoordinationCluster,
        claims: Vec<&'static str>,
    },
    /// A cluster whose ids are recorded: apply, then the lists answer
    /// `sets`, `services` and `pods`; `prune` names the StatefulSets and
    /// Services expected to be deleted (a pruned StatefulSet's zone claims
    /// are listed, none found, and an event follows), `after` the calls
    /// the day-2 step makes; then the status write.
    Steady {
        cc: CoordinationCluster,
        sets: Vec<StatefulSet>,
        services: Vec<Value>,
        pods: Vec<Pod>,
        prune: Vec<(&'static str, String)>,
        after: Vec<Expect>,
    },
}

/// A call expected after the pods are listed.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The pod is deleted (a restart).
    DeletePod(String),
    /// An event with this reason.
    Event(&'static str),
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
                    v.event_reason("IdsAllocated").await;
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
                    v.event_reason("InvalidSpec").await;
                    statuses.push(v.status_write(&cc).await);
                }
                Scenario::AddFinalizer(cc) => v.finalizer_patch(&cc, "add").await,
                Scenario::Deleted { cc, claims } => {
                    let items = claims
                        .iter()
                        .map(|c| json!({"metadata": {"name": c, "namespace": "default"}}))
                        .collect::<Vec<_>>();
                    let delete = cc.spec.storage.on_delete == crate::crd::VolumePolicy::Delete;
                    if delete {
                        v.list(
                            "/api/v1/namespaces/default/persistentvolumeclaims",
                            "PersistentVolumeClaimList",
                            items,
                        )
                        .await;
                        for c in &claims {
                            v.delete(
                                &format!("/api/v1/namespaces/default/persistentvolumeclaims/{c}"),
                                "PersistentVolumeClaim",
                            )
                            .await;
                        }
                        v.event_reason("VolumesDeleted").await;
                    } else {
                        v.event_reason("VolumesRetained").await;
                    }
                    v.finalizer_patch(&cc, "remove").await;
                }
                Scenario::Steady {
                    cc,
                    sets,
                    services,
                    pods,
                    prune,
                    after,
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
                        v.event_reason("Pruned").await;
                        v.list(
                            "/api/v1/namespaces/default/persistentvolumeclaims",
                            "PersistentVolumeClaimList",
                            vec![],
                        )
                        .await;
                        v.event_reason("VolumesDeleted").await;
                    }
                    v.list("/api/v1/namespaces/default/services", "ServiceList", services)
                        .await;
                    for (kind, name) in prune.iter().filter(|(k, _)| *k == "Service") {
                        v.delete(&format!("/api/v1/namespaces/default/services/{name}"), kind)
                            .await;
                        v.event_reason("Pruned").await;
                    }
                    let pods = pods.iter().map(|p| serde_json::to_value(p).unwrap()).collect();
                    v.list("/api/v1/namespaces/default/pods", "PodList", pods).await;
                    for e in after {
                        match e {
                            Expect::DeletePod(pod) => {
                                v.delete(&format!("/api/v1/namespaces/default/pods/{pod}"), "Pod")
                                    .await
                            }
                            Expect::Event(reason) => v.event_reason(reason).await,
                        }
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

    /// A JSON patch of the cluster adding or removing the finalizer.
    async fn finalizer_patch(&mut self, cc: &CoordinationCluster, op: &str) {
        let (request, send) = self.next().await;
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(
            request.uri().path(),
            format!(
                "/apis/zonekeeper.io/v1alpha1/namespaces/default/coordinationclusters/{}",
                cc.name_any()
            )
        );
        let body = body_json(request).await;
        let ops: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["op"].as_str().unwrap())
            .collect();
        assert!(ops.contains(&op), "{body}");
        if op == "add" {
            assert!(body.to_string().contains(FINALIZER), "{body}");
        }
        let mut answer = serde_json::to_value(cc).unwrap();
        answer["metadata"]["finalizers"] = json!([FINALIZER]);
        send.send_response(json_response(&answer));
    }

    async fn event_reason(&mut self, reason: &str) {
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
        if request_is_new(&body) {
            assert_eq!(body["reason"], reason, "event {body}");
        }
        send.send_response(json_response(&body));
    }
}

/// A created event carries its reason; a repeated one is a patch of its
/// series only.
fn request_is_new(body: &Value) -> bool {
    body.get("reason").is_some()
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

/// A test HTTP server speaking the servers' admin API contract
/// (docs/admin-api.md) on one real loopback port per pod, over a shared
/// model of the ensemble: `/v1/status` as each pod's server would answer,
/// and the membership calls, which only the leader accepts (409
/// `not_leader` elsewhere), each recorded in `calls`. `fail` makes
/// membership calls answer an error; `hang` makes every request hang (the
/// operator's timeout must end it).
pub struct TestEnsemble {
    pub state: Arc<std::sync::Mutex<EnsembleModel>>,
    pub endpoints: std::collections::BTreeMap<String, String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The model behind [`TestEnsemble`].
#[derive(Debug, Default, Clone)]
pub struct EnsembleModel {
    pub leader: Option<i64>,
    /// The ensemble: (id, voter).
    pub members: Vec<(i64, bool)>,
    /// Which member id each pod's server runs (absent: not answering).
    pub runs: std::collections::BTreeMap<String, i64>,
    pub commit: u64,
    /// Applied index per id (default: `commit`).
    pub applied: std::collections::BTreeMap<i64, u64>,
    /// Membership calls answer `(status, code)`.
    pub fail: Option<(u16, &'static str)>,
    /// Status requests hang.
    pub hang_status: bool,
    /// Membership requests hang.
    pub hang_changes: bool,
    /// The membership calls that succeeded, as `METHOD path body`.
    pub calls: Vec<String>,
}

impl EnsembleModel {
    /// `ids` all voters, `leader` leading, pods `coord-<zone>-<ordinal>`
    /// given as `(pod, id)`.
    pub fn formed(pods: &[(&str, i64)], leader: i64) -> EnsembleModel {
        EnsembleModel {
            leader: Some(leader),
            members: pods.iter().map(|&(_, id)| (id, true)).collect(),
            runs: pods.iter().map(|&(p, id)| (p.to_string(), id)).collect(),
            commit: 1000,
            ..Default::default()
        }
    }

    fn status(&self, pod: &str) -> Option<Value> {
        let id = *self.runs.get(pod)?;
        let member = self.members.iter().find(|m| m.0 == id);
        let role = match member {
            _ if self.leader == Some(id) => "leader",
            Some((_, true)) => "follower",
            Some((_, false)) => "observer",
            None => "follower",
        };
        let members: Vec<Value> = self
            .members
            .iter()
            .map(|&(m, voter)| {
                json!({"id": m, "zone": "a", "role": if voter { "voter" } else { "observer" },
                       "client_addr": format!("m{m}:2181"), "peer_addr": format!("m{m}:2888")})
            })
            .collect();
        let commit = if member.is_some() { self.commit } else { 0 };
        let applied = self.applied.get(&id).copied().unwrap_or(commit);
        Some(json!({
            "id": id, "zone": "a", "role": role,
            "leader_id": if member.is_some() { self.leader } else { None },
            "last_zxid": (1i64 << 32) + applied as i64,
            "members": if member.is_some() { members } else { vec![] },
            "version": "test", "uptime_ms": 1, "raft_term": 1,
            "raft_commit_index": commit, "raft_applied_index": applied,
            "ready": member.is_some() && self.leader.is_some(),
            "session_count": 0, "stats": {},
        }))
    }
}

type Shared = (Arc<std::sync::Mutex<EnsembleModel>>, String);

impl TestEnsemble {
    /// Serves `model` on one free loopback port per pod in `pods`.
    pub async fn start(pods: &[&str], model: EnsembleModel) -> TestEnsemble {
        use axum::routing::{get, post};
        let state = Arc::new(std::sync::Mutex::new(model));
        let mut endpoints = std::collections::BTreeMap::new();
        let mut tasks = Vec::new();
        for pod in pods {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            endpoints.insert(pod.to_string(), listener.local_addr().unwrap().to_string());
            let shared: Shared = (state.clone(), pod.to_string());
            let app = axum::Router::new()
                .route("/v1/status", get(status_route))
                .route("/v1/members", post(change_route))
                .route("/v1/members/{id}", axum::routing::delete(change_route))
                .route("/v1/members/{id}/promote", post(change_route))
                .route("/v1/leader", post(change_route))
                .with_state(shared);
            tasks.push(tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            }));
        }
        TestEnsemble {
            state,
            endpoints,
            tasks,
        }
    }

    pub fn model(&self) -> std::sync::MutexGuard<'_, EnsembleModel> {
        self.state.lock().unwrap()
    }

    /// A context whose admin client talks to this ensemble.
    pub fn context(&self) -> (Arc<Context>, ApiServerVerifier) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let admin = AdminClient::new(
            Duration::from_millis(500),
            Endpoints::Fixed(self.endpoints.clone()),
        );
        let ctx = Context::new(
            client,
            Arc::new(Metrics::default()),
            Platform::KUBERNETES_1_28,
            admin,
        );
        (Arc::new(ctx), ApiServerVerifier(handle))
    }
}

impl Drop for TestEnsemble {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn api_error(status: u16, code: &str, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn status_route(
    axum::extract::State((state, pod)): axum::extract::State<Shared>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (hang, status) = {
        let m = state.lock().unwrap();
        (m.hang_status, m.status(&pod))
    };
    if hang {
        std::future::pending::<()>().await;
    }
    match status {
        Some(v) => axum::Json(v).into_response(),
        None => api_error(503, "not_ready", "starting"),
    }
}

async fn change_route(
    axum::extract::State((state, pod)): axum::extract::State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.lock().unwrap().hang_changes {
        std::future::pending::<()>().await;
    }
    let mut m = state.lock().unwrap();
    let me = m.runs.get(&pod).copied();
    if me.is_none() || me != m.leader {
        return api_error(409, "not_leader", "this member is not the leader");
    }
    if let Some((status, code)) = m.fail {
        return api_error(status, code, "refused by the test ensemble");
    }
    let path = uri.path().to_string();
    let text = String::from_utf8_lossy(&body).to_string();
    let id_in_path = || path.split('/').nth(3).and_then(|x| x.parse::<i64>().ok());
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/members") => {
            let v: Value = serde_json::from_str(&text).unwrap();
            let id = v["id"].as_i64().unwrap();
            if m.members.iter().any(|x| x.0 == id) {
                return api_error(409, "member_exists", "exists");
            }
            m.members.push((id, v["role"] == "voter"));
        }
        ("POST", "/v1/leader") => {
            let v: Value = serde_json::from_str(&text).unwrap();
            m.leader = v["id"].as_i64();
        }
        ("POST", _) => {
            let id = id_in_path().unwrap();
            match m.members.iter_mut().find(|x| x.0 == id) {
                Some(x) => x.1 = true,
                None => return api_error(404, "unknown_member", "unknown"),
            }
        }
        ("DELETE", _) => {
            let id = id_in_path().unwrap();
            m.members.retain(|x| x.0 != id);
        }
        _ => return api_error(404, "not_found", "no route"),
    }
    m.calls
        .push(format!("{method} {path} {text}").trim_end().to_string());
    axum::Json(json!([])).into_response()
}
