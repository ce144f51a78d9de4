//! The checkpointer: who has read what, and what Loki has acknowledged — the bridge between
//! the reader thread, the pusher and the positions file ([`super::positions`]). A file's saved
//! offset only moves when a batch holding its lines is acknowledged.
//!
//! It also keeps what the status page shows of each file, written where it happens and never
//! per line: its input and labels, whether it was rotated away, its latest read error, how
//! long its oldest unacknowledged byte has waited, the files finished lately and the paths
//! that could not be opened.
//!
//! It also keeps the positions of files that are not tailed now ("retained"): those loaded at
//! startup and not found yet, and those whose input a reload removed. A file found again
//! resumes there; a retained position is forgotten once its path no longer leads to its file
//! (as Promtail cleans its positions).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// The `logs.inputs` entry (by index) that found it, once described.
    pub input: Option<usize>,
    /// The stream labels every entry of the file carries (input labels, `filename`, standard
    /// labels), once described.
    pub labels: Vec<(String, String)>,
    /// Rotated away (renamed or deleted) and read on through its open handle.
    pub rotated: bool,
    /// The latest read error.
    pub last_error: Option<FileError>,
    /// Whether the latest read failed (a successful read clears it).
    pub failing: bool,
    /// When the file was finished: read to its end and fully acknowledged (Unix ms).
    pub finished_ms: Option<i64>,
    /// (size, first seen): sizes seen while bytes were unacknowledged, at most one mark a
    /// second; the front one dates the oldest unacknowledged byte.
    marks: VecDeque<(u64, Instant)>,
    /// Keep the position once closed and acknowledged (its input was removed by a reload).
    pub keep: bool,
    /// The file is a copy (copytruncate) this long: the saved offset never passes it.
    pub cap: Option<u64>,
}

/// A read or open error, and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// Unix ms.
    pub at_ms: i64,
    /// The error.
    pub message: String,
}

impl FileError {
    fn now(message: String) -> Self {
        FileError {
            at_ms: now_ms(),
            message,
        }
    }
}

/// A path discovery found but could not open (other than "not found").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The path.
    pub path: String,
    /// The input whose glob matched it.
    pub input: usize,
    /// The latest error.
    pub error: FileError,
}

/// Marks of unacknowledged sizes closer in time than this are merged (lag age is exact to it).
const MARK_SPACING: Duration = Duration::from_secs(1);
/// Marks kept per file at most (later sizes join the newest mark).
const MAX_MARKS: usize = 64;
/// Finished files remembered for the status page.
const FINISHED_KEPT: usize = 32;
/// Unreadable paths remembered for the status page.
const UNREADABLE_KEPT: usize = 256;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl FileStatus {
    /// Bytes not yet acknowledged.
    pub fn lag(&self) -> u64 {
        self.size.saturating_sub(self.acked)
    }

    /// Since when the oldest unacknowledged byte has been in the file (as first seen by the
    /// reader, to within a second); `None` when nothing waits.
    pub fn lag_since(&self) -> Option<Instant> {
        if self.lag() == 0 {
            return None;
        }
        self.marks.front().map(|m| m.1)
    }

    /// Notes a size seen by the reader.
    fn saw_size(&mut self, size: u64) {
        if size <= self.acked || size <= self.marks.back().map_or(0, |m| m.0) {
            return;
        }
        let now = Instant::now();
        let full = self.marks.len() >= MAX_MARKS;
        match self.marks.back_mut() {
            Some(last) if full || now.duration_since(last.1) < MARK_SPACING => last.0 = size,
            _ => self.marks.push_back((size, now)),
        }
    }

    /// Drops the marks the acknowledged offset has passed.
    fn acked_to(&mut self, offset: u64) {
        while self.marks.front().is_some_and(|m| m.0 <= offset) {
            self.marks.pop_front();
        }
    }

    fn position(&self) -> Position {
        Position {
            path: self.path.clone(),
            fingerprint: self.fingerprint,
            offset: self.cap.map_or(self.acked, |c| self.acked.min(c)),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    files: BTreeMap<FileId, FileStatus>,
    retained: Positions,
    dirty: bool,
    next_id: u64,
    finished: VecDeque<FileStatus>,
    unreadable: BTreeMap<String, (usize, FileError)>,
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
                input: None,
                labels: Vec::new(),
                rotated: false,
                last_error: None,
                failing: false,
                finished_ms: None,
                marks: VecDeque::new(),
                keep: false,
                cap: None,
            },
        );
        inner.unreadable.remove(path.to_string_lossy().as_ref());
        inner.dirty = true;
        id
    }

    /// Describes a registered file for the status page: the input that found it, its stream
    /// labels, and whether it was already rotated away when tailing began.
    pub fn describe(&self, id: FileId, input: usize, labels: &[(String, String)], rotated: bool) {
        if let Some(f) = self.lock().files.get_mut(&id) {
            f.input = Some(input);
            f.labels = labels.to_vec();
            f.rotated = rotated;
        }
    }

    /// The file was rotated away (renamed or deleted); it is read on to its end.
    pub fn rotated(&self, id: FileId) {
        if let Some(f) = self.lock().files.get_mut(&id) {
            f.rotated = true;
        }
    }

    /// Reading the file failed (it is tried again at its next turn).
    pub fn read_failed(&self, id: FileId, error: &dyn std::fmt::Display) {
        if let Some(f) = self.lock().files.get_mut(&id) {
            f.last_error = Some(FileError::now(error.to_string()));
            f.failing = true;
        }
    }

    /// The paths discovery found and cannot tail now (`(input, path, why)`): they replace the
    /// previous list; a path already listed for the same reason keeps the time it was first
    /// seen.
    pub fn set_unreadable(&self, now: Vec<(usize, String, String)>) {
        let mut inner = self.lock();
        let mut next = BTreeMap::new();
        for (input, path, message) in now.into_iter().take(UNREADABLE_KEPT) {
            let error = match inner.unreadable.remove(&path) {
                Some((_, e)) if e.message == message => e,
                _ => FileError::now(message),
            };
            next.insert(path, (input, error));
        }
        inner.unreadable = next;
    }

    /// The paths discovery found and cannot tail, by path.
    pub fn unreadable(&self) -> Vec<Unreadable> {
        self.lock()
            .unreadable
            .iter()
            .map(|(path, (input, error))| Unreadable {
                path: path.clone(),
                input: *input,
                error: error.clone(),
            })
            .collect()
    }

    /// The files finished lately (read to their end and fully acknowledged), oldest first.
    pub fn finished(&self) -> Vec<FileStatus> {
        self.lock().finished.iter().cloned().collect()
    }

    /// Positions of files not tailed yet (loaded at startup).
    pub fn retain_all(&self, positions: Positions) {
        let mut inner = self.lock();
        for p in positions.iter() {
            inner.retained.set(p.clone());
        }
        inner.dirty = true;
    }

    /// Takes the retained position of the file with this device and inode.
    pub fn take_retained(&self, dev: u64, ino: u64) -> Option<Position> {
        let mut inner = self.lock();
        let p = inner.retained.get(dev, ino).cloned();
        if p.is_some() {
            inner.retained.remove(dev, ino);
            inner.dirty = true;
        }
        p
    }

    /// Every retained position.
    pub fn retained(&self) -> Positions {
        self.lock().retained.clone()
    }

    /// Forgets retained positions whose path no longer leads to their file (`exists` tells
    /// whether the path still holds the file with that device and inode).
    pub fn prune_retained(&self, exists: impl Fn(&Position) -> bool) {
        let mut inner = self.lock();
        let gone: Vec<(u64, u64)> = inner
            .retained
            .iter()
            .filter(|p| !exists(p))
            .map(|p| (p.fingerprint.dev, p.fingerprint.ino))
            .collect();
        for (dev, ino) in &gone {
            inner.retained.remove(*dev, *ino);
        }
        inner.dirty |= !gone.is_empty();
    }

    /// The reader stopped reading `id` at `read` because its input was removed: once what
    /// was read is acknowledged, its position is retained (a later input naming the file
    /// resumes there).
    pub fn retire(&self, id: FileId, read: u64) {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get_mut(&id) {
            f.closed = true;
            f.keep = true;
            f.read = read;
        }
        inner.dirty = true;
        inner.forget_finished();
    }

    /// Where a file an input just stopped reading resumes when an input names it again
    /// before what was read is acknowledged: the offset read. The old entry is then only
    /// waited for (its position is not retained).
    pub fn resume_retiring(&self, dev: u64, ino: u64) -> Option<u64> {
        let mut inner = self.lock();
        let f = inner
            .files
            .values_mut()
            .find(|f| f.keep && f.closed && (f.fingerprint.dev, f.fingerprint.ino) == (dev, ino))?;
        f.keep = false;
        Some(f.read)
    }

    /// Generation `id` goes on in a copy of its file (copytruncate): `path`, `fingerprint`,
    /// `len` bytes long. Its acknowledged offset stays; the saved one never passes `len`.
    pub fn continue_in(&self, id: FileId, path: &Path, fingerprint: Fingerprint, len: u64) {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get_mut(&id) {
            f.path = path.to_string_lossy().into_owned();
            f.fingerprint = fingerprint;
            f.size = len;
            f.cap = Some(len);
            f.closed = false;
        }
        inner.dirty = true;
    }

    /// Stops tracking `id` at once, acknowledged or not (its file is read by another id).
    pub fn forget(&self, id: FileId) {
        let mut inner = self.lock();
        inner.files.remove(&id);
        inner.dirty = true;
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
            f.failing = false;
            f.saw_size(size);
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
                f.acked_to(offset);
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

    /// Each tracked file's path and lag (bytes read or seen but not acknowledged), without
    /// copying what the status page keeps of it.
    pub fn lags(&self) -> Vec<(String, u64)> {
        self.lock()
            .files
            .values()
            .map(|f| (f.path.clone(), f.lag()))
            .collect()
    }

    /// The positions to save: for each inode, its oldest generation still tracked (a
    /// truncated file's new generation only counts once the old one is fully acknowledged),
    /// and the retained positions.
    pub fn positions(&self) -> Positions {
        let inner = self.lock();
        let mut positions = inner.retained.clone();
        let mut tracked = std::collections::HashSet::new();
        for f in inner.files.values() {
            let key = (f.fingerprint.dev, f.fingerprint.ino);
            if tracked.insert(key) {
                positions.set(f.position());
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
        let done: Vec<FileId> = self
            .files
            .iter()
            .filter(|(_, f)| f.closed && f.acked >= f.read)
            .map(|(id, _)| *id)
            .collect();
        if done.is_empty() {
            return;
        }
        let at = now_ms();
        for id in done {
            if let Some(mut f) = self.files.remove(&id) {
                let key = (f.fingerprint.dev, f.fingerprint.ino);
                let tracked = self
                    .files
                    .values()
                    .any(|o| (o.fingerprint.dev, o.fingerprint.ino) == key);
                if f.keep && !tracked {
                    self.retained.set(f.position());
                }
                f.finished_ms = Some(at);
                f.failing = false;
                f.marks.clear();
                if self.finished.len() >= FINISHED_KEPT {
                    self.finished.pop_front();
                }
                self.finished.push_back(f);
            }
        }
        self.dirty = true;
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
        assert_eq!(t.lags(), [("/l/a.log".to_owned(), 500)]);
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
    fn lag_age_dates_the_oldest_unacknowledged_byte() {
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(1), 0);
        let file = |t: &Checkpointer| t.files().remove(0);
        assert_eq!(file(&t).lag_since(), None);
        t.progress(a, 100, 100, fp(1), Path::new("/l/a.log"));
        let first = file(&t).lag_since().expect("lagging");
        std::thread::sleep(MARK_SPACING + Duration::from_millis(50));
        t.progress(a, 300, 300, fp(1), Path::new("/l/a.log"));
        assert_eq!(file(&t).lag_since(), Some(first), "still the first byte");
        t.ack(a, 100);
        let second = file(&t).lag_since().expect("still lagging");
        assert!(second >= first + MARK_SPACING, "{second:?} vs {first:?}");
        t.ack(a, 300);
        assert_eq!(file(&t).lag_since(), None);
        assert_eq!(file(&t).lag(), 0);
    }

    #[test]
    fn status_fields_are_kept_where_they_happen() {
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(1), 0);
        t.describe(a, 2, &[("job".into(), "x".into())], false);
        t.read_failed(a, &"Permission denied (os error 13)");
        let f = t.files().remove(0);
        assert_eq!((f.input, f.failing, f.rotated), (Some(2), true, false));
        assert_eq!(f.labels, vec![("job".to_owned(), "x".to_owned())]);
        assert_eq!(
            f.last_error.map(|e| e.message).as_deref(),
            Some("Permission denied (os error 13)")
        );
        t.progress(a, 10, 10, fp(1), Path::new("/l/a.log"));
        t.rotated(a);
        let f = t.files().remove(0);
        assert!(!f.failing && f.rotated && f.last_error.is_some());

        // Finished files leave the tracked set (and the positions) but are remembered.
        t.close(a, 10);
        t.ack(a, 10);
        assert!(t.files().is_empty());
        let done = t.finished();
        assert_eq!(done.len(), 1);
        assert!(done[0].finished_ms.is_some());
        for i in 0..(FINISHED_KEPT as u64 + 5) {
            let id = t.register(Path::new("/l/b.log"), fp(10 + i), 0);
            t.close(id, 0);
            t.ack(id, 0);
        }
        assert_eq!(t.finished().len(), FINISHED_KEPT);

        // Paths that cannot be tailed are listed while discovery still finds them, dated
        // from when they were first seen; a tailed one leaves the list.
        let skip = |path: &str, why: &str| (0, path.to_owned(), why.to_owned());
        t.set_unreadable(vec![skip("/l/secret.log", "permission denied")]);
        let first = t.unreadable();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].path, "/l/secret.log");
        std::thread::sleep(Duration::from_millis(5));
        t.set_unreadable(vec![
            skip("/l/secret.log", "permission denied"),
            skip("/l/pipe", "a named pipe"),
        ]);
        let u = t.unreadable();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].error, first[0].error, "first seen kept");
        t.set_unreadable(vec![skip("/l/pipe", "a named pipe")]);
        assert_eq!(
            t.unreadable().len(),
            1,
            "a path no longer found leaves the list"
        );
        t.register(Path::new("/l/pipe"), fp(99), 0);
        assert!(t.unreadable().is_empty());
    }

    #[test]
    fn a_retired_file_keeps_its_position_and_resumes() {
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(4), 0);
        t.progress(a, 100, 100, fp(4), Path::new("/l/a.log"));
        t.retire(a, 100);
        assert!(
            t.take_retained(1, 4).is_none(),
            "not before it is acknowledged"
        );
        t.ack(a, 100);
        assert!(t.files().is_empty());
        assert_eq!(t.positions().get(1, 4).map(|p| p.offset), Some(100));
        assert_eq!(t.take_retained(1, 4).map(|p| p.offset), Some(100));
        assert!(t.positions().get(1, 4).is_none());
    }

    #[test]
    fn a_copy_continues_the_generation_and_caps_its_offset() {
        let t = Checkpointer::default();
        let a = t.register(Path::new("/l/a.log"), fp(5), 0);
        t.progress(a, 900, 900, fp(5), Path::new("/l/a.log"));
        t.ack(a, 300);
        t.continue_in(a, Path::new("/l/a.log.1"), fp(6), 800);
        let p = t.positions();
        assert_eq!(
            p.get(1, 6).map(|p| (p.path.as_str(), p.offset)),
            Some(("/l/a.log.1", 300))
        );
        t.ack(a, 900);
        assert_eq!(t.positions().get(1, 6).map(|p| p.offset), Some(800));
        t.retain_all(Positions::default());
        t.prune_retained(|_| false);
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
