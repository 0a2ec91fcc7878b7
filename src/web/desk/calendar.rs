//! Keeping the calendar: a dermatologist's weekly hours, time off and the treatments they
//! perform (`/desk/calendar`), and blocking, reopening or adding a slot from the day.
//! Every change goes through the scheduling use cases, which bring the horizon's slots
//! in line at once; a refusal is shown beside its field or above its form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::{
    Allowed, FieldErrors, Form, date_or_today, day_page, front_desk, local_stamp, posted, render,
};
use crate::api::problem::ApiError;
use crate::api::schedules::{RuleBody, ScheduleBody, parse_rules, rule_view};
use crate::app::AppState;
use crate::domain::local_time::instant;
use crate::scheduling::{self, Horizon, SchedulingError};
use crate::store::slots::SyncOutcome;
use crate::web::booking::see_other;
use crate::web::pages::{failure, serialized};
use crate::web::session::Desk;

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Empty rows the hours form offers for new hours.
const BLANK_ROWS: usize = 3;
/// The most rows the hours form takes, as the API takes the most rules.
const MAX_ROWS: usize = 100;

/// A scheduling refusal in words for the desk, or `None` when it is not one to show
/// beside a form (an unknown record, a database failure).
fn in_words(error: &SchedulingError) -> Option<&'static str> {
    Some(match error {
        SchedulingError::SlotLength => "A slot lasts 5 minutes to 8 hours.",
        SchedulingError::SlotOverlaps => "That time overlaps another slot of this dermatologist.",
        SchedulingError::SlotBooked => "That slot is booked: cancel or move the booking first.",
        SchedulingError::TimeOffBackwards => "The end must be after the start.",
        SchedulingError::UnknownDermatologist => "There is no such dermatologist.",
        _ => return None,
    })
}

/// One row of the hours form, as its fields hold it.
#[derive(Debug, Default, Clone, Serialize)]
struct HoursRow {
    weekday: String,
    start: String,
    end: String,
    slot_minutes: String,
    valid_from: String,
    valid_until: String,
}

impl HoursRow {
    fn of(rule: &RuleBody) -> HoursRow {
        HoursRow {
            weekday: rule.weekday.to_string(),
            start: rule.start.clone(),
            end: rule.end.clone(),
            slot_minutes: rule.slot_minutes.to_string(),
            valid_from: rule.valid_from.clone().unwrap_or_default(),
            valid_until: rule.valid_until.clone().unwrap_or_default(),
        }
    }

    fn is_blank(&self) -> bool {
        self.start.trim().is_empty() && self.end.trim().is_empty()
    }
}

/// The rows a posted hours form holds (`weekday.0`, `start.0`, ...), in order.
fn rows_of(form: &Form) -> Vec<HoursRow> {
    let field = |name: &str, i: usize| {
        form.get(&format!("{name}.{i}"))
            .map_or_else(String::new, |v| v.trim().to_string())
    };
    (0..MAX_ROWS)
        .take_while(|i| form.contains_key(&format!("weekday.{i}")))
        .map(|i| HoursRow {
            weekday: field("weekday", i),
            start: field("start", i),
            end: field("end", i),
            slot_minutes: field("slot_minutes", i),
            valid_from: field("valid_from", i),
            valid_until: field("valid_until", i),
        })
        .collect()
}

/// The filled-in rows as weekly rules, checked by the API's rules; each problem keyed
/// by the form's own field name (`end.2`).
fn rules_of(rows: &[HoursRow]) -> Result<Vec<crate::domain::schedule::WeeklyRule>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut kept = Vec::new();
    let mut bodies = Vec::new();
    for (row, r) in rows.iter().enumerate().filter(|(_, r)| !r.is_blank()) {
        let weekday = r
            .weekday
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=7).contains(d));
        let minutes = r.slot_minutes.parse::<u32>().ok();
        if weekday.is_none() {
            errors.insert(format!("weekday.{row}"), "Choose a day.".into());
        }
        if minutes.is_none() {
            errors.insert(
                format!("slot_minutes.{row}"),
                "Give the length of a slot in minutes.".into(),
            );
        }
        let optional = |v: &str| (!v.is_empty()).then(|| v.to_string());
        if let (Some(weekday), Some(slot_minutes)) = (weekday, minutes) {
            kept.push(row);
            bodies.push(RuleBody {
                weekday,
                start: r.start.clone(),
                end: r.end.clone(),
                slot_minutes,
                valid_from: optional(&r.valid_from),
                valid_until: optional(&r.valid_until),
            });
        }
    }
    let checked = parse_rules(&ScheduleBody { rules: bodies });
    if let Err(ApiError::Validation(failed)) = &checked {
        for e in failed {
            // `rules[3].end` → the field `end` of the form row the fourth kept rule came from.
            let place = e
                .field
                .strip_prefix("rules[")
                .and_then(|f| f.split_once("]."));
            if let Some((index, name)) = place
                && let Some(row) = index.parse::<usize>().ok().and_then(|k| kept.get(k))
            {
                // The API names rules by index; the page by what the desk sees.
                let words = if e.message.starts_with("overlaps") {
                    "These hours overlap other hours on the same day.".to_string()
                } else {
                    format!("This {}.", e.message)
                };
                errors.entry(format!("{name}.{row}")).or_insert(words);
            }
        }
    }
    match checked {
        Ok(rules) if errors.is_empty() => Ok(rules),
        _ if errors.is_empty() => Err(FieldErrors::from([(
            "hours".to_string(),
            "These hours could not be read.".to_string(),
        )])),
        _ => Err(errors),
    }
}

/// What a calendar page shows back besides the stored state: a saved change's outcome,
/// or a refused form as it was sent, with its errors.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    hours: Option<Vec<HoursRow>>,
    time_off: Form,
    errors: FieldErrors,
}

/// Where a saved change leads: the calendar again (a GET, so reloading it repeats
/// nothing), saying what was saved and what it did to the slots.
fn saved(id: i64, what: &str, outcome: Option<&SyncOutcome>) -> HttpResponse {
    let mut location = format!("/desk/calendar?dermatologist={id}&saved={what}");
    if let Some(outcome) = outcome {
        let conflicts: Vec<String> = outcome
            .conflicts
            .iter()
            .map(|c| c.booking_id.to_string())
            .collect();
        location.push_str(&format!(
            "&added={}&removed={}&conflicts={}",
            outcome.added,
            outcome.removed,
            conflicts.join(",")
        ));
    }
    see_other(&location)
}

#[derive(Debug, Deserialize)]
pub struct CalendarQuery {
    dermatologist: Option<i64>,
    /// After a change: what was saved (`hours`, `time-off-added`, `time-off-removed`,
    /// `treatments`), and what it did to the slots.
    saved: Option<String>,
    added: Option<String>,
    removed: Option<String>,
    conflicts: Option<String>,
}

/// The words for a saved change, from the query `saved` left.
fn notice_of(query: &CalendarQuery) -> Option<String> {
    let what = match query.saved.as_deref()? {
        "hours" => "Weekly hours saved",
        "time-off-added" => "Time off added",
        "time-off-removed" => "Time off removed",
        "treatments" => return Some("Treatments saved.".into()),
        _ => return None,
    };
    let count = |v: &Option<String>| v.as_deref().and_then(|n| n.parse::<usize>().ok());
    let mut words = format!(
        "{what}: {} slots added, {} removed.",
        count(&query.added).unwrap_or(0),
        count(&query.removed).unwrap_or(0)
    );
    let conflicts: Vec<u64> = query
        .conflicts
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.parse().ok())
        .take(100)
        .collect();
    if !conflicts.is_empty() {
        let ids: Vec<String> = conflicts.iter().map(u64::to_string).collect();
        words.push_str(&format!(
            " {} booked appointments now fall outside the hours; move or cancel them (bookings {}).",
            conflicts.len(),
            ids.join(", ")
        ));
    }
    Some(words)
}

/// `GET /desk/calendar?dermatologist=`: one dermatologist's hours, time off and treatments.
pub async fn calendar(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CalendarQuery>,
) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let shown = Shown {
        notice: notice_of(&query),
        ..Shown::default()
    };
    calendar_page(&state, &desk, query.dermatologist, shown, StatusCode::OK).await
}

async fn calendar_page(
    state: &AppState,
    desk: &Desk,
    chosen: Option<i64>,
    shown: Shown,
    status: StatusCode,
) -> HttpResponse {
    let now = state.clock.now();
    let found = state
        .read(move |conn| {
            let all = crate::store::dermatologists::list(conn, true, None)?;
            let Some(id) = chosen.or_else(|| all.first().map(|d| d.id)) else {
                return Ok(None);
            };
            let rules = scheduling::rules(conn, id)?;
            let time_off = scheduling::time_off(conn, id)?;
            let treatments = crate::store::treatments::list(conn, true)?;
            let performed = crate::store::dermatologists::treatment_slugs(conn, &[id])?
                .remove(&id)
                .unwrap_or_default();
            Ok::<_, ApiError>(Some((all, id, rules, time_off, treatments, performed)))
        })
        .await;
    let (all, id, rules, time_off, treatments, performed) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return failure(state, ApiError::NotFound("dermatologist")),
        Err(error) => return failure(state, error),
    };
    let mut rows = shown
        .hours
        .unwrap_or_else(|| rules.iter().map(|r| HoursRow::of(&rule_view(r))).collect());
    rows.extend(std::iter::repeat_n(HoursRow::default(), BLANK_ROWS));
    let local = |at| local_stamp(state, at);
    let time_off: Vec<Value> = time_off
        .iter()
        .filter(|t| t.ends_at > now)
        .map(|t| {
            context! {
                id => t.id,
                from => local(t.starts_at).to_string(),
                until => local(t.ends_at).to_string(),
                reason => t.reason.clone(),
            }
        })
        .collect();
    let treatments: Vec<Value> = treatments
        .iter()
        .map(|t| {
            context! {
                slug => t.slug.clone(),
                name => t.name.clone(),
                active => t.active,
                performed => performed.contains(&t.slug),
            }
        })
        .collect();
    render(
        state,
        desk,
        status,
        "desk_calendar.html",
        context! {
            dermatologists => all.iter().map(|d| context! { id => d.id, name => d.name.clone(), active => d.active }).collect::<Vec<_>>(),
            dermatologist => all.iter().find(|d| d.id == id).map(|d| context! { id => d.id, name => d.name.clone() }),
            weekdays => WEEKDAYS.iter().enumerate().map(|(i, name)| context! { value => (i + 1).to_string(), name => *name }).collect::<Vec<_>>(),
            rows => serialized(rows),
            time_off,
            treatments,
            form => serialized(shown.time_off),
            errors => serialized(shown.errors),
            notice => shown.notice,
        },
    )
}

fn horizon(state: &AppState) -> Horizon {
    Horizon::of(&state.settings, state.clock.now())
}

/// `POST /desk/calendar/{id}/hours`: replaces the weekly hours; blank rows are dropped.
pub async fn save_hours(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let id = id.into_inner();
    let rows = rows_of(&form);
    let rules = match rules_of(&rows) {
        Ok(rules) => rules,
        Err(errors) => {
            // The rows as sent, so each error stays beside its row; only the blank ones
            // at the end go, as the page adds its own.
            let mut rows = rows;
            while rows.last().is_some_and(HoursRow::is_blank) {
                rows.pop();
            }
            let shown = Shown {
                hours: Some(rows),
                errors,
                ..Shown::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return calendar_page(&state, &desk, Some(id), shown, status).await;
        }
    };
    let horizon = horizon(&state);
    let saved_rules = state
        .writing(move |conn| scheduling::replace_rules(conn, horizon, id, &rules))
        .await;
    match saved_rules {
        Ok((_, outcome)) => saved(id, "hours", Some(&outcome)),
        Err(error) => failure(&state, error),
    }
}

/// A `datetime-local` field (`2026-12-24T09:00`) as a wall-clock time, in the
/// calendar's years.
fn local_field(form: &Form, name: &str) -> Option<NaiveDateTime> {
    form.get(name)
        .and_then(|v| NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M").ok())
        .filter(|at| crate::api::time::CALENDAR_YEARS.contains(&chrono::Datelike::year(at)))
}

/// `POST /desk/calendar/{id}/time-off`: free slots inside it go; booked ones are named.
pub async fn add_time_off(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let id = id.into_inner();
    let form = form.into_inner();
    let tz = state.settings.clinic.timezone;
    let mut errors = FieldErrors::new();
    let starts = local_field(&form, "starts_at");
    let ends = local_field(&form, "ends_at");
    let reason = form.get("reason").map_or("", |r| r.trim()).to_string();
    if starts.is_none() {
        errors.insert(
            "starts_at".into(),
            "Give the first day and time off.".into(),
        );
    }
    if ends.is_none() {
        errors.insert("ends_at".into(), "Give the day and time it ends.".into());
    }
    if reason.chars().count() > 500 {
        errors.insert(
            "reason".into(),
            "Keep the reason under 500 characters.".into(),
        );
    }
    let refused = |errors: FieldErrors, form: Form| Shown {
        time_off: form,
        errors,
        ..Shown::default()
    };
    let (Some(starts), Some(ends), true) = (starts, ends, errors.is_empty()) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return calendar_page(&state, &desk, Some(id), refused(errors, form), status).await;
    };
    // The earlier of a repeated hour for the start and the later for the end: the
    // longer time off, never a shorter one than the desk meant.
    let range = (instant(tz, starts, true), instant(tz, ends, false));
    let horizon = horizon(&state);
    let added = state
        .writing(move |conn| {
            Ok::<_, ApiError>(scheduling::add_time_off(conn, horizon, id, range, &reason))
        })
        .await;
    match added {
        Ok(Ok((_, outcome))) => saved(id, "time-off-added", Some(&outcome)),
        Ok(Err(refusal)) => match in_words(&refusal) {
            Some(words) => {
                let errors = FieldErrors::from([("ends_at".to_string(), words.to_string())]);
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                calendar_page(&state, &desk, Some(id), refused(errors, form), status).await
            }
            None => failure(&state, refusal.into()),
        },
        Err(error) => failure(&state, error),
    }
}

/// `POST /desk/calendar/{id}/time-off/{time_off_id}/remove`: gives its hours back.
pub async fn remove_time_off(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(i64, i64)>,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Err(page) = posted(&state, &req, &form, Allowed::FrontDesk).await {
        return page;
    }
    let (id, time_off_id) = path.into_inner();
    let horizon = horizon(&state);
    let removed = state
        .writing(move |conn| scheduling::remove_time_off(conn, horizon, id, time_off_id))
        .await;
    match removed {
        Ok(outcome) => saved(id, "time-off-removed", Some(&outcome)),
        Err(error) => failure(&state, error),
    }
}

/// `POST /desk/calendar/{id}/treatments`: the treatments ticked (`treatment.SLUG`) are
/// the ones the dermatologist performs.
pub async fn set_performed(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    if let Err(page) = posted(&state, &req, &form, Allowed::FrontDesk).await {
        return page;
    }
    let id = id.into_inner();
    let slugs: Vec<String> = form
        .iter()
        .filter(|(_, ticked)| ticked.as_str() == "yes")
        .filter_map(|(name, _)| name.strip_prefix("treatment."))
        .map(str::to_string)
        .collect();
    let performed = state
        .write(move |conn| crate::api::dermatologists::set_performed(conn, id, &slugs))
        .await;
    match performed {
        Ok(_) => saved(id, "treatments", None),
        Err(error) => failure(&state, error),
    }
}

/// After a slot change: back to the day, or the day with the refusal.
async fn back_to_day(
    state: &AppState,
    desk: &Desk,
    date: NaiveDate,
    done: Result<Result<(), SchedulingError>, ApiError>,
) -> HttpResponse {
    match done {
        Ok(Ok(())) => see_other(&format!("/desk?date={date}")),
        Ok(Err(refusal)) => match in_words(&refusal) {
            Some(words) => {
                let status = StatusCode::CONFLICT;
                day_page(state, desk, date, None, status, Some(words.to_string())).await
            }
            None => failure(state, refusal.into()),
        },
        Err(error) => failure(state, error),
    }
}

async fn set_slot(
    state: &AppState,
    req: &HttpRequest,
    id: i64,
    form: &Form,
    open: bool,
) -> HttpResponse {
    let desk = match posted(state, req, form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let date = date_or_today(state, form.get("date").map(String::as_str));
    let done = state
        .writing(move |conn| {
            Ok::<_, ApiError>(scheduling::set_slot_open(conn, id, open).map(|_| ()))
        })
        .await;
    back_to_day(state, &desk, date, done).await
}

/// `POST /desk/slots/{id}/block`
pub async fn block_slot(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    set_slot(&state, &req, id.into_inner(), &form, false).await
}

/// `POST /desk/slots/{id}/open`
pub async fn reopen_slot(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    set_slot(&state, &req, id.into_inner(), &form, true).await
}

/// `POST /desk/slots`: opens an extra slot on the day's date (`date`, `time`,
/// `minutes`, `dermatologist_id`).
pub async fn open_extra_slot(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let tz = state.settings.clinic.timezone;
    let date = date_or_today(&state, form.get("date").map(String::as_str));
    let time = form
        .get("time")
        .and_then(|t| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok());
    let minutes = form
        .get("minutes")
        .and_then(|m| m.trim().parse::<i64>().ok());
    let dermatologist = form
        .get("dermatologist_id")
        .and_then(|d| d.parse::<i64>().ok());
    let (Some(time), Some(minutes), Some(dermatologist)) = (time, minutes, dermatologist) else {
        let words = "Give the dermatologist, the time and the length in minutes.".to_string();
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return day_page(&state, &desk, date, None, status, Some(words)).await;
    };
    let starts_at = instant(tz, date.and_time(time), true);
    let ends_at = starts_at + Duration::minutes(minutes.clamp(0, 24 * 60));
    let done = state
        .writing(move |conn| {
            Ok::<_, ApiError>(
                scheduling::open_slot(conn, dermatologist, starts_at, ends_at).map(|_| ()),
            )
        })
        .await;
    back_to_day(&state, &desk, date, done).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(weekday: &str, start: &str, end: &str, minutes: &str) -> HoursRow {
        HoursRow {
            weekday: weekday.into(),
            start: start.into(),
            end: end.into(),
            slot_minutes: minutes.into(),
            ..HoursRow::default()
        }
    }

    #[test]
    fn blank_rows_are_dropped_and_problems_name_the_row_they_came_from() {
        let rows = vec![
            row("1", "09:00", "13:00", "30"),
            HoursRow::default(),
            row("2", "14:00", "10:00", "30"),
            row("", "09:00", "12:00", "x"),
        ];
        let errors = rules_of(&rows).unwrap_err();
        assert!(errors.contains_key("end.2"), "{errors:?}");
        assert!(errors.contains_key("weekday.3"), "{errors:?}");
        assert!(errors.contains_key("slot_minutes.3"), "{errors:?}");
        assert!(
            !errors
                .keys()
                .any(|k| k.ends_with(".0") || k.ends_with(".1"))
        );

        let rules = rules_of(&rows[..2]).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].weekday, 1);
    }

    #[test]
    fn the_form_is_read_row_by_row_until_a_row_is_missing() {
        let form = Form::from([
            ("weekday.0".to_string(), "3".to_string()),
            ("start.0".to_string(), " 08:00 ".to_string()),
            ("weekday.1".to_string(), "4".to_string()),
            ("weekday.3".to_string(), "5".to_string()),
        ]);
        let rows = rows_of(&form);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].start, "08:00");
        assert!(rows[1].is_blank());
    }
}
