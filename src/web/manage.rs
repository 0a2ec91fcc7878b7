//! The patient's manage page: the booking its link opens, an `.ics` to add it to a
//! calendar, a cancel that asks first, and a reschedule that shows a week of free times
//! and asks before it moves anything. A GET never changes anything.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone};
use minijinja::context;
use serde::Deserialize;

use super::booking::{TimesLinks, TimesQuery, see_other, week_of_times};
use super::pages::failure;
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::booking;
use crate::email::ics::Method;
use crate::store::audit::Actor;
use crate::store::bookings::BookingDetails;

#[derive(Debug, Deserialize)]
pub struct Shown {
    booked: Option<String>,
    cancelled: Option<String>,
    rescheduled: Option<String>,
}

async fn opened(state: &AppState, token: String) -> Result<BookingDetails, HttpResponse> {
    let settings = state.settings.clone();
    let now = state.clock.now();
    state
        .read(move |conn| booking::by_manage_token(conn, &settings, &token, now))
        .await
        .map_err(|error| failure(state, error))
}

fn in_words(state: &AppState, at: NaiveDateTime) -> String {
    state
        .settings
        .clinic
        .timezone
        .from_utc_datetime(&at)
        .format("%A %-d %B %Y at %H:%M")
        .to_string()
}

fn when(state: &AppState, details: &BookingDetails) -> String {
    in_words(state, details.booking.starts_at)
}

/// Whether the patient may still cancel or move the booking online.
fn changeable(state: &AppState, details: &BookingDetails) -> bool {
    details.booking.status.is_active()
        && booking::patient_may_still_change(
            &state.settings,
            details.booking.starts_at,
            state.clock.now(),
        )
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
            can_change => changeable(&state, &details),
            deadline,
            token,
            booked => shown.booked.is_some(),
            cancelled => shown.cancelled.is_some(),
            rescheduled => shown.rescheduled.is_some(),
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

#[derive(Debug, Deserialize)]
pub struct RescheduleQuery {
    dermatologist: Option<String>,
    week: Option<String>,
    taken: Option<String>,
    /// With `starts_at`, the time chosen: the page asks whether to move there.
    dermatologist_id: Option<String>,
    starts_at: Option<String>,
}

/// An RFC 3339 time from a form or query, as UTC.
fn instant_of(text: Option<&str>) -> Option<NaiveDateTime> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|at| at.naive_utc())
}

/// `GET /manage/{token}/reschedule`: a week of free times for the same treatment; with a
/// time chosen, the question whether to move there. After the cutoff, the manage page
/// (which says why).
pub async fn ask_reschedule(
    state: web::Data<AppState>,
    token: web::Path<String>,
    query: web::Query<RescheduleQuery>,
) -> HttpResponse {
    let token = token.into_inner();
    let details = match opened(&state, token.clone()).await {
        Ok(details) => details,
        Err(page) => return page,
    };
    if !changeable(&state, &details) {
        return see_other(&format!("/manage/{token}"));
    }
    let query = query.into_inner();
    let chosen = query
        .dermatologist_id
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok());
    if let (Some(dermatologist_id), Some(starts_at)) =
        (chosen, instant_of(query.starts_at.as_deref()))
    {
        let found = state
            .read(move |conn| crate::store::dermatologists::by_id(conn, dermatologist_id))
            .await;
        let dermatologist = match found {
            Ok(Some(d)) => d.name,
            Ok(None) => return failure(&state, ApiError::NotFound("dermatologist")),
            Err(error) => return failure(&state, error),
        };
        return state.pages.render(
            &state.settings,
            StatusCode::OK,
            "reschedule.html",
            context! {
                booking => booking_values(&details),
                when => when(&state, &details),
                new_when => in_words(&state, starts_at),
                dermatologist,
                dermatologist_id,
                starts_at => query.starts_at,
                token,
            },
        );
    }
    let links = TimesLinks {
        here: format!("/manage/{token}/reschedule"),
        choose: format!("/manage/{token}/reschedule"),
        moving: Some(when(&state, &details)),
    };
    let times = TimesQuery {
        dermatologist: query.dermatologist,
        week: query.week,
        taken: query.taken,
    };
    match week_of_times(&state, details.treatment.slug.clone(), times, links).await {
        Ok(page) => page,
        Err(error) => failure(&state, error),
    }
}

/// `POST /manage/{token}/reschedule` (`starts_at`, `dermatologist_id`): moves the
/// booking, keeping its reference. A time taken meanwhile goes back to the times; a form
/// sent twice finds the booking already moved and says so.
pub async fn reschedule(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
    form: web::Form<std::collections::BTreeMap<String, String>>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let token = token.into_inner();
    let Some(starts_at) = instant_of(form.get("starts_at").map(String::as_str)) else {
        return see_other(&format!("/manage/{token}/reschedule"));
    };
    let dermatologist = form
        .get("dermatologist_id")
        .and_then(|d| d.parse::<i64>().ok());
    let settings = state.settings.clone();
    let now = state.clock.now();
    let opened_with = token.clone();
    let moved = state
        .write(move |conn| {
            let id = booking::lock_by_manage_token(conn, &settings, &opened_with, now)?;
            booking::reschedule(
                conn,
                &settings,
                id,
                starts_at,
                dermatologist,
                Actor::Patient,
                false,
                now,
            )
        })
        .await;
    crate::instruments::booking_operation(
        "reschedule",
        "page",
        match &moved {
            Ok(_) => "done",
            Err(ApiError::Conflict(_)) => "conflict",
            Err(_) => "refused",
        },
    );
    let done = format!("/manage/{token}?rescheduled=1");
    match moved {
        Ok(_) => see_other(&done),
        Err(refused @ (ApiError::Conflict(_) | ApiError::Validation(_))) => {
            let details = match opened(&state, token.clone()).await {
                Ok(details) => details,
                Err(page) => return page,
            };
            let there = details.booking.status.is_active()
                && details.booking.starts_at == starts_at
                && dermatologist.is_none_or(|d| d == details.booking.dermatologist_id);
            if there {
                see_other(&done)
            } else if matches!(refused, ApiError::Conflict(_)) && changeable(&state, &details) {
                let tz = state.settings.clinic.timezone;
                let day = tz.from_utc_datetime(&starts_at).date_naive();
                let week = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                see_other(&format!("/manage/{token}/reschedule?week={week}&taken=1"))
            } else {
                failure(&state, refused)
            }
        }
        Err(error) => failure(&state, error),
    }
}
