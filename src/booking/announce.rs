//! The webhook event each booking change owes, written to the webhook outbox in the
//! change's own transaction: never lost, never sent for a change that rolled back. The
//! payload carries ids, the booking's state and what changed; no name, contact or
//! screening answer, so a receiver learns nothing the patient did not share with it.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::db::DbConnection;
use crate::domain::booking::Action;
use crate::store::audit::Actor;
use crate::store::bookings::BookingDetails;
use crate::webhooks::event::{EventType, Outgoing};

/// What happened to a booking.
pub(super) enum Happened<'a> {
    Created,
    Rescheduled {
        from: &'a BookingDetails,
    },
    /// A change of status by `action`, made by `actor`.
    Outcome {
        action: Action,
        actor: Actor,
    },
}

fn utc(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Why a booking was cancelled, in the words receivers match on.
fn cancel_reason(action: Action, actor: Actor) -> &'static str {
    match (action, actor) {
        (Action::Expire, _) => "expired",
        (_, Actor::Patient) => "patient",
        (_, Actor::Staff(_) | Actor::ApiKey { .. }) => "desk",
        (_, Actor::System) => "clinic",
    }
}

/// Queues `happened` to `after` for every endpoint subscribed to it.
pub(super) fn announce(
    conn: &mut DbConnection,
    after: &BookingDetails,
    happened: Happened,
    now: NaiveDateTime,
) -> diesel::QueryResult<usize> {
    let booking = &after.booking;
    let mut data = json!({
        "booking_id": booking.id,
        "reference": booking.reference,
        "status": booking.status.as_str(),
        "treatment": after.treatment.slug,
        "dermatologist_id": booking.dermatologist_id,
        "patient_id": booking.patient_id,
        "course_id": booking.course_id,
        "starts_at": utc(booking.starts_at),
        "ends_at": utc(booking.ends_at),
        "source": booking.source,
    });
    let event_type = match happened {
        Happened::Created => EventType::BookingCreated,
        Happened::Rescheduled { from } => {
            data["previous"] = json!({
                "starts_at": utc(from.booking.starts_at),
                "ends_at": utc(from.booking.ends_at),
                "dermatologist_id": from.booking.dermatologist_id,
            });
            EventType::BookingRescheduled
        }
        Happened::Outcome { action, actor } => match action {
            Action::Confirm => EventType::BookingConfirmed,
            Action::Cancel | Action::Expire => {
                data["reason"] = json!(cancel_reason(action, actor));
                EventType::BookingCancelled
            }
            Action::Complete => EventType::BookingCompleted,
            Action::NoShow => EventType::BookingNoShow,
            Action::Review => EventType::BookingSentToReview,
            Action::Reschedule => EventType::BookingRescheduled,
        },
    };
    let event = Outgoing::new(event_type, format!("booking:{}", booking.id), now, data);
    crate::store::webhooks::publish(conn, &event, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_says_who_cancelled() {
        assert_eq!(cancel_reason(Action::Cancel, Actor::Patient), "patient");
        assert_eq!(cancel_reason(Action::Cancel, Actor::Staff(3)), "desk");
        assert_eq!(cancel_reason(Action::Cancel, Actor::System), "clinic");
        assert_eq!(cancel_reason(Action::Expire, Actor::System), "expired");
    }
}
