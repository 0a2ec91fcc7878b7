//! Staff authentication: argon2id password hashes, bearer session tokens stored only as
//! hashes, and the extractor that turns a request's token into the signed-in staff member.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use serde::Deserialize;
use validator::Validate;

use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::db::DbConnection;
use crate::domain::catalogue::normalise_email;
use crate::domain::roles::Role;
use crate::store;
use crate::store::staff::{Staff, StaffInsertForm};

/// Hashes a password with argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks a password against a stored hash. An unreadable hash simply does not match.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the email is unknown, so that an unknown email takes as
/// long to refuse as a wrong password and the timing tells nothing.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password never used").expect("argon2 hashes a constant")
    })
}

/// A fresh secret token: 256 random bits, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token: its SHA-256, hex. The token is random enough that no salt
/// or slow hash is needed, and a fast hash lets a lookup use the unique index.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A booking's manage token: HMAC-SHA256 of its reference under the server's secret,
/// 256 bits no one can guess without the secret. The database stores only the token's
/// SHA-256 (as for staff tokens), yet every email, including reminders written long
/// after the booking, can carry the patient's link.
pub fn manage_token(secret: &str, reference: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"dermabook manage link v1:");
    mac.update(reference.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The staff member behind a request's `Authorization: Bearer` token.
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
    pub fn from_staff(staff: Staff, token_hash: String) -> Result<StaffUser, ApiError> {
        let role = Role::parse(&staff.role).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("staff {} has unknown role", staff.id))
        })?;
        Ok(StaffUser {
            id: staff.id,
            email: staff.email,
            name: staff.name,
            role,
            dermatologist_id: staff.dermatologist_id,
            token_hash,
        })
    }

    /// Passes when the role may run the clinic (admin, front desk); 403 otherwise.
    pub fn require_front_desk(&self) -> Result<(), ApiError> {
        if self.role.runs_the_clinic() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role.manages_staff() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
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
            let hash = token_hash(&token);
            let found = state
                .db(move |conn| store::staff::by_session_token(conn, &hash, crate::db::now()))
                .await?;
            let (staff, token_hash) = found.ok_or(ApiError::Unauthorized)?;
            StaffUser::from_staff(staff, token_hash)
        })
    }
}

/// A staff account to create, from the API or from `dermabook create-staff`.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    #[serde(deserialize_with = "crate::api::extract::trimmed")]
    #[validate(email(message = "must be an email address"))]
    pub email: String,
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub name: String,
    pub role: Role,
    #[validate(length(min = 12, max = 1024, message = "must be 12 to 1024 characters"))]
    pub password: String,
    /// The dermatologist a dermatologist-role login belongs to; only for that role.
    #[serde(default)]
    pub dermatologist_id: Option<i64>,
}

/// Creates a staff account from input that passed `validate()`.
pub fn create_staff(conn: &mut DbConnection, new: NewStaff) -> Result<Staff, ApiError> {
    match (new.role, new.dermatologist_id) {
        (Role::Dermatologist, None) => {
            return Err(ApiError::invalid(
                "dermatologist_id",
                "is required for the dermatologist role",
            ));
        }
        (Role::Admin | Role::FrontDesk, Some(_)) => {
            return Err(ApiError::invalid(
                "dermatologist_id",
                "is only for the dermatologist role",
            ));
        }
        (_, Some(id)) if store::dermatologists::by_id(conn, id)?.is_none() => {
            return Err(ApiError::invalid(
                "dermatologist_id",
                format!("no dermatologist {id}"),
            ));
        }
        _ => {}
    }
    let now = crate::db::now();
    let form = StaffInsertForm {
        email: normalise_email(&new.email),
        name: new.name.trim().to_string(),
        role: new.role.as_str().to_string(),
        password_hash: hash_password(&new.password)?,
        dermatologist_id: new.dermatologist_id,
        active: true,
        created_at: now,
        updated_at: now,
    };
    store::staff::insert(conn, &form).map_err(|e| match ApiError::from(e) {
        ApiError::Conflict(_) => {
            ApiError::Conflict("a staff member with this email already exists".into())
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let a = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[test]
    fn manage_tokens_depend_on_secret_and_reference() {
        let secret = "a secret of at least thirty-two characters";
        let token = manage_token(secret, "K7M2-QX9D");
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(token, manage_token(secret, "K7M2-QX9D"));
        assert_ne!(token, manage_token(secret, "K7M2-QX9E"));
        assert_ne!(
            token,
            manage_token("another secret of thirty-two characters", "K7M2-QX9D")
        );
    }
}
