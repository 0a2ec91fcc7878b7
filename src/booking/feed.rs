//! A dermatologist's calendar subscription (`/calendar/{token}.ics`): their appointments
//! from 30 days back to the end of the slot horizon, opened by the secret in its URL,
//! whose hash alone is stored. Patients' names appear only where the clinic turns that
//! on (`calendar.show_patient_names`): a phone's calendar is not the clinic's records.

use chrono::{Duration, NaiveDateTime};

use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::booking::BookingStatus;
use crate::email::ics::{FeedEvent, feed};
use crate::store::bookings::{self, BookingFilter};
use crate::store::{calendar_feeds, dermatologists};

/// How far back a feed reaches.
const DAYS_BACK: i64 = 30;
/// The most appointments one feed lists: far above a dermatologist's slots in its span.
const MAX_EVENTS: i64 = 5000;

/// The feed the token opens, or `None` for a token that opens none (never issued,
/// replaced or revoked).
pub fn of_token(
    conn: &mut DbConnection,
    settings: &Settings,
    token: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<Option<String>> {
    let hash = crate::tokens::token_hash(token);
    let Some(id) = calendar_feeds::dermatologist_of(conn, &hash)? else {
        return Ok(None);
    };
    // A dermatologist who left (made inactive) has no feed any more.
    let Some(dermatologist) = dermatologists::by_id(conn, id)?.filter(|d| d.active) else {
        return Ok(None);
    };
    let filter = BookingFilter {
        starts_between: Some((
            now - Duration::days(DAYS_BACK),
            now + Duration::days(i64::from(settings.slots.horizon_days) + 1),
        )),
        dermatologist_id: Some(id),
        statuses: vec![
            BookingStatus::PendingReview,
            BookingStatus::Confirmed,
            BookingStatus::Completed,
            BookingStatus::NoShow,
        ],
        ..BookingFilter::default()
    };
    let (found, _) = bookings::list(conn, &filter, 0, MAX_EVENTS)?;
    let domain = settings.email.domain();
    let events: Vec<FeedEvent> = found
        .iter()
        .map(|d| {
            let b = &d.booking;
            let summary = if settings.calendar.show_patient_names {
                format!("{}: {}", d.treatment.name, b.patient_name)
            } else {
                d.treatment.name.clone()
            };
            let status = match b.status {
                BookingStatus::PendingReview => "awaiting review",
                BookingStatus::Completed => "completed",
                BookingStatus::NoShow => "no-show",
                _ => "confirmed",
            };
            FeedEvent {
                // Its own UID, not the patient's invitation's: two calendars, two events.
                uid: format!("{}-feed@{domain}", b.reference),
                starts_at: b.starts_at,
                ends_at: b.ends_at,
                summary,
                description: format!("Booking {} ({status})", b.reference),
                tentative: b.status == BookingStatus::PendingReview,
                updated_at: b.updated_at,
            }
        })
        .collect();
    let name = format!("{} · {}", dermatologist.name, settings.clinic.name);
    Ok(Some(feed(&name, &settings.clinic.address, &events, now)))
}
