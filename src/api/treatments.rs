//! Treatments: the public menu, and the front desk's CRUD of it.

use std::borrow::Cow;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use super::extract::{MergePatch, ValidJson, apply_merge_patch, field_errors};
use super::identity::FrontDesk;
use super::problem::{ApiError, ApiResult};
use crate::app::AppState;
use crate::db::{self, DbConnection};
use crate::domain::catalogue::{self, Category, ScreeningQuestion};
use crate::store::treatments::{self as store, Treatment, TreatmentForm};

/// A treatment as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TreatmentView {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub category: Category,
    pub description: String,
    pub duration_minutes: i32,
    pub buffer_minutes: i32,
    pub price_cents: i64,
    pub currency: String,
    pub sessions_min: i32,
    pub sessions_max: i32,
    pub session_interval_days: Option<i32>,
    pub requires_consultation: bool,
    pub preparation: String,
    pub aftercare: String,
    pub screening_questions: Vec<ScreeningQuestion>,
    pub active: bool,
}

impl From<Treatment> for TreatmentView {
    fn from(t: Treatment) -> Self {
        let screening_questions = t.questions();
        TreatmentView {
            id: t.id,
            slug: t.slug,
            name: t.name,
            category: t.category,
            description: t.description,
            duration_minutes: t.duration_minutes,
            buffer_minutes: t.buffer_minutes,
            price_cents: t.price_cents,
            currency: t.currency,
            sessions_min: t.sessions_min,
            sessions_max: t.sessions_max,
            session_interval_days: t.session_interval_days,
            requires_consultation: t.requires_consultation,
            preparation: t.preparation,
            aftercare: t.aftercare,
            screening_questions,
            active: t.active,
        }
    }
}

fn message(code: &'static str, text: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(text))
}

fn check_slug(slug: &str) -> Result<(), ValidationError> {
    if catalogue::is_valid_slug(slug) {
        Ok(())
    } else {
        Err(message(
            "slug",
            "must be lower-case words of a-z and 0-9 joined by single hyphens",
        ))
    }
}

fn check_currency(code: &str) -> Result<(), ValidationError> {
    if catalogue::is_valid_currency(code) {
        Ok(())
    } else {
        Err(message("currency", "must be an ISO 4217 code such as GBP"))
    }
}

fn check_questions(questions: &[ScreeningQuestion]) -> Result<(), ValidationError> {
    match catalogue::screening_questions_problem(questions) {
        None => Ok(()),
        Some(problem) => {
            Err(ValidationError::new("screening_questions").with_message(Cow::Owned(problem)))
        }
    }
}

fn one() -> i32 {
    1
}

fn yes() -> bool {
    true
}

/// What the front desk sends to create a treatment, and what a PATCH is merged into.
#[derive(Debug, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TreatmentInput {
    #[validate(custom(function = "check_slug"))]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: String,
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub category: Category,
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: String,
    #[validate(range(min = 5, max = 600, message = "must be 5 to 600 minutes"))]
    #[schema(minimum = 5, maximum = 600)]
    pub duration_minutes: i32,
    #[serde(default)]
    #[validate(range(min = 0, max = 240, message = "must be 0 to 240 minutes"))]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_minutes: i32,
    #[validate(range(min = 0, max = 100_000_000, message = "must be 0 to 100000000"))]
    #[schema(minimum = 0, maximum = 100000000)]
    pub price_cents: i64,
    #[validate(custom(function = "check_currency"))]
    #[schema(pattern = r"^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default = "one")]
    #[validate(range(min = 1, max = 20, message = "must be 1 to 20"))]
    #[schema(minimum = 1, maximum = 20)]
    pub sessions_min: i32,
    #[serde(default = "one")]
    #[validate(range(min = 1, max = 20, message = "must be 1 to 20"))]
    #[schema(minimum = 1, maximum = 20)]
    pub sessions_max: i32,
    #[serde(default)]
    #[validate(range(min = 1, max = 365, message = "must be 1 to 365 days"))]
    #[schema(minimum = 1, maximum = 365)]
    pub session_interval_days: Option<i32>,
    #[serde(default)]
    pub requires_consultation: bool,
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub preparation: String,
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub aftercare: String,
    #[serde(default)]
    #[validate(custom(function = "check_questions"))]
    #[schema(max_items = 50)]
    pub screening_questions: Vec<ScreeningQuestion>,
    #[serde(default = "yes")]
    pub active: bool,
}

impl TreatmentInput {
    /// Rules across fields, then the row to write.
    fn into_form(self) -> ApiResult<TreatmentForm> {
        if self.sessions_max < self.sessions_min {
            return Err(ApiError::invalid(
                "sessions_max",
                "must not be below sessions_min",
            ));
        }
        if self.sessions_max > 1 && self.session_interval_days.is_none() {
            return Err(ApiError::invalid(
                "session_interval_days",
                "is required when a course has several sessions",
            ));
        }
        Ok(TreatmentForm {
            screening_questions: serde_json::to_string(&self.screening_questions)
                .map_err(|e| ApiError::Internal(e.into()))?,
            slug: self.slug,
            name: self.name.trim().to_string(),
            category: self.category,
            description: self.description,
            duration_minutes: self.duration_minutes,
            buffer_minutes: self.buffer_minutes,
            price_cents: self.price_cents,
            currency: self.currency,
            sessions_min: self.sessions_min,
            sessions_max: self.sessions_max,
            session_interval_days: self.session_interval_days,
            requires_consultation: self.requires_consultation,
            preparation: self.preparation,
            aftercare: self.aftercare,
            active: self.active,
            updated_at: db::now(),
        })
    }

    pub(crate) fn from_stored(t: &Treatment) -> ApiResult<TreatmentInput> {
        Ok(TreatmentInput {
            slug: t.slug.clone(),
            name: t.name.clone(),
            category: t.category,
            description: t.description.clone(),
            duration_minutes: t.duration_minutes,
            buffer_minutes: t.buffer_minutes,
            price_cents: t.price_cents,
            currency: t.currency.clone(),
            sessions_min: t.sessions_min,
            sessions_max: t.sessions_max,
            session_interval_days: t.session_interval_days,
            requires_consultation: t.requires_consultation,
            preparation: t.preparation.clone(),
            aftercare: t.aftercare.clone(),
            screening_questions: t.questions(),
            active: t.active,
        })
    }
}

/// Saves a treatment written whole: a new one, or the one with `id`. The input's field
/// rules, then those across fields; a slug another treatment has is a conflict.
pub(crate) fn save(
    conn: &mut DbConnection,
    id: Option<i64>,
    input: TreatmentInput,
) -> ApiResult<Treatment> {
    input
        .validate()
        .map_err(|e| ApiError::Validation(field_errors(&e)))?;
    let form = input.into_form()?;
    let saved = match id {
        None => store::insert(conn, &form).map_err(ApiError::from),
        Some(id) => store::update(conn, id, &form)
            .map_err(ApiError::from)
            .and_then(|t| t.ok_or(ApiError::NotFound("treatment"))),
    };
    saved.map_err(slug_taken)
}

fn slug_taken(error: ApiError) -> ApiError {
    match error {
        ApiError::Conflict(_) => {
            ApiError::Conflict("another treatment already has this slug".into())
        }
        other => other,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TreatmentList {
    treatments: Vec<TreatmentView>,
}

/// `GET /api/v1/treatments`: the active menu.
#[utoipa::path(
    get,
    path = "/api/v1/treatments",
    tag = "catalogue",
    description = "The active menu.",
    responses((status = 200, description = "Done", body = TreatmentList))
)]
pub async fn list_public(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let treatments = state.read(|conn| store::list(conn, false)).await?;
    Ok(HttpResponse::Ok().json(TreatmentList {
        treatments: treatments.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/treatments/{slug}`: one active treatment.
#[utoipa::path(
    get,
    path = "/api/v1/treatments/{slug}",
    tag = "catalogue",
    description = "One active treatment by its slug.",
    params(("slug" = String, Path, description = "The treatment's slug")),
    responses((status = 200, description = "Done", body = TreatmentView), (status = 404, description = "Not found"))
)]
pub async fn get_public(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let slug = slug.into_inner();
    let treatment = state
        .read(move |conn| store::active_by_slug(conn, &slug))
        .await?
        .ok_or(ApiError::NotFound("treatment"))?;
    Ok(HttpResponse::Ok().json(TreatmentView::from(treatment)))
}

/// `GET /api/v1/admin/treatments`: every treatment, inactive ones too.
#[utoipa::path(
    get,
    path = "/api/v1/admin/treatments",
    tag = "catalogue (staff)",
    description = "Every treatment, inactive ones too. Role: front desk or admin.",
    responses((status = 200, description = "Done", body = TreatmentList))
)]
pub async fn list_admin(state: web::Data<AppState>, _: FrontDesk) -> ApiResult<HttpResponse> {
    let treatments = state.read(|conn| store::list(conn, true)).await?;
    Ok(HttpResponse::Ok().json(TreatmentList {
        treatments: treatments.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/treatments/{id}",
    tag = "catalogue (staff)",
    description = "One treatment. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = TreatmentView), (status = 404, description = "Not found"))
)]
pub async fn get_admin(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let treatment = state
        .read(move |conn| store::by_id(conn, id))
        .await?
        .ok_or(ApiError::NotFound("treatment"))?;
    Ok(HttpResponse::Ok().json(TreatmentView::from(treatment)))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/treatments",
    tag = "catalogue (staff)",
    description = "Adds a treatment; `Location` names it. Role: front desk or admin.",
    request_body = TreatmentInput,
    responses((status = 201, description = "Created", body = TreatmentView), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    _: FrontDesk,
    input: ValidJson<TreatmentInput>,
) -> ApiResult<HttpResponse> {
    let created = state.write(move |conn| save(conn, None, input.0)).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/admin/treatments/{}", created.id),
        ))
        .json(TreatmentView::from(created)))
}

/// `PATCH`: a JSON merge patch; `"active": false` retires a treatment and keeps history.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/treatments/{id}",
    tag = "catalogue (staff)",
    description = "A JSON merge patch (RFC 7396) of the treatment's fields, checked as a whole by the create rules; `\"active\": false` retires it. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = serde_json::Value,
    responses((status = 200, description = "Done", body = TreatmentView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn update(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let updated = state
        .write(move |conn| {
            // Locked: two patches of different fields at once both apply.
            let current = store::locked_by_id(conn, id)?.ok_or(ApiError::NotFound("treatment"))?;
            let patched = apply_merge_patch(&TreatmentInput::from_stored(&current)?, patch)?;
            save(conn, Some(id), patched)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TreatmentView::from(updated)))
}

/// `DELETE`: only a treatment nothing was ever booked for; otherwise 409 (deactivate it).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/treatments/{id}",
    tag = "catalogue (staff)",
    description = "Removes a treatment no booking refers to (else 409: retire it). Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn delete(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let deleted = state
        .writing(move |conn| store::delete(conn, id))
        .await
        .map_err(|e| match e {
            ApiError::Conflict(_) => {
                ApiError::Conflict("the treatment has bookings; set active to false instead".into())
            }
            other => other,
        })?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("treatment"))
    }
}
