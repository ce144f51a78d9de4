//! The acknowledgement checkpoint: the file `ack`, holding the sequence number below which every
//! record has been acknowledged by the receiver.
//!
//! 24 bytes: the magic `LTWALACK`, the version (`u32` LE, 1), the position (`u64` LE) and a
//! CRC-32 (IEEE) of the 20 bytes before it. Written atomically: `ack.tmp` is written and
//! fsynced, renamed over `ack`, and the directory is fsynced, so a crash leaves either the old
//! or the new position, never a mix.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::dir::sync_dir;
use super::error::WalError;

const FILE: &str = "ack";
const TMP: &str = "ack.tmp";
const MAGIC: &[u8; 8] = b"LTWALACK";
const VERSION: u32 = 1;
const LEN: usize = 24;

/// What the checkpoint file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// Every record below this was acknowledged (0 when there is no usable checkpoint).
    pub(crate) upto: u64,
    /// The file existed but could not be decoded; the log is replayed from its oldest record.
    pub(crate) corrupt: bool,
}

fn encode(upto: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&upto.to_le_bytes());
    let crc = crc32fast::hash(&b[..20]);
    b[20..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<u64> {
    if b.len() != LEN || &b[..8] != MAGIC || b[8..12] != VERSION.to_le_bytes() {
        return None;
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&b[20..]);
    if crc32fast::hash(&b[..20]) != u32::from_le_bytes(crc) {
        return None;
    }
    let mut upto = [0u8; 8];
    upto.copy_from_slice(&b[12..20]);
    Some(u64::from_le_bytes(upto))
}

/// Reads the checkpoint of `dir`. A missing file is position 0; a damaged one is position 0
/// with `corrupt` set (replaying everything re-sends, it never loses).
pub(crate) fn load(dir: &Path) -> Result<Loaded, WalError> {
    let path = dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => Ok(match decode(&bytes) {
            Some(upto) => Loaded {
                upto,
                corrupt: false,
            },
            None => Loaded {
                upto: 0,
                corrupt: true,
            },
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded {
            upto: 0,
            corrupt: false,
        }),
        Err(e) => Err(WalError::io("read", path)(e)),
    }
}

/// Durably replaces the checkpoint of `dir` with `upto`.
pub(crate) fn store(dir: &Path, upto: u64) -> Result<(), WalError> {
    let tmp = dir.join(TMP);
    let path = dir.join(FILE);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(WalError::io("create", &tmp))?;
        f.write_all(&encode(upto))
            .map_err(WalError::io("write", &tmp))?;
        f.sync_all().map_err(WalError::io("fsync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(WalError::io("rename", &tmp))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("walck-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn missing_is_zero_and_store_load_round_trips() {
        let d = dir("rt");
        assert_eq!(
            load(&d).ok(),
            Some(Loaded {
                upto: 0,
                corrupt: false
            })
        );
        store(&d, 12_345).expect("store");
        store(&d, 99).expect("store again");
        assert_eq!(load(&d).ok().map(|l| l.upto), Some(99));
        assert!(!d.join(TMP).exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn damaged_checkpoint_is_zero_and_flagged() {
        let d = dir("bad");
        store(&d, 77).expect("store");
        let mut b = fs::read(d.join(FILE)).expect("read");
        b[14] ^= 1;
        fs::write(d.join(FILE), &b).expect("write");
        assert_eq!(
            load(&d).ok(),
            Some(Loaded {
                upto: 0,
                corrupt: true
            })
        );
        fs::write(d.join(FILE), b"").expect("write");
        assert!(load(&d).map(|l| l.corrupt).unwrap_or(false));
        let _ = fs::remove_dir_all(&d);
    }
}
