//! The patient's manage page: the booking its link opens, an `.ics` to add it to a
//! calendar, and a cancel that asks first. A GET never changes anything.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::TimeZone;
use minijinja::context;
use serde::Deserialize;

use super::booking::see_other;
use super::pages::failure;
use crate::app::AppState;
use crate::booking;
use crate::email::ics::Method;
use crate::store::audit::Actor;
use crate::store::bookings::BookingDetails;

#[derive(Debug, Deserialize)]
pub struct Shown {
    booked: Option<String>,
    cancelled: Option<String>,
}

async fn opened(state: &AppState, token: String) -> Result<BookingDetails, HttpResponse> {
    let settings = state.settings.clone();
    let now = state.clock.now();
    state
        .read(move |conn| booking::by_manage_token(conn, &settings, &token, now))
        .await
        .map_err(|error| failure(state, error))
}

fn when(state: &AppState, details: &BookingDetails) -> String {
    state
        .settings
        .clinic
        .timezone
        .from_utc_datetime(&details.booking.starts_at)
        .format("%A %-d %B %Y at %H:%M")
        .to_string()
}

fn booking_values(details: &BookingDetails) -> minijinja::Value {
    context! {
        reference => details.booking.reference.clone(),
        status => details.booking.status.as_str(),
        treatment => details.treatment.name.clone(),
        dermatologist => details.dermatologist.name.clone(),
    }
}

/// `GET /manage/{token}`
pub async fn show(
    state: web::Data<AppState>,
    token: web::Path<String>,
    shown: web::Query<Shown>,
) -> HttpResponse {
    let token = token.into_inner();
    let details = match opened(&state, token.clone()).await {
        Ok(details) => details,
        Err(page) => return page,
    };
    let settings = &state.settings;
    let starts_at = details.booking.starts_at;
    let active = details.booking.status.is_active();
    let status_label = match details.booking.status.as_str() {
        "pending_review" => "Awaiting the clinic's review: we will call you",
        "confirmed" => "Confirmed",
        "cancelled" => "Cancelled",
        "completed" => "Completed",
        "no_show" => "Missed",
        other => other,
    };
    let deadline = settings
        .clinic
        .timezone
        .from_utc_datetime(&booking::patient_change_deadline(settings, starts_at))
        .format("%A %-d %B at %H:%M")
        .to_string();
    state.pages.render(
        settings,
        StatusCode::OK,
        "manage.html",
        context! {
            booking => booking_values(&details),
            status_label,
            when => when(&state, &details),
            preparation => details.treatment.preparation.clone(),
            active,
            can_change => active
                && booking::patient_may_still_change(settings, starts_at, state.clock.now()),
            deadline,
            token,
            booked => shown.booked.is_some(),
            cancelled => shown.cancelled.is_some(),
        },
    )
}

/// `GET /manage/{token}/calendar.ics`
pub async fn calendar(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    let details = match opened(&state, token.clone()).await {
        Ok(details) => details,
        Err(page) => return page,
    };
    let manage_url = format!("{}/manage/{token}", state.settings.clinic.public_base_url);
    let ics = crate::email::compose::calendar_invitation(
        &state.settings,
        &details,
        Method::Request,
        &manage_url,
        state.clock.now(),
    );
    HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.ics\"", details.booking.reference),
        ))
        .body(ics)
}

/// `GET /manage/{token}/cancel`: asks first.
pub async fn ask_cancel(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    let details = match opened(&state, token.clone()).await {
        Ok(details) => details,
        Err(page) => return page,
    };
    state.pages.render(
        &state.settings,
        StatusCode::OK,
        "cancel.html",
        context! { booking => booking_values(&details), when => when(&state, &details), token },
    )
}

/// `POST /manage/{token}/cancel`
pub async fn cancel(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let token = token.into_inner();
    let settings = state.settings.clone();
    let now = state.clock.now();
    let opened = token.clone();
    let cancelled = state
        .write(move |conn| {
            let id = booking::lock_by_manage_token(conn, &settings, &opened, now)?;
            booking::cancel(conn, &settings, id, Actor::Patient, now)
        })
        .await;
    crate::instruments::booking_operation(
        "cancel",
        "page",
        if cancelled.is_ok() { "done" } else { "refused" },
    );
    match cancelled {
        Ok(_) => see_other(&format!("/manage/{token}?cancelled=1")),
        Err(error) => failure(&state, error),
    }
}
