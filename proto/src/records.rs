//! Every jute record of `zookeeper.jute` that a 3.8/3.9 client sends or
//! expects, named as there (snake_case fields). The connect handshake is
//! special (optional trailing read-only flag) and is written by hand.

use crate::jute::{self, DecodeError, Field, Reader, Record};
use crate::jute_record;

jute_record! {
    /// A principal: `scheme:id` (e.g. `world:anyone`, `digest:user:hash`).
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    /// One ACL entry: permission bits for an [`Id`].
    pub struct Acl { pub perms: i32, pub id: Id }
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

jute_record! {
    /// Node metadata returned by most reads and writes.
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

/// Stands in for a secret (a session password, authentication data) in
/// `Debug` output, so a logged request never carries it.
pub(crate) struct Redacted<'a>(pub &'a [u8]);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

/// The connect request. Clients since 3.3 append a `readOnly` boolean; older
/// ones omit it, so it is optional on decode. `Debug` leaves out the
/// password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client did not send the trailing flag.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_LEN: usize = 4 + 8 + 4 + 8 + 4;
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = r.read_i64()?;
        let timeout = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.read_bool()?) };
        Ok(ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        jute::write_i32(out, self.protocol_version);
        jute::write_i64(out, self.last_zxid_seen);
        jute::write_i32(out, self.timeout);
        jute::write_i64(out, self.session_id);
        jute::write_buffer(out, &self.passwd);
        if let Some(ro) = self.read_only {
            jute::write_bool(out, ro);
        }
    }
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("protocol_version", &self.protocol_version)
            .field("last_zxid_seen", &self.last_zxid_seen)
            .field("timeout", &self.timeout)
            .field("session_id", &self.session_id)
            .field("passwd", &Redacted(&self.passwd))
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// The connect response; the trailing read-only flag is written only when
/// the client sent one (old clients would see trailing garbage otherwise).
/// `Debug` leaves out the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl std::fmt::Debug for ConnectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectResponse")
            .field("protocol_version", &self.protocol_version)
            .field("timeout", &self.timeout)
            .field("session_id", &self.session_id)
            .field("passwd", &Redacted(&self.passwd))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Record for ConnectResponse {
    const MIN_LEN: usize = 4 + 4 + 8 + 4;
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.read_i32()?;
        let timeout = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.read_bool()?) };
        Ok(ConnectResponse {
            protocol_version,
            timeout,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        jute::write_i32(out, self.protocol_version);
        jute::write_i32(out, self.timeout);
        jute::write_i64(out, self.session_id);
        jute::write_buffer(out, &self.passwd);
        if let Some(ro) = self.read_only {
            jute::write_bool(out, ro);
        }
    }
}

impl Field for ConnectRequest {
    const MIN_ENCODED_LEN: usize = Self::MIN_LEN;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        self.write(out)
    }
}

jute_record! { pub struct RequestHeader { pub xid: i32, pub op_type: i32 } }
jute_record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }

jute_record! {
    pub struct CreateRequest { pub path: String, pub data: Option<Vec<u8>>, pub acl: Vec<Acl>, pub flags: i32 }
}
jute_record! {
    pub struct CreateTtlRequest { pub path: String, pub data: Option<Vec<u8>>, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64 }
}
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct ExistsResponse { pub stat: Stat } }
jute_record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetDataResponse { pub data: Option<Vec<u8>>, pub stat: Stat } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: Option<Vec<u8>>, pub version: i32 } }
jute_record! { pub struct SetDataResponse { pub stat: Stat } }
jute_record! { pub struct GetAclRequest { pub path: String } }
jute_record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
jute_record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct SetAclResponse { pub stat: Stat } }
jute_record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
jute_record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
jute_record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
jute_record! { pub struct SyncRequest { pub path: String } }
jute_record! { pub struct SyncResponse { pub path: String } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! {
    /// Precedes each operation of a multi/multiRead request and each result
    /// of its response; `done` marks the end (with `type_ = -1`, `err = -1`).
    pub struct MultiHeader { pub type_: i32, pub done: bool, pub err: i32 }
}
jute_record! { pub struct ErrorResponse { pub err: i32 } }
/// addAuth. Written out (not `jute_record!`) so `Debug` leaves out `auth`
/// (for digest, `user:password` in clear).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthPacket {
    pub type_: i32,
    pub scheme: String,
    pub auth: Vec<u8>,
}

impl std::fmt::Debug for AuthPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPacket")
            .field("type_", &self.type_)
            .field("scheme", &self.scheme)
            .field("auth", &Redacted(&self.auth))
            .finish()
    }
}

impl Record for AuthPacket {
    const MIN_LEN: usize = 4 + 4 + 4;
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuthPacket {
            type_: r.read_i32()?,
            scheme: r.read_string()?,
            auth: r.read_buffer()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        jute::write_i32(out, self.type_);
        jute::write_string(out, &self.scheme);
        jute::write_buffer(out, &self.auth);
    }
}

impl Field for AuthPacket {
    const MIN_ENCODED_LEN: usize = Self::MIN_LEN;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        self.write(out)
    }
}
jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}
jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! { pub struct RemoveWatchesRequest { pub path: String, pub type_: i32 } }
jute_record! { pub struct CheckWatchesRequest { pub path: String, pub type_: i32 } }
jute_record! { pub struct WatcherEvent { pub type_: i32, pub state: i32, pub path: String } }
jute_record! { pub struct ClientInfo { pub auth_scheme: String, pub user: String } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }
jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}
jute_record! { pub struct GetSaslRequest { pub token: Vec<u8> } }
jute_record! { pub struct SetSaslResponse { pub token: Vec<u8> } }

/// Create flags (`CreateMode.toFlag()`).
pub mod create_mode {
    pub const PERSISTENT: i32 = 0;
    pub const EPHEMERAL: i32 = 1;
    pub const PERSISTENT_SEQUENTIAL: i32 = 2;
    pub const EPHEMERAL_SEQUENTIAL: i32 = 3;
    pub const CONTAINER: i32 = 4;
    pub const PERSISTENT_WITH_TTL: i32 = 5;
    pub const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;
}

/// A decoded create flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    /// `CreateMode.fromFlag`: unknown flags are a bad argument.
    pub fn from_flag(flag: i32) -> Option<CreateMode> {
        let m = |ephemeral, sequential, container, ttl| CreateMode {
            ephemeral,
            sequential,
            container,
            ttl,
        };
        Some(match flag {
            create_mode::PERSISTENT => m(false, false, false, false),
            create_mode::EPHEMERAL => m(true, false, false, false),
            create_mode::PERSISTENT_SEQUENTIAL => m(false, true, false, false),
            create_mode::EPHEMERAL_SEQUENTIAL => m(true, true, false, false),
            create_mode::CONTAINER => m(false, false, true, false),
            create_mode::PERSISTENT_WITH_TTL => m(false, false, false, true),
            create_mode::PERSISTENT_SEQUENTIAL_WITH_TTL => m(false, true, false, true),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_leaves_out_passwords_and_auth_data() {
        let secret = b"bob:hunter2hunter2".to_vec();
        let req = ConnectRequest {
            passwd: secret.clone(),
            ..Default::default()
        };
        let rsp = ConnectResponse {
            passwd: secret.clone(),
            ..Default::default()
        };
        let auth = AuthPacket {
            type_: 0,
            scheme: "digest".into(),
            auth: secret.clone(),
        };
        let shown = format!("{:?}", secret);
        let shown = &shown[1..shown.len() - 1];
        for out in [format!("{req:?}"), format!("{rsp:?}"), format!("{auth:?}")] {
            assert!(!out.contains(shown) && !out.contains("hunter2"), "{out}");
            assert!(out.contains("18 bytes redacted"), "{out}");
        }
        // The hand-written AuthPacket still round-trips.
        let mut buf = Vec::new();
        auth.write(&mut buf);
        assert_eq!(AuthPacket::read(&mut Reader::new(&buf)).unwrap(), auth);
    }
}
