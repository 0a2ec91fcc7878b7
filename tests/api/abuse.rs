//! What a script or a hostile page meets: per-address limits (a forged X-Forwarded-For
//! changes nothing unless it comes from a trusted proxy), a booking allowance per address
//! that holds across instances, input that cannot smuggle lines into emails, headers that
//! keep tokens out of caches and referrers, and manage links that can be revoked and
//! expire.

use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

fn limits_on(settings: &mut dermabook::config::Settings) {
    settings.rate_limit.enabled = true;
    settings.rate_limit.public_burst = 3;
    settings.rate_limit.public_replenish_ms = 60_000;
}

async fn availability(app: &TestApp, forwarded_for: &str) -> u16 {
    let day = monday_ahead();
    let path = format!("/api/v1/availability?treatment=initial-consultation&from={day}&to={day}");
    let (reply, _) = app
        .get_raw(&path, &[("X-Forwarded-For", forwarded_for)])
        .await;
    reply.status.as_u16()
}

async fn public_endpoints_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, limits_on).await;
    // Forged X-Forwarded-For values from an untrusted peer are all one address.
    for i in 0..3 {
        assert_eq!(availability(&app, &format!("198.51.100.{i}")).await, 200);
    }
    assert_eq!(availability(&app, "198.51.100.99").await, 429);
    let day = monday_ahead();
    let limited = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let problem = limited.problem(429);
    assert!(problem["detail"].as_str().unwrap().contains("try again"));
    assert!(limited.headers.contains_key("retry-after"));
    // Sign-in has its own allowance; the catalogue is not limited.
    assert_eq!(app.get("/api/v1/treatments", None).await.status, 200);

    // Behind a trusted proxy, the address it forwards is the client.
    let proxied = TestApp::spawn_with(backend, |s| {
        limits_on(s);
        s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(availability(&proxied, "203.0.113.1").await, 200);
    }
    assert_eq!(availability(&proxied, "203.0.113.1").await, 429);
    assert_eq!(availability(&proxied, "203.0.113.2").await, 200);
}

async fn bookings_per_address_are_counted_across_instances(backend: Backend) {
    let first = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.bookings_per_hour = 2;
    })
    .await;
    let second = first.another_instance().await;
    let day = monday_ahead();
    let one = first
        .book(&consultation(&at(day, 9, 0), "a@example.com"))
        .await;
    assert_eq!(one.status, 201);
    // A refused attempt counts as well.
    let bad = second
        .book(&consultation(&at(day, 9, 7), "b@example.com"))
        .await;
    assert_eq!(bad.status, 422);
    let third = second
        .book(&consultation(&at(day, 10, 0), "c@example.com"))
        .await;
    let retry = third.retry_after();
    assert!((1..=3600).contains(&retry), "{retry}");
    // An hour later the allowance is back.
    first.travel_to(chrono::Utc::now() + chrono::Duration::minutes(61));
    let later = first
        .book(&consultation(&at(day, 10, 0), "c@example.com"))
        .await;
    assert_eq!(later.status, 201, "{:?}", later.body);
}

async fn names_and_notes_cannot_carry_control_characters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let mut body = consultation(&at(day, 9, 0), "eve@example.com");
    body["patient"]["name"] = json!("Eve\r\nMETHOD:CANCEL\r\nATTACH:http://evil");
    body["notes"] = json!("fine\tthen");
    let refused = app.book(&body).await;
    assert_eq!(refused.invalid_fields(), ["notes", "patient.name"]);
    body["patient"]["name"] = json!("Eve Example");
    body["patient"]["phone"] = json!("+44 7700\n900123");
    body["notes"] = json!("Two lines:\r\nboth kept.");
    assert_eq!(app.book(&body).await.invalid_fields(), ["patient.phone"]);
    body["patient"]["phone"] = json!("+44 7700 900123");
    let booked = app.book(&body).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);

    // Dates far outside the clinic's calendar are refused before any query.
    let mut old = consultation("1999-12-31T09:00:00Z", "eve@example.com");
    assert_eq!(app.book(&old).await.invalid_fields(), ["starts_at"]);
    old["starts_at"] = json!("2101-01-01T09:00:00Z");
    assert_eq!(app.book(&old).await.invalid_fields(), ["starts_at"]);
    let search = app
        .get(
            "/api/v1/availability?treatment=initial-consultation&from=1999-01-01&to=1999-01-02",
            None,
        )
        .await;
    assert_eq!(search.invalid_fields(), ["from"]);
    let mut born = consultation(&at(day, 10, 0), "eve@example.com");
    born["patient"]["date_of_birth"] = json!("1899-12-31");
    assert_eq!(
        app.book(&born).await.invalid_fields(),
        ["patient.date_of_birth"]
    );
    // A NUL character, which PostgreSQL refuses in text, is a client error too.
    let mut nul = consultation(&at(day, 10, 0), "eve@example.com");
    nul["treatment"] = json!("laser\u{0}");
    let refused = app.book(&nul).await;
    assert!(refused.status.is_client_error(), "{:?}", refused.body);
    let search = app
        .get(
            "/api/v1/availability?treatment=%00&from=2030-01-01&to=2030-01-02",
            None,
        )
        .await;
    assert!(search.status.is_client_error(), "{:?}", search.body);
    let login = app.login("desk\u{0}@example.com", "password").await;
    assert!(login.status.is_client_error(), "{:?}", login.body);
    let desk = app.front_desk_token().await;
    let page = app
        .get(
            "/api/v1/admin/bookings?page=9223372036854775807&per_page=200",
            Some(&desk),
        )
        .await;
    assert_eq!(page.invalid_fields(), ["page"]);
}

async fn answers_carry_the_headers_that_keep_tokens_private(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let booked = app
        .book(&consultation(&at(monday_ahead(), 9, 0), "ada@example.com"))
        .await;
    let token = booked.body["manage_token"].as_str().unwrap();
    let desk = app.front_desk_token().await;
    let login = app
        .login(
            dermabook::demo::FRONT_DESK_EMAIL,
            dermabook::demo::FRONT_DESK_PASSWORD,
        )
        .await;
    let managed = app.manage(token).await;
    let listed = app.get("/api/v1/admin/bookings", Some(&desk)).await;
    for reply in [&booked, &managed, &listed, &login] {
        assert_eq!(reply.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(reply.headers.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(
            reply.headers.get("x-content-type-options").unwrap(),
            "nosniff"
        );
    }
    let catalogue = app.get("/api/v1/treatments", None).await;
    assert_eq!(
        catalogue.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert!(!catalogue.headers.contains_key("cache-control"));
}

async fn the_desk_can_revoke_a_manage_link_and_old_links_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let old = booked.body["manage_token"].as_str().unwrap();
    let id = booked.body["booking"]["id"].as_i64().unwrap();
    let desk = app.front_desk_token().await;
    let reissued = app
        .post(
            &format!("/api/v1/admin/bookings/{id}/manage-link"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(reissued.status, 200, "{:?}", reissued.body);
    let new = reissued.body["manage_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(
        reissued.body["manage_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/manage/{new}"))
    );
    app.manage(old).await.problem(404);
    assert_eq!(app.manage(new).await.status, 200);

    // A week after the appointment, the link stops working.
    let days = i64::from(app.settings.booking.manage_link_valid_days_after);
    let ends =
        chrono::DateTime::parse_from_rfc3339(reissued.body["booking"]["ends_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    app.travel_to(ends + chrono::Duration::days(days) - chrono::Duration::hours(1));
    assert_eq!(app.manage(new).await.status, 200);
    app.travel_to(ends + chrono::Duration::days(days) + chrono::Duration::hours(1));
    let gone = app.manage(new).await;
    assert!(
        gone.problem(410)["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

async fn sent_email_bodies_are_purged_after_their_retention(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let booked = app
        .book(&consultation(&at(monday_ahead(), 9, 0), "ada@example.com"))
        .await;
    let id = booked.body["booking"]["id"].as_i64().unwrap();
    let sent = || {
        dermabook::store::outbox::for_booking(&mut app.conn(), id)
            .unwrap()
            .into_iter()
            .filter(|e| e.status == "sent")
            .collect::<Vec<_>>()
    };
    let mut tries = 0;
    while sent().len() < 2 {
        tries += 1;
        assert!(tries < 400, "the emails were not sent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let settings = std::sync::Arc::new(app.settings.clone());
    let run =
        |now| dermabook::jobs::housekeeping::run_once(app.pool.clone(), settings.clone(), now);
    assert_eq!(run(app.clock.now()).await.unwrap().email_bodies_purged, 0);
    assert!(sent().iter().all(|e| !e.body_text.is_empty()));
    let days = i64::from(app.settings.email.body_retention_days);
    let later = app.clock.now() + chrono::Duration::days(days + 1);
    assert_eq!(run(later).await.unwrap().email_bodies_purged, 2);
    for email in sent() {
        assert!(email.body_text.is_empty() && email.body_html.is_empty());
        assert!(email.ics.is_none());
        assert!(!email.recipient.is_empty(), "who and when stay");
        assert!(email.sent_at.is_some());
    }
}

on_both_databases!(
    public_endpoints_are_limited_per_address,
    bookings_per_address_are_counted_across_instances,
    names_and_notes_cannot_carry_control_characters,
    answers_carry_the_headers_that_keep_tokens_private,
    the_desk_can_revoke_a_manage_link_and_old_links_expire,
    sent_email_bodies_are_purged_after_their_retention,
);
