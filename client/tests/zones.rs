//! Zone-aware failover against an ensemble of three `zonekeeper-server`
//! processes, one per zone (`zone-a`, `zone-b`, `zone-c`): the client
//! prefers its own zone, moves to another zone when its member dies —
//! keeping the session, its ephemeral node and its watches — and moves back
//! once the member is healthy again. Also: the own zone is picked by
//! measurement when not configured.
//!
//! Listed in `.config/nextest.toml`'s `server-processes` group.

mod common;

use std::time::Duration;

use common::{wait_state, within, Ensemble};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zonekeeper_client::*;

async fn is_leader(e: &Ensemble, i: usize) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(e.addr(i)).await else {
        return false;
    };
    let _ = s.write_all(b"srvr").await;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.contains("Mode: leader")
}

fn zone_of(state: &SessionState) -> Option<String> {
    match state {
        SessionState::Connected { server } => server.zone.clone(),
        _ => None,
    }
}

async fn client(e: &Ensemble, zone: Option<&str>) -> Client {
    let mut cfg = ClientConfig::new(e.connect_string().parse().unwrap())
        .with_session_timeout(Duration::from_secs(10))
        .with_request_timeout(Duration::from_secs(20))
        .with_return_home_interval(Duration::from_millis(300));
    if let Some(z) = zone {
        cfg = cfg.with_zone(z);
    }
    within("connect", Client::connect(cfg))
        .await
        .expect("client connects")
}

/// Retries a call that may meet a connection loss while the ensemble
/// changes (the session lives on).
async fn retry<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    within("a retried call", async {
        loop {
            match f().await {
                Ok(v) => return v,
                Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("call failed: {e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_another_zone_and_back_home_keeps_the_session() {
    let mut e = Ensemble::start(3).await;
    // Home: a follower's zone, so killing it does not also force an
    // election (that is the ensemble tests' subject, not this one's).
    let mut home = None;
    for i in 0..3 {
        if !is_leader(&e, i).await {
            home = Some(i);
            break;
        }
    }
    let home = home.expect("a follower");
    let home_zone = e.zone(home).to_string();

    // Own-zone preference: every client lands on its zone's member.
    let c = client(&e, Some(&home_zone)).await;
    assert_eq!(c.own_zone().as_deref(), Some(home_zone.as_str()));
    assert_eq!(zone_of(&c.state()).as_deref(), Some(home_zone.as_str()));
    for _ in 0..3 {
        let extra = client(&e, Some(&home_zone)).await;
        assert_eq!(zone_of(&extra.state()).as_deref(), Some(home_zone.as_str()));
        extra.close().await.unwrap();
    }
    let other_zone = e.zone((home + 1) % 3).to_string();
    let other = client(&e, Some(&other_zone)).await;

    let sid = c.session_id();
    c.create("/eph", b"mine", &acl_open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    c.create("/watched", b"0", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, w1) = c.get_data_w("/watched").await.unwrap();
    let mut tree = c.watch("/watched", true).await.unwrap();

    // The own-zone member dies: the client moves to another zone.
    let killed = std::time::Instant::now();
    e.kill9(home);
    let s = wait_state(&c, "connected in another zone", |s| {
        zone_of(s).is_some_and(|z| z != home_zone)
    })
    .await;
    println!("failed over to {s:?} {:?} after the kill", killed.elapsed());
    assert_eq!(c.session_id(), sid, "same session after failover");
    let stat = retry(|| other.exists("/eph"))
        .await
        .expect("the ephemeral survives the failover");
    assert_eq!(stat.ephemeral_owner, sid);
    retry(|| other.set_data("/watched", b"1", None)).await;
    let ev = within("the one-time watch after failover", w1.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    let ev = within("the recursive watch after failover", tree.next())
        .await
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/watched")
    );
    // Writes keep working while away.
    retry(|| c.set_data("/eph", b"away", None)).await;

    // The member comes back: the client moves home, keeping everything.
    e.spawn(home);
    e.wait_serving(home).await;
    let serving = std::time::Instant::now();
    wait_state(&c, "back home", |s| {
        zone_of(s).as_deref() == Some(home_zone.as_str())
    })
    .await;
    assert_eq!(c.session_id(), sid, "same session after returning home");
    println!(
        "back home {:?} after the member served again (return_home_interval 300 ms); stats {:?}",
        serving.elapsed(),
        c.stats()
    );
    assert_eq!(retry(|| c.get_data("/eph")).await.0, b"away");
    let stat = retry(|| other.exists("/eph"))
        .await
        .expect("the ephemeral survives the return");
    assert_eq!(stat.ephemeral_owner, sid);
    let (_, w2) = retry(|| c.get_data_w("/watched")).await;
    retry(|| other.set_data("/watched", b"2", None)).await;
    let ev = within("the recursive watch after the return", tree.next())
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    within("a new one-time watch after the return", w2.changed())
        .await
        .unwrap();

    c.close().await.unwrap();
    // Read where the close was answered (the home member).
    let home_reader = client(&e, Some(&home_zone)).await;
    assert_eq!(zone_of(&home_reader.state()).as_deref(), Some(home_zone.as_str()));
    assert_eq!(
        retry(|| home_reader.exists("/eph")).await,
        None,
        "closing removes the ephemeral"
    );
    // Another member has it too once it has applied everything before a
    // sync (reads are served locally and may lag without one).
    retry(|| other.sync("/")).await;
    assert_eq!(retry(|| other.exists("/eph")).await, None);
}

/// Without a configured zone the client measures `srvr` round trips and
/// takes the zone of the fastest member. On loopback all are about equal,
/// so only the shape is checked: some zone of the ensemble is picked and
/// the client is connected there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_zone_is_measured_when_not_given() {
    let e = Ensemble::start(3).await;
    let c = client(&e, None).await;
    let zone = c.own_zone().expect("a zone was measured");
    assert!(
        (0..3).any(|i| e.zone(i) == zone),
        "{zone} is one of the ensemble's zones"
    );
    assert_eq!(zone_of(&c.state()), Some(zone));
}
