//! Helpers for the opcode unit tests.

use proto::records::CreateRequest;

use super::WriteCtx;
use crate::acl::{self, AuthInfo};
use crate::state::State;

static ANYONE: std::sync::OnceLock<AuthInfo> = std::sync::OnceLock::new();

pub fn anyone() -> &'static AuthInfo {
    ANYONE.get_or_init(|| AuthInfo::new(None))
}

pub fn state_with_session(session: i64) -> State {
    let mut s = State::new();
    s.sessions.insert(session, 10_000, vec![0; 16], 0);
    s
}

pub fn wctx(zxid: i64, session: i64) -> WriteCtx<'static> {
    WriteCtx {
        zxid,
        time: 1000 + zxid,
        session,
        auth: anyone(),
    }
}

pub fn create_req(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: acl::open_acl_unsafe(),
        flags,
    }
}

pub fn create_mode_flag(ephemeral: bool, sequential: bool) -> i32 {
    (ephemeral as i32) | ((sequential as i32) << 1)
}
