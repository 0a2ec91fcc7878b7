//! Claiming the consecutive slots an appointment needs, and saying why when it can't.

use chrono::{Duration, NaiveDateTime};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::BookingError;
use crate::db::DbConnection;
use crate::domain::availability::covering_run;
use crate::store::{bookings, slots};

/// The ids of the open slots of `dermatologist_id` that cover `needed` from exactly
/// `starts_at`, free or already held by `own_booking`; or why there are none.
pub fn covering_slots(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    needed: Duration,
    own_booking: Option<i64>,
) -> Result<Vec<i64>, BookingError> {
    let end = starts_at + needed;
    let free = slots::claimable(conn, dermatologist_id, starts_at, end, own_booking)?;
    if free.first().is_some_and(|s| s.starts_at == starts_at)
        && let Some(run) = covering_run(&free, 0, needed)
    {
        return Ok(run.iter().map(|s| s.id).collect());
    }
    let present = slots::between(conn, Some(dermatologist_id), starts_at, end)?;
    if present
        .first()
        .is_none_or(|(s, _)| s.starts_at != starts_at)
    {
        return Err(BookingError::NotASlotStart);
    }
    if present
        .iter()
        .any(|(_, holder)| holder.is_some_and(|b| Some(b) != own_booking))
    {
        return Err(BookingError::Taken);
    }
    if present.iter().any(|(s, _)| s.status != "open") {
        return Err(BookingError::Blocked);
    }
    Err(BookingError::DoesNotFit)
}

/// Makes the booking hold the slots. Losing a race for one (another transaction claimed
/// it first) is the unique index speaking, and the transaction rolls back.
pub fn claim(
    conn: &mut DbConnection,
    booking_id: i64,
    slot_ids: &[i64],
) -> Result<(), BookingError> {
    bookings::claim(conn, booking_id, slot_ids).map_err(|e| match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            BookingError::TakenMeanwhile
        }
        // The schedule changed under the booking and the slot went with it.
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            BookingError::NoLongerOffered
        }
        other => other.into(),
    })?;
    // On PostgreSQL the slots were read open before they were claimed, and the desk may
    // have blocked one in between: its block locked the slot, so the claim waited for it
    // and this read sees it (`slots::lock_against_claims`). SQLite's writers take turns,
    // so what the booking read still holds.
    if matches!(conn, DbConnection::Postgres(_))
        && !slot_ids.is_empty()
        && slots::any_closed(conn, slot_ids)?
    {
        return Err(BookingError::Blocked);
    }
    Ok(())
}
