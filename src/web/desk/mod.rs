//! The front desk's pages: sign-in and sign-out, and the day (an agenda column per
//! dermatologist, and the review queue); the rest in one file a job. The same roles as
//! the API: a dermatologist sees only their own day and cannot act on bookings or keep
//! the calendar.

mod bookings;
mod calendar;
mod catalogue;
mod outbox;
mod phone;

pub use bookings::{booking_page, cancel, complete, confirm, no_show, reschedule};
pub use calendar::{
    add_time_off, block_slot, calendar, open_extra_slot, remove_time_off, reopen_slot, save_hours,
    set_performed,
};
pub use catalogue::{add_treatment, change_treatment, new_treatment, treatment, treatments};
pub use outbox::{emails, retry_email};
pub use phone::{phone_form, phone_submit};

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate};
use minijinja::{Value, context};
use serde::Deserialize;

use super::booking::see_other;
use super::pages::{failure, serialized};
use super::session::{self, Desk};
use crate::api::agenda::agenda;
use crate::api::auth::sign_in;
use crate::api::bookings::local_today;
use crate::api::problem::ApiError;
use crate::api::views::admin_view;
use crate::app::AppState;
use crate::domain::booking::BookingStatus;
use crate::store::bookings::{self as stored, BookingFilter};

/// What a form posts, by field name.
type Form = BTreeMap<String, String>;

/// Field name → the message shown beside that field.
type FieldErrors = BTreeMap<String, String>;

/// The sign-in page, with `error` when the last try failed.
fn sign_in_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let (csrf, cookie) = session::sign_in_token(state, req);
    let mut page = state.pages.render(
        &state.settings,
        status,
        "desk_sign_in.html",
        context! { csrf, error },
    );
    if let Some(cookie) = cookie {
        let _ = page.add_cookie(&cookie);
    }
    page
}

/// `GET /desk/sign-in`
pub async fn sign_in_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    sign_in_page(&state, &req, StatusCode::OK, None)
}

/// `POST /desk/sign-in`
pub async fn sign_in_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let form = form.into_inner();
    if session::check_sign_in_token(&req, form.get("csrf")).is_err() {
        return sign_in_page(
            &state,
            &req,
            StatusCode::FORBIDDEN,
            Some("This form had expired. Please sign in again."),
        );
    }
    let email = form.get("email").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    match sign_in(&state, &req, &email, password).await {
        Ok(signed_in) => {
            let mut response = see_other("/desk");
            let cookie = session::session_cookie(
                &state,
                &req,
                signed_in.token,
                state.settings.auth.session_hours,
            );
            let _ = response.add_cookie(&cookie);
            response
        }
        Err(ApiError::Unauthorized) => sign_in_page(
            &state,
            &req,
            StatusCode::UNAUTHORIZED,
            Some("That email and password do not match a staff account."),
        ),
        Err(ApiError::TooManyRequests(_)) => sign_in_page(
            &state,
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many attempts. Please wait a few minutes and try again."),
        ),
        Err(error) => failure(&state, error),
    }
}

/// The desk session of a request, or the answer to give instead: the sign-in page for
/// none.
async fn signed_in(state: &AppState, req: &HttpRequest) -> Result<Desk, HttpResponse> {
    match session::desk_of(state, req).await {
        Ok(desk) => Ok(desk),
        Err(ApiError::Unauthorized) => Err(see_other("/desk/sign-in")),
        Err(error) => Err(failure(state, error)),
    }
}

/// The desk user if their role runs the clinic, or the page to answer instead.
async fn front_desk(state: &AppState, req: &HttpRequest) -> Result<Desk, HttpResponse> {
    let desk = signed_in(state, req).await?;
    if desk.user.role.runs_the_clinic() {
        Ok(desk)
    } else {
        Err(failure(state, ApiError::Forbidden))
    }
}

/// Who may post a desk form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    AnyStaff,
    FrontDesk,
}

/// The sender of a desk form, or the page to answer instead: a form from another site,
/// without a session, without this session's CSRF token, or from a role that may not
/// send it, is refused before anything is done.
async fn posted(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
    allowed: Allowed,
) -> Result<Desk, HttpResponse> {
    if let Some(refused) = super::cross_site(state, req) {
        return Err(refused);
    }
    let desk = signed_in(state, req).await?;
    session::check_csrf(&desk, form.get("csrf")).map_err(|e| failure(state, e))?;
    if allowed == Allowed::FrontDesk && !desk.user.role.runs_the_clinic() {
        return Err(failure(state, ApiError::Forbidden));
    }
    Ok(desk)
}

/// A desk page: `values` with who is signed in and the CSRF token every form carries.
fn render(
    state: &AppState,
    desk: &Desk,
    status: StatusCode,
    template: &str,
    values: Value,
) -> HttpResponse {
    state.pages.render(
        &state.settings,
        status,
        template,
        context! {
            staff => context! { name => desk.user.name.clone(), role => desk.user.role.as_str() },
            csrf => desk.csrf.clone(),
            runs_the_clinic => desk.user.role.runs_the_clinic(),
            ..values
        },
    )
}

/// An instant as the desk's lists show it, in the clinic's time: `Mon 7 Dec 2026 09:30`.
fn local_stamp(state: &AppState, at: chrono::NaiveDateTime) -> String {
    chrono::TimeZone::from_utc_datetime(&state.settings.clinic.timezone, &at)
        .format("%a %-d %b %Y %H:%M")
        .to_string()
}

/// A date from a form or query (`YYYY-MM-DD`, in the calendar's years), or today in the
/// clinic.
fn date_or_today(state: &AppState, date: Option<&str>) -> NaiveDate {
    date.and_then(|d| crate::api::time::parse_date("date", d).ok())
        .unwrap_or_else(|| local_today(&state.settings, state.clock.now()))
}

/// `POST /desk/sign-out`
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::AnyStaff).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let hash = desk.user.token_hash.clone();
    if let Err(error) = state
        .write(move |conn| crate::store::staff::delete_session(conn, &hash))
        .await
    {
        return failure(&state, error);
    }
    let mut response = see_other("/desk/sign-in");
    session::forget(&state, &req, &mut response);
    response
}

#[derive(Debug, Deserialize)]
pub struct DayQuery {
    date: Option<String>,
    dermatologist: Option<i64>,
}

/// `GET /desk?date=&dermatologist=`: the day, and (for the front desk) the review queue.
pub async fn day(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DayQuery>,
) -> HttpResponse {
    let desk = match signed_in(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let date = date_or_today(&state, query.date.as_deref());
    day_page(
        &state,
        &desk,
        date,
        query.dermatologist,
        StatusCode::OK,
        None,
    )
    .await
}

/// The day's page; `slot_error` says why a change of a slot was refused.
async fn day_page(
    state: &AppState,
    desk: &Desk,
    date: NaiveDate,
    dermatologist: Option<i64>,
    status: StatusCode,
    slot_error: Option<String>,
) -> HttpResponse {
    let day = match agenda(state, &desk.user, date, dermatologist).await {
        Ok(day) => day,
        Err(error) => return failure(state, error),
    };
    let runs_the_clinic = desk.user.role.runs_the_clinic();
    let queue = if runs_the_clinic {
        let tz = state.settings.clinic.timezone;
        let filter = BookingFilter {
            statuses: vec![BookingStatus::PendingReview],
            ..BookingFilter::default()
        };
        match state
            .read(move |conn| stored::list(conn, &filter, 0, 200))
            .await
        {
            Ok((pending, _)) => pending.iter().map(|b| admin_view(tz, b)).collect(),
            Err(error) => return failure(state, error),
        }
    } else {
        Vec::new()
    };
    render(
        state,
        desk,
        status,
        "desk_day.html",
        context! {
            date => date.to_string(),
            date_label => date.format("%A %-d %B %Y").to_string(),
            previous => (date - Duration::days(1)).to_string(),
            next => (date + Duration::days(1)).to_string(),
            agenda => serialized(&day),
            queue => serialized(&queue),
            slot_error,
        },
    )
}
