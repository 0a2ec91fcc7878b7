//! Where a treatment fits: runs of consecutive free slots long enough for its duration
//! plus its buffer. The same rule picks the slots a booking claims.

use chrono::{Duration, NaiveDateTime};

/// An open, unclaimed slot (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSlot {
    pub id: i64,
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
}

/// A time a patient may book: the appointment's own start and end (without the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
}

/// The slots from `slots[first]` on that together cover `needed` without a gap, if any.
/// `slots` must be sorted by dermatologist, then start.
pub fn covering_run(slots: &[FreeSlot], first: usize, needed: Duration) -> Option<&[FreeSlot]> {
    let start = slots.get(first)?;
    let mut last = first;
    loop {
        if slots[last].ends_at - start.starts_at >= needed {
            return Some(&slots[first..=last]);
        }
        let next = slots.get(last + 1)?;
        if next.dermatologist_id != start.dermatologist_id || next.starts_at != slots[last].ends_at
        {
            return None;
        }
        last += 1;
    }
}

/// Every start from `earliest` (inclusive) to `latest` (exclusive) at which `duration` plus
/// `buffer` fits, sorted by time, then dermatologist. `slots` sorted by dermatologist, start.
pub fn openings(
    slots: &[FreeSlot],
    duration: Duration,
    buffer: Duration,
    earliest: NaiveDateTime,
    latest: NaiveDateTime,
) -> Vec<Opening> {
    let needed = duration + buffer;
    let mut found: Vec<Opening> = (0..slots.len())
        .filter(|&i| slots[i].starts_at >= earliest && slots[i].starts_at < latest)
        .filter(|&i| covering_run(slots, i, needed).is_some())
        .map(|i| Opening {
            dermatologist_id: slots[i].dermatologist_id,
            starts_at: slots[i].starts_at,
            ends_at: slots[i].starts_at + duration,
        })
        .collect();
    found.sort_by_key(|o| (o.starts_at, o.dermatologist_id));
    found
}

/// Every start at which `duration` plus `buffer` fits in one dermatologist's free slots
/// (sorted by start), in time order: what [`openings`] finds over the whole list, in one
/// backward pass that knows where each run ends, instead of walking the run again from
/// every slot.
pub fn openings_of_one(slots: &[FreeSlot], duration: Duration, buffer: Duration) -> Vec<Opening> {
    let needed = duration + buffer;
    let mut found = Vec::with_capacity(slots.len());
    let mut run_ends_at = None;
    for (i, slot) in slots.iter().enumerate().rev() {
        let joins_next = slots
            .get(i + 1)
            .is_some_and(|next| next.starts_at == slot.ends_at);
        let ends_at = match run_ends_at {
            Some(end) if joins_next => end,
            _ => slot.ends_at,
        };
        run_ends_at = Some(ends_at);
        if ends_at - slot.starts_at >= needed {
            found.push(Opening {
                dermatologist_id: slot.dermatologist_id,
                starts_at: slot.starts_at,
                ends_at: slot.starts_at + duration,
            });
        }
    }
    found.reverse();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 6, 1)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    /// Back-to-back 15-minute slots for one dermatologist from each given start.
    fn slots(dermatologist_id: i64, starts: &[(u32, u32)]) -> Vec<FreeSlot> {
        starts
            .iter()
            .enumerate()
            .map(|(i, &(h, m))| FreeSlot {
                id: dermatologist_id * 100 + i as i64,
                dermatologist_id,
                starts_at: at(h, m),
                ends_at: at(h, m) + Duration::minutes(15),
            })
            .collect()
    }

    fn starts(found: &[Opening]) -> Vec<(i64, NaiveDateTime)> {
        found
            .iter()
            .map(|o| (o.dermatologist_id, o.starts_at))
            .collect()
    }

    #[test]
    fn a_treatment_starts_only_where_enough_consecutive_slots_follow() {
        // 09:00-10:00 free, 10:00 taken, 10:15-10:45 free.
        let free = slots(1, &[(9, 0), (9, 15), (9, 30), (9, 45), (10, 15), (10, 30)]);
        let found = openings(
            &free,
            Duration::minutes(30),
            Duration::minutes(15),
            at(0, 0),
            at(23, 0),
        );
        assert_eq!(starts(&found), [(1, at(9, 0)), (1, at(9, 15))]);
        assert_eq!(
            found[0].ends_at,
            at(9, 30),
            "the buffer is claimed but not part of the appointment"
        );
    }

    #[test]
    fn runs_do_not_cross_from_one_dermatologist_to_another() {
        let mut free = slots(1, &[(9, 0)]);
        free.extend(slots(2, &[(9, 15), (9, 30)]));
        let found = openings(
            &free,
            Duration::minutes(30),
            Duration::zero(),
            at(0, 0),
            at(23, 0),
        );
        assert_eq!(starts(&found), [(2, at(9, 15))]);
    }

    #[test]
    fn results_are_sorted_by_time_across_dermatologists_and_bounded() {
        let mut free = slots(1, &[(10, 0), (11, 0)]);
        free.extend(slots(2, &[(9, 0), (10, 0)]));
        let found = openings(
            &free,
            Duration::minutes(15),
            Duration::zero(),
            at(9, 30),
            at(11, 0),
        );
        assert_eq!(starts(&found), [(1, at(10, 0)), (2, at(10, 0))]);
    }

    #[test]
    fn covering_run_returns_exactly_the_slots_to_claim() {
        let free = slots(1, &[(9, 0), (9, 15), (9, 30), (9, 45)]);
        let run = covering_run(&free, 1, Duration::minutes(40)).unwrap();
        assert_eq!(
            run.iter().map(|s| s.starts_at).collect::<Vec<_>>(),
            [at(9, 15), at(9, 30), at(9, 45)]
        );
        assert!(covering_run(&free, 2, Duration::minutes(40)).is_none());
    }

    proptest::proptest! {
        #[test]
        fn one_pass_finds_what_the_run_walk_finds(
            // Each slot: minutes after the previous one's end (0 = back to back), and its length.
            shape in proptest::collection::vec((0u8..3, 1u8..4), 0..40),
            duration in 1i64..5,
            buffer in 0i64..3,
        ) {
            let mut free = Vec::new();
            let mut cursor = at(8, 0);
            for (i, (gap, length)) in shape.into_iter().enumerate() {
                let starts_at = cursor + Duration::minutes(15 * i64::from(gap));
                let ends_at = starts_at + Duration::minutes(15 * i64::from(length));
                free.push(FreeSlot { id: i as i64, dermatologist_id: 3, starts_at, ends_at });
                cursor = ends_at;
            }
            let (duration, buffer) = (Duration::minutes(15 * duration), Duration::minutes(15 * buffer));
            proptest::prop_assert_eq!(
                openings_of_one(&free, duration, buffer),
                openings(&free, duration, buffer, at(0, 0), cursor + Duration::days(1))
            );
        }
    }
}
