//! The patient's manage link: see, cancel or reschedule one booking with its token.
//! A token opens its own booking and nothing else; an unknown one is a plain 404.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::bookings::observed;
use super::extract::parse_json;
use super::problem::ApiResult;
use super::time::{local_rfc3339, parse_instant};
use super::views::{BookingView, booking_view};
use crate::app::AppState;
use crate::booking;
use crate::store::audit::Actor;
use crate::store::bookings::BookingDetails;

#[derive(Serialize, utoipa::ToSchema)]
struct ManageView {
    booking: BookingView,
    patient_name: String,
    can_change: bool,
    change_deadline: String,
}

fn manage_view(state: &AppState, details: &BookingDetails) -> ManageView {
    let settings = &state.settings;
    let tz = settings.clinic.timezone;
    let starts_at = details.booking.starts_at;
    let active = details.booking.status.is_active();
    ManageView {
        booking: booking_view(tz, details),
        patient_name: details.booking.patient_name.clone(),
        can_change: active
            && booking::patient_may_still_change(settings, starts_at, state.clock.now()),
        change_deadline: local_rfc3339(tz, booking::patient_change_deadline(settings, starts_at)),
    }
}

/// `GET /api/v1/manage/{token}`
#[utoipa::path(
    get,
    path = "/api/v1/manage/{token}",
    tag = "manage link",
    description = "The booking a manage token opens; an unknown token is a 404 that says nothing more.",
    params(("token" = String, Path, description = "The manage token from the booking's answer or email")),
    responses((status = 200, description = "Done", body = ManageView), (status = 404, description = "Not found"), (status = 410, description = "The manage link has expired"))
)]
pub async fn show(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let token = token.into_inner();
    let settings = state.settings.clone();
    let now = state.clock.now();
    let details = state
        .read(move |conn| booking::by_manage_token(conn, &settings, &token, now))
        .await?;
    Ok(HttpResponse::Ok().json(manage_view(&state, &details)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Cancel every remaining session of the booking's course, not just this one.
    #[serde(default)]
    pub course: bool,
}

/// An optional JSON body: empty means the defaults.
pub fn optional_body<T: Default + serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// The booking the link opened, and every session the cancel took (itself, or its
/// course's remaining ones).
#[derive(Serialize, utoipa::ToSchema)]
struct PatientCancelled {
    booking: BookingView,
    cancelled: Vec<BookingView>,
}

/// `POST /api/v1/manage/{token}/cancel` `{course?: bool}`
#[utoipa::path(
    post,
    path = "/api/v1/manage/{token}/cancel",
    tag = "manage link",
    description = "Cancels the booking, or with `course: true` every later session of its course; 409 after the change cutoff. The body is optional.",
    params(("token" = String, Path, description = "The manage token from the booking's answer or email")),
    request_body = Option<CancelBody>,
    responses((status = 200, description = "Done", body = PatientCancelled), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 410, description = "The manage link has expired"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn cancel(
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: Bytes,
) -> ApiResult<HttpResponse> {
    let body: CancelBody = optional_body(&body)?;
    let token = token.into_inner();
    let settings = state.settings.clone();
    let now = state.clock.now();
    let cancelled = state
        .write(move |conn| {
            let id = booking::lock_by_manage_token(conn, &settings, &token, now)?;
            if body.course {
                booking::cancel_course(conn, &settings, id, Actor::Patient, now)
            } else {
                booking::cancel(conn, &settings, id, Actor::Patient, now).map(|d| vec![d])
            }
        })
        .await;
    let tz = state.settings.clinic.timezone;
    let answer = cancelled.map(|cancelled| {
        HttpResponse::Ok().json(PatientCancelled {
            booking: booking_view(tz, &cancelled[0]),
            cancelled: cancelled.iter().map(|d| booking_view(tz, d)).collect(),
        })
    });
    observed("cancel", "online", answer)
}

#[derive(Debug, Deserialize, Serialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"starts_at": "2030-06-04T10:00:00+01:00"}))]
pub struct RescheduleBody {
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[serde(default)]
    pub dermatologist_id: Option<i64>,
}

/// `POST /api/v1/manage/{token}/reschedule` `{starts_at, dermatologist_id?}`
#[utoipa::path(
    post,
    path = "/api/v1/manage/{token}/reschedule",
    tag = "manage link",
    description = "Moves the booking, keeping its reference; 409 after the change cutoff.",
    params(("token" = String, Path, description = "The manage token from the booking's answer or email")),
    request_body = RescheduleBody,
    responses((status = 200, description = "Done", body = ManageView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 410, description = "The manage link has expired"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn reschedule(
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: super::extract::ValidJson<RescheduleBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let starts_at = parse_instant("starts_at", &body.starts_at)?;
    let token = token.into_inner();
    let settings = state.settings.clone();
    let now = state.clock.now();
    let moved = state
        .write(move |conn| {
            let id = booking::lock_by_manage_token(conn, &settings, &token, now)?;
            booking::reschedule(
                conn,
                &settings,
                id,
                starts_at,
                body.dermatologist_id,
                Actor::Patient,
                false,
                now,
            )
        })
        .await;
    let answer = moved.map(|moved| HttpResponse::Ok().json(manage_view(&state, &moved)));
    observed("reschedule", "online", answer)
}
