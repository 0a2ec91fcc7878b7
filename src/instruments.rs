//! What dermabook measures, under Prometheus's naming conventions (`_total` counters,
//! `_seconds` units), through the `metrics` facade; `render` writes the text exposition.
//! The recorder is process-wide and installed once, so every server in a process (the
//! tests run many) shares it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for request, send and generation times: 5 ms to 10 s.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for how many writes one SQLite commit made (at most 32).
const WRITES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

fn exporter() -> &'static Exporter {
    static EXPORTER: OnceLock<Exporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .expect("the buckets are not empty")
            .set_buckets_for_metric(
                Matcher::Full("dermabook_db_write_batch_writes".into()),
                WRITES,
            )
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Histograms keep every sample until upkeep folds them into their buckets; a
        // recorder built by hand gets no upkeep of its own, so without this thread the
        // samples of a server nobody scrapes grew without end (20 MB in 15 s of /health
        // at 90,000 requests a second).
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        // Another recorder (a test's, an embedding program's) keeps its place; this one
        // still renders what it was given.
        let _ = metrics::set_global_recorder(recorder);
        let process = metrics_process::Collector::default();
        process.describe();
        describe();
        Exporter { handle, process }
    })
}

/// Installs the recorder, if no one has yet, and the statement counter of every
/// database connection made after it; call before connecting.
pub fn install() {
    exporter();
    // A failure leaves connections uncounted, never unusable.
    let _ = diesel::connection::set_default_instrumentation(statement_counter);
}

/// Counts each statement a connection sends (`dermabook_db_statements_total`): the
/// benchmarks divide it by the bookings made, and an operator sees what a change costs.
fn statement_counter() -> Option<Box<dyn diesel::connection::Instrumentation>> {
    static STATEMENTS: OnceLock<metrics::Counter> = OnceLock::new();
    let statements = STATEMENTS
        .get_or_init(|| counter!("dermabook_db_statements_total"))
        .clone();
    Some(Box::new(
        move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
                statements.increment(1);
            }
        },
    ))
}

/// The exposition of everything measured, the process's figures taken now.
pub fn render() -> String {
    let exporter = exporter();
    exporter.process.collect();
    exporter.handle.render()
}

fn describe() {
    describe_counter!(
        "dermabook_db_statements_total",
        "Statements sent to the database, by every connection of this process"
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests by route pattern, method and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route pattern and method"
    );
    describe_counter!(
        "dermabook_booking_operations_total",
        "Booking operations (book, cancel, reschedule, confirm, complete, no_show) by channel and outcome"
    );
    describe_counter!(
        "dermabook_booking_conflicts_total",
        "Bookings and moves that lost their time to another one at the same moment (409)"
    );
    describe_counter!(
        "dermabook_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (delivered: the receiver answered 2xx)"
    );
    describe_counter!(
        "dermabook_emails_sent_total",
        "Messages the SMTP server or the file transport accepted"
    );
    describe_counter!(
        "dermabook_email_send_failures_total",
        "Send attempts that failed"
    );
    describe_histogram!(
        "dermabook_email_send_duration_seconds",
        metrics::Unit::Seconds,
        "Time to hand one message to the transport"
    );
    describe_gauge!("dermabook_outbox_messages", "Outbox messages by status");
    describe_gauge!(
        "dermabook_outbox_oldest_pending_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest message waiting to be sent"
    );
    describe_counter!(
        "dermabook_reminders_queued_total",
        "Reminders queued into the outbox"
    );
    describe_gauge!(
        "dermabook_db_pool_connections",
        "Database pool connections by state (in_use, idle)"
    );
    describe_histogram!(
        "dermabook_db_pool_wait_seconds",
        metrics::Unit::Seconds,
        "Time a request waited for a database connection"
    );
    describe_histogram!(
        "dermabook_db_write_batch_writes",
        "Requests' writes committed together by one SQLite commit"
    );
    describe_counter!(
        "dermabook_slot_generation_runs_total",
        "Slot generation runs"
    );
    describe_histogram!(
        "dermabook_slot_generation_duration_seconds",
        metrics::Unit::Seconds,
        "Slot generation time"
    );
    describe_counter!(
        "dermabook_availability_cache_total",
        "Availability searches by cache result (hit, miss)"
    );
    describe_gauge!(
        "dermabook_availability_index_slots",
        "Free slots the availability index holds"
    );
}

/// `method` is one of the standard ones or "other": a client may send any token as a
/// method, and each would otherwise be a new series.
pub fn http_request(route: String, method: &str, status: u16, took: Duration) {
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "other",
    }
    .to_string();
    counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.to_string()).increment(1);
    histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(took.as_secs_f64());
}

/// One booking operation's outcome: `done`, `refused` (4xx), `conflict` (409: the state
/// refused it, the time went to someone else among others) or `failed` (5xx).
pub fn booking_operation(operation: &'static str, channel: &'static str, outcome: &'static str) {
    counter!("dermabook_booking_operations_total", "operation" => operation, "channel" => channel, "outcome" => outcome).increment(1);
}

/// A booking or a move that lost its time to another one.
pub fn booking_contest_lost() {
    counter!("dermabook_booking_conflicts_total").increment(1);
}

pub fn email_sent(took: Duration) {
    counter!("dermabook_emails_sent_total").increment(1);
    histogram!("dermabook_email_send_duration_seconds").record(took.as_secs_f64());
}

/// One webhook delivery attempt, by outcome.
pub fn webhook_attempt(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    counter!("dermabook_webhook_attempts_total", "outcome" => outcome).increment(1);
}

pub fn email_failed(took: Duration) {
    counter!("dermabook_email_send_failures_total").increment(1);
    histogram!("dermabook_email_send_duration_seconds").record(took.as_secs_f64());
}

pub fn outbox(by_status: &[(String, i64)], oldest_pending_age: Option<i64>) {
    for status in ["pending", "sending", "sent", "failed"] {
        let count = by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        gauge!("dermabook_outbox_messages", "status" => status).set(count as f64);
    }
    gauge!("dermabook_outbox_oldest_pending_age_seconds")
        .set(oldest_pending_age.unwrap_or(0).max(0) as f64);
}

pub fn reminders_queued(count: usize) {
    counter!("dermabook_reminders_queued_total").increment(count as u64);
}

pub fn pool(connections: u32, idle: u32) {
    gauge!("dermabook_db_pool_connections", "state" => "in_use")
        .set(f64::from(connections.saturating_sub(idle)));
    gauge!("dermabook_db_pool_connections", "state" => "idle").set(f64::from(idle));
}

pub fn pool_wait(took: Duration) {
    histogram!("dermabook_db_pool_wait_seconds").record(took.as_secs_f64());
}

/// How many requests' writes one SQLite commit made.
pub fn write_batch(writes: usize) {
    histogram!("dermabook_db_write_batch_writes").record(writes as f64);
}

pub fn slot_generation(took: Duration) {
    counter!("dermabook_slot_generation_runs_total").increment(1);
    histogram!("dermabook_slot_generation_duration_seconds").record(took.as_secs_f64());
}

pub fn availability_index(slots: usize) {
    gauge!("dermabook_availability_index_slots").set(slots as f64);
}

pub fn availability_cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!("dermabook_availability_cache_total", "result" => result).increment(1);
}
