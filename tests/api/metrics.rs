//! `GET /metrics`: Prometheus's text format for a bearer of the metrics token, nothing
//! for anyone else, with the figures a clinic's operator watches.

use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

const TOKEN: &str = "a-metrics-token-for-the-tests";

/// The value of the first sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let (reply, body) = app
        .get_raw("/metrics", &[("Authorization", &format!("Bearer {TOKEN}"))])
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .content_type()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        reply.content_type()
    );
    String::from_utf8(body).unwrap()
}

async fn metrics_answer_only_the_token_and_count_what_happens(backend: Backend) {
    let closed = TestApp::spawn(backend).await;
    closed.get("/metrics", None).await.problem(404);

    let app = TestApp::spawn_with(backend, |s| s.metrics.token = TOKEN.into()).await;
    app.get("/metrics", None).await.problem(401);
    app.get("/metrics", Some("not-the-token"))
        .await
        .problem(401);

    let before = scrape(&app).await;
    let booked_before = sample(
        &before,
        "dermabook_booking_operations_total",
        &[
            r#"operation="book""#,
            r#"channel="online""#,
            r#"outcome="done""#,
        ],
    )
    .unwrap_or(0.0);
    let statements_before = sample(&before, "dermabook_db_statements_total", &[]).unwrap_or(0.0);
    let day = monday_ahead();
    let search = format!("/api/v1/availability?treatment=initial-consultation&from={day}&to={day}");
    assert_eq!(app.get(&search, None).await.status, 200);
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    let taken = app
        .book(&consultation(&at(day, 9, 0), "bob@example.com"))
        .await;
    assert_eq!(taken.status, 409);
    let token = booked.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);

    let after = scrape(&app).await;
    // A booking is several statements (the booking, its slots, its emails, its audit
    // entry), each counted by the connection that sent it.
    let statements =
        sample(&after, "dermabook_db_statements_total", &[]).unwrap() - statements_before;
    assert!(
        statements >= 5.0,
        "{statements} statements for a booking and a cancel"
    );
    let booked_after = sample(
        &after,
        "dermabook_booking_operations_total",
        &[
            r#"operation="book""#,
            r#"channel="online""#,
            r#"outcome="done""#,
        ],
    )
    .unwrap();
    assert!(
        booked_after >= booked_before + 1.0,
        "{booked_before} -> {booked_after}"
    );
    for (name, labels) in [
        (
            "http_requests_total",
            &[
                r#"route="/api/v1/bookings""#,
                r#"method="POST""#,
                r#"status="201""#,
            ][..],
        ),
        (
            "http_request_duration_seconds_bucket",
            &[r#"route="/api/v1/manage/{token}/cancel""#][..],
        ),
        ("dermabook_booking_conflicts_total", &[][..]),
        (
            "dermabook_booking_operations_total",
            &[
                r#"operation="cancel""#,
                r#"channel="online""#,
                r#"outcome="done""#,
            ][..],
        ),
        ("dermabook_outbox_messages", &[r#"status="pending""#][..]),
        ("dermabook_outbox_oldest_pending_age_seconds", &[][..]),
        ("dermabook_db_pool_connections", &[r#"state="idle""#][..]),
        ("dermabook_db_pool_wait_seconds_count", &[][..]),
        ("dermabook_slot_generation_runs_total", &[][..]),
        ("dermabook_availability_cache_total", &[][..]),
        ("process_resident_memory_bytes", &[][..]),
        ("process_open_fds", &[][..]),
    ] {
        assert!(
            sample(&after, name, labels).is_some(),
            "no {name} {labels:?} in\n{after}"
        );
    }
    // The raw target never becomes a label: a manage token is no route.
    assert!(!after.contains(token));
}

on_both_databases!(metrics_answer_only_the_token_and_count_what_happens);
