//! Staff accounts, managed by admins.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use serde::Deserialize;
use validator::Validate;

use super::extract::ValidJson;
use super::identity::{Admin, StaffUser};
use super::problem::{ApiError, ApiResult};
use crate::app::AppState;
use crate::domain::roles::Role;
use crate::staff::{self as accounts, StaffDraft, create_staff};
use crate::store::staff as store;

/// A staff account to create, from the API or from `dermabook create-staff`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    #[serde(deserialize_with = "super::extract::trimmed")]
    #[validate(email(message = "must be an email address"))]
    #[schema(format = Email)]
    pub email: String,
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub role: Role,
    #[validate(length(min = 12, max = 1024, message = "must be 12 to 1024 characters"))]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// The dermatologist a dermatologist-role login belongs to; only for that role.
    #[serde(default)]
    pub dermatologist_id: Option<i64>,
}

impl From<NewStaff> for StaffDraft {
    fn from(new: NewStaff) -> Self {
        StaffDraft {
            email: new.email,
            name: new.name,
            role: new.role,
            password: new.password,
            dermatologist_id: new.dermatologist_id,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct StaffEntry {
    id: i64,
    email: String,
    name: String,
    role: Role,
    dermatologist_id: Option<i64>,
    active: bool,
}

impl From<store::Staff> for StaffEntry {
    fn from(s: store::Staff) -> Self {
        StaffEntry {
            id: s.id,
            email: s.email,
            name: s.name,
            role: s.role,
            dermatologist_id: s.dermatologist_id,
            active: s.active,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct StaffList {
    staff: Vec<StaffEntry>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/staff",
    tag = "staff",
    description = "Staff logins. Role: admin.",
    responses((status = 200, description = "Done", body = StaffList))
)]
pub async fn list(state: web::Data<AppState>, _: Admin) -> ApiResult<HttpResponse> {
    let all = state.read(store::list).await?;
    Ok(HttpResponse::Ok().json(StaffList {
        staff: all.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/admin/staff`: a new login. A dermatologist login names its dermatologist.
#[utoipa::path(
    post,
    path = "/api/v1/admin/staff",
    tag = "staff",
    description = "Creates a staff login. Role: admin.",
    request_body = NewStaff,
    responses((status = 201, description = "Created", body = StaffEntry), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    _: Admin,
    input: ValidJson<NewStaff>,
) -> ApiResult<HttpResponse> {
    let draft = StaffDraft::from(input.0);
    // Not in the writers' queue: creating a login hashes its password (deliberately
    // slow), and no writer should wait for that; the insert is one statement.
    let created = state.read(move |conn| create_staff(conn, draft)).await?;
    Ok(HttpResponse::Created().json(StaffEntry::from(created)))
}

#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffChange {
    pub active: bool,
}

/// `PATCH /api/v1/admin/staff/{id}` `{active}`: a deactivated login's sessions end at once.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/staff/{id}",
    tag = "staff",
    description = "Deactivates (its sessions end at once) or reactivates a login; an admin's own is a 409. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = StaffChange,
    responses((status = 200, description = "Done", body = StaffEntry), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn update(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
    input: ValidJson<StaffChange>,
) -> ApiResult<HttpResponse> {
    let (id, active, now) = (id.into_inner(), input.0.active, state.clock.now());
    let changed = state
        .write(move |conn| accounts::set_active(conn, admin.id, id, active, now))
        .await?;
    Ok(HttpResponse::Ok().json(StaffEntry::from(changed)))
}

#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[validate(length(min = 12, max = 1024, message = "must be 12 to 1024 characters"))]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// `POST /api/v1/admin/staff/{id}/password` `{password}`: an admin resets a password; the
/// member's sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/admin/staff/{id}/password",
    tag = "staff",
    description = "Sets a new password; the member's sessions end. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = NewPassword,
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<i64>,
    input: ValidJson<NewPassword>,
) -> ApiResult<HttpResponse> {
    let (id, now) = (id.into_inner(), state.clock.now());
    let password = input.0.password;
    state
        .write(move |conn| accounts::reset_password(conn, id, &password, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/admin/staff/{id}/sessions`: signs a member out everywhere.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/staff/{id}/sessions",
    tag = "staff",
    description = "Signs the member out everywhere. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"))
)]
pub async fn end_sessions(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state
        .write(move |conn| accounts::end_sessions(conn, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    #[validate(length(min = 12, max = 1024, message = "must be 12 to 1024 characters"))]
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// `POST /api/v1/auth/password` `{current_password, new_password}`: anyone signed in
/// changes their own password; their other sessions end. A wrong current password
/// counts as a failed sign-in, so a stolen session cannot guess it at speed.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "staff",
    description = "Changes one's own password and ends one's other sessions; a wrong current password counts as a failed sign-in. Role: any staff.",
    request_body = PasswordChange,
    responses((status = 204, description = "Done; no body"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn change_own_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: StaffUser,
    input: ValidJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let input = input.0;
    let keys = super::auth::sign_in_keys(&state, &req, &user.email);
    super::auth::wait_out_failures(&state, &keys).await?;
    let now = state.clock.now();
    let changed = state
        .write(move |conn| {
            Ok::<_, ApiError>(accounts::change_own_password(
                conn,
                user.id,
                &user.token_hash,
                &input.current_password,
                &input.new_password,
                now,
            ))
        })
        .await?;
    match changed {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(error) => {
            if matches!(error, accounts::StaffError::WrongPassword) {
                super::auth::count_failure(&state, keys).await?;
            }
            Err(error.into())
        }
    }
}
