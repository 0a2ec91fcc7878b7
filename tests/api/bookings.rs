//! Booking online and at the front desk: the rules, the slots a booking holds, the manage
//! link, courses, idempotency, the audit log, the emails each change queues, and that no
//! slot is ever booked twice however many requests race for it.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde_json::{Value, json};

use futures_util::future::join_all;

use crate::helpers::{Backend, Reply, TestApp};
use crate::on_both_databases;

/// A Monday two to three weeks ahead, in the clinic's zone.
pub fn monday_ahead() -> NaiveDate {
    let mut day = Utc::now().with_timezone(&London).date_naive() + Duration::days(14);
    while day.weekday().number_from_monday() != 1 {
        day += Duration::days(1);
    }
    day
}

/// That day at a London wall-clock time, as the API writes times.
pub fn at(day: NaiveDate, hour: u32, minute: u32) -> String {
    London
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .single()
        .unwrap()
        .to_rfc3339()
}

pub fn patient(email: &str) -> Value {
    json!({"name": "Ada Lovelace", "email": email, "phone": "+44 7700 900123", "date_of_birth": "1985-03-14"})
}

/// A consultation with Dr Hart (dermatologist 1): 30 minutes, one screening question.
pub fn consultation(starts_at: &str, email: &str) -> Value {
    json!({
        "treatment": "initial-consultation",
        "dermatologist_id": 1,
        "starts_at": starts_at,
        "patient": patient(email),
        "screening_answers": {"pregnancy": false},
        "notes": "Dry patches on both hands since the winter.",
    })
}

/// Mesotherapy with Dr Hart: 45 minutes plus 15 of buffer, four screening questions.
pub fn mesotherapy(starts_at: &str, email: &str) -> Value {
    json!({
        "treatment": "mesotherapy-skin-rejuvenation",
        "dermatologist_id": 1,
        "starts_at": starts_at,
        "patient": patient(email),
        "screening_answers": {"pregnancy": false, "ingredient_allergy": false, "skin_infection": false, "blood_thinners": false},
    })
}

pub async fn book(app: &TestApp, body: &Value) -> Reply {
    app.post("/api/v1/bookings", None, body).await
}

async fn free_starts(app: &TestApp, treatment: &str, day: NaiveDate) -> Vec<String> {
    let reply = app
        .get(
            &format!(
                "/api/v1/availability?treatment={treatment}&from={day}&to={day}&dermatologist=1"
            ),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap().to_string())
        .collect()
}

/// The kinds of the emails queued for a booking, in order.
fn queued_kinds(app: &TestApp, booking_id: i64) -> Vec<String> {
    let mut conn = app.conn();
    dermabook::store::outbox::for_booking(&mut conn, booking_id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn held_slot_count(app: &TestApp, booking_id: i64) -> usize {
    dermabook::store::bookings::held_slots(&mut app.conn(), booking_id)
        .unwrap()
        .len()
}

async fn an_online_booking_claims_its_slots_and_queues_its_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let ten = at(day, 10, 0);
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&ten)
    );

    let reply = book(&app, &consultation(&ten, " Ada@Example.COM ")).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let booking = &reply.body["booking"];
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["starts_at"], ten);
    assert_eq!(booking["ends_at"], at(day, 10, 30));
    assert_eq!(booking["treatment"]["slug"], "initial-consultation");
    assert_eq!(booking["dermatologist"]["id"], 1);
    let reference = booking["reference"].as_str().unwrap();
    assert_eq!(reference.len(), 9);
    let id = booking["id"].as_i64().unwrap();

    // The time is gone from availability (both 15-minute slots), and nothing else is.
    let starts = free_starts(&app, "initial-consultation", day).await;
    assert!(!starts.contains(&ten) && !starts.contains(&at(day, 10, 15)));
    assert!(starts.contains(&at(day, 10, 30)) && starts.contains(&at(day, 9, 30)));
    assert_eq!(held_slot_count(&app, id), 2);

    // The manage link shows this booking and only this one.
    let token = reply.body["manage_token"].as_str().unwrap();
    assert!(token.len() >= 43);
    let managed = app.get(&format!("/api/v1/manage/{token}"), None).await;
    assert_eq!(managed.status, 200, "{:?}", managed.body);
    assert_eq!(managed.body["booking"]["reference"], reference);
    assert_eq!(managed.body["can_change"], true);
    let wrong = app.get("/api/v1/manage/not-a-real-token", None).await;
    assert_eq!(wrong.problem(404)["detail"], "booking not found");

    // Patient found by normalised email; the emails were queued with the booking.
    assert_eq!(
        queued_kinds(&app, id),
        ["confirmation", "front_desk_notice"]
    );
    let desk = app.front_desk_token().await;
    let found = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert_eq!(found.body["patient"]["email"], "ada@example.com");
    assert_eq!(found.body["source"], "online");
    assert_eq!(
        found.body["notes"],
        "Dry patches on both hands since the winter."
    );

    // The same patient again is the same patient, with the latest phone.
    let mut again = consultation(&at(day, 14, 0), "ada@example.com");
    again["patient"]["phone"] = json!("0117 496 0999");
    let second = book(&app, &again).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let second_id = second.body["booking"]["id"].as_i64().unwrap();
    let listed = app
        .get(
            "/api/v1/admin/bookings?patient=ADA@example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(listed.body["total"], 2, "{:?}", listed.body);
    let patient_ids: Vec<&Value> = listed.body["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["patient"]["id"])
        .collect();
    assert_eq!(patient_ids[0], patient_ids[1]);
    let latest = app
        .get(&format!("/api/v1/admin/bookings/{second_id}"), Some(&desk))
        .await;
    assert_eq!(latest.body["patient"]["phone"], "0117 496 0999");
}

async fn bad_bookings_name_the_field_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let ten = at(day, 10, 0);

    let mut body = consultation(&ten, "not-an-email");
    body["patient"]["phone"] = json!("call me");
    body["patient"]["name"] = json!("  ");
    body["notes"] = json!("x".repeat(2001));
    body["patient"]["date_of_birth"] = json!("2090-01-01");
    assert_eq!(
        book(&app, &body).await.invalid_fields(),
        ["notes", "patient.email", "patient.name", "patient.phone"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["patient"]["date_of_birth"] = json!("2090-01-01");
    assert_eq!(
        book(&app, &body).await.invalid_fields(),
        ["patient.date_of_birth"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["screening_answers"] = json!({});
    assert_eq!(
        book(&app, &body).await.invalid_fields(),
        ["screening_answers.pregnancy"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["treatment"] = json!("tattoo-removal");
    assert_eq!(book(&app, &body).await.invalid_fields(), ["treatment"]);
    // Dr Mehta (2) does not perform laser treatment.
    let mut body = consultation(&ten, "ada@example.com");
    body["treatment"] = json!("laser-treatment");
    body["dermatologist_id"] = json!(2);
    body["screening_answers"] = json!({});
    let reply = book(&app, &body).await;
    assert!(
        reply
            .invalid_fields()
            .contains(&"dermatologist_id".to_string()),
        "{:?}",
        reply.body
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["starts_at"] = json!("next monday at ten");
    assert_eq!(book(&app, &body).await.invalid_fields(), ["starts_at"]);
    let mut body = consultation(&ten, "ada@example.com");
    body["waive_notice"] = json!(true);
    assert_eq!(book(&app, &body).await.invalid_fields(), ["waive_notice"]);

    // Not a slot start, after hours, too far ahead: 422 on starts_at.
    for starts_at in [
        at(day, 10, 7),
        at(day, 19, 0),
        at(day + Duration::days(120), 10, 0),
    ] {
        let reply = book(&app, &consultation(&starts_at, "ada@example.com")).await;
        assert_eq!(reply.invalid_fields(), ["starts_at"], "{starts_at}");
    }
    // Runs into the lunch break: 12:15 + 30 minutes passes 12:30.
    let reply = book(&app, &consultation(&at(day, 12, 15), "ada@example.com")).await;
    assert!(
        reply.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("does not fit")
    );

    // Taken and blocked are conflicts; the slots stay as they were.
    assert_eq!(
        book(&app, &consultation(&ten, "first@example.com"))
            .await
            .status,
        201
    );
    let taken = book(&app, &consultation(&at(day, 10, 15), "second@example.com")).await;
    assert!(
        taken.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("already booked")
    );
    app.execute_sql(&format!(
        "UPDATE slots SET status = 'blocked' WHERE dermatologist_id = 1 AND starts_at = '{}'",
        London
            .from_local_datetime(&day.and_hms_opt(15, 0, 0).unwrap())
            .single()
            .unwrap()
            .naive_utc()
    ));
    let blocked = book(&app, &consultation(&at(day, 15, 0), "third@example.com")).await;
    assert!(
        blocked.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("blocked")
    );

    let desk = app.front_desk_token().await;
    let all = app.get("/api/v1/admin/bookings", Some(&desk)).await;
    assert_eq!(
        all.body["total"], 1,
        "only the one good booking exists: {:?}",
        all.body
    );
    let mut conn = app.conn();
    let held: i64 = {
        use diesel::prelude::*;
        dermabook::db::schema::booking_slots::table
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(held, 2);
}

async fn notice_and_change_cutoff_follow_the_settings(backend: Backend) {
    // A week's notice and a 30-day change cutoff make the Monday ahead "soon".
    let app = TestApp::spawn_with(backend, |s| {
        s.booking.min_notice_minutes = 60 * 24 * 30;
        s.booking.change_cutoff_hours = 24 * 60;
    })
    .await;
    let day = monday_ahead();
    let reply = book(&app, &consultation(&at(day, 10, 0), "ada@example.com")).await;
    assert!(
        reply.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("notice")
    );

    // The front desk may waive the notice, and the audit log says so.
    let desk = app.front_desk_token().await;
    let mut body = consultation(&at(day, 10, 0), "ada@example.com");
    body["waive_notice"] = json!(true);
    let booked = app.post("/api/v1/admin/bookings", Some(&desk), &body).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let id = booked.body["booking"]["id"].as_i64().unwrap();
    let history = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(&desk))
        .await;
    let entry = &history.body["history"][0];
    assert_eq!(entry["action"], "booked");
    assert_eq!(entry["actor"]["kind"], "staff");
    assert_eq!(entry["details"]["waived_notice"], true);
    assert_eq!(entry["details"]["source"], "front_desk");

    // Inside the change cutoff the manage link may look but not change.
    let token = booked.body["manage_token"].as_str().unwrap();
    let managed = app.get(&format!("/api/v1/manage/{token}"), None).await;
    assert_eq!(managed.body["can_change"], false);
    let cancel = app
        .post(&format!("/api/v1/manage/{token}/cancel"), None, &json!({}))
        .await;
    assert!(
        cancel.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("call the clinic")
    );
    let status = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert_eq!(status.body["status"], "confirmed");
}

async fn a_yes_needs_review_and_the_front_desk_confirms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut body = consultation(&at(day, 11, 0), "ada@example.com");
    body["screening_answers"] = json!({"pregnancy": true});
    let reply = book(&app, &body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["booking"]["status"], "pending_review");
    let id = reply.body["booking"]["id"].as_i64().unwrap();
    assert_eq!(
        queued_kinds(&app, id),
        ["pending_review", "front_desk_notice"]
    );

    let desk = app.front_desk_token().await;
    let pending = app
        .get("/api/v1/admin/bookings?status=pending_review", Some(&desk))
        .await;
    assert_eq!(pending.body["total"], 1);
    assert_eq!(
        pending.body["bookings"][0]["screening_answers"]["pregnancy"],
        true
    );

    let confirmed = app
        .post(
            &format!("/api/v1/admin/bookings/{id}/confirm"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["status"], "confirmed");
    assert_eq!(
        queued_kinds(&app, id),
        [
            "pending_review",
            "front_desk_notice",
            "confirmed",
            "front_desk_notice"
        ]
    );
    let again = app
        .post(
            &format!("/api/v1/admin/bookings/{id}/confirm"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert!(
        again.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("confirmed")
    );
}

async fn treatments_that_need_a_consultation_wait_for_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let reply = book(&app, &mesotherapy(&at(day, 14, 0), "ada@example.com")).await;
    assert_eq!(reply.invalid_fields(), ["treatment"]);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("consultation first")
    );

    // A pending consultation is not enough; a confirmed one is.
    let mut pending = consultation(&at(day, 9, 0), "ada@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let consult = book(&app, &pending).await;
    assert_eq!(consult.body["booking"]["status"], "pending_review");
    assert_eq!(
        book(&app, &mesotherapy(&at(day, 14, 0), "ada@example.com"))
            .await
            .status,
        422
    );
    let desk = app.front_desk_token().await;
    let id = consult.body["booking"]["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/admin/bookings/{id}/confirm"),
        Some(&desk),
        &json!({}),
    )
    .await;
    let meso = book(&app, &mesotherapy(&at(day, 14, 0), "ADA@example.com")).await;
    assert_eq!(meso.status, 201, "{:?}", meso.body);
    assert_eq!(meso.body["booking"]["ends_at"], at(day, 14, 45));
    // 45 minutes plus a 15-minute buffer hold four slots.
    assert_eq!(
        held_slot_count(&app, meso.body["booking"]["id"].as_i64().unwrap()),
        4
    );

    // The front desk may book a phone patient without one, and it is on record.
    let mut phoned = mesotherapy(&at(day, 16, 0), "bob@example.com");
    phoned["waive_consultation"] = json!(true);
    let reply = app
        .post("/api/v1/admin/bookings", Some(&desk), &phoned)
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["booking"]["id"].as_i64().unwrap();
    let history = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(&desk))
        .await;
    assert_eq!(
        history.body["history"][0]["details"]["waived_consultation"],
        true
    );
}

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

/// The laser treatment's screening answers, all "no", from the public catalogue.
pub async fn laser_questions(app: &TestApp) -> Value {
    let reply = app.get("/api/v1/treatments/laser-treatment", None).await;
    Value::Object(
        reply.body["screening_questions"]
            .as_array()
            .expect("questions")
            .iter()
            .map(|q| (q["id"].as_str().unwrap().to_string(), json!(false)))
            .collect(),
    )
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

async fn the_manage_link_cancels_and_reschedules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let reply = book(
        &app,
        &mesotherapy_with_consultation(&app, &at(day, 14, 0)).await,
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = reply.body["manage_token"].as_str().unwrap().to_string();
    let id = reply.body["booking"]["id"].as_i64().unwrap();
    let reference = reply.body["booking"]["reference"].clone();

    // Fifteen minutes later overlaps its own time: the shared slots simply stay held.
    let moved = app
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            None,
            &json!({"starts_at": at(day, 14, 15)}),
        )
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
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            None,
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
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            None,
            &json!({"starts_at": at(tuesday, 10, 0), "dermatologist_id": 3}),
        )
        .await;
    assert_eq!(refused.invalid_fields(), ["dermatologist_id"]);

    let cancelled = app
        .post(&format!("/api/v1/manage/{token}/cancel"), None, &json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["booking"]["status"], "cancelled");
    assert_eq!(held_slot_count(&app, id), 0);
    let again = app
        .post(&format!("/api/v1/manage/{token}/cancel"), None, &json!({}))
        .await;
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

/// A mesotherapy booking for a patient who has had a confirmed consultation (booked
/// here, the week before).
async fn mesotherapy_with_consultation(app: &TestApp, starts_at: &str) -> Value {
    let email = "carol@example.com";
    let week_before = monday_ahead() - Duration::days(7);
    let consult = book(app, &consultation(&at(week_before, 9, 0), email)).await;
    assert_eq!(consult.status, 201, "{:?}", consult.body);
    mesotherapy(starts_at, email)
}

async fn a_course_books_every_session_or_none(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut body = mesotherapy_with_consultation(&app, &at(day, 10, 0)).await;
    body["sessions"] = json!(9);
    assert_eq!(book(&app, &body).await.invalid_fields(), ["sessions"]);

    body["sessions"] = json!(4);
    let reply = book(&app, &body).await;
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
    let one = app
        .post(
            &format!("/api/v1/manage/{}/cancel", tokens[1]),
            None,
            &json!({}),
        )
        .await;
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
    let all = app
        .post(
            &format!("/api/v1/manage/{}/cancel", tokens[0]),
            None,
            &json!({"course": true}),
        )
        .await;
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
    let refused = book(&app, &body).await;
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

async fn the_front_desk_runs_the_day_with_legal_transitions_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let mut ids = Vec::new();
    for (i, hour) in [9, 10, 11, 14].into_iter().enumerate() {
        let reply = book(
            &app,
            &consultation(&at(day, hour, 0), &format!("p{i}@example.com")),
        )
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
    let booked = book(&app, &consultation(&at(day, 10, 0), "ada@example.com")).await;
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
    let booked = book(&app, &consultation(&at(day, 11, 0), "ada@example.com")).await;
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

async fn a_new_patient_booking_several_times_at_once_is_one_patient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let bodies: Vec<Value> = [(9, 0), (9, 30), (10, 0), (10, 30), (11, 0), (11, 30)]
        .iter()
        .map(|(h, m)| consultation(&at(day, *h, *m), "new.patient@example.com"))
        .collect();
    let replies = join_all(bodies.iter().map(|b| book(&app, b))).await;
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

on_both_databases!(
    a_new_patient_booking_several_times_at_once_is_one_patient,
    availability_is_cached_until_a_change_and_gzipped_on_request,
    an_online_booking_claims_its_slots_and_queues_its_emails,
    bad_bookings_name_the_field_and_change_nothing,
    notice_and_change_cutoff_follow_the_settings,
    a_yes_needs_review_and_the_front_desk_confirms,
    treatments_that_need_a_consultation_wait_for_one,
    fifty_clients_racing_for_one_time_get_exactly_one_booking,
    a_retried_request_with_its_idempotency_key_books_once,
    the_manage_link_cancels_and_reschedules,
    a_course_books_every_session_or_none,
    the_front_desk_runs_the_day_with_legal_transitions_only,
    the_agenda_shows_each_dermatologists_day,
);
