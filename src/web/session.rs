//! The desk's session cookie and its CSRF tokens.
//!
//! The cookie holds a session token of `staff_sessions`, the same sessions the API's
//! bearer tokens are, so ending sessions or deactivating an account signs the desk out
//! at once. It is HttpOnly, SameSite=Strict, limited to `/desk`, and Secure whenever the
//! request came over https (directly or through a trusted proxy).
//!
//! Every form carries a CSRF token derived from the session token, which a page on
//! another site can neither read nor compute. The sign-in form, before any session,
//! carries a random token that must equal a short-lived cookie (double submit).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse};

use crate::api::identity::StaffUser;
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::tokens::token_hash;

pub const SESSION_COOKIE: &str = "dermabook_desk";
const SIGN_IN_COOKIE: &str = "dermabook_desk_sign_in";

/// A signed-in desk user and the CSRF token their forms carry.
pub struct Desk {
    pub user: StaffUser,
    pub csrf: String,
}

fn csrf_of(session_token: &str) -> String {
    token_hash(&format!("desk-csrf:{session_token}"))
}

/// Compares in constant time: how much of a CSRF token matched must not show in timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The desk user of a request, from its cookie; `Unauthorized` without a live session.
pub async fn desk_of(state: &AppState, req: &HttpRequest) -> Result<Desk, ApiError> {
    let token = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .ok_or(ApiError::Unauthorized)?;
    let user = StaffUser::of_session(state, &token).await?;
    Ok(Desk {
        user,
        csrf: csrf_of(&token),
    })
}

/// Passes when a form's `csrf` is this session's.
pub fn check_csrf(desk: &Desk, sent: Option<&String>) -> Result<(), ApiError> {
    match sent {
        Some(sent) if same(sent, &desk.csrf) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

fn cookie<'a>(state: &AppState, req: &HttpRequest, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/desk")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.client.came_over_https(req))
        .finish()
}

/// The session cookie for a new session.
pub fn session_cookie(
    state: &AppState,
    req: &HttpRequest,
    token: String,
    hours: u32,
) -> Cookie<'static> {
    let mut cookie = cookie(state, req, SESSION_COOKIE, token);
    cookie.set_max_age(CookieDuration::hours(i64::from(hours)));
    cookie
}

/// Removes the session cookie.
pub fn forget(state: &AppState, req: &HttpRequest, response: &mut HttpResponse) {
    let mut gone = cookie(state, req, SESSION_COOKIE, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
}

/// The sign-in form's CSRF token: the one its cookie already holds, or a new one with
/// the cookie to set.
pub fn sign_in_token(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(SIGN_IN_COOKIE) {
        Some(existing) if existing.value().len() >= 32 => (existing.value().to_string(), None),
        _ => {
            let token = crate::tokens::new_token();
            let mut cookie = cookie(state, req, SIGN_IN_COOKIE, token.clone());
            cookie.set_max_age(CookieDuration::hours(1));
            (token, Some(cookie))
        }
    }
}

/// Passes when the sign-in form's token equals its cookie.
pub fn check_sign_in_token(req: &HttpRequest, sent: Option<&String>) -> Result<(), ApiError> {
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_string());
    match (expected, sent) {
        (Some(expected), Some(sent)) if expected.len() >= 32 && same(&expected, sent) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_its_session_only() {
        let desk = Desk {
            user: StaffUser {
                id: 1,
                email: "a@b.c".into(),
                name: "A".into(),
                role: crate::domain::roles::Role::FrontDesk,
                dermatologist_id: None,
                token_hash: String::new(),
                api_key: None,
            },
            csrf: csrf_of("session-one"),
        };
        assert!(check_csrf(&desk, Some(&csrf_of("session-one"))).is_ok());
        assert!(check_csrf(&desk, Some(&csrf_of("session-two"))).is_err());
        assert!(check_csrf(&desk, Some(&String::new())).is_err());
        assert!(check_csrf(&desk, None).is_err());
    }
}
