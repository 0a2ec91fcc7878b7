//! Staff accounts, managed by admins.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::extract::ValidJson;
use super::problem::ApiResult;
use crate::app::AppState;
use crate::auth::{NewStaff, StaffUser, create_staff};
use crate::store::staff as store;

#[derive(Serialize)]
struct StaffEntry {
    id: i64,
    email: String,
    name: String,
    role: String,
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

#[derive(Serialize)]
struct StaffList {
    staff: Vec<StaffEntry>,
}

pub async fn list(state: web::Data<AppState>, user: StaffUser) -> ApiResult<HttpResponse> {
    user.require_admin()?;
    let all = state.db(store::list).await?;
    Ok(HttpResponse::Ok().json(StaffList {
        staff: all.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/admin/staff`: a new login. A dermatologist login names its dermatologist.
pub async fn create(
    state: web::Data<AppState>,
    user: StaffUser,
    input: ValidJson<NewStaff>,
) -> ApiResult<HttpResponse> {
    user.require_admin()?;
    let created = state.db(move |conn| create_staff(conn, input.0)).await?;
    Ok(HttpResponse::Created().json(StaffEntry::from(created)))
}
