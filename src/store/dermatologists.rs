//! The clinic's dermatologists and who performs which treatment.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{dermatologist_treatments, dermatologists, treatments};
use crate::store::treatments::Treatment;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dermatologists)]
pub struct Dermatologist {
    pub id: i64,
    pub name: String,
    pub title: String,
    pub bio: String,
    pub email: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Every editable field, written whole on insert and on update.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = dermatologists)]
pub struct DermatologistForm {
    pub name: String,
    pub title: String,
    pub bio: String,
    pub email: String,
    pub active: bool,
    pub updated_at: NaiveDateTime,
}

/// Dermatologists by id; only active ones unless asked, and only those who perform the
/// treatment when one is given.
pub fn list(
    conn: &mut DbConnection,
    include_inactive: bool,
    treatment_id: Option<i64>,
) -> QueryResult<Vec<Dermatologist>> {
    let mut query = dermatologists::table
        .select(Dermatologist::as_select())
        .order(dermatologists::id)
        .into_boxed();
    if !include_inactive {
        query = query.filter(dermatologists::active.eq(true));
    }
    if let Some(treatment_id) = treatment_id {
        let performers = dermatologist_treatments::table
            .filter(dermatologist_treatments::treatment_id.eq(treatment_id))
            .select(dermatologist_treatments::dermatologist_id);
        query = query.filter(dermatologists::id.eq_any(performers));
    }
    query.load(conn)
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Dermatologist>> {
    dermatologists::table
        .find(id)
        .select(Dermatologist::as_select())
        .first(conn)
        .optional()
}

/// The dermatologist, their row locked until the transaction ends (on PostgreSQL;
/// SQLite's writers take turns): a change read from it and written back loses no change
/// made meanwhile.
pub fn locked_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Dermatologist>> {
    match conn {
        DbConnection::Postgres(pg) => dermatologists::table
            .find(id)
            .select(Dermatologist::as_select())
            // Not `FOR UPDATE`: that would also wait for every transaction adding a row
            // that refers to this one (a booking, a slot), whose foreign-key check locks it.
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => by_id(conn, id),
    }
}

pub fn by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Dermatologist>> {
    dermatologists::table
        .filter(dermatologists::email.eq(email))
        .select(Dermatologist::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, form: &DermatologistForm) -> QueryResult<Dermatologist> {
    diesel::insert_into(dermatologists::table)
        .values((form, dermatologists::created_at.eq(form.updated_at)))
        .returning(dermatologists::all_columns)
        .get_result(conn)
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    form: &DermatologistForm,
) -> QueryResult<Option<Dermatologist>> {
    diesel::update(dermatologists::table.find(id))
        .set(form)
        .returning(dermatologists::all_columns)
        .get_result(conn)
        .optional()
}

/// Deletes a dermatologist nothing refers to; their treatment links, schedule and time
/// off go with them. Slots, bookings or a staff login make it a foreign key violation.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(dermatologists::table.find(id))
        .execute(conn)
        .map(|n| n > 0)
}

/// A dermatologist looked up for a treatment, and whether they perform it; `None` when
/// there is no such dermatologist.
pub type Performer = Option<(Dermatologist, bool)>;

/// The dermatologist, and whether they perform the treatment, in one query.
pub fn with_treatment(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    treatment_id: i64,
) -> QueryResult<Performer> {
    dermatologists::table
        .left_join(
            dermatologist_treatments::table.on(dermatologist_treatments::dermatologist_id
                .eq(dermatologists::id)
                .and(dermatologist_treatments::treatment_id.eq(treatment_id))),
        )
        .filter(dermatologists::id.eq(dermatologist_id))
        .select((
            Dermatologist::as_select(),
            dermatologist_treatments::treatment_id
                .nullable()
                .is_not_null(),
        ))
        .first(conn)
        .optional()
}

/// The treatment of `slug`, with the dermatologist and whether they perform it, in one
/// query: what a new booking reads first.
pub fn treatment_with_performer(
    conn: &mut DbConnection,
    slug: &str,
    dermatologist_id: i64,
) -> QueryResult<Option<(Treatment, Performer)>> {
    let row: Option<(Treatment, Option<Dermatologist>, bool)> = treatments::table
        .left_join(dermatologists::table.on(dermatologists::id.eq(dermatologist_id)))
        .left_join(
            dermatologist_treatments::table.on(dermatologist_treatments::dermatologist_id
                .nullable()
                .eq(dermatologists::id.nullable())
                .and(dermatologist_treatments::treatment_id.eq(treatments::id))),
        )
        .filter(treatments::slug.eq(slug))
        .select((
            Treatment::as_select(),
            // The table's columns, in `Dermatologist`'s order (its `Queryable`).
            dermatologists::all_columns.nullable(),
            dermatologist_treatments::treatment_id
                .nullable()
                .is_not_null(),
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(treatment, dermatologist, performs)| {
        (treatment, dermatologist.map(|d| (d, performs)))
    }))
}

/// The slugs of the treatments each given dermatologist performs, in menu order.
pub fn treatment_slugs(
    conn: &mut DbConnection,
    dermatologist_ids: &[i64],
) -> QueryResult<HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String)> = dermatologist_treatments::table
        .inner_join(treatments::table)
        .filter(dermatologist_treatments::dermatologist_id.eq_any(dermatologist_ids))
        .order(treatments::id)
        .select((dermatologist_treatments::dermatologist_id, treatments::slug))
        .load(conn)?;
    let mut by_dermatologist: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, slug) in rows {
        by_dermatologist.entry(id).or_default().push(slug);
    }
    Ok(by_dermatologist)
}

/// Replaces the set of treatments a dermatologist performs. Call inside a transaction,
/// which holds the dermatologist's lists until it ends.
pub fn set_treatments(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    treatment_ids: &[i64],
) -> QueryResult<()> {
    crate::db::hold(
        conn,
        crate::db::Exclusive::DermatologistLists(dermatologist_id),
    )?;
    diesel::delete(
        dermatologist_treatments::table
            .filter(dermatologist_treatments::dermatologist_id.eq(dermatologist_id)),
    )
    .execute(conn)?;
    // One row at a time: diesel's multi-backend connection has no batch insert.
    for &treatment_id in treatment_ids {
        diesel::insert_into(dermatologist_treatments::table)
            .values((
                dermatologist_treatments::dermatologist_id.eq(dermatologist_id),
                dermatologist_treatments::treatment_id.eq(treatment_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}
