//! The time the server acts at. It is the system's UTC time, plus an offset that only a
//! test moves (to let an appointment's start pass without rewriting rows in SQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, NaiveDateTime};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// Now in UTC, naive and in whole seconds, as the database stores it.
    pub fn now(&self) -> NaiveDateTime {
        crate::db::now() + Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// A monotonic instant moved forward by the same offset: for intervals (how stale an
    /// answer may be) that a test must be able to let pass without sleeping.
    pub fn instant(&self) -> std::time::Instant {
        let offset = self.offset_seconds.load(Ordering::Relaxed).max(0);
        std::time::Instant::now() + std::time::Duration::from_secs(offset as u64)
    }

    /// Moves this clock, and every copy of it, forward by `by`. Never back: what was
    /// checked at an instant must stay behind what follows it.
    pub fn advance(&self, by: Duration) {
        assert!(by >= Duration::zero(), "the clock only moves forward");
        self.offset_seconds
            .fetch_add(by.num_seconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::default();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(Duration::days(3));
        let moved = copy.now() - before;
        assert!(moved >= Duration::days(3) && moved < Duration::days(3) + Duration::seconds(5));
    }
}
