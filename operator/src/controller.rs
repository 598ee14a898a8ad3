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
