//! The file server: the reader loop on its own thread. It asks the paths provider for files,
//! recovers files rotated while the agent was stopped, gives every [`FileWatcher`] its turn
//! (bounded per turn), passes lines through the file's decoder, pipeline stages and labels,
//! and hands entries to the sink, which waits on the byte budget whenever the pusher falls
//! behind: the files on disk are the buffer.
//!
//! Identity, whatever the globs name: a file is known by device and inode. A file rotated by
//! renaming and found again by a glob under its new name goes on being tailed there; the
//! copy copytruncate leaves is read only for the bytes not read before the truncation (as the
//! continuation of the same generation), then kept at its end; a new file that starts like a
//! tailed file and holds nothing that file does not is such a copy, and is kept at its end too.
//! Their positions are saved, so a restart does not read them again either.
//!
//! Each file has its own instance of its input's pipeline stages. An entry's acknowledgement
//! never passes the first line a stage still holds (a multi-line block, a partial container
//! line), so a crash re-reads held lines instead of losing them.
//!
//! Labels from a file's location ([`super::metadata`]: a Docker container's, a Kubernetes
//! pod's) are read when it is opened, and, for Docker, read again every second while it is
//! tailed (a renamed container, a changed label); a container log that appears before its
//! metadata is opened once the metadata is there (or after `rotate_wait`, without it).
//!
//! A reload ([`Reconfigure`]) is applied between turns: a file whose input is unchanged goes
//! on untouched; one whose input changed goes on at the same offset with the new stages and
//! labels; one no longer named by any input stops, and its position is kept (once what was
//! read is acknowledged) for an input that names it again.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::budget::ByteBudget;
use super::checkpointer::Checkpointer;
use super::config::ReaderConfig;
use super::decode::LineDecoder;
use super::entry::{FileId, LogEntry};
use super::fingerprint::{dev_ino, read_at, Fingerprint};
use super::framing::Line;
use super::input::Input;
use super::labels::{StreamLabels, ValueBudget};
use super::metadata::{Located, SourceMetadata};
use super::parse::{Format, Parser};
use super::paths::{self, FileMeta, Found, SkipReason};
use super::recovery::find_orphans;
use super::stages::{Entry, Outcome, Pipeline};
use super::watcher::{Check, FileWatcher, LineHandler, Read, RotatedCopy};
use crate::internal_events::LogMetrics;

/// How often retained positions are checked against the files at their paths.
const PRUNE_PERIOD: Duration = Duration::from_secs(10);

/// Bytes compared at the end of a suspected copy (see [`FileServer::open`]).
const COPY_CHECK_BYTES: u64 = 4096;

/// What the reader hands the pusher, in file order.
#[derive(Debug)]
pub enum Item {
    /// An entry to ship.
    Entry(LogEntry),
    /// Lines up to this offset of this file need no shipping (dropped by a stage, or too
    /// long): acknowledge them with the entries before.
    Ack(FileId, u64),
}

/// Where entries go; `false` means the pipeline is stopping.
pub trait EntrySink: Send {
    /// Hands over one entry (may wait for room).
    fn send(&mut self, entry: LogEntry) -> bool;
    /// Acknowledges lines that are not shipped.
    fn ack(&mut self, id: FileId, offset: u64) -> bool;
}

/// The sink of the real pipeline: a channel to the pusher, bounded by the byte budget.
#[derive(Debug)]
pub struct BudgetedSink {
    /// To the pusher.
    pub tx: mpsc::UnboundedSender<Item>,
    /// Bytes read but not yet acknowledged.
    pub budget: Arc<ByteBudget>,
    /// Set when the pipeline stops: a waiting send gives up.
    pub stop: Arc<AtomicBool>,
}

impl EntrySink for BudgetedSink {
    fn send(&mut self, entry: LogEntry) -> bool {
        let size = entry.size();
        while !self.budget.acquire(size, Duration::from_millis(200)) {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
        self.tx.send(Item::Entry(entry)).is_ok()
    }

    fn ack(&mut self, id: FileId, offset: u64) -> bool {
        self.tx.send(Item::Ack(id, offset)).is_ok()
    }
}

/// New inputs and reader settings, applied by the reader between turns.
#[derive(Debug)]
pub struct Reconfigure {
    /// Reader settings.
    pub reader: ReaderConfig,
    /// The inputs, compiled.
    pub inputs: Vec<Input>,
}

/// One tailed file: the watcher (bytes, lines, rotation), the decoder, the pipeline stages
/// and labels, under the id its acknowledgements are tracked by.
struct Tailed {
    id: FileId,
    input: usize,
    label_path: String,
    /// Labels from the file's location (a container's, a pod's).
    source_labels: Vec<(String, String)>,
    watcher: FileWatcher,
    decoder: LineDecoder,
    labels: StreamLabels,
    pipeline: Option<Pipeline>,
    /// A `limit` stage asked not to read before this instant.
    paused_until: Option<Instant>,
    /// Registered at its end as the copy of another file, and read nothing since: a
    /// truncation of that file may take it over.
    fresh_copy: Option<u64>,
}

/// What a watcher's lines go through: the file's decoder, stages and labels, into the sink.
struct Feed<'a, S> {
    id: FileId,
    decoder: &'a mut LineDecoder,
    labels: &'a mut StreamLabels,
    pipeline: Option<&'a mut Pipeline>,
    holds: bool,
    parser: &'a Parser,
    budget: &'a mut ValueBudget,
    sink: &'a mut S,
    metrics: &'a LogMetrics,
    label_path: &'a str,
    shutdown: &'a AtomicBool,
    paused_until: &'a mut Option<Instant>,
    out: Vec<Outcome>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

impl<S: EntrySink> Feed<'_, S> {
    /// The offset acknowledgements may reach: the start of the first line a stage holds.
    fn floor(&self) -> Option<u64> {
        if !self.holds {
            return None;
        }
        let p = self.pipeline.as_deref()?;
        p.held_sources().iter().map(|(start, _)| *start).min()
    }

    /// Ships what the stages let out, acknowledging dropped entries.
    fn deliver(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let floor = self.floor();
        let safe = |end: u64| floor.map_or(end, |f| end.min(f));
        for o in std::mem::take(&mut self.out) {
            match o {
                Outcome::Ship(e) => {
                    let end = e.source.map(|(_, end)| end);
                    let (line, ts, labels) = e.into_parts();
                    let (promoted, ts) = match self.parser.format() {
                        Format::Json => {
                            let first = line.split('\n').next().unwrap_or("");
                            let (json_ts, promoted, malformed) = self.parser.meta(first);
                            if malformed {
                                self.metrics
                                    .dropped(crate::internal_events::LineDropReason::Malformed, 1);
                            }
                            (promoted, json_ts.unwrap_or(ts))
                        }
                        _ => (Vec::new(), ts),
                    };
                    let stream =
                        self.labels
                            .render_piped(labels, promoted, self.budget, self.metrics);
                    self.sink.send(LogEntry {
                        labels: stream.labels,
                        tenant: stream.tenant,
                        timestamp_ns: ts,
                        line,
                        source: end.map(|end| (self.id, safe(end))),
                    });
                }
                Outcome::Dropped(d) => {
                    self.metrics.dropped_by(&d.reason, 1);
                    if let Some((_, end)) = d.entry.source {
                        self.sink.ack(self.id, safe(end));
                    }
                }
            }
        }
    }

    /// Lets out every entry the stages hold (the file is closing, or its input changed).
    fn flush(&mut self) {
        if let Some(p) = self.pipeline.as_deref_mut() {
            p.flush_all(&mut self.out);
        }
        self.deliver();
    }

    /// Lets out held entries whose wait is over.
    fn flush_expired(&mut self, now: Instant) {
        if let Some(p) = self.pipeline.as_deref_mut() {
            if p.next_deadline().is_some_and(|d| d <= now) {
                p.flush_expired(now, &mut self.out);
            }
        }
        self.deliver();
    }
}

impl<S: EntrySink> LineHandler for Feed<'_, S> {
    fn line(&mut self, line: Line<'_>) -> ControlFlow<()> {
        let d = match self.decoder.line(line, self.metrics) {
            Ok(d) => d,
            Err(end) => {
                self.sink.ack(self.id, end);
                return self.go_on();
            }
        };
        match self.pipeline.as_deref_mut() {
            None => {
                let parsed = self.parser.parse(d.text);
                if parsed.malformed {
                    self.metrics
                        .dropped(crate::internal_events::LineDropReason::Malformed, 1);
                }
                let labels = self.labels.render(parsed.labels, self.budget, self.metrics);
                self.sink.send(LogEntry {
                    labels,
                    tenant: None,
                    timestamp_ns: parsed.timestamp_ns.unwrap_or_else(now_ns),
                    line: parsed.line,
                    source: Some((self.id, d.end)),
                });
            }
            Some(p) => {
                let mut entry = Entry::new(d.text, now_ns(), self.labels.initial());
                entry.source = Some((d.start, d.end));
                p.process(entry, &mut self.out);
                let throttle = p.take_throttle();
                self.deliver();
                if let Some(until) = throttle {
                    *self.paused_until = Some(until);
                    return ControlFlow::Break(());
                }
            }
        }
        self.go_on()
    }

    fn chunk_read(&mut self, bytes: u64, lines: u64) {
        self.metrics.read(self.label_path, bytes, lines);
    }
}

impl<S> Feed<'_, S> {
    /// Stop mid-chunk at shutdown: only lines handed over count as read.
    fn go_on(&self) -> ControlFlow<()> {
        if self.shutdown.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Whether `a` and `b` hold the same `n` bytes before `at`.
fn same_bytes_before(a: &File, b: &File, at: u64, n: u64) -> bool {
    let n = n.min(at) as usize;
    let mut x = vec![0u8; n];
    let mut y = vec![0u8; n];
    let from = at - n as u64;
    let read_all = |f: &File, buf: &mut [u8]| -> bool {
        let mut got = 0;
        while got < buf.len() {
            match read_at(f, &mut buf[got..], from + got as u64) {
                Ok(0) | Err(_) => return false,
                Ok(k) => got += k,
            }
        }
        true
    };
    read_all(a, &mut x) && read_all(b, &mut y) && x == y
}

/// The reader loop.
pub struct FileServer<S: EntrySink> {
    config: ReaderConfig,
    inputs: Vec<Input>,
    budgets: Vec<ValueBudget>,
    /// Each input's labels from file locations.
    sources: Vec<SourceMetadata>,
    /// Container logs seen before their metadata, since when.
    pending: HashMap<PathBuf, Instant>,
    checkpointer: Arc<Checkpointer>,
    metrics: LogMetrics,
    sink: S,
    files: Vec<Tailed>,
    shutdown: Arc<AtomicBool>,
    control: std_mpsc::Receiver<Reconfigure>,
    last_discover: Option<Instant>,
    last_prune: Instant,
    /// New files that start like a tailed file but hold more than it: a copy of a file whose
    /// truncation its watcher has not noticed yet, most likely. Left for that watcher.
    deferred: HashMap<(u64, u64), Instant>,
    /// Paths already warned about (a glob matches them but they cannot be tailed).
    warned: HashSet<PathBuf>,
}

impl<S: EntrySink> FileServer<S> {
    /// A server for `inputs`; the checkpointer holds the saved positions (retained).
    pub fn new(
        config: ReaderConfig,
        inputs: Vec<Input>,
        checkpointer: Arc<Checkpointer>,
        metrics: LogMetrics,
        sink: S,
        shutdown: Arc<AtomicBool>,
        control: std_mpsc::Receiver<Reconfigure>,
    ) -> Self {
        let budgets = inputs
            .iter()
            .map(|_| ValueBudget::new(config.limits.max_label_values))
            .collect();
        let sources = inputs
            .iter()
            .map(|i| SourceMetadata::new(&i.source))
            .collect();
        FileServer {
            inputs,
            budgets,
            sources,
            pending: HashMap::new(),
            config,
            checkpointer,
            metrics,
            sink,
            files: Vec::new(),
            shutdown,
            control,
            last_discover: None,
            last_prune: Instant::now(),
            deferred: HashMap::new(),
            warned: HashSet::new(),
        }
    }

    /// Runs until shutdown.
    pub fn run(mut self) {
        self.discover();
        self.recover_orphans();
        // Gauges are refreshed once a second, not on every turn of the loop.
        let mut last_status = Instant::now() - Duration::from_secs(1);
        while !self.shutdown.load(Ordering::Relaxed) {
            while let Ok(rc) = self.control.try_recv() {
                self.reconfigure(rc);
            }
            let mut progressed = false;
            let mut i = 0;
            while i < self.files.len() {
                if self.shutdown.load(Ordering::Relaxed) {
                    self.flush_all();
                    return;
                }
                // Between turns too: a file rotated in quickly is picked up before it is gone.
                if self.discovery_due() {
                    self.discover();
                }
                match self.pump(i) {
                    Ok(n) => progressed |= n > 0,
                    Err(e) => {
                        tracing::warn!(path = %self.files[i].label_path, error = %e, "read failed");
                        self.checkpointer.read_failed(self.files[i].id, &e);
                    }
                }
                if self.check(i) {
                    i += 1;
                }
            }
            if self.discovery_due() {
                self.discover();
            }
            self.flush_expired();
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                self.refresh_sources();
                self.metrics.files_watched(self.files.len());
                for (path, lag) in self.checkpointer.lags() {
                    self.metrics.file_lag(&path, lag);
                }
            }
            if self.last_prune.elapsed() >= PRUNE_PERIOD {
                self.last_prune = Instant::now();
                for s in &mut self.sources {
                    s.prune();
                }
                self.checkpointer.prune_retained(|p| {
                    std::fs::metadata(&p.path).is_ok_and(|m| {
                        let (dev, ino) = dev_ino(&m);
                        (dev, ino) == (p.fingerprint.dev, p.fingerprint.ino)
                    })
                });
            }
            if !progressed {
                std::thread::sleep(self.config.poll_interval);
            }
        }
        self.flush_all();
    }

    fn discovery_due(&self) -> bool {
        self.last_discover
            .is_none_or(|t| t.elapsed() >= self.config.discover_interval)
    }

    fn discover(&mut self) {
        self.last_discover = Some(Instant::now());
        let mut skipped = HashMap::new();
        for (input, found) in paths::discover(self.inputs.iter().map(|i| &i.globs)) {
            match found {
                Found::File(path, meta) => {
                    if let Err(reason) = self.open(input, &path, meta) {
                        skipped.insert(path, (input, reason));
                    }
                }
                Found::Skipped(path, reason) => {
                    skipped.insert(path, (input, reason));
                }
            }
        }
        for (path, (_, reason)) in &skipped {
            if self.warned.len() < 100_000 && self.warned.insert(path.clone()) {
                tracing::warn!(path = %path.display(), reason = reason.label(), "a log input's glob matches a path that cannot be tailed; skipping it");
            }
        }
        for r in SkipReason::ALL {
            let n = skipped.values().filter(|v| v.1 == r).count();
            self.metrics.skipped_paths(r, n);
        }
        self.checkpointer.set_unreadable(
            skipped
                .iter()
                .map(|(path, (input, r))| {
                    (
                        *input,
                        path.to_string_lossy().into_owned(),
                        r.describe().to_owned(),
                    )
                })
                .collect(),
        );
    }

    /// Starts tailing `path` unless that file (by device and inode) is tailed already;
    /// `Err` when it cannot be read.
    fn open(&mut self, input: usize, path: &Path, meta: FileMeta) -> Result<(), SkipReason> {
        if let Some(t) = self
            .files
            .iter_mut()
            .find(|t| t.watcher.is(meta.dev, meta.ino))
        {
            self.deferred.remove(&(meta.dev, meta.ino));
            if t.watcher.path() != path || t.watcher.is_rotated() {
                t.watcher.moved_to(path);
            }
            return Ok(());
        }
        if meta.len == 0 {
            // Not yet: a file without a first byte has no identity to check later. Tailed
            // from an empty head, a copytruncate before the first read (the file filled,
            // copied, emptied and refilled while other files had their turn) would go
            // unnoticed and the copied lines be lost; discovery looks again shortly.
            return Ok(());
        }
        if let Located::Pending(why) = self.sources[input].labels(path) {
            let since = *self
                .pending
                .entry(path.to_owned())
                .or_insert_with(Instant::now);
            if since.elapsed() < self.config.rotate_wait {
                return Ok(());
            }
            if self.warned.insert(path.to_owned()) {
                tracing::warn!(path = %path.display(), error = %why, "no container metadata; tailing the log without its labels until it can be read");
            }
        }
        self.pending.remove(path);
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(SkipReason::Unreadable)
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open");
                return Err(SkipReason::Unreadable);
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open");
                return Ok(());
            }
        };
        let Ok(fp) = Fingerprint::of(&file) else {
            return Ok(());
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(meta.len);
        if let Some(read) = self.checkpointer.resume_retiring(meta.dev, meta.ino) {
            // Stopped by a reload a moment ago, named again before its lines were all
            // acknowledged: it goes on where reading stopped.
            self.add(input, path, file, fp, read.min(size), None, None);
            return Ok(());
        }
        if let Some(pos) = self.checkpointer.take_retained(meta.dev, meta.ino) {
            if pos.fingerprint.same_file(&fp, &file).unwrap_or(false) {
                let start = if pos.offset <= size {
                    pos.offset
                } else {
                    tracing::warn!(path = %path.display(), "file shrank while it was not tailed; reading it from the start");
                    0
                };
                self.add(input, path, file, fp, start, None, None);
                return Ok(());
            }
        }
        // A new file starting like a tailed one: a copy (copytruncate, or `cp`)?
        let original = self.files.iter().position(|t| {
            let f = t.watcher.fingerprint();
            f.head_len > 0 && f.head_len <= size && f.head_matches(&file).unwrap_or(false)
        });
        if let Some(o) = original {
            let orig = &self.files[o].watcher;
            let orig_size = orig.file().metadata().map(|m| m.len()).unwrap_or(0);
            if orig_size >= size && same_bytes_before(orig.file(), &file, size, COPY_CHECK_BYTES) {
                // Every byte of it is in the tailed file: keep it at its end.
                self.deferred.remove(&(meta.dev, meta.ino));
                tracing::info!(path = %path.display(), original = %orig.path().display(), "a copy of a tailed file; kept at its end, not read");
                self.add(input, path, file, fp, size, None, Some(size));
                return Ok(());
            }
            let since = *self
                .deferred
                .entry((meta.dev, meta.ino))
                .or_insert_with(Instant::now);
            if since.elapsed() < self.config.rotate_wait {
                return Ok(());
            }
            tracing::info!(path = %path.display(), "a file starting like a tailed one was not claimed as its copy; reading it as a file of its own");
        }
        self.deferred.remove(&(meta.dev, meta.ino));
        self.add(input, path, file, fp, 0, None, None);
        Ok(())
    }

    fn new_labels(
        &self,
        input: usize,
        label_path: &str,
        source_labels: &[(String, String)],
    ) -> StreamLabels {
        let spec = &self.inputs[input];
        let name = spec
            .job
            .clone()
            .unwrap_or_else(|| format!("inputs[{input}]"));
        // The input's static labels first: they win over a location's on the same name.
        let mut own = spec.labels.clone();
        own.extend(source_labels.iter().cloned());
        StreamLabels::new(
            &own,
            label_path,
            spec.filename_label,
            &self.config.common_labels,
            &name,
            self.config.limits,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        input: usize,
        path: &Path,
        file: File,
        fp: Fingerprint,
        start: u64,
        rotated: Option<Instant>,
        fresh_copy: Option<u64>,
    ) {
        let id = self.checkpointer.register(path, fp, start);
        tracing::info!(path = %path.display(), offset = start, "tailing");
        let label_path = path.to_string_lossy().into_owned();
        let source_labels = match self.sources[input].labels(path) {
            Located::Labels(l) => l,
            Located::Pending(_) => Vec::new(),
        };
        let labels = self.new_labels(input, &label_path, &source_labels);
        self.checkpointer
            .describe(id, input, labels.fixed(), rotated.is_some());
        self.files.push(Tailed {
            id,
            input,
            labels,
            label_path,
            source_labels,
            watcher: FileWatcher::new(path, file, fp, start, self.config.max_line_bytes, rotated),
            decoder: LineDecoder::new(self.config.long_lines, start),
            pipeline: self.inputs[input].pipeline(),
            paused_until: None,
            fresh_copy,
        });
    }

    /// Drains the files of saved positions that discovery did not find at their path.
    fn recover_orphans(&mut self) {
        let tailed: HashSet<(u64, u64)> = self
            .files
            .iter()
            .map(|t| {
                let fp = t.watcher.fingerprint();
                (fp.dev, fp.ino)
            })
            .collect();
        let retained = self.checkpointer.retained();
        for o in find_orphans(&retained, &tailed) {
            let input = o.path.parent().map_or(0, |dir| {
                paths::input_for_dir(self.inputs.iter().map(|i| &i.globs), dir)
            });
            if self.inputs.is_empty() {
                return;
            }
            let _ = self.checkpointer.take_retained(o.saved.0, o.saved.1);
            tracing::info!(path = %o.path.display(), saved = %o.saved_path, offset = o.offset, "draining a file rotated while the agent was stopped");
            self.add(
                input,
                &o.path,
                o.file,
                o.fingerprint,
                o.offset,
                Some(Instant::now()),
                None,
            );
        }
    }

    /// The lines' way for file `i`.
    fn feed(&mut self, i: usize) -> (&mut FileWatcher, Feed<'_, S>) {
        let FileServer {
            files,
            inputs,
            budgets,
            sink,
            metrics,
            shutdown,
            ..
        } = self;
        let t = &mut files[i];
        let input = &inputs[t.input];
        feed_of(t, input, &mut budgets[t.input], sink, metrics, shutdown)
    }

    /// Reads what is new in file `i`; returns the bytes read (1 after a truncation).
    fn pump(&mut self, i: usize) -> std::io::Result<u64> {
        if let Some(until) = self.files[i].paused_until {
            if Instant::now() < until {
                return Ok(0);
            }
            self.files[i].paused_until = None;
        }
        let (watcher, mut feed) = self.feed(i);
        let n = match watcher.read(&mut feed)? {
            Read::Truncated => {
                self.truncated(i);
                return Ok(1);
            }
            Read::Bytes(n) => n,
            Read::Stopped => 1,
        };
        let t = &mut self.files[i];
        if n > 0 {
            t.fresh_copy = None;
        }
        self.checkpointer.progress(
            t.id,
            t.decoder.last_end(),
            t.watcher.size(),
            t.watcher.fingerprint(),
            t.watcher.path(),
        );
        Ok(n)
    }

    /// Rotation and truncation checks; returns false when file `i` was closed.
    fn check(&mut self, i: usize) -> bool {
        match self.files[i]
            .watcher
            .check(Instant::now(), self.config.rotate_wait)
        {
            Check::Unchanged => true,
            Check::RotatedAway => {
                tracing::info!(path = %self.files[i].label_path, "file rotated away; draining it");
                self.checkpointer.rotated(self.files[i].id);
                // The file now at the path (and this one under a new name) is picked up at once.
                self.last_discover = None;
                true
            }
            Check::Truncated => {
                self.truncated(i);
                true
            }
            Check::Finished => {
                self.feed(i).1.flush();
                let t = self.files.swap_remove(i);
                tracing::info!(path = %t.label_path, "finished a rotated file");
                self.checkpointer.close(t.id, t.decoder.last_end());
                self.metrics.file_forgotten(&t.label_path);
                false
            }
        }
    }

    /// File `i` shrank (copytruncate) or was rewritten. When the copy is found, what was not
    /// read yet is read from it, as the continuation of the same generation (same id,
    /// stages, labels), and the copy is kept at its end; the file itself starts a new
    /// generation at offset 0.
    fn truncated(&mut self, i: usize) {
        let offset = self.files[i].decoder.last_end();
        tracing::warn!(path = %self.files[i].label_path, offset, "file truncated");
        // Copies read by a tailer of their own are not taken over.
        let busy: HashSet<(u64, u64)> = self
            .files
            .iter()
            .filter(|t| t.fresh_copy.is_none())
            .map(|t| {
                let f = t.watcher.fingerprint();
                (f.dev, f.ino)
            })
            .collect();
        let copy = self.files[i]
            .watcher
            .truncated(&|dev, ino| busy.contains(&(dev, ino)));
        match copy {
            Some(copy) => self.continue_in_copy(i, copy),
            None => self.next_generation(i),
        }
    }

    /// The rest of file `i`'s generation is read from `copy`; file `i` starts over.
    fn continue_in_copy(&mut self, i: usize, copy: RotatedCopy) {
        let me = {
            let f = self.files[i].watcher.fingerprint();
            (f.dev, f.ino)
        };
        // A copy registered at its end by discovery is taken over.
        if let Some(j) = self
            .files
            .iter()
            .position(|t| t.watcher.is(copy.fingerprint.dev, copy.fingerprint.ino))
        {
            let t = self.files.swap_remove(j);
            self.checkpointer.forget(t.id);
        }
        let Some(i) = self.files.iter().position(|t| t.watcher.is(me.0, me.1)) else {
            return;
        };
        let start = self.files[i].decoder.last_end().min(copy.len);
        tracing::info!(copy = %copy.path.display(), from = start, to = copy.len, "reading the rest from the rotated copy");
        let input = self.files[i].input;
        let fresh_labels = self.new_labels(
            input,
            &self.files[i].label_path,
            &self.files[i].source_labels,
        );
        let fresh_pipeline = self.inputs[input].pipeline();
        let t = &mut self.files[i];
        let old_id = t.id;
        let mut decoder =
            std::mem::replace(&mut t.decoder, LineDecoder::new(self.config.long_lines, 0));
        decoder.restart(start);
        let labels = std::mem::replace(&mut t.labels, fresh_labels);
        let pipeline = std::mem::replace(&mut t.pipeline, fresh_pipeline);
        t.id = self
            .checkpointer
            .register(t.watcher.path(), t.watcher.fingerprint(), 0);
        let label_path = t.label_path.clone();
        self.checkpointer
            .continue_in(old_id, &copy.path, copy.fingerprint, copy.len);
        let watcher = FileWatcher::new(
            &copy.path,
            copy.file,
            copy.fingerprint,
            start,
            self.config.max_line_bytes,
            // Draining, unless a glob names the copy (discovery then keeps it in place).
            Some(Instant::now()),
        );
        let source_labels = t.source_labels.clone();
        self.files.push(Tailed {
            id: old_id,
            input,
            label_path,
            source_labels,
            watcher,
            decoder,
            labels,
            pipeline,
            paused_until: None,
            fresh_copy: None,
        });
        self.last_discover = None;
    }

    /// Closes the generation file `i` was reading (its held entries let out) and starts the
    /// next one, from offset 0.
    fn next_generation(&mut self, i: usize) {
        self.feed(i).1.flush();
        let t = &mut self.files[i];
        self.checkpointer.close(t.id, t.decoder.last_end());
        t.decoder.restart(0);
        t.id = self
            .checkpointer
            .register(t.watcher.path(), t.watcher.fingerprint(), 0);
        self.checkpointer
            .describe(t.id, t.input, t.labels.fixed(), false);
    }

    /// Reads the location labels of files whose labels may change (Docker's metadata) again;
    /// a file whose labels changed goes on with the new ones.
    fn refresh_sources(&mut self) {
        for i in 0..self.files.len() {
            let input = self.files[i].input;
            if !self.sources[input].changes() {
                continue;
            }
            let path = PathBuf::from(&self.files[i].label_path);
            let Located::Labels(now) = self.sources[input].labels(&path) else {
                continue;
            };
            if now.is_empty() || now == self.files[i].source_labels {
                continue;
            }
            tracing::info!(path = %self.files[i].label_path, "container metadata changed; new lines get the new labels");
            // What the stages hold leaves with the labels it was read under.
            self.feed(i).1.flush();
            let labels = self.new_labels(input, &self.files[i].label_path, &now);
            let t = &mut self.files[i];
            t.source_labels = now;
            t.labels = labels;
            self.checkpointer
                .describe(t.id, t.input, t.labels.fixed(), t.watcher.is_rotated());
        }
    }

    /// Emits held entries that waited too long.
    fn flush_expired(&mut self) {
        let now = Instant::now();
        for i in 0..self.files.len() {
            if self.files[i].pipeline.is_some() {
                self.feed(i).1.flush_expired(now);
            }
        }
    }

    /// Lets out everything held (stopping).
    fn flush_all(&mut self) {
        for i in 0..self.files.len() {
            if self.files[i].pipeline.is_some() {
                self.feed(i).1.flush();
            }
        }
    }

    /// Applies new inputs and settings (a reload).
    fn reconfigure(&mut self, rc: Reconfigure) {
        let common_changed = rc.reader.common_labels != self.config.common_labels
            || rc.reader.limits != self.config.limits;
        self.config = rc.reader;
        let old_inputs = std::mem::replace(&mut self.inputs, rc.inputs);
        let mut old_budgets: Vec<Option<ValueBudget>> = std::mem::take(&mut self.budgets)
            .into_iter()
            .map(Some)
            .collect();
        // Unchanged inputs keep their value budgets.
        let mapping: Vec<Option<usize>> = old_inputs
            .iter()
            .map(|old| self.inputs.iter().position(|n| n.spec == old.spec))
            .collect();
        self.sources = self
            .inputs
            .iter()
            .map(|i| SourceMetadata::new(&i.source))
            .collect();
        self.pending.clear();
        self.budgets = (0..self.inputs.len())
            .map(|j| {
                mapping
                    .iter()
                    .position(|m| *m == Some(j))
                    .and_then(|k| old_budgets[k].take())
                    .unwrap_or_else(|| ValueBudget::new(self.config.limits.max_label_values))
            })
            .collect();
        let mut i = 0;
        while i < self.files.len() {
            let old = self.files[i].input;
            if let Some(j) = mapping[old] {
                self.files[i].input = j;
                if common_changed {
                    let t = &self.files[i];
                    let labels = self.new_labels(j, &t.label_path, &t.source_labels);
                    self.files[i].labels = labels;
                }
                i += 1;
                continue;
            }
            let path = self.files[i].watcher.path().to_owned();
            let named = self.inputs.iter().position(|n| n.globs.matches(&path));
            // The old stages let out what they hold before anything changes.
            {
                let mut budget = ValueBudget::new(self.config.limits.max_label_values);
                let FileServer {
                    files,
                    sink,
                    metrics,
                    shutdown,
                    ..
                } = self;
                let (_, mut feed) = feed_of(
                    &mut files[i],
                    &old_inputs[old],
                    &mut budget,
                    sink,
                    metrics,
                    shutdown,
                );
                feed.flush();
            }
            match named {
                Some(j) => {
                    tracing::info!(path = %path.display(), "input changed; going on with its new settings");
                    let label_path = PathBuf::from(&self.files[i].label_path);
                    let source_labels = match self.sources[j].labels(&label_path) {
                        Located::Labels(l) => l,
                        Located::Pending(_) => Vec::new(),
                    };
                    let labels = self.new_labels(j, &self.files[i].label_path, &source_labels);
                    let pipeline = self.inputs[j].pipeline();
                    let t = &mut self.files[i];
                    t.source_labels = source_labels;
                    t.input = j;
                    t.labels = labels;
                    t.pipeline = pipeline;
                    t.paused_until = None;
                    i += 1;
                }
                None => {
                    let t = self.files.swap_remove(i);
                    tracing::info!(path = %t.label_path, "input removed; stopped tailing (position kept)");
                    self.checkpointer.retire(t.id, t.decoder.last_end());
                    self.metrics.file_forgotten(&t.label_path);
                }
            }
        }
        for t in &self.files {
            self.checkpointer
                .describe(t.id, t.input, t.labels.fixed(), t.watcher.is_rotated());
        }
        self.deferred.clear();
        self.last_discover = None;
    }
}

/// The lines' way for one file: its parts, its input's parser and value budget, the sink.
fn feed_of<'a, S>(
    t: &'a mut Tailed,
    input: &'a Input,
    budget: &'a mut ValueBudget,
    sink: &'a mut S,
    metrics: &'a LogMetrics,
    shutdown: &'a AtomicBool,
) -> (&'a mut FileWatcher, Feed<'a, S>) {
    (
        &mut t.watcher,
        Feed {
            id: t.id,
            decoder: &mut t.decoder,
            labels: &mut t.labels,
            pipeline: t.pipeline.as_mut(),
            holds: input.holds,
            parser: &input.parser,
            budget,
            sink,
            metrics,
            label_path: &t.label_path,
            shutdown,
            paused_until: &mut t.paused_until,
            out: Vec::new(),
        },
    )
}
