//! Gzipped availability answers are put together from parts, one per local day, each
//! written and compressed once and kept for as long as its day's openings stay the same. A booking
//! changes one dermatologist's day; every other day of every answer is served again as it
//! was, where a cache of whole answers had to drop them all. A part is kept by what it
//! says, not by when it was written: it is reused only for exactly the openings it was
//! written from, so it can never be stale, whichever generation of the index asks.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

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
}

impl Part {
    pub fn deflated(&self) -> &Deflated {
        &self.deflated
    }

    fn bytes(&self) -> usize {
        self.deflated.compressed_len() + std::mem::size_of_val(&*self.openings)
    }
}

#[derive(Default)]
struct Store {
    parts: HashMap<PartKey, Arc<Part>>,
    bytes: usize,
}

pub struct PartCache {
    max_bytes: usize,
    store: Mutex<Store>,
}

impl PartCache {
    /// A cache of about `max_bytes` of parts; zero keeps none (each is written anew).
    pub fn new(max_bytes: usize) -> PartCache {
        PartCache {
            max_bytes,
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
            return Ok(part.clone());
        }
        crate::instruments::availability_cache(false);
        let part = Arc::new(Part {
            deflated: gzip::deflate(&write(openings))?,
            openings: openings.into(),
        });
        let bytes = part.bytes();
        if bytes > self.max_bytes {
            return Ok(part);
        }
        let mut store = self.lock();
        if let Some(replaced) = store.parts.remove(&key) {
            store.bytes -= replaced.bytes();
        }
        // Parts of days gone by are never asked for again: once the budget is spent, all
        // go, and the days still asked for are written again.
        if store.bytes + bytes > self.max_bytes {
            *store = Store::default();
        }
        store.bytes += bytes;
        store.parts.insert(key, part.clone());
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
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&member.finish()[..]),
            &mut plain,
        )
        .unwrap();
        plain
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
    fn a_spent_budget_starts_afresh_and_zero_keeps_nothing() {
        let day = [opening(1, 9)];
        let one = PartCache::new(1 << 20)
            .part(key(1), &day, write)
            .unwrap()
            .bytes();
        let cache = PartCache::new(one * 2);
        for date in 1..=3 {
            cache.part(key(date), &day, write).unwrap();
        }
        assert_eq!(
            cache.held(),
            (1, one),
            "the third day found the budget spent"
        );

        let off = PartCache::new(0);
        off.part(key(1), &day, write).unwrap();
        assert_eq!(off.held(), (0, 0));
    }
}
