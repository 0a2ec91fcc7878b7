//! The outbox sender, one of the jobs `jobs::Supervisor` runs: claims due messages, sends
//! them, records the outcome, retries with backoff. It only reads the outbox; what goes
//! into it is the booking layer's. No database transaction stays open while a message is
//! on the wire: claim and commit, send, then record.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backoff;
use super::message;
use super::transport::Mailer;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbPool, write_transaction};
use crate::store::outbox::{self, Email};

/// Messages one worker claims at a time.
const BATCH: i64 = 20;

/// How long outcomes may wait to be recorded while a batch is being sent.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// What became of one message.
#[derive(Clone)]
enum Outcome {
    Sent {
        id: i64,
        at: NaiveDateTime,
    },
    Failed {
        id: i64,
        error: String,
        retry_at: Option<NaiveDateTime>,
    },
}

impl Outcome {
    fn id(&self) -> i64 {
        match self {
            Outcome::Sent { id, .. } | Outcome::Failed { id, .. } => *id,
        }
    }
}

/// A running sender on its own (a test's second instance); `stop` lets the message in
/// flight finish and hands the rest back.
pub struct WorkerHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "email worker ended abnormally");
        }
    }
}

/// When a sender last showed it was alive, for readiness: it beats before every poll and
/// after every message.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<std::sync::atomic::AtomicU64>);

impl Heartbeat {
    /// Milliseconds on a monotonic clock (a wall-clock step must not stop the heart),
    /// from 1 so that 0 can mean "never".
    fn now_ms() -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
            + 1
    }

    pub fn beat(&self) {
        self.0
            .store(Self::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the last beat; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_millis(Self::now_ms().saturating_sub(at))),
        }
    }
}

pub struct Worker {
    pool: DbPool,
    heartbeat: Heartbeat,
    settings: Arc<Settings>,
    clock: Clock,
    mailer: Mailer,
    stop: CancellationToken,
    writers: db::WriteQueue,
}

/// Starts a sender on the current Tokio runtime, stopped by its handle.
pub fn spawn(pool: DbPool, settings: Arc<Settings>) -> anyhow::Result<WorkerHandle> {
    let stop = CancellationToken::new();
    let worker = Worker::new(pool, settings, Clock::default(), stop.clone())?;
    let task = tokio::spawn(worker.run());
    Ok(WorkerHandle { stop, task })
}

impl Worker {
    /// A sender that acts at `clock`'s time and stops when `stop` is cancelled.
    pub fn new(
        pool: DbPool,
        settings: Arc<Settings>,
        clock: Clock,
        stop: CancellationToken,
    ) -> anyhow::Result<Worker> {
        let mailer = Mailer::from_settings(&settings.email)?;
        Ok(Worker {
            pool,
            heartbeat: Heartbeat::default(),
            settings,
            clock,
            mailer,
            stop,
            writers: db::WriteQueue::default(),
        })
    }

    /// Beats `heartbeat` as it works.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Worker {
        self.heartbeat = heartbeat;
        self
    }

    /// Queues its writes with the server's (on SQLite).
    pub fn with_write_queue(mut self, writers: db::WriteQueue) -> Worker {
        self.writers = writers;
        self
    }

    fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Runs blocking database writes off the async threads, in the server's write queue
    /// (every database access of the sender writes): on SQLite they share the requests'
    /// commits.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut db::DbConnection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.writers.background_write(&self.pool, f).await
    }

    /// Sends until stopped, polling the outbox when it is empty.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.settings.email.poll_interval_ms);
        tracing::info!(transport = ?self.settings.email.transport, "email worker started");
        while !self.stopping() {
            self.heartbeat.beat();
            let sent = match self.run_once().await {
                Ok(sent) => sent,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "email worker could not claim");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.stop.cancelled() => {}
                }
            }
        }
        tracing::info!("email worker stopped");
    }

    /// Claims one batch of due messages and sends it; returns how many it handled.
    /// Outcomes are recorded together, at the end of the batch or after `RECORD_EVERY`,
    /// in one transaction: one commit for many messages instead of one each (on SQLite
    /// each commit waits its turn behind the bookings). A crash before they are recorded
    /// sends those messages again once their lease runs out: at least once, as ever.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        // Long enough for every message of the batch to take its whole limit (twice the
        // SMTP timeout, in `send_one`), and the outcomes their wait to be recorded.
        let per_message = chrono::Duration::seconds(
            2 * self.settings.email.smtp.timeout_seconds.max(1) as i64 + 5,
        );
        let claimed_until = now + per_message * BATCH as i32 + chrono::Duration::seconds(60);
        let batch = self
            .db(move |conn| {
                Ok(write_transaction(conn, |conn| {
                    outbox::claim_due(conn, now, claimed_until, BATCH)
                })?)
            })
            .await?;
        let handled = batch.len();
        let mut remaining: Vec<i64> = batch.iter().map(|e| e.id).collect();
        let mut outcomes = Vec::new();
        let mut recorded_at = std::time::Instant::now();
        for email in batch {
            // A message is begun only while the claim will outlast it (slow recording
            // may have eaten into the lease); the rest are handed back.
            if self.stopping() || self.clock.now() + per_message > claimed_until {
                break;
            }
            remaining.retain(|id| *id != email.id);
            outcomes.push(self.send_one(email).await);
            self.heartbeat.beat();
            if recorded_at.elapsed() >= RECORD_EVERY {
                outcomes = self
                    .record(std::mem::take(&mut outcomes), claimed_until)
                    .await;
                recorded_at = std::time::Instant::now();
            }
        }
        if !self.record(outcomes, claimed_until).await.is_empty() {
            // Their claim's lease runs out and they are sent again: at least once.
            tracing::error!("emails' outcomes left unrecorded; they will be sent again");
        }
        if !remaining.is_empty() {
            self.db(move |conn| Ok(outbox::unclaim(conn, &remaining, claimed_until)?))
                .await?;
        }
        Ok(handled)
    }

    async fn send_one(&self, email: Email) -> Outcome {
        let started = std::time::Instant::now();
        // One message may take a reconnect and a send, each bounded by the SMTP timeout;
        // past twice that it is given up (and retried), so the sender never hangs.
        let limit = Duration::from_secs(2 * self.settings.email.smtp.timeout_seconds.max(1));
        let outcome = match message::build(&self.settings, &email) {
            Ok(message) => tokio::time::timeout(limit, self.mailer.send(message))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {limit:?}"))),
            Err(error) => Err(error.context("building the message")),
        };
        match &outcome {
            Ok(()) => crate::instruments::email_sent(started.elapsed()),
            Err(_) => crate::instruments::email_failed(started.elapsed()),
        }
        let id = email.id;
        let now = self.clock.now();
        match outcome {
            Ok(()) => {
                tracing::info!(id, kind = email.kind, "email sent");
                Outcome::Sent { id, at: now }
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
                Outcome::Failed {
                    id,
                    error,
                    retry_at,
                }
            }
        }
    }

    /// Records `outcomes` of the claim that leased them `claimed_until`, in one
    /// transaction, or else one by one (so that one that cannot be stored costs only
    /// itself); hands back those it could not record, to be tried again.
    async fn record(&self, outcomes: Vec<Outcome>, claimed_until: NaiveDateTime) -> Vec<Outcome> {
        if outcomes.is_empty() {
            return outcomes;
        }
        let Err(error) = self.record_together(outcomes.clone(), claimed_until).await else {
            return Vec::new();
        };
        tracing::warn!(
            error = format!("{error:#}"),
            "could not record emails' outcomes together; recording them one by one"
        );
        let mut unrecorded = Vec::new();
        for outcome in outcomes {
            if let Err(error) = self
                .record_together(vec![outcome.clone()], claimed_until)
                .await
            {
                tracing::error!(
                    id = outcome.id(),
                    error = format!("{error:#}"),
                    "could not record an email's outcome"
                );
                unrecorded.push(outcome);
            }
        }
        unrecorded
    }

    async fn record_together(
        &self,
        outcomes: Vec<Outcome>,
        claimed_until: NaiveDateTime,
    ) -> anyhow::Result<()> {
        self.db(move |conn| {
            Ok(write_transaction(conn, |conn| {
                let ids: Vec<i64> = outcomes.iter().map(Outcome::id).collect();
                outbox::lock_in_order(conn, &ids)?;
                // Sent ones in one statement per second they were sent in (times are to
                // the second, and a batch takes a few).
                let mut sent: Vec<(NaiveDateTime, i64)> = Vec::new();
                for outcome in &outcomes {
                    match outcome {
                        Outcome::Sent { id, at } => sent.push((*at, *id)),
                        Outcome::Failed {
                            id,
                            error,
                            retry_at,
                        } => {
                            outbox::mark_attempt_failed(conn, *id, claimed_until, error, *retry_at)?
                        }
                    }
                }
                for group in sent.chunk_by(|a, b| a.0 == b.0) {
                    let ids: Vec<i64> = group.iter().map(|(_, id)| *id).collect();
                    outbox::mark_sent(conn, &ids, claimed_until, group[0].0)?;
                }
                // Settled messages whose patient was erased meanwhile are emptied now.
                outbox::erase_if_marked(conn, Some(&ids))?;
                diesel::QueryResult::Ok(())
            })?)
        })
        .await
    }

    fn retry_at(&self, attempts: u32, now: NaiveDateTime) -> Option<NaiveDateTime> {
        (attempts < self.settings.email.max_attempts).then(|| {
            let base = chrono::Duration::seconds(i64::from(self.settings.email.retry_base_seconds));
            now + backoff::delay(attempts, base, rand::rng().random_range(0.0..=1.0))
        })
    }
}
