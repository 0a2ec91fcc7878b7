//! A micro-cache for the public availability search: many patients look at the same week,
//! and each search reads thousands of slots. An answer is kept for `ttl` at most, and
//! until this instance changes anything (any successful write request bumps the
//! generation), so a patient who has just booked never sees the time still offered.
//! Across instances the TTL bounds the staleness; a stale opening costs nothing worse
//! than a 409 when booked, since the unique slot index decides.
//!
//! Concurrent misses for one key compute once (the others wait for that answer), so an
//! expiry under load is one database query, not one per waiting request. Bodies are kept
//! plain and gzip-compressed, for clients that accept it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::OnceCell;

/// Above this many keys the cache starts afresh, whatever their bytes.
const MAX_KEYS: usize = 4096;

#[derive(Debug, Clone)]
pub struct CachedBody {
    pub plain: Bytes,
    pub gzip: Bytes,
}

impl CachedBody {
    pub fn new(plain: Vec<u8>) -> std::io::Result<CachedBody> {
        let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 8), Compression::fast());
        encoder.write_all(&plain)?;
        let gzip = encoder.finish()?;
        Ok(CachedBody {
            plain: Bytes::from(plain),
            gzip: Bytes::from(gzip),
        })
    }
}

type Cell = Arc<OnceCell<CachedBody>>;

/// The answers of one epoch, and how many bytes they hold.
#[derive(Default)]
struct Store {
    epoch: u64,
    cells: HashMap<String, Cell>,
    bytes: usize,
}

pub struct ResponseCache {
    ttl: Duration,
    max_bytes: usize,
    started: Instant,
    generation: AtomicU64,
    store: Mutex<Store>,
}

impl ResponseCache {
    /// A cache keeping answers up to `ttl` (zero turns it off) and at most `max_bytes`
    /// of bodies, plain and gzipped together.
    pub fn new(ttl: Duration, max_bytes: usize) -> ResponseCache {
        ResponseCache {
            ttl,
            max_bytes,
            started: Instant::now(),
            generation: AtomicU64::new(0),
            store: Mutex::new(Store::default()),
        }
    }

    /// Forgets every answer at once: something they were computed from may have changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.cells.clear();
        store.bytes = 0;
    }

    /// Entries live within one epoch: one TTL window of one generation.
    fn epoch(&self) -> u64 {
        let window = (self.started.elapsed().as_millis() / self.ttl.as_millis().max(1)) as u64;
        let generation = self.generation.load(Ordering::Relaxed);
        generation.wrapping_mul(1 << 40).wrapping_add(window)
    }

    /// The cached answer for `key`, or `compute`'s, shared with concurrent askers. A new
    /// epoch drops the previous one's answers whole; so does going over the byte budget
    /// (the answers in use stay with those using them).
    pub async fn get_or_compute<F, Fut, E>(&self, key: &str, compute: F) -> Result<CachedBody, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CachedBody, E>>,
    {
        if self.ttl.is_zero() {
            crate::instruments::availability_cache(false);
            return compute().await;
        }
        let epoch = self.epoch();
        let cell = {
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            if store.epoch != epoch
                || store.cells.len() >= MAX_KEYS && !store.cells.contains_key(key)
            {
                *store = Store {
                    epoch,
                    ..Store::default()
                };
            }
            store
                .cells
                .entry(key.to_string())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        crate::instruments::availability_cache(cell.initialized());
        cell.get_or_try_init(|| async {
            let body = compute().await?;
            self.account(epoch, body.plain.len() + body.gzip.len());
            Ok(body)
        })
        .await
        .cloned()
    }

    /// Counts a new answer's bytes against the budget, starting afresh past it.
    fn account(&self, epoch: u64, bytes: usize) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if store.epoch != epoch {
            return;
        }
        store.bytes += bytes;
        if store.bytes > self.max_bytes {
            store.cells.clear();
            store.bytes = 0;
        }
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let store = self.store.lock().unwrap();
        (store.cells.len(), store.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn body(text: &str) -> Result<CachedBody, std::io::Error> {
        CachedBody::new(text.as_bytes().to_vec())
    }

    #[actix_web::test]
    async fn answers_are_reused_until_invalidated() {
        let cache = ResponseCache::new(Duration::from_secs(60), 1 << 20);
        let computed = AtomicUsize::new(0);
        let compute = || async {
            computed.fetch_add(1, Ordering::SeqCst);
            body("answer")
        };
        cache.get_or_compute("week", compute).await.unwrap();
        let again = cache.get_or_compute("week", compute).await.unwrap();
        assert_eq!(again.plain, Bytes::from_static(b"answer"));
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        cache.invalidate();
        cache.get_or_compute("week", compute).await.unwrap();
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        cache.get_or_compute("other week", compute).await.unwrap();
        assert_eq!(computed.load(Ordering::SeqCst), 3);
    }

    #[actix_web::test]
    async fn a_zero_ttl_always_computes_and_gzip_round_trips() {
        let cache = ResponseCache::new(Duration::ZERO, 1 << 20);
        let computed = AtomicUsize::new(0);
        for _ in 0..3 {
            cache
                .get_or_compute("week", || async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    body(&"slot ".repeat(1000))
                })
                .await
                .unwrap();
        }
        assert_eq!(computed.load(Ordering::SeqCst), 3);
        let cached = body(&"slot ".repeat(1000)).unwrap();
        assert!(cached.gzip.len() < cached.plain.len() / 10);
        let mut unzipped = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&cached.gzip[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped.as_bytes(), &cached.plain[..]);
    }

    #[actix_web::test]
    async fn a_change_drops_every_answer_and_the_budget_bounds_the_bytes() {
        let cache = ResponseCache::new(Duration::from_secs(60), 3000);
        for week in ["a", "b"] {
            cache
                .get_or_compute(week, || async { body(&"x".repeat(1000)) })
                .await
                .unwrap();
        }
        let (entries, bytes) = cache.held();
        assert_eq!(entries, 2);
        assert!(bytes > 2000, "{bytes}");
        cache.invalidate();
        assert_eq!(
            cache.held(),
            (0, 0),
            "a change drops the whole generation at once"
        );

        // Past the budget the cache starts afresh rather than growing.
        for week in ["a", "b", "c", "d"] {
            cache
                .get_or_compute(week, || async { body(&"y".repeat(1000)) })
                .await
                .unwrap();
            assert!(cache.held().1 <= 3000, "{:?}", cache.held());
        }
    }

    #[actix_web::test]
    async fn an_error_is_not_kept() {
        let cache = ResponseCache::new(Duration::from_secs(60), 1 << 20);
        let failed: Result<CachedBody, &str> = cache
            .get_or_compute("week", || async { Err("db down") })
            .await;
        assert!(failed.is_err());
        let ok: Result<CachedBody, &str> = cache
            .get_or_compute("week", || async {
                Ok(CachedBody::new(b"fine".to_vec()).unwrap())
            })
            .await;
        assert_eq!(ok.unwrap().plain, Bytes::from_static(b"fine"));
    }
}
