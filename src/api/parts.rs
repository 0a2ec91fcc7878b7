//! Gzipped availability answers are put together from parts, one per local day, each
//! written and compressed once and kept for as long as its day's openings stay the same.
//! A booking changes one dermatologist's day; every other day of every answer is served
//! again as it was, where a cache of whole answers had to drop them all. A part is kept by what it
//! says, not by when it was written: it is reused only for exactly the openings it was
//! written from, so it can never be stale, whichever generation of the index asks.
//!
//! Concurrent misses of one day each write it (a day is cheap to write); a full cache
//! drops the parts not served since its last sweep, at most once a second.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use super::gzip::{self, Deflated};
use crate::domain::availability::Opening;

/// Where a part belongs: which answer's shape, treatment, day and dermatologist filter.
/// One place holds one part; a day whose openings change gets its part replaced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub shape: &'static str,
    pub treatment: String,
    pub date: NaiveDate,
    pub dermatologist: Option<i64>,
}

/// One day of an answer, compressed. The plain text is not kept: few clients ask
/// without gzip, and it would be most of the bytes.
pub struct Part {
    openings: Box<[Opening]>,
    deflated: Deflated,
    /// Served since the last sweep: a full cache keeps the parts in use and drops the
    /// others (a second chance, the clock algorithm's approximation of least recently
    /// used), so questions nobody repeats cannot push out those everyone asks.
    used: AtomicBool,
}

impl Part {
    pub fn deflated(&self) -> &Deflated {
        &self.deflated
    }

    /// What keeping it at `key` costs, the key and the map's entry included.
    fn bytes(&self, key: &PartKey) -> usize {
        const ENTRY: usize = std::mem::size_of::<PartKey>() + std::mem::size_of::<Part>() + 64;
        ENTRY
            + key.treatment.len()
            + self.deflated.compressed_len()
            + std::mem::size_of_val(&*self.openings)
    }
}

#[derive(Default)]
struct Store {
    parts: HashMap<PartKey, Arc<Part>>,
    bytes: usize,
    swept: Option<Instant>,
}

impl Store {
    /// Drops the parts not served since the last sweep (days gone by, questions asked
    /// once, days whose openings changed), and gives the others a second chance.
    fn sweep(&mut self) {
        let mut bytes = 0;
        self.parts.retain(|key, part| {
            let keep = part.used.swap(false, Ordering::Relaxed);
            if keep {
                bytes += part.bytes(key);
            }
            keep
        });
        self.bytes = bytes;
        self.swept = Some(Instant::now());
    }
}

pub struct PartCache {
    max_bytes: usize,
    /// The least time between sweeps: a part asked for at least this often survives any
    /// number of questions asked once.
    sweep_every: Duration,
    store: Mutex<Store>,
}

impl PartCache {
    /// A cache of about `max_bytes` of parts; zero keeps none (each is written anew).
    pub fn new(max_bytes: usize) -> PartCache {
        PartCache::sweeping_every(max_bytes, Duration::from_secs(1))
    }

    fn sweeping_every(max_bytes: usize, sweep_every: Duration) -> PartCache {
        PartCache {
            max_bytes,
            sweep_every,
            store: Mutex::default(),
        }
    }

    /// The part at `key` for exactly `openings`: the one kept if it was written from the
    /// same openings, otherwise `write`'s, kept in its place.
    pub fn part(
        &self,
        key: PartKey,
        openings: &[Opening],
        write: impl FnOnce(&[Opening]) -> Vec<u8>,
    ) -> io::Result<Arc<Part>> {
        if let Some(part) = self.lock().parts.get(&key)
            && *part.openings == *openings
        {
            crate::instruments::availability_cache(true);
            part.used.store(true, Ordering::Relaxed);
            return Ok(part.clone());
        }
        crate::instruments::availability_cache(false);
        let part = Arc::new(Part {
            deflated: gzip::deflate(&write(openings))?,
            openings: openings.into(),
            // Asked for now: a sweep right after keeps it.
            used: AtomicBool::new(true),
        });
        let bytes = part.bytes(&key);
        let mut store = self.lock();
        // The part it replaces says what the day no longer does.
        if let Some(replaced) = store.parts.remove(&key) {
            store.bytes -= replaced.bytes(&key);
        }
        if bytes > self.max_bytes {
            return Ok(part);
        }
        if store.bytes + bytes > self.max_bytes
            && store
                .swept
                .is_none_or(|at| at.elapsed() >= self.sweep_every)
        {
            store.sweep();
        }
        // Still full of parts in use: this one is served without being kept.
        if store.bytes + bytes <= self.max_bytes {
            store.bytes += bytes;
            store.parts.insert(key, part.clone());
        }
        Ok(part)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let store = self.lock();
        (store.parts.len(), store.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDateTime};
    use std::cell::Cell;

    fn at(hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 6, 1)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
    }

    fn opening(dermatologist_id: i64, hour: u32) -> Opening {
        Opening {
            dermatologist_id,
            starts_at: at(hour),
            ends_at: at(hour) + Duration::minutes(30),
        }
    }

    fn key(date: u32) -> PartKey {
        PartKey {
            shape: "flat",
            treatment: "consultation".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, date).unwrap(),
            dermatologist: None,
        }
    }

    fn write(openings: &[Opening]) -> Vec<u8> {
        format!("{} openings", openings.len()).into_bytes()
    }

    fn plain(part: &Part) -> String {
        let mut member = gzip::Member::new(0);
        member.deflated(part.deflated());
        String::from_utf8(gzip::gunzip(&member.finish())).unwrap()
    }

    #[test]
    fn a_part_is_reused_only_for_the_openings_it_was_written_from() {
        let cache = PartCache::new(1 << 20);
        let writes = Cell::new(0);
        let counted = |openings: &[Opening]| {
            writes.set(writes.get() + 1);
            write(openings)
        };
        let day = [opening(1, 9), opening(2, 9)];
        let first = cache.part(key(1), &day, counted).unwrap();
        let again = cache.part(key(1), &day, counted).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(writes.get(), 1);

        // A booking took dermatologist 2's time: same place, other openings.
        let changed = cache.part(key(1), &day[..1], counted).unwrap();
        assert_eq!(plain(&changed), "1 openings");
        assert_eq!(writes.get(), 2);
        assert_eq!(cache.held().0, 1, "the new part replaced the old");
        // Dermatologist 2 is free again: the same openings as at first, written again.
        let back = cache.part(key(1), &day, counted).unwrap();
        assert_eq!(plain(&back), "2 openings");
        assert_eq!(writes.get(), 3);
    }

    #[test]
    fn a_full_cache_keeps_the_parts_in_use_and_zero_keeps_nothing() {
        let day = [opening(1, 9)];
        let one = PartCache::new(1 << 20).part(key(1), &day, write).unwrap();
        let one = one.bytes(&key(1));
        let writes = Cell::new(0);
        let counted = |openings: &[Opening]| {
            writes.set(writes.get() + 1);
            write(openings)
        };
        let cache = PartCache::sweeping_every(one * 2, std::time::Duration::ZERO);
        for date in [1, 2, 3] {
            cache.part(key(date), &day, counted).unwrap();
        }
        assert_eq!(
            cache.held(),
            (2, one * 2),
            "new parts count as served: day 3 waits"
        );
        // Day 1 is asked again, day 2 is not: day 2 makes room for day 4.
        cache.part(key(1), &day, counted).unwrap();
        cache.part(key(4), &day, counted).unwrap();
        assert_eq!(writes.get(), 4);
        cache.part(key(1), &day, counted).unwrap();
        cache.part(key(4), &day, counted).unwrap();
        assert_eq!(writes.get(), 4, "days 1 and 4 are kept");
        cache.part(key(2), &day, counted).unwrap();
        assert_eq!(writes.get(), 5, "day 2 is written again");
        assert_eq!(cache.held(), (2, one * 2));

        // Full of parts in use: a new day is served without being kept; and swept a moment
        // ago, nothing more is dropped.
        let cache = PartCache::sweeping_every(one * 2, std::time::Duration::from_secs(3600));
        for date in [1, 2, 1, 2, 3, 3, 1, 2] {
            cache.part(key(date), &day, counted).unwrap();
        }
        assert_eq!(
            writes.get(),
            5 + 4,
            "days 1 and 2 kept, day 3 written each time"
        );
        assert_eq!(cache.held(), (2, one * 2));

        let off = PartCache::new(0);
        off.part(key(1), &day, write).unwrap();
        assert_eq!(off.held(), (0, 0));
    }
}
