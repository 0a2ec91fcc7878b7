//! The patient's manage link (cancel, reschedule, to another dermatologist) and courses
//! of sessions booked all or nothing.

use chrono::{Duration, TimeZone};
use chrono_tz::Europe::London;
use serde_json::json;

use crate::fixtures::*;
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn the_manage_link_cancels_and_reschedules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let reply = app
        .book(&mesotherapy_with_consultation(&app, &at(day, 14, 0)).await)
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = reply.body["manage_token"].as_str().unwrap().to_string();
    let id = reply.body["booking"]["id"].as_i64().unwrap();
    let reference = reply.body["booking"]["reference"].clone();

    // Fifteen minutes later overlaps its own time: the shared slots simply stay held.
    let moved = app
        .reschedule(&token, &json!({"starts_at": at(day, 14, 15)}))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["booking"]["reference"], reference);
    assert_eq!(moved.body["booking"]["starts_at"], at(day, 14, 15));
    assert_eq!(held_slot_count(&app, id), 4);
    let starts = free_starts(&app, "initial-consultation", day).await;
    assert!(starts.contains(&at(day, 13, 30)) && !starts.contains(&at(day, 14, 15)));

    // To another dermatologist who performs it, on another day.
    let tuesday = day + Duration::days(1);
    let moved = app
        .reschedule(
            &token,
            &json!({"starts_at": at(tuesday, 9, 0), "dermatologist_id": 2}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["booking"]["dermatologist"]["id"], 2);
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&at(day, 14, 15))
    );
    let kinds = queued_kinds(&app, id);
    assert_eq!(kinds.iter().filter(|k| *k == "rescheduled").count(), 2);
    let ics_sequence: i32 = {
        use diesel::prelude::*;
        dermabook::db::schema::bookings::table
            .find(id)
            .select(dermabook::db::schema::bookings::ics_sequence)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(ics_sequence, 2);

    // Dr Lindqvist (3) does not do mesotherapy.
    let refused = app
        .reschedule(
            &token,
            &json!({"starts_at": at(tuesday, 10, 0), "dermatologist_id": 3}),
        )
        .await;
    assert_eq!(refused.invalid_fields(), ["dermatologist_id"]);

    let cancelled = app.cancel(&token, &json!({})).await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["booking"]["status"], "cancelled");
    assert_eq!(held_slot_count(&app, id), 0);
    let again = app.cancel(&token, &json!({})).await;
    assert!(
        again.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    let mut conn = app.conn();
    let emails = dermabook::store::outbox::for_booking(&mut conn, id).unwrap();
    let cancel_email = emails.iter().find(|e| e.kind == "cancelled").unwrap();
    let ics = cancel_email.ics.as_deref().unwrap();
    assert!(ics.contains("METHOD:CANCEL"), "{ics}");
    assert!(ics.contains(&format!("UID:{}@", reference.as_str().unwrap())));

    let desk = app.front_desk_token().await;
    let history = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(&desk))
        .await;
    let actions: Vec<&str> = history.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["booked", "rescheduled", "rescheduled", "cancelled"]
    );
    assert!(
        history.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["kind"] == "patient")
    );
    assert_eq!(history.body["history"][3]["before_status"], "confirmed");
    assert_eq!(history.body["history"][3]["after_status"], "cancelled");
}

async fn a_course_books_every_session_or_none(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut body = mesotherapy_with_consultation(&app, &at(day, 10, 0)).await;
    body["sessions"] = json!(9);
    assert_eq!(app.book(&body).await.invalid_fields(), ["sessions"]);

    body["sessions"] = json!(4);
    let reply = app.book(&body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let sessions = reply.body["course"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 4);
    let starts: Vec<chrono::DateTime<chrono::FixedOffset>> = sessions
        .iter()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s["booking"]["starts_at"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    for pair in starts.windows(2) {
        let gap = (pair[1] - pair[0]).num_days();
        assert!((12..=16).contains(&gap), "sessions {gap} days apart");
    }
    // Same wall-clock time where the day has it free (the demo days are empty).
    assert!(
        starts
            .iter()
            .all(|s| s.with_timezone(&London).format("%H:%M").to_string() == "10:00")
    );
    let tokens: Vec<&str> = sessions
        .iter()
        .map(|s| s["manage_token"].as_str().unwrap())
        .collect();
    let course_id = reply.body["course"]["id"].as_i64().unwrap();

    // Cancelling one session keeps the others.
    let one = app.cancel(tokens[1], &json!({})).await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    let desk = app.front_desk_token().await;
    let listed = app
        .get(
            "/api/v1/admin/bookings?status=confirmed&patient=carol@example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(
        listed.body["total"], 4,
        "the consultation and three sessions: {:?}",
        listed.body
    );
    // The whole course, from any session's link.
    let all = app.cancel(tokens[0], &json!({"course": true})).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    assert_eq!(all.body["cancelled"].as_array().unwrap().len(), 3);
    let sessions_left = app
        .get(
            "/api/v1/admin/bookings?status=confirmed&patient=carol@example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(sessions_left.body["total"], 1);
    assert!(
        all.body["cancelled"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["course_id"] == course_id)
    );

    // No room near the third session's day: nothing at all is booked.
    let third_day = day + Duration::days(28);
    app.execute_sql(&format!(
        "UPDATE slots SET status = 'blocked' WHERE dermatologist_id = 1 AND starts_at >= '{}' AND starts_at < '{}'",
        London.from_local_datetime(&(third_day - Duration::days(3)).and_hms_opt(0, 0, 0).unwrap()).single().unwrap().naive_utc(),
        London.from_local_datetime(&(third_day + Duration::days(3)).and_hms_opt(0, 0, 0).unwrap()).single().unwrap().naive_utc(),
    ));
    let before = app.get("/api/v1/admin/bookings", Some(&desk)).await.body["total"].clone();
    let refused = app.book(&body).await;
    assert!(
        refused.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("session 3"),
        "{:?}",
        refused.body
    );
    assert_eq!(
        app.get("/api/v1/admin/bookings", Some(&desk)).await.body["total"],
        before
    );
}

on_both_databases!(
    the_manage_link_cancels_and_reschedules,
    a_course_books_every_session_or_none,
);
