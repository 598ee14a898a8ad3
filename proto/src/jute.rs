//! Jute, ZooKeeper's serialization: big-endian `int`/`long`, one-byte
//! `boolean`, and length-prefixed `buffer`/`ustring`/`vector` where a length
//! of -1 means null. Nulls decode as empty values, except znode data
//! (`Option<Vec<u8>>`), where ZooKeeper keeps null apart from empty.

use thiserror::Error;

/// Why a record could not be decoded. ZooKeeper closes the connection for a
/// malformed length prefix, request header, connect request or auth packet;
/// a malformed body of any other request is answered with
/// `MARSHALLINGERROR` for that request's xid (the header is the first 8
/// bytes, readable with `RequestHeader` on its own). Which of the two to do
/// is the server's choice.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    #[error("negative length {0} in record")]
    NegativeLength(i32),
    #[error("length {len} exceeds the {remaining} bytes left in the packet")]
    LengthTooLarge { len: usize, remaining: usize },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// A cursor over a packet. Every read checks the remaining length first, so
/// a hostile length can never cause a large allocation.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// Length of a buffer/string/vector; -1 (null) is reported as `None`.
    fn read_len(&mut self, elem_min: usize) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength(len));
        }
        let len = len as usize;
        if len.saturating_mul(elem_min) > self.buf.len() {
            return Err(DecodeError::LengthTooLarge {
                len,
                remaining: self.buf.len(),
            });
        }
        Ok(Some(len))
    }

    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        match self.read_len(1)? {
            None => Ok(Vec::new()),
            Some(n) => Ok(self.take(n)?.to_vec()),
        }
    }

    /// A buffer where null (-1) is kept as `None`.
    pub fn read_nullable_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        match self.read_len(1)? {
            None => Ok(String::new()),
            Some(n) => String::from_utf8(self.take(n)?.to_vec()).map_err(|_| DecodeError::InvalidUtf8),
        }
    }

    pub fn read_vec<T: Field>(&mut self) -> Result<Vec<T>, DecodeError> {
        match self.read_len(T::MIN_ENCODED_LEN)? {
            None => Ok(Vec::new()),
            Some(n) => (0..n).map(|_| T::read_field(self)).collect(),
        }
    }

    /// Fails if bytes are left over after a whole record was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

/// Appends jute encodings to a byte vector.
pub fn write_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

pub fn write_buffer(out: &mut Vec<u8>, v: &[u8]) {
    write_i32(out, v.len() as i32);
    out.extend_from_slice(v);
}

pub fn write_string(out: &mut Vec<u8>, v: &str) {
    write_buffer(out, v.as_bytes());
}

/// A value that can appear as a field of a record: primitives, buffers,
/// strings, vectors and nested records.
pub trait Field: Sized {
    /// Smallest possible encoding, used to reject vector lengths that cannot
    /// fit in the bytes left before allocating.
    const MIN_ENCODED_LEN: usize;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn write_field(&self, out: &mut Vec<u8>);
}

impl Field for i32 {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_i32(out, *self)
    }
}

impl Field for i64 {
    const MIN_ENCODED_LEN: usize = 8;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_i64(out, *self)
    }
}

impl Field for bool {
    const MIN_ENCODED_LEN: usize = 1;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_bool(out, *self)
    }
}

impl Field for String {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_string(out, self)
    }
}

/// `Vec<u8>` is a jute `buffer`, not a vector of bytes.
impl Field for Vec<u8> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_buffer(out, self)
    }
}

/// A nullable `buffer`: znode data, where ZooKeeper keeps null (-1) apart
/// from empty.
impl Field for Option<Vec<u8>> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_nullable_buffer()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        match self {
            Some(b) => write_buffer(out, b),
            None => write_i32(out, -1),
        }
    }
}

impl Field for Vec<String> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_i32(out, self.len() as i32);
        for s in self {
            write_string(out, s);
        }
    }
}

/// A jute record (a `class` in `zookeeper.jute`).
pub trait Record: Sized {
    /// Smallest possible encoding of this record.
    const MIN_LEN: usize;
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn write(&self, out: &mut Vec<u8>);

    /// Decodes a whole packet body that must hold exactly this record.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

impl<T: Record + Field> Field for Vec<T> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec()
    }
    fn write_field(&self, out: &mut Vec<u8>) {
        write_i32(out, self.len() as i32);
        for v in self {
            v.write(out);
        }
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Record for $name {
            const MIN_LEN: usize = 0 $(+ <$ty as $crate::jute::Field>::MIN_ENCODED_LEN)*;
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok($name { $($field: <$ty as $crate::jute::Field>::read_field(r)?),* })
            }
            #[allow(unused_variables)]
            fn write(&self, out: &mut Vec<u8>) {
                $(<$ty as $crate::jute::Field>::write_field(&self.$field, out);)*
            }
        }

        impl $crate::jute::Field for $name {
            const MIN_ENCODED_LEN: usize = <$name as $crate::jute::Record>::MIN_LEN;
            fn read_field(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                <$name as $crate::jute::Record>::read(r)
            }
            fn write_field(&self, out: &mut Vec<u8>) {
                <$name as $crate::jute::Record>::write(self, out)
            }
        }
    };
}
