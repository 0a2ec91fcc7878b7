//! Incremental sync of bookings: a client that polls with the last `next_cursor` while two
//! instances book and cancel at once misses no change and sees none twice.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::{Value, json};

use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;

/// One poll: the (id, version) of each change, the next cursor, whether more wait.
async fn poll(app: &TestApp, token: &str, cursor: &str) -> (Vec<(i64, i64)>, String, bool) {
    let path = if cursor.is_empty() {
        "/api/v1/admin/bookings?updated_since=2000-01-01T00:00:00Z&per_page=7".to_string()
    } else {
        format!("/api/v1/admin/bookings?cursor={cursor}&per_page=7")
    };
    let reply = app.get(&path, Some(token)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let changes = reply.body["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_i64().unwrap(), b["version"].as_i64().unwrap()))
        .collect();
    (
        changes,
        reply.body["next_cursor"].as_str().unwrap().to_string(),
        reply.body["has_more"].as_bool().unwrap(),
    )
}

/// Books five consultations for each of `dermatologists`, then cancels two of them.
async fn write(app: &TestApp, dermatologists: [i64; 2], tag: &str) {
    let day = monday_ahead();
    let mut tokens = Vec::new();
    for dermatologist in dermatologists {
        for i in 0..5u32 {
            let mut body = consultation(
                &at(day, 9 + i / 2, 30 * (i % 2)),
                &format!("{tag}-{dermatologist}-{i}@example.com"),
            );
            body["dermatologist_id"] = json!(dermatologist);
            let booked = app.book(&body).await;
            assert_eq!(booked.status, 201, "{:?}", booked.body);
            tokens.push(booked.body["manage_token"].as_str().unwrap().to_string());
        }
    }
    for token in tokens.iter().step_by(4) {
        assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    }
}

async fn a_poller_misses_no_change_and_sees_none_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.another_instance().await;
    let desk = app.front_desk_token().await;

    let done = Rc::new(Cell::new(false));
    let poller = {
        let done = done.clone();
        let (app, desk) = (&app, desk.clone());
        async move {
            let mut seen: Vec<(i64, i64)> = Vec::new();
            let mut cursor = String::new();
            while !done.get() {
                let (changes, next, _) = poll(app, &desk, &cursor).await;
                seen.extend(changes);
                cursor = next;
                actix_web::rt::task::yield_now().await;
            }
            (seen, cursor)
        }
    };
    let writers = async {
        futures_util::join!(write(&app, [1, 2], "a"), write(&other, [3, 4], "b"));
        done.set(true);
    };
    let ((mut seen, mut cursor), ()) = futures_util::join!(poller, writers);

    let all = app
        .get("/api/v1/admin/bookings?per_page=200", Some(&desk))
        .await;
    let current: BTreeMap<i64, i64> = all.body["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b: &Value| (b["id"].as_i64().unwrap(), b["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(current.len(), 20);
    // The poller goes on until the last changes are readable: on PostgreSQL that waits
    // for every write transaction on the server that began before them (other tests'
    // too) to end, however long; nothing is skipped meanwhile.
    for _ in 0..400 {
        let unseen = current
            .iter()
            .filter(|(id, version)| !seen.contains(&(**id, **version)))
            .count();
        if unseen == 0 {
            break;
        }
        let (changes, next, _) = poll(&app, &desk, &cursor).await;
        seen.extend(changes);
        cursor = next;
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let unique: BTreeSet<(i64, i64)> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a change was seen twice: {seen:?}"
    );
    for (id, version) in &current {
        assert!(
            unique.contains(&(*id, *version)),
            "booking {id} at version {version} was missed: {seen:?}"
        );
    }

    // A bad cursor is a clear 422, and a sync takes no other filter.
    app.get("/api/v1/admin/bookings?cursor=not-a-cursor", Some(&desk))
        .await
        .problem(422);
    app.get(
        "/api/v1/admin/bookings?updated_since=2000-01-01T00:00:00Z&status=confirmed",
        Some(&desk),
    )
    .await
    .problem(422);
}

on_both_databases!(a_poller_misses_no_change_and_sees_none_twice);

/// On PostgreSQL, a change whose transaction began first but commits last is not passed
/// over: while it runs, later changes wait behind it; once it commits, both are read.
async fn a_change_that_commits_late_is_read_once_it_commits(backend: Backend) {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let day = monday_ahead();
    let first = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    let second = app
        .book(&consultation(&at(day, 10, 0), "bob@example.com"))
        .await;
    let (first_id, second_token) = (
        first.body["booking"]["id"].as_i64().unwrap(),
        second.body["manage_token"].as_str().unwrap().to_string(),
    );
    let second_id = second.body["booking"]["id"].as_i64().unwrap();
    let (mut seen, mut cursor, _) = poll(&app, &desk, "").await;
    // Both bookings must have been read before the test begins: another test's running
    // transaction on the shared server can hold them back for a while.
    loop {
        let (changes, next, more) = poll(&app, &desk, &cursor).await;
        cursor = next;
        let done = changes.is_empty() && !more;
        seen.extend(changes);
        let both = [first_id, second_id]
            .iter()
            .all(|id| seen.iter().any(|(b, _)| b == id));
        if done && both {
            break;
        }
        if done {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    // A transaction changes the first booking and stays open...
    let mut late = app.conn();
    late.batch_execute(&format!(
        "BEGIN; UPDATE bookings SET notes = 'late', version = version + 1 WHERE id = {first_id};"
    ))
    .unwrap();
    // ...while the second booking is cancelled and committed.
    assert_eq!(app.cancel(&second_token, &json!({})).await.status, 200);
    let (waiting, held, _) = poll(&app, &desk, &cursor).await;
    assert!(
        waiting.is_empty(),
        "{waiting:?}: a later change passed a running one"
    );
    assert_eq!(held, cursor, "the cursor waits too");

    late.batch_execute("COMMIT;").unwrap();
    // Once it commits, both are read: at once here, or as soon as every write
    // transaction on the server that began before them has ended (other tests' too).
    let second_id = second.body["booking"]["id"].as_i64().unwrap();
    let mut ids = BTreeSet::new();
    for _ in 0..400 {
        let (changes, next, _) = poll(&app, &desk, &cursor).await;
        ids.extend(changes.iter().map(|(id, _)| *id));
        cursor = next;
        if ids.len() >= 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ids, BTreeSet::from([first_id, second_id]));
}

#[actix_web::test]
async fn a_late_commit_is_not_passed_over_on_postgres() {
    // Only PostgreSQL runs writers side by side; SQLite's take turns.
    if !crate::helpers::postgres_available() {
        return;
    }
    crate::helpers::run_guarded(a_change_that_commits_late_is_read_once_it_commits(
        Backend::Postgres,
    ))
    .await;
}
