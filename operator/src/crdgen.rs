//! Prints the generated manifests (a test fails when the files are stale):
//! - `crdgen`: the `CoordinationCluster` CRD (`manifests/crd.yaml`);
//! - `crdgen rbac`: the operator's ClusterRole (`manifests/rbac.yaml`);
//! - `crdgen chart-rbac`: its rules for the chart
//!   (`charts/zonekeeper-operator/files/rbac-rules.yaml`).
fn main() {
    match std::env::args().nth(1).as_deref() {
        None => print!("{}", zonekeeper_operator::crd::crd_yaml()),
        Some("rbac") => print!("{}", zonekeeper_operator::rbac::cluster_role_yaml()),
        Some("chart-rbac") => print!("{}", zonekeeper_operator::rbac::chart_rules_yaml()),
        Some(other) => {
            eprintln!("crdgen: unknown output {other:?}; use no argument, `rbac` or `chart-rbac`");
            std::process::exit(2);
        }
    }
}
