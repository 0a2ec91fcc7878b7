//! What the booking rules ask of one patient's bookings: whether a consultation came
//! first, how many live appointments an email or a phone holds, which treatments rely on
//! a consultation, and which bookings have waited too long for review.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{bookings, treatments};
use crate::domain::booking::BookingStatus;
use crate::domain::catalogue::Category;

/// Whether the patient has had a consultation by `starts_at`: a completed one, or a
/// confirmed one that ends by then. A consultation still ahead of the treatment, or one
/// awaiting review, does not count. On PostgreSQL the consultations found are share-locked
/// until the transaction ends, so one cannot be cancelled or moved while a treatment that
/// relies on it is being written (the change waits, then sees the treatment).
pub fn has_consultation(
    conn: &mut DbConnection,
    patient_id: i64,
    starts_at: NaiveDateTime,
) -> QueryResult<bool> {
    let consultations = treatments::table
        .filter(treatments::category.eq(Category::Consultation.as_str()))
        .select(treatments::id);
    let found = bookings::table
        .filter(bookings::patient_id.eq(patient_id))
        .filter(bookings::treatment_id.eq_any(consultations))
        .filter(
            bookings::status
                .eq(BookingStatus::Completed.as_str())
                .or(bookings::status
                    .eq(BookingStatus::Confirmed.as_str())
                    .and(bookings::ends_at.le(starts_at))),
        )
        .select(bookings::id)
        .order(bookings::id);
    let ids: Vec<i64> = match conn {
        DbConnection::Postgres(pg) => found.for_share().load(pg)?,
        DbConnection::Sqlite(lite) => found.load(lite)?,
    };
    Ok(!ids.is_empty())
}

/// The live bookings (awaiting review or confirmed, not yet over) that `filter` picks, as
/// appointments: a course counts once however many sessions it has.
fn live_appointments(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    by_patient: Option<i64>,
    by_phone_key: Option<&str>,
) -> QueryResult<usize> {
    let mut query = bookings::table
        .filter(bookings::status.eq_any([
            BookingStatus::PendingReview.as_str(),
            BookingStatus::Confirmed.as_str(),
        ]))
        .filter(bookings::ends_at.gt(now))
        .select((bookings::id, bookings::course_id))
        .into_boxed();
    if let Some(patient_id) = by_patient {
        query = query.filter(bookings::patient_id.eq(patient_id));
    }
    if let Some(key) = by_phone_key {
        query = query.filter(bookings::phone_key.eq(key.to_string()));
    }
    let rows: Vec<(i64, Option<i64>)> = query.load(conn)?;
    let appointments: std::collections::HashSet<(bool, i64)> = rows
        .into_iter()
        .map(|(id, course)| course.map_or((false, id), |c| (true, c)))
        .collect();
    Ok(appointments.len())
}

/// The patient's live appointments (see [`live_appointments`]).
pub fn live_for_patient(
    conn: &mut DbConnection,
    patient_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    live_appointments(conn, now, Some(patient_id), None)
}

/// The live appointments booked with a phone of these digits.
pub fn live_for_phone(
    conn: &mut DbConnection,
    phone_key: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    live_appointments(conn, now, None, Some(phone_key))
}

/// Bookings awaiting review, unchanged since `created_before`, or whose time has come
/// by `now`.
pub fn unreviewed_since(
    conn: &mut DbConnection,
    created_before: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    bookings::table
        .filter(bookings::status.eq(BookingStatus::PendingReview.as_str()))
        // Since it entered review (or was last changed): a treatment sent back to review
        // gets the desk's whole allowance, however long ago it was booked.
        .filter(
            bookings::updated_at
                .le(created_before)
                .or(bookings::starts_at.le(now)),
        )
        .select(bookings::id)
        .order(bookings::id)
        .limit(500)
        .load(conn)
}

/// The patient's confirmed bookings still ahead of `now` whose treatment needs a
/// consultation first: the ones a cancelled consultation may leave without one.
pub fn relying_on_consultation(
    conn: &mut DbConnection,
    patient_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    bookings::table
        .inner_join(treatments::table)
        .filter(bookings::patient_id.eq(patient_id))
        .filter(treatments::requires_consultation.eq(true))
        .filter(bookings::status.eq(BookingStatus::Confirmed.as_str()))
        .filter(bookings::starts_at.gt(now))
        .select(bookings::id)
        .order(bookings::id)
        .load(conn)
}

/// The patient's active bookings (pending review or confirmed) still ahead of `now`, in
/// time order.
pub fn active_ahead(
    conn: &mut DbConnection,
    patient_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    bookings::table
        .filter(bookings::patient_id.eq(patient_id))
        .filter(bookings::status.eq_any([
            BookingStatus::PendingReview.as_str(),
            BookingStatus::Confirmed.as_str(),
        ]))
        .filter(bookings::starts_at.gt(now))
        .select(bookings::id)
        .order((bookings::starts_at, bookings::id))
        .load(conn)
}
