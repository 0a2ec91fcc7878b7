//! The database: one connection type over SQLite and PostgreSQL, the pool, migrations,
//! and the write transaction every mutating query runs in.

mod pool;
pub mod schema;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use pool::{Backend, DbPool, PooledConn, connect};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One binary serves both backends; the variant is chosen by the URL's scheme.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Applies every pending migration of the connection's backend; returns how many ran.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let migrations = match conn {
        DbConnection::Postgres(_) => POSTGRES_MIGRATIONS,
        DbConnection::Sqlite(_) => SQLITE_MIGRATIONS,
    };
    let applied = conn
        .run_pending_migrations(migrations)
        .map_err(|e| anyhow::anyhow!("running migrations: {e}"))?;
    Ok(applied.len())
}

/// Runs `f` in a transaction that may write. On SQLite it begins `IMMEDIATE`: a deferred
/// transaction that reads and then writes can fail with SQLITE_BUSY whatever the busy
/// timeout, because the write lock is only asked for after another writer got in.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
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

/// The current UTC time as stored: naive, whole seconds. SQLite keeps timestamps as text,
/// and only one fixed format makes text order equal time order.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(0)
}
