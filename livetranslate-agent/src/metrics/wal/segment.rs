//! Segment files: names, the 16-byte header, listing a directory, and reading frames from a
//! segment without ever reading past a given end (the bytes being written by the appender).
//!
//! A segment is named by the sequence number of its first record, zero-padded to 20 digits, with
//! the extension `.seg` (`00000000000000001234.seg`). Its header is the magic `LTWALSEG`, the
//! format version (`u32` LE, currently 1) and a CRC-32 of those 12 bytes (`u32` LE), so that a
//! damaged version field reads as damage rather than as another version; frames follow back to
//! back (see [`record`](super::record)). A frame never spans two segments.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::dir::sync_dir;
use super::error::WalError;
use super::record::{FrameHeader, FRAME_HEADER_LEN};

/// Bytes in a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// The first eight bytes of every segment.
pub(crate) const MAGIC: &[u8; 8] = b"LTWALSEG";
/// The format version written and read by this code.
pub(crate) const VERSION: u32 = 1;
const EXTENSION: &str = "seg";
const READ_BUFFER: usize = 64 << 10;

/// The file of the segment whose first record is `base`.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.{EXTENSION}"))
}

/// The base sequence number in a segment file name, or `None` for any other file.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, by base sequence number.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_name) {
            if entry.file_type()?.is_file() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// The header every segment starts with.
pub(crate) fn header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Creates the segment `base` in `dir`, holding only its header, and returns it open for
/// appending. With `sync`, the file and the directory entry are made durable first.
pub(crate) fn create(dir: &Path, base: u64, sync: bool) -> Result<File, WalError> {
    let path = segment_path(dir, base);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(WalError::io("create", &path))?;
    f.write_all(&header())
        .map_err(WalError::io("write", &path))?;
    if sync {
        f.sync_data().map_err(WalError::io("fsync", &path))?;
        sync_dir(dir)?;
    }
    Ok(f)
}

/// What a segment's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// A segment of this format.
    Valid,
    /// Too short or not our magic: unreadable.
    Corrupt,
    /// Our magic, another version.
    Version(u32),
}

/// Checks a segment header.
pub(crate) fn check_header(bytes: &[u8]) -> HeaderCheck {
    if bytes.len() < SEGMENT_HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return HeaderCheck::Corrupt;
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[12..16]);
    if crc32fast::hash(&bytes[..12]) != u32::from_le_bytes(crc) {
        return HeaderCheck::Corrupt;
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    match u32::from_le_bytes(v) {
        VERSION => HeaderCheck::Valid,
        other => HeaderCheck::Version(other),
    }
}

/// The outcome of reading one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole frame whose checksum matches; the payload is in the caller's buffer.
    Valid(FrameHeader),
    /// Fewer bytes than a frame before the end, a length running past the end, or a checksum
    /// mismatch.
    Invalid,
}

/// Reads frames of one segment file through a small buffer, never past the `end` each call is
/// given, so that bytes still being written are never seen.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    file: File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
}

impl SegmentReader {
    pub(crate) fn new(file: File) -> SegmentReader {
        SegmentReader {
            file,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Fills `out` with the bytes at `off`; the caller guarantees `off + out.len() <= end`.
    fn read_exact_at(&mut self, off: u64, end: u64, out: &mut [u8]) -> io::Result<()> {
        let len = out.len() as u64;
        if off >= self.buf_start && off + len <= self.buf_start + self.buf.len() as u64 {
            let s = (off - self.buf_start) as usize;
            out.copy_from_slice(&self.buf[s..s + out.len()]);
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(off))?;
        if out.len() >= READ_BUFFER {
            self.buf.clear();
            return self.file.read_exact(out);
        }
        let want = (end - off).min(READ_BUFFER as u64) as usize;
        self.buf.resize(want, 0);
        self.buf_start = off;
        if let Err(e) = self.file.read_exact(&mut self.buf) {
            self.buf.clear();
            return Err(e);
        }
        out.copy_from_slice(&self.buf[..out.len()]);
        Ok(())
    }

    /// Reads the segment header, if `end` leaves room for one.
    pub(crate) fn read_header(&mut self, end: u64) -> io::Result<HeaderCheck> {
        if end < SEGMENT_HEADER_LEN {
            return Ok(HeaderCheck::Corrupt);
        }
        let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
        match self.read_exact_at(0, end, &mut h) {
            Ok(()) => Ok(check_header(&h)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(HeaderCheck::Corrupt),
            Err(e) => Err(e),
        }
    }

    /// Reads the header of the frame at `off`, if `end` leaves room for one.
    fn read_frame_header(&mut self, off: u64, end: u64) -> io::Result<Option<FrameHeader>> {
        if end.saturating_sub(off) < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; FRAME_HEADER_LEN as usize];
        match self.read_exact_at(off, end, &mut h) {
            Ok(()) => Ok(Some(FrameHeader::parse(&h))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads and checks the frame at `off`; its payload goes to `payload`. An I/O error is an
    /// error; damaged or missing bytes are [`Frame::Invalid`].
    pub(crate) fn read_frame(
        &mut self,
        off: u64,
        end: u64,
        payload: &mut Vec<u8>,
    ) -> io::Result<Frame> {
        let Some(h) = self.read_frame_header(off, end)? else {
            return Ok(Frame::Invalid);
        };
        // The length is checked against the bytes that exist before it decides an allocation.
        if h.frame_len() > end - off {
            return Ok(Frame::Invalid);
        }
        payload.clear();
        payload.resize(h.len as usize, 0);
        match self.read_exact_at(off + FRAME_HEADER_LEN, end, payload) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Frame::Invalid),
            Err(e) => return Err(e),
        }
        Ok(if h.matches(payload) {
            Frame::Valid(h)
        } else {
            Frame::Invalid
        })
    }

    /// How many frames the damaged region `off..end` held, judged by walking the length fields
    /// (a torn or garbled frame counts as one). An estimate: a garbled length ends the walk.
    pub(crate) fn count_frames(&mut self, mut off: u64, end: u64) -> io::Result<u64> {
        let mut n = 0;
        while off < end {
            n += 1;
            match self.read_frame_header(off, end)? {
                Some(h) if h.frame_len() <= end - off => off += h.frame_len(),
                _ => break,
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::wal::record::encode;
    use std::io::Write;

    fn temp_file(tag: &str, bytes: &[u8]) -> (PathBuf, File) {
        let p = std::env::temp_dir().join(format!("walseg-{tag}-{}", std::process::id()));
        let mut f = File::create(&p).expect("create");
        f.write_all(bytes).expect("write");
        (p.clone(), File::open(&p).expect("open"))
    }

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        let p = segment_path(Path::new("d"), 1234);
        assert_eq!(p, Path::new("d/00000000000000001234.seg"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_name(name), Some(1234));
        assert_eq!(parse_name("00000000000000001234.seg.tmp"), None);
        assert_eq!(parse_name("1234.seg"), None);
        assert_eq!(parse_name("0000000000000000123x.seg"), None);
        assert_eq!(parse_name("ack"), None);
        assert_eq!(parse_name(&format!("{:020}.seg", u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_header(&header()), HeaderCheck::Valid);
        assert_eq!(check_header(&header()[..10]), HeaderCheck::Corrupt);
        let mut h = header();
        h[0] = b'X';
        assert_eq!(check_header(&h), HeaderCheck::Corrupt);
        // A damaged version field is damage…
        let mut h = header();
        h[8] = 2;
        assert_eq!(check_header(&h), HeaderCheck::Corrupt);
        // …a consistent header of another version is another version.
        let crc = crc32fast::hash(&h[..12]);
        h[12..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&h), HeaderCheck::Version(2));
        for i in 0..16 {
            let mut h = header();
            h[i] ^= 0x10;
            assert_eq!(check_header(&h), HeaderCheck::Corrupt, "flip at {i}");
        }
    }

    #[test]
    fn reads_frames_up_to_end_only_and_counts_damage() {
        let mut bytes = header().to_vec();
        encode(&mut bytes, b"one", 1);
        let second = bytes.len() as u64;
        encode(&mut bytes, &[7u8; 100_000], 2);
        let third = bytes.len() as u64;
        encode(&mut bytes, b"three", 3);
        let full = bytes.len() as u64;
        let (path, f) = temp_file("frames", &bytes);
        let mut r = SegmentReader::new(f);
        let mut p = Vec::new();
        assert_eq!(r.read_header(full).expect("io"), HeaderCheck::Valid);
        assert!(
            matches!(r.read_frame(16, full, &mut p), Ok(Frame::Valid(h)) if h.appended_ms == 1)
        );
        assert_eq!(p, b"one");
        // The large frame is read around the buffer.
        assert!(matches!(
            r.read_frame(second, full, &mut p),
            Ok(Frame::Valid(_))
        ));
        assert_eq!(p.len(), 100_000);
        // An end that cuts the last frame makes it invalid even though the bytes exist.
        assert_eq!(
            r.read_frame(third, full - 1, &mut p).ok(),
            Some(Frame::Invalid)
        );
        assert!(matches!(
            r.read_frame(third, full, &mut p),
            Ok(Frame::Valid(_))
        ));
        assert_eq!(r.count_frames(16, full).ok(), Some(3));
        assert_eq!(r.count_frames(third, full - 1).ok(), Some(1));
        // An end beyond the file (a segment truncated behind our back) is damage, not an error.
        assert_eq!(
            r.read_frame(full, full + 40, &mut p).ok(),
            Some(Frame::Invalid)
        );
        let _ = std::fs::remove_file(path);
    }
}
