//! The write-ahead log through its public API and real files: round trips across many
//! segments, resuming at the durable acknowledgement, torn and damaged tails, damage inside an
//! older segment, the size and age bounds, and the invariants under random operations.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use livetranslate_agent::metrics::wal::{
    Record, SyncPolicy, Wal, WalConfig, WalError, WalReader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use livetranslate_test_support::TempDir;
use proptest::prelude::*;

/// Deterministic payload for record `seq`: its number, then filler derived from it.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((0..len).map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8));
    p
}

fn size_of(seq: u64) -> usize {
    (seq.wrapping_mul(2_654_435_761) % 600) as usize
}

/// Small segments so that a few hundred records span many.
fn small() -> WalConfig {
    WalConfig {
        max_segment_bytes: 4096,
        max_record_bytes: 4096 - 32,
        max_total_bytes: 1 << 30,
        max_age: None,
        sync: SyncPolicy::Never,
    }
}

/// Appends `n` records with [`payload`]`(seq, size_of(seq))`, in batches of 1–5.
fn fill(wal: &Wal, n: u64) {
    let mut left = n;
    while left > 0 {
        let head = wal.head();
        let k = (head % 5 + 1).min(left);
        let batch: Vec<Vec<u8>> = (head..head + k).map(|s| payload(s, size_of(s))).collect();
        assert_eq!(wal.append_batch(&batch).expect("append"), head..head + k);
        left -= k;
    }
}

fn read_all(reader: &mut WalReader) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some(r) = reader.next().expect("read") {
        out.push(r);
    }
    out
}

/// Every record is the one appended under its number.
fn assert_intact(records: &[Record]) {
    for r in records {
        assert_eq!(
            r.payload,
            payload(r.seq, size_of(r.seq)),
            "record {}",
            r.seq
        );
    }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// The segment files, by base.
fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?;
            let base = name.strip_suffix(".seg")?.parse().ok()?;
            Some((base, p))
        })
        .collect();
    v.sort();
    v
}

/// Offsets where the frames of a segment file end, walking its length fields.
fn frame_ends(path: &Path) -> Vec<u64> {
    let b = fs::read(path).expect("read segment");
    let mut ends = Vec::new();
    let mut off = SEGMENT_HEADER_LEN as usize;
    while off + FRAME_HEADER_LEN as usize <= b.len() {
        let len = u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize;
        let end = off + FRAME_HEADER_LEN as usize + len;
        if end > b.len() {
            break;
        }
        ends.push(end as u64);
        off = end;
    }
    ends
}

fn flip_byte(path: &Path, at: u64) {
    let mut b = fs::read(path).expect("read");
    b[at as usize] ^= 0xa5;
    fs::write(path, b).expect("write");
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("truncate");
}

#[test]
fn round_trip_across_many_segments_and_acks_delete_segments() {
    let dir = TempDir::new("wal-rt");
    let wal = Wal::open(dir.path(), small()).expect("open");
    fill(&wal, 3000);
    let files = segments(dir.path());
    assert!(files.len() > 100, "only {} segments", files.len());
    for (_, p) in &files {
        assert!(fs::metadata(p).expect("stat").len() <= 4096);
    }

    let mut reader = wal.reader();
    let got = read_all(&mut reader);
    assert_eq!(seqs(&got), (0..3000).collect::<Vec<_>>());
    assert_intact(&got);
    assert_eq!(reader.position(), 3000);
    assert_eq!(wal.stats().read_position, 3000);

    // Acknowledging deletes exactly the segments all of whose records are acknowledged.
    wal.ack(1500).expect("ack");
    let left = segments(dir.path());
    let holder = files
        .iter()
        .rposition(|(b, _)| *b < 1500)
        .expect("a segment holds 1499");
    assert_eq!(left.first().map(|(b, _)| *b), Some(files[holder].0));
    assert_eq!(left.len(), files.len() - holder);
    let s = wal.stats();
    assert_eq!(s.segments_deleted_acked as usize, holder);
    assert_eq!(
        (s.acked, s.first, s.head, s.ack_lag_records),
        (1500, 1500, 3000, 1500)
    );
    assert_eq!(s.segments, left.len());
    let on_disk: u64 = left
        .iter()
        .map(|(_, p)| fs::metadata(p).expect("stat").len())
        .sum();
    assert_eq!(s.disk_bytes, on_disk);

    // A new reader starts at the acknowledgement; the old one tails new appends.
    assert_eq!(
        wal.reader().next().expect("read").map(|r| r.seq),
        Some(1500)
    );
    assert!(reader.next().expect("read").is_none());
    fill(&wal, 10);
    let more = read_all(&mut reader);
    assert_eq!(seqs(&more), (3000..3010).collect::<Vec<_>>());
    assert_intact(&more);
    wal.ack(3010).expect("ack all");
    assert_eq!(wal.stats().ack_lag_records, 0);
    assert_eq!(segments(dir.path()).len(), 1, "the active segment stays");
}

#[test]
fn a_reader_on_another_thread_never_sees_a_partial_record() {
    let dir = TempDir::new("wal-tail");
    let wal = std::sync::Arc::new(Wal::open(dir.path(), small()).expect("open"));
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || fill(&wal, 5000))
    };
    let mut reader = wal.reader();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.len() < 5000 && std::time::Instant::now() < deadline {
        match reader.next().expect("read") {
            Some(r) => got.push(r),
            None => std::thread::yield_now(),
        }
    }
    writer.join().expect("writer");
    assert_eq!(seqs(&got), (0..5000).collect::<Vec<_>>());
    assert_intact(&got);
    assert_eq!(wal.stats().records_skipped_corrupt, 0);
}

#[test]
fn reopen_resumes_at_the_last_durable_ack() {
    let dir = TempDir::new("wal-reopen");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        fill(&wal, 100);
        let mut reader = wal.reader();
        for _ in 0..70 {
            reader.next().expect("read");
        }
        // Records 40..70 were sent but not acknowledged when the process stopped.
        wal.ack(40).expect("ack");
    }
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    let r = wal.recovery();
    assert_eq!((r.acked, r.head, r.replay_from), (40, 100, 40));
    assert_eq!((r.torn_records_cut, r.checkpoint_reset), (0, false));
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (40..100).collect::<Vec<_>>());
    assert_intact(&got);
    assert_eq!(
        wal.append(&payload(100, size_of(100))).expect("append"),
        100
    );
}

#[test]
fn torn_tail_is_cut_counted_and_appends_continue() {
    let dir = TempDir::new("wal-torn");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        let batch: Vec<Vec<u8>> = (0..50).map(|s| payload(s, 92)).collect();
        wal.append_batch(&batch).expect("append");
    }
    let (_, seg) = segments(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&seg).expect("stat").len();
    assert_eq!(len, 16 + 50 * (16 + 100));
    truncate(&seg, len - 30); // the last record is torn mid-payload

    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    let r = wal.recovery().clone();
    assert_eq!((r.torn_records_cut, r.torn_bytes_cut, r.head), (1, 86, 49));
    assert_eq!(wal.stats().torn_records_cut, 1);
    assert_eq!(fs::metadata(&seg).expect("stat").len(), 16 + 49 * 116);
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (0..49).collect::<Vec<_>>());
    assert!(got.iter().all(|r| r.payload == payload(r.seq, 92)));

    // Number 49 was never whole: it goes to the next record.
    assert_eq!(wal.append(b"after the cut").expect("append"), 49);
    drop(wal);
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen again");
    assert_eq!(wal.recovery().torn_records_cut, 0);
    let got = read_all(&mut wal.reader());
    assert_eq!(got.len(), 50);
    assert_eq!(got[49].payload, b"after the cut");
}

#[test]
fn zero_filled_tail_is_cut() {
    let dir = TempDir::new("wal-zeros");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        fill(&wal, 10);
    }
    let (_, seg) = segments(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&seg).expect("stat").len();
    // What some file systems show after a crash: the size grew, the data never came.
    truncate(&seg, len + 4096);
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    assert_eq!(wal.recovery().torn_bytes_cut, 4096);
    assert!(wal.recovery().torn_records_cut >= 1);
    assert_eq!(fs::metadata(&seg).expect("stat").len(), len);
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (0..10).collect::<Vec<_>>());
    assert_intact(&got);
}

#[test]
fn a_flipped_byte_in_the_newest_segment_cuts_from_that_record_on() {
    let dir = TempDir::new("wal-flip");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        fill(&wal, 20);
    }
    let (_, seg) = segments(dir.path()).pop().expect("a segment");
    let ends = frame_ends(&seg);
    assert_eq!(ends.len(), 20);
    // A byte inside the last record's payload.
    flip_byte(&seg, ends[19] - 3);
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
        assert_eq!(wal.recovery().torn_records_cut, 1);
        assert_eq!(wal.recovery().torn_bytes_cut, ends[19] - ends[18]);
        let got = read_all(&mut wal.reader());
        assert_eq!(seqs(&got), (0..19).collect::<Vec<_>>());
        assert_intact(&got);
    }
    // A byte in the length field of record 12: it and everything after it in the segment go.
    flip_byte(&seg, ends[11]);
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    assert!(wal.recovery().torn_records_cut >= 1);
    assert_eq!(wal.recovery().torn_bytes_cut, ends[18] - ends[11]);
    assert_eq!(wal.head(), 12);
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (0..12).collect::<Vec<_>>());
    assert_intact(&got);
}

#[test]
fn damage_inside_an_older_segment_skips_the_rest_of_it_and_counts() {
    let dir = TempDir::new("wal-mid");
    {
        let wal = Wal::open(dir.path(), small()).expect("open");
        fill(&wal, 400);
    }
    let files = segments(dir.path());
    assert!(files.len() > 10);
    // Segment 3: a flipped byte in its third record.
    let (base3, ref p3) = files[3];
    let next3 = files[4].0;
    let ends = frame_ends(p3);
    assert!(ends.len() >= 4, "segment 3 holds {} records", ends.len());
    flip_byte(p3, ends[1] + 20);
    // Segment 6: its header is garbage.
    let (base6, ref p6) = files[6];
    let next6 = files[7].0;
    flip_byte(p6, 2);

    let wal = Wal::open(dir.path(), small()).expect("open despite the damage");
    // Opening does not scan older segments: nothing is cut.
    assert_eq!(wal.recovery().torn_records_cut, 0);
    let got = read_all(&mut wal.reader());
    assert_intact(&got);
    let lost3: Vec<u64> = (base3 + 2..next3).collect();
    let lost6: Vec<u64> = (base6..next6).collect();
    let expected: Vec<u64> = (0..400)
        .filter(|s| !lost3.contains(s) && !lost6.contains(s))
        .collect();
    assert_eq!(seqs(&got), expected);
    let s = wal.stats();
    assert_eq!(
        s.records_skipped_corrupt,
        (lost3.len() + lost6.len()) as u64
    );
    let len3 = fs::metadata(p3).expect("stat").len();
    let len6 = fs::metadata(p6).expect("stat").len();
    assert_eq!(s.bytes_skipped_corrupt, (len3 - ends[1]) + len6);
    // Acknowledging past the damage deletes the damaged segments like any other.
    wal.ack(next6).expect("ack");
    assert_eq!(segments(dir.path())[0].0, next6);
}

#[test]
fn size_bound_drops_the_oldest_segments_and_counts_them() {
    let dir = TempDir::new("wal-size");
    let config = WalConfig {
        max_total_bytes: 16384,
        ..small()
    };
    let wal = Wal::open(dir.path(), config.clone()).expect("open");
    let mut reader = wal.reader();
    // The reader gets the first few, then falls behind.
    fill(&wal, 5);
    assert_eq!(read_all(&mut reader).len(), 5);
    wal.ack(3).expect("ack");
    for _ in 0..600 {
        fill(&wal, 1);
        let s = wal.stats();
        assert!(s.disk_bytes <= 16384, "{} bytes on disk", s.disk_bytes);
    }
    let s = wal.stats();
    assert!(s.records_dropped_size > 0);
    // Dropped: every record below the oldest retained one, except the 3 acknowledged.
    assert_eq!(s.records_dropped_size, s.first - 3);
    assert_eq!(s.records_dropped_age, 0);
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|(_, p)| fs::metadata(p).expect("stat").len())
        .sum();
    assert_eq!(s.disk_bytes, on_disk);
    // Every frame written is on disk or was dropped; the rest is one header per segment.
    let headers = s.disk_bytes + s.bytes_dropped_size - s.bytes_appended;
    assert_eq!(headers % SEGMENT_HEADER_LEN, 0);
    let dropped_segments = headers / SEGMENT_HEADER_LEN - s.segments as u64;
    assert!(dropped_segments > 0);
    // The reader that fell behind jumps to the oldest retained record and reads on, intact.
    let got = read_all(&mut reader);
    assert_eq!(got.first().map(|r| r.seq), Some(s.first));
    assert_eq!(seqs(&got), (s.first..s.head).collect::<Vec<_>>());
    assert_intact(&got);
    drop(reader);
    drop(wal);
    // The bound holds across a reopen, and the position is where it was.
    let wal = Wal::open(dir.path(), config).expect("reopen");
    assert_eq!(wal.recovery().replay_from, s.first);
    assert_eq!(wal.stats().disk_bytes, on_disk);
}

#[test]
fn age_bound_drops_the_oldest_segments_and_counts_them() {
    let dir = TempDir::new("wal-age");
    let config = WalConfig {
        max_age: Some(Duration::from_secs(3600)),
        ..small()
    };
    let wal = Wal::open(dir.path(), config).expect("open");
    let now = SystemTime::now();
    let hours_ago = |h: u64| now - Duration::from_secs(h * 3600);
    // Three hours ago: enough to fill several segments.
    let old: Vec<Vec<u8>> = (0..60).map(|s| payload(s, 300)).collect();
    wal.append_batch_at(&old, hours_ago(3)).expect("append");
    // Its segments are sealed by the next append and dropped at once: older than an hour.
    let recent: Vec<Vec<u8>> = (60..70).map(|s| payload(s, 300)).collect();
    wal.append_batch_at(&recent, now).expect("append");
    let s = wal.stats();
    assert!(s.records_dropped_age > 0, "{s:?}");
    assert_eq!(s.records_dropped_size, 0);
    assert_eq!(s.records_dropped_age, s.first);
    assert!(s.first <= 60, "no record of the recent batch is dropped");
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (s.first..70).collect::<Vec<_>>());
    let oldest = s.oldest_record_time.expect("records are retained");
    assert!(oldest >= hours_ago(4));

    // Two hours later, with nothing appended since, everything has aged out, the active
    // segment too; numbering goes on.
    wal.enforce_bounds_at(now + Duration::from_secs(2 * 3600))
        .expect("bounds");
    let s = wal.stats();
    assert_eq!(s.records_dropped_age, 70);
    assert_eq!((s.first, s.head, s.ack_lag_records), (70, 70, 0));
    assert_eq!(s.oldest_record_time, None);
    assert!(s.bytes_dropped_age > 0);
    assert_eq!(wal.append(b"fresh").expect("append"), 70);
}

#[test]
fn misuse_is_refused_with_a_clear_error_and_changes_nothing() {
    let dir = TempDir::new("wal-misuse");
    let config = WalConfig {
        max_record_bytes: 100,
        ..small()
    };
    let wal = Wal::open(dir.path(), config.clone()).expect("open");
    match Wal::open(dir.path(), config.clone()) {
        Err(WalError::Locked { dir: d }) => assert_eq!(d, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let big = vec![0u8; 101];
    match wal.append_batch(&[&b"ok"[..], &big]) {
        Err(e @ WalError::RecordTooLarge { len: 101, max: 100 }) => {
            assert!(e.to_string().contains("split the batch"))
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(wal.head(), 0, "nothing of a refused batch is written");
    wal.append(b"x").expect("append");
    assert!(matches!(
        wal.ack(2),
        Err(WalError::AckBeyondHead { upto: 2, head: 1 })
    ));
    wal.ack(1).expect("ack");
    wal.ack(0).expect("an older position is a no-op");
    assert_eq!(wal.acked(), 1);
    let bad = WalConfig {
        max_total_bytes: 4096,
        ..small()
    };
    assert!(matches!(
        Wal::open(dir.path().join("other"), bad),
        Err(WalError::Config {
            field: "max_total_bytes",
            ..
        })
    ));
}

#[test]
fn damaged_checkpoint_replays_everything() {
    let dir = TempDir::new("wal-ckpt");
    {
        let wal = Wal::open(dir.path(), small()).expect("open");
        fill(&wal, 50);
        wal.ack(20).expect("ack");
    }
    flip_byte(&dir.path().join("ack"), 13);
    let wal = Wal::open(dir.path(), small()).expect("reopen");
    let r = wal.recovery();
    assert!(r.checkpoint_reset);
    assert_eq!(r.acked, 0);
    // Segments wholly below 20 were deleted by the ack; replay starts at the oldest left.
    let first = segments(dir.path())[0].0;
    assert!(first <= 20);
    assert_eq!(r.replay_from, first);
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), (first..50).collect::<Vec<_>>());
}

#[test]
fn numbers_acknowledged_before_a_lost_tail_are_never_reused() {
    let dir = TempDir::new("wal-lost");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        fill(&wal, 50);
        wal.ack(50).expect("ack");
    }
    // The machine lost the last ten records after the receiver had acknowledged them.
    let (_, seg) = segments(dir.path()).pop().expect("segment");
    let ends = frame_ends(&seg);
    truncate(&seg, ends[39]);
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    assert_eq!((wal.head(), wal.acked()), (50, 50));
    assert!(wal.reader().next().expect("read").is_none());
    assert_eq!(wal.append(b"next").expect("append"), 50);
    let got = read_all(&mut wal.reader());
    assert_eq!(seqs(&got), vec![50]);
    assert_eq!(segments(dir.path()).len(), 1);
}

#[test]
fn a_segment_of_another_format_version_is_refused() {
    let dir = TempDir::new("wal-version");
    {
        let wal = Wal::open(dir.path(), WalConfig::default()).expect("open");
        wal.append(b"x").expect("append");
    }
    let (_, seg) = segments(dir.path()).pop().expect("segment");
    let mut b = fs::read(&seg).expect("read");
    // A well-formed header of version 9 (its checksum matches).
    b[8] = 9;
    let crc = crc32fast::hash(&b[..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg, b).expect("write");
    match Wal::open(dir.path(), WalConfig::default()) {
        Err(e @ WalError::UnsupportedVersion { found: 9, .. }) => {
            assert!(e.to_string().contains("version 9"))
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn fsync_policy_always_syncs_every_append_and_never_does_not() {
    let dir = TempDir::new("wal-sync");
    let always = Wal::open(dir.path().join("a"), WalConfig::default()).expect("open");
    for s in 0..10 {
        always.append(&payload(s, 10)).expect("append");
    }
    assert_eq!(always.stats().fsyncs, 10, "one per append call");
    always.append_batch(&[b"a", b"b", b"c"]).expect("append");
    assert_eq!(always.stats().fsyncs, 11, "one per batch");
    let never = Wal::open(
        dir.path().join("n"),
        WalConfig {
            sync: SyncPolicy::Never,
            ..WalConfig::default()
        },
    )
    .expect("open");
    fill(&never, 10);
    assert_eq!(never.stats().fsyncs, 0);
    never.sync().expect("sync");
    assert_eq!(never.stats().fsyncs, 1);
    let interval = Wal::open(
        dir.path().join("i"),
        WalConfig {
            sync: SyncPolicy::Interval(Duration::from_secs(3600)),
            ..WalConfig::default()
        },
    )
    .expect("open");
    fill(&interval, 10);
    interval.sync_if_due().expect("sync");
    assert_eq!(interval.stats().fsyncs, 0, "the interval has not passed");
}

#[test]
fn concurrent_appends_under_fsync_always_are_all_durable_and_in_order_per_thread() {
    let dir = TempDir::new("wal-group");
    let wal = std::sync::Arc::new(Wal::open(dir.path(), WalConfig::default()).expect("open"));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..100u32 {
                    let mut p = vec![t];
                    p.extend_from_slice(&i.to_le_bytes());
                    seqs.push(wal.append(&p).expect("append"));
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let seqs = t.join().expect("thread");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a thread's appends are ordered"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>(), "every number given once");
    let s = wal.stats();
    assert!(s.fsyncs >= 1 && s.fsyncs <= 400, "{} fsyncs", s.fsyncs);
    // Every append returned after an fsync that covered it: reopening finds all of them.
    drop(wal);
    let wal = Wal::open(dir.path(), WalConfig::default()).expect("reopen");
    let got = read_all(&mut wal.reader());
    assert_eq!(got.len(), 400);
    for t in 0..4u8 {
        let mine: Vec<u32> = got
            .iter()
            .filter(|r| r.payload[0] == t)
            .map(|r| u32::from_le_bytes([r.payload[1], r.payload[2], r.payload[3], r.payload[4]]))
            .collect();
        assert_eq!(mine, (0..100).collect::<Vec<_>>(), "thread {t} in order");
    }
}

// ---------------------------------------------------------------------------------------------
// Random operations keep the invariants: records come back in order, each exactly as appended,
// every record at or after the acknowledgement that was not cut is there, and cuts only take
// records from the damaged point of the newest segment on.

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u16>),
    Read(u8),
    Ack(u8),
    Reopen,
    TruncateTail(u16),
    FlipTail(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0u16..900, 1..6).prop_map(Op::Append),
        2 => any::<u8>().prop_map(Op::Read),
        2 => any::<u8>().prop_map(Op::Ack),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::TruncateTail),
        1 => any::<u16>().prop_map(Op::FlipTail),
    ]
}

struct Model {
    dir: TempDir,
    wal: Option<Wal>,
    reader: Option<WalReader>,
    /// Records that must be readable (at or after the acknowledgement), by number.
    expected: BTreeMap<u64, Vec<u8>>,
    acked: u64,
    head: u64,
    /// The reader's next number.
    next: u64,
}

impl Model {
    fn wal(&self) -> &Wal {
        self.wal.as_ref().expect("open")
    }

    fn reopen(&mut self) {
        self.reader = None;
        self.wal = None;
        let wal = Wal::open(self.dir.path(), small()).expect("reopen");
        assert_eq!(wal.recovery().acked, self.acked, "the ack is durable");
        self.wal = Some(wal);
        self.next = self.acked;
    }

    /// Damages the newest segment with the log closed, by cutting it `back` bytes before its
    /// end or by flipping a byte of a frame; forgets the records that lose their frame.
    fn damage(&mut self, back: u16, flip: bool) {
        self.reader = None;
        self.wal = None;
        let (base, path) = segments(self.dir.path()).pop().expect("a segment");
        let len = fs::metadata(&path).expect("stat").len();
        let frames = len.saturating_sub(SEGMENT_HEADER_LEN);
        let ends = frame_ends(&path);
        let at = if flip {
            if frames == 0 {
                return self.reopen();
            }
            let at = SEGMENT_HEADER_LEN + u64::from(back) % frames;
            flip_byte(&path, at);
            at
        } else {
            let at = len - u64::from(back) % (len + 1);
            truncate(&path, at);
            at
        };
        // Frames ending at or before the damage survive.
        let kept = ends.iter().filter(|&&e| e <= at).count() as u64;
        let survivors_end = base + kept;
        self.expected.retain(|&s, _| s < survivors_end);
        let wal = Wal::open(self.dir.path(), small()).expect("open after damage");
        let on_boundary = at == 0 || at == SEGMENT_HEADER_LEN || ends.contains(&at);
        if flip || (at < len && !on_boundary) {
            assert!(
                wal.recovery().torn_bytes_cut > 0,
                "damage at {at} of {len} went unnoticed"
            );
        }
        self.head = survivors_end.max(self.acked);
        assert_eq!(wal.head(), self.head);
        self.wal = Some(wal);
        self.next = self.acked;
    }

    fn read(&mut self, n: u8) {
        if self.reader.is_none() {
            self.reader = Some(self.wal().reader());
            self.next = self.acked;
        }
        let reader = self.reader.as_mut().expect("reader");
        for _ in 0..n {
            let Some(r) = reader.next().expect("read") else {
                assert_eq!(self.next, self.head, "caught up early");
                break;
            };
            // In order, no gap, exactly as appended.
            let want = self.expected.range(self.next..).next().map(|(s, _)| *s);
            assert_eq!(Some(r.seq), want, "record after {}", self.next);
            assert_eq!(Some(&r.payload), self.expected.get(&r.seq));
            self.next = r.seq + 1;
        }
    }
}

fn run(ops: Vec<Op>) {
    let dir = TempDir::new("wal-prop");
    let wal = Wal::open(dir.path(), small()).expect("open");
    let mut m = Model {
        dir,
        wal: Some(wal),
        reader: None,
        expected: BTreeMap::new(),
        acked: 0,
        head: 0,
        next: 0,
    };
    for op in ops {
        match op {
            Op::Append(sizes) => {
                let batch: Vec<Vec<u8>> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| payload(m.head + i as u64, usize::from(n)))
                    .collect();
                let range = m.wal().append_batch(&batch).expect("append");
                assert_eq!(range.start, m.head);
                for (seq, p) in range.clone().zip(batch) {
                    m.expected.insert(seq, p);
                }
                m.head = range.end;
            }
            Op::Read(n) => m.read(n),
            Op::Ack(f) => {
                // Only what was read can be acknowledged.
                let readable = m.next.max(m.acked);
                let upto = m.acked + (readable - m.acked) * u64::from(f) / 255;
                m.wal().ack(upto).expect("ack");
                m.acked = m.acked.max(upto);
                m.expected = m.expected.split_off(&m.acked);
            }
            Op::Reopen => m.reopen(),
            Op::TruncateTail(b) => m.damage(b, false),
            Op::FlipTail(b) => m.damage(b, true),
        }
    }
    // Finally everything expected comes back, in order, from a fresh reader.
    m.reopen();
    let got = read_all(&mut m.wal().reader());
    let want: Vec<(u64, Vec<u8>)> = m.expected.into_iter().collect();
    let got: Vec<(u64, Vec<u8>)> = got.into_iter().map(|r| (r.seq, r.payload)).collect();
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
