//! Idempotency keys: the first response to a key is stored with the change it made, in
//! the same transaction, so a retried request replays it instead of booking again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::idempotency_keys;

/// What a key already stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (or expired): the request runs, and `remember` stores its response.
    New,
    /// The same key with the same request: this response is replayed.
    Replay { status: u16, body: String },
    /// The same key with a different request.
    Mismatch,
}

/// Looks the key up, forgetting it first if it has expired.
pub fn look_up(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Seen> {
    let this_key = idempotency_keys::table
        .filter(idempotency_keys::scope.eq(scope))
        .filter(idempotency_keys::idempotency_key.eq(key));
    diesel::delete(this_key.filter(idempotency_keys::expires_at.le(now))).execute(conn)?;
    let found: Option<(String, Option<i32>, Option<String>)> = this_key
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .optional()?;
    Ok(match found {
        None => Seen::New,
        Some((hash, _, _)) if hash != request_hash => Seen::Mismatch,
        Some((_, status, body)) => Seen::Replay {
            status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
            body: body.unwrap_or_default(),
        },
    })
}

/// Whether `key` holds a live answer to this very request (read only: expired keys are
/// left for `look_up` to clear).
pub fn answered(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::request_hash.eq(request_hash))
            .filter(idempotency_keys::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Stores the response to a new key. Two requests racing with one key both get here on
/// PostgreSQL; the second hits the primary key and its transaction rolls back.
pub fn remember(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    response: (u16, &str),
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::response_status.eq(i32::from(response.0)),
            idempotency_keys::response_body.eq(response.1),
            idempotency_keys::created_at.eq(now),
            idempotency_keys::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Forgets expired keys (with the manage tokens their stored responses carry).
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now)))
        .execute(conn)
}

/// What a key answers once its booking's patient has been erased: its first answer
/// named them.
const ERASED_ANSWER: &str = r#"{"type":"/problems/gone","title":"Gone","status":410,"detail":"the patient's personal data has been erased"}"#;

/// Empties every remembered answer that mentions one of `needles` (the erased patient's
/// booking references), leaving a 410 in its place. Returns how many it emptied.
pub fn erase_mentioning(conn: &mut DbConnection, needles: &[String]) -> QueryResult<usize> {
    let mut erased = 0;
    for needle in needles {
        let pattern = format!("%{}%", needle.replace(['%', '_', '\\'], ""));
        erased += diesel::update(
            idempotency_keys::table.filter(idempotency_keys::response_body.like(pattern)),
        )
        .set((
            idempotency_keys::response_status.eq(410),
            idempotency_keys::response_body.eq(ERASED_ANSWER),
        ))
        .execute(conn)?;
    }
    Ok(erased)
}
