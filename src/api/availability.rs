//! `GET /api/v1/availability` and `/api/v1/availability/days`: when a treatment can be
//! booked, across dermatologists, from the availability index; the first as a flat list
//! of RFC 3339 times, the second grouped by day and dermatologist for a booking page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::io::Write;

use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::gzip::Member;
use super::parts::{PartCache, PartKey};
use super::problem::{ApiError, ApiResult};
use super::time::parse_date_range;
use crate::app::AppState;
use crate::booking::availability::{Question, SearchError, Snapshot};
use crate::domain::availability::Opening;
use crate::domain::local_time::{LocalStamp, Stamper, day_start_utc, local_days_utc};

/// The most days one search may cover.
const MAX_DAYS: i64 = 31;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AvailabilityQuery {
    treatment: String,
    from: String,
    to: String,
    dermatologist: Option<i64>,
}

// Built only by the test that checks the answers' bytes against serde's; the schema
// documents it.
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

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Flat => "flat",
            Shape::ByDay => "days",
        }
    }
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
    let (earliest, latest) = bookable_between(state, from, to);
    let snapshot = snapshot(state).await?;
    let question = Question {
        treatment: &query.treatment,
        dermatologist: query.dermatologist,
        earliest,
        latest,
    };
    let found = snapshot.openings(&question).map_err(|e| match e {
        SearchError::UnknownTreatment => ApiError::NotFound("treatment"),
        SearchError::UnknownDermatologist => ApiError::NotFound("dermatologist"),
    })?;
    let gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let asked = Asked {
        shape,
        tz: state.settings.clinic.timezone,
        treatment: &query.treatment,
        duration: snapshot.duration_of(&query.treatment).unwrap_or_default(),
        dermatologist: query.dermatologist,
        from,
        to,
    };
    let body = asked
        .body(&state.availability_parts, &found, gzip)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = HttpResponse::Ok();
    response
        .content_type(mime::APPLICATION_JSON)
        .insert_header((header::VARY, "Accept-Encoding"));
    if gzip {
        response.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    Ok(response.body(body))
}

/// What one answer is about, beside its openings.
struct Asked<'a> {
    shape: Shape,
    tz: Tz,
    treatment: &'a str,
    duration: Duration,
    dermatologist: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
}

impl Asked<'_> {
    /// The answer's JSON, plain or gzipped: the shape's opening text, then each local day
    /// with openings, then the closing text. Gzipped, each day is a part from the cache,
    /// or written and kept now.
    fn body(&self, parts: &PartCache, found: &[Opening], gzip: bool) -> std::io::Result<Vec<u8>> {
        let mut opening = Vec::with_capacity(128);
        opening.extend_from_slice(b"{\"timezone\":");
        // An IANA name or a slug needs no escaping either, but it is not ours to promise.
        serde_json::to_writer(&mut opening, self.tz.name())?;
        match self.shape {
            Shape::Flat => opening.extend_from_slice(b",\"slots\":["),
            Shape::ByDay => {
                opening.extend_from_slice(b",\"treatment\":");
                serde_json::to_writer(&mut opening, self.treatment)?;
                write!(
                    opening,
                    ",\"duration_minutes\":{},\"days\":[",
                    self.duration.num_minutes()
                )?;
            }
        }
        let days = days_of(self.tz, self.from, self.to, found);
        if !gzip {
            let mut body = opening;
            for (i, (_, day)) in days.enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&self.write(day));
            }
            body.extend_from_slice(b"]}");
            return Ok(body);
        }
        let mut body = Member::new(1024 + found.len() * 8);
        body.text(&opening);
        for (i, (date, day)) in days.enumerate() {
            let key = PartKey {
                shape: self.shape.name(),
                treatment: self.treatment.to_string(),
                date,
                dermatologist: self.dermatologist,
            };
            let part = parts.part(key, day, |day| self.write(day))?;
            if i > 0 {
                body.text(b",");
            }
            body.deflated(part.deflated());
        }
        body.text(b"]}");
        Ok(body.finish())
    }

    /// One day's openings as JSON: slots of the flat shape, or one day of the other.
    fn write(&self, day: &[Opening]) -> Vec<u8> {
        match self.shape {
            Shape::Flat => flat_json(self.tz, day),
            Shape::ByDay => serde_json::to_vec(&day_view(self.tz, day)).unwrap_or_default(),
        }
    }
}

/// `found` (sorted by time, within the local dates `from..=to`) cut into its local days,
/// those without openings left out.
fn days_of(
    tz: Tz,
    from: NaiveDate,
    to: NaiveDate,
    found: &[Opening],
) -> impl Iterator<Item = (NaiveDate, &[Opening])> {
    let mut rest = found;
    from.iter_days()
        .take_while(move |date| *date <= to)
        .filter_map(move |date| {
            let next_day = day_start_utc(tz, date + Duration::days(1));
            let (day, after) = rest.split_at(rest.partition_point(|o| o.starts_at < next_day));
            rest = after;
            (!day.is_empty()).then_some((date, day))
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

/// One day of the flat answer's `slots`, written by hand: the bytes serde_json writes
/// (a unit test compares them), without scanning each stamp for characters to escape (it
/// has none), which was a sixth of the server's time under the varied mix.
fn flat_json(tz: Tz, day: &[Opening]) -> Vec<u8> {
    let mut out = Vec::with_capacity(day.len() * 96);
    let (mut starts, mut ends) = (Stamper::new(tz), Stamper::new(tz));
    for (i, o) in day.iter().enumerate() {
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
    out
}

/// The flat answer as the schema documents it; `Asked::body` writes it a day at a time.
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

/// One local day's openings (sorted by time) grouped by dermatologist. The day's offset
/// is its first start's.
fn day_view(tz: Tz, day: &[Opening]) -> DayView {
    let mut stamper = Stamper::new(tz);
    let mut starts: Vec<(LocalStamp, i64)> = day
        .iter()
        .map(|o| (stamper.stamp(o.starts_at), o.dermatologist_id))
        .collect();
    let first = starts.first().map(|(at, _)| *at);
    // Stable: each dermatologist's times stay in order.
    starts.sort_by_key(|(_, dermatologist_id)| *dermatologist_id);
    let mut view = DayView {
        date: first.as_ref().map_or("", |at| at.date()).to_string(),
        offset: first.as_ref().map_or("", |at| at.offset()).to_string(),
        dermatologists: Vec::new(),
    };
    for (at, dermatologist_id) in starts {
        let time = TimeOfDay {
            at,
            own_offset: at.offset_bytes() != view.offset.as_bytes(),
        };
        match view.dermatologists.last_mut() {
            Some(last) if last.dermatologist_id == dermatologist_id => last.times.push(time),
            _ => view.dermatologists.push(DermatologistTimesView {
                dermatologist_id,
                times: vec![time],
            }),
        }
    }
    view
}

/// The day-grouped answer as the schema documents it; `Asked::body` writes it in parts.
#[cfg(test)]
fn by_day(
    tz: Tz,
    treatment: &str,
    duration: Duration,
    from: NaiveDate,
    to: NaiveDate,
    found: &[Opening],
) -> AvailabilityByDayView {
    AvailabilityByDayView {
        timezone: tz.name().to_string(),
        treatment: treatment.to_string(),
        duration_minutes: duration.num_minutes(),
        days: days_of(tz, from, to, found)
            .map(|(_, day)| day_view(tz, day))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, day).unwrap()
    }

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
        let (from, to) = (date(24), date(25));
        let view = by_day(tz, "consultation", Duration::minutes(30), from, to, &found);
        let view = serde_json::to_value(view).unwrap();
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
    fn answers_put_together_from_parts_are_what_serde_writes() {
        let parts = PartCache::new(1 << 20);
        for tz in [chrono_tz::Europe::London, chrono_tz::America::St_Johns] {
            let found = around_the_repeated_hour();
            // Twice: once writing the parts, once from the cache.
            for found in [&found[..], &found[..1], &[], &found[..], &found[1..]] {
                for shape in [Shape::Flat, Shape::ByDay] {
                    let asked = Asked {
                        shape,
                        tz,
                        treatment: "laser \"genesis\"",
                        duration: Duration::minutes(30),
                        dermatologist: None,
                        from: date(23),
                        to: date(26),
                    };
                    let expected = match shape {
                        Shape::Flat => serde_json::to_vec(&flat(tz, found)),
                        Shape::ByDay => serde_json::to_vec(&by_day(
                            tz,
                            asked.treatment,
                            asked.duration,
                            asked.from,
                            asked.to,
                            found,
                        )),
                    }
                    .unwrap();
                    let plain = asked.body(&parts, found, false).unwrap();
                    assert_eq!(
                        String::from_utf8(plain).unwrap(),
                        String::from_utf8(expected.clone()).unwrap()
                    );
                    assert_eq!(
                        crate::api::gzip::gunzip(&asked.body(&parts, found, true).unwrap()),
                        expected
                    );
                }
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
