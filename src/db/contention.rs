//! Database errors that mean "someone else got there first", told apart from faults:
//! the guards of the schema speaking (a taken slot, an overlap), or two transactions
//! that met (a deadlock, a serialisation failure, SQLite's busy timeout).

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// A unique index refused a second row: a slot claimed twice, a key used twice.
    Duplicate,
    /// Two live bookings of one dermatologist would overlap: PostgreSQL's exclusion
    /// constraint or SQLite's trigger, the schema's last line behind the slot claims.
    Overlap,
    /// A booking would end up holding no slot while live, or slots while cancelled.
    SlotsOutOfStep,
    /// PostgreSQL broke a deadlock or a serialisation conflict by failing this
    /// transaction; nothing of it was kept.
    Collided,
    /// SQLite waited out its busy timeout for the write lock.
    Busy,
}

/// What kind of contention `error` is, or `None` for anything else.
pub fn contention(error: &DieselError) -> Option<Contention> {
    let DieselError::DatabaseError(kind, info) = error else {
        return None;
    };
    let message = info.message();
    let constraint = info.constraint_name().unwrap_or_default();
    match kind {
        DatabaseErrorKind::UniqueViolation => Some(Contention::Duplicate),
        DatabaseErrorKind::ExclusionViolation => Some(Contention::Overlap),
        DatabaseErrorKind::SerializationFailure => Some(Contention::Collided),
        DatabaseErrorKind::CheckViolation if constraint == "bookings_hold_slots" => {
            Some(Contention::SlotsOutOfStep)
        }
        _ if message.starts_with("booking_overlap") => Some(Contention::Overlap),
        _ if message.starts_with("deadlock detected") => Some(Contention::Collided),
        _ if message.starts_with("database is locked") => Some(Contention::Busy),
        _ => None,
    }
}
