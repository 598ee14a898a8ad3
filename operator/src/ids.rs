//! Server id allocation: stable ids that never collide and are never reused.
//!
//! Owns: [`allocate`], the pure function from a resource's spec and its
//! recorded allocation (`status.members`, `status.nextMemberId`) to the
//! member list of the spec.
//!
//! The scheme (docs/operator.md, "Server ids"):
//! - A member is a (zone, ordinal, role) slot: ordinals `0..voters` of a
//!   zone's StatefulSet are voters, the next `observers` ones observers.
//! - A slot that was allocated before keeps its id, as long as it exists
//!   with the same role.
//! - A new slot (scale-up, a new zone, or a slot whose role changed) gets
//!   `nextMemberId`, which then grows; ids are handed out in zone (spec)
//!   order, then ordinal order, so the allocation is deterministic.
//! - A slot that goes away (scale-down, zone removed) retires its id for
//!   good. Scaling back up gives the slot a new id, hence a new data
//!   directory (`member-<id>/`): a re-added member never starts from the
//!   state of the member that had that pod before.
//! - `nextMemberId` never decreases; it is at least one more than every id
//!   recorded. Ids are 1..=255 (the server's range); running out is an
//!   error reported in status, never a reuse.
//!
//! - Once the ensemble has formed (`status.bootstrapped`), a slot that goes
//!   away does not vanish at once: its member moves to `status.retiring`
//!   until the controller has removed it from the ensemble (plan.rs), so
//!   its pod stays until then. Before that, membership is the static
//!   founding config and a dropped slot is simply dropped.
//!
//! The controller records a new allocation in status before it applies any
//! object that uses it, so an id is never handed out twice even if the
//! operator crashes between the two.
//!
//! Must not: do I/O.

use crate::crd::{CoordinationCluster, MemberRole, MemberStatus};
use crate::desired::{Invalid, Names};
use kube::ResourceExt;

/// Highest server id (the server's `id` range is 1..=255).
pub const MAX_ID: i64 = 255;

/// The members of the spec with their ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub members: Vec<MemberStatus>,
    /// Members to remove from the ensemble before their pods go.
    pub retiring: Vec<MemberStatus>,
    pub next_member_id: i64,
}

/// See the module doc.
pub fn allocate(cc: &CoordinationCluster) -> Result<Allocation, Invalid> {
    let names = Names::new(cc, &cc.namespace().unwrap_or_default());
    let status = cc.status.clone().unwrap_or_default();
    let previous = &status.members;
    let mut next = previous
        .iter()
        .chain(&status.retiring)
        .map(|m| m.id + 1)
        .chain(status.next_member_id)
        .chain([1])
        .max()
        .expect("non-empty");
    let mut members = Vec::new();
    for zone in &cc.spec.zones {
        for ordinal in 0..zone.members() {
            let role = if ordinal < zone.voters {
                MemberRole::Voter
            } else {
                MemberRole::Observer
            };
            let kept = previous
                .iter()
                .find(|m| m.zone == zone.name && m.ordinal == ordinal && m.role == role);
            let id = match kept {
                Some(m) => m.id,
                None => {
                    if next > MAX_ID {
                        return Err(Invalid::IdsExhausted(next));
                    }
                    next += 1;
                    next - 1
                }
            };
            members.push(MemberStatus {
                id,
                zone: zone.name.clone(),
                ordinal,
                pod: names.pod(&zone.name, ordinal),
                role,
                ready: kept.and_then(|m| m.ready),
                state: kept.and_then(|m| m.state.clone()),
                last_zxid: kept.and_then(|m| m.last_zxid),
            });
        }
    }
    let mut retiring = status.retiring.clone();
    if status.bootstrapped {
        retiring.extend(
            previous
                .iter()
                .filter(|p| !members.iter().any(|m| m.id == p.id))
                .cloned(),
        );
    }
    retiring.sort_by_key(|m| m.id);
    retiring.dedup_by_key(|m| m.id);
    Ok(Allocation {
        members,
        retiring,
        next_member_id: next,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::crd::CoordinationClusterStatus;

    fn ids(cc: &CoordinationCluster) -> Vec<(String, i64)> {
        allocate(cc)
            .unwrap()
            .members
            .into_iter()
            .map(|m| (m.pod, m.id))
            .collect()
    }

    fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
        v.iter().map(|(p, i)| (p.to_string(), *i)).collect()
    }

    #[test]
    fn first_allocation_numbers_zone_then_ordinal_from_one() {
        let cc = CoordinationCluster::test().with_zones(&[("a", 2, 1), ("b", 1, 0)]);
        assert_eq!(
            ids(&cc),
            pairs(&[
                ("coord-a-0", 1),
                ("coord-a-1", 2),
                ("coord-a-2", 3),
                ("coord-b-0", 4)
            ])
        );
        assert_eq!(allocate(&cc).unwrap().next_member_id, 5);
        let roles: Vec<_> = allocate(&cc).unwrap().members.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                MemberRole::Voter,
                MemberRole::Voter,
                MemberRole::Observer,
                MemberRole::Voter
            ]
        );
    }

    #[test]
    fn allocation_is_stable_when_nothing_changes() {
        let cc = CoordinationCluster::test().allocated();
        let again = allocate(&cc).unwrap();
        assert_eq!(
            Some(again.next_member_id),
            cc.status.as_ref().unwrap().next_member_id
        );
        assert_eq!(again.members, cc.status.unwrap().members);
    }

    #[test]
    fn scale_down_then_up_never_reuses_an_id() {
        let three = CoordinationCluster::test().with_zones(&[("a", 3, 0)]).allocated();
        assert_eq!(
            ids(&three),
            pairs(&[("coord-a-0", 1), ("coord-a-1", 2), ("coord-a-2", 3)])
        );
        let one = three.with_zones(&[("a", 1, 0)]).allocated();
        assert_eq!(ids(&one), pairs(&[("coord-a-0", 1)]));
        assert_eq!(
            one.status.as_ref().unwrap().next_member_id,
            Some(4),
            "the counter does not go back"
        );
        let three_again = one.with_zones(&[("a", 3, 0)]).allocated();
        assert_eq!(
            ids(&three_again),
            pairs(&[("coord-a-0", 1), ("coord-a-1", 4), ("coord-a-2", 5)])
        );
    }

    #[test]
    fn a_role_change_is_a_new_member() {
        // ordinal 1 of zone a is an observer, then becomes a voter
        let before = CoordinationCluster::test()
            .with_zones(&[("a", 1, 1), ("b", 1, 0), ("c", 1, 0)])
            .allocated();
        assert_eq!(ids(&before)[1], ("coord-a-1".to_string(), 2));
        let after = before.with_zones(&[("a", 3, 0), ("b", 1, 0), ("c", 1, 0)]);
        assert_eq!(
            ids(&after),
            pairs(&[
                ("coord-a-0", 1),
                ("coord-a-1", 5),
                ("coord-a-2", 6),
                ("coord-b-0", 3),
                ("coord-c-0", 4)
            ])
        );
    }

    #[test]
    fn zone_removed_and_added_back_gets_fresh_ids() {
        let cc = CoordinationCluster::test().allocated(); // a:1 b:2 c:3
        let without_c = cc
            .with_zones(&[("a", 1, 0), ("b", 1, 0), ("d", 1, 0)])
            .allocated();
        assert_eq!(
            ids(&without_c),
            pairs(&[("coord-a-0", 1), ("coord-b-0", 2), ("coord-d-0", 4)])
        );
        let c_back = without_c.with_zones(&[("a", 1, 0), ("b", 1, 0), ("c", 1, 0)]);
        assert_eq!(
            ids(&c_back),
            pairs(&[("coord-a-0", 1), ("coord-b-0", 2), ("coord-c-0", 5)])
        );
    }

    #[test]
    fn a_lost_counter_is_rebuilt_above_every_recorded_id() {
        let mut cc = CoordinationCluster::test().allocated();
        cc.status.as_mut().unwrap().next_member_id = None;
        let more = cc.with_zones(&[("a", 2, 0), ("b", 1, 0), ("c", 0, 0)]);
        assert_eq!(allocate(&more).unwrap().members[1].id, 4);
    }

    #[test]
    fn after_bootstrap_dropped_slots_retire_until_forgotten() {
        let mut three = CoordinationCluster::test().with_zones(&[("a", 3, 0)]).allocated();
        three.status.as_mut().unwrap().bootstrapped = true;
        let one = three.with_zones(&[("a", 1, 0)]);
        let a = allocate(&one).unwrap();
        assert_eq!(a.members.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
        assert_eq!(
            a.retiring
                .iter()
                .map(|m| (m.id, m.pod.as_str()))
                .collect::<Vec<_>>(),
            [(2, "coord-a-1"), (3, "coord-a-2")]
        );
        // recorded, then scaled up again before the removals finished:
        // the retiring stay retiring, the slots get fresh ids
        let recorded = one.allocated();
        assert_eq!(recorded.status.as_ref().unwrap().retiring.len(), 2);
        let again = recorded.with_zones(&[("a", 2, 0)]);
        let a = allocate(&again).unwrap();
        assert_eq!(a.members.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(a.retiring.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(a.next_member_id, 5);
    }

    #[test]
    fn a_lost_counter_is_rebuilt_above_retiring_ids_too() {
        let mut cc = CoordinationCluster::test().with_zones(&[("a", 1, 0)]);
        let mut retired = CoordinationCluster::test().allocated().status.unwrap().members;
        retired.retain(|m| m.id == 3);
        cc.status = Some(CoordinationClusterStatus {
            retiring: retired,
            ..Default::default()
        });
        assert_eq!(allocate(&cc).unwrap().members[0].id, 4);
    }

    #[test]
    fn ids_run_out_at_255_instead_of_wrapping() {
        let mut cc = CoordinationCluster::test().with_zones(&[("a", 1, 1)]);
        cc.status = Some(CoordinationClusterStatus {
            next_member_id: Some(255),
            ..Default::default()
        });
        assert_eq!(allocate(&cc), Err(Invalid::IdsExhausted(256)));
        cc.spec.zones[0].observers = 0;
        assert_eq!(ids(&cc), pairs(&[("coord-a-0", 255)]));
    }
}
