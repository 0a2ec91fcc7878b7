//! The database: one connection type over SQLite and PostgreSQL, the pool, migrations,
//! the write transaction every mutating query runs in, and the sections that only one
//! instance at a time may run.

mod contention;
mod pool;
mod queue;
pub mod schema;
pub mod stamp;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use contention::{Contention, contention};
pub use pool::{Backend, DbPool, PooledConn, checkout, connect, run_blocking};
pub use queue::{Turn, Unwritten, WriteQueue};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Runs one diesel expression on whichever concrete connection `$conn` holds, for what
/// the multi-backend connection cannot build (`ON CONFLICT`, batch inserts, row locks):
/// the expression is written once and compiled for each backend.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Runs `$insert` with `$values` bound to the rows that `$row` makes of each item of
/// `$items` (a slice): an array when there are one to four, otherwise a `Vec`. Diesel
/// keeps an insert of a fixed number of rows prepared, but has PostgreSQL parse and plan
/// an insert of a `Vec` every time; a booking of up to four slots (an hour of 15-minute
/// slots, buffer included) and its messages then go in as prepared statements. Four arms
/// cover the common bookings without compiling an insert for every length; longer ones
/// are parsed each time.
#[macro_export]
macro_rules! fixed_rows {
    ($items:expr, $row:expr, |$values:ident| $insert:expr) => {
        match $items {
            [a] => {
                let $values = [$row(a)];
                $insert
            }
            [a, b] => {
                let $values = [$row(a), $row(b)];
                $insert
            }
            [a, b, c] => {
                let $values = [$row(a), $row(b), $row(c)];
                $insert
            }
            [a, b, c, d] => {
                let $values = [$row(a), $row(b), $row(c), $row(d)];
                $insert
            }
            items => {
                let $values: Vec<_> = items.iter().map($row).collect();
                $insert
            }
        }
    };
}

/// One binary serves both backends; the variant is chosen by the URL's scheme.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Whether migrations of this build are not yet applied to the connection's database.
pub fn migrations_pending(conn: &mut DbConnection) -> anyhow::Result<bool> {
    let migrations = match conn {
        DbConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        DbConnection::Postgres(_) => POSTGRES_MIGRATIONS,
    };
    conn.has_pending_migration(migrations)
        .map_err(|e| anyhow::anyhow!("reading applied migrations: {e}"))
}

/// Applies every pending migration of the connection's backend; returns how many ran.
/// Instances that start together on an empty database apply them once: the first
/// migrates, the others wait and then find nothing pending. On PostgreSQL they wait on a
/// session-level advisory lock, so each migration keeps its own transaction (and one
/// that must run outside a transaction still can); on SQLite on the write lock of one
/// `BEGIN IMMEDIATE` transaction around them all.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    fn apply(conn: &mut DbConnection, migrations: EmbeddedMigrations) -> anyhow::Result<usize> {
        let applied = conn
            .run_pending_migrations(migrations)
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"))?;
        Ok(applied.len())
    }
    let key = Exclusive::Migrations.key();
    let advisory = |conn: &mut DbConnection, sql: &str| {
        diesel::sql_query(sql)
            .bind::<BigInt, _>(key)
            .execute(conn)
            .map_err(|e| anyhow::anyhow!("migration lock: {e}"))
    };
    match conn {
        DbConnection::Sqlite(_) => write_transaction(conn, |conn| apply(conn, SQLITE_MIGRATIONS)),
        DbConnection::Postgres(_) => {
            advisory(conn, "SELECT pg_advisory_lock($1)")?;
            let applied = apply(conn, POSTGRES_MIGRATIONS);
            // Released even when a migration failed; a lost connection releases it too.
            let unlocked = advisory(conn, "SELECT pg_advisory_unlock($1)");
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
    }
}

/// Runs `f` in a transaction that may write. On SQLite it begins `IMMEDIATE`: a deferred
/// transaction that reads and then writes can fail with SQLITE_BUSY whatever the busy
/// timeout, because the write lock is only asked for after another writer got in. Inside
/// a transaction already open, `f` runs in a savepoint of it.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let depth = crate::on_backend!(&mut *conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()?
    });
    if depth.is_some() {
        return conn.transaction(f);
    }
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => match DbConnection::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(commit_error) => {
                // A failed COMMIT leaves the transaction open on some backends.
                let _ = DbConnection::rollback_transaction(conn);
                Err(commit_error.into())
            }
        },
        Err(error) => {
            DbConnection::rollback_transaction(conn)?;
            Err(error)
        }
    }
}

/// Work that two instances must not do at the same moment: each check-then-write it
/// does would otherwise race the other's. Each is a PostgreSQL advisory lock key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusive {
    Migrations,
    DemoSeed,
    /// One dermatologist's generated slots.
    SlotGeneration(i64),
    /// Counting one patient's live bookings before adding one.
    PatientBookings(i64),
    /// Counting the live bookings of one phone number (its digits, as a number).
    PhoneBookings(i64),
    /// Replacing one of a dermatologist's lists (treatments performed, weekly rules,
    /// calendar feed): each deletes the rows, then inserts. Two at once would insert the
    /// same key twice, or leave both lists merged, the second's delete having missed the
    /// first's new rows.
    DermatologistLists(i64),
}

impl Exclusive {
    /// The PostgreSQL advisory lock key: a kind in the high 32 bits, an id in the low.
    /// Kind 6 is taken by the availability marks' triggers (a dermatologist's marks, in
    /// the migration `availability_weeks`).
    fn key(self) -> i64 {
        const NAMESPACE: i64 = 0x4442_0000; // "DB", so other users of the database can tell ours
        let (kind, id) = match self {
            Exclusive::Migrations => (1, 0),
            Exclusive::DemoSeed => (2, 0),
            Exclusive::SlotGeneration(id) => (3, id),
            Exclusive::PatientBookings(id) => (4, id),
            Exclusive::PhoneBookings(digits) => (5, digits),
            Exclusive::DermatologistLists(id) => (7, id),
        };
        ((NAMESPACE | kind) << 32) | (id & 0xFFFF_FFFF)
    }
}

/// Runs `f` in a write transaction that holds `what` until it ends. On PostgreSQL that is
/// a transaction-level advisory lock, freed at commit, rollback or a lost connection; on
/// SQLite the `BEGIN IMMEDIATE` write lock already admits one writer at a time.
pub fn exclusive<T, E, F>(conn: &mut DbConnection, what: Exclusive, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction(conn, |conn| {
        hold(conn, what)?;
        f(conn)
    })
}

/// Holds `what` until the transaction `conn` is in ends (PostgreSQL's advisory lock; on
/// SQLite the transaction's write lock already does).
pub fn hold(conn: &mut DbConnection, what: Exclusive) -> diesel::QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        // A function call, not `sql_query`: diesel keeps it prepared, so the lock taken by
        // every booking is not parsed and planned again each time.
        diesel::select(advisory::pg_advisory_xact_lock(what.key())).execute(pg)?;
    }
    Ok(())
}

mod advisory {
    use diesel::sql_types::BigInt;

    /// PostgreSQL's `void` (a fixed OID), what the advisory lock returns: only ever
    /// executed, never read.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
    #[diesel(postgres_type(oid = 2278, array_oid = 0))]
    pub struct Void;

    diesel::define_sql_function! {
        /// Waits for the transaction-level advisory lock `key`, held until the transaction
        /// ends.
        fn pg_advisory_xact_lock(key: BigInt) -> Void;
    }
}

/// The current UTC time as stored: naive, whole seconds. SQLite keeps timestamps as text,
/// and only one fixed format makes text order equal time order.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::Exclusive;

    #[test]
    fn every_exclusive_section_has_its_own_lock_key() {
        let keys = [
            Exclusive::Migrations.key(),
            Exclusive::DemoSeed.key(),
            Exclusive::SlotGeneration(0).key(),
            Exclusive::SlotGeneration(1).key(),
            Exclusive::SlotGeneration(i64::from(u32::MAX)).key(),
            Exclusive::PatientBookings(1).key(),
            Exclusive::PhoneBookings(1).key(),
            Exclusive::DermatologistLists(1).key(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
