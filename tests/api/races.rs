//! Changes of one booking that race each other, over two server instances on one
//! database: every change is applied whole, one after another, or refused with a 409;
//! the booking ends holding exactly the slots of its final time; nothing overlaps.
//! Replacements of one dermatologist's treatments, weekly rules or calendar feed that
//! race are each applied whole; of a block and a booking of one slot, one wins; two
//! patches of one record's different fields both apply. And instances that start at the
//! same moment on an empty database all come up.

use std::sync::Arc;

use chrono::Duration;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::fixtures::{at, consultation, mesotherapy, monday_ahead};
use crate::helpers::{Backend, Reply, TestApp, TestDatabase, test_settings};
use crate::invariants::assert_bookings_consistent;
use crate::on_both_databases;

/// One request of a race: which server, what, and as whom.
struct Move<'a> {
    server: &'a TestApp,
    method: &'static str,
    path: String,
    token: Option<&'a str>,
    body: Value,
}

/// Makes the moves meet, and returns the replies in order. On SQLite every request is
/// sent when all of them are ready (a barrier). On PostgreSQL, where a barrier leaves the
/// meeting to chance, the test's own transaction holds the bookings `held` while the
/// moves are sent, and lets go only when the database shows every one of them waiting on
/// a lock: each then reads the booking after the others could have written it, so a
/// change that decided before locking would decide on a stale row every time.
async fn race(app: &TestApp, held: &[i64], moves: Vec<Move<'_>>) -> Vec<Reply> {
    let ids = held
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let lock = format!("SELECT id FROM bookings WHERE id IN ({ids}) ORDER BY id FOR UPDATE");
    race_holding(app, (!held.is_empty()).then_some(lock.as_str()), moves).await
}

/// `race`, with the test's transaction holding the rows `lock` (a `SELECT ... FOR
/// UPDATE`) selects.
async fn race_holding(app: &TestApp, lock: Option<&str>, moves: Vec<Move<'_>>) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(moves.len()));
    let count = moves.len();
    let requests = join_all(moves.into_iter().map(|m| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            m.server
                .send_json(m.method, &m.path, m.token, &m.body)
                .await
        }
    }));
    let Some(lock) = lock.filter(|_| app.database_url().starts_with("postgres")) else {
        return requests.await;
    };
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let mut holder = PgConnection::establish(app.database_url()).expect("a connection");
    holder
        .batch_execute(&format!("BEGIN; {lock}"))
        .expect("hold the rows");
    let release = async move {
        let mut watcher = PgConnection::establish(app.database_url()).expect("a connection");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
            let waiting = waiting_on_locks(&mut watcher);
            if waiting >= count {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {waiting} of {count} requests reached the held rows"
            );
        }
        holder.batch_execute("COMMIT").expect("let go");
    };
    let (replies, ()) = futures_util::future::join(requests, release).await;
    replies
}

/// Eight replacements at once of one dermatologist's treatments, then of their weekly
/// rules, then eight new calendar feed URLs, over two instances. Each replaces by
/// deleting and inserting: were two to interleave, the second would insert a row the
/// first just did and be refused, or miss the first's new rows and leave both lists
/// merged. Here every one succeeds, the dermatologist ends with exactly one of the
/// lists asked for, and exactly one of the issued feed URLs serves.
async fn replacements_at_once_of_a_dermatologists_lists_apply_whole(backend: Backend) {
    // Four requests wait on each instance at once; the workers need connections too.
    let a = TestApp::spawn_with(backend, |s| s.database.pool_size = 8).await;
    let b = a.another_instance().await;
    let desk = a.front_desk_token().await;
    let treatments = "/api/v1/admin/dermatologists/1/treatments";
    let catalogue = [
        "initial-consultation",
        "mesotherapy-skin-rejuvenation",
        "mesotherapy-body-contouring",
        "mesotherapy-cellulite",
        "laser-treatment",
    ];
    let sets: Vec<Vec<&str>> = (0..8)
        .map(|k| {
            catalogue
                .iter()
                .copied()
                .skip(k % 4)
                .take(1 + k % 3)
                .collect()
        })
        .collect();
    let bodies = sets.iter().map(|set| json!({ "treatments": set }));
    let moves = alternating([&a, &b], "PUT", treatments, &desk, bodies);
    let lock = "SELECT treatment_id FROM dermatologist_treatments \
                WHERE dermatologist_id = 1 FOR UPDATE";
    for reply in race_holding(&a, Some(lock), moves).await {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let performed = a.get(treatments, Some(&desk)).await.body["treatments"].clone();
    let mut performed: Vec<String> = serde_json::from_value(performed).unwrap();
    performed.sort();
    assert!(
        sets.iter().any(|set| {
            let mut set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            set.sort();
            set == performed
        }),
        "{performed:?} is none of the sets asked for"
    );

    let schedule = "/api/v1/admin/dermatologists/1/schedule";
    let ends: Vec<String> = (0..8).map(|k| format!("{}:00", 10 + k)).collect();
    let bodies = ends.iter().enumerate().map(|(k, end)| {
        json!({"rules": [{"weekday": 1 + k % 5, "start": "09:00", "end": end, "slot_minutes": 15}]})
    });
    let moves = alternating([&a, &b], "PUT", schedule, &desk, bodies);
    let lock = "SELECT id FROM schedule_rules WHERE dermatologist_id = 1 FOR UPDATE";
    for reply in race_holding(&a, Some(lock), moves).await {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let rules = a.get(schedule, Some(&desk)).await.body["rules"].clone();
    let rules = rules.as_array().unwrap();
    assert_eq!(
        rules.len(),
        1,
        "one replacement's rules, not several: {rules:?}"
    );
    assert!(ends.iter().any(|end| rules[0]["end"] == *end), "{rules:?}");

    let feed = "/api/v1/admin/dermatologists/1/calendar-feed";
    assert_eq!(a.post(feed, Some(&desk), &json!({})).await.status, 201);
    let moves = alternating([&a, &b], "POST", feed, &desk, (0..8).map(|_| json!({})));
    let lock = "SELECT token_hash FROM calendar_feeds WHERE dermatologist_id = 1 FOR UPDATE";
    let mut serving = 0;
    for reply in race_holding(&a, Some(lock), moves).await {
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let url = reply.body["url"].as_str().unwrap();
        let path = &url[url.find("/calendar/").unwrap()..];
        let (answer, _) = a.get_raw(path, &[]).await;
        if answer.status == 200 {
            serving += 1;
        } else {
            assert_eq!(answer.status, 404);
        }
    }
    assert_eq!(serving, 1, "one feed URL at a time");
}

/// The desk blocks a slot on one instance while a patient books a time starting there on
/// the other. Exactly one of them wins: the booking holds the slot, or the slot is
/// blocked and no booking holds it. Never both, which is what a block deciding on a read
/// made before the booking's claim, or a booking claiming a slot it read open before the
/// block, would leave.
async fn a_block_racing_a_booking_of_its_slot_leaves_one_of_them(backend: Backend) {
    let a = TestApp::spawn_with(backend, |s| s.database.pool_size = 8).await;
    let b = a.another_instance().await;
    let desk = a.front_desk_token().await;
    let day = monday_ahead();
    let listed = format!("/api/v1/admin/slots?dermatologist=1&from={day}&to={day}");
    let first = a.get(&listed, Some(&desk)).await.body["slots"][0].clone();
    assert_eq!(first["status"], "open", "{first}");
    let slot = first["id"].as_i64().unwrap();
    let starts_at = first["starts_at"].as_str().unwrap();
    let moves = vec![
        Move {
            server: &a,
            method: "POST",
            path: "/api/v1/bookings".to_string(),
            token: None,
            body: consultation(starts_at, "racer@example.com"),
        },
        Move {
            server: &b,
            method: "PATCH",
            path: format!("/api/v1/admin/slots/{slot}"),
            token: Some(&desk),
            body: json!({"status": "blocked"}),
        },
    ];
    let lock = format!("SELECT id FROM slots WHERE id = {slot} FOR UPDATE");
    let replies = race_holding(&a, Some(&lock), moves).await;
    let (booked, blocked) = (replies[0].status == 201, replies[1].status == 200);
    assert!(
        booked != blocked,
        "exactly one wins: {:?} {:?}",
        replies[0].body,
        replies[1].body
    );
    if booked {
        replies[1].problem(409);
    } else {
        replies[0].problem(409);
    }
    let after = a.get(&listed, Some(&desk)).await.body["slots"][0].clone();
    assert_eq!(after["id"], slot);
    if booked {
        assert_eq!(after["status"], "booked", "{after}");
    } else {
        assert_eq!(after["status"], "blocked", "{after}");
        assert!(after.get("booking_id").is_none(), "{after}");
    }
    assert_bookings_consistent(&a);
}

/// Two patches of different fields of one record at once, over two instances, for a
/// treatment, a dermatologist and a webhook endpoint: both apply. A patch that wrote back
/// the whole record as it read it would undo the other's change (a retired dermatologist
/// bookable again, a disabled endpoint receiving events).
async fn patches_at_once_of_different_fields_both_apply(backend: Backend) {
    let a = TestApp::spawn_with(backend, |s| s.database.pool_size = 8).await;
    let b = a.another_instance().await;
    let admin = a.admin_token().await;
    let created = a
        .post(
            "/api/v1/admin/webhooks",
            Some(&admin),
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["booking.created"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let webhook = created.body["id"].as_i64().unwrap();
    let records = [
        (
            "/api/v1/admin/treatments/1",
            "treatments",
            json!({"price_cents": 12345}),
            json!({"description": "Raced."}),
        ),
        (
            "/api/v1/admin/dermatologists/2",
            "dermatologists",
            json!({"active": false}),
            json!({"bio": "Raced."}),
        ),
        (
            &*format!("/api/v1/admin/webhooks/{webhook}"),
            "webhook_endpoints",
            json!({"active": false}),
            json!({"description": "Raced."}),
        ),
    ];
    for (path, table, first, second) in records {
        let id = path.rsplit('/').next().unwrap();
        let moves = alternating(
            [&a, &b],
            "PATCH",
            path,
            &admin,
            [first.clone(), second.clone()].into_iter(),
        );
        let lock = format!("SELECT id FROM {table} WHERE id = {id} FOR UPDATE");
        for reply in race_holding(&a, Some(&lock), moves).await {
            assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        }
        let after = a.get(path, Some(&admin)).await.body;
        for patch in [first, second] {
            for (field, value) in patch.as_object().unwrap() {
                assert_eq!(&after[field], value, "{path} lost {field}: {after}");
            }
        }
    }
}

/// One staff move per body, to `path`, sent by the two servers in turn.
fn alternating<'a>(
    servers: [&'a TestApp; 2],
    method: &'static str,
    path: &str,
    token: &'a str,
    bodies: impl Iterator<Item = Value>,
) -> Vec<Move<'a>> {
    bodies
        .enumerate()
        .map(|(k, body)| Move {
            server: servers[k % 2],
            method,
            path: path.to_string(),
            token: Some(token),
            body,
        })
        .collect()
}

/// How many sessions of this database wait on a lock now.
fn waiting_on_locks(conn: &mut diesel::PgConnection) -> usize {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT COUNT(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .get_result::<Waiting>(conn)
    .map(|w| usize::try_from(w.n).unwrap_or(0))
    .expect("pg_stat_activity")
}

async fn booking(app: &TestApp, desk: &str, id: i64) -> Value {
    let reply = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(desk))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn history_actions(app: &TestApp, desk: &str, id: i64) -> Vec<String> {
    let reply = app
        .get(&format!("/api/v1/admin/bookings/{id}/history"), Some(desk))
        .await;
    reply.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The patient cancels on one instance while the desk confirms on the other. Whichever
/// lands first, the booking ends cancelled and holds nothing: a confirm after the cancel
/// is refused, naming the status; a confirm before it is followed by a legal cancel.
async fn cancel_racing_confirm_ends_cancelled_with_no_slots(backend: Backend) {
    let a = TestApp::spawn_with(backend, |s| s.database.pool_size = 8).await;
    let b = a.another_instance().await;
    let desk = b.front_desk_token().await;
    let day = monday_ahead();
    // Four times inside the demo hours (09:00-12:30, 13:30-17:00): eight requests, as
    // many as the two instances' pools let wait at once.
    let times: Vec<String> = [(9, 0), (11, 0), (14, 0), (16, 30)]
        .map(|(h, m)| at(day, h, m))
        .to_vec();
    let mut pending = Vec::new();
    for (i, starts_at) in times.iter().enumerate() {
        let mut body = consultation(starts_at, &format!("racer{i}@example.com"));
        body["screening_answers"] = json!({"pregnancy": true});
        let reply = a.book(&body).await;
        assert_eq!(
            reply.body["booking"]["status"], "pending_review",
            "{:?}",
            reply.body
        );
        pending.push((
            reply.body["booking"]["id"].as_i64().unwrap(),
            reply.body["manage_token"].as_str().unwrap().to_string(),
        ));
    }
    let mut moves = Vec::new();
    for (id, token) in &pending {
        moves.push(Move {
            server: &a,
            method: "POST",
            path: format!("/api/v1/manage/{token}/cancel"),
            token: None,
            body: json!({}),
        });
        moves.push(Move {
            server: &b,
            method: "POST",
            path: format!("/api/v1/admin/bookings/{id}/confirm"),
            token: Some(&desk),
            body: json!({}),
        });
    }
    let held: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
    let replies = race(&a, &held, moves).await;
    for (pair, (id, _)) in replies.chunks(2).zip(&pending) {
        let (cancel, confirm) = (&pair[0], &pair[1]);
        assert_eq!(
            cancel.status, 200,
            "the patient's cancel: {:?}",
            cancel.body
        );
        let history = history_actions(&b, &desk, *id).await;
        if confirm.status == 200 {
            assert_eq!(history, ["booked", "confirmed", "cancelled"]);
        } else {
            let detail = confirm.problem(409)["detail"].as_str().unwrap();
            assert!(detail.contains("status: cancelled"), "{detail}");
            assert_eq!(history, ["booked", "cancelled"]);
        }
        assert_eq!(booking(&b, &desk, *id).await["status"], "cancelled");
    }
    assert_bookings_consistent(&a);
    // Every time is offered again.
    let free = a
        .get(
            &format!("/api/v1/availability?treatment=initial-consultation&from={day}&to={day}&dermatologist=1"),
            None,
        )
        .await;
    let starts: Vec<&str> = free.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap())
        .collect();
    for starts_at in &times {
        assert!(
            starts.contains(&starts_at.as_str()),
            "{starts_at} is offered again"
        );
    }
}

/// Eight reschedules of one consultation at once, to eight different times (most of them
/// overlapping its own), from both instances: they apply one after another, and the
/// booking ends at one of their times holding exactly its two slots.
async fn eight_reschedules_at_once_leave_exactly_the_final_slots(backend: Backend) {
    let a = TestApp::spawn_with(backend, |s| s.database.pool_size = 8).await;
    let b = a.another_instance().await;
    let desk = a.front_desk_token().await;
    let day = monday_ahead();
    let reply = a
        .book(&consultation(&at(day, 9, 0), "mover@example.com"))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["booking"]["id"].as_i64().unwrap();
    let token = reply.body["manage_token"].as_str().unwrap().to_string();
    let targets: Vec<String> = (1..=8u32)
        .map(|k| at(day, 9 + 15 * k / 60, 15 * k % 60))
        .collect();
    let moves = targets
        .iter()
        .enumerate()
        .map(|(k, starts_at)| Move {
            server: if k % 2 == 0 { &a } else { &b },
            method: "POST",
            path: format!("/api/v1/manage/{token}/reschedule"),
            token: None,
            body: json!({ "starts_at": starts_at }),
        })
        .collect();
    let replies = race(&a, &[id], moves).await;
    let mut applied = Vec::new();
    for (reply, target) in replies.iter().zip(&targets) {
        match reply.status.as_u16() {
            200 => applied.push(target.clone()),
            409 => {
                reply.problem(409);
            }
            _ => panic!("a reschedule answered {}: {:?}", reply.status, reply.body),
        }
    }
    assert!(!applied.is_empty(), "at least one reschedule applies");
    let now = booking(&a, &desk, id).await;
    assert!(
        applied.contains(&now["starts_at"].as_str().unwrap().to_string()),
        "it ends at a time one of the applied reschedules asked for: {}",
        now["starts_at"]
    );
    assert_eq!(
        now["version"],
        1 + applied.len(),
        "one version per applied change"
    );
    let history = history_actions(&a, &desk, id).await;
    assert_eq!(
        history.iter().filter(|h| *h == "rescheduled").count(),
        applied.len()
    );
    assert_eq!(
        dermabook::store::bookings::held_slots(&mut b.conn(), id)
            .unwrap()
            .len(),
        2
    );
    assert_bookings_consistent(&a);
}

/// The patient cancels a whole course on one instance while the desk moves one of its
/// sessions on the other: either the move lands first and the moved session is then
/// cancelled with the rest, or it is refused because the session is cancelled already.
async fn a_course_cancel_racing_a_session_move_leaves_nothing_held(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.another_instance().await;
    let desk = b.front_desk_token().await;
    let day = monday_ahead();
    let mut body = mesotherapy(&at(day, 10, 0), "course@example.com");
    body["sessions"] = json!(4);
    body["waive_consultation"] = json!(true);
    let booked = a.post("/api/v1/admin/bookings", Some(&desk), &body).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let sessions = booked.body["course"]["sessions"].as_array().unwrap();
    let token = sessions[0]["manage_token"].as_str().unwrap().to_string();
    let second = sessions[1]["booking"]["id"].as_i64().unwrap();
    let second_day = day + Duration::days(14);
    let held: Vec<i64> = sessions
        .iter()
        .map(|s| s["booking"]["id"].as_i64().unwrap())
        .collect();
    let replies = race(
        &a,
        &held,
        vec![
            Move {
                server: &a,
                method: "POST",
                path: format!("/api/v1/manage/{token}/cancel"),
                token: None,
                body: json!({"course": true}),
            },
            Move {
                server: &b,
                method: "POST",
                path: format!("/api/v1/admin/bookings/{second}/reschedule"),
                token: Some(&desk),
                body: json!({"starts_at": at(second_day, 15, 0)}),
            },
        ],
    )
    .await;
    assert_eq!(replies[0].status, 200, "{:?}", replies[0].body);
    assert_eq!(replies[0].body["cancelled"].as_array().unwrap().len(), 4);
    let history = history_actions(&b, &desk, second).await;
    match replies[1].status.as_u16() {
        200 => assert_eq!(history, ["booked", "rescheduled", "cancelled"]),
        _ => {
            let detail = replies[1].problem(409)["detail"].as_str().unwrap();
            assert!(detail.contains("status: cancelled"), "{detail}");
            assert_eq!(history, ["booked", "cancelled"]);
        }
    }
    for session in sessions {
        let id = session["booking"]["id"].as_i64().unwrap();
        assert_eq!(booking(&a, &desk, id).await["status"], "cancelled");
        assert!(
            dermabook::store::bookings::held_slots(&mut a.conn(), id)
                .unwrap()
                .is_empty()
        );
    }
    assert_bookings_consistent(&a);
}

/// Three instances started at the same moment on one empty database: every one comes
/// up, migrations are applied once, and the demo clinic and its slots exist once.
async fn instances_started_together_on_an_empty_database_all_come_up(backend: Backend) {
    let database = TestDatabase::new(backend);
    let settings = test_settings(database.url());
    let built =
        join_all((0..3).map(|_| dermabook::app::Application::build(settings.clone()))).await;
    let mut apps = Vec::new();
    for result in built {
        let app = result.unwrap_or_else(|e| panic!("an instance failed to start: {e:#}"));
        apps.push(TestApp::serve(app, settings.clone(), None));
    }
    for app in &apps {
        let ready = app.get("/ready", None).await;
        assert_eq!(ready.status, 200, "{:?}", ready.body);
    }
    let app = &apps[0];
    let desk = app.front_desk_token().await;
    let dermatologists = app.get("/api/v1/admin/dermatologists", Some(&desk)).await;
    assert_eq!(
        dermatologists.body["dermatologists"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let treatments = app.get("/api/v1/treatments", None).await;
    assert_eq!(treatments.body["treatments"].as_array().unwrap().len(), 5);
    let mut conn = app.conn();
    assert_eq!(dermabook::db::run_migrations(&mut conn).unwrap(), 0);
    {
        use dermabook::db::schema::{slots, staff};
        use diesel::prelude::*;
        let staff: i64 = staff::table.count().get_result(&mut *conn).unwrap();
        assert_eq!(staff, 2, "the demo logins once");
        assert!(slots::table.count().get_result::<i64>(&mut *conn).unwrap() > 0);
    }
    // Every slot of the horizon is there once: generating again adds and removes nothing
    // (the unique index forbids a second copy of a slot).
    let again = dermabook::scheduling::generate_horizon(
        &mut conn,
        dermabook::scheduling::Horizon::of(&settings, dermabook::db::now()),
        None,
    )
    .unwrap();
    assert_eq!((again.added, again.removed), (0, 0));
    drop(conn);
    // The servers go before their database does.
    crate::helpers::stop_servers().await;
    drop(apps);
    drop(database);
}

on_both_databases!(
    cancel_racing_confirm_ends_cancelled_with_no_slots,
    eight_reschedules_at_once_leave_exactly_the_final_slots,
    a_course_cancel_racing_a_session_move_leaves_nothing_held,
    instances_started_together_on_an_empty_database_all_come_up,
    replacements_at_once_of_a_dermatologists_lists_apply_whole,
    a_block_racing_a_booking_of_its_slot_leaves_one_of_them,
    patches_at_once_of_different_fields_both_apply,
);
