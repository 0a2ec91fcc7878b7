//! Shared test fixtures: the demo clinic's days and times, booking bodies, and small
//! readers of what a booking left in the database.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp};

/// A Monday two to three weeks ahead, in the clinic's zone.
pub fn monday_ahead() -> NaiveDate {
    let mut day = Utc::now().with_timezone(&London).date_naive() + Duration::days(14);
    while day.weekday().number_from_monday() != 1 {
        day += Duration::days(1);
    }
    day
}

/// That day at a London wall-clock time, as the API writes times.
pub fn at(day: NaiveDate, hour: u32, minute: u32) -> String {
    London
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .single()
        .unwrap()
        .to_rfc3339()
}

pub fn patient(email: &str) -> Value {
    json!({"name": "Ada Lovelace", "email": email, "phone": "+44 7700 900123", "date_of_birth": "1985-03-14"})
}

/// A consultation with Dr Hart (dermatologist 1): 30 minutes, one screening question.
pub fn consultation(starts_at: &str, email: &str) -> Value {
    json!({
        "treatment": "initial-consultation",
        "dermatologist_id": 1,
        "starts_at": starts_at,
        "patient": patient(email),
        "screening_answers": {"pregnancy": false},
        "notes": "Dry patches on both hands since the winter.",
    })
}

/// Mesotherapy with Dr Hart: 45 minutes plus 15 of buffer, four screening questions.
pub fn mesotherapy(starts_at: &str, email: &str) -> Value {
    json!({
        "treatment": "mesotherapy-skin-rejuvenation",
        "dermatologist_id": 1,
        "starts_at": starts_at,
        "patient": patient(email),
        "screening_answers": {"pregnancy": false, "ingredient_allergy": false, "skin_infection": false, "blood_thinners": false},
    })
}

/// The actions in a booking's history, oldest first, as the front desk reads them.
pub async fn history_actions(app: &TestApp, desk: &str, id: i64) -> Vec<String> {
    let history = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(desk))
        .await;
    history.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// The public endpoints, by what a patient does.
impl TestApp {
    /// `POST /api/v1/bookings`
    pub async fn book(&self, body: &Value) -> Reply {
        self.post("/api/v1/bookings", None, body).await
    }

    /// `GET /api/v1/manage/{token}`
    pub async fn manage(&self, token: &str) -> Reply {
        self.get(&format!("/api/v1/manage/{token}"), None).await
    }

    /// `POST /api/v1/manage/{token}/cancel` with `body` (`{}`, or `{"course": true}`).
    pub async fn cancel(&self, token: &str, body: &Value) -> Reply {
        self.post(&format!("/api/v1/manage/{token}/cancel"), None, body)
            .await
    }

    /// `POST /api/v1/manage/{token}/reschedule` with `body` (`{starts_at, dermatologist_id?}`).
    pub async fn reschedule(&self, token: &str, body: &Value) -> Reply {
        self.post(&format!("/api/v1/manage/{token}/reschedule"), None, body)
            .await
    }
}

pub async fn free_starts(app: &TestApp, treatment: &str, day: NaiveDate) -> Vec<String> {
    let reply = app
        .get(
            &format!(
                "/api/v1/availability?treatment={treatment}&from={day}&to={day}&dermatologist=1"
            ),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap().to_string())
        .collect()
}

/// The kinds of the emails queued for a booking, in order.
pub fn queued_kinds(app: &TestApp, booking_id: i64) -> Vec<String> {
    let mut conn = app.conn();
    dermabook::store::outbox::for_booking(&mut conn, booking_id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub fn held_slot_count(app: &TestApp, booking_id: i64) -> usize {
    dermabook::store::bookings::held_slots(&mut app.conn(), booking_id)
        .unwrap()
        .len()
}

/// The laser treatment's screening answers, all "no", from the public catalogue.
pub async fn laser_questions(app: &TestApp) -> Value {
    let reply = app.get("/api/v1/treatments/laser-treatment", None).await;
    Value::Object(
        reply.body["screening_questions"]
            .as_array()
            .expect("questions")
            .iter()
            .map(|q| (q["id"].as_str().unwrap().to_string(), json!(false)))
            .collect(),
    )
}

/// A mesotherapy booking for a patient who has had a confirmed consultation (booked
/// here, the week before).
pub async fn mesotherapy_with_consultation(app: &TestApp, starts_at: &str) -> Value {
    let email = "carol@example.com";
    let week_before = monday_ahead() - Duration::days(7);
    let consult = app.book(&consultation(&at(week_before, 9, 0), email)).await;
    assert_eq!(consult.status, 201, "{:?}", consult.body);
    mesotherapy(starts_at, email)
}

/// A staff login for dermatologist `dermatologist_id`, created by the demo admin, and its
/// session token.
pub async fn dermatologist_login(app: &TestApp, email: &str, dermatologist_id: i64) -> String {
    let admin = app.admin_token().await;
    let password = "a long enough password";
    let created = app
        .post(
            "/api/v1/admin/staff",
            Some(&admin),
            &json!({"email": email, "name": "A dermatologist", "role": "dermatologist",
                    "password": password, "dermatologist_id": dermatologist_id}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    app.token(email, password).await
}
