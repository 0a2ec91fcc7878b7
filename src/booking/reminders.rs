//! Reminders: the clinic's own change of a booking's life, queued into the outbox like
//! any other email. The outbox's unique dedupe key (booking and calendar sequence) makes
//! a scan safe to run anywhere, at once and any number of times.

use chrono::{Duration, NaiveDateTime};

use super::{BookingError, lock_and_load, notify};
use crate::config::Settings;
use crate::db::{DbConnection, write_transaction};
use crate::domain::booking::BookingStatus;
use crate::email::compose::{Event, reminder_key};
use crate::store::audit::Actor;
use crate::store::{bookings, outbox};

/// Queues the reminder of every confirmed booking starting within the configured hours
/// that has none for its time yet; returns how many it queued.
pub fn queue_due_reminders(
    conn: &mut DbConnection,
    settings: &Settings,
    now: NaiveDateTime,
) -> Result<usize, BookingError> {
    let until = now + Duration::hours(i64::from(settings.email.reminder_hours_before));
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
        // One transaction a booking: a failure leaves the others queued.
        if write_transaction(conn, |conn| remind(conn, settings, *id, now))? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queues the reminder of a booking that is still confirmed; returns whether it did.
fn remind(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    now: NaiveDateTime,
) -> Result<bool, BookingError> {
    // Locked like any change: a cancel or a move in flight decides first, so no reminder
    // goes out for a cancelled booking or for a time it no longer has.
    let details = lock_and_load(conn, booking_id)?;
    if details.booking.status != BookingStatus::Confirmed || details.booking.starts_at <= now {
        return Ok(false);
    }
    let queued = notify(
        conn,
        settings,
        &details,
        Event::Reminder,
        Actor::System,
        now,
    )?;
    Ok(queued > 0)
}
