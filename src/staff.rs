//! Staff accounts: argon2id password hashes, and creating a login (from the API or from
//! `dermabook create-staff`) with the rules a role implies.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::db::DbConnection;
use crate::domain::catalogue::normalise_email;
use crate::domain::roles::Role;
use crate::store;
use crate::store::staff::{Staff, StaffInsertForm};

/// Why a login could not be created; facts for the edge to word.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("dermatologist_id is required for the dermatologist role")]
    DermatologistRequired,
    #[error("dermatologist_id is only for the dermatologist role")]
    DermatologistNotAllowed,
    #[error("no dermatologist {0}")]
    NoSuchDermatologist(i64),
    #[error("a staff member with this email already exists")]
    EmailTaken,
    #[error("no such staff member")]
    NotFound,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("an admin cannot deactivate their own login")]
    OwnLogin,
    #[error(transparent)]
    Database(diesel::result::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for StaffError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StaffError::EmailTaken,
            other => StaffError::Database(other),
        }
    }
}

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

/// A login to create; its fields already passed the input's own checks (an email, a
/// name, a long enough password).
#[derive(Debug, Clone)]
pub struct StaffDraft {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
    /// The dermatologist a dermatologist-role login belongs to; only for that role.
    pub dermatologist_id: Option<i64>,
}

/// Creates a staff account.
pub fn create_staff(conn: &mut DbConnection, new: StaffDraft) -> Result<Staff, StaffError> {
    match (new.role, new.dermatologist_id) {
        (Role::Dermatologist, None) => return Err(StaffError::DermatologistRequired),
        (Role::Admin | Role::FrontDesk, Some(_)) => {
            return Err(StaffError::DermatologistNotAllowed);
        }
        (_, Some(id)) if store::dermatologists::by_id(conn, id)?.is_none() => {
            return Err(StaffError::NoSuchDermatologist(id));
        }
        _ => {}
    }
    let now = crate::db::now();
    let form = StaffInsertForm {
        email: normalise_email(&new.email),
        name: new.name.trim().to_string(),
        role: new.role,
        password_hash: hash_password(&new.password)?,
        dermatologist_id: new.dermatologist_id,
        active: true,
        created_at: now,
        updated_at: now,
    };
    Ok(store::staff::insert(conn, &form)?)
}

fn require(conn: &mut DbConnection, id: i64) -> Result<Staff, StaffError> {
    store::staff::by_id(conn, id)?.ok_or(StaffError::NotFound)
}

/// Activates or deactivates a login; a deactivated one's sessions end at once. An admin
/// may not deactivate their own (the clinic could be left with no admin).
pub fn set_active(
    conn: &mut DbConnection,
    acting_admin: i64,
    id: i64,
    active: bool,
    now: chrono::NaiveDateTime,
) -> Result<Staff, StaffError> {
    require(conn, id)?;
    if id == acting_admin && !active {
        return Err(StaffError::OwnLogin);
    }
    store::staff::set_active(conn, id, active, now)?;
    if !active {
        store::staff::end_sessions(conn, id, None)?;
    }
    require(conn, id)
}

/// An admin sets a new password for someone; their sessions end.
pub fn reset_password(
    conn: &mut DbConnection,
    id: i64,
    password: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), StaffError> {
    require(conn, id)?;
    store::staff::set_password_hash(conn, id, &hash_password(password)?, now)?;
    store::staff::end_sessions(conn, id, None)?;
    Ok(())
}

/// Ends every session of a login; returns how many there were.
pub fn end_sessions(conn: &mut DbConnection, id: i64) -> Result<usize, StaffError> {
    require(conn, id)?;
    Ok(store::staff::end_sessions(conn, id, None)?)
}

/// Someone changes their own password, knowing the current one; their other sessions
/// end, the one they used stays.
pub fn change_own_password(
    conn: &mut DbConnection,
    id: i64,
    current_session: &str,
    current: &str,
    new: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), StaffError> {
    let staff = require(conn, id)?;
    if !verify_password(current, &staff.password_hash) {
        return Err(StaffError::WrongPassword);
    }
    store::staff::set_password_hash(conn, id, &hash_password(new)?, now)?;
    store::staff::end_sessions(conn, id, Some(current_session))?;
    Ok(())
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
}
