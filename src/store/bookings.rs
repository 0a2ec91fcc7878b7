//! Bookings and the slots they hold. The unique `booking_slots.slot_id` is the guard
//! against double booking: `claim` fails with a unique violation when another booking
//! got there first, whatever the backend and however many instances run. Changes of an
//! existing booking take its row lock first ([`lock`]) and write with a compare-and-set
//! on `version`, so two changes of one booking never interleave.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{booking_slots, bookings, courses, dermatologists, patients, treatments};
use crate::domain::booking::BookingStatus;
use crate::store::dermatologists::Dermatologist;
use crate::store::patients::Patient;
use crate::store::treatments::Treatment;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bookings)]
pub struct Booking {
    pub id: i64,
    pub reference: String,
    pub patient_id: i64,
    pub dermatologist_id: i64,
    pub treatment_id: i64,
    pub course_id: Option<i64>,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    #[diesel(deserialize_as = String)]
    pub status: BookingStatus,
    pub source: String,
    /// JSON object `{question_id: bool}`.
    pub screening_answers: String,
    pub notes: Option<String>,
    pub manage_token_hash: String,
    /// The calendar invitation's SEQUENCE: grows with every reschedule.
    pub ics_sequence: i32,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The name the booking's form gave (the patient record may say otherwise).
    pub patient_name: String,
    /// The phone the booking's form gave.
    pub patient_phone: String,
    /// The digits of `patient_phone`, which the per-phone limit counts by.
    pub phone_key: String,
    /// Part of the manage token's derivation: a new nonce revokes the old link.
    pub manage_nonce: String,
    /// When the patient agreed to the processing of their screening answers.
    pub health_data_consent_at: Option<NaiveDateTime>,
    /// Where the booking's last change stands in the order of changes (set by the
    /// database; see `changed_after`).
    pub change_seq: i64,
}

/// An absent value is a NULL, never `DEFAULT` (no optional column here has a default of
/// its own; a migration giving one a default must drop this setting): the insert's SQL
/// is then always the same, and PostgreSQL keeps it prepared instead of parsing and
/// planning it for every booking.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = bookings, treat_none_as_default_value = false)]
pub struct NewBooking {
    pub reference: String,
    pub patient_id: i64,
    pub dermatologist_id: i64,
    pub treatment_id: i64,
    pub course_id: Option<i64>,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    #[diesel(serialize_as = String)]
    pub status: BookingStatus,
    pub source: String,
    pub screening_answers: String,
    pub notes: Option<String>,
    pub manage_token_hash: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub patient_name: String,
    pub patient_phone: String,
    pub phone_key: String,
    pub manage_nonce: String,
    pub health_data_consent_at: Option<NaiveDateTime>,
}

/// A booking with everything a view or an email says about it.
#[derive(Debug, Clone)]
pub struct BookingDetails {
    pub booking: Booking,
    pub patient: Patient,
    pub treatment: Treatment,
    pub dermatologist: Dermatologist,
}

type DetailsRow = (Booking, Patient, Treatment, Dermatologist);

impl From<DetailsRow> for BookingDetails {
    fn from((booking, patient, treatment, dermatologist): DetailsRow) -> Self {
        BookingDetails {
            booking,
            patient,
            treatment,
            dermatologist,
        }
    }
}

macro_rules! details_query {
    () => {
        bookings::table
            .inner_join(patients::table)
            .inner_join(treatments::table)
            .inner_join(dermatologists::table)
            .select((
                Booking::as_select(),
                Patient::as_select(),
                Treatment::as_select(),
                Dermatologist::as_select(),
            ))
    };
}

pub fn insert(conn: &mut DbConnection, new: &NewBooking) -> QueryResult<Booking> {
    diesel::insert_into(bookings::table)
        .values(new.clone())
        .returning(bookings::all_columns)
        .get_result(conn)
}

/// The details of a booking this transaction has just inserted, from the rows it already
/// holds: on PostgreSQL no read of the four-way join. SQLite sets `change_seq` in a
/// trigger that runs after the insert, which `RETURNING` does not see: it is read there.
pub fn inserted_details(
    conn: &mut DbConnection,
    mut booking: Booking,
    patient: Patient,
    treatment: Treatment,
    dermatologist: Dermatologist,
) -> QueryResult<BookingDetails> {
    if let DbConnection::Sqlite(sqlite) = conn {
        booking.change_seq = bookings::table
            .find(booking.id)
            .select(bookings::change_seq)
            .first(sqlite)?;
    }
    Ok(BookingDetails {
        booking,
        patient,
        treatment,
        dermatologist,
    })
}

pub fn insert_course(
    conn: &mut DbConnection,
    patient_id: i64,
    treatment_id: i64,
    dermatologist_id: i64,
    sessions: i32,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(courses::table)
        .values((
            courses::patient_id.eq(patient_id),
            courses::treatment_id.eq(treatment_id),
            courses::dermatologist_id.eq(dermatologist_id),
            courses::sessions.eq(sessions),
            courses::created_at.eq(now),
        ))
        .returning(courses::id)
        .get_result(conn)
}

/// Makes the booking hold the slots. A slot another booking holds is a unique violation.
pub fn claim(conn: &mut DbConnection, booking_id: i64, slot_ids: &[i64]) -> QueryResult<()> {
    if slot_ids.is_empty() {
        return Ok(());
    }
    let row = |slot_id: &i64| {
        (
            booking_slots::booking_id.eq(booking_id),
            booking_slots::slot_id.eq(*slot_id),
        )
    };
    crate::on_backend!(conn, |c| crate::fixed_rows!(slot_ids, row, |values| {
        diesel::insert_into(booking_slots::table)
            .values(values)
            .execute(c)
    }))?;
    Ok(())
}

/// The ids of the slots the booking holds.
pub fn held_slots(conn: &mut DbConnection, booking_id: i64) -> QueryResult<Vec<i64>> {
    booking_slots::table
        .filter(booking_slots::booking_id.eq(booking_id))
        .select(booking_slots::slot_id)
        .order(booking_slots::slot_id)
        .load(conn)
}

/// Lets go of the booking's slots, except those in `keep`.
pub fn release(conn: &mut DbConnection, booking_id: i64, keep: &[i64]) -> QueryResult<usize> {
    diesel::delete(
        booking_slots::table
            .filter(booking_slots::booking_id.eq(booking_id))
            .filter(booking_slots::slot_id.ne_all(keep)),
    )
    .execute(conn)
}

pub fn details(conn: &mut DbConnection, id: i64) -> QueryResult<Option<BookingDetails>> {
    details_query!()
        .filter(bookings::id.eq(id))
        .first::<DetailsRow>(conn)
        .optional()
        .map(|row| row.map(Into::into))
}

pub fn details_by_token_hash(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<BookingDetails>> {
    details_query!()
        .filter(bookings::manage_token_hash.eq(token_hash))
        .first::<DetailsRow>(conn)
        .optional()
        .map(|row| row.map(Into::into))
}

/// Every session of a course, in order.
pub fn course_sessions(
    conn: &mut DbConnection,
    course_id: i64,
) -> QueryResult<Vec<BookingDetails>> {
    details_query!()
        .filter(bookings::course_id.eq(course_id))
        .order(bookings::starts_at)
        .load::<DetailsRow>(conn)
        .map(|rows| rows.into_iter().map(Into::into).collect())
}

/// Locks the bookings' rows until the transaction ends, in id order, so that two changes
/// that each lock several bookings (a course) never wait on each other in a cycle. On
/// SQLite the write transaction's `BEGIN IMMEDIATE` already holds the database's one
/// write lock, so there is nothing more to take.
pub fn lock(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        bookings::table
            .filter(bookings::id.eq_any(&ids))
            .order(bookings::id)
            .select(bookings::id)
            // Not FOR UPDATE: the key never changes, and a weaker lock lets the foreign
            // key checks of rows that refer to the booking (outbox, audit) go ahead.
            .for_no_key_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// The ids of a course's sessions in the order they take place.
pub fn course_order(conn: &mut DbConnection, course_id: i64) -> QueryResult<Vec<i64>> {
    bookings::table
        .filter(bookings::course_id.eq(course_id))
        .order((bookings::starts_at, bookings::id))
        .select(bookings::id)
        .load(conn)
}

/// The booking `id` if it is still at `version`: what a compare-and-set updates.
fn at_version(id: i64, version: i32) -> AtVersion {
    bookings::table
        .filter(bookings::id.eq(id))
        .filter(bookings::version.eq(version))
}

type AtVersion = diesel::dsl::Filter<
    diesel::dsl::Filter<bookings::table, diesel::dsl::Eq<bookings::id, i64>>,
    diesel::dsl::Eq<bookings::version, i32>,
>;

/// Sets the status if the booking is still at `version`, counting the change; returns
/// whether it was (false: someone changed it since it was read).
pub fn set_status(
    conn: &mut DbConnection,
    id: i64,
    version: i32,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(at_version(id, version))
        .set((
            bookings::status.eq(status),
            bookings::version.eq(bookings::version + 1),
            bookings::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|rows| rows == 1)
}

/// Moves the booking if it is still at `version`; the calendar invitation's sequence
/// grows so calendars update it. Returns whether it moved.
pub fn move_to(
    conn: &mut DbConnection,
    id: i64,
    version: i32,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(at_version(id, version))
        .set((
            bookings::dermatologist_id.eq(dermatologist_id),
            bookings::starts_at.eq(starts_at),
            bookings::ends_at.eq(ends_at),
            bookings::ics_sequence.eq(bookings::ics_sequence + 1),
            bookings::version.eq(bookings::version + 1),
            bookings::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|rows| rows == 1)
}

/// Bookings made before manage links had nonces: (id, reference, stored token hash).
pub fn legacy_links(conn: &mut DbConnection) -> QueryResult<Vec<(i64, String, String)>> {
    bookings::table
        .filter(bookings::manage_nonce.eq(""))
        .select((
            bookings::id,
            bookings::reference,
            bookings::manage_token_hash,
        ))
        .load(conn)
}

/// Sets a booking's token hash, nothing else (a re-keyed legacy link).
pub fn set_token_hash(conn: &mut DbConnection, id: i64, token_hash: &str) -> QueryResult<usize> {
    diesel::update(bookings::table.find(id))
        .set(bookings::manage_token_hash.eq(token_hash))
        .execute(conn)
}

/// Replaces the manage link's nonce and token hash if the booking is still at `version`.
pub fn set_manage_link(
    conn: &mut DbConnection,
    id: i64,
    version: i32,
    nonce: &str,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(at_version(id, version))
        .set((
            bookings::manage_nonce.eq(nonce),
            bookings::manage_token_hash.eq(token_hash),
            bookings::version.eq(bookings::version + 1),
            bookings::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|rows| rows == 1)
}

/// Replaces what the patient's bookings say of them (the name and phone their forms gave,
/// screening answers, notes) with a tombstone, and ends their manage links: each gets a
/// fresh nonce and the hash of a token no one was given. Times, treatments, statuses and
/// references stay, for the clinic's statistics. Returns each booking's id and reference.
pub fn erase_patient_details(
    conn: &mut DbConnection,
    patient_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<(i64, String)>> {
    let theirs: Vec<(i64, String)> = bookings::table
        .filter(bookings::patient_id.eq(patient_id))
        .order(bookings::id)
        .select((bookings::id, bookings::reference))
        .load(conn)?;
    for (id, _) in &theirs {
        let unknown = crate::tokens::token_hash(&crate::tokens::new_token());
        diesel::update(bookings::table.find(id))
            .set((
                bookings::patient_name.eq(crate::store::patients::ERASED_NAME),
                bookings::patient_phone.eq(""),
                bookings::phone_key.eq(""),
                bookings::screening_answers.eq("{}"),
                bookings::notes.eq(None::<String>),
                bookings::manage_nonce.eq(crate::tokens::new_nonce()),
                bookings::manage_token_hash.eq(unknown),
                bookings::version.eq(bookings::version + 1),
                bookings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(theirs)
}

/// What the front desk filters the booking list by; all optional.
#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    /// Bookings starting in `[from, to)`.
    pub starts_between: Option<(NaiveDateTime, NaiveDateTime)>,
    pub dermatologist_id: Option<i64>,
    pub statuses: Vec<BookingStatus>,
    pub patient_id: Option<i64>,
    /// A normalised email, matched exactly.
    pub patient_email: Option<String>,
}

/// One page of matching bookings, by start, and how many match in all.
pub fn list(
    conn: &mut DbConnection,
    filter: &BookingFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<BookingDetails>, i64)> {
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query.into_boxed();
            if let Some((from, to)) = filter.starts_between {
                query = query
                    .filter(bookings::starts_at.ge(from))
                    .filter(bookings::starts_at.lt(to));
            }
            if let Some(id) = filter.dermatologist_id {
                query = query.filter(bookings::dermatologist_id.eq(id));
            }
            if !filter.statuses.is_empty() {
                query = query
                    .filter(bookings::status.eq_any(filter.statuses.iter().map(|s| s.as_str())));
            }
            if let Some(id) = filter.patient_id {
                query = query.filter(bookings::patient_id.eq(id));
            }
            if let Some(email) = &filter.patient_email {
                query = query.filter(patients::email.eq(email.clone()));
            }
            query
        }};
    }
    let total: i64 = filtered!(bookings::table.inner_join(patients::table))
        .count()
        .get_result(conn)?;
    let rows = filtered!(details_query!())
        .order((bookings::starts_at, bookings::id))
        .offset(offset)
        .limit(limit)
        .load::<DetailsRow>(conn)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// A place in the order of changes: a change's sequence, then the booking's id.
pub type ChangePosition = (i64, i64);

/// Up to `limit` bookings whose last change comes after `after`, in the order of changes,
/// those last changed at or after `since` only. A change's sequence is, on PostgreSQL, its
/// transaction's id, and only changes below the oldest transaction still running count:
/// one that commits late has the lower id, so it is returned once it commits, never
/// passed over. On SQLite writers take turns, so sequence order is commit order.
pub fn changed_after(
    conn: &mut DbConnection,
    after: ChangePosition,
    since: Option<NaiveDateTime>,
    limit: i64,
) -> QueryResult<Vec<BookingDetails>> {
    let settled: Option<i64> = match conn {
        DbConnection::Postgres(pg) => Some(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            ))
            .get_result(pg)?,
        ),
        _ => None,
    };
    let (seq, id) = after;
    let mut query = details_query!()
        .filter(
            bookings::change_seq
                .gt(seq)
                .or(bookings::change_seq.eq(seq).and(bookings::id.gt(id))),
        )
        .into_boxed();
    if let Some(settled) = settled {
        query = query.filter(bookings::change_seq.lt(settled));
    }
    if let Some(since) = since {
        query = query.filter(bookings::updated_at.ge(since));
    }
    let rows = query
        .order((bookings::change_seq, bookings::id))
        .limit(limit)
        .load::<DetailsRow>(conn)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Confirmed bookings starting in `(from, to]`, as (id, calendar sequence): those a
/// reminder may be due for.
pub fn confirmed_starting_between(
    conn: &mut DbConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(i64, i32)>> {
    bookings::table
        .filter(bookings::status.eq("confirmed"))
        .filter(bookings::starts_at.gt(from))
        .filter(bookings::starts_at.le(to))
        .order(bookings::starts_at)
        .select((bookings::id, bookings::ics_sequence))
        .load(conn)
}
