//! What the server logs about a whole booking, manage and desk flow: the route of each
//! request and its status, and nothing a patient typed or was given: no manage token, no
//! email, phone or name, no screening answers, no 4xx details.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

/// Every log line of this test binary, as the server writes them (the same subscriber
/// and format as `dermabook serve`, at its default level).
fn captured() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        captured().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn start_capturing(app: &TestApp) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| dermabook::telemetry::init_with_writer(&app.settings.log, || Capture));
}

fn log_text() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap()).into_owned()
}

async fn the_log_of_a_whole_flow_holds_no_patient_data_or_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    start_capturing(&app);
    let unique = dermabook::tokens::new_token()[..10]
        .to_lowercase()
        .replace(['-', '_'], "x");
    let email = format!("logged-{unique}@example.com");
    let name = format!("Name{unique}");
    let phone = "+44 7700 918 273";
    let day = monday_ahead();
    let mut body = consultation(&at(day, 9, 0), &email);
    body["patient"]["name"] = json!(name);
    body["patient"]["phone"] = json!(phone);
    body["screening_answers"] = json!({"pregnancy": true});
    body["notes"] = json!(format!("Notes{unique}"));
    let booked = app.book(&body).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let token = booked.body["manage_token"].as_str().unwrap().to_string();
    let id = booked.body["booking"]["id"].as_i64().unwrap();

    assert_eq!(app.manage(&token).await.status, 200);
    let moved = app
        .reschedule(&token, &json!({"starts_at": at(day, 10, 0)}))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let desk = app.front_desk_token().await;
    let found = app
        .get(
            &format!("/api/v1/admin/bookings?patient={email}"),
            Some(&desk),
        )
        .await;
    assert_eq!(found.body["total"], 1);
    app.post(
        &format!("/api/v1/admin/bookings/{id}/confirm"),
        Some(&desk),
        &json!({}),
    )
    .await;
    // A refused form quotes what was typed in its answer, never in the log.
    let mut bad = consultation(&at(day, 11, 0), &format!("bad{unique}"));
    bad["patient"]["name"] = json!(format!("Bad\u{7}{unique}"));
    assert_eq!(app.book(&bad).await.status, 422);
    app.manage(&format!("{token}x")).await.problem(404);
    assert_eq!(app.cancel(&token, &json!({})).await.status, 200);
    crate::helpers::stop_servers().await;

    let log = log_text();
    assert!(
        log.contains("/api/v1/manage/{token}") && log.contains("/api/v1/admin/bookings"),
        "requests are logged by their route"
    );
    for secret in [
        token.as_str(),
        email.as_str(),
        name.as_str(),
        &unique,
        phone,
        "7700 918 273",
        "pregnancy",
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
}

on_both_databases!(the_log_of_a_whole_flow_holds_no_patient_data_or_token);
