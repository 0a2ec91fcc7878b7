//! Dermatologists' calendar subscriptions: the hash of each feed's secret, never the
//! secret itself.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::calendar_feeds;

/// Gives the dermatologist a feed with this token hash, replacing (so revoking) any
/// earlier one. Call inside a transaction, which holds the dermatologist's lists until it
/// ends.
pub fn replace(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    crate::db::hold(
        conn,
        crate::db::Exclusive::DermatologistLists(dermatologist_id),
    )?;
    revoke(conn, dermatologist_id)?;
    diesel::insert_into(calendar_feeds::table)
        .values((
            calendar_feeds::dermatologist_id.eq(dermatologist_id),
            calendar_feeds::token_hash.eq(token_hash),
            calendar_feeds::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends the dermatologist's feed; whether there was one.
pub fn revoke(conn: &mut DbConnection, dermatologist_id: i64) -> QueryResult<bool> {
    let gone = diesel::delete(
        calendar_feeds::table.filter(calendar_feeds::dermatologist_id.eq(dermatologist_id)),
    )
    .execute(conn)?;
    Ok(gone > 0)
}

/// The dermatologist whose feed has this token hash.
pub fn dermatologist_of(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<i64>> {
    calendar_feeds::table
        .filter(calendar_feeds::token_hash.eq(token_hash))
        .select(calendar_feeds::dermatologist_id)
        .first(conn)
        .optional()
}
