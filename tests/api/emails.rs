//! Emails through a real SMTP server on loopback: what arrives (both parts, headers, the
//! calendar invitation, a manage link that works), retries while the server is down,
//! and reminders. The outbox's failure and load cases are in `outbox.rs`.

use std::time::Duration;

use dermabook::config::{EmailTransport, Settings};
use mail_parser::MimeHeaders;
use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp, stop_servers};
use crate::on_both_databases;
use crate::smtp::{Received, TestSmtp};

pub(crate) fn use_smtp(settings: &mut Settings, smtp: &TestSmtp) {
    settings.email.transport = EmailTransport::Smtp;
    settings.email.smtp.host = "127.0.0.1".into();
    settings.email.smtp.port = smtp.port;
    settings.email.smtp.timeout_seconds = 3;
    settings.email.retry_base_seconds = 1;
}

/// The messages sent to one address.
fn to<'a>(received: &'a [Received], address: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|r| r.to.iter().any(|t| t == address))
        .collect()
}

/// The text/calendar part of a message (the one inside multipart/alternative).
fn calendar(received: &Received) -> String {
    let message = received.parsed();
    message
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "text" && c.subtype() == Some("calendar"))
        })
        .and_then(|p| p.text_contents())
        .expect("a text/calendar part")
        .to_string()
}

fn ics_line<'a>(ics: &'a str, name: &str) -> &'a str {
    ics.lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {ics}"))
        .split_once(':')
        .unwrap()
        .1
}

/// Waits until `done` holds for the database (or 20 seconds pass).
pub(crate) async fn eventually(app: &TestApp, done: impl Fn(&TestApp) -> bool) -> bool {
    for _ in 0..400 {
        if done(app) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One more sender on the app's database, to run a single pass of by hand.
pub(crate) fn sender(app: &TestApp) -> dermabook::email::worker::Worker {
    dermabook::email::worker::Worker::new(
        app.pool.clone(),
        std::sync::Arc::new(app.settings.clone()),
        app.clock.clone(),
        tokio_util::sync::CancellationToken::new(),
    )
    .unwrap()
}

pub(crate) fn outbox(app: &TestApp) -> Vec<dermabook::store::outbox::Email> {
    dermabook::store::outbox::list(&mut app.conn(), None, 0, 1000)
        .unwrap()
        .0
}

async fn a_booking_email_arrives_with_both_parts_and_an_invitation(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = TestApp::spawn_with(backend, |s| use_smtp(s, &smtp)).await;
    let day = monday_ahead();
    let mut body = consultation(&at(day, 10, 0), "ada@example.com");
    body["patient"]["name"] = json!("Ada <b>Lovelace</b>");
    let booked = app.book(&body).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let reference = booked.body["booking"]["reference"].as_str().unwrap();

    let received = smtp.wait_for(2).await;
    assert_eq!(
        received.len(),
        2,
        "the patient's email and the front desk's notice"
    );
    let patient = to(&received, "ada@example.com");
    assert_eq!(patient.len(), 1);
    assert_eq!(
        patient[0].from, "bookings@harbourskin.example",
        "the envelope sender"
    );
    let message = patient[0].parsed();
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Harbour Skin Clinic"));
    assert_eq!(from.address(), Some("bookings@harbourskin.example"));
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("frontdesk@harbourskin.example")
    );
    let subject = message.subject().unwrap();
    assert!(
        subject.contains(reference) && subject.contains("10:00"),
        "{subject}"
    );
    let message_id = message.message_id().unwrap();
    assert!(message_id.ends_with("@harbourskin.example"), "{message_id}");

    let text = message.body_text(0).unwrap();
    let date = day.format("%A %-d %B %Y").to_string();
    for expected in [
        reference,
        "Initial dermatology consultation",
        "Dr Amelia Hart",
        date.as_str(),
        "10:00 to 10:30 (GMT, Europe/London)",
        "12 Harbour Street, Bristol",
        "Bring a list of the medicines",
    ] {
        assert!(text.contains(expected), "no `{expected}` in\n{text}");
    }
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Dear Ada &lt;b&gt;Lovelace&lt;"), "{html}");
    assert!(!html.contains("<b>Lovelace"), "patient text is escaped");

    let ics = calendar(patient[0]);
    assert_eq!(ics_line(&ics, "METHOD"), "REQUEST");
    assert_eq!(
        ics_line(&ics, "UID"),
        format!("{reference}@harbourskin.example")
    );
    assert_eq!(ics_line(&ics, "SEQUENCE"), "0");
    let start = London_utc(day, 10);
    assert_eq!(ics_line(&ics, "DTSTART"), start);
    let attached = message
        .attachments()
        .find(|a| a.attachment_name() == Some("invite.ics"))
        .expect("invite.ics attached");
    assert_eq!(attached.text_contents().map(str::trim), Some(ics.trim()));

    // The manage link in the email opens this booking's page, and its token the API's.
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/manage/"))
        .expect("a manage link");
    assert!(link.starts_with("http://127.0.0.1:8080/manage/"), "{link}");
    let token = &link[link.find("/manage/").unwrap() + "/manage/".len()..];
    let (page, html) = app.get_raw(&format!("/manage/{token}"), &[]).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&html).contains(reference));
    let managed = app.get(&format!("/api/v1/manage/{token}"), None).await;
    assert_eq!(managed.status, 200, "{:?}", managed.body);
    assert_eq!(managed.body["booking"]["reference"], reference);

    // The front desk's notice names the patient and the change.
    let notice = to(&received, "frontdesk@harbourskin.example")[0].parsed();
    assert!(notice.subject().unwrap().contains("new booking"));
    assert!(notice.body_text(0).unwrap().contains("ada@example.com"));
    assert!(
        notice
            .body_html(0)
            .unwrap()
            .contains("Dry patches on both hands")
    );

    // Rescheduling updates the same calendar event; cancelling removes it.
    let token = booked.body["manage_token"].as_str().unwrap();
    let moved = app
        .reschedule(token, &json!({"starts_at": at(day, 11, 0)}))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let cancelled = app.cancel(token, &json!({})).await;
    assert_eq!(cancelled.status, 200);
    let received = smtp.wait_for(6).await;
    let patient = to(&received, "ada@example.com");
    assert_eq!(patient.len(), 3);
    let rescheduled = calendar(patient[1]);
    assert_eq!(ics_line(&rescheduled, "METHOD"), "REQUEST");
    assert_eq!(ics_line(&rescheduled, "SEQUENCE"), "1");
    assert_eq!(ics_line(&rescheduled, "DTSTART"), London_utc(day, 11));
    assert!(patient[1].parsed().subject().unwrap().starts_with("Moved"));
    let cancel = calendar(patient[2]);
    assert_eq!(ics_line(&cancel, "METHOD"), "CANCEL");
    assert_eq!(
        ics_line(&cancel, "UID"),
        format!("{reference}@harbourskin.example")
    );
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "sent")).await);
}

/// A London wall-clock hour on `day` as an ICS UTC date-time.
#[allow(non_snake_case)]
fn London_utc(day: chrono::NaiveDate, hour: u32) -> String {
    use chrono::TimeZone;
    chrono_tz::Europe::London
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

async fn emails_wait_out_a_mail_server_outage_and_arrive_once(backend: Backend) {
    let mut smtp = TestSmtp::start().await;
    smtp.stop();
    let app = TestApp::spawn_with(backend, |s| use_smtp(s, &smtp)).await;
    let day = monday_ahead();
    for (i, hour) in [9, 11, 14].into_iter().enumerate() {
        let reply = app
            .book(&consultation(
                &at(day, hour, 0),
                &format!("p{i}@example.com"),
            ))
            .await;
        assert_eq!(
            reply.status, 201,
            "bookings do not wait for email: {:?}",
            reply.body
        );
    }
    // Every message has failed at least once and waits for its next attempt.
    assert!(
        eventually(&app, |app| {
            let emails = outbox(app);
            emails.len() == 6
                && emails
                    .iter()
                    .all(|e| e.attempts >= 1 && e.status == "pending")
        })
        .await,
        "{:?}",
        outbox(&app)
            .iter()
            .map(|e| (&e.status, e.attempts, &e.last_error))
            .collect::<Vec<_>>()
    );
    assert!(outbox(&app).iter().all(|e| e.last_error.is_some()));
    assert!(smtp.received().is_empty());

    smtp.restart().await;
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "sent")).await);
    let received = smtp.wait_for(6).await;
    // Stopping the server lets the message in flight finish: nothing is sent after.
    stop_servers().await;
    let received_later = smtp.received();
    assert_eq!(received_later.len(), 6, "each message exactly once");
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| r.parsed().message_id().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

async fn one_reminder_per_confirmed_booking_whoever_looks(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let mut settings = None;
    let app = TestApp::spawn_with(backend, |s| {
        use_smtp(s, &smtp);
        // The Monday ahead is within "hours before", so its bookings are due a reminder.
        s.email.reminder_hours_before = 24 * 60;
        settings = Some(s.clone());
    })
    .await;
    let day = monday_ahead();
    let confirmed = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let mut pending = consultation(&at(day, 10, 0), "bob@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let pending = app.book(&pending).await;
    assert_eq!(pending.body["booking"]["status"], "pending_review");
    let cancelled = app
        .book(&consultation(&at(day, 11, 0), "cy@example.com"))
        .await;
    let token = cancelled.body["manage_token"].as_str().unwrap();
    app.cancel(token, &json!({})).await;

    // Two instances scan at the same moment, three times over (each server also scans
    // when it starts): one reminder is queued all the same.
    let settings = std::sync::Arc::new(settings.unwrap());
    let other = dermabook::db::connect(&settings.database.url, 2, 5000).unwrap();
    let now = app.clock.now();
    for _ in 0..3 {
        let (a, b) = futures_util::future::join(
            dermabook::jobs::reminders::run_once(app.pool.clone(), settings.clone(), now),
            dermabook::jobs::reminders::run_once(other.clone(), settings.clone(), now),
        )
        .await;
        a.unwrap();
        b.unwrap();
    }
    let reminders = |app: &TestApp| -> Vec<dermabook::store::outbox::Email> {
        outbox(app)
            .into_iter()
            .filter(|e| e.kind == "reminder")
            .collect()
    };
    assert!(
        eventually(&app, |app| reminders(app)
            .iter()
            .any(|e| e.status == "sent"))
        .await
    );
    let queued = reminders(&app);
    assert_eq!(
        queued.len(),
        1,
        "exactly one reminder, for the confirmed booking only"
    );
    assert_eq!(
        queued[0].booking_id,
        confirmed.body["booking"]["id"].as_i64()
    );
    let received = smtp.received();
    let reminded = received
        .iter()
        .filter(|r| r.parsed().subject().unwrap().starts_with("Reminder"))
        .collect::<Vec<_>>();
    assert_eq!(reminded.len(), 1);
    assert_eq!(reminded[0].to, ["ada@example.com"]);
}

async fn the_file_transport_writes_each_message_as_an_eml_file(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let booked = app
        .book(&consultation(&at(monday_ahead(), 9, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "sent")).await);
    let files: Vec<Vec<u8>> = std::fs::read_dir(&app.mail_dir)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    let subjects: Vec<String> = files
        .iter()
        .map(|bytes| {
            let message = mail_parser::MessageParser::default().parse(bytes).unwrap();
            message.subject().unwrap().to_string()
        })
        .collect();
    let reference = booked.body["booking"]["reference"].as_str().unwrap();
    assert!(
        subjects.iter().all(|s| s.contains(reference)),
        "{subjects:?}"
    );
}

on_both_databases!(
    the_file_transport_writes_each_message_as_an_eml_file,
    a_booking_email_arrives_with_both_parts_and_an_invitation,
    emails_wait_out_a_mail_server_outage_and_arrive_once,
    one_reminder_per_confirmed_booking_whoever_looks,
);
