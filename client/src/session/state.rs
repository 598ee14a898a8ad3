//! The pure part of the session: the session's identity, xids, requests
//! waiting to be sent, requests sent and awaiting their reply (FIFO:
//! ZooKeeper answers a session's requests in order), the last zxid seen,
//! and request deadlines. Time is passed in; nothing here does I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proto::opcode::OpCode;
use proto::request::{Request, RequestBody};

use super::Call;
use crate::error::Error;

/// A call and when it was handed to the session.
#[derive(Debug)]
pub(crate) struct Queued {
    pub call: Call,
    pub since: Instant,
}

/// A request written to the connection, awaiting its reply.
#[derive(Debug)]
pub(crate) struct Sent {
    pub xid: i32,
    pub call: Call,
    pub since: Instant,
}

/// What the reply matching found.
#[derive(Debug)]
pub(crate) enum Matched {
    Found(Sent),
    /// The reply's xid is not the oldest outstanding request's: the
    /// connection is broken (ZooKeeper's "Xid out of order").
    OutOfOrder {
        expected: Option<i32>,
        got: i32,
    },
}

#[derive(Debug)]
pub(crate) struct Session {
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// The negotiated session timeout (the requested one until then).
    pub timeout: Duration,
    pub last_zxid: i64,
    next_xid: i32,
    pub queued: VecDeque<Queued>,
    pub sent: VecDeque<Sent>,
}

impl Session {
    pub fn new(requested_timeout: Duration) -> Session {
        Session {
            session_id: 0,
            passwd: vec![0; 16],
            timeout: requested_timeout,
            last_zxid: 0,
            next_xid: 1,
            queued: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// The next xid: positive, wrapping before the reserved negative ones.
    pub fn next_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Takes the oldest queued call, encodes it with a fresh xid and
    /// records it as sent.
    pub fn send_next(&mut self, now: Instant) -> Option<Vec<u8>> {
        let q = self.queued.pop_front()?;
        let xid = self.next_xid();
        let packet = encode(xid, q.call.op, &q.call.body);
        self.sent.push_back(Sent {
            xid,
            call: q.call,
            since: now,
        });
        Some(packet)
    }

    /// Records a reply's zxid (ZooKeeper: only positive zxids of replies).
    pub fn saw_zxid(&mut self, zxid: i64) {
        if zxid > 0 && zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }

    /// Matches a reply to the oldest outstanding request.
    pub fn take_reply(&mut self, xid: i32) -> Matched {
        match self.sent.front() {
            Some(s) if s.xid == xid => Matched::Found(self.sent.pop_front().expect("front exists")),
            other => Matched::OutOfOrder {
                expected: other.map(|s| s.xid),
                got: xid,
            },
        }
    }

    /// Fails every sent request (the connection is gone; their outcome is
    /// unknown).
    pub fn fail_sent(&mut self, err: &Error) {
        for s in self.sent.drain(..) {
            let _ = s.call.reply.send(Err(err.clone()));
        }
    }

    /// Fails every request, sent or not (the session is over).
    pub fn fail_all(&mut self, err: &Error) {
        self.fail_sent(err);
        for q in self.queued.drain(..) {
            let _ = q.call.reply.send(Err(err.clone()));
        }
    }

    /// Fails every request not yet sent.
    pub fn fail_all_queued(&mut self, err: &Error) {
        for q in self.queued.drain(..) {
            let _ = q.call.reply.send(Err(err.clone()));
        }
    }

    /// Fails queued (never sent) requests older than `timeout` with
    /// [`Error::Timeout`]; returns how many.
    pub fn expire_queued(&mut self, now: Instant, timeout: Duration) -> usize {
        let mut n = 0;
        while let Some(q) = self.queued.front() {
            if now.saturating_duration_since(q.since) < timeout {
                break;
            }
            let q = self.queued.pop_front().expect("front exists");
            let _ = q.call.reply.send(Err(Error::Timeout));
            n += 1;
        }
        // Callers that gave up (dropped their future) need no send.
        self.queued.retain(|q| !q.call.reply.is_closed());
        n
    }

    /// True if the oldest sent request has waited longer than `timeout`.
    pub fn sent_overdue(&self, now: Instant, timeout: Duration) -> bool {
        self.sent
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.since) >= timeout)
    }
}

/// Encodes a request packet (without the length prefix).
pub(crate) fn encode(xid: i32, op: OpCode, body: &RequestBody) -> Vec<u8> {
    Request {
        xid,
        op,
        body: body.clone(),
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::records::SyncRequest;
    use tokio::sync::oneshot;

    fn call() -> (
        Call,
        oneshot::Receiver<Result<proto::response::ResponseBody, Error>>,
    ) {
        let (reply, rx) = oneshot::channel();
        (
            Call {
                op: OpCode::Sync,
                body: RequestBody::Sync(SyncRequest { path: "/".into() }),
                watch: None,
                reply,
            },
            rx,
        )
    }

    #[test]
    fn replies_match_in_fifo_order() {
        let now = Instant::now();
        let mut s = Session::new(Duration::from_secs(1));
        let mut rxs = Vec::new();
        for _ in 0..3 {
            let (c, rx) = call();
            rxs.push(rx);
            s.queued.push_back(Queued { call: c, since: now });
        }
        while s.send_next(now).is_some() {}
        assert_eq!(s.sent.iter().map(|x| x.xid).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(matches!(s.take_reply(1), Matched::Found(x) if x.xid == 1));
        assert!(matches!(
            s.take_reply(3),
            Matched::OutOfOrder {
                expected: Some(2),
                got: 3
            }
        ));
        s.fail_sent(&Error::ConnectionLoss);
        assert_eq!(rxs[1].try_recv().unwrap(), Err(Error::ConnectionLoss));
    }

    #[test]
    fn xids_wrap_to_positive_and_zxid_only_grows() {
        let mut s = Session::new(Duration::from_secs(1));
        s.next_xid = i32::MAX;
        assert_eq!(s.next_xid(), i32::MAX);
        assert_eq!(s.next_xid(), 1);
        s.saw_zxid(5);
        s.saw_zxid(-1);
        s.saw_zxid(3);
        assert_eq!(s.last_zxid, 5);
    }

    #[test]
    fn deadlines() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut s = Session::new(timeout);
        let (c, mut rx) = call();
        s.queued.push_back(Queued { call: c, since: t0 });
        assert_eq!(s.expire_queued(t0 + Duration::from_secs(9), timeout), 0);
        assert_eq!(s.expire_queued(t0 + timeout, timeout), 1);
        assert_eq!(rx.try_recv().unwrap(), Err(Error::Timeout));
        let (c, _rx) = call();
        s.queued.push_back(Queued { call: c, since: t0 });
        s.send_next(t0);
        assert!(!s.sent_overdue(t0 + Duration::from_secs(1), timeout));
        assert!(s.sent_overdue(t0 + timeout, timeout));
    }
}
