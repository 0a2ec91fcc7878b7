//! FHIR R4 read access for integrators in healthcare: `Schedule` (one per active
//! dermatologist), `Slot` (their slots, `free` or `busy` as the SMART Scheduling Links
//! specification publishes availability) and `Appointment` (a booking). JSON as FHIR
//! writes it (`application/fhir+json`), for the front desk, admins and read-scoped API
//! keys. Errors are the API's problem documents, like everywhere else.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDateTime};
use serde_json::{Value, json};

use super::identity::FrontDesk;
use super::problem::{ApiError, ApiResult};
use super::time::{parse_date, parse_instant};
use crate::app::AppState;
use crate::domain::booking::BookingStatus;
use crate::domain::local_time::day_start_utc;
use crate::store::{availability as marks, bookings, dermatologists, slots, treatments};

const FHIR_JSON: &str = "application/fhir+json";
/// Slots one search answers at most; a `next` link continues.
const MAX_COUNT: usize = 1000;
const DEFAULT_COUNT: usize = 200;

fn instant(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn base(state: &AppState) -> String {
    format!(
        "{}/fhir",
        state.settings.clinic.public_base_url.trim_end_matches('/')
    )
}

fn fhir(body: Value) -> HttpResponse {
    HttpResponse::Ok().content_type(FHIR_JSON).json(body)
}

/// A `searchset` Bundle of `resources` (each with its type and id) of `total` matches in
/// all, with its links.
fn bundle(base: &str, resources: Vec<Value>, total: usize, links: Vec<(&str, String)>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!(
                "{base}/{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            json!({ "fullUrl": url, "resource": r, "search": { "mode": "match" } })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links.into_iter().map(|(relation, url)| json!({ "relation": relation, "url": url })).collect::<Vec<_>>(),
    });
    // FHIR JSON has no empty arrays: no match, no `entry`.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// `GET /fhir/Schedule`
#[utoipa::path(
    get,
    path = "/fhir/Schedule",
    tag = "fhir",
    description = "Every active dermatologist's Schedule (FHIR R4), as a searchset Bundle: the Practitioner it belongs to, the treatments they perform as serviceType, and the bookable horizon. Role: front desk or admin, or a read-scoped API key.",
    responses((status = 200, description = "A FHIR Bundle of Schedule resources", body = serde_json::Value, content_type = "application/fhir+json"))
)]
pub async fn schedules(state: web::Data<AppState>, _: FrontDesk) -> ApiResult<HttpResponse> {
    let (people, offered, performers) = state
        .read(|conn| {
            Ok::<_, ApiError>((
                dermatologists::list(conn, false, None)?,
                treatments::list(conn, false)?,
                marks::performers(conn)?,
            ))
        })
        .await?;
    let base = base(&state);
    let now = state.clock.now();
    let horizon = now + Duration::days(i64::from(state.settings.booking.max_days_ahead));
    let resources = people
        .into_iter()
        .map(|d| {
            let services: Vec<Value> = offered
                .iter()
                .filter(|t| performers.contains(&(t.id, d.id)))
                .map(|t| {
                    json!({ "coding": [{ "system": format!("{base}/treatments"), "code": t.slug, "display": t.name }], "text": t.name })
                })
                .collect();
            let mut schedule = json!({
                "resourceType": "Schedule",
                "id": d.id.to_string(),
                "active": true,
                "actor": [{ "reference": format!("Practitioner/{}", d.id), "display": d.name }],
                "planningHorizon": { "start": instant(now), "end": instant(horizon) },
            });
            if !services.is_empty() {
                schedule["serviceType"] = Value::Array(services);
            }
            schedule
        })
        .collect::<Vec<_>>();
    let total = resources.len();
    let links = vec![("self", format!("{base}/Schedule"))];
    Ok(fhir(bundle(&base, resources, total, links)))
}

/// One `start` comparison of a Slot search: its prefix, and the range its value stands
/// for (a date, the clinic's whole day; an instant, its second).
#[derive(Debug, Clone, Copy)]
struct StartBound {
    prefix: &'static str,
    from: NaiveDateTime,
    until: NaiveDateTime,
}

impl StartBound {
    /// The `[lower, upper)` bounds it sets, either possibly open.
    fn bounds(self) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
        match self.prefix {
            "ge" => (Some(self.from), None),
            "gt" => (Some(self.until), None),
            "le" => (None, Some(self.until)),
            "lt" => (None, Some(self.from)),
            _ => (Some(self.from), Some(self.until)),
        }
    }
}

/// `start=[ge|gt|le|lt|eq]VALUE`: a date (the clinic's day) or an instant with its offset.
fn parse_start(tz: chrono_tz::Tz, value: &str) -> Result<StartBound, ApiError> {
    let (prefix, rest) = ["ge", "gt", "le", "lt", "eq"]
        .iter()
        .find_map(|p| value.strip_prefix(p).map(|rest| (*p, rest)))
        .unwrap_or(("eq", value));
    let (from, until) = if rest.len() == 10 {
        let day = parse_date("start", rest)?;
        (
            day_start_utc(tz, day),
            day_start_utc(tz, day + Duration::days(1)),
        )
    } else {
        let at = parse_instant("start", rest)?;
        (at, at + Duration::seconds(1))
    };
    Ok(StartBound {
        prefix,
        from,
        until,
    })
}

/// `GET /fhir/Slot?schedule=Schedule/{id}&start=ge...&start=lt...&status=free|busy&_count=`
#[utoipa::path(
    get,
    path = "/fhir/Slot",
    tag = "fhir",
    description = "A Schedule's Slots (FHIR R4) as a searchset Bundle, in time order: `free` (open, no booking holds it) or `busy` (booked, or blocked by the clinic), as SMART Scheduling Links publishes availability. `schedule` is required; `start` may be given twice (`ge`, `gt`, `le`, `lt` or `eq`, a date in the clinic's zone or an instant with its offset), and without an upper bound the search ends at the booking horizon; `status` filters; `_count` (default 200, at most 1000) bounds the page, `total` counts every match, and a `next` link continues. Role: front desk or admin, or a read-scoped API key.",
    params(
        ("schedule" = String, Query, description = "`Schedule/{id}` or `{id}`"),
        ("start" = Option<String>, Query, description = "`ge2026-12-01`, `lt2026-12-08T00:00:00Z`, ... (repeatable)"),
        ("status" = Option<String>, Query, pattern = "^(free|busy)$", description = "free or busy"),
        ("_count" = Option<i64>, Query, minimum = 1, description = "Slots a page (default 200; more than 1000 is 1000)")
    ),
    responses((status = 200, description = "A FHIR Bundle of Slot resources", body = serde_json::Value, content_type = "application/fhir+json"), (status = 404, description = "No active dermatologist has this Schedule"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn slots_search(
    state: web::Data<AppState>,
    _: FrontDesk,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let tz = state.settings.clinic.timezone;
    let now = state.clock.now();
    let mut schedule = None;
    // Without bounds: from a day ago (today's slots, whatever the zone) to the horizon.
    let (mut lower, mut upper): (Option<NaiveDateTime>, Option<NaiveDateTime>) = (None, None);
    let mut status = None;
    let mut count = DEFAULT_COUNT;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "schedule" => {
                let id = value.strip_prefix("Schedule/").unwrap_or(&value);
                schedule = Some(id.parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        "schedule",
                        "must be Schedule/{id}, an id from /fhir/Schedule",
                    )
                })?);
            }
            "start" => {
                let (from, to) = parse_start(tz, &value)?.bounds();
                // Several bounds narrow the range, as FHIR's repeated parameters do.
                lower = lower.max(from);
                upper = match (upper, to) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            "status" => match value.as_ref() {
                "free" | "busy" => status = Some(value.to_string()),
                _ => return Err(ApiError::invalid("status", "must be free or busy")),
            },
            // More than the server gives is the server's most, as FHIR has it.
            "_count" => {
                count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ApiError::invalid("_count", "must be a whole number from 1"))?
                    .min(MAX_COUNT);
            }
            // FHIR servers ignore parameters they do not know (absent `Prefer: handling=strict`).
            _ => {}
        }
    }
    let schedule = schedule.ok_or_else(|| ApiError::invalid("schedule", "is required"))?;
    let from = lower.unwrap_or(now - Duration::days(1));
    let to =
        upper.unwrap_or(now + Duration::days(i64::from(state.settings.booking.max_days_ahead) + 1));
    let free = status.as_deref().map(|s| s == "free");
    let (found, total) = state
        .read(move |conn| {
            dermatologists::by_id(conn, schedule)?
                .filter(|d| d.active)
                .ok_or(ApiError::NotFound("schedule"))?;
            let range = (from, to.max(from));
            Ok::<_, ApiError>(slots::page(conn, schedule, range, free, count as i64 + 1)?)
        })
        .await?;
    let more = found.get(count).map(|(slot, _)| slot.starts_at);
    let resources: Vec<Value> = found
        .into_iter()
        .take(count)
        .map(|(slot, free)| {
            json!({
                "resourceType": "Slot",
                "id": slot.id.to_string(),
                "schedule": { "reference": format!("Schedule/{schedule}") },
                "status": if free { "free" } else { "busy" },
                "start": instant(slot.starts_at),
                "end": instant(slot.ends_at),
            })
        })
        .collect();
    let base = base(&state);
    let mut links = vec![("self", format!("{base}/Slot?{}", req.query_string()))];
    if let Some(next) = more {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("schedule", &format!("Schedule/{schedule}"));
        query.append_pair("start", &format!("ge{}", instant(next)));
        query.append_pair("start", &format!("lt{}", instant(to)));
        if let Some(status) = &status {
            query.append_pair("status", status);
        }
        query.append_pair("_count", &count.to_string());
        links.push(("next", format!("{base}/Slot?{}", query.finish())));
    }
    Ok(fhir(bundle(&base, resources, total as usize, links)))
}

/// FHIR's word for a booking's status.
fn appointment_status(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::PendingReview => "pending",
        BookingStatus::Confirmed => "booked",
        BookingStatus::Cancelled => "cancelled",
        BookingStatus::Completed => "fulfilled",
        BookingStatus::NoShow => "noshow",
    }
}

/// `GET /fhir/Appointment/{id}`
#[utoipa::path(
    get,
    path = "/fhir/Appointment/{id}",
    tag = "fhir",
    description = "One booking as a FHIR R4 Appointment: status (pending for review, booked, cancelled, fulfilled, noshow), the treatment as serviceType, start and end, the Slots it holds, the booking's reference as identifier, and the Patient and Practitioner taking part. Role: front desk or admin, or a read-scoped API key.",
    params(("id" = i64, Path, description = "The booking's id")),
    responses((status = 200, description = "A FHIR Appointment", body = serde_json::Value, content_type = "application/fhir+json"), (status = 404, description = "Not found"))
)]
pub async fn appointment(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (details, held) = state
        .read(move |conn| {
            let details = bookings::details(conn, id)?.ok_or(ApiError::NotFound("appointment"))?;
            Ok::<_, ApiError>((details, bookings::held_slots(conn, id)?))
        })
        .await?;
    let base = base(&state);
    let b = &details.booking;
    let status = appointment_status(b.status);
    // The clinic has yet to accept a booking awaiting review.
    let clinic_answer = if b.status == BookingStatus::PendingReview {
        "needs-action"
    } else {
        "accepted"
    };
    let mut appointment = json!({
        "resourceType": "Appointment",
        "id": b.id.to_string(),
        "identifier": [{ "system": format!("{base}/bookings"), "value": b.reference }],
        "status": status,
        "serviceType": [{
            "coding": [{ "system": format!("{base}/treatments"), "code": details.treatment.slug, "display": details.treatment.name }],
            "text": details.treatment.name,
        }],
        "start": instant(b.starts_at),
        "end": instant(b.ends_at),
        "minutesDuration": (b.ends_at - b.starts_at).num_minutes(),
        "created": instant(b.created_at),
        "participant": [
            { "actor": { "reference": format!("Patient/{}", details.patient.id), "display": details.patient.name }, "status": "accepted" },
            { "actor": { "reference": format!("Practitioner/{}", b.dermatologist_id), "display": details.dermatologist.name }, "status": clinic_answer },
        ],
    });
    if !held.is_empty() {
        appointment["slot"] = held
            .iter()
            .map(|s| json!({ "reference": format!("Slot/{s}") }))
            .collect();
    }
    Ok(fhir(appointment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_bound_takes_a_prefix_and_a_date_or_an_instant() {
        let tz = chrono_tz::Europe::London;
        let text = |bounds: (Option<NaiveDateTime>, Option<NaiveDateTime>)| {
            (
                bounds.0.map(|b| b.to_string()),
                bounds.1.map(|b| b.to_string()),
            )
        };
        let day = |prefix: &str| {
            text(
                parse_start(tz, &format!("{prefix}2026-07-01"))
                    .unwrap()
                    .bounds(),
            )
        };
        // London's day in summer: 23:00 UTC the evening before, to 23:00 UTC that evening.
        let midnight = Some("2026-06-30 23:00:00".to_string());
        let next = Some("2026-07-01 23:00:00".to_string());
        assert_eq!(day("ge"), (midnight.clone(), None));
        assert_eq!(day("gt"), (next.clone(), None), "after the whole day");
        assert_eq!(day("le"), (None, next.clone()), "up to the end of the day");
        assert_eq!(day("lt"), (None, midnight.clone()));
        assert_eq!(day(""), (midnight, next), "the whole day");
        let at = parse_start(tz, "lt2026-07-01T12:00:00+02:00")
            .unwrap()
            .bounds();
        assert_eq!(text(at), (None, Some("2026-07-01 10:00:00".to_string())));
        assert!(parse_start(tz, "ge-yesterday").is_err());
    }
}
