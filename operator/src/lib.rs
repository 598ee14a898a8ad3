//! zonekeeper-operator: the Kubernetes controller of `CoordinationCluster`.
pub mod crd;
pub mod desired;
pub mod ids;
