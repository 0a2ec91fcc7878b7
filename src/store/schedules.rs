//! Dermatologists' weekly rules and time off.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{schedule_rules, time_off};
use crate::domain::schedule::WeeklyRule;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = schedule_rules)]
pub struct ScheduleRule {
    pub id: i64,
    pub dermatologist_id: i64,
    pub weekday: i32,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    pub slot_minutes: i32,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

impl ScheduleRule {
    pub fn to_rule(&self) -> WeeklyRule {
        WeeklyRule {
            weekday: self.weekday.clamp(0, 7) as u32,
            start: self.start_time,
            end: self.end_time,
            slot_minutes: self.slot_minutes.max(1) as u32,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = time_off)]
pub struct TimeOff {
    pub id: i64,
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub reason: String,
    pub created_at: NaiveDateTime,
}

pub fn rules(conn: &mut DbConnection, dermatologist_id: i64) -> QueryResult<Vec<ScheduleRule>> {
    schedule_rules::table
        .filter(schedule_rules::dermatologist_id.eq(dermatologist_id))
        .order((
            schedule_rules::weekday,
            schedule_rules::start_time,
            schedule_rules::id,
        ))
        .select(ScheduleRule::as_select())
        .load(conn)
}

/// Replaces a dermatologist's weekly rules. Call inside a transaction, which holds the
/// dermatologist's lists until it ends.
pub fn replace_rules(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    rules: &[WeeklyRule],
) -> QueryResult<()> {
    crate::db::hold(
        conn,
        crate::db::Exclusive::DermatologistLists(dermatologist_id),
    )?;
    diesel::delete(
        schedule_rules::table.filter(schedule_rules::dermatologist_id.eq(dermatologist_id)),
    )
    .execute(conn)?;
    for rule in rules {
        diesel::insert_into(schedule_rules::table)
            .values((
                schedule_rules::dermatologist_id.eq(dermatologist_id),
                schedule_rules::weekday.eq(rule.weekday as i32),
                schedule_rules::start_time.eq(rule.start),
                schedule_rules::end_time.eq(rule.end),
                schedule_rules::slot_minutes.eq(rule.slot_minutes as i32),
                schedule_rules::valid_from.eq(rule.valid_from),
                schedule_rules::valid_until.eq(rule.valid_until),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Time off of one dermatologist that overlaps `[from, to)`.
pub fn time_off_between(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<TimeOff>> {
    time_off::table
        .filter(time_off::dermatologist_id.eq(dermatologist_id))
        .filter(time_off::starts_at.lt(to))
        .filter(time_off::ends_at.gt(from))
        .order(time_off::starts_at)
        .select(TimeOff::as_select())
        .load(conn)
}

pub fn list_time_off(conn: &mut DbConnection, dermatologist_id: i64) -> QueryResult<Vec<TimeOff>> {
    time_off::table
        .filter(time_off::dermatologist_id.eq(dermatologist_id))
        .order(time_off::starts_at)
        .select(TimeOff::as_select())
        .load(conn)
}

pub fn insert_time_off(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    reason: &str,
) -> QueryResult<TimeOff> {
    diesel::insert_into(time_off::table)
        .values((
            time_off::dermatologist_id.eq(dermatologist_id),
            time_off::starts_at.eq(starts_at),
            time_off::ends_at.eq(ends_at),
            time_off::reason.eq(reason),
            time_off::created_at.eq(crate::db::now()),
        ))
        .returning(time_off::all_columns)
        .get_result(conn)
}

/// Removes one period of time off of this dermatologist; the removed row, if there was one.
pub fn delete_time_off(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    id: i64,
) -> QueryResult<Option<TimeOff>> {
    diesel::delete(
        time_off::table
            .filter(time_off::id.eq(id))
            .filter(time_off::dermatologist_id.eq(dermatologist_id)),
    )
    .returning(time_off::all_columns)
    .get_result(conn)
    .optional()
}
