//! Scheduling use cases: a dermatologist's weekly rules and time off (each change
//! regenerates that dermatologist's slots over the horizon), slots opened by hand,
//! blocking and reopening slots, and generation itself. Its own error carries facts;
//! `api/problem.rs` words them.

pub mod generation;

use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;

use crate::db::{DbConnection, write_transaction};
use crate::domain::schedule::WeeklyRule;
use crate::store::dermatologists;
use crate::store::schedules::{self, ScheduleRule, TimeOff};
use crate::store::slots::{self, ClaimedSlot, Slot, SyncOutcome};

pub use generation::{generate, generate_horizon};

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error("no such dermatologist")]
    UnknownDermatologist,
    #[error("time off not found")]
    TimeOffNotFound,
    #[error("slot not found")]
    SlotNotFound,
    /// A manual slot must last 5 minutes to 8 hours.
    #[error("a slot lasts 5 minutes to 8 hours")]
    SlotLength,
    #[error("the slot overlaps another slot of this dermatologist")]
    SlotOverlaps,
    /// A booking holds the slot; its status follows the booking.
    #[error("the slot is booked")]
    SlotBooked,
    #[error("time off ends before it starts")]
    TimeOffBackwards,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Where slots are generated: the clinic's zone, how many days ahead, from when.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub timezone: Tz,
    pub days: u32,
    pub now: NaiveDateTime,
}

impl Horizon {
    /// The configured horizon, seen from `now`.
    pub fn of(settings: &crate::config::Settings, now: NaiveDateTime) -> Horizon {
        Horizon {
            timezone: settings.clinic.timezone,
            days: settings.slots.horizon_days,
            now,
        }
    }
}

fn require_dermatologist(conn: &mut DbConnection, id: i64) -> Result<(), SchedulingError> {
    dermatologists::by_id(conn, id)?
        .map(|_| ())
        .ok_or(SchedulingError::UnknownDermatologist)
}

/// The dermatologist's weekly rules.
pub fn rules(conn: &mut DbConnection, id: i64) -> Result<Vec<ScheduleRule>, SchedulingError> {
    require_dermatologist(conn, id)?;
    Ok(schedules::rules(conn, id)?)
}

/// Replaces the dermatologist's weekly rules (already checked by `domain::schedule`)
/// and brings their slots in line over the horizon.
pub fn replace_rules(
    conn: &mut DbConnection,
    horizon: Horizon,
    id: i64,
    rules: &[WeeklyRule],
) -> Result<(Vec<ScheduleRule>, SyncOutcome), SchedulingError> {
    write_transaction(conn, |conn| {
        require_dermatologist(conn, id)?;
        Ok::<_, SchedulingError>(schedules::replace_rules(conn, id, rules)?)
    })?;
    let outcome = generate_horizon(conn, horizon, Some(id))?;
    Ok((schedules::rules(conn, id)?, outcome))
}

/// The dermatologist's time off.
pub fn time_off(conn: &mut DbConnection, id: i64) -> Result<Vec<TimeOff>, SchedulingError> {
    require_dermatologist(conn, id)?;
    Ok(schedules::list_time_off(conn, id)?)
}

/// Adds time off and removes the free slots it covers.
pub fn add_time_off(
    conn: &mut DbConnection,
    horizon: Horizon,
    id: i64,
    (starts_at, ends_at): (NaiveDateTime, NaiveDateTime),
    reason: &str,
) -> Result<(TimeOff, SyncOutcome), SchedulingError> {
    if ends_at <= starts_at {
        return Err(SchedulingError::TimeOffBackwards);
    }
    let created = write_transaction(conn, |conn| {
        require_dermatologist(conn, id)?;
        Ok::<_, SchedulingError>(schedules::insert_time_off(
            conn, id, starts_at, ends_at, reason,
        )?)
    })?;
    let outcome = generate_horizon(conn, horizon, Some(id))?;
    Ok((created, outcome))
}

/// Removes time off and gives its hours back to the schedule.
pub fn remove_time_off(
    conn: &mut DbConnection,
    horizon: Horizon,
    id: i64,
    time_off_id: i64,
) -> Result<SyncOutcome, SchedulingError> {
    write_transaction(conn, |conn| {
        schedules::delete_time_off(conn, id, time_off_id)?.ok_or(SchedulingError::TimeOffNotFound)
    })?;
    Ok(generate_horizon(conn, horizon, Some(id))?)
}

/// Opens one slot by hand; it may not overlap another of the dermatologist's.
pub fn open_slot(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
) -> Result<Slot, SchedulingError> {
    let length = ends_at - starts_at;
    if length < Duration::minutes(5) || length > Duration::hours(8) {
        return Err(SchedulingError::SlotLength);
    }
    write_transaction(conn, |conn| {
        require_dermatologist(conn, dermatologist_id)?;
        if slots::any_overlapping(conn, dermatologist_id, starts_at, ends_at)? {
            return Err(SchedulingError::SlotOverlaps);
        }
        Ok(slots::insert_manual(
            conn,
            dermatologist_id,
            starts_at,
            ends_at,
        )?)
    })
}

/// Blocks a free slot or reopens it; a booked slot follows its booking.
pub fn set_slot_open(
    conn: &mut DbConnection,
    slot_id: i64,
    open: bool,
) -> Result<ClaimedSlot, SchedulingError> {
    write_transaction(conn, |conn| {
        // Locked before asking whether a booking holds it: a booking racing the block
        // either holds it already, and the answer below says so, or finds it blocked.
        slots::lock_against_claims(conn, slot_id)?;
        let (_, booking) = slots::by_id(conn, slot_id)?.ok_or(SchedulingError::SlotNotFound)?;
        if booking.is_some() {
            return Err(SchedulingError::SlotBooked);
        }
        slots::set_status(conn, slot_id, if open { "open" } else { "blocked" })?;
        slots::by_id(conn, slot_id)?.ok_or(SchedulingError::SlotNotFound)
    })
}

/// Generates slots for local dates, for one dermatologist (who must exist) or all.
pub fn generate_range(
    conn: &mut DbConnection,
    timezone: Tz,
    dermatologist_id: Option<i64>,
    (from, to): (chrono::NaiveDate, chrono::NaiveDate),
    now: NaiveDateTime,
) -> Result<SyncOutcome, SchedulingError> {
    if let Some(id) = dermatologist_id {
        require_dermatologist(conn, id)?;
    }
    Ok(generate(conn, timezone, dermatologist_id, from, to, now)?)
}
