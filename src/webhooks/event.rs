//! What a webhook can announce, and the envelope every payload shares.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "booking.created")]
    BookingCreated,
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed,
    #[serde(rename = "booking.rescheduled")]
    BookingRescheduled,
    /// With `reason`: `patient`, `desk`, `expired` (no one reviewed it in time) or
    /// `clinic` (the clinic's own jobs).
    #[serde(rename = "booking.cancelled")]
    BookingCancelled,
    #[serde(rename = "booking.completed")]
    BookingCompleted,
    #[serde(rename = "booking.no_show")]
    BookingNoShow,
    /// A confirmed booking went back to the desk's review (the consultation it needed
    /// was cancelled): its status changed without anyone acting on it.
    #[serde(rename = "booking.sent_to_review")]
    BookingSentToReview,
    #[serde(rename = "patient.erased")]
    PatientErased,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::BookingCreated,
        EventType::BookingConfirmed,
        EventType::BookingRescheduled,
        EventType::BookingCancelled,
        EventType::BookingCompleted,
        EventType::BookingNoShow,
        EventType::BookingSentToReview,
        EventType::PatientErased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BookingCreated => "booking.created",
            EventType::BookingConfirmed => "booking.confirmed",
            EventType::BookingRescheduled => "booking.rescheduled",
            EventType::BookingCancelled => "booking.cancelled",
            EventType::BookingCompleted => "booking.completed",
            EventType::BookingNoShow => "booking.no_show",
            EventType::BookingSentToReview => "booking.sent_to_review",
            EventType::PatientErased => "patient.erased",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Event types as an endpoint stores them: space-separated, in the order of [`EventType::ALL`].
pub fn join(types: &[EventType]) -> String {
    EventType::ALL
        .into_iter()
        .filter(|t| types.contains(t))
        .map(EventType::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stored form back; names this version does not know are left out.
pub fn split(stored: &str) -> Vec<EventType> {
    stored
        .split_whitespace()
        .filter_map(EventType::parse)
        .collect()
}

/// One event, as written to the outbox: its type, what it is about (deliveries of one
/// subject to one endpoint keep their order) and the body every endpoint receives.
pub struct Outgoing {
    pub event_type: EventType,
    pub subject: String,
    pub payload: String,
}

impl Outgoing {
    /// The Standard Webhooks envelope: `{"type", "timestamp", "data"}`.
    pub fn new(
        event_type: EventType,
        subject: String,
        at: NaiveDateTime,
        data: serde_json::Value,
    ) -> Outgoing {
        let payload = serde_json::json!({
            "type": event_type.as_str(),
            "timestamp": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": data,
        });
        Outgoing {
            event_type,
            subject,
            payload: payload.to_string(),
        }
    }
}

/// A new event's `webhook-id`: the same on every attempt, unique across events.
pub fn new_message_id() -> String {
    format!("msg_{}", crate::tokens::new_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_are_stored_in_one_order() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        let stored = join(&[EventType::BookingCancelled, EventType::BookingCreated]);
        assert_eq!(stored, "booking.created booking.cancelled");
        assert_eq!(
            split(&format!("{stored} booking.unknown")),
            [EventType::BookingCreated, EventType::BookingCancelled]
        );
    }
}
