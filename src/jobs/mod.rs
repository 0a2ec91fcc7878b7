//! Background work under one lifecycle: the email sender, the webhook deliveries, the
//! reminder scan and the hourly housekeeping run as tasks of one [`Supervisor`], started after the server has
//! bound its port and stopped, each after the step it is in, when the server stops. Each
//! job has a `run_once` that a test can call directly instead of waiting for a timer.

pub mod housekeeping;
pub mod reminders;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::DbPool;
use crate::email::worker::{Heartbeat, Worker};

/// The reminder scan runs once every this many outbox polls.
const POLLS_PER_REMINDER_SCAN: u32 = 30;

pub struct Supervisor {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Supervisor {
    /// Starts every job on the current runtime. `on_availability_changed` is told when the
    /// housekeeping added slots or expired bookings (the availability index checks at
    /// once). The email sender's writes, frequent and short, take their turn in
    /// `writers` with the server's; reminders and housekeeping, rare and long, do not
    /// hold the queue through a whole run (slot generation is one transaction per
    /// dermatologist so that it never holds the write lock long).
    pub fn start(
        pool: DbPool,
        settings: Arc<Settings>,
        clock: Clock,
        sender_heartbeat: Heartbeat,
        writers: crate::db::WriteQueue,
        on_availability_changed: impl Fn() + Send + Sync + 'static,
    ) -> anyhow::Result<Supervisor> {
        let stop = CancellationToken::new();
        // Started counts as alive: readiness asks before the first poll comes round.
        sender_heartbeat.beat();
        let sender = Worker::new(pool.clone(), settings.clone(), clock.clone(), stop.clone())?
            .with_heartbeat(sender_heartbeat)
            .with_write_queue(writers.clone());
        // Its HTTP client lives on this thread's local task set, as actix's does.
        let webhooks = crate::webhooks::worker::Worker::new(
            pool.clone(),
            settings.clone(),
            clock.clone(),
            stop.clone(),
            writers.clone(),
        );
        let poll = Duration::from_millis(settings.email.poll_interval_ms);
        let reminders = {
            let (pool, settings, clock) = (pool.clone(), settings.clone(), clock.clone());
            every(
                poll * POLLS_PER_REMINDER_SCAN,
                true,
                stop.clone(),
                move || {
                    let (pool, settings, now) = (pool.clone(), settings.clone(), clock.now());
                    async move {
                        match reminders::run_once(pool, settings, now).await {
                            Ok(0) => {}
                            Ok(queued) => tracing::info!(queued, "reminders queued"),
                            Err(error) => {
                                tracing::warn!(
                                    error = format!("{error:#}"),
                                    "queueing reminders failed"
                                )
                            }
                        }
                    }
                },
            )
        };
        let on_availability_changed = Arc::new(on_availability_changed);
        let housekeeping = every(Duration::from_secs(3600), false, stop.clone(), move || {
            let (pool, settings, now) = (pool.clone(), settings.clone(), clock.now());
            let on_availability_changed = on_availability_changed.clone();
            async move {
                match housekeeping::run_once(pool, settings, now).await {
                    Ok(done) => {
                        if done.slots_added > 0
                            || done.unreviewed_expired > 0
                            || done.patients_erased > 0
                        {
                            on_availability_changed();
                        }
                        tracing::info!(
                            sessions = done.sessions_removed,
                            idempotency_keys = done.idempotency_keys_removed,
                            unreviewed_expired = done.unreviewed_expired,
                            email_bodies = done.email_bodies_purged,
                            webhook_deliveries = done.webhook_deliveries_purged,
                            patients_erased = done.patients_erased,
                            slots = done.slots_added,
                            "housekeeping done"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "housekeeping failed")
                    }
                }
            }
        });
        let mut tasks = vec![
            ("email sender", tokio::spawn(sender.run())),
            ("reminders", tokio::spawn(reminders)),
            ("housekeeping", tokio::spawn(housekeeping)),
        ];
        match webhooks {
            Some(webhooks) => tasks.push(("webhooks", actix_web::rt::spawn(webhooks.run()))),
            None => tracing::info!("webhooks are off: webhooks.encryption_key is not set"),
        }
        Ok(Supervisor { stop, tasks })
    }

    /// Stops every job after the step it is in, and waits for them.
    pub async fn stop(self) {
        self.stop.cancel();
        for (job, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(job, %error, "a background job ended abnormally");
            }
        }
    }
}

/// Runs `step` every `period` until `stop` is cancelled; the first time at once when
/// `at_start`, else after one period (start-up has just done that work).
async fn every<F, Fut>(period: Duration, at_start: bool, stop: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !at_start {
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        step().await;
    }
}
