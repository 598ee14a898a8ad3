//! Ensemble membership as the state machine knows it: who the members are
//! and where to reach them, and the rules for changing it one step at a
//! time. Pure: the consensus task turns a [`MembershipChange`] into a raft
//! configuration change whose context carries the change itself, so every
//! member learns a newcomer's addresses from the log (and from snapshots).
//!
//! The quorum rule (refuse a change that would leave the new configuration
//! without a live majority) lives in [`check_change`].

use std::collections::{BTreeMap, BTreeSet};

use proto::jute::{self, DecodeError, Reader};
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use serde::{Deserialize, Serialize};

use crate::config::MemberRole;

/// One member of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: u64,
    pub zone: String,
    pub peer_addr: String,
    pub client_addr: String,
    #[serde(default)]
    pub role: MemberRole,
}

impl From<&crate::config::Member> for MemberInfo {
    fn from(m: &crate::config::Member) -> Self {
        MemberInfo {
            id: m.id,
            zone: m.zone.clone(),
            peer_addr: m.peer_addr.clone(),
            client_addr: m.client_addr.clone(),
            role: m.role,
        }
    }
}

/// As `/v1/status` and `/v1/members` report a member.
impl From<&MemberInfo> for crate::status::MemberStatus {
    fn from(m: &MemberInfo) -> Self {
        crate::status::MemberStatus {
            id: m.id,
            zone: m.zone.clone(),
            role: m.role.as_str().to_string(),
            client_addr: m.client_addr.clone(),
            peer_addr: m.peer_addr.clone(),
        }
    }
}

/// Whom the peer transport keeps a connection to.
impl From<&MemberInfo> for crate::transport::PeerInfo {
    fn from(m: &MemberInfo) -> Self {
        crate::transport::PeerInfo {
            id: m.id,
            zone: m.zone.clone(),
            addr: m.peer_addr.clone(),
        }
    }
}

/// One step of a membership change (the admin API's operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new voter or observer (observers are raft learners).
    Add(MemberInfo),
    /// An observer becomes a voter.
    Promote(u64),
    /// A member leaves.
    Remove(u64),
}

/// Why a change is refused. The admin API maps each to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("this member is not the leader; send membership changes to the leader (member {leader_id}, 0 = none known)")]
    NotLeader { leader_id: u64 },
    #[error("another membership change is still in progress; retry when it has been applied")]
    InProgress,
    #[error("member {0} already exists")]
    Exists(u64),
    #[error("member {0} is not a member")]
    Unknown(u64),
    #[error("member {0} is not an observer")]
    NotObserver(u64),
    #[error(
        "member {id} has not caught up: the leader has replicated {matched} of its {commit} \
         committed entries to it (a member is caught up once it has installed the leader's \
         snapshot and is within {lag} entries of the commit index); wait until its /readyz \
         answers 200 and its last_zxid nears the leader's, then retry the promotion"
    )]
    NotCaughtUp {
        id: u64,
        matched: u64,
        commit: u64,
        lag: u64,
    },
    #[error("the change would lose quorum: {0}")]
    WouldLoseQuorum(String),
    #[error("invalid member: {0}")]
    Invalid(String),
    #[error("the change was not applied (leadership changed or the server is stopping); check /v1/members and retry")]
    Aborted,
}

/// Checks a change against the current membership and the members the
/// leader has heard from recently (`active`, which includes the leader).
/// A change is refused if, right after it, the voters that are live would
/// not be a majority of the new voter set: the ensemble would stop taking
/// writes. Adding a voter that is not yet replicating is refused for the
/// same reason — add it as an observer, let it catch up, then promote it.
pub fn check_change(
    members: &BTreeMap<u64, MemberInfo>,
    voters: &BTreeSet<u64>,
    active: &BTreeSet<u64>,
    change: &MembershipChange,
) -> Result<(), MembershipError> {
    let mut new_voters = voters.clone();
    match change {
        MembershipChange::Add(m) => {
            if m.id == 0 || m.id > 255 {
                return Err(MembershipError::Invalid(format!("id {} is not in 1..=255", m.id)));
            }
            if m.peer_addr.is_empty() || m.client_addr.is_empty() {
                return Err(MembershipError::Invalid(
                    "peer_addr and client_addr are required".into(),
                ));
            }
            if members.contains_key(&m.id) || voters.contains(&m.id) {
                return Err(MembershipError::Exists(m.id));
            }
            if m.role == MemberRole::Voter {
                new_voters.insert(m.id);
            }
        }
        MembershipChange::Promote(id) => match members.get(id) {
            None => return Err(MembershipError::Unknown(*id)),
            Some(m) if m.role != MemberRole::Observer => return Err(MembershipError::NotObserver(*id)),
            Some(_) => {
                new_voters.insert(*id);
            }
        },
        MembershipChange::Remove(id) => {
            if !members.contains_key(id) && !voters.contains(id) {
                return Err(MembershipError::Unknown(*id));
            }
            new_voters.remove(id);
            if new_voters.is_empty() {
                return Err(MembershipError::WouldLoseQuorum(
                    "it would remove the last voter".into(),
                ));
            }
        }
    }
    let live = new_voters.iter().filter(|v| active.contains(v)).count();
    let needed = new_voters.len() / 2 + 1;
    if live < needed {
        return Err(MembershipError::WouldLoseQuorum(format!(
            "afterwards {live} of {} voters would be reachable, {needed} are needed",
            new_voters.len()
        )));
    }
    Ok(())
}

impl MembershipChange {
    /// The raft configuration change, with `self` encoded in its context.
    pub fn to_conf_change(&self) -> ConfChangeV2 {
        let (id, kind) = match self {
            MembershipChange::Add(m) if m.role == MemberRole::Observer => {
                (m.id, ConfChangeType::AddLearnerNode)
            }
            MembershipChange::Add(m) => (m.id, ConfChangeType::AddNode),
            MembershipChange::Promote(id) => (*id, ConfChangeType::AddNode),
            MembershipChange::Remove(id) => (*id, ConfChangeType::RemoveNode),
        };
        let mut single = ConfChangeSingle {
            node_id: id,
            ..Default::default()
        };
        single.set_change_type(kind);
        let mut cc = ConfChangeV2::default();
        cc.mut_changes().push(single);
        cc.context = self.encode().into();
        cc
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            MembershipChange::Add(m) => {
                jute::write_i32(&mut out, 1);
                encode_member(&mut out, m);
            }
            MembershipChange::Promote(id) => {
                jute::write_i32(&mut out, 2);
                jute::write_i64(&mut out, *id as i64);
            }
            MembershipChange::Remove(id) => {
                jute::write_i32(&mut out, 3);
                jute::write_i64(&mut out, *id as i64);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<MembershipChange, DecodeError> {
        let mut r = Reader::new(buf);
        let c = match r.read_i32()? {
            1 => MembershipChange::Add(decode_member(&mut r)?),
            2 => MembershipChange::Promote(r.read_i64()? as u64),
            3 => MembershipChange::Remove(r.read_i64()? as u64),
            _ => return Err(DecodeError::Invalid("unknown membership change")),
        };
        r.finish()?;
        Ok(c)
    }

    /// Applies the change to the member list (every member, in log order).
    pub fn apply(&self, members: &mut BTreeMap<u64, MemberInfo>) {
        match self {
            MembershipChange::Add(m) => {
                members.insert(m.id, m.clone());
            }
            MembershipChange::Promote(id) => {
                if let Some(m) = members.get_mut(id) {
                    m.role = MemberRole::Voter;
                }
            }
            MembershipChange::Remove(id) => {
                members.remove(id);
            }
        }
    }
}

pub fn encode_member(out: &mut Vec<u8>, m: &MemberInfo) {
    jute::write_i64(out, m.id as i64);
    jute::write_string(out, &m.zone);
    jute::write_string(out, &m.peer_addr);
    jute::write_string(out, &m.client_addr);
    jute::write_bool(out, m.role == MemberRole::Observer);
}

pub fn decode_member(r: &mut Reader<'_>) -> Result<MemberInfo, DecodeError> {
    Ok(MemberInfo {
        id: r.read_i64()? as u64,
        zone: r.read_string()?,
        peer_addr: r.read_string()?,
        client_addr: r.read_string()?,
        role: if r.read_bool()? {
            MemberRole::Observer
        } else {
            MemberRole::Voter
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, role: MemberRole) -> MemberInfo {
        MemberInfo {
            id,
            zone: format!("z{id}"),
            peer_addr: format!("h{id}:2888"),
            client_addr: format!("h{id}:2181"),
            role,
        }
    }

    fn three() -> (BTreeMap<u64, MemberInfo>, BTreeSet<u64>) {
        let m: BTreeMap<_, _> = (1..=3).map(|i| (i, member(i, MemberRole::Voter))).collect();
        (m, (1..=3).collect())
    }

    #[test]
    fn removing_a_voter_is_refused_when_the_rest_would_lack_a_live_majority() {
        let (m, v) = three();
        // 3 voters, only the leader (1) and 2 live: removing 2 leaves {1, 3}
        // with 1 live of 2: no majority.
        let active: BTreeSet<u64> = [1, 2].into();
        assert!(matches!(
            check_change(&m, &v, &active, &MembershipChange::Remove(2)),
            Err(MembershipError::WouldLoseQuorum(_))
        ));
        // Removing the dead one leaves {1, 2}, both live.
        assert_eq!(
            check_change(&m, &v, &active, &MembershipChange::Remove(3)),
            Ok(())
        );
    }

    #[test]
    fn a_new_voter_must_already_replicate_so_observers_come_first() {
        let (m, v) = three();
        let active: BTreeSet<u64> = [1, 2].into();
        // {1,2,3,4} needs 3 live; 4 is not replicating yet.
        assert!(matches!(
            check_change(
                &m,
                &v,
                &active,
                &MembershipChange::Add(member(4, MemberRole::Voter))
            ),
            Err(MembershipError::WouldLoseQuorum(_))
        ));
        assert_eq!(
            check_change(
                &m,
                &v,
                &active,
                &MembershipChange::Add(member(4, MemberRole::Observer))
            ),
            Ok(())
        );
    }

    #[test]
    fn promote_needs_an_observer_and_add_a_new_id() {
        let (mut m, v) = three();
        let active: BTreeSet<u64> = (1..=4).collect();
        m.insert(4, member(4, MemberRole::Observer));
        assert_eq!(
            check_change(&m, &v, &active, &MembershipChange::Promote(4)),
            Ok(())
        );
        assert_eq!(
            check_change(&m, &v, &active, &MembershipChange::Promote(2)),
            Err(MembershipError::NotObserver(2))
        );
        assert_eq!(
            check_change(
                &m,
                &v,
                &active,
                &MembershipChange::Add(member(2, MemberRole::Voter))
            ),
            Err(MembershipError::Exists(2))
        );
        assert_eq!(
            check_change(&m, &v, &active, &MembershipChange::Remove(9)),
            Err(MembershipError::Unknown(9))
        );
    }

    #[test]
    fn changes_round_trip_through_the_conf_change_context() {
        for c in [
            MembershipChange::Add(member(4, MemberRole::Observer)),
            MembershipChange::Promote(4),
            MembershipChange::Remove(2),
        ] {
            let cc = c.to_conf_change();
            assert_eq!(MembershipChange::decode(&cc.context).unwrap(), c);
        }
        assert!(MembershipChange::decode(&[0, 0, 0, 9]).is_err());
    }

    #[test]
    fn apply_keeps_the_member_list() {
        let (mut m, _) = three();
        MembershipChange::Add(member(4, MemberRole::Observer)).apply(&mut m);
        MembershipChange::Promote(4).apply(&mut m);
        MembershipChange::Remove(1).apply(&mut m);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(m[&4].role, MemberRole::Voter);
    }
}
