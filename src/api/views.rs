//! What the API answers about bookings, shared by the patient's endpoints, the manage
//! link and the front desk; and the page of a list, with the `Page` query it answers.
//! Typed structs, not ad hoc JSON, so the contract is written once, in Rust.

use std::collections::BTreeMap;
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use super::time::local_rfc3339;
use crate::booking::Booked;
use crate::config::Settings;
use crate::domain::booking::BookingStatus;
use crate::store::audit::Entry as AuditEntry;
use crate::store::bookings::BookingDetails;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Named {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TreatmentRef {
    pub slug: String,
    pub name: String,
}

/// What a patient sees of a booking.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BookingView {
    pub id: i64,
    pub reference: String,
    pub status: BookingStatus,
    pub treatment: TreatmentRef,
    pub dermatologist: Named,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_id: Option<i64>,
}

pub fn booking_view(tz: Tz, details: &BookingDetails) -> BookingView {
    let b = &details.booking;
    BookingView {
        id: b.id,
        reference: b.reference.clone(),
        status: b.status,
        treatment: TreatmentRef {
            slug: details.treatment.slug.clone(),
            name: details.treatment.name.clone(),
        },
        dermatologist: Named {
            id: details.dermatologist.id,
            name: details.dermatologist.name.clone(),
        },
        starts_at: local_rfc3339(tz, b.starts_at),
        ends_at: local_rfc3339(tz, b.ends_at),
        course_id: b.course_id,
    }
}

/// A booking with the token of its manage link: the token is shown once, here.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedBooking {
    pub booking: BookingView,
    pub manage_token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CourseView {
    pub id: i64,
    pub sessions: Vec<IssuedBooking>,
}

/// The answer to a new booking: the (first) booking and its token, and for a course
/// every session with its own.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BookedView {
    #[serde(flatten)]
    pub first: IssuedBooking,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course: Option<CourseView>,
}

pub fn booked_view(settings: &Settings, booked: &Booked) -> BookedView {
    let tz = settings.clinic.timezone;
    let issue = |d: &BookingDetails| IssuedBooking {
        booking: booking_view(tz, d),
        manage_token: crate::tokens::manage_token(
            &settings.auth.manage_link_secret,
            &d.booking.reference,
            &d.booking.manage_nonce,
        ),
    };
    BookedView {
        first: issue(&booked.sessions[0]),
        course: booked.course_id.map(|id| CourseView {
            id,
            sessions: booked.sessions.iter().map(issue).collect(),
        }),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PatientView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub date_of_birth: Option<String>,
    /// When the patient's personal data was erased: then this is a tombstone, and so is
    /// what the booking's form gave.
    pub erased_at: Option<String>,
}

/// The name and phone a booking's form gave, which may differ from the patient record.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GivenDetails {
    pub name: String,
    pub phone: String,
    /// Whether they differ from the record: the desk checks with the patient.
    pub differ_from_record: bool,
}

/// What the front desk sees of a booking.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminBookingView {
    #[serde(flatten)]
    pub booking: BookingView,
    pub patient: PatientView,
    pub given: GivenDetails,
    pub source: String,
    pub notes: Option<String>,
    pub screening_answers: BTreeMap<String, bool>,
    /// When the patient agreed to the processing of their screening answers; absent
    /// where they were not asked (a booking through the API that did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_data_consent_at: Option<String>,
    pub version: i32,
    pub created_at: String,
    pub updated_at: String,
}

pub fn admin_view(tz: Tz, details: &BookingDetails) -> AdminBookingView {
    let b = &details.booking;
    let p = &details.patient;
    AdminBookingView {
        booking: booking_view(tz, details),
        patient: PatientView {
            id: p.id,
            name: p.name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            date_of_birth: p.date_of_birth.map(|d| d.to_string()),
            erased_at: p.erased_at.map(|at| local_rfc3339(tz, at)),
        },
        given: GivenDetails {
            name: b.patient_name.clone(),
            phone: b.patient_phone.clone(),
            differ_from_record: b.patient_name != p.name || b.patient_phone != p.phone,
        },
        source: b.source.clone(),
        notes: b.notes.clone(),
        screening_answers: serde_json::from_str(&b.screening_answers).unwrap_or_default(),
        health_data_consent_at: b.health_data_consent_at.map(|at| local_rfc3339(tz, at)),
        version: b.version,
        created_at: local_rfc3339(tz, b.created_at),
        updated_at: local_rfc3339(tz, b.updated_at),
    }
}

/// The desk's cancel answers the booking itself, or for a whole course every session it
/// took.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DeskCancelled {
    One(Box<AdminBookingView>),
    Course(CancelledView),
}

/// The sessions one cancel took, as the front desk sees them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CancelledView {
    pub cancelled: Vec<AdminBookingView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub kind: String,
    pub staff_id: Option<i64>,
    /// The integration's key, when the change came through one (`kind` is `api_key`,
    /// `staff_id` the key's creator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryEntryView {
    pub at: String,
    pub actor: ActorView,
    pub action: String,
    pub before_status: Option<String>,
    pub after_status: Option<String>,
    pub details: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    pub booking_id: i64,
    pub history: Vec<HistoryEntryView>,
}

pub fn history_view(tz: Tz, booking_id: i64, entries: Vec<AuditEntry>) -> HistoryView {
    HistoryView {
        booking_id,
        history: entries
            .into_iter()
            .map(|e| HistoryEntryView {
                at: local_rfc3339(tz, e.at),
                actor: ActorView {
                    kind: e.actor_kind,
                    staff_id: e.actor_staff_id,
                    api_key_id: e.actor_api_key_id,
                },
                action: e.action,
                before_status: e.before_status,
                after_status: e.after_status,
                details: e.details.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect(),
    }
}

/// `?page=&per_page=` of a list: 1-based, 50 a page unless asked, at most 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    const DEFAULT_PER_PAGE: i64 = 50;
    const MAX_PER_PAGE: i64 = 200;
    /// Far past any real list; it keeps `offset` well inside an `i64`.
    const MAX_PAGE: i64 = 1_000_000;

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// The page's place in a list of `total`, to send with its items.
    pub fn of(self, total: i64) -> PageInfo {
        PageInfo {
            page: self.page,
            per_page: self.per_page,
            total,
        }
    }

    fn parse(query: &str) -> Result<Page, ApiError> {
        #[derive(Deserialize, utoipa::ToSchema)]
        struct Raw {
            page: Option<String>,
            per_page: Option<String>,
        }
        let raw = web::Query::<Raw>::from_query(query)
            .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))?
            .into_inner();
        let number = |field: &'static str, value: Option<String>, default, max| {
            let Some(value) = value else {
                return Ok(default);
            };
            match value.trim().parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(
                    field,
                    format!("must be a number from 1 to {max}"),
                )),
            }
        };
        Ok(Page {
            page: number("page", raw.page, 1, Page::MAX_PAGE)?,
            per_page: number(
                "per_page",
                raw.per_page,
                Page::DEFAULT_PER_PAGE,
                Page::MAX_PER_PAGE,
            )?,
        })
    }
}

impl FromRequest for Page {
    type Error = ApiError;
    type Future = Ready<Result<Page, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Page::parse(req.query_string()))
    }
}

/// Sent beside the items of a page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PageInfo {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(query: &str) -> String {
        match Page::parse(query) {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_to_the_first_page_of_fifty() {
        assert_eq!(
            Page::parse("status=failed").unwrap(),
            Page {
                page: 1,
                per_page: 50
            }
        );
        assert_eq!(Page::parse("page=3&per_page=20").unwrap().offset(), 40);
    }

    #[test]
    fn refuses_pages_out_of_range_without_overflowing() {
        assert_eq!(invalid_field("page=0"), "page");
        assert_eq!(invalid_field("page=9223372036854775807"), "page");
        assert_eq!(invalid_field("page=abc"), "page");
        assert_eq!(invalid_field("per_page=201"), "per_page");
        assert_eq!(invalid_field("per_page=-1"), "per_page");
        let last = Page::parse("page=1000000&per_page=200").unwrap();
        assert_eq!(last.offset(), 199_999_800);
    }
}
