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

#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(example = json!({"email": "frontdesk@harbourskin.example", "password": "demo-front-desk"}))]
pub struct LoginInput {
    #[validate(length(min = 1, max = 320, message = "is required"))]
    #[schema(min_length = 1, max_length = 320)]
    email: String,
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    #[schema(min_length = 1, max_length = 1024)]
    password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Serialize, utoipa::ToSchema)]
struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_at: String,
    staff: StaffView,
}

fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339()
}

/// The most an account waits between sign-ins after failures, from anywhere: short, so
/// that no one can keep the desk out by failing on purpose; and the most one address
/// (an IPv6 /64) waits, long, since that is the guesser.
const ACCOUNT_DELAY_CAP: i64 = 5;
const ADDRESS_DELAY_CAP: i64 = 15 * 60;

/// The delay keys of an attempt on `email` from the request's client.
pub fn sign_in_keys(state: &AppState, req: &HttpRequest, email: &str) -> [(String, i64); 2] {
    let client = state
        .client
        .of(req)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    [
        (format!("account:{email}"), ACCOUNT_DELAY_CAP),
        (format!("address:{client}"), ADDRESS_DELAY_CAP),
    ]
}

/// A 429 while any of `keys` still waits after earlier failures.
pub async fn wait_out_failures(state: &AppState, keys: &[(String, i64); 2]) -> ApiResult<()> {
    let now = state.clock.now();
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    match state
        .read(move |conn| login_failures::waiting_until(conn, &names, now))
        .await?
    {
        Some(until) => Err(ApiError::TooManyRequests(
            u64::try_from((until - now).num_seconds()).unwrap_or(1),
        )),
        None => Ok(()),
    }
}

/// Counts a failed password against each key, which then waits a growing delay.
pub async fn count_failure(state: &AppState, keys: [(String, i64); 2]) -> ApiResult<()> {
    let now = state.clock.now();
    state
        .write(move |conn| {
            for (key, cap) in &keys {
                let failures = login_failures::count_failure(conn, key, now)?;
                let delay = sign_in_delay(
                    u32::try_from(failures).unwrap_or(u32::MAX),
                    Duration::seconds(*cap),
                );
                login_failures::wait_until(conn, key, now + delay)?;
            }
            Ok::<_, ApiError>(())
        })
        .await
}

/// `POST /api/v1/auth/login`: `{email, password}` → a bearer token. Rate limited per
/// client address; after repeated failures each account and each address waits a
/// growing delay (kept in the database); an unknown email costs as much time as a
/// wrong password. The password is checked off the database pool, so slow hashing
/// holds no connection.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "staff",
    description = "Signs in; 401 whatever was wrong; 429 when the address tried too often or the account or address failed repeatedly.",
    request_body = LoginInput,
    responses((status = 200, description = "Done", body = LoginResponse), (status = 401, description = "No valid staff token"))
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    input: ValidJson<LoginInput>,
) -> ApiResult<HttpResponse> {
    let input = input.0;
    let signed_in = sign_in(&state, &req, &input.email, input.password).await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        token: signed_in.token,
        token_type: "Bearer",
        expires_at: rfc3339(signed_in.expires_at),
        staff: StaffView::from(&signed_in.user),
    }))
}

/// A new staff session: its token (only its hash is stored), who, and until when.
pub struct SignedIn {
    pub token: String,
    pub user: StaffUser,
    pub expires_at: chrono::NaiveDateTime,
}

/// Checks an email and password as the API and the desk's sign-in page both do: the
/// delays after failures first, an unknown email as slow as a wrong password, the hash
/// checked off the database pool; then a session in `staff_sessions`, which ending a
/// session or deactivating the account revokes at once.
pub async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    email: &str,
    password: String,
) -> ApiResult<SignedIn> {
    let email = normalise_email(email);
    let keys = sign_in_keys(state, req, &email);
    wait_out_failures(state, &keys).await?;
    let account = email.clone();
    let found = state
        .read(move |conn| store::by_email(conn, &account))
        .await?;
    let hash = found
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |s| s.password_hash.clone());
    let password_ok = web::block(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check: {e}")))?;
    let staff = match found {
        Some(staff) if password_ok && staff.active => staff,
        found => {
            // The account by its id, never what was typed: that may be a password.
            let account = found.map_or_else(|| "unknown".to_string(), |s| s.id.to_string());
            let client = keys[1].0.trim_start_matches("address:").to_string();
            tracing::warn!(account, client, "sign-in failed");
            count_failure(state, keys).await?;
            return Err(ApiError::Unauthorized);
        }
    };
    let now = state.clock.now();
    let expires_at = now + Duration::hours(i64::from(state.settings.auth.session_hours));
    let token = new_token();
    let session = token_hash(&token);
    let user = StaffUser::from_staff(staff, session.clone());
    let staff_id = user.id;
    state
        .write(move |conn| {
            store::insert_session(conn, staff_id, &session, expires_at)?;
            for (key, _) in &keys {
                login_failures::clear(conn, key)?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    tracing::info!(staff = user.id, "staff signed in");
    Ok(SignedIn {
        token,
        user,
        expires_at,
    })
}

/// `POST /api/v1/auth/logout`: ends the session whose token came with the request.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "staff",
    description = "Ends the session whose token came with the request. Role: any staff.",
    responses((status = 204, description = "Done; no body"))
)]
pub async fn logout(state: web::Data<AppState>, user: StaffUser) -> ApiResult<HttpResponse> {
    let hash = user.token_hash.clone();
    state
        .read(move |conn| store::delete_session(conn, &hash))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/auth/me`: who the token belongs to.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "staff",
    description = "The signed-in staff member. Role: any staff.",
    responses((status = 200, description = "Done", body = StaffView))
)]
pub async fn me(user: StaffUser) -> Result<HttpResponse, ApiError> {
    // A key is not a person: it has no account to describe.
    if user.api_key.is_some() {
        return Err(ApiError::Forbidden);
    }
    Ok(HttpResponse::Ok().json(StaffView::from(&user)))
}
