//! Who is asking: the staff member behind a request's `Authorization: Bearer` token, and
//! extractors that check the role while the request is parsed, so a handler cannot
//! forget to. `StaffUser` admits any signed-in staff member (a dermatologist too);
//! `FrontDesk` the roles that run the clinic; `Admin` those who manage staff.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::problem::ApiError;
use crate::app::AppState;
use crate::domain::roles::Role;
use crate::store;
use crate::store::staff::Staff;
use crate::tokens::token_hash;

/// The signed-in staff member of a request.
#[derive(Debug, Clone)]
pub struct StaffUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub dermatologist_id: Option<i64>,
    pub token_hash: String,
}

impl StaffUser {
    /// The signed-in view of a stored staff row and the hash of its session token.
    pub fn from_staff(staff: Staff, token_hash: String) -> StaffUser {
        StaffUser {
            id: staff.id,
            email: staff.email,
            name: staff.name,
            role: staff.role,
            dermatologist_id: staff.dermatologist_id,
            token_hash,
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

impl FromRequest for StaffUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized)?;
            let state =
                state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no application state")))?;
            StaffUser::of_session(&state, &token).await
        })
    }
}

impl StaffUser {
    /// The staff member whose live session `token` names (a bearer token, or the desk's
    /// cookie); 401 for none.
    pub async fn of_session(state: &AppState, token: &str) -> Result<StaffUser, ApiError> {
        let hash = token_hash(token);
        let now = state.clock.now();
        let found = state
            .read(move |conn| store::staff::by_session_token(conn, &hash, now))
            .await?;
        let (staff, token_hash) = found.ok_or(ApiError::Unauthorized)?;
        Ok(StaffUser::from_staff(staff, token_hash))
    }
}

/// An extractor that admits a signed-in staff member whose role passes `$admits`: 401
/// without a valid token, 403 for another role.
macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $admits:path) => {
        $(#[$doc])*
        pub struct $name(pub StaffUser);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let user = StaffUser::from_request(req, payload);
                Box::pin(async move {
                    let user = user.await?;
                    if $admits(user.role) {
                        Ok($name(user))
                    } else {
                        Err(ApiError::Forbidden)
                    }
                })
            }
        }
    };
}

role_extractor!(
    /// An admin or the front desk: the roles that run the clinic's day.
    FrontDesk,
    Role::runs_the_clinic
);
role_extractor!(
    /// An admin: manages staff logins.
    Admin,
    Role::manages_staff
);
