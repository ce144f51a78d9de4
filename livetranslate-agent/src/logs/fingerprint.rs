//! File identity: device + inode, checked against a checksum of the file's first bytes, so
//! that a renamed file keeps its identity, a reused inode or a rewritten file does not, and a
//! copytruncate copy can be recognised by its head.

use std::fs::File;
use std::io;

use serde::{Deserialize, Serialize};

/// How many leading bytes the head checksum covers (fewer while the file is shorter).
pub const HEAD_BYTES: u64 = 256;

/// The identity of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Bytes covered by `head_hash`.
    pub head_len: u64,
    /// FNV-1a of the first `head_len` bytes.
    pub head_hash: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads at `offset` without moving any file cursor (the file is shared by its readers).
#[cfg(unix)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Reads at `offset` (elsewhere: through the shared cursor).
#[cfg(not(unix))]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read(buf)
}

/// Reads up to `len` bytes from the start of `file`.
fn read_head(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut got = 0;
    while got < buf.len() {
        match read_at(file, &mut buf[got..], got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The device and inode of a file's metadata: the identity the agent tracks files by
/// (`(0, 0)` where the platform has none).
#[cfg(unix)]
pub fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// The device and inode of a file's metadata (none on this platform).
#[cfg(not(unix))]
pub fn dev_ino(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

impl Fingerprint {
    /// The fingerprint of an open file, hashing up to [`HEAD_BYTES`].
    pub fn of(file: &File) -> io::Result<Fingerprint> {
        let meta = file.metadata()?;
        let (dev, ino) = dev_ino(&meta);
        let head = read_head(file, HEAD_BYTES)?;
        Ok(Fingerprint {
            dev,
            ino,
            head_len: head.len() as u64,
            head_hash: fnv1a(&head),
        })
    }

    /// Device and inode of an open file, cheaply.
    pub fn dev_ino(file: &File) -> io::Result<(u64, u64)> {
        Ok(dev_ino(&file.metadata()?))
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken over.
    pub fn head_matches(&self, file: &File) -> io::Result<bool> {
        let head = read_head(file, self.head_len)?;
        Ok(head.len() as u64 == self.head_len && fnv1a(&head) == self.head_hash)
    }

    /// Whether `other` is the same file: same device and inode, and heads that agree over
    /// the shorter of the two checksummed prefixes (a growing small file stays itself).
    pub fn same_file(&self, other: &Fingerprint, file: &File) -> io::Result<bool> {
        if (self.dev, self.ino) != (other.dev, other.ino) {
            return Ok(false);
        }
        if self.head_len == other.head_len {
            return Ok(self.head_hash == other.head_hash);
        }
        let shorter = if self.head_len < other.head_len {
            self
        } else {
            other
        };
        shorter.head_matches(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn growing_file_keeps_identity_rewrite_does_not() {
        let dir = std::env::temp_dir().join(format!("fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.log");
        std::fs::write(&path, b"first line\n").expect("write");
        let f = File::open(&path).expect("open");
        let small = Fingerprint::of(&f).expect("fp");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append")
            .write_all(&[b'x'; 400])
            .expect("grow");
        let big = Fingerprint::of(&f).expect("fp");
        assert_eq!(big.head_len, HEAD_BYTES);
        assert!(small.same_file(&big, &f).expect("cmp"));
        std::fs::write(&path, b"other content entirely\n").expect("rewrite");
        let rewritten = Fingerprint::of(&f).expect("fp");
        assert!(!small.same_file(&rewritten, &f).expect("cmp"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
