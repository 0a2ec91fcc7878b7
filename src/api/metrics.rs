//! `GET /metrics`: the Prometheus text exposition. Not public: it answers only a request
//! bearing `metrics.token`, and is not served at all while that is empty.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::problem::{ApiError, ApiResult};
use crate::app::AppState;
use crate::store::outbox;

pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let expected = state.settings.metrics.token.as_str();
    if expected.is_empty() {
        return Err(ApiError::NotFound("resource"));
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let now = state.clock.now();
    // Without the database the outbox gauges go stale, the rest is still worth a scrape.
    if let Ok(outbox) = state.read(outbox::stats).await {
        crate::instruments::outbox(
            &outbox.by_status,
            outbox.oldest_pending.map(|at| (now - at).num_seconds()),
        );
    }
    let pool = state.pool.state();
    crate::instruments::pool(pool.connections, pool.idle_connections);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::instruments::render()))
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
