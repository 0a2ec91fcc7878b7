//! The challenge hook against a real siteverify endpoint on loopback, which accepts each
//! answer once (as Turnstile and hCaptcha do): online bookings need an accepted answer,
//! a double click or a replay under the same key spends it once, and a verifier that
//! cannot be reached is a 503, never a booking.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

type Asked = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

/// A siteverify endpoint: `success` for an answer starting `human` that it has not
/// accepted before; every request it was sent, in order.
fn verifier() -> (String, Asked) {
    let asked: Asked = Arc::default();
    let log = asked.clone();
    let server = HttpServer::new(move || {
        let log = log.clone();
        App::new().route(
            "/siteverify",
            web::post().to(move |form: web::Form<BTreeMap<String, String>>| {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    let answer = form.get("response").cloned().unwrap_or_default();
                    let spent = log.iter().any(|f| f.get("response") == Some(&answer));
                    log.push(form.into_inner());
                    let success = answer.starts_with("human")
                        && !spent
                        && log.last().unwrap()["secret"] == "s3cret";
                    HttpResponse::Ok().json(json!({ "success": success }))
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/siteverify"), asked)
}

fn answers(asked: &Asked) -> Vec<String> {
    asked
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.get("response").cloned().unwrap_or_default())
        .collect()
}

async fn bookings_need_an_answer_the_verifier_accepts(backend: Backend) {
    let (url, asked) = verifier();
    let app = TestApp::spawn_with(backend, |s| {
        s.challenge.verify_url = url.clone();
        s.challenge.secret = "s3cret".into();
        s.challenge.site_key = "site-key-1".into();
        s.challenge.script_url = "https://challenges.example/api.js".into();
    })
    .await;
    let day = monday_ahead();

    // Through the API: no answer, or a refused one, books nothing.
    let body = consultation(&at(day, 9, 0), "ada@example.com");
    let missing = app.book(&body).await;
    assert_eq!(missing.problem(422)["errors"][0]["field"], "challenge");
    let refused = app
        .post_with_headers(
            "/api/v1/bookings",
            None,
            &body,
            &[("Challenge-Response", "robot")],
        )
        .await;
    assert_eq!(refused.problem(422)["errors"][0]["field"], "challenge");
    let key = ("Idempotency-Key", "challenge-key-1");
    let booked = app
        .post_with_headers(
            "/api/v1/bookings",
            None,
            &body,
            &[("Challenge-Response", "human-1"), key],
        )
        .await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    {
        let log = asked.lock().unwrap();
        let last = log.last().unwrap();
        assert_eq!(last["secret"], "s3cret");
        assert_eq!(last["remoteip"], "127.0.0.1");
    }
    // The same request again (a retry on a timeout) replays without spending an answer.
    let replayed = app
        .post_with_headers(
            "/api/v1/bookings",
            None,
            &body,
            &[("Challenge-Response", "human-1"), key],
        )
        .await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(answers(&asked), ["robot", "human-1"]);
    // The same answer on another booking is refused without asking the verifier: one
    // solved challenge books once.
    let other = consultation(&at(day, 11, 0), "eve@example.com");
    let reused = app
        .post_with_headers(
            "/api/v1/bookings",
            None,
            &other,
            &[("Challenge-Response", "human-1")],
        )
        .await;
    assert_eq!(reused.problem(422)["errors"][0]["field"], "challenge");
    assert_eq!(answers(&asked), ["robot", "human-1"]);

    // The booking page: the review shows the widget, its script is allowed by the policy.
    let client = awc::Client::builder().disable_redirects().finish();
    let form = |answer: &'static str| {
        vec![
            ("dermatologist_id", "1".to_string()),
            ("starts_at", at(day, 10, 0)),
            ("screening.pregnancy", "no".to_string()),
            ("name", "Grace Hopper".to_string()),
            ("email", "grace@example.com".to_string()),
            ("phone", "+44 7700 900456".to_string()),
            ("consent", "yes".to_string()),
            ("idempotency_key", "one-review".to_string()),
            ("cf-turnstile-response", answer.to_string()),
        ]
    };
    let mut review = client
        .post(format!("{}/book/initial-consultation/review", app.address))
        .send_form(&form(""))
        .await
        .unwrap();
    assert_eq!(review.status().as_u16(), 200);
    let policy = review
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        policy.contains("script-src 'self' https://challenges.example"),
        "{policy}"
    );
    let html = String::from_utf8(review.body().await.unwrap().to_vec()).unwrap();
    assert!(
        html.contains(r#"<div class="cf-turnstile" data-sitekey="site-key-1"></div>"#),
        "{html}"
    );

    // Confirmed without an answer: the review again, saying why, and nothing booked.
    let mut unanswered = client
        .post(format!("{}/book/initial-consultation/confirm", app.address))
        .send_form(&form(""))
        .await
        .unwrap();
    assert_eq!(unanswered.status().as_u16(), 422);
    let html = String::from_utf8(unanswered.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("not a robot"), "{html}");
    assert!(html.contains("Review your booking"));

    // A double click sends one answer twice at once: it is verified once, booked once.
    let confirm = || {
        client
            .post(format!("{}/book/initial-consultation/confirm", app.address))
            .send_form(&form("human-2"))
    };
    let (first, second) = futures_util::join!(confirm(), confirm());
    let places: Vec<String> = [first.unwrap(), second.unwrap()]
        .iter()
        .map(|r| {
            assert_eq!(r.status().as_u16(), 303);
            r.headers()
                .get("location")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(places[0], places[1]);
    assert!(places[0].starts_with("/manage/"));
    assert_eq!(
        answers(&asked).iter().filter(|a| *a == "human-2").count(),
        1,
        "the answer was spent once"
    );
    let desk = app.front_desk_token().await;
    let grace = app
        .get(
            "/api/v1/admin/bookings?patient=grace%40example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(grace.body["total"], 1);
}

on_both_databases!(bookings_need_an_answer_the_verifier_accepts);

async fn a_verifier_out_of_reach_books_nothing(backend: Backend) {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::spawn_with(backend, |s| {
        s.challenge.verify_url = format!("http://127.0.0.1:{port}/siteverify");
        s.challenge.secret = "s3cret".into();
    })
    .await;
    let body = consultation(&at(monday_ahead(), 9, 0), "ada@example.com");
    let unreachable = app
        .post_with_headers(
            "/api/v1/bookings",
            None,
            &body,
            &[("Challenge-Response", "human-3")],
        )
        .await;
    unreachable.problem(503);
    let desk = app.front_desk_token().await;
    let listed = app
        .get(
            "/api/v1/admin/bookings?patient=ada%40example.com",
            Some(&desk),
        )
        .await;
    assert_eq!(listed.body["total"], 0);
}

on_both_databases!(a_verifier_out_of_reach_books_nothing);
