//! Everything a server does with untrusted bytes before it trusts them:
//! framing, the connect handshake and request decoding. Whatever decodes
//! must re-encode to something that decodes to the same value (decoding
//! ignores trailing bytes and reads null lengths as empty, so values are
//! compared, not bytes), and re-encoding that must give the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::frame;
use proto::jute::Record;
use proto::records::ConnectRequest;
use proto::request::Request;
use proto::response::{decode_reply_header, encode_reply, ResponseBody};
use proto::{ErrorCode, OpCode};

fuzz_target!(|data: &[u8]| {
    for max in [frame::DEFAULT_MAX_PACKET, 64] {
        if let Ok(Some(len)) = frame::check(data, max) {
            assert!(len <= max, "frame of {len} bytes over the limit {max}");
            assert!(
                data.len() >= 4 + len,
                "frame of {len} bytes in a {}-byte buffer",
                data.len()
            );
            decode_packet(&data[4..4 + len]);
        }
    }
    decode_packet(data);

    // Reply bodies (client side), for the opcode named by the first byte.
    if let Some((&first, rest)) = data.split_first() {
        let op = OpCode::ALL[first as usize % OpCode::ALL.len()];
        if let Ok(body) = ResponseBody::decode(op, rest) {
            let bytes = encode_reply(1, 2, ErrorCode::Ok, &body);
            let (_, again) = decode_reply_header(&bytes).expect("reply header");
            assert_eq!(
                ResponseBody::decode(op, again).expect("re-encoded reply decodes"),
                body
            );
        }
    }
});

fn decode_packet(payload: &[u8]) {
    if let Ok(c) = ConnectRequest::decode(payload) {
        let bytes = c.encode();
        let again = ConnectRequest::decode(&bytes).expect("re-encoded connect request decodes");
        assert_eq!(again, c);
        assert_eq!(again.encode(), bytes);
    }
    if let Ok(req) = Request::decode(payload) {
        let bytes = req.encode();
        let again = Request::decode(&bytes).expect("re-encoded request decodes");
        assert_eq!(again, req);
        assert_eq!(again.encode(), bytes);
    }
}
