//! Turns weekly schedules into slot rows: loads each dermatologist's rules and time off,
//! asks `domain::schedule` for the slots, and syncs them with `store::slots`, unless the
//! last sync, recorded by its fingerprint, already made them so.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use diesel::QueryResult;

use super::Horizon;
use crate::db::{DbConnection, Exclusive, exclusive};
use crate::domain::local_time::local_days_utc;
use crate::domain::schedule::{self, SlotTime};
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
    let range = local_days_utc(tz, from, to);
    let started = std::time::Instant::now();
    let mut total = SyncOutcome::default();
    for id in ids {
        // The check is made under the dermatologist's lock, which every sync holds: a
        // mark read here was written with the slots it describes, and the schedule read
        // here is the latest committed.
        let outcome = exclusive(conn, Exclusive::SlotGeneration(id), |conn| {
            let desired = desired_slots(conn, id, tz, (from, to), range)?;
            let fingerprint = schedule::sync_fingerprint(range, &desired);
            if slots::sync_mark(conn, id)?.as_deref() == Some(fingerprint.as_str()) {
                return Ok(SyncOutcome {
                    unchanged: 1,
                    ..SyncOutcome::default()
                });
            }
            let outcome = slots::sync_generated(conn, id, range.0, range.1, &desired, now)?;
            let settled = outcome.settled().then_some(fingerprint.as_str());
            slots::record_sync(conn, id, settled, now)?;
            Ok::<_, diesel::result::Error>(outcome)
        })?;
        total.add(outcome);
    }
    crate::instruments::slot_generation(started.elapsed());
    Ok(total)
}

/// The slots the dermatologist's rules make on the local dates `from..=to`, less their
/// time off in the UTC `range` those dates cover.
fn desired_slots(
    conn: &mut DbConnection,
    id: i64,
    tz: Tz,
    (from, to): (NaiveDate, NaiveDate),
    range: (NaiveDateTime, NaiveDateTime),
) -> QueryResult<Vec<SlotTime>> {
    let rules: Vec<_> = schedules::rules(conn, id)?
        .iter()
        .map(|r| r.to_rule())
        .collect();
    let time_off: Vec<_> = schedules::time_off_between(conn, id, range.0, range.1)?
        .into_iter()
        .map(|t| (t.starts_at, t.ends_at))
        .collect();
    Ok(schedule::slots_for(&rules, from, to, tz, &time_off))
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
