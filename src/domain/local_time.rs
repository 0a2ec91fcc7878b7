//! The clinic's wall-clock time and UTC: which instant a local time names, the same
//! local time some days later, and the UTC bounds of local dates, all across DST.

use chrono::offset::LocalResult;
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// The instant a wall-clock time names. In a gap (spring forward) that is the first
/// instant after the gap; in a repeated hour, the first or the last occurrence.
pub fn instant(tz: Tz, local: NaiveDateTime, earliest: bool) -> NaiveDateTime {
    let mut probe = local;
    // A gap lasts at most a few hours in any zone; minutes keep its end exact.
    for _ in 0..(6 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(at) => return at.naive_utc(),
            LocalResult::Ambiguous(first, last) => {
                return if earliest {
                    first.naive_utc()
                } else {
                    last.naive_utc()
                };
            }
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to reading the time as UTC.
    local
}

/// `days` whole days after `at` in the clinic's wall-clock time (so 10:00 stays 10:00
/// across a DST change), as UTC.
pub fn same_local_time_after(tz: Tz, at: NaiveDateTime, days: i64) -> NaiveDateTime {
    let local = at.and_utc().with_timezone(&tz).naive_local();
    instant(tz, local + Duration::days(days), true)
}

/// The UTC instants that bound the clinic's local dates `from..=to`: from the start of
/// `from` to the start of the day after `to`, DST changes included.
pub fn local_days_utc(tz: Tz, from: NaiveDate, to: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    (
        day_start_utc(tz, from),
        day_start_utc(tz, to + Duration::days(1)),
    )
}

/// The instant a local date begins, UTC (the first instant of the day, even where
/// midnight itself is skipped by a DST change).
pub fn day_start_utc(tz: Tz, date: NaiveDate) -> NaiveDateTime {
    instant(tz, date.and_time(NaiveTime::MIN), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn local_days_cover_the_short_spring_day_exactly() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(); // London springs forward
        let (from, to) = local_days_utc(Europe::London, day, day);
        assert_eq!(from, day.and_hms_opt(0, 0, 0).unwrap());
        assert_eq!(to - from, Duration::hours(23));
        let week = local_days_utc(Europe::London, day, day + Duration::days(6));
        assert_eq!(week.1 - week.0, Duration::hours(7 * 24 - 1));
    }

    #[test]
    fn a_course_interval_keeps_the_wall_clock_time_across_dst() {
        // 10:00 in London on 16 March 2026 is 10:00 UTC; two weeks later it is BST.
        let first = utc(2026, 3, 16, 10, 0);
        assert_eq!(
            same_local_time_after(Europe::London, first, 14),
            utc(2026, 3, 30, 9, 0)
        );
        // New York falls back on 1 November 2026: 10:00 EDT is 14:00 UTC, 10:00 EST 15:00.
        let first = utc(2026, 10, 26, 14, 0);
        assert_eq!(
            same_local_time_after(America::New_York, first, 7),
            utc(2026, 11, 2, 15, 0)
        );
        // Tokyo has no DST: always 24 hours a day.
        let first = utc(2026, 3, 16, 1, 0);
        assert_eq!(
            same_local_time_after(Asia::Tokyo, first, 14),
            utc(2026, 3, 30, 1, 0)
        );
    }
}
