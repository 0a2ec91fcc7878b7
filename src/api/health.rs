//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use diesel::r2d2::R2D2Connection;
use serde::Serialize;

use std::time::Duration;

use super::problem::ApiError;
use crate::app::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// Each part a request needs, and whether it is there.
#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Checks {
    /// A connection answers a query.
    database: &'static str,
    /// The schema is the one this build expects ("pending": migrations not applied).
    migrations: &'static str,
    /// The email sender has shown life recently ("stalled" otherwise).
    email_sender: &'static str,
}

/// The process is up and answering.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The process can serve traffic: the database answers, its schema is current, and the
/// email sender is alive. 200 when all are, 503 naming the part that is not.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let schema = state
        .read(|conn| {
            conn.ping()?;
            crate::db::migrations_pending(conn).map_err(ApiError::Internal)
        })
        .await;
    let (database, migrations) = match schema {
        Ok(false) => ("ok", "ok"),
        Ok(true) => ("ok", "pending"),
        Err(_) => ("unavailable", "unknown"),
    };
    let email = &state.settings.email;
    // A poll, and one message at its longest (twice the SMTP timeout), with room to spare.
    let allowed = Duration::from_millis(email.poll_interval_ms)
        + Duration::from_secs(2 * email.smtp.timeout_seconds + 30);
    let email_sender = match state.sender_heartbeat.age() {
        Some(age) if age <= allowed => "ok",
        _ => "stalled",
    };
    let ready = [database, migrations, email_sender]
        .iter()
        .all(|part| *part == "ok");
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks: Checks {
            database,
            migrations,
            email_sender,
        },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
