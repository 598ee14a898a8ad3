//! Transport tests over real sockets on 127.0.0.1, port 0. No fixed
//! sleeps: every wait polls a condition against a deadline.

use std::collections::HashMap;
use std::time::Instant;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::handshake::{Ack, Hello, Status};
use super::message::tests::raft_append;
use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

/// Quick retries so that reconnection tests take milliseconds, and a
/// handshake timeout a test can wait out.
fn fast() -> TransportOptions {
    TransportOptions {
        reconnect_min: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(100),
        handshake_timeout: Duration::from_secs(1),
        ..TransportOptions::default()
    }
}

/// One member's transport, as a test drives it.
struct Node {
    id: u64,
    addr: String,
    handle: TransportHandle,
    rx: mpsc::Receiver<(u64, PeerMessage)>,
    registry: Registry,
    metrics: Arc<TransportMetrics>,
    shutdown: watch::Sender<bool>,
}

impl Node {
    fn start(
        id: u64,
        zone: &str,
        listener: TcpListener,
        peers: Vec<PeerInfo>,
        options: TransportOptions,
    ) -> Node {
        let registry = Registry::new();
        let metrics = Arc::new(TransportMetrics::new(&registry).unwrap());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let addr = listener.local_addr().unwrap().to_string();
        let (handle, rx) = Transport::start_with(
            options,
            id,
            zone.to_string(),
            listener,
            peers,
            metrics.clone(),
            shutdown_rx,
        );
        Node {
            id,
            addr,
            handle,
            rx,
            registry,
            metrics,
            shutdown,
        }
    }

    async fn recv(&mut self) -> (u64, PeerMessage) {
        timeout(DEADLINE, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("member {} received nothing in time", self.id))
            .expect("transport channel open")
    }

    fn peer(&self, id: u64) -> PeerStats {
        self.handle
            .stats()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("member {} has no peer {id}", self.id))
    }

    fn prometheus_text(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// An address nothing listens on (bound, then released).
async fn free_addr() -> String {
    listener().await.local_addr().unwrap().to_string()
}

/// Binds `addr` again, retrying while a stopped transport still holds it.
async fn rebind(addr: &str) -> TcpListener {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => panic!("cannot rebind {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Polls `cond` until it holds, failing the test after [`DEADLINE`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Members 1..=n, member i in `zones[i-1]`, every one knowing all.
async fn ensemble(zones: &[&str]) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in zones {
        listeners.push(listener().await);
    }
    let peers: Vec<PeerInfo> = listeners
        .iter()
        .zip(zones)
        .enumerate()
        .map(|(i, (l, z))| PeerInfo {
            id: i as u64 + 1,
            zone: z.to_string(),
            addr: l.local_addr().unwrap().to_string(),
        })
        .collect();
    listeners
        .into_iter()
        .zip(zones)
        .enumerate()
        .map(|(i, (l, z))| Node::start(i as u64 + 1, z, l, peers.clone(), fast()))
        .collect()
}

fn append(from: u64, to: u64, index: u64) -> PeerMessage {
    PeerMessage::Raft(raft_append(from, to, index, b"entry"))
}

fn index_of(msg: &PeerMessage) -> u64 {
    match msg {
        PeerMessage::Raft(m) => m.index,
        other => panic!("expected a raft message, got {other:?}"),
    }
}

fn frame_len(msg: &PeerMessage) -> u64 {
    msg.encode_frame(DEFAULT_MAX_FRAME_BYTES).unwrap().len() as u64
}

#[tokio::test]
async fn three_members_exchange_raft_messages_both_ways() {
    let mut nodes = ensemble(&["a", "b", "c"]).await;
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    for index in 0..5 {
        for n in &nodes {
            for &to in ids.iter().filter(|&&to| to != n.id) {
                n.handle.send(to, append(n.id, to, index)).unwrap();
            }
        }
    }
    for n in &mut nodes {
        let mut got: HashMap<u64, Vec<u64>> = HashMap::new();
        for _ in 0..10 {
            let (from, msg) = n.recv().await;
            let PeerMessage::Raft(m) = &msg else {
                panic!("unexpected {msg:?}")
            };
            assert_eq!((m.from, m.to), (from, n.id), "the sender is the handshake's id");
            assert_eq!(m.entries[0].data.as_ref(), b"entry");
            got.entry(from).or_default().push(m.index);
        }
        for &from in ids.iter().filter(|&&id| id != n.id) {
            assert_eq!(
                got[&from],
                vec![0, 1, 2, 3, 4],
                "per-peer FIFO at member {}",
                n.id
            );
        }
    }
    for n in &nodes {
        eventually("all links up", || n.handle.stats().iter().all(|p| p.connected)).await;
        assert!(n.handle.stats().iter().all(|p| p.messages_dropped == 0));
    }
}

#[tokio::test]
async fn a_peer_that_starts_late_is_connected_once_it_comes_up() {
    let la = listener().await;
    let addr_b = free_addr().await;
    let peers = vec![
        PeerInfo {
            id: 1,
            zone: "a".into(),
            addr: la.local_addr().unwrap().to_string(),
        },
        PeerInfo {
            id: 2,
            zone: "b".into(),
            addr: addr_b.clone(),
        },
    ];
    let mut a = Node::start(1, "a", la, peers.clone(), fast());
    a.handle.send(2, append(1, 2, 7)).unwrap();
    eventually("member 1 to retry member 2", || a.peer(2).connect_failures >= 2).await;
    assert!(!a.peer(2).connected);
    assert_eq!(a.peer(2).queued_messages, 1, "held while the peer is down");

    let mut b = Node::start(2, "b", rebind(&addr_b).await, peers, fast());
    let (from, msg) = b.recv().await;
    assert_eq!(
        (from, index_of(&msg)),
        (1, 7),
        "the queued message goes out on connect"
    );
    eventually("member 1 connected to 2", || a.peer(2).connected).await;
    b.handle.send(1, append(2, 1, 8)).unwrap();
    let (from, msg) = a.recv().await;
    assert_eq!((from, index_of(&msg)), (2, 8));
    assert_eq!(a.peer(2).messages_dropped, 0);
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected() {
    let mut nodes = ensemble(&["a", "b"]).await;
    let b = nodes.pop().unwrap();
    let mut a = nodes.pop().unwrap();
    a.handle.send(2, append(1, 2, 1)).unwrap();
    b.handle.send(1, append(2, 1, 1)).unwrap();
    assert_eq!(a.recv().await.0, 2);
    eventually("both links up", || a.peer(2).connected && b.peer(1).connected).await;

    let peers = vec![
        PeerInfo {
            id: 1,
            zone: "a".into(),
            addr: a.addr.clone(),
        },
        PeerInfo {
            id: 2,
            zone: "b".into(),
            addr: b.addr.clone(),
        },
    ];
    b.shutdown.send(true).unwrap();
    let addr_b = b.addr.clone();
    drop(b);
    eventually("member 1 to notice member 2 is gone", || !a.peer(2).connected).await;

    let mut b2 = Node::start(2, "b", rebind(&addr_b).await, peers, fast());
    a.handle.send(2, append(1, 2, 2)).unwrap();
    let (from, msg) = b2.recv().await;
    assert_eq!((from, index_of(&msg)), (1, 2));
    b2.handle.send(1, append(2, 1, 2)).unwrap();
    let (from, msg) = a.recv().await;
    assert_eq!((from, index_of(&msg)), (2, 2));
    eventually("member 1 reconnected to 2", || a.peer(2).connected).await;
    assert_eq!(a.peer(2).messages_dropped, 0);
}

/// The counters are exact: frame bytes (prefix, kind, payload) of what
/// was sent, per peer on both sides and per zone pair on the sender.
#[tokio::test]
async fn byte_counters_add_up_per_peer_and_per_zone_pair() {
    let mut nodes = ensemble(&["east", "west", "east"]).await;
    let mut c = nodes.pop().unwrap();
    let mut b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let batch = |to: u64| {
        vec![
            PeerMessage::Raft(raft_append(1, to, 1, &[7; 1000])),
            PeerMessage::Raft(raft_append(1, to, 2, b"")),
            PeerMessage::Forward {
                origin: 1,
                payload: vec![1; 300],
            },
            PeerMessage::Touch {
                sessions: vec![1, 2, 3],
            },
            PeerMessage::Relay {
                targets: vec![to, 9],
                inner: Box::new(PeerMessage::Touch { sessions: vec![4] }),
            },
        ]
    };
    let mut want = HashMap::new();
    for to in [2u64, 3] {
        let msgs = batch(to);
        want.insert(to, msgs.iter().map(frame_len).sum::<u64>());
        for m in msgs {
            a.handle.send(to, m).unwrap();
        }
    }
    for (n, to) in [(&mut b, 2u64), (&mut c, 3)] {
        let mut got = Vec::new();
        for _ in 0..5 {
            let (from, msg) = n.recv().await;
            assert_eq!(from, 1);
            got.push(msg);
        }
        assert_eq!(got, batch(to));
    }
    eventually("member 1's counters to catch up", || {
        a.peer(2).bytes_sent == want[&2] && a.peer(3).bytes_sent == want[&3]
    })
    .await;

    let (to_b, to_c) = (a.peer(2), a.peer(3));
    assert_eq!((to_b.messages_sent, to_c.messages_sent), (5, 5));
    assert_eq!(
        (to_b.bytes_received, to_c.bytes_received),
        (0, 0),
        "handshakes are not counted"
    );
    assert_eq!(b.peer(1).bytes_received, want[&2]);
    assert_eq!(c.peer(1).bytes_received, want[&3]);
    assert_eq!(b.peer(1).messages_received, 5);
    assert_eq!(
        a.handle.zone_stats(),
        vec![
            ZoneStats {
                from_zone: "east".into(),
                to_zone: "east".into(),
                bytes_sent: want[&3],
            },
            ZoneStats {
                from_zone: "east".into(),
                to_zone: "west".into(),
                bytes_sent: want[&2],
            },
        ]
    );

    let text = a.prometheus_text();
    for line in [
        format!(
            r#"zonekeeper_zone_bytes_total{{from_zone="east",to_zone="west"}} {}"#,
            want[&2]
        ),
        format!(
            r#"zonekeeper_zone_bytes_total{{from_zone="east",to_zone="east"}} {}"#,
            want[&3]
        ),
        format!(r#"zonekeeper_peer_bytes_sent_total{{peer="2"}} {}"#, want[&2]),
        r#"zonekeeper_peer_messages_sent_total{peer="3"} 5"#.to_string(),
        r#"zonekeeper_peer_messages_dropped_total{peer="2"} 0"#.to_string(),
        r#"zonekeeper_peer_connected{peer="2"} 1"#.to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let text = b.prometheus_text();
    let line = format!(r#"zonekeeper_peer_bytes_received_total{{peer="1"}} {}"#, want[&2]);
    assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
}

/// Opens a raw connection to `addr`, writes `bytes` (then closes its
/// sending side if `close`), and reads until the server closes the
/// connection: the ack it sent, if any.
async fn raw_exchange(addr: &str, bytes: &[u8], close: bool) -> Option<Ack> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    let mut got = Vec::new();
    let read = timeout(DEADLINE, s.read_to_end(&mut got))
        .await
        .expect("the server closes a refused connection");
    // A reset is a close too (the server may not read all of the garbage).
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    (!got.is_empty()).then(|| {
        assert_eq!(proto::frame::check(&got, 64), Ok(Some(got.len() - 4)));
        Ack::decode(&got[4..]).unwrap()
    })
}

fn hello_frame(from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    proto::frame::write_frame(
        &mut out,
        &Hello {
            from,
            to,
            zone: "a".into(),
        }
        .encode(),
    );
    out
}

#[tokio::test]
async fn bad_handshakes_are_refused_without_disturbing_other_peers() {
    let mut nodes = ensemble(&["a", "b"]).await;
    let mut b = nodes.pop().unwrap();
    let mut a = nodes.pop().unwrap();
    a.handle.send(2, append(1, 2, 1)).unwrap();
    b.handle.send(1, append(2, 1, 1)).unwrap();
    a.recv().await;
    b.recv().await;
    eventually("both links up", || a.peer(2).connected && b.peer(1).connected).await;

    // Not our protocol: the first four bytes read as a huge length.
    assert_eq!(raw_exchange(&a.addr, b"GET / HTTP/1.1\r\n\r\n", true).await, None);
    // Right length, wrong magic.
    let mut not_magic = hello_frame(2, 1);
    not_magic[4..8].copy_from_slice(b"HTTP");
    assert_eq!(raw_exchange(&a.addr, &not_magic, true).await, None);
    let refused = |status| Some(Ack { status, id: 1 });
    assert_eq!(
        raw_exchange(&a.addr, &hello_frame(99, 1), true).await,
        refused(Status::UnknownPeer)
    );
    // Member 2's id but meant for member 5: must not replace 2's link.
    assert_eq!(
        raw_exchange(&a.addr, &hello_frame(2, 5), true).await,
        refused(Status::WrongTarget)
    );
    assert_eq!(
        raw_exchange(&a.addr, &hello_frame(1, 1), true).await,
        refused(Status::SameId)
    );
    let mut v9 = hello_frame(2, 1);
    v9[9] = 9;
    assert_eq!(
        raw_exchange(&a.addr, &v9, true).await,
        refused(Status::UnsupportedVersion)
    );
    // A TCP probe (connect, close) is not a rejection.
    assert_eq!(raw_exchange(&a.addr, b"", true).await, None);
    // Half a hello, then silence: dropped after the handshake timeout.
    assert_eq!(raw_exchange(&a.addr, &hello_frame(2, 1)[..10], false).await, None);

    let m = &a.metrics;
    eventually("rejections counted", || m.handshakes_rejected("version") == 1).await;
    for (reason, n) in [
        ("bad_magic", 2),
        ("unknown_peer", 1),
        ("wrong_target", 1),
        ("same_id", 1),
        ("timeout", 1),
        ("malformed", 0),
    ] {
        assert_eq!(m.handshakes_rejected(reason), n, "{reason}");
    }

    // The real link is undisturbed, both ways.
    assert!(a.peer(2).connected && b.peer(1).connected);
    a.handle.send(2, append(1, 2, 2)).unwrap();
    b.handle.send(1, append(2, 1, 2)).unwrap();
    assert_eq!(index_of(&a.recv().await.1), 2);
    assert_eq!(index_of(&b.recv().await.1), 2);
    assert_eq!(b.peer(1).connect_failures, 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_keeps_what_it_holds() {
    let la = listener().await;
    let addr_b = free_addr().await;
    let peers = vec![PeerInfo {
        id: 2,
        zone: "b".into(),
        addr: addr_b.clone(),
    }];
    let options = TransportOptions {
        queue_messages: 4,
        max_frame_bytes: 1024,
        ..fast()
    };
    let a = Node::start(1, "a", la, peers.clone(), options);
    let results: Vec<_> = (0..10).map(|i| a.handle.send(2, append(1, 2, i))).collect();
    assert!(results[..4].iter().all(|r| r.is_ok()), "{results:?}");
    assert!(
        results[4..]
            .iter()
            .all(|r| matches!(r, Err(TransportError::QueueFull(2)))),
        "{results:?}"
    );
    assert!(matches!(
        a.handle.send(9, append(1, 9, 0)),
        Err(TransportError::UnknownPeer(9))
    ));
    let too_big = PeerMessage::Forward {
        origin: 1,
        payload: vec![0; 2000],
    };
    assert!(matches!(
        a.handle.send(2, too_big),
        Err(TransportError::Codec(CodecError::TooLarge { max: 1024, .. }))
    ));
    let s = a.peer(2);
    assert_eq!((s.messages_dropped, s.queued_messages), (7, 4));
    let line = r#"zonekeeper_peer_messages_dropped_total{peer="2"} 7"#;
    assert!(a.prometheus_text().lines().any(|l| l == line));

    // The peer comes up: what the queue held arrives, in order.
    let mut b = Node::start(2, "b", rebind(&addr_b).await, vec![], fast());
    b.handle.update_peers(vec![PeerInfo {
        id: 1,
        zone: "a".into(),
        addr: a.addr.clone(),
    }]);
    for i in 0..4 {
        assert_eq!(index_of(&b.recv().await.1), i);
    }
    eventually("queue drained", || a.peer(2).messages_sent == 4).await;
    assert_eq!(a.peer(2).messages_dropped, 7);
}

#[tokio::test]
async fn the_queue_byte_bound_refuses_but_an_empty_queue_takes_anything() {
    let addr_b = free_addr().await;
    let options = TransportOptions {
        queue_bytes: 100,
        ..fast()
    };
    let peers = vec![PeerInfo {
        id: 2,
        zone: "b".into(),
        addr: addr_b,
    }];
    let a = Node::start(1, "a", listener().await, peers, options);
    let big = || PeerMessage::Forward {
        origin: 1,
        payload: vec![0; 500],
    };
    a.handle.send(2, big()).unwrap();
    assert!(matches!(
        a.handle.send(2, big()),
        Err(TransportError::QueueFull(2))
    ));
    assert!(matches!(
        a.handle.send(2, PeerMessage::Touch { sessions: vec![] }),
        Err(TransportError::QueueFull(2))
    ));
    assert_eq!(a.peer(2).queued_messages, 1);
}

#[tokio::test]
async fn peers_can_be_added_and_removed_while_running() {
    let la = listener().await;
    let addr_a = la.local_addr().unwrap().to_string();
    let mut a = Node::start(1, "a", la, vec![], fast());
    let lc = listener().await;
    let info_c = PeerInfo {
        id: 3,
        zone: "c".into(),
        addr: lc.local_addr().unwrap().to_string(),
    };
    let mut c = Node::start(
        3,
        "c",
        lc,
        vec![PeerInfo {
            id: 1,
            zone: "a".into(),
            addr: addr_a,
        }],
        fast(),
    );
    // Member 1 does not know member 3 yet, and says so.
    eventually("member 3 to be refused", || {
        a.metrics.handshakes_rejected("unknown_peer") >= 1
    })
    .await;
    assert!(!c.peer(1).connected);
    assert!(matches!(
        a.handle.send(3, append(1, 3, 0)),
        Err(TransportError::UnknownPeer(3))
    ));

    a.handle.update_peers(vec![info_c.clone()]);
    a.handle.send(3, append(1, 3, 1)).unwrap();
    assert_eq!(c.recv().await, (1, append(1, 3, 1)));
    eventually("member 3 accepted on retry", || c.peer(1).connected).await;
    c.handle.send(1, append(3, 1, 1)).unwrap();
    assert_eq!(a.recv().await, (3, append(3, 1, 1)));
    // The same set again changes nothing.
    a.handle.update_peers(vec![info_c]);
    assert!(a.peer(3).connected);

    a.handle.update_peers(vec![]);
    assert!(a.handle.stats().is_empty());
    assert!(matches!(
        a.handle.send(3, append(1, 3, 2)),
        Err(TransportError::UnknownPeer(3))
    ));
    eventually("member 3's link to 1 closed", || !c.peer(1).connected).await;
    assert!(!a
        .prometheus_text()
        .contains(r#"zonekeeper_peer_connected{peer="3"}"#));
}

#[tokio::test]
async fn shutdown_closes_the_listener_and_the_queues() {
    let mut nodes = ensemble(&["a", "b"]).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    eventually("link up", || a.peer(2).connected).await;
    a.shutdown.send(true).unwrap();
    eventually("sends refused after shutdown", || {
        matches!(a.handle.send(2, append(1, 2, 0)), Err(TransportError::Closed))
    })
    .await;
    assert!(!a.peer(2).connected);
    eventually("the listener to close", || {
        std::net::TcpStream::connect(&a.addr).is_err()
    })
    .await;
    drop(b);
}
