//! Day-2 planning: the next single action on a running ensemble, as a pure
//! function of what the operator observed.
//!
//! Owns: [`plan`] (observed members and servers -> one [`Step`]),
//! [`leader_of`] (which server's view of the ensemble to trust),
//! [`forgotten`] (retired members the ensemble no longer lists) and
//! [`member_state`] (what status shows for a member).
//!
//! Must not: do I/O or read the clock. controller.rs gathers the
//! [`Observed`] state (pods, each server's `/v1/status`) and carries out the
//! step; every rule below is unit-tested here.
//!
//! The rules (docs/operator.md, "Day 2"), in the order they are tried:
//! 1. A desired member whose pod is not ready *and* runs an old revision is
//!    restarted at once: it is not serving, so this cannot cost the quorum,
//!    and it is how a bad image or setting is fixed.
//! 2. Without a known leader nothing else happens.
//! 3. Every desired member the ensemble lists must be ready, answer
//!    `/v1/status` and be caught up before anything changes: it has
//!    applied the founding snapshot (index 1) or later, lists the same
//!    members as the leader (it has the log up to its own addition, not
//!    just its config file), and its applied index is within
//!    [`CATCH_UP_LAG`] of the leader's commit index.
//! 4. Scale up first (fault tolerance never drops below what it was): a
//!    desired member the ensemble lacks is added as an observer once its pod
//!    answers with its id; a desired voter that is an observer is promoted
//!    (it passed the catch-up check of rule 3). A pod still running a
//!    retired id whose removal is done is restarted onto its new id.
//! 5. Scale down: retired members still in the ensemble are removed,
//!    observers first, then voters, highest ordinal first (so the
//!    StatefulSet can shrink); a leaving leader first hands leadership to a
//!    desired voter.
//! 6. Rolling restart: desired members on an old revision, observers first,
//!    then followers by descending id, the leader last after a leader
//!    transfer (unless it is the only voter).
//!
//! One step per pass; the next pass sees its effect before taking another.

use std::cmp::Reverse;

use crate::admin::ServerStatus;

/// How far (raft entries) a member's applied index may trail the leader's
/// commit index and still count as caught up. The server's own "live" rule
/// for quorum checks uses 100 entries (docs/ensemble.md); this is stricter.
pub const CATCH_UP_LAG: u64 = 50;

/// What a member should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Voter,
    Observer,
    /// No longer in the spec: to be removed from the ensemble, then its pod
    /// goes away (or is reused by a new member).
    Retire,
}

/// One member (desired or retiring) and what was seen of its pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub ordinal: i32,
    pub pod: String,
    pub want: Want,
    pub pod_exists: bool,
    pub pod_ready: bool,
    /// The pod runs its StatefulSet's current revision.
    pub pod_current: bool,
    /// The pod's `/v1/status`, `None` when it did not answer.
    pub server: Option<ServerStatus>,
}

/// The leader's view of the ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    pub id: i64,
    pub commit_index: u64,
    /// `(id, voter)` of every ensemble member.
    pub members: Vec<(i64, bool)>,
}

/// Whether a member's own report shows it has the ensemble's state: see
/// rule 3 of the module doc.
pub fn caught_up(s: &ServerStatus, leader: &Leader) -> Result<(), String> {
    if s.raft_applied_index == 0 {
        return Err(format!(
            "member {} has applied nothing yet (waiting for the leader's snapshot)",
            s.id
        ));
    }
    let mut theirs: Vec<i64> = s.members.iter().map(|m| m.id).collect();
    let mut ours: Vec<i64> = leader.members.iter().map(|m| m.0).collect();
    theirs.sort_unstable();
    ours.sort_unstable();
    if theirs != ours {
        return Err(format!(
            "member {} knows members {theirs:?}, the leader {ours:?}",
            s.id
        ));
    }
    let behind = leader.commit_index.saturating_sub(s.raft_applied_index);
    if behind > CATCH_UP_LAG {
        return Err(format!(
            "member {} applied index {} of {}",
            s.id, s.raft_applied_index, leader.commit_index
        ));
    }
    Ok(())
}

impl Leader {
    fn has(&self, id: i64) -> bool {
        self.members.iter().any(|&(m, _)| m == id)
    }
    fn is_voter(&self, id: i64) -> bool {
        self.members.iter().any(|&(m, v)| m == id && v)
    }
}

/// Everything [`plan`] looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// Desired members, then retiring ones.
    pub members: Vec<Member>,
    pub leader: Option<Leader>,
}

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The ensemble is what the spec says and every pod is current.
    Idle,
    /// Something must happen first (the reason is shown in status).
    Wait(String),
    /// `POST /v1/members` with this member as an observer.
    Add(i64),
    /// `POST /v1/members/{id}/promote`.
    Promote(i64),
    /// `DELETE /v1/members/{id}`.
    Remove(i64),
    /// `POST /v1/leader` `{"id": to}`.
    TransferLeader { from: i64, to: i64 },
    /// Delete the pod (its StatefulSet recreates it).
    Restart { pod: String, reason: String },
}

impl Step {
    /// The `action` label of `zonekeeper_operator_actions_total` and the
    /// Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Step::Idle => "Idle",
            Step::Wait(_) => "Wait",
            Step::Add(_) => "AddMember",
            Step::Promote(_) => "PromoteMember",
            Step::Remove(_) => "RemoveMember",
            Step::TransferLeader { .. } => "TransferLeader",
            Step::Restart { .. } => "RestartMember",
        }
    }

    /// A sentence for events and status.
    pub fn describe(&self) -> String {
        match self {
            Step::Idle => "nothing to do".into(),
            Step::Wait(why) => format!("waiting: {why}"),
            Step::Add(id) => format!("adding member {id} as an observer"),
            Step::Promote(id) => format!("promoting member {id} to voter"),
            Step::Remove(id) => format!("removing member {id} from the ensemble"),
            Step::TransferLeader { from, to } => {
                format!("transferring leadership from member {from} to {to}")
            }
            Step::Restart { pod, reason } => format!("restarting pod {pod}: {reason}"),
        }
    }
}

/// The server whose view of the ensemble is trusted: one that says it leads
/// (its own id is its `leader_id`), the highest applied index winning if a
/// deposed leader has not noticed yet.
pub fn leader_of<'a>(servers: impl IntoIterator<Item = &'a ServerStatus>) -> Option<Leader> {
    servers
        .into_iter()
        .filter(|s| s.role == "leader" && s.leader_id == Some(s.id))
        .max_by_key(|s| (s.raft_commit_index, Reverse(s.id)))
        .map(|s| Leader {
            id: s.id,
            commit_index: s.raft_commit_index,
            members: s.members.iter().map(|m| (m.id, m.role == "voter")).collect(),
        })
}

/// Retiring members the ensemble no longer lists: their removal is done, so
/// the operator forgets them (their pods may go).
pub fn forgotten(obs: &Observed) -> Vec<i64> {
    let Some(leader) = &obs.leader else {
        return vec![];
    };
    obs.members
        .iter()
        .filter(|m| m.want == Want::Retire && !leader.has(m.id))
        .map(|m| m.id)
        .collect()
}

/// What status shows as a member's `state`: its role in the ensemble
/// (`leader`, `follower`, `observer`), `joining` (its server runs but the
/// ensemble does not list it yet), `starting` (no pod or not answering) or
/// `retired` (removed, its pod going away).
pub fn member_state(m: &Member, leader: Option<&Leader>) -> &'static str {
    let answers = m.server.as_ref().is_some_and(|s| s.id == m.id);
    match leader {
        Some(l) if l.id == m.id => "leader",
        Some(l) if l.is_voter(m.id) => "follower",
        Some(l) if l.has(m.id) => "observer",
        Some(_) if m.want == Want::Retire => "retired",
        _ if answers && leader.is_some() => "joining",
        _ => "starting",
    }
}

/// The next step; see the module doc for the rules.
pub fn plan(obs: &Observed) -> Step {
    let desired = || obs.members.iter().filter(|m| m.want != Want::Retire);

    // 1. Broken and outdated: restart, it is not serving anyway.
    if let Some(m) = desired().find(|m| m.pod_exists && !m.pod_ready && !m.pod_current) {
        return Step::Restart {
            pod: m.pod.clone(),
            reason: "not ready and on an old revision".into(),
        };
    }

    // 2. A leader is needed for everything else.
    let Some(leader) = &obs.leader else {
        return Step::Wait("no leader known (is a majority of voters running?)".into());
    };

    // 3. Every desired ensemble member ready and caught up.
    for m in desired().filter(|m| leader.has(m.id)) {
        if !m.pod_ready {
            return Step::Wait(format!("member {} ({}) is not ready", m.id, m.pod));
        }
        let Some(s) = m.server.as_ref().filter(|s| s.id == m.id) else {
            return Step::Wait(format!("member {} ({}) does not answer /v1/status", m.id, m.pod));
        };
        if let Err(why) = caught_up(s, leader) {
            return Step::Wait(format!("member {} is catching up: {why}", m.id));
        }
    }

    // 4. Scale up: add, promote, move a reused pod onto its new id.
    let mut by_id: Vec<&Member> = desired().collect();
    by_id.sort_by_key(|m| m.id);
    for m in &by_id {
        if leader.has(m.id) {
            if m.want == Want::Voter && !leader.is_voter(m.id) {
                return Step::Promote(m.id);
            }
            continue;
        }
        match &m.server {
            Some(s) if s.id == m.id => return Step::Add(m.id),
            // The pod still runs a retired member: removed first (rule 5),
            // then restarted onto this id.
            Some(s) if leader.has(s.id) => continue,
            Some(s) => {
                return Step::Restart {
                    pod: m.pod.clone(),
                    reason: format!("runs retired member {}, should run member {}", s.id, m.id),
                }
            }
            None => {
                return Step::Wait(format!(
                    "member {} ({}) is starting: its pod {}",
                    m.id,
                    m.pod,
                    if m.pod_exists {
                        "does not answer /v1/status yet"
                    } else {
                        "does not exist yet"
                    }
                ))
            }
        }
    }

    // 5. Scale down: observers, then voters, highest ordinal first; a
    // leaving leader hands over first.
    let mut leaving: Vec<&Member> = obs
        .members
        .iter()
        .filter(|m| m.want == Want::Retire && leader.has(m.id))
        .collect();
    leaving.sort_by_key(|m| (leader.is_voter(m.id), Reverse(m.ordinal), m.id));
    if let Some(m) = leaving.first() {
        if m.id != leader.id {
            return Step::Remove(m.id);
        }
        return match transfer_target(obs, leader) {
            Some(to) => Step::TransferLeader { from: m.id, to },
            None => Step::Wait(format!(
                "member {} leads and leaves, but no desired voter can take over",
                m.id
            )),
        };
    }

    // 6. Rolling restart: observers, followers by descending id, leader last.
    let mut outdated: Vec<&Member> = desired().filter(|m| m.pod_exists && !m.pod_current).collect();
    outdated.sort_by_key(|m| (m.id == leader.id, leader.is_voter(m.id), Reverse(m.id)));
    if let Some(m) = outdated.first() {
        if m.id == leader.id {
            if let Some(to) = transfer_target(obs, leader) {
                return Step::TransferLeader { from: m.id, to };
            }
        }
        return Step::Restart {
            pod: m.pod.clone(),
            reason: "runs an old revision".into(),
        };
    }
    Step::Idle
}

/// A desired voter other than the leader, on the current revision when one
/// is, lowest id first.
fn transfer_target(obs: &Observed, leader: &Leader) -> Option<i64> {
    obs.members
        .iter()
        .filter(|m| m.want == Want::Voter && m.id != leader.id && leader.is_voter(m.id) && m.pod_ready)
        .min_by_key(|m| (!m.pod_current, m.id))
        .map(|m| m.id)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::admin::EnsembleMember;

    /// A cluster in a table: `(id, ordinal, want)`; every pod ready, current
    /// and answering with its id, caught up; `leader` leads and the
    /// ensemble is `ensemble` (`(id, voter)`).
    struct World {
        members: Vec<Member>,
        leader: i64,
        ensemble: Vec<(i64, bool)>,
        commit: u64,
    }

    fn status(id: i64, applied: u64) -> ServerStatus {
        ServerStatus {
            id,
            zone: "a".into(),
            role: "follower".into(),
            leader_id: Some(1),
            last_zxid: applied as i64,
            members: vec![],
            raft_commit_index: applied,
            raft_applied_index: applied,
            ready: true,
        }
    }

    fn world(members: &[(i64, i32, Want)], leader: i64, ensemble: &[(i64, bool)]) -> World {
        World {
            members: members
                .iter()
                .map(|&(id, ordinal, want)| Member {
                    id,
                    ordinal,
                    pod: format!("c-a-{ordinal}"),
                    want,
                    pod_exists: true,
                    pod_ready: true,
                    pod_current: true,
                    server: Some(status(id, 100)),
                })
                .collect(),
            leader,
            ensemble: ensemble.to_vec(),
            commit: 100,
        }
    }

    impl World {
        fn member(&mut self, id: i64) -> &mut Member {
            self.members.iter_mut().find(|m| m.id == id).unwrap()
        }
        fn observed(&self) -> Observed {
            // every member that answers knows the ensemble as the leader does
            let known: Vec<EnsembleMember> = self
                .ensemble
                .iter()
                .map(|&(id, voter)| EnsembleMember {
                    id,
                    zone: "a".into(),
                    role: if voter { "voter" } else { "observer" }.into(),
                    client_addr: String::new(),
                    peer_addr: String::new(),
                })
                .collect();
            let mut members = self.members.clone();
            for m in &mut members {
                if let Some(s) = m.server.as_mut() {
                    if s.members.is_empty() {
                        s.members = known.clone();
                    }
                }
            }
            Observed {
                members,
                leader: Some(Leader {
                    id: self.leader,
                    commit_index: self.commit,
                    members: self.ensemble.clone(),
                }),
            }
        }
        fn plan(&self) -> Step {
            plan(&self.observed())
        }
    }

    use Want::{Observer, Retire, Voter};

    fn three() -> World {
        world(
            &[(1, 0, Voter), (2, 1, Voter), (3, 2, Voter)],
            1,
            &[(1, true), (2, true), (3, true)],
        )
    }

    fn waits(step: Step, containing: &str) {
        match step {
            Step::Wait(why) => assert!(why.contains(containing), "{why}"),
            other => panic!("expected a wait ({containing}), got {other:?}"),
        }
    }

    #[test]
    fn a_settled_cluster_is_idle() {
        assert_eq!(three().plan(), Step::Idle);
    }

    #[test]
    fn nothing_happens_without_a_leader() {
        let mut w = three();
        w.member(2).pod_current = false;
        let mut obs = w.observed();
        obs.leader = None;
        waits(plan(&obs), "no leader");
    }

    #[test]
    fn a_broken_pod_on_an_old_revision_is_restarted_even_without_a_leader() {
        let mut w = three();
        w.member(2).pod_current = false;
        w.member(2).pod_ready = false;
        let mut obs = w.observed();
        obs.leader = None;
        assert!(matches!(plan(&obs), Step::Restart { pod, .. } if pod == "c-a-1"));
    }

    #[test]
    fn any_member_not_ready_or_not_answering_or_behind_blocks_every_change() {
        for spoil in [
            |m: &mut Member| m.pod_ready = false,
            |m: &mut Member| m.server = None,
            |m: &mut Member| m.server.as_mut().unwrap().raft_applied_index = 100 - CATCH_UP_LAG - 1,
        ] {
            let mut w = three();
            w.member(3).pod_current = false; // a restart is due
            spoil(w.member(2));
            waits(w.plan(), "member 2");
        }
        // within the lag is caught up
        let mut w = three();
        w.member(2).server.as_mut().unwrap().raft_applied_index = 100 - CATCH_UP_LAG;
        assert_eq!(w.plan(), Step::Idle);
    }

    #[test]
    fn a_member_that_applied_nothing_or_knows_another_membership_is_not_caught_up() {
        let leader = Leader {
            id: 1,
            commit_index: 5,
            members: vec![(1, true), (2, true), (3, false)],
        };
        let mut s = status(3, 0);
        let all = |ids: &[i64]| {
            ids.iter()
                .map(|&id| EnsembleMember {
                    id,
                    zone: "a".into(),
                    role: "voter".into(),
                    client_addr: String::new(),
                    peer_addr: String::new(),
                })
                .collect::<Vec<_>>()
        };
        // a joiner reports the members of its config file and index 0
        s.members = all(&[1, 3]);
        assert!(caught_up(&s, &leader).unwrap_err().contains("applied nothing"));
        s.raft_applied_index = 5;
        assert!(caught_up(&s, &leader)
            .unwrap_err()
            .contains("knows members [1, 3]"));
        s.members = all(&[1, 2, 3]);
        assert_eq!(caught_up(&s, &leader), Ok(()));
    }

    #[test]
    fn scale_up_adds_as_observer_then_promotes_after_catch_up() {
        // 1 voter -> 3: members 2 and 3 are new, their pods answer
        let mut w = world(&[(1, 0, Voter), (2, 1, Voter), (3, 2, Voter)], 1, &[(1, true)]);
        assert_eq!(w.plan(), Step::Add(2), "lowest new id first");
        w.ensemble.push((2, false));
        w.member(2).server.as_mut().unwrap().raft_applied_index = 3;
        waits(w.plan(), "member 2 is catching up");
        w.member(2).server.as_mut().unwrap().raft_applied_index = 100;
        assert_eq!(w.plan(), Step::Promote(2));
        w.ensemble[1].1 = true;
        assert_eq!(w.plan(), Step::Add(3));
        w.ensemble.push((3, false));
        assert_eq!(w.plan(), Step::Promote(3));
        w.ensemble[2].1 = true;
        assert_eq!(w.plan(), Step::Idle);
    }

    #[test]
    fn an_added_observer_stays_an_observer() {
        let w = world(&[(1, 0, Voter), (4, 1, Observer)], 1, &[(1, true), (4, false)]);
        assert_eq!(w.plan(), Step::Idle);
        let w = world(&[(1, 0, Voter), (4, 1, Observer)], 1, &[(1, true)]);
        assert_eq!(w.plan(), Step::Add(4));
    }

    #[test]
    fn a_new_member_whose_pod_is_not_up_is_waited_for_and_blocks_removals() {
        let mut w = world(
            &[(1, 0, Voter), (2, 1, Voter), (4, 2, Voter), (3, 3, Retire)],
            1,
            &[(1, true), (2, true), (3, true)],
        );
        w.member(4).server = None;
        w.member(4).pod_exists = false;
        waits(w.plan(), "does not exist yet");
        w.member(4).pod_exists = true;
        waits(w.plan(), "does not answer");
    }

    #[test]
    fn scale_down_removes_observers_first_then_voters_from_the_highest_ordinal() {
        let mut w = world(
            &[(1, 0, Voter), (2, 1, Retire), (3, 2, Retire), (4, 3, Retire)],
            1,
            &[(1, true), (2, true), (3, true), (4, false)],
        );
        assert_eq!(w.plan(), Step::Remove(4), "the observer first");
        w.ensemble.retain(|m| m.0 != 4);
        assert_eq!(forgotten(&w.observed()), [4]);
        assert_eq!(w.plan(), Step::Remove(3), "then the highest ordinal");
        w.ensemble.retain(|m| m.0 != 3);
        assert_eq!(w.plan(), Step::Remove(2));
        w.ensemble.retain(|m| m.0 != 2);
        assert_eq!(w.plan(), Step::Idle);
        assert_eq!(forgotten(&w.observed()), [2, 3, 4]);
    }

    #[test]
    fn a_retiring_member_need_not_be_ready_to_be_removed() {
        let mut w = world(
            &[(1, 0, Voter), (2, 1, Voter), (3, 2, Retire)],
            1,
            &[(1, true), (2, true), (3, true)],
        );
        w.member(3).pod_ready = false;
        w.member(3).server = None;
        assert_eq!(w.plan(), Step::Remove(3));
    }

    #[test]
    fn a_leaving_leader_hands_over_to_a_desired_voter_first() {
        let mut w = world(
            &[(1, 0, Voter), (2, 1, Voter), (3, 2, Retire)],
            3,
            &[(1, true), (2, true), (3, true)],
        );
        assert_eq!(w.plan(), Step::TransferLeader { from: 3, to: 1 });
        w.leader = 1;
        assert_eq!(w.plan(), Step::Remove(3));
        // no desired voter to take over: wait
        let w = world(&[(4, 1, Observer), (3, 0, Retire)], 3, &[(3, true), (4, false)]);
        waits(w.plan(), "no desired voter");
    }

    #[test]
    fn adds_come_before_removals_so_fault_tolerance_never_drops() {
        // zone c (member 3) replaced by zone d (member 4)
        let w = world(
            &[(1, 0, Voter), (2, 1, Voter), (4, 3, Voter), (3, 2, Retire)],
            1,
            &[(1, true), (2, true), (3, true)],
        );
        assert_eq!(w.plan(), Step::Add(4));
    }

    #[test]
    fn a_reused_pod_is_removed_then_restarted_onto_its_new_id_then_added() {
        // ordinal 1 was voter 2, is now observer 5: same pod c-a-1
        let mut w = world(
            &[(1, 0, Voter), (5, 1, Observer), (2, 1, Retire)],
            1,
            &[(1, true), (2, true)],
        );
        w.member(5).server = Some(status(2, 100)); // the pod still runs 2
        assert_eq!(w.plan(), Step::Remove(2));
        w.ensemble.retain(|m| m.0 != 2);
        w.members.retain(|m| m.id != 2); // forgotten
        assert_eq!(
            w.plan(),
            Step::Restart {
                pod: "c-a-1".into(),
                reason: "runs retired member 2, should run member 5".into()
            }
        );
        w.member(5).server = Some(status(5, 0));
        assert_eq!(w.plan(), Step::Add(5));
    }

    #[test]
    fn rolling_restart_observers_then_followers_by_descending_id_then_leader_after_transfer() {
        let mut w = world(
            &[(1, 0, Voter), (2, 1, Voter), (3, 2, Voter), (4, 3, Observer)],
            2,
            &[(1, true), (2, true), (3, true), (4, false)],
        );
        for m in &mut w.members {
            m.pod_current = false;
        }
        let mut order = vec![];
        for _ in 0..10 {
            match w.plan() {
                Step::Restart { pod, .. } => {
                    order.push(pod.clone());
                    w.members.iter_mut().find(|m| m.pod == pod).unwrap().pod_current = true;
                }
                Step::TransferLeader { from, to } => {
                    order.push(format!("transfer {from}->{to}"));
                    w.leader = to;
                }
                Step::Idle => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            order,
            ["c-a-3", "c-a-2", "c-a-0", "transfer 2->1", "c-a-1"],
            "observer, followers 3 then 1, leader 2 last after handing over to a restarted voter"
        );
    }

    #[test]
    fn a_single_voter_is_restarted_without_a_transfer() {
        let mut w = world(&[(1, 0, Voter)], 1, &[(1, true)]);
        w.member(1).pod_current = false;
        assert!(matches!(w.plan(), Step::Restart { pod, .. } if pod == "c-a-0"));
    }

    #[test]
    fn a_restart_waits_for_the_previous_one_to_be_ready_and_caught_up() {
        let mut w = three();
        w.member(2).pod_current = false;
        w.member(3).server.as_mut().unwrap().raft_applied_index = 0; // just restarted
        waits(w.plan(), "member 3 is catching up");
    }

    #[test]
    fn retiring_members_are_not_restarted() {
        let mut w = world(&[(1, 0, Voter), (2, 1, Retire)], 1, &[(1, true)]);
        w.member(2).pod_current = false;
        assert_eq!(w.plan(), Step::Idle);
        assert_eq!(forgotten(&w.observed()), [2]);
    }

    #[test]
    fn forgetting_needs_a_leader() {
        let w = world(&[(1, 0, Voter), (2, 1, Retire)], 1, &[(1, true)]);
        let mut obs = w.observed();
        obs.leader = None;
        assert!(forgotten(&obs).is_empty());
    }

    #[test]
    fn the_leader_is_the_server_that_says_so_with_the_highest_commit() {
        let mut a = status(1, 10);
        a.role = "leader".into();
        a.leader_id = Some(1);
        a.members = vec![EnsembleMember {
            id: 1,
            zone: "a".into(),
            role: "voter".into(),
            client_addr: String::new(),
            peer_addr: String::new(),
        }];
        let mut stale = status(2, 5);
        stale.role = "leader".into();
        stale.leader_id = Some(2);
        let follower = status(3, 10);
        let l = leader_of([&stale, &a, &follower]).unwrap();
        assert_eq!(
            (l.id, l.commit_index, l.members.clone()),
            (1, 10, vec![(1, true)])
        );
        assert_eq!(leader_of([&follower]), None);
    }

    #[test]
    fn member_states() {
        let mut w = world(
            &[
                (1, 0, Voter),
                (2, 1, Voter),
                (3, 2, Observer),
                (4, 3, Voter),
                (5, 4, Retire),
                (6, 5, Voter),
            ],
            1,
            &[(1, true), (2, true), (3, false)],
        );
        w.member(6).server = None;
        let obs = w.observed();
        let states: Vec<_> = obs
            .members
            .iter()
            .map(|m| member_state(m, obs.leader.as_ref()))
            .collect();
        assert_eq!(
            states,
            ["leader", "follower", "observer", "joining", "retired", "starting"]
        );
        assert_eq!(member_state(&obs.members[0], None), "starting");
    }
}
