//! Patients, found by their normalised email.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::patients;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = patients)]
pub struct Patient {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub date_of_birth: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When the patient's personal data was erased; the row is a tombstone since.
    pub erased_at: Option<NaiveDateTime>,
}

/// What a booking form says about its patient; `email` already normalised. Inserted
/// with a NULL, never `DEFAULT`, for an absent date of birth, so the insert stays one
/// prepared statement; as a change, an absent date of birth leaves the stored one.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = patients, treat_none_as_default_value = false)]
pub struct PatientForm {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub date_of_birth: Option<NaiveDate>,
    pub updated_at: NaiveDateTime,
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Patient>> {
    patients::table
        .find(id)
        .select(Patient::as_select())
        .first(conn)
        .optional()
}

pub fn by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Patient>> {
    patients::table
        .filter(patients::email.eq(email))
        .select(Patient::as_select())
        .first(conn)
        .optional()
}

/// The patient with the form's email, created with the form's details when there is none
/// yet. An existing record is left as it is: an anonymous form is no proof that its
/// sender is that patient, so what it says stays on its booking.
pub fn find_or_create(conn: &mut DbConnection, form: PatientForm) -> QueryResult<Found> {
    if let Some(existing) = live_by_email(conn, &form.email)? {
        return Ok(Found {
            patient: existing,
            created: false,
        });
    }
    // Two first bookings by one new patient may race: the second insert waits for the
    // first and then does nothing, and both use the one row.
    let row = (&form, patients::created_at.eq(form.updated_at));
    let created = crate::on_backend!(&mut *conn, |c| diesel::insert_into(patients::table)
        .values(row)
        .on_conflict(patients::email)
        .do_nothing()
        .returning(Patient::as_returning())
        .get_result(c)
        .optional())?;
    Ok(match created {
        Some(patient) => Found {
            patient,
            created: true,
        },
        None => Found {
            patient: live_by_email(conn, &form.email)?.ok_or(diesel::result::Error::NotFound)?,
            created: false,
        },
    })
}

/// A booking's patient, and whether its transaction created them: no other
/// transaction can see, and so book for, a patient before that one commits.
pub struct Found {
    pub patient: Patient,
    pub created: bool,
}

/// The patient a booking with `email` belongs to, held (on PostgreSQL, `FOR SHARE`) until
/// the booking commits, so an erasure waits for the booking and then cancels it; and one
/// being erased is waited for and then not found (its address has changed), so the
/// booking gets a patient of its own. Never an erased patient.
fn live_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Patient>> {
    macro_rules! query {
        () => {
            patients::table
                .filter(patients::email.eq(email))
                .filter(patients::erased_at.is_null())
                .select(Patient::as_select())
        };
    }
    match conn {
        DbConnection::Postgres(pg) => query!().for_share().first(pg).optional(),
        DbConnection::Sqlite(sqlite) => query!().first(sqlite).optional(),
    }
}

/// The front desk's word on a patient: the record with the form's email, created or
/// brought up to date with the form: the
/// latest booking's name and phone are the ones the clinic should call. A date of birth
/// once given is kept when a later form leaves it out.
pub fn upsert(conn: &mut DbConnection, form: PatientForm) -> QueryResult<Patient> {
    match live_by_email(conn, &form.email)? {
        Some(existing) => {
            let form = PatientForm {
                date_of_birth: form.date_of_birth.or(existing.date_of_birth),
                ..form
            };
            diesel::update(
                patients::table
                    .find(existing.id)
                    .filter(patients::erased_at.is_null()),
            )
            .set(&form)
            .returning(patients::all_columns)
            .get_result(conn)
        }
        None => find_or_create(conn, form).map(|found| found.patient),
    }
}

/// The name an erased patient's records carry instead of theirs.
pub const ERASED_NAME: &str = "Erased patient";

/// Replaces the patient's personal data with a tombstone: a placeholder name, an address
/// that reaches no one (and keeps the column unique), no phone, no date of birth. Returns
/// whether it did (not when already erased).
pub fn erase(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let changed = diesel::update(
        patients::table
            .find(id)
            .filter(patients::erased_at.is_null()),
    )
    .set((
        patients::name.eq(ERASED_NAME),
        patients::email.eq(format!("erased-{id}@erased.invalid")),
        patients::phone.eq(""),
        patients::date_of_birth.eq(None::<NaiveDate>),
        patients::erased_at.eq(now),
        patients::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The patient, their row locked for an erasure (on PostgreSQL; SQLite's writers take
/// turns).
pub fn locked_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Patient>> {
    let query = patients::table.find(id).select(Patient::as_select());
    match conn {
        DbConnection::Postgres(pg) => query.for_update().first(pg).optional(),
        DbConnection::Sqlite(_) => by_id(conn, id),
    }
}

/// Whether any booking of the patient ends at or after `cutoff`.
pub fn booked_since(conn: &mut DbConnection, id: i64, cutoff: NaiveDateTime) -> QueryResult<bool> {
    use crate::db::schema::bookings;
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::patient_id.eq(id))
            .filter(bookings::ends_at.ge(cutoff)),
    ))
    .get_result(conn)
}

/// Patients not erased, on the books since before `cutoff`, with no booking ending at or
/// after it: whose data the retention period says to erase. At most `limit`.
pub fn untouched_since(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    use crate::db::schema::bookings;
    use diesel::dsl::{exists, not};
    patients::table
        .filter(patients::erased_at.is_null())
        .filter(patients::created_at.lt(cutoff))
        .filter(not(exists(
            bookings::table
                .filter(bookings::patient_id.eq(patients::id))
                .filter(bookings::ends_at.ge(cutoff)),
        )))
        .order(patients::id)
        .limit(limit)
        .select(patients::id)
        .load(conn)
}
