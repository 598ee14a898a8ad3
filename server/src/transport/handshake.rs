//! The handshake that opens every peer connection, before any message.
//!
//! The dialing member sends one frame, [`Hello`]:
//! `"ZKPT" | version u16 | from u64 | to u64 | zone_len u16 | zone (UTF-8)`.
//! The accepting member answers one frame, [`Ack`]:
//! `"ZKPT" | version u16 | status u8 | id u64` (its own id), and closes the
//! connection unless the status is 0 (accepted). All integers big-endian.
//! Connections are one-way after that: the dialer sends messages, the
//! acceptor only reads (each member dials every peer it sends to).
//!
//! `to` lets the acceptor refuse a dialer that reached the wrong server
//! (a stale DNS record of a rescheduled pod), and the acceptor's `id` in the
//! ack lets the dialer check the same from its side.
//!
//! Owns: the layouts, the magic and version, and the refusal codes. Pure: no
//! I/O, never panics on input.

use bytes::{Buf, BufMut};

/// First bytes of both handshake frames: tells a peer connection from a
/// stray client (a ZooKeeper client or an HTTP probe on the wrong port).
pub const MAGIC: [u8; 4] = *b"ZKPT";
/// Version of the peer protocol: handshake layout and message kinds.
pub const VERSION: u16 = 1;
/// Largest handshake frame accepted; a longer length prefix is not ours.
pub const MAX_HANDSHAKE_BYTES: usize = 1024;
/// Longest zone name the handshake carries (Kubernetes label values are at
/// most 63 characters).
pub const MAX_ZONE_BYTES: usize = 255;

/// The dialer's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The dialing member's id.
    pub from: u64,
    /// The member it means to reach.
    pub to: u64,
    /// The dialing member's zone.
    pub zone: String,
}

/// The acceptor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub status: Status,
    /// The accepting member's id.
    pub id: u64,
}

/// Outcome of a handshake as the acceptor reports it in the [`Ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Accepted,
    /// The acceptor does not speak the dialer's version.
    UnsupportedVersion,
    /// The dialer's id is not among the acceptor's peers.
    UnknownPeer,
    /// The dialer meant to reach another member.
    WrongTarget,
    /// The dialer claims the acceptor's own id: two members share an id.
    SameId,
    /// A status byte this version does not know.
    Other(u8),
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Accepted => 0,
            Status::UnsupportedVersion => 1,
            Status::UnknownPeer => 2,
            Status::WrongTarget => 3,
            Status::SameId => 4,
            Status::Other(c) => c,
        }
    }

    fn from_code(c: u8) -> Status {
        match c {
            0 => Status::Accepted,
            1 => Status::UnsupportedVersion,
            2 => Status::UnknownPeer,
            3 => Status::WrongTarget,
            4 => Status::SameId,
            c => Status::Other(c),
        }
    }
}

/// Why a handshake failed, on either side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a zonekeeper peer connection (bad magic)")]
    BadMagic,
    #[error("peer protocol version {0} is not supported (this server speaks {VERSION})")]
    UnsupportedVersion(u16),
    #[error("malformed handshake: {0}")]
    Malformed(&'static str),
    #[error("refused ({0:?})")]
    Refused(Status),
    #[error("reached member {got}, expected member {expected}")]
    WrongMember { expected: u64, got: u64 },
    #[error("no handshake within the timeout")]
    Timeout,
}

impl HandshakeError {
    /// The `reason` label of `zonekeeper_peer_handshakes_rejected_total`.
    pub fn label(&self) -> &'static str {
        match self {
            HandshakeError::BadMagic => "bad_magic",
            HandshakeError::UnsupportedVersion(_) => "version",
            HandshakeError::Malformed(_) => "malformed",
            HandshakeError::Refused(Status::UnknownPeer) => "unknown_peer",
            HandshakeError::Refused(Status::WrongTarget) => "wrong_target",
            HandshakeError::Refused(Status::SameId) => "same_id",
            HandshakeError::Refused(_) => "refused",
            HandshakeError::WrongMember { .. } => "wrong_member",
            HandshakeError::Timeout => "timeout",
        }
    }
}

impl Hello {
    /// The frame payload (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        // Zone names are far shorter in practice; cut at a character
        // boundary so an absurd one still decodes as UTF-8.
        let mut cut = self.zone.len().min(MAX_ZONE_BYTES);
        while !self.zone.is_char_boundary(cut) {
            cut -= 1;
        }
        let zone = &self.zone.as_bytes()[..cut];
        let mut out = Vec::with_capacity(4 + 2 + 8 + 8 + 2 + zone.len());
        out.put_slice(&MAGIC);
        out.put_u16(VERSION);
        out.put_u64(self.from);
        out.put_u64(self.to);
        out.put_u16(zone.len() as u16);
        out.put_slice(zone);
        out
    }

    pub fn decode(mut b: &[u8]) -> Result<Hello, HandshakeError> {
        let version = header(&mut b)?;
        if version != VERSION {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        if b.remaining() < 8 + 8 + 2 {
            return Err(HandshakeError::Malformed("hello too short"));
        }
        let from = b.get_u64();
        let to = b.get_u64();
        let len = b.get_u16() as usize;
        if len > MAX_ZONE_BYTES || b.remaining() != len {
            return Err(HandshakeError::Malformed("zone length does not match the frame"));
        }
        let zone = std::str::from_utf8(b)
            .map_err(|_| HandshakeError::Malformed("zone is not UTF-8"))?
            .to_string();
        Ok(Hello { from, to, zone })
    }
}

impl Ack {
    /// The frame payload (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 2 + 1 + 8);
        out.put_slice(&MAGIC);
        out.put_u16(VERSION);
        out.put_u8(self.status.code());
        out.put_u64(self.id);
        out
    }

    /// Decodes an ack of any version: the status and id come at the same
    /// place in every version, so a dialer can report why it was refused.
    pub fn decode(mut b: &[u8]) -> Result<Ack, HandshakeError> {
        header(&mut b)?;
        if b.remaining() < 1 + 8 {
            return Err(HandshakeError::Malformed("ack too short"));
        }
        let status = Status::from_code(b.get_u8());
        let id = b.get_u64();
        Ok(Ack { status, id })
    }
}

/// Checks the magic and returns the version.
fn header(b: &mut &[u8]) -> Result<u16, HandshakeError> {
    if b.remaining() < 6 {
        return Err(HandshakeError::Malformed("shorter than the header"));
    }
    if b[..4] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    b.advance(4);
    Ok(b.get_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_and_ack_round_trip_with_the_documented_layout() {
        let h = Hello {
            from: 1,
            to: 2,
            zone: "eu-west-1a".into(),
        };
        let b = h.encode();
        assert_eq!(&b[..6], b"ZKPT\x00\x01");
        assert_eq!(b.len(), 4 + 2 + 8 + 8 + 2 + 10);
        assert_eq!(Hello::decode(&b), Ok(h));

        for status in [
            Status::Accepted,
            Status::UnsupportedVersion,
            Status::UnknownPeer,
            Status::WrongTarget,
            Status::SameId,
            Status::Other(200),
        ] {
            let a = Ack { status, id: 9 };
            assert_eq!(Ack::decode(&a.encode()), Ok(a));
        }
    }

    #[test]
    fn bad_hellos_are_refused_with_a_reason() {
        let good = Hello {
            from: 1,
            to: 2,
            zone: "z".into(),
        }
        .encode();
        assert_eq!(Hello::decode(b"GET / HTTP/1.1"), Err(HandshakeError::BadMagic));
        assert!(matches!(Hello::decode(b"ZK"), Err(HandshakeError::Malformed(_))));
        let mut v2 = good.clone();
        v2[5] = 2;
        assert_eq!(Hello::decode(&v2), Err(HandshakeError::UnsupportedVersion(2)));
        assert!(matches!(
            Hello::decode(&good[..good.len() - 1]),
            Err(HandshakeError::Malformed(_))
        ));
        let mut not_utf8 = good.clone();
        *not_utf8.last_mut().unwrap() = 0xff;
        assert!(matches!(
            Hello::decode(&not_utf8),
            Err(HandshakeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn garbage_handshakes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Hello::decode(&b);
            let _ = Ack::decode(&b);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&b);
            let _ = Hello::decode(&with_magic);
            let _ = Ack::decode(&with_magic);
        }
    }
}
