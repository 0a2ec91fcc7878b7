//! A booking's page for the desk: details, screening answers, consent and history; and
//! confirm, completed, no-show, cancel and reschedule.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;

use super::{Allowed, Form, front_desk, posted, render};
use crate::api::problem::ApiError;
use crate::api::views::admin_view;
use crate::app::AppState;
use crate::booking;
use crate::domain::booking::Action;
use crate::store::audit::Actor;
use crate::store::bookings as stored;
use crate::web::booking::see_other;
use crate::web::pages::{failure, refusal_in_words, serialized};
use crate::web::session::Desk;

/// `GET /desk/bookings/{id}`: a booking, its history, and what the desk may do with it.
pub async fn booking_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    show_booking(&state, &desk, id.into_inner(), StatusCode::OK, None).await
}

async fn show_booking(
    state: &AppState,
    desk: &Desk,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let tz = state.settings.clinic.timezone;
    let found = state
        .read(move |conn| {
            let details = stored::details(conn, id)?.ok_or(ApiError::NotFound("booking"))?;
            let entries = crate::store::audit::history(conn, "booking", id)?;
            Ok::<_, ApiError>((details, entries))
        })
        .await;
    let (details, entries) = match found {
        Ok(found) => found,
        Err(error) => return failure(state, error),
    };
    let local = chrono::TimeZone::from_utc_datetime(&tz, &details.booking.starts_at);
    render(
        state,
        desk,
        status,
        "desk_booking.html",
        context! {
            booking => serialized(admin_view(tz, &details)),
            history => serialized(crate::api::views::history_view(tz, id, entries).history),
            when => local.format("%A %-d %B %Y at %H:%M").to_string(),
            date => local.date_naive().to_string(),
            starts_local => local.format("%Y-%m-%dT%H:%M").to_string(),
            active => details.booking.status.is_active(),
            error,
        },
    )
}

/// `POST /desk/bookings/{id}/reschedule`: to a local time (`datetime-local`), with the
/// same dermatologist or another, the notice waived if asked.
pub async fn reschedule(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let id = id.into_inner();
    let tz = state.settings.clinic.timezone;
    let Some(local) = form
        .get("starts_at")
        .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok())
    else {
        return show_booking(
            &state,
            &desk,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Please give the new date and time.".into()),
        )
        .await;
    };
    let starts_at = crate::domain::local_time::instant(tz, local, true);
    let dermatologist = form
        .get("dermatologist_id")
        .and_then(|d| d.parse::<i64>().ok());
    let waive_notice = form.get("waive_notice").map(String::as_str) == Some("yes");
    let settings = state.settings.clone();
    let now = state.clock.now();
    let staff = desk.user.id;
    let moved = state
        .write(move |conn| {
            booking::reschedule(
                conn,
                &settings,
                id,
                starts_at,
                dermatologist,
                Actor::Staff(staff),
                waive_notice,
                now,
            )
        })
        .await;
    crate::instruments::booking_operation(
        "reschedule",
        "desk_page",
        if moved.is_ok() { "done" } else { "refused" },
    );
    match moved {
        Ok(_) => see_other(&format!("/desk/bookings/{id}")),
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            let message = match refusal_in_words(error) {
                Ok(message) => message,
                Err(other) => return failure(&state, other),
            };
            show_booking(&state, &desk, id, status, Some(message)).await
        }
    }
}

/// `POST /desk/bookings/{id}/confirm`, `.../cancel`, `.../complete` and `.../no-show`.
async fn act(
    state: &AppState,
    req: &HttpRequest,
    id: i64,
    form: &Form,
    action: Action,
) -> HttpResponse {
    let desk = match posted(state, req, form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let operation = match action {
        Action::Cancel => "cancel",
        Action::Complete => "complete",
        Action::NoShow => "no_show",
        _ => "confirm",
    };
    let settings = state.settings.clone();
    let now = state.clock.now();
    let staff = desk.user.id;
    let done = state
        .write(move |conn| {
            booking::record_outcome(conn, &settings, id, action, Actor::Staff(staff), now)
        })
        .await;
    crate::instruments::booking_operation(
        operation,
        "desk_page",
        if done.is_ok() { "done" } else { "refused" },
    );
    match done {
        // Back where the desk acted: the booking's page, or the day.
        Ok(_) if form.get("back").map(String::as_str) == Some("booking") => {
            see_other(&format!("/desk/bookings/{id}"))
        }
        Ok(_) => see_other(&format!(
            "/desk?date={}",
            form.get("date").map_or("", String::as_str)
        )),
        Err(ApiError::Conflict(message)) => {
            show_booking(state, &desk, id, StatusCode::CONFLICT, Some(message)).await
        }
        Err(error) => failure(state, error),
    }
}

pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    act(&state, &req, id.into_inner(), &form, Action::Confirm).await
}

pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    act(&state, &req, id.into_inner(), &form, Action::Cancel).await
}

pub async fn complete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    act(&state, &req, id.into_inner(), &form, Action::Complete).await
}

pub async fn no_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    act(&state, &req, id.into_inner(), &form, Action::NoShow).await
}
