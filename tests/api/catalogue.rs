//! The public catalogue and the front desk's management of it.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

fn slugs(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_string())
        .collect()
}

fn new_treatment(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": "Chemical peel",
        "category": "consultation",
        "duration_minutes": 30,
        "price_cents": 9000,
        "currency": "GBP",
        "preparation": "Stop retinoids five days before.",
        "aftercare": "Use SPF 50.",
        "screening_questions": [{"id": "pregnancy", "text": "Are you pregnant?"}]
    })
}

async fn the_public_menu_is_the_demo_clinic(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.get("/api/v1/treatments", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        slugs(&reply.body, "treatments"),
        [
            "initial-consultation",
            "mesotherapy-skin-rejuvenation",
            "mesotherapy-body-contouring",
            "mesotherapy-cellulite",
            "laser-treatment"
        ]
    );
    let menu = reply.body["treatments"].as_array().unwrap();
    assert_eq!(menu[0]["duration_minutes"], 30);
    assert_eq!(menu[0]["requires_consultation"], false);
    let meso = &menu[1];
    assert_eq!(meso["duration_minutes"], 45);
    assert_eq!(
        (meso["sessions_min"].as_i64(), meso["sessions_max"].as_i64()),
        (Some(4), Some(5))
    );
    assert_eq!(meso["session_interval_days"], 14);
    assert_eq!(meso["requires_consultation"], true);
    let questions: Vec<&str> = meso["screening_questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        [
            "pregnancy",
            "ingredient_allergy",
            "skin_infection",
            "blood_thinners"
        ]
    );
    assert_eq!(menu[4]["duration_minutes"], 60);
    for t in menu {
        assert!(!t["preparation"].as_str().unwrap().is_empty());
        assert!(!t["aftercare"].as_str().unwrap().is_empty());
    }
    let one = app.get("/api/v1/treatments/laser-treatment", None).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["category"], "laser");
    app.get("/api/v1/treatments/botox", None).await.problem(404);
}

async fn dermatologists_are_listed_by_treatment_without_their_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let all = app.get("/api/v1/dermatologists", None).await;
    assert_eq!(all.body["dermatologists"].as_array().unwrap().len(), 4);
    let laser = app
        .get("/api/v1/dermatologists?treatment=laser-treatment", None)
        .await;
    let names: Vec<&str> = laser.body["dermatologists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Dr Amelia Hart", "Dr Daniel Okafor"]);
    for d in laser.body["dermatologists"].as_array().unwrap() {
        assert!(
            d["treatments"]
                .as_array()
                .unwrap()
                .contains(&json!("laser-treatment"))
        );
        assert!(
            d.get("email").is_none(),
            "a public listing must not show emails"
        );
    }
    app.get("/api/v1/dermatologists?treatment=no-such-thing", None)
        .await
        .problem(404);
}

async fn the_front_desk_creates_edits_and_retires_a_treatment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let created = app
        .post(
            "/api/v1/admin/treatments",
            Some(&token),
            &new_treatment("chemical-peel"),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(
        created.headers.get("location").unwrap(),
        &format!("/api/v1/admin/treatments/{id}")
    );
    assert_eq!(
        app.get("/api/v1/treatments/chemical-peel", None).await.body["price_cents"],
        9000
    );

    let path = format!("/api/v1/admin/treatments/{id}");
    let patched = app
        .send_json(
            "PATCH",
            &path,
            Some(&token),
            &json!({"price_cents": 9500, "buffer_minutes": 10}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["price_cents"], 9500);
    assert_eq!(
        patched.body["name"], "Chemical peel",
        "a patch keeps what it does not name"
    );

    let retired = app
        .send_json("PATCH", &path, Some(&token), &json!({"active": false}))
        .await;
    assert_eq!(retired.body["active"], false);
    app.get("/api/v1/treatments/chemical-peel", None)
        .await
        .problem(404);
    assert!(
        !slugs(
            &app.get("/api/v1/treatments", None).await.body,
            "treatments"
        )
        .contains(&"chemical-peel".into())
    );
    let admin_list = app.get("/api/v1/admin/treatments", Some(&token)).await;
    assert!(
        slugs(&admin_list.body, "treatments").contains(&"chemical-peel".into()),
        "history is kept"
    );

    assert_eq!(app.delete(&path, Some(&token)).await.status, 204);
    app.get(&path, Some(&token)).await.problem(404);
}

async fn an_invalid_treatment_names_every_bad_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let mut body = new_treatment("Bad Slug");
    body["currency"] = json!("pounds");
    body["duration_minutes"] = json!(0);
    body["screening_questions"] = json!([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]);
    let reply = app
        .post("/api/v1/admin/treatments", Some(&token), &body)
        .await;
    assert_eq!(
        reply.invalid_fields(),
        [
            "currency",
            "duration_minutes",
            "screening_questions",
            "slug"
        ]
    );

    let mut unknown = new_treatment("peel");
    unknown["colour"] = json!("blue");
    assert_eq!(
        app.post("/api/v1/admin/treatments", Some(&token), &unknown)
            .await
            .invalid_fields(),
        ["colour"]
    );

    let mut course = new_treatment("peel");
    course["sessions_max"] = json!(3);
    let reply = app
        .post("/api/v1/admin/treatments", Some(&token), &course)
        .await;
    assert_eq!(reply.invalid_fields(), ["session_interval_days"]);

    let taken = app
        .post(
            "/api/v1/admin/treatments",
            Some(&token),
            &new_treatment("laser-treatment"),
        )
        .await;
    assert!(
        taken.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("slug")
    );
    assert_eq!(
        app.get("/api/v1/admin/treatments", Some(&token)).await.body["treatments"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

async fn a_treatment_with_bookings_cannot_be_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    // Dr Okafor (4) performs the laser treatment (5); the desk books it by phone.
    let booked = app
        .post(
            "/api/v1/admin/bookings",
            Some(&token),
            &serde_json::json!({
                "treatment": "laser-treatment",
                "dermatologist_id": 4,
                "starts_at": crate::fixtures::at(crate::fixtures::monday_ahead(), 9, 0),
                "patient": crate::fixtures::patient("ana@example.com"),
                "screening_answers": crate::fixtures::laser_questions(&app).await,
                "waive_consultation": true,
            }),
        )
        .await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let reply = app.delete("/api/v1/admin/treatments/5", Some(&token)).await;
    assert!(
        reply.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("active to false")
    );
    assert_eq!(
        app.get("/api/v1/treatments/laser-treatment", None)
            .await
            .status,
        200,
        "nothing was lost"
    );
    let dermatologist = app
        .delete("/api/v1/admin/dermatologists/4", Some(&token))
        .await;
    dermatologist.problem(409);
    assert_eq!(
        app.get("/api/v1/admin/dermatologists/4", Some(&token))
            .await
            .body["name"],
        "Dr Daniel Okafor"
    );
}

async fn the_front_desk_manages_dermatologists_and_who_performs_what(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    let body = json!({"name": "Dr Lena Novak", "title": "Dermatologist", "email": " Lena.Novak@Example.com "});
    let created = app
        .post("/api/v1/admin/dermatologists", Some(&token), &body)
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["email"], "lena.novak@example.com");
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/dermatologists/{id}/treatments");

    let bad = app
        .send_json(
            "PUT",
            &path,
            Some(&token),
            &json!({"treatments": ["laser-treatment", "tattoo-removal"]}),
        )
        .await;
    assert_eq!(bad.invalid_fields(), ["treatments[1]"]);
    let set = app
        .send_json(
            "PUT",
            &path,
            Some(&token),
            &json!({"treatments": ["laser-treatment"]}),
        )
        .await;
    assert_eq!(set.body["treatments"], json!(["laser-treatment"]));
    let laser = app
        .get("/api/v1/dermatologists?treatment=laser-treatment", None)
        .await;
    assert_eq!(laser.body["dermatologists"].as_array().unwrap().len(), 3);

    let again = app
        .post("/api/v1/admin/dermatologists", Some(&token), &body)
        .await;
    again.problem(409);
    let bad_email = app
        .post(
            "/api/v1/admin/dermatologists",
            Some(&token),
            &json!({"name": "X", "email": "nope"}),
        )
        .await;
    assert_eq!(bad_email.invalid_fields(), ["email"]);

    let one = format!("/api/v1/admin/dermatologists/{id}");
    let retired = app
        .send_json("PATCH", &one, Some(&token), &json!({"active": false}))
        .await;
    assert_eq!(retired.body["active"], false);
    assert_eq!(retired.body["treatments"], json!(["laser-treatment"]));
    let public = app.get("/api/v1/dermatologists", None).await;
    assert!(
        public.body["dermatologists"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != id)
    );
    assert_eq!(
        app.delete(&one, Some(&token)).await.status,
        204,
        "nothing refers to them"
    );
    app.get(&one, Some(&token)).await.problem(404);
}

on_both_databases!(
    the_public_menu_is_the_demo_clinic,
    dermatologists_are_listed_by_treatment_without_their_email,
    the_front_desk_creates_edits_and_retires_a_treatment,
    an_invalid_treatment_names_every_bad_field,
    a_treatment_with_bookings_cannot_be_deleted,
    the_front_desk_manages_dermatologists_and_who_performs_what,
);
