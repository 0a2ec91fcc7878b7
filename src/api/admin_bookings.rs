//! The front desk's bookings: book a phone patient, list and filter, look one up, move it
//! through its statuses, and read its history.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::bookings::{BookingBody, BookingView, booked_response, booking_view};
use super::extract::ValidJson;
use super::idempotency;
use super::identity::{FrontDesk, StaffUser};
use super::manage::{CancelBody, optional_body};
use super::problem::{ApiError, ApiResult};
use super::time::{local_rfc3339, parse_date, parse_date_range, parse_instant};
use crate::app::AppState;
use crate::booking::{self, Channel};
use crate::db::{self, write_transaction};
use crate::domain::booking::{Action, BookingStatus};
use crate::domain::catalogue::normalise_email;
use crate::domain::schedule::local_days_utc;
use crate::store::audit::{self, Actor};
use crate::store::bookings::{self, BookingDetails, BookingFilter};

/// What the front desk sees of a booking.
#[derive(Serialize)]
pub struct AdminBookingView {
    #[serde(flatten)]
    booking: BookingView,
    patient: PatientView,
    source: String,
    notes: Option<String>,
    screening_answers: BTreeMap<String, bool>,
    version: i32,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct PatientView {
    id: i64,
    name: String,
    email: String,
    phone: String,
    date_of_birth: Option<String>,
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
        },
        source: b.source.clone(),
        notes: b.notes.clone(),
        screening_answers: serde_json::from_str(&b.screening_answers).unwrap_or_default(),
        version: b.version,
        created_at: local_rfc3339(tz, b.created_at),
        updated_at: local_rfc3339(tz, b.updated_at),
    }
}

/// `POST /api/v1/admin/bookings`: the booking form, plus `waive_notice` and
/// `waive_consultation`, which the audit log records.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    FrontDesk(user): FrontDesk,
    body: ValidJson<BookingBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let hash = idempotency::fingerprint(&body)?;
    let channel = Channel::FrontDesk {
        staff_id: user.id,
        waive_notice: body.waive_notice,
        waive_consultation: body.waive_consultation,
    };
    let settings = state.settings.clone();
    let today = chrono::Utc::now()
        .with_timezone(&settings.clinic.timezone)
        .date_naive();
    let request = body.into_request(today)?;
    let scope = format!("admin-bookings:{}", user.id);
    let now = state.clock.now();
    idempotency::run(&state, &req, scope, hash, move |conn| {
        let booked = booking::book(conn, &settings, request, channel, now)?;
        Ok((StatusCode::CREATED, booked_response(&settings, &booked)))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    dermatologist: Option<i64>,
    /// One status or several, comma-separated.
    status: Option<String>,
    /// A patient id, or an email address.
    patient: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

const MAX_PER_PAGE: i64 = 200;
const MAX_LIST_DAYS: i64 = 366;

/// `GET /api/v1/admin/bookings?date=|from=&to=&dermatologist=&status=&patient=&page=&per_page=`
pub async fn list(
    state: web::Data<AppState>,
    _: FrontDesk,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let tz = state.settings.clinic.timezone;
    let mut filter = BookingFilter {
        dermatologist_id: query.dermatologist,
        ..BookingFilter::default()
    };
    let dates = match (&query.date, &query.from, &query.to) {
        (Some(date), None, None) => {
            let date = parse_date("date", date)?;
            Some((date, date))
        }
        (None, Some(from), Some(to)) => Some(parse_date_range(from, to, MAX_LIST_DAYS)?),
        (None, None, None) => None,
        (Some(_), _, _) => {
            return Err(ApiError::invalid(
                "date",
                "give either date, or from and to",
            ));
        }
        _ => return Err(ApiError::invalid("to", "from and to go together")),
    };
    if let Some((from, to)) = dates {
        filter.starts_between = Some(local_days_utc(tz, from, to));
    }
    if let Some(statuses) = &query.status {
        for status in statuses.split(',').map(str::trim) {
            if BookingStatus::parse(status).is_none() {
                return Err(ApiError::invalid(
                    "status",
                    "must be pending_review, confirmed, cancelled, completed or no_show",
                ));
            }
            filter.statuses.push(status.to_string());
        }
    }
    match query.patient.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            filter.patient_id = Some(
                id.parse()
                    .map_err(|_| ApiError::invalid("patient", "is not a patient id"))?,
            );
        }
        Some(email) if email.contains('@') => filter.patient_email = Some(normalise_email(email)),
        Some(_) => {
            return Err(ApiError::invalid(
                "patient",
                "must be a patient id or an email address",
            ));
        }
        None => {}
    }
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(50);
    if page < 1 {
        return Err(ApiError::invalid("page", "must be 1 or more"));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::invalid(
            "per_page",
            format!("must be 1 to {MAX_PER_PAGE}"),
        ));
    }
    let (found, total) = state
        .db(move |conn| bookings::list(conn, &filter, (page - 1) * per_page, per_page))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "bookings": found.iter().map(|d| admin_view(tz, d)).collect::<Vec<_>>(),
        "page": page,
        "per_page": per_page,
        "total": total,
    })))
}

/// `GET /api/v1/admin/bookings/{id}`
pub async fn get(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let details = state
        .db(move |conn| bookings::details(conn, id)?.ok_or(ApiError::NotFound("booking")))
        .await?;
    Ok(HttpResponse::Ok().json(admin_view(state.settings.clinic.timezone, &details)))
}

/// Runs one status change in a write transaction at the clock's now, and answers the
/// booking as it is then.
async fn change<F>(state: &AppState, f: F) -> ApiResult<HttpResponse>
where
    F: FnOnce(
            &mut db::DbConnection,
            &crate::config::Settings,
            NaiveDateTime,
        ) -> Result<BookingDetails, booking::BookingError>
        + Send
        + 'static,
{
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    let details = state
        .db(move |conn| write_transaction(conn, |conn| f(conn, &settings, now)))
        .await?;
    Ok(HttpResponse::Ok().json(admin_view(tz, &details)))
}

async fn outcome(
    state: &AppState,
    user: StaffUser,
    id: i64,
    action: Action,
) -> ApiResult<HttpResponse> {
    change(state, move |conn, settings, now| {
        booking::record_outcome(conn, settings, id, action, Actor::Staff(user.id), now)
    })
    .await
}

/// `POST /api/v1/admin/bookings/{id}/confirm`
pub async fn confirm(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::Confirm).await
}

/// `POST /api/v1/admin/bookings/{id}/complete`
pub async fn complete(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::Complete).await
}

/// `POST /api/v1/admin/bookings/{id}/no-show`
pub async fn no_show(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::NoShow).await
}

/// `POST /api/v1/admin/bookings/{id}/cancel` `{course?: bool}`
pub async fn cancel(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
    body: Bytes,
) -> ApiResult<HttpResponse> {
    let body: CancelBody = optional_body(&body)?;
    let id = id.into_inner();
    if !body.course {
        return outcome(&state, user, id, Action::Cancel).await;
    }
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    let cancelled = state
        .db(move |conn| {
            write_transaction(conn, |conn| {
                booking::cancel_course(conn, &settings, id, Actor::Staff(user.id), now)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "cancelled": cancelled.iter().map(|d| admin_view(tz, d)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize, validator::Validate)]
#[serde(deny_unknown_fields)]
pub struct AdminRescheduleBody {
    starts_at: String,
    #[serde(default)]
    dermatologist_id: Option<i64>,
    #[serde(default)]
    waive_notice: bool,
}

/// `POST /api/v1/admin/bookings/{id}/reschedule` `{starts_at, dermatologist_id?, waive_notice?}`
pub async fn reschedule(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
    body: ValidJson<AdminRescheduleBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let starts_at = parse_instant("starts_at", &body.starts_at)?;
    let id = id.into_inner();
    change(&state, move |conn, settings, now| {
        booking::reschedule(
            conn,
            settings,
            id,
            starts_at,
            body.dermatologist_id,
            Actor::Staff(user.id),
            body.waive_notice,
            now,
        )
    })
    .await
}

/// `GET /api/v1/admin/bookings/{id}/history`
pub async fn history(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tz = state.settings.clinic.timezone;
    let entries = state
        .db(move |conn| {
            bookings::details(conn, id)?.ok_or(ApiError::NotFound("booking"))?;
            Ok::<_, ApiError>(audit::history(conn, "booking", id)?)
        })
        .await?;
    let entries: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "at": local_rfc3339(tz, e.at),
                "actor": {"kind": e.actor_kind, "staff_id": e.actor_staff_id},
                "action": e.action,
                "before_status": e.before_status,
                "after_status": e.after_status,
                "details": e.details.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "booking_id": id, "history": entries })))
}
