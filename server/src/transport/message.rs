//! [`PeerMessage`], the envelope members exchange, and its bytes.
//!
//! A message travels as one `proto::frame` (4-byte big-endian length, then
//! the body). The body is `[u8 kind][payload]`; every payload runs to the
//! end of the body, so no variant repeats a length the frame already gives:
//!
//! | kind | variant   | payload                                                 |
//! |------|-----------|---------------------------------------------------------|
//! | 1    | `Raft`    | protobuf `raft::eraftpb::Message`                        |
//! | 2    | `Forward` | origin u64 BE, then the encoded txn                     |
//! | 3    | `Touch`   | session ids, i64 BE each                                 |
//! | 4    | `Relay`   | count u32 BE, count × target u64 BE, then an inner body |
//!
//! Owns: the kind bytes and payload layouts. Adding a variant is a new kind
//! byte plus one arm in [`PeerMessage::encode_body`], [`PeerMessage::decode`]
//! and [`PeerMessage::kind_name`]. A receiver closes the connection on a kind
//! it does not know, so a new kind that older members cannot read also needs
//! a handshake version bump (`handshake::VERSION`).
//!
//! Must not: do I/O or panic on any input. Decoding checks every count
//! against the bytes actually present before allocating, and bounds the
//! nesting of relays so that a crafted frame cannot exhaust the stack.

use bytes::{Buf, Bytes};
use protobuf::Message as _;
use raft::eraftpb;

/// Kind bytes. Values are part of the wire format: never reuse one.
mod kind {
    pub const RAFT: u8 = 1;
    pub const FORWARD: u8 = 2;
    pub const TOUCH: u8 = 3;
    pub const RELAY: u8 = 4;
}

/// Relays nested deeper than this are refused on decode (and on encode, so
/// that a sender cannot produce what receivers refuse). Two levels cover a
/// region → zone → member tree with room to spare; the bound exists so a
/// frame of nested relay headers cannot recurse the decoder off its stack.
pub const MAX_RELAY_DEPTH: usize = 4;

/// What one member sends another.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerMessage {
    /// A raft protocol message (append, vote, heartbeat, snapshot, …).
    Raft(eraftpb::Message),
    /// A follower forwarding a client write to the leader: `origin` is the
    /// forwarding member's id, `payload` the encoded txn. The outcome comes
    /// back through the replicated log, so there is no reply message.
    Forward { origin: u64, payload: Vec<u8> },
    /// Session liveness forwarded to the leader, which owns expiry: these
    /// sessions sent something since the last touch.
    Touch { sessions: Vec<i64> },
    /// Reserved for the zone relay: the receiver is to deliver `inner` to
    /// each of `targets` (member ids in its zone). Encoded and decoded
    /// only; nothing routes it yet.
    Relay {
        targets: Vec<u64>,
        inner: Box<PeerMessage>,
    },
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty message body")]
    Empty,
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("{kind} payload truncated: needs {need} bytes, has {have}")]
    Truncated {
        kind: &'static str,
        need: usize,
        have: usize,
    },
    #[error("touch payload of {0} bytes is not a whole number of 8-byte session ids")]
    RaggedTouch(usize),
    #[error("relay nested deeper than {MAX_RELAY_DEPTH} levels")]
    RelayTooDeep,
    #[error("raft message: {0}")]
    Raft(String),
    #[error("message of {len} bytes exceeds the peer frame limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

impl PeerMessage {
    /// The variant's name, for logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            PeerMessage::Raft(_) => "raft",
            PeerMessage::Forward { .. } => "forward",
            PeerMessage::Touch { .. } => "touch",
            PeerMessage::Relay { .. } => "relay",
        }
    }

    /// Appends the body (`[kind][payload]`, no length prefix) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.encode_at(out, 0)
    }

    fn encode_at(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
        match self {
            PeerMessage::Raft(m) => {
                out.push(kind::RAFT);
                m.write_to_vec(out).map_err(|e| CodecError::Raft(e.to_string()))?;
            }
            PeerMessage::Forward { origin, payload } => {
                out.push(kind::FORWARD);
                out.extend_from_slice(&origin.to_be_bytes());
                out.extend_from_slice(payload);
            }
            PeerMessage::Touch { sessions } => {
                out.push(kind::TOUCH);
                out.reserve(sessions.len() * 8);
                for s in sessions {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            PeerMessage::Relay { targets, inner } => {
                if depth >= MAX_RELAY_DEPTH {
                    return Err(CodecError::RelayTooDeep);
                }
                out.push(kind::RELAY);
                let count = u32::try_from(targets.len()).map_err(|_| CodecError::TooLarge {
                    len: targets.len(),
                    max: u32::MAX as usize,
                })?;
                out.extend_from_slice(&count.to_be_bytes());
                for t in targets {
                    out.extend_from_slice(&t.to_be_bytes());
                }
                inner.encode_at(out, depth + 1)?;
            }
        }
        Ok(())
    }

    /// The whole frame (length prefix and body) as written to the socket,
    /// refused if the body exceeds `max` bytes (the receiver would close the
    /// connection on it).
    pub fn encode_frame(&self, max: usize) -> Result<Bytes, CodecError> {
        let mut body = Vec::new();
        self.encode_body(&mut body)?;
        if body.len() > max {
            return Err(CodecError::TooLarge { len: body.len(), max });
        }
        let mut frame = Vec::with_capacity(4 + body.len());
        proto::frame::write_frame(&mut frame, &body);
        Ok(Bytes::from(frame))
    }

    /// Decodes one body (a frame without its length prefix). Raft payloads
    /// are parsed without copying: their entries' data point into `body`.
    pub fn decode(body: &Bytes) -> Result<PeerMessage, CodecError> {
        Self::decode_at(body.clone(), 0)
    }

    fn decode_at(mut body: Bytes, depth: usize) -> Result<PeerMessage, CodecError> {
        if body.is_empty() {
            return Err(CodecError::Empty);
        }
        let k = body.get_u8();
        match k {
            kind::RAFT => eraftpb::Message::parse_from_carllerche_bytes(&body)
                .map(PeerMessage::Raft)
                .map_err(|e| CodecError::Raft(e.to_string())),
            kind::FORWARD => {
                need("forward", &body, 8)?;
                let origin = body.get_u64();
                Ok(PeerMessage::Forward {
                    origin,
                    payload: body.to_vec(),
                })
            }
            kind::TOUCH => {
                let (count, ragged) = (body.len() / 8, body.len() % 8);
                if ragged != 0 {
                    return Err(CodecError::RaggedTouch(body.len()));
                }
                let mut sessions = Vec::with_capacity(count);
                while body.has_remaining() {
                    sessions.push(body.get_i64());
                }
                Ok(PeerMessage::Touch { sessions })
            }
            kind::RELAY => {
                if depth >= MAX_RELAY_DEPTH {
                    return Err(CodecError::RelayTooDeep);
                }
                need("relay", &body, 4)?;
                let count = body.get_u32() as usize;
                // Checked against what is present before allocating: a
                // garbage count cannot reserve gigabytes.
                need("relay", &body, count.saturating_mul(8))?;
                let targets = (0..count).map(|_| body.get_u64()).collect();
                let inner = Self::decode_at(body, depth + 1)?;
                Ok(PeerMessage::Relay {
                    targets,
                    inner: Box::new(inner),
                })
            }
            other => Err(CodecError::UnknownKind(other)),
        }
    }
}

/// `Ok` if `body` holds at least `n` more bytes.
fn need(kind: &'static str, body: &Bytes, n: usize) -> Result<(), CodecError> {
    if body.len() < n {
        return Err(CodecError::Truncated {
            kind,
            need: n,
            have: body.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use protobuf::ProtobufEnum;
    use raft::eraftpb::{Entry, EntryType, MessageType, Snapshot};

    fn body(m: &PeerMessage) -> Bytes {
        let mut out = Vec::new();
        m.encode_body(&mut out).unwrap();
        Bytes::from(out)
    }

    /// A raft message with every kind of field set, for tests here and in
    /// the socket tests.
    pub(crate) fn raft_append(from: u64, to: u64, index: u64, data: &[u8]) -> eraftpb::Message {
        let mut m = eraftpb::Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = from;
        m.to = to;
        m.term = 3;
        m.log_term = 3;
        m.index = index;
        m.commit = index;
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryNormal);
        e.term = 3;
        e.index = index + 1;
        e.data = Bytes::copy_from_slice(data);
        m.entries.push(e);
        m
    }

    /// The exact bytes of each layout in the module table.
    #[test]
    fn frame_layouts_match_the_documented_format() {
        let touch = PeerMessage::Touch {
            sessions: vec![1, -1],
        };
        let mut want = vec![0, 0, 0, 17, 3];
        want.extend_from_slice(&1i64.to_be_bytes());
        want.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(touch.encode_frame(1 << 20).unwrap(), want);

        let fwd = PeerMessage::Forward {
            origin: 2,
            payload: b"txn".to_vec(),
        };
        assert_eq!(
            fwd.encode_frame(1 << 20).unwrap(),
            [&[0, 0, 0, 12, 2][..], &2u64.to_be_bytes(), b"txn"].concat()
        );

        let relay = PeerMessage::Relay {
            targets: vec![7],
            inner: Box::new(PeerMessage::Touch { sessions: vec![] }),
        };
        assert_eq!(
            relay.encode_frame(1 << 20).unwrap(),
            [&[0, 0, 0, 14, 4, 0, 0, 0, 1][..], &7u64.to_be_bytes(), &[3]].concat()
        );

        let m = raft_append(1, 2, 5, b"x");
        let frame = PeerMessage::Raft(m.clone()).encode_frame(1 << 20).unwrap();
        let pb = m.write_to_bytes().unwrap();
        assert_eq!(&frame[..4], &(pb.len() as i32 + 1).to_be_bytes());
        assert_eq!(frame[4], 1);
        assert_eq!(&frame[5..], &pb[..]);
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        let decode = |b: &[u8]| PeerMessage::decode(&Bytes::copy_from_slice(b));
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[0]), Err(CodecError::UnknownKind(0)));
        assert_eq!(decode(&[9, 1, 2]), Err(CodecError::UnknownKind(9)));
        assert!(matches!(
            decode(&[2, 0, 0]),
            Err(CodecError::Truncated { kind: "forward", .. })
        ));
        assert_eq!(decode(&[3, 1, 2, 3]), Err(CodecError::RaggedTouch(3)));
        // A relay claiming 2^32-1 targets with none present: refused
        // before anything is allocated.
        assert!(matches!(
            decode(&[4, 0xff, 0xff, 0xff, 0xff]),
            Err(CodecError::Truncated { kind: "relay", .. })
        ));
        assert_eq!(decode(&[4, 0, 0, 0, 0]), Err(CodecError::Empty));
        assert!(matches!(decode(&[1, 0xff, 0xff]), Err(CodecError::Raft(_))));
    }

    #[test]
    fn relay_nesting_is_bounded_both_ways() {
        let mut m = PeerMessage::Touch { sessions: vec![] };
        for _ in 0..MAX_RELAY_DEPTH {
            m = PeerMessage::Relay {
                targets: vec![1],
                inner: Box::new(m),
            };
        }
        let ok = body(&m);
        assert_eq!(PeerMessage::decode(&ok).unwrap(), m);
        let deeper = PeerMessage::Relay {
            targets: vec![],
            inner: Box::new(m),
        };
        assert_eq!(deeper.encode_body(&mut Vec::new()), Err(CodecError::RelayTooDeep));
        // A hand-made frame of a million nested relay headers.
        let mut evil = Vec::new();
        for _ in 0..1_000_000 {
            evil.extend_from_slice(&[4, 0, 0, 0, 0]);
        }
        assert_eq!(
            PeerMessage::decode(&Bytes::from(evil)),
            Err(CodecError::RelayTooDeep)
        );
    }

    #[test]
    fn oversized_frames_are_refused_by_the_sender() {
        let m = PeerMessage::Forward {
            origin: 1,
            payload: vec![0; 100],
        };
        assert_eq!(
            m.encode_frame(100),
            Err(CodecError::TooLarge { len: 109, max: 100 })
        );
        assert_eq!(m.encode_frame(109).unwrap().len(), 113);
    }

    fn arb_raft() -> impl Strategy<Value = eraftpb::Message> {
        let entry = (
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(conf, term, index, data, ctx)| {
                let mut e = Entry::default();
                if conf {
                    e.set_entry_type(EntryType::EntryConfChangeV2);
                }
                e.term = term;
                e.index = index;
                e.data = data.into();
                e.context = ctx.into();
                e
            });
        (
            0..19i32,
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
            ),
            (
                any::<u64>(),
                any::<u64>(),
                any::<bool>(),
                any::<u64>(),
                any::<i64>(),
            ),
            proptest::collection::vec(entry, 0..4),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128)),
            proptest::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(
                |(
                    t,
                    (from, to, term, log_term, index),
                    (commit, commit_term, reject, hint, prio),
                    entries,
                    snap,
                    ctx,
                )| {
                    let mut m = eraftpb::Message::default();
                    m.set_msg_type(MessageType::from_i32(t).unwrap_or(MessageType::MsgHeartbeat));
                    m.from = from;
                    m.to = to;
                    m.term = term;
                    m.log_term = log_term;
                    m.index = index;
                    m.commit = commit;
                    m.commit_term = commit_term;
                    m.reject = reject;
                    m.reject_hint = hint;
                    m.priority = prio;
                    m.context = ctx.into();
                    m.set_entries(entries.into());
                    if let Some(data) = snap {
                        let mut s = Snapshot {
                            data: data.into(),
                            ..Snapshot::default()
                        };
                        s.mut_metadata().index = index;
                        s.mut_metadata().term = term;
                        s.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
                        m.set_snapshot(s);
                    }
                    m
                },
            )
    }

    fn arb_message() -> impl Strategy<Value = PeerMessage> {
        let leaf = prop_oneof![
            arb_raft().prop_map(PeerMessage::Raft),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..256))
                .prop_map(|(origin, payload)| PeerMessage::Forward { origin, payload }),
            proptest::collection::vec(any::<i64>(), 0..32)
                .prop_map(|sessions| PeerMessage::Touch { sessions }),
        ];
        leaf.prop_recursive(MAX_RELAY_DEPTH as u32, 16, 1, |inner| {
            (proptest::collection::vec(any::<u64>(), 0..8), inner).prop_map(|(targets, inner)| {
                PeerMessage::Relay {
                    targets,
                    inner: Box::new(inner),
                }
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every variant survives encode → decode unchanged, and the frame
        /// is the body behind its length.
        #[test]
        fn every_variant_round_trips(m in arb_message()) {
            let frame = m.encode_frame(usize::MAX).unwrap();
            prop_assert_eq!(proto::frame::check(&frame, usize::MAX), Ok(Some(frame.len() - 4)));
            let back = PeerMessage::decode(&frame.slice(4..)).unwrap();
            prop_assert_eq!(back, m);
        }

        /// Arbitrary bytes decode to a message or an error, never a panic.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = PeerMessage::decode(&Bytes::from(bytes));
        }

        /// Garbage after a valid kind byte exercises each payload parser.
        #[test]
        fn garbage_payloads_never_panic(k in 0u8..6, bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut b = vec![k];
            b.extend_from_slice(&bytes);
            let _ = PeerMessage::decode(&Bytes::from(b));
        }

        /// A valid frame cut short or with a byte flipped never panics.
        #[test]
        fn damaged_messages_never_panic(m in arb_message(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
            let b = body(&m);
            let _ = PeerMessage::decode(&b.slice(..cut.index(b.len() + 1)));
            let mut v = b.to_vec();
            let i = flip.index(v.len());
            v[i] ^= 0xa5;
            let _ = PeerMessage::decode(&Bytes::from(v));
        }
    }
}
