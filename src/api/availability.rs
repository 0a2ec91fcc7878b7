//! `GET /api/v1/availability`: when a treatment can be booked, across dermatologists.

use actix_web::{HttpResponse, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::problem::{ApiError, ApiResult};
use super::time::{local_rfc3339, parse_date_range};
use crate::app::AppState;
use crate::domain::availability::openings;
use crate::domain::schedule::day_start_utc;
use crate::store::{dermatologists, slots, treatments};

/// The most days one search may cover.
const MAX_DAYS: i64 = 31;

#[derive(Debug, Deserialize)]
pub struct AvailabilityQuery {
    treatment: String,
    from: String,
    to: String,
    dermatologist: Option<i64>,
}

#[derive(Serialize)]
struct OpeningView {
    dermatologist_id: i64,
    starts_at: String,
    ends_at: String,
}

#[derive(Serialize)]
struct AvailabilityView {
    timezone: String,
    slots: Vec<OpeningView>,
}

pub async fn search(
    state: web::Data<AppState>,
    query: web::Query<AvailabilityQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let (from, to) = parse_date_range(&query.from, &query.to, MAX_DAYS)?;
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = crate::db::now();
    // Only starts after the minimum notice and before the booking horizon are offered.
    let earliest = day_start_utc(tz, from)
        .max(now + Duration::minutes(i64::from(settings.booking.min_notice_minutes)));
    let latest = day_start_utc(tz, to + Duration::days(1))
        .min(now + Duration::days(i64::from(settings.booking.max_days_ahead)));
    let found = state
        .db(move |conn| {
            let treatment = treatments::by_slug(conn, &query.treatment)?
                .filter(|t| t.active)
                .ok_or(ApiError::NotFound("treatment"))?;
            let mut performers: Vec<i64> = dermatologists::list(conn, false, Some(treatment.id))?
                .into_iter()
                .map(|d| d.id)
                .collect();
            if let Some(id) = query.dermatologist {
                if dermatologists::by_id(conn, id)?
                    .filter(|d| d.active)
                    .is_none()
                {
                    return Err(ApiError::NotFound("dermatologist"));
                }
                performers.retain(|p| *p == id);
            }
            if performers.is_empty() || earliest >= latest {
                return Ok(Vec::new());
            }
            let duration = Duration::minutes(i64::from(treatment.duration_minutes));
            let buffer = Duration::minutes(i64::from(treatment.buffer_minutes));
            // Slots starting up to duration + buffer after `latest` may complete a run.
            let free = slots::free(conn, &performers, earliest, latest + duration + buffer)?;
            Ok::<_, ApiError>(openings(&free, duration, buffer, earliest, latest))
        })
        .await?;
    Ok(HttpResponse::Ok().json(AvailabilityView {
        timezone: tz.name().to_string(),
        slots: found
            .into_iter()
            .map(|o| OpeningView {
                dermatologist_id: o.dermatologist_id,
                starts_at: local_rfc3339(tz, o.starts_at),
                ends_at: local_rfc3339(tz, o.ends_at),
            })
            .collect(),
    }))
}
