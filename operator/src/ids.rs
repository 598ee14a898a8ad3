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
    pub next_member_id: i64,
}

/// See the module doc.
pub fn allocate(cc: &CoordinationCluster) -> Result<Allocation, Invalid> {
    let names = Names::new(cc, &cc.namespace().unwrap_or_default());
    let status = cc.status.clone().unwrap_or_default();
    let previous = &status.members;
    let mut next = previous
        .iter()
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
            });
        }
    }
    Ok(Allocation {
        members,
        next_member_id: next,
    })
}
