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

/// An instant written as the clinic's local time with its offset,
/// `2026-06-01T09:00:00+01:00`: what chrono's `to_rfc3339` writes, without its general
/// formatter, since one availability answer writes thousands of them. Years 0 to 9999.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LocalStamp([u8; 25]);

impl LocalStamp {
    pub fn new(tz: Tz, at: NaiveDateTime) -> LocalStamp {
        use chrono::{Datelike, Offset, Timelike};
        let offset = tz.offset_from_utc_datetime(&at).fix().local_minus_utc();
        let local = at + Duration::seconds(i64::from(offset));
        let mut out = *b"0000-00-00T00:00:00+00:00";
        let mut put = |at: usize, value: u32, width: usize| {
            let mut value = value;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, local.year().clamp(0, 9999) as u32, 4);
        put(5, local.month(), 2);
        put(8, local.day(), 2);
        put(11, local.hour(), 2);
        put(14, local.minute(), 2);
        put(17, local.second(), 2);
        let minutes = offset.unsigned_abs() / 60;
        put(20, minutes / 60, 2);
        put(23, minutes % 60, 2);
        if offset < 0 {
            out[19] = b'-';
        }
        LocalStamp(out)
    }

    /// The stamp's 25 ASCII bytes, which JSON needs no escape for.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `offset()` as bytes.
    pub fn offset_bytes(&self) -> &[u8] {
        &self.0[19..]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The local date, `YYYY-MM-DD`.
    pub fn date(&self) -> &str {
        &self.as_str()[..10]
    }

    /// The local time of day, `HH:MM`.
    pub fn hour_minute(&self) -> &str {
        &self.as_str()[11..16]
    }

    /// The offset from UTC, `+01:00`.
    pub fn offset(&self) -> &str {
        &self.as_str()[19..]
    }
}

/// Writes instants one after another, reusing the last stamp when the instant repeats:
/// an answer in time order names each start once for every dermatologist free then.
pub struct Stamper {
    tz: Tz,
    last: Option<(NaiveDateTime, LocalStamp)>,
}

impl Stamper {
    pub fn new(tz: Tz) -> Stamper {
        Stamper { tz, last: None }
    }

    pub fn stamp(&mut self, at: NaiveDateTime) -> LocalStamp {
        match self.last {
            Some((last, stamp)) if last == at => stamp,
            _ => {
                let stamp = LocalStamp::new(self.tz, at);
                self.last = Some((at, stamp));
                stamp
            }
        }
    }
}

impl std::fmt::Debug for LocalStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for LocalStamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
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
    fn a_stamper_writes_each_instant_as_a_fresh_stamp_would() {
        // London's repeated hour: 00:30 and 01:30 UTC on 25 October 2026 are both 01:30.
        let times = [
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 30),
            utc(2026, 10, 25, 1, 30),
            utc(2026, 10, 25, 0, 30),
        ];
        let mut stamper = Stamper::new(Europe::London);
        let written: Vec<String> = times
            .iter()
            .map(|&at| stamper.stamp(at).as_str().to_string())
            .collect();
        assert_eq!(
            written,
            [
                "2026-10-25T01:30:00+01:00",
                "2026-10-25T01:30:00+01:00",
                "2026-10-25T01:30:00+00:00",
                "2026-10-25T01:30:00+00:00",
                "2026-10-25T01:30:00+01:00",
            ]
        );
    }

    #[test]
    fn a_local_stamp_is_what_chrono_writes_in_every_offset() {
        let zones = [
            Europe::London,
            America::New_York,
            Asia::Kolkata,
            chrono_tz::Australia::Adelaide,
            chrono_tz::Pacific::Chatham,
            chrono_tz::America::St_Johns,
        ];
        for tz in zones {
            // Every 7 hours 13 minutes for two years crosses each zone's DST changes.
            let mut at = utc(2026, 1, 1, 0, 0);
            while at < utc(2028, 1, 1, 0, 0) {
                let expected = tz.from_utc_datetime(&at).to_rfc3339();
                let stamp = LocalStamp::new(tz, at);
                assert_eq!(stamp.as_str(), expected, "{tz} at {at}");
                assert_eq!(stamp.date(), &expected[..10]);
                assert_eq!(stamp.hour_minute(), &expected[11..16]);
                assert_eq!(stamp.offset(), &expected[19..]);
                at += Duration::minutes(7 * 60 + 13);
            }
        }
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
