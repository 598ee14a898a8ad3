//! Hostile lengths are refused before anything is allocated for them: a
//! counting allocator records the largest allocation made on this thread
//! while decoding packets that announce 2^31-1 elements or bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proto::jute::{DecodeError, Record};
use proto::records::*;
use proto::request::Request;
use proto::response::ResponseBody;
use proto::OpCode;

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let v = f();
    (v, LARGEST.with(|l| l.get()))
}

const HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];

fn too_large<T>(remaining: usize) -> Result<T, DecodeError> {
    Err(DecodeError::LengthTooLarge {
        len: i32::MAX as usize,
        remaining,
    })
}

#[test]
fn hostile_lengths_allocate_nothing_large() {
    // Vector of strings.
    let buf = [&HUGE[..], &[0; 60]].concat();
    let (r, big) = largest_allocation(|| GetChildrenResponse::decode(&buf));
    assert_eq!(r, too_large(60));
    assert!(big < 1024, "allocated {big} bytes");

    // Vector of records (ACLs) inside a request.
    let mut buf = RequestHeader {
        xid: 1,
        op_type: OpCode::SetAcl.code(),
    }
    .encode();
    proto::jute::write_string(&mut buf, "/a");
    buf.extend_from_slice(&HUGE);
    buf.extend_from_slice(&[0; 60]);
    let (r, big) = largest_allocation(|| Request::decode(&buf));
    assert_eq!(r, too_large(60));
    assert!(big < 1024, "allocated {big} bytes");

    // Buffer.
    let buf = [&HUGE[..], &[0; 60]].concat();
    let (r, big) = largest_allocation(|| ResponseBody::decode(OpCode::GetData, &buf));
    assert_eq!(r, too_large(60));
    assert!(big < 1024, "allocated {big} bytes");

    // String.
    let (r, big) = largest_allocation(|| CreateResponse::decode(&HUGE));
    assert_eq!(r, too_large(0));
    assert!(big < 1024, "allocated {big} bytes");

    // The password buffer of a connect request.
    let buf = [&[0; 24][..], &HUGE].concat();
    let (r, big) = largest_allocation(|| ConnectRequest::decode(&buf));
    assert_eq!(r, too_large(0));
    assert!(big < 1024, "allocated {big} bytes");

    // A vector length that fits the packet when counted in bytes but not in
    // elements: 1000 strings announced in 1000 bytes.
    let buf = [&[0, 0, 0x03, 0xe8][..], &[0; 1000]].concat();
    let (r, big) = largest_allocation(|| GetChildrenResponse::decode(&buf));
    assert_eq!(
        r,
        Err(DecodeError::LengthTooLarge {
            len: 1000,
            remaining: 1000
        })
    );
    assert!(big < 1024, "allocated {big} bytes");
}
