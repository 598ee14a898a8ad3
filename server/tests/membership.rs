//! Runtime membership changes through the admin API, with real processes
//! (docs/ensemble.md, docs/server.md "Admin HTTP"): grow an ensemble of one
//! to three (observer, catch-up by snapshot, promote), refuse changes that
//! would lose quorum or that a follower receives, hand leadership over, and
//! shrink back, while a client keeps writing and sees every write it was
//! acknowledged; and grow 1 -> 3 -> 5 then shrink 5 -> 3 -> 1 (the founder
//! removed too) under a client that may see nothing but retriable
//! connection loss.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use serde_json::Value;
use support::ensemble::is_connection_loss;
use support::process::{free_ports, http_get, BIN};
use tokio::process::{Child, Command};
use zookeeper_client as zk;

const DEADLINE: Duration = Duration::from_secs(30);

struct Member {
    id: u64,
    client: SocketAddr,
    admin: SocketAddr,
    peer: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    /// More TOML settings for its config.
    extra: String,
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
            extra: String::new(),
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
        toml.push_str(&self.extra);
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

/// One request to an admin port; `(status, JSON body or Null)`.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let (code, body) = support::process::http(addr, method, path, body).await?;
    Some((code, serde_json::from_str(&body).unwrap_or(Value::Null)))
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
    let (_, metrics) = http_get(admin, "/metrics").await?;
    let key = format!("zonekeeper_peer_connected{{peer=\"{peer}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim() == "1")
}

fn tail(s: &str) -> String {
    support::process::tail(s, 25)
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
/// (would_lose_quorum) or an earlier change is still being applied.
async fn change(leader: &Member, method: &str, path: &str, body: &str, all: &[&Member]) -> Value {
    let mut last = None;
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        match http(leader.admin, method, path, body).await {
            Some((200, v)) => return v,
            Some((409, v))
                if matches!(
                    v["error"]["code"].as_str(),
                    Some("would_lose_quorum" | "change_in_progress")
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
    let p = free_ports(9);
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

/// A client writing creates one at a time on a connect string that names
/// every member (present and future), retrying a create whose outcome a
/// connection loss left unknown; anything else is an error the client
/// should not see.
struct Writer {
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    losses: std::sync::Arc<std::sync::atomic::AtomicU64>,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Writer {
    async fn start(connect_string: String) -> Writer {
        use std::sync::atomic::Ordering;
        let c = zk::Client::connector()
            .session_timeout(Duration::from_secs(20))
            .connect(&connect_string)
            .await
            .unwrap();
        c.create(
            "/w",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        let acked: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let losses: std::sync::Arc<std::sync::atomic::AtomicU64> = Default::default();
        let errors: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let stop: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let handle = {
            let (acked, losses, errors, stop) = (acked.clone(), losses.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                let mut k = 0u64;
                'writes: while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    let path = format!("/w/n{k}");
                    let mut retried = false;
                    loop {
                        let create = c.create(
                            &path,
                            b"v",
                            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
                        );
                        match tokio::time::timeout(DEADLINE, create).await {
                            Ok(Ok(_)) => break,
                            // An earlier attempt whose answer was lost committed.
                            Ok(Err(zk::Error::NodeExists)) if retried => break,
                            Ok(Err(e)) if is_connection_loss(&e) => {}
                            Err(_) => {}
                            Ok(Err(e)) => {
                                errors.lock().unwrap().push(format!("create {path}: {e}"));
                                break 'writes;
                            }
                        }
                        losses.fetch_add(1, Ordering::SeqCst);
                        retried = true;
                        if stop.load(Ordering::SeqCst) {
                            break 'writes;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    acked.lock().unwrap().push(path);
                }
            })
        };
        Writer {
            acked,
            losses,
            errors,
            stop,
            handle,
        }
    }

    fn acks(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Polls until `more` further creates are acknowledged.
    async fn progress(&self, more: usize, all: &[&Member]) {
        let target = self.acks() + more;
        until(&format!("{more} more acknowledged writes"), all, || async {
            assert!(
                self.errors.lock().unwrap().is_empty(),
                "the client saw errors: {:?}",
                self.errors.lock().unwrap()
            );
            self.acks() >= target
        })
        .await;
    }

    async fn stop(self) -> (Vec<String>, u64) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap();
        let errors = self.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "the client saw errors beyond connection loss: {errors:?}"
        );
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.losses.load(Ordering::SeqCst))
    }
}

/// The member that leads, as the live members in `live` agree.
async fn leader_among<'a>(live: &[&'a Member]) -> &'a Member {
    let t = Instant::now();
    loop {
        let mut ids = Vec::new();
        for m in live {
            ids.push(leader_id(m).await);
        }
        if let Some(m) = live.iter().find(|m| ids.iter().all(|&i| i == m.id)) {
            return m;
        }
        if t.elapsed() > DEADLINE {
            let logs: Vec<String> = live
                .iter()
                .map(|m| format!("--- member {} log (tail):\n{}", m.id, tail(&m.log())))
                .collect();
            panic!(
                "no agreed leader among the live members: {ids:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_one_to_three_to_five_and_shrink_back_to_one_while_a_client_writes() {
    let root = tempfile::tempdir().unwrap();
    let p = free_ports(15);
    let mut ms: Vec<Member> = (0..5)
        .map(|i| Member::new(i as u64 + 1, root.path(), &p[i * 3..i * 3 + 3]))
        .collect();
    let blueprint: Vec<Member> = (0..5)
        .map(|i| Member::new(i as u64 + 1, root.path(), &p[i * 3..i * 3 + 3]))
        .collect();
    let everyone: String = ms
        .iter()
        .map(|m| m.client.to_string())
        .collect::<Vec<_>>()
        .join(",");

    ms[0].start(&[&blueprint[0]], false);
    until("member 1 leads", &[&ms[0]], || async {
        leader_id(&ms[0]).await == 1
    })
    .await;
    let writer = Writer::start(everyone).await;
    writer.progress(50, &[&ms[0]]).await;

    // Grow: each newcomer joins as an observer, catches up, is promoted,
    // while the client keeps writing.
    for (n, new) in [(1usize, 2usize), (2, 3), (3, 4), (4, 5)]
        .iter()
        .map(|&(have, new_id)| (have, new_id - 1))
    {
        let known: Vec<&Member> = blueprint[..=new].iter().collect();
        ms[new].start(&known, true);
        let live: Vec<&Member> = ms[..n].iter().collect();
        let all: Vec<&Member> = ms[..=new].iter().collect();
        let leader = leader_among(&live).await;
        let v = change(
            leader,
            "POST",
            "/v1/members",
            &member_json(&ms[new], "observer"),
            &all,
        )
        .await;
        assert_eq!(ids(&v), (1..=new as u64 + 1).collect::<Vec<_>>());
        until("the newcomer to catch up", &all, || async {
            last_zxid(&ms[new]).await >= last_zxid(leader).await - 5
        })
        .await;
        let path = format!("/v1/members/{}/promote", new + 1);
        change(leader, "POST", &path, "", &all).await;
        writer.progress(50, &all).await;
        println!(
            "grew to {} voters; {} writes acknowledged, {} connection losses so far",
            new + 1,
            writer.acks(),
            writer.losses.load(std::sync::atomic::Ordering::SeqCst)
        );
    }
    for m in &ms {
        until(
            "every member to know the five",
            &ms.iter().collect::<Vec<_>>(),
            || async { status(m).await.map(|s| ids(&s["members"])) == Some(vec![1, 2, 3, 4, 5]) },
        )
        .await;
    }

    // Shrink 5 -> 3 -> 1, ending with member 3 alone: remove 5, 4, 1, 2 in
    // that order (member 1, the founder, goes too). A leader that is to be
    // removed first hands leadership to member 3.
    let mut remaining: Vec<usize> = vec![0, 1, 2, 3, 4];
    for gone in [4usize, 3, 0, 1] {
        let live: Vec<&Member> = remaining.iter().map(|&i| &ms[i]).collect();
        let mut leader = leader_among(&live).await;
        if leader.id == ms[gone].id {
            let (code, v) = http(leader.admin, "POST", "/v1/leader", r#"{"id":3}"#)
                .await
                .unwrap();
            assert_eq!(code, 202, "{v}");
            until("member 3 to lead", &live, || async {
                leader_id(&ms[2]).await == 3
            })
            .await;
            leader = &ms[2];
        }
        let path = format!("/v1/members/{}", gone + 1);
        let v = change(leader, "DELETE", &path, "", &live).await;
        remaining.retain(|&i| i != gone);
        let want: Vec<u64> = remaining.iter().map(|&i| i as u64 + 1).collect();
        assert_eq!(ids(&v), want);
        ms[gone].stop().await;
        let live: Vec<&Member> = remaining.iter().map(|&i| &ms[i]).collect();
        writer.progress(50, &live).await;
        println!(
            "shrank to {:?}; {} writes acknowledged, {} connection losses so far",
            want,
            writer.acks(),
            writer.losses.load(std::sync::atomic::Ordering::SeqCst)
        );
    }

    let (acked, losses) = writer.stop().await;
    // Every acknowledged write is on the last member.
    let c = zk::Client::connect(&ms[2].client.to_string()).await.unwrap();
    c.sync("/").await.unwrap();
    let children: std::collections::HashSet<String> =
        c.list_children("/w").await.unwrap().into_iter().collect();
    for a in &acked {
        assert!(
            children.contains(&a["/w/".len()..]),
            "{a} was acknowledged and is lost"
        );
    }
    assert_eq!(leader_id(&ms[2]).await, 3);
    assert_eq!(ids(&status(&ms[2]).await.unwrap()["members"]), [3]);
    println!(
        "grew 1 -> 3 -> 5 and shrank 5 -> 3 -> 1: {} writes acknowledged and all present, {losses} retried after connection loss",
        acked.len()
    );
    ms[2].stop().await;
}

/// The super user of ZooKeeper's documentation ("super:test").
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

fn joining(spec: &str) -> zk::EnsembleUpdate<'_, std::vec::IntoIter<&str>> {
    zk::EnsembleUpdate::Incremental {
        joinings: vec![spec].into_iter(),
        leavings: vec![].into_iter(),
    }
}

fn leaving(id: &str) -> zk::EnsembleUpdate<'_, std::vec::IntoIter<&str>> {
    zk::EnsembleUpdate::Incremental {
        joinings: vec![].into_iter(),
        leavings: vec![id].into_iter(),
    }
}

/// `server.ID=…` as ZooKeeper writes it for `m` in `role`.
fn zk_spec(m: &Member, role: &str) -> String {
    format!("server.{}={}:{}:{role};{}", m.id, m.peer, m.peer.port(), m.client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_through_the_zookeeper_protocol() {
    let root = tempfile::tempdir().unwrap();
    let p = free_ports(9);
    let mut m1 = Member::new(1, root.path(), &p[0..3]);
    let mut m2 = Member::new(2, root.path(), &p[3..6]);
    let mut m3 = Member::new(3, root.path(), &p[6..9]);
    let settings = format!("reconfig_enabled = true\nsuper_digest = \"{SUPER_DIGEST}\"\n");
    m1.extra = settings.clone();
    m2.extra = settings.clone();

    // Off by default: RECONFIGDISABLED, as ZooKeeper answers.
    m3.start(&[&Member::new(3, root.path(), &p[6..9])], false);
    until("member 3 leads", &[&m3], || async { leader_id(&m3).await == 3 }).await;
    let c3 = zk::Client::connect(&m3.client.to_string()).await.unwrap();
    assert!(
        matches!(
            c3.update_ensemble(leaving("3"), None).await,
            Err(zk::Error::ReconfigDisabled)
        ),
        "reconfig must be disabled by default"
    );
    m3.stop().await;

    let founding = Member::new(1, root.path(), &p[0..3]);
    m1.start(&[&founding], false);
    until("member 1 leads", &[&m1], || async { leader_id(&m1).await == 1 }).await;

    // /zookeeper/config holds the membership in ZooKeeper's format.
    let anyone = zk::Client::connect(&m1.client.to_string()).await.unwrap();
    let (data, _) = anyone.get_config().await.unwrap();
    let text = String::from_utf8(data).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        zk_spec(&m1, "participant"),
        "config: {text}"
    );
    assert!(text.lines().last().unwrap().starts_with("version="), "{text}");

    // Only the super user (or WRITE on /zookeeper/config) may reconfig.
    assert!(matches!(
        anyone
            .update_ensemble(joining(&zk_spec(&m2, "observer")), None)
            .await,
        Err(zk::Error::NoAuth)
    ));
    let admin = zk::Client::connect(&m1.client.to_string()).await.unwrap();
    admin.auth("digest".into(), b"super:test".to_vec()).await.unwrap();

    // A voter that is not running yet would lose quorum: NEWCONFIGNOQUORUM.
    assert!(matches!(
        admin
            .update_ensemble(joining(&zk_spec(&m2, "participant")), None)
            .await,
        Err(zk::Error::UnexpectedErrorCode(-13))
    ));
    // Malformed or several changes at once: BADARGUMENTS; a stale config
    // version: BADVERSION.
    let two = zk::EnsembleUpdate::Incremental {
        joinings: vec!["server.5=127.0.0.1:1:1;2", "server.6=127.0.0.1:3:3;4"].into_iter(),
        leavings: vec![].into_iter(),
    };
    assert!(matches!(
        admin.update_ensemble(two, None).await,
        Err(zk::Error::BadArguments(_))
    ));
    assert!(matches!(
        admin.update_ensemble(joining("server.5=nonsense"), None).await,
        Err(zk::Error::BadArguments(_))
    ));
    assert!(matches!(
        admin
            .update_ensemble(joining(&zk_spec(&m2, "observer")), Some(12345))
            .await,
        Err(zk::Error::BadVersion)
    ));

    // Join 2 as an observer, then as participant (a promotion), while a
    // watcher of /zookeeper/config hears of each change.
    m2.start(&[&founding, &Member::new(2, root.path(), &p[3..6])], true);
    let (_, stat, watcher) = anyone.get_and_watch_config().await.unwrap();
    let mut tries = 0;
    let (data, _) = loop {
        // Until member 2 answers its peer connection, the leader may still
        // count it as not live: retry on NEWCONFIGNOQUORUM.
        match admin
            .update_ensemble(joining(&zk_spec(&m2, "observer")), Some(version_of(&stat)))
            .await
        {
            Err(zk::Error::UnexpectedErrorCode(-13)) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other.unwrap(),
        }
    };
    let text = String::from_utf8(data).unwrap();
    assert!(text.contains(&zk_spec(&m2, "observer")), "{text}");
    let event = tokio::time::timeout(DEADLINE, watcher.changed()).await.unwrap();
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    until("member 2 catches up", &[&m1, &m2], || async {
        last_zxid(&m2).await >= last_zxid(&m1).await
    })
    .await;
    let mut tries = 0;
    let (data, _) = loop {
        match admin
            .update_ensemble(joining(&zk_spec(&m2, "participant")), None)
            .await
        {
            Err(zk::Error::UnexpectedErrorCode(-13)) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other.unwrap(),
        }
    };
    let text = String::from_utf8(data).unwrap();
    assert!(text.contains(&zk_spec(&m2, "participant")), "{text}");
    println!("/zookeeper/config after the promotion:\n{text}");
    assert_eq!(ids(&status(&m1).await.unwrap()["members"]), [1, 2]);

    // Every member holds the same config; a follower does not take
    // reconfig (no forwarding yet): UNIMPLEMENTED.
    let on2 = zk::Client::connect(&m2.client.to_string()).await.unwrap();
    on2.auth("digest".into(), b"super:test".to_vec()).await.unwrap();
    on2.sync("/zookeeper/config").await.unwrap();
    assert_eq!(on2.get_config().await.unwrap().0, text.as_bytes());
    assert!(matches!(
        on2.update_ensemble(leaving("1"), None).await,
        Err(zk::Error::Unimplemented)
    ));

    // Leave: 2 goes, the config shrinks back to member 1.
    let (data, _) = admin.update_ensemble(leaving("2"), None).await.unwrap();
    let text = String::from_utf8(data).unwrap();
    assert!(!text.contains("server.2="), "{text}");
    assert_eq!(ids(&status(&m1).await.unwrap()["members"]), [1]);
    admin
        .create(
            "/after-reconfig",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
    m2.stop().await;
    m1.stop().await;
}

fn version_of(stat: &zk::Stat) -> i64 {
    stat.mzxid
}
