//! Health, readiness, request ids, the data model on both databases, and demo seeding.

use diesel::prelude::*;

use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;
use dermabook::db::schema;

async fn health_and_readiness_answer_with_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/health", None).await;
    assert_eq!(health.body["status"], "ok");
    assert!(health.headers.get("x-request-id").is_some());
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    for part in ["database", "migrations", "email_sender"] {
        assert_eq!(ready.body["checks"][part], "ok", "{part}: {:?}", ready.body);
    }
    // A schema behind this build is not ready, and says which part is missing.
    app.execute_sql(
        "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)",
    );
    let behind = app.get("/ready", None).await;
    assert_eq!(behind.status, 503);
    assert_eq!(behind.body["status"], "not_ready");
    assert_eq!(behind.body["checks"]["migrations"], "pending");
    assert_eq!(behind.body["checks"]["database"], "ok");
}

/// Every table of the data model exists, and a slot can be claimed by one booking only.
async fn the_schema_holds_the_whole_model_and_guards_slots(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut conn = app.conn();
    let conn = &mut *conn;
    // The demo clinic has weekly hours, and start-up made their slots.
    assert!(
        schema::schedule_rules::table
            .count()
            .get_result::<i64>(conn)
            .unwrap()
            > 0
    );
    assert!(
        schema::slots::table
            .count()
            .get_result::<i64>(conn)
            .unwrap()
            > 0
    );
    let counts = [
        schema::time_off::table.count().get_result::<i64>(conn),
        schema::patients::table.count().get_result::<i64>(conn),
        schema::courses::table.count().get_result::<i64>(conn),
        schema::bookings::table.count().get_result::<i64>(conn),
        schema::booking_slots::table.count().get_result::<i64>(conn),
        schema::email_outbox::table.count().get_result::<i64>(conn),
        schema::idempotency_keys::table
            .count()
            .get_result::<i64>(conn),
        schema::audit_log::table.count().get_result::<i64>(conn),
    ];
    assert!(
        counts.iter().all(|c| c.as_ref().is_ok_and(|n| *n == 0)),
        "{counts:?}"
    );

    app.execute_sql(
        "INSERT INTO slots (dermatologist_id, starts_at, ends_at, status, source, created_at) \
           VALUES (1, '2030-01-07 09:00:00', '2030-01-07 09:15:00', 'open', 'generated', '2026-01-01 00:00:00'), \
                  (1, '2030-01-07 09:15:00', '2030-01-07 09:30:00', 'open', 'generated', '2026-01-01 00:00:00'); \
         INSERT INTO patients (name, email, phone, created_at, updated_at) \
           VALUES ('Ana Silva', 'ana@example.com', '+44 7700 900123', '2026-01-01 00:00:00', '2026-01-01 00:00:00');",
    );
    let slot_at = |time: &str| {
        format!(
            "(SELECT id FROM slots WHERE dermatologist_id = 1 AND starts_at = '2030-01-07 {time}')"
        )
    };
    // Each attempt is one transaction, as the server's changes are.
    let attempt = |conn: &mut dermabook::db::DbConnection,
                   reference: &str,
                   time: (&str, &str),
                   status: &str,
                   slot: Option<String>| {
        use diesel::connection::SimpleConnection;
        let mut sql = format!(
            "INSERT INTO bookings (reference, patient_id, dermatologist_id, treatment_id, starts_at, ends_at, status, \
               source, manage_token_hash, created_at, updated_at) \
             VALUES ('{reference}', 1, 1, 1, '2030-01-07 {}', '2030-01-07 {}', '{status}', 'online', \
               'hash-{reference}', '2026-01-01 00:00:00', '2026-01-01 00:00:00');",
            time.0, time.1
        );
        if let Some(slot) = slot {
            sql.push_str(&format!(
                "INSERT INTO booking_slots (booking_id, slot_id) \
                 VALUES ((SELECT id FROM bookings WHERE reference = '{reference}'), {slot});"
            ));
        }
        conn.transaction(|c| c.batch_execute(&sql))
    };
    let first = attempt(
        conn,
        "DB-A",
        ("09:00:00", "09:30:00"),
        "confirmed",
        Some(slot_at("09:00:00")),
    );
    assert!(first.is_ok(), "{first:?}");
    let overlapping = attempt(
        conn,
        "DB-B",
        ("09:15:00", "09:45:00"),
        "confirmed",
        Some(slot_at("09:15:00")),
    );
    assert!(
        overlapping.is_err(),
        "two live bookings of one dermatologist must not overlap, whatever their slots"
    );
    let same_slot = attempt(
        conn,
        "DB-C",
        ("10:00:00", "10:30:00"),
        "confirmed",
        Some(slot_at("09:00:00")),
    );
    assert!(same_slot.is_err(), "a slot must not belong to two bookings");
    let cancelled = attempt(conn, "DB-D", ("09:00:00", "09:30:00"), "cancelled", None);
    assert!(
        cancelled.is_ok(),
        "a cancelled booking holds nothing: {cancelled:?}"
    );
    let backwards = attempt(conn, "DB-E", ("12:00:00", "11:00:00"), "cancelled", None);
    assert!(backwards.is_err(), "a booking ends after it starts");
    if matches!(backend, Backend::Postgres) {
        let slotless = attempt(conn, "DB-F", ("15:00:00", "15:30:00"), "confirmed", None);
        assert!(slotless.is_err(), "a live booking holds at least one slot");
    }
    use diesel::connection::SimpleConnection;
    let again = conn.batch_execute(
        "INSERT INTO slots (dermatologist_id, starts_at, ends_at, status, source, created_at) \
           VALUES (1, '2030-01-07 09:00:00', '2030-01-07 09:15:00', 'open', 'manual', '2026-01-01 00:00:00')",
    );
    assert!(again.is_err(), "one slot per dermatologist and start");
    assert_eq!(
        schema::booking_slots::table
            .count()
            .get_result::<i64>(conn)
            .unwrap(),
        1
    );
}

async fn seeding_the_demo_clinic_twice_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.front_desk_token().await;
    // A change the front desk made must survive a second seeding.
    let patch = serde_json::json!({"price_cents": 13000});
    app.send_json("PATCH", "/api/v1/admin/treatments/1", Some(&token), &patch)
        .await;
    let before = app
        .get("/api/v1/admin/dermatologists", Some(&token))
        .await
        .body;
    let added = dermabook::demo::seed(&mut app.conn(), true).unwrap();
    assert_eq!(added, 0);
    assert_eq!(
        app.get("/api/v1/admin/dermatologists", Some(&token))
            .await
            .body,
        before
    );
    assert_eq!(
        app.get("/api/v1/treatments/initial-consultation", None)
            .await
            .body["price_cents"],
        13000
    );
    assert_eq!(
        dermabook::db::run_migrations(&mut app.conn()).unwrap(),
        0,
        "migrations are applied once"
    );
}

/// When PostgreSQL closes the pool's connections (a restart, an administrator, a proxy's
/// idle timeout), the service carries on by itself: a connection taken more than the
/// alive window (500 ms) after it last proved alive is pinged first, and a dead one is
/// replaced. A connection that proved alive within the window is taken unpinged.
#[actix_web::test]
async fn connections_the_database_closed_are_replaced_on_postgres() {
    // SQLite's connections are files this process holds: nothing closes them.
    if !crate::helpers::postgres_available() {
        return;
    }
    crate::helpers::run_guarded(async {
        let app = TestApp::spawn(Backend::Postgres).await;
        let readiness = || async {
            let asked = (0..4).map(|_| app.get("/ready", None));
            futures_util::future::join_all(asked)
                .await
                .into_iter()
                .map(|reply| reply.status)
                .collect::<Vec<_>>()
        };
        // Four requests at once fill the test pool (4 connections).
        assert_eq!(readiness().await, [200; 4]);
        app.execute_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        // Past the window, so every connection is pinged as it is taken.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        for _ in 0..3 {
            assert_eq!(readiness().await, [200; 4]);
        }
    })
    .await;
}

on_both_databases!(
    health_and_readiness_answer_with_a_request_id,
    the_schema_holds_the_whole_model_and_guards_slots,
    seeding_the_demo_clinic_twice_changes_nothing,
);
