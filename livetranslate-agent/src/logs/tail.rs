//! The reader loop: finds files by glob, reads new bytes by offset, follows rename and
//! copytruncate rotation, and turns bytes into entries. It runs on its own thread; the files
//! on disk are its buffer, and it waits (on the byte budget) whenever the pusher falls behind.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fingerprint::{read_at, Fingerprint, HEAD_BYTES};
use super::multiline::{Joiner, Multiline};
use super::parse::{Parsed, Parser};
use super::positions::Positions;
use super::tracker::Tracker;
use super::{render_labels, FileId, LogInput};
use crate::internal_events::{LineDropReason, LogMetrics};
use crate::loki::LogEntry;

/// What to do with a line longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LongLines {
    /// Ship its first `max_line_bytes` bytes (counted as `truncated`).
    #[default]
    Truncate,
    /// Drop it (counted as `too_long`).
    Drop,
}

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Longest line kept whole.
    pub max_line_bytes: usize,
    /// What to do with longer lines.
    pub long_lines: LongLines,
    /// Pause when no file has new data.
    pub poll_interval: Duration,
    /// How often globs are re-evaluated.
    pub discover_interval: Duration,
    /// How long a rotated-away file is still watched for late writes after its end.
    pub rotate_wait: Duration,
    /// Labels on every stream (the standard labels), lowest precedence.
    pub common_labels: Vec<(String, String)>,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_line_bytes: 256 * 1024,
            long_lines: LongLines::Truncate,
            poll_interval: Duration::from_millis(100),
            discover_interval: Duration::from_millis(100),
            rotate_wait: Duration::from_secs(5),
            common_labels: Vec::new(),
        }
    }
}

/// Where entries go; `false` means the pipeline is stopping.
pub trait EntrySink: Send {
    /// Hands over one entry (may wait for room).
    fn send(&mut self, entry: LogEntry) -> bool;
}

/// An input with its parser and compiled options.
#[derive(Debug)]
struct Input {
    patterns: Vec<String>,
    exclude: Vec<glob::Pattern>,
    parser: Parser,
    labels: Vec<(String, String)>,
    multiline: Option<Multiline>,
}

/// Why an input could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A glob pattern is invalid.
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A multiline pattern is invalid.
    #[error("invalid multiline.first_line regex: {0}")]
    Regex(String),
    /// A label name is invalid.
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    Label(String),
}

fn compile(input: &LogInput) -> Result<Input, InputError> {
    for p in &input.paths {
        glob::Pattern::new(p).map_err(|e| InputError::Glob {
            pattern: p.clone(),
            reason: e.to_string(),
        })?;
    }
    let exclude = input
        .exclude
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| InputError::Glob {
                pattern: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    for name in input.labels.keys().chain(input.promote.iter()) {
        if !super::valid_label_name(name) {
            return Err(InputError::Label(name.clone()));
        }
    }
    let multiline = input
        .multiline
        .as_ref()
        .map(|m| Multiline::new(m).map_err(|e| InputError::Regex(e.to_string())))
        .transpose()?;
    Ok(Input {
        patterns: input.paths.clone(),
        exclude,
        parser: Parser::new(input.format, &input.promote),
        labels: input
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        multiline,
    })
}

/// Checks inputs without starting anything (for `--check-config`).
pub fn validate_inputs(inputs: &[LogInput]) -> Result<(), InputError> {
    inputs.iter().try_for_each(|i| compile(i).map(|_| ()))
}

/// Timestamp and labels of the first line of an entry.
#[derive(Debug, Clone)]
struct Meta {
    timestamp_ns: Option<i64>,
    labels: Vec<(&'static str, String)>,
}

struct Tailed {
    id: FileId,
    input: usize,
    path: PathBuf,
    label_path: String,
    /// Shared so that a read turn can hold it while the reader itself is borrowed mutably.
    file: Arc<File>,
    fp: Fingerprint,
    /// Bytes consumed (complete lines plus `buf`).
    offset: u64,
    /// Bytes of an incomplete last line.
    buf: Vec<u8>,
    /// Inside an over-long line whose rest is discarded.
    skipping: bool,
    /// End offset of the last complete line.
    last_end: u64,
    /// Docker / CRI fragments waiting for their end.
    partial: Option<(Meta, String)>,
    joiner: Option<Joiner<Meta>>,
    label_cache: HashMap<Vec<(&'static str, String)>, Arc<str>>,
    rotated_since: Option<Instant>,
    last_head_check: Instant,
    size: u64,
}

/// The reader.
pub struct Reader<S: EntrySink> {
    config: ReaderConfig,
    inputs: Vec<Input>,
    tracker: Arc<Tracker>,
    metrics: LogMetrics,
    sink: S,
    files: Vec<Tailed>,
    saved: Positions,
    shutdown: Arc<AtomicBool>,
    last_discover: Option<Instant>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

#[cfg(unix)]
fn nlink(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn nlink(_meta: &std::fs::Metadata) -> u64 {
    1
}

const CHUNK: usize = 64 * 1024;
/// Most bytes read from one file before looking at the others.
const MAX_PER_TURN: u64 = 4 * 1024 * 1024;

impl<S: EntrySink> Reader<S> {
    /// A reader of `inputs`, resuming from `saved` positions.
    pub fn new(
        config: ReaderConfig,
        inputs: &[LogInput],
        saved: Positions,
        tracker: Arc<Tracker>,
        metrics: LogMetrics,
        sink: S,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Self, InputError> {
        Ok(Reader {
            inputs: inputs.iter().map(compile).collect::<Result<_, _>>()?,
            config,
            tracker,
            metrics,
            sink,
            files: Vec::new(),
            saved,
            shutdown,
            last_discover: None,
        })
    }

    /// Runs until shutdown.
    pub fn run(mut self) {
        self.recover_orphans();
        // Gauges are refreshed once a second, not on every turn of the loop.
        let mut last_status = Instant::now() - Duration::from_secs(1);
        while !self.shutdown.load(Ordering::Relaxed) {
            let due = self
                .last_discover
                .is_none_or(|t| t.elapsed() >= self.config.discover_interval);
            if due {
                self.discover();
            }
            let mut progressed = false;
            let mut i = 0;
            while i < self.files.len() {
                if self.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                match self.pump(i) {
                    Ok(n) => progressed |= n > 0,
                    Err(e) => {
                        tracing::warn!(path = %self.files[i].label_path, error = %e, "read failed")
                    }
                }
                if self.check(i) {
                    i += 1;
                }
            }
            self.flush_expired();
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                self.metrics.files_watched(self.files.len());
                for f in self.tracker.files() {
                    self.metrics.file_lag(&f.path, f.lag());
                }
            }
            if !progressed {
                std::thread::sleep(self.config.poll_interval);
            }
        }
    }

    fn excluded(&self, input: usize, path: &Path) -> bool {
        self.inputs[input]
            .exclude
            .iter()
            .any(|p| p.matches_path(path))
            || path.file_name().is_some_and(|n| {
                self.inputs[input]
                    .exclude
                    .iter()
                    .any(|p| p.matches(&n.to_string_lossy()))
            })
    }

    fn discover(&mut self) {
        self.last_discover = Some(Instant::now());
        for input in 0..self.inputs.len() {
            for pattern in self.inputs[input].patterns.clone() {
                let paths = match glob::glob(&pattern) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(%pattern, error = %e, "bad glob");
                        continue;
                    }
                };
                for path in paths.flatten() {
                    if self.excluded(input, &path) || !path.is_file() {
                        continue;
                    }
                    self.open(input, &path);
                }
            }
        }
    }

    /// Starts tailing `path` unless that file (by device and inode) is tailed already.
    fn open(&mut self, input: usize, path: &Path) {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open");
                return;
            }
        };
        let Ok((dev, ino)) = Fingerprint::dev_ino(&file) else {
            return;
        };
        if let Some(t) = self
            .files
            .iter_mut()
            .find(|t| (t.fp.dev, t.fp.ino) == (dev, ino))
        {
            if t.path != path && t.rotated_since.is_none() {
                t.path = path.to_owned();
            }
            return;
        }
        let Ok(fp) = Fingerprint::of(&file) else {
            return;
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = match self.saved.get(dev, ino).cloned() {
            Some(pos) if pos.fingerprint.same_file(&fp, &file).unwrap_or(false) => {
                self.saved.remove(dev, ino);
                if pos.offset <= size {
                    pos.offset
                } else {
                    tracing::warn!(path = %path.display(), "file shrank while the agent was stopped; reading it from the start");
                    0
                }
            }
            _ => 0,
        };
        self.add(input, path, file, fp, start, None);
    }

    fn add(
        &mut self,
        input: usize,
        path: &Path,
        file: File,
        fp: Fingerprint,
        start: u64,
        rotated: Option<Instant>,
    ) {
        let id = self.tracker.register(path, fp, start);
        tracing::info!(path = %path.display(), offset = start, "tailing");
        let joiner = self.inputs[input].multiline.clone().map(Joiner::new);
        self.files.push(Tailed {
            id,
            input,
            path: path.to_owned(),
            label_path: path.to_string_lossy().into_owned(),
            file: Arc::new(file),
            fp,
            offset: start,
            buf: Vec::new(),
            skipping: false,
            last_end: start,
            partial: None,
            joiner,
            label_cache: HashMap::new(),
            rotated_since: rotated,
            last_head_check: Instant::now(),
            size: start,
        });
    }

    /// Saved positions whose file is no longer at its path (rotated while the agent was
    /// stopped): find the file in the same directory by inode, or by its head (a
    /// copytruncate copy), and drain it from the saved offset.
    fn recover_orphans(&mut self) {
        self.discover();
        let orphans: Vec<_> = self.saved.iter().cloned().collect();
        for pos in orphans {
            let saved_path = PathBuf::from(&pos.path);
            let Some(dir) = saved_path.parent() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let input = self
                .inputs
                .iter()
                .position(|i| {
                    i.patterns
                        .iter()
                        .any(|p| Path::new(p).parent() == Some(dir))
                })
                .unwrap_or(0);
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() || meta.len() <= pos.offset {
                    continue;
                }
                let Ok(fp) = Fingerprint::of(&file) else {
                    continue;
                };
                let same_inode = (fp.dev, fp.ino) == (pos.fingerprint.dev, pos.fingerprint.ino);
                let same_head = pos.fingerprint.head_matches(&file).unwrap_or(false);
                if same_head && (same_inode || pos.fingerprint.head_len > 0) {
                    if self
                        .files
                        .iter()
                        .any(|t| (t.fp.dev, t.fp.ino) == (fp.dev, fp.ino))
                    {
                        break;
                    }
                    tracing::info!(path = %path.display(), saved = %pos.path, offset = pos.offset, "draining a file rotated while the agent was stopped");
                    self.add(input, &path, file, fp, pos.offset, Some(Instant::now()));
                    break;
                }
            }
        }
        self.saved = Positions::default();
    }

    /// Reads what is new in file `i`; returns the bytes read.
    fn pump(&mut self, i: usize) -> std::io::Result<u64> {
        let meta = self.files[i].file.metadata()?;
        let size = meta.len();
        self.files[i].size = size;
        let t = &mut self.files[i];
        // Shrunk, or rewritten from the start past our offset (copytruncate, then writes)?
        if size < t.offset || (size > t.offset && !t.fp.head_matches(&t.file).unwrap_or(true)) {
            self.truncated(i);
            return Ok(1);
        }
        let file = Arc::clone(&self.files[i].file);
        let n = self.read_range(i, &file, size)?;
        let t = &self.files[i];
        self.tracker
            .progress(t.id, t.last_end, t.size, t.fp, &t.path);
        Ok(n)
    }

    /// Reads `file` from the tailed file's offset up to `limit` (bounded per turn).
    fn read_range(&mut self, i: usize, file: &File, limit: u64) -> std::io::Result<u64> {
        let mut chunk = vec![0u8; CHUNK];
        let start = self.files[i].offset;
        let mut lines = 0u64;
        while self.files[i].offset < limit && self.files[i].offset - start < MAX_PER_TURN {
            let want = ((limit - self.files[i].offset) as usize).min(CHUNK);
            let n = read_at(file, &mut chunk[..want], self.files[i].offset)?;
            if n == 0 {
                break;
            }
            let base = self.files[i].offset;
            let mut from = 0;
            for (pos, _) in chunk[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
                let end = base + pos as u64 + 1;
                let piece_end = pos;
                self.take_piece(i, &chunk[from..piece_end], true, end);
                from = pos + 1;
                lines += 1;
                if self.shutdown.load(Ordering::Relaxed) {
                    // Stop mid-chunk: only lines handed over count as read.
                    self.files[i].offset = end;
                    self.files[i].buf.clear();
                    self.metrics
                        .read(&self.files[i].label_path, end - start, lines);
                    return Ok(end - start);
                }
            }
            if from < n {
                let rest = chunk[from..n].to_vec();
                self.take_piece(i, &rest, false, base + n as u64);
            }
            self.files[i].offset = base + n as u64;
            self.metrics
                .read(&self.files[i].label_path, n as u64, lines);
            lines = 0;
        }
        let read = self.files[i].offset - start;
        self.grow_fingerprint(i);
        Ok(read)
    }

    /// Handles bytes up to a newline (`complete`, ending at offset `end`) or up to the end
    /// of what was read. An over-long line keeps its first `max_line_bytes` bytes until its
    /// newline arrives, so its end offset is exact.
    fn take_piece(&mut self, i: usize, piece: &[u8], complete: bool, end: u64) {
        let max = self.config.max_line_bytes;
        let t = &mut self.files[i];
        if complete && t.buf.is_empty() && !t.skipping && piece.len() <= max {
            self.line(i, piece, end);
            return;
        }
        let room = max.saturating_sub(t.buf.len());
        if piece.len() > room {
            t.buf.extend_from_slice(&piece[..room]);
            t.skipping = true;
        } else if !t.skipping {
            t.buf.extend_from_slice(piece);
        }
        if !complete {
            return;
        }
        let line = std::mem::take(&mut t.buf);
        if !std::mem::take(&mut t.skipping) {
            self.line(i, &line, end);
            return;
        }
        match self.config.long_lines {
            LongLines::Truncate => {
                self.metrics.dropped(LineDropReason::Truncated, 1);
                self.line(i, &line, end);
            }
            LongLines::Drop => {
                self.metrics.dropped(LineDropReason::TooLong, 1);
                self.files[i].last_end = end;
            }
        }
    }

    /// One complete line (without its newline) ending at offset `end`.
    fn line(&mut self, i: usize, bytes: &[u8], end: u64) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.metrics.dropped(LineDropReason::InvalidUtf8, 1);
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        let parsed = self.inputs[self.files[i].input].parser.parse(text);
        if parsed.malformed {
            self.metrics.dropped(LineDropReason::Malformed, 1);
        }
        let Parsed {
            timestamp_ns,
            line,
            labels,
            partial,
            ..
        } = parsed;
        let meta = Meta {
            timestamp_ns,
            labels,
        };
        let t = &mut self.files[i];
        // Docker / CRI split long lines into fragments.
        if partial {
            match &mut t.partial {
                Some((_, text)) => {
                    if text.len() < self.config.max_line_bytes {
                        text.push_str(&line);
                    }
                }
                None => t.partial = Some((meta, line)),
            }
            return;
        }
        let (meta, line) = match t.partial.take() {
            Some((first, mut text)) => {
                text.push_str(&line);
                (first, text)
            }
            None => (meta, line),
        };
        let prev_end = t.last_end;
        t.last_end = end;
        match &mut t.joiner {
            None => self.emit(i, meta, line, end),
            Some(j) => {
                if let Some((done, included)) = j.push(&line, meta) {
                    let done_end = if included { end } else { prev_end };
                    self.emit(i, done.first, done.text, done_end);
                }
            }
        }
    }

    fn emit(&mut self, i: usize, meta: Meta, line: String, end: u64) {
        let t = &mut self.files[i];
        let labels = match t.label_cache.get(&meta.labels) {
            Some(l) => l.clone(),
            None => {
                let input = &self.inputs[t.input];
                let rendered: Arc<str> = render_labels(
                    meta.labels
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .chain(input.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .chain(std::iter::once(("filename", t.label_path.as_str())))
                        .chain(
                            self.config
                                .common_labels
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str())),
                        ),
                )
                .into();
                if t.label_cache.len() < 256 {
                    t.label_cache.insert(meta.labels, rendered.clone());
                }
                rendered
            }
        };
        let entry = LogEntry {
            labels,
            timestamp_ns: meta.timestamp_ns.unwrap_or_else(now_ns),
            line,
            source: Some((t.id, end)),
        };
        self.sink.send(entry);
    }

    /// Emits joined entries that waited too long.
    fn flush_expired(&mut self) {
        let now = Instant::now();
        for i in 0..self.files.len() {
            let t = &mut self.files[i];
            let end = t.last_end;
            if let Some(done) = t.joiner.as_mut().and_then(|j| j.expired(now)) {
                self.emit(i, done.first, done.text, end);
            }
        }
    }

    /// Emits whatever is pending in file `i` (it is closing).
    fn flush_pending(&mut self, i: usize) {
        let end = self.files[i].last_end;
        if let Some((meta, text)) = self.files[i].partial.take() {
            self.emit(i, meta, text, end);
        }
        if let Some(done) = self.files[i].joiner.as_mut().and_then(Joiner::take) {
            self.emit(i, done.first, done.text, end);
        }
    }

    /// A file's head grows until it covers [`HEAD_BYTES`]: keep the fingerprint current.
    fn grow_fingerprint(&mut self, i: usize) {
        let t = &mut self.files[i];
        if t.fp.head_len >= HEAD_BYTES || t.size <= t.fp.head_len {
            return;
        }
        if let Ok(fp) = Fingerprint::of(&t.file) {
            if t.fp.same_file(&fp, &t.file).unwrap_or(false) {
                t.fp = fp;
            }
        }
    }

    /// Rotation and truncation checks; returns false when file `i` was removed.
    fn check(&mut self, i: usize) -> bool {
        let now = Instant::now();
        // Rewritten from the start (truncated, then grown past our offset)?
        if now.duration_since(self.files[i].last_head_check) >= Duration::from_secs(1) {
            self.files[i].last_head_check = now;
            let t = &mut self.files[i];
            if t.fp.head_len > 0 && !t.fp.head_matches(&t.file).unwrap_or(true) {
                self.truncated(i);
            }
        }
        let t = &self.files[i];
        if t.rotated_since.is_none() {
            let moved = match std::fs::metadata(&t.path) {
                Ok(m) => {
                    #[cfg(unix)]
                    let id = {
                        use std::os::unix::fs::MetadataExt;
                        (m.dev(), m.ino())
                    };
                    #[cfg(not(unix))]
                    let id = (t.fp.dev, t.fp.ino);
                    id != (t.fp.dev, t.fp.ino)
                }
                Err(_) => true,
            };
            if moved {
                tracing::info!(path = %t.label_path, "file rotated away; draining it");
                self.files[i].rotated_since = Some(now);
                // The file now at the path (if any) is picked up at once.
                self.last_discover = None;
            }
            return true;
        }
        let t = &self.files[i];
        let at_end = t.offset >= t.size;
        let deleted = t.file.metadata().map(|m| nlink(&m) == 0).unwrap_or(true);
        let waited = t
            .rotated_since
            .is_some_and(|s| now.duration_since(s) >= self.config.rotate_wait);
        if at_end && (deleted || waited) {
            self.flush_pending(i);
            let t = self.files.swap_remove(i);
            tracing::info!(path = %t.label_path, "finished a rotated file");
            self.tracker.close(t.id, t.last_end);
            self.metrics.file_forgotten(&t.label_path);
            return false;
        }
        true
    }

    /// The file shrank under us (copytruncate) or was rewritten: read what we had not read
    /// yet from the copy, then start a new generation from offset 0.
    fn truncated(&mut self, i: usize) {
        let t = &self.files[i];
        tracing::warn!(path = %t.label_path, offset = t.offset, "file truncated");
        if let Some((copy, len)) = find_copy(&t.path, &t.fp, t.offset) {
            tracing::info!(copy = %copy.display(), from = t.offset, to = len, "reading the rest from the rotated copy");
            if let Ok(file) = File::open(&copy) {
                while self.files[i].offset < len {
                    match self.read_range(i, &file, len) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
        } else if t.size > 0 && t.offset > t.size {
            tracing::warn!(path = %t.label_path, "no rotated copy found: bytes written after the last read and before the truncation cannot be recovered");
        }
        self.flush_pending(i);
        let t = &mut self.files[i];
        self.tracker.close(t.id, t.last_end);
        t.offset = 0;
        t.last_end = 0;
        t.buf.clear();
        t.skipping = false;
        t.fp = Fingerprint::of(&t.file).unwrap_or(t.fp);
        t.id = self.tracker.register(&t.path, t.fp, 0);
    }
}

/// A sibling of `path` that starts like `fp` and holds more than `offset` bytes: the copy
/// made by copytruncate. The most recently modified one wins.
fn find_copy(path: &Path, fp: &Fingerprint, offset: u64) -> Option<(PathBuf, u64)> {
    if fp.head_len == 0 {
        return None;
    }
    let dir = path.parent()?;
    let mut best: Option<(PathBuf, u64, SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p == path {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.len() <= offset {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        if fp.head_matches(&f).unwrap_or(false) {
            let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
            if best.as_ref().is_none_or(|b| mtime > b.2) {
                best = Some((p, meta.len(), mtime));
            }
        }
    }
    best.map(|(p, len, _)| (p, len))
}
