//! Weekly schedules become slots; time off and blocks take them away; availability
//! finds where a treatment fits.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

/// A Monday at least two weeks ahead, in the clinic's zone, as YYYY-MM-DD.
fn a_monday_ahead() -> String {
    let mut day: NaiveDate = Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
        + Duration::days(14);
    while day.weekday().number_from_monday() != 1 {
        day += Duration::days(1);
    }
    day.to_string()
}

/// A new dermatologist who performs laser treatment (60 minutes plus a 15-minute buffer).
async fn laser_dermatologist(app: &TestApp, token: &str) -> i64 {
    let body = json!({"name": "Dr Test", "email": "test.dermatologist@example.com"});
    let id = app
        .post("/api/v1/admin/dermatologists", Some(token), &body)
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/admin/dermatologists/{id}/treatments");
    app.send_json(
        "PUT",
        &path,
        Some(token),
        &json!({"treatments": ["laser-treatment"]}),
    )
    .await;
    id
}

async fn put_schedule(app: &TestApp, token: &str, id: i64, rules: Value) -> Value {
    let path = format!("/api/v1/admin/dermatologists/{id}/schedule");
    let reply = app
        .send_json("PUT", &path, Some(token), &json!({ "rules": rules }))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// A server with a laser dermatologist who works Mondays 09:00-11:00 in 15-minute slots:
/// the app, a front-desk token, the dermatologist's id and a Monday ahead.
async fn laser_mondays_from_nine(backend: Backend) -> (TestApp, String, i64, String) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let id = laser_dermatologist(&app, &token).await;
    let monday = a_monday_ahead();
    put_schedule(
        &app,
        &token,
        id,
        json!([{"weekday": 1, "start": "09:00", "end": "11:00", "slot_minutes": 15}]),
    )
    .await;
    (app, token, id, monday)
}

async fn slots_on(app: &TestApp, token: &str, id: i64, day: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/v1/admin/slots?dermatologist={id}&from={day}&to={day}"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["slots"].as_array().unwrap().clone()
}

async fn laser_starts(app: &TestApp, id: i64, day: &str) -> Vec<String> {
    let path = format!(
        "/api/v1/availability?treatment=laser-treatment&from={day}&to={day}&dermatologist={id}"
    );
    let reply = app.get(&path, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["timezone"], "Europe/London");
    reply.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap()[11..16].to_string())
        .collect()
}

fn clock(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap()[11..16].to_string())
        .collect()
}

async fn a_schedule_makes_slots_that_availability_searches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let id = laser_dermatologist(&app, &token).await;
    let monday = a_monday_ahead();

    let saved = put_schedule(
        &app,
        &token,
        id,
        json!([{"weekday": 1, "start": "09:00", "end": "11:00", "slot_minutes": 15}]),
    )
    .await;
    assert_eq!(saved["rules"][0]["start"], "09:00");
    let added = saved["generation"]["added"].as_u64().unwrap();
    assert!(
        added >= 8 && added % 8 == 0,
        "eight slots each Monday of the horizon, got {added}"
    );

    let slots = slots_on(&app, &token, id, &monday).await;
    assert_eq!(
        clock(&slots),
        [
            "09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45"
        ]
    );
    assert!(
        slots[0]["starts_at"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{monday}T09:00:00"))
    );
    assert!(slots.iter().all(|s| s["status"] == "open"));

    // 75 minutes (60 + 15 buffer) fit from 09:00 to 09:45.
    assert_eq!(
        laser_starts(&app, id, &monday).await,
        ["09:00", "09:15", "09:30", "09:45"]
    );
    let search = app
        .get(
            &format!("/api/v1/availability?treatment=laser-treatment&from={monday}&to={monday}"),
            None,
        )
        .await;
    let first = search.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dermatologist_id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        &first["ends_at"].as_str().unwrap()[11..16],
        "10:00",
        "the appointment ends without its buffer"
    );

    let ten = slots[4]["id"].as_i64().unwrap();
    let blocked = app
        .send_json(
            "PATCH",
            &format!("/api/v1/admin/slots/{ten}"),
            Some(&token),
            &json!({"status": "blocked"}),
        )
        .await;
    assert_eq!(blocked.body["status"], "blocked");
    assert!(
        laser_starts(&app, id, &monday).await.is_empty(),
        "no 75-minute run remains"
    );
    app.send_json(
        "PATCH",
        &format!("/api/v1/admin/slots/{ten}"),
        Some(&token),
        &json!({"status": "open"}),
    )
    .await;
    assert_eq!(laser_starts(&app, id, &monday).await.len(), 4);

    let again = app
        .post(
            "/api/v1/admin/slots/generate",
            Some(&token),
            &json!({"from": monday, "to": monday, "dermatologist_id": id}),
        )
        .await;
    assert_eq!(
        (again.body["added"].as_u64(), again.body["removed"].as_u64()),
        (Some(0), Some(0)),
        "idempotent"
    );

    let shorter = put_schedule(
        &app,
        &token,
        id,
        json!([{"weekday": 1, "start": "09:00", "end": "10:00", "slot_minutes": 15}]),
    )
    .await;
    assert_eq!(
        shorter["generation"]["removed"].as_u64().unwrap(),
        added / 2
    );
    assert_eq!(
        clock(&slots_on(&app, &token, id, &monday).await),
        ["09:00", "09:15", "09:30", "09:45"]
    );
}

async fn booked_slots_survive_new_hours_and_time_off_removes_free_ones(backend: Backend) {
    let (app, token, id, monday) = laser_mondays_from_nine(backend).await;
    let nine = slots_on(&app, &token, id, &monday).await[0]["id"]
        .as_i64()
        .unwrap();
    app.execute_sql(&format!(
        "INSERT INTO patients (name, email, phone, created_at, updated_at) \
           VALUES ('Ana Silva', 'ana@example.com', '+44 7700 900123', '2026-01-01 00:00:00', '2026-01-01 00:00:00'); \
         INSERT INTO bookings (reference, patient_id, dermatologist_id, treatment_id, starts_at, ends_at, status, source, \
           manage_token_hash, created_at, updated_at) \
           VALUES ('DB-TEST01', 1, {id}, 5, '2030-01-07 09:00:00', '2030-01-07 09:15:00', 'confirmed', 'online', 'h', \
           '2026-01-01 00:00:00', '2026-01-01 00:00:00'); \
         INSERT INTO booking_slots (booking_id, slot_id) VALUES (1, {nine});"
    ));
    let blocked = app
        .send_json(
            "PATCH",
            &format!("/api/v1/admin/slots/{nine}"),
            Some(&token),
            &json!({"status": "blocked"}),
        )
        .await;
    blocked.problem(409);

    let moved = put_schedule(
        &app,
        &token,
        id,
        json!([{"weekday": 1, "start": "13:00", "end": "15:00", "slot_minutes": 15}]),
    )
    .await;
    let conflicts = moved["generation"]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["slot_id"], nine);
    let slots = slots_on(&app, &token, id, &monday).await;
    assert_eq!(clock(&slots)[..2], ["09:00", "13:00"]);
    assert_eq!(slots[0]["status"], "booked");
    assert_eq!(
        slots.len(),
        9,
        "the booked slot stays; the other morning slots went"
    );

    let off = json!({"starts_at": format!("{monday}T13:00:00Z"), "ends_at": format!("{monday}T14:00:00Z"), "reason": "training"});
    let created = app
        .post(
            &format!("/api/v1/admin/dermatologists/{id}/time-off"),
            Some(&token),
            &off,
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["generation"]["removed"], 4);
    let left = slots_on(&app, &token, id, &monday).await;
    assert_eq!(
        left.len(),
        5,
        "the booked 09:00 and the four afternoon slots outside the time off"
    );
    for slot in &left {
        let at = chrono::DateTime::parse_from_rfc3339(slot["starts_at"].as_str().unwrap())
            .unwrap()
            .naive_utc();
        let hour = at.format("%H:%M").to_string();
        assert!(
            !(hour.as_str() >= "13:00" && hour.as_str() < "14:00"),
            "a slot at {hour} UTC is inside the time off"
        );
    }
    let time_off_id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/dermatologists/{id}/time-off/{time_off_id}");
    assert_eq!(app.delete(&path, Some(&token)).await.status, 204);
    assert_eq!(
        slots_on(&app, &token, id, &monday).await.len(),
        9,
        "removing the time off gives the slots back"
    );

    // A sync that left a conflict is made again in full: the conflict is reported until
    // the booking lets the slot go, and then the slot goes.
    let that_monday = json!({"from": monday, "to": monday, "dermatologist_id": id});
    for _ in 0..2 {
        let again = app
            .post("/api/v1/admin/slots/generate", Some(&token), &that_monday)
            .await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        assert_eq!(again.body["conflicts"][0]["slot_id"], nine);
    }
    app.execute_sql("DELETE FROM booking_slots; UPDATE bookings SET status = 'cancelled';");
    let released = app
        .post("/api/v1/admin/slots/generate", Some(&token), &that_monday)
        .await;
    assert_eq!(released.body["removed"], 1, "{:?}", released.body);
    assert_eq!(released.body["conflicts"], json!([]));
    assert_eq!(
        clock(&slots_on(&app, &token, id, &monday).await)[0],
        "13:00"
    );
}

async fn bad_schedules_and_searches_name_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let rules = json!({"rules": [
        {"weekday": 1, "start": "09:00", "end": "12:00", "slot_minutes": 15},
        {"weekday": 1, "start": "11:00", "end": "13:00", "slot_minutes": 15},
        {"weekday": 2, "start": "12:00", "end": "09:00", "slot_minutes": 15},
        {"weekday": 3, "start": "9am", "end": "12:00", "slot_minutes": 15}
    ]});
    let reply = app
        .send_json(
            "PUT",
            "/api/v1/admin/dermatologists/1/schedule",
            Some(&token),
            &rules,
        )
        .await;
    assert_eq!(
        reply.invalid_fields(),
        ["rules[3].start", "rules[1].start", "rules[2].end"]
    );
    let kept = app
        .get("/api/v1/admin/dermatologists/1/schedule", Some(&token))
        .await;
    assert_eq!(
        kept.body["rules"].as_array().unwrap().len(),
        10,
        "the demo hours are unchanged"
    );

    let search = |query: &str| format!("/api/v1/availability?{query}");
    assert_eq!(
        app.get(
            &search("treatment=laser-treatment&from=2030-01-01&to=2030-03-01"),
            None
        )
        .await
        .invalid_fields(),
        ["to"]
    );
    assert_eq!(
        app.get(
            &search("treatment=laser-treatment&from=2030-01-05&to=2030-01-01"),
            None
        )
        .await
        .invalid_fields(),
        ["to"]
    );
    assert_eq!(
        app.get(
            &search("treatment=laser-treatment&from=soon&to=2030-01-01"),
            None
        )
        .await
        .invalid_fields(),
        ["from"]
    );
    app.get(
        &search("treatment=botox&from=2030-01-01&to=2030-01-02"),
        None,
    )
    .await
    .problem(404);
    app.get(
        &search("treatment=laser-treatment&from=2030-01-01&to=2030-01-02&dermatologist=999"),
        None,
    )
    .await
    .problem(404);
    app.get(&search("from=2030-01-01&to=2030-01-02"), None)
        .await
        .problem(400);
    let big = json!({"from": "2030-01-01", "to": "2031-06-01"});
    assert_eq!(
        app.post("/api/v1/admin/slots/generate", Some(&token), &big)
            .await
            .invalid_fields(),
        ["to"]
    );
}

async fn availability_respects_minimum_notice_and_the_demo_clinic_is_bookable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive();
    let to = today + Duration::days(20);
    let reply = app
        .get(
            &format!("/api/v1/availability?treatment=initial-consultation&from={today}&to={to}"),
            None,
        )
        .await;
    let slots = reply.body["slots"].as_array().unwrap();
    assert!(!slots.is_empty(), "the demo clinic offers consultations");
    let earliest = Utc::now() + Duration::minutes(120);
    let instants: Vec<_> = slots
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s["starts_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(instants.windows(2).all(|w| w[0] <= w[1]), "sorted by time");
    for slot in slots {
        let at = chrono::DateTime::parse_from_rfc3339(slot["starts_at"].as_str().unwrap()).unwrap();
        assert!(at >= earliest, "{at} is inside the minimum notice");
    }
}

/// A sync that would change nothing reads nothing: the schedule's slots hash to the last
/// settled sync's fingerprint. Time off written where no sync sees it changes what the
/// schedule wants, so the next sync is made in full.
async fn a_sync_with_nothing_to_do_is_skipped_until_the_schedule_changes(backend: Backend) {
    let (app, token, id, monday) = laser_mondays_from_nine(backend).await;
    let day: NaiveDate = monday.parse().unwrap();
    let tz = chrono_tz::Europe::London;
    let sync = || {
        let mut conn = app.conn();
        dermabook::scheduling::generate(&mut conn, tz, Some(id), day, day, dermabook::db::now())
            .unwrap()
    };
    assert_eq!(
        sync().unchanged,
        0,
        "a range not synced before is synced in full"
    );
    let again = sync();
    assert_eq!((again.unchanged, again.added, again.removed), (1, 0, 0));

    let utc = |h: u32| {
        tz.from_local_datetime(&day.and_hms_opt(h, 0, 0).unwrap())
            .unwrap()
            .naive_utc()
    };
    app.execute_sql(&format!(
        "INSERT INTO time_off (dermatologist_id, starts_at, ends_at, reason, created_at) \
         VALUES ({id}, '{}', '{}', 'training', '2026-01-01 00:00:00')",
        utc(9),
        utc(10)
    ));
    let changed = sync();
    assert_eq!((changed.unchanged, changed.removed), (0, 4));
    assert_eq!(
        clock(&slots_on(&app, &token, id, &monday).await),
        ["10:00", "10:15", "10:30", "10:45"]
    );
    assert_eq!(sync().unchanged, 1);

    // The command line may name a dermatologist who does not exist: nothing to sync,
    // nothing to mark, no error.
    let mut conn = app.conn();
    let nobody = dermabook::scheduling::generate(
        &mut conn,
        tz,
        Some(999_999),
        day,
        day,
        dermabook::db::now(),
    )
    .unwrap();
    assert_eq!((nobody.added, nobody.removed, nobody.unchanged), (0, 0, 0));
}

on_both_databases!(
    a_schedule_makes_slots_that_availability_searches,
    booked_slots_survive_new_hours_and_time_off_removes_free_ones,
    bad_schedules_and_searches_name_the_field,
    availability_respects_minimum_notice_and_the_demo_clinic_is_bookable,
    a_sync_with_nothing_to_do_is_skipped_until_the_schedule_changes,
);
