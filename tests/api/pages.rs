//! The booking page's promises that need no browser: a confirmation sent twice (a double
//! click, the back button) books once, and a form posted from another site books nothing.

use crate::fixtures::{at, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn bookings_of(app: &TestApp, email: &str) -> usize {
    let desk = app.front_desk_token().await;
    let listed = app
        .get(
            &format!("/api/v1/admin/bookings?patient={email}"),
            Some(&desk),
        )
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    listed.body["bookings"].as_array().map_or(0, Vec::len)
}

async fn a_confirmation_sent_twice_books_once_and_another_site_books_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let client = awc::Client::builder().disable_redirects().finish();
    let confirm = format!("{}/book/initial-consultation/confirm", app.address);
    let form = |starts_at: String, key: &'static str| {
        vec![
            ("dermatologist_id", "1".to_string()),
            ("starts_at", starts_at),
            ("screening.pregnancy", "no".to_string()),
            ("name", "Ada Lovelace".to_string()),
            ("email", "ada@example.com".to_string()),
            ("phone", "+44 7700 900123".to_string()),
            ("consent", "yes".to_string()),
            ("idempotency_key", key.to_string()),
        ]
    };
    let mut places = Vec::new();
    for _ in 0..2 {
        let sent = client
            .post(&confirm)
            .send_form(&form(at(day, 10, 0), "one-rendering-of-the-review"))
            .await
            .unwrap();
        assert_eq!(sent.status().as_u16(), 303);
        places.push(
            sent.headers()
                .get("location")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(places[0].starts_with("/manage/"), "{places:?}");
    assert_eq!(
        places[0], places[1],
        "the second answer is the first booking's"
    );
    assert_eq!(bookings_of(&app, "ada%40example.com").await, 1);

    let forged = client
        .post(&confirm)
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .send_form(&form(at(day, 11, 0), "another-rendering"))
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let from_elsewhere = client
        .post(&confirm)
        .insert_header(("Origin", "https://attacker.example"))
        .send_form(&form(at(day, 11, 0), "a-third-rendering"))
        .await
        .unwrap();
    assert_eq!(from_elsewhere.status().as_u16(), 403);
    assert_eq!(
        bookings_of(&app, "ada%40example.com").await,
        1,
        "nothing more was booked"
    );
}

on_both_databases!(a_confirmation_sent_twice_books_once_and_another_site_books_nothing);
