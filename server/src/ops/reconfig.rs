//! `reconfig` (opcode 16): ZooKeeper's incremental reconfiguration, mapped
//! onto the same one-step membership change as the admin API's
//! `/v1/members` (docs/ensemble.md, "reconfig").
//!
//! - Off unless `reconfig_enabled` (ZooKeeper's `reconfigEnabled`):
//!   RECONFIGDISABLED.
//! - The caller needs WRITE on `/zookeeper/config` (read-only for everyone
//!   by default, so in practice the super user), as ZooKeeper checks.
//! - One change per request: one joining server or one leaving id. A
//!   joining spec is ZooKeeper's
//!   `server.ID=HOST:PEERPORT:ELECTIONPORT[:participant|observer][;[CLIENTHOST:]CLIENTPORT]`;
//!   we have one peer port, so ELECTIONPORT is ignored, and an optional
//!   third `;`-part names the member's zone (`;zone-b`, else `default`). A
//!   new id is added (as a voter or observer); a known observer joining as
//!   participant is promoted. Non-incremental reconfig (`newMembers`) is
//!   refused with BADARGUMENTS.
//! - Refusals map to the codes ZooKeeper clients know: would lose quorum →
//!   NEWCONFIGNOQUORUM; another change in progress → RECONFIGINPROGRESS;
//!   unknown or existing ids, bad specs → BADARGUMENTS; a `curConfigId` that
//!   is not the current config's version → BADVERSION; sent to a member
//!   that is not the leader, or to a standalone server → UNIMPLEMENTED (no
//!   forwarding yet: send it to the leader).
//! - The answer is `/zookeeper/config`'s new data and stat; that node holds
//!   the membership in ZooKeeper's dynamic-config format ([`render`]),
//!   rewritten on every member when a change applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::records::{perms, GetDataResponse, ReconfigRequest};
use proto::response::ResponseBody;
use proto::ErrorCode;

use crate::acl::{self, AuthInfo};
use crate::config::MemberRole;
use crate::consensus::Proposer;
use crate::hub::Hub;
use crate::membership::{MemberInfo, MembershipChange, MembershipError};

/// The znode that holds the ensemble's configuration.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// The zone of a member added by `reconfig` without one.
const DEFAULT_ZONE: &str = "default";

/// ZooKeeper's dynamic config text for `members` at config version
/// `version` (the zxid of the change, in hex as ZooKeeper writes it):
/// `server.ID=HOST:PORT:PORT:ROLE;CLIENTADDR` per member, then
/// `version=…`. Our single peer port stands for both ZooKeeper ports.
pub fn render(members: &BTreeMap<u64, MemberInfo>, version: i64) -> String {
    let mut out = String::new();
    for m in members.values() {
        let role = match m.role {
            MemberRole::Observer => "observer",
            MemberRole::Voter => "participant",
        };
        let port = m.peer_addr.rsplit_once(':').map_or("", |(_, p)| p);
        out.push_str(&format!(
            "server.{}={}:{port}:{role};{}\n",
            m.id, m.peer_addr, m.client_addr
        ));
    }
    out.push_str(&format!("version={version:x}"));
    out
}

/// The `version=` of a rendered config, if any.
pub fn version_of(config: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(config).ok()?;
    let v = text.lines().find_map(|l| l.strip_prefix("version="))?;
    i64::from_str_radix(v.trim(), 16).ok()
}

/// The one membership change a request asks for.
pub fn parse(req: &ReconfigRequest, members: &BTreeMap<u64, MemberInfo>) -> Result<MembershipChange, String> {
    if !req.new_members.trim().is_empty() {
        return Err("non-incremental reconfig (newMembers) is not supported; use joining/leaving".into());
    }
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let joining = split(&req.joining_servers);
    let leaving = split(&req.leaving_servers);
    match (joining.as_slice(), leaving.as_slice()) {
        ([spec], []) => {
            let m = parse_server_spec(spec)?;
            match members.get(&m.id) {
                Some(old) if old.role == MemberRole::Observer && m.role == MemberRole::Voter => {
                    Ok(MembershipChange::Promote(m.id))
                }
                Some(_) => Err(format!("server {} is already a member in that role", m.id)),
                None => Ok(MembershipChange::Add(m)),
            }
        }
        ([], [id]) => {
            let id = id
                .parse()
                .map_err(|_| format!("leaving server id {id:?} is not a number"))?;
            Ok(MembershipChange::Remove(id))
        }
        ([], []) => Err("nothing to change: no joining or leaving server".into()),
        _ => Err("one change per reconfig: exactly one joining server or one leaving id".into()),
    }
}

/// `server.ID=HOST:PEERPORT:ELECTIONPORT[:ROLE][;[CLIENTHOST:]CLIENTPORT[;ZONE]]`.
pub fn parse_server_spec(spec: &str) -> Result<MemberInfo, String> {
    let bad = |why: &str| format!("joining server {spec:?}: {why}");
    let (key, value) = spec.split_once('=').ok_or_else(|| bad("expected server.ID=…"))?;
    let id: u64 = key
        .trim()
        .strip_prefix("server.")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| bad("expected server.ID with a numeric ID"))?;
    let mut parts = value.trim().split(';');
    let server = parts.next().unwrap_or_default();
    let client = parts.next();
    let zone = parts.next().map(str::trim).filter(|z| !z.is_empty());
    if parts.next().is_some() {
        return Err(bad("too many ';' parts"));
    }
    let fields: Vec<&str> = server.split(':').collect();
    let (host, peer_port, role) = match fields.as_slice() {
        [host, port, _election] => (*host, *port, MemberRole::Voter),
        [host, port, _election, role] => {
            let role = match *role {
                "participant" => MemberRole::Voter,
                "observer" => MemberRole::Observer,
                other => {
                    return Err(bad(&format!(
                        "role {other:?} is neither participant nor observer"
                    )))
                }
            };
            (*host, *port, role)
        }
        _ => return Err(bad("expected HOST:PEERPORT:ELECTIONPORT[:ROLE]")),
    };
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p != 0);
    if host.is_empty() || !port_ok(peer_port) {
        return Err(bad("the peer address needs a host and a port"));
    }
    let client = client
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("a client port (;CLIENTPORT) is required"))?;
    let (client_host, client_port) = client.rsplit_once(':').unwrap_or(("", client));
    if !port_ok(client_port) {
        return Err(bad("the client port is not a port number"));
    }
    // No client host, or the wildcard: clients reach it on the peer host.
    let client_host = match client_host {
        "" | "0.0.0.0" => host,
        h => h,
    };
    let client_addr = format!("{client_host}:{client_port}");
    Ok(MemberInfo {
        id,
        zone: zone.unwrap_or(DEFAULT_ZONE).to_string(),
        peer_addr: format!("{host}:{peer_port}"),
        client_addr,
        role,
    })
}

/// What a refused change answers.
fn code_of(e: &MembershipError) -> ErrorCode {
    match e {
        MembershipError::NotLeader { .. } => ErrorCode::Unimplemented,
        MembershipError::InProgress => ErrorCode::ReconfigInProgress,
        MembershipError::WouldLoseQuorum(_) => ErrorCode::NewConfigNoQuorum,
        MembershipError::Exists(_)
        | MembershipError::Unknown(_)
        | MembershipError::NotObserver(_)
        | MembershipError::Invalid(_) => ErrorCode::BadArguments,
        MembershipError::Aborted => ErrorCode::SystemError,
    }
}

/// Runs one `reconfig` request to the end. `None`: the change was started
/// but its outcome is unknown (leadership changed, or the server is
/// stopping); the connection is then closed, as for a write whose outcome
/// is unknown.
pub async fn run(
    proposer: Proposer,
    hub: Arc<Hub>,
    auth: AuthInfo,
    req: ReconfigRequest,
) -> Option<(ErrorCode, ResponseBody)> {
    let change = {
        let state = hub.state();
        let Some(node) = state.tree.get(CONFIG_NODE) else {
            return Some((ErrorCode::NoNode, ResponseBody::Empty));
        };
        if let Err(e) = acl::check(&node.acl, perms::WRITE, &auth) {
            return Some((e, ResponseBody::Empty));
        }
        if state.members.is_empty() {
            tracing::info!("reconfig refused: a standalone server has no ensemble to change");
            return Some((ErrorCode::Unimplemented, ResponseBody::Empty));
        }
        let current = node.data.as_deref().and_then(version_of).unwrap_or(-1);
        if req.cur_config_id != -1 && req.cur_config_id != current {
            return Some((ErrorCode::BadVersion, ResponseBody::Empty));
        }
        match parse(&req, &state.members) {
            Ok(c) => c,
            Err(why) => {
                tracing::info!(%why, "reconfig refused");
                return Some((ErrorCode::BadArguments, ResponseBody::Empty));
            }
        }
    };
    match proposer.change_membership(change.clone()).await {
        Ok(_) => {
            let state = hub.state();
            let node = state.tree.get(CONFIG_NODE)?;
            let body = ResponseBody::GetData(GetDataResponse {
                data: node.data.clone(),
                stat: node.stat(),
            });
            Some((ErrorCode::Ok, body))
        }
        Err(MembershipError::Aborted) => None,
        Err(e) => {
            tracing::info!(?change, error = %e, "reconfig refused");
            Some((code_of(&e), ResponseBody::Empty))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(joining: &str, leaving: &str) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: String::new(),
            cur_config_id: -1,
        }
    }

    fn members() -> BTreeMap<u64, MemberInfo> {
        let mut m = BTreeMap::new();
        for (id, role) in [(1, MemberRole::Voter), (2, MemberRole::Observer)] {
            m.insert(
                id,
                MemberInfo {
                    id,
                    zone: "zone-a".into(),
                    peer_addr: format!("10.0.0.{id}:2888"),
                    client_addr: format!("10.0.0.{id}:2181"),
                    role,
                },
            );
        }
        m
    }

    #[test]
    fn renders_zookeepers_dynamic_config_format() {
        assert_eq!(
            render(&members(), 0x100000003),
            "server.1=10.0.0.1:2888:2888:participant;10.0.0.1:2181\n\
             server.2=10.0.0.2:2888:2888:observer;10.0.0.2:2181\n\
             version=100000003"
        );
        assert_eq!(
            version_of(render(&members(), 0x100000003).as_bytes()),
            Some(0x100000003)
        );
    }

    #[test]
    fn a_joining_spec_becomes_an_add_or_a_promote() {
        let m = members();
        let c = parse(&req("server.3=10.0.0.3:2888:3888:observer;2181", ""), &m).unwrap();
        assert_eq!(
            c,
            MembershipChange::Add(MemberInfo {
                id: 3,
                zone: "default".into(),
                peer_addr: "10.0.0.3:2888".into(),
                client_addr: "10.0.0.3:2181".into(),
                role: MemberRole::Observer,
            })
        );
        let c = parse(&req("server.3=h3:2888:3888;0.0.0.0:2181;zone-c", ""), &m).unwrap();
        let MembershipChange::Add(info) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            (info.role, info.client_addr.as_str(), info.zone.as_str()),
            (MemberRole::Voter, "h3:2181", "zone-c")
        );
        let c = parse(&req("server.3=h3:2888:3888;c3:2181", ""), &m).unwrap();
        let MembershipChange::Add(info) = c else {
            panic!("{c:?}")
        };
        assert_eq!(info.client_addr, "c3:2181");
        assert_eq!(
            parse(&req("server.2=10.0.0.2:2888:3888:participant;2181", ""), &m),
            Ok(MembershipChange::Promote(2))
        );
        assert_eq!(parse(&req("", "2"), &m), Ok(MembershipChange::Remove(2)));
    }

    #[test]
    fn malformed_or_multiple_changes_are_refused() {
        let m = members();
        for (j, l) in [
            ("", ""),
            ("server.3=h:1:2;3,server.4=h:1:2;3", ""),
            ("server.3=h:1:2;3", "2"),
            ("", "1,2"),
            ("", "x"),
            ("server.x=h:1:2;3", ""),
            ("server.3=h:1;3", ""),
            ("server.3=h:1:2:voter;3", ""),
            ("server.3=h:1:2", ""),
            ("server.3=h:0:2;3", ""),
            ("server.3=h:1:2;port", ""),
            ("server.1=10.0.0.1:2888:3888;2181", ""),
        ] {
            assert!(
                parse(&req(j, l), &m).is_err(),
                "joining {j:?} leaving {l:?} accepted"
            );
        }
        let mut r = req("", "2");
        r.new_members = "server.1=h:1:2;3".into();
        assert!(parse(&r, &m).is_err());
    }
}
