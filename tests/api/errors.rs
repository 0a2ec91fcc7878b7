//! Bad input of every kind gets a clear 4xx problem, never a 500, and stored data stays.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

async fn bad_requests_get_problems_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let path = "/api/v1/admin/treatments";

    let malformed = app
        .send_raw(
            "POST",
            path,
            Some(&token),
            "application/json",
            b"{\"slug\": ".to_vec(),
        )
        .await;
    assert!(
        malformed.problem(400)["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let wrong_type = app
        .send_raw(
            "POST",
            path,
            Some(&token),
            "text/plain",
            b"slug=peel".to_vec(),
        )
        .await;
    wrong_type.problem(415);

    let oversized = vec![b' '; 200 * 1024];
    app.send_raw("POST", path, Some(&token), "application/json", oversized)
        .await
        .problem(413);

    let not_an_object = app
        .send_json(
            "PATCH",
            "/api/v1/admin/treatments/1",
            Some(&token),
            &json!([1, 2]),
        )
        .await;
    assert_eq!(not_an_object.invalid_fields(), ["body"]);
    let wrong_shape = app
        .send_json(
            "PATCH",
            "/api/v1/admin/treatments/1",
            Some(&token),
            &json!({"category": "spa"}),
        )
        .await;
    assert_eq!(wrong_shape.invalid_fields(), ["category"]);
    let cleared = app
        .send_json(
            "PATCH",
            "/api/v1/admin/treatments/1",
            Some(&token),
            &json!({"name": null}),
        )
        .await;
    assert_eq!(cleared.invalid_fields(), ["name"]);

    app.get("/api/v1/admin/treatments/9999", Some(&token))
        .await
        .problem(404);
    app.get("/api/v1/admin/treatments/not-a-number", Some(&token))
        .await
        .problem(404);
    app.send_json(
        "PATCH",
        "/api/v1/admin/dermatologists/9999",
        Some(&token),
        &json!({}),
    )
    .await
    .problem(404);
    app.get("/api/v1/nowhere", None).await.problem(404);
    app.send_json(
        "PUT",
        "/api/v1/admin/treatments/1",
        Some(&token),
        &json!({}),
    )
    .await
    .problem(405);
    app.send_json("PUT", "/api/v1/treatments", None, &json!({}))
        .await
        .problem(405);
    app.send_json("DELETE", "/health", None, &json!({}))
        .await
        .problem(405);

    let menu = app.get("/api/v1/treatments", None).await;
    assert_eq!(menu.body["treatments"].as_array().unwrap().len(), 5);
    assert_eq!(
        menu.body["treatments"][0]["name"],
        "Initial dermatology consultation"
    );
    assert_eq!(menu.body["treatments"][0]["category"], "consultation");
}

on_both_databases!(bad_requests_get_problems_and_change_nothing);
