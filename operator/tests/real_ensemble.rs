//! The planner and the admin client against real zonekeeper servers (in
//! this process, on free loopback ports, with real disks and real raft):
//! the contract of docs/admin-api.md end to end, and the operator's
//! rendered server config read by the server's own parser.
//!
//! One story: a founding member of one grows to three voters (each joiner
//! added as an observer, promoted after catching up), then the leader
//! leaves (leadership handed over first, then removed) — each step chosen
//! by `plan()` from what the servers report, exactly as the controller
//! does, one per pass.

use std::net::TcpListener;
use std::time::Duration;

use zonekeeper_operator::admin::{AdminClient, Endpoints, NewMember, ServerStatus};
use zonekeeper_operator::crd::MemberRole;
use zonekeeper_operator::desired::{MemberConfig, ServerConfig};
use zonekeeper_operator::plan::{leader_of, plan, Member, Observed, Step, Want};
use zonekeeper_server::config::{Config, Settings};
use zonekeeper_server::server::{start, RunningServer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    id: i64,
    client: String,
    admin: String,
    peer: String,
}

impl Node {
    fn new(id: i64) -> Node {
        let addr = || format!("127.0.0.1:{}", free_port());
        Node {
            id,
            client: addr(),
            admin: addr(),
            peer: addr(),
        }
    }

    fn advertised(&self) -> MemberConfig {
        MemberConfig {
            id: self.id,
            zone: "a".into(),
            peer_addr: self.peer.clone(),
            client_addr: self.client.clone(),
            role: MemberRole::Voter,
        }
    }

    /// Starts the server from the config the operator would render.
    async fn start(&self, dir: &std::path::Path, known: &[&Node], join: bool) -> RunningServer {
        let config = ServerConfig {
            id: self.id,
            zone: "a".into(),
            data_dir: dir.join(format!("member-{}", self.id)).display().to_string(),
            client_addr: self.client.clone(),
            admin_addr: self.admin.clone(),
            peer_addr: self.peer.clone(),
            tick_ms: None,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            max_client_connections: None,
            four_letter_words: None,
            snapshot_every_entries: None,
            join: join.then_some(true),
            members: known.iter().map(|n| n.advertised()).collect(),
        };
        let text = toml::to_string(&config).unwrap();
        let settings = Settings::from_toml(&text).expect("the server parses the operator's config");
        let config = Config::from_settings(settings).expect("the operator's config is valid");
        start(config).await.expect("the server starts")
    }
}

/// Passes until the plan is idle; returns the steps taken (waits left
/// out). Each pass reads every server's `/v1/status` and carries out at
/// most one step, like the controller.
async fn drive(admin: &AdminClient, nodes: &[&Node], wants: &[(i64, Want)]) -> Vec<Step> {
    let mut taken = Vec::new();
    let mut last_wait = String::new();
    for _ in 0..1200 {
        let mut statuses: Vec<Option<ServerStatus>> = Vec::new();
        for n in nodes {
            statuses.push(admin.status(&n.admin).await.ok());
        }
        let leader = leader_of(statuses.iter().flatten());
        let members = wants
            .iter()
            .map(|&(id, want)| {
                let i = nodes.iter().position(|n| n.id == id).unwrap();
                let server = statuses[i].clone();
                Member {
                    id,
                    ordinal: i as i32,
                    pod: format!("pod-{id}"),
                    want,
                    pod_exists: true,
                    // the pods' readiness probe is /readyz, which is `ready`
                    pod_ready: server.as_ref().is_some_and(|s| s.ready),
                    pod_current: true,
                    server,
                }
            })
            .collect();
        let obs = Observed { members, leader };
        let step = plan(&obs);
        let on_leader = || {
            let l = obs.leader.as_ref().unwrap().id;
            nodes.iter().find(|n| n.id == l).unwrap().admin.clone()
        };
        let result = match &step {
            Step::Idle => return taken,
            Step::Wait(why) => {
                last_wait = why.clone();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Step::Add(id) => {
                let n = nodes.iter().find(|n| n.id == *id).unwrap();
                let m = NewMember {
                    id: n.id,
                    zone: "a".into(),
                    peer_addr: n.peer.clone(),
                    client_addr: n.client.clone(),
                    role: "observer".into(),
                };
                admin.add_member(&on_leader(), &m).await
            }
            Step::Promote(id) => admin.promote(&on_leader(), *id).await,
            Step::Remove(id) => admin.remove(&on_leader(), *id).await,
            Step::TransferLeader { to, .. } => admin.transfer_leader(&on_leader(), *to).await,
            Step::Restart { .. } => panic!("no restart expected: {step:?}"),
        };
        match result {
            Ok(()) => taken.push(step),
            // e.g. change_in_progress right after the previous one: retried
            // from fresh observations, as the controller does
            Err(e) => last_wait = format!("{step:?} failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut views = String::new();
    for n in nodes {
        views.push_str(&format!(
            "\n  member {}: {:?}",
            n.id,
            admin.status(&n.admin).await
        ));
    }
    panic!("the plan never became idle; steps so far {taken:?}; last: {last_wait}{views}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_grows_then_shrinks_a_real_ensemble_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let (n1, n2, n3) = (Node::new(1), Node::new(2), Node::new(3));
    let admin = AdminClient::new(Duration::from_secs(5), Endpoints::Dns);

    // Founding: an ensemble of one. Joiners know whom to reach.
    let s1 = n1.start(dir.path(), &[&n1], false).await;
    let s2 = n2.start(dir.path(), &[&n1, &n2], true).await;
    let s3 = n3.start(dir.path(), &[&n1, &n3], true).await;
    let nodes = [&n1, &n2, &n3];

    let grow = drive(
        &admin,
        &nodes,
        &[(1, Want::Voter), (2, Want::Voter), (3, Want::Voter)],
    )
    .await;
    assert_eq!(
        grow,
        [Step::Add(2), Step::Promote(2), Step::Add(3), Step::Promote(3)],
        "observer first, promoted after catch-up, one member at a time"
    );
    let status = admin.status(&n1.admin).await.unwrap();
    let roles: Vec<_> = status.members.iter().map(|m| (m.id, m.role.as_str())).collect();
    assert_eq!(roles, [(1, "voter"), (2, "voter"), (3, "voter")]);

    // The leader (1, the founder) leaves.
    assert_eq!(status.leader_id, Some(1));
    let shrink = drive(
        &admin,
        &nodes,
        &[(2, Want::Voter), (3, Want::Voter), (1, Want::Retire)],
    )
    .await;
    assert_eq!(shrink, [Step::TransferLeader { from: 1, to: 2 }, Step::Remove(1)]);
    let status = admin.status(&n2.admin).await.unwrap();
    assert_eq!(status.leader_id, Some(2));
    assert_eq!(status.members.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);

    for s in [s1, s2, s3] {
        s.shutdown().await.unwrap();
    }
}
