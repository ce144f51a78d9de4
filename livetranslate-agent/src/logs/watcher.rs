//! A `FileWatcher` per tailed file: it owns the open handle, the read offset, the line
//! framing and the file's identity, and notices when the file is rotated away (renamed,
//! deleted) or truncated (shrunk, or rewritten from the start). What the lines mean is not its
//! business: it hands each complete line to its caller.
//!
//! Rotation, as logrotate does it:
//! - rename (`create`): the old file moves away; its open handle is drained to its end, and
//!   the new file at the path is picked up by discovery as a new file. When an input's glob
//!   names the new name too (`app.log*`), discovery finds the file there and it goes on being
//!   tailed under its new name ([`FileWatcher::moved_to`]): it is never read again from 0;
//! - copytruncate: the file is copied, then truncated in place. [`FileWatcher::truncated`]
//!   finds the copy (a sibling that starts like the file did) and hands it back: the caller
//!   reads the bytes not read before the truncation from it, as the continuation of the same
//!   generation, and keeps it at its end (it is never read from 0); this watcher starts over
//!   at 0;
//! - delete: the handle is drained; a deleted file (no links left) is finished at its end
//!   without waiting for late writes.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fingerprint::{dev_ino, read_at, Fingerprint, HEAD_BYTES};
use super::framing::{Fed, Line, LineFramer};

const CHUNK: usize = 64 * 1024;
/// Most bytes read from one file before the others get their turn (small enough that a file
/// rotated quickly is still looked at before it is gone).
pub const MAX_PER_TURN: u64 = 256 * 1024;
/// How often a file that is not growing is checked for having been rewritten.
const HEAD_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Receives what a watcher reads.
pub trait LineHandler {
    /// One complete line; [`ControlFlow::Break`] stops reading after it.
    fn line(&mut self, line: Line<'_>) -> ControlFlow<()>;
    /// A chunk of `bytes` holding `lines` newlines was consumed.
    fn chunk_read(&mut self, _bytes: u64, _lines: u64) {}
}

impl<F: FnMut(Line<'_>) -> ControlFlow<()>> LineHandler for F {
    fn line(&mut self, line: Line<'_>) -> ControlFlow<()> {
        self(line)
    }
}

/// What [`FileWatcher::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were consumed (0: nothing new).
    Bytes(u64),
    /// The handler stopped the read.
    Stopped,
    /// The file is shorter than the offset, or its head changed: see
    /// [`FileWatcher::truncated`].
    Truncated,
}

/// What [`FileWatcher::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing new.
    Unchanged,
    /// The path no longer leads to this file (renamed or deleted): it is drained from its
    /// handle from now on, and the path should be looked at again for a new file.
    RotatedAway,
    /// The file was rewritten in place (its head changed): see [`FileWatcher::truncated`].
    Truncated,
    /// Rotated away, read to its end, and deleted or quiet for `rotate_wait`: close it.
    Finished,
}

/// One tailed file.
#[derive(Debug)]
pub struct FileWatcher {
    path: PathBuf,
    file: File,
    fingerprint: Fingerprint,
    /// Bytes consumed: complete lines plus the framer's partial line.
    offset: u64,
    /// The size at the last read.
    size: u64,
    framer: LineFramer,
    rotated_since: Option<Instant>,
    last_head_check: Instant,
}

/// The copy copytruncate left of a truncated file.
#[derive(Debug)]
pub struct RotatedCopy {
    /// Where it is.
    pub path: PathBuf,
    /// The open copy.
    pub file: File,
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Its length.
    pub len: u64,
}

#[cfg(unix)]
fn nlink(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn nlink(_meta: &std::fs::Metadata) -> u64 {
    1
}

impl FileWatcher {
    /// Watches `file`, found at `path` with identity `fingerprint`, from `offset`.
    /// `rotated_since` marks a file already known to be rotated away (found at startup).
    pub fn new(
        path: &Path,
        file: File,
        fingerprint: Fingerprint,
        offset: u64,
        max_line_bytes: usize,
        rotated_since: Option<Instant>,
    ) -> Self {
        FileWatcher {
            path: path.to_owned(),
            file,
            fingerprint,
            offset,
            size: offset,
            framer: LineFramer::new(max_line_bytes),
            rotated_since,
            last_head_check: Instant::now(),
        }
    }

    /// Where the file is (its last known path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its identity (the head checksum grows with the file up to [`HEAD_BYTES`]).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Bytes consumed, the partial last line included.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file size at the last read.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file was rotated away (it is being drained).
    pub fn is_rotated(&self) -> bool {
        self.rotated_since.is_some()
    }

    /// Whether this watcher reads the file with this device and inode.
    pub fn is(&self, dev: u64, ino: u64) -> bool {
        (self.fingerprint.dev, self.fingerprint.ino) == (dev, ino)
    }

    /// Discovery found the file at `path` (an input's glob names it): it is tailed there from
    /// now on, as a file in place (no longer draining, even if it was rotated away from its
    /// first name).
    pub fn moved_to(&mut self, path: &Path) {
        self.path = path.to_owned();
        self.rotated_since = None;
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads what is new, at most [`MAX_PER_TURN`] bytes, handing every complete line to
    /// `handler`. Notices a truncation (the file is shorter than the offset, or longer but
    /// no longer starting with the same bytes) instead of reading.
    pub fn read<H: LineHandler>(&mut self, handler: &mut H) -> io::Result<Read> {
        let size = self.file.metadata()?.len();
        self.size = size;
        if size < self.offset
            || (size > self.offset && !self.fingerprint.head_matches(&self.file).unwrap_or(true))
        {
            return Ok(Read::Truncated);
        }
        let read = read_range(
            &self.file,
            &mut self.offset,
            &mut self.framer,
            size,
            handler,
        )?;
        self.grow_fingerprint();
        Ok(read)
    }

    /// Rotation and truncation checks (`now` is passed in so tests can move time).
    pub fn check(&mut self, now: Instant, rotate_wait: Duration) -> Check {
        if now.saturating_duration_since(self.last_head_check) >= HEAD_CHECK_PERIOD {
            self.last_head_check = now;
            if self.fingerprint.head_len > 0
                && !self.fingerprint.head_matches(&self.file).unwrap_or(true)
            {
                return Check::Truncated;
            }
        }
        let Some(since) = self.rotated_since else {
            let moved = match std::fs::metadata(&self.path) {
                Ok(m) => !self.is_meta(&m),
                Err(_) => true,
            };
            if moved {
                self.rotated_since = Some(now);
                return Check::RotatedAway;
            }
            return Check::Unchanged;
        };
        let at_end = self.offset >= self.size;
        let deleted = self.file.metadata().map(|m| nlink(&m) == 0).unwrap_or(true);
        let waited = now.saturating_duration_since(since) >= rotate_wait;
        if at_end && (deleted || waited) {
            Check::Finished
        } else {
            Check::Unchanged
        }
    }

    #[cfg(unix)]
    fn is_meta(&self, m: &std::fs::Metadata) -> bool {
        let (dev, ino) = dev_ino(m);
        self.is(dev, ino)
    }

    #[cfg(not(unix))]
    fn is_meta(&self, _m: &std::fs::Metadata) -> bool {
        true
    }

    /// After [`Read::Truncated`] / [`Check::Truncated`]: looks for the copy copytruncate left
    /// (a sibling that starts like the file did, other than `skip`), then starts over at
    /// offset 0 with the file's new identity. The caller reads what was not read yet from
    /// the copy, if there is one.
    pub fn truncated(&mut self, skip: &dyn Fn(u64, u64) -> bool) -> Option<RotatedCopy> {
        let copy = find_copy(&self.path, &self.fingerprint, skip);
        if copy.is_none() && self.size > 0 && self.offset > self.size {
            tracing::warn!(path = %self.path.display(), "no rotated copy found: bytes written after the last read and before the truncation cannot be recovered");
        }
        self.start_over();
        copy
    }

    /// Reading starts over at offset 0, identity taken again.
    pub fn start_over(&mut self) {
        self.offset = 0;
        self.framer.reset();
        self.fingerprint = Fingerprint::of(&self.file).unwrap_or(self.fingerprint);
    }

    /// A file's head grows until it covers [`HEAD_BYTES`]: keep the fingerprint current.
    fn grow_fingerprint(&mut self) {
        if self.fingerprint.head_len >= HEAD_BYTES || self.size <= self.fingerprint.head_len {
            return;
        }
        if let Ok(fp) = Fingerprint::of(&self.file) {
            if self.fingerprint.same_file(&fp, &self.file).unwrap_or(false) {
                self.fingerprint = fp;
            }
        }
    }
}

/// Reads `file` from `*offset` up to `limit` (bounded per turn) through `framer`.
fn read_range<H: LineHandler>(
    file: &File,
    offset: &mut u64,
    framer: &mut LineFramer,
    limit: u64,
    handler: &mut H,
) -> io::Result<Read> {
    let mut chunk = vec![0u8; CHUNK];
    let start = *offset;
    while *offset < limit && *offset - start < MAX_PER_TURN {
        let want = ((limit - *offset) as usize).min(CHUNK);
        let n = read_at(file, &mut chunk[..want], *offset)?;
        if n == 0 {
            break;
        }
        let base = *offset;
        let mut lines = 0u64;
        let fed = framer.feed(&chunk[..n], base, &mut |line| {
            lines += 1;
            handler.line(line)
        });
        match fed {
            Fed::All => {
                *offset = base + n as u64;
                handler.chunk_read(n as u64, lines);
            }
            Fed::StoppedAt(end) => {
                // Only lines handed over count as read.
                *offset = end;
                framer.reset();
                handler.chunk_read(end - base, lines);
                return Ok(Read::Stopped);
            }
        }
    }
    Ok(Read::Bytes(*offset - start))
}

/// A sibling of `path` that starts like `fp` (whatever its length: a copy holding nothing
/// unread is still a copy, never to be read from 0), other than those `skip` refuses by
/// device and inode: the copy made by copytruncate. The most recently modified one wins.
fn find_copy(
    path: &Path,
    fp: &Fingerprint,
    skip: &dyn Fn(u64, u64) -> bool,
) -> Option<RotatedCopy> {
    if fp.head_len == 0 {
        return None;
    }
    let dir = path.parent()?;
    let mut best: Option<(RotatedCopy, SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p == path {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.len() < fp.head_len {
            continue;
        }
        let (dev, ino) = dev_ino(&meta);
        if (dev, ino) == (fp.dev, fp.ino) || skip(dev, ino) {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        if fp.head_matches(&f).unwrap_or(false) {
            let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
            if best.as_ref().is_none_or(|b| mtime > b.1) {
                let Ok(fingerprint) = Fingerprint::of(&f) else {
                    continue;
                };
                best = Some((
                    RotatedCopy {
                        path: p,
                        file: f,
                        fingerprint,
                        len: meta.len(),
                    },
                    mtime,
                ));
            }
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let d = std::env::temp_dir().join(format!(
                "watcher-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("dir");
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn append(path: &Path, text: &str) {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("append");
    }

    fn watch(path: &Path) -> FileWatcher {
        let file = File::open(path).expect("open");
        let fp = Fingerprint::of(&file).expect("fingerprint");
        FileWatcher::new(path, file, fp, 0, 1024, None)
    }

    /// Reads until nothing is new; returns the lines with their end offsets.
    fn drain(w: &mut FileWatcher) -> (Vec<(String, u64)>, Read) {
        let mut lines = Vec::new();
        let mut last;
        loop {
            last = w
                .read(&mut |l: Line<'_>| {
                    lines.push((String::from_utf8_lossy(l.bytes).into_owned(), l.end));
                    ControlFlow::Continue(())
                })
                .expect("read");
            if !matches!(last, Read::Bytes(n) if n >= MAX_PER_TURN) {
                break;
            }
        }
        (lines, last)
    }

    fn texts(lines: &[(String, u64)]) -> Vec<&str> {
        lines.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn rename_rotation_drains_the_old_file_then_finishes_it() {
        let d = Dir::new("rename");
        let path = d.0.join("app.log");
        append(&path, "a1\na2\n");
        let mut w = watch(&path);
        assert_eq!(texts(&drain(&mut w).0), ["a1", "a2"]);
        let now = Instant::now();
        assert_eq!(w.check(now, Duration::from_secs(5)), Check::Unchanged);
        // logrotate `create`: rename, then a new file at the path; a late write to the old one.
        std::fs::rename(&path, d.0.join("app.log.1")).expect("rename");
        append(&path, "b1\n");
        append(&d.0.join("app.log.1"), "a3\n");
        assert_eq!(w.check(now, Duration::from_secs(5)), Check::RotatedAway);
        assert!(w.is_rotated());
        let (lines, _) = drain(&mut w);
        assert_eq!(lines, [("a3".to_owned(), 9)], "the late write is read");
        assert_eq!(
            w.check(now, Duration::from_secs(5)),
            Check::Unchanged,
            "waits"
        );
        assert_eq!(
            w.check(now + Duration::from_secs(6), Duration::from_secs(5)),
            Check::Finished
        );
        // The path kept the old name: the new file is someone else's.
        assert_eq!(w.path(), path);
        // Found under its new name by a glob that names it: tailed there, not finished.
        w.moved_to(&d.0.join("app.log.1"));
        assert!(!w.is_rotated());
        assert_eq!(
            w.check(now + Duration::from_secs(60), Duration::from_secs(5)),
            Check::Unchanged
        );
    }

    #[test]
    fn copytruncate_hands_back_the_copy_and_starts_over() {
        let d = Dir::new("copytruncate");
        let path = d.0.join("app.log");
        append(&path, "one\ntwo\n");
        let mut w = watch(&path);
        assert_eq!(texts(&drain(&mut w).0), ["one", "two"]);
        // Written, not yet read, then copied and truncated in place, then written again.
        append(&path, "three\n");
        std::fs::copy(&path, d.0.join("app.log.1")).expect("copy");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&path, "four\n");
        let (lines, read) = drain(&mut w);
        assert!(lines.is_empty());
        assert_eq!(read, Read::Truncated);
        let copy = w.truncated(&|_, _| false).expect("the copy is found");
        assert_eq!(copy.path, d.0.join("app.log.1"));
        assert_eq!(copy.len, 14);
        // The caller drains the copy from where this watcher stopped.
        let mut rest = FileWatcher::new(&copy.path, copy.file, copy.fingerprint, 8, 1024, None);
        assert_eq!(drain(&mut rest).0, [("three".to_owned(), 14)]);
        assert_eq!(w.offset(), 0);
        assert_eq!(drain(&mut w).0, [("four".to_owned(), 5)]);
        // A copy already read by someone else is not handed back.
        append(&path, "five\n");
        std::fs::copy(&path, d.0.join("app.log.2")).expect("copy");
        let (dev, ino) =
            Fingerprint::dev_ino(&File::open(d.0.join("app.log.2")).expect("open")).expect("ids");
        let _ = std::fs::remove_file(d.0.join("app.log.1"));
        assert!(w.truncated(&|a, b| (a, b) == (dev, ino)).is_none());
    }

    #[test]
    fn a_file_deleted_while_open_is_drained_then_finished_at_once() {
        let d = Dir::new("delete");
        let path = d.0.join("app.log");
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        append(&path, &text);
        let mut w = watch(&path);
        // Read a part only (the handler stops), then the file is deleted.
        let mut n = 0;
        let r = w
            .read(&mut |_: Line<'_>| {
                n += 1;
                if n == 10 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("read");
        assert_eq!(r, Read::Stopped);
        std::fs::remove_file(&path).expect("delete");
        let now = Instant::now();
        assert_eq!(w.check(now, Duration::from_secs(3600)), Check::RotatedAway);
        assert_eq!(
            w.check(now, Duration::from_secs(3600)),
            Check::Unchanged,
            "not before its end"
        );
        let (lines, _) = drain(&mut w);
        assert_eq!(lines.len(), 1990);
        assert_eq!(lines[0].0, "line 10");
        assert_eq!(lines[1989].0, "line 1999");
        assert_eq!(
            w.check(now, Duration::from_secs(3600)),
            Check::Finished,
            "deleted: no rotate_wait"
        );
    }

    #[test]
    fn a_rewrite_to_the_same_size_is_a_truncation() {
        let d = Dir::new("samesize");
        let path = d.0.join("app.log");
        append(&path, "first version\n");
        let mut w = watch(&path);
        assert_eq!(texts(&drain(&mut w).0), ["first version"]);
        // Rewritten in place to exactly the old size: neither shorter nor longer.
        std::fs::write(&path, "newer version\n").expect("rewrite");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), w.offset());
        let (lines, read) = drain(&mut w);
        assert!(
            lines.is_empty() && read == Read::Bytes(0),
            "size alone cannot tell"
        );
        let later = Instant::now() + HEAD_CHECK_PERIOD;
        assert_eq!(w.check(later, Duration::from_secs(5)), Check::Truncated);
        assert!(
            w.truncated(&|_, _| false).is_none(),
            "no copy: starts over at once"
        );
        assert_eq!(texts(&drain(&mut w).0), ["newer version"]);
    }

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let d = Dir::new("partial");
        let path = d.0.join("app.log");
        append(&path, "whole\nhal");
        let mut w = watch(&path);
        let (lines, _) = drain(&mut w);
        assert_eq!(lines, [("whole".to_owned(), 6)]);
        assert_eq!(w.offset(), 9, "the partial bytes are consumed and held");
        assert_eq!(drain(&mut w).0, []);
        append(&path, "f done\nnext");
        assert_eq!(drain(&mut w).0, [("half done".to_owned(), 16)]);
        append(&path, "\n");
        assert_eq!(drain(&mut w).0, [("next".to_owned(), 21)]);
    }

    #[test]
    fn an_overlong_line_is_cut_and_flagged() {
        let d = Dir::new("overlong");
        let path = d.0.join("app.log");
        append(&path, &format!("{}\nok\n", "x".repeat(5000)));
        let file = File::open(&path).expect("open");
        let fp = Fingerprint::of(&file).expect("fp");
        let mut w = FileWatcher::new(&path, file, fp, 0, 1000, None);
        let mut got = Vec::new();
        w.read(&mut |l: Line<'_>| {
            got.push((l.bytes.len(), l.end, l.overlong));
            ControlFlow::Continue(())
        })
        .expect("read");
        assert_eq!(got, [(1000, 5001, true), (2, 5004, false)]);
    }
}
