//! zonekeeper-operator: the Kubernetes controller of `CoordinationCluster`.
//!
//! # Layout
//! - [`crd`]: the `CoordinationCluster` CRD types and their validation.
//! - [`ids`]: server id allocation (stable, never reused).
//! - [`desired`]: the child objects as a pure function of the resource.
//! - [`plan`]: the next day-2 step as a pure function of what was observed.
//! - [`admin`]: the client of the servers' admin API (docs/admin-api.md).
//! - [`lease`]: leader election between operator replicas (a Lease).
//! - [`rbac`]: the API access the operator needs, generated into manifests.
//! - [`status`]: the reported status as a pure function of what was seen.
//! - [`controller`]: reconcile (server-side apply), error policy, run.
//! - [`render`]: `zonekeeper-operator render FILE`, desired objects as YAML.
//! - [`metrics`], [`telemetry`], [`http`]: observability and the HTTP port.

pub mod admin;
pub mod controller;
pub mod crd;
pub mod desired;
pub mod http;
pub mod ids;
pub mod lease;
pub mod metrics;
pub mod plan;
pub mod rbac;
pub mod render;
pub mod status;
pub mod telemetry;

#[cfg(test)]
pub mod fixtures;

/// Everything a reconcile can fail with; each variant is a metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the resource has no namespace")]
    NoNamespace,
    #[error("CRD {0} is not installed; install it with: {install}", install = controller::INSTALL_CRD)]
    CrdMissing(String),
    #[error("{0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// The `error` label of `zonekeeper_operator_reconcile_failures_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::NoNamespace => "no_namespace",
            Error::CrdMissing(_) => "crd_missing",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
