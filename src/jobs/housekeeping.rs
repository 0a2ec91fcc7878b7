//! Hourly housekeeping: removes expired staff sessions and idempotency keys, cancels
//! bookings no one reviewed in time, empties the bodies of old sent emails, forgets old
//! settled webhook deliveries, erases patients past the retention period (and empties
//! messages to erased patients that a crash left unemptied), and extends
//! the slots' rolling horizon (a new day's slots once a day, nothing otherwise).

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::config::Settings;
use crate::db::DbPool;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Housekept {
    pub sessions_removed: usize,
    pub idempotency_keys_removed: usize,
    pub unreviewed_expired: usize,
    pub email_bodies_purged: usize,
    pub webhook_deliveries_purged: usize,
    pub patients_erased: usize,
    pub erased_emails_emptied: usize,
    pub slots_added: usize,
}

pub async fn run_once(
    pool: DbPool,
    settings: Arc<Settings>,
    now: NaiveDateTime,
) -> anyhow::Result<Housekept> {
    crate::db::run_blocking(&pool, move |conn| {
        let sessions_removed = crate::store::staff::delete_expired_sessions(conn, now)?;
        let idempotency_keys_removed = crate::store::idempotency::purge_expired(conn, now)?;
        let unreviewed_expired = crate::booking::expire_unreviewed(conn, &settings, now)?;
        let retention = chrono::Duration::days(i64::from(settings.email.body_retention_days));
        let email_bodies_purged = crate::store::outbox::purge_bodies(conn, now - retention)?;
        let history = chrono::Duration::days(i64::from(settings.webhooks.history_days));
        let webhook_deliveries_purged = crate::store::webhooks::purge_settled(conn, now - history)?;
        let patients_erased = crate::booking::erasure::erase_past_retention(conn, &settings, now)?;
        let erased_emails_emptied = crate::store::outbox::erase_if_marked(conn, None)?;
        crate::store::rate::purge(conn, now - chrono::Duration::days(1))?;
        crate::store::login_failures::purge(conn, now - chrono::Duration::days(1))?;
        let horizon = crate::scheduling::generate_horizon(
            conn,
            crate::scheduling::Horizon::of(&settings, now),
            None,
        )?;
        Ok(Housekept {
            sessions_removed,
            idempotency_keys_removed,
            unreviewed_expired,
            email_bodies_purged,
            webhook_deliveries_purged,
            patients_erased,
            erased_emails_emptied,
            slots_added: horizon.added,
        })
    })
    .await
}
