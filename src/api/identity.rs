//! Who is asking: the staff member behind a request's `Authorization: Bearer` token, and
//! extractors that check the role while the request is parsed, so a handler cannot
//! forget to. `StaffUser` admits any signed-in staff member (a dermatologist too);
//! `FrontDesk` the roles that run the clinic; `Admin` those who manage staff. An
//! integration's API key (`dbk_...`, the same header) acts as the front desk within its
//! scope, and never as an admin.

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
    /// The integration's key the request came with, instead of a person's session.
    pub api_key: Option<i64>,
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
            api_key: None,
        }
    }

    /// Who the audit log names for what this request changes.
    pub fn actor(&self) -> crate::store::audit::Actor {
        match self.api_key {
            Some(key_id) => crate::store::audit::Actor::ApiKey {
                key_id,
                created_by: self.id,
            },
            None => crate::store::audit::Actor::Staff(self.id),
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
        let (method, path) = (req.method().as_str().to_string(), req.path().to_string());
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized)?;
            let state =
                state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no application state")))?;
            if token.starts_with(crate::api::api_keys::PREFIX) {
                // A session token may start so too, rarely: it is tried as one after.
                match StaffUser::of_api_key(&state, &token, &method, &path).await {
                    Err(ApiError::Unauthorized) => {}
                    found => return found,
                }
            }
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

    /// The integration a live key names, acting as the front desk: 401 for an unknown or
    /// revoked key, 403 for a request its scope does not allow. Its use is recorded at
    /// most once a minute.
    async fn of_api_key(
        state: &AppState,
        key: &str,
        method: &str,
        path: &str,
    ) -> Result<StaffUser, ApiError> {
        let hash = token_hash(key);
        let found = state
            .read(move |conn| store::api_keys::live_by_hash(conn, &hash))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if !found.scope.allows(method, path) {
            return Err(ApiError::Forbidden);
        }
        let now = state.clock.now();
        if found
            .last_used_at
            .is_none_or(|at| now - at > chrono::Duration::seconds(60))
        {
            // Best effort: a key's request never fails for want of recording its use.
            let id = found.id;
            if let Err(error) = state
                .writing(move |conn| store::api_keys::record_use(conn, id, now))
                .await
            {
                tracing::warn!(error = %error, "an API key's last use was not recorded");
            }
        }
        Ok(StaffUser {
            id: found.created_by,
            email: String::new(),
            name: format!("API key {}", found.name),
            role: Role::FrontDesk,
            dermatologist_id: None,
            token_hash: String::new(),
            api_key: Some(found.id),
        })
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
