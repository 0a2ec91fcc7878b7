//! The treatments for the desk (`/desk/treatments`): the menu with who performs each,
//! and a form to add or change one, under the API's rules. Who performs what is set per
//! dermatologist on the calendar page.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::{Value, context};

use super::{Allowed, FieldErrors, Form, front_desk, posted, render};
use crate::api::problem::ApiError;
use crate::api::treatments::{TreatmentInput, save};
use crate::app::AppState;
use crate::domain::catalogue::{Category, ScreeningQuestion, amount_text, parse_amount};
use crate::store::treatments::Treatment;
use crate::web::booking::see_other;
use crate::web::pages::{failure, serialized};
use crate::web::session::Desk;

/// Empty question rows the form offers.
const BLANK_QUESTIONS: usize = 2;
/// The most question rows the form takes: as many as a treatment may ask.
const MAX_QUESTIONS: usize = crate::domain::catalogue::MAX_SCREENING_QUESTIONS;

/// `GET /desk/treatments`
pub async fn treatments(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let found = state
        .read(|conn| {
            let treatments = crate::store::treatments::list(conn, true)?;
            let people = crate::store::dermatologists::list(conn, false, None)?;
            let ids: Vec<i64> = people.iter().map(|d| d.id).collect();
            let slugs = crate::store::dermatologists::treatment_slugs(conn, &ids)?;
            Ok::<_, ApiError>((treatments, people, slugs))
        })
        .await;
    let (treatments, people, slugs) = match found {
        Ok(found) => found,
        Err(error) => return failure(&state, error),
    };
    let performers = |slug: &str| {
        people
            .iter()
            .filter(|d| {
                slugs
                    .get(&d.id)
                    .is_some_and(|s| s.iter().any(|s| s == slug))
            })
            .map(|d| d.name.clone())
            .collect::<Vec<_>>()
    };
    let rows: Vec<Value> = treatments
        .iter()
        .map(|t| {
            context! {
                id => t.id,
                name => t.name.clone(),
                category => t.category.as_str(),
                duration_minutes => t.duration_minutes,
                price => format!("{} {}", amount_text(t.price_cents), t.currency),
                sessions => if t.sessions_max > 1 { format!("{} to {}", t.sessions_min, t.sessions_max) } else { "1".to_string() },
                requires_consultation => t.requires_consultation,
                active => t.active,
                performers => performers(&t.slug),
            }
        })
        .collect();
    render(
        &state,
        &desk,
        StatusCode::OK,
        "desk_treatments.html",
        context! { treatments => rows },
    )
}

/// The form's fields as a stored treatment fills them.
fn form_of(t: &Treatment) -> Form {
    let mut form = Form::from([
        ("slug".into(), t.slug.clone()),
        ("name".into(), t.name.clone()),
        ("category".into(), t.category.as_str().into()),
        ("description".into(), t.description.clone()),
        ("duration_minutes".into(), t.duration_minutes.to_string()),
        ("buffer_minutes".into(), t.buffer_minutes.to_string()),
        ("price".into(), amount_text(t.price_cents)),
        ("currency".into(), t.currency.clone()),
        ("sessions_min".into(), t.sessions_min.to_string()),
        ("sessions_max".into(), t.sessions_max.to_string()),
        (
            "session_interval_days".into(),
            t.session_interval_days
                .map_or_else(String::new, |d| d.to_string()),
        ),
        ("preparation".into(), t.preparation.clone()),
        ("aftercare".into(), t.aftercare.clone()),
    ]);
    if t.requires_consultation {
        form.insert("requires_consultation".into(), "yes".into());
    }
    if t.active {
        form.insert("active".into(), "yes".into());
    }
    for (i, q) in t.questions().into_iter().enumerate() {
        form.insert(format!("question_id.{i}"), q.id);
        form.insert(format!("question_text.{i}"), q.text);
    }
    form
}

/// The form as the API's input, or the fields it could not read, by name.
fn input_of(form: &Form) -> Result<TreatmentInput, FieldErrors> {
    let text = |name: &str| form.get(name).map_or("", |v| v.trim()).to_string();
    let ticked = |name: &str| form.get(name).map(String::as_str) == Some("yes");
    let mut errors = FieldErrors::new();
    let mut number = |name: &str, words: &str| match text(name).parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            errors.insert(name.to_string(), format!("Give {words} as a whole number."));
            0
        }
    };
    let duration_minutes = number("duration_minutes", "the duration in minutes");
    let buffer_minutes = number("buffer_minutes", "the minutes kept free after it");
    let sessions_min = number("sessions_min", "the fewest sessions");
    let sessions_max = number("sessions_max", "the most sessions");
    let interval = text("session_interval_days");
    let session_interval_days = if interval.is_empty() {
        None
    } else {
        Some(number("session_interval_days", "the days between sessions"))
    };
    let price_cents = parse_amount(&text("price")).unwrap_or_else(|| {
        errors.insert(
            "price".into(),
            "Give the price as an amount, such as 95 or 95.50.".into(),
        );
        0
    });
    let category = Category::parse(&text("category")).unwrap_or_else(|| {
        errors.insert("category".into(), "Choose a category.".into());
        Category::Consultation
    });
    let screening_questions: Vec<ScreeningQuestion> = (0..MAX_QUESTIONS)
        .map(|i| {
            (
                text(&format!("question_id.{i}")),
                text(&format!("question_text.{i}")),
            )
        })
        .filter(|(id, question)| !id.is_empty() || !question.is_empty())
        .map(|(id, text)| ScreeningQuestion { id, text })
        .collect();
    let input = TreatmentInput {
        slug: text("slug"),
        name: text("name"),
        category,
        description: text("description"),
        duration_minutes,
        buffer_minutes,
        price_cents,
        currency: text("currency").to_uppercase(),
        sessions_min,
        sessions_max,
        session_interval_days,
        requires_consultation: ticked("requires_consultation"),
        preparation: text("preparation"),
        aftercare: text("aftercare"),
        screening_questions,
        active: ticked("active"),
    };
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

/// The API's field names as the form's: the price is typed in major units, and every
/// question problem is shown beside the questions.
fn form_field(field: &str) -> String {
    match field {
        "price_cents" => "price".into(),
        f if f.starts_with("screening_questions") => "questions".into(),
        f => f.into(),
    }
}

async fn treatment_page(
    state: &AppState,
    desk: &Desk,
    id: Option<i64>,
    form: Form,
    errors: FieldErrors,
    status: StatusCode,
) -> HttpResponse {
    let filled = |i: &usize| {
        ["question_id", "question_text"].iter().any(|name| {
            form.get(&format!("{name}.{i}"))
                .is_some_and(|v| !v.trim().is_empty())
        })
    };
    let questions = (0..MAX_QUESTIONS)
        .rev()
        .find(filled)
        .map_or(0, |last| last + 1)
        + BLANK_QUESTIONS;
    render(
        state,
        desk,
        status,
        "desk_treatment.html",
        context! {
            id,
            categories => Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            questions => (0..questions).collect::<Vec<_>>(),
            form => serialized(form),
            errors => serialized(errors),
        },
    )
}

/// `GET /desk/treatments/new`
pub async fn new_treatment(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    // The clinic prices in one currency: the one its menu already uses.
    let currency = match state
        .read(|conn| crate::store::treatments::list(conn, true))
        .await
    {
        Ok(menu) => menu
            .first()
            .map_or_else(String::new, |t| t.currency.clone()),
        Err(error) => return failure(&state, error),
    };
    let form = Form::from([
        ("currency".into(), currency),
        ("sessions_min".into(), "1".into()),
        ("sessions_max".into(), "1".into()),
        ("buffer_minutes".into(), "0".into()),
        ("active".into(), "yes".into()),
    ]);
    treatment_page(
        &state,
        &desk,
        None,
        form,
        FieldErrors::new(),
        StatusCode::OK,
    )
    .await
}

/// `GET /desk/treatments/{id}`
pub async fn treatment(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let id = id.into_inner();
    let found = state
        .read(move |conn| crate::store::treatments::by_id(conn, id))
        .await;
    match found {
        Ok(Some(t)) => {
            treatment_page(
                &state,
                &desk,
                Some(id),
                form_of(&t),
                BTreeMap::new(),
                StatusCode::OK,
            )
            .await
        }
        Ok(None) => failure(&state, ApiError::NotFound("treatment")),
        Err(error) => failure(&state, error),
    }
}

/// `POST /desk/treatments`: adds one.
pub async fn add_treatment(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    save_treatment(&state, &req, None, form.into_inner()).await
}

/// `POST /desk/treatments/{id}`: changes one.
pub async fn change_treatment(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    save_treatment(&state, &req, Some(id.into_inner()), form.into_inner()).await
}

/// Saves the treatment whole, then the menu; a refusal shows the form again with each
/// problem beside its field.
async fn save_treatment(
    state: &AppState,
    req: &HttpRequest,
    id: Option<i64>,
    form: Form,
) -> HttpResponse {
    let desk = match posted(state, req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let input = match input_of(&form) {
        Ok(input) => input,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return treatment_page(state, &desk, id, form, errors, status).await;
        }
    };
    let saved = state.write(move |conn| save(conn, id, input)).await;
    let (errors, status) = match saved {
        Ok(_) => return see_other("/desk/treatments"),
        Err(ApiError::Validation(failed)) => (
            failed
                .into_iter()
                .map(|e| (form_field(&e.field), e.message))
                .collect(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ApiError::Conflict(message)) => (
            FieldErrors::from([("slug".to_string(), message)]),
            StatusCode::CONFLICT,
        ),
        Err(error) => return failure(state, error),
    };
    treatment_page(state, &desk, id, form, errors, status).await
}
