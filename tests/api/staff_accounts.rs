//! Staff accounts without SQL: an admin deactivates a login (its sessions end at once),
//! resets a password, signs someone out everywhere; anyone changes their own password;
//! repeated failed sign-ins wait a growing delay, per account and per address.

use dermabook::demo::{ADMIN_EMAIL, ADMIN_PASSWORD, FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD};
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn front_desk_id(app: &TestApp, admin: &str) -> i64 {
    let staff = app.get("/api/v1/admin/staff", Some(admin)).await;
    staff.body["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == FRONT_DESK_EMAIL)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn signed_in(app: &TestApp, token: &str) -> bool {
    app.get("/api/v1/auth/me", Some(token)).await.status == 200
}

async fn admins_run_staff_accounts_without_sql(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let id = front_desk_id(&app, &admin).await;
    let desk = app.front_desk_token().await;

    // Deactivated: the session ends at once and no new one starts.
    let off = app
        .send_json(
            "PATCH",
            &format!("/api/v1/admin/staff/{id}"),
            Some(&admin),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(off.body["active"], false, "{:?}", off.body);
    assert!(!signed_in(&app, &desk).await);
    app.login(FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD)
        .await
        .problem(401);
    let on = app
        .send_json(
            "PATCH",
            &format!("/api/v1/admin/staff/{id}"),
            Some(&admin),
            &json!({"active": true}),
        )
        .await;
    assert_eq!(on.body["active"], true);

    // A reset password ends the old sessions; the new one signs in.
    let desk = app.front_desk_token().await;
    let reset = app
        .post(
            &format!("/api/v1/admin/staff/{id}/password"),
            Some(&admin),
            &json!({"password": "a brand new desk password"}),
        )
        .await;
    assert_eq!(reset.status, 204);
    assert!(!signed_in(&app, &desk).await);
    let desk = app
        .token(FRONT_DESK_EMAIL, "a brand new desk password")
        .await;

    // Signed out everywhere.
    let ended = app
        .delete(&format!("/api/v1/admin/staff/{id}/sessions"), Some(&admin))
        .await;
    assert_eq!(ended.status, 204);
    assert!(!signed_in(&app, &desk).await);

    // Only admins may; an admin may not deactivate their own login.
    let desk = app
        .token(FRONT_DESK_EMAIL, "a brand new desk password")
        .await;
    app.delete(&format!("/api/v1/admin/staff/{id}/sessions"), Some(&desk))
        .await
        .problem(403);
    let me = app.get("/api/v1/auth/me", Some(&admin)).await.body["id"]
        .as_i64()
        .unwrap();
    app.send_json(
        "PATCH",
        &format!("/api/v1/admin/staff/{me}"),
        Some(&admin),
        &json!({"active": false}),
    )
    .await
    .problem(409);
    app.delete("/api/v1/admin/staff/9999/sessions", Some(&admin))
        .await
        .problem(404);
}

async fn anyone_changes_their_own_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let here = app.front_desk_token().await;
    let elsewhere = app.front_desk_token().await;
    let wrong = app
        .post(
            "/api/v1/auth/password",
            Some(&here),
            &json!({"current_password": "not it", "new_password": "a much better password"}),
        )
        .await;
    assert_eq!(wrong.invalid_fields(), ["current_password"]);
    let short = app
        .post(
            "/api/v1/auth/password",
            Some(&here),
            &json!({"current_password": FRONT_DESK_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(short.invalid_fields(), ["new_password"]);
    let changed = app
        .post(
            "/api/v1/auth/password",
            Some(&here),
            &json!({"current_password": FRONT_DESK_PASSWORD, "new_password": "a much better password"}),
        )
        .await;
    assert_eq!(changed.status, 204);
    assert!(signed_in(&app, &here).await, "the session used stays");
    assert!(!signed_in(&app, &elsewhere).await, "the others end");
    app.login(FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD)
        .await
        .problem(401);
    app.token(FRONT_DESK_EMAIL, "a much better password").await;
}

async fn failed_sign_ins_back_off_without_locking_anyone_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..4 {
        app.login(FRONT_DESK_EMAIL, "a guess").await.problem(401);
    }
    // Now even the right password waits, and is told how long.
    let waiting = app.login(FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD).await;
    let retry = waiting.retry_after();
    assert!((1..=60).contains(&retry), "{retry}");
    // The address waits too (another account from it), for as long.
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.problem(429);
    // Once the delay has passed, the right password works and the count starts again.
    app.travel_to(chrono::Utc::now() + chrono::Duration::seconds(retry + 1));
    app.token(FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD).await;
    app.login(FRONT_DESK_EMAIL, "one more guess")
        .await
        .problem(401);
    app.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

on_both_databases!(
    admins_run_staff_accounts_without_sql,
    anyone_changes_their_own_password,
    failed_sign_ins_back_off_without_locking_anyone_out,
);
