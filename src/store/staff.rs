//! Staff accounts and their login sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{staff, staff_sessions};
use crate::domain::roles::Role;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff)]
pub struct Staff {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub password_hash: String,
    pub dermatologist_id: Option<i64>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = staff)]
pub struct StaffInsertForm {
    pub email: String,
    pub name: String,
    #[diesel(serialize_as = String)]
    pub role: Role,
    pub password_hash: String,
    pub dermatologist_id: Option<i64>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Staff>> {
    staff::table
        .filter(staff::email.eq(email))
        .select(Staff::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Staff>> {
    staff::table
        .find(id)
        .select(Staff::as_select())
        .first(conn)
        .optional()
}

pub fn set_active(
    conn: &mut DbConnection,
    id: i64,
    active: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(staff::table.find(id))
        .set((staff::active.eq(active), staff::updated_at.eq(now)))
        .execute(conn)
}

pub fn set_password_hash(
    conn: &mut DbConnection,
    id: i64,
    password_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(staff::table.find(id))
        .set((
            staff::password_hash.eq(password_hash),
            staff::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Ends every session of a staff member but the one with `keep` (its token hash).
pub fn end_sessions(
    conn: &mut DbConnection,
    staff_id: i64,
    keep: Option<&str>,
) -> QueryResult<usize> {
    let sessions = staff_sessions::table.filter(staff_sessions::staff_id.eq(staff_id));
    match keep {
        Some(hash) => {
            diesel::delete(sessions.filter(staff_sessions::token_hash.ne(hash))).execute(conn)
        }
        None => diesel::delete(sessions).execute(conn),
    }
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Staff>> {
    staff::table
        .select(Staff::as_select())
        .order(staff::id)
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, form: &StaffInsertForm) -> QueryResult<Staff> {
    diesel::insert_into(staff::table)
        .values(form.clone())
        .returning(staff::all_columns)
        .get_result(conn)
}

pub fn insert_session(
    conn: &mut DbConnection,
    staff_id: i64,
    token_hash: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(staff_sessions::table)
        .values((
            staff_sessions::staff_id.eq(staff_id),
            staff_sessions::token_hash.eq(token_hash),
            staff_sessions::expires_at.eq(expires_at),
            staff_sessions::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The active staff member whose unexpired session has this token hash.
pub fn by_session_token(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(Staff, String)>> {
    staff_sessions::table
        .inner_join(staff::table)
        .filter(staff_sessions::token_hash.eq(token_hash))
        .filter(staff_sessions::expires_at.gt(now))
        .filter(staff::active.eq(true))
        .select((Staff::as_select(), staff_sessions::token_hash))
        .first(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConnection, token_hash: &str) -> QueryResult<()> {
    diesel::delete(staff_sessions::table.filter(staff_sessions::token_hash.eq(token_hash)))
        .execute(conn)
        .map(|_| ())
}

/// Removes sessions that have expired, so the table does not grow without end.
pub fn delete_expired_sessions(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(staff_sessions::table.filter(staff_sessions::expires_at.le(now))).execute(conn)
}
