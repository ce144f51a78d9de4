//! `kill -9` against the write-ahead log: a child process (this test executable, re-invoked)
//! appends continuously while a sender thread in it reads and acknowledges; it is killed with
//! SIGKILL at random moments, several times. After each kill, every record whose append had
//! returned is readable, in order, intact, with no gap, and reading resumes at the last
//! acknowledgement the child reported (so only the unacknowledged tail is sent again).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use livetranslate_agent::metrics::wal::{SyncPolicy, Wal, WalConfig};
use livetranslate_test_support::{ChildGuard, TempDir};

const CHILD_ENV: &str = "LT_WAL_CRASH_CHILD_DIR";
const POLICY_ENV: &str = "LT_WAL_CRASH_CHILD_SYNC";
const TEST_NAME: &str = "kill_9_loses_no_appended_record";

/// Even rounds fsync every append; odd rounds never fsync and write larger batches, so that
/// the kill more often lands inside a `write(2)` than inside an fsync. A process crash loses
/// nothing that was written under either policy.
fn config(sync: SyncPolicy) -> WalConfig {
    WalConfig {
        // Small segments: the kills land around segment rolls too.
        max_segment_bytes: 64 << 10,
        max_record_bytes: 32 << 10,
        max_total_bytes: 1 << 30,
        max_age: None,
        sync,
    }
}

/// Record `seq`'s payload: its number, its length, and bytes derived from both.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len + 16);
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(len as u64).to_le_bytes());
    p.extend((0..len).map(|i| (seq as usize ^ i.wrapping_mul(7)) as u8));
    p
}

fn valid(seq: u64, p: &[u8]) -> bool {
    if p.len() < 16 {
        return false;
    }
    let len = u64::from_le_bytes(p[8..16].try_into().unwrap_or_default()) as usize;
    p.len() == len + 16 && p == payload(seq, len).as_slice()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

/// The child: appends batches forever, printing `A <end>` after each append returned, while a
/// sender thread reads, "sends" and acknowledges, printing `K <upto>` after each ack returned.
fn child(dir: &str) -> ! {
    let never = std::env::var(POLICY_ENV).is_ok_and(|v| v == "never");
    let policy = if never {
        SyncPolicy::Never
    } else {
        SyncPolicy::Always
    };
    let max_len = if never { 30_000 } else { 6_000 };
    let wal = Arc::new(Wal::open(dir, config(policy)).expect("child: open"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    };
    {
        let wal = wal.clone();
        let say = say.clone();
        std::thread::spawn(move || {
            let mut reader = wal.reader();
            loop {
                let mut n = 0;
                while n < 20 {
                    match reader.next().expect("child: read") {
                        Some(r) => {
                            assert!(valid(r.seq, &r.payload), "child read a bad record");
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                std::thread::sleep(Duration::from_millis(1)); // the HTTP request
                let upto = reader.position();
                wal.ack(upto).expect("child: ack");
                say(format!("K {upto}"));
            }
        });
    }
    let mut rng = XorShift(seed());
    loop {
        let head = wal.head();
        let k = rng.next() % 4 + 1;
        let batch: Vec<Vec<u8>> = (head..head + k)
            .map(|s| payload(s, (rng.next() % max_len) as usize))
            .collect();
        let range = wal.append_batch(&batch).expect("child: append");
        assert_eq!(range, head..head + k);
        say(format!("A {}", range.end));
    }
}

#[test]
fn kill_9_loses_no_appended_record() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
    }
    let dir = TempDir::new("wal-kill9");
    let wal_dir = dir.path().join("wal");
    let exe = std::env::current_exe().expect("test executable");
    let mut rng = XorShift(seed());
    let mut total_verified = 0u64;
    let mut torn_cuts = 0u64;
    let mut previous_head = 0u64;
    for round in 0..8 {
        let child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &wal_dir)
            .env(POLICY_ENV, if round % 2 == 0 { "always" } else { "never" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut guard = ChildGuard::new(child, "wal child");
        let stdout = guard
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("child stdout");
        let lines = Arc::new(Mutex::new((0u64, 0u64)));
        let collector = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(n) = line.strip_prefix("A ").and_then(|n| n.parse().ok()) {
                        l.0 = l.0.max(n);
                    } else if let Some(n) = line.strip_prefix("K ").and_then(|n| n.parse().ok()) {
                        l.1 = l.1.max(n);
                    }
                }
            })
        };
        // Let it get going (past its open and some appends), then kill it mid-flight.
        let started = Instant::now();
        while lines.lock().map(|l| l.0).unwrap_or(0) <= previous_head {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: the child appended nothing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 400));
        let mut child = guard.child.take().expect("child");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        collector.join().expect("collector");
        let (appended, acked_reported) = *lines.lock().unwrap_or_else(|e| e.into_inner());

        let wal = Wal::open(&wal_dir, config(SyncPolicy::Always)).expect("reopen after kill -9");
        let r = wal.recovery().clone();
        torn_cuts += r.torn_records_cut;
        assert!(
            r.acked >= acked_reported,
            "round {round}: ack {acked_reported} was reported durable, checkpoint says {}",
            r.acked
        );
        assert!(
            r.head >= appended,
            "round {round}: appends up to {appended} returned, only {} records survived",
            r.head
        );
        let mut reader = wal.reader();
        let mut expect = r.replay_from;
        assert_eq!(expect, r.acked, "nothing is dropped with these bounds");
        while let Some(rec) = reader.next().expect("read") {
            assert_eq!(rec.seq, expect, "round {round}: gap or duplicate");
            assert!(
                valid(rec.seq, &rec.payload),
                "round {round}: record {} damaged",
                rec.seq
            );
            expect += 1;
        }
        assert_eq!(expect, r.head, "round {round}: reading stopped early");
        assert_eq!(wal.stats().records_skipped_corrupt, 0);
        total_verified += r.head - r.acked;
        previous_head = r.head;
        drop(reader);
        drop(wal);
    }
    println!(
        "kill -9 x8: head {previous_head}, {total_verified} unacknowledged records verified \
         (re-sent after the restarts), {torn_cuts} torn frames cut"
    );
    assert!(previous_head > 0);
}
