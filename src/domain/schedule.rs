//! Weekly schedule rules in the clinic's wall-clock time, and the UTC slots they make.
//!
//! A rule's day window is turned into two instants, and slots are stepped in absolute
//! time between them. On the spring-forward day the missing hour simply does not exist
//! between the two instants, so no slot falls in it; on the fall-back day the repeated
//! hour is real time that passes twice, and stepping in UTC gives each slot its own
//! instant, so there is neither a duplicate nor an overlap.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::local_time::instant;

/// One weekly range of hours: ISO weekday (Monday 1 to Sunday 7), start and end in the
/// clinic's wall-clock time, the length of each slot, and the dates it applies between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyRule {
    pub weekday: u32,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub slot_minutes: u32,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

/// A slot's start and end, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotTime {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
}

/// Something wrong with rule `index`, naming the field to mend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

pub const MIN_SLOT_MINUTES: u32 = 5;
pub const MAX_SLOT_MINUTES: u32 = 480;

impl WeeklyRule {
    pub fn applies_on(&self, date: NaiveDate) -> bool {
        date.weekday().number_from_monday() == self.weekday
            && self.valid_from.is_none_or(|from| date >= from)
            && self.valid_until.is_none_or(|until| date <= until)
    }

    fn validity_overlaps(&self, other: &WeeklyRule) -> bool {
        let starts_before_other_ends = match (self.valid_from, other.valid_until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.valid_from, self.valid_until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }
}

/// Every problem with a set of rules: bad values, inverted ranges, and ranges that
/// overlap another rule on the same weekday while both are valid.
pub fn check_rules(rules: &[WeeklyRule]) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    let mut problem = |index, field, message: String| {
        problems.push(RuleProblem {
            index,
            field,
            message,
        })
    };
    for (index, rule) in rules.iter().enumerate() {
        if !(1..=7).contains(&rule.weekday) {
            problem(index, "weekday", "must be 1 (Monday) to 7 (Sunday)".into());
        }
        if !(MIN_SLOT_MINUTES..=MAX_SLOT_MINUTES).contains(&rule.slot_minutes) {
            problem(
                index,
                "slot_minutes",
                format!("must be {MIN_SLOT_MINUTES} to {MAX_SLOT_MINUTES}"),
            );
        }
        if rule.end <= rule.start {
            problem(index, "end", "must be after start".into());
        } else if (rule.end - rule.start).num_minutes() < i64::from(rule.slot_minutes) {
            problem(
                index,
                "slot_minutes",
                "is longer than the range from start to end".into(),
            );
        }
        if let (Some(from), Some(until)) = (rule.valid_from, rule.valid_until)
            && until < from
        {
            problem(index, "valid_until", "must not be before valid_from".into());
        }
        let overlapping = rules[..index].iter().position(|earlier| {
            earlier.weekday == rule.weekday
                && earlier.validity_overlaps(rule)
                && earlier.start < rule.end
                && rule.start < earlier.end
        });
        if let Some(earlier) = overlapping {
            problem(
                index,
                "start",
                format!("overlaps rules[{earlier}] on the same weekday"),
            );
        }
    }
    problems
}

/// The slots the rules make on each date from `from` to `to` inclusive, in UTC, sorted,
/// leaving out any that overlap time off (UTC ranges, end exclusive).
pub fn slots_for(
    rules: &[WeeklyRule],
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    time_off: &[(NaiveDateTime, NaiveDateTime)],
) -> Vec<SlotTime> {
    let mut slots = Vec::new();
    for date in from.iter_days().take_while(|d| *d <= to) {
        for rule in rules.iter().filter(|r| r.applies_on(date)) {
            let window_start = instant(tz, date.and_time(rule.start), true);
            let window_end = instant(tz, date.and_time(rule.end), false);
            let length = Duration::minutes(i64::from(rule.slot_minutes.max(1)));
            let mut starts_at = window_start;
            while starts_at + length <= window_end {
                let slot = SlotTime {
                    starts_at,
                    ends_at: starts_at + length,
                };
                if !time_off.iter().any(|(off_start, off_end)| {
                    slot.starts_at < *off_end && *off_start < slot.ends_at
                }) {
                    slots.push(slot);
                }
                starts_at += length;
            }
        }
    }
    slots.sort();
    slots.dedup_by_key(|s| s.starts_at);
    slots
}

/// A digest of one slot sync: its UTC range and the slots wanted in it. Two syncs with
/// equal fingerprints want the same slots over the same hours, so the second one has
/// nothing to do if nothing but a sync removes or moves generated slots.
pub fn sync_fingerprint(range: (NaiveDateTime, NaiveDateTime), slots: &[SlotTime]) -> String {
    let mut digest = Sha256::new();
    // What a sync does is part of what it promises: a release that syncs differently
    // changes this tag, and every mark made before it stops matching.
    digest.update(b"slot-sync-v1");
    for instant in [range.0, range.1]
        .into_iter()
        .chain(slots.iter().flat_map(|s| [s.starts_at, s.ends_at]))
    {
        digest.update(instant.and_utc().timestamp().to_le_bytes());
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{America, Asia, Europe};

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(date: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        date.and_time(t(h, m))
    }

    fn rule(weekday: u32, start: NaiveTime, end: NaiveTime, slot_minutes: u32) -> WeeklyRule {
        WeeklyRule {
            weekday,
            start,
            end,
            slot_minutes,
            valid_from: None,
            valid_until: None,
        }
    }

    /// Local wall-clock labels of the slots, for reading the DST cases.
    fn local_starts(slots: &[SlotTime], tz: Tz) -> Vec<String> {
        slots
            .iter()
            .map(|s| {
                tz.from_utc_datetime(&s.starts_at)
                    .format("%H:%M%z")
                    .to_string()
            })
            .collect()
    }

    fn assert_no_duplicate_or_overlap(slots: &[SlotTime]) {
        for pair in slots.windows(2) {
            assert!(pair[0].ends_at <= pair[1].starts_at, "{pair:?} overlap");
        }
    }

    #[test]
    fn spring_forward_in_london_makes_no_slot_in_the_missing_hour() {
        // 2026-03-29: 01:00 GMT jumps to 02:00 BST. A night rule across the change.
        let day = d(2026, 3, 29);
        let slots = slots_for(
            &[rule(7, t(0, 0), t(4, 0), 60)],
            day,
            day,
            Europe::London,
            &[],
        );
        assert_eq!(
            local_starts(&slots, Europe::London),
            ["00:00+0000", "02:00+0100", "03:00+0100"]
        );
        assert_eq!(slots[0].starts_at, utc(day, 0, 0));
        assert_eq!(slots[2].ends_at, utc(day, 3, 0));
        assert_no_duplicate_or_overlap(&slots);
    }

    #[test]
    fn fall_back_in_london_neither_duplicates_nor_overlaps_the_repeated_hour() {
        // 2026-10-25: 02:00 BST falls back to 01:00 GMT; 01:00-02:00 happens twice.
        let day = d(2026, 10, 25);
        let slots = slots_for(
            &[rule(7, t(0, 0), t(4, 0), 60)],
            day,
            day,
            Europe::London,
            &[],
        );
        assert_eq!(
            local_starts(&slots, Europe::London),
            [
                "00:00+0100",
                "01:00+0100",
                "01:00+0000",
                "02:00+0000",
                "03:00+0000"
            ]
        );
        assert_eq!(slots[0].starts_at, utc(d(2026, 10, 24), 23, 0));
        assert_eq!(slots[4].ends_at, utc(day, 4, 0));
        assert_no_duplicate_or_overlap(&slots);
    }

    #[test]
    fn a_day_rule_keeps_its_wall_clock_hours_on_both_sides_of_a_change() {
        // Sunday 09:00-17:00 in 30-minute slots, the Sundays before and after the change.
        let rules = [rule(7, t(9, 0), t(17, 0), 30)];
        let before = slots_for(&rules, d(2026, 3, 22), d(2026, 3, 22), Europe::London, &[]);
        let after = slots_for(&rules, d(2026, 3, 29), d(2026, 3, 29), Europe::London, &[]);
        assert_eq!(before.len(), 16);
        assert_eq!(after.len(), 16);
        assert_eq!(before[0].starts_at, utc(d(2026, 3, 22), 9, 0));
        assert_eq!(
            after[0].starts_at,
            utc(d(2026, 3, 29), 8, 0),
            "09:00 BST is 08:00 UTC"
        );
    }

    #[test]
    fn spring_forward_in_new_york_skips_two_to_three() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let day = d(2026, 3, 8);
        let slots = slots_for(
            &[rule(7, t(1, 0), t(4, 0), 30)],
            day,
            day,
            America::New_York,
            &[],
        );
        assert_eq!(
            local_starts(&slots, America::New_York),
            ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400"]
        );
        assert_no_duplicate_or_overlap(&slots);
    }

    #[test]
    fn fall_back_in_new_york_gives_the_repeated_hour_its_own_instants() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST.
        let day = d(2026, 11, 1);
        let slots = slots_for(
            &[rule(7, t(0, 30), t(2, 30), 30)],
            day,
            day,
            America::New_York,
            &[],
        );
        assert_eq!(
            local_starts(&slots, America::New_York),
            [
                "00:30-0400",
                "01:00-0400",
                "01:30-0400",
                "01:00-0500",
                "01:30-0500",
                "02:00-0500"
            ]
        );
        assert_no_duplicate_or_overlap(&slots);
        let unique: std::collections::HashSet<_> = slots.iter().map(|s| s.starts_at).collect();
        assert_eq!(unique.len(), slots.len());
    }

    #[test]
    fn a_zone_without_dst_is_a_fixed_offset() {
        let monday = d(2026, 3, 30);
        let slots = slots_for(
            &[rule(1, t(9, 0), t(10, 0), 15)],
            monday,
            monday,
            Asia::Tokyo,
            &[],
        );
        let starts: Vec<_> = slots.iter().map(|s| s.starts_at).collect();
        assert_eq!(
            starts,
            [
                utc(monday, 0, 0),
                utc(monday, 0, 15),
                utc(monday, 0, 30),
                utc(monday, 0, 45)
            ]
        );
    }

    #[test]
    fn lunch_breaks_validity_and_time_off_are_honoured() {
        let monday = d(2026, 6, 1);
        let mut afternoon = rule(1, t(13, 0), t(15, 0), 60);
        afternoon.valid_from = Some(d(2026, 6, 8));
        let rules = [rule(1, t(9, 0), t(11, 0), 60), afternoon];
        let first = slots_for(&rules, monday, monday, Asia::Tokyo, &[]);
        assert_eq!(first.len(), 2, "the afternoon rule starts the week after");
        let next = d(2026, 6, 8);
        let off = [(utc(next, 0, 30), utc(next, 1, 0))];
        let second = slots_for(&rules, next, next, Asia::Tokyo, &off);
        let starts: Vec<_> = second.iter().map(|s| s.starts_at).collect();
        assert_eq!(
            starts,
            [utc(next, 1, 0), utc(next, 4, 0), utc(next, 5, 0)],
            "09:00 is taken by time off"
        );
    }

    #[test]
    fn a_range_that_is_not_a_whole_number_of_slots_drops_the_remainder() {
        let monday = d(2026, 6, 1);
        let slots = slots_for(
            &[rule(1, t(9, 0), t(10, 0), 25)],
            monday,
            monday,
            Asia::Tokyo,
            &[],
        );
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn rule_problems_name_the_field() {
        let mut bad_validity = rule(2, t(9, 0), t(12, 0), 15);
        bad_validity.valid_from = Some(d(2026, 6, 1));
        bad_validity.valid_until = Some(d(2026, 5, 1));
        let rules = [
            rule(1, t(9, 0), t(12, 0), 15),
            rule(1, t(11, 0), t(13, 0), 15),
            rule(8, t(9, 0), t(12, 0), 15),
            rule(3, t(12, 0), t(9, 0), 15),
            rule(4, t(9, 0), t(9, 10), 15),
            bad_validity,
        ];
        let found: Vec<(usize, &str)> = check_rules(&rules)
            .iter()
            .map(|p| (p.index, p.field))
            .collect();
        assert_eq!(
            found,
            [
                (1, "start"),
                (2, "weekday"),
                (3, "end"),
                (4, "slot_minutes"),
                (5, "valid_until")
            ]
        );
    }

    #[test]
    fn rules_that_never_apply_together_may_share_hours() {
        let mut summer = rule(1, t(9, 0), t(12, 0), 15);
        summer.valid_until = Some(d(2026, 8, 31));
        let mut autumn = rule(1, t(10, 0), t(13, 0), 15);
        autumn.valid_from = Some(d(2026, 9, 1));
        assert!(check_rules(&[summer, autumn]).is_empty());
    }

    #[test]
    fn a_sync_fingerprint_changes_with_the_range_and_every_slot() {
        let day = d(2026, 3, 2);
        let range = (utc(day, 0, 0), utc(d(2026, 3, 3), 0, 0));
        let slots = [
            SlotTime {
                starts_at: utc(day, 9, 0),
                ends_at: utc(day, 9, 30),
            },
            SlotTime {
                starts_at: utc(day, 9, 30),
                ends_at: utc(day, 10, 0),
            },
        ];
        let base = sync_fingerprint(range, &slots);
        assert_eq!(base, sync_fingerprint(range, &slots.clone()));
        assert_eq!(base.len(), 64);
        let longer = (range.0, utc(d(2026, 3, 4), 0, 0));
        assert_ne!(base, sync_fingerprint(longer, &slots));
        assert_ne!(base, sync_fingerprint(range, &slots[..1]));
        let mut shorter_end = slots;
        shorter_end[1].ends_at = utc(day, 9, 45);
        assert_ne!(base, sync_fingerprint(range, &shorter_end));
        assert_ne!(base, sync_fingerprint(range, &[]));
    }
}
