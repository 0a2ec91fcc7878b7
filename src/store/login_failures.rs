//! Failed sign-ins per key (an account, an address) and when the next attempt is allowed,
//! in the database so that every instance sees the same delay.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::login_failures;

/// The latest moment any of `keys` must wait until, if it is after `now`.
pub fn waiting_until(
    conn: &mut DbConnection,
    keys: &[String],
    now: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    login_failures::table
        .filter(login_failures::key.eq_any(keys))
        .filter(login_failures::retry_at.gt(now))
        .select(diesel::dsl::max(login_failures::retry_at))
        .first(conn)
}

/// Failures of `key` so far (0 when it has none).
pub fn failures(conn: &mut DbConnection, key: &str) -> QueryResult<i32> {
    login_failures::table
        .find(key)
        .select(login_failures::failures)
        .first(conn)
        .optional()
        .map(Option::unwrap_or_default)
}

/// Records the `failures`th failure of `key`, to wait until `retry_at`.
pub fn record(
    conn: &mut DbConnection,
    key: &str,
    failures: i32,
    retry_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = (
        login_failures::key.eq(key),
        login_failures::failures.eq(failures),
        login_failures::retry_at.eq(retry_at),
        login_failures::updated_at.eq(now),
    );
    crate::on_backend!(&mut *conn, |c| diesel::insert_into(login_failures::table)
        .values(row)
        .on_conflict(login_failures::key)
        .do_update()
        .set((
            login_failures::failures.eq(failures),
            login_failures::retry_at.eq(retry_at),
            login_failures::updated_at.eq(now),
        ))
        .execute(c))
    .map(|_| ())
}

/// A success forgets the key's failures.
pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.find(key))
        .execute(conn)
        .map(|_| ())
}

/// Forgets failures not repeated since `before`.
pub fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::updated_at.lt(before)))
        .execute(conn)
}
