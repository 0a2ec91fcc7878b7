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
use super::pages::{failure, refusal_in_words, serialized};
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

/// The desk user if their role runs the clinic, or the page to answer instead.
async fn front_desk(state: &AppState, req: &HttpRequest) -> Result<Desk, HttpResponse> {
    let desk = signed_in(state, req).await?;
    if desk.user.role.runs_the_clinic() {
        Ok(desk)
    } else {
        Err(failure(state, ApiError::Forbidden))
    }
}

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
    state.pages.render(
        &state.settings,
        status,
        "desk_booking.html",
        context! {
            csrf => desk.csrf.clone(),
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
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    if let Err(error) = session::check_csrf(&desk, form.get("csrf")) {
        return failure(&state, error);
    }
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

#[derive(Debug, Deserialize)]
pub struct PhoneQuery {
    treatment: Option<String>,
    /// Empty for any dermatologist (what the form's "Any" sends).
    dermatologist: Option<String>,
    date: Option<String>,
}

/// The phone booking page: a treatment, a dermatologist and a day chosen by GET, that
/// day's free times (within the notice too: the desk may waive it), and the form.
async fn phone_page(
    state: &AppState,
    desk: &Desk,
    query: PhoneQuery,
    form: Form,
    errors: BTreeMap<String, String>,
    status: StatusCode,
) -> HttpResponse {
    let tz = state.settings.clinic.timezone;
    let offered = match state
        .read(|conn| crate::store::treatments::list(conn, false))
        .await
    {
        Ok(offered) => offered,
        Err(error) => return failure(state, error),
    };
    let Some(treatment) = query
        .treatment
        .as_deref()
        .and_then(|slug| offered.iter().find(|t| t.slug == slug))
        .or_else(|| offered.first())
        .cloned()
    else {
        return failure(state, ApiError::NotFound("treatment"));
    };
    let today = local_today(&state.settings, state.clock.now());
    let date = query
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let only = query
        .dermatologist
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok());
    let treatment_id = treatment.id;
    let performers = match state
        .read(move |conn| crate::store::dermatologists::list(conn, false, Some(treatment_id)))
        .await
    {
        Ok(performers) => performers,
        Err(error) => return failure(state, error),
    };
    let index = match crate::api::availability::snapshot(state).await {
        Ok(index) => index,
        Err(error) => return failure(state, error),
    };
    let (day_from, day_after) = crate::domain::local_time::local_days_utc(tz, date, date);
    let found = index
        .openings(&crate::booking::availability::Question {
            treatment: &treatment.slug,
            dermatologist: only,
            earliest: day_from.max(state.clock.now()),
            latest: day_after,
        })
        .unwrap_or_default();
    let times: Vec<Value> = found
        .iter()
        .map(|o| {
            let name = performers
                .iter()
                .find(|p| p.id == o.dermatologist_id)
                .map_or_else(String::new, |p| p.name.clone());
            let stamp = crate::domain::local_time::LocalStamp::new(tz, o.starts_at);
            context! {
                value => format!("{}|{}", o.dermatologist_id, stamp.as_str()),
                label => format!("{} {}", stamp.hour_minute(), name),
            }
        })
        .collect();
    let fields = [
        ("name", "Full name", "text", "patient.name"),
        ("email", "Email", "email", "patient.email"),
        ("phone", "Phone", "tel", "patient.phone"),
        (
            "date_of_birth",
            "Date of birth (YYYY-MM-DD, optional)",
            "text",
            "patient.date_of_birth",
        ),
        ("notes", "Notes (optional)", "text", "notes"),
    ]
    .map(|(name, label, kind, field)| context! { name, label, type => kind, field });
    state.pages.render(
        &state.settings,
        status,
        "desk_book.html",
        context! {
            csrf => desk.csrf.clone(),
            treatments => offered.iter().map(|t| context! { slug => t.slug.clone(), name => t.name.clone() }).collect::<Vec<_>>(),
            chosen => treatment.slug.clone(),
            questions => serialized(treatment.questions()),
            dermatologists => performers.iter().map(|p| context! { id => p.id, name => p.name.clone() }).collect::<Vec<_>>(),
            dermatologist => only,
            date => date.to_string(),
            times,
            fields => fields.to_vec(),
            form,
            errors,
            idempotency_key => crate::tokens::new_token(),
        },
    )
}

/// `GET /desk/book?treatment=&dermatologist=&date=`
pub async fn phone_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PhoneQuery>,
) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    phone_page(
        &state,
        &desk,
        query.into_inner(),
        Form::new(),
        BTreeMap::new(),
        StatusCode::OK,
    )
    .await
}

/// `POST /desk/book`: books for a phone patient, with the waivers ticked, once per
/// rendering of the form; then the booking's page.
pub async fn phone_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let mut form = form.into_inner();
    if let Err(error) = session::check_csrf(&desk, form.get("csrf")) {
        return failure(&state, error);
    }
    let query = PhoneQuery {
        treatment: form.get("treatment").cloned(),
        dermatologist: None,
        date: form.get("date").cloned(),
    };
    if let Some((dermatologist, starts_at)) = form.get("slot").and_then(|s| s.split_once('|')) {
        let (dermatologist, starts_at) = (dermatologist.to_string(), starts_at.to_string());
        form.insert("dermatologist_id".into(), dermatologist);
        form.insert("starts_at".into(), starts_at);
    }
    let slug = form.get("treatment").cloned().unwrap_or_default();
    let treatment = match state
        .read(move |conn| crate::store::treatments::active_by_slug(conn, &slug))
        .await
    {
        Ok(Some(treatment)) => treatment,
        Ok(None) => return failure(&state, ApiError::NotFound("treatment")),
        Err(error) => return failure(&state, error),
    };
    let mut errors = BTreeMap::new();
    if !form.contains_key("starts_at") {
        errors.insert("slot".to_string(), "Please choose a time".to_string());
    }
    let mut body = match super::booking::form_body(&state, &treatment, &form, false) {
        Ok(body) if errors.is_empty() => body,
        checked => {
            errors.extend(checked.err().unwrap_or_default());
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return phone_page(&state, &desk, query, form, errors, status).await;
        }
    };
    body.waive_notice = form.get("waive_notice").map(String::as_str) == Some("yes");
    body.waive_consultation = form.get("waive_consultation").map(String::as_str) == Some("yes");
    let key = form
        .get("idempotency_key")
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .cloned();
    let scope = format!("desk-page-bookings:{}", desk.user.id);
    let outcome =
        crate::api::admin_bookings::submit_by_phone(&state, &desk.user, body, key, scope).await;
    crate::instruments::booking_operation(
        "book",
        "desk_page",
        if outcome.is_ok() { "done" } else { "refused" },
    );
    match outcome {
        Ok((_, booked, _)) => {
            let id = serde_json::from_str::<serde_json::Value>(&booked)
                .ok()
                .and_then(|b| b["booking"]["id"].as_i64());
            match id {
                Some(id) => see_other(&format!("/desk/bookings/{id}")),
                None => failure(&state, ApiError::Internal(anyhow::anyhow!("no booking id"))),
            }
        }
        Err(ApiError::Validation(failed)) => {
            let errors = failed.into_iter().map(|e| (e.field, e.message)).collect();
            phone_page(
                &state,
                &desk,
                query,
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ApiError::Conflict(message)) => {
            let errors = BTreeMap::from([("slot".to_string(), message)]);
            phone_page(&state, &desk, query, form, errors, StatusCode::CONFLICT).await
        }
        Err(error) => failure(&state, error),
    }
}
