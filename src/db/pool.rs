//! An r2d2 pool of [`DbConnection`]s. The backend comes from the URL's scheme; SQLite
//! connections get their pragmas as they are opened.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use super::DbConnection;

pub type DbPool = r2d2::Pool<Manager>;

/// A connection taken from the pool, given back when dropped.
pub struct PooledConn(r2d2::PooledConnection<Manager>);

impl Deref for PooledConn {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.0.conn
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.0.conn
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Splits a database URL into its backend and what that backend's driver expects.
    pub fn from_url(url: &str) -> Result<(Backend, &str), String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok((Backend::Sqlite, path))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Ok((Backend::Sqlite, path))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url))
        } else {
            Err("must start with sqlite:// or postgres://".to_string())
        }
    }
}

/// How long after a connection last answered a ping it is taken again without one
/// (HikariCP's "alive bypass window"): a busy server would otherwise ping before nearly
/// every statement it sends, a round trip each. A connection the server closed, taken
/// within the window, fails the one request that took it (diesel then marks it broken,
/// and the pool drops it as it comes back); taken after, a ping finds it out first.
const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A pooled connection, and when it last proved alive (opened, or answered a ping).
pub struct Pooled {
    conn: DbConnection,
    alive_at: Instant,
}

impl Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// The write-ahead log's length, in pages, at which the commit that reaches it copies
/// the log into the database file and waits for the disk (SQLite's default is 1,000).
/// That checkpoint runs under the one writer's turn, so the writes queued behind it
/// wait too: it accounted for most of the slowest 1% of bookings. Smaller checkpoints,
/// more often, make shorter waits: at 4 clients of the booking flow the POST p99 went
/// from 18-25 ms (22.4 on average) to 15-21 ms (17.6) in ten interleaved pairs of runs,
/// for about 5% fewer bookings a second (bench/RESULTS.md). Larger ones were slower
/// still (2,500: 27-29 ms; 10,000: 32-37 ms), and so was a thread checkpointing beside
/// the writer (28-30 ms): its flush of the database file seems to hold up the commits'
/// flushes of the log.
const CHECKPOINT_PAGES: u32 = 250;

#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    target: String,
    busy_timeout_ms: u64,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        let conn = match self.backend {
            Backend::Postgres => DbConnection::Postgres(
                PgConnection::establish(&self.target).map_err(r2d2::Error::ConnectionError)?,
            ),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // The busy timeout comes first: switching to WAL takes a lock that other
                // new connections may hold. WAL lets readers run beside the one writer;
                // synchronous=FULL makes a committed booking survive a power cut.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};",
                    self.busy_timeout_ms
                ))
                .map_err(r2d2::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(Pooled {
            conn,
            alive_at: Instant::now(),
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), r2d2::Error> {
        if pooled.alive_at.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        pooled.conn.ping().map_err(r2d2::Error::QueryError)?;
        pooled.alive_at = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// A connection from the pool, the wait for it measured (`dermabook_db_pool_wait_seconds`).
pub fn checkout(pool: &DbPool) -> Result<PooledConn, r2d2::PoolError> {
    let asked = std::time::Instant::now();
    let conn = pool.get();
    crate::instruments::pool_wait(asked.elapsed());
    conn.map(PooledConn)
}

/// Runs blocking diesel work on one of the pool's connections on Tokio's blocking
/// threads, never on the async workers (the background jobs' way; handlers use
/// `AppState::read`).
pub async fn run_blocking<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || f(&mut *checkout(&pool)?)).await?
}

/// Builds the pool; for SQLite it first creates the file's folder, so a fresh checkout
/// needs nothing prepared.
pub fn connect(url: &str, pool_size: u32, busy_timeout_ms: u64) -> anyhow::Result<DbPool> {
    let (backend, target) =
        Backend::from_url(url).map_err(|e| anyhow::anyhow!("database.url {e}"))?;
    if backend == Backend::Sqlite
        && let Some(dir) = Path::new(target).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    }
    let manager = Manager {
        backend,
        target: target.to_string(),
        busy_timeout_ms,
    };
    let pool = r2d2::Pool::builder()
        .max_size(pool_size)
        // A PostgreSQL connection is pinged as it is taken, unless it proved alive within
        // `TRUSTED_FOR`: the server may have closed it. A SQLite one is a file this
        // process holds open, which nothing closes between uses.
        .test_on_check_out(backend == Backend::Postgres)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    Ok(pool)
}
