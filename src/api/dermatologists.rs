//! Dermatologists: the public list, the front desk's CRUD, and who performs what.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::extract::{MergePatch, ValidJson, apply_merge_patch};
use super::identity::FrontDesk;
use super::problem::{ApiError, ApiResult, FieldError};
use crate::app::AppState;
use crate::db::{self, DbConnection};
use crate::domain::catalogue::normalise_email;
use crate::store::dermatologists::{self as store, Dermatologist, DermatologistForm};
use crate::store::treatments;

/// A dermatologist as the API shows it; the email only to staff.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DermatologistView {
    pub id: i64,
    pub name: String,
    pub title: String,
    pub bio: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub active: bool,
    /// Slugs of the treatments they perform.
    pub treatments: Vec<String>,
}

fn views(
    list: Vec<Dermatologist>,
    mut slugs: HashMap<i64, Vec<String>>,
    with_email: bool,
) -> Vec<DermatologistView> {
    list.into_iter()
        .map(|d| DermatologistView {
            treatments: slugs.remove(&d.id).unwrap_or_default(),
            id: d.id,
            name: d.name,
            title: d.title,
            bio: d.bio,
            email: with_email.then_some(d.email),
            active: d.active,
        })
        .collect()
}

fn with_treatments(
    conn: &mut DbConnection,
    list: Vec<Dermatologist>,
    with_email: bool,
) -> ApiResult<Vec<DermatologistView>> {
    let ids: Vec<i64> = list.iter().map(|d| d.id).collect();
    let slugs = store::treatment_slugs(conn, &ids)?;
    Ok(views(list, slugs, with_email))
}

/// The dermatologist with this id, or a 404 problem.
pub fn dermatologist_or_404(conn: &mut DbConnection, id: i64) -> ApiResult<Dermatologist> {
    store::by_id(conn, id)?.ok_or(ApiError::NotFound("dermatologist"))
}

fn one_view(conn: &mut DbConnection, dermatologist: Dermatologist) -> ApiResult<DermatologistView> {
    with_treatments(conn, vec![dermatologist], true)?
        .pop()
        .ok_or(ApiError::NotFound("dermatologist"))
}

#[derive(Serialize, utoipa::ToSchema)]
struct DermatologistList {
    dermatologists: Vec<DermatologistView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PublicFilter {
    treatment: Option<String>,
}

/// `GET /api/v1/dermatologists[?treatment=slug]`: active dermatologists, optionally only
/// those who perform an (active) treatment.
#[utoipa::path(
    get,
    path = "/api/v1/dermatologists",
    tag = "catalogue",
    description = "Active dermatologists, optionally only those who perform a treatment; no emails.",
    params(("treatment" = Option<String>, Query, description = "A treatment's slug; an unknown one is a 404")),
    responses((status = 200, description = "Done", body = DermatologistList), (status = 404, description = "Not found"))
)]
pub async fn list_public(
    state: web::Data<AppState>,
    filter: web::Query<PublicFilter>,
) -> ApiResult<HttpResponse> {
    let treatment = filter.into_inner().treatment;
    let list = state
        .read(move |conn| {
            let treatment_id = match treatment {
                Some(slug) => Some(
                    treatments::active_by_slug(conn, &slug)?
                        .ok_or(ApiError::NotFound("treatment"))?
                        .id,
                ),
                None => None,
            };
            let list = store::list(conn, false, treatment_id)?;
            with_treatments(conn, list, false)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DermatologistList {
        dermatologists: list,
    }))
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DermatologistInput {
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub title: String,
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub bio: String,
    #[serde(deserialize_with = "crate::api::extract::trimmed")]
    #[validate(email(message = "must be an email address"))]
    #[schema(format = Email)]
    pub email: String,
    #[serde(default = "yes")]
    pub active: bool,
}

impl DermatologistInput {
    fn into_form(self) -> DermatologistForm {
        DermatologistForm {
            name: self.name.trim().to_string(),
            title: self.title.trim().to_string(),
            bio: self.bio,
            email: normalise_email(&self.email),
            active: self.active,
            updated_at: db::now(),
        }
    }

    fn from_stored(d: &Dermatologist) -> DermatologistInput {
        DermatologistInput {
            name: d.name.clone(),
            title: d.title.clone(),
            bio: d.bio.clone(),
            email: d.email.clone(),
            active: d.active,
        }
    }
}

fn email_taken(error: ApiError) -> ApiError {
    match error {
        ApiError::Conflict(_) => {
            ApiError::Conflict("another dermatologist already has this email".into())
        }
        other => other,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/dermatologists",
    tag = "catalogue (staff)",
    description = "Every dermatologist, with emails. Role: front desk or admin.",
    responses((status = 200, description = "Done", body = DermatologistList))
)]
pub async fn list_admin(state: web::Data<AppState>, _: FrontDesk) -> ApiResult<HttpResponse> {
    let list = state
        .read(|conn| {
            let list = store::list(conn, true, None)?;
            with_treatments(conn, list, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DermatologistList {
        dermatologists: list,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/dermatologists/{id}",
    tag = "catalogue (staff)",
    description = "One dermatologist. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = DermatologistView), (status = 404, description = "Not found"))
)]
pub async fn get_admin(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .read(move |conn| {
            let found = dermatologist_or_404(conn, id)?;
            one_view(conn, found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/dermatologists",
    tag = "catalogue (staff)",
    description = "Adds a dermatologist; `Location` names them. Role: front desk or admin.",
    request_body = DermatologistInput,
    responses((status = 201, description = "Created", body = DermatologistView), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    _: FrontDesk,
    input: ValidJson<DermatologistInput>,
) -> ApiResult<HttpResponse> {
    let form = input.0.into_form();
    let view = state
        .writing(move |conn| {
            let created = store::insert(conn, &form)?;
            one_view(conn, created)
        })
        .await
        .map_err(email_taken)?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/admin/dermatologists/{}", view.id),
        ))
        .json(view))
}

/// `PATCH`: a JSON merge patch; `"active": false` retires a dermatologist, keeping history.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/dermatologists/{id}",
    tag = "catalogue (staff)",
    description = "A JSON merge patch of the dermatologist's fields. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = serde_json::Value,
    responses((status = 200, description = "Done", body = DermatologistView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn update(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .write(move |conn| {
            // Locked: two patches of different fields at once both apply.
            let current =
                store::locked_by_id(conn, id)?.ok_or(ApiError::NotFound("dermatologist"))?;
            let form =
                apply_merge_patch(&DermatologistInput::from_stored(&current), patch)?.into_form();
            let updated =
                store::update(conn, id, &form)?.ok_or(ApiError::NotFound("dermatologist"))?;
            one_view(conn, updated)
        })
        .await
        .map_err(email_taken)?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE`: only a dermatologist with no slots, bookings or staff login; otherwise 409.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/dermatologists/{id}",
    tag = "catalogue (staff)",
    description = "Removes a dermatologist nothing refers to (else 409: retire them). Role: front desk or admin.",
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
                ApiError::Conflict("the dermatologist has slots, bookings or a staff login; set active to false instead".into())
            }
            other => other,
        })?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("dermatologist"))
    }
}

#[derive(Debug, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformedTreatments {
    /// Treatment slugs.
    #[validate(length(max = 200, message = "must list at most 200 treatments"))]
    #[schema(max_items = 200)]
    pub treatments: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/dermatologists/{id}/treatments",
    tag = "catalogue (staff)",
    description = "The treatments they perform. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = PerformedTreatments), (status = 404, description = "Not found"))
)]
pub async fn get_treatments(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .read(move |conn| {
            let found = dermatologist_or_404(conn, id)?;
            one_view(conn, found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(PerformedTreatments {
        treatments: view.treatments,
    }))
}

/// `PUT`: replaces the set of treatments the dermatologist performs.
#[utoipa::path(
    put,
    path = "/api/v1/admin/dermatologists/{id}/treatments",
    tag = "catalogue (staff)",
    description = "Replaces the treatments they perform. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = PerformedTreatments,
    responses((status = 200, description = "Done", body = PerformedTreatments), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn set_treatments(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    input: ValidJson<PerformedTreatments>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let slugs = input.0.treatments;
    let view = state
        .write(move |conn| set_performed(conn, id, &slugs))
        .await?;
    Ok(HttpResponse::Ok().json(PerformedTreatments {
        treatments: view.treatments,
    }))
}

/// Replaces the treatments a dermatologist performs, by slug; an unknown slug is a
/// validation error naming its place. Call inside a transaction.
pub(crate) fn set_performed(
    conn: &mut DbConnection,
    id: i64,
    slugs: &[String],
) -> ApiResult<DermatologistView> {
    let found = dermatologist_or_404(conn, id)?;
    let mut ids = Vec::with_capacity(slugs.len());
    let mut unknown = Vec::new();
    for (index, slug) in slugs.iter().enumerate() {
        match treatments::by_slug(conn, slug)? {
            Some(t) if !ids.contains(&t.id) => ids.push(t.id),
            Some(_) => {}
            None => unknown.push(FieldError::new(
                format!("treatments[{index}]"),
                format!("no treatment `{slug}`"),
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    store::set_treatments(conn, id, &ids)?;
    one_view(conn, found)
}
