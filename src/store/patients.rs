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
}

/// What a booking form says about its patient; `email` already normalised.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = patients)]
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
pub fn find_or_create(conn: &mut DbConnection, form: PatientForm) -> QueryResult<Patient> {
    if let Some(existing) = by_email(conn, &form.email)? {
        return Ok(existing);
    }
    // Two first bookings by one new patient may race: the second insert waits for the
    // first and then does nothing, and both use the one row.
    let row = (&form, patients::created_at.eq(form.updated_at));
    crate::on_backend!(&mut *conn, |c| diesel::insert_into(patients::table)
        .values(row)
        .on_conflict(patients::email)
        .do_nothing()
        .execute(c))?;
    by_email(conn, &form.email)?.ok_or(diesel::result::Error::NotFound)
}

/// The front desk's word on a patient: the record with the form's email, created or
/// brought up to date with the form: the
/// latest booking's name and phone are the ones the clinic should call. A date of birth
/// once given is kept when a later form leaves it out.
pub fn upsert(conn: &mut DbConnection, form: PatientForm) -> QueryResult<Patient> {
    match by_email(conn, &form.email)? {
        Some(existing) => {
            let form = PatientForm {
                date_of_birth: form.date_of_birth.or(existing.date_of_birth),
                ..form
            };
            diesel::update(patients::table.find(existing.id))
                .set(&form)
                .returning(patients::all_columns)
                .get_result(conn)
        }
        None => find_or_create(conn, form),
    }
}
