//! Booking for a phone patient: a treatment, a dermatologist and a day chosen by GET,
//! that day's free times, the patient's details and answers, and the desk's waivers.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Allowed, FieldErrors, Form, date_or_today, front_desk, posted, render};
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::web::booking::see_other;
use crate::web::pages::{erased_replay, failure, serialized};
use crate::web::session::Desk;

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
    errors: FieldErrors,
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
    let date = date_or_today(state, query.date.as_deref());
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
    render(
        state,
        desk,
        status,
        "desk_book.html",
        context! {
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
    let mut form = form.into_inner();
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
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
    let mut body = match crate::web::booking::form_body(&state, &treatment, &form, false) {
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
        Ok((410, _, _)) => erased_replay(&state),
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
