//! Builds the benchmark clinic in an empty database: the demo clinic grown to 20
//! dermatologists who all give consultations, Monday to Friday 09:00-17:00 in 15-minute
//! slots for 90 days, and 30% of those slots booked.
//!
//! `cargo run --release --example bench_seed -- DATABASE_URL`

use chrono::NaiveTime;
use diesel::connection::SimpleConnection;

use dermabook::db::{self, write_transaction};
use dermabook::domain::schedule::WeeklyRule;
use dermabook::store::dermatologists::{self, DermatologistForm};
use dermabook::store::{schedules, treatments};

const DERMATOLOGISTS: usize = 20;
const DAYS: u32 = 90;

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench_seed DATABASE_URL"))?;
    let pool = db::connect(&url, 1, 30_000)?;
    let mut conn = db::checkout(&pool)?;
    db::run_migrations(&mut conn)?;
    dermabook::demo::seed(&mut conn, true)?;
    let consultation = treatments::by_slug(&mut conn, "initial-consultation")?
        .ok_or_else(|| anyhow::anyhow!("the demo clinic has no consultation"))?;
    let existing = dermatologists::list(&mut conn, false, None)?.len();
    let now = db::now();
    let hours: Vec<WeeklyRule> = (1..=5)
        .map(|weekday| WeeklyRule {
            weekday,
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            slot_minutes: 15,
            valid_from: None,
            valid_until: None,
        })
        .collect();
    write_transaction(&mut conn, |conn| -> anyhow::Result<()> {
        for n in existing..DERMATOLOGISTS {
            let added = dermatologists::insert(
                conn,
                &DermatologistForm {
                    name: format!("Dr Bench {n}"),
                    title: "Dermatologist".into(),
                    bio: String::new(),
                    email: format!("bench{n}@harbourskin.example"),
                    active: true,
                    updated_at: now,
                },
            )?;
            dermatologists::set_treatments(conn, added.id, &[consultation.id])?;
        }
        for d in dermatologists::list(conn, false, None)? {
            schedules::replace_rules(conn, d.id, &hours)?;
        }
        Ok(())
    })?;
    let horizon = dermabook::scheduling::Horizon {
        timezone: chrono_tz::Europe::London,
        days: DAYS,
        now: dermabook::db::now(),
    };
    let outcome = dermabook::scheduling::generate_horizon(&mut conn, horizon, None)?;
    // Book every slot whose id falls in 3 of each 10 buckets: 30%, spread evenly and the
    // same on every run, each for a patient of its own, as a clinic's bookings mostly
    // are (with one patient for all, the statistics made SQLite scan the patients the
    // load then adds, at every booking's reload), and a phone of their own, its digits
    // the booking's `phone_key` as a booking made through the API stores them (left
    // empty, every seeded booking shared one key, which skewed PostgreSQL's generic plan
    // of the phone limit's count). Plain SQL that both backends speak.
    conn.batch_execute(&format!(
        "INSERT INTO patients (name, email, phone, created_at, updated_at)
             SELECT 'Bench Patient ' || id, 'bench.' || id || '@example.com', '+44 1' || (100000000 + id),
                    '{now}', '{now}'
             FROM slots WHERE (id * 7919) % 10 < 3;
         INSERT INTO bookings (reference, patient_id, dermatologist_id, treatment_id, starts_at, ends_at,
                               status, source, screening_answers, manage_token_hash, phone_key,
                               created_at, updated_at)
             SELECT 'BENCH-' || s.id, p.id, s.dermatologist_id, {treatment}, s.starts_at,
                    s.ends_at, 'confirmed', 'front_desk', '{{}}', 'bench-' || s.id,
                    '441' || (100000000 + s.id), s.starts_at, s.starts_at
             FROM slots s JOIN patients p ON p.email = 'bench.' || s.id || '@example.com';
         INSERT INTO booking_slots (booking_id, slot_id)
             SELECT b.id, s.id FROM slots s JOIN bookings b ON b.reference = 'BENCH-' || s.id;",
        treatment = consultation.id,
    ))?;
    // What a live clinic's database is like: its links made under the server's secret
    // (else the first start re-keys every booking, and the table's dead rows are vacuumed
    // during the measurements), and its statistics current.
    if let Ok(secret) = std::env::var("DERMABOOK__AUTH__MANAGE_LINK_SECRET") {
        write_transaction(&mut conn, |conn| {
            dermabook::booking::rekey_legacy_links(conn, &secret)
        })?;
    }
    let settle = match &*conn {
        db::DbConnection::Postgres(_) => "VACUUM ANALYZE",
        db::DbConnection::Sqlite(_) => "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)",
    };
    conn.batch_execute(settle)?;
    let slots: i64 = count(&mut conn, "slots")?;
    let booked: i64 = count(&mut conn, "booking_slots")?;
    println!(
        "{DERMATOLOGISTS} dermatologists, {slots} slots ({} new), {booked} booked ({:.0}%)",
        outcome.added,
        100.0 * booked as f64 / slots.max(1) as f64
    );
    Ok(())
}

fn count(conn: &mut db::DbConnection, table: &str) -> anyhow::Result<i64> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: Count =
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result(conn)?;
    Ok(row.n)
}
