//! Requests that race to create: fifty clients for one time, a retried request with its
//! Idempotency-Key, and a new patient's simultaneous first bookings.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::{Backend, Reply, TestApp};
use crate::on_both_databases;

async fn fifty_clients_racing_for_one_time_get_exactly_one_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let laser_answers = laser_questions(&app).await;
    // Every request below covers 10:30-10:45, so at most one may win.
    let mut requests = Vec::new();
    for i in 0..52 {
        let email = format!("racer{i}@example.com");
        let (path, body) = match i % 4 {
            0 => ("/api/v1/bookings", consultation(&at(day, 10, 30), &email)),
            1 => ("/api/v1/bookings", consultation(&at(day, 10, 15), &email)),
            2 => {
                let mut b = mesotherapy(&at(day, 10, 0), &email);
                b["waive_consultation"] = json!(true);
                ("/api/v1/admin/bookings", b)
            }
            _ => {
                let b = json!({
                    "treatment": "laser-treatment", "dermatologist_id": 1,
                    "starts_at": at(day, 9, 45), "patient": patient(&email),
                    "screening_answers": laser_answers, "waive_consultation": true,
                });
                ("/api/v1/admin/bookings", b)
            }
        };
        requests.push((path, body));
    }
    let replies = futures_join(&app, &desk, requests).await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(conflicts, replies.len() - 1, "every loser is told it lost");

    // The slot table is consistent: the winner holds exactly its run, nobody else any.
    let winner = created[0].body["booking"]["id"].as_i64().unwrap();
    let mut conn = app.conn();
    let rows: Vec<(i64, i64)> = {
        use diesel::prelude::*;
        dermabook::db::schema::booking_slots::table
            .select((
                dermabook::db::schema::booking_slots::booking_id,
                dermabook::db::schema::booking_slots::slot_id,
            ))
            .load(&mut *conn)
            .unwrap()
    };
    assert!(rows.iter().all(|(b, _)| *b == winner));
    let needed = match created[0].body["booking"]["treatment"]["slug"]
        .as_str()
        .unwrap()
    {
        "initial-consultation" => 2,
        "mesotherapy-skin-rejuvenation" => 4,
        _ => 5,
    };
    assert_eq!(rows.len(), needed);
    let all = app.get("/api/v1/admin/bookings", Some(&desk)).await;
    assert_eq!(all.body["total"], 1);
}

/// Sends every request at once and waits for all the replies.
async fn futures_join(app: &TestApp, desk: &str, requests: Vec<(&str, Value)>) -> Vec<Reply> {
    join_all(requests.iter().map(|(path, body)| {
        let token = path.contains("/admin/").then_some(desk);
        app.post(path, token, body)
    }))
    .await
}

async fn a_retried_request_with_its_idempotency_key_books_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let body = consultation(&at(day, 9, 0), "ada@example.com");
    let key = [("Idempotency-Key", "3f1c9a7e-booking-retry")];
    let first = app
        .post_with_headers("/api/v1/bookings", None, &body, &key)
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app
        .post_with_headers("/api/v1/bookings", None, &body, &key)
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.body, first.body, "the first response, token and all");

    let mut other = body.clone();
    other["starts_at"] = json!(at(day, 9, 30));
    let reused = app
        .post_with_headers("/api/v1/bookings", None, &other, &key)
        .await;
    assert_eq!(reused.invalid_fields(), ["Idempotency-Key"]);

    // Ten copies at once (a client retrying on timeouts): one booking, one answer.
    let key = [("Idempotency-Key", "burst-of-retries")];
    let body = consultation(&at(day, 11, 0), "bob@example.com");
    let replies =
        join_all((0..10).map(|_| app.post_with_headers("/api/v1/bookings", None, &body, &key)))
            .await;
    let ids: Vec<&Value> = replies.iter().map(|r| &r.body["booking"]["id"]).collect();
    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies);
    assert!(ids.iter().all(|id| *id == ids[0] && id.is_i64()));
    let desk = app.front_desk_token().await;
    let all = app.get("/api/v1/admin/bookings", Some(&desk)).await;
    assert_eq!(all.body["total"], 2);
}

async fn a_new_patient_booking_several_times_at_once_is_one_patient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let bodies: Vec<Value> = [(9, 0), (9, 30), (10, 0), (10, 30), (11, 0), (11, 30)]
        .iter()
        .map(|(h, m)| consultation(&at(day, *h, *m), "new.patient@example.com"))
        .collect();
    let replies = join_all(bodies.iter().map(|b| app.book(b))).await;
    assert!(replies.iter().all(|r| r.status == 201), "{replies:?}");
    let desk = app.front_desk_token().await;
    let listed = app
        .get(
            "/api/v1/admin/bookings?patient=new.patient@example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(listed.body["total"], 6);
    let first = &listed.body["bookings"][0]["patient"]["id"];
    assert!(
        listed.body["bookings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| &b["patient"]["id"] == first)
    );
}

/// The booking that creates a patient skips counting their bookings (they have none, and
/// no other can be made for them before it commits); the limit still holds when all of a
/// new patient's first bookings arrive at once.
async fn a_new_patients_first_bookings_at_once_stay_within_the_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.database.pool_size = 8;
        s.booking.max_live_bookings_per_email = 2;
    })
    .await;
    let day = monday_ahead();
    let times = [
        (9, 0),
        (10, 0),
        (11, 0),
        (12, 0),
        (14, 0),
        (15, 0),
        (16, 0),
        (16, 30),
    ];
    let bodies: Vec<Value> = (0..times.len())
        .map(|i| {
            let (hour, minute) = times[i];
            let mut body = consultation(&at(day, hour, minute), "eager.patient@example.com");
            // A phone each, so that only the email's limit can refuse.
            body["patient"]["phone"] = json!(format!("+44 7700 90{i:04}"));
            body
        })
        .collect();
    let replies = join_all(bodies.iter().map(|b| app.book(b))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 2, "{replies:?}");
    assert!(
        replies
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.status == 422 && r.invalid_fields() == ["patient"]),
        "{replies:?}"
    );
    let desk = app.front_desk_token().await;
    let listed = app
        .get(
            "/api/v1/admin/bookings?patient=eager.patient@example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(listed.body["total"], 2);
}

on_both_databases!(
    fifty_clients_racing_for_one_time_get_exactly_one_booking,
    a_retried_request_with_its_idempotency_key_books_once,
    a_new_patient_booking_several_times_at_once_is_one_patient,
    a_new_patients_first_bookings_at_once_stay_within_the_limit,
);
