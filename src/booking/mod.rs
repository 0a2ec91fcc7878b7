//! Booking use cases: book (one appointment or a course), reschedule, cancel, and the
//! front desk's confirm, complete and no-show. Each applies `domain::booking`'s rules,
//! claims or releases slots through `store`, records the change in the audit log and
//! queues its emails. Every function here runs inside the caller's write transaction, so
//! a change, its audit entry, its emails and its idempotency record commit together.
//! A change of an existing booking first locks it and reads it again under the lock, so
//! it decides on what is current, and two changes of one booking run one after the other.

mod announce;
pub mod availability;
mod change;
mod create;
pub mod erasure;
mod error;
pub mod feed;
mod reminders;
mod slots;

pub use change::{cancel, cancel_course, expire_unreviewed, record_outcome, reschedule};
pub use create::{Booked, Channel, NewBookingRequest, PatientDetails, book, proposed_sessions};
pub use error::{BookingError, PatientRule, SessionsProblem};
pub use reminders::queue_due_reminders;

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::booking::{BookingWindow, patient_may_change};
use crate::email::compose::{self, CoursePlace, Event};
use crate::store::audit::Actor;
use crate::store::bookings::{self, BookingDetails};
use crate::store::dermatologists::{Dermatologist, Performer};
use crate::store::outbox;
use announce::{Happened, announce};

/// Queues the emails a change to `details` owes; returns how many were new (a message
/// whose dedupe key is already queued is not queued again).
fn notify(
    conn: &mut DbConnection,
    settings: &Settings,
    details: &BookingDetails,
    event: Event,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<usize, BookingError> {
    let course = match details.booking.course_id {
        // One light query for the session's place; a new course passes it in instead.
        Some(course_id) => {
            let order = bookings::course_order(conn, course_id)?;
            order
                .iter()
                .position(|id| *id == details.booking.id)
                .map(|index| CoursePlace {
                    session: index + 1,
                    sessions: order.len(),
                })
        }
        None => None,
    };
    let token = crate::tokens::manage_token(
        &settings.auth.manage_link_secret,
        &details.booking.reference,
        &details.booking.manage_nonce,
    );
    let actor = match actor {
        Actor::Patient => compose::Actor::Patient,
        Actor::Staff(_) | Actor::ApiKey { .. } => compose::Actor::FrontDesk,
        Actor::System => compose::Actor::Clinic,
    };
    let emails = compose::messages(settings, details, &event, actor, &token, course, now)?;
    Ok(outbox::enqueue(conn, &emails)?)
}

/// The clinic's booking window: the minimum notice and the horizon. The availability
/// search offers exactly the starts that booking then accepts.
pub fn booking_window(settings: &Settings) -> BookingWindow {
    BookingWindow {
        min_notice: Duration::minutes(i64::from(settings.booking.min_notice_minutes)),
        max_ahead: Duration::days(i64::from(settings.booking.max_days_ahead)),
    }
}

/// Passes when `starts_at` is within the clinic's booking window (minimum notice, which
/// the front desk may waive, and horizon).
fn check_start(
    settings: &Settings,
    starts_at: NaiveDateTime,
    now: NaiveDateTime,
    waive_notice: bool,
) -> Result<(), BookingError> {
    booking_window(settings)
        .check(starts_at, now, waive_notice)
        .map_err(BookingError::Timing)
}

/// Passes when the dermatologist is active and performs the treatment.
fn require_performer(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    treatment: &crate::store::treatments::Treatment,
) -> Result<Dermatologist, BookingError> {
    let found = crate::store::dermatologists::with_treatment(conn, dermatologist_id, treatment.id)?;
    performer(found, treatment)
}

/// The dermatologist found, when they are active and perform the treatment.
fn performer(
    found: Performer,
    treatment: &crate::store::treatments::Treatment,
) -> Result<Dermatologist, BookingError> {
    match found {
        Some((dermatologist, true)) if dermatologist.active => Ok(dermatologist),
        Some((dermatologist, false)) if dermatologist.active => Err(BookingError::NotPerformed {
            treatment: treatment.name.clone(),
        }),
        _ => Err(BookingError::UnknownDermatologist),
    }
}

/// Whether the patient may still change a booking starting at `starts_at` online: the
/// clinic's change cutoff before it has not passed.
pub fn patient_may_still_change(
    settings: &Settings,
    starts_at: NaiveDateTime,
    now: NaiveDateTime,
) -> bool {
    patient_may_change(starts_at, now, change_cutoff(settings))
}

/// The last moment before a booking starting at `starts_at` that the patient may change it.
pub fn patient_change_deadline(settings: &Settings, starts_at: NaiveDateTime) -> NaiveDateTime {
    starts_at - change_cutoff(settings)
}

fn change_cutoff(settings: &Settings) -> Duration {
    Duration::hours(i64::from(settings.booking.change_cutoff_hours))
}

/// Passes unless a patient changes a booking after the change cutoff; the front desk and
/// the clinic's own jobs may change it at any time.
fn require_changeable_by(
    settings: &Settings,
    actor: Actor,
    starts_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), BookingError> {
    if !matches!(actor, Actor::Patient) || patient_may_still_change(settings, starts_at, now) {
        return Ok(());
    }
    Err(BookingError::TooLateToChange {
        cutoff_hours: settings.booking.change_cutoff_hours,
        clinic_phone: settings.clinic.phone.clone(),
    })
}

/// Locks a booking for a change and reads it under the lock.
fn lock_and_load(conn: &mut DbConnection, id: i64) -> Result<BookingDetails, BookingError> {
    bookings::lock(conn, &[id])?;
    reload(conn, id)
}

/// The booking a patient's manage token opens. The token's hash is looked up by the
/// unique index, so nothing compares the token itself; an unknown one is not found.
/// A link stops working some days after its appointment: it is in an old email, and
/// nothing about a past appointment needs changing online.
pub fn by_manage_token(
    conn: &mut DbConnection,
    settings: &Settings,
    token: &str,
    now: NaiveDateTime,
) -> Result<BookingDetails, BookingError> {
    let details = bookings::details_by_token_hash(conn, &crate::tokens::token_hash(token))?
        .ok_or(BookingError::NotFound)?;
    let valid_for = Duration::days(i64::from(settings.booking.manage_link_valid_days_after));
    if details.booking.ends_at + valid_for < now {
        return Err(BookingError::LinkExpired {
            clinic_phone: settings.clinic.phone.clone(),
        });
    }
    Ok(details)
}

/// Brings the links of bookings made before nonces under the current secret: each
/// stored hash becomes that of the link the current secret derives. A link made with
/// another secret (the development value that once shipped, say) stops working, and
/// every email from now on carries the link that works. Returns how many changed.
pub fn rekey_legacy_links(conn: &mut DbConnection, secret: &str) -> QueryResult<usize> {
    let mut changed = 0;
    for (id, reference, stored) in bookings::legacy_links(conn)? {
        let hash = crate::tokens::token_hash(&crate::tokens::manage_token(secret, &reference, ""));
        if hash != stored {
            changed += bookings::set_token_hash(conn, id, &hash)?;
        }
    }
    Ok(changed)
}

/// The booking a manage token opens, locked for a change: looked up, locked, and checked
/// again under the lock, so a link the desk revoked a moment ago changes nothing.
pub fn lock_by_manage_token(
    conn: &mut DbConnection,
    settings: &Settings,
    token: &str,
    now: NaiveDateTime,
) -> Result<i64, BookingError> {
    let id = by_manage_token(conn, settings, token, now)?.booking.id;
    let locked = lock_and_load(conn, id)?;
    if locked.booking.manage_token_hash != crate::tokens::token_hash(token) {
        return Err(BookingError::NotFound);
    }
    Ok(id)
}

/// Revokes a booking's manage link and issues a new one (the front desk's, when a link
/// went astray); returns the new token, which only this answer carries.
pub fn reissue_manage_link(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<(BookingDetails, String), BookingError> {
    let before = lock_and_load(conn, booking_id)?;
    let nonce = crate::tokens::new_nonce();
    let token = crate::tokens::manage_token(
        &settings.auth.manage_link_secret,
        &before.booking.reference,
        &nonce,
    );
    if !bookings::set_manage_link(
        conn,
        booking_id,
        before.booking.version,
        &nonce,
        &crate::tokens::token_hash(&token),
        now,
    )? {
        return Err(BookingError::ChangedMeanwhile {
            reference: before.booking.reference,
        });
    }
    crate::store::audit::record(
        conn,
        actor,
        crate::store::audit::Change {
            entity: "booking",
            entity_id: booking_id,
            action: "manage_link_reissued",
            before_status: Some(before.booking.status.as_str()),
            after_status: Some(before.booking.status.as_str()),
            details: None,
        },
        now,
    )?;
    Ok((reload(conn, booking_id)?, token))
}

/// Reloads a booking that the transaction has just written.
fn reload(conn: &mut DbConnection, id: i64) -> Result<BookingDetails, BookingError> {
    bookings::details(conn, id)?.ok_or(BookingError::NotFound)
}
