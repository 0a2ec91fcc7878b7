//! The patient's booking flow: the menu, a week of free times, the form, the review (with a
//! fresh Idempotency-Key each time it is shown, so a resubmitted confirmation books once),
//! and the confirmation, which lands on the booking's manage page.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::pages::{erased_replay, failure, refusal_in_words, serialized};
use crate::api::availability::{bookable_between, snapshot};
use crate::api::bookings::{BookingBody, local_today, submit_online};
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::booking::{self, availability::Question};
use crate::domain::local_time::LocalStamp;
use crate::store::treatments::Treatment;
use crate::store::{dermatologists, treatments};

/// What the form posts: every field by name (`screening.ID` for each answer).
type Form = BTreeMap<String, String>;

#[derive(Serialize)]
struct MenuItem {
    slug: String,
    name: String,
    description: String,
    duration_minutes: i32,
    price: String,
    sessions_min: i32,
    sessions_max: i32,
    session_interval_days: Option<i32>,
    requires_consultation: bool,
}

fn price(cents: i64, currency: &str) -> String {
    let symbol = match currency {
        "GBP" => "£",
        "EUR" => "€",
        "USD" => "$",
        _ => "",
    };
    let amount = crate::domain::catalogue::amount_text(cents);
    if symbol.is_empty() {
        format!("{amount} {currency}")
    } else {
        format!("{symbol}{amount}")
    }
}

/// `GET /`: the treatment menu.
pub async fn menu(state: web::Data<AppState>) -> HttpResponse {
    let offered = state.read(|conn| treatments::list(conn, false)).await;
    let offered = match offered {
        Ok(offered) => offered,
        Err(error) => return failure(&state, error),
    };
    let consultation_slug = offered
        .iter()
        .find(|t| t.category.as_str() == "consultation")
        .map(|t| t.slug.clone())
        .unwrap_or_default();
    let items: Vec<MenuItem> = offered
        .into_iter()
        .map(|t| MenuItem {
            price: price(t.price_cents, &t.currency),
            slug: t.slug,
            name: t.name,
            description: t.description,
            duration_minutes: t.duration_minutes,
            sessions_min: t.sessions_min,
            sessions_max: t.sessions_max,
            session_interval_days: t.session_interval_days,
            requires_consultation: t.requires_consultation,
        })
        .collect();
    state.pages.render(
        &state.settings,
        StatusCode::OK,
        "menu.html",
        context! { treatments => serialized(&items), consultation_slug },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct TimesQuery {
    pub dermatologist: Option<String>,
    pub week: Option<String>,
    pub taken: Option<String>,
}

/// Where a week of times leads: the page itself (for other weeks or another
/// dermatologist) and the page a chosen time opens; and, when a booking is being moved,
/// its current time in words.
pub(super) struct TimesLinks {
    pub here: String,
    pub choose: String,
    pub moving: Option<String>,
}

#[derive(Serialize)]
struct TimeView {
    label: String,
    /// The start for a query string: RFC 3339 with its `+` escaped.
    query: String,
}

#[derive(Serialize)]
struct DermatologistTimes {
    id: i64,
    name: String,
    times: Vec<TimeView>,
}

#[derive(Serialize)]
struct DayTimes {
    label: String,
    dermatologists: Vec<DermatologistTimes>,
}

/// The treatment and the active dermatologists who perform it, or a 404.
async fn offered(
    state: &AppState,
    slug: String,
) -> Result<(Treatment, Vec<dermatologists::Dermatologist>), ApiError> {
    state
        .read(move |conn| {
            let treatment =
                treatments::active_by_slug(conn, &slug)?.ok_or(ApiError::NotFound("treatment"))?;
            let performers = dermatologists::list(conn, false, Some(treatment.id))?;
            Ok::<_, ApiError>((treatment, performers))
        })
        .await
}

/// `GET /book/{treatment}?dermatologist=&week=`: a week of free times.
pub async fn times(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: web::Query<TimesQuery>,
) -> HttpResponse {
    let slug = slug.into_inner();
    let links = TimesLinks {
        here: format!("/book/{slug}"),
        choose: format!("/book/{slug}/details"),
        moving: None,
    };
    match week_of_times(&state, slug, query.into_inner(), links).await {
        Ok(page) => page,
        Err(error) => failure(&state, error),
    }
}

/// A week of a treatment's free times, grouped by day and dermatologist.
pub(super) async fn week_of_times(
    state: &AppState,
    slug: String,
    query: TimesQuery,
    links: TimesLinks,
) -> Result<HttpResponse, ApiError> {
    let tz = state.settings.clinic.timezone;
    let (treatment, performers) = offered(state, slug).await?;
    let chosen = query
        .dermatologist
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|id| performers.iter().any(|p| p.id == *id));
    let today = local_today(&state.settings, state.clock.now());
    let asked = query
        .week
        .as_deref()
        .and_then(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok());
    let last_day = today + Duration::days(i64::from(state.settings.booking.max_days_ahead));
    // Only weeks someone could book in: anything else is a typing mistake or a probe.
    let asked = asked.filter(|w| *w >= today - Duration::days(7) && *w <= last_day);
    let index = snapshot(state).await?;
    let week_openings = |start: NaiveDate| {
        let (earliest, latest) = bookable_between(state, start, start + Duration::days(6));
        index
            .openings(&Question {
                treatment: &treatment.slug,
                dermatologist: chosen,
                earliest,
                latest,
            })
            .unwrap_or_default()
    };
    // Without a week asked for, the first week with a free time.
    let mut week = asked.unwrap_or(today).max(today);
    let mut found = week_openings(week);
    if asked.is_none() {
        while found.is_empty() && week + Duration::days(7) <= last_day {
            week += Duration::days(7);
            found = week_openings(week);
        }
    }
    let name_of = |id: i64| {
        performers
            .iter()
            .find(|p| p.id == id)
            .map_or_else(String::new, |p| p.name.clone())
    };
    let mut days: Vec<(NaiveDate, DayTimes)> = Vec::new();
    for opening in found.iter() {
        let local = tz.from_utc_datetime(&opening.starts_at);
        let date = local.date_naive();
        if days.last().is_none_or(|(d, _)| *d != date) {
            days.push((
                date,
                DayTimes {
                    label: local.format("%A %-d %B").to_string(),
                    dermatologists: Vec::new(),
                },
            ));
        }
        let Some((_, day)) = days.last_mut() else {
            continue;
        };
        let time = TimeView {
            label: local.format("%H:%M").to_string(),
            query: LocalStamp::new(tz, opening.starts_at)
                .as_str()
                .replace('+', "%2B"),
        };
        match day
            .dermatologists
            .iter_mut()
            .find(|d| d.id == opening.dermatologist_id)
        {
            Some(d) => d.times.push(time),
            None => day.dermatologists.push(DermatologistTimes {
                id: opening.dermatologist_id,
                name: name_of(opening.dermatologist_id),
                times: vec![time],
            }),
        }
    }
    for (_, day) in &mut days {
        day.dermatologists.sort_by_key(|d| d.id);
    }
    let previous = week - Duration::days(7);
    let next = week + Duration::days(7);
    let message = query.taken.is_some().then_some(
        "Sorry, that time was taken by someone else a moment ago. Please choose another.",
    );
    let dermatologists: Vec<Value> = performers
        .iter()
        .map(|p| context! { id => p.id, name => p.name.clone() })
        .collect();
    Ok(state.pages.render(
        &state.settings,
        StatusCode::OK,
        "times.html",
        context! {
            treatment => context! { slug => treatment.slug, name => treatment.name },
            dermatologists,
            chosen,
            week => week.to_string(),
            week_label => week.format("%-d %B %Y").to_string(),
            previous_week => (week > today).then(|| previous.max(today).to_string()),
            next_week => (next <= last_day).then(|| next.to_string()),
            days => serialized(days.into_iter().map(|(_, d)| d).collect::<Vec<_>>()),
            message,
            here => links.here,
            choose => links.choose,
            moving => links.moving,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct Chosen {
    dermatologist_id: i64,
    starts_at: String,
}

/// `GET /book/{treatment}/details?dermatologist_id=&starts_at=`: the form.
pub async fn details(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    chosen: web::Query<Chosen>,
) -> HttpResponse {
    let chosen = chosen.into_inner();
    let form = Form::from([
        (
            "dermatologist_id".into(),
            chosen.dermatologist_id.to_string(),
        ),
        ("starts_at".into(), chosen.starts_at),
    ]);
    form_page(&state, slug.into_inner(), form, BTreeMap::new()).await
}

/// The form again, with `errors` (field → message) beside their fields.
async fn form_page(
    state: &AppState,
    slug: String,
    form: Form,
    errors: BTreeMap<String, String>,
) -> HttpResponse {
    let (treatment, performers) = match offered(state, slug).await {
        Ok(found) => found,
        Err(error) => return failure(state, error),
    };
    let (when, dermatologist) = describe(state, &form, &performers);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let sessions: Vec<i32> = if treatment.sessions_max > 1 {
        (treatment.sessions_min..=treatment.sessions_max).collect()
    } else {
        Vec::new()
    };
    let on_page: Vec<String> = [
        "sessions",
        "patient.name",
        "patient.email",
        "patient.phone",
        "patient.date_of_birth",
        "notes",
        "consent",
    ]
    .iter()
    .map(|f| f.to_string())
    .chain(
        treatment
            .questions()
            .into_iter()
            .map(|q| format!("screening_answers.{}", q.id)),
    )
    .collect();
    let general: Vec<String> = errors
        .iter()
        .filter(|(field, _)| !on_page.contains(field))
        .map(|(_, message)| message.clone())
        .collect();
    let fields = [
        ("name", "Full name", "text", "name", true, "patient.name"),
        ("email", "Email", "email", "email", true, "patient.email"),
        ("phone", "Phone", "tel", "tel", true, "patient.phone"),
        (
            "date_of_birth",
            "Date of birth",
            "date",
            "bday",
            true,
            "patient.date_of_birth",
        ),
        (
            "notes",
            "Anything we should know",
            "textarea",
            "off",
            false,
            "notes",
        ),
    ]
    .map(|(name, label, kind, autocomplete, required, field)| {
        context! { name, label, type => kind, autocomplete, required, field }
    });
    state.pages.render(
        &state.settings,
        status,
        "details.html",
        context! {
            questions => serialized(treatment.questions()),
            treatment => context! { slug => treatment.slug, name => treatment.name },
            sessions,
            fields => fields.to_vec(),
            form,
            errors,
            general,
            when,
            dermatologist,
        },
    )
}

/// The chosen time in words, and the dermatologist's name.
fn describe(
    state: &AppState,
    form: &Form,
    performers: &[dermatologists::Dermatologist],
) -> (String, String) {
    let tz = state.settings.clinic.timezone;
    let when = form
        .get("starts_at")
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|at| {
            at.with_timezone(&tz)
                .format("%A %-d %B %Y at %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    let dermatologist = form
        .get("dermatologist_id")
        .and_then(|id| id.parse::<i64>().ok())
        .and_then(|id| performers.iter().find(|p| p.id == id))
        .map(|p| p.name.clone())
        .unwrap_or_default();
    (when, dermatologist)
}

/// The form as the API's booking body, with the form's own checks: every screening
/// question answered, and consent given.
pub(super) fn booking_body(
    state: &AppState,
    treatment: &Treatment,
    form: &Form,
) -> Result<BookingBody, BTreeMap<String, String>> {
    form_body(state, treatment, form, true)
}

/// The form as the API's booking body; the patient's own form also needs their consent
/// (the desk's, for a phone patient, records it only if ticked).
pub(super) fn form_body(
    state: &AppState,
    treatment: &Treatment,
    form: &Form,
    consent_required: bool,
) -> Result<BookingBody, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut answers = serde_json::Map::new();
    for question in treatment.questions() {
        match form
            .get(&format!("screening.{}", question.id))
            .map(String::as_str)
        {
            Some("yes") => {
                answers.insert(question.id, true.into());
            }
            Some("no") => {
                answers.insert(question.id, false.into());
            }
            _ => {
                errors.insert(
                    format!("screening_answers.{}", question.id),
                    "Please answer yes or no".to_string(),
                );
            }
        }
    }
    if consent_required && form.get("consent").map(String::as_str) != Some("yes") {
        errors.insert(
            "consent".into(),
            "Please agree, so that we may use your answers to prepare your appointment".into(),
        );
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let optional = |name: &str| Some(field(name)).filter(|v| !v.trim().is_empty());
    let body = serde_json::json!({
        "treatment": treatment.slug,
        "dermatologist_id": field("dermatologist_id").parse::<i64>().unwrap_or_default(),
        "starts_at": field("starts_at"),
        "patient": {
            "name": field("name"),
            "email": field("email"),
            "phone": field("phone"),
            "date_of_birth": optional("date_of_birth"),
        },
        "screening_answers": answers,
        "notes": optional("notes"),
        "sessions": optional("sessions").and_then(|s| s.parse::<u32>().ok()),
        "health_data_consent": form.get("consent").map(String::as_str) == Some("yes"),
    });
    let body: BookingBody = serde_json::from_value(body).map_err(|_| {
        BTreeMap::from([(
            "starts_at".to_string(),
            "Please choose a time again".to_string(),
        )])
    })?;
    // The same checks the API makes, worded for the page by field.
    if let Err(failed) = validator::Validate::validate(&body) {
        for e in crate::api::extract::field_errors(&failed) {
            errors.entry(e.field).or_insert(e.message);
        }
    }
    let today = local_today(&state.settings, state.clock.now());
    if let Err(ApiError::Validation(failed)) = body.clone().into_request(today) {
        for e in failed {
            errors.entry(e.field).or_insert(e.message);
        }
    }
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(errors)
    }
}

async fn treatment_of(state: &AppState, slug: String) -> Result<Treatment, ApiError> {
    state
        .read(move |conn| {
            treatments::active_by_slug(conn, &slug)?.ok_or(ApiError::NotFound("treatment"))
        })
        .await
}

/// `POST /book/{treatment}/review`: the form checked, then the review page.
pub async fn review(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let (slug, form) = (slug.into_inner(), form.into_inner());
    review_page(&state, slug, form, None).await
}

/// The review of a checked form, with a fresh idempotency key; with `challenge_error`
/// when the confirmation's check that a person is booking did not pass.
async fn review_page(
    state: &AppState,
    slug: String,
    form: Form,
    challenge_error: Option<String>,
) -> HttpResponse {
    let treatment = match treatment_of(state, slug.clone()).await {
        Ok(treatment) => treatment,
        Err(error) => return failure(state, error),
    };
    if let Err(errors) = booking_body(state, &treatment, &form) {
        return form_page(state, slug, form, errors).await;
    }
    let proposed = match proposed_sessions(state, &treatment, &form).await {
        Ok(proposed) => proposed,
        Err(Refused::Field(message)) => {
            let errors = BTreeMap::from([("sessions".to_string(), message)]);
            return form_page(state, slug, form, errors).await;
        }
        Err(Refused::Page(page)) => return page,
    };
    let performers = match offered(state, slug).await {
        Ok((_, performers)) => performers,
        Err(error) => return failure(state, error),
    };
    let (when, dermatologist) = describe(state, &form, &performers);
    let challenge = &state.settings.challenge;
    // The form goes round again without its key and the widget's spent answer.
    let answers: BTreeMap<String, String> = form
        .iter()
        .filter(|(name, _)| {
            name.as_str() != "idempotency_key" && **name != challenge.response_field
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let status = if challenge_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    state.pages.render(
        &state.settings,
        status,
        "review.html",
        context! {
            questions => serialized(treatment.questions()),
            treatment => context! { slug => treatment.slug, name => treatment.name },
            form => answers,
            idempotency_key => crate::tokens::new_token(),
            proposed,
            when,
            dermatologist,
            challenge => challenge.enabled().then(|| context! {
                script_url => challenge.script_url.clone(),
                site_key => challenge.site_key.clone(),
                widget_class => challenge.widget_class.clone(),
            }),
            challenge_error,
        },
    )
}

enum Refused {
    /// What to say beside the form's field.
    Field(String),
    /// A page to answer instead.
    Page(HttpResponse),
}

/// For a course, every session's date in words, as booking it now would give them.
async fn proposed_sessions(
    state: &AppState,
    treatment: &Treatment,
    form: &Form,
) -> Result<Vec<String>, Refused> {
    let Some(sessions) = form
        .get("sessions")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 1)
    else {
        return Ok(Vec::new());
    };
    let tz = state.settings.clinic.timezone;
    let settings = state.settings.clone();
    let course = treatment.slug.clone();
    let dermatologist = form
        .get("dermatologist_id")
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or_default();
    let first = form
        .get("starts_at")
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|at| at.naive_utc())
        .unwrap_or_default();
    let planned = state
        .read(move |conn| {
            booking::proposed_sessions(conn, &settings, &course, dermatologist, first, sessions)
        })
        .await;
    match planned {
        Ok(starts) => Ok(starts
            .iter()
            .map(|at| {
                tz.from_utc_datetime(at)
                    .format("%A %-d %B %Y at %H:%M")
                    .to_string()
            })
            .collect()),
        Err(error) => match refusal_in_words(error) {
            Ok(message) => Err(Refused::Field(message)),
            Err(other) => Err(Refused::Page(failure(state, other))),
        },
    }
}

/// `POST /book/{treatment}/change`: back from the review to the filled-in form.
pub async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    form_page(
        &state,
        slug.into_inner(),
        form.into_inner(),
        BTreeMap::new(),
    )
    .await
}

/// `POST /book/{treatment}/confirm`: books once per rendering of the review page, then
/// shows the booking's manage page; a time taken meanwhile goes back to the times.
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Some(refused) = super::cross_site(&state, &req) {
        return refused;
    }
    let (slug, form) = (slug.into_inner(), form.into_inner());
    let treatment = match treatment_of(&state, slug.clone()).await {
        Ok(treatment) => treatment,
        Err(error) => return failure(&state, error),
    };
    let body = match booking_body(&state, &treatment, &form) {
        Ok(body) => body,
        Err(errors) => return form_page(&state, slug, form, errors).await,
    };
    let key = form
        .get("idempotency_key")
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .cloned();
    let answer = form
        .get(&state.settings.challenge.response_field)
        .map(String::as_str);
    let outcome = submit_online(&state, &req, body, key, "page-bookings", answer).await;
    crate::instruments::booking_operation(
        "book",
        "page",
        match &outcome {
            Ok(_) => "done",
            Err(ApiError::Conflict(_)) => "conflict",
            Err(_) => "refused",
        },
    );
    match outcome {
        Ok((410, _, _)) => erased_replay(&state),
        Ok((_, booked, _)) => {
            let token = serde_json::from_str::<serde_json::Value>(&booked)
                .ok()
                .and_then(|b| b["manage_token"].as_str().map(str::to_string));
            match token {
                Some(token) => see_other(&format!("/manage/{token}?booked=1")),
                None => failure(
                    &state,
                    ApiError::Internal(anyhow::anyhow!("no manage token")),
                ),
            }
        }
        Err(ApiError::Conflict(_)) => {
            let tz = state.settings.clinic.timezone;
            let week = form
                .get("starts_at")
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|at| at.with_timezone(&tz).date_naive())
                .map(|d| d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
                .map(|d| d.to_string())
                .unwrap_or_default();
            let dermatologist = form.get("dermatologist_id").cloned().unwrap_or_default();
            see_other(&format!(
                "/book/{slug}?week={week}&dermatologist={dermatologist}&taken=1"
            ))
        }
        Err(ApiError::Validation(failed)) if failed.iter().any(|e| e.field == "challenge") => {
            let message = failed
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" ");
            review_page(&state, slug, form, Some(message)).await
        }
        Err(ApiError::Validation(failed)) => {
            let errors = failed.into_iter().map(|e| (e.field, e.message)).collect();
            form_page(&state, slug, form, errors).await
        }
        Err(error) => failure(&state, error),
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}
