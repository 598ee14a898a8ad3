//! The desired state of a cluster, as a pure function of the resource.
//!
//! Owns: [`desired`], which turns a [`CoordinationCluster`] (spec, plus the
//! id allocation kept in its status) into the Kubernetes objects that should
//! exist — one ConfigMap with every member's server config, a headless peer
//! Service, a client Service, one client Service per zone, one StatefulSet
//! per zone and a PodDisruptionBudget — and the member list with ids.
//! Also the server-config contract types ([`ServerConfig`]; the server's
//! `Settings`, docs/server.md) and the naming and labelling of everything.
//!
//! Must not: do I/O, read the clock or depend on anything but its arguments.
//! The same resource always gives the same objects, byte for byte, which is
//! what the golden tests (`tests/golden.rs`) check and what lets the
//! controller re-apply them on every reconcile without causing changes.
//!
//! Kubernetes versions: objects are built from k8s-openapi's 1.33 types but
//! must be accepted by a 1.28 API server, so fields newer than 1.28 are only
//! set when [`Platform`] says the API server has them (CI validates the
//! rendered objects against the 1.28 schemas: scripts/validate-manifests.sh).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext, Service,
    ServicePort, ServiceSpec, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::crd::{CoordinationCluster, MemberRole, MemberStatus};
use crate::ids::{allocate, Allocation};

/// Client (ZooKeeper protocol) port, as the server's default (docs/server.md).
pub const CLIENT_PORT: i32 = 2181;
/// Peer (replication) port.
pub const PEER_PORT: i32 = 2888;
/// Admin HTTP port (`/healthz`, `/readyz`, `/metrics`, `/v1/status`).
pub const ADMIN_PORT: i32 = 8080;

/// Where the ConfigMap is mounted; each pod reads `<pod name>.toml` there.
pub const CONFIG_DIR: &str = "/etc/zonekeeper";
/// Where the data volume is mounted; member `N` keeps its data in
/// `member-N/` so that a new id never starts from a retired member's state.
pub const DATA_DIR: &str = "/var/lib/zonekeeper";
/// The uid and gid the server runs as by default (distroless "nonroot").
pub const RUN_AS: i64 = 65532;

/// Field manager of every server-side apply.
pub const MANAGER: &str = "zonekeeper-operator";
/// Pod-template annotation carrying a hash of the shared server settings,
/// so that a settings change makes a new StatefulSet revision (and a
/// rolling restart); membership changes do not.
pub const CONFIG_HASH_ANNOTATION: &str = "zonekeeper.io/config-hash";
/// Label with the zone name on zone-scoped objects and pods.
pub const ZONE_LABEL: &str = "zonekeeper.io/zone";
/// The node label pods are pinned by.
pub const TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// What the target API server supports beyond Kubernetes 1.28.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Platform {
    /// `Service.spec.trafficDistribution` (beta and on by default from 1.31).
    pub traffic_distribution: bool,
}

impl Platform {
    /// Kubernetes 1.28: the oldest version the operator supports.
    pub const KUBERNETES_1_28: Platform = Platform {
        traffic_distribution: false,
    };

    /// The capabilities of Kubernetes `major.minor`.
    pub fn for_version(major: u32, minor: u32) -> Platform {
        Platform {
            traffic_distribution: (major, minor) >= (1, 31),
        }
    }
}

/// A child object. Typed, so that each is built from k8s-openapi types.
/// (Few and short-lived: the size difference between variants is harmless.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    ConfigMap(ConfigMap),
    Service(Service),
    StatefulSet(StatefulSet),
    PodDisruptionBudget(PodDisruptionBudget),
}

impl Object {
    /// `metadata.name`.
    pub fn name(&self) -> String {
        match self {
            Object::ConfigMap(o) => o.name_any(),
            Object::Service(o) => o.name_any(),
            Object::StatefulSet(o) => o.name_any(),
            Object::PodDisruptionBudget(o) => o.name_any(),
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ConfigMap(_) => "ConfigMap",
            Object::Service(_) => "Service",
            Object::StatefulSet(_) => "StatefulSet",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
        }
    }

    /// The object as JSON, with `apiVersion` and `kind` (as server-side
    /// apply and YAML files need them).
    pub fn to_value(&self) -> serde_json::Value {
        fn typed<K: Resource<DynamicType = ()> + Serialize>(o: &K) -> serde_json::Value {
            let mut v = serde_json::to_value(o).expect("k8s-openapi objects serialize");
            v["apiVersion"] = K::api_version(&()).into();
            v["kind"] = K::kind(&()).into();
            v
        }
        match self {
            Object::ConfigMap(o) => typed(o),
            Object::Service(o) => typed(o),
            Object::StatefulSet(o) => typed(o),
            Object::PodDisruptionBudget(o) => typed(o),
        }
    }
}

/// Why a resource cannot be turned into objects. Reported in status as the
/// `Invalid` phase; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the resource has no namespace")]
    NoNamespace,
    #[error("the resource has no uid (it was not read from the API server)")]
    NoUid,
    #[error("{0}")]
    Spec(String),
    #[error(
        "server ids are exhausted: id {0} would exceed 255; ids are never reused, so recreate the cluster"
    )]
    IdsExhausted(i64),
}

/// The outcome of [`desired`]: the objects to apply, in order, and the
/// member list with the id allocation to record in status.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// ConfigMap first (pods read it at start), then Services, StatefulSets
    /// and the PodDisruptionBudget.
    pub objects: Vec<Object>,
    /// Members with their ids, in zone then ordinal order.
    pub members: Vec<MemberStatus>,
    /// Members to remove from the ensemble before their pods go (ids.rs);
    /// their pods and configs stay until then.
    pub retiring: Vec<MemberStatus>,
    /// The next id to hand out (goes to `status.nextMemberId`).
    pub next_member_id: i64,
}

/// Checks the rules the CRD schema enforces, again: a resource created
/// before the CRD was updated, or a schema-less test fixture, must still be
/// refused rather than half-applied.
pub fn validate(cc: &CoordinationCluster) -> Result<(), Invalid> {
    let spec = &cc.spec;
    let bad = |m: String| Err(Invalid::Spec(m));
    if spec.image.is_empty() {
        return bad("spec.image must not be empty".into());
    }
    if spec.zones.is_empty() {
        return bad("spec.zones must list at least one zone".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for z in &spec.zones {
        if !seen.insert(z.name.as_str()) {
            return bad(format!(
                "zone name {:?} appears twice; zone names must be unique",
                z.name
            ));
        }
        if z.voters < 0 || z.observers < 0 {
            return bad(format!(
                "zone {:?}: voters and observers must not be negative",
                z.name
            ));
        }
        if z.members() == 0 {
            return bad(format!("zone {:?} has no voters and no observers", z.name));
        }
        let label_ok = !z.name.is_empty()
            && z.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !z.name.starts_with('-')
            && !z.name.ends_with('-');
        if !label_ok {
            return bad(format!("zone name {:?} is not a DNS label", z.name));
        }
        if cc.name_any().len() + z.name.len() > 51 {
            return bad(format!(
                "name {:?} and zone {:?} are together longer than 51",
                cc.name_any(),
                z.name
            ));
        }
    }
    let voters: i32 = spec.zones.iter().map(|z| z.voters).sum();
    if !(1..=7).contains(&voters) || voters % 2 == 0 {
        return bad(format!(
            "{voters} voters in total; use an odd number between 1 and 7"
        ));
    }
    let size_ok = {
        let s = spec.storage.size.trim_end_matches(char::is_alphabetic);
        s.parse::<f64>().map(|v| v > 0.0).unwrap_or(false)
    };
    if !size_ok {
        return bad(format!(
            "storage.size {:?} is not a positive quantity",
            spec.storage.size
        ));
    }
    if let (Some(lo), Some(hi)) = (
        spec.server.min_session_timeout_ms,
        spec.server.max_session_timeout_ms,
    ) {
        if lo > hi {
            return bad(format!(
                "minSessionTimeoutMs {lo} exceeds maxSessionTimeoutMs {hi}"
            ));
        }
    }
    Ok(())
}

/// The objects a cluster should consist of. Pure: see the module doc.
pub fn desired(cc: &CoordinationCluster, platform: Platform) -> Result<Desired, Invalid> {
    validate(cc)?;
    let ns = cc.namespace().ok_or(Invalid::NoNamespace)?;
    let owner = cc.controller_owner_ref(&()).ok_or(Invalid::NoUid)?;
    let Allocation {
        members,
        retiring,
        next_member_id,
    } = allocate(cc)?;
    let names = Names::new(cc, &ns);

    let config = config_map(cc, &names, &owner, &members, &retiring);
    let hash = settings_hash(cc);

    let mut objects = vec![Object::ConfigMap(config)];
    objects.push(Object::Service(peer_service(cc, &names, &owner)));
    objects.push(Object::Service(client_service(
        cc, &names, &owner, platform, None,
    )));
    for zone in &cc.spec.zones {
        objects.push(Object::Service(client_service(
            cc,
            &names,
            &owner,
            platform,
            Some(&zone.name),
        )));
    }
    // A zone's StatefulSet keeps the pods of its retiring members (a zone
    // removed from the spec keeps its StatefulSet until they are gone).
    let mut zones: Vec<&str> = cc.spec.zones.iter().map(|z| z.name.as_str()).collect();
    for r in &retiring {
        if !zones.contains(&r.zone.as_str()) {
            zones.push(&r.zone);
        }
    }
    for zone in zones {
        let replicas = members
            .iter()
            .chain(&retiring)
            .filter(|m| m.zone == zone)
            .map(|m| m.ordinal + 1)
            .max()
            .unwrap_or(0);
        objects.push(Object::StatefulSet(stateful_set(
            cc, &names, &owner, zone, replicas, &hash,
        )));
    }
    objects.push(Object::PodDisruptionBudget(disruption_budget(cc, &names, &owner)));
    Ok(Desired {
        objects,
        members,
        retiring,
        next_member_id,
    })
}

/// The names of everything, in one place.
#[derive(Debug, Clone)]
pub struct Names {
    cluster: String,
    namespace: String,
}

impl Names {
    pub fn new(cc: &CoordinationCluster, namespace: &str) -> Names {
        Names {
            cluster: cc.name_any(),
            namespace: namespace.to_string(),
        }
    }
    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }
    pub fn peer_service(&self) -> String {
        format!("{}-peers", self.cluster)
    }
    pub fn client_service(&self) -> String {
        format!("{}-client", self.cluster)
    }
    pub fn zone_client_service(&self, zone: &str) -> String {
        format!("{}-client-{zone}", self.cluster)
    }
    pub fn stateful_set(&self, zone: &str) -> String {
        format!("{}-{zone}", self.cluster)
    }
    pub fn pod(&self, zone: &str, ordinal: i32) -> String {
        format!("{}-{zone}-{ordinal}", self.cluster)
    }
    pub fn disruption_budget(&self) -> String {
        self.cluster.clone()
    }
    /// Stable DNS name of a pod through the headless peer Service. Relative
    /// to the cluster domain (resolved through the pod's DNS search path),
    /// so the operator need not know the domain.
    pub fn pod_host(&self, zone: &str, ordinal: i32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(zone, ordinal),
            self.peer_service(),
            self.namespace
        )
    }
    /// `host:port` of a Service's client port.
    pub fn client_endpoint(&self, service: &str) -> String {
        format!("{service}.{}.svc:{CLIENT_PORT}", self.namespace)
    }
}

/// Labels every object and pod of a cluster carries; the first two select.
pub fn selector_labels(cc: &CoordinationCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "zonekeeper".to_string()),
        ("app.kubernetes.io/instance".to_string(), cc.name_any()),
    ])
}

fn labels(cc: &CoordinationCluster, zone: Option<&str>) -> BTreeMap<String, String> {
    let mut l = selector_labels(cc);
    l.insert("app.kubernetes.io/component".into(), "server".into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    if let Some(zone) = zone {
        l.insert(ZONE_LABEL.into(), zone.into());
    }
    l
}

fn zone_selector(cc: &CoordinationCluster, zone: Option<&str>) -> BTreeMap<String, String> {
    let mut l = selector_labels(cc);
    if let Some(zone) = zone {
        l.insert(ZONE_LABEL.into(), zone.into());
    }
    l
}

fn meta(name: String, names: &Names, owner: &OwnerReference, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

// ---- server config ---------------------------------------------------------

/// One member's server config file: the server's `Settings` (docs/server.md,
/// server/src/config.rs), of which the operator renders this subset. Keys
/// are the server's TOML keys; `None` leaves the server's default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerConfig {
    pub id: i64,
    pub zone: String,
    pub data_dir: String,
    /// Bind addresses: all interfaces, inside the pod.
    pub client_addr: String,
    pub admin_addr: String,
    pub peer_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_session_timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_client_connections: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub four_letter_words: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_every_entries: Option<i64>,
    /// Set once the ensemble has formed: a member with an empty data
    /// directory waits for the leader to add it (`members` then only says
    /// whom to reach) instead of founding an ensemble of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<bool>,
    /// The ensemble; last, so TOML puts the `[[members]]` tables at the end.
    pub members: Vec<MemberConfig>,
}

/// One `[[members]]` entry (the server's `MemberSettings`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberConfig {
    pub id: i64,
    pub zone: String,
    /// Advertised `host:port` for replication.
    pub peer_addr: String,
    /// Advertised `host:port` for clients.
    pub client_addr: String,
    pub role: MemberRole,
}

/// How a member is advertised to the others (its `[[members]]` entry, and
/// the body of `POST /v1/members` when the operator adds it).
pub fn advertised(names: &Names, m: &MemberStatus) -> MemberConfig {
    let host = names.pod_host(&m.zone, m.ordinal);
    MemberConfig {
        id: m.id,
        zone: m.zone.clone(),
        peer_addr: format!("{host}:{PEER_PORT}"),
        client_addr: format!("{host}:{CLIENT_PORT}"),
        role: m.role,
    }
}

/// Every member's config, keyed by pod name.
///
/// Before the ensemble has formed, the config is the founding one: every
/// desired member, `join` unset. Afterwards (`status.bootstrapped`) each
/// member says `join = true` and lists the desired and retiring members as
/// whom to reach; the ensemble's real membership lives in its log. A pod
/// that still holds a retiring member keeps that member's config until the
/// member is removed (plan.rs), then gets the new member's.
pub fn server_configs(
    cc: &CoordinationCluster,
    names: &Names,
    members: &[MemberStatus],
    retiring: &[MemberStatus],
) -> BTreeMap<String, ServerConfig> {
    let bootstrapped = cc.status.as_ref().is_some_and(|s| s.bootstrapped);
    let known: Vec<&MemberStatus> = if bootstrapped {
        members.iter().chain(retiring).collect()
    } else {
        members.iter().collect()
    };
    let mut ensemble: Vec<MemberConfig> = known.iter().map(|m| advertised(names, m)).collect();
    ensemble.sort_by_key(|m| m.id);
    let s = &cc.spec.server;
    members
        .iter()
        .chain(retiring)
        .map(|m| {
            let config = ServerConfig {
                id: m.id,
                zone: m.zone.clone(),
                data_dir: format!("{DATA_DIR}/member-{}", m.id),
                client_addr: format!("0.0.0.0:{CLIENT_PORT}"),
                admin_addr: format!("0.0.0.0:{ADMIN_PORT}"),
                peer_addr: format!("0.0.0.0:{PEER_PORT}"),
                tick_ms: s.tick_ms,
                min_session_timeout_ms: s.min_session_timeout_ms,
                max_session_timeout_ms: s.max_session_timeout_ms,
                max_client_connections: s.max_client_connections,
                four_letter_words: s.four_letter_words.clone(),
                snapshot_every_entries: s.snapshot_every_entries,
                join: bootstrapped.then_some(true),
                members: ensemble.clone(),
            };
            (m.pod.clone(), config)
        })
        // a retiring member comes later, so it keeps its pod's entry
        .collect()
}

fn config_map(
    cc: &CoordinationCluster,
    names: &Names,
    owner: &OwnerReference,
    members: &[MemberStatus],
    retiring: &[MemberStatus],
) -> ConfigMap {
    let data = server_configs(cc, names, members, retiring)
        .into_iter()
        .map(|(pod, config)| {
            let text = toml::to_string(&config).expect("the server config serializes to TOML");
            (format!("{pod}.toml"), text)
        })
        .collect();
    ConfigMap {
        metadata: meta(names.config_map(), names, owner, labels(cc, None)),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// FNV-1a (64 bit) of the server settings every member shares (not the ids
/// or the member list: membership changes go through the admin API and need
/// no restart, while a changed setting restarts every member, one at a
/// time). Stable across Rust versions and platforms, unlike
/// `DefaultHasher`, so golden files stay valid.
fn settings_hash(cc: &CoordinationCluster) -> String {
    let text = serde_json::to_string(&cc.spec.server).expect("settings serialize");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

// ---- services --------------------------------------------------------------

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// Headless: gives every pod a stable DNS name. Publishes not-ready pods,
/// because a member becomes ready only once a leader is known, which needs
/// the peers to find each other first.
fn peer_service(cc: &CoordinationCluster, names: &Names, owner: &OwnerReference) -> Service {
    Service {
        metadata: meta(names.peer_service(), names, owner, labels(cc, None)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(cc)),
            ports: Some(vec![
                port("client", CLIENT_PORT),
                port("peer", PEER_PORT),
                port("admin", ADMIN_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The cluster-wide client Service (`zone` None) prefers endpoints in the
/// client's zone: `trafficDistribution: PreferClose` where the API server
/// has it (1.31+), else topology-aware routing (`topology-mode: Auto`,
/// 1.27+), which falls back to all endpoints when a zone has too few. Never
/// `internalTrafficPolicy: Local`: it drops traffic from nodes without a
/// server. A zone's own Service (`zone` Some) selects only that zone's pods.
fn client_service(
    cc: &CoordinationCluster,
    names: &Names,
    owner: &OwnerReference,
    platform: Platform,
    zone: Option<&str>,
) -> Service {
    let name = match zone {
        Some(z) => names.zone_client_service(z),
        None => names.client_service(),
    };
    let mut metadata = meta(name, names, owner, labels(cc, zone));
    let mut traffic_distribution = None;
    if zone.is_none() {
        if platform.traffic_distribution {
            traffic_distribution = Some("PreferClose".to_string());
        } else {
            metadata.annotations = Some(BTreeMap::from([(
                "service.kubernetes.io/topology-mode".to_string(),
                "Auto".to_string(),
            )]));
        }
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(zone_selector(cc, zone)),
            ports: Some(vec![port("client", CLIENT_PORT)]),
            traffic_distribution,
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

// ---- stateful sets ---------------------------------------------------------

fn stateful_set(
    cc: &CoordinationCluster,
    names: &Names,
    owner: &OwnerReference,
    zone: &str,
    replicas: i32,
    config_hash: &str,
) -> StatefulSet {
    let spec = &cc.spec;
    let mut pod_labels = spec.pod.labels.clone();
    pod_labels.extend(labels(cc, Some(zone)));
    let mut annotations = spec.pod.annotations.clone();
    if spec.metrics.enabled {
        annotations.insert("prometheus.io/scrape".into(), "true".into());
        annotations.insert("prometheus.io/port".into(), ADMIN_PORT.to_string());
        annotations.insert("prometheus.io/path".into(), "/metrics".into());
    }
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash.into());

    let pin = NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement {
            key: TOPOLOGY_ZONE.into(),
            operator: "In".into(),
            values: Some(vec![zone.into()]),
        }]),
        ..NodeSelectorTerm::default()
    };
    let spread = TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "DoNotSchedule".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(selector_labels(cc)),
            ..LabelSelector::default()
        }),
        ..TopologySpreadConstraint::default()
    };
    let security = spec.pod.security_context.clone().unwrap_or(PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    });
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let container_port = |name: &str, port: i32| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    let container = Container {
        name: "server".into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(vec!["zonekeeper-server".into()]),
        // $(POD_NAME) is expanded by the kubelet, not by a shell.
        args: Some(vec!["--config".into(), format!("{CONFIG_DIR}/$(POD_NAME).toml")]),
        env: Some(vec![EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..Default::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        ports: Some(vec![
            container_port("client", CLIENT_PORT),
            container_port("peer", PEER_PORT),
            container_port("admin", ADMIN_PORT),
        ]),
        // Startup covers WAL replay (up to 5 minutes); then liveness only
        // restarts a process that stopped answering at all.
        startup_probe: Some(probe("/healthz", 5, 60)),
        liveness_probe: Some(probe("/healthz", 10, 6)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        affinity: Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![pin],
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        }),
        topology_spread_constraints: Some(vec![spread]),
        node_selector: non_empty(spec.pod.node_selector.clone()),
        tolerations: (!spec.pod.tolerations.is_empty()).then(|| spec.pod.tolerations.clone()),
        priority_class_name: spec.pod.priority_class_name.clone(),
        service_account_name: spec.pod.service_account_name.clone(),
        automount_service_account_token: Some(false),
        security_context: Some(security),
        termination_grace_period_seconds: Some(30),
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: names.config_map(),
                    ..Default::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(spec.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: meta(names.stateful_set(zone), names, owner, labels(cc, Some(zone))),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names.peer_service()),
            selector: LabelSelector {
                match_labels: Some(zone_selector(cc, Some(zone))),
                ..Default::default()
            },
            // Every member must start for a quorum to form (a member is
            // ready only once a leader is known), so no ordered start.
            pod_management_policy: Some("Parallel".into()),
            // The operator restarts pods itself, one at a time and only
            // while every member is ready (controller.rs); a StatefulSet's
            // own rolling update would roll every zone at once.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(spec.storage.on_delete.as_str().into()),
                when_scaled: Some(spec.storage.on_scale_down.as_str().into()),
            }),
            revision_history_limit: Some(5),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn non_empty(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

// ---- disruption budget -----------------------------------------------------

/// Voluntary disruptions (drains, evictions) may take down one member at a
/// time, and none when that could cost the quorum: with `v` voters a
/// quorum survives `(v - 1) / 2` failures, so one voter (or a cluster
/// whose only voter is in danger) allows none. Observers are counted too,
/// which only makes the budget stricter.
fn disruption_budget(cc: &CoordinationCluster, names: &Names, owner: &OwnerReference) -> PodDisruptionBudget {
    let voters: i32 = cc.spec.zones.iter().map(|z| z.voters).sum();
    let max_unavailable = ((voters - 1) / 2).min(1);
    PodDisruptionBudget {
        metadata: meta(names.disruption_budget(), names, owner, labels(cc, None)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(cc)),
                ..Default::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod test {
    //! `validate`: the operator's second line behind the CRD's schema and
    //! CEL rules (crd.rs tests those). Each refused spec gets a message
    //! saying what to change, and `desired()` returns no objects at all.

    use super::*;

    fn refused(cc: &CoordinationCluster, expected: &str) {
        match desired(cc, Platform::KUBERNETES_1_28) {
            Err(e) => assert!(e.to_string().contains(expected), "{e}"),
            Ok(_) => panic!("accepted; expected a refusal containing {expected:?}"),
        }
    }

    #[test]
    fn every_schema_rule_is_checked_again() {
        let base = CoordinationCluster::test;
        refused(&base().with_zones(&[("a", 1, 0), ("a", 2, 0)]), "appears twice");
        refused(&base().with_zones(&[("a", 0, 1)]), "0 voters in total");
        refused(
            &base().with_zones(&[("a", 2, 0)]),
            "2 voters in total; use an odd number",
        );
        refused(&base().with_zones(&[("a", 4, 0), ("b", 5, 0)]), "9 voters");
        refused(&base().with_zones(&[("a", 3, -1)]), "must not be negative");
        refused(
            &base().with_zones(&[("a", 1, 0), ("b", 0, 0)]),
            "no voters and no observers",
        );
        refused(&base().with_zones(&[("A_1", 1, 0)]), "not a DNS label");
        refused(&base().with_zones(&[]), "at least one zone");
        let mut cc = base();
        cc.spec.storage.size = "-1Gi".into();
        refused(&cc, "not a positive quantity");
        cc.spec.storage.size = "0".into();
        refused(&cc, "not a positive quantity");
        let mut cc = base();
        cc.spec.image.clear();
        refused(&cc, "spec.image");
        let mut cc = base();
        cc.spec.server.min_session_timeout_ms = Some(10);
        cc.spec.server.max_session_timeout_ms = Some(5);
        refused(&cc, "exceeds maxSessionTimeoutMs");
        let mut cc = base();
        cc.metadata.name = Some("n".repeat(60));
        refused(&cc, "longer than 51");
    }

    #[test]
    fn a_resource_not_read_from_the_api_server_is_refused() {
        let mut cc = CoordinationCluster::test();
        cc.metadata.uid = None;
        assert_eq!(desired(&cc, Platform::KUBERNETES_1_28), Err(Invalid::NoUid));
        cc.metadata.namespace = None;
        assert!(desired(&cc, Platform::KUBERNETES_1_28).is_err());
    }

    #[test]
    fn membership_changes_do_not_change_the_pod_template_but_settings_do() {
        let template = |cc: &CoordinationCluster| {
            desired(cc, Platform::KUBERNETES_1_28)
                .unwrap()
                .objects
                .into_iter()
                .find_map(|o| match o {
                    Object::StatefulSet(s) if s.name_any() == "coord-a" => Some(s.spec.unwrap().template),
                    _ => None,
                })
                .unwrap()
        };
        let cc = CoordinationCluster::test().allocated();
        let bigger = cc
            .clone()
            .with_zones(&[("a", 1, 0), ("b", 3, 0), ("c", 1, 2)])
            .allocated();
        assert_eq!(template(&cc), template(&bigger), "no rolling restart for a scale");
        let mut tuned = cc.clone();
        tuned.spec.server.tick_ms = Some(50);
        assert_ne!(template(&cc), template(&tuned), "a setting restarts every member");
    }

    #[test]
    fn configs_join_once_the_ensemble_has_formed() {
        let cc = CoordinationCluster::test().allocated();
        let names = Names::new(&cc, "default");
        let d = desired(&cc, Platform::KUBERNETES_1_28).unwrap();
        let founding = server_configs(&cc, &names, &d.members, &d.retiring);
        assert!(founding
            .values()
            .all(|c| c.join.is_none() && c.members.len() == 3));
        let formed = cc.bootstrapped();
        let joined = server_configs(&formed, &names, &d.members, &d.retiring);
        assert!(joined.values().all(|c| c.join == Some(true)));
    }
}
