//! The status the operator reports, as a pure function of what it saw.
//!
//! Owns: [`observe`], which folds the desired members and the pods and
//! StatefulSets read back from the API server into a
//! [`CoordinationClusterStatus`] (phase, conditions, per-member readiness,
//! per-zone endpoints, each member's ensemble state and last zxid, the
//! day-2 step in progress). Which step comes next is plan.rs's job.
//!
//! Must not: do I/O. The clock comes in as an argument, and a condition keeps
//! its `lastTransitionTime` while its status does not change, so writing the
//! same status twice changes nothing.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use std::collections::BTreeMap;

use crate::crd::{CoordinationCluster, CoordinationClusterStatus, MemberRole, MemberStatus, ZoneStatus};
use crate::desired::{Desired, Names};

/// Phases, as shown by `kubectl get cc`.
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    /// Every member ready, a day-2 step (scale, restart) in progress.
    pub const UPDATING: &str = "Updating";
    pub const DEGRADED: &str = "Degraded";
    pub const PAUSED: &str = "Paused";
    pub const INVALID: &str = "Invalid";
}

/// Whether a pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod runs its StatefulSet's current template.
pub fn pod_current(pod: &Pod, sets: &[StatefulSet]) -> bool {
    let Some(owner) = pod.owner_references().iter().find(|o| o.kind == "StatefulSet") else {
        return true;
    };
    let Some(update) = sets
        .iter()
        .find(|s| s.name_any() == owner.name)
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.update_revision.clone())
    else {
        return true;
    };
    pod.labels().get("controller-revision-hash") == Some(&update)
}

/// What the servers said and what the planner did this pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The leader's id, when one was found.
    pub leader: Option<i64>,
    /// The ensemble's member ids as the leader lists them (`None` without
    /// a leader). A desired member outside it is being added, not down.
    pub in_ensemble: Option<std::collections::BTreeSet<i64>>,
    /// Member id -> (state, last zxid), from plan::member_state and
    /// `/v1/status`.
    pub states: BTreeMap<i64, (String, Option<i64>)>,
    /// Retiring members still to remove (the forgotten ones left out).
    pub retiring: Vec<MemberStatus>,
    pub bootstrapped: bool,
    /// The step taken or waited on: (reason, sentence); `None` when idle.
    pub step: Option<(String, String)>,
}

/// The status for `cc` given what was applied and what runs.
pub fn observe(
    cc: &CoordinationCluster,
    desired: &Desired,
    sets: &[StatefulSet],
    pods: &[Pod],
    seen: &Seen,
    now: &Time,
) -> CoordinationClusterStatus {
    let names = Names::new(cc, &cc.namespace().unwrap_or_default());
    let previous = cc.status.clone().unwrap_or_default();
    let find = |name: &str| pods.iter().find(|p| p.name_any() == name);

    let mut members = desired.members.clone();
    let mut retiring = seen.retiring.clone();
    for m in members.iter_mut().chain(retiring.iter_mut()) {
        m.ready = Some(find(&m.pod).is_some_and(pod_ready));
        let (state, zxid) = seen
            .states
            .get(&m.id)
            .cloned()
            .unwrap_or(("starting".into(), None));
        m.state = Some(state);
        m.last_zxid = zxid;
    }
    // a retiring member's pod may now hold a new member: its readiness is
    // the new member's
    for r in &mut retiring {
        if members.iter().any(|m| m.pod == r.pod) {
            r.ready = None;
        }
    }
    let ready = members.iter().filter(|m| m.ready == Some(true)).count() as i32;
    let total = members.len() as i32;
    // new members not added yet are not "down", and do not count for the
    // quorum (the ensemble does not have them yet)
    let joining = |m: &MemberStatus| seen.in_ensemble.as_ref().is_some_and(|e| !e.contains(&m.id));
    let down = members
        .iter()
        .filter(|m| m.ready != Some(true) && !joining(m))
        .count() as i32;
    let voters = members
        .iter()
        .filter(|m| m.role == MemberRole::Voter && !joining(m))
        .count();
    let ready_voters = members
        .iter()
        .filter(|m| m.role == MemberRole::Voter && m.ready == Some(true) && !joining(m))
        .count();
    let quorum = ready_voters > voters / 2;
    let outdated = members
        .iter()
        .filter(|m| find(&m.pod).is_some_and(|p| !pod_current(p, sets)))
        .count();

    let zones = cc
        .spec
        .zones
        .iter()
        .map(|z| ZoneStatus {
            name: z.name.clone(),
            client_endpoint: names.client_endpoint(&names.zone_client_service(&z.name)),
            ready_members: members
                .iter()
                .filter(|m| m.zone == z.name && m.ready == Some(true))
                .count() as i32,
        })
        .collect();

    let phase = if ready == total && outdated == 0 && seen.step.is_none() {
        phase::RUNNING
    } else if down == 0 {
        phase::UPDATING
    } else if ready == 0 && previous.phase.as_deref() != Some(phase::RUNNING) {
        phase::PENDING
    } else {
        phase::DEGRADED
    };
    let (ready_status, ready_reason, ready_message) = if ready == total {
        (
            "True",
            "AllMembersReady",
            format!("{ready}/{total} members ready"),
        )
    } else {
        (
            "False",
            "MembersNotReady",
            format!("{ready}/{total} members ready"),
        )
    };
    let (prog_status, prog_reason, prog_message) = if let Some((reason, message)) = &seen.step {
        ("True", reason.as_str(), message.clone())
    } else if ready < total {
        (
            "True",
            "WaitingForMembers",
            format!("waiting for {} member(s) to become ready", total - ready),
        )
    } else if outdated > 0 {
        (
            "True",
            "RollingRestart",
            format!("{outdated} member(s) to restart onto the current config"),
        )
    } else {
        (
            "False",
            "UpToDate",
            "every member runs the current config".to_string(),
        )
    };
    let (deg_status, deg_reason, deg_message) = if !quorum && down > 0 {
        (
            "True",
            "QuorumLost",
            format!("{ready_voters}/{voters} voters ready: no write quorum"),
        )
    } else if down > 0 && phase != phase::PENDING {
        ("True", "MembersDown", format!("{down}/{total} members not ready"))
    } else {
        ("False", "Healthy", "no member is down".to_string())
    };
    let generation = cc.metadata.generation;
    let conditions = vec![
        condition(
            &previous.conditions,
            "Ready",
            ready_status,
            ready_reason,
            ready_message,
            generation,
            now,
        ),
        condition(
            &previous.conditions,
            "Progressing",
            prog_status,
            prog_reason,
            prog_message,
            generation,
            now,
        ),
        condition(
            &previous.conditions,
            "Degraded",
            deg_status,
            deg_reason,
            deg_message,
            generation,
            now,
        ),
    ];
    CoordinationClusterStatus {
        phase: Some(phase.to_string()),
        conditions,
        ready_members: ready,
        // only what was seen this pass: a stale leader would mislead
        leader: seen.leader,
        members,
        next_member_id: Some(desired.next_member_id),
        retiring,
        bootstrapped: seen.bootstrapped || previous.bootstrapped,
        operation: seen.step.as_ref().map(|(_, m)| m.clone()),
        zones,
        observed_generation: generation,
    }
}

/// The status of a paused cluster, or of one whose spec is refused: the
/// previous status with that phase and the given conditions set.
pub fn halted(
    cc: &CoordinationCluster,
    phase: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> CoordinationClusterStatus {
    let mut s = cc.status.clone().unwrap_or_default();
    let generation = cc.metadata.generation;
    let (ready, degraded) = if phase == phase::INVALID {
        ("False", "True")
    } else {
        ("Unknown", "False")
    };
    let conditions = vec![
        condition(
            &s.conditions,
            "Ready",
            ready,
            reason,
            message.to_string(),
            generation,
            now,
        ),
        condition(
            &s.conditions,
            "Progressing",
            "False",
            reason,
            message.to_string(),
            generation,
            now,
        ),
        condition(
            &s.conditions,
            "Degraded",
            degraded,
            reason,
            message.to_string(),
            generation,
            now,
        ),
    ];
    s.phase = Some(phase.to_string());
    s.conditions = conditions;
    s.observed_generation = generation;
    s
}

fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}
