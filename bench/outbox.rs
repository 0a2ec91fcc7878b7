//! Outbox benchmark: how fast the worker empties the outbox into an SMTP server on
//! loopback, and what writing a booking's emails adds to a booking.
//!
//! `cargo run --release --example bench_outbox -- DATABASE_URL [MESSAGES]`
//! (an empty database; SQLite or PostgreSQL). Prints one line of figures per measure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone};
use mailin_embedded::{Handler, Response, Server, SslConfig, response};

use dermabook::booking::{self, Channel, NewBookingRequest, PatientDetails};
use dermabook::config::{EmailTransport, Settings};
use dermabook::db::{self, DbPool, write_transaction};
use dermabook::email::compose::{self, Actor, Event};
use dermabook::store::outbox;

#[derive(Clone)]
struct Sink;
impl Handler for Sink {
    fn data(&mut self, _buf: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        response::OK
    }
}

fn start_sink() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut server = Server::new(Sink);
    server
        .with_name("sink.bench")
        .with_ssl(SslConfig::None)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_num_threads(8)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    Ok(port)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Books `count` consultations through the booking rules, timing each whole booking
/// (its transaction included) and, apart, rendering and queueing one booking's emails.
fn booking_latency(pool: &DbPool, settings: &Settings, count: usize) -> anyhow::Result<()> {
    let tz = settings.clinic.timezone;
    let mut day = chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(7);
    let mut conn = db::checkout(pool)?;
    let mut total = Vec::with_capacity(count);
    let mut emails = Vec::with_capacity(count);
    let mut booked = 0;
    while booked < count {
        day = day.succ_opt().unwrap();
        if day.weekday().number_from_monday() > 5 {
            continue;
        }
        for dermatologist_id in 1..=4 {
            for minutes in (0..(3 * 60 + 30)).step_by(30) {
                if booked == count {
                    break;
                }
                let local = day.and_hms_opt(9, 0, 0).unwrap() + chrono::Duration::minutes(minutes);
                let starts_at = tz
                    .from_local_datetime(&local)
                    .earliest()
                    .unwrap()
                    .naive_utc();
                let request = NewBookingRequest {
                    treatment: "initial-consultation".into(),
                    dermatologist_id,
                    starts_at,
                    patient: PatientDetails {
                        name: format!("Bench Patient {booked}"),
                        email: format!("patient{booked}@example.com"),
                        phone: "+44 117 496 0000".into(),
                        date_of_birth: None,
                    },
                    screening_answers: [("pregnancy".to_string(), false)].into(),
                    notes: Some("Benchmark booking.".into()),
                    sessions: None,
                    health_data_consent: true,
                };
                let started = Instant::now();
                let result = write_transaction(&mut conn, |conn| {
                    booking::book(conn, settings, request, Channel::Online, db::now())
                })
                .map_err(|e| anyhow::anyhow!("booking: {e}"))?;
                total.push(started.elapsed());
                let details = &result.sessions[0];
                let started = Instant::now();
                write_transaction(&mut conn, |conn| -> anyhow::Result<()> {
                    let token = dermabook::tokens::manage_token(
                        &settings.auth.manage_link_secret,
                        &details.booking.reference,
                        &details.booking.manage_nonce,
                    );
                    for mut email in compose::messages(
                        settings,
                        details,
                        &Event::Booked,
                        Actor::Patient,
                        &token,
                        None,
                        db::now(),
                    )? {
                        email.dedupe_key = None;
                        email.status = "sent".into();
                        outbox::enqueue(conn, std::slice::from_ref(&email))?;
                    }
                    Ok(())
                })?;
                emails.push(started.elapsed());
                booked += 1;
            }
        }
    }
    total.sort();
    emails.sort();
    println!(
        "booking: {count} bookings, whole booking p50 {:.2} ms p99 {:.2} ms; of which emails (render 2 messages with ICS, insert into the outbox) p50 {:.2} ms p99 {:.2} ms",
        percentile(&total, 0.5),
        percentile(&total, 0.99),
        percentile(&emails, 0.5),
        percentile(&emails, 0.99),
    );
    Ok(())
}

/// Queues `count` copies of a real confirmation and times one or two workers sending all.
async fn throughput(
    pool: &DbPool,
    settings: Arc<Settings>,
    count: usize,
    workers: usize,
) -> anyhow::Result<()> {
    let template = {
        let mut conn = db::checkout(pool)?;
        let emails = outbox::list(&mut conn, None, 0, 10)?.0;
        emails
            .into_iter()
            .find(|e| e.kind == "confirmation")
            .ok_or_else(|| anyhow::anyhow!("no confirmation to copy"))?
    };
    {
        let mut conn = db::checkout(pool)?;
        write_transaction(&mut conn, |conn| -> diesel::QueryResult<()> {
            for i in 0..count {
                outbox::enqueue(
                    conn,
                    &[outbox::NewEmail {
                        booking_id: template.booking_id,
                        kind: template.kind.clone(),
                        recipient: template.recipient.clone(),
                        subject: template.subject.clone(),
                        body_text: template.body_text.clone(),
                        body_html: template.body_html.clone(),
                        ics: template.ics.clone(),
                        message_id: format!("<bench-{workers}-{i}@harbourskin.example>"),
                        dedupe_key: None,
                        status: "pending".into(),
                        next_attempt_at: db::now(),
                        created_at: db::now(),
                    }],
                )?;
            }
            Ok(())
        })?;
    }
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let own_pool = db::connect(&settings.database.url, 2, 30_000)?;
        handles.push(dermabook::email::worker::spawn(own_pool, settings.clone())?);
    }
    loop {
        let (_, pending) = outbox::list(&mut *db::checkout(pool)?, Some("pending"), 0, 1)?;
        let (_, sending) = outbox::list(&mut *db::checkout(pool)?, Some("sending"), 0, 1)?;
        if pending + sending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    for handle in handles {
        handle.stop().await;
    }
    let (_, failed) = outbox::list(&mut *db::checkout(pool)?, Some("failed"), 0, 1)?;
    println!(
        "outbox: {count} messages ({} bytes each) with {workers} worker(s) in {:.2} s: {:.0} messages/s, {failed} failed",
        template.body_text.len()
            + template.body_html.len()
            + template.ics.as_ref().map_or(0, String::len),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bench_outbox DATABASE_URL [MESSAGES]"))?;
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let port = match std::env::var("BENCH_SMTP_PORT") {
        Ok(port) => port.parse()?,
        Err(_) => start_sink()?,
    };
    let mut settings = Settings::load(std::path::Path::new("config"), None)?;
    settings.database.url = url.clone();
    settings.auth.manage_link_secret = dermabook::tokens::new_token();
    settings.email.transport = EmailTransport::Smtp;
    settings.email.smtp.host = "127.0.0.1".into();
    settings.email.smtp.port = port;
    settings.email.poll_interval_ms = 20;
    let pool = db::connect(&url, 4, 30_000)?;
    {
        let mut conn = db::checkout(&pool)?;
        db::run_migrations(&mut conn)?;
        dermabook::demo::seed(&mut conn, true)?;
        let horizon = dermabook::scheduling::Horizon {
            days: 90,
            ..dermabook::scheduling::Horizon::of(&settings, db::now())
        };
        dermabook::scheduling::generate_horizon(&mut conn, horizon, None)?;
    }
    booking_latency(&pool, &settings, 400)?;
    let settings = Arc::new(settings);
    throughput(&pool, settings.clone(), count, 1).await?;
    throughput(&pool, settings, count, 2).await?;
    Ok(())
}
