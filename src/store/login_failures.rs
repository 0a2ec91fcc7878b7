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

/// Counts one more failure of `key` and returns the count, in one statement, so that
/// failures at the same moment on any instance are each counted.
pub fn count_failure(conn: &mut DbConnection, key: &str, now: NaiveDateTime) -> QueryResult<i32> {
    let row = (
        login_failures::key.eq(key),
        login_failures::failures.eq(1),
        login_failures::retry_at.eq(now),
        login_failures::updated_at.eq(now),
    );
    crate::on_backend!(&mut *conn, |c| diesel::insert_into(login_failures::table)
        .values(row)
        .on_conflict(login_failures::key)
        .do_update()
        .set((
            login_failures::failures.eq(login_failures::failures + 1),
            login_failures::updated_at.eq(now),
        ))
        .returning(login_failures::failures)
        .get_result(c))
}

/// `key` waits until `retry_at` (never earlier than it already waits).
pub fn wait_until(conn: &mut DbConnection, key: &str, retry_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        login_failures::table
            .find(key)
            .filter(login_failures::retry_at.lt(retry_at)),
    )
    .set(login_failures::retry_at.eq(retry_at))
    .execute(conn)
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
