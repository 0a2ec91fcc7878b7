//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use diesel::r2d2::R2D2Connection;
use serde::Serialize;

use super::problem::{ApiError, ApiResult};
use crate::app::AppState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    database: &'static str,
}

/// The process is up and answering.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The process can serve traffic: a database connection answers a query.
pub async fn ready(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state
        .read(|conn| conn.ping())
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready",
        database: "ok",
    }))
}
