//! Booking load for `bench/mix.sh`: patients who look up one day and book one of its
//! openings, as fast as they can (`flow`) or at a steady rate beside another load
//! (`steady`), so caches are invalidated as in life.
//!
//! `bench_load flow BASE CLIENTS SECONDS` prints "bookings/s p50_ms p99_ms" of the POSTs;
//! `bench_load steady BASE PER_SECOND SECONDS` prints "bookings/s".
//! Both run against the bench clinic (`bench_seed`), whose dermatologists all offer the
//! consultation. A 409 (the time went meanwhile) is an honest answer and is not counted;
//! any 5xx ends the run with an error.

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const TREATMENT: &str = "initial-consultation";
/// How far ahead patients look: the mix's eight weeks.
const DAYS_AHEAD: u64 = 56;

struct Outcome {
    booked: usize,
    latencies_ms: Vec<f64>,
}

/// One patient's loop: a one-day lookup, then a POST of a random opening of it.
async fn patient(
    base: String,
    seed: u64,
    until: Instant,
    pause: Duration,
) -> anyhow::Result<Outcome> {
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcome = Outcome {
        booked: 0,
        latencies_ms: Vec::new(),
    };
    let today = Utc::now().date_naive();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let day = today + Days::new(rng.random_range(1..=DAYS_AHEAD));
        let dermatologist = rng.random_range(1..=20);
        let url = format!(
            "{base}/api/v1/availability?treatment={TREATMENT}&from={day}&to={day}&dermatologist={dermatologist}"
        );
        let mut response = http
            .get(url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let found: Value = response.json().limit(1 << 22).await?;
        let Some(openings) = found["slots"].as_array().filter(|s| !s.is_empty()) else {
            continue;
        };
        let opening = &openings[rng.random_range(0..openings.len())];
        let body = json!({
            "treatment": TREATMENT,
            "dermatologist_id": opening["dermatologist_id"],
            "starts_at": opening["starts_at"],
            "patient": {
                "name": "Bench Patient",
                "email": format!("load-{seed}-{n}@example.com"),
                "phone": format!("+44 7{:09}", rng.random_range(0..1_000_000_000u64)),
            },
            "screening_answers": { "pregnancy": false },
        });
        let asked = Instant::now();
        let mut response = http
            .post(format!("{base}/api/v1/bookings"))
            .send_json(&body)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let status = response.status().as_u16();
        outcome
            .latencies_ms
            .push(asked.elapsed().as_secs_f64() * 1000.0);
        match status {
            201 => outcome.booked += 1,
            409 => {}
            _ if status >= 500 => anyhow::bail!("booking answered {status}"),
            _ => {
                let answer = response.body().await.unwrap_or_default();
                anyhow::bail!(
                    "booking answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                )
            }
        }
        if !pause.is_zero() {
            actix_web::rt::time::sleep(pause).await;
        }
    }
    Ok(outcome)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    dermabook::app::install_tls_provider();
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_load flow|steady BASE CLIENTS|PER_SECOND SECONDS";
    let [_, mode, base, count, seconds] = args.as_slice() else {
        anyhow::bail!(usage);
    };
    let count: u64 = count.parse()?;
    let seconds: u64 = seconds.parse()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let (clients, pause) = match mode.as_str() {
        "flow" => (count, Duration::ZERO),
        // Four patients, each pausing so that together they book about `count` a second.
        "steady" => (4, Duration::from_millis(4000 / count.max(1))),
        _ => anyhow::bail!(usage),
    };
    let runs: Vec<_> = (0..clients)
        .map(|c| {
            let seed = started.elapsed().as_nanos() as u64
                ^ ((c + 1) * 7919)
                ^ u64::from(std::process::id());
            actix_web::rt::spawn(patient(base.clone(), seed, until, pause))
        })
        .collect();
    let mut booked = 0;
    let mut latencies = Vec::new();
    for run in runs {
        let outcome = run.await??;
        booked += outcome.booked;
        latencies.extend(outcome.latencies_ms);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    match mode.as_str() {
        "flow" => println!(
            "{:.0} {:.2} {:.2}",
            booked as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        ),
        _ => println!("{:.1}", booked as f64 / elapsed),
    }
    Ok(())
}
