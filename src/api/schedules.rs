//! A dermatologist's weekly schedule and time off; changing either brings the slots of
//! the rolling horizon in line at once.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::extract::ValidJson;
use super::identity::FrontDesk;
use super::problem::{ApiError, ApiResult, FieldError};
use super::slots::GenerationView;
use super::time::{local_rfc3339, parse_clock, parse_date, parse_instant};
use crate::app::AppState;
use crate::domain::schedule::{WeeklyRule, check_rules};
use crate::scheduling::{self, Horizon};
use crate::store::schedules::{self as store, ScheduleRule};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: u32,
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
    #[schema(minimum = 5, maximum = 480)]
    pub slot_minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Date)]
    pub valid_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Date)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    #[validate(length(max = 100, message = "must have at most 100 rules"))]
    #[schema(max_items = 100)]
    pub rules: Vec<RuleBody>,
}

fn horizon(state: &AppState) -> Horizon {
    Horizon::of(&state.settings, state.clock.now())
}

pub(crate) fn rule_view(r: &ScheduleRule) -> RuleBody {
    RuleBody {
        weekday: r.weekday as u32,
        start: r.start_time.format("%H:%M").to_string(),
        end: r.end_time.format("%H:%M").to_string(),
        slot_minutes: r.slot_minutes as u32,
        valid_from: r.valid_from.map(|d| d.to_string()),
        valid_until: r.valid_until.map(|d| d.to_string()),
    }
}

/// Keeps a parsed value, or adds its field errors to `errors`.
fn take<T>(errors: &mut Vec<FieldError>, result: ApiResult<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ApiError::Validation(mut found)) => {
            errors.append(&mut found);
            None
        }
        Err(_) => None,
    }
}

/// Parses every rule and checks them together; all problems at once, each by field path.
pub(crate) fn parse_rules(body: &ScheduleBody) -> ApiResult<Vec<WeeklyRule>> {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for (i, r) in body.rules.iter().enumerate() {
        let field = |name: &str| format!("rules[{i}].{name}");
        let start = take(&mut errors, parse_clock(&field("start"), &r.start));
        let end = take(&mut errors, parse_clock(&field("end"), &r.end));
        let valid_from = match r.valid_from.as_deref() {
            None => Some(None),
            Some(v) => take(&mut errors, parse_date(&field("valid_from"), v)).map(Some),
        };
        let valid_until = match r.valid_until.as_deref() {
            None => Some(None),
            Some(v) => take(&mut errors, parse_date(&field("valid_until"), v)).map(Some),
        };
        if let (Some(start), Some(end), Some(valid_from), Some(valid_until)) =
            (start, end, valid_from, valid_until)
        {
            let rule = WeeklyRule {
                weekday: r.weekday,
                start,
                end,
                slot_minutes: r.slot_minutes,
                valid_from,
                valid_until,
            };
            rules.push((i, rule));
        }
    }
    let parsed: Vec<WeeklyRule> = rules.iter().map(|(_, r)| r.clone()).collect();
    for problem in check_rules(&parsed) {
        let index = rules[problem.index].0;
        errors.push(FieldError::new(
            format!("rules[{index}].{}", problem.field),
            problem.message,
        ));
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/dermatologists/{id}/schedule",
    tag = "schedules",
    description = "Their weekly rules, in the clinic's wall-clock time. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = ScheduleBody), (status = 404, description = "Not found"))
)]
pub async fn get_schedule(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let rules = state.read(move |conn| scheduling::rules(conn, id)).await?;
    Ok(HttpResponse::Ok().json(ScheduleBody {
        rules: rules.iter().map(rule_view).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ScheduleSaved {
    rules: Vec<RuleBody>,
    generation: GenerationView,
}

/// `PUT`: replaces the weekly rules, then regenerates the rolling horizon's slots.
#[utoipa::path(
    put,
    path = "/api/v1/admin/dermatologists/{id}/schedule",
    tag = "schedules",
    description = "Replaces their weekly rules and regenerates their slots over the horizon. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = ScheduleBody,
    responses((status = 200, description = "Done", body = ScheduleSaved), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn put_schedule(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    body: ValidJson<ScheduleBody>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let rules = parse_rules(&body.0)?;
    let horizon = horizon(&state);
    let tz = horizon.timezone;
    let (saved, outcome) = state
        .writing(move |conn| scheduling::replace_rules(conn, horizon, id, &rules))
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleSaved {
        rules: saved.iter().map(rule_view).collect(),
        generation: GenerationView::new(tz, outcome),
    }))
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOffBody {
    #[schema(format = DateTime)]
    starts_at: String,
    #[schema(format = DateTime)]
    ends_at: String,
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimeOffView {
    id: i64,
    starts_at: String,
    ends_at: String,
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimeOffCreated {
    #[serde(flatten)]
    time_off: TimeOffView,
    generation: GenerationView,
}

fn time_off_view(tz: chrono_tz::Tz, t: &store::TimeOff) -> TimeOffView {
    TimeOffView {
        id: t.id,
        starts_at: local_rfc3339(tz, t.starts_at),
        ends_at: local_rfc3339(tz, t.ends_at),
        reason: t.reason.clone(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimeOffList {
    time_off: Vec<TimeOffView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/dermatologists/{id}/time-off",
    tag = "schedules",
    description = "Their time off. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = TimeOffList), (status = 404, description = "Not found"))
)]
pub async fn list_time_off(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tz = state.settings.clinic.timezone;
    let list = state
        .read(move |conn| scheduling::time_off(conn, id))
        .await?;
    Ok(HttpResponse::Ok().json(TimeOffList {
        time_off: list.iter().map(|t| time_off_view(tz, t)).collect(),
    }))
}

/// `POST`: records leave; free slots inside it are removed, booked ones reported.
#[utoipa::path(
    post,
    path = "/api/v1/admin/dermatologists/{id}/time-off",
    tag = "schedules",
    description = "Records time off; free slots inside it go, booked ones are reported. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = TimeOffBody,
    responses((status = 201, description = "Created", body = TimeOffCreated), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn add_time_off(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    body: ValidJson<TimeOffBody>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let body = body.0;
    let starts_at = parse_instant("starts_at", &body.starts_at)?;
    let ends_at = parse_instant("ends_at", &body.ends_at)?;
    let horizon = horizon(&state);
    let tz = horizon.timezone;
    let (created, outcome) = state
        .writing(move |conn| {
            let range = (starts_at, ends_at);
            scheduling::add_time_off(conn, horizon, id, range, body.reason.trim())
        })
        .await?;
    Ok(HttpResponse::Created().json(TimeOffCreated {
        time_off: time_off_view(tz, &created),
        generation: GenerationView::new(tz, outcome),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/dermatologists/{id}/time-off/{time_off_id}",
    tag = "schedules",
    description = "Removes time off and gives its hours back. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id"), ("time_off_id" = i64, Path, description = "The time off's id")),
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"))
)]
pub async fn delete_time_off(
    state: web::Data<AppState>,
    _: FrontDesk,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (id, time_off_id) = path.into_inner();
    let horizon = horizon(&state);
    state
        .writing(move |conn| scheduling::remove_time_off(conn, horizon, id, time_off_id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
