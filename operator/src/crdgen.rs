//! Prints the `CoordinationCluster` CRD as YAML (`manifests/crd.yaml` is
//! this output; a test fails when the file is stale).
fn main() {
    print!("{}", zonekeeper_operator::crd::crd_yaml());
}
