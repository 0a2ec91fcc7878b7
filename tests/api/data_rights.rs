//! The patient's rights over their data: an admin exports everything stored about one
//! patient as one JSON document, and the export is audited.

use serde_json::json;

use crate::emails::{eventually, outbox};
use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn an_admin_exports_everything_stored_about_a_patient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let mut first = consultation(&at(day, 9, 0), "ada@example.com");
    first["screening_answers"] = json!({"pregnancy": true});
    let booked = app.book(&first).await;
    assert_eq!(booked.status, 201);
    let second = app
        .book(&consultation(&at(day, 11, 0), "ada@example.com"))
        .await;
    let token = second.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    let other = app
        .book(&consultation(&at(day, 10, 0), "bob@example.com"))
        .await;
    assert_eq!(other.status, 201);
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "sent")).await);
    let hers = app
        .get(
            "/api/v1/admin/bookings?patient=ada%40example.com",
            Some(&desk),
        )
        .await;
    let patient_id = hers.body["bookings"][0]["patient"]["id"].as_i64().unwrap();

    app.get(
        &format!("/api/v1/admin/patients/{patient_id}/export"),
        Some(&desk),
    )
    .await
    .problem(403);
    app.get("/api/v1/admin/patients/999999/export", Some(&admin))
        .await
        .problem(404);
    let exported = app
        .get(
            &format!("/api/v1/admin/patients/{patient_id}/export"),
            Some(&admin),
        )
        .await;
    assert_eq!(exported.status, 200, "{:?}", exported.body);
    let body = &exported.body;
    assert_eq!(body["patient"]["email"], "ada@example.com");
    assert_eq!(body["patient"]["date_of_birth"], "1985-03-14");
    let bookings = body["bookings"].as_array().unwrap();
    assert_eq!(
        bookings.len(),
        2,
        "both of hers, the cancelled one too, and not Bob's"
    );
    assert!(
        bookings
            .iter()
            .any(|b| b["screening_answers"]["pregnancy"] == true)
    );
    assert!(bookings.iter().any(|b| b["status"] == "cancelled"));
    let emails = body["emails"].as_array().unwrap();
    assert!(emails.iter().all(|e| e["recipient"] == "ada@example.com"
        || bookings.iter().any(|b| b["id"] == e["booking_id"])));
    assert!(
        emails
            .iter()
            .any(|e| e["kind"] == "cancelled" && e["recipient"] == "ada@example.com")
    );
    assert!(!body.to_string().contains("bob@example.com"));
    let audit = body["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|a| !a["history"].as_array().unwrap().is_empty())
    );

    // The export is in the audit log.
    let exports: i64 = {
        use dermabook::db::schema::audit_log;
        use diesel::prelude::*;
        audit_log::table
            .filter(audit_log::entity.eq("patient"))
            .filter(audit_log::entity_id.eq(patient_id))
            .filter(audit_log::action.eq("exported"))
            .count()
            .get_result(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(exports, 1);
}

on_both_databases!(an_admin_exports_everything_stored_about_a_patient);
