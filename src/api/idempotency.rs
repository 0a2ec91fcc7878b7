//! `Idempotency-Key` on the POSTs that create bookings (IETF httpapi draft semantics):
//! the same key and body replay the first response with `Idempotent-Replayed: true`; the
//! same key with another body is a 422. The response is stored in the transaction that
//! made the booking, so a booking and its key commit together or not at all.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::problem::{ApiError, ApiResult};
use crate::app::AppState;
use crate::db::DbConnection;
use crate::store::idempotency::{self, Seen};

const HEADER: &str = "Idempotency-Key";

/// The request's key: 1 to 255 visible ASCII characters, or none.
pub fn key_of(req: &HttpRequest) -> ApiResult<Option<String>> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(ApiError::invalid(
            HEADER,
            "must be 1 to 255 visible ASCII characters, such as a UUID",
        ));
    }
    Ok(Some(key.to_string()))
}

/// A fingerprint of what was asked: the parsed body, so white space and key order in the
/// JSON do not matter.
pub fn fingerprint(body: &impl Serialize) -> ApiResult<String> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

enum Outcome {
    Fresh(u16, String),
    Replayed(u16, String),
}

/// Runs `work` in one write transaction, remembering its response under the request's
/// key (per `scope`) for `booking.idempotency_hours`, or replaying a remembered one.
/// Errors are not remembered: nothing was written, so a retry may simply try again.
pub async fn run<F, B>(
    state: &AppState,
    req: &HttpRequest,
    scope: String,
    request_hash: String,
    work: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut DbConnection) -> ApiResult<(StatusCode, B)> + Send + 'static,
    B: serde::Serialize,
{
    let key = key_of(req)?;
    let (status, body, replayed) = remembered(state, key, scope, request_hash, work).await?;
    Ok(answer(status, body, replayed))
}

/// The response for what [`remembered`] returned: the JSON body under its status, marked
/// when replayed.
pub fn answer(status: u16, body: String, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    // Only a replay can be an error: one whose patient was erased meanwhile.
    if status.is_client_error() {
        response.content_type("application/problem+json");
    } else {
        response.content_type(mime::APPLICATION_JSON);
    }
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.body(body)
}

/// What [`run`] does, with the key given (the pages take it from a hidden form field):
/// the status, the JSON body, and whether it was replayed.
pub async fn remembered<F, B>(
    state: &AppState,
    key: Option<String>,
    scope: String,
    request_hash: String,
    work: F,
) -> ApiResult<(u16, String, bool)>
where
    F: FnOnce(&mut DbConnection) -> ApiResult<(StatusCode, B)> + Send + 'static,
    B: serde::Serialize,
{
    let keep_for = chrono::Duration::hours(i64::from(state.settings.booking.idempotency_hours));
    let (scope_again, key_again, hash_again) = (scope.clone(), key.clone(), request_hash.clone());
    let now = state.clock.now();
    let result = state
        .write(move |conn| {
            if let Some(key) = &key {
                match idempotency::look_up(conn, &scope, key, &request_hash, now)? {
                    Seen::Replay { status, body } => {
                        return Ok(Outcome::Replayed(status, body));
                    }
                    Seen::Mismatch => {
                        return Err(ApiError::invalid(
                            HEADER,
                            "was already used for a different request; use a new key",
                        ));
                    }
                    Seen::New => {}
                }
            }
            let (status, body) = work(conn)?;
            let body = serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.into()))?;
            if let Some(key) = &key {
                idempotency::remember(
                    conn,
                    &scope,
                    key,
                    &request_hash,
                    (status.as_u16(), &body),
                    now,
                    now + keep_for,
                )?;
            }
            Ok(Outcome::Fresh(status.as_u16(), body))
        })
        .await;
    let outcome = match (result, key_again) {
        (Ok(outcome), _) => outcome,
        // The same key may have been running alongside (a client retrying on a timeout):
        // once that request committed, this one lost the race for its slots or its key,
        // and the right answer is the first response.
        (Err(error), Some(key)) => {
            let seen = state
                .read(move |conn| idempotency::look_up(conn, &scope_again, &key, &hash_again, now))
                .await?;
            match seen {
                Seen::Replay { status, body } => Outcome::Replayed(status, body),
                _ => return Err(error),
            }
        }
        (Err(error), None) => return Err(error),
    };
    Ok(match outcome {
        Outcome::Fresh(status, body) => (status, body, false),
        Outcome::Replayed(status, body) => (status, body, true),
    })
}
