//! The audit log: who changed what, when, from which status to which.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::audit_log;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Staff(i64),
    /// An integration's API key, and the staff member who created it.
    ApiKey {
        key_id: i64,
        created_by: i64,
    },
    /// The patient, through the booking form or their manage link.
    Patient,
    /// The server itself (reminders, housekeeping).
    System,
}

impl Actor {
    fn kind(self) -> &'static str {
        match self {
            Actor::Staff(_) => "staff",
            Actor::ApiKey { .. } => "api_key",
            Actor::Patient => "patient",
            Actor::System => "system",
        }
    }

    fn staff_id(self) -> Option<i64> {
        match self {
            Actor::Staff(id) | Actor::ApiKey { created_by: id, .. } => Some(id),
            _ => None,
        }
    }

    fn api_key_id(self) -> Option<i64> {
        match self {
            Actor::ApiKey { key_id, .. } => Some(key_id),
            _ => None,
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub entity: &'a str,
    pub entity_id: i64,
    pub action: &'a str,
    pub before_status: Option<&'a str>,
    pub after_status: Option<&'a str>,
    /// A JSON object with whatever else matters (old and new times, overrides).
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    pub id: i64,
    pub at: NaiveDateTime,
    pub actor_kind: String,
    pub actor_staff_id: Option<i64>,
    pub actor_api_key_id: Option<i64>,
    pub entity: String,
    pub entity_id: i64,
    pub action: String,
    pub before_status: Option<String>,
    pub after_status: Option<String>,
    pub details: Option<String>,
}

pub fn record(
    conn: &mut DbConnection,
    actor: Actor,
    change: Change<'_>,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(at),
            audit_log::actor_kind.eq(actor.kind()),
            audit_log::actor_staff_id.eq(actor.staff_id()),
            audit_log::actor_api_key_id.eq(actor.api_key_id()),
            audit_log::entity.eq(change.entity),
            audit_log::entity_id.eq(change.entity_id),
            audit_log::action.eq(change.action),
            audit_log::before_status.eq(change.before_status),
            audit_log::after_status.eq(change.after_status),
            audit_log::details.eq(change.details.map(|d| d.to_string())),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An entity's history, in the order its changes took effect. That is the order of the
/// ids: each change writes its entry while it holds the entity's lock. A change's `at` is
/// when its request began, so one that waited for the lock may carry an earlier time
/// than the change it waited for.
pub fn history(conn: &mut DbConnection, entity: &str, entity_id: i64) -> QueryResult<Vec<Entry>> {
    audit_log::table
        .filter(audit_log::entity.eq(entity))
        .filter(audit_log::entity_id.eq(entity_id))
        .order(audit_log::id)
        .select(Entry::as_select())
        .load(conn)
}
