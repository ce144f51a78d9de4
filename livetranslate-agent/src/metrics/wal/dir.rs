//! The log's directory: its lock, and fsync of the directory itself.
//!
//! The lock is an exclusive `flock` on the file `lock`, held while the log is open, so that two
//! agents pointed at one directory do not interleave their writes. The kernel releases it when
//! the process dies, `kill -9` included, so there is never a stale lock to clean up.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::error::WalError;

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    // Directories cannot be opened (nor synced) this way on every platform; where they can,
    // an error is real.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(WalError::io("fsync directory", dir))?;
    }
    Ok(())
}

/// Held for as long as the log is open.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock of `dir`, or fails with [`WalError::Locked`] at once if it is held.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, WalError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(WalError::io("open", &path))?;
    try_lock(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            WalError::Locked {
                dir: dir.to_owned(),
            }
        } else {
            WalError::io("lock", &path)(e)
        }
    })?;
    Ok(DirLock { _file: file })
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: `flock` is given a descriptor that `file` owns and keeps open for the call; it
    // reads no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Err(std::io::ErrorKind::WouldBlock.into())
        } else {
            Err(e)
        }
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let d = std::env::temp_dir().join(format!("wallock-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        let first = lock(&d).expect("first");
        assert!(matches!(lock(&d), Err(WalError::Locked { .. })));
        drop(first);
        let again = lock(&d).expect("after release");
        drop(again);
        let _ = std::fs::remove_dir_all(&d);
    }
}
