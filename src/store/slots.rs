//! Bookable slots: listing them with who holds them, finding free ones, and bringing the
//! generated ones in line with the schedule.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{booking_slots, dermatologists, slot_sync_marks, slots};
use crate::db::stamp::Stamp;
use crate::domain::availability::FreeSlot;
use crate::domain::schedule::SlotTime;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = slots)]
pub struct Slot {
    pub id: i64,
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    /// `open` or `blocked`; a slot a booking holds is `booked` only in views.
    pub status: String,
    /// `generated` from the schedule, or `manual` (opened by the front desk).
    pub source: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = slots)]
struct NewSlot<'a> {
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    status: &'a str,
    source: &'a str,
    created_at: NaiveDateTime,
}

/// A slot and the booking holding it, if any.
pub type ClaimedSlot = (Slot, Option<i64>);

/// Slots starting in `[from, to)`, by dermatologist and start, with their bookings.
pub fn between(
    conn: &mut DbConnection,
    dermatologist_id: Option<i64>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<ClaimedSlot>> {
    let mut query = slots::table
        .left_join(booking_slots::table)
        .filter(slots::starts_at.ge(from))
        .filter(slots::starts_at.lt(to))
        .order((slots::dermatologist_id, slots::starts_at))
        .select((Slot::as_select(), booking_slots::booking_id.nullable()))
        .into_boxed();
    if let Some(id) = dermatologist_id {
        query = query.filter(slots::dermatologist_id.eq(id));
    }
    query.load(conn)
}

/// One page of a dermatologist's slots starting in `[from, to)`, in time order, with
/// whether each is free (open, held by no booking), only free or only busy ones when
/// `free` says so; and how many match in all.
pub fn page(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    (from, to): (NaiveDateTime, NaiveDateTime),
    free: Option<bool>,
    limit: i64,
) -> QueryResult<(Vec<(Slot, bool)>, i64)> {
    macro_rules! matching {
        () => {{
            let mut query = slots::table
                .left_join(booking_slots::table)
                .filter(slots::dermatologist_id.eq(dermatologist_id))
                .filter(slots::starts_at.ge(from))
                .filter(slots::starts_at.lt(to))
                .into_boxed();
            match free {
                Some(true) => {
                    query = query
                        .filter(slots::status.eq("open"))
                        .filter(booking_slots::booking_id.nullable().is_null())
                }
                Some(false) => {
                    query = query.filter(
                        slots::status
                            .ne("open")
                            .or(booking_slots::booking_id.nullable().is_not_null()),
                    )
                }
                None => {}
            }
            query
        }};
    }
    let total = matching!().count().get_result(conn)?;
    let rows: Vec<ClaimedSlot> = matching!()
        .order(slots::starts_at)
        .limit(limit)
        .select((Slot::as_select(), booking_slots::booking_id.nullable()))
        .load(conn)?;
    let rows = rows
        .into_iter()
        .map(|(slot, booking)| {
            let free = slot.status == "open" && booking.is_none();
            (slot, free)
        })
        .collect();
    Ok((rows, total))
}

/// Open slots nobody holds, of the given dermatologists, starting in `[from, to)`,
/// sorted by dermatologist and start: the input of availability search.
pub fn free(
    conn: &mut DbConnection,
    dermatologist_ids: &[i64],
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<FreeSlot>> {
    load_free(
        conn,
        slots::table
            .left_join(booking_slots::table)
            .filter(booking_slots::slot_id.nullable().is_null())
            .filter(slots::dermatologist_id.eq_any(dermatologist_ids))
            .into_boxed(),
        from,
        to,
    )
}

/// Open slots of one dermatologist in `[from, to)` that a booking may take: those nobody
/// holds, and those `booking` itself holds already (a reschedule may overlap its own time).
pub fn claimable(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
    booking: Option<i64>,
) -> QueryResult<Vec<FreeSlot>> {
    let query = slots::table
        .left_join(booking_slots::table)
        .filter(slots::dermatologist_id.eq(dermatologist_id))
        .into_boxed();
    let query = match booking {
        Some(id) => query.filter(
            booking_slots::booking_id
                .nullable()
                .is_null()
                .or(booking_slots::booking_id.nullable().eq(id)),
        ),
        None => query.filter(booking_slots::slot_id.nullable().is_null()),
    };
    load_free(conn, query, from, to)
}

type SlotsWithHolders<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::LeftJoin<slots::table, booking_slots::table>,
    <DbConnection as diesel::Connection>::Backend,
>;

fn load_free(
    conn: &mut DbConnection,
    query: SlotsWithHolders<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<FreeSlot>> {
    let rows: Vec<(i64, i64, Stamp, Stamp)> = query
        .filter(slots::status.eq("open"))
        .filter(slots::starts_at.ge(from))
        .filter(slots::starts_at.lt(to))
        .order((slots::dermatologist_id, slots::starts_at))
        .select((
            slots::id,
            slots::dermatologist_id,
            slots::starts_at,
            slots::ends_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, dermatologist_id, starts_at, ends_at)| FreeSlot {
            id,
            dermatologist_id,
            starts_at: starts_at.0,
            ends_at: ends_at.0,
        })
        .collect())
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<ClaimedSlot>> {
    slots::table
        .left_join(booking_slots::table)
        .filter(slots::id.eq(id))
        .select((Slot::as_select(), booking_slots::booking_id.nullable()))
        .first(conn)
        .optional()
}

/// Locks the slot's row against claims until the transaction ends (on PostgreSQL; SQLite's
/// writers take turns). `FOR UPDATE` is the one row lock that a claim's foreign-key check
/// (`FOR KEY SHARE`) waits for: a claim already made holds the lock first, so the caller's
/// next read sees it; a claim made after waits for the caller to commit, then sees its
/// change (see [`any_closed`]). A slot that does not exist locks nothing.
pub fn lock_against_claims(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        slots::table
            .find(id)
            .select(slots::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// Whether any of the slots is no longer open. A booking asks it after its claims, which
/// waited for any transaction that had locked a slot to change it: read then, in a new
/// statement, a block committed meanwhile shows.
pub fn any_closed(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        slots::table
            .filter(slots::id.eq_any(ids))
            .filter(slots::status.ne("open")),
    ))
    .get_result(conn)
}

pub fn set_status(conn: &mut DbConnection, id: i64, status: &str) -> QueryResult<()> {
    diesel::update(slots::table.find(id))
        .set(slots::status.eq(status))
        .execute(conn)
        .map(|_| ())
}

/// Whether any slot of the dermatologist overlaps `[starts_at, ends_at)`.
pub fn any_overlapping(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        slots::table
            .filter(slots::dermatologist_id.eq(dermatologist_id))
            .filter(slots::starts_at.lt(ends_at))
            .filter(slots::ends_at.gt(starts_at)),
    ))
    .get_result(conn)
}

/// Opens one slot by hand.
pub fn insert_manual(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
) -> QueryResult<Slot> {
    let row = NewSlot {
        dermatologist_id,
        starts_at,
        ends_at,
        status: "open",
        source: "manual",
        created_at: crate::db::now(),
    };
    diesel::insert_into(slots::table)
        .values(&row)
        .returning(slots::all_columns)
        .get_result(conn)
}

/// A booked slot that the schedule no longer covers: the front desk must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub slot_id: i64,
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub booking_id: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub added: usize,
    pub removed: usize,
    pub conflicts: Vec<Conflict>,
    /// Free slots no longer wanted that a booking in progress held, so they stayed.
    pub spared: usize,
    /// Dermatologists whose slots already matched their schedule, and were not read.
    pub unchanged: usize,
}

impl SyncOutcome {
    /// Whether the slots now match the schedule exactly: nothing was left for the front
    /// desk or for the next sync.
    pub fn settled(&self) -> bool {
        self.conflicts.is_empty() && self.spared == 0
    }

    pub fn add(&mut self, other: SyncOutcome) {
        self.added += other.added;
        self.removed += other.removed;
        self.conflicts.extend(other.conflicts);
        self.spared += other.spared;
        self.unchanged += other.unchanged;
    }
}

/// The fingerprint of the dermatologist's last sync, when that sync was settled.
pub fn sync_mark(conn: &mut DbConnection, dermatologist_id: i64) -> QueryResult<Option<String>> {
    slot_sync_marks::table
        .find(dermatologist_id)
        .select(slot_sync_marks::fingerprint)
        .first(conn)
        .optional()
}

/// Records the fingerprint of the sync just made, or forgets the last one when this sync
/// left something unsettled (the next one must then read the slots). Call in the sync's
/// transaction.
pub fn record_sync(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    fingerprint: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(slot_sync_marks::table.find(dermatologist_id)).execute(conn)?;
    if let Some(fingerprint) = fingerprint {
        // Made from the dermatologist's row: a sync for an id that names no one (the
        // command line takes any) marks nothing.
        let mark = dermatologists::table.find(dermatologist_id).select((
            dermatologists::id,
            fingerprint.into_sql::<diesel::sql_types::Text>(),
            now.into_sql::<diesel::sql_types::Timestamp>(),
        ));
        diesel::insert_into(slot_sync_marks::table)
            .values(mark)
            .into_columns((
                slot_sync_marks::dermatologist_id,
                slot_sync_marks::fingerprint,
                slot_sync_marks::synced_at,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Makes one dermatologist's generated slots in `[from, to)` match `desired`: adds the
/// missing future ones, removes free future ones no longer wanted, and reports booked
/// ones no longer covered. Manual slots, booked slots and past slots are never touched.
/// Call inside a write transaction.
pub fn sync_generated(
    conn: &mut DbConnection,
    dermatologist_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
    desired: &[SlotTime],
    now: NaiveDateTime,
) -> QueryResult<SyncOutcome> {
    let wanted: HashMap<NaiveDateTime, NaiveDateTime> =
        desired.iter().map(|s| (s.starts_at, s.ends_at)).collect();
    let mut kept: BTreeMap<NaiveDateTime, NaiveDateTime> = BTreeMap::new();
    let mut unwanted = Vec::new();
    let mut outcome = SyncOutcome::default();
    // Only what is compared, timestamps read without chrono's parser: start-up and the
    // hourly housekeeping read every slot of the horizon here.
    let present: Vec<(i64, Stamp, Stamp, String, Option<i64>)> = slots::table
        .left_join(booking_slots::table)
        .filter(slots::dermatologist_id.eq(dermatologist_id))
        .filter(slots::starts_at.ge(from))
        .filter(slots::starts_at.lt(to))
        .order(slots::starts_at)
        .select((
            slots::id,
            slots::starts_at,
            slots::ends_at,
            slots::source,
            booking_slots::booking_id.nullable(),
        ))
        .load(conn)?;
    for (slot_id, Stamp(starts_at), Stamp(ends_at), source, booking) in present {
        let still_wanted = wanted.get(&starts_at) == Some(&ends_at);
        if source == "manual" || still_wanted || starts_at <= now {
            kept.insert(starts_at, ends_at);
        } else if let Some(booking_id) = booking {
            kept.insert(starts_at, ends_at);
            outcome.conflicts.push(Conflict {
                slot_id,
                dermatologist_id,
                starts_at,
                ends_at,
                booking_id,
            });
        } else {
            unwanted.push(slot_id);
        }
    }
    for ids in unwanted.chunks(500) {
        // A booking claiming one of them right now (on another connection) holds a lock
        // on it: skip it rather than wait and then fail on the foreign key. One claimed
        // since it was read and already committed is spared by the NOT EXISTS.
        let free = lock_skipping_claimed(conn, ids)?;
        let unclaimed = diesel::dsl::not(diesel::dsl::exists(
            booking_slots::table.filter(booking_slots::slot_id.eq(slots::id)),
        ));
        outcome.removed += diesel::delete(
            slots::table
                .filter(slots::id.eq_any(&free))
                .filter(unclaimed),
        )
        .execute(conn)?;
        // Whatever stayed is still there: no new slot may overlap it.
        let stayed: Vec<(NaiveDateTime, NaiveDateTime)> = slots::table
            .filter(slots::id.eq_any(ids))
            .select((slots::starts_at, slots::ends_at))
            .load(conn)?;
        outcome.spared += stayed.len();
        kept.extend(stayed);
    }
    let created_at = crate::db::now();
    let new: Vec<NewSlot> = desired
        .iter()
        .filter(|s| s.starts_at > now && s.starts_at >= from && s.starts_at < to)
        // Kept slots do not overlap each other, so the nearest one starting before this
        // one ends is the only one that could overlap it.
        .filter(|s| {
            kept.range(..s.ends_at)
                .next_back()
                .is_none_or(|(_, kept_end)| *kept_end <= s.starts_at)
        })
        .map(|s| NewSlot {
            dermatologist_id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            status: "open",
            source: "generated",
            created_at,
        })
        .collect();
    outcome.added = insert_many(conn, &new)?;
    Ok(outcome)
}

/// Locks the slots among `ids` that no transaction is claiming now, and returns them. On
/// SQLite the write transaction already excludes every other writer.
fn lock_skipping_claimed(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    match conn {
        DbConnection::Postgres(pg) => slots::table
            .filter(slots::id.eq_any(ids))
            .select(slots::id)
            .for_update()
            .skip_locked()
            .load(pg),
        DbConnection::Sqlite(_) => Ok(ids.to_vec()),
    }
}

/// Inserts in batches, on the concrete connection: diesel's multi-backend connection has
/// no batch insert, and a year of slots one statement at a time is needlessly slow. A
/// slot that is already there (the same dermatologist and start) is left as it is.
fn insert_many(conn: &mut DbConnection, rows: &[NewSlot]) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(500) {
        inserted += match conn {
            DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(slots::table)
                .values(chunk)
                .execute(c)?,
            DbConnection::Postgres(c) => diesel::insert_into(slots::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
    }
    Ok(inserted)
}
