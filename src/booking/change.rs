//! Changes to an existing booking: reschedule, cancel, and the outcomes the front desk
//! records (confirm, complete, no-show). Each locks the booking, decides on what it reads
//! under the lock, and writes with a compare-and-set on its version.

use chrono::{Duration, NaiveDateTime};

use super::create::patient_rule;
use super::slots::{claim, covering_slots};
use super::{
    BookingError, Happened, PatientRule, announce, check_start, lock_and_load, notify,
    patient_may_still_change, reload, require_changeable_by, require_performer,
};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::booking::{Action, BookingStatus, transition};
use crate::domain::catalogue::Category;
use crate::email::compose::{Event, Previous};
use crate::store::audit::{self, Actor, Change};
use crate::store::bookings::{self, BookingDetails};
use crate::store::patient_bookings;

/// A compare-and-set that found the booking changed since it was read: the row lock
/// makes it unreachable, so it is the last line, not the usual path.
fn changed_meanwhile(details: &BookingDetails) -> BookingError {
    BookingError::ChangedMeanwhile {
        reference: details.booking.reference.clone(),
    }
}

/// The status `action` leads to, or why it is illegal from the current one.
fn next_status(
    details: &BookingDetails,
    action: Action,
    now: NaiveDateTime,
) -> Result<(BookingStatus, BookingStatus), BookingError> {
    let current = details.booking.status;
    let next = transition(current, action, details.booking.starts_at, now).map_err(|error| {
        BookingError::IllegalTransition {
            status: current,
            error,
        }
    })?;
    Ok((current, next))
}

/// Moves a booking, keeping its reference: the new slots are claimed before the old ones
/// are released, so the booking never holds nothing and never loses its time to a race.
/// `waive_notice` lets the front desk move it sooner than the minimum notice; a patient
/// may move it only before the change cutoff.
#[allow(clippy::too_many_arguments)]
pub fn reschedule(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    starts_at: NaiveDateTime,
    dermatologist_id: Option<i64>,
    actor: Actor,
    waive_notice: bool,
    now: NaiveDateTime,
) -> Result<BookingDetails, BookingError> {
    let before = lock_and_load(conn, booking_id)?;
    let (status, _) = next_status(&before, Action::Reschedule, now)?;
    require_changeable_by(settings, actor, before.booking.starts_at, now)?;
    let dermatologist_id = dermatologist_id.unwrap_or(before.booking.dermatologist_id);
    if dermatologist_id != before.booking.dermatologist_id {
        require_performer(conn, dermatologist_id, &before.treatment)?;
    }
    if starts_at == before.booking.starts_at && dermatologist_id == before.booking.dermatologist_id
    {
        return Err(BookingError::SameTime);
    }
    check_start(settings, starts_at, now, waive_notice)?;
    let duration = Duration::minutes(i64::from(before.treatment.duration_minutes));
    let needed = duration + Duration::minutes(i64::from(before.treatment.buffer_minutes));
    // Slots of the old time that the new one also covers stay held throughout.
    let own = (dermatologist_id == before.booking.dermatologist_id).then_some(booking_id);
    let wanted = covering_slots(conn, dermatologist_id, starts_at, needed, own)?;
    // After every rule about the time, as for a new booking. A patient may not move a treatment before the consultation it needs; the front
    // desk, which may book without one, may.
    if matches!(actor, Actor::Patient)
        && before.treatment.requires_consultation
        && !patient_bookings::has_consultation(conn, before.patient.id, starts_at)?
    {
        return Err(patient_rule(settings, PatientRule::ConsultationFirst));
    }
    let held = bookings::held_slots(conn, booking_id)?;
    let new: Vec<i64> = wanted
        .iter()
        .copied()
        .filter(|id| !held.contains(id))
        .collect();
    // The row moves before any slot is claimed, as a new booking's row is inserted
    // before its slots are: every writer meets the overlap guard first and then claims
    // slots in time order, so a reschedule and a booking never wait on each other in a
    // cycle. The slots follow in the same transaction.
    let moved = bookings::move_to(
        conn,
        booking_id,
        before.booking.version,
        dermatologist_id,
        starts_at,
        starts_at + duration,
        now,
    )?;
    if !moved {
        return Err(changed_meanwhile(&before));
    }
    claim(conn, booking_id, &new)?;
    bookings::release(conn, booking_id, &wanted)?;
    audit::record(
        conn,
        actor,
        Change {
            entity: "booking",
            entity_id: booking_id,
            action: "rescheduled",
            before_status: Some(status.as_str()),
            after_status: Some(status.as_str()),
            details: Some(serde_json::json!({
                "from": before.booking.starts_at.and_utc().to_rfc3339(),
                "to": starts_at.and_utc().to_rfc3339(),
                "from_dermatologist_id": before.booking.dermatologist_id,
                "to_dermatologist_id": dermatologist_id,
                "waived_notice": waive_notice,
            })),
        },
        now,
    )?;
    let after = reload(conn, booking_id)?;
    let previous = Previous {
        starts_at: before.booking.starts_at,
        ends_at: before.booking.ends_at,
        dermatologist: before.dermatologist.name.clone(),
    };
    notify(
        conn,
        settings,
        &after,
        Event::Rescheduled { previous },
        actor,
        now,
    )?;
    announce(conn, &after, Happened::Rescheduled { from: &before }, now)?;
    // A confirmed consultation moved later may now come after a treatment that needs it.
    if status == BookingStatus::Confirmed && after.treatment.category == Category::Consultation {
        review_what_relied_on(conn, settings, after.patient.id, now)?;
    }
    Ok(after)
}

/// Cancels a booking and releases its slots for others.
pub fn cancel(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<BookingDetails, BookingError> {
    record_outcome(conn, settings, booking_id, Action::Cancel, actor, now)
}

/// Cancels every active session of the course `booking_id` belongs to that is still
/// ahead, whichever session is named: for a patient, those whose change cutoff has not
/// passed (the ones inside it stay for the clinic to handle); for the front desk, every
/// future one.
/// Returns the sessions it cancelled.
pub fn cancel_course(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<Vec<BookingDetails>, BookingError> {
    let course_id = reload(conn, booking_id)?
        .booking
        .course_id
        .ok_or(BookingError::NotInCourse)?;
    // Every session is locked (in id order) before any is read for the decision, so the
    // sessions read below are current and each is cancelled without reading it again.
    let sessions = bookings::course_order(conn, course_id)?;
    bookings::lock(conn, &sessions)?;
    let mut cancelled = Vec::new();
    for session in bookings::course_sessions(conn, course_id)? {
        let starts_at = session.booking.starts_at;
        let ahead = match actor {
            Actor::Patient => patient_may_still_change(settings, starts_at, now),
            Actor::Staff(_) | Actor::ApiKey { .. } | Actor::System => starts_at > now,
        };
        if session.booking.status.is_active() && ahead {
            cancelled.push(apply_outcome(
                conn,
                settings,
                session,
                Action::Cancel,
                actor,
                now,
            )?);
        }
    }
    if cancelled.is_empty() {
        return Err(BookingError::NothingLeftInCourse);
    }
    Ok(cancelled)
}

/// Confirms, cancels, completes or marks a no-show; only legal transitions pass, and a
/// patient may cancel only before the change cutoff.
pub fn record_outcome(
    conn: &mut DbConnection,
    settings: &Settings,
    booking_id: i64,
    action: Action,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<BookingDetails, BookingError> {
    let before = lock_and_load(conn, booking_id)?;
    apply_outcome(conn, settings, before, action, actor, now)
}

/// The outcome `action` of a booking already locked and read under the lock.
fn apply_outcome(
    conn: &mut DbConnection,
    settings: &Settings,
    before: BookingDetails,
    action: Action,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<BookingDetails, BookingError> {
    let booking_id = before.booking.id;
    let (current, next) = next_status(&before, action, now)?;
    require_changeable_by(settings, actor, before.booking.starts_at, now)?;
    let version = before.booking.version;
    if !bookings::set_status(conn, booking_id, version, next.as_str(), now)? {
        return Err(changed_meanwhile(&before));
    }
    if next == BookingStatus::Cancelled {
        bookings::release(conn, booking_id, &[])?;
    }
    audit::record(
        conn,
        actor,
        Change {
            entity: "booking",
            entity_id: booking_id,
            action: action.past_tense(),
            before_status: Some(current.as_str()),
            after_status: Some(next.as_str()),
            details: None,
        },
        now,
    )?;
    let after = reload(conn, booking_id)?;
    let event = match action {
        Action::Confirm => Some(Event::Confirmed),
        Action::Cancel => Some(Event::Cancelled),
        Action::Review => Some(Event::SentToReview),
        Action::Expire => Some(Event::Expired),
        // What happened at the clinic is the clinic's record; the patient knows already.
        Action::Complete | Action::NoShow | Action::Reschedule => None,
    };
    if let Some(event) = event {
        notify(conn, settings, &after, event, actor, now)?;
    }
    announce(conn, &after, Happened::Outcome { action, actor }, now)?;
    // A confirmed consultation that will not take place (cancelled, missed) no longer
    // stands under the treatments that need it. A pending one never did.
    if current == BookingStatus::Confirmed
        && next != BookingStatus::Completed
        && after.treatment.category == Category::Consultation
    {
        review_what_relied_on(conn, settings, after.patient.id, now)?;
    }
    Ok(after)
}

/// After a consultation is cancelled: each confirmed treatment of the patient that needs
/// one and no longer has one goes back to review, for the desk to decide, rather than
/// standing on a consultation that will not happen.
fn review_what_relied_on(
    conn: &mut DbConnection,
    settings: &Settings,
    patient_id: i64,
    now: NaiveDateTime,
) -> Result<(), BookingError> {
    for id in patient_bookings::relying_on_consultation(conn, patient_id, now)? {
        // Most still have their consultation; lock only those that may not.
        let starts_at = reload(conn, id)?.booking.starts_at;
        if patient_bookings::has_consultation(conn, patient_id, starts_at)? {
            continue;
        }
        let booking = lock_and_load(conn, id)?;
        if booking.booking.status == BookingStatus::Confirmed
            && !patient_bookings::has_consultation(conn, patient_id, booking.booking.starts_at)?
        {
            apply_outcome(conn, settings, booking, Action::Review, Actor::System, now)?;
        }
    }
    Ok(())
}

/// Cancels every booking that has waited for review longer than the clinic allows (or
/// whose time has come while it waited), telling the patient and the desk; each in a
/// transaction of its own, so one that fails (a change at the same moment) neither holds
/// the others' locks nor stops them. Returns how many it cancelled.
pub fn expire_unreviewed(
    conn: &mut DbConnection,
    settings: &Settings,
    now: NaiveDateTime,
) -> Result<usize, BookingError> {
    let hours = i64::from(settings.booking.pending_review_expiry_hours);
    let due = patient_bookings::unreviewed_since(conn, now - Duration::hours(hours), now)?;
    let mut expired = 0;
    for id in due {
        let outcome = crate::db::write_transaction(conn, |conn| {
            let booking = lock_and_load(conn, id)?;
            if booking.booking.status != BookingStatus::PendingReview {
                return Ok(false);
            }
            apply_outcome(conn, settings, booking, Action::Expire, Actor::System, now)?;
            Ok::<_, BookingError>(true)
        });
        match outcome {
            Ok(done) => expired += usize::from(done),
            Err(error) => {
                tracing::warn!(booking = id, %error, "could not expire a booking awaiting review")
            }
        }
    }
    Ok(expired)
}
