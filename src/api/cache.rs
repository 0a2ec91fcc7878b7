//! Answers of the public availability search, kept per generation of the availability
//! index: an answer computed from one generation stays true until the index moves to the
//! next, so the cache never needs a time to live. Many patients look at the same week;
//! they get the same bytes without recomputing and recompressing them.
//!
//! Concurrent misses for one key compute once (the others wait for that answer). Bodies
//! are kept plain and gzip-compressed, for clients that accept it, within a byte budget.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::web::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::OnceCell;

/// At most this many answers are kept, whatever their bytes.
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

/// The answers of one generation, and how many bytes they hold.
#[derive(Default)]
struct Store {
    generation: u64,
    cells: HashMap<String, Cell>,
    bytes: usize,
}

pub struct ResponseCache {
    max_bytes: usize,
    store: Mutex<Store>,
}

impl ResponseCache {
    /// A cache of about `max_bytes` of bodies, plain and gzipped together (answers being
    /// computed when it fills may add theirs); zero turns it off.
    pub fn new(max_bytes: usize) -> ResponseCache {
        ResponseCache {
            max_bytes,
            store: Mutex::new(Store::default()),
        }
    }

    /// The answer for `key` computed from `generation`, or `compute`'s, shared with
    /// concurrent askers. A newer generation drops the previous one's answers whole (the
    /// answers in use stay with those using them). Once the budget is spent, new answers
    /// are computed without being kept, and those kept go on serving until the next
    /// generation (dropping them all would lose the hits). An ask from an older
    /// generation (it began before the index moved on) computes without keeping.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        generation: u64,
        key: &str,
        compute: F,
    ) -> Result<CachedBody, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CachedBody, E>>,
    {
        let cell = {
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            if store.generation < generation {
                *store = Store {
                    generation,
                    ..Store::default()
                };
            }
            let full = store.bytes >= self.max_bytes || store.cells.len() >= MAX_KEYS;
            match store.cells.get(key) {
                _ if generation < store.generation => None,
                Some(cell) => Some(cell.clone()),
                None if full => None,
                None => Some(
                    store
                        .cells
                        .entry(key.to_string())
                        .or_insert_with(|| Arc::new(OnceCell::new()))
                        .clone(),
                ),
            }
        };
        let Some(cell) = cell else {
            crate::instruments::availability_cache(false);
            return compute().await;
        };
        crate::instruments::availability_cache(cell.initialized());
        cell.get_or_try_init(|| async {
            let body = compute().await?;
            self.account(generation, body.plain.len() + body.gzip.len());
            Ok(body)
        })
        .await
        .cloned()
    }

    /// Counts a new answer's bytes against the budget.
    fn account(&self, generation: u64, bytes: usize) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if store.generation == generation {
            store.bytes += bytes;
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn body(text: &str) -> Result<CachedBody, std::io::Error> {
        CachedBody::new(text.as_bytes().to_vec())
    }

    #[actix_web::test]
    async fn answers_are_reused_within_a_generation_only() {
        let cache = ResponseCache::new(1 << 20);
        let computed = AtomicUsize::new(0);
        let compute = || async {
            computed.fetch_add(1, Ordering::SeqCst);
            body("answer")
        };
        cache.get_or_compute(1, "week", compute).await.unwrap();
        let again = cache.get_or_compute(1, "week", compute).await.unwrap();
        assert_eq!(again.plain, Bytes::from_static(b"answer"));
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        cache.get_or_compute(2, "week", compute).await.unwrap();
        assert_eq!(computed.load(Ordering::SeqCst), 2, "a new generation");
        cache.get_or_compute(1, "week", compute).await.unwrap();
        assert_eq!(
            computed.load(Ordering::SeqCst),
            3,
            "an older one is not kept"
        );
        cache.get_or_compute(2, "week", compute).await.unwrap();
        assert_eq!(
            computed.load(Ordering::SeqCst),
            3,
            "nor does it drop the newer"
        );
        cache
            .get_or_compute(2, "other week", compute)
            .await
            .unwrap();
        assert_eq!(computed.load(Ordering::SeqCst), 4);
    }

    #[actix_web::test]
    async fn a_zero_budget_always_computes_and_gzip_round_trips() {
        let cache = ResponseCache::new(0);
        let computed = AtomicUsize::new(0);
        for _ in 0..3 {
            cache
                .get_or_compute(1, "week", || async {
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
    async fn a_new_generation_drops_every_answer_and_the_budget_bounds_the_bytes() {
        let cache = ResponseCache::new(3000);
        for week in ["a", "b"] {
            cache
                .get_or_compute(1, week, || async { body(&"x".repeat(1000)) })
                .await
                .unwrap();
        }
        let (entries, bytes) = cache.held();
        assert_eq!(entries, 2);
        assert!(bytes > 2000, "{bytes}");
        cache
            .get_or_compute(2, "a", || async { body("z") })
            .await
            .unwrap();
        assert_eq!(
            cache.held().0,
            1,
            "a new generation drops the previous one whole"
        );

        // Past the budget new answers are not kept, and those kept go on serving.
        let computed = AtomicUsize::new(0);
        let compute = || async {
            computed.fetch_add(1, Ordering::SeqCst);
            body(&"y".repeat(1000))
        };
        for week in ["b", "c", "d", "e", "b", "c", "d", "e"] {
            cache.get_or_compute(2, week, compute).await.unwrap();
            assert!(cache.held().1 <= 3000 + 1100, "{:?}", cache.held());
        }
        assert_eq!(
            computed.load(Ordering::SeqCst),
            5,
            "b, c and d were kept (d while the budget had room) and served again; e was computed each time"
        );
    }

    #[actix_web::test]
    async fn an_error_is_not_kept() {
        let cache = ResponseCache::new(1 << 20);
        let failed: Result<CachedBody, &str> = cache
            .get_or_compute(1, "week", || async { Err("db down") })
            .await;
        assert!(failed.is_err());
        let ok: Result<CachedBody, &str> = cache
            .get_or_compute(1, "week", || async {
                Ok(CachedBody::new(b"fine".to_vec()).unwrap())
            })
            .await;
        assert_eq!(ok.unwrap().plain, Bytes::from_static(b"fine"));
    }
}
