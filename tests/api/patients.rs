//! Patients cannot touch each other's data: an anonymous form never rewrites a patient
//! record, the rules about who a patient is answer in one wording and only after every
//! rule about the time, one address cannot hoard the calendar, and consultation-first
//! counts only a consultation that really comes first.

use serde_json::{Value, json};

use crate::fixtures::{at, consultation, laser_questions, mesotherapy, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

const REFUSAL: &str = "we cannot take this booking online";

fn limited(settings: &mut dermabook::config::Settings) {
    settings.booking.max_live_bookings_per_email = 3;
    settings.booking.max_live_bookings_per_phone = 3;
}

fn refusal_detail(reply: &crate::helpers::Reply) -> String {
    assert_eq!(reply.invalid_fields(), ["patient"], "{:?}", reply.body);
    let detail = reply.body["detail"].as_str().unwrap().to_string();
    assert!(detail.contains(REFUSAL), "{detail}");
    detail
}

async fn an_anonymous_booking_never_rewrites_a_patient_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut victim = consultation(&at(day, 9, 0), "victim@example.com");
    victim["patient"]["name"] = json!("Vera Victim");
    let victim = app.book(&victim).await;
    assert_eq!(victim.status, 201, "{:?}", victim.body);
    let victim_id = victim.body["booking"]["id"].as_i64().unwrap();

    // Mallory books a free time with the victim's email, in another letter case.
    let mut decoy = consultation(&at(day, 11, 0), "VICTIM@Example.com");
    decoy["patient"]["name"] = json!("Mallory");
    decoy["patient"]["phone"] = json!("+1 555 0100 999");
    let decoy = app.book(&decoy).await;
    assert_eq!(decoy.status, 201, "{:?}", decoy.body);
    let decoy_id = decoy.body["booking"]["id"].as_i64().unwrap();

    let desk = app.front_desk_token().await;
    let seen = app
        .get(&format!("/api/v1/admin/bookings/{victim_id}"), Some(&desk))
        .await;
    assert_eq!(seen.body["patient"]["name"], "Vera Victim");
    assert_eq!(seen.body["patient"]["phone"], "+44 7700 900123");
    assert_eq!(seen.body["given"]["differ_from_record"], false);
    let other = app
        .get(&format!("/api/v1/admin/bookings/{decoy_id}"), Some(&desk))
        .await;
    assert_eq!(other.body["patient"]["name"], "Vera Victim");
    assert_eq!(other.body["given"]["name"], "Mallory");
    assert_eq!(other.body["given"]["differ_from_record"], true);

    // The victim's own emails and manage page still say what the victim gave.
    let token = victim.body["manage_token"].as_str().unwrap();
    assert_eq!(app.manage(token).await.body["patient_name"], "Vera Victim");
    let decoy_token = decoy.body["manage_token"].as_str().unwrap();
    app.cancel(decoy_token, &json!({})).await;
    assert_eq!(
        app.get(&format!("/api/v1/admin/bookings/{victim_id}"), Some(&desk))
            .await
            .body["patient"]["name"],
        "Vera Victim"
    );

    // The front desk, which knows the patient, may correct the record.
    let mut phoned = consultation(&at(day, 14, 0), "victim@example.com");
    phoned["patient"]["name"] = json!("Vera Victim-Smith");
    let phoned = app
        .post("/api/v1/admin/bookings", Some(&desk), &phoned)
        .await;
    assert_eq!(phoned.status, 201, "{:?}", phoned.body);
    assert_eq!(
        app.get(&format!("/api/v1/admin/bookings/{victim_id}"), Some(&desk))
            .await
            .body["patient"]["name"],
        "Vera Victim-Smith"
    );
}

async fn one_email_or_phone_holds_only_so_many_live_bookings_online(backend: Backend) {
    let app = TestApp::spawn_with(backend, limited).await;
    let day = monday_ahead();
    // A consultation the week before, then a four-session course: two appointments.
    let week_before = day - chrono::Duration::days(7);
    let first = app
        .book(&consultation(&at(week_before, 9, 0), "ada@example.com"))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let mut course = mesotherapy(&at(day, 9, 0), "ada@example.com");
    course["sessions"] = json!(4);
    let course = app.book(&course).await;
    assert_eq!(
        course.status, 201,
        "a course counts once: {:?}",
        course.body
    );
    let third = app
        .book(&consultation(&at(day, 14, 0), "ada@example.com"))
        .await;
    assert_eq!(third.status, 201, "{:?}", third.body);
    let fourth = app
        .book(&consultation(&at(day, 15, 0), "ADA@example.com"))
        .await;
    let email_refusal = refusal_detail(&fourth);

    // Another email with the same phone, however it is written, is counted by the phone,
    // and refused in the same words.
    let mut body = consultation(&at(day, 10, 0), "bob@example.com");
    body["patient"]["phone"] = json!("(44) 7700-900 123");
    let reply = app.book(&body).await;
    assert_eq!(
        refusal_detail(&reply),
        email_refusal,
        "one wording for both"
    );
    // A cancelled booking no longer counts.
    let token = first.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    let again = app
        .book(&consultation(&at(day, 15, 0), "ada@example.com"))
        .await;
    assert_eq!(again.status, 201, "{:?}", again.body);

    // The front desk is not limited.
    let desk = app.front_desk_token().await;
    let phoned = app
        .post(
            "/api/v1/admin/bookings",
            Some(&desk),
            &consultation(&at(day, 16, 0), "ada@example.com"),
        )
        .await;
    assert_eq!(phoned.status, 201, "{:?}", phoned.body);
}

/// A laser booking for `email` at `starts_at`, with every screening answer "no".
async fn laser(app: &TestApp, starts_at: &str, email: &str) -> Value {
    json!({
        "treatment": "laser-treatment",
        "dermatologist_id": 1,
        "starts_at": starts_at,
        "patient": crate::fixtures::patient(email),
        "screening_answers": laser_questions(app).await,
    })
}

async fn nothing_tells_whether_someone_is_a_patient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let week_before = day - chrono::Duration::days(7);
    let had = app
        .book(&consultation(&at(week_before, 9, 0), "patient@example.com"))
        .await;
    assert_eq!(had.status, 201);

    // A time that is not a slot start: the same answer whoever's email it carries.
    let odd = at(day, 10, 7);
    let known = app
        .book(&laser(&app, &odd, "patient@example.com").await)
        .await;
    let stranger = app
        .book(&laser(&app, &odd, "stranger@example.com").await)
        .await;
    assert_eq!(known.status, 422);
    assert_eq!(known.body, stranger.body);
    assert_eq!(known.invalid_fields(), ["starts_at"]);
    // A taken time likewise.
    let taken = at(week_before, 9, 0);
    let known = app
        .book(&laser(&app, &taken, "patient@example.com").await)
        .await;
    let stranger = app
        .book(&laser(&app, &taken, "stranger@example.com").await)
        .await;
    assert_eq!(known.status, stranger.status);
    assert_eq!(known.body["detail"], stranger.body["detail"]);
    assert!(
        known.status == 409 || known.status == 422,
        "{:?}",
        known.body
    );
}

async fn consultation_first_counts_only_one_that_comes_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let desk = app.front_desk_token().await;
    // A confirmed consultation after the treatment does not count.
    let later = app
        .book(&consultation(
            &at(day + chrono::Duration::days(1), 9, 0),
            "ada@example.com",
        ))
        .await;
    assert_eq!(later.status, 201);
    refusal_detail(
        &app.book(&laser(&app, &at(day, 14, 0), "ada@example.com").await)
            .await,
    );

    // One that ends before it does; the treatment may not then move before it.
    let earlier = app
        .book(&consultation(&at(day, 11, 0), "ada@example.com"))
        .await;
    let treatment = app
        .book(&laser(&app, &at(day, 14, 0), "ada@example.com").await)
        .await;
    assert_eq!(treatment.status, 201, "{:?}", treatment.body);
    let token = treatment.body["manage_token"].as_str().unwrap();
    let moved = app
        .reschedule(token, &json!({"starts_at": at(day, 9, 0)}))
        .await;
    refusal_detail(&moved);

    // Cancelling the consultation sends the treatment back to review, and tells the desk.
    let consult_token = earlier.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(consult_token, &json!({})).await.status, 200);
    let id = treatment.body["booking"]["id"].as_i64().unwrap();
    let now = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert_eq!(now.body["status"], "pending_review", "{:?}", now.body);
    assert_eq!(
        crate::fixtures::history_actions(&app, &desk, id).await,
        ["booked", "sent_to_review"]
    );
    let kinds = crate::fixtures::queued_kinds(&app, id);
    assert_eq!(kinds.last().map(String::as_str), Some("front_desk_notice"));
}

async fn a_booking_no_one_reviews_expires_and_both_sides_are_told(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut pending = consultation(&at(day, 9, 0), "ada@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let pending = app.book(&pending).await;
    assert_eq!(pending.body["booking"]["status"], "pending_review");
    let id = pending.body["booking"]["id"].as_i64().unwrap();
    let confirmed = app
        .book(&consultation(&at(day, 10, 0), "bob@example.com"))
        .await;

    let settings = std::sync::Arc::new(app.settings.clone());
    let run =
        |now| dermabook::jobs::housekeeping::run_once(app.pool.clone(), settings.clone(), now);
    let early = run(app.clock.now()).await.unwrap();
    assert_eq!(early.unreviewed_expired, 0);
    let hours = i64::from(app.settings.booking.pending_review_expiry_hours);
    let later = app.clock.now() + chrono::Duration::hours(hours + 1);
    assert_eq!(run(later).await.unwrap().unreviewed_expired, 1);
    assert_eq!(run(later).await.unwrap().unreviewed_expired, 0, "once");

    let desk = app.front_desk_token().await;
    let seen = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert_eq!(seen.body["status"], "cancelled");
    assert_eq!(
        crate::fixtures::history_actions(&app, &desk, id).await,
        ["booked", "expired"]
    );
    assert_eq!(
        crate::fixtures::queued_kinds(&app, id),
        [
            "pending_review",
            "front_desk_notice",
            "cancelled",
            "front_desk_notice"
        ]
    );
    let other = confirmed.body["booking"]["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/admin/bookings/{other}"), Some(&desk))
            .await
            .body["status"],
        "confirmed"
    );
}

async fn booking_status(app: &TestApp, desk: &str, id: i64) -> Value {
    app.get(&format!("/api/v1/admin/bookings/{id}"), Some(desk))
        .await
        .body["status"]
        .clone()
}

async fn a_consultation_that_will_not_come_first_sends_its_treatment_to_review(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let consult = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let treatment = app
        .book(&laser(&app, &at(day, 14, 0), "ada@example.com").await)
        .await;
    assert_eq!(treatment.status, 201, "{:?}", treatment.body);
    let id = treatment.body["booking"]["id"].as_i64().unwrap();
    // Four days on, the desk moves the consultation to after the treatment.
    app.travel_to(chrono::Utc::now() + chrono::Duration::days(4));
    let desk = app.front_desk_token().await;
    let consult_id = consult.body["booking"]["id"].as_i64().unwrap();
    let moved = app
        .post(
            &format!("/api/v1/admin/bookings/{consult_id}/reschedule"),
            Some(&desk),
            &json!({"starts_at": at(day, 16, 0)}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(booking_status(&app, &desk, id).await, "pending_review");

    // It waits the desk's full allowance from then, not from when it was booked.
    let settings = std::sync::Arc::new(app.settings.clone());
    let housekept =
        dermabook::jobs::housekeeping::run_once(app.pool.clone(), settings, app.clock.now())
            .await
            .unwrap();
    assert_eq!(housekept.unreviewed_expired, 0);
    assert_eq!(booking_status(&app, &desk, id).await, "pending_review");
}

on_both_databases!(
    a_consultation_that_will_not_come_first_sends_its_treatment_to_review,
    an_anonymous_booking_never_rewrites_a_patient_record,
    one_email_or_phone_holds_only_so_many_live_bookings_online,
    nothing_tells_whether_someone_is_a_patient,
    consultation_first_counts_only_one_that_comes_first,
    a_booking_no_one_reviews_expires_and_both_sides_are_told,
);
