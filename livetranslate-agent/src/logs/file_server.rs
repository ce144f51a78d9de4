//! The file server: the reader loop on its own thread. It asks the paths provider for files,
//! recovers files rotated while the agent was stopped, gives every [`FileWatcher`] its turn
//! (bounded per turn), passes lines through the file's decoder and labels, and hands entries
//! to the sink, which waits on the byte budget whenever the pusher falls behind: the files on
//! disk are the buffer.

use std::collections::HashSet;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::budget::ByteBudget;
use super::checkpointer::Checkpointer;
use super::config::ReaderConfig;
use super::decode::{Decoded, LineDecoder};
use super::entry::{FileId, LogEntry};
use super::fingerprint::Fingerprint;
use super::framing::Line;
use super::input::{Input, InputError, LogInput};
use super::labels::StreamLabels;
use super::parse::Parser;
use super::paths;
use super::positions::Positions;
use super::recovery::find_orphans;
use super::watcher::{Check, FileWatcher, LineHandler, Read};
use crate::internal_events::LogMetrics;

/// Where entries go; `false` means the pipeline is stopping.
pub trait EntrySink: Send {
    /// Hands over one entry (may wait for room).
    fn send(&mut self, entry: LogEntry) -> bool;
}

/// The sink of the real pipeline: a channel to the pusher, bounded by the byte budget.
#[derive(Debug)]
pub struct BudgetedSink {
    /// To the pusher.
    pub tx: mpsc::UnboundedSender<LogEntry>,
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
        self.tx.send(entry).is_ok()
    }
}

/// One tailed file: the watcher (bytes, lines, rotation), the decoder (entries) and its
/// labels, under the id its acknowledgements are tracked by.
struct Tailed {
    id: FileId,
    input: usize,
    label_path: String,
    watcher: FileWatcher,
    decoder: LineDecoder,
    labels: StreamLabels,
}

/// What a watcher's lines go through: the file's decoder and labels, into the sink.
struct Feed<'a, S> {
    id: FileId,
    decoder: &'a mut LineDecoder,
    labels: &'a mut StreamLabels,
    parser: &'a Parser,
    sink: &'a mut S,
    metrics: &'a LogMetrics,
    label_path: &'a str,
    shutdown: &'a AtomicBool,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

fn emit<S: EntrySink>(id: FileId, labels: &mut StreamLabels, sink: &mut S, d: Decoded) {
    sink.send(LogEntry {
        labels: labels.render(d.meta.labels),
        timestamp_ns: d.meta.timestamp_ns.unwrap_or_else(now_ns),
        line: d.text,
        source: Some((id, d.end)),
    });
}

impl<S: EntrySink> Feed<'_, S> {
    fn flush(&mut self) {
        let (id, labels, sink) = (self.id, &mut *self.labels, &mut *self.sink);
        self.decoder.flush(&mut |d| emit(id, labels, sink, d));
    }
}

impl<S: EntrySink> LineHandler for Feed<'_, S> {
    fn line(&mut self, line: Line<'_>) -> ControlFlow<()> {
        let (id, labels, sink) = (self.id, &mut *self.labels, &mut *self.sink);
        self.decoder
            .line(line, self.parser, self.metrics, &mut |d| {
                emit(id, labels, sink, d)
            });
        // Stop mid-chunk at shutdown: only lines handed over count as read.
        if self.shutdown.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn chunk_read(&mut self, bytes: u64, lines: u64) {
        self.metrics.read(self.label_path, bytes, lines);
    }
}

/// The reader loop.
pub struct FileServer<S: EntrySink> {
    config: ReaderConfig,
    inputs: Vec<Input>,
    checkpointer: Arc<Checkpointer>,
    metrics: LogMetrics,
    sink: S,
    files: Vec<Tailed>,
    saved: Positions,
    shutdown: Arc<AtomicBool>,
    last_discover: Option<Instant>,
}

impl<S: EntrySink> FileServer<S> {
    /// A server for `inputs`, resuming from `saved` positions.
    pub fn new(
        config: ReaderConfig,
        inputs: &[LogInput],
        saved: Positions,
        checkpointer: Arc<Checkpointer>,
        metrics: LogMetrics,
        sink: S,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Self, InputError> {
        Ok(FileServer {
            inputs: inputs
                .iter()
                .map(Input::compile)
                .collect::<Result<_, _>>()?,
            config,
            checkpointer,
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
        self.discover();
        self.recover_orphans();
        // Gauges are refreshed once a second, not on every turn of the loop.
        let mut last_status = Instant::now() - Duration::from_secs(1);
        while !self.shutdown.load(Ordering::Relaxed) {
            let mut progressed = false;
            let mut i = 0;
            while i < self.files.len() {
                if self.shutdown.load(Ordering::Relaxed) {
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
                self.metrics.files_watched(self.files.len());
                for f in self.checkpointer.files() {
                    self.metrics.file_lag(&f.path, f.lag());
                }
            }
            if !progressed {
                std::thread::sleep(self.config.poll_interval);
            }
        }
    }

    fn discovery_due(&self) -> bool {
        self.last_discover
            .is_none_or(|t| t.elapsed() >= self.config.discover_interval)
    }

    fn discover(&mut self) {
        self.last_discover = Some(Instant::now());
        for (input, path) in paths::discover(&self.inputs) {
            self.open(input, &path);
        }
    }

    /// Starts tailing `path` unless that file (by device and inode) is tailed already.
    fn open(&mut self, input: usize, path: &Path) {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open");
                self.checkpointer.open_failed(input, path, &e);
                return;
            }
        };
        let Ok((dev, ino)) = Fingerprint::dev_ino(&file) else {
            return;
        };
        if let Some(t) = self.files.iter_mut().find(|t| t.watcher.is(dev, ino)) {
            if t.watcher.path() != path {
                t.watcher.moved_to(path);
            }
            return;
        }
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            // Not yet: a file without a first byte has no identity to check later. Tailed
            // from an empty head, a copytruncate before the first read (the file filled,
            // copied, emptied and refilled while other files had their turn) would go
            // unnoticed and the copied lines be lost; discovery looks again shortly.
            return;
        }
        let Ok(fp) = Fingerprint::of(&file) else {
            return;
        };
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
        let id = self.checkpointer.register(path, fp, start);
        tracing::info!(path = %path.display(), offset = start, "tailing");
        let label_path = path.to_string_lossy().into_owned();
        let spec = &self.inputs[input];
        let labels = StreamLabels::new(&spec.labels, &label_path, &self.config.common_labels);
        self.checkpointer
            .describe(id, input, labels.fixed(), rotated.is_some());
        self.files.push(Tailed {
            id,
            input,
            labels,
            label_path,
            watcher: FileWatcher::new(path, file, fp, start, self.config.max_line_bytes, rotated),
            decoder: LineDecoder::new(
                spec.multiline.clone(),
                self.config.long_lines,
                self.config.max_line_bytes,
                start,
            ),
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
        for o in find_orphans(&self.saved, &tailed) {
            let input = o
                .path
                .parent()
                .map_or(0, |dir| paths::input_for_dir(&self.inputs, dir));
            tracing::info!(path = %o.path.display(), saved = %o.saved_path, offset = o.offset, "draining a file rotated while the agent was stopped");
            self.add(
                input,
                &o.path,
                o.file,
                o.fingerprint,
                o.offset,
                Some(Instant::now()),
            );
        }
        self.saved = Positions::default();
    }

    /// The lines' way for file `i`.
    fn feed(&mut self, i: usize) -> (&mut FileWatcher, Feed<'_, S>) {
        let FileServer {
            files,
            inputs,
            sink,
            metrics,
            shutdown,
            ..
        } = self;
        let t = &mut files[i];
        (
            &mut t.watcher,
            Feed {
                id: t.id,
                decoder: &mut t.decoder,
                labels: &mut t.labels,
                parser: &inputs[t.input].parser,
                sink,
                metrics,
                label_path: &t.label_path,
                shutdown,
            },
        )
    }

    /// Reads what is new in file `i`; returns the bytes read (1 after a truncation).
    fn pump(&mut self, i: usize) -> std::io::Result<u64> {
        let (watcher, mut feed) = self.feed(i);
        let n = match watcher.read(&mut feed)? {
            Read::Truncated => {
                self.truncated(i);
                return Ok(1);
            }
            Read::Restarted => {
                self.next_generation(i);
                return Ok(1);
            }
            Read::Bytes(n) => n,
            Read::Stopped => 1,
        };
        let t = &self.files[i];
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
                // The file now at the path (if any) is picked up at once.
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

    /// The file shrank under us (copytruncate) or was rewritten: what was not read yet is
    /// read from the copy first (by the next turns), then a new generation starts at 0.
    fn truncated(&mut self, i: usize) {
        let t = &mut self.files[i];
        tracing::warn!(path = %t.label_path, offset = t.watcher.offset(), "file truncated");
        if !t.watcher.begin_restart() {
            self.next_generation(i);
        }
    }

    /// Closes the generation file `i` was reading (its pending entry emitted) and starts
    /// the next one, from offset 0.
    fn next_generation(&mut self, i: usize) {
        self.feed(i).1.flush();
        let t = &mut self.files[i];
        self.checkpointer.close(t.id, t.decoder.last_end());
        t.decoder.restart();
        t.id = self
            .checkpointer
            .register(t.watcher.path(), t.watcher.fingerprint(), 0);
        self.checkpointer
            .describe(t.id, t.input, t.labels.fixed(), false);
    }

    /// Emits joined entries that waited too long.
    fn flush_expired(&mut self) {
        let now = Instant::now();
        let FileServer { files, sink, .. } = self;
        for t in files.iter_mut() {
            let (id, labels) = (t.id, &mut t.labels);
            t.decoder
                .expired(now, &mut |d| emit(id, labels, &mut *sink, d));
        }
    }
}
