//! The front desk's pages: sign-in and sign-out, the day (an agenda column per
//! dermatologist), and the review queue with confirm and cancel. The same roles as the
//! API: a dermatologist sees only their own day and cannot act on bookings.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate};
use minijinja::{Value, context};
use serde::Deserialize;

use super::booking::see_other;
use super::pages::failure;
use super::session::{self, Desk};
use crate::api::agenda::agenda;
use crate::api::auth::sign_in;
use crate::api::bookings::local_today;
use crate::api::problem::ApiError;
use crate::api::views::admin_view;
use crate::app::AppState;
use crate::booking;
use crate::domain::booking::{Action, BookingStatus};
use crate::store::audit::Actor;
use crate::store::bookings::{self as stored, BookingFilter};

type Form = BTreeMap<String, String>;

fn serialized<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

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

/// `POST /desk/sign-out`
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let desk = match signed_in(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    if let Err(error) = session::check_csrf(&desk, form.get("csrf")) {
        return failure(&state, error);
    }
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
    let today = local_today(&state.settings, state.clock.now());
    let date = query
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let day = match agenda(&state, &desk.user, date, query.dermatologist).await {
        Ok(day) => day,
        Err(error) => return failure(&state, error),
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
            Err(error) => return failure(&state, error),
        }
    } else {
        Vec::new()
    };
    state.pages.render(
        &state.settings,
        StatusCode::OK,
        "desk_day.html",
        context! {
            staff => context! { name => desk.user.name.clone(), role => desk.user.role.as_str() },
            csrf => desk.csrf,
            date => date.to_string(),
            date_label => date.format("%A %-d %B %Y").to_string(),
            previous => (date - Duration::days(1)).to_string(),
            next => (date + Duration::days(1)).to_string(),
            agenda => serialized(&day),
            queue => serialized(&queue),
            runs_the_clinic,
        },
    )
}

/// `POST /desk/bookings/{id}/confirm` and `.../cancel`, from the review queue.
async fn act(
    state: &AppState,
    req: &HttpRequest,
    id: i64,
    form: &Form,
    action: Action,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(state, req) {
        return refused;
    }
    let desk = match signed_in(state, req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    if let Err(error) = session::check_csrf(&desk, form.get("csrf")) {
        return failure(state, error);
    }
    if !desk.user.role.runs_the_clinic() {
        return failure(state, ApiError::Forbidden);
    }
    let settings = state.settings.clone();
    let now = state.clock.now();
    let staff = desk.user.id;
    let done = state
        .write(move |conn| {
            booking::record_outcome(conn, &settings, id, action, Actor::Staff(staff), now)
        })
        .await;
    crate::instruments::booking_operation(
        if matches!(action, Action::Cancel) {
            "cancel"
        } else {
            "confirm"
        },
        "desk_page",
        if done.is_ok() { "done" } else { "refused" },
    );
    match done {
        Ok(_) => see_other(&format!(
            "/desk?date={}",
            form.get("date").map_or("", String::as_str)
        )),
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
