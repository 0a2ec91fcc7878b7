//! A timestamp column read without chrono's format parser, for queries that load
//! thousands of rows (the availability index reads every free slot of a dermatologist
//! after each change). SQLite keeps timestamps as text; diesel parses each one with
//! `NaiveDateTime::parse_from_str`, which interprets its format string anew every time:
//! a profile of the booking flow on SQLite had a tenth of the server's time there.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

use super::{MultiBackend, MultiRawValue};

/// A `Timestamp` column's value; `.0` is the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct Stamp(pub NaiveDateTime);

impl FromSql<Timestamp, Sqlite> for Stamp {
    fn from_sql(
        mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        // What diesel writes: `YYYY-MM-DD HH:MM:SS[.fraction]`. Any other form (a time
        // written by hand, with an offset, in Julian days) goes to diesel's own reading.
        if let Some(time) = written_by_diesel(value.read_text()) {
            return Ok(Stamp(time));
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, Pg> for Stamp {
    fn from_sql(
        value: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for Stamp {
    fn from_sql(value: MultiRawValue<'_>) -> deserialize::Result<Self> {
        value.from_sql::<Self, Timestamp>()
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits, or `None`.
fn written_by_diesel(text: &str) -> Option<NaiveDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b' '
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let nanos = match &bytes[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let value = number(20..bytes.len())?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    let time =
        NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::written_by_diesel;
    use chrono::NaiveDateTime;

    #[test]
    fn reads_what_diesel_writes_as_chrono_does() {
        for text in [
            "2026-12-03 09:15:00",
            "2026-03-29 00:59:59",
            "2000-02-29 23:00:00",
            "2026-12-03 09:15:00.5",
            "2026-12-03 09:15:00.123456",
            "2026-12-03 09:15:00.123456789",
        ] {
            let chrono = NaiveDateTime::parse_from_str(text, "%F %T%.f").unwrap();
            assert_eq!(written_by_diesel(text), Some(chrono), "{text}");
        }
    }

    #[test]
    fn leaves_every_other_form_to_diesel() {
        for text in [
            "2026-12-03T09:15:00",
            "2026-12-03 09:15",
            "2026-12-03 09:15:00Z",
            "2026-12-03 09:15:00+01:00",
            "2026-12-03 09:15:00.",
            "2026-12-03 09:15:00.1234567890",
            "2026-02-30 09:15:00",
            "2026-12-03 24:15:00",
            "2026-1x-03 09:15:00",
            "2461021.5",
            "",
        ] {
            assert_eq!(written_by_diesel(text), None, "{text}");
        }
    }
}
