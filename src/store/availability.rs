//! What the availability index reads besides free slots: the versions the triggers keep
//! (`availability_week_marks`, per dermatologist and week), and who performs what.

use chrono::{DateTime, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{availability_week_marks, dermatologist_treatments, dermatologists};

/// The row of `availability_week_marks` that stands for the catalogue (in week
/// [`CATALOGUE_WEEK`]), not a dermatologist.
pub const CATALOGUE: i64 = 0;

/// The catalogue's week: 1970's first, which no slot is in.
const CATALOGUE_WEEK: i64 = 0;

const WEEK_SECONDS: i64 = 7 * 24 * 3600;

/// The week a slot starting at `at` (UTC) is marked under: whole weeks since 1970-01-01,
/// as the triggers count them.
pub fn week_of(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp().div_euclid(WEEK_SECONDS)
}

/// When `week` begins (UTC).
pub fn week_start(week: i64) -> NaiveDateTime {
    DateTime::from_timestamp(week.saturating_mul(WEEK_SECONDS), 0)
        .unwrap_or(DateTime::<chrono::Utc>::MAX_UTC)
        .naive_utc()
}

/// Every ((dermatologist id, week), version) of the weeks from `first_week` on, and the
/// catalogue's (id [`CATALOGUE`]). Both conditions are on the week, which the primary key
/// leads with, so the marks of weeks gone by are never read (one on the dermatologist made
/// PostgreSQL scan them all: 3.6 ms with 56,000 past marks, against 0.2 ms).
pub fn marks(conn: &mut DbConnection, first_week: i64) -> QueryResult<Vec<((i64, i64), i64)>> {
    let rows: Vec<(i64, i64, i64)> = availability_week_marks::table
        .filter(
            availability_week_marks::week
                .ge(first_week)
                .or(availability_week_marks::week.eq(CATALOGUE_WEEK)),
        )
        .select((
            availability_week_marks::dermatologist_id,
            availability_week_marks::week,
            availability_week_marks::version,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(dermatologist, week, version)| ((dermatologist, week), version))
        .collect())
}

/// (treatment id, dermatologist id) for every active dermatologist and what they perform.
pub fn performers(conn: &mut DbConnection) -> QueryResult<Vec<(i64, i64)>> {
    dermatologist_treatments::table
        .inner_join(dermatologists::table)
        .filter(dermatologists::active.eq(true))
        .order((
            dermatologist_treatments::treatment_id,
            dermatologist_treatments::dermatologist_id,
        ))
        .select((
            dermatologist_treatments::treatment_id,
            dermatologist_treatments::dermatologist_id,
        ))
        .load(conn)
}

/// The ids of the active dermatologists.
pub fn active_dermatologists(conn: &mut DbConnection) -> QueryResult<Vec<i64>> {
    dermatologists::table
        .filter(dermatologists::active.eq(true))
        .select(dermatologists::id)
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_holds_every_start_from_its_beginning_to_the_next_one() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        // 1970-01-01 was a Thursday, so weeks begin on Thursdays at midnight UTC.
        let week = week_of(at("2026-12-03 00:00:00"));
        assert_eq!(week_start(week), at("2026-12-03 00:00:00"));
        assert_eq!(week_of(at("2026-12-09 23:59:59")), week);
        assert_eq!(week_of(at("2026-12-10 00:00:00")), week + 1);
        assert_eq!(week_of(at("2026-12-02 23:59:59")), week - 1);
        assert_eq!(week_of(at("1970-01-01 00:00:00")), 0);
    }
}
