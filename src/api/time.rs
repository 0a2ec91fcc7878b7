//! How times cross the API: RFC 3339 with the clinic's offset out, dates and RFC 3339 in,
//! each parse error naming its field.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::problem::ApiError;

/// A stored UTC time as the clinic's local time with its offset.
pub fn local_rfc3339(tz: Tz, at: NaiveDateTime) -> String {
    crate::domain::local_time::LocalStamp::new(tz, at)
        .as_str()
        .to_string()
}

/// The years the clinic's calendar spans: appointments, schedules and searches outside
/// them are typing mistakes (or probes), refused before they reach a query.
pub const CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

fn any_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, "must be a date, YYYY-MM-DD"))
}

fn out_of_calendar(field: &str) -> ApiError {
    ApiError::invalid(field, "must lie between the years 2000 and 2100")
}

/// A calendar date, `YYYY-MM-DD`, in the years 2000 to 2100.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    let date = any_date(field, value)?;
    if !CALENDAR_YEARS.contains(&date.year()) {
        return Err(out_of_calendar(field));
    }
    Ok(date)
}

/// A date of birth: from 1900 up to, not including, `today`.
pub fn parse_birth_date(field: &str, value: &str, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    let date = any_date(field, value)?;
    if date.year() < 1900 || date >= today {
        return Err(ApiError::invalid(
            field,
            "must be a date in the past, after 1900",
        ));
    }
    Ok(date)
}

/// An instant with an explicit offset (`2026-06-01T09:00:00+01:00` or `...Z`), as UTC,
/// in the years 2000 to 2100.
pub fn parse_instant(field: &str, value: &str) -> Result<NaiveDateTime, ApiError> {
    let at = DateTime::parse_from_rfc3339(value)
        .map(|at| at.naive_utc())
        .map_err(|_| {
            ApiError::invalid(
                field,
                "must be an RFC 3339 time with an offset, e.g. 2026-06-01T09:00:00+01:00",
            )
        })?;
    if !CALENDAR_YEARS.contains(&at.year()) {
        return Err(out_of_calendar(field));
    }
    Ok(at)
}

/// A wall-clock time of day, `HH:MM`.
pub fn parse_clock(field: &str, value: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(value, "%H:%M")
        .map_err(|_| ApiError::invalid(field, "must be a time of day, HH:MM"))
}

/// `from` and `to` as local dates, `to` not before `from`, covering at most `max_days`.
pub fn parse_date_range(
    from: &str,
    to: &str,
    max_days: i64,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let (from, to) = (parse_date("from", from)?, parse_date("to", to)?);
    if to < from {
        return Err(ApiError::invalid("to", "must not be before from"));
    }
    if (to - from).num_days() >= max_days {
        return Err(ApiError::invalid(
            "to",
            format!("the range may cover at most {max_days} days"),
        ));
    }
    Ok((from, to))
}
