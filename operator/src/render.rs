//! `zonekeeper-operator render FILE`: the objects `desired()` makes for the
//! `CoordinationCluster`s in a YAML file, as multi-document YAML.
//!
//! Owns: reading resources from YAML and writing objects as YAML, for the
//! golden tests, `scripts/validate-manifests.sh` and people who want to see
//! what the operator would create. A resource read from a file has no uid
//! or namespace: the namespace defaults to `default` and the owner
//! references carry [`PLACEHOLDER_UID`].

use kube::ResourceExt;
use serde::Deserialize;

use crate::crd::CoordinationCluster;
use crate::desired::{desired, Invalid, Platform};

/// The uid given to resources read from files.
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Why a file cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{name}: {source}")]
    Invalid { name: String, source: Invalid },
}

/// Every `CoordinationCluster` document of `text` (other kinds are skipped).
pub fn read_clusters(text: &str) -> Result<Vec<CoordinationCluster>, RenderError> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc)?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("CoordinationCluster") {
            continue;
        }
        let mut cc: CoordinationCluster = serde_yaml::from_value(value)?;
        if cc.metadata.namespace.is_none() {
            cc.metadata.namespace = Some("default".into());
        }
        if cc.metadata.uid.is_none() {
            cc.metadata.uid = Some(PLACEHOLDER_UID.into());
        }
        out.push(cc);
    }
    Ok(out)
}

/// The desired objects of every cluster in `text`, as multi-document YAML.
pub fn render(text: &str, platform: Platform) -> Result<String, RenderError> {
    let mut out = String::new();
    for cc in read_clusters(text)? {
        let d = desired(&cc, platform).map_err(|source| RenderError::Invalid {
            name: cc.name_any(),
            source,
        })?;
        for object in d.objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&object.to_value())?);
        }
    }
    Ok(out)
}
