//! Why a booking use case said no: facts, not HTTP. `api/problem.rs` turns each into a
//! status code and words; a page (later) may word them its own way.

use chrono::NaiveDate;

use crate::domain::booking::{BookingStatus, TimingError, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// No active treatment has that slug.
    #[error("no such treatment")]
    UnknownTreatment,
    /// No active dermatologist has that id.
    #[error("no such dermatologist")]
    UnknownDermatologist,
    #[error("the dermatologist does not perform {treatment}")]
    NotPerformed { treatment: String },
    /// Screening answers missing or unknown: (the answer's field, what is wrong).
    #[error("screening answers are incomplete")]
    Screening(Vec<(String, String)>),
    #[error("{0}")]
    Sessions(SessionsProblem),
    /// The start is outside the booking window (notice, horizon, the past).
    #[error("{0}")]
    Timing(TimingError),
    /// The start is not where one of the dermatologist's slots starts.
    #[error("not a slot start")]
    NotASlotStart,
    /// The slots from the start end before the treatment would.
    #[error("the treatment does not fit there")]
    DoesNotFit,
    /// A reschedule to the time and dermatologist the booking already has.
    #[error("that is the booking's current time")]
    SameTime,
    /// A rule about who the patient is refused an online booking. The API answers every
    /// such refusal in one wording, so that it tells nothing about a person whose email
    /// the caller typed; the reason is for the logs and tests.
    #[error("not bookable online for this patient: {rule}")]
    PatientRule {
        rule: PatientRule,
        clinic_phone: String,
    },
    /// `course` asked of a booking that is not in one.
    #[error("the booking is not part of a course")]
    NotInCourse,
    /// Another booking holds a slot of the time.
    #[error("that time is already booked")]
    Taken,
    /// Another booking claimed a slot of the time between our read and our write.
    #[error("that time was booked a moment ago")]
    TakenMeanwhile,
    /// The clinic blocked a slot of the time.
    #[error("that time is blocked")]
    Blocked,
    /// The schedule changed and the slot went with it.
    #[error("that time is no longer offered")]
    NoLongerOffered,
    /// No opening near a course session's day: nothing was booked.
    #[error("no room for session {session}")]
    NoCourseRoom {
        session: usize,
        near: NaiveDate,
        tolerance_days: i64,
    },
    #[error("no session of the course is left to cancel")]
    NothingLeftInCourse,
    /// The action is not legal from the booking's status now.
    #[error("{error} (status: {})", status.as_str())]
    IllegalTransition {
        status: BookingStatus,
        error: TransitionError,
    },
    /// The patient's online change cutoff before the appointment has passed.
    #[error("online changes close {cutoff_hours} hours before the appointment")]
    TooLateToChange {
        cutoff_hours: u32,
        clinic_phone: String,
    },
    /// The version compare-and-set failed: changed since it was read under the lock.
    #[error("booking {reference} was changed at the same moment")]
    ChangedMeanwhile { reference: String },
    #[error("booking not found")]
    NotFound,
    /// A manage link past its appointment by more than the clinic keeps links.
    #[error("the manage link has expired")]
    LinkExpired { clinic_phone: String },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why an online booking was refused for who the patient is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatientRule {
    #[error("the treatment needs a consultation first")]
    ConsultationFirst,
    #[error("the patient's email has as many live bookings as one may hold online")]
    EmailLimit,
    #[error("the patient's phone has as many live bookings as one may hold online")]
    PhoneLimit,
}

/// What is wrong with the number of sessions asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionsProblem {
    #[error("{treatment} is booked one session at a time")]
    OneAtATime { treatment: String },
    #[error("{treatment} is a course of {min} to {max} sessions")]
    OutOfRange {
        treatment: String,
        min: u32,
        max: u32,
    },
    #[error("{treatment} has no interval between sessions set")]
    NoInterval { treatment: String },
}
