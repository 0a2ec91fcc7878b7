//! The front desk's day: legal transitions only, the list and its filters, the audit
//! history, the agenda, and the availability cache.

use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn the_front_desk_runs_the_day_with_legal_transitions_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let mut ids = Vec::new();
    for (i, hour) in [9, 10, 11, 14].into_iter().enumerate() {
        let reply = app
            .book(&consultation(
                &at(day, hour, 0),
                &format!("p{i}@example.com"),
            ))
            .await;
        ids.push(reply.body["booking"]["id"].as_i64().unwrap());
    }
    let page = app
        .get(
            &format!("/api/v1/admin/bookings?date={day}&dermatologist=1&per_page=3&page=2"),
            Some(&desk),
        )
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.body["total"], 4);
    assert_eq!(page.body["bookings"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["bookings"][0]["starts_at"], at(day, 14, 0));
    let other_day = app
        .get(
            &format!("/api/v1/admin/bookings?date={}", day + Duration::days(1)),
            Some(&desk),
        )
        .await;
    assert_eq!(other_day.body["total"], 0);
    assert_eq!(
        app.get("/api/v1/admin/bookings?status=booked", Some(&desk))
            .await
            .invalid_fields(),
        ["status"]
    );

    // Not before the appointment has started.
    let early = app
        .post(
            &format!("/api/v1/admin/bookings/{}/complete", ids[0]),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert!(
        early.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("not started")
    );
    // Once the first two have started (the server's clock moved to 10:30 that day),
    // complete and no-show are allowed.
    let half_past_ten = London
        .from_local_datetime(&day.and_hms_opt(10, 30, 0).unwrap())
        .single()
        .unwrap();
    app.travel_to(half_past_ten.with_timezone(&Utc));
    // Weeks have passed for the server: the morning's session has expired.
    assert_eq!(
        app.get("/api/v1/admin/bookings", Some(&desk)).await.status,
        401
    );
    let desk = app.front_desk_token().await;
    let done = app
        .post(
            &format!("/api/v1/admin/bookings/{}/complete", ids[0]),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(done.body["status"], "completed", "{:?}", done.body);
    let absent = app
        .post(
            &format!("/api/v1/admin/bookings/{}/no-show", ids[1]),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(absent.body["status"], "no_show", "{:?}", absent.body);

    let cancelled = app
        .post(
            &format!("/api/v1/admin/bookings/{}/cancel", ids[2]),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let illegal = app
        .post(
            &format!("/api/v1/admin/bookings/{}/complete", ids[2]),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(
        illegal.problem(409)["detail"],
        "a cancelled booking cannot be completed (status: cancelled)"
    );

    // The desk may move a booking sooner than the notice allows patients.
    let moved = app
        .post(
            &format!("/api/v1/admin/bookings/{}/reschedule", ids[3]),
            Some(&desk),
            &json!({"starts_at": at(day, 15, 0)}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["starts_at"], at(day, 15, 0));
    assert_eq!(moved.body["version"], 2);
    let history = app
        .get(
            &format!("/api/v1/admin/bookings/{}/history", ids[3]),
            Some(&desk),
        )
        .await;
    assert_eq!(history.body["history"][1]["actor"]["kind"], "staff");
    assert_eq!(
        history.body["history"][1]["details"]["to"]
            .as_str()
            .unwrap()
            .len(),
        25
    );

    let missing = app
        .get("/api/v1/admin/bookings/999999/history", Some(&desk))
        .await;
    missing.problem(404);
    let anonymous = app.get("/api/v1/admin/bookings", None).await;
    anonymous.problem(401);
}

async fn the_agenda_shows_each_dermatologists_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 10, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);

    let desk = app.front_desk_token().await;
    let agenda = app
        .get(&format!("/api/v1/admin/agenda?date={day}"), Some(&desk))
        .await;
    assert_eq!(agenda.status, 200, "{:?}", agenda.body);
    assert_eq!(agenda.body["timezone"], "Europe/London");
    let people = agenda.body["dermatologists"].as_array().unwrap();
    assert_eq!(people.len(), 4);
    let hart = &people[0];
    assert_eq!(hart["id"], 1);
    // 09:00-12:30 and 13:30-17:00 in 15-minute slots.
    assert_eq!(hart["slots"].as_array().unwrap().len(), 28);
    let booked_slots: Vec<&Value> = hart["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "booked")
        .collect();
    assert_eq!(booked_slots.len(), 2);
    assert_eq!(hart["bookings"][0]["patient"]["name"], "Ada Lovelace");
    assert_eq!(hart["bookings"][0]["starts_at"], at(day, 10, 0));
    assert!(people[1]["bookings"].as_array().unwrap().is_empty());

    // A dermatologist's own login sees their own day, and only that.
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/admin/staff",
            Some(&admin),
            &json!({"email": "amelia@harbourskin.example", "name": "Amelia Hart", "role": "dermatologist",
                    "password": "a long enough password", "dermatologist_id": 1}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let hart_login = app
        .token("amelia@harbourskin.example", "a long enough password")
        .await;
    let own = app
        .get(
            &format!("/api/v1/admin/agenda?date={day}"),
            Some(&hart_login),
        )
        .await;
    assert_eq!(own.body["dermatologists"].as_array().unwrap().len(), 1);
    assert_eq!(
        own.body["dermatologists"][0]["bookings"][0]["reference"],
        booked.body["booking"]["reference"]
    );
    let other = app
        .get(
            &format!("/api/v1/admin/agenda?date={day}&dermatologist=2"),
            Some(&hart_login),
        )
        .await;
    other.problem(403);
    let bookings = app.get("/api/v1/admin/bookings", Some(&hart_login)).await;
    bookings.problem(403);
    assert_eq!(
        app.get("/api/v1/admin/agenda?date=monday", Some(&desk))
            .await
            .invalid_fields(),
        ["date"]
    );
}

async fn availability_is_cached_until_a_change_and_gzipped_on_request(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.booking.availability_cache_ms = 60_000).await;
    let day = monday_ahead();
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&at(day, 10, 0))
    );
    // A change behind the server's back is not seen while the answer is cached...
    app.execute_sql("UPDATE slots SET status = 'blocked' WHERE dermatologist_id = 1");
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&at(day, 10, 0))
    );
    // ...but any change made through the server is, at once.
    let booked = app
        .book(&consultation(&at(day, 11, 0), "ada@example.com"))
        .await;
    assert_eq!(
        booked.status, 409,
        "the slots are blocked: {:?}",
        booked.body
    );
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&at(day, 10, 0))
    );
    let desk = app.front_desk_token().await;
    let reopened = app
        .get(
            &format!("/api/v1/admin/slots?dermatologist=1&from={day}&to={day}"),
            Some(&desk),
        )
        .await;
    let first = reopened.body["slots"][0]["id"].as_i64().unwrap();
    let patch = app
        .send_json(
            "PATCH",
            &format!("/api/v1/admin/slots/{first}"),
            Some(&desk),
            &json!({"status": "open"}),
        )
        .await;
    assert_eq!(patch.status, 200);
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .is_empty()
    );

    let path = format!("/api/v1/availability?treatment=laser-treatment&from={day}&to={day}");
    let (plain, plain_bytes) = app.get_raw(&path, &[]).await;
    assert!(plain.headers.get("content-encoding").is_none());
    let (zipped, zipped_bytes) = app.get_raw(&path, &[("Accept-Encoding", "br, gzip")]).await;
    assert_eq!(zipped.headers.get("content-encoding").unwrap(), "gzip");
    assert_eq!(zipped.headers.get("vary").unwrap(), "Accept-Encoding");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped_bytes[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain_bytes);
    let body: Value = serde_json::from_slice(&plain_bytes).unwrap();
    assert!(!body["slots"].as_array().unwrap().is_empty());
}

on_both_databases!(
    the_front_desk_runs_the_day_with_legal_transitions_only,
    the_agenda_shows_each_dermatologists_day,
    availability_is_cached_until_a_change_and_gzipped_on_request,
);
