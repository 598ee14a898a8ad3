//! Property and golden-byte tests for the wire protocol: every record,
//! request and reply round-trips, hostile input never panics, and a few
//! packets match byte for byte what the Java client sends.

use proptest::collection::vec;
use proptest::prelude::*;
use proto::frame::{self, FrameError};
use proto::jute::{DecodeError, Record};
use proto::records::*;
use proto::request::{MultiOp, Request, RequestBody};
use proto::response::{
    decode_reply_header, encode_notification, encode_notification_with_zxid, encode_reply, MultiResult,
    ResponseBody,
};
use proto::{ErrorCode, OpCode};

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn s() -> impl Strategy<Value = String> {
    "(?s).{0,12}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

/// Znode data: null and empty are distinct values.
fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(bytes())
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(s(), 0..4)
}

fn id() -> impl Strategy<Value = Id> {
    (s(), s()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..3)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            )| {
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner,
                    data_length,
                    num_children,
                    pzxid,
                }
            },
        )
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only)| ConnectRequest {
                protocol_version,
                last_zxid_seen,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        )
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, timeout, session_id, passwd, read_only)| ConnectResponse {
                protocol_version,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        )
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    (s(), data(), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (s(), data(), acls(), any::<i32>(), any::<i64>()).prop_map(|(path, data, acl, flags, ttl)| {
        CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        }
    })
}

fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    (s(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (s(), data(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest { path, data, version })
}

fn check_request() -> impl Strategy<Value = CheckVersionRequest> {
    (s(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn get_data_request() -> impl Strategy<Value = GetDataRequest> {
    (s(), any::<bool>()).prop_map(|(path, watch)| GetDataRequest { path, watch })
}

fn get_children_request() -> impl Strategy<Value = GetChildrenRequest> {
    (s(), any::<bool>()).prop_map(|(path, watch)| GetChildrenRequest { path, watch })
}

fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (data(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn create2_response() -> impl Strategy<Value = Create2Response> {
    (s(), stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    (
        any::<i64>(),
        strings(),
        strings(),
        strings(),
        strings(),
        strings(),
    )
        .prop_map(
            |(
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
                persistent_watches,
                persistent_recursive_watches,
            )| {
                SetWatches2 {
                    relative_zxid,
                    data_watches,
                    exist_watches,
                    child_watches,
                    persistent_watches,
                    persistent_recursive_watches,
                }
            },
        )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

/// A write op of a multi: every kind ZooKeeper allows there.
fn multi_write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (
            proptest::sample::select(vec![OpCode::Create, OpCode::Create2, OpCode::CreateContainer]),
            create_request()
        )
            .prop_map(|(op, req)| MultiOp::Create { op, req }),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_request().prop_map(MultiOp::Check),
    ]
}

/// A read op of a multiRead.
fn multi_read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        get_children_request().prop_map(MultiOp::GetChildren),
        get_data_request().prop_map(MultiOp::GetData),
    ]
}

/// Opcodes a client can send after the handshake, each with a body of the
/// record it carries.
fn request() -> impl Strategy<Value = Request> {
    let body = prop_oneof![
        (
            proptest::sample::select(vec![OpCode::Create, OpCode::Create2, OpCode::CreateContainer]),
            create_request()
        )
            .prop_map(|(op, r)| (op, RequestBody::Create(r))),
        create_ttl_request().prop_map(|r| (OpCode::CreateTtl, RequestBody::CreateTtl(r))),
        (
            proptest::sample::select(vec![OpCode::Delete, OpCode::DeleteContainer]),
            delete_request()
        )
            .prop_map(|(op, r)| (op, RequestBody::Delete(r))),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| (OpCode::Exists, RequestBody::Exists(ExistsRequest { path, watch }))),
        get_data_request().prop_map(|r| (OpCode::GetData, RequestBody::GetData(r))),
        set_data_request().prop_map(|r| (OpCode::SetData, RequestBody::SetData(r))),
        s().prop_map(|path| (OpCode::GetAcl, RequestBody::GetAcl(GetAclRequest { path }))),
        (s(), acls(), any::<i32>()).prop_map(|(path, acl, version)| (
            OpCode::SetAcl,
            RequestBody::SetAcl(SetAclRequest { path, acl, version })
        )),
        (
            proptest::sample::select(vec![OpCode::GetChildren, OpCode::GetChildren2]),
            get_children_request()
        )
            .prop_map(|(op, r)| (op, RequestBody::GetChildren(r))),
        s().prop_map(|path| (
            OpCode::GetAllChildrenNumber,
            RequestBody::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })
        )),
        s().prop_map(|prefix_path| (
            OpCode::GetEphemerals,
            RequestBody::GetEphemerals(GetEphemeralsRequest { prefix_path })
        )),
        s().prop_map(|path| (OpCode::Sync, RequestBody::Sync(SyncRequest { path }))),
        check_request().prop_map(|r| (OpCode::Check, RequestBody::Check(r))),
        vec(multi_write_op(), 0..5).prop_map(|ops| (OpCode::Multi, RequestBody::Multi(ops))),
        vec(multi_read_op(), 0..5).prop_map(|ops| (OpCode::MultiRead, RequestBody::Multi(ops))),
        (s(), s(), s(), any::<i64>()).prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| (
                OpCode::Reconfig,
                RequestBody::Reconfig(ReconfigRequest {
                    joining_servers,
                    leaving_servers,
                    new_members,
                    cur_config_id
                })
            )
        ),
        (
            proptest::sample::select(vec![OpCode::CheckWatches, OpCode::RemoveWatches]),
            s(),
            any::<i32>()
        )
            .prop_map(|(op, path, type_)| (
                op,
                RequestBody::RemoveWatches(RemoveWatchesRequest { path, type_ })
            )),
        (any::<i32>(), s(), bytes()).prop_map(|(type_, scheme, auth)| (
            OpCode::Auth,
            RequestBody::Auth(AuthPacket { type_, scheme, auth })
        )),
        // setWatches has no persistent lists on the wire.
        set_watches2().prop_map(|mut w| {
            w.persistent_watches.clear();
            w.persistent_recursive_watches.clear();
            (OpCode::SetWatches, RequestBody::SetWatches(w))
        }),
        set_watches2().prop_map(|w| (OpCode::SetWatches2, RequestBody::SetWatches(w))),
        (s(), any::<i32>()).prop_map(|(path, mode)| (
            OpCode::AddWatch,
            RequestBody::AddWatch(AddWatchRequest { path, mode })
        )),
        bytes().prop_map(|token| (OpCode::Sasl, RequestBody::Sasl(GetSaslRequest { token }))),
        Just((OpCode::Ping, RequestBody::Ping)),
        Just((OpCode::WhoAmI, RequestBody::WhoAmI)),
        Just((OpCode::CloseSession, RequestBody::CloseSession)),
    ];
    (any::<i32>(), body).prop_map(|(xid, (op, body))| Request { xid, op, body })
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        s().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        get_data_response().prop_map(MultiResult::GetData),
        strings().prop_map(|children| MultiResult::GetChildren(GetChildrenResponse { children })),
        error_code().prop_map(MultiResult::Error),
    ]
}

/// A successful reply body with an opcode it answers.
fn response() -> impl Strategy<Value = (OpCode, ResponseBody)> {
    prop_oneof![
        s().prop_map(|path| (OpCode::Create, ResponseBody::Create(CreateResponse { path }))),
        (
            proptest::sample::select(vec![OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl]),
            create2_response()
        )
            .prop_map(|(op, r)| (op, ResponseBody::Create2(r))),
        (
            proptest::sample::select(vec![OpCode::Exists, OpCode::SetData, OpCode::SetAcl]),
            stat()
        )
            .prop_map(|(op, st)| (op, ResponseBody::Stat(st))),
        (
            proptest::sample::select(vec![OpCode::GetData, OpCode::Reconfig]),
            get_data_response()
        )
            .prop_map(|(op, r)| (op, ResponseBody::GetData(r))),
        (acls(), stat())
            .prop_map(|(acl, stat)| (OpCode::GetAcl, ResponseBody::GetAcl(GetAclResponse { acl, stat }))),
        strings().prop_map(|children| (
            OpCode::GetChildren,
            ResponseBody::GetChildren(GetChildrenResponse { children })
        )),
        (strings(), stat()).prop_map(|(children, stat)| (
            OpCode::GetChildren2,
            ResponseBody::GetChildren2(GetChildren2Response { children, stat })
        )),
        any::<i32>().prop_map(|total_number| (
            OpCode::GetAllChildrenNumber,
            ResponseBody::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number })
        )),
        strings().prop_map(|ephemerals| (
            OpCode::GetEphemerals,
            ResponseBody::GetEphemerals(GetEphemeralsResponse { ephemerals })
        )),
        s().prop_map(|path| (OpCode::Sync, ResponseBody::Sync(SyncResponse { path }))),
        (
            proptest::sample::select(vec![OpCode::Multi, OpCode::MultiRead]),
            vec(multi_result(), 0..6)
        )
            .prop_map(|(op, rs)| (op, ResponseBody::Multi(rs))),
        vec((s(), s()), 0..3).prop_map(|infos| (
            OpCode::WhoAmI,
            ResponseBody::WhoAmI(WhoAmIResponse {
                client_info: infos
                    .into_iter()
                    .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                    .collect()
            })
        )),
        bytes().prop_map(|token| (OpCode::Sasl, ResponseBody::Sasl(SetSaslResponse { token }))),
        Just((OpCode::AddWatch, ResponseBody::AddWatch)),
        proptest::sample::select(vec![
            OpCode::Delete,
            OpCode::DeleteContainer,
            OpCode::Check,
            OpCode::Ping,
            OpCode::Auth,
            OpCode::SetWatches,
            OpCode::SetWatches2,
            OpCode::CheckWatches,
            OpCode::RemoveWatches,
            OpCode::CloseSession,
        ])
        .prop_map(|op| (op, ResponseBody::Empty)),
    ]
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// decode(encode(x)) == x, the encoding is at least `MIN_LEN` long, and (for
/// records whose fields are all required) every strict prefix is refused.
fn check_record<T: Record + PartialEq + std::fmt::Debug>(
    v: &T,
    prefixes_fail: bool,
) -> Result<(), TestCaseError> {
    let bytes = v.encode();
    prop_assert!(
        bytes.len() >= T::MIN_LEN,
        "{} < MIN_LEN {}",
        bytes.len(),
        T::MIN_LEN
    );
    prop_assert_eq!(&T::decode(&bytes)?, v);
    if prefixes_fail {
        for cut in 0..bytes.len() {
            prop_assert!(
                T::decode(&bytes[..cut]).is_err(),
                "prefix of {} bytes decoded",
                cut
            );
        }
    }
    if prefixes_fail {
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0]);
        prop_assert_eq!(T::decode(&padded), Err(DecodeError::TrailingBytes(2)));
    }
    Ok(())
}

macro_rules! record_roundtrips {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $(
                #[test]
                fn $name(v in $strategy) {
                    check_record::<$ty>(&v, true)?;
                }
            )*
        }
    };
}

record_roundtrips! {
    rt_id: Id = id();
    rt_acl: Acl = acl();
    rt_stat: Stat = stat();
    rt_request_header: RequestHeader = (any::<i32>(), any::<i32>()).prop_map(|(xid, op_type)| RequestHeader { xid, op_type });
    rt_reply_header: ReplyHeader = (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(xid, zxid, err)| ReplyHeader { xid, zxid, err });
    rt_create_request: CreateRequest = create_request();
    rt_create_ttl_request: CreateTtlRequest = create_ttl_request();
    rt_create_response: CreateResponse = s().prop_map(|path| CreateResponse { path });
    rt_create2_response: Create2Response = create2_response();
    rt_delete_request: DeleteRequest = delete_request();
    rt_exists_request: ExistsRequest = (s(), any::<bool>()).prop_map(|(path, watch)| ExistsRequest { path, watch });
    rt_exists_response: ExistsResponse = stat().prop_map(|stat| ExistsResponse { stat });
    rt_get_data_request: GetDataRequest = get_data_request();
    rt_get_data_response: GetDataResponse = get_data_response();
    rt_set_data_request: SetDataRequest = set_data_request();
    rt_set_data_response: SetDataResponse = stat().prop_map(|stat| SetDataResponse { stat });
    rt_get_acl_request: GetAclRequest = s().prop_map(|path| GetAclRequest { path });
    rt_get_acl_response: GetAclResponse = (acls(), stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat });
    rt_set_acl_request: SetAclRequest = (s(), acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest { path, acl, version });
    rt_set_acl_response: SetAclResponse = stat().prop_map(|stat| SetAclResponse { stat });
    rt_get_children_request: GetChildrenRequest = get_children_request();
    rt_get_children_response: GetChildrenResponse = strings().prop_map(|children| GetChildrenResponse { children });
    rt_get_children2_request: GetChildren2Request = (s(), any::<bool>()).prop_map(|(path, watch)| GetChildren2Request { path, watch });
    rt_get_children2_response: GetChildren2Response = (strings(), stat()).prop_map(|(children, stat)| GetChildren2Response { children, stat });
    rt_get_all_children_number_request: GetAllChildrenNumberRequest = s().prop_map(|path| GetAllChildrenNumberRequest { path });
    rt_get_all_children_number_response: GetAllChildrenNumberResponse = any::<i32>().prop_map(|total_number| GetAllChildrenNumberResponse { total_number });
    rt_get_ephemerals_request: GetEphemeralsRequest = s().prop_map(|prefix_path| GetEphemeralsRequest { prefix_path });
    rt_get_ephemerals_response: GetEphemeralsResponse = strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals });
    rt_sync_request: SyncRequest = s().prop_map(|path| SyncRequest { path });
    rt_sync_response: SyncResponse = s().prop_map(|path| SyncResponse { path });
    rt_check_version_request: CheckVersionRequest = check_request();
    rt_multi_header: MultiHeader = (any::<i32>(), any::<bool>(), any::<i32>()).prop_map(|(type_, done, err)| MultiHeader { type_, done, err });
    rt_error_response: ErrorResponse = any::<i32>().prop_map(|err| ErrorResponse { err });
    rt_auth_packet: AuthPacket = (any::<i32>(), s(), bytes()).prop_map(|(type_, scheme, auth)| AuthPacket { type_, scheme, auth });
    rt_set_watches: SetWatches = (any::<i64>(), strings(), strings(), strings()).prop_map(|(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches { relative_zxid, data_watches, exist_watches, child_watches });
    rt_set_watches2: SetWatches2 = set_watches2();
    rt_add_watch_request: AddWatchRequest = (s(), any::<i32>()).prop_map(|(path, mode)| AddWatchRequest { path, mode });
    rt_remove_watches_request: RemoveWatchesRequest = (s(), any::<i32>()).prop_map(|(path, type_)| RemoveWatchesRequest { path, type_ });
    rt_check_watches_request: CheckWatchesRequest = (s(), any::<i32>()).prop_map(|(path, type_)| CheckWatchesRequest { path, type_ });
    rt_watcher_event: WatcherEvent = (any::<i32>(), any::<i32>(), s()).prop_map(|(type_, state, path)| WatcherEvent { type_, state, path });
    rt_client_info: ClientInfo = (s(), s()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user });
    rt_who_am_i_response: WhoAmIResponse = vec((s(), s()), 0..3).prop_map(|v| WhoAmIResponse { client_info: v.into_iter().map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }).collect() });
    rt_reconfig_request: ReconfigRequest = (s(), s(), s(), any::<i64>()).prop_map(|(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest { joining_servers, leaving_servers, new_members, cur_config_id });
    rt_get_sasl_request: GetSaslRequest = bytes().prop_map(|token| GetSaslRequest { token });
    rt_set_sasl_response: SetSaslResponse = bytes().prop_map(|token| SetSaslResponse { token });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The handshake records have an optional trailing flag, so a prefix
    /// without it is a valid (old-client) record; everything shorter fails.
    #[test]
    fn rt_connect_request(v in connect_request()) {
        check_record(&v, false)?;
        let bytes = v.encode();
        let fixed = 4 + 8 + 4 + 8 + 4 + v.passwd.len();
        prop_assert_eq!(bytes.len(), fixed + v.read_only.is_some() as usize);
        for cut in 0..fixed {
            prop_assert!(ConnectRequest::decode(&bytes[..cut]).is_err());
        }
        let old = ConnectRequest::decode(&bytes[..fixed])?;
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0]);
        let trailing = if v.read_only.is_some() { 2 } else { 1 };
        prop_assert_eq!(ConnectRequest::decode(&padded), Err(DecodeError::TrailingBytes(trailing)));
        prop_assert_eq!(old, ConnectRequest { read_only: None, ..v });
    }

    #[test]
    fn rt_connect_response(v in connect_response()) {
        check_record(&v, false)?;
        let bytes = v.encode();
        let fixed = 4 + 4 + 8 + 4 + v.passwd.len();
        prop_assert_eq!(bytes.len(), fixed + v.read_only.is_some() as usize);
        for cut in 0..fixed {
            prop_assert!(ConnectResponse::decode(&bytes[..cut]).is_err());
        }
        let old = ConnectResponse::decode(&bytes[..fixed])?;
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0]);
        let trailing = if v.read_only.is_some() { 2 } else { 1 };
        prop_assert_eq!(ConnectResponse::decode(&padded), Err(DecodeError::TrailingBytes(trailing)));
        prop_assert_eq!(old, ConnectResponse { read_only: None, ..v });
    }

    // -----------------------------------------------------------------------
    // Requests and replies
    // -----------------------------------------------------------------------

    #[test]
    fn rt_request(req in request()) {
        let bytes = req.encode();
        prop_assert_eq!(&Request::decode(&bytes)?, &req);
        // The header is the first 8 bytes, as ZooKeeper reads it.
        let header = RequestHeader::decode(&bytes[..8])?;
        prop_assert_eq!(header, RequestHeader { xid: req.xid, op_type: req.op.code() });
        // Trailing bytes are ignored, as ZooKeeper does.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[1, 2, 3]);
        prop_assert_eq!(&Request::decode(&padded)?, &req);
        // Through a frame.
        let mut framed = Vec::new();
        frame::write_frame(&mut framed, &bytes);
        prop_assert_eq!(frame::check(&framed, frame::DEFAULT_MAX_PACKET), Ok(Some(bytes.len())));
        prop_assert_eq!(&framed[4..], &bytes[..]);
    }

    /// Truncating a request anywhere is an error, never a different request.
    #[test]
    fn truncated_requests_fail(req in request()) {
        let bytes = req.encode();
        for cut in 0..bytes.len() {
            prop_assert!(Request::decode(&bytes[..cut]).is_err(), "cut at {} of {:?}", cut, req);
        }
    }

    #[test]
    fn rt_response((op, body) in response(), xid in any::<i32>(), zxid in any::<i64>()) {
        let bytes = encode_reply(xid, zxid, ErrorCode::Ok, &body);
        let (h, rest) = decode_reply_header(&bytes)?;
        prop_assert_eq!(h, ReplyHeader { xid, zxid, err: 0 });
        prop_assert_eq!(&ResponseBody::decode(op, rest)?, &body);
        for cut in 0..rest.len() {
            prop_assert!(ResponseBody::decode(op, &rest[..cut]).is_err());
        }
    }

    /// A failed reply is the header alone, whatever body was passed.
    #[test]
    fn error_replies_have_no_body((_op, body) in response(), xid in any::<i32>(), zxid in any::<i64>(), err in error_code()) {
        prop_assume!(err != ErrorCode::Ok);
        let bytes = encode_reply(xid, zxid, err, &body);
        prop_assert_eq!(bytes.len(), 16);
        let (h, rest) = decode_reply_header(&bytes)?;
        prop_assert_eq!(h, ReplyHeader { xid, zxid, err: err.code() });
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn rt_notification(type_ in any::<i32>(), state in any::<i32>(), path in s(), zxid in any::<i64>()) {
        let ev = WatcherEvent { type_, state, path };
        let bytes = encode_notification_with_zxid(&ev, zxid);
        let (h, rest) = decode_reply_header(&bytes)?;
        prop_assert_eq!(h, ReplyHeader { xid: -1, zxid, err: 0 });
        prop_assert_eq!(&WatcherEvent::decode(rest)?, &ev);
        let (h, _) = decode_reply_header(&encode_notification(&ev))?;
        prop_assert_eq!(h.zxid, -1);
    }

    // -----------------------------------------------------------------------
    // Hostile input
    // -----------------------------------------------------------------------

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..256)) {
        if let Ok(req) = Request::decode(&buf) {
            prop_assert_eq!(Request::decode(&req.encode())?, req);
        }
        if let Ok(c) = ConnectRequest::decode(&buf) {
            prop_assert_eq!(ConnectRequest::decode(&c.encode())?, c);
        }
        let _ = ConnectResponse::decode(&buf);
        let _ = decode_reply_header(&buf);
        for op in OpCode::ALL {
            if let Ok(body) = ResponseBody::decode(op, &buf) {
                let bytes = encode_reply(0, 0, ErrorCode::Ok, &body);
                prop_assert_eq!(ResponseBody::decode(op, &bytes[16..])?, body);
            }
        }
        for max in [0, 16, frame::DEFAULT_MAX_PACKET] {
            if let Ok(Some(len)) = frame::check(&buf, max) {
                prop_assert!(len <= max && buf.len() >= 4 + len);
            }
        }
    }

    /// Arbitrary bytes after a valid header reach every body decoder.
    #[test]
    fn arbitrary_bodies_never_panic(xid in any::<i32>(), op in proptest::sample::select(OpCode::ALL.to_vec()), body in vec(any::<u8>(), 0..128)) {
        let mut buf = RequestHeader { xid, op_type: op.code() }.encode();
        buf.extend_from_slice(&body);
        if let Ok(req) = Request::decode(&buf) {
            prop_assert_eq!(req.op, op);
            prop_assert_eq!(Request::decode(&req.encode())?, req);
        }
    }

    /// Valid requests with a few bytes overwritten: decoding may fail but
    /// never panics, and what decodes re-encodes to an equal request.
    #[test]
    fn mutated_requests_never_panic(req in request(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = req.encode();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(req) = Request::decode(&bytes) {
            prop_assert_eq!(Request::decode(&req.encode())?, req);
        }
    }
}

// ---------------------------------------------------------------------------
// Every opcode
// ---------------------------------------------------------------------------

/// Every opcode a client may send decodes (with an all-default body); the
/// reserved ones are refused.
#[test]
fn every_opcode_is_decoded_or_refused() {
    for op in OpCode::ALL {
        let mut buf = RequestHeader {
            xid: 7,
            op_type: op.code(),
        }
        .encode();
        let body: Vec<u8> = match op {
            // Multi bodies: just the "done" header.
            OpCode::Multi | OpCode::MultiRead => MultiHeader {
                type_: -1,
                done: true,
                err: -1,
            }
            .encode(),
            // Long enough for the largest default record (setWatches2).
            _ => vec![0; 64],
        };
        buf.extend_from_slice(&body);
        match op {
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                assert_eq!(
                    Request::decode(&buf),
                    Err(DecodeError::UnknownOpCode(op.code())),
                    "{op:?}"
                );
            }
            _ => {
                let req = Request::decode(&buf).unwrap_or_else(|e| panic!("{op:?}: {e}"));
                assert_eq!(req.op, op);
                assert_eq!(req.xid, 7);
                assert_eq!(Request::decode(&req.encode()).unwrap(), req);
            }
        }
    }
    assert_eq!(
        Request::decode(&[0, 0, 0, 1, 0, 0, 0, 10]),
        Err(DecodeError::UnknownOpCode(10))
    );
}

#[test]
fn set_watches_vs_set_watches2() {
    let w = SetWatches2 {
        relative_zxid: 0x10,
        data_watches: vec!["/d".into()],
        exist_watches: vec!["/e".into()],
        child_watches: vec!["/c".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
    };
    // setWatches2 carries all six fields.
    let req = Request {
        xid: -8,
        op: OpCode::SetWatches2,
        body: RequestBody::SetWatches(w.clone()),
    };
    let bytes = req.encode();
    assert_eq!(&bytes[8..], &w.encode()[..]);
    assert_eq!(Request::decode(&bytes).unwrap(), req);

    // setWatches is the four-field record; the persistent lists are not on
    // the wire and decode as empty.
    let req = Request {
        xid: -8,
        op: OpCode::SetWatches,
        body: RequestBody::SetWatches(w.clone()),
    };
    let bytes = req.encode();
    let old = SetWatches {
        relative_zxid: 0x10,
        data_watches: vec!["/d".into()],
        exist_watches: vec!["/e".into()],
        child_watches: vec!["/c".into()],
    };
    assert_eq!(&bytes[8..], &old.encode()[..]);
    let back = Request::decode(&bytes).unwrap();
    assert_eq!(
        back.body,
        RequestBody::SetWatches(SetWatches2 {
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
            ..w
        })
    );
}

#[test]
fn multi_op_kinds() {
    let read = MultiOp::GetData(GetDataRequest {
        path: "/a".into(),
        watch: false,
    });
    let write = MultiOp::Check(CheckVersionRequest {
        path: "/a".into(),
        version: 1,
    });
    assert!(read.is_read());
    assert!(!write.is_read());
    assert_eq!(read.op(), OpCode::GetData);
    assert_eq!(write.path(), "/a");
}

#[test]
fn multi_refuses_bad_op_types() {
    let mut buf = RequestHeader {
        xid: 1,
        op_type: OpCode::Multi.code(),
    }
    .encode();
    MultiHeader {
        type_: OpCode::Exists.code(),
        done: false,
        err: -1,
    }
    .write(&mut buf);
    ExistsRequest {
        path: "/a".into(),
        watch: false,
    }
    .write(&mut buf);
    MultiHeader {
        type_: -1,
        done: true,
        err: -1,
    }
    .write(&mut buf);
    assert!(matches!(Request::decode(&buf), Err(DecodeError::Invalid(_))));

    let mut buf = RequestHeader {
        xid: 1,
        op_type: OpCode::Multi.code(),
    }
    .encode();
    MultiHeader {
        type_: 999,
        done: false,
        err: -1,
    }
    .write(&mut buf);
    assert_eq!(Request::decode(&buf), Err(DecodeError::UnknownOpCode(999)));

    // No "done" header: truncated.
    let mut buf = RequestHeader {
        xid: 1,
        op_type: OpCode::Multi.code(),
    }
    .encode();
    MultiHeader {
        type_: OpCode::Delete.code(),
        done: false,
        err: -1,
    }
    .write(&mut buf);
    DeleteRequest {
        path: "/a".into(),
        version: -1,
    }
    .write(&mut buf);
    assert!(matches!(
        Request::decode(&buf),
        Err(DecodeError::Truncated { .. })
    ));
}

/// A failed multi as ZooKeeper reports it: rolled-back ops as `Ok`, the
/// failing one with its code, the rest never attempted.
#[test]
fn failed_multi_reply_bytes() {
    let body = ResponseBody::Multi(vec![
        MultiResult::Error(ErrorCode::Ok),
        MultiResult::Error(ErrorCode::NoNode),
        MultiResult::Error(ErrorCode::RuntimeInconsistency),
    ]);
    let bytes = encode_reply(5, 9, ErrorCode::Ok, &body);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0, 0, 0, 5][..], &[0, 0, 0, 0, 0, 0, 0, 9], &[0, 0, 0, 0],       // reply header
        &[0xff, 0xff, 0xff, 0xff], &[0], &[0, 0, 0, 0], &[0, 0, 0, 0],      // error, Ok
        &[0xff, 0xff, 0xff, 0xff], &[0], &[0xff, 0xff, 0xff, 0x9b], &[0xff, 0xff, 0xff, 0x9b], // NoNode
        &[0xff, 0xff, 0xff, 0xff], &[0], &[0xff, 0xff, 0xff, 0xfe], &[0xff, 0xff, 0xff, 0xfe], // RuntimeInconsistency
        &[0xff, 0xff, 0xff, 0xff], &[1], &[0xff, 0xff, 0xff, 0xff],         // done
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(ResponseBody::decode(OpCode::Multi, &bytes[16..]).unwrap(), body);
}

// ---------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------

const HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];

#[test]
fn huge_lengths_are_refused_before_allocating() {
    // A vector of 2^31-1 strings in 4 bytes of packet.
    let mut buf = HUGE.to_vec();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        GetChildrenResponse::decode(&buf),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 4
        })
    );
    // A vector of 2^31-1 ACLs.
    let mut buf = Vec::new();
    proto::jute::write_string(&mut buf, "/a");
    proto::jute::write_buffer(&mut buf, b"");
    buf.extend_from_slice(&HUGE);
    buf.extend_from_slice(&[0; 12]);
    assert_eq!(
        CreateRequest::decode(&buf),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 12
        })
    );
    // A buffer and a string of 2^31-1 bytes.
    let mut buf = HUGE.to_vec();
    buf.extend_from_slice(&[0; 80]);
    assert_eq!(
        GetDataResponse::decode(&buf),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 80
        })
    );
    assert_eq!(
        CreateResponse::decode(&HUGE),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 0
        })
    );
    // Inside a whole request (setWatches2 from a hostile client).
    let mut buf = RequestHeader {
        xid: -8,
        op_type: OpCode::SetWatches2.code(),
    }
    .encode();
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&HUGE);
    assert_eq!(
        Request::decode(&buf),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 0
        })
    );
    // A vector length that fits the bytes left but not at 4 bytes per element.
    let buf = [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        GetChildrenResponse::decode(&buf),
        Err(DecodeError::LengthTooLarge { len: 3, remaining: 8 })
    );
}

#[test]
fn minus_one_lengths_decode_as_empty() {
    let null = [0xff, 0xff, 0xff, 0xff];
    let mut buf = Vec::new();
    buf.extend_from_slice(&null); // path
    buf.extend_from_slice(&null); // data
    buf.extend_from_slice(&null); // acl
    buf.extend_from_slice(&[0, 0, 0, 1]); // flags
    assert_eq!(
        CreateRequest::decode(&buf).unwrap(),
        CreateRequest {
            path: String::new(),
            // znode data keeps null apart from empty (kazoo's null-data tests)
            data: None,
            acl: vec![],
            flags: 1
        }
    );
    assert_eq!(
        GetChildrenResponse::decode(&null).unwrap(),
        GetChildrenResponse { children: vec![] }
    );
    let mut buf = null.to_vec();
    buf.extend_from_slice(&Stat::default().encode());
    assert_eq!(GetDataResponse::decode(&buf).unwrap(), GetDataResponse::default());
    // A null string inside a vector.
    let buf = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        GetChildrenResponse::decode(&buf).unwrap(),
        GetChildrenResponse {
            children: vec![String::new()]
        }
    );
    // Other negative lengths are malformed.
    assert_eq!(
        CreateResponse::decode(&[0xff, 0xff, 0xff, 0xfe]),
        Err(DecodeError::NegativeLength(-2))
    );
    assert_eq!(
        GetChildrenResponse::decode(&[0x80, 0, 0, 0]),
        Err(DecodeError::NegativeLength(i32::MIN))
    );
    // Nulls re-encode as empty (length 0), except znode data, which stays
    // null (-1).
    let c = CreateRequest::decode(&[&null[..], &null, &null, &[0, 0, 0, 0]].concat()).unwrap();
    assert_eq!(
        c.encode(),
        [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn invalid_utf8_is_refused() {
    assert_eq!(
        CreateResponse::decode(&[0, 0, 0, 2, 0xc3, 0x28]),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn frame_edges() {
    let mut out = Vec::new();
    frame::write_frame(&mut out, &[9; 5]);
    assert_eq!(out, [0, 0, 0, 5, 9, 9, 9, 9, 9]);
    assert_eq!(frame::check(&out, 5), Ok(Some(5)));
    assert_eq!(
        frame::check(&out, 4),
        Err(FrameError::TooLarge { len: 5, max: 4 })
    );
    assert_eq!(frame::check(&out[..8], 5), Ok(None));
    assert_eq!(
        frame::check(&HUGE, frame::DEFAULT_MAX_PACKET),
        Err(FrameError::TooLarge {
            len: i32::MAX as usize,
            max: frame::DEFAULT_MAX_PACKET
        })
    );
    assert_eq!(
        frame::check(&[0x80, 0, 0, 0], 100),
        Err(FrameError::Negative(i32::MIN))
    );
    assert_eq!(frame::check(&[0, 0, 0, 0], 100), Ok(Some(0)));
    assert_eq!(frame::peek_len(&[0, 0, 1]), None);
}

// ---------------------------------------------------------------------------
// Golden bytes, computed by hand from zookeeper.jute and ClientCnxn
// ---------------------------------------------------------------------------

/// The first packet of a new session from a 3.9 Java client
/// (`ClientCnxn.SendThread.primeConnection` with a 30 s timeout):
/// `ConnectRequest(0, lastZxid=0, 30000, sessionId=0, new byte[16], readOnly=false)`
/// behind the 4-byte length `Packet.createBB` writes.
#[test]
fn golden_connect_request() {
    #[rustfmt::skip]
    let wire: [u8; 49] = [
        0x00, 0x00, 0x00, 0x2d,                         // frame length 45
        0x00, 0x00, 0x00, 0x00,                         // protocolVersion 0
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // lastZxidSeen 0
        0x00, 0x00, 0x75, 0x30,                         // timeOut 30000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // sessionId 0
        0x00, 0x00, 0x00, 0x10,                         // passwd length 16
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // passwd
        0x00,                                           // readOnly false
    ];
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 30000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    assert_eq!(frame::check(&wire, frame::DEFAULT_MAX_PACKET), Ok(Some(45)));
    assert_eq!(ConnectRequest::decode(&wire[4..]).unwrap(), req);
    let mut framed = Vec::new();
    frame::write_frame(&mut framed, &req.encode());
    assert_eq!(framed, wire);

    // A pre-3.4 client leaves the flag out.
    let old = ConnectRequest::decode(&wire[4..48]).unwrap();
    assert_eq!(old.read_only, None);
    assert_eq!(old.encode(), wire[4..48]);
}

/// The server's answer: `ConnectResponse(0, 30000, 0x100000abc, passwd, false)`.
#[test]
fn golden_connect_response() {
    let rsp = ConnectResponse {
        protocol_version: 0,
        timeout: 30000,
        session_id: 0x1_0000_0abc,
        passwd: vec![0xaa; 16],
        read_only: Some(false),
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x00, 0x00, 0x00, 0x00][..],                         // protocolVersion
        &[0x00, 0x00, 0x75, 0x30],                             // timeOut
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0a, 0xbc],     // sessionId
        &[0x00, 0x00, 0x00, 0x10], &[0xaa; 16],                // passwd
        &[0x00],                                               // readOnly
    ]
    .concat();
    assert_eq!(rsp.encode(), expected);
    assert_eq!(ConnectResponse::decode(&expected).unwrap(), rsp);
    // Without the flag (for a client that sent none).
    let old = ConnectResponse {
        read_only: None,
        ..rsp
    };
    assert_eq!(old.encode(), expected[..36]);
}

/// `zk.create("/a", "x".getBytes(), OPEN_ACL_UNSAFE, PERSISTENT)` as the
/// first request of a session (xid 1).
#[test]
fn golden_create_request() {
    #[rustfmt::skip]
    let wire: Vec<u8> = [
        &[0x00, 0x00, 0x00, 0x32][..],                           // frame length 50
        &[0x00, 0x00, 0x00, 0x01],                               // xid 1
        &[0x00, 0x00, 0x00, 0x01],                               // type create
        &[0x00, 0x00, 0x00, 0x02], b"/a",                        // path
        &[0x00, 0x00, 0x00, 0x01], b"x",                         // data
        &[0x00, 0x00, 0x00, 0x01],                               // acl: 1 entry
        &[0x00, 0x00, 0x00, 0x1f],                               //   perms ALL
        &[0x00, 0x00, 0x00, 0x05], b"world",                     //   scheme
        &[0x00, 0x00, 0x00, 0x06], b"anyone",                    //   id
        &[0x00, 0x00, 0x00, 0x00],                               // flags PERSISTENT
    ]
    .concat();
    let req = Request {
        xid: 1,
        op: OpCode::Create,
        body: RequestBody::Create(CreateRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: create_mode::PERSISTENT,
        }),
    };
    assert_eq!(frame::check(&wire, frame::DEFAULT_MAX_PACKET), Ok(Some(50)));
    assert_eq!(Request::decode(&wire[4..]).unwrap(), req);
    let mut framed = Vec::new();
    frame::write_frame(&mut framed, &req.encode());
    assert_eq!(framed, wire);

    // The reply: ReplyHeader(1, zxid 0x100000002, 0) + CreateResponse("/a").
    let reply = encode_reply(
        1,
        0x1_0000_0002,
        ErrorCode::Ok,
        &ResponseBody::Create(CreateResponse { path: "/a".into() }),
    );
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x00, 0x00, 0x00, 0x01][..],
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02],
        &[0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x02], b"/a",
    ]
    .concat();
    assert_eq!(reply, expected);
    // NodeExists: header only.
    let reply = encode_reply(
        1,
        0x1_0000_0002,
        ErrorCode::NodeExists,
        &ResponseBody::Create(CreateResponse { path: "/a".into() }),
    );
    assert_eq!(reply[..12], expected[..12]);
    assert_eq!(reply[12..], [0xff, 0xff, 0xff, 0x92]);
}

/// addWatch is answered with `ErrorResponse(0)`, which the Java client reads.
#[test]
fn golden_add_watch_reply() {
    let reply = encode_reply(3, 7, ErrorCode::Ok, &ResponseBody::AddWatch);
    assert_eq!(
        reply,
        [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        ResponseBody::decode(OpCode::AddWatch, &reply[16..]).unwrap(),
        ResponseBody::AddWatch
    );
    assert!(ResponseBody::decode(OpCode::AddWatch, &[]).is_err());
}

/// reconfig is answered with a `GetDataResponse` (the new config).
#[test]
fn reconfig_reply_is_get_data() {
    let body = ResponseBody::GetData(GetDataResponse {
        data: Some(b"server.1=a:1:2".to_vec()),
        stat: Stat::default(),
    });
    let reply = encode_reply(3, 7, ErrorCode::Ok, &body);
    assert_eq!(
        ResponseBody::decode(OpCode::Reconfig, &reply[16..]).unwrap(),
        body
    );
}

/// A NodeCreated notification as ZooKeeper 3.9 sends it.
#[test]
fn golden_notification() {
    let ev = WatcherEvent {
        type_: 1,
        state: 3,
        path: "/a".into(),
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff][..],                   // xid -1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05], // zxid 5
        &[0x00, 0x00, 0x00, 0x00],                       // err 0
        &[0x00, 0x00, 0x00, 0x01],                       // NodeCreated
        &[0x00, 0x00, 0x00, 0x03],                       // SyncConnected
        &[0x00, 0x00, 0x00, 0x02], b"/a",
    ]
    .concat();
    assert_eq!(encode_notification_with_zxid(&ev, 5), expected);
    let old = encode_notification(&ev);
    assert_eq!(old[4..12], [0xff; 8]);
    assert_eq!(old[12..], expected[12..]);
}
