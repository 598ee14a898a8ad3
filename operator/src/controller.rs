//! The controller: reconcile a `CoordinationCluster` into its objects.
//!
//! Owns: [`reconcile`] (one pass: record ids, server-side apply the
//! `desired()` objects, prune what is no longer desired, restart at most one
//! outdated pod, write status), [`error_policy`], the [`Context`] they share
//! and [`run`], which watches clusters and the StatefulSets they own.
//!
//! Must not: decide what the objects look like (`desired.rs`) or what the
//! status says (`status.rs`); both are pure functions this module feeds.
//!
//! A pass, in order (the mock API server tests assert this exact sequence):
//! 1. a deleted cluster: nothing (owner references let the garbage collector
//!    delete the children; the StatefulSets' claim retention policy applies
//!    `storage.onDelete`, so no finalizer is needed);
//! 2. `paused`: only the status (phase `Paused`) is written;
//! 3. a spec `desired()` refuses: status phase `Invalid` with the reason and
//!    a Warning event; nothing is applied (never half-applied);
//! 4. new server ids: recorded in status first (ids.rs explains why);
//! 5. every object applied with `PatchParams::apply("zonekeeper-operator")
//!    .force()`, ConfigMap first;
//! 6. StatefulSets and Services of this cluster that are no longer desired
//!    (a removed zone) are listed and deleted;
//! 7. pods listed; when every member is ready and some run an old revision,
//!    one is deleted (the StatefulSets use `OnDelete`), observers first,
//!    the leader last;
//! 8. status written with server-side apply on the status subresource.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{info, warn};

use crate::crd::{CoordinationCluster, CoordinationClusterStatus};
use crate::desired::{desired, selector_labels, Object, Platform, MANAGER};
use crate::metrics::Metrics;
use crate::status::{halted, observe, phase, restart_candidate};
use crate::{Error, Result};

/// How often a healthy cluster is looked at again even without changes.
pub const RESYNC: Duration = Duration::from_secs(60);
/// How soon a failed reconcile is retried.
pub const RETRY: Duration = Duration::from_secs(30);
/// How soon a cluster with work in progress (not ready, restarting) is
/// looked at again.
pub const PROGRESS: Duration = Duration::from_secs(10);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// What the API server supports beyond 1.28 (from its version).
    pub platform: Platform,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, platform: Platform) -> Context {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Context {
            client,
            metrics,
            platform,
            recorder,
        }
    }

    async fn event(&self, cc: &CoordinationCluster, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &cc.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// One reconcile pass; see the module doc for the steps.
pub async fn reconcile(cc: Arc<CoordinationCluster>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let ns = cc.namespace().ok_or(Error::NoNamespace)?;
    let name = cc.name_any();
    let clusters: Api<CoordinationCluster> = Api::namespaced(ctx.client.clone(), &ns);

    if cc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if cc.spec.paused {
        let s = halted(
            &cc,
            phase::PAUSED,
            "Paused",
            "spec.paused is true: the operator changes nothing",
            &now(),
        );
        write_status(&clusters, &name, &s).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let want = match desired(&cc, ctx.platform) {
        Ok(d) => d,
        Err(e) => {
            let message = e.to_string();
            warn!(cluster = %name, %message, "refusing the spec");
            ctx.event(&cc, EventType::Warning, "InvalidSpec", message.clone())
                .await;
            let s = halted(&cc, phase::INVALID, "InvalidSpec", &message, &now());
            write_status(&clusters, &name, &s).await?;
            return Ok(Action::await_change());
        }
    };

    // 4. Ids are recorded before anything uses them.
    let previous = cc.status.clone().unwrap_or_default();
    let slots = |ms: &[crate::crd::MemberStatus]| {
        ms.iter()
            .map(|m| (m.id, m.zone.clone(), m.ordinal, m.role))
            .collect::<Vec<_>>()
    };
    if slots(&previous.members) != slots(&want.members)
        || previous.next_member_id != Some(want.next_member_id)
    {
        let mut s = previous.clone();
        s.members = want.members.clone();
        s.next_member_id = Some(want.next_member_id);
        write_status(&clusters, &name, &s).await?;
        ctx.metrics.actions.with_label_values(&["allocate_ids"]).inc();
    }

    // 5. Apply.
    for object in &want.objects {
        apply(&ctx.client, &ns, object).await?;
    }
    ctx.metrics.actions.with_label_values(&["apply"]).inc();

    // 6. Prune.
    let selector = selector_labels(&cc)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let lp = ListParams::default().labels(&selector);
    let wanted = |kind: &str, n: &str| want.objects.iter().any(|o| o.kind() == kind && o.name() == n);
    let uid = cc.uid().unwrap_or_default();
    let ours = |o: &dyn ResourceOwners| o.owner_uids().contains(&uid);
    let sets_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let mut sets = Vec::new();
    for s in sets_api.list(&lp).await?.items {
        if wanted("StatefulSet", &s.name_any()) {
            sets.push(s);
        } else if ours(&s) {
            prune(&ctx, &cc, &sets_api, &s.name_any(), "StatefulSet").await?;
        }
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for s in services.list(&lp).await?.items {
        if !wanted("Service", &s.name_any()) && ours(&s) {
            prune(&ctx, &cc, &services, &s.name_any(), "Service").await?;
        }
    }

    // 7. At most one restart.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods = pods_api.list(&lp).await?.items;
    let mut busy = false;
    if let Some(pod) = restart_candidate(&cc, &want, &sets, &pods) {
        info!(cluster = %name, %pod, "restarting onto the current config");
        pods_api.delete(&pod, &DeleteParams::default()).await?;
        ctx.metrics.actions.with_label_values(&["restart_pod"]).inc();
        ctx.event(
            &cc,
            EventType::Normal,
            "RestartMember",
            format!("deleted pod {pod} to run the current config"),
        )
        .await;
        busy = true;
    }

    // 8. Status.
    let s = observe(&cc, &want, &sets, &pods, &now());
    busy |= s.phase.as_deref() != Some(phase::RUNNING);
    write_status(&clusters, &name, &s).await?;
    Ok(Action::requeue(if busy { PROGRESS } else { RESYNC }))
}

/// Logs, counts by error kind, and retries later.
pub fn error_policy(cc: Arc<CoordinationCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(cluster = %cc.name_any(), %error, "reconcile failed");
    ctx.metrics
        .failures
        .with_label_values(&[error.metric_label()])
        .inc();
    Action::requeue(RETRY)
}

/// Server-side apply of one object, as the `zonekeeper-operator` manager,
/// taking over fields another manager set (`force`).
async fn apply(client: &Client, ns: &str, object: &Object) -> Result<()> {
    async fn typed<K>(client: &Client, ns: &str, name: &str, body: serde_json::Value) -> Result<()>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
            .await?;
        Ok(())
    }
    let (name, body) = (object.name(), object.to_value());
    match object {
        Object::ConfigMap(_) => typed::<ConfigMap>(client, ns, &name, body).await,
        Object::Service(_) => typed::<Service>(client, ns, &name, body).await,
        Object::StatefulSet(_) => typed::<StatefulSet>(client, ns, &name, body).await,
        Object::PodDisruptionBudget(_) => typed::<PodDisruptionBudget>(client, ns, &name, body).await,
    }
}

async fn prune<K>(ctx: &Context, cc: &CoordinationCluster, api: &Api<K>, name: &str, kind: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    info!(cluster = %cc.name_any(), kind, name, "deleting an object no longer desired");
    api.delete(name, &DeleteParams::default()).await?;
    ctx.metrics.actions.with_label_values(&["prune"]).inc();
    ctx.event(
        cc,
        EventType::Normal,
        "Pruned",
        format!("deleted {kind} {name}, no longer in the spec"),
    )
    .await;
    Ok(())
}

/// Owner uids of an object (for "is this ours" before deleting).
trait ResourceOwners {
    fn owner_uids(&self) -> Vec<String>;
}

impl<K: Resource> ResourceOwners for K {
    fn owner_uids(&self) -> Vec<String> {
        self.meta()
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.clone())
            .collect()
    }
}

/// Writes the whole status with server-side apply on the status
/// subresource (fields left out are removed, so it always carries the ids).
async fn write_status(
    api: &Api<CoordinationCluster>,
    name: &str,
    status: &CoordinationClusterStatus,
) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": CoordinationCluster::api_version(&()),
        "kind": CoordinationCluster::kind(&()),
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
        .await?;
    Ok(())
}

/// The command that installs the CRD, printed when it is missing.
pub const INSTALL_CRD: &str =
    "crdgen | kubectl apply --server-side -f -   (or: kubectl apply --server-side -f manifests/crd.yaml)";

/// Fails with the install command when the CRD is not installed.
pub async fn check_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = format!(
        "{}.{}",
        CoordinationCluster::plural(&()),
        CoordinationCluster::group(&())
    );
    match crds.get_opt(&name).await? {
        Some(_) => Ok(()),
        None => Err(Error::CrdMissing(name)),
    }
}

/// The API server's capabilities, from its version.
pub async fn detect_platform(client: &Client) -> Result<Platform> {
    let info = client.apiserver_version().await?;
    let num = |s: &str| {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .unwrap_or(0)
    };
    Ok(Platform::for_version(num(&info.major), num(&info.minor)))
}

/// Runs the controller until SIGTERM/ctrl-c.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let clusters: Api<CoordinationCluster> = Api::all(client.clone());
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=zonekeeper-operator");
    Controller::new(clusters, watcher::Config::default())
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}

#[cfg(test)]
mod test {
    //! Reconcile against the mock API server: each test is one Scenario,
    //! asserting the exact calls (fixtures.rs) and then the status written.

    use super::*;
    use crate::fixtures::{pod, settled, Scenario};
    use crate::status::phase;
    use serde_json::Value;

    async fn timeout_after_1s(handle: tokio::task::JoinHandle<Vec<Value>>) -> Vec<Value> {
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("the scenario finished within 1 s (a call it expects was not made)")
            .expect("the scenario's assertions held")
    }

    fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .unwrap()
    }

    #[tokio::test]
    async fn create_records_ids_first_then_applies_everything_then_writes_status() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test();
        let mocked = verifier.run(Scenario::Create(cc.clone()));
        let action = reconcile(Arc::new(cc), ctx.clone())
            .await
            .expect("reconcile succeeds");
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(action, Action::requeue(PROGRESS));

        // the first write is the id allocation alone
        let ids: Vec<_> = statuses[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(statuses[0]["nextMemberId"], 4);
        assert!(statuses[0].get("phase").is_none());
        // the last one the observed state: nothing runs yet
        let s = &statuses[1];
        assert_eq!(s["phase"], phase::PENDING);
        assert_eq!(s["readyMembers"], 0);
        assert_eq!(s["nextMemberId"], 4);
        assert_eq!(s["observedGeneration"], 1);
        assert_eq!(s["members"][2]["pod"], "coord-c-0");
        assert_eq!(s["members"][2]["ready"], false);
        assert_eq!(s["zones"][0]["clientEndpoint"], "coord-client-a.default.svc:2181");
        assert_eq!(condition(s, "Ready")["status"], "False");
        assert_eq!(condition(s, "Progressing")["status"], "True");
        assert_eq!(ctx.metrics.actions.with_label_values(&["allocate_ids"]).get(), 1);
    }

    fn running(
        cc: &CoordinationCluster,
        revision_of: impl Fn(&str) -> &'static str,
    ) -> (Vec<StatefulSet>, Vec<Pod>) {
        let d = desired(cc, Platform::KUBERNETES_1_28).unwrap();
        let sets: Vec<StatefulSet> = d
            .objects
            .iter()
            .filter_map(|o| match o {
                Object::StatefulSet(s) => Some(settled(s, "rev-2")),
                _ => None,
            })
            .collect();
        let pods = d
            .members
            .iter()
            .map(|m| pod(&m.pod, &format!("coord-{}", m.zone), revision_of(&m.pod), true))
            .collect();
        (sets, pods)
    }

    #[tokio::test]
    async fn steady_state_applies_and_reports_running_without_touching_ids() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test().allocated();
        let (sets, pods) = running(&cc, |_| "rev-2");
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services: vec![],
            pods,
            prune: vec![],
            restart: None,
        };
        let mocked = verifier.run(scenario);
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(statuses.len(), 1, "no id write when nothing changed");
        assert_eq!(statuses[0]["phase"], phase::RUNNING);
        assert_eq!(statuses[0]["readyMembers"], 3);
        assert_eq!(condition(&statuses[0], "Ready")["status"], "True");
        assert_eq!(condition(&statuses[0], "Degraded")["status"], "False");
        assert_eq!(action, Action::requeue(RESYNC));
    }

    #[tokio::test]
    async fn scale_up_allocates_new_ids_and_keeps_old_ones() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test()
            .allocated()
            .with_zones(&[("a", 3, 0), ("b", 1, 0), ("c", 1, 1)]);
        let mocked = verifier.run(Scenario::Create(cc.clone()));
        reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        let ids: Vec<_> = statuses[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["pod"].as_str().unwrap().to_string(), m["id"].as_i64().unwrap()))
            .collect();
        let want = [
            ("coord-a-0", 1),
            ("coord-a-1", 4),
            ("coord-a-2", 5),
            ("coord-b-0", 2),
            ("coord-c-0", 3),
            ("coord-c-1", 6),
        ];
        assert_eq!(ids, want.map(|(p, i)| (p.to_string(), i)));
        assert_eq!(statuses[0]["nextMemberId"], 7);
    }

    #[tokio::test]
    async fn removed_zone_is_pruned_and_its_ids_retired() {
        let (ctx, verifier) = Context::test();
        let before = CoordinationCluster::test().allocated(); // a:1 b:2 c:3
        let (mut sets, pods) = running(&before, |_| "rev-2");
        sets.retain(|s| s.name_any() == "coord-c");
        // zone c goes, a gets a second voter, d an observer; ids recorded
        let cc = before
            .with_zones(&[("a", 2, 0), ("b", 1, 0), ("d", 0, 1)])
            .allocated();
        let owner = serde_json::json!([{"apiVersion": "zonekeeper.io/v1alpha1", "kind": "CoordinationCluster",
            "name": "coord", "uid": "11111111-2222-3333-4444-555555555555"}]);
        let services = vec![
            serde_json::json!({"metadata": {"name": "coord-client-c", "namespace": "default", "ownerReferences": owner}}),
            serde_json::json!({"metadata": {"name": "coord-client-x", "namespace": "default"}}),
        ];
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services,
            pods,
            prune: vec![
                ("StatefulSet", "coord-c".into()),
                ("Service", "coord-client-c".into()),
            ],
            restart: None,
        };
        let mocked = verifier.run(scenario);
        reconcile(Arc::new(cc), ctx.clone()).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        let ids: Vec<_> = statuses[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1, 4, 2, 5], "c's id 3 is retired; new slots get fresh ids");
        assert_eq!(statuses[0]["nextMemberId"], 6);
        assert_eq!(
            ctx.metrics.actions.with_label_values(&["prune"]).get(),
            2,
            "not the Service it does not own"
        );
    }

    #[tokio::test]
    async fn rolling_restart_deletes_one_observer_before_voters() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test()
            .with_zones(&[("a", 1, 1), ("b", 1, 0), ("c", 1, 0)])
            .allocated();
        let (sets, pods) = running(&cc, |_| "rev-1");
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services: vec![],
            pods,
            prune: vec![],
            restart: Some("coord-a-1".into()),
        };
        let mocked = verifier.run(scenario);
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(
            statuses[0]["phase"],
            phase::DEGRADED,
            "members on an old revision"
        );
        assert_eq!(condition(&statuses[0], "Progressing")["reason"], "RollingRestart");
        assert_eq!(action, Action::requeue(PROGRESS));
    }

    #[tokio::test]
    async fn rolling_restart_takes_the_leader_last() {
        let (ctx, verifier) = Context::test();
        let mut cc = CoordinationCluster::test().allocated();
        cc.status.as_mut().unwrap().leader = Some(3);
        let (sets, pods) = running(&cc, |p| if p == "coord-b-0" { "rev-2" } else { "rev-1" });
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services: vec![],
            pods,
            prune: vec![],
            restart: Some("coord-a-0".into()),
        };
        let mocked = verifier.run(scenario);
        reconcile(Arc::new(cc), ctx).await.unwrap();
        timeout_after_1s(mocked).await;
    }

    #[tokio::test]
    async fn no_restart_while_a_member_is_not_ready() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test().allocated();
        let (sets, mut pods) = running(&cc, |_| "rev-1");
        pods[1] = pod("coord-b-0", "coord-b", "rev-1", false);
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services: vec![],
            pods,
            prune: vec![],
            restart: None,
        };
        let mocked = verifier.run(scenario);
        reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(statuses[0]["readyMembers"], 2);
        assert_eq!(statuses[0]["members"][1]["ready"], false);
        assert_eq!(condition(&statuses[0], "Degraded")["status"], "True");
    }

    #[tokio::test]
    async fn paused_only_writes_status() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test().allocated().paused();
        let mocked = verifier.run(Scenario::Paused(cc.clone()));
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(statuses[0]["phase"], phase::PAUSED);
        assert_eq!(
            statuses[0]["members"].as_array().unwrap().len(),
            3,
            "ids are kept while paused"
        );
        assert_eq!(action, Action::requeue(RESYNC));
    }

    #[tokio::test]
    async fn invalid_spec_is_reported_and_nothing_applied() {
        let (ctx, verifier) = Context::test();
        // four voters: refused by the CRD's CEL rule, and again here
        let cc = CoordinationCluster::test().with_zones(&[("a", 2, 0), ("b", 2, 0)]);
        let mocked = verifier.run(Scenario::Invalid(cc.clone()));
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        let statuses = timeout_after_1s(mocked).await;
        assert_eq!(statuses[0]["phase"], phase::INVALID);
        let ready = condition(&statuses[0], "Ready");
        assert_eq!(ready["reason"], "InvalidSpec");
        assert!(ready["message"].as_str().unwrap().contains("4 voters"), "{ready}");
        assert_eq!(action, Action::await_change());
    }

    #[tokio::test]
    async fn a_deleted_cluster_is_left_to_the_garbage_collector() {
        let (ctx, _verifier) = Context::test();
        let mut cc = CoordinationCluster::test();
        cc.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        assert_eq!(action, Action::await_change());
    }

    #[tokio::test]
    async fn api_errors_are_counted_and_retried() {
        let (ctx, verifier) = Context::test();
        let cc = CoordinationCluster::test().allocated();
        let server = tokio::spawn(async move {
            let mut handle = verifier.0;
            let (_request, send) = handle.next_request().await.unwrap();
            let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "etcd is down", "reason": "InternalError", "code": 500});
            send.send_response(
                http::Response::builder()
                    .status(500)
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        });
        let cc = Arc::new(cc);
        let err = reconcile(cc.clone(), ctx.clone())
            .await
            .expect_err("the apply failed");
        server.await.unwrap();
        assert_eq!(err.metric_label(), "kube");
        assert_eq!(error_policy(cc, &err, ctx.clone()), Action::requeue(RETRY));
        assert_eq!(ctx.metrics.failures.with_label_values(&["kube"]).get(), 1);
    }
}
