//! Hostile and broken input on raw sockets: bad frame lengths, bodies and
//! headers that do not decode, garbage after the handshake, the
//! per-address connection limit and the four-letter words. Each test keeps
//! a well-behaved client connected through the whole episode and checks
//! that it, and new connections, are still served afterwards: a bad
//! connection only ever closes itself.
//!
//! Rules cited: docs/ordering.md "Bad input" (a negative or oversized
//! length prefix, or a connect request or request header that does not
//! decode, closes that connection only; an unknown opcode is answered
//! UNIMPLEMENTED and the connection closed, as ZooKeeper's
//! UnimplementedRequestProcessor; a known opcode with a malformed body is
//! answered MARSHALLINGERROR and the connection stays open), ZooKeeper's
//! `jute.maxbuffer` ("Len error" closes the connection), `maxClientCnxns`,
//! and the Administrator's Guide on four-letter words and
//! `4lw.commands.whitelist`.

mod common;

use common::*;
use proto::opcode::OpCode;
use proto::records::{ConnectRequest, RequestHeader};
use proto::request::RequestBody;
use proto::{ErrorCode, Record};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zonekeeper_server::fourletter::Whitelist;
use zookeeper_client as zk;

/// A client that stays connected while something else misbehaves.
struct Bystander {
    zk: zk::Client,
    session: zk::SessionId,
}

impl Bystander {
    async fn new(ts: &TestServer) -> Bystander {
        let zk = ts.client().await;
        zk.create("/bystander", b"0", PERSISTENT).await.unwrap();
        let session = zk.session_id();
        Bystander { zk, session }
    }

    /// Still served, on the same session, without having lost its
    /// connection.
    async fn still_served(&self, step: &str) {
        let stat = within(step, self.zk.set_data("/bystander", step.as_bytes(), None))
            .await
            .unwrap_or_else(|e| panic!("bystander after {step}: {e}"));
        assert!(stat.version > 0);
        assert_eq!(self.zk.session_id(), self.session);
        assert_eq!(self.zk.state(), zk::SessionState::SyncConnected, "after {step}");
    }
}

/// A new connection gets a session and a reply.
async fn new_connections_served(ts: &TestServer, step: &str) {
    let mut raw = ts.raw().await;
    let sync = RequestBody::Sync(proto::records::SyncRequest { path: "/".into() });
    assert_eq!(raw.code(OpCode::Sync, sync).await, ErrorCode::Ok, "after {step}");
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    // The server may already have closed; a failed write is fine.
    let _ = stream.write_all(bytes).await;
}

/// Length prefixes the framing refuses, before or after the handshake:
/// negative, larger than max_packet_bytes (jute.maxbuffer), and the first
/// bytes of something that is not ZooKeeper at all (an HTTP request reads
/// as a huge length). Each closes its own connection only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_prefixes_close_only_their_connection() {
    let ts = TestServer::start_with(|c| c.max_packet_bytes = 4096).await;
    let by = Bystander::new(&ts).await;

    let cases: [(&str, Vec<u8>); 4] = [
        ("negative length", (-1i32).to_be_bytes().to_vec()),
        ("length min i32", i32::MIN.to_be_bytes().to_vec()),
        ("length over max_packet_bytes", 4097i32.to_be_bytes().to_vec()),
        ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in &cases {
        // As the first frame, instead of a connect request.
        let mut s = ts.tcp().await;
        send(&mut s, bytes).await;
        assert_eq!(
            read_to_close(&mut s).await,
            b"",
            "{what}: closed without an answer"
        );
        by.still_served(what).await;

        // After a successful handshake.
        let mut raw = ts.raw().await;
        send(&mut raw.stream, bytes).await;
        assert_closed(&mut raw.stream, what).await;
        by.still_served(what).await;
        new_connections_served(&ts, what).await;
    }

    // Exactly max_packet_bytes is allowed: a create with a large payload.
    let mut raw = ts.raw().await;
    let probe = RequestBody::Create(create_req("/big", &[], 0));
    let overhead = Raw::frame(1, OpCode::Create, probe).len() - 4;
    let data = vec![7u8; 4096 - overhead];
    let body = RequestBody::Create(create_req("/big", &data, 0));
    assert_eq!(Raw::frame(1, OpCode::Create, body.clone()).len() - 4, 4096);
    assert_eq!(raw.code(OpCode::Create, body).await, ErrorCode::Ok);
    // One byte more closes.
    let mut data = data;
    data.push(0);
    let body = RequestBody::Create(create_req("/bigger", &data, 0));
    let x = raw.take_xid();
    send(&mut raw.stream, &Raw::frame(x, OpCode::Create, body)).await;
    assert_closed(&mut raw.stream, "a packet of max_packet_bytes + 1").await;
    by.still_served("oversized packet").await;
    assert!(by.zk.check_stat("/bigger").await.unwrap().is_none());
    ts.shutdown().await;
}

/// Undecodable packets after the handshake: a frame too short for a
/// request header closes the connection; an unknown opcode is answered
/// UNIMPLEMENTED and the connection closed; a known opcode whose body does
/// not decode is answered MARSHALLINGERROR and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests() {
    let ts = TestServer::start().await;
    let by = Bystander::new(&ts).await;

    // Header too short.
    let mut raw = ts.raw().await;
    send(&mut raw.stream, &[0, 0, 0, 3, 1, 2, 3]).await;
    assert_closed(&mut raw.stream, "a 3-byte packet").await;
    by.still_served("short header").await;

    // Unknown opcode 999.
    let mut raw = ts.raw().await;
    let mut pkt = Vec::new();
    proto::frame::write_frame(&mut pkt, &RequestHeader { xid: 5, op_type: 999 }.encode());
    send(&mut raw.stream, &pkt).await;
    match raw.next().await.expect("a reply before the close") {
        Packet::Reply(h, _) => assert_eq!((h.xid, h.err), (5, ErrorCode::Unimplemented.code())),
        Packet::Event(e, _) => panic!("unexpected event {e:?}"),
    }
    assert_closed(&mut raw.stream, "after UNIMPLEMENTED").await;
    by.still_served("unknown opcode").await;

    // getData whose path string claims more bytes than the packet has,
    // then a create with a truncated body: MARSHALLINGERROR each, and the
    // connection keeps working.
    let mut raw = ts.raw().await;
    let mut body = RequestHeader {
        xid: 7,
        op_type: OpCode::GetData.code(),
    }
    .encode();
    body.extend_from_slice(&100i32.to_be_bytes());
    body.extend_from_slice(b"/short");
    let mut pkt = Vec::new();
    proto::frame::write_frame(&mut pkt, &body);
    let create = Raw::frame(8, OpCode::Create, RequestBody::Create(create_req("/c", b"", 0)));
    let truncated = &create[4..create.len() - 3];
    proto::frame::write_frame(&mut pkt, truncated);
    send(&mut raw.stream, &pkt).await;
    for x in [7, 8] {
        match raw.next().await.expect("a reply") {
            Packet::Reply(h, _) => assert_eq!((h.xid, h.err), (x, ErrorCode::MarshallingError.code())),
            Packet::Event(e, _) => panic!("unexpected event {e:?}"),
        }
    }
    let c = RequestBody::Create(create_req("/c", b"", 0));
    assert_eq!(
        raw.code(OpCode::Create, c).await,
        ErrorCode::Ok,
        "the session goes on"
    );
    by.still_served("malformed body").await;
    ts.shutdown().await;
}

/// A connect request that does not decode closes the connection without
/// creating a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_connect_request_closes() {
    let ts = TestServer::start().await;
    let by = Bystander::new(&ts).await;
    let sessions_before = ts.hub().state().sessions.len();
    let full = new_session_request().encode();
    for cut in [0, 4, 12, 20, 27] {
        let mut s = ts.tcp().await;
        let mut pkt = Vec::new();
        proto::frame::write_frame(&mut pkt, &full[..cut]);
        send(&mut s, &pkt).await;
        assert_eq!(read_to_close(&mut s).await, b"", "connect cut at {cut}");
    }
    // A password length running past the end.
    let mut bad = ConnectRequest::default().encode();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&1000i32.to_be_bytes());
    let mut s = ts.tcp().await;
    let mut pkt = Vec::new();
    proto::frame::write_frame(&mut pkt, &bad);
    send(&mut s, &pkt).await;
    assert_eq!(read_to_close(&mut s).await, b"");
    by.still_served("bad connect requests").await;
    assert_eq!(
        ts.hub().state().sessions.len(),
        sessions_before,
        "no session was created"
    );
    ts.shutdown().await;
}

/// Garbage right behind a valid connect request (in the same write):
/// the session is established, then the garbage closes that connection,
/// and no one else notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_a_valid_connect_closes_only_that_connection() {
    let ts = TestServer::start().await;
    let by = Bystander::new(&ts).await;
    for garbage in [
        &b"\xde\xad\xbe\xef\x00\x01\x02\x03"[..],
        &b"\x00\x00\x00\x02zz"[..],
        &b"\x7f\xff\xff\xff"[..],
    ] {
        let mut s = ts.tcp().await;
        let mut pkt = Vec::new();
        proto::frame::write_frame(&mut pkt, &new_session_request().encode());
        pkt.extend_from_slice(garbage);
        send(&mut s, &pkt).await;
        let rsp = read_frame(&mut s)
            .await
            .expect("the connect response comes first");
        let rsp = proto::records::ConnectResponse::decode(&rsp).unwrap();
        assert_ne!(rsp.session_id, 0);
        assert_closed(&mut s, "the connection with garbage").await;
        by.still_served("garbage after connect").await;
        new_connections_served(&ts, "garbage after connect").await;
    }
    ts.shutdown().await;
}

/// maxClientCnxns: connections from one address beyond the limit are
/// closed at once, without a session; the ones already open are
/// unaffected, and a slot freed by a closed connection can be used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_limit_are_refused() {
    let ts = TestServer::start_with(|c| c.max_client_connections = 3).await;
    let mut a = ts.raw().await;
    let mut b = ts.raw().await;
    let mut c = ts.raw().await;

    let mut extra = ts.tcp().await;
    send(&mut extra, &{
        let mut f = Vec::new();
        proto::frame::write_frame(&mut f, &new_session_request().encode());
        f
    })
    .await;
    assert_eq!(
        read_to_close(&mut extra).await,
        b"",
        "refused without a connect response"
    );
    // Four-letter words count as connections too.
    let mut word = ts.tcp().await;
    send(&mut word, b"ruok").await;
    assert_eq!(read_to_close(&mut word).await, b"");

    for (name, raw) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        let sync = RequestBody::Sync(proto::records::SyncRequest { path: "/".into() });
        assert_eq!(
            raw.code(OpCode::Sync, sync).await,
            ErrorCode::Ok,
            "{name} still served"
        );
    }

    // Free a slot; the server notices the close asynchronously.
    drop(c);
    let addr = ts.addr;
    eventually("a freed slot to be usable", move || async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        handshake(&mut s, new_session_request()).await.is_some()
    })
    .await;
    ts.shutdown().await;
}

async fn four_letter_word(ts: &TestServer, word: &[u8]) -> String {
    let mut s = ts.tcp().await;
    send(&mut s, word).await;
    String::from_utf8(read_to_close(&mut s).await).expect("text")
}

/// Four-letter words (Administrator's Guide): `ruok` answers `imok`; a
/// known word not in `4lw.commands.whitelist` answers "<word> is not
/// executed because it is not in the whitelist."; `srvr` is always
/// allowed; an unknown word reads as a huge length and closes silently;
/// each closes its connection, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_and_the_whitelist() {
    let ts = TestServer::start().await;
    let by = Bystander::new(&ts).await;
    assert_eq!(four_letter_word(&ts, b"ruok").await, "imok");
    assert_eq!(
        four_letter_word(&ts, b"dump").await,
        "dump is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        four_letter_word(&ts, b"stat").await,
        "stat is not executed because it is not in the whitelist.\n"
    );
    let srvr = four_letter_word(&ts, b"srvr").await;
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    let mntr = four_letter_word(&ts, b"mntr").await;
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    assert_eq!(four_letter_word(&ts, b"abcd").await, "");
    // A word followed by more bytes (as `echo ruok | nc` sends).
    assert_eq!(four_letter_word(&ts, b"ruok\n").await, "imok");
    by.still_served("four-letter words").await;
    new_connections_served(&ts, "four-letter words").await;
    ts.shutdown().await;

    // A whitelist without ruok: refused; `srvr` still allowed.
    let ts =
        TestServer::start_with(|c| c.four_letter_words = Whitelist::try_parse("stat, dump").unwrap()).await;
    assert_eq!(
        four_letter_word(&ts, b"ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(four_letter_word(&ts, b"srvr")
        .await
        .starts_with("Zookeeper version: "));
    assert!(four_letter_word(&ts, b"stat").await.contains("Clients:"));
    assert_eq!(
        four_letter_word(&ts, b"mntr").await,
        "mntr is not executed because it is not in the whitelist.\n"
    );
    ts.shutdown().await;

    // "*" allows every word.
    let ts = TestServer::start_with(|c| c.four_letter_words = Whitelist::try_parse("*").unwrap()).await;
    assert_eq!(four_letter_word(&ts, b"ruok").await, "imok");
    assert!(!four_letter_word(&ts, b"dump").await.contains("not executed"));
    assert!(!four_letter_word(&ts, b"conf").await.contains("not executed"));
    ts.shutdown().await;
}

/// A client that connects and says nothing does not stop anyone else;
/// the server keeps serving while it sits there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_blocks_no_one() {
    let ts = TestServer::start().await;
    let _silent = ts.tcp().await;
    let mut half = ts.tcp().await;
    send(&mut half, &[0, 0]).await;
    let by = Bystander::new(&ts).await;
    by.still_served("silent connections").await;
    new_connections_served(&ts, "silent connections").await;
    ts.shutdown().await;
}

/// A client that pipelines reads and never reads its socket must not grow
/// the server's memory without bound: the connection stops reading
/// requests once ~8 MiB of replies wait for it (hub::OUTBOUND_SOFT_LIMIT),
/// the client's own socket buffers fill, and everyone else is still
/// served. ZooKeeper throttles such a connection the same way
/// (NIOServerCnxn disables reads while its outgoing queue is large).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_held_back_not_buffered() {
    use proto::records::GetDataRequest;
    use zonekeeper_server::hub::OUTBOUND_SOFT_LIMIT;
    let ts = TestServer::start().await;
    let zk = ts.client().await;
    let big = vec![7u8; 1_000_000];
    zk.create("/big", &big, PERSISTENT).await.unwrap();

    let mut hog = ts.raw().await;
    let mut batch = Vec::new();
    for _ in 0..300 {
        let xid = hog.take_xid();
        batch.extend(Raw::frame(
            xid,
            OpCode::GetData,
            RequestBody::GetData(GetDataRequest {
                path: "/big".into(),
                watch: false,
            }),
        ));
    }
    // 300 MB of replies requested; the server must stop well short.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), hog.stream.write_all(&batch)).await;
    eventually("replies queue up for the hog", || {
        let queued: u64 = ts
            .hub()
            .connections()
            .iter()
            .map(|c| c.queued_bytes.load(std::sync::atomic::Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        async move { queued > 0 }
    })
    .await;
    // Others are still served while the hog is held back.
    assert_eq!(zk.get_data("/big").await.unwrap().0.len(), big.len());
    let queued: u64 = ts
        .hub()
        .connections()
        .iter()
        .map(|c| c.queued_bytes.load(std::sync::atomic::Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    assert!(
        queued <= OUTBOUND_SOFT_LIMIT + 2_000_000,
        "{queued} bytes queued for a client that does not read"
    );
    drop(hog);
    ts.shutdown().await;
}
