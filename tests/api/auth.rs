//! Staff sign-in, sessions and roles.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;
use dermabook::demo::{FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD};

async fn staff_sign_in_and_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app
        .login(" FrontDesk@HarbourSkin.example ", FRONT_DESK_PASSWORD)
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["staff"]["role"], "front_desk");
    assert_eq!(login.body["token_type"], "Bearer");
    let token = login.body["token"].as_str().unwrap().to_string();

    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.body["email"], FRONT_DESK_EMAIL);
    assert_eq!(
        app.post("/api/v1/auth/logout", Some(&token), &json!({}))
            .await
            .status,
        204
    );
    let after = app.get("/api/v1/auth/me", Some(&token)).await;
    after.problem(401);
    assert_eq!(after.headers.get("www-authenticate").unwrap(), "Bearer");
}

async fn a_failed_sign_in_does_not_say_which_part_was_wrong(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let wrong_password = app.login(FRONT_DESK_EMAIL, "not the password").await;
    let unknown_email = app
        .login("nobody@harbourskin.example", FRONT_DESK_PASSWORD)
        .await;
    assert_eq!(wrong_password.problem(401), unknown_email.problem(401));
    assert!(wrong_password.body.get("token").is_none());
    assert_eq!(
        app.login("", "").await.invalid_fields(),
        ["email", "password"]
    );
}

async fn sign_in_attempts_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.auth.login_burst = 3;
        s.auth.login_replenish_seconds = 600;
    })
    .await;
    for _ in 0..3 {
        app.login(FRONT_DESK_EMAIL, "guess").await.problem(401);
    }
    let limited = app.login(FRONT_DESK_EMAIL, FRONT_DESK_PASSWORD).await;
    limited.problem(429);
    assert!(
        limited.body.get("token").is_none(),
        "even the right password waits"
    );
}

async fn tokens_expire_and_are_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/api/v1/admin/treatments", None).await.problem(401);
    app.get("/api/v1/admin/treatments", Some("made-up-token"))
        .await
        .problem(401);
    let token = app.front_desk_token().await;
    assert_eq!(
        app.get("/api/v1/admin/treatments", Some(&token))
            .await
            .status,
        200
    );
    app.execute_sql("UPDATE staff_sessions SET expires_at = '2020-01-01 00:00:00'");
    app.get("/api/v1/admin/treatments", Some(&token))
        .await
        .problem(401);
}

async fn roles_decide_what_staff_may_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let front_desk = app.front_desk_token().await;

    let new_login = json!({
        "email": "amelia@harbourskin.example", "name": "Dr Amelia Hart", "role": "dermatologist",
        "password": "a long enough password", "dermatologist_id": 1
    });
    app.post("/api/v1/admin/staff", Some(&front_desk), &new_login)
        .await
        .problem(403);
    let created = app
        .post("/api/v1/admin/staff", Some(&admin), &new_login)
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    app.post("/api/v1/admin/staff", Some(&admin), &new_login)
        .await
        .problem(409);
    let mut unlinked = new_login.clone();
    unlinked["email"] = json!("someone@harbourskin.example");
    unlinked["dermatologist_id"] = json!(null);
    assert_eq!(
        app.post("/api/v1/admin/staff", Some(&admin), &unlinked)
            .await
            .invalid_fields(),
        ["dermatologist_id"]
    );

    let dermatologist = app
        .token("amelia@harbourskin.example", "a long enough password")
        .await;
    let me = app.get("/api/v1/auth/me", Some(&dermatologist)).await;
    assert_eq!(me.body["role"], "dermatologist");
    assert_eq!(me.body["dermatologist_id"], 1);
    app.get("/api/v1/admin/treatments", Some(&dermatologist))
        .await
        .problem(403);
    let edit = json!({"price_cents": 1});
    app.send_json(
        "PATCH",
        "/api/v1/admin/treatments/1",
        Some(&dermatologist),
        &edit,
    )
    .await
    .problem(403);
    assert_eq!(
        app.get("/api/v1/treatments/initial-consultation", None)
            .await
            .body["price_cents"],
        12000
    );
    let staff = app.get("/api/v1/admin/staff", Some(&admin)).await;
    assert_eq!(staff.body["staff"].as_array().unwrap().len(), 3);
    assert!(
        staff.body.to_string().find("argon2").is_none(),
        "hashes never leave the server"
    );
}

on_both_databases!(
    staff_sign_in_and_out,
    a_failed_sign_in_does_not_say_which_part_was_wrong,
    sign_in_attempts_are_rate_limited,
    tokens_expire_and_are_required,
    roles_decide_what_staff_may_do,
);
