//! The treatments on the clinic's menu.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::treatments;
use crate::domain::catalogue::{Category, ScreeningQuestion};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = treatments)]
pub struct Treatment {
    pub id: i64,
    pub slug: String,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub category: Category,
    pub description: String,
    pub duration_minutes: i32,
    pub buffer_minutes: i32,
    pub price_cents: i64,
    pub currency: String,
    pub sessions_min: i32,
    pub sessions_max: i32,
    pub session_interval_days: Option<i32>,
    pub requires_consultation: bool,
    pub preparation: String,
    pub aftercare: String,
    /// JSON array of `domain::catalogue::ScreeningQuestion`.
    pub screening_questions: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Treatment {
    /// The screening questions. They were validated on the way in; unreadable ones
    /// would be a bug, logged and read as none.
    pub fn questions(&self) -> Vec<ScreeningQuestion> {
        serde_json::from_str(&self.screening_questions).unwrap_or_else(|error| {
            tracing::error!(treatment = self.id, %error, "stored screening questions are unreadable");
            Vec::new()
        })
    }
}

/// Every editable field, written whole on insert and on update (a PATCH is merged over
/// the current record before it is validated, so there is one set of rules).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = treatments, treat_none_as_null = true)]
pub struct TreatmentForm {
    pub slug: String,
    pub name: String,
    #[diesel(serialize_as = String)]
    pub category: Category,
    pub description: String,
    pub duration_minutes: i32,
    pub buffer_minutes: i32,
    pub price_cents: i64,
    pub currency: String,
    pub sessions_min: i32,
    pub sessions_max: i32,
    pub session_interval_days: Option<i32>,
    pub requires_consultation: bool,
    pub preparation: String,
    pub aftercare: String,
    pub screening_questions: String,
    pub active: bool,
    pub updated_at: NaiveDateTime,
}

pub fn list(conn: &mut DbConnection, include_inactive: bool) -> QueryResult<Vec<Treatment>> {
    let mut query = treatments::table
        .select(Treatment::as_select())
        .order(treatments::id)
        .into_boxed();
    if !include_inactive {
        query = query.filter(treatments::active.eq(true));
    }
    query.load(conn)
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Treatment>> {
    treatments::table
        .find(id)
        .select(Treatment::as_select())
        .first(conn)
        .optional()
}

/// The treatment, its row locked until the transaction ends (on PostgreSQL; SQLite's
/// writers take turns): a change read from it and written back loses no change made
/// meanwhile.
pub fn locked_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Treatment>> {
    match conn {
        DbConnection::Postgres(pg) => treatments::table
            .find(id)
            .select(Treatment::as_select())
            // Not `FOR UPDATE`: that would also wait for every transaction adding a row
            // that refers to this one (a booking), whose foreign-key check locks it.
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => by_id(conn, id),
    }
}

/// The treatment with that slug if it is offered (active): what patients may book.
pub fn active_by_slug(conn: &mut DbConnection, slug: &str) -> QueryResult<Option<Treatment>> {
    Ok(by_slug(conn, slug)?.filter(|t| t.active))
}

pub fn by_slug(conn: &mut DbConnection, slug: &str) -> QueryResult<Option<Treatment>> {
    treatments::table
        .filter(treatments::slug.eq(slug))
        .select(Treatment::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, form: &TreatmentForm) -> QueryResult<Treatment> {
    diesel::insert_into(treatments::table)
        .values((form.clone(), treatments::created_at.eq(form.updated_at)))
        .returning(treatments::all_columns)
        .get_result(conn)
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    form: &TreatmentForm,
) -> QueryResult<Option<Treatment>> {
    diesel::update(treatments::table.find(id))
        .set(form.clone())
        .returning(treatments::all_columns)
        .get_result(conn)
        .optional()
}

/// Deletes a treatment no booking refers to; one that is referenced fails with a foreign
/// key violation, which callers answer as a conflict.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(treatments::table.find(id))
        .execute(conn)
        .map(|n| n > 0)
}
