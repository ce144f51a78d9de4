//! One record on disk: a frame `length | crc32 | appended_at_ms | payload`.
//!
//! | offset | size | field                                                            |
//! |-------:|-----:|------------------------------------------------------------------|
//! | 0      | 4    | payload length `n`, `u32` little-endian                          |
//! | 4      | 4    | CRC-32 (IEEE 802.3) of bytes 0..4, 8..16 and the payload, LE     |
//! | 8      | 8    | append time, milliseconds since the Unix epoch, `u64` LE         |
//! | 16     | n    | payload                                                          |
//!
//! The checksum covers the length and the time as well as the payload, so a torn write, a
//! zero-filled tail (what some file systems show after a crash) or a flipped byte anywhere in the
//! frame is detected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes in a frame header (before the payload).
pub const FRAME_HEADER_LEN: u64 = 16;

/// A record read back from the log.
///
/// ```
/// use livetranslate_agent::metrics::wal::Record;
/// use std::time::UNIX_EPOCH;
///
/// let r = Record { seq: 7, appended_at: UNIX_EPOCH, payload: b"batch".to_vec() };
/// assert_eq!(r.seq, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number: 0 for the first record ever appended to this directory, then +1 per
    /// record. Never reused, also not after a crash.
    pub seq: u64,
    /// When it was appended (wall clock, millisecond precision).
    pub appended_at: SystemTime,
    /// The bytes given to `append`.
    pub payload: Vec<u8>,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: u32,
    crc: u32,
    pub(crate) appended_ms: u64,
}

impl FrameHeader {
    /// Decodes the first [`FRAME_HEADER_LEN`] bytes of a frame.
    pub(crate) fn parse(b: &[u8; FRAME_HEADER_LEN as usize]) -> FrameHeader {
        let mut len = [0u8; 4];
        let mut crc = [0u8; 4];
        let mut ms = [0u8; 8];
        len.copy_from_slice(&b[0..4]);
        crc.copy_from_slice(&b[4..8]);
        ms.copy_from_slice(&b[8..16]);
        FrameHeader {
            len: u32::from_le_bytes(len),
            crc: u32::from_le_bytes(crc),
            appended_ms: u64::from_le_bytes(ms),
        }
    }

    /// Header plus payload.
    pub(crate) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN + u64::from(self.len)
    }

    /// Whether `payload` (of `self.len` bytes) is the one this header was written for.
    pub(crate) fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize
            && checksum(self.len, self.appended_ms, payload) == self.crc
    }
}

fn checksum(len: u32, appended_ms: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&appended_ms.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends the frame of `payload` to `buf`. The caller has checked that the length fits a `u32`.
pub(crate) fn encode(buf: &mut Vec<u8>, payload: &[u8], appended_ms: u64) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.reserve(FRAME_HEADER_LEN as usize + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(len, appended_ms, payload).to_le_bytes());
    buf.extend_from_slice(&appended_ms.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Milliseconds since the Unix epoch (0 for earlier times).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(buf: &[u8]) -> FrameHeader {
        let mut h = [0u8; 16];
        h.copy_from_slice(&buf[..16]);
        FrameHeader::parse(&h)
    }

    #[test]
    fn encode_parse_round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, b"hello", 1_700_000_000_123);
        assert_eq!(buf.len(), 16 + 5);
        let h = header(&buf);
        assert_eq!(h.len, 5);
        assert_eq!(h.appended_ms, 1_700_000_000_123);
        assert_eq!(h.frame_len(), 21);
        assert!(h.matches(&buf[16..]));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, b"some payload bytes", 42);
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x5a;
            let h = header(&b);
            let payload = b.get(16..16 + h.len as usize).unwrap_or(&[]);
            assert!(!h.matches(payload), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn zero_filled_frame_is_invalid() {
        let h = header(&[0u8; 16]);
        assert!(!h.matches(&[]));
    }

    #[test]
    fn empty_payload_is_a_valid_record() {
        let mut buf = Vec::new();
        encode(&mut buf, b"", 9);
        assert!(header(&buf).matches(&[]));
    }

    #[test]
    fn unix_ms_round_trip_and_pre_epoch() {
        let t = from_unix_ms(1_234_567);
        assert_eq!(unix_ms(t), 1_234_567);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
