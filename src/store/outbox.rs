//! The email outbox: messages written in the same transaction as the change they
//! announce, then claimed, sent and recorded by the worker in `email`.

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

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_outbox)]
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

/// Queues a message unless one with its dedupe key exists; returns whether it was queued.
pub fn enqueue(conn: &mut DbConnection, email: &NewEmail) -> QueryResult<bool> {
    if let Some(key) = &email.dedupe_key {
        let exists: bool = diesel::select(diesel::dsl::exists(
            email_outbox::table.filter(email_outbox::dedupe_key.eq(key)),
        ))
        .get_result(conn)?;
        if exists {
            return Ok(false);
        }
    }
    diesel::insert_into(email_outbox::table)
        .values(email)
        .execute(conn)
        .map(|n| n == 1)
}

/// A booking's messages, oldest first.
pub fn for_booking(conn: &mut DbConnection, booking_id: i64) -> QueryResult<Vec<Email>> {
    email_outbox::table
        .filter(email_outbox::booking_id.eq(booking_id))
        .order(email_outbox::id)
        .select(Email::as_select())
        .load(conn)
}
