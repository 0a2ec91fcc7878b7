//! Turns weekly schedules into slot rows: loads each dermatologist's rules and time off,
//! asks `domain::schedule` for the slots, and syncs them with `store::slots`.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use diesel::QueryResult;

use super::Horizon;
use crate::db::{DbConnection, Exclusive, exclusive};
use crate::domain::local_time::local_days_utc;
use crate::domain::schedule;
use crate::store::slots::SyncOutcome;
use crate::store::{dermatologists, schedules, slots};

/// Generates slots for the local dates `from..=to` for one dermatologist or all active
/// ones; one transaction per dermatologist, so a long run never holds the lock for long.
/// Each dermatologist's run is exclusive across instances, so two servers extending the
/// horizon at the same moment neither fail nor add a slot twice.
pub fn generate(
    conn: &mut DbConnection,
    tz: Tz,
    dermatologist_id: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<SyncOutcome> {
    let ids: Vec<i64> = match dermatologist_id {
        Some(id) => vec![id],
        None => dermatologists::list(conn, false, None)?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    let (range_start, range_end) = local_days_utc(tz, from, to);
    let started = std::time::Instant::now();
    let mut total = SyncOutcome::default();
    for id in ids {
        let outcome = exclusive(conn, Exclusive::SlotGeneration(id), |conn| {
            let rules: Vec<_> = schedules::rules(conn, id)?
                .iter()
                .map(|r| r.to_rule())
                .collect();
            let time_off: Vec<_> = schedules::time_off_between(conn, id, range_start, range_end)?
                .into_iter()
                .map(|t| (t.starts_at, t.ends_at))
                .collect();
            let desired = schedule::slots_for(&rules, from, to, tz, &time_off);
            slots::sync_generated(conn, id, range_start, range_end, &desired, now)
        })?;
        total.added += outcome.added;
        total.removed += outcome.removed;
        total.conflicts.extend(outcome.conflicts);
    }
    crate::instruments::slot_generation(started.elapsed());
    Ok(total)
}

/// The rolling horizon: from today (in the clinic's zone, at the horizon's now) for its
/// days.
pub fn generate_horizon(
    conn: &mut DbConnection,
    horizon: Horizon,
    dermatologist_id: Option<i64>,
) -> QueryResult<SyncOutcome> {
    let tz = horizon.timezone;
    let today = horizon.now.and_utc().with_timezone(&tz).date_naive();
    generate(
        conn,
        tz,
        dermatologist_id,
        today,
        today + Duration::days(i64::from(horizon.days)),
        horizon.now,
    )
}
