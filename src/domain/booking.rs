//! Booking policy: statuses and the transitions between them, what screening answers
//! mean, when a start time may be booked or changed, and where a course's sessions fall.
//! Pure functions of their inputs; the clock is always passed in.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use rand::Rng;

use super::availability::Opening;
use super::catalogue::ScreeningQuestion;

super::text_enum! {
    pub enum BookingStatus {
        PendingReview => "pending_review",
        Confirmed => "confirmed",
        Cancelled => "cancelled",
        Completed => "completed",
        NoShow => "no_show",
    }
}

impl BookingStatus {
    /// A booking that still holds its slots and may still change.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            BookingStatus::PendingReview | BookingStatus::Confirmed
        )
    }
}

/// What staff or a patient may do to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Cancel,
    Reschedule,
    Complete,
    NoShow,
    /// Back to review: the consultation a confirmed treatment relied on was cancelled.
    Review,
    /// The clinic's own cancel of a booking no one reviewed in time.
    Expire,
}

impl Action {
    /// How the audit log names the change.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Confirm => "confirmed",
            Action::Cancel => "cancelled",
            Action::Reschedule => "rescheduled",
            Action::Complete => "completed",
            Action::NoShow => "no_show",
            Action::Review => "sent_to_review",
            Action::Expire => "expired",
        }
    }
}

/// Why a transition is refused; each is a 409 naming the current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a {current} booking cannot be {verb}", current = .current.as_str())]
    NotFrom {
        current: BookingStatus,
        verb: &'static str,
    },
    #[error("the appointment has not started yet, so it cannot be marked {verb}")]
    NotStarted { verb: &'static str },
    #[error("the appointment has already started")]
    AlreadyStarted,
}

/// The status after `action`, or why it is not allowed now.
pub fn transition(
    current: BookingStatus,
    action: Action,
    starts_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<BookingStatus, TransitionError> {
    use BookingStatus::*;
    let (allowed, next, verb): (&[BookingStatus], BookingStatus, &'static str) = match action {
        Action::Confirm => (&[PendingReview], Confirmed, "confirmed"),
        Action::Cancel => (&[PendingReview, Confirmed], Cancelled, "cancelled"),
        Action::Reschedule => (&[PendingReview, Confirmed], current, "rescheduled"),
        Action::Complete => (&[Confirmed], Completed, "completed"),
        Action::NoShow => (&[Confirmed], NoShow, "marked no-show"),
        Action::Review => (&[Confirmed], PendingReview, "sent to review"),
        Action::Expire => (&[PendingReview], Cancelled, "expired"),
    };
    if !allowed.contains(&current) {
        return Err(TransitionError::NotFrom { current, verb });
    }
    match action {
        Action::Complete | Action::NoShow if now < starts_at => {
            Err(TransitionError::NotStarted { verb })
        }
        Action::Confirm | Action::Cancel | Action::Reschedule | Action::Review
            if now >= starts_at =>
        {
            Err(TransitionError::AlreadyStarted)
        }
        _ => Ok(next),
    }
}

/// The status a new booking starts in: `pending_review` when any screening answer is
/// "yes", else `confirmed`. Every question of the treatment must be answered, and no
/// answer may name a question the treatment does not ask; each miss names its field.
pub fn screening_outcome(
    questions: &[ScreeningQuestion],
    answers: &HashMap<String, bool>,
) -> Result<BookingStatus, Vec<(String, String)>> {
    let mut problems: Vec<(String, String)> = questions
        .iter()
        .filter(|q| !answers.contains_key(&q.id))
        .map(|q| {
            (
                format!("screening_answers.{}", q.id),
                format!("must be answered: {}", q.text),
            )
        })
        .collect();
    let mut unknown: Vec<&String> = answers
        .keys()
        .filter(|id| !questions.iter().any(|q| &q.id == *id))
        .collect();
    unknown.sort();
    problems.extend(unknown.into_iter().map(|id| {
        (
            format!("screening_answers.{id}"),
            "is not a question of this treatment".to_string(),
        )
    }));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(if answers.values().any(|yes| *yes) {
        BookingStatus::PendingReview
    } else {
        BookingStatus::Confirmed
    })
}

/// When a new appointment may start, from the clinic's booking settings.
#[derive(Debug, Clone, Copy)]
pub struct BookingWindow {
    pub min_notice: Duration,
    pub max_ahead: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("the time has passed")]
    Past,
    #[error("bookings need {0} minutes' notice; choose a later time or call the clinic")]
    TooSoon(i64),
    #[error("bookings open {0} days ahead; choose an earlier time")]
    TooFar(i64),
}

impl BookingWindow {
    /// The earliest start a patient may book at `now`.
    pub fn earliest(&self, now: NaiveDateTime) -> NaiveDateTime {
        now + self.min_notice
    }

    /// The latest start anyone may book at `now`.
    pub fn latest(&self, now: NaiveDateTime) -> NaiveDateTime {
        now + self.max_ahead
    }

    /// Whether `starts_at` may be booked at `now`; the front desk may waive the notice.
    pub fn check(
        &self,
        starts_at: NaiveDateTime,
        now: NaiveDateTime,
        waive_notice: bool,
    ) -> Result<(), TimingError> {
        if starts_at <= now {
            return Err(TimingError::Past);
        }
        if !waive_notice && starts_at < self.earliest(now) {
            return Err(TimingError::TooSoon(self.min_notice.num_minutes()));
        }
        if starts_at > self.latest(now) {
            return Err(TimingError::TooFar(self.max_ahead.num_days()));
        }
        Ok(())
    }
}

/// Whether a patient may still change the booking through the manage link.
pub fn patient_may_change(starts_at: NaiveDateTime, now: NaiveDateTime, cutoff: Duration) -> bool {
    now + cutoff <= starts_at
}

/// How far a course session may move from its ideal day.
pub const COURSE_TOLERANCE_DAYS: i64 = 2;

/// The opening closest to `target` (earlier wins a tie), within the tolerance.
/// `openings` and `target` must be in the same time scale.
pub fn nearest_opening(
    openings: &[Opening],
    target: NaiveDateTime,
    tolerance: Duration,
) -> Option<Opening> {
    openings
        .iter()
        .filter(|o| (o.starts_at - target).abs() <= tolerance)
        .min_by_key(|o| ((o.starts_at - target).abs(), o.starts_at))
        .copied()
}

/// A booking reference patients can read out on the phone: two groups of four from an
/// alphabet without 0/O, 1/I/L or U. 30^8 ≈ 6.6e11 values; the unique index catches the
/// rare repeat.
pub fn new_reference(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut pick = || ALPHABET[rng.random_range(0..ALPHABET.len())] as char;
    let first: String = (0..4).map(|_| pick()).collect();
    let second: String = (0..4).map(|_| pick()).collect();
    format!("{first}-{second}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 6, day)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    fn question(id: &str) -> ScreeningQuestion {
        ScreeningQuestion {
            id: id.into(),
            text: format!("{id}?"),
        }
    }

    #[test]
    fn only_legal_transitions_pass() {
        use BookingStatus::*;
        let start = at(10, 10, 0);
        let before = at(9, 10, 0);
        let after = at(10, 11, 0);
        assert_eq!(
            transition(PendingReview, Action::Confirm, start, before),
            Ok(Confirmed)
        );
        assert_eq!(
            transition(Confirmed, Action::Cancel, start, before),
            Ok(Cancelled)
        );
        assert_eq!(
            transition(PendingReview, Action::Reschedule, start, before),
            Ok(PendingReview)
        );
        assert_eq!(
            transition(Confirmed, Action::Complete, start, after),
            Ok(Completed)
        );
        assert_eq!(
            transition(Confirmed, Action::NoShow, start, after),
            Ok(NoShow)
        );
        assert_eq!(
            transition(Confirmed, Action::Review, start, before),
            Ok(PendingReview)
        );
        assert!(transition(PendingReview, Action::Review, start, before).is_err());
        assert!(transition(Confirmed, Action::Review, start, after).is_err());
        // An unreviewed booking expires even once its time has passed; a reviewed one not.
        assert_eq!(
            transition(PendingReview, Action::Expire, start, after),
            Ok(Cancelled)
        );
        assert!(transition(Confirmed, Action::Expire, start, before).is_err());

        let refused = transition(Cancelled, Action::Complete, start, after).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "a cancelled booking cannot be completed"
        );
        assert!(transition(Confirmed, Action::Confirm, start, before).is_err());
        assert!(transition(Completed, Action::Cancel, start, after).is_err());
        assert!(transition(NoShow, Action::Reschedule, start, after).is_err());
        assert_eq!(
            transition(Confirmed, Action::Complete, start, before),
            Err(TransitionError::NotStarted { verb: "completed" })
        );
        assert_eq!(
            transition(Confirmed, Action::Cancel, start, after),
            Err(TransitionError::AlreadyStarted)
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for name in [
            "pending_review",
            "confirmed",
            "cancelled",
            "completed",
            "no_show",
        ] {
            assert_eq!(BookingStatus::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(BookingStatus::parse("booked"), None);
    }

    #[test]
    fn any_yes_needs_review_and_every_question_needs_an_answer() {
        let questions = [question("pregnant"), question("isotretinoin")];
        let no = HashMap::from([("pregnant".into(), false), ("isotretinoin".into(), false)]);
        assert_eq!(
            screening_outcome(&questions, &no),
            Ok(BookingStatus::Confirmed)
        );
        let yes = HashMap::from([("pregnant".into(), false), ("isotretinoin".into(), true)]);
        assert_eq!(
            screening_outcome(&questions, &yes),
            Ok(BookingStatus::PendingReview)
        );

        let partial = HashMap::from([("pregnant".into(), false), ("tattoo".into(), true)]);
        let problems = screening_outcome(&questions, &partial).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["screening_answers.isotretinoin", "screening_answers.tattoo"]
        );
        assert_eq!(
            screening_outcome(&[], &HashMap::new()),
            Ok(BookingStatus::Confirmed)
        );
    }

    #[test]
    fn the_window_enforces_notice_and_horizon_and_the_desk_may_waive_notice() {
        let window = BookingWindow {
            min_notice: Duration::minutes(120),
            max_ahead: Duration::days(90),
        };
        let now = at(1, 9, 0);
        assert_eq!(window.check(at(1, 8, 0), now, true), Err(TimingError::Past));
        assert_eq!(
            window.check(at(1, 10, 0), now, false),
            Err(TimingError::TooSoon(120))
        );
        assert_eq!(window.check(at(1, 10, 0), now, true), Ok(()));
        assert_eq!(window.check(at(1, 11, 0), now, false), Ok(()));
        let far = now + Duration::days(91);
        assert_eq!(window.check(far, now, true), Err(TimingError::TooFar(90)));
    }

    #[test]
    fn patients_may_change_until_the_cutoff() {
        let start = at(10, 10, 0);
        let cutoff = Duration::hours(24);
        assert!(patient_may_change(start, at(9, 10, 0), cutoff));
        assert!(!patient_may_change(start, at(9, 10, 1), cutoff));
    }

    #[test]
    fn a_course_session_takes_the_nearest_opening_within_the_tolerance() {
        let opening = |day, h, m| Opening {
            dermatologist_id: 1,
            starts_at: at(day, h, m),
            ends_at: at(day, h, m) + Duration::minutes(45),
        };
        let openings = [
            opening(14, 9, 0),
            opening(15, 9, 0),
            opening(15, 11, 0),
            opening(18, 10, 0),
        ];
        let tolerance = Duration::days(COURSE_TOLERANCE_DAYS);
        // 09:00 and 11:00 are equally near 10:00; the earlier wins.
        assert_eq!(
            nearest_opening(&openings, at(15, 10, 0), tolerance),
            Some(openings[1])
        );
        assert_eq!(
            nearest_opening(&openings, at(16, 10, 0), tolerance),
            Some(openings[2])
        );
        assert_eq!(nearest_opening(&openings, at(21, 10, 0), tolerance), None);
    }

    #[test]
    fn references_are_two_readable_groups() {
        let mut rng = rand::rng();
        let reference = new_reference(&mut rng);
        assert_eq!(reference.len(), 9);
        assert_eq!(&reference[4..5], "-");
        assert!(
            reference
                .chars()
                .all(|c| c == '-' || "ABCDEFGHJKMNPQRSTVWXYZ23456789".contains(c))
        );
        assert_ne!(reference, new_reference(&mut rng));
    }
}
