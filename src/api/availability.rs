//! `GET /api/v1/availability`: when a treatment can be booked, across dermatologists.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::cache::CachedBody;
use super::problem::{ApiError, ApiResult};
use super::time::{local_rfc3339, parse_date_range};
use crate::app::AppState;
use crate::domain::availability::openings;
use crate::domain::local_time::local_days_utc;
use crate::store::{dermatologists, slots, treatments};

/// The most days one search may cover.
const MAX_DAYS: i64 = 31;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AvailabilityQuery {
    treatment: String,
    from: String,
    to: String,
    dermatologist: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OpeningView {
    dermatologist_id: i64,
    starts_at: String,
    ends_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AvailabilityView {
    timezone: String,
    slots: Vec<OpeningView>,
}

/// `GET /api/v1/availability?treatment=&from=&to=[&dermatologist=]`, through the cache.
#[utoipa::path(
    get,
    path = "/api/v1/availability",
    tag = "booking",
    description = "Every start where the treatment fits, after the minimum notice and within the horizon, at most 31 days.",
    params(("treatment" = String, Query, description = "The treatment's slug"), ("from" = String, Query, format = Date, description = "First local date"), ("to" = String, Query, format = Date, description = "Last local date"), ("dermatologist" = Option<i64>, Query, description = "Only this dermatologist")),
    responses((status = 200, description = "Done", body = AvailabilityView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<AvailabilityQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let (from, to) = parse_date_range(&query.from, &query.to, MAX_DAYS)?;
    let key = format!("{}|{from}|{to}|{:?}", query.treatment, query.dermatologist);
    let body = state
        .availability_cache
        .get_or_compute(&key, || compute(&state, query, from, to))
        .await?;
    let accepts_gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = HttpResponse::Ok();
    response
        .content_type(mime::APPLICATION_JSON)
        .insert_header((header::VARY, "Accept-Encoding"));
    Ok(if accepts_gzip {
        response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(body.gzip)
    } else {
        response.body(body.plain)
    })
}

async fn compute(
    state: &AppState,
    query: AvailabilityQuery,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> ApiResult<CachedBody> {
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    // Only the starts booking accepts (after the notice, within the horizon) are offered.
    let window = crate::booking::booking_window(&settings);
    let (day_from, day_after) = local_days_utc(tz, from, to);
    let earliest = day_from.max(window.earliest(now));
    let latest = day_after.min(window.latest(now));
    let found = state
        .read(move |conn| {
            let treatment = treatments::active_by_slug(conn, &query.treatment)?
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
    let view = AvailabilityView {
        timezone: tz.name().to_string(),
        slots: found
            .into_iter()
            .map(|o| OpeningView {
                dermatologist_id: o.dermatologist_id,
                starts_at: local_rfc3339(tz, o.starts_at),
                ends_at: local_rfc3339(tz, o.ends_at),
            })
            .collect(),
    };
    let plain = serde_json::to_vec(&view).map_err(|e| ApiError::Internal(e.into()))?;
    CachedBody::new(plain).map_err(|e| ApiError::Internal(e.into()))
}
