//! Runtime membership changes through the admin API, with real processes
//! (docs/ensemble.md, docs/server.md "Admin HTTP"): grow an ensemble of one
//! to three (observer, catch-up by snapshot, promote), refuse changes that
//! would lose quorum or that a follower receives, hand leadership over, and
//! shrink back, while a client keeps writing and sees every write it was
//! acknowledged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use zookeeper_client as zk;

const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper-server");
const DEADLINE: Duration = Duration::from_secs(30);

/// Ports below Linux's ephemeral range (32768+), so no outgoing connection
/// of another process can hold them; a random base keeps parallel test
/// processes apart, and every port is checked free.
fn ports(n: usize) -> Vec<u16> {
    loop {
        let base = 20000 + (rand::random::<u16>() % 10000);
        let ps: Vec<u16> = (0..n as u16).map(|i| base + i * 7).collect();
        if ps
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        {
            return ps;
        }
    }
}

struct Member {
    id: u64,
    client: SocketAddr,
    admin: SocketAddr,
    peer: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn new(id: u64, root: &Path, p: &[u16]) -> Member {
        Member {
            id,
            client: format!("127.0.0.1:{}", p[0]).parse().unwrap(),
            admin: format!("127.0.0.1:{}", p[1]).parse().unwrap(),
            peer: format!("127.0.0.1:{}", p[2]).parse().unwrap(),
            dir: root.join(format!("m{id}")),
            child: None,
        }
    }

    fn toml_entry(&self) -> String {
        format!(
            "[[members]]\nid = {}\nzone = \"zone-{}\"\nclient_addr = \"{}\"\npeer_addr = \"{}\"\n",
            self.id, self.id, self.client, self.peer
        )
    }

    /// Starts the process; `known` are the members listed in its config
    /// (the founding list, or whom a joiner can reach).
    fn start(&mut self, known: &[&Member], join: bool) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut toml = format!(
            "id = {}\ndata_dir = \"{}\"\nclient_addr = \"{}\"\nadmin_addr = \"{}\"\npeer_addr = \"{}\"\njoin = {join}\nmax_client_connections = 0\n",
            self.id,
            self.dir.join("data").display(),
            self.client,
            self.admin,
            self.peer
        );
        for m in known {
            toml.push_str(&m.toml_entry());
        }
        let config = self.dir.join("zonekeeper.toml");
        std::fs::write(&config, toml).unwrap();
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        self.child = Some(
            Command::new(BIN)
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .env_remove("RUST_LOG")
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// One HTTP/1.1 request; `(status, JSON body or Null)`.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        Some((status, json))
    };
    tokio::time::timeout(Duration::from_secs(15), attempt)
        .await
        .ok()
        .flatten()
}

async fn status(m: &Member) -> Option<Value> {
    http(m.admin, "GET", "/v1/status", "").await.map(|(_, v)| v)
}

/// Polls until `f` holds (or panics with `what` and the members' logs).
async fn until<F, Fut>(what: &str, members: &[&Member], mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> = members
        .iter()
        .map(|m| format!("--- member {} log (tail):\n{}", m.id, tail(&m.log())))
        .collect();
    panic!("timed out waiting for {what}\n{}", logs.join("\n"));
}

/// `zonekeeper_peer_connected{peer="N"}` from the member's metrics.
async fn peer_connected(admin: SocketAddr, peer: u64) -> Option<bool> {
    let mut s = tokio::net::TcpStream::connect(admin).await.ok()?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let key = format!("zonekeeper_peer_connected{{peer=\"{peer}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim() == "1")
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn member_json(m: &Member, role: &str) -> String {
    format!(
        r#"{{"id":{},"zone":"zone-{}","peer_addr":"{}","client_addr":"{}","role":"{role}"}}"#,
        m.id, m.id, m.peer, m.client
    )
}

async fn last_zxid(m: &Member) -> i64 {
    status(m)
        .await
        .and_then(|s| s["last_zxid"].as_i64())
        .unwrap_or(-1)
}

async fn leader_id(m: &Member) -> u64 {
    status(m).await.and_then(|s| s["leader_id"].as_u64()).unwrap_or(0)
}

/// POSTs a change to the leader, retrying while the newcomer catches up
/// (would_lose_quorum, not_caught_up) or an earlier change is still being applied.
async fn change(leader: &Member, method: &str, path: &str, body: &str, all: &[&Member]) -> Value {
    let mut last = None;
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        match http(leader.admin, method, path, body).await {
            Some((200, v)) => return v,
            Some((409, v))
                if matches!(
                    v["error"]["code"].as_str(),
                    Some("would_lose_quorum" | "change_in_progress" | "not_caught_up")
                ) =>
            {
                last = Some(v)
            }
            other => panic!("{method} {path}: unexpected answer {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs: Vec<String> = all
        .iter()
        .map(|m| format!("--- {}:\n{}", m.id, tail(&m.log())))
        .collect();
    panic!(
        "{method} {path} never succeeded; last answer {last:?}\n{}",
        logs.join("\n")
    );
}

fn ids(members: &Value) -> Vec<u64> {
    members
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_one_to_three_and_shrink_back_while_a_client_writes() {
    let root = tempfile::tempdir().unwrap();
    let p = ports(9);
    let mut m1 = Member::new(1, root.path(), &p[0..3]);
    let mut m2 = Member::new(2, root.path(), &p[3..6]);
    let mut m3 = Member::new(3, root.path(), &p[6..9]);

    // An ensemble of one (a members list with only itself).
    let founding = Member::new(1, root.path(), &p[0..3]);
    m1.start(&[&founding], false);
    until("member 1 leads", &[&m1], || async { leader_id(&m1).await == 1 }).await;
    let c = zk::Client::connect(&m1.client.to_string()).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..100 {
        let path = format!("/grow-{i}");
        c.create(
            &path,
            b"v",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        acked.push(path);
    }

    // Joiners know only whom to reach.
    m2.start(&[&founding, &Member::new(2, root.path(), &p[3..6])], true);
    m3.start(&[&founding, &Member::new(3, root.path(), &p[6..9])], true);

    // A voter that is not replicating yet would stall commits: refused.
    let (code, v) = http(m1.admin, "POST", "/v1/members", &member_json(&m2, "voter"))
        .await
        .unwrap();
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("would_lose_quorum")),
        "{v}"
    );

    // 1 -> 2: observer, catch up (by snapshot: it joined after the log
    // began), promote.

    let v = change(
        &m1,
        "POST",
        "/v1/members",
        &member_json(&m2, "observer"),
        &[&m1, &m2, &m3],
    )
    .await;
    assert_eq!(ids(&v), [1, 2]);
    until("member 2 catches up", &[&m1, &m2, &m3], || async {
        last_zxid(&m2).await == last_zxid(&m1).await
    })
    .await;
    change(&m1, "POST", "/v1/members/2/promote", "", &[&m1, &m2, &m3]).await;

    // 2 -> 3 while the client keeps writing.
    let v = change(
        &m1,
        "POST",
        "/v1/members",
        &member_json(&m3, "observer"),
        &[&m1, &m2, &m3],
    )
    .await;
    assert_eq!(ids(&v), [1, 2, 3]);
    for i in 100..150 {
        let path = format!("/grow-{i}");
        c.create(
            &path,
            b"v",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        acked.push(path);
    }
    change(&m1, "POST", "/v1/members/3/promote", "", &[&m1, &m2, &m3]).await;

    // Every member knows the three and has every acknowledged write.
    for m in [&m1, &m2, &m3] {
        until(
            "the member list to reach every member",
            &[&m1, &m2, &m3],
            || async { status(m).await.map(|s| ids(&s["members"])) == Some(vec![1, 2, 3]) },
        )
        .await;
        let mc = zk::Client::connect(&m.client.to_string()).await.unwrap();
        mc.sync("/").await.unwrap();
        let children = mc.list_children("/").await.unwrap();
        for a in &acked {
            assert!(
                children.contains(&a[1..].to_string()),
                "member {}: {a} missing",
                m.id
            );
        }
    }

    // Refusals: a follower does not take changes; unknown ids are 404.
    let (code, v) = http(m2.admin, "DELETE", "/v1/members/1", "").await.unwrap();
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("not_leader")),
        "{v}"
    );
    let (code, v) = http(m1.admin, "DELETE", "/v1/members/9", "").await.unwrap();
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("unknown_member")),
        "{v}"
    );

    // With member 3 down, removing 2 would leave {1, 3} with one live
    // voter: refused.
    m3.stop().await;
    until(
        "the leader to see member 3 disconnected",
        &[&m1, &m2, &m3],
        || async { peer_connected(m1.admin, 3).await == Some(false) },
    )
    .await;
    let (code, v) = http(m1.admin, "DELETE", "/v1/members/2", "").await.unwrap();
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("would_lose_quorum")),
        "{v}"
    );
    assert_eq!(
        ids(&status(&m1).await.unwrap()["members"]),
        [1, 2, 3],
        "a refused change changes nothing"
    );
    let known: Vec<Member> = (1..=3)
        .map(|i| Member::new(i, root.path(), &p[(i as usize - 1) * 3..i as usize * 3]))
        .collect();
    m3.start(&known.iter().collect::<Vec<_>>(), true);
    until("member 3 to catch up again", &[&m1, &m2, &m3], || async {
        last_zxid(&m3).await == last_zxid(&m1).await
    })
    .await;

    // Shrink: hand leadership to 2, then remove 1 through the new leader.
    let (code, _) = http(m1.admin, "POST", "/v1/leader", r#"{"id":2}"#).await.unwrap();
    assert_eq!(code, 202);
    until("member 2 to lead", &[&m1, &m2, &m3], || async {
        leader_id(&m2).await == 2
    })
    .await;
    let v = change(&m2, "DELETE", "/v1/members/1", "", &[&m1, &m2, &m3]).await;
    assert_eq!(ids(&v), [2, 3]);
    m1.stop().await;

    let c2 = zk::Client::connect(&format!("{},{}", m2.client, m3.client))
        .await
        .unwrap();
    c2.create(
        "/after-shrink",
        b"v",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let children = c2.list_children("/").await.unwrap();
    for a in acked.iter().chain(std::iter::once(&"/after-shrink".to_string())) {
        assert!(
            children.contains(&a[1..].to_string()),
            "{a} missing after the shrink"
        );
    }
    println!(
        "grew 1 -> 3 and shrank to 2 members with {} acknowledged writes intact",
        acked.len() + 1
    );
    m2.stop().await;
    m3.stop().await;
}

/// A member being added is not ready, and refuses client sessions, until it
/// has applied a state at least as new as the one it was added at; it
/// cannot be promoted before the leader sees it caught up
/// (docs/admin-api.md). Three founding voters (so a fourth voter that is
/// not replicating would not cost quorum, and only the catch-up check can
/// refuse it), a tree of ~2 MB so the joiner's snapshot takes a while, then
/// a joiner added as an observer: right after the add, promoting it is
/// refused with 409 `not_caught_up`; every `/v1/status` it answers while
/// catching up that says `ready: true` shows a `last_zxid` past the add;
/// once caught up it is ready, takes a session that sees the tree, and can
/// be promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_is_not_ready_or_promotable_before_it_has_caught_up() {
    let root = tempfile::tempdir().unwrap();
    let p = ports(12);
    let mut ms: Vec<Member> = (0..3)
        .map(|i| Member::new(i as u64 + 1, root.path(), &p[i * 3..i * 3 + 3]))
        .collect();
    let founding: Vec<Member> = (0..3)
        .map(|i| Member::new(i as u64 + 1, root.path(), &p[i * 3..i * 3 + 3]))
        .collect();
    let known: Vec<&Member> = founding.iter().collect();
    for m in &mut ms {
        m.start(&known, false);
    }
    let all: Vec<&Member> = ms.iter().collect();
    until("a leader", &all, || async { leader_id(&ms[0]).await != 0 }).await;
    let leader = &ms[leader_id(&ms[0]).await as usize - 1];
    let c = zk::Client::connect(&leader.client.to_string()).await.unwrap();
    let acl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let blob = vec![7u8; 8 * 1024];
    for i in 0..250 {
        c.create(&format!("/big-{i}"), &blob, &acl).await.unwrap();
    }

    let joiner_known = [
        &founding[0],
        &founding[1],
        &founding[2],
        &Member::new(4, root.path(), &p[9..12]),
    ];
    let mut joiner = Member::new(4, root.path(), &p[9..12]);
    joiner.start(&joiner_known, true);
    until("the joiner's admin API", &all, || async {
        status(&joiner).await.is_some()
    })
    .await;
    let (code, _) = http(joiner.admin, "GET", "/readyz", "").await.unwrap();
    assert_eq!(code, 503, "a joiner nobody added is not ready");

    let before_add = last_zxid(leader).await;
    let v = change(
        leader,
        "POST",
        "/v1/members",
        &member_json(&joiner, "observer"),
        &all,
    )
    .await;
    assert_eq!(ids(&v), [1, 2, 3, 4]);
    // The raft index of the add (the change is answered once applied; no
    // other client writes meanwhile).
    let add_index = status(leader).await.unwrap()["raft_applied_index"]
        .as_u64()
        .unwrap();
    let (code, v) = http(leader.admin, "POST", "/v1/members/4/promote", "")
        .await
        .unwrap();
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("not_caught_up")),
        "promoting a member that has not caught up: {v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("wait"), "the error says what to do: {message}");

    // Watch the joiner catch up: whenever it says it is ready, its state
    // must be at least the one it was added at.
    let target = last_zxid(leader).await;
    let mut polls = 0;
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < DEADLINE,
            "the joiner never caught up\n{}",
            tail(&joiner.log())
        );
        if let Some(s) = status(&joiner).await {
            polls += 1;
            let (ready, zxid) = (s["ready"].as_bool(), s["last_zxid"].as_i64().unwrap_or(-1));
            let applied = s["raft_applied_index"].as_u64().unwrap_or(0);
            if ready == Some(true) {
                assert!(
                    zxid >= before_add && applied >= add_index,
                    "the joiner reported ready at last_zxid {zxid:#x} / raft index {applied}, \
                     older than the state it was added at ({before_add:#x} / {add_index}): {s}"
                );
            }
            if ready == Some(true) && zxid >= target {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("[joiner] {polls} status polls while catching up");
    let (code, _) = http(joiner.admin, "GET", "/readyz", "").await.unwrap();
    assert_eq!(code, 200);
    let jc = zk::Client::connect(&joiner.client.to_string()).await.unwrap();
    assert_eq!(jc.get_data("/big-249").await.unwrap().0, blob);
    change(leader, "POST", "/v1/members/4/promote", "", &all).await;
    drop(jc);
    drop(c);
    joiner.stop().await;
    for m in &mut ms {
        m.stop().await;
    }
}
