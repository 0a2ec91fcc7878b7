//! The outbox worker inside `serve`: claims due messages, sends them, records the
//! outcome, retries with backoff, and queues reminders. No database transaction stays
//! open while a message is on the wire: claim and commit, send, then record.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::backoff;
use super::compose::reminder_key;
use super::message;
use super::transport::Mailer;
use crate::config::Settings;
use crate::db::{self, DbPool, write_transaction};
use crate::store::bookings;
use crate::store::outbox::{self, Email};

/// Messages one worker claims at a time.
const BATCH: i64 = 20;
/// Reminders are looked for once every this many polls.
const POLLS_PER_REMINDER_SCAN: u32 = 30;

/// A running worker; `stop` lets the message in flight finish and hands the rest back.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "email worker ended abnormally");
        }
    }
}

struct Worker {
    pool: DbPool,
    settings: Arc<Settings>,
    mailer: Mailer,
    stop: watch::Receiver<bool>,
}

/// Starts a worker on the current Tokio runtime.
pub fn spawn(pool: DbPool, settings: Arc<Settings>) -> anyhow::Result<WorkerHandle> {
    let mailer = Mailer::from_settings(&settings.email)?;
    let (stop, stop_rx) = watch::channel(false);
    let worker = Worker {
        pool,
        settings,
        mailer,
        stop: stop_rx,
    };
    let task = tokio::spawn(worker.run());
    Ok(WorkerHandle { stop, task })
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs blocking database work off the async threads.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut db::DbConnection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await?
    }

    async fn run(mut self) {
        let poll = Duration::from_millis(self.settings.email.poll_interval_ms);
        let mut polls = 0;
        tracing::info!(transport = ?self.settings.email.transport, "email worker started");
        while !self.stopping() {
            if polls % POLLS_PER_REMINDER_SCAN == 0
                && let Err(error) = self.queue_reminders().await
            {
                tracing::warn!(error = format!("{error:#}"), "queueing reminders failed");
            }
            polls += 1;
            let sent = match self.send_due().await {
                Ok(sent) => sent,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "email worker could not claim");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
        tracing::info!("email worker stopped");
    }

    /// Claims a batch and sends it; returns how many messages it handled.
    async fn send_due(&self) -> anyhow::Result<usize> {
        let now = db::now();
        let lease = chrono::Duration::seconds(
            (self.settings.email.smtp.timeout_seconds as i64 + 5) * BATCH + 60,
        );
        let batch = self
            .db(move |conn| {
                Ok(write_transaction(conn, |conn| {
                    outbox::claim_due(conn, now, now + lease, BATCH)
                })?)
            })
            .await?;
        let handled = batch.len();
        let mut remaining: Vec<i64> = batch.iter().map(|e| e.id).collect();
        for email in batch {
            if self.stopping() {
                break;
            }
            remaining.retain(|id| *id != email.id);
            self.send_one(email).await;
        }
        if !remaining.is_empty() {
            self.db(move |conn| Ok(outbox::unclaim(conn, &remaining)?))
                .await?;
        }
        Ok(handled)
    }

    async fn send_one(&self, email: Email) {
        let outcome = match message::build(&self.settings, &email) {
            Ok(message) => self.mailer.send(message).await,
            Err(error) => Err(error.context("building the message")),
        };
        let id = email.id;
        let now = db::now();
        let recorded = match outcome {
            Ok(()) => {
                tracing::info!(id, kind = email.kind, "email sent");
                self.db(move |conn| Ok(outbox::mark_sent(conn, id, now)?))
                    .await
            }
            Err(error) => {
                let error = format!("{error:#}");
                let attempts = u32::try_from(email.attempts).unwrap_or(u32::MAX);
                let retry_at = self.retry_at(attempts, now);
                tracing::warn!(
                    id,
                    attempts,
                    error,
                    will_retry = retry_at.is_some(),
                    "email not sent"
                );
                self.db(move |conn| Ok(outbox::mark_attempt_failed(conn, id, &error, retry_at)?))
                    .await
            }
        };
        if let Err(error) = recorded {
            // The claim's lease runs out and the message is tried again: at least once.
            tracing::error!(
                id,
                error = format!("{error:#}"),
                "could not record an email's outcome"
            );
        }
    }

    fn retry_at(&self, attempts: u32, now: NaiveDateTime) -> Option<NaiveDateTime> {
        (attempts < self.settings.email.max_attempts).then(|| {
            let base = chrono::Duration::seconds(i64::from(self.settings.email.retry_base_seconds));
            now + backoff::delay(attempts, base, rand::rng().random_range(0.0..=1.0))
        })
    }

    /// Queues the reminder of every confirmed booking starting within the configured
    /// hours that has none for its time yet. The outbox's unique dedupe key makes this
    /// safe to run anywhere and any number of times.
    async fn queue_reminders(&self) -> anyhow::Result<()> {
        let settings = self.settings.clone();
        let queued = self
            .db(move |conn| {
                let now = db::now();
                let until =
                    now + chrono::Duration::hours(i64::from(settings.email.reminder_hours_before));
                let due = bookings::confirmed_starting_between(conn, now, until)?;
                let keys: Vec<String> = due
                    .iter()
                    .map(|(id, seq)| reminder_key(*id, *seq))
                    .collect();
                let done = outbox::existing_dedupe_keys(conn, &keys)?;
                let mut queued = 0;
                for ((id, _), key) in due.iter().zip(&keys) {
                    if done.contains(key) {
                        continue;
                    }
                    let result = write_transaction(conn, |conn| {
                        crate::booking::remind(conn, &settings, *id, now)
                    });
                    match result {
                        Ok(true) => queued += 1,
                        Ok(false) => {}
                        Err(error) => {
                            return Err(anyhow::anyhow!("reminder for booking {id}: {error}"));
                        }
                    }
                }
                Ok(queued)
            })
            .await?;
        if queued > 0 {
            tracing::info!(queued, "reminders queued");
        }
        Ok(())
    }
}
