//! Contention torture: rounds of concurrent bookings of overlapping times, of different
//! lengths, and racing changes of earlier bookings, against two server instances on one
//! database. It counts the answers and then asks the database whether any two live
//! bookings overlap and whether any booking's slots are out of step with its status.
//!
//! `cargo run --release --example bench_contention -- DATABASE_URL BASE_A BASE_B [ROUNDS]`
//! (the servers serve the demo clinic on DATABASE_URL). Exits non-zero on any 5xx, any
//! overlap or any booking out of step.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Europe::London;
use diesel::prelude::*;
use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const BOOKINGS_PER_ROUND: usize = 64;
/// Earlier bookings whose changes race in each round.
const CHANGES_PER_ROUND: usize = 8;

/// (treatment, the dermatologists of the demo clinic who perform it, needs the desk)
const TREATMENTS: [(&str, &[i64], bool); 3] = [
    ("initial-consultation", &[1, 2], false),
    ("mesotherapy-skin-rejuvenation", &[1, 2], true),
    ("laser-treatment", &[1], true),
];

struct Client {
    http: awc::Client,
    bases: [String; 2],
    desk: String,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Client {
    async fn post(&self, instance: usize, path: &str, desk: bool, body: &Value) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.bases[instance]));
        if desk {
            request = request.insert_header(("Authorization", format!("Bearer {}", self.desk)));
        }
        match request.send_json(body).await {
            Ok(mut response) => {
                let bytes = response.body().limit(1 << 20).await.unwrap_or_default();
                Answer {
                    status: response.status().as_u16(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                }
            }
            // A transport failure counts with the server errors: nothing must fail so.
            Err(e) => Answer {
                status: 599,
                body: json!(e.to_string()),
            },
        }
    }
}

/// A booking an earlier round made, for later rounds to change.
#[derive(Debug, Clone)]
struct Made {
    id: i64,
    token: String,
    pending: bool,
    day: NaiveDate,
}

/// A working day 3 to 60 days ahead.
fn random_day(rng: &mut StdRng) -> NaiveDate {
    let today = chrono::Utc::now().with_timezone(&London).date_naive();
    loop {
        let day = today + Duration::days(rng.random_range(3..60));
        if day.weekday().number_from_monday() <= 5 {
            return day;
        }
    }
}

fn at(day: NaiveDate, minutes_from_nine: i64) -> String {
    let local = day.and_hms_opt(9, 0, 0).expect("09:00") + Duration::minutes(minutes_from_nine);
    London
        .from_local_datetime(&local)
        .single()
        .expect("no DST change at 09:00")
        .to_rfc3339()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    dermabook::app::install_tls_provider();
    let args: Vec<String> = std::env::args().collect();
    let [_, url, a, b, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: bench_contention DATABASE_URL BASE_A BASE_B [ROUNDS]");
    };
    let rounds: usize = rest.first().map_or(Ok(100), |r| r.parse())?;
    let http = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    let login = http
        .post(format!("{a}/api/v1/auth/login"))
        .send_json(&json!({
            "email": dermabook::demo::FRONT_DESK_EMAIL,
            "password": dermabook::demo::FRONT_DESK_PASSWORD,
        }))
        .await
        .map_err(|e| anyhow::anyhow!("login: {e}"))?
        .json::<Value>()
        .await?;
    let desk = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token: {login}"))?
        .to_string();
    let client = Rc::new(Client {
        http,
        bases: [a.clone(), b.clone()],
        desk,
    });
    // Every screening answer "no", but a quarter of the bookings answer "yes" to the first
    // question and so wait for review: those are what cancel and confirm race over.
    let mut questions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (slug, _, _) in TREATMENTS {
        let treatment: Value = client
            .http
            .get(format!("{a}/api/v1/treatments/{slug}"))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{slug}: {e}"))?
            .json()
            .await?;
        let ids = treatment["screening_questions"]
            .as_array()
            .map(|qs| {
                qs.iter()
                    .filter_map(|q| q["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        questions.insert(slug, ids);
    }

    let mut rng = StdRng::seed_from_u64(9);
    let mut made: Vec<Made> = Vec::new();
    let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let started = Instant::now();
    let mut attempts = 0usize;
    for round in 0..rounds {
        let day = random_day(&mut rng);
        let dermatologist = rng.random_range(1..=2i64);
        // A two-hour window: everything this round asks for overlaps something else.
        let window_start = rng.random_range(0..3i64) * 60;
        let mut requests: Vec<(&str, usize, String, bool, Value)> = Vec::new();
        for n in 0..BOOKINGS_PER_ROUND {
            let (slug, performers, desk) = TREATMENTS[rng.random_range(0..TREATMENTS.len())];
            let dermatologist_id = if performers.contains(&dermatologist) {
                dermatologist
            } else {
                performers[0]
            };
            let review = rng.random_bool(0.25);
            let answers: serde_json::Map<String, Value> = questions[slug]
                .iter()
                .enumerate()
                .map(|(i, q)| (q.clone(), json!(review && i == 0)))
                .collect();
            let mut body = json!({
                "treatment": slug,
                "dermatologist_id": dermatologist_id,
                "starts_at": at(day, window_start + 15 * rng.random_range(0..8i64)),
                "patient": {
                    "name": "Contention Patient",
                    "email": format!("p{round}-{n}@contention.example"),
                    "phone": "+44 117 496 0000",
                },
                "screening_answers": answers,
            });
            let path = if desk {
                body["waive_consultation"] = json!(true);
                "/api/v1/admin/bookings"
            } else {
                "/api/v1/bookings"
            };
            requests.push(("book", n % 2, path.to_string(), desk, body));
        }
        // Racing changes of earlier bookings: cancel against confirm for those pending
        // review, two reschedules at once (to the same day's window) for the others.
        for _ in 0..CHANGES_PER_ROUND.min(made.len()) {
            let target = made.swap_remove(rng.random_range(0..made.len()));
            if target.pending {
                requests.push((
                    "cancel",
                    0,
                    format!("/api/v1/manage/{}/cancel", target.token),
                    false,
                    json!({}),
                ));
                requests.push((
                    "confirm",
                    1,
                    format!("/api/v1/admin/bookings/{}/confirm", target.id),
                    true,
                    json!({}),
                ));
            } else {
                for instance in 0..2 {
                    let starts_at = at(target.day, 15 * rng.random_range(0..24i64));
                    requests.push((
                        "reschedule",
                        instance,
                        format!("/api/v1/manage/{}/reschedule", target.token),
                        false,
                        json!({ "starts_at": starts_at }),
                    ));
                }
            }
        }
        attempts += requests.len();
        let barrier = Arc::new(Barrier::new(requests.len()));
        let answers = join_all(requests.iter().map(|(_, instance, path, desk, body)| {
            let (client, barrier) = (client.clone(), barrier.clone());
            async move {
                barrier.wait().await;
                client.post(*instance, path, *desk, body).await
            }
        }))
        .await;
        for ((kind, ..), answer) in requests.iter().zip(&answers) {
            *counts.entry((kind, answer.status)).or_default() += 1;
            if answer.status >= 500 {
                eprintln!(
                    "round {round}: {kind} answered {}: {}",
                    answer.status, answer.body
                );
            }
            if *kind == "book" && answer.status == 201 {
                made.push(Made {
                    id: answer.body["booking"]["id"].as_i64().unwrap_or_default(),
                    token: answer.body["manage_token"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    pending: answer.body["booking"]["status"] == "pending_review",
                    day,
                });
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let pool = dermabook::db::connect(url, 1, 5000)?;
    let mut conn = dermabook::db::checkout(&pool)?;
    let overlaps = count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM bookings a JOIN bookings b
           ON a.dermatologist_id = b.dermatologist_id AND a.id < b.id
          AND a.status <> 'cancelled' AND b.status <> 'cancelled'
          AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at",
    )?;
    let out_of_step = count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM bookings b WHERE
           (b.status <> 'cancelled') = NOT EXISTS (SELECT 1 FROM booking_slots s WHERE s.booking_id = b.id)",
    )?;
    let live = count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM bookings WHERE status <> 'cancelled'",
    )?;
    let server_errors: usize = counts
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();

    println!(
        "rounds: {rounds}, attempts: {attempts}, in {elapsed:.1} s: {:.0} attempts/s",
        attempts as f64 / elapsed
    );
    for kind in ["book", "cancel", "confirm", "reschedule"] {
        let by_status: Vec<String> = counts
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, status), n)| format!("{status}: {n}"))
            .collect();
        println!("{kind}: {}", by_status.join(", "));
    }
    println!("5xx: {server_errors}");
    println!("live bookings: {live}");
    println!("overlapping live bookings (must be 0): {overlaps}");
    println!("bookings whose slots are out of step with their status (must be 0): {out_of_step}");
    if server_errors > 0 || overlaps > 0 || out_of_step > 0 {
        anyhow::bail!("contention broke a rule");
    }
    Ok(())
}

fn count(conn: &mut dermabook::db::DbConnection, sql: &str) -> anyhow::Result<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n)
}
