//! The API's contract: the OpenAPI 3.1 document it serves is valid (checked by the
//! `openapi-spec-validator` package, which CI installs), describes the staff routes'
//! bearer tokens and the shared problem answers, and has a reference page served from
//! dermabook itself.

use serde_json::Value;

use crate::helpers::{Backend, TestApp, output_of};
use crate::on_both_databases;

/// Where CI's validator is (`.ci/run` sets it); without it the check is skipped locally
/// and fails under CI.
const VALIDATOR_ENV: &str = "DERMABOOK_OPENAPI_VALIDATOR";

async fn the_served_document_is_valid_openapi_3_1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (reply, body) = app.get_raw("/api/openapi.json", &[]).await;
    assert_eq!(reply.status, 200);
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document,
        serde_json::to_value(dermabook::api::document()).unwrap()
    );

    // Staff routes need the bearer token and say so; public ones do not.
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 35, "{} paths", paths.len());
    let list = &paths["/api/v1/admin/bookings"]["get"];
    assert_eq!(list["security"][0]["bearer"], Value::Array(vec![]));
    assert!(list["responses"]["401"].is_object() && list["responses"]["403"].is_object());
    let book = &paths["/api/v1/bookings"]["post"];
    assert!(book.get("security").is_none());
    assert_eq!(book["parameters"][0]["name"], "Idempotency-Key", "{book}");
    for status in ["201", "400", "409", "413", "415", "422", "429", "503"] {
        assert!(
            book["responses"][status].is_object(),
            "no {status} on POST /bookings"
        );
    }
    assert_eq!(
        book["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    match std::env::var(VALIDATOR_ENV) {
        Ok(validator) => {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &body).unwrap();
            let mut command = std::process::Command::new(validator);
            command.arg(file.path());
            let checked = output_of(command).await;
            assert!(
                checked.status.success(),
                "{}{}",
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            );
        }
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {VALIDATOR_ENV} is not: the document must be validated"
            );
            eprintln!("{VALIDATOR_ENV} is not set: the OpenAPI validation is skipped");
        }
    }

    // The reference page and its assets come from dermabook, not from a CDN.
    let (page, html) = app.get_raw("/api/docs/", &[]).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );
    let (script, _) = app.get_raw("/api/docs/swagger-ui-bundle.js", &[]).await;
    assert_eq!(script.status, 200);
}

on_both_databases!(the_served_document_is_valid_openapi_3_1);
