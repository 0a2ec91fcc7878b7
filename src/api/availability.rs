//! `GET /api/v1/availability` and `/api/v1/availability/days`: when a treatment can be
//! booked, across dermatologists, from the availability index; the first as a flat list
//! of RFC 3339 times, the second grouped by day and dermatologist for a booking page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::cache::CachedBody;
use super::problem::{ApiError, ApiResult};
use super::time::parse_date_range;
use crate::app::AppState;
use crate::booking::availability::{Question, SearchError, Snapshot};
use crate::domain::availability::Opening;
use crate::domain::local_time::{LocalStamp, Stamper, local_days_utc};

/// The most days one search may cover.
const MAX_DAYS: i64 = 31;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AvailabilityQuery {
    treatment: String,
    from: String,
    to: String,
    dermatologist: Option<i64>,
}

// Built only by the test that checks `flat_json` against it; the schema documents it.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Serialize, utoipa::ToSchema)]
struct OpeningView {
    dermatologist_id: i64,
    #[schema(value_type = String, format = DateTime)]
    starts_at: LocalStamp,
    #[schema(value_type = String, format = DateTime)]
    ends_at: LocalStamp,
}

#[cfg_attr(not(test), allow(dead_code))]
#[derive(Serialize, utoipa::ToSchema)]
struct AvailabilityView {
    timezone: String,
    slots: Vec<OpeningView>,
}

/// A start as the local time of day, `09:15`; with its offset, `01:30+01:00`, where that
/// differs from its day's.
#[derive(Clone, Copy)]
struct TimeOfDay {
    at: LocalStamp,
    own_offset: bool,
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.own_offset {
            let mut text = [0u8; 11];
            text[..5].copy_from_slice(self.at.hour_minute().as_bytes());
            text[5..].copy_from_slice(self.at.offset().as_bytes());
            serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
        } else {
            serializer.serialize_str(self.at.hour_minute())
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct DermatologistTimesView {
    dermatologist_id: i64,
    /// Local starts, `HH:MM`, ascending; a start whose offset differs from the day's
    /// carries it, `HH:MM+HH:MM` (only ever on a day the clocks change).
    #[schema(value_type = Vec<String>, example = json!(["09:00", "09:15", "10:30"]))]
    times: Vec<TimeOfDay>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DayView {
    #[schema(format = Date)]
    date: String,
    /// The offset from UTC of the day's first start, `+01:00`.
    offset: String,
    dermatologists: Vec<DermatologistTimesView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AvailabilityByDayView {
    timezone: String,
    treatment: String,
    /// Each appointment's length: a start plus this is its end.
    duration_minutes: i64,
    /// Days with at least one start, ascending; within a day, dermatologists by id.
    days: Vec<DayView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Flat,
    ByDay,
}

/// `GET /api/v1/availability?treatment=&from=&to=[&dermatologist=]`.
#[utoipa::path(
    get,
    path = "/api/v1/availability",
    tag = "booking",
    description = "Every start where the treatment fits, after the minimum notice and within the horizon, at most 31 days, as a flat list of RFC 3339 times. `/api/v1/availability/days` answers the same question in a fraction of the bytes.",
    params(("treatment" = String, Query, description = "The treatment's slug"), ("from" = String, Query, format = Date, description = "First local date"), ("to" = String, Query, format = Date, description = "Last local date"), ("dermatologist" = Option<i64>, Query, description = "Only this dermatologist")),
    responses((status = 200, description = "Done", body = AvailabilityView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<AvailabilityQuery>,
) -> ApiResult<HttpResponse> {
    answer(&state, &req, query.into_inner(), Shape::Flat).await
}

/// `GET /api/v1/availability/days?treatment=&from=&to=[&dermatologist=]`.
#[utoipa::path(
    get,
    path = "/api/v1/availability/days",
    tag = "booking",
    description = "The same starts as `/api/v1/availability`, grouped by local date and dermatologist as a booking page shows them: times of day with the day's offset, and the treatment's length.",
    params(("treatment" = String, Query, description = "The treatment's slug"), ("from" = String, Query, format = Date, description = "First local date"), ("to" = String, Query, format = Date, description = "Last local date"), ("dermatologist" = Option<i64>, Query, description = "Only this dermatologist")),
    responses((status = 200, description = "Done", body = AvailabilityByDayView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn search_by_day(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<AvailabilityQuery>,
) -> ApiResult<HttpResponse> {
    answer(&state, &req, query.into_inner(), Shape::ByDay).await
}

async fn answer(
    state: &AppState,
    req: &HttpRequest,
    query: AvailabilityQuery,
    shape: Shape,
) -> ApiResult<HttpResponse> {
    let (from, to) = parse_date_range(&query.from, &query.to, MAX_DAYS)?;
    let tz = state.settings.clinic.timezone;
    let (earliest, latest) = bookable_between(state, from, to);
    let snapshot = snapshot(state).await?;
    let key = format!(
        "{shape:?}|{}|{earliest}|{latest}|{:?}",
        query.treatment, query.dermatologist
    );
    let question = Question {
        treatment: &query.treatment,
        dermatologist: query.dermatologist,
        earliest,
        latest,
    };
    let body = state
        .availability_answers
        .get_or_compute(snapshot.generation(), &key, || async {
            let found = snapshot.openings(&question).map_err(|e| match e {
                SearchError::UnknownTreatment => ApiError::NotFound("treatment"),
                SearchError::UnknownDermatologist => ApiError::NotFound("dermatologist"),
            })?;
            let plain = match shape {
                Shape::Flat => Ok(flat_json(tz, &found)),
                Shape::ByDay => {
                    let duration = snapshot.duration_of(question.treatment).unwrap_or_default();
                    serde_json::to_vec(&by_day(tz, question.treatment, duration, &found))
                }
            }
            .map_err(|e| ApiError::Internal(e.into()))?;
            CachedBody::new(plain).map_err(|e| ApiError::Internal(e.into()))
        })
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

/// The UTC bounds of the local dates `from..=to` that booking accepts: after the notice,
/// within the horizon. Slots start on whole minutes, so the notice's edge rounded up to
/// one loses none, and answers stay shareable for a minute.
pub fn bookable_between(
    state: &AppState,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> (NaiveDateTime, NaiveDateTime) {
    let now = state.clock.now();
    let window = crate::booking::booking_window(&state.settings);
    let (day_from, day_after) = local_days_utc(state.settings.clinic.timezone, from, to);
    (
        day_from.max(whole_minute_after(window.earliest(now))),
        day_after.min(window.latest(now)),
    )
}

/// The availability index, checked as its rules say.
pub async fn snapshot(state: &AppState) -> ApiResult<std::sync::Arc<Snapshot>> {
    state
        .availability
        .current(|previous, since| state.read(move |conn| Snapshot::reload(conn, &previous, since)))
        .await
}

fn whole_minute_after(at: NaiveDateTime) -> NaiveDateTime {
    let into_minute = at.and_utc().timestamp().rem_euclid(60);
    let at = at.with_nanosecond(0).unwrap_or(at);
    if into_minute == 0 {
        at
    } else {
        at + Duration::seconds(60 - into_minute)
    }
}

/// The flat answer's JSON, written by hand: the bytes serde_json writes for `flat` (a
/// unit test compares them), without scanning each stamp for characters to escape (it
/// has none), which was a sixth of the server's time under the varied mix.
fn flat_json(tz: Tz, found: &[Opening]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + found.len() * 96);
    out.extend_from_slice(b"{\"timezone\":");
    // An IANA name needs no escaping either, but it is not ours to promise.
    serde_json::to_writer(&mut out, tz.name()).unwrap_or_default();
    out.extend_from_slice(b",\"slots\":[");
    let (mut starts, mut ends) = (Stamper::new(tz), Stamper::new(tz));
    for (i, o) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"dermatologist_id\":");
        serde_json::to_writer(&mut out, &o.dermatologist_id).unwrap_or_default();
        out.extend_from_slice(b",\"starts_at\":\"");
        out.extend_from_slice(starts.stamp(o.starts_at).as_bytes());
        out.extend_from_slice(b"\",\"ends_at\":\"");
        out.extend_from_slice(ends.stamp(o.ends_at).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// The flat answer as the schema documents it; `flat_json` writes it.
#[cfg(test)]
fn flat(tz: Tz, found: &[Opening]) -> AvailabilityView {
    let (mut starts, mut ends) = (Stamper::new(tz), Stamper::new(tz));
    AvailabilityView {
        timezone: tz.name().to_string(),
        slots: found
            .iter()
            .map(|o| OpeningView {
                dermatologist_id: o.dermatologist_id,
                starts_at: starts.stamp(o.starts_at),
                ends_at: ends.stamp(o.ends_at),
            })
            .collect(),
    }
}

/// `found` (sorted by time) grouped by local date, then dermatologist.
fn by_day(tz: Tz, treatment: &str, duration: Duration, found: &[Opening]) -> AvailabilityByDayView {
    let mut stamper = Stamper::new(tz);
    let mut starts: Vec<(LocalStamp, i64)> = found
        .iter()
        .map(|o| (stamper.stamp(o.starts_at), o.dermatologist_id))
        .collect();
    // A day's offset is its first start's; `found` is in time order, so that start comes
    // first. The stable sort keeps each dermatologist's times in order.
    let mut day_offsets: Vec<LocalStamp> = Vec::new();
    for (at, _) in &starts {
        if day_offsets
            .last()
            .is_none_or(|first| first.date_bytes() != at.date_bytes())
        {
            day_offsets.push(*at);
        }
    }
    starts.sort_by(|a, b| (a.0.date_bytes(), a.1).cmp(&(b.0.date_bytes(), b.1)));
    let mut days: Vec<DayView> = Vec::with_capacity(day_offsets.len());
    for (at, dermatologist_id) in starts {
        if days
            .last()
            .is_none_or(|day| day.date.as_bytes() != at.date_bytes())
        {
            let offset = day_offsets
                .iter()
                .find(|first| first.date_bytes() == at.date_bytes())
                .map_or(at.offset(), |first| first.offset());
            days.push(DayView {
                date: at.date().to_string(),
                offset: offset.to_string(),
                dermatologists: Vec::new(),
            });
        }
        let Some(day) = days.last_mut() else { continue };
        let time = TimeOfDay {
            at,
            own_offset: at.offset_bytes() != day.offset.as_bytes(),
        };
        match day.dermatologists.last_mut() {
            Some(last) if last.dermatologist_id == dermatologist_id => last.times.push(time),
            _ => day.dermatologists.push(DermatologistTimesView {
                dermatologist_id,
                times: vec![time],
            }),
        }
    }
    AvailabilityByDayView {
        timezone: tz.name().to_string(),
        treatment: treatment.to_string(),
        duration_minutes: duration.num_minutes(),
        days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(day: u32, hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 10, day)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap()
    }

    fn opening(dermatologist_id: i64, starts_at: NaiveDateTime) -> Opening {
        Opening {
            dermatologist_id,
            starts_at,
            ends_at: starts_at + Duration::minutes(30),
        }
    }

    /// Openings around the hour London repeats: it falls back at 02:00 BST on
    /// 25 October 2026, so 01:30 happens twice.
    fn around_the_repeated_hour() -> [Opening; 5] {
        [
            opening(1, utc(24, 15, 0)),
            opening(2, utc(25, 0, 30)),
            opening(1, utc(25, 1, 30)),
            opening(2, utc(25, 1, 30)),
            opening(1, utc(25, 9, 0)),
        ]
    }

    #[test]
    fn a_repeated_hour_keeps_each_start_exact() {
        let tz = chrono_tz::Europe::London;
        let found = around_the_repeated_hour();
        let view = serde_json::to_value(by_day(tz, "consultation", Duration::minutes(30), &found))
            .unwrap();
        assert_eq!(
            view["days"],
            serde_json::json!([
                {"date": "2026-10-24", "offset": "+01:00", "dermatologists": [
                    {"dermatologist_id": 1, "times": ["16:00"]},
                ]},
                {"date": "2026-10-25", "offset": "+01:00", "dermatologists": [
                    {"dermatologist_id": 1, "times": ["01:30+00:00", "09:00+00:00"]},
                    {"dermatologist_id": 2, "times": ["01:30", "01:30+00:00"]},
                ]},
            ])
        );
        assert_eq!(view["duration_minutes"], 30);
    }

    #[test]
    fn the_flat_answer_is_written_as_serde_would_write_it() {
        for tz in [chrono_tz::Europe::London, chrono_tz::America::St_Johns] {
            let found = around_the_repeated_hour();
            for found in [&found[..], &found[..1], &[]] {
                assert_eq!(
                    String::from_utf8(flat_json(tz, found)).unwrap(),
                    serde_json::to_string(&flat(tz, found)).unwrap()
                );
            }
        }
    }

    #[test]
    fn the_notice_edge_rounds_up_to_a_whole_minute() {
        assert_eq!(whole_minute_after(utc(1, 9, 0)), utc(1, 9, 0));
        let inside = utc(1, 9, 0) + Duration::milliseconds(1500);
        assert_eq!(whole_minute_after(inside), utc(1, 9, 1));
    }
}
