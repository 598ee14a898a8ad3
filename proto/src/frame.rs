//! Length-prefixed framing: a 4-byte big-endian length, then that many
//! bytes. The length is checked against the maximum packet size before
//! anything is allocated (ZooKeeper's `jute.maxbuffer`).

use thiserror::Error;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_PACKET: usize = 0xfffff;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("packet length {len} exceeds the limit of {max} bytes (jute.maxbuffer)")]
    TooLarge { len: usize, max: usize },
    #[error("negative packet length {0}")]
    Negative(i32),
}

/// Looks at the start of `buf`: `Ok(None)` if a whole frame is not there
/// yet, `Ok(Some(len))` if the payload of `len` bytes follows the 4-byte
/// prefix in full, or an error if the announced length is illegal.
pub fn check(buf: &[u8], max_packet: usize) -> Result<Option<usize>, FrameError> {
    let Some(len) = peek_len(buf) else {
        return Ok(None);
    };
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    let len = len as usize;
    if len > max_packet {
        return Err(FrameError::TooLarge { len, max: max_packet });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(len))
}

/// The raw length prefix, if four bytes are available.
pub fn peek_len(buf: &[u8]) -> Option<i32> {
    buf.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Appends `payload` with its length prefix to `out`.
pub fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_frames_ask_for_more() {
        assert_eq!(check(&[], 100), Ok(None));
        assert_eq!(check(&[0, 0, 0], 100), Ok(None));
        assert_eq!(check(&[0, 0, 0, 2, 1], 100), Ok(None));
        assert_eq!(check(&[0, 0, 0, 2, 1, 2], 100), Ok(Some(2)));
    }

    #[test]
    fn oversized_and_negative_lengths_are_refused_before_the_body_arrives() {
        assert_eq!(
            check(&[0, 0, 1, 0], 255),
            Err(FrameError::TooLarge { len: 256, max: 255 })
        );
        assert_eq!(
            check(&[0xff, 0xff, 0xff, 0xff], 255),
            Err(FrameError::Negative(-1))
        );
    }
}
