//! A byte budget between the reader thread and the pusher: the reader waits when the bytes
//! read but not yet acknowledged reach the cap, so memory stays bounded and the files on disk
//! are the buffer while Loki is slow or down.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Bytes in flight, capped.
#[derive(Debug)]
pub struct ByteBudget {
    used: Mutex<usize>,
    freed: Condvar,
    cap: usize,
}

impl ByteBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        ByteBudget {
            used: Mutex::new(0),
            freed: Condvar::new(),
            cap: cap.max(1),
        }
    }

    /// Takes `n` bytes, waiting up to `timeout` for room; a request larger than the whole cap
    /// is granted when nothing else is in flight. Returns whether it was granted.
    pub fn acquire(&self, n: usize, timeout: Duration) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = std::time::Instant::now() + timeout;
        while *used > 0 && *used + n > self.cap {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            used = self
                .freed
                .wait_timeout(used, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += n;
        true
    }

    /// Gives back `n` bytes.
    pub fn release(&self, n: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }

    /// Bytes in flight now.
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waits_for_room() {
        let b = Arc::new(ByteBudget::new(100));
        assert!(b.acquire(80, Duration::ZERO));
        assert!(!b.acquire(30, Duration::from_millis(10)));
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.acquire(30, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        b.release(80);
        assert!(t.join().expect("thread"));
        assert_eq!(b.used(), 30);
        assert!(b.acquire(500, Duration::from_millis(1)) || b.used() == 30);
    }
}
