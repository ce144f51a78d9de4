//! Opening a directory: read the checkpoint, look at every segment's header, scan the newest
//! segment frame by frame and cut a torn or damaged tail, and make sure no sequence number that
//! may already have been acknowledged is handed out again.
//!
//! Only the newest segment is scanned whole: a torn write can only be there, since a segment is
//! fsynced when it is sealed and frames never span segments. Older segments are checked as they
//! are read (see [`cursor`](super::cursor)), so opening a large log costs one segment's read,
//! not the whole log's.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::checkpoint;
use super::config::{SyncPolicy, WalConfig};
use super::dir::sync_dir;
use super::error::WalError;
use super::record::unix_ms;
use super::segment::{self, segment_path, Frame, HeaderCheck, SegmentReader, SEGMENT_HEADER_LEN};
use super::state::{Counters, SegMeta, State};
use super::stats::OpenReport;

/// Opens (creating if needed) the log in `dir`, which the caller has locked.
pub(crate) fn recover(dir: &Path, config: &WalConfig) -> Result<(State, OpenReport), WalError> {
    let sync = config.sync != SyncPolicy::Never;
    let ck = checkpoint::load(dir)?;
    let mut report = OpenReport {
        acked: ck.upto,
        checkpoint_reset: ck.corrupt,
        ..OpenReport::default()
    };
    let bases = segment::list(dir).map_err(WalError::io("list", dir))?;
    let now_ms = unix_ms(SystemTime::now());

    let mut sealed = VecDeque::new();
    let mut payload = Vec::new();
    let older = bases.len().saturating_sub(1);
    for &base in &bases[..older] {
        sealed.push_back(look_at_sealed(dir, base, now_ms, &mut payload)?);
    }
    let (mut active, mut file, count) = match bases.last() {
        Some(&base) => scan_newest(dir, base, &mut report)?,
        None => {
            let file = segment::create(dir, ck.upto, sync)?;
            (empty(ck.upto), file, 0)
        }
    };
    let mut head = active.base + count;
    if ck.upto > head {
        // Records up to the checkpoint were acknowledged but are gone (the machine lost a tail
        // the receiver had already confirmed). Numbering resumes after them: an acknowledged
        // number is never given to a new record.
        if count == 0 {
            drop(file);
            let path = segment_path(dir, active.base);
            fs::remove_file(&path).map_err(WalError::io("delete", &path))?;
        } else {
            sealed.push_back(active);
        }
        file = segment::create(dir, ck.upto, sync)?;
        active = empty(ck.upto);
        head = ck.upto;
    }
    let path = segment_path(dir, active.base);
    file.seek(SeekFrom::Start(active.len))
        .map_err(WalError::io("seek", &path))?;
    if sync {
        // What the previous process wrote but had not fsynced is made durable now.
        file.sync_data().map_err(WalError::io("fsync", &path))?;
    }

    let disk_bytes = sealed.iter().map(|m| m.len).sum::<u64>() + active.len;
    let mut state = State {
        dir: dir.to_owned(),
        config: config.clone(),
        sealed,
        active,
        file: Arc::new(file),
        head,
        acked: ck.upto,
        disk_bytes,
        synced: head,
        last_sync: Instant::now(),
        failed: None,
        buf: Vec::new(),
        counters: Counters::default(),
    };
    state.delete_acked()?;
    if sync {
        sync_dir(dir)?;
    }
    report.head = state.head;
    Ok((state, report))
}

fn empty(base: u64) -> SegMeta {
    SegMeta {
        base,
        len: SEGMENT_HEADER_LEN,
        first_ms: None,
        last_ms: None,
    }
}

/// A sealed segment: its length, header version and first record's time; the rest is checked
/// when it is read.
fn look_at_sealed(
    dir: &Path,
    base: u64,
    now_ms: u64,
    payload: &mut Vec<u8>,
) -> Result<SegMeta, WalError> {
    let path = segment_path(dir, base);
    let file = File::open(&path).map_err(WalError::io("open", &path))?;
    let md = file.metadata().map_err(WalError::io("stat", &path))?;
    let len = md.len();
    let mut r = SegmentReader::new(file);
    let mut first_ms = None;
    match r.read_header(len).map_err(WalError::io("read", &path))? {
        HeaderCheck::Version(found) => return Err(unsupported(&path, found)),
        HeaderCheck::Corrupt => {}
        HeaderCheck::Valid => {
            if let Frame::Valid(h) = r
                .read_frame(SEGMENT_HEADER_LEN, len, payload)
                .map_err(WalError::io("read", &path))?
            {
                first_ms = Some(h.appended_ms);
            }
        }
    }
    // The file was last written when its newest record was appended.
    let last_ms = md
        .modified()
        .ok()
        .map(unix_ms)
        .or(first_ms)
        .or(Some(now_ms));
    payload.clear();
    Ok(SegMeta {
        base,
        len,
        first_ms,
        last_ms,
    })
}

fn unsupported(path: &Path, found: u32) -> WalError {
    WalError::UnsupportedVersion {
        path: path.to_owned(),
        found,
        supported: segment::VERSION,
    }
}

/// Scans the newest segment, cuts it after its last valid frame, and returns it open for
/// appending with the number of records it holds.
fn scan_newest(
    dir: &Path,
    base: u64,
    report: &mut OpenReport,
) -> Result<(SegMeta, File, u64), WalError> {
    let path = segment_path(dir, base);
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(WalError::io("open", &path))?;
    let len = file.metadata().map_err(WalError::io("stat", &path))?.len();
    let mut r = SegmentReader::new(File::open(&path).map_err(WalError::io("open", &path))?);
    let io = |op| WalError::io(op, &path);
    let mut meta = empty(base);
    let mut count = 0;
    let mut cut_at = None;
    match r.read_header(len).map_err(io("read"))? {
        HeaderCheck::Version(found) => return Err(unsupported(&path, found)),
        HeaderCheck::Corrupt => {
            // Torn while being created, or damaged: nothing in it can be trusted.
            report.torn_records_cut += r
                .count_frames(SEGMENT_HEADER_LEN, len)
                .map_err(io("read"))?;
            report.torn_bytes_cut += len;
            file.set_len(0).map_err(io("truncate"))?;
            file.write_all(&segment::header()).map_err(io("write"))?;
            file.sync_all().map_err(io("fsync"))?;
            return Ok((meta, file, 0));
        }
        HeaderCheck::Valid => {}
    }
    let mut payload = Vec::new();
    let mut off = SEGMENT_HEADER_LEN;
    while off < len {
        match r.read_frame(off, len, &mut payload).map_err(io("read"))? {
            Frame::Valid(h) => {
                count += 1;
                off += h.frame_len();
                meta.first_ms.get_or_insert(h.appended_ms);
                meta.last_ms = Some(meta.last_ms.map_or(h.appended_ms, |l| l.max(h.appended_ms)));
            }
            Frame::Invalid => {
                cut_at = Some(off);
                break;
            }
        }
    }
    if let Some(at) = cut_at {
        report.torn_records_cut += r.count_frames(at, len).map_err(io("read"))?;
        report.torn_bytes_cut += len - at;
        file.set_len(at).map_err(io("truncate"))?;
        file.sync_all().map_err(io("fsync"))?;
    }
    meta.len = off;
    Ok((meta, file, count))
}
