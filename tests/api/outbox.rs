//! The outbox under failure and load: a message that keeps failing ends `failed` and a
//! manual retry sends it, several workers on one database send each message once, and a
//! message a dead worker claimed is sent once its lease runs out.

use serde_json::json;

use crate::emails::{eventually, outbox, sender, use_smtp};
use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp, stop_servers};
use crate::on_both_databases;
use crate::smtp::TestSmtp;

async fn a_message_fails_after_its_attempts_and_sends_after_a_retry(backend: Backend) {
    let mut smtp = TestSmtp::start().await;
    smtp.stop();
    let app = TestApp::spawn_with(backend, |s| {
        use_smtp(s, &smtp);
        s.email.max_attempts = 2;
    })
    .await;
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "failed")).await);

    let desk = app.front_desk_token().await;
    let failed = app
        .get("/api/v1/admin/emails?status=failed", Some(&desk))
        .await;
    assert_eq!(failed.status, 200, "{:?}", failed.body);
    assert_eq!(failed.body["total"], 2);
    let emails = failed.body["emails"].as_array().unwrap();
    let confirmation = emails.iter().find(|e| e["kind"] == "confirmation").unwrap();
    assert_eq!(confirmation["attempts"], 2);
    assert!(confirmation["last_error"].as_str().unwrap().len() > 3);
    assert_eq!(confirmation["recipient"], "ada@example.com");
    let id = confirmation["id"].as_i64().unwrap();

    smtp.restart().await;
    assert_eq!(
        sender(&app).run_once().await.unwrap(),
        0,
        "failed messages stay failed"
    );
    assert!(smtp.received().is_empty());
    let retried = app
        .post(
            &format!("/api/v1/admin/emails/{id}/retry"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["status"], "pending");
    let received = smtp.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, ["ada@example.com"]);
    assert!(
        eventually(&app, |app| outbox(app)
            .iter()
            .any(|e| e.id == id && e.status == "sent"))
        .await
    );
    let again = app
        .post(
            &format!("/api/v1/admin/emails/{id}/retry"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert!(
        again.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("sent")
    );
    let sent = app
        .get("/api/v1/admin/emails?status=sent", Some(&desk))
        .await;
    assert_eq!(sent.body["total"], 1);
    assert_eq!(
        app.get("/api/v1/admin/emails?status=lost", Some(&desk))
            .await
            .invalid_fields(),
        ["status"]
    );
    app.post("/api/v1/admin/emails/999999/retry", Some(&desk), &json!({}))
        .await
        .problem(404);
}

async fn three_workers_on_one_database_send_each_message_once(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let mut settings = None;
    let app = TestApp::spawn_with(backend, |s| {
        use_smtp(s, &smtp);
        settings = Some(s.clone());
    })
    .await;
    // Two more workers, each with its own pool, as two more instances would have.
    let settings = std::sync::Arc::new(settings.unwrap());
    let mut others = Vec::new();
    for _ in 0..2 {
        let pool = dermabook::db::connect(&settings.database.url, 2, 5000).unwrap();
        others.push(dermabook::email::worker::spawn(pool, settings.clone()).unwrap());
    }
    let now = dermabook::db::now();
    {
        let mut conn = app.conn();
        for i in 0..150 {
            let email = dermabook::store::outbox::NewEmail {
                booking_id: None,
                kind: "front_desk_notice".into(),
                recipient: format!("desk{i}@harbourskin.example"),
                subject: format!("message {i}"),
                body_text: "text".into(),
                body_html: "<p>html</p>".into(),
                ics: None,
                message_id: format!("<test-{i}@harbourskin.example>"),
                dedupe_key: None,
                status: "pending".into(),
                next_attempt_at: now,
                created_at: now,
            };
            assert_eq!(
                dermabook::store::outbox::enqueue(&mut conn, std::slice::from_ref(&email)).unwrap(),
                1
            );
        }
    }
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "sent")).await);
    // Every worker stopped, each after the message it was sending: the count is final.
    for worker in others {
        worker.stop().await;
    }
    stop_servers().await;
    let received = smtp.received();
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| r.parsed().message_id().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 150, "no message sent twice, none lost");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 150);
    assert!(outbox(&app).iter().all(|e| e.attempts == 1));
}

async fn a_message_a_dead_worker_claimed_is_sent_once_its_lease_runs_out(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = TestApp::spawn_with(backend, |s| use_smtp(s, &smtp)).await;
    let now = dermabook::db::now();
    let mut conn = app.conn();
    for (i, lease) in [
        (0, now - chrono::Duration::seconds(5)),
        (1, now + chrono::Duration::hours(1)),
    ] {
        let email = dermabook::store::outbox::NewEmail {
            booking_id: None,
            kind: "front_desk_notice".into(),
            recipient: format!("desk{i}@harbourskin.example"),
            subject: format!("claimed {i}"),
            body_text: "text".into(),
            body_html: "<p>html</p>".into(),
            ics: None,
            message_id: format!("<claimed-{i}@harbourskin.example>"),
            dedupe_key: None,
            status: "pending".into(),
            next_attempt_at: now,
            created_at: now,
        };
        dermabook::store::outbox::enqueue(&mut conn, std::slice::from_ref(&email)).unwrap();
        // As a worker that died mid-send leaves it: claimed, one attempt, a lease.
        app.execute_sql(&format!(
            "UPDATE email_outbox SET status = 'sending', attempts = 1, claimed_until = '{lease}' WHERE message_id = '<claimed-{i}@harbourskin.example>'"
        ));
    }
    drop(conn);
    let received = smtp.wait_for(1).await;
    assert_eq!(
        sender(&app).run_once().await.unwrap(),
        0,
        "nothing else is due: the live lease is left alone"
    );
    stop_servers().await;
    assert_eq!(received.len(), 1);
    assert_eq!(smtp.received().len(), 1, "the live lease is left alone");
    assert_eq!(received[0].to, ["desk0@harbourskin.example"]);
    let emails = outbox(&app);
    let expired = emails
        .iter()
        .find(|e| e.recipient == "desk0@harbourskin.example")
        .unwrap();
    assert_eq!((expired.status.as_str(), expired.attempts), ("sent", 2));
    let live = emails
        .iter()
        .find(|e| e.recipient == "desk1@harbourskin.example")
        .unwrap();
    assert_eq!(live.status, "sending");
}

async fn an_outcome_after_its_lease_does_not_settle_the_next_claim(backend: Backend) {
    use dermabook::store::outbox::{claim_due, enqueue, mark_attempt_failed, mark_sent, unclaim};
    let app = TestApp::spawn(backend).await;
    // Due tomorrow, so the app's own sender leaves it alone; the claims below are made
    // as of tomorrow by hand, as two workers would.
    let tomorrow = dermabook::db::now() + chrono::Duration::days(1);
    let mut conn = app.conn();
    let email = dermabook::store::outbox::NewEmail {
        booking_id: None,
        kind: "front_desk_notice".into(),
        recipient: "desk@harbourskin.example".into(),
        subject: "late".into(),
        body_text: "text".into(),
        body_html: "<p>html</p>".into(),
        ics: None,
        message_id: "<late@harbourskin.example>".into(),
        dedupe_key: None,
        status: "pending".into(),
        next_attempt_at: tomorrow,
        created_at: tomorrow,
    };
    enqueue(&mut conn, std::slice::from_ref(&email)).unwrap();
    let first_lease = tomorrow + chrono::Duration::minutes(10);
    let first = claim_due(&mut conn, tomorrow, first_lease, 20).unwrap();
    assert_eq!(first.len(), 1);
    let id = first[0].id;
    // The first worker stalls past its lease; a second claims the message.
    let later = first_lease + chrono::Duration::seconds(1);
    let second_lease = later + chrono::Duration::minutes(10);
    assert_eq!(
        claim_due(&mut conn, later, second_lease, 20).unwrap().len(),
        1
    );
    // The first worker's outcomes, whatever they are, now settle nothing.
    mark_attempt_failed(&mut conn, id, first_lease, "late", None).unwrap();
    mark_sent(&mut conn, &[id], first_lease, later).unwrap();
    assert_eq!(unclaim(&mut conn, &[id], first_lease).unwrap(), 0);
    let stored = |app: &TestApp| outbox(app).into_iter().find(|e| e.id == id).unwrap();
    let held = stored(&app);
    assert_eq!((held.status.as_str(), held.attempts), ("sending", 2));
    assert_eq!(held.sent_at, None);
    // The second worker's do.
    mark_sent(&mut conn, &[id], second_lease, later).unwrap();
    let sent = stored(&app);
    assert_eq!((sent.status.as_str(), sent.sent_at), ("sent", Some(later)));
}

on_both_databases!(
    an_outcome_after_its_lease_does_not_settle_the_next_claim,
    a_message_fails_after_its_attempts_and_sends_after_a_retry,
    three_workers_on_one_database_send_each_message_once,
    a_message_a_dead_worker_claimed_is_sent_once_its_lease_runs_out,
);
