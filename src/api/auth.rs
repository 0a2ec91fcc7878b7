//! Staff sign-in and sign-out. Failures say nothing about which part was wrong.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::extract::ValidJson;
use super::identity::StaffUser;
use super::problem::{ApiError, ApiResult};
use crate::app::AppState;
use crate::domain::catalogue::normalise_email;
use crate::domain::roles::sign_in_delay;
use crate::staff::{decoy_hash, verify_password};
use crate::store::login_failures;
use crate::store::staff as store;
use crate::tokens::{new_token, token_hash};

#[derive(Debug, Deserialize, Validate)]
pub struct LoginInput {
    #[validate(length(min = 1, max = 320, message = "is required"))]
    email: String,
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    password: String,
}

#[derive(Debug, Serialize)]
pub struct StaffView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub dermatologist_id: Option<i64>,
}

impl From<&StaffUser> for StaffView {
    fn from(user: &StaffUser) -> Self {
        StaffView {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.as_str(),
            dermatologist_id: user.dermatologist_id,
        }
    }
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_at: String,
    staff: StaffView,
}

fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339()
}

/// The most an account, and an address, waits between sign-in attempts after failures.
const ACCOUNT_DELAY_CAP: i64 = 60;
const ADDRESS_DELAY_CAP: i64 = 15 * 60;

/// `POST /api/v1/auth/login`: `{email, password}` → a bearer token. Rate limited per
/// client address; after repeated failures each account and each address waits a
/// growing delay (kept in the database); an unknown email costs as much time as a
/// wrong password.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    input: ValidJson<LoginInput>,
) -> ApiResult<HttpResponse> {
    let input = input.0;
    let email = normalise_email(&input.email);
    let now = state.clock.now();
    let expires_at = now + Duration::hours(i64::from(state.settings.auth.session_hours));
    let client = state
        .client
        .of(&req)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let keys = [
        (format!("account:{email}"), ACCOUNT_DELAY_CAP),
        (format!("address:{client}"), ADDRESS_DELAY_CAP),
    ];
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    if let Some(until) = state
        .read(move |conn| login_failures::waiting_until(conn, &names, now))
        .await?
    {
        let wait = u64::try_from((until - now).num_seconds()).unwrap_or(1);
        return Err(ApiError::TooManyRequests(wait));
    }
    let account = email.clone();
    let signed_in = state
        .read(move |conn| {
            let found = store::by_email(conn, &account)?;
            let hash = found
                .as_ref()
                .map_or(decoy_hash(), |s| s.password_hash.as_str());
            let password_ok = verify_password(&input.password, hash);
            let staff = match found {
                Some(staff) if password_ok && staff.active => staff,
                _ => return Ok::<_, ApiError>(None),
            };
            let token = new_token();
            let hash = token_hash(&token);
            store::insert_session(conn, staff.id, &hash, expires_at)?;
            Ok(Some((
                StaffUser::from_staff(staff, hash),
                token,
                expires_at,
            )))
        })
        .await?;
    let Some((user, token, expires_at)) = signed_in else {
        tracing::warn!(account = %email, client = %client, "sign-in failed");
        state
            .write(move |conn| {
                for (key, cap) in &keys {
                    let failures = login_failures::failures(conn, key)?.saturating_add(1);
                    let delay = sign_in_delay(
                        u32::try_from(failures).unwrap_or(u32::MAX),
                        Duration::seconds(*cap),
                    );
                    login_failures::record(conn, key, failures, now + delay, now)?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        return Err(ApiError::Unauthorized);
    };
    state
        .write(move |conn| {
            for (key, _) in &keys {
                login_failures::clear(conn, key)?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    tracing::info!(staff = user.id, "staff signed in");
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        token_type: "Bearer",
        expires_at: rfc3339(expires_at),
        staff: StaffView::from(&user),
    }))
}

/// `POST /api/v1/auth/logout`: ends the session whose token came with the request.
pub async fn logout(state: web::Data<AppState>, user: StaffUser) -> ApiResult<HttpResponse> {
    let hash = user.token_hash.clone();
    state
        .read(move |conn| store::delete_session(conn, &hash))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/auth/me`: who the token belongs to.
pub async fn me(user: StaffUser) -> HttpResponse {
    HttpResponse::Ok().json(StaffView::from(&user))
}
