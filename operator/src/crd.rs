//! The `CoordinationCluster` custom resource (`zonekeeper.io/v1alpha1`).
//!
//! Owns: the Rust types of the CRD (spec and status), their schema and the
//! validation the API server enforces (OpenAPI bounds and patterns, CEL
//! `x-kubernetes-validations` for cross-field rules). `crdgen` prints
//! [`CoordinationCluster::crd`]; `manifests/crd.yaml` is its output.
//!
//! Must not: talk to the API server or build child objects (that is
//! `desired.rs`). Every rule here is one the API server checks at admission,
//! so an invalid resource is refused before the operator ever sees it; what
//! the schema cannot express is checked by `desired::validate` and reported
//! as a condition, never half-applied.
//!
//! Field names follow Kubernetes conventions (camelCase on the wire); server
//! settings map one to one onto the server's TOML keys (docs/server.md).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSecurityContext, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most members a zone may run of each role. Server ids are 1..=255 and are
/// never reused, so the bounds keep a cluster far from running out.
pub const MAX_VOTERS_PER_ZONE: i32 = 7;
/// See [`MAX_VOTERS_PER_ZONE`].
pub const MAX_OBSERVERS_PER_ZONE: i32 = 16;
/// Most zones in one cluster (bounds the CEL rules' cost).
pub const MAX_ZONES: usize = 16;

/// A zonekeeper ensemble spread over zones: per-zone StatefulSets, services,
/// a quorum-keeping disruption budget and the server configuration.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "zonekeeper.io",
    version = "v1alpha1",
    kind = "CoordinationCluster",
    plural = "coordinationclusters",
    singular = "coordinationcluster",
    shortname = "cc",
    category = "zonekeeper",
    namespaced,
    status = "CoordinationClusterStatus",
    derive = "PartialEq",
    doc = "A zonekeeper (ZooKeeper-compatible) ensemble spread over zones.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyMembers"),
    printcolumn(name = "Leader", type_ = "integer", json_path = ".status.leader"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec.zones.all(z, size(self.metadata.name) + size(z.name) <= 51)")
        .message("metadata.name and each zone name together must be at most 51 characters (object names are <name>-<zone>)"),
)]
#[x_kube(
    validation = Rule::new("self.zones.map(z, z.voters).sum() >= 1 && self.zones.map(z, z.voters).sum() <= 7 && self.zones.map(z, z.voters).sum() % 2 == 1")
        .message("the total number of voters over all zones must be odd and between 1 and 7 (1, 3, 5 or 7)"),
    validation = Rule::new("self.zones.all(z, self.zones.exists_one(y, y.name == z.name))")
        .message("zone names must be unique"),
)]
#[serde(rename_all = "camelCase")]
pub struct CoordinationClusterSpec {
    /// Server image; its entrypoint is not used: the container runs
    /// `zonekeeper-server --config /etc/zonekeeper/<pod>.toml`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image pull policy of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// The zones the ensemble runs in, each with its own StatefulSet.
    #[schemars(length(min = 1, max = 16))]
    pub zones: Vec<ZoneSpec>,

    /// Persistent storage of each member (write-ahead log and snapshots).
    #[serde(default)]
    pub storage: StorageSpec,

    /// CPU and memory of each server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Additions to every server pod.
    #[serde(default)]
    pub pod: PodOverrides,

    /// Server settings rendered into the config file (docs/server.md).
    #[serde(default)]
    pub server: ServerSettings,

    /// Prometheus scraping of the servers' `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// While true the operator changes nothing in the cluster (it still
    /// reports status): for manual repairs.
    #[serde(default)]
    pub paused: bool,
}

/// One zone: its `topology.kubernetes.io/zone` value and its members.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[x_kube(validation = Rule::new("self.voters + self.observers >= 1")
    .message("a zone needs at least one voter or observer"))]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    /// The zone's `topology.kubernetes.io/zone` node label value. It also
    /// names the zone's objects, so it must be a DNS label (lower case
    /// letters, digits and '-'), as zone names of the major clouds are.
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// Voting members in this zone (they form the write quorum).
    #[serde(default)]
    #[schemars(range(min = 0, max = 7))]
    pub voters: i32,

    /// Non-voting members in this zone: local reads, no quorum cost.
    #[serde(default)]
    #[schemars(range(min = 0, max = 16))]
    pub observers: i32,
}

impl ZoneSpec {
    /// Members (StatefulSet replicas) of the zone: voters take ordinals
    /// `0..voters`, observers the ones after.
    pub fn members(&self) -> i32 {
        self.voters + self.observers
    }
}

/// Image pull policy (the Kubernetes `imagePullPolicy` values).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// What happens to a member's volume when the member goes away.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema, Default)]
pub enum VolumePolicy {
    /// The PersistentVolumeClaim is deleted with the member.
    Delete,
    /// The claim is kept. A member that comes back at the same ordinal gets
    /// a new server id and so a fresh data directory on it (never the
    /// retired member's state); the old directory stays for manual recovery.
    #[default]
    Retain,
}

impl VolumePolicy {
    /// The StatefulSet `persistentVolumeClaimRetentionPolicy` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumePolicy::Delete => "Delete",
            VolumePolicy::Retain => "Retain",
        }
    }
}

/// Storage of each member.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each member's volume, a positive Kubernetes quantity such as
    /// `10Gi`. Fixed at creation (StatefulSet claim templates are immutable).
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage.size is immutable"))]
    pub size: String,

    /// StorageClass of the volumes; the cluster default when unset. Fixed at
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage.storageClassName is immutable"))]
    pub storage_class_name: Option<String>,

    /// What happens to a removed member's volume on scale-down (default
    /// `Delete`: a removed member's id is retired, so its data is useless).
    #[serde(default = "default_on_scale_down")]
    pub on_scale_down: VolumePolicy,

    /// What happens to every volume when the cluster is deleted (default
    /// `Retain`, so deleting the resource by mistake loses no data).
    #[serde(default)]
    pub on_delete: VolumePolicy,
}

fn default_storage_size() -> String {
    "10Gi".to_string()
}

fn default_on_scale_down() -> VolumePolicy {
    VolumePolicy::Delete
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_storage_size(),
            storage_class_name: None,
            on_scale_down: default_on_scale_down(),
            on_delete: VolumePolicy::Retain,
        }
    }
}

/// Additions to every server pod. Operator-owned labels, volumes and the
/// container itself cannot be overridden.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra pod labels (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Tolerations, e.g. for dedicated nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector, added to the zone pinning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// ServiceAccount of the pods (the server needs no API access; its token
    /// is not mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Replaces the default pod security context (non-root uid/gid 65532,
    /// fsGroup 65532, RuntimeDefault seccomp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
}

/// Server settings; each maps onto the server TOML key of the same name in
/// snake_case (docs/server.md). Unset means the server's default.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[x_kube(
    validation = Rule::new("!has(self.minSessionTimeoutMs) || !has(self.maxSessionTimeoutMs) || self.minSessionTimeoutMs <= self.maxSessionTimeoutMs")
        .message("minSessionTimeoutMs must not exceed maxSessionTimeoutMs"),
)]
#[serde(rename_all = "camelCase")]
pub struct ServerSettings {
    /// `tick_ms` (ZooKeeper `tickTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub tick_ms: Option<i64>,
    /// `min_session_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_session_timeout_ms: Option<i64>,
    /// `max_session_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_session_timeout_ms: Option<i64>,
    /// `snapshot_every_entries` (ZooKeeper `snapCount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub snapshot_every_entries: Option<i64>,
    /// `max_client_connections` per client IP, 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_client_connections: Option<i32>,
    /// `four_letter_words`: comma-separated list, or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub four_letter_words: Option<String>,
}

/// Prometheus scraping.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Adds the `prometheus.io/scrape`, `port` and `path` pod annotations
    /// for the admin port's `/metrics`.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec { enabled: true }
    }
}

/// Observed state, written only by the operator.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinationClusterStatus {
    /// `Pending`, `Running`, `Degraded`, `Paused` or `Invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `Ready`, `Progressing` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Members whose pods are ready.
    #[serde(default)]
    pub ready_members: i32,
    /// Server id of the leader, as the servers reported it in the last
    /// pass; unset when no leader was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<i64>,
    /// The id allocation and what is known of each member. Ids are stored
    /// here and never reused (see docs/operator.md, "Server ids").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// The next server id to hand out; only ever grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_member_id: Option<i64>,
    /// Members no longer in the spec that are still in the ensemble: the
    /// operator removes them (`DELETE /v1/members/{id}`) before their pods
    /// go, then forgets them. Their ids stay retired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<MemberStatus>,
    /// The ensemble has formed (a leader was seen). From then on membership
    /// changes go through the admin API, and every member's config says
    /// `join = true`, so a member with an empty volume waits to be added
    /// instead of founding a second ensemble.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bootstrapped: bool,
    /// The day-2 step taken or waited on in the last pass, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Client endpoints per zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneStatus>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Whether a member votes (the server's `role` key).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Voter,
    Observer,
}

impl MemberRole {
    /// The server config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "voter",
            MemberRole::Observer => "observer",
        }
    }
}

/// One member: its allocated id and where it runs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Server id (1..=255), never reused within this cluster.
    pub id: i64,
    /// Zone name.
    pub zone: String,
    /// StatefulSet ordinal within the zone.
    pub ordinal: i32,
    /// Pod name.
    pub pod: String,
    /// `voter` or `observer`.
    pub role: MemberRole,
    /// Whether the pod is ready, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// `leader`, `follower`, `observer` (in the ensemble), `joining` (its
    /// server runs, not added yet), `starting` or `retired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The last zxid its server applied (`/v1/status`), when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_zxid: Option<i64>,
}

/// A zone's client endpoint.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStatus {
    /// Zone name.
    pub name: String,
    /// `host:port` of the zone's client Service.
    pub client_endpoint: String,
    /// Ready members in the zone.
    pub ready_members: i32,
}

/// The CRD as YAML, exactly as `manifests/crd.yaml` holds it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let yaml = serde_yaml::to_string(&CoordinationCluster::crd()).expect("the CRD serializes to YAML");
    format!("# Generated by `cargo run -p zonekeeper-operator --bin crdgen`; do not edit.\n{yaml}")
}

#[cfg(test)]
mod test {
    //! The CRD's CEL rules, evaluated client-side (kube's `cel` feature) as
    //! the API server would at admission.

    use super::*;
    use kube::core::cel::{validate_cel, validate_cel_update};

    fn cc(zones: serde_json::Value) -> CoordinationCluster {
        let mut cc = CoordinationCluster::test();
        cc.spec.zones = serde_json::from_value(zones).unwrap();
        cc
    }

    fn refused(cc: &CoordinationCluster, expected: &str) {
        let err = validate_cel(cc).expect_err("the rules refuse it");
        assert!(err.to_string().contains(expected), "{err}");
    }

    #[test]
    fn odd_voter_counts_up_to_seven_are_accepted() {
        for zones in [
            serde_json::json!([{"name": "a", "voters": 1}]),
            serde_json::json!([{"name": "a", "voters": 2}, {"name": "b", "voters": 1, "observers": 3}]),
            serde_json::json!([{"name": "a", "voters": 3}, {"name": "b", "voters": 2}, {"name": "c", "voters": 2}]),
        ] {
            validate_cel(&cc(zones.clone())).unwrap_or_else(|e| panic!("{zones}: {e}"));
        }
    }

    #[test]
    fn even_zero_or_too_many_voters_are_refused() {
        let msg = "must be odd and between 1 and 7";
        refused(&cc(serde_json::json!([{"name": "a", "voters": 2}])), msg);
        refused(
            &cc(serde_json::json!([{"name": "a", "voters": 0, "observers": 1}])),
            msg,
        );
        refused(
            &cc(serde_json::json!([{"name": "a", "voters": 5}, {"name": "b", "voters": 4}])),
            msg,
        );
    }

    #[test]
    fn duplicate_zone_names_are_refused() {
        refused(
            &cc(serde_json::json!([{"name": "a", "voters": 1}, {"name": "a", "voters": 2}])),
            "zone names must be unique",
        );
    }

    #[test]
    fn an_empty_zone_is_refused() {
        refused(
            &cc(serde_json::json!([{"name": "a", "voters": 1}, {"name": "b"}])),
            "at least one voter or observer",
        );
    }

    #[test]
    fn session_timeout_bounds_must_be_ordered() {
        let mut c = CoordinationCluster::test();
        c.spec.server.min_session_timeout_ms = Some(9000);
        c.spec.server.max_session_timeout_ms = Some(4000);
        refused(&c, "must not exceed");
    }

    #[test]
    fn long_names_are_refused() {
        let mut c = CoordinationCluster::test();
        c.metadata.name = Some("x".repeat(51)); // + zone "a": 52
        refused(&c, "at most 51 characters");
    }

    #[test]
    fn storage_cannot_change_after_creation() {
        let old = CoordinationCluster::test();
        let mut new = old.clone();
        new.spec.storage.size = "20Gi".into();
        let err = validate_cel_update(&new, &old).expect_err("size is immutable");
        assert!(err.to_string().contains("storage.size is immutable"), "{err}");
    }

    #[test]
    fn schema_bounds_refuse_negative_counts_and_bad_sizes() {
        let crd = serde_json::to_value(<CoordinationCluster as kube::CustomResourceExt>::crd()).unwrap();
        let spec =
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let zone = &spec["zones"]["items"]["properties"];
        assert_eq!(zone["voters"]["minimum"].as_f64(), Some(0.0));
        assert_eq!(zone["observers"]["minimum"].as_f64(), Some(0.0));
        let pattern = spec["storage"]["properties"]["size"]["pattern"].as_str().unwrap();
        assert!(pattern.starts_with("^[1-9]"), "no sign, no zero: {pattern}");
    }
}
