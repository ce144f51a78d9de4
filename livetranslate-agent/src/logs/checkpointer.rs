//! The checkpointer: who has read what, and what Loki has acknowledged — the bridge between
//! the reader thread, the pusher and the positions file ([`super::positions`]). A file's saved
//! offset only moves when a batch holding its lines is acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use super::entry::FileId;
use super::fingerprint::Fingerprint;
use super::positions::{Position, Positions, PositionsError};

/// One tailed file (one generation of it: a truncated file gets a new id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Its id.
    pub id: FileId,
    /// Where it was found.
    pub path: String,
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Offset acknowledged by Loki.
    pub acked: u64,
    /// Offset read so far.
    pub read: u64,
    /// File size at the last look.
    pub size: u64,
    /// No longer read (rotated away, deleted or truncated); forgotten once acknowledged.
    pub closed: bool,
}

impl FileStatus {
    /// Bytes not yet acknowledged.
    pub fn lag(&self) -> u64 {
        self.size.saturating_sub(self.acked)
    }
}

#[derive(Debug, Default)]
struct Inner {
    files: BTreeMap<FileId, FileStatus>,
    dirty: bool,
    next_id: u64,
}

/// Shared progress of every file.
#[derive(Debug, Default)]
pub struct Checkpointer {
    inner: Mutex<Inner>,
}

impl Checkpointer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking a file read from `offset` (already acknowledged).
    pub fn register(&self, path: &Path, fingerprint: Fingerprint, offset: u64) -> FileId {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = FileId(inner.next_id);
        inner.files.insert(
            id,
            FileStatus {
                id,
                path: path.to_string_lossy().into_owned(),
                fingerprint,
                acked: offset,
                read: offset,
                size: offset,
                closed: false,
            },
        );
        inner.dirty = true;
        id
    }

    /// Records reading progress (and a grown fingerprint or a new path after a rename).
    pub fn progress(
        &self,
        id: FileId,
        read: u64,
        size: u64,
        fingerprint: Fingerprint,
        path: &Path,
    ) {
        let mut inner = self.lock();
        let mut changed = false;
        if let Some(f) = inner.files.get_mut(&id) {
            f.read = read;
            f.size = size;
            if f.fingerprint != fingerprint {
                f.fingerprint = fingerprint;
                changed = true;
            }
            let p = path.to_string_lossy();
            if f.path != p {
                f.path = p.into_owned();
                changed = true;
            }
        }
        inner.dirty |= changed;
    }

    /// Lines of `id` up to `offset` were acknowledged (or given up for good).
    pub fn ack(&self, id: FileId, offset: u64) {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get_mut(&id) {
            if offset > f.acked {
                f.acked = offset;
                inner.dirty = true;
            }
        }
        inner.forget_finished();
    }

    /// The reader stopped reading `id` at `read`.
    pub fn close(&self, id: FileId, read: u64) {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get_mut(&id) {
            f.closed = true;
            f.read = read;
        }
        inner.dirty = true;
        inner.forget_finished();
    }

    /// Every tracked file, by id.
    pub fn files(&self) -> Vec<FileStatus> {
        self.lock().files.values().cloned().collect()
    }

    /// The positions to save: for each inode, its oldest generation still tracked (a
    /// truncated file's new generation only counts once the old one is fully acknowledged).
    pub fn positions(&self) -> Positions {
        let inner = self.lock();
        let mut positions = Positions::default();
        for f in inner.files.values() {
            if positions
                .get(f.fingerprint.dev, f.fingerprint.ino)
                .is_none()
            {
                positions.set(Position {
                    path: f.path.clone(),
                    fingerprint: f.fingerprint,
                    offset: f.acked,
                });
            }
        }
        positions
    }

    /// Saves the positions to `path` if anything changed since the last save.
    pub fn save_if_dirty(&self, path: &Path) -> Result<bool, PositionsError> {
        let positions = {
            let mut inner = self.lock();
            if !inner.dirty {
                return Ok(false);
            }
            inner.dirty = false;
            drop(inner);
            self.positions()
        };
        if let Err(e) = positions.save(path) {
            self.lock().dirty = true;
            return Err(e);
        }
        Ok(true)
    }
}

impl Inner {
    fn forget_finished(&mut self) {
        let before = self.files.len();
        self.files.retain(|_, f| !(f.closed && f.acked >= f.read));
        if self.files.len() != before {
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(ino: u64) -> Fingerprint {
        Fingerprint {
            dev: 1,
            ino,
            head_len: 10,
            head_hash: ino,
        }
    }

    #[test]
    fn offsets_advance_only_on_ack_and_closed_files_are_forgotten() {
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(1), 0);
        t.progress(a, 500, 800, fp(1), Path::new("/l/a.log"));
        assert_eq!(t.positions().get(1, 1).map(|p| p.offset), Some(0));
        t.ack(a, 300);
        assert_eq!(t.positions().get(1, 1).map(|p| p.offset), Some(300));
        assert_eq!(t.files()[0].lag(), 500);
        t.close(a, 500);
        assert_eq!(
            t.files().len(),
            1,
            "not forgotten before its lines are acknowledged"
        );
        t.ack(a, 500);
        assert!(t.files().is_empty());
    }

    #[test]
    fn new_generation_waits_for_the_old_one() {
        let t = Checkpointer::default();
        let old = t.register(Path::new("/l/a.log"), fp(7), 0);
        t.progress(old, 1000, 1000, fp(7), Path::new("/l/a.log"));
        t.close(old, 1000);
        let mut new_fp = fp(7);
        new_fp.head_hash = 99;
        let new = t.register(Path::new("/l/a.log"), new_fp, 0);
        t.ack(new, 50);
        assert_eq!(
            t.positions().get(1, 7).map(|p| p.fingerprint.head_hash),
            Some(7)
        );
        t.ack(old, 1000);
        let p = t.positions();
        assert_eq!(
            p.get(1, 7).map(|p| (p.fingerprint.head_hash, p.offset)),
            Some((99, 50))
        );
    }

    #[test]
    fn saves_only_when_dirty() {
        let dir = std::env::temp_dir().join(format!("trk-{}", std::process::id()));
        let path = dir.join("pos.yml");
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(3), 0);
        assert!(t.save_if_dirty(&path).expect("save"));
        assert!(!t.save_if_dirty(&path).expect("clean"));
        t.ack(a, 10);
        assert!(t.save_if_dirty(&path).expect("save"));
        assert_eq!(
            Positions::load(&path)
                .expect("load")
                .get(1, 3)
                .map(|p| p.offset),
            Some(10)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
