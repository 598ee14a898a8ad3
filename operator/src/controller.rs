//! The controller: reconcile a `CoordinationCluster` into its objects and
//! walk its ensemble to the spec, one day-2 step at a time.
//!
//! Owns: [`reconcile`] (the I/O shell around the pure `desired()`,
//! `plan()` and `observe()`), [`error_policy`], the [`Context`] they share,
//! the volume finalizer, and [`run`], which watches clusters and the
//! StatefulSets they own.
//!
//! Must not: decide what the objects look like (`desired.rs`), which step
//! comes next (`plan.rs`) or what the status says (`status.rs`).
//!
//! A pass, in order (the mock API server tests assert this exact sequence):
//! 1. the finalizer `zonekeeper.io/volumes` is added to a new cluster; a
//!    deleted cluster gets its volume policy applied (`storage.onDelete`:
//!    `Delete` deletes every claim of the cluster, `Retain` keeps them),
//!    then the finalizer is removed and the garbage collector deletes the
//!    children through their owner references;
//! 2. `paused`: only the status (phase `Paused`) is written;
//! 3. a spec `desired()` refuses: status phase `Invalid` with the reason and
//!    a Warning event; nothing is applied (never half-applied);
//! 4. a changed allocation (new ids, retiring members) is recorded in
//!    status first (ids.rs explains why);
//! 5. every object applied with `PatchParams::apply("zonekeeper-operator")
//!    .force()`, ConfigMap first;
//! 6. StatefulSets and Services of this cluster that are no longer desired
//!    (a removed zone whose members are all removed) are deleted, and with
//!    `storage.onScaleDown: Delete` that zone's claims too;
//! 7. pods listed, every member's `/v1/status` read (admin.rs, bounded by a
//!    timeout; no answer is a state, not an error);
//! 8. `plan()` picks at most one step, which is carried out: an admin call
//!    on the leader or a pod deletion, with an Event either way (Normal on
//!    success, Warning `ActionFailed` with the server's answer otherwise);
//! 9. status written with server-side apply on the status subresource,
//!    with retiring members the ensemble no longer lists forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{info, warn};

use crate::admin::{AdminClient, NewMember, ServerStatus};
use crate::crd::{CoordinationCluster, CoordinationClusterStatus, MemberStatus, VolumePolicy};
use crate::desired::{
    advertised, desired, selector_labels, Desired, Names, Object, Platform, MANAGER, ZONE_LABEL,
};
use crate::metrics::Metrics;
use crate::plan::{self, forgotten, leader_of, member_state, plan, Observed, Step, Want};
use crate::status::{halted, observe, phase, pod_current, pod_ready, Seen};
use crate::{Error, Result};

/// How often a healthy cluster is looked at again even without changes.
pub const RESYNC: Duration = Duration::from_secs(60);
/// How soon a failed reconcile is retried.
pub const RETRY: Duration = Duration::from_secs(30);
/// How soon a cluster with work in progress (not ready, a day-2 step) is
/// looked at again.
pub const PROGRESS: Duration = Duration::from_secs(10);
/// The finalizer that applies `storage.onDelete` before the cluster goes.
pub const FINALIZER: &str = "zonekeeper.io/volumes";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// What the API server supports beyond 1.28 (from its version).
    pub platform: Platform,
    pub recorder: Recorder,
    /// The servers' admin API.
    pub admin: AdminClient,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, platform: Platform, admin: AdminClient) -> Context {
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
            admin,
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

    fn action(&self, action: &str, result: &str) {
        self.metrics.actions.with_label_values(&[action, result]).inc();
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// One reconcile pass; see the module doc for the steps.
pub async fn reconcile(cc: Arc<CoordinationCluster>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let ns = cc.namespace().ok_or(Error::NoNamespace)?;
    let clusters: Api<CoordinationCluster> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&clusters, FINALIZER, cc, |event| async {
        match event {
            Finalizer::Apply(cc) => apply_cluster(&cc, &ctx, &ns).await,
            Finalizer::Cleanup(cc) => cleanup(&cc, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Deletion: `storage.onDelete` decides the claims' fate. The children go
/// with their owner references once the finalizer is removed.
async fn cleanup(cc: &CoordinationCluster, ctx: &Context, ns: &str) -> Result<Action> {
    let name = cc.name_any();
    match cc.spec.storage.on_delete {
        VolumePolicy::Delete => {
            let n = delete_claims(ctx, ns, &label_selector(&selector_labels(cc))).await?;
            info!(cluster = %name, claims = n, "deleted the cluster's volumes (storage.onDelete: Delete)");
            ctx.action("delete_volumes", "ok");
            ctx.event(
                cc,
                EventType::Normal,
                "VolumesDeleted",
                format!("deleted {n} volume claim(s): storage.onDelete is Delete"),
            )
            .await;
        }
        VolumePolicy::Retain => {
            ctx.event(
                cc,
                EventType::Normal,
                "VolumesRetained",
                "kept the volume claims: storage.onDelete is Retain; delete them by label \
                 app.kubernetes.io/instance when no longer needed"
                    .into(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Deletes the claims matching `selector`; returns how many.
async fn delete_claims(ctx: &Context, ns: &str, selector: &str) -> Result<usize> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let list = claims.list(&ListParams::default().labels(selector)).await?;
    for c in &list.items {
        claims.delete(&c.name_any(), &DeleteParams::default()).await?;
    }
    Ok(list.items.len())
}

async fn apply_cluster(cc: &CoordinationCluster, ctx: &Context, ns: &str) -> Result<Action> {
    let name = cc.name_any();
    let clusters: Api<CoordinationCluster> = Api::namespaced(ctx.client.clone(), ns);

    if cc.spec.paused {
        let s = halted(
            cc,
            phase::PAUSED,
            "Paused",
            "spec.paused is true: the operator changes nothing",
            &now(),
        );
        write_status(&clusters, &name, &s).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let want = match desired(cc, ctx.platform) {
        Ok(d) => d,
        Err(e) => {
            let message = e.to_string();
            warn!(cluster = %name, %message, "refusing the spec");
            ctx.event(cc, EventType::Warning, "InvalidSpec", message.clone())
                .await;
            let s = halted(cc, phase::INVALID, "InvalidSpec", &message, &now());
            write_status(&clusters, &name, &s).await?;
            return Ok(Action::await_change());
        }
    };

    // 4. The allocation is recorded before anything uses it.
    let previous = cc.status.clone().unwrap_or_default();
    let slots = |ms: &[MemberStatus]| {
        ms.iter()
            .map(|m| (m.id, m.zone.clone(), m.ordinal, m.role))
            .collect::<Vec<_>>()
    };
    if slots(&previous.members) != slots(&want.members)
        || slots(&previous.retiring) != slots(&want.retiring)
        || previous.next_member_id != Some(want.next_member_id)
    {
        let mut s = previous.clone();
        s.members = want.members.clone();
        s.retiring = want.retiring.clone();
        s.next_member_id = Some(want.next_member_id);
        write_status(&clusters, &name, &s).await?;
        ctx.action("allocate_ids", "ok");
        let list = |ms: &[MemberStatus]| {
            ms.iter()
                .map(|m| format!("{}={}", m.pod, m.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut note = format!("member ids: {}", list(&want.members));
        if !want.retiring.is_empty() {
            note.push_str(&format!("; retiring: {}", list(&want.retiring)));
        }
        ctx.event(cc, EventType::Normal, "IdsAllocated", note).await;
    }

    // 5. Apply.
    for object in &want.objects {
        apply(&ctx.client, ns, object).await?;
    }
    ctx.action("apply", "ok");

    // 6. Prune.
    let lp = ListParams::default().labels(&label_selector(&selector_labels(cc)));
    let wanted = |kind: &str, n: &str| want.objects.iter().any(|o| o.kind() == kind && o.name() == n);
    let uid = cc.uid().unwrap_or_default();
    let ours = |o: &dyn ResourceOwners| o.owner_uids().contains(&uid);
    let sets_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let mut sets = Vec::new();
    for s in sets_api.list(&lp).await?.items {
        if wanted("StatefulSet", &s.name_any()) {
            sets.push(s);
        } else if ours(&s) {
            prune(ctx, cc, &sets_api, &s.name_any(), "StatefulSet").await?;
            let zone = s.labels().get(ZONE_LABEL).cloned();
            if let (Some(zone), VolumePolicy::Delete) = (zone, cc.spec.storage.on_scale_down) {
                let mut labels = selector_labels(cc);
                labels.insert(ZONE_LABEL.into(), zone.clone());
                let n = delete_claims(ctx, ns, &label_selector(&labels)).await?;
                ctx.action("delete_volumes", "ok");
                ctx.event(
                    cc,
                    EventType::Normal,
                    "VolumesDeleted",
                    format!(
                        "deleted {n} volume claim(s) of removed zone {zone}: storage.onScaleDown is Delete"
                    ),
                )
                .await;
            }
        }
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    for s in services.list(&lp).await?.items {
        if !wanted("Service", &s.name_any()) && ours(&s) {
            prune(ctx, cc, &services, &s.name_any(), "Service").await?;
        }
    }

    // 7. Observe pods and servers.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = pods_api.list(&lp).await?.items;
    let names = Names::new(cc, ns);
    let obs = observe_servers(ctx, &names, &want, &sets, &pods).await;

    // 8. One step.
    let step = plan(&obs);
    let gone = forgotten(&obs);
    let outcome = carry_out(ctx, cc, &names, &want, &obs, &pods_api, &step).await?;

    // 9. Status.
    let seen = Seen {
        leader: obs.leader.as_ref().map(|l| l.id),
        in_ensemble: obs
            .leader
            .as_ref()
            .map(|l| l.members.iter().map(|m| m.0).collect()),
        states: obs
            .members
            .iter()
            .map(|m| {
                let zxid = m.server.as_ref().filter(|s| s.id == m.id).map(|s| s.last_zxid);
                (m.id, (member_state(m, obs.leader.as_ref()).to_string(), zxid))
            })
            .collect(),
        retiring: want
            .retiring
            .iter()
            .filter(|r| !gone.contains(&r.id))
            .cloned()
            .collect(),
        bootstrapped: obs.leader.is_some(),
        step: outcome,
    };
    for r in want.retiring.iter().filter(|r| gone.contains(&r.id)) {
        info!(cluster = %name, member = r.id, pod = %r.pod, "member left the ensemble; forgetting it");
        ctx.action("retire_member", "ok");
        ctx.event(
            cc,
            EventType::Normal,
            "MemberRetired",
            format!(
                "member {} left the ensemble; its id stays retired and pod {} goes (or runs a new member)",
                r.id, r.pod
            ),
        )
        .await;
    }
    let s = observe(cc, &want, &sets, &pods, &seen, &now());
    let busy = s.phase.as_deref() != Some(phase::RUNNING) || !gone.is_empty();
    write_status(&clusters, &name, &s).await?;
    Ok(Action::requeue(if busy { PROGRESS } else { RESYNC }))
}

/// Reads every member's `/v1/status` (concurrently, each bounded by the
/// admin client's timeout) and folds it with the pods into [`Observed`].
async fn observe_servers(
    ctx: &Context,
    names: &Names,
    want: &Desired,
    sets: &[StatefulSet],
    pods: &[Pod],
) -> Observed {
    let all: Vec<(&MemberStatus, Want)> = want
        .members
        .iter()
        .map(|m| {
            let w = match m.role {
                crate::crd::MemberRole::Voter => Want::Voter,
                crate::crd::MemberRole::Observer => Want::Observer,
            };
            (m, w)
        })
        .chain(want.retiring.iter().map(|m| (m, Want::Retire)))
        .collect();
    let mut pod_names: Vec<(&str, &str, i32)> = all
        .iter()
        .map(|(m, _)| (m.pod.as_str(), m.zone.as_str(), m.ordinal))
        .collect();
    pod_names.sort();
    pod_names.dedup();
    let answers: BTreeMap<&str, Option<ServerStatus>> =
        futures::future::join_all(pod_names.iter().map(|&(pod, zone, ordinal)| async move {
            let exists = pods.iter().any(|p| p.name_any() == pod);
            if !exists {
                return (pod, None);
            }
            let endpoint = ctx.admin.endpoint(names, zone, ordinal);
            match ctx.admin.status(&endpoint).await {
                Ok(s) => (pod, Some(s)),
                Err(e) => {
                    tracing::debug!(pod, error = %e, "no /v1/status");
                    (pod, None)
                }
            }
        }))
        .await
        .into_iter()
        .collect();
    let leader = leader_of(answers.values().flatten());
    let members = all
        .iter()
        .map(|(m, w)| {
            let pod = pods.iter().find(|p| p.name_any() == m.pod);
            plan::Member {
                id: m.id,
                ordinal: m.ordinal,
                pod: m.pod.clone(),
                want: *w,
                pod_exists: pod.is_some(),
                pod_ready: pod.is_some_and(pod_ready),
                pod_current: pod.is_none_or(|p| pod_current(p, sets)),
                server: answers.get(m.pod.as_str()).cloned().flatten(),
            }
        })
        .collect();
    Observed { members, leader }
}

/// Carries out `step`. Returns what status shows as the step in progress:
/// `None` when idle, the reason and sentence otherwise (a failed admin call
/// included: it is reported, counted and retried on the next pass, not an
/// error of the reconcile).
async fn carry_out(
    ctx: &Context,
    cc: &CoordinationCluster,
    names: &Names,
    want: &Desired,
    obs: &Observed,
    pods_api: &Api<Pod>,
    step: &Step,
) -> Result<Option<(String, String)>> {
    let name = cc.name_any();
    let reason = step.reason();
    let sentence = step.describe();
    let leader_endpoint = || {
        let leader = obs.leader.as_ref().map(|l| l.id)?;
        want.members
            .iter()
            .chain(&want.retiring)
            .find(|m| {
                m.id == leader
                    && obs
                        .members
                        .iter()
                        .any(|o| o.id == m.id && o.server.as_ref().is_some_and(|s| s.id == leader))
            })
            .map(|m| ctx.admin.endpoint(names, &m.zone, m.ordinal))
    };
    let result = match step {
        Step::Idle => return Ok(None),
        Step::Wait(_) => return Ok(Some(("Waiting".into(), sentence))),
        Step::Restart { pod, .. } => {
            pods_api.delete(pod, &DeleteParams::default()).await?;
            Ok(())
        }
        Step::Add(id) | Step::Promote(id) | Step::Remove(id) | Step::TransferLeader { to: id, .. } => {
            let Some(endpoint) = leader_endpoint() else {
                return Ok(Some((
                    "Waiting".into(),
                    "waiting: the leader's admin port is not known".into(),
                )));
            };
            match step {
                Step::Add(_) => {
                    let m = want
                        .members
                        .iter()
                        .find(|m| m.id == *id)
                        .expect("plan adds desired members");
                    let a = advertised(names, m);
                    let body = NewMember {
                        id: a.id,
                        zone: a.zone,
                        peer_addr: a.peer_addr,
                        client_addr: a.client_addr,
                        role: "observer".into(),
                    };
                    ctx.admin.add_member(&endpoint, &body).await
                }
                Step::Promote(_) => ctx.admin.promote(&endpoint, *id).await,
                Step::Remove(_) => ctx.admin.remove(&endpoint, *id).await,
                _ => ctx.admin.transfer_leader(&endpoint, *id).await,
            }
        }
    };
    let action = snake(reason);
    match result {
        Ok(()) => {
            info!(cluster = %name, step = %sentence, "day-2 step");
            ctx.action(&action, "ok");
            ctx.event(cc, EventType::Normal, reason, sentence.clone()).await;
            Ok(Some((reason.to_string(), sentence)))
        }
        Err(e) => {
            warn!(cluster = %name, step = %sentence, error = %e, "day-2 step failed");
            ctx.action(&action, "failed");
            ctx.metrics.failures.with_label_values(&["admin"]).inc();
            let message = format!("{sentence} failed: {e}");
            ctx.event(cc, EventType::Warning, "ActionFailed", message.clone())
                .await;
            Ok(Some(("ActionFailed".into(), message)))
        }
    }
}

/// `AddMember` -> `add_member`.
fn snake(reason: &str) -> String {
    let mut out = String::new();
    for (i, c) in reason.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
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
    ctx.action("prune", "ok");
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
    //! asserting the exact Kubernetes calls (fixtures.rs) and then the
    //! status written. The servers' admin API is a real HTTP server on
    //! loopback ports (fixtures::TestEnsemble), reached over TCP by the
    //! operator's own admin client.

    use super::*;
    use crate::fixtures::{pod, settled, EnsembleModel, Expect, Scenario, TestEnsemble};
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
            .chain(&d.retiring)
            .map(|m| pod(&m.pod, &format!("coord-{}", m.zone), revision_of(&m.pod), true))
            .collect();
        (sets, pods)
    }

    /// The pods of `cc` and a formed ensemble of its members (all voters
    /// but the observers), `leader` leading.
    async fn ensemble(cc: &CoordinationCluster, leader: i64) -> TestEnsemble {
        let d = desired(cc, Platform::KUBERNETES_1_28).unwrap();
        let pods: Vec<(&str, i64)> = d
            .members
            .iter()
            .chain(&d.retiring)
            .map(|m| (m.pod.as_str(), m.id))
            .collect();
        let mut model = EnsembleModel::formed(&pods, leader);
        for m in d.members.iter().chain(&d.retiring) {
            if m.role == crate::crd::MemberRole::Observer {
                model.members.iter_mut().find(|x| x.0 == m.id).unwrap().1 = false;
            }
        }
        let names: Vec<&str> = pods.iter().map(|p| p.0).collect();
        TestEnsemble::start(&names, model).await
    }

    fn steady(
        cc: &CoordinationCluster,
        sets: Vec<StatefulSet>,
        pods: Vec<Pod>,
        after: Vec<Expect>,
    ) -> Scenario {
        Scenario::Steady {
            cc: cc.clone(),
            sets,
            services: vec![],
            pods,
            prune: vec![],
            after,
        }
    }

    /// One pass over `cc` with `pods`, expecting `after`; the status written.
    async fn pass(
        ens: &TestEnsemble,
        cc: &CoordinationCluster,
        pods: Vec<Pod>,
        after: Vec<Expect>,
    ) -> (Value, Arc<Context>) {
        let (ctx, verifier) = ens.context();
        let (sets, _) = running(cc, |_| "rev-2");
        let mocked = verifier.run(steady(cc, sets, pods, after));
        reconcile(Arc::new(cc.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        let mut statuses = timeout_after_1s(mocked).await;
        (statuses.pop().unwrap(), ctx)
    }

    /// The next resource as the API server would hand it over after the
    /// status write.
    fn with_status(cc: &CoordinationCluster, status: &Value) -> CoordinationCluster {
        let mut next = cc.clone();
        next.status = Some(serde_json::from_value(status.clone()).unwrap());
        next
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
        assert_eq!(s["members"][2]["state"], "starting");
        assert!(s.get("bootstrapped").is_none());
        assert_eq!(s["zones"][0]["clientEndpoint"], "coord-client-a.default.svc:2181");
        assert_eq!(condition(s, "Ready")["status"], "False");
        assert_eq!(condition(s, "Progressing")["status"], "True");
        assert!(
            s["operation"].as_str().unwrap().contains("no leader known"),
            "{s}"
        );
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["allocate_ids", "ok"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn a_new_cluster_gets_the_volume_finalizer_first() {
        let (ctx, verifier) = Context::test();
        let mut cc = CoordinationCluster::test();
        cc.metadata.finalizers = None;
        let mocked = verifier.run(Scenario::AddFinalizer(cc.clone()));
        let action = reconcile(Arc::new(cc), ctx).await.unwrap();
        timeout_after_1s(mocked).await;
        assert_eq!(action, Action::await_change());
    }

    #[tokio::test]
    async fn deletion_with_on_delete_delete_removes_every_claim_then_the_finalizer() {
        let (ctx, verifier) = Context::test();
        let mut cc = CoordinationCluster::test().allocated();
        cc.spec.storage.on_delete = VolumePolicy::Delete;
        cc.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mocked = verifier.run(Scenario::Deleted {
            cc: cc.clone(),
            claims: vec!["data-coord-a-0", "data-coord-b-0", "data-coord-c-0"],
        });
        reconcile(Arc::new(cc), ctx.clone()).await.unwrap();
        timeout_after_1s(mocked).await;
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["delete_volumes", "ok"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn deletion_with_on_delete_retain_keeps_the_claims() {
        let (ctx, verifier) = Context::test();
        let mut cc = CoordinationCluster::test().allocated();
        cc.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mocked = verifier.run(Scenario::Deleted {
            cc: cc.clone(),
            claims: vec![],
        });
        reconcile(Arc::new(cc), ctx.clone()).await.unwrap();
        timeout_after_1s(mocked).await;
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["delete_volumes", "ok"])
                .get(),
            0
        );
    }

    #[tokio::test]
    async fn steady_state_reads_every_server_and_reports_running() {
        let cc = CoordinationCluster::test().allocated().bootstrapped();
        let ens = ensemble(&cc, 2).await;
        let (_, pods) = running(&cc, |_| "rev-2");
        let (s, ctx) = pass(&ens, &cc, pods, vec![]).await;
        assert_eq!(s["phase"], phase::RUNNING);
        assert_eq!(s["leader"], 2);
        assert_eq!(s["bootstrapped"], true);
        let states: Vec<_> = s["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["state"].clone())
            .collect();
        assert_eq!(states, ["follower", "leader", "follower"]);
        assert_eq!(s["members"][0]["lastZxid"], (1i64 << 32) + 1000);
        assert!(s.get("operation").is_none());
        assert_eq!(condition(&s, "Ready")["status"], "True");
        assert_eq!(condition(&s, "Degraded")["status"], "False");
        assert!(ens.model().calls.is_empty());
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["allocate_ids", "ok"])
                .get(),
            0
        );
    }

    #[tokio::test]
    async fn scale_up_adds_each_new_member_as_observer_then_promotes_it_after_catch_up() {
        // zone a: 1 voter -> 3 voters (new ids 4 and 5); ids recorded
        let before = CoordinationCluster::test().allocated().bootstrapped();
        let cc = before
            .with_zones(&[("a", 3, 0), ("b", 1, 0), ("c", 1, 0)])
            .allocated();
        let ens = ensemble(&cc, 1).await;
        // the ensemble is still {1, 2, 3}; pods a-1 and a-2 run the joiners 4 and 5
        ens.model().members.retain(|x| x.0 <= 3);
        let (_, mut pods) = running(&cc, |_| "rev-2");
        for p in &mut pods {
            if p.name_any() == "coord-a-1" || p.name_any() == "coord-a-2" {
                *p = pod(&p.name_any(), "coord-a", "rev-2", false); // joiners are not ready
            }
        }
        let (s, ctx) = pass(&ens, &cc, pods.clone(), vec![Expect::Event("AddMember")]).await;
        assert_eq!(
            ens.model().calls,
            [
                r#"POST /v1/members {"id":4,"zone":"a","peer_addr":"coord-a-1.coord-peers.default.svc:2888","client_addr":"coord-a-1.coord-peers.default.svc:2181","role":"observer"}"#
            ]
        );
        assert_eq!(s["phase"], phase::UPDATING, "joiners are not down");
        assert_eq!(condition(&s, "Degraded")["status"], "False");
        assert_eq!(condition(&s, "Ready")["message"], "3/5 members ready");
        assert_eq!(condition(&s, "Progressing")["reason"], "AddMember");
        assert_eq!(
            ctx.metrics.actions.with_label_values(&["add_member", "ok"]).get(),
            1
        );

        // 4 is an observer now (its pod turns ready), but behind: wait
        ens.model().applied.insert(4, 10);
        pods[1] = pod("coord-a-1", "coord-a", "rev-2", true);
        let cc = with_status(&cc, &s);
        let (s, _) = pass(&ens, &cc, pods.clone(), vec![]).await;
        assert!(
            s["operation"]
                .as_str()
                .unwrap()
                .contains("member 4 is catching up"),
            "{s}"
        );
        assert_eq!(s["members"][1]["state"], "observer");
        assert_eq!(s["members"][2]["state"], "joining");

        // caught up: promoted
        ens.model().applied.remove(&4);
        let cc = with_status(&cc, &s);
        let (_, _) = pass(&ens, &cc, pods, vec![Expect::Event("PromoteMember")]).await;
        assert_eq!(ens.model().calls[1], "POST /v1/members/4/promote");
        assert_eq!(ens.model().members, [(1, true), (2, true), (3, true), (4, true)]);
    }

    #[tokio::test]
    async fn scale_down_moves_leadership_away_then_removes_members_before_their_pods_go() {
        // zone a: 3 voters (1, 2, 3) -> 1; member 3 leads
        let before = CoordinationCluster::test()
            .with_zones(&[("a", 3, 0)])
            .allocated()
            .bootstrapped();
        let cc = before.with_zones(&[("a", 1, 0)]).allocated();
        let retiring: Vec<i64> = cc
            .status
            .as_ref()
            .unwrap()
            .retiring
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(retiring, [2, 3]);
        let d = desired(&cc, Platform::KUBERNETES_1_28).unwrap();
        let replicas = |d: &Desired| match &d.objects.iter().find(|o| o.kind() == "StatefulSet").unwrap() {
            Object::StatefulSet(s) => s.spec.as_ref().unwrap().replicas,
            _ => unreachable!(),
        };
        assert_eq!(
            replicas(&d),
            Some(3),
            "the pods stay while their members are in the ensemble"
        );

        let ens = ensemble(&cc, 3).await;
        let (_, pods) = running(&cc, |_| "rev-2");
        let (s, _) = pass(&ens, &cc, pods.clone(), vec![Expect::Event("TransferLeader")]).await;
        assert_eq!(ens.model().calls, [r#"POST /v1/leader {"id":1}"#]);
        let cc = with_status(&cc, &s);
        let (s, _) = pass(&ens, &cc, pods.clone(), vec![Expect::Event("RemoveMember")]).await;
        assert_eq!(ens.model().calls[1], "DELETE /v1/members/3");
        let cc = with_status(&cc, &s);
        let (s, _) = pass(
            &ens,
            &cc,
            pods.clone(),
            vec![Expect::Event("RemoveMember"), Expect::Event("MemberRetired")],
        )
        .await;
        assert_eq!(ens.model().calls[2], "DELETE /v1/members/2");
        let ids: Vec<_> = s["retiring"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(ids, [2], "3 is gone from the ensemble, so it is forgotten");
        let cc = with_status(&cc, &s);
        assert_eq!(
            replicas(&desired(&cc, Platform::KUBERNETES_1_28).unwrap()),
            Some(2),
            "a-2 may go now"
        );
        let (s, _) = pass(&ens, &cc, pods, vec![Expect::Event("MemberRetired")]).await;
        assert!(s.get("retiring").is_none(), "{s}");
        let cc = with_status(&cc, &s);
        assert_eq!(
            replicas(&desired(&cc, Platform::KUBERNETES_1_28).unwrap()),
            Some(1)
        );
        assert_eq!(cc.status.unwrap().next_member_id, Some(4), "ids are not reused");
    }

    #[tokio::test]
    async fn rolling_upgrade_restarts_followers_first_and_the_leader_last_after_a_transfer() {
        let mut cc = CoordinationCluster::test().allocated().bootstrapped();
        cc.spec.image = "zonekeeper:next".into();
        let ens = ensemble(&cc, 2).await; // coord-b-0 leads
        let (_, pods) = running(&cc, |_| "rev-1");
        let (s, ctx) = pass(
            &ens,
            &cc,
            pods,
            vec![
                Expect::DeletePod("coord-c-0".into()),
                Expect::Event("RestartMember"),
            ],
        )
        .await;
        assert_eq!(s["phase"], phase::UPDATING);
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["restart_member", "ok"])
                .get(),
            1
        );

        let cc = with_status(&cc, &s);
        let (_, pods) = running(&cc, |p| if p == "coord-c-0" { "rev-2" } else { "rev-1" });
        pass(
            &ens,
            &cc,
            pods,
            vec![
                Expect::DeletePod("coord-a-0".into()),
                Expect::Event("RestartMember"),
            ],
        )
        .await;

        // only the leader is left: leadership moves first (to a restarted voter)
        let (_, pods) = running(&cc, |p| if p == "coord-b-0" { "rev-1" } else { "rev-2" });
        pass(&ens, &cc, pods.clone(), vec![Expect::Event("TransferLeader")]).await;
        assert_eq!(ens.model().calls, [r#"POST /v1/leader {"id":1}"#]);
        pass(
            &ens,
            &cc,
            pods,
            vec![
                Expect::DeletePod("coord-b-0".into()),
                Expect::Event("RestartMember"),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn no_restart_while_a_member_is_not_ready() {
        let cc = CoordinationCluster::test().allocated().bootstrapped();
        let ens = ensemble(&cc, 1).await;
        let (_, mut pods) = running(&cc, |_| "rev-1");
        pods[1] = pod("coord-b-0", "coord-b", "rev-2", false);
        let (s, _) = pass(&ens, &cc, pods, vec![]).await;
        assert_eq!(s["readyMembers"], 2);
        assert_eq!(s["members"][1]["ready"], false);
        assert_eq!(condition(&s, "Degraded")["status"], "True");
        assert!(
            s["operation"]
                .as_str()
                .unwrap()
                .contains("member 2 (coord-b-0) is not ready"),
            "{s}"
        );
    }

    #[tokio::test]
    async fn a_refused_admin_call_is_a_warning_event_and_a_retry_not_a_failed_reconcile() {
        let before = CoordinationCluster::test()
            .with_zones(&[("a", 3, 0)])
            .allocated()
            .bootstrapped();
        let cc = before.with_zones(&[("a", 1, 0)]).allocated();
        let ens = ensemble(&cc, 1).await;
        ens.model().fail = Some((409, "would_lose_quorum"));
        let (_, pods) = running(&cc, |_| "rev-2");
        let (s, ctx) = pass(&ens, &cc, pods, vec![Expect::Event("ActionFailed")]).await;
        let op = s["operation"].as_str().unwrap();
        assert!(
            op.contains("removing member 3") && op.contains("409 would_lose_quorum"),
            "{op}"
        );
        assert_eq!(condition(&s, "Progressing")["reason"], "ActionFailed");
        assert_eq!(ctx.metrics.failures.with_label_values(&["admin"]).get(), 1);
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["remove_member", "failed"])
                .get(),
            1
        );
        assert_eq!(s["retiring"].as_array().unwrap().len(), 2, "nothing forgotten");
    }

    #[tokio::test]
    async fn an_admin_call_that_hangs_times_out_and_is_reported() {
        let before = CoordinationCluster::test()
            .with_zones(&[("a", 3, 0)])
            .allocated()
            .bootstrapped();
        let cc = before.with_zones(&[("a", 1, 0)]).allocated();
        let ens = ensemble(&cc, 1).await;
        ens.model().hang_changes = true;
        let (_, pods) = running(&cc, |_| "rev-2");
        let (s, _) = pass(&ens, &cc, pods, vec![Expect::Event("ActionFailed")]).await;
        assert!(
            s["operation"].as_str().unwrap().contains("no answer within"),
            "{s}"
        );
    }

    #[tokio::test]
    async fn servers_that_do_not_answer_stop_every_step() {
        let mut cc = CoordinationCluster::test().allocated().bootstrapped();
        cc.spec.image = "zonekeeper:next".into();
        let ens = ensemble(&cc, 1).await;
        ens.model().hang_status = true;
        let (_, pods) = running(&cc, |_| "rev-1");
        let (s, _) = pass(&ens, &cc, pods, vec![]).await;
        assert!(
            s["operation"].as_str().unwrap().contains("no leader known"),
            "{s}"
        );
        assert_eq!(s["members"][0]["state"], "starting");
        assert_eq!(
            s["leader"],
            Value::Null,
            "no leader was seen and none was recorded"
        );
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
    async fn removed_zone_is_pruned_with_its_claims_and_its_ids_retired() {
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
        let mut sets: Vec<StatefulSet> = sets;
        for s in &mut sets {
            s.metadata.owner_references = serde_json::from_value(owner.clone()).unwrap();
            s.metadata.labels = Some([(ZONE_LABEL.to_string(), "c".to_string())].into());
        }
        let scenario = Scenario::Steady {
            cc: cc.clone(),
            sets,
            services,
            pods,
            prune: vec![
                ("StatefulSet", "coord-c".into()),
                ("Service", "coord-client-c".into()),
            ],
            after: vec![],
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
            ctx.metrics.actions.with_label_values(&["prune", "ok"]).get(),
            2,
            "not the Service it does not own"
        );
        assert_eq!(
            ctx.metrics
                .actions
                .with_label_values(&["delete_volumes", "ok"])
                .get(),
            1
        );
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
