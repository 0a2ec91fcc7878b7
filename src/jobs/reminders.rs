//! The reminder scan: a booking job that queues reminders into the outbox.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::config::Settings;
use crate::db::DbPool;

/// Queues every reminder due at `now` that is not queued yet; returns how many it queued.
pub async fn run_once(
    pool: DbPool,
    settings: Arc<Settings>,
    now: NaiveDateTime,
) -> anyhow::Result<usize> {
    let queued = crate::db::run_blocking(&pool, move |conn| {
        Ok(crate::booking::queue_due_reminders(conn, &settings, now)?)
    })
    .await?;
    crate::instruments::reminders_queued(queued);
    Ok(queued)
}
