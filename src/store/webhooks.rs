//! Webhook endpoints, the events booking changes write, and their deliveries: one row per
//! event and subscribed endpoint, which the worker claims, sends and records.

use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{
    webhook_deliveries as deliveries, webhook_endpoints as endpoints, webhook_events as events,
};
use crate::webhooks::event::{self, EventType, Outgoing};

/// An endpoint as admins see it: everything but the sealed secret.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = endpoints)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub active: bool,
    pub failing_since: Option<NaiveDateTime>,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [EventType],
    pub secret_sealed: &'a str,
    pub active: bool,
    pub created_by: i64,
}

pub fn insert(conn: &mut DbConnection, new: &NewEndpoint, now: NaiveDateTime) -> QueryResult<i64> {
    diesel::insert_into(endpoints::table)
        .values((
            endpoints::url.eq(new.url),
            endpoints::description.eq(new.description),
            endpoints::event_types.eq(event::join(new.event_types)),
            endpoints::secret_sealed.eq(new.secret_sealed),
            endpoints::active.eq(new.active),
            endpoints::created_by.eq(new.created_by),
            endpoints::created_at.eq(now),
            endpoints::updated_at.eq(now),
        ))
        .returning(endpoints::id)
        .get_result(conn)
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Endpoint>> {
    endpoints::table
        .order(endpoints::id)
        .select(Endpoint::as_select())
        .load(conn)
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Endpoint>> {
    endpoints::table
        .find(id)
        .select(Endpoint::as_select())
        .first(conn)
        .optional()
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Default, AsChangeset)]
#[diesel(table_name = endpoints)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<String>,
    pub secret_sealed: Option<String>,
    pub active: Option<bool>,
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    change: &EndpointChange,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(endpoints::table.find(id))
        .set((change, endpoints::updated_at.eq(now)))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Removes an endpoint and its deliveries, and the events no other endpoint awaits.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(deliveries::table.filter(deliveries::endpoint_id.eq(id))).execute(conn)?;
    let deleted = diesel::delete(endpoints::table.find(id)).execute(conn)? == 1;
    delete_orphan_events(conn)?;
    Ok(deleted)
}

/// How many endpoints there are, active or not.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    endpoints::table.count().get_result(conn)
}

fn delete_orphan_events(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(events::table.filter(not(exists(
        deliveries::table.filter(deliveries::event_id.eq(events::id)),
    ))))
    .execute(conn)
}

/// Forgets deliveries settled (delivered or skipped) before `before`, and events left
/// with none: the outbox keeps what is still to do and recent history, not every event
/// since the clinic opened. Returns how many deliveries went.
pub fn purge_settled(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let purged = diesel::delete(
        deliveries::table
            .filter(deliveries::status.eq_any(["delivered", "skipped"]))
            .filter(deliveries::created_at.lt(before)),
    )
    .execute(conn)?;
    delete_orphan_events(conn)?;
    Ok(purged)
}

/// Writes `event` for every active endpoint subscribed to its type; returns how many
/// deliveries it queued. Call inside the transaction of the change it announces, holding
/// the lock of its subject (the booking's row): then one subject's deliveries get their
/// ids in the order their changes commit, which the ordered claim relies on.
pub fn publish(
    conn: &mut DbConnection,
    event: &Outgoing,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // On PostgreSQL the endpoints read are held against deletion (`FOR KEY SHARE`, which
    // no update of theirs waits for) until the deliveries that point at them are in.
    let query = endpoints::table
        .filter(endpoints::active.eq(true))
        .select((endpoints::id, endpoints::event_types));
    let endpoints: Vec<(i64, String)> = match conn {
        DbConnection::Postgres(pg) => query.for_key_share().load(pg)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    let subscribed: Vec<i64> = endpoints
        .into_iter()
        .filter(|(_, types)| event::split(types).contains(&event.event_type))
        .map(|(id, _)| id)
        .collect();
    if subscribed.is_empty() {
        return Ok(0);
    }
    let event_id: i64 = diesel::insert_into(events::table)
        .values((
            events::message_id.eq(event::new_message_id()),
            events::event_type.eq(event.event_type.as_str()),
            events::subject.eq(&event.subject),
            events::payload.eq(&event.payload),
            events::created_at.eq(now),
        ))
        .returning(events::id)
        .get_result(conn)?;
    for endpoint_id in &subscribed {
        diesel::insert_into(deliveries::table)
            .values((
                deliveries::endpoint_id.eq(endpoint_id),
                deliveries::event_id.eq(event_id),
                deliveries::subject.eq(&event.subject),
                deliveries::status.eq("pending"),
                deliveries::next_attempt_at.eq(now),
                deliveries::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(subscribed.len())
}

/// A claimed delivery with what sending it needs. `attempts` and `claimed_until` fence
/// the claim: its outcome is recorded only while no later claim has taken the delivery.
#[derive(Debug, Clone, Queryable)]
pub struct Claimed {
    pub id: i64,
    pub attempts: i32,
    pub claimed_until: Option<NaiveDateTime>,
    pub endpoint_id: i64,
    pub url: String,
    pub secret_sealed: String,
    pub message_id: String,
    pub payload: String,
}

/// The due deliveries, in claiming order, to active endpoints not in `busy`: pending ones
/// whose time has come and any a stopped worker left past its lease, where no earlier
/// delivery of the same subject to the same endpoint is unsettled (pending, in flight, or
/// failed and not yet replayed or skipped): one booking's events reach an endpoint in
/// order.
macro_rules! due {
    ($now:expr, $busy:expr) => {{
        let earlier = diesel::alias!(deliveries as earlier);
        deliveries::table
            .filter(
                deliveries::status
                    .eq("pending")
                    .and(deliveries::next_attempt_at.le($now))
                    .or(deliveries::status
                        .eq("sending")
                        .and(deliveries::claimed_until.lt($now))),
            )
            .filter(deliveries::endpoint_id.ne_all($busy))
            .filter(
                deliveries::endpoint_id.eq_any(
                    endpoints::table
                        .filter(endpoints::active.eq(true))
                        .select(endpoints::id),
                ),
            )
            .filter(not(exists(
                earlier
                    .filter(
                        earlier
                            .field(deliveries::endpoint_id)
                            .eq(deliveries::endpoint_id),
                    )
                    .filter(earlier.field(deliveries::subject).eq(deliveries::subject))
                    .filter(earlier.field(deliveries::id).lt(deliveries::id))
                    .filter(
                        earlier
                            .field(deliveries::status)
                            .eq_any(["pending", "sending", "failed"]),
                    ),
            )))
            .order((deliveries::next_attempt_at, deliveries::id))
            .select(deliveries::id)
    }};
}

/// Whether anything is due: a plain read, so a worker with nothing to do never takes
/// SQLite's write lock to find that out.
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime, busy: &[i64]) -> QueryResult<bool> {
    let found: Vec<i64> = due!(now, busy).limit(1).load(conn)?;
    Ok(!found.is_empty())
}

/// Claims up to `limit` due deliveries until `lease_until`, each counting as an attempt.
/// On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers claim at once, never the
/// same row; a later event cannot overtake, because its predecessor counts as unsettled
/// until it is recorded as delivered (and a replay waits until the subject's later
/// deliveries are settled). SQLite's write lock serialises the workers instead. Call
/// inside a write transaction.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
    busy: &[i64],
) -> QueryResult<Vec<Claimed>> {
    let ids: Vec<i64> = match conn {
        DbConnection::Postgres(pg) => due!(now, busy)
            .limit(limit)
            .for_update()
            .skip_locked()
            .load(pg)?,
        DbConnection::Sqlite(sqlite) => due!(now, busy).limit(limit).load(sqlite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
        .set((
            deliveries::status.eq("sending"),
            deliveries::claimed_until.eq(lease_until),
            deliveries::attempts.eq(deliveries::attempts + 1),
        ))
        .execute(conn)?;
    deliveries::table
        .inner_join(endpoints::table)
        .inner_join(events::table)
        .filter(deliveries::id.eq_any(&ids))
        .order(deliveries::id)
        .select((
            deliveries::id,
            deliveries::attempts,
            deliveries::claimed_until,
            deliveries::endpoint_id,
            endpoints::url,
            endpoints::secret_sealed,
            events::message_id,
            events::payload,
        ))
        .load(conn)
}

/// What one attempt came to.
pub enum Outcome {
    Delivered {
        status_code: i32,
    },
    Failed {
        status_code: Option<i32>,
        error: String,
        /// When to try again; `None` after the last attempt.
        retry_at: Option<NaiveDateTime>,
    },
}

/// Records an attempt of `claimed`, and the endpoint's health (a delivery clears
/// `failing_since`, a last attempt that failed sets it); nothing when a later claim has
/// taken the delivery meanwhile (this one outlived its lease), so a late outcome never
/// settles another worker's attempt. Returns whether it recorded. Call inside a write
/// transaction.
pub fn record(
    conn: &mut DbConnection,
    claimed: &Claimed,
    outcome: Outcome,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let mine = deliveries::table
        .find(claimed.id)
        .filter(deliveries::status.eq("sending"))
        .filter(deliveries::attempts.eq(claimed.attempts))
        .filter(deliveries::claimed_until.eq(claimed.claimed_until));
    let endpoint = endpoints::table.find(claimed.endpoint_id);
    match outcome {
        Outcome::Delivered { status_code } => {
            let recorded = diesel::update(mine)
                .set((
                    deliveries::status.eq("delivered"),
                    deliveries::delivered_at.eq(now),
                    deliveries::claimed_until.eq(None::<NaiveDateTime>),
                    deliveries::last_status_code.eq(status_code),
                    deliveries::last_error.eq(None::<String>),
                ))
                .execute(conn)?
                == 1;
            if recorded {
                diesel::update(endpoint.filter(endpoints::failing_since.is_not_null()))
                    .set(endpoints::failing_since.eq(None::<NaiveDateTime>))
                    .execute(conn)?;
            }
            Ok(recorded)
        }
        Outcome::Failed {
            status_code,
            error,
            retry_at,
        } => {
            let error: String = error.chars().take(500).collect();
            let status = if retry_at.is_some() {
                "pending"
            } else {
                "failed"
            };
            let recorded = diesel::update(mine)
                .set((
                    deliveries::status.eq(status),
                    deliveries::next_attempt_at.eq(retry_at.unwrap_or(now)),
                    deliveries::claimed_until.eq(None::<NaiveDateTime>),
                    deliveries::last_status_code.eq(status_code),
                    deliveries::last_error.eq(error),
                ))
                .execute(conn)?
                == 1;
            if recorded && retry_at.is_none() {
                diesel::update(endpoint.filter(endpoints::failing_since.is_null()))
                    .set(endpoints::failing_since.eq(now))
                    .execute(conn)?;
            }
            Ok(recorded)
        }
    }
}

/// A delivery as admins see it.
#[derive(Debug, Clone, Queryable)]
pub struct Delivery {
    pub id: i64,
    pub event_type: String,
    pub message_id: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub payload: String,
}

macro_rules! delivery_columns {
    () => {
        (
            deliveries::id,
            events::event_type,
            events::message_id,
            deliveries::subject,
            deliveries::status,
            deliveries::attempts,
            deliveries::next_attempt_at,
            deliveries::last_status_code,
            deliveries::last_error,
            deliveries::delivered_at,
            deliveries::created_at,
            events::payload,
        )
    };
}

/// One endpoint's deliveries, newest first, optionally of one status; and how many.
pub fn deliveries_of(
    conn: &mut DbConnection,
    endpoint_id: i64,
    status: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Delivery>, i64)> {
    let mut count = deliveries::table
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .count()
        .into_boxed();
    let mut page = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .select(delivery_columns!())
        .into_boxed();
    if let Some(status) = status {
        count = count.filter(deliveries::status.eq(status.to_string()));
        page = page.filter(deliveries::status.eq(status.to_string()));
    }
    let total = count.get_result(conn)?;
    let rows = page
        .order(deliveries::id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

pub fn delivery(
    conn: &mut DbConnection,
    endpoint_id: i64,
    id: i64,
) -> QueryResult<Option<Delivery>> {
    deliveries::table
        .inner_join(events::table)
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .filter(deliveries::id.eq(id))
        .select(delivery_columns!())
        .first(conn)
        .optional()
}

/// Sends a settled delivery (failed, skipped or delivered) again from now, with a fresh
/// schedule of attempts; returns whether it could. A failed one always can: its subject's
/// later deliveries have waited behind it. A delivered or skipped one cannot while a
/// later delivery of its subject to its endpoint is unsettled, which may be in flight
/// already: the replay would race it. Call inside a write transaction.
pub fn replay(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let Some((endpoint_id, subject, status)) = deliveries::table
        .find(id)
        .select((
            deliveries::endpoint_id,
            deliveries::subject,
            deliveries::status,
        ))
        .first::<(i64, String, String)>(conn)
        .optional()?
    else {
        return Ok(false);
    };
    let later_unsettled: i64 = deliveries::table
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .filter(deliveries::subject.eq(&subject))
        .filter(deliveries::id.gt(id))
        .filter(deliveries::status.eq_any(["pending", "sending", "failed"]))
        .count()
        .get_result(conn)?;
    if status != "failed" && later_unsettled > 0 {
        return Ok(false);
    }
    // Only from the status the decision was made on.
    let changed = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq(&status))
            .filter(deliveries::status.eq_any(["failed", "skipped", "delivered"])),
    )
    .set((
        deliveries::status.eq("pending"),
        deliveries::attempts.eq(0),
        deliveries::next_attempt_at.eq(now),
        deliveries::delivered_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Gives up on a delivery that is waiting or failed, so the subject's later events go on;
/// returns whether it was waiting or failed.
pub fn skip(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq_any(["pending", "failed"])),
    )
    .set(deliveries::status.eq("skipped"))
    .execute(conn)?;
    Ok(changed == 1)
}
