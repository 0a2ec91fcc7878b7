//! Integrations' API keys: their names, scopes and hashes, never the keys themselves.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{api_keys, staff};
use crate::domain::roles::KeyScope;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub scope: KeyScope,
    pub prefix: String,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// How stale `last_used_at` may be: a key in steady use is written once a minute, not
/// on every request.
const USE_RECORDED_EVERY: Duration = Duration::seconds(60);

pub struct NewKey<'a> {
    pub name: &'a str,
    pub scope: KeyScope,
    pub key_hash: &'a str,
    pub prefix: &'a str,
    pub created_by: i64,
}

pub fn insert(conn: &mut DbConnection, new: &NewKey, now: NaiveDateTime) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::name.eq(new.name),
            api_keys::scope.eq(new.scope.as_str()),
            api_keys::key_hash.eq(new.key_hash),
            api_keys::prefix.eq(new.prefix),
            api_keys::created_by.eq(new.created_by),
            api_keys::created_at.eq(now),
        ))
        .returning((
            api_keys::id,
            api_keys::name,
            api_keys::scope,
            api_keys::prefix,
            api_keys::created_by,
            api_keys::created_at,
            api_keys::last_used_at,
            api_keys::revoked_at,
        ))
        .get_result(conn)
}

/// Every key, revoked ones too, newest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .select(ApiKey::as_select())
        .order(api_keys::id.desc())
        .load(conn)
}

/// The live key with this hash: not revoked, and its creator's login still active (a
/// deactivated admin's keys stop with their sessions).
pub fn live_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .inner_join(staff::table.on(staff::id.eq(api_keys::created_by)))
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(api_keys::revoked_at.is_null())
        .filter(staff::active.eq(true))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// Records a use, at most once a minute a key.
pub fn record_use(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        api_keys::table.find(id).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(now - USE_RECORDED_EVERY)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
}

/// Revokes a live key; whether there was one.
pub fn revoke(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let revoked = diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now))
    .execute(conn)?;
    Ok(revoked > 0)
}
