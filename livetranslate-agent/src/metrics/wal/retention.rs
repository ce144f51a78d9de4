//! The size and age bounds: whole segments are dropped, oldest first, acknowledged or not, and
//! what was dropped unacknowledged is counted.
//!
//! - Size: while the segments together exceed `max_total_bytes`, the oldest *sealed* segment is
//!   dropped (the active one never is; `max_total_bytes ≥ 2 × max_segment_bytes` keeps it
//!   within bounds). The log can exceed the bound by one append batch until that append
//!   returns.
//! - Age: a segment is dropped once its *newest* record is older than `max_age`, so a retained
//!   record can be older than `max_age` by at most the time one segment took to fill. When no
//!   appends come for longer than `max_age`, the active segment is sealed and dropped too.

use std::time::Duration;

use super::error::WalError;
use super::state::{DropReason, State};

impl State {
    /// Applies both bounds at wall-clock time `now_ms`.
    pub(crate) fn enforce_bounds(&mut self, now_ms: u64) -> Result<(), WalError> {
        while self.disk_bytes > self.config.max_total_bytes && !self.sealed.is_empty() {
            self.drop_oldest(DropReason::Size)?;
        }
        let Some(max_age) = self.config.max_age else {
            return Ok(());
        };
        let cutoff = now_ms.saturating_sub(millis(max_age));
        while let Some(oldest) = self.sealed.front() {
            if oldest.last_ms.unwrap_or(now_ms) >= cutoff {
                return Ok(());
            }
            self.drop_oldest(DropReason::Age)?;
        }
        let idle = self.active.last_ms.is_some_and(|t| t < cutoff);
        if idle && self.head > self.active.base {
            self.roll()?;
            self.drop_oldest(DropReason::Age)?;
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
