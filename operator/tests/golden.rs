//! Golden tests of `desired()` (STYLE.md, "What we take" 12): every
//! `tests/golden/NAME.input.yaml` is rendered and compared with
//! `tests/golden/NAME.yaml` (and `three-zones.k8s-1.31.yaml`, rendered for
//! Kubernetes 1.31, where the client Service uses `trafficDistribution`).
//! Also checks that `manifests/crd.yaml` is what `crdgen` prints.
//!
//! Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p zonekeeper-operator --test golden`, then
//! review the diff.

use std::path::{Path, PathBuf};

use zonekeeper_operator::desired::Platform;
use zonekeeper_operator::render::render;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

fn compare(path: &Path, got: &str) {
    if update() {
        std::fs::write(path, got).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(0);
        panic!(
            "{} is stale (first difference at line {}):\n  got:  {:?}\n  want: {:?}\n\
             run with UPDATE_GOLDEN=1 and review the diff",
            path.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

fn check(case: &str, suffix: &str, platform: Platform) {
    let dir = golden_dir();
    let input = std::fs::read_to_string(dir.join(format!("{case}.input.yaml"))).expect("input file");
    let got = render(&input, platform).unwrap_or_else(|e| panic!("{case}: {e}"));
    compare(&dir.join(format!("{case}{suffix}.yaml")), &got);
}

#[test]
fn three_zones() {
    check("three-zones", "", Platform::KUBERNETES_1_28);
}

#[test]
fn three_zones_on_kubernetes_1_31_uses_traffic_distribution() {
    check("three-zones", ".k8s-1.31", Platform::for_version(1, 31));
}

#[test]
fn single_zone() {
    check("single-zone", "", Platform::KUBERNETES_1_28);
}

#[test]
fn overrides_observers_and_carried_over_ids() {
    check("overrides", "", Platform::KUBERNETES_1_28);
}

#[test]
fn scale_down_in_progress_keeps_the_retiring_pod_and_joins() {
    check("scale-down", "", Platform::KUBERNETES_1_28);
}

#[test]
fn the_examples_are_golden_inputs() {
    // manifests/examples/ are what users copy: keep them covered.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in ["three-zones", "single-zone"] {
        let example = std::fs::read_to_string(root.join(format!("manifests/examples/{name}.yaml"))).unwrap();
        let input = std::fs::read_to_string(golden_dir().join(format!("{name}.input.yaml"))).unwrap();
        assert_eq!(
            example, input,
            "manifests/examples/{name}.yaml differs from tests/golden/{name}.input.yaml"
        );
    }
}

#[test]
fn crd_yaml_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crd.yaml");
    if !update()
        && std::fs::read_to_string(&path).ok().as_deref() != Some(&zonekeeper_operator::crd::crd_yaml())
    {
        panic!(
            "manifests/crd.yaml is stale: run `cargo run -q -p zonekeeper-operator --bin crdgen > manifests/crd.yaml` \
             (or UPDATE_GOLDEN=1 cargo test -p zonekeeper-operator --test golden)"
        );
    }
    compare(&path, &zonekeeper_operator::crd::crd_yaml());
}

#[test]
fn chart_crd_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/zonekeeper-operator/crds/coordinationclusters.zonekeeper.io.yaml");
    if !update()
        && std::fs::read_to_string(&path).ok().as_deref() != Some(&zonekeeper_operator::crd::crd_yaml())
    {
        panic!(
            "the chart's CRD is stale: run `UPDATE_GOLDEN=1 cargo test -p zonekeeper-operator --test golden` \
             (it must equal manifests/crd.yaml)"
        );
    }
    compare(&path, &zonekeeper_operator::crd::crd_yaml());
}

#[test]
fn rbac_manifests_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // compare() panics with the regenerate command when stale
    compare(
        &root.join("manifests/rbac.yaml"),
        &zonekeeper_operator::rbac::cluster_role_yaml(),
    );
    compare(
        &root.join("charts/zonekeeper-operator/files/rbac-rules.yaml"),
        &zonekeeper_operator::rbac::chart_rules_yaml(),
    );
}

#[test]
fn the_chart_role_uses_the_generated_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template =
        std::fs::read_to_string(root.join("charts/zonekeeper-operator/templates/rbac.yaml")).unwrap();
    assert!(
        template.contains(r#".Files.Get "files/rbac-rules.yaml""#),
        "the chart's ClusterRole must include the generated rules, not list its own"
    );
}
