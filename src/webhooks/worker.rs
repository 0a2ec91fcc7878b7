//! The delivery worker, one of the jobs `jobs::Supervisor` runs: claims due deliveries,
//! signs and posts them concurrently, records each outcome, retries on the configured
//! schedule with jitter. No transaction stays open while a request is on the wire, and
//! each attempt is bounded by `webhooks.timeout_seconds`: a slow or dead receiver holds
//! up only its own deliveries, never a booking or an email.

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

/// Deliveries one worker claims at a time, and sends at once.
const BATCH: i64 = 16;

pub struct Worker {
    pool: DbPool,
    settings: Arc<Settings>,
    clock: Clock,
    stop: CancellationToken,
    writers: db::WriteQueue,
    sealer: Option<Sealer>,
    client: awc::Client,
}

impl Worker {
    pub fn new(
        pool: DbPool,
        settings: Arc<Settings>,
        clock: Clock,
        stop: CancellationToken,
        writers: db::WriteQueue,
    ) -> Worker {
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
        Worker {
            sealer: Sealer::new(&settings.webhooks.encryption_key),
            pool,
            settings,
            clock,
            stop,
            writers,
            client,
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut db::DbConnection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _turn = self.writers.turn().await;
        db::run_blocking(&self.pool, f).await
    }

    /// Delivers until stopped, polling when nothing is due.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.settings.webhooks.poll_interval_ms);
        while !self.stop.is_cancelled() {
            let handled = match self.run_once().await {
                Ok(handled) => handled,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "webhook worker could not claim"
                    );
                    0
                }
            };
            if handled == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.stop.cancelled() => {}
                }
            }
        }
    }

    /// Claims one batch of due deliveries and sends them; returns how many it handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        // Long enough for every attempt of the batch (they run together) and its record.
        let lease =
            chrono::Duration::seconds(2 * self.settings.webhooks.timeout_seconds as i64 + 60);
        let batch = self
            .db(move |conn| {
                Ok(write_transaction(conn, |conn| {
                    store::claim_due(conn, now, now + lease, BATCH)
                })?)
            })
            .await?;
        let handled = batch.len();
        futures_util::future::join_all(batch.into_iter().map(|d| self.deliver(d))).await;
        Ok(handled)
    }

    async fn deliver(&self, delivery: Claimed) {
        let attempt = self.attempt(&delivery).await;
        let (id, attempts) = (
            delivery.id,
            u32::try_from(delivery.attempts).unwrap_or(u32::MAX),
        );
        let now = self.clock.now();
        let recorded = match attempt {
            Ok(code) => {
                crate::instruments::webhook_attempt(true);
                tracing::info!(id, status = code, "webhook delivered");
                self.db(move |conn| {
                    Ok(store::record(
                        conn,
                        id,
                        Outcome::Delivered { status_code: code },
                        now,
                    )?)
                })
                .await
            }
            Err((code, error)) => {
                crate::instruments::webhook_attempt(false);
                let retry_at = self.retry_at(attempts, now);
                tracing::warn!(
                    id,
                    attempts,
                    status = code,
                    error,
                    will_retry = retry_at.is_some(),
                    "webhook not delivered"
                );
                self.db(move |conn| {
                    let outcome = Outcome::Failed {
                        status_code: code,
                        error: &error,
                        retry_at,
                    };
                    Ok(store::record(conn, id, outcome, now)?)
                })
                .await
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the delivery is tried again: at least once.
            tracing::error!(
                id,
                error = format!("{error:#}"),
                "could not record a webhook's outcome"
            );
        }
    }

    /// One signed POST; the receiver's status code, or why it did not take it.
    async fn attempt(&self, delivery: &Claimed) -> Result<i32, (Option<i32>, String)> {
        let fail = |error: String| (None, error);
        let policy = Policy::from_settings(&self.settings.webhooks);
        check_url(&delivery.url, policy).map_err(|e| fail(format!("the URL {e}")))?;
        let sealer = self
            .sealer
            .as_ref()
            .ok_or_else(|| fail("webhooks.encryption_key is not configured".into()))?;
        let secret = sealer
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
