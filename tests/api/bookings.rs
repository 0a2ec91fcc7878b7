//! Booking online and at the front desk: the rules, the slots a booking holds, the
//! screening review, consultation-first, and the emails each booking queues.

use chrono::{Duration, TimeZone};
use chrono_tz::Europe::London;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn an_online_booking_claims_its_slots_and_queues_its_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let ten = at(day, 10, 0);
    assert!(
        free_starts(&app, "initial-consultation", day)
            .await
            .contains(&ten)
    );

    let reply = app.book(&consultation(&ten, " Ada@Example.COM ")).await;
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
    let managed = app.manage(token).await;
    assert_eq!(managed.status, 200, "{:?}", managed.body);
    assert_eq!(managed.body["booking"]["reference"], reference);
    // The booking's answer, made from the rows the booking wrote, is what a later read
    // of it shows.
    assert_eq!(managed.body["booking"], *booking);
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

    // The same email again is the same patient. An anonymous form does not rewrite the
    // record: its phone stays on its booking, and the desk sees that it differs.
    let mut again = consultation(&at(day, 14, 0), "ada@example.com");
    again["patient"]["phone"] = json!("0117 496 0999");
    let second = app.book(&again).await;
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
    assert_eq!(latest.body["patient"]["phone"], "+44 7700 900123");
    assert_eq!(latest.body["given"]["phone"], "0117 496 0999");
    assert_eq!(latest.body["given"]["differ_from_record"], true);
    let first = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert_eq!(first.body["given"]["differ_from_record"], false);
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
        app.book(&body).await.invalid_fields(),
        ["notes", "patient.email", "patient.name", "patient.phone"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["patient"]["date_of_birth"] = json!("2090-01-01");
    assert_eq!(
        app.book(&body).await.invalid_fields(),
        ["patient.date_of_birth"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["screening_answers"] = json!({});
    assert_eq!(
        app.book(&body).await.invalid_fields(),
        ["screening_answers.pregnancy"]
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["treatment"] = json!("tattoo-removal");
    assert_eq!(app.book(&body).await.invalid_fields(), ["treatment"]);
    // Dr Mehta (2) does not perform laser treatment.
    let mut body = consultation(&ten, "ada@example.com");
    body["treatment"] = json!("laser-treatment");
    body["dermatologist_id"] = json!(2);
    body["screening_answers"] = json!({});
    let reply = app.book(&body).await;
    assert!(
        reply
            .invalid_fields()
            .contains(&"dermatologist_id".to_string()),
        "{:?}",
        reply.body
    );
    let mut body = consultation(&ten, "ada@example.com");
    body["starts_at"] = json!("next monday at ten");
    assert_eq!(app.book(&body).await.invalid_fields(), ["starts_at"]);
    let mut body = consultation(&ten, "ada@example.com");
    body["waive_notice"] = json!(true);
    assert_eq!(app.book(&body).await.invalid_fields(), ["waive_notice"]);

    // Not a slot start, after hours, too far ahead: 422 on starts_at.
    for starts_at in [
        at(day, 10, 7),
        at(day, 19, 0),
        at(day + Duration::days(120), 10, 0),
    ] {
        let reply = app.book(&consultation(&starts_at, "ada@example.com")).await;
        assert_eq!(reply.invalid_fields(), ["starts_at"], "{starts_at}");
    }
    // Runs into the lunch break: 12:15 + 30 minutes passes 12:30.
    let reply = app
        .book(&consultation(&at(day, 12, 15), "ada@example.com"))
        .await;
    assert!(
        reply.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("does not fit")
    );

    // Taken and blocked are conflicts; the slots stay as they were.
    assert_eq!(
        app.book(&consultation(&ten, "first@example.com"))
            .await
            .status,
        201
    );
    let taken = app
        .book(&consultation(&at(day, 10, 15), "second@example.com"))
        .await;
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
    let blocked = app
        .book(&consultation(&at(day, 15, 0), "third@example.com"))
        .await;
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
    let reply = app
        .book(&consultation(&at(day, 10, 0), "ada@example.com"))
        .await;
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
    let managed = app.manage(token).await;
    assert_eq!(managed.body["can_change"], false);
    let cancel = app.cancel(token, &json!({})).await;
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
    let reply = app.book(&body).await;
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
    let reply = app
        .book(&mesotherapy(&at(day, 14, 0), "ada@example.com"))
        .await;
    // One wording for every refusal about who the patient is (see SECURITY.md).
    assert_eq!(reply.invalid_fields(), ["patient"]);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("we cannot take this booking online")
    );

    // A pending consultation is not enough; a confirmed one is.
    let mut pending = consultation(&at(day, 9, 0), "ada@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let consult = app.book(&pending).await;
    assert_eq!(consult.body["booking"]["status"], "pending_review");
    assert_eq!(
        app.book(&mesotherapy(&at(day, 14, 0), "ada@example.com"))
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
    let meso = app
        .book(&mesotherapy(&at(day, 14, 0), "ADA@example.com"))
        .await;
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

on_both_databases!(
    an_online_booking_claims_its_slots_and_queues_its_emails,
    bad_bookings_name_the_field_and_change_nothing,
    notice_and_change_cutoff_follow_the_settings,
    a_yes_needs_review_and_the_front_desk_confirms,
    treatments_that_need_a_consultation_wait_for_one,
);
