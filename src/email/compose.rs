//! Turns a booking change into the messages it owes: one to the patient (with its
//! calendar invitation) and one to the front desk, as outbox rows. Rendering happens
//! here, inside the transaction of the change, so each email shows the booking exactly
//! as that change left it.

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use rand::RngCore;
use serde::Serialize;

use super::ics::{Invitation, Method};
use super::templates::Templates;
use crate::config::Settings;
use crate::domain::booking::BookingStatus;
use crate::store::bookings::BookingDetails;
use crate::store::outbox::NewEmail;

/// What happened to a booking, as far as email is concerned.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new booking: confirmed, or pending the clinic's review.
    Booked,
    /// The clinic confirmed a booking that was pending review.
    Confirmed,
    /// Moved from the time (and dermatologist) given.
    Rescheduled {
        previous: Previous,
    },
    Cancelled,
    Reminder,
    /// Back to review: the consultation it relied on was cancelled.
    SentToReview,
    /// Cancelled by the clinic because no one reviewed it in time.
    Expired,
}

/// Where a rescheduled booking was before.
#[derive(Debug, Clone)]
pub struct Previous {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub dermatologist: String,
}

/// Who made the change, in words for the templates.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Patient,
    FrontDesk,
    Clinic,
}

impl Actor {
    fn words(self) -> &'static str {
        match self {
            Actor::Patient => "patient",
            Actor::FrontDesk => "front desk",
            Actor::Clinic => "clinic",
        }
    }
}

#[derive(Serialize)]
struct When {
    date: String,
    start: String,
    end: String,
    zone: String,
}

fn when(tz: Tz, starts_at: NaiveDateTime, ends_at: NaiveDateTime) -> When {
    let start = starts_at.and_utc().with_timezone(&tz);
    let end = ends_at.and_utc().with_timezone(&tz);
    When {
        date: start.format("%A %-d %B %Y").to_string(),
        start: start.format("%H:%M").to_string(),
        end: end.format("%H:%M").to_string(),
        zone: start.format("%Z").to_string(),
    }
}

#[derive(Serialize)]
struct PreviousView {
    date: String,
    start: String,
    end: String,
    zone: String,
    dermatologist: String,
}

/// Everything a template may use; README.md in templates/email lists it.
#[derive(Serialize)]
struct Context<'a> {
    clinic: serde_json::Value,
    reference: &'a str,
    status: &'a str,
    treatment: serde_json::Value,
    dermatologist: serde_json::Value,
    patient: serde_json::Value,
    notes: &'a str,
    when: When,
    previous: Option<PreviousView>,
    session: Option<usize>,
    sessions: Option<usize>,
    manage_url: String,
    event: &'a str,
    actor: &'a str,
    /// Why a booking awaits review: "screening" (an answer) or "consultation" (the one it
    /// needs was cancelled).
    review: &'a str,
}

/// Where a course session sits in its course, when the booking is part of one.
#[derive(Debug, Clone, Copy)]
pub struct CoursePlace {
    pub session: usize,
    pub sessions: usize,
}

/// The messages one booking change sends, ready for the outbox.
pub fn messages(
    settings: &Settings,
    details: &BookingDetails,
    event: &Event,
    actor: Actor,
    manage_token: &str,
    course: Option<CoursePlace>,
    now: NaiveDateTime,
) -> anyhow::Result<Vec<NewEmail>> {
    let tz = settings.clinic.timezone;
    let booking = &details.booking;
    let (patient_kind, notice_event) = match event {
        Event::Booked if booking.status == BookingStatus::PendingReview => {
            ("pending_review", "new booking, pending review")
        }
        Event::Booked => ("confirmation", "new booking"),
        Event::Confirmed => ("confirmed", "confirmed after review"),
        Event::Rescheduled { .. } => ("rescheduled", "rescheduled"),
        Event::Cancelled => ("cancelled", "cancelled"),
        Event::Reminder => ("reminder", "reminder sent"),
        Event::SentToReview => (
            "pending_review",
            "sent back to review: the consultation it needs was cancelled",
        ),
        Event::Expired => ("cancelled", "cancelled: no one reviewed it in time"),
    };
    let base = settings.clinic.public_base_url.trim_end_matches('/');
    let context = Context {
        clinic: serde_json::json!({
            "name": settings.clinic.name,
            "address": settings.clinic.address,
            "phone": settings.clinic.phone,
            "timezone": tz.name(),
        }),
        reference: &booking.reference,
        status: booking.status.as_str(),
        treatment: serde_json::json!({
            "name": details.treatment.name,
            "description": details.treatment.description,
            "preparation": details.treatment.preparation,
            "aftercare": details.treatment.aftercare,
            "duration_minutes": details.treatment.duration_minutes,
        }),
        dermatologist: serde_json::json!({
            "name": details.dermatologist.name,
            "title": details.dermatologist.title,
        }),
        // The details this booking was made with: an anonymous form never rewrites the
        // patient record, and the record's words are not shown to whoever booked.
        patient: serde_json::json!({
            "name": booking.patient_name,
            "email": details.patient.email,
            "phone": booking.patient_phone,
        }),
        notes: booking.notes.as_deref().unwrap_or(""),
        when: when(tz, booking.starts_at, booking.ends_at),
        previous: match event {
            Event::Rescheduled { previous } => {
                let w = when(tz, previous.starts_at, previous.ends_at);
                Some(PreviousView {
                    date: w.date,
                    start: w.start,
                    end: w.end,
                    zone: w.zone,
                    dermatologist: previous.dermatologist.clone(),
                })
            }
            _ => None,
        },
        session: course.map(|c| c.session),
        sessions: course.map(|c| c.sessions),
        manage_url: format!("{base}/manage/{manage_token}"),
        event: notice_event,
        actor: actor.words(),
        review: if matches!(event, Event::SentToReview) {
            "consultation"
        } else {
            "screening"
        },
    };
    let templates = Templates::new(&settings.email.templates_dir);
    let domain = settings.email.domain();
    let ics = calendar_invitation(
        settings,
        details,
        Method::for_kind(patient_kind),
        &context.manage_url,
        now,
    );
    let version = booking.version;
    let mut out = Vec::with_capacity(2);
    let patient = templates.render(patient_kind, &context)?;
    out.push(NewEmail {
        booking_id: Some(booking.id),
        kind: patient_kind.to_string(),
        recipient: details.patient.email.clone(),
        subject: patient.subject,
        body_text: patient.text,
        body_html: patient.html,
        ics: Some(ics.clone()),
        message_id: message_id(patient_kind, domain),
        dedupe_key: Some(match event {
            // One reminder per appointment time, however often the worker looks.
            Event::Reminder => reminder_key(booking.id, booking.ics_sequence),
            _ => format!("{patient_kind}:{}:v{version}", booking.id),
        }),
        status: "pending".into(),
        next_attempt_at: now,
        created_at: now,
    });
    if !matches!(event, Event::Reminder) {
        let notice = templates.render("front_desk_notice", &context)?;
        out.push(NewEmail {
            booking_id: Some(booking.id),
            kind: "front_desk_notice".into(),
            recipient: settings.email.front_desk.clone(),
            subject: notice.subject,
            body_text: notice.text,
            body_html: notice.html,
            ics: None,
            message_id: message_id("notice", domain),
            dedupe_key: Some(format!("notice:{}:v{version}", booking.id)),
            status: "pending".into(),
            next_attempt_at: now,
            created_at: now,
        });
    }
    Ok(out)
}

/// The dedupe key of a booking's reminder: one per appointment time, so a booking moved
/// after its reminder went out is reminded of its new time, and never twice of one.
pub fn reminder_key(booking_id: i64, ics_sequence: i32) -> String {
    format!("reminder:{booking_id}:{ics_sequence}")
}

/// A globally unique Message-ID in the clinic's mail domain.
fn message_id(kind: &str, domain: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.{kind}@{domain}>")
}

/// The booking as a calendar invitation (`.ics`): attached to its emails, and offered
/// for download on its manage page.
pub fn calendar_invitation(
    settings: &Settings,
    details: &BookingDetails,
    method: Method,
    manage_url: &str,
    now: NaiveDateTime,
) -> String {
    let booking = &details.booking;
    let domain = settings.email.domain();
    Invitation {
        method,
        uid: &format!("{}@{domain}", booking.reference),
        sequence: u32::try_from(booking.ics_sequence).unwrap_or(0),
        starts_at: booking.starts_at,
        ends_at: booking.ends_at,
        summary: &format!("{} at {}", details.treatment.name, settings.clinic.name),
        description: &format!(
            "{} with {}. Reference {}. Manage: {manage_url}",
            details.treatment.name, details.dermatologist.name, booking.reference,
        ),
        location: &format!("{}, {}", settings.clinic.name, settings.clinic.address),
        organizer_name: &settings.clinic.name,
        organizer_email: &settings.email.from,
        attendee_name: &booking.patient_name,
        attendee_email: &details.patient.email,
        stamp: now,
    }
    .to_ics()
}
