//! Dermatologists' calendar subscriptions: a secret URL shown once, its appointments as
//! iCalendar that a calendar parser reads, patients' names only when the clinic turns
//! them on, and revocation that takes effect at once.

use icalendar::Component;
use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

/// The path of a subscription URL (`http://host/calendar/TOKEN.ics` → `/calendar/...`).
fn path_of(url: &str) -> String {
    url[url.find("/calendar/").expect("a calendar URL")..].to_string()
}

/// The feed's events as a calendar parser reads them: (summary, status, start).
async fn events(app: &TestApp, path: &str) -> Vec<(String, String, String)> {
    let (reply, body) = app.get_raw(path, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type(), "text/calendar; charset=utf-8");
    let text = String::from_utf8(body).unwrap();
    let calendar: icalendar::Calendar = text.parse().expect("a calendar the parser reads");
    calendar
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .map(|e| {
            (
                e.get_summary().unwrap_or_default().to_string(),
                e.property_value("STATUS").unwrap_or_default().to_string(),
                e.property_value("DTSTART").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn utc_stamp(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

async fn a_dermatologist_subscribes_to_their_appointments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let confirmed = app
        .book(&consultation(&at(day, 10, 0), "ada@example.com"))
        .await;
    assert_eq!(confirmed.status, 201);
    let mut pending = consultation(&at(day, 11, 0), "grace@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    assert_eq!(app.book(&pending).await.status, 201);
    let cancelled = app
        .book(&consultation(&at(day, 12, 0), "eve@example.com"))
        .await;
    let token = cancelled.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    let mut elsewhere = consultation(&at(day, 10, 0), "bob@example.com");
    elsewhere["dermatologist_id"] = json!(2);
    assert_eq!(app.book(&elsewhere).await.status, 201);

    let issued = app
        .post(
            "/api/v1/admin/dermatologists/1/calendar-feed",
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(issued.status, 201, "{:?}", issued.body);
    let first = path_of(issued.body["url"].as_str().unwrap());
    let found = events(&app, &first).await;
    assert_eq!(
        found.len(),
        2,
        "{found:?}: the cancelled one and another's are left out"
    );
    assert_eq!(
        found[0],
        (
            "Initial dermatology consultation".to_string(),
            "CONFIRMED".to_string(),
            utc_stamp(&at(day, 10, 0))
        )
    );
    assert_eq!(found[1].1, "TENTATIVE", "awaiting review");
    let (_, body) = app.get_raw(&first, &[]).await;
    let text = String::from_utf8(body).unwrap();
    for private in ["Ada", "ada@example.com", "Grace", "+44"] {
        assert!(!text.contains(private), "{private} in the feed");
    }

    // A new URL replaces the old one at once; revoking ends it.
    let again = app
        .post(
            "/api/v1/admin/dermatologists/1/calendar-feed",
            Some(&desk),
            &json!({}),
        )
        .await;
    let second = path_of(again.body["url"].as_str().unwrap());
    app.get(&first, None).await.problem(404);
    assert_eq!(events(&app, &second).await.len(), 2);
    let revoked = app
        .delete("/api/v1/admin/dermatologists/1/calendar-feed", Some(&desk))
        .await;
    assert_eq!(revoked.status, 204);
    app.get(&second, None).await.problem(404);
    let again = app
        .delete("/api/v1/admin/dermatologists/1/calendar-feed", Some(&desk))
        .await;
    assert_eq!(again.status, 204, "revoking is idempotent");
    app.delete(
        "/api/v1/admin/dermatologists/999/calendar-feed",
        Some(&desk),
    )
    .await
    .problem(404);

    // A dermatologist manages their own feed, not another's.
    let doctor = crate::fixtures::dermatologist_login(&app, "rohan@harbourskin.example", 2).await;
    app.post(
        "/api/v1/admin/dermatologists/1/calendar-feed",
        Some(&doctor),
        &json!({}),
    )
    .await
    .problem(403);
    let own = app
        .post(
            "/api/v1/admin/dermatologists/2/calendar-feed",
            Some(&doctor),
            &json!({}),
        )
        .await;
    assert_eq!(own.status, 201);
    let own_path = path_of(own.body["url"].as_str().unwrap());
    let theirs = events(&app, &own_path).await;
    assert_eq!(theirs.len(), 1);

    // A dermatologist who left (inactive) has no feed any more.
    let left = app
        .send_json(
            "PATCH",
            "/api/v1/admin/dermatologists/2",
            Some(&desk),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(left.status, 200, "{:?}", left.body);
    app.get(&own_path, None).await.problem(404);
}

on_both_databases!(a_dermatologist_subscribes_to_their_appointments);

async fn patients_names_appear_only_when_the_clinic_turns_them_on(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.calendar.show_patient_names = true).await;
    let desk = app.front_desk_token().await;
    let booked = app
        .book(&consultation(&at(monday_ahead(), 10, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    let issued = app
        .post(
            "/api/v1/admin/dermatologists/1/calendar-feed",
            Some(&desk),
            &json!({}),
        )
        .await;
    let found = events(&app, &path_of(issued.body["url"].as_str().unwrap())).await;
    assert_eq!(found[0].0, "Initial dermatology consultation: Ada Lovelace");
}

on_both_databases!(patients_names_appear_only_when_the_clinic_turns_them_on);
