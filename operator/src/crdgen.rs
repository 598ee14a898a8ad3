fn main() {
    use kube::CustomResourceExt;
    print!(
        "{}",
        serde_yaml::to_string(&zonekeeper_operator::crd::CoordinationCluster::crd()).unwrap()
    );
}
