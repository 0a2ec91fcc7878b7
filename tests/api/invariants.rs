//! What a clinic would check after any storm of changes, read straight from the
//! database: every live booking holds exactly the slots of its time, a cancelled one
//! holds none, no slot is held twice, and no two live bookings of one dermatologist
//! overlap.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::helpers::TestApp;
use dermabook::db::schema::{booking_slots, bookings, slots, treatments};

struct Held {
    dermatologist_id: i64,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
}

/// Panics, naming the booking, at the first broken rule.
pub fn assert_bookings_consistent(app: &TestApp) {
    let mut conn = app.conn();
    let conn = &mut *conn;
    let rows: Vec<(i64, i64, NaiveDateTime, NaiveDateTime, String, i32)> = bookings::table
        .inner_join(treatments::table)
        .select((
            bookings::id,
            bookings::dermatologist_id,
            bookings::starts_at,
            bookings::ends_at,
            bookings::status,
            treatments::buffer_minutes,
        ))
        .order(bookings::id)
        .load(conn)
        .expect("bookings");
    let claims: Vec<(i64, i64, i64, NaiveDateTime, NaiveDateTime)> = booking_slots::table
        .inner_join(slots::table)
        .select((
            booking_slots::booking_id,
            slots::id,
            slots::dermatologist_id,
            slots::starts_at,
            slots::ends_at,
        ))
        .order((booking_slots::booking_id, slots::starts_at))
        .load(conn)
        .expect("booking slots");
    let mut held: HashMap<i64, Vec<Held>> = HashMap::new();
    let mut seen_slots = std::collections::HashSet::new();
    for (booking, slot, dermatologist_id, starts_at, ends_at) in claims {
        assert!(seen_slots.insert(slot), "slot {slot} is held twice");
        held.entry(booking).or_default().push(Held {
            dermatologist_id,
            starts_at,
            ends_at,
        });
    }
    let mut live: Vec<(i64, i64, NaiveDateTime, NaiveDateTime)> = Vec::new();
    for (id, dermatologist_id, starts_at, ends_at, status, buffer) in rows {
        let slots = held.remove(&id).unwrap_or_default();
        if status == "cancelled" {
            assert!(
                slots.is_empty(),
                "cancelled booking {id} holds {} slots",
                slots.len()
            );
            continue;
        }
        assert!(
            !slots.is_empty(),
            "live booking {id} ({status}) holds no slot"
        );
        let needed_until = ends_at + Duration::minutes(i64::from(buffer));
        assert_eq!(
            slots[0].starts_at, starts_at,
            "booking {id}'s first slot is not its start"
        );
        for pair in slots.windows(2) {
            assert_eq!(
                pair[0].ends_at, pair[1].starts_at,
                "booking {id}'s slots have a gap"
            );
        }
        assert!(
            slots.iter().all(|s| s.dermatologist_id == dermatologist_id),
            "booking {id} holds another dermatologist's slot"
        );
        let last = slots.last().expect("a slot");
        assert!(
            last.ends_at >= needed_until,
            "booking {id}'s slots end before it does"
        );
        assert!(
            slots.len() == 1 || slots[slots.len() - 2].ends_at < needed_until,
            "booking {id} holds a slot more than its time needs"
        );
        live.push((id, dermatologist_id, starts_at, ends_at));
    }
    assert!(
        held.is_empty(),
        "slots held by no booking: {:?}",
        held.keys().collect::<Vec<_>>()
    );
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            let overlap = a.1 == b.1 && a.2 < b.3 && b.2 < a.3;
            assert!(!overlap, "live bookings {} and {} overlap", a.0, b.0);
        }
    }
}
