//! How times cross the API: RFC 3339 with the clinic's offset out, dates and RFC 3339 in,
//! each parse error naming its field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::problem::ApiError;

/// A stored UTC time as the clinic's local time with its offset.
pub fn local_rfc3339(tz: Tz, at: NaiveDateTime) -> String {
    tz.from_utc_datetime(&at).to_rfc3339()
}

pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, "must be a date, YYYY-MM-DD"))
}

/// An instant with an explicit offset (`2026-06-01T09:00:00+01:00` or `...Z`), as UTC.
pub fn parse_instant(field: &str, value: &str) -> Result<NaiveDateTime, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.naive_utc())
        .map_err(|_| {
            ApiError::invalid(
                field,
                "must be an RFC 3339 time with an offset, e.g. 2026-06-01T09:00:00+01:00",
            )
        })
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
