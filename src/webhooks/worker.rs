//! The delivery worker, one of the jobs `jobs::Supervisor` runs: claims due deliveries,
//! signs and posts each as a task of its own, records each outcome, retries on the
//! configured schedule with jitter. No transaction stays open while a request is on the
//! wire, and each attempt is bounded by `webhooks.timeout_seconds`. At most
//! [`PER_ENDPOINT`] deliveries to one endpoint are in flight, so a slow or dead receiver
//! holds up only its own deliveries; bookings and emails never wait on this worker at all.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::seal::Sealer;
use super::target::{CheckedResolver, Policy, check_url};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbPool, write_transaction};
use crate::store::webhooks::{self as store, Claimed, Outcome};

/// Deliveries in flight at once, in all.
const IN_FLIGHT: usize = 32;
/// Deliveries to one endpoint in flight at once.
const PER_ENDPOINT: usize = 4;
/// Deliveries claimed at a time.
const CLAIM: usize = 8;

pub struct Worker {
    pool: DbPool,
    settings: Arc<Settings>,
    clock: Clock,
    stop: CancellationToken,
    writers: db::WriteQueue,
    sealer: Sealer,
    client: awc::Client,
}

/// What is in flight, by endpoint.
#[derive(Default)]
struct InFlight {
    by_endpoint: HashMap<i64, usize>,
}

impl InFlight {
    fn total(&self) -> usize {
        self.by_endpoint.values().sum()
    }

    fn busy(&self) -> Vec<i64> {
        self.by_endpoint
            .iter()
            .filter(|(_, n)| **n >= PER_ENDPOINT)
            .map(|(id, _)| *id)
            .collect()
    }

    fn finished(&mut self, endpoint: i64) {
        if let Some(n) = self.by_endpoint.get_mut(&endpoint) {
            *n -= 1;
            if *n == 0 {
                self.by_endpoint.remove(&endpoint);
            }
        }
    }
}

impl Worker {
    /// A worker, or `None` when no encryption key is configured: no endpoint can have
    /// been registered, and an attempt without the key could only fail.
    pub fn new(
        pool: DbPool,
        settings: Arc<Settings>,
        clock: Clock,
        stop: CancellationToken,
        writers: db::WriteQueue,
    ) -> Option<Worker> {
        let sealer = Sealer::new(&settings.webhooks.encryption_key)?;
        let policy = Policy::from_settings(&settings.webhooks);
        let timeout = Duration::from_secs(settings.webhooks.timeout_seconds);
        let tcp = actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(
            CheckedResolver(policy),
        ))
        .service();
        let client = awc::Client::builder()
            .connector(awc::Connector::new().connector(tcp).timeout(timeout))
            // A redirect would lead to an address no one checked.
            .disable_redirects()
            .timeout(timeout)
            .add_default_header(("user-agent", "dermabook-webhooks"))
            .finish();
        Some(Worker {
            sealer,
            pool,
            settings,
            clock,
            stop,
            writers,
            client,
        })
    }

    /// Delivers until stopped: claims whenever there is room, and looks again when a
    /// delivery finishes or the poll interval passes. Then waits (up to one attempt's
    /// time) for what is in flight; a delivery cut short is claimed again after its lease.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.settings.webhooks.poll_interval_ms);
        let worker = Rc::new(self);
        let in_flight = Rc::new(RefCell::new(InFlight::default()));
        let finished = Rc::new(tokio::sync::Notify::new());
        while !worker.stop.is_cancelled() {
            let (room, busy) = {
                let in_flight = in_flight.borrow();
                (IN_FLIGHT - in_flight.total(), in_flight.busy())
            };
            let claimed = if room == 0 {
                Vec::new()
            } else {
                worker
                    .claim(room.min(CLAIM), busy)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "webhook worker could not claim"
                        );
                        Vec::new()
                    })
            };
            let idle = claimed.is_empty();
            for delivery in claimed {
                *in_flight
                    .borrow_mut()
                    .by_endpoint
                    .entry(delivery.endpoint_id)
                    .or_default() += 1;
                let (worker, in_flight, finished) =
                    (worker.clone(), in_flight.clone(), finished.clone());
                actix_web::rt::spawn(async move {
                    let endpoint = delivery.endpoint_id;
                    worker.deliver(delivery).await;
                    in_flight.borrow_mut().finished(endpoint);
                    finished.notify_one();
                });
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = finished.notified() => {}
                    _ = worker.stop.cancelled() => {}
                }
            }
        }
        let limit = Duration::from_secs(worker.settings.webhooks.timeout_seconds + 5);
        let _ = tokio::time::timeout(limit, async {
            while in_flight.borrow().total() > 0 {
                finished.notified().await;
            }
        })
        .await;
    }

    /// Claims up to `limit` due deliveries to endpoints not in `busy`; looks first with a
    /// plain read, so an idle worker never takes SQLite's write lock.
    async fn claim(&self, limit: usize, busy: Vec<i64>) -> anyhow::Result<Vec<Claimed>> {
        let now = self.clock.now();
        let looking = busy.clone();
        let due = db::run_blocking(&self.pool, move |conn| {
            Ok(store::any_due(conn, now, &looking)?)
        })
        .await?;
        if !due {
            return Ok(Vec::new());
        }
        // Long enough for the attempt and its record.
        let lease =
            chrono::Duration::seconds(2 * self.settings.webhooks.timeout_seconds as i64 + 60);
        self.writers
            .background_write(&self.pool, move |conn| {
                Ok(write_transaction(conn, |conn| {
                    store::claim_due(conn, now, now + lease, limit as i64, &busy)
                })?)
            })
            .await
    }

    /// Records an outcome in its own write transaction, in the writers' queue.
    async fn record(&self, claimed: Claimed, outcome: Outcome) -> anyhow::Result<bool> {
        let now = self.clock.now();
        self.writers
            .background_write(&self.pool, move |conn| {
                Ok(write_transaction(conn, |conn| {
                    store::record(conn, &claimed, outcome, now)
                })?)
            })
            .await
    }

    async fn deliver(&self, delivery: Claimed) {
        let attempt = self.attempt(&delivery).await;
        let (id, attempts) = (
            delivery.id,
            u32::try_from(delivery.attempts).unwrap_or(u32::MAX),
        );
        let outcome = match attempt {
            Ok(code) => {
                crate::instruments::webhook_attempt(true);
                tracing::info!(id, status = code, "webhook delivered");
                Outcome::Delivered { status_code: code }
            }
            Err((code, error)) => {
                crate::instruments::webhook_attempt(false);
                let retry_at = self.retry_at(attempts, self.clock.now());
                tracing::warn!(
                    id,
                    attempts,
                    status = code,
                    error,
                    will_retry = retry_at.is_some(),
                    "webhook not delivered"
                );
                Outcome::Failed {
                    status_code: code,
                    error,
                    retry_at,
                }
            }
        };
        match self.record(delivery, outcome).await {
            Ok(true) => {}
            // This attempt outlived its lease and another worker has claimed it again:
            // that worker's outcome is the one that counts.
            Ok(false) => tracing::warn!(id, "a webhook's outcome came after its lease"),
            // The lease runs out and the delivery is tried again: at least once.
            Err(error) => tracing::error!(
                id,
                error = format!("{error:#}"),
                "could not record a webhook's outcome"
            ),
        }
    }

    /// One signed POST; the receiver's status code, or why it did not take it.
    async fn attempt(&self, delivery: &Claimed) -> Result<i32, (Option<i32>, String)> {
        let fail = |error: String| (None, error);
        let policy = Policy::from_settings(&self.settings.webhooks);
        check_url(&delivery.url, policy).map_err(|e| fail(format!("the URL {e}")))?;
        let secret = self
            .sealer
            .open(&delivery.secret_sealed)
            .map_err(|e| fail(e.to_string()))?;
        // The receiver checks the timestamp against its own clock: real time, whatever
        // the clinic's clock says.
        let timestamp = chrono::Utc::now().timestamp();
        let signature = standardwebhooks::Webhook::new(&secret)
            .and_then(|w| w.sign(&delivery.message_id, timestamp, delivery.payload.as_bytes()))
            .map_err(|e| fail(format!("signing: {e}")))?;
        let response = self
            .client
            .post(&delivery.url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("webhook-id", delivery.message_id.as_str()))
            .insert_header(("webhook-timestamp", timestamp.to_string()))
            .insert_header(("webhook-signature", signature))
            .send_body(delivery.payload.clone())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let code = i32::from(response.status().as_u16());
        if response.status().is_success() {
            Ok(code)
        } else {
            Err((
                Some(code),
                format!("the receiver answered {}", response.status()),
            ))
        }
    }

    fn retry_at(&self, attempts: u32, now: NaiveDateTime) -> Option<NaiveDateTime> {
        let schedule = &self.settings.webhooks.retry_schedule_seconds;
        let wait = *schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
        // Up to a fifth more, so that deliveries failing together do not retry together.
        let jitter = rand::rng().random_range(0.0..=0.2);
        let wait_ms = (wait as f64 * 1000.0 * (1.0 + jitter)) as i64;
        Some(now + chrono::Duration::milliseconds(wait_ms))
    }
}
