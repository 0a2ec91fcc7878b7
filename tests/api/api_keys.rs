//! API keys for integrations: created by admins, shown once, stored hashed, acting as the
//! front desk within their scope (never as an admin), named in the audit log, with their
//! last use, and revoked at once.

use serde_json::json;

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn an_integration_works_within_its_key_and_loses_it_when_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let desk = app.front_desk_token().await;
    app.post(
        "/api/v1/admin/api-keys",
        Some(&desk),
        &json!({"name": "billing", "scope": "read"}),
    )
    .await
    .problem(403);
    app.post(
        "/api/v1/admin/api-keys",
        Some(&admin),
        &json!({"name": "billing", "scope": "everything"}),
    )
    .await
    .problem(422);

    let read = app
        .post(
            "/api/v1/admin/api-keys",
            Some(&admin),
            &json!({"name": "billing", "scope": "read"}),
        )
        .await;
    assert_eq!(read.status, 201, "{:?}", read.body);
    let read_key = read.body["key"].as_str().unwrap().to_string();
    assert!(read_key.starts_with("dbk_") && read_key.len() > 40);
    assert!(read_key.starts_with(read.body["prefix"].as_str().unwrap()));
    let written = app
        .post(
            "/api/v1/admin/api-keys",
            Some(&admin),
            &json!({"name": "patient records", "scope": "bookings"}),
        )
        .await;
    let write_key = written.body["key"].as_str().unwrap().to_string();
    let write_id = written.body["id"].as_i64().unwrap();

    // Shown once: the list has neither key, and the database holds only hashes.
    let listed = app.get("/api/v1/admin/api-keys", Some(&admin)).await;
    assert_eq!(listed.body["api_keys"].as_array().unwrap().len(), 2);
    let text = listed.body.to_string();
    assert!(!text.contains(&read_key) && !text.contains(&write_key));
    let stored: Vec<(String, String)> = {
        use dermabook::db::schema::api_keys;
        use diesel::prelude::*;
        api_keys::table
            .select((api_keys::key_hash, api_keys::prefix))
            .load(&mut *app.conn())
            .unwrap()
    };
    for (hash, prefix) in &stored {
        assert!(hash != &read_key && hash != &write_key && prefix.len() < 16);
    }

    // A pending booking to act on.
    let mut pending = consultation(&at(monday_ahead(), 10, 0), "ada@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    let booked = app.book(&pending).await;
    let id = booked.body["booking"]["id"].as_i64().unwrap();

    // The read key reads, and nothing more.
    let seen = app.get("/api/v1/admin/bookings", Some(&read_key)).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["total"], 1);
    app.post(
        &format!("/api/v1/admin/bookings/{id}/confirm"),
        Some(&read_key),
        &json!({}),
    )
    .await
    .problem(403);
    app.get("/api/v1/admin/staff", Some(&read_key))
        .await
        .problem(403);

    // The bookings key confirms, and the history names the key; it keeps no schedule.
    let confirmed = app
        .post(
            &format!("/api/v1/admin/bookings/{id}/confirm"),
            Some(&write_key),
            &json!({}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let history = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(&desk))
        .await;
    let last = history.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "confirmed");
    assert_eq!(last["actor"]["kind"], "api_key");
    assert_eq!(last["actor"]["api_key_id"], write_id);
    app.send_json(
        "PUT",
        "/api/v1/admin/dermatologists/1/schedule",
        Some(&write_key),
        &json!({"rules": []}),
    )
    .await
    .problem(403);
    app.get("/api/v1/admin/api-keys", Some(&write_key))
        .await
        .problem(403);

    // Its last use shows; revoked, it is refused at once.
    let listed = app.get("/api/v1/admin/api-keys", Some(&admin)).await;
    let entry = listed.body["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == write_id)
        .unwrap()
        .clone();
    assert!(entry["last_used_at"].is_string(), "{entry}");
    let revoked = app
        .delete(&format!("/api/v1/admin/api-keys/{write_id}"), Some(&admin))
        .await;
    assert_eq!(revoked.status, 204);
    app.get("/api/v1/admin/bookings", Some(&write_key))
        .await
        .problem(401);
    app.delete(&format!("/api/v1/admin/api-keys/{write_id}"), Some(&admin))
        .await
        .problem(404);
    assert_eq!(
        app.get("/api/v1/admin/bookings", Some(&read_key))
            .await
            .status,
        200,
        "the other key still works"
    );
}

on_both_databases!(an_integration_works_within_its_key_and_loses_it_when_revoked);
