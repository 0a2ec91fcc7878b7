//! The email outbox: messages written in the same transaction as the change they
//! announce, then claimed, sent and recorded by the worker in `email`.

use std::convert::identity;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::email_outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_outbox)]
pub struct Email {
    pub id: i64,
    pub booking_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// The calendar invitation, when the message carries one.
    pub ics: Option<String>,
    pub message_id: String,
    /// At most one message per key: a second enqueue of the same key is skipped.
    pub dedupe_key: Option<String>,
    /// `pending`, `sending` (claimed by a worker until `claimed_until`), `sent`, `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// An absent value is a NULL, never `DEFAULT`: a batch of messages is then one
/// statement on SQLite too, and PostgreSQL keeps one of up to four prepared
/// (`fixed_rows!`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_outbox, treat_none_as_default_value = false)]
pub struct NewEmail {
    pub booking_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub ics: Option<String>,
    pub message_id: String,
    pub dedupe_key: Option<String>,
    pub status: String,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Queues each message unless one with its dedupe key exists; returns how many it
/// queued. One statement does it all: two instances racing with one key (on PostgreSQL
/// the second waits for the first to commit) queue the message once, and neither fails.
pub fn enqueue(conn: &mut DbConnection, emails: &[NewEmail]) -> QueryResult<usize> {
    if emails.is_empty() {
        return Ok(0);
    }
    crate::on_backend!(conn, |c| crate::fixed_rows!(emails, identity, |rows| {
        diesel::insert_into(email_outbox::table)
            .values(rows)
            .on_conflict(email_outbox::dedupe_key)
            .do_nothing()
            .execute(c)
    }))
}

/// Which of `keys` some queued message already has.
pub fn existing_dedupe_keys(conn: &mut DbConnection, keys: &[String]) -> QueryResult<Vec<String>> {
    email_outbox::table
        .filter(email_outbox::dedupe_key.eq_any(keys))
        .select(email_outbox::dedupe_key.assume_not_null())
        .load(conn)
}

/// A booking's messages, oldest first.
pub fn for_booking(conn: &mut DbConnection, booking_id: i64) -> QueryResult<Vec<Email>> {
    email_outbox::table
        .filter(email_outbox::booking_id.eq(booking_id))
        .order(email_outbox::id)
        .select(Email::as_select())
        .load(conn)
}

/// Claims up to `limit` due messages until `lease_until`: pending ones whose time has
/// come, and any a stopped worker left claimed past its lease. Each claim counts as an
/// attempt. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers claim at once
/// without ever claiming the same row; SQLite's write lock serialises them instead.
/// Call inside a write transaction.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Email>> {
    // Two queries, each a plain scan of `email_outbox_due` in its order, rather than one
    // with an OR: PostgreSQL answers that with a bitmap scan, which cannot mark the index
    // entries of rows sent meanwhile as dead, so each claim read every message sent since
    // the last vacuum (7 ms after a few thousand bookings).
    macro_rules! due {
        ($status:expr, $due:expr) => {
            email_outbox::table
                .filter(email_outbox::status.eq($status))
                .filter($due)
                .order((email_outbox::next_attempt_at, email_outbox::id))
                .limit(limit)
                .select((email_outbox::next_attempt_at, email_outbox::id))
        };
    }
    macro_rules! load_due {
        ($status:expr, $due:expr) => {
            match conn {
                DbConnection::Postgres(pg) => due!($status, $due)
                    .for_update()
                    .skip_locked()
                    .load::<(NaiveDateTime, i64)>(pg)?,
                DbConnection::Sqlite(sqlite) => {
                    due!($status, $due).load::<(NaiveDateTime, i64)>(sqlite)?
                }
            }
        };
    }
    let mut due = load_due!("pending", email_outbox::next_attempt_at.le(now));
    // Those a stopped worker left claimed past its lease.
    due.extend(load_due!("sending", email_outbox::claimed_until.lt(now)));
    due.sort_unstable();
    let ids: Vec<i64> = due
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|(_, id)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&ids)))
        .set((
            email_outbox::status.eq("sending"),
            email_outbox::claimed_until.eq(lease_until),
            email_outbox::attempts.eq(email_outbox::attempts + 1),
        ))
        .execute(conn)?;
    email_outbox::table
        .filter(email_outbox::id.eq_any(&ids))
        .order((email_outbox::next_attempt_at, email_outbox::id))
        .select(Email::as_select())
        .load(conn)
}

/// What an erased message keeps: that it was sent, when, and about which booking.
macro_rules! erased_message {
    () => {
        (
            email_outbox::recipient.eq("erased@erased.invalid"),
            email_outbox::subject.eq("(erased)"),
            email_outbox::body_text.eq(""),
            email_outbox::body_html.eq(""),
            email_outbox::ics.eq(None::<String>),
            email_outbox::last_error.eq(None::<String>),
            email_outbox::erase_when_done.eq(false),
        )
    };
}

/// Erases the messages to `recipient` or about `booking_ids`: at once where they are
/// settled (sent, or failed for good), and where they still wait, as soon as they are.
/// Returns how many it erased at once.
pub fn erase_for(
    conn: &mut DbConnection,
    recipient: &str,
    booking_ids: &[i64],
) -> QueryResult<usize> {
    let theirs = || {
        email_outbox::table.filter(
            email_outbox::recipient
                .eq(recipient.to_string())
                .or(email_outbox::booking_id.eq_any(booking_ids.to_vec())),
        )
    };
    // Locked in id order first, as the sender locks the outcomes it records, so the two
    // cannot deadlock (PostgreSQL; SQLite's writer holds the whole database).
    if let DbConnection::Postgres(pg) = conn {
        theirs()
            .order(email_outbox::id)
            .select(email_outbox::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    // Every one is marked in one statement, whatever its status, and then the settled
    // ones are emptied: a message the sender settles meanwhile is emptied by one or the
    // other, never missed between two.
    diesel::update(theirs())
        .set(email_outbox::erase_when_done.eq(true))
        .execute(conn)?;
    diesel::update(
        theirs()
            .filter(email_outbox::erase_when_done.eq(true))
            .filter(email_outbox::status.eq_any(["sent", "failed"])),
    )
    .set(erased_message!())
    .execute(conn)
}

/// Empties the messages `ids` (or, with `None`, every message) whose patient was erased
/// while they waited, once they are settled. The sender calls it as it records messages;
/// housekeeping sweeps for any a crash left between the two.
pub fn erase_if_marked(conn: &mut DbConnection, ids: Option<&[i64]>) -> QueryResult<usize> {
    let mut marked = email_outbox::table
        .filter(email_outbox::erase_when_done.eq(true))
        .filter(email_outbox::status.eq_any(["sent", "failed"]))
        .select(email_outbox::id)
        .into_boxed();
    if let Some(ids) = ids {
        marked = marked.filter(email_outbox::id.eq_any(ids.to_vec()));
    }
    let ids: Vec<i64> = marked.load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&ids)))
        .set(erased_message!())
        .execute(conn)
}

/// Locks the messages `ids` in the order of their ids (PostgreSQL; SQLite's writer holds
/// the whole database), so that recording several outcomes at once cannot deadlock with
/// an erasure marking the same patient's messages.
pub fn lock_in_order(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        email_outbox::table
            .filter(email_outbox::id.eq_any(ids))
            .order(email_outbox::id)
            .select(email_outbox::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// The messages `ids` while the claim that leased them `until` still holds them: a
/// worker's late outcome cannot settle a message another worker claimed since.
macro_rules! still_claimed {
    ($ids:expr, $until:expr) => {
        email_outbox::table
            .filter(email_outbox::id.eq_any($ids))
            .filter(email_outbox::status.eq("sending"))
            .filter(email_outbox::claimed_until.eq($until))
    };
}

/// Records that the messages `ids`, claimed until `claimed_until`, were sent at `now`.
/// The caller then empties those whose patient was erased meanwhile (`erase_if_marked`).
pub fn mark_sent(
    conn: &mut DbConnection,
    ids: &[i64],
    claimed_until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(still_claimed!(ids, claimed_until))
        .set((
            email_outbox::status.eq("sent"),
            email_outbox::sent_at.eq(now),
            email_outbox::claimed_until.eq(None::<NaiveDateTime>),
            email_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records a failed attempt of the message `id`, claimed until `claimed_until`: pending
/// again from `retry_at`, or failed for good (then `erase_if_marked`, as for `mark_sent`).
pub fn mark_attempt_failed(
    conn: &mut DbConnection,
    id: i64,
    claimed_until: NaiveDateTime,
    error: &str,
    retry_at: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let target = still_claimed!([id], claimed_until);
    // The mail server's words, kept readable and storable (PostgreSQL refuses NUL).
    let error = error
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(1000)
        .collect::<String>();
    match retry_at {
        Some(at) => diesel::update(target)
            .set((
                email_outbox::status.eq("pending"),
                email_outbox::next_attempt_at.eq(at),
                email_outbox::claimed_until.eq(None::<NaiveDateTime>),
                email_outbox::last_error.eq(error),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set((
                email_outbox::status.eq("failed"),
                email_outbox::claimed_until.eq(None::<NaiveDateTime>),
                email_outbox::last_error.eq(error),
            ))
            .execute(conn),
    }
    .map(|_| ())
}

/// Hands back claimed messages a stopping worker did not get to, without counting the
/// attempt, so the next worker sends them at once.
pub fn unclaim(
    conn: &mut DbConnection,
    ids: &[i64],
    claimed_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(still_claimed!(ids, claimed_until))
        .set((
            email_outbox::status.eq("pending"),
            email_outbox::claimed_until.eq(None::<NaiveDateTime>),
            email_outbox::attempts.eq(email_outbox::attempts - 1),
        ))
        .execute(conn)
}

/// Every message to `recipient` or about one of `booking_ids`, oldest first: what was
/// written to or about one patient.
pub fn to_patient(
    conn: &mut DbConnection,
    recipient: &str,
    booking_ids: &[i64],
) -> QueryResult<Vec<Email>> {
    email_outbox::table
        .filter(
            email_outbox::recipient
                .eq(recipient)
                .or(email_outbox::booking_id.eq_any(booking_ids)),
        )
        .order(email_outbox::id)
        .select(Email::as_select())
        .load(conn)
}

/// One page of messages, newest first, optionally of one status, and how many match.
pub fn list(
    conn: &mut DbConnection,
    status: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Email>, i64)> {
    let mut count = email_outbox::table.count().into_boxed();
    let mut page = email_outbox::table.select(Email::as_select()).into_boxed();
    if let Some(status) = status {
        count = count.filter(email_outbox::status.eq(status.to_string()));
        page = page.filter(email_outbox::status.eq(status.to_string()));
    }
    let total = count.get_result(conn)?;
    let emails = page
        .order(email_outbox::id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((emails, total))
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Email>> {
    email_outbox::table
        .find(id)
        .select(Email::as_select())
        .first(conn)
        .optional()
}

/// Queues a failed message again with a fresh set of attempts.
pub fn retry(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::status.eq("failed"))
            // Not one emptied meanwhile (purged, or its patient erased).
            .filter(email_outbox::body_text.ne("")),
    )
    .set((
        email_outbox::status.eq("pending"),
        email_outbox::attempts.eq(0),
        email_outbox::next_attempt_at.eq(now),
    ))
    .execute(conn)
}

/// Empties the bodies and invitations (and with them the manage links) of messages
/// queued before `queued_before` that are done, sent or failed: what was sent, to whom
/// and when stays, the words about a patient's treatment go.
pub fn purge_bodies(conn: &mut DbConnection, queued_before: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        email_outbox::table
            .filter(email_outbox::status.eq_any(["sent", "failed"]))
            .filter(email_outbox::created_at.lt(queued_before))
            .filter(
                email_outbox::body_text
                    .ne("")
                    .or(email_outbox::ics.is_not_null()),
            ),
    )
    .set((
        email_outbox::body_text.eq(""),
        email_outbox::body_html.eq(""),
        email_outbox::ics.eq(None::<String>),
    ))
    .execute(conn)
}

/// How many messages each status holds, and when the oldest pending one was queued.
pub struct OutboxStats {
    pub by_status: Vec<(String, i64)>,
    pub oldest_pending: Option<NaiveDateTime>,
}

pub fn stats(conn: &mut DbConnection) -> QueryResult<OutboxStats> {
    let by_status = email_outbox::table
        .group_by(email_outbox::status)
        .select((email_outbox::status, diesel::dsl::count_star()))
        .load(conn)?;
    let oldest_pending = email_outbox::table
        .filter(email_outbox::status.eq("pending"))
        .select(diesel::dsl::min(email_outbox::created_at))
        .first(conn)?;
    Ok(OutboxStats {
        by_status,
        oldest_pending,
    })
}
