//! Signed webhooks against a real HTTP receiver on loopback that checks every signature
//! with the Standard Webhooks reference library, refuses on purpose for a while, and
//! counts what it accepted: every event once, each booking's events in order, from two
//! instances delivering at once; a failed event holds back its booking's later ones until
//! an admin replays or skips it; targets inside the clinic's network are refused.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::TimeZone;
use serde_json::{Value, json};

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

#[derive(Default)]
struct Receiver {
    secret: Option<String>,
    /// Requests to refuse before taking any (the receiver is down).
    down_for: usize,
    /// Bookings whose events it refuses.
    refused: HashSet<i64>,
    attempts: usize,
    bad_signatures: usize,
    /// Accepted events, in arrival order: (webhook-id, body).
    accepted: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(req: HttpRequest, body: web::Bytes, rx: web::Data<Shared>) -> HttpResponse {
    let mut rx = rx.lock().unwrap();
    rx.attempts += 1;
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(value) = req.headers().get(name) {
            headers.insert(
                name,
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
    }
    let verified = rx.secret.as_deref().map(|s| {
        standardwebhooks::Webhook::new(s)
            .unwrap()
            .verify(&body, &headers)
    });
    if !matches!(verified, Some(Ok(()))) {
        rx.bad_signatures += 1;
        return HttpResponse::BadRequest().finish();
    }
    if rx.down_for > 0 {
        rx.down_for -= 1;
        return HttpResponse::ServiceUnavailable().finish();
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    if rx
        .refused
        .contains(&event["data"]["booking_id"].as_i64().unwrap())
    {
        return HttpResponse::InternalServerError().finish();
    }
    let id = headers["webhook-id"].to_str().unwrap().to_string();
    rx.accepted.push((id, event));
    HttpResponse::NoContent().finish()
}

/// A receiver on loopback: its URL and its record.
fn receiver() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let data = web::Data::new(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hooks", web::post().to(receive))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hooks"), shared)
}

const BOOKING_EVENTS: [&str; 7] = [
    "booking.created",
    "booking.confirmed",
    "booking.rescheduled",
    "booking.cancelled",
    "booking.completed",
    "booking.no_show",
    "booking.sent_to_review",
];

async fn register(app: &TestApp, admin: &str, url: &str, rx: &Shared) -> i64 {
    let created = app
        .post(
            "/api/v1/admin/webhooks",
            Some(admin),
            &json!({"url": url, "event_types": BOOKING_EVENTS, "description": "patient records"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    rx.lock().unwrap().secret = Some(created.body["secret"].as_str().unwrap().to_string());
    created.body["id"].as_i64().unwrap()
}

/// Each booking's accepted event types (and cancellation reasons), in arrival order.
fn per_booking(rx: &Shared) -> BTreeMap<i64, Vec<String>> {
    let mut seen: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (_, event) in &rx.lock().unwrap().accepted {
        let mut name = event["type"].as_str().unwrap().to_string();
        if let Some(reason) = event["data"]["reason"].as_str() {
            name = format!("{name}:{reason}");
        }
        seen.entry(event["data"]["booking_id"].as_i64().unwrap())
            .or_default()
            .push(name);
    }
    seen
}

async fn deliveries(app: &TestApp, admin: &str, endpoint: i64) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/v1/admin/webhooks/{endpoint}/deliveries?per_page=200"),
            Some(admin),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["deliveries"].as_array().unwrap().clone()
}

fn by_type<'a>(deliveries: &'a [Value], booking: i64, event_type: &str) -> &'a Value {
    deliveries
        .iter()
        .find(|d| d["subject"] == format!("booking:{booking}") && d["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} of booking {booking}"))
}

/// The endpoint's deliveries once there are `count`, all delivered; fails after 30 s.
async fn all_delivered(app: &TestApp, admin: &str, endpoint: i64, count: usize) -> Vec<Value> {
    let mut list = Vec::new();
    for _ in 0..1500 {
        list = deliveries(app, admin, endpoint).await;
        if list.len() == count && list.iter().all(|d| d["status"] == "delivered") {
            return list;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not {count} deliveries, all delivered: {list:?}");
}

/// The delivery of `booking`'s `event_type` once it has `status`; fails after 30 seconds.
async fn delivery_when(
    app: &TestApp,
    admin: &str,
    endpoint: i64,
    (booking, event_type): (i64, &str),
    status: &str,
) -> Value {
    let mut delivery = Value::Null;
    for _ in 0..1500 {
        let list = deliveries(app, admin, endpoint).await;
        delivery = by_type(&list, booking, event_type).clone();
        if delivery["status"] == status {
            return delivery;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{event_type} of booking {booking} never became {status}: {delivery:?}");
}

async fn every_event_arrives_once_signed_and_in_order_from_two_instances(backend: Backend) {
    let (url, rx) = receiver();
    let app = TestApp::spawn_with(backend, |s| {
        s.webhooks.retry_schedule_seconds = vec![0; 6];
    })
    .await;
    let second = app.another_instance().await;
    let admin = app.admin_token().await;
    let desk = app.front_desk_token().await;

    let body = json!({"url": url, "event_types": ["booking.created"]});
    app.post("/api/v1/admin/webhooks", Some(&desk), &body)
        .await
        .problem(403);
    let unknown = json!({"url": url, "event_types": ["booking.invented"]});
    app.post("/api/v1/admin/webhooks", Some(&admin), &unknown)
        .await
        .problem(422);
    let endpoint = register(&app, &admin, &url, &rx).await;
    let secret = rx.lock().unwrap().secret.clone().unwrap();
    // The secret is shown once: not listed, and sealed in the database.
    let listed = app.get("/api/v1/admin/webhooks", Some(&admin)).await;
    assert_eq!(listed.body["webhooks"][0]["url"], url);
    assert!(!listed.body.to_string().contains(&secret[6..]));
    let stored: String = {
        use dermabook::db::schema::webhook_endpoints::dsl::*;
        use diesel::prelude::*;
        webhook_endpoints
            .select(secret_sealed)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert!(!stored.contains(&secret[6..]) && stored.starts_with("v1:"));

    // The receiver is down for its first four requests.
    rx.lock().unwrap().down_for = 4;
    let day = monday_ahead();
    let a = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let (id_a, token_a) = (
        a.body["booking"]["id"].as_i64().unwrap(),
        a.body["manage_token"].as_str().unwrap().to_string(),
    );
    let b = second
        .book(&consultation(&at(day, 10, 0), "grace@example.com"))
        .await;
    let id_b = b.body["booking"]["id"].as_i64().unwrap();
    // A booking that loses its time announces nothing.
    app.book(&consultation(&at(day, 9, 0), "mary@example.com"))
        .await
        .problem(409);
    let moved = second
        .post(
            &format!("/api/v1/admin/bookings/{id_a}/reschedule"),
            Some(&desk),
            &json!({"starts_at": at(day, 11, 0)}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(app.cancel(&token_a, &json!({})).await.status, 200);
    let cancelled = second
        .post(
            &format!("/api/v1/admin/bookings/{id_b}/cancel"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let mut pending = consultation(&at(day, 12, 0), "emmy@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let d = second.book(&pending).await;
    let id_d = d.body["booking"]["id"].as_i64().unwrap();
    let confirmed = app
        .post(
            &format!("/api/v1/admin/bookings/{id_d}/confirm"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let c = app
        .book(&consultation(&at(day, 14, 0), "rosalind@example.com"))
        .await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let id_c = c.body["booking"]["id"].as_i64().unwrap();
    // Completing needs the appointment's time to have come. A lease is measured by the
    // clock, so both instances' clocks move there together, once nothing is in flight.
    all_delivered(&app, &admin, endpoint, 8).await;
    let after = chrono_tz::Europe::London
        .from_local_datetime(&day.and_hms_opt(15, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc);
    app.travel_to(after);
    second.travel_to(after);
    let desk_later = app.front_desk_token().await;
    let done = app
        .post(
            &format!("/api/v1/admin/bookings/{id_c}/complete"),
            Some(&desk_later),
            &json!({}),
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);

    let expected = BTreeMap::from([
        (
            id_a,
            vec![
                "booking.created",
                "booking.rescheduled",
                "booking.cancelled:patient",
            ],
        ),
        (id_b, vec!["booking.created", "booking.cancelled:desk"]),
        (id_c, vec!["booking.created", "booking.completed"]),
        (id_d, vec!["booking.created", "booking.confirmed"]),
    ]);
    let admin = app.admin_token().await;
    let settled = all_delivered(&app, &admin, endpoint, 9).await;

    let seen = per_booking(&rx);
    let seen: BTreeMap<i64, Vec<&str>> = seen
        .iter()
        .map(|(k, v)| (*k, v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(seen, expected, "each booking's events, in order");
    let rx = rx.lock().unwrap();
    assert_eq!(rx.bad_signatures, 0);
    let ids: HashSet<&String> = rx.accepted.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 9, "no event accepted twice");
    assert_eq!(
        rx.attempts,
        9 + 4,
        "each refused request was tried again, once"
    );
    let attempts: i64 = settled
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 13);

    // What a receiver learns: ids and what changed, never who or what they answered.
    let moved = rx
        .accepted
        .iter()
        .find(|(_, e)| e["type"] == "booking.rescheduled")
        .unwrap();
    assert_eq!(moved.1["data"]["previous"]["dermatologist_id"], 1);
    assert!(
        moved.1["data"]["starts_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_ne!(
        moved.1["data"]["previous"]["starts_at"],
        moved.1["data"]["starts_at"]
    );
    let everything = serde_json::to_string(&rx.accepted).unwrap();
    for private in [
        "ada@example.com",
        "Ada Lovelace",
        "7700",
        "pregnancy",
        "Dry patches",
    ] {
        assert!(
            !everything.contains(private),
            "{private} reached a receiver"
        );
    }
}

async fn a_failed_event_holds_back_its_booking_until_an_admin_replays_or_skips_it(
    backend: Backend,
) {
    let (url, rx) = receiver();
    // Two attempts: one, and one more at once.
    let app = TestApp::spawn_with(backend, |s| {
        s.webhooks.retry_schedule_seconds = vec![0];
    })
    .await;
    let admin = app.admin_token().await;
    let desk = app.front_desk_token().await;
    let endpoint = register(&app, &admin, &url, &rx).await;
    let day = monday_ahead();

    rx.lock().unwrap().down_for = usize::MAX;
    let a = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let id_a = a.body["booking"]["id"].as_i64().unwrap();
    let failed = delivery_when(&app, &admin, endpoint, (id_a, "booking.created"), "failed").await;
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["last_status_code"], 503);
    let hook = app
        .get(&format!("/api/v1/admin/webhooks/{endpoint}"), Some(&admin))
        .await;
    assert!(hook.body["failing_since"].is_string(), "{:?}", hook.body);

    // The receiver is back. A's next event waits behind the failed one; B's goes.
    rx.lock().unwrap().down_for = 0;
    let moved = app
        .post(
            &format!("/api/v1/admin/bookings/{id_a}/reschedule"),
            Some(&desk),
            &json!({"starts_at": at(day, 11, 0)}),
        )
        .await;
    assert_eq!(moved.status, 200);
    let b = app
        .book(&consultation(&at(day, 10, 0), "grace@example.com"))
        .await;
    let id_b = b.body["booking"]["id"].as_i64().unwrap();
    delivery_when(
        &app,
        &admin,
        endpoint,
        (id_b, "booking.created"),
        "delivered",
    )
    .await;
    let list = deliveries(&app, &admin, endpoint).await;
    let waiting = by_type(&list, id_a, "booking.rescheduled");
    assert_eq!(waiting["status"], "pending");
    assert_eq!(
        waiting["attempts"], 0,
        "never tried while the earlier one failed"
    );

    // Only a settled delivery can be replayed; the replay sends both, in order.
    let failed_id = failed["id"].as_i64().unwrap();
    let waiting_id = waiting["id"].as_i64().unwrap();
    let replay = |id: i64| format!("/api/v1/admin/webhooks/{endpoint}/deliveries/{id}/replay");
    app.post(&replay(waiting_id), Some(&admin), &json!({}))
        .await
        .problem(409);
    app.post(&replay(failed_id), Some(&desk), &json!({}))
        .await
        .problem(403);
    let replayed = app.post(&replay(failed_id), Some(&admin), &json!({})).await;
    assert_eq!(replayed.status, 200, "{:?}", replayed.body);
    delivery_when(
        &app,
        &admin,
        endpoint,
        (id_a, "booking.rescheduled"),
        "delivered",
    )
    .await;
    assert_eq!(
        per_booking(&rx)[&id_a],
        ["booking.created", "booking.rescheduled"]
    );
    let hook = app
        .get(&format!("/api/v1/admin/webhooks/{endpoint}"), Some(&admin))
        .await;
    assert!(
        hook.body["failing_since"].is_null(),
        "delivered again: {:?}",
        hook.body
    );

    // Skipping a failed event lets the booking's later ones go, without it.
    rx.lock().unwrap().refused.insert(id_b);
    let moved_b = app
        .post(
            &format!("/api/v1/admin/bookings/{id_b}/reschedule"),
            Some(&desk),
            &json!({"starts_at": at(day, 12, 0)}),
        )
        .await;
    assert_eq!(moved_b.status, 200);
    let stuck = delivery_when(
        &app,
        &admin,
        endpoint,
        (id_b, "booking.rescheduled"),
        "failed",
    )
    .await;
    let cancelled = app
        .post(
            &format!("/api/v1/admin/bookings/{id_b}/cancel"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200);
    rx.lock().unwrap().refused.clear();
    let skip = format!(
        "/api/v1/admin/webhooks/{endpoint}/deliveries/{}/skip",
        stuck["id"]
    );
    let skipped = app.post(&skip, Some(&admin), &json!({})).await;
    assert_eq!(skipped.body["status"], "skipped", "{:?}", skipped.body);
    app.post(&skip, Some(&admin), &json!({})).await.problem(409);
    delivery_when(
        &app,
        &admin,
        endpoint,
        (id_b, "booking.cancelled"),
        "delivered",
    )
    .await;
    assert_eq!(
        per_booking(&rx)[&id_b],
        ["booking.created", "booking.cancelled:desk"]
    );
    let hook = app
        .get(&format!("/api/v1/admin/webhooks/{endpoint}"), Some(&admin))
        .await;
    assert!(hook.body["failing_since"].is_null(), "{:?}", hook.body);
    let history = app
        .get(
            &format!("/api/v1/admin/webhooks/{endpoint}/deliveries?status=skipped"),
            Some(&admin),
        )
        .await;
    assert_eq!(history.body["total"], 1);
    assert_eq!(rx.lock().unwrap().bad_signatures, 0);
}

async fn targets_inside_the_clinic_are_refused_at_registration_and_delivery(backend: Backend) {
    let (url, rx) = receiver();
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let app = TestApp::spawn_with(backend, |s| {
        s.webhooks.allow_private_targets = false;
        s.webhooks.retry_schedule_seconds = vec![];
    })
    .await;
    let admin = app.admin_token().await;
    for inside in [
        url.clone(),
        format!("http://localhost:{port}/hooks"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[::1]/hooks".to_string(),
        "http://10.0.0.8/hooks".to_string(),
        "ftp://hooks.example.com/".to_string(),
        "http://user:password@hooks.example.com/".to_string(),
    ] {
        let refused = app
            .post(
                "/api/v1/admin/webhooks",
                Some(&admin),
                &json!({"url": inside, "event_types": ["booking.created"]}),
            )
            .await;
        assert_eq!(
            refused.invalid_fields(),
            ["url"],
            "{inside}: {:?}",
            refused.body
        );
    }
    assert_eq!(
        app.get("/api/v1/admin/webhooks", Some(&admin)).await.body["webhooks"],
        json!([])
    );

    // A name that resolves inside by the time of delivery (it did not when registered):
    // the delivery resolves it again, and refuses.
    let sealer =
        dermabook::webhooks::seal::Sealer::new(&app.settings.webhooks.encryption_key).unwrap();
    let sealed = sealer.seal(&dermabook::webhooks::seal::new_secret());
    app.execute_sql(&format!(
        "INSERT INTO webhook_endpoints (url, description, event_types, secret_sealed, active, \
         created_by, created_at, updated_at) VALUES ('http://localhost:{port}/hooks', '', \
         'booking.created', '{sealed}', TRUE, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    ));
    let endpoint = app.get("/api/v1/admin/webhooks", Some(&admin)).await.body["webhooks"][0]["id"]
        .as_i64()
        .unwrap();
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let id = booked.body["booking"]["id"].as_i64().unwrap();
    let delivery = delivery_when(&app, &admin, endpoint, (id, "booking.created"), "failed").await;
    let error = delivery["last_error"].as_str().unwrap();
    assert!(error.contains("not a public address"), "{error}");
    assert_eq!(
        rx.lock().unwrap().attempts,
        0,
        "nothing reached the receiver"
    );
}

async fn an_outcome_after_its_lease_does_not_settle_the_next_claim(backend: Backend) {
    use dermabook::store::webhooks::{Outcome, claim_due, record};
    let (url, rx) = receiver();
    // The server's own worker looks once at start and then not for an hour: this test
    // claims by hand, as two workers would.
    let app = TestApp::spawn_with(backend, |s| s.webhooks.poll_interval_ms = 3_600_000).await;
    let admin = app.admin_token().await;
    register(&app, &admin, &url, &rx).await;
    app.book(&consultation(&at(monday_ahead(), 9, 0), "ada@example.com"))
        .await;
    let now = app.clock.now();
    let lease = chrono::Duration::seconds(60);
    let claim = |at: chrono::NaiveDateTime| {
        let mut conn = app.conn();
        dermabook::db::write_transaction(&mut conn, |conn| claim_due(conn, at, at + lease, 8, &[]))
            .unwrap()
    };
    let first = claim(now);
    assert_eq!(first.len(), 1);
    assert!(claim(now).is_empty(), "claimed already");
    // The first worker stalls past its lease; a second claims the delivery again.
    let later = now + lease + chrono::Duration::seconds(1);
    let second = claim(later);
    assert_eq!((second.len(), second[0].id), (1, first[0].id));
    assert_eq!(second[0].attempts, 2);

    let mut conn = app.conn();
    let delivered = || Outcome::Delivered { status_code: 204 };
    assert!(
        !record(&mut conn, &first[0], delivered(), later).unwrap(),
        "the stalled worker's outcome is not recorded"
    );
    let failed = Outcome::Failed {
        status_code: Some(500),
        error: "the receiver answered 500".into(),
        retry_at: None,
    };
    assert!(!record(&mut conn, &first[0], failed, later).unwrap());
    assert!(record(&mut conn, &second[0], delivered(), later).unwrap());
    let status: String = {
        use dermabook::db::schema::webhook_deliveries::dsl::*;
        use diesel::prelude::*;
        webhook_deliveries.select(status).first(&mut *conn).unwrap()
    };
    assert_eq!(status, "delivered");
}

on_both_databases!(
    an_outcome_after_its_lease_does_not_settle_the_next_claim,
    every_event_arrives_once_signed_and_in_order_from_two_instances,
    a_failed_event_holds_back_its_booking_until_an_admin_replays_or_skips_it,
    targets_inside_the_clinic_are_refused_at_registration_and_delivery,
);
