//! The patient's right to be forgotten (GDPR Article 17), on request or when the clinic's
//! retention period has passed since their last appointment. Their bookings still ahead
//! are cancelled first, with the usual emails; then their personal data is replaced by a
//! tombstone wherever it was kept: the patient row, what their bookings' forms said, the
//! messages to or about them (those still waiting as soon as they are sent or have
//! failed), and the answers remembered for idempotency keys. Bookings, their times and
//! statuses, the audit trail and the webhook events (which never held personal data)
//! stay, so the clinic's statistics stay true.

use chrono::NaiveDateTime;
use serde_json::json;

use super::{BookingError, change};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::store::audit::{self, Actor, Change};
use crate::store::{bookings, idempotency, outbox, patient_bookings, patients};
use crate::webhooks::event::{EventType, Outgoing};

/// Why a patient was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// They asked (through an admin).
    Request,
    /// No booking of theirs ends at or after `cutoff`.
    Retention { cutoff: NaiveDateTime },
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Request => "request",
            Reason::Retention { .. } => "retention",
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone)]
pub struct Erased {
    pub patient_id: i64,
    /// The bookings still ahead that it cancelled first.
    pub cancelled: Vec<i64>,
}

/// Erases the patient `patient_id`; `None` when there is no such patient or they were
/// erased already. Runs inside the caller's write transaction: the cancellations, the
/// erasure, its audit entry and its webhook event commit together.
pub fn erase_patient(
    conn: &mut DbConnection,
    settings: &Settings,
    patient_id: i64,
    actor: Actor,
    reason: Reason,
    now: NaiveDateTime,
) -> Result<Option<Erased>, BookingError> {
    let Some(patient) = patients::locked_by_id(conn, patient_id)?.filter(|p| p.erased_at.is_none())
    else {
        return Ok(None);
    };
    // Under the lock, the retention period is checked again: a booking made since the
    // candidates were listed keeps the patient.
    if let Reason::Retention { cutoff } = reason
        && patients::booked_since(conn, patient_id, cutoff)?
    {
        return Ok(None);
    }
    let mut cancelled = Vec::new();
    // The latest first: a consultation cancelled before the treatments that rely on it
    // would send them back to review, with emails of their own, only to cancel them.
    let mut ahead = patient_bookings::active_ahead(conn, patient_id, now)?;
    ahead.reverse();
    for id in ahead {
        // A course's sessions, or a treatment sent back to review by a cancelled
        // consultation, may have changed with an earlier one: decide on what is current.
        let current = bookings::details(conn, id)?.ok_or(BookingError::NotFound)?;
        if current.booking.status.is_active() {
            change::cancel(conn, settings, id, actor, now)?;
            cancelled.push(id);
        }
    }
    cancelled.sort_unstable();
    let theirs = bookings::erase_patient_details(conn, patient_id, now)?;
    let (ids, references): (Vec<i64>, Vec<String>) = theirs.into_iter().unzip();
    outbox::erase_for(conn, &patient.email, &ids)?;
    idempotency::erase_mentioning(conn, &references)?;
    patients::erase(conn, patient_id, now)?;
    audit::record(
        conn,
        actor,
        Change {
            entity: "patient",
            entity_id: patient_id,
            action: "erased",
            before_status: None,
            after_status: None,
            details: Some(json!({
                "reason": reason.as_str(),
                "bookings": ids.len(),
                "cancelled": cancelled,
            })),
        },
        now,
    )?;
    let event = Outgoing::new(
        EventType::PatientErased,
        format!("patient:{patient_id}"),
        now,
        json!({ "patient_id": patient_id, "booking_ids": ids, "reason": reason.as_str() }),
    );
    crate::store::webhooks::publish(conn, &event, now)?;
    Ok(Some(Erased {
        patient_id,
        cancelled,
    }))
}

/// Erases every patient with no booking that ended within the retention period
/// (`privacy.retention_years`; 0 keeps everyone), each in a transaction of its own, so
/// one that fails neither holds the others' locks nor stops them. Safe on several
/// instances at once: a patient erased meanwhile is skipped. Returns how many it erased.
pub fn erase_past_retention(
    conn: &mut DbConnection,
    settings: &Settings,
    now: NaiveDateTime,
) -> Result<usize, BookingError> {
    let years = settings.privacy.retention_years;
    if years == 0 {
        return Ok(0);
    }
    let cutoff = now - chrono::Duration::days(365 * i64::from(years));
    let mut erased = 0;
    for id in patients::untouched_since(conn, cutoff, 200)? {
        let outcome = crate::db::write_transaction(conn, |conn| {
            erase_patient(
                conn,
                settings,
                id,
                Actor::System,
                Reason::Retention { cutoff },
                now,
            )
        });
        match outcome {
            Ok(done) => erased += usize::from(done.is_some()),
            Err(error) => {
                tracing::warn!(patient = id, %error, "could not erase a patient past retention")
            }
        }
    }
    Ok(erased)
}
