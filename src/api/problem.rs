//! Every error the API answers is an RFC 9457 `application/problem+json` document.
//! Handlers return [`ApiError`]; this file alone decides status codes and wording, and
//! nothing internal (SQL, paths, panics) reaches a response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field, named by its JSON path (`patient.email`, `rules[2].start`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request body or parameters")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("your role may not do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Too many requests; the client may try again after this many seconds.
    #[error("too many requests; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("the database is unavailable")]
    Unavailable,
    /// Anything unexpected; logged with its whole chain, answered without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// Status codes that actix itself chose (405, 413, 415, ...), answered as problems.
    #[error("{1}")]
    Http(StatusCode, String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// The problem's `type`: a stable, machine-readable name of the kind of failure.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation-error",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests(_) => "too-many-requests",
            ApiError::Unavailable => "service-unavailable",
            ApiError::Internal(_) => "internal-error",
            ApiError::Http(status, _) => match *status {
                StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
                StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
                StatusCode::NOT_FOUND => "not-found",
                _ => "http-error",
            },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Http(status, _) => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "an unexpected error occurred; it has been logged".to_string()
            }
            ApiError::Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        if let ApiError::TooManyRequests(seconds) = self {
            response.insert_header((header::RETRY_AFTER, seconds.max(&1).to_string()));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(problem)
    }
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        use crate::db::Contention;
        match crate::db::contention(&error) {
            Some(Contention::Duplicate) => {
                return ApiError::Conflict(
                    "a record with the same unique value already exists".into(),
                );
            }
            Some(Contention::Overlap) => {
                crate::instruments::booking_contest_lost();
                return ApiError::Conflict(
                    "that time overlaps another booking of this dermatologist; choose another"
                        .into(),
                );
            }
            Some(Contention::Collided) => {
                return ApiError::Conflict(
                    "another change to the same bookings happened at the same moment; nothing \
                     was changed, please try again"
                        .into(),
                );
            }
            Some(Contention::SlotsOutOfStep) => {
                // The schema caught what the booking logic should never do; keep the trace.
                tracing::error!(error = %error, "a change would leave a booking's slots out of step");
                return ApiError::Conflict(
                    "the change could not be applied consistently; nothing was changed".into(),
                );
            }
            Some(Contention::Busy) => {
                tracing::warn!("the database stayed busy past its timeout");
                return ApiError::Unavailable;
            }
            None => {}
        }
        match error {
            DieselError::NotFound => ApiError::NotFound("record"),
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                ApiError::Conflict(
                    "the record is still referenced by others; deactivate it instead".into(),
                )
            }
            // PostgreSQL refuses a NUL character in text; the input had one.
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("invalid byte sequence") =>
            {
                ApiError::BadRequest("text in the request may not contain a NUL character".into())
            }
            other => ApiError::Internal(anyhow::Error::new(other).context("database query")),
        }
    }
}

impl From<crate::db::Unwritten> for ApiError {
    fn from(error: crate::db::Unwritten) -> Self {
        match error {
            crate::db::Unwritten::NoConnection(reason) => {
                tracing::warn!(reason, "no database connection available");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(%error, "no database connection available");
        ApiError::Unavailable
    }
}

impl From<crate::staff::StaffError> for ApiError {
    fn from(error: crate::staff::StaffError) -> Self {
        use crate::staff::StaffError;
        match error {
            StaffError::DermatologistRequired => {
                ApiError::invalid("dermatologist_id", "is required for the dermatologist role")
            }
            StaffError::DermatologistNotAllowed => {
                ApiError::invalid("dermatologist_id", "is only for the dermatologist role")
            }
            StaffError::NoSuchDermatologist(id) => {
                ApiError::invalid("dermatologist_id", format!("no dermatologist {id}"))
            }
            StaffError::EmailTaken => {
                ApiError::Conflict("a staff member with this email already exists".into())
            }
            StaffError::NotFound => ApiError::NotFound("staff member"),
            StaffError::WrongPassword => {
                ApiError::invalid("current_password", "is not your current password")
            }
            StaffError::OwnLogin => {
                ApiError::Conflict("an admin cannot deactivate their own login".into())
            }
            StaffError::Database(error) => error.into(),
            StaffError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<crate::booking::BookingError> for ApiError {
    fn from(error: crate::booking::BookingError) -> Self {
        use crate::booking::BookingError as E;
        let on_start = |message: &str| ApiError::invalid("starts_at", message);
        match error {
            E::UnknownTreatment => ApiError::invalid("treatment", "no such treatment"),
            E::UnknownDermatologist => {
                ApiError::invalid("dermatologist_id", "no such dermatologist")
            }
            E::NotPerformed { treatment } => ApiError::invalid(
                "dermatologist_id",
                format!("this dermatologist does not perform {treatment}"),
            ),
            E::Screening(problems) => ApiError::Validation(
                problems
                    .into_iter()
                    .map(|(field, message)| FieldError::new(field, message))
                    .collect(),
            ),
            E::Sessions(problem) => ApiError::invalid("sessions", problem.to_string()),
            E::Timing(problem) => on_start(&problem.to_string()),
            E::NotASlotStart => on_start(
                "is not a start time of this dermatologist's appointment slots; see /api/v1/availability",
            ),
            E::DoesNotFit => on_start(
                "the treatment does not fit there: the dermatologist's hours end before it would",
            ),
            E::SameTime => on_start("is the booking's current time"),
            // One wording for every rule about who the patient is: see SECURITY.md.
            E::PatientRule { clinic_phone, .. } => ApiError::invalid(
                "patient",
                format!(
                    "we cannot take this booking online; please call the clinic on {clinic_phone}"
                ),
            ),
            E::NotInCourse => ApiError::invalid("course", "this booking is not part of a course"),
            E::Taken => {
                crate::instruments::booking_contest_lost();
                ApiError::Conflict(
                    "that time is already booked; choose another from /api/v1/availability".into(),
                )
            }
            E::TakenMeanwhile => {
                crate::instruments::booking_contest_lost();
                ApiError::Conflict("that time was booked by someone else a moment ago".into())
            }
            E::Blocked => {
                ApiError::Conflict("that time is not available (blocked by the clinic)".into())
            }
            E::NoLongerOffered => {
                ApiError::Conflict("that time is no longer offered; choose another".into())
            }
            E::NoCourseRoom {
                session,
                near,
                tolerance_days,
            } => ApiError::Conflict(format!(
                "no free time for session {session} within {tolerance_days} days of {near}; \
                 nothing was booked, try another first date"
            )),
            E::NothingLeftInCourse => {
                ApiError::Conflict("no session of this course is left to cancel".into())
            }
            E::IllegalTransition { status, error } => {
                ApiError::Conflict(format!("{error} (status: {})", status.as_str()))
            }
            E::LinkExpired { clinic_phone } => ApiError::Http(
                StatusCode::GONE,
                format!("this manage link has expired; please call the clinic on {clinic_phone}"),
            ),
            E::TooLateToChange {
                cutoff_hours,
                clinic_phone,
            } => ApiError::Conflict(format!(
                "online changes close {cutoff_hours} hours before the appointment; please call \
                 the clinic on {clinic_phone}"
            )),
            E::ChangedMeanwhile { reference } => ApiError::Conflict(format!(
                "booking {reference} was changed at the same moment; nothing was changed, please \
                 look again"
            )),
            E::NotFound => ApiError::NotFound("booking"),
            E::Database(error) => error.into(),
            E::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<crate::scheduling::SchedulingError> for ApiError {
    fn from(error: crate::scheduling::SchedulingError) -> Self {
        use crate::scheduling::SchedulingError as E;
        match error {
            // The id in the path names nothing; where it comes from the body, the handler
            // says so (`dermatologist_in_body`).
            E::UnknownDermatologist => ApiError::NotFound("dermatologist"),
            E::TimeOffNotFound => ApiError::NotFound("time off"),
            E::SlotNotFound => ApiError::NotFound("slot"),
            E::SlotLength => {
                ApiError::invalid("ends_at", "must be 5 minutes to 8 hours after starts_at")
            }
            E::SlotOverlaps => {
                ApiError::Conflict("the slot overlaps another slot of this dermatologist".into())
            }
            E::SlotBooked => {
                ApiError::Conflict("the slot is booked; cancel or move the booking first".into())
            }
            E::TimeOffBackwards => ApiError::invalid("ends_at", "must be after starts_at"),
            E::Database(error) => error.into(),
        }
    }
}

/// A scheduling error for a request whose dermatologist came in the body: an unknown
/// one is a 422 on that field, not a 404.
pub fn dermatologist_in_body(error: crate::scheduling::SchedulingError) -> ApiError {
    match error {
        crate::scheduling::SchedulingError::UnknownDermatologist => {
            ApiError::invalid("dermatologist_id", "no such dermatologist")
        }
        other => other.into(),
    }
}
