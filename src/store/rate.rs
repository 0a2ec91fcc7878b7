//! Request counts per key and fixed window, in the database, so that every instance on
//! it counts against one limit.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::rate_counters;

/// Counts one more request for `key` in the window starting at `window_start`; returns
/// the count so far, this one included. One statement, so concurrent requests on any
/// instance each get their own number.
pub fn hit(conn: &mut DbConnection, key: &str, window_start: NaiveDateTime) -> QueryResult<i32> {
    let row = (
        rate_counters::key.eq(key),
        rate_counters::window_start.eq(window_start),
        rate_counters::hits.eq(1),
    );
    crate::on_backend!(&mut *conn, |c| diesel::insert_into(rate_counters::table)
        .values(row)
        .on_conflict((rate_counters::key, rate_counters::window_start))
        .do_update()
        .set(rate_counters::hits.eq(rate_counters::hits + 1))
        .returning(rate_counters::hits)
        .get_result(c))
}

/// Forgets windows that started before `before`.
pub fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(before)))
        .execute(conn)
}
