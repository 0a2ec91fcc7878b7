//! Where the write transactions of one SQLite database wait their turn in this process,
//! and how the requests' writes that queued together commit together.
//!
//! SQLite admits one writer at a time, and each commit waits for the disk
//! (`synchronous=FULL`). Writers queue here in arrival order without sleeping, instead of
//! in SQLite's busy handler, whose sleeps grow to 100 ms. The requests' writes
//! ([`WriteQueue::write`]) are run by one writer thread: it takes the turn, then commits
//! what gathered meanwhile in one transaction, each write in its own savepoint. A write
//! that fails rolls back its savepoint alone; no writer hears of success before the
//! commit that makes it durable, and when anything goes wrong with the transaction
//! itself, every write of the batch is told it was not made. PostgreSQL needs none of
//! this: its row locks queue writers and its commits already share the disk's flushes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::oneshot;

use super::{Backend, DbConnection, DbPool, write_transaction};

/// Writes committed together at most: a batch holds the turn for all of them, so a long
/// one would keep the email sender and the jobs waiting.
const MOST_IN_ONE_COMMIT: usize = 32;

/// How often an idle writer thread checks whether its server is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
pub struct WriteQueue(Option<Arc<Queue>>);

#[derive(Default)]
struct Queue {
    turn: Arc<tokio::sync::Mutex<()>>,
    line: Mutex<Line>,
    arrived: Condvar,
}

/// The writes waiting for a batch, in arrival order, and whether the writer thread runs.
#[derive(Default)]
struct Line {
    writes: Vec<Box<dyn Queued>>,
    writer_running: bool,
}

/// One writer's turn in a [`WriteQueue`], until dropped.
pub type Turn = tokio::sync::OwnedMutexGuard<()>;

/// Why a queued write was not made: nothing of it was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unwritten {
    #[error("no database connection: {0}")]
    NoConnection(String),
    #[error("a write committed with it panicked, so none of them was")]
    Panicked,
    #[error("the write's batch ended without an answer")]
    Lost,
}

/// How a batch ended, for each of its writes.
enum Settled<'a> {
    Committed,
    NotRun(&'a Unwritten),
    Failed(&'a DieselError),
}

impl WriteQueue {
    pub fn for_url(url: &str) -> WriteQueue {
        let sqlite = matches!(Backend::from_url(url), Ok((Backend::Sqlite, _)));
        WriteQueue(sqlite.then(Default::default))
    }

    /// Runs a background job's writes: on SQLite in a savepoint of the requests' next
    /// batch, sharing its commit (the email sender's claims and records used to add a
    /// commit of their own, each waiting for the disk under the turn); on PostgreSQL on
    /// a pooled connection as they are. `f` opens its own transaction where it needs one.
    pub async fn background_write<T: Send + 'static>(
        &self,
        pool: &DbPool,
        f: impl FnOnce(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        if self.0.is_some() {
            Ok(self.write(pool, f).await??)
        } else {
            super::run_blocking(pool, f).await
        }
    }

    /// Waits for this writer's turn, which lasts as long as the guard.
    pub async fn turn(&self) -> Option<Turn> {
        match &self.0 {
            Some(queue) => Some(queue.turn.clone().lock_owned().await),
            None => None,
        }
    }

    /// Runs `work` in a write transaction shared with the writes queued beside it, in a
    /// savepoint of its own, and answers once that transaction has committed (or with
    /// why it did not). The outer error is a write that never ran or was undone by
    /// another's panic. Without a queue (PostgreSQL) it is a transaction of its own.
    pub async fn write<T, E, F>(&self, pool: &DbPool, work: F) -> Result<Result<T, E>, Unwritten>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DieselError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut waiting = Waiting {
            work: Some(work),
            outcome: None,
            reply,
        };
        let Some(queue) = &self.0 else {
            let pool = pool.clone();
            tokio::task::spawn_blocking(move || match connection(&pool) {
                Ok(mut conn) => {
                    if let Some(work) = waiting.work.take() {
                        waiting.outcome = Some(write_transaction(&mut conn, work));
                    }
                    drop(conn);
                    Box::new(waiting).answer(Settled::Committed);
                }
                Err(unwritten) => Box::new(waiting).answer(Settled::NotRun(&unwritten)),
            });
            return answer.await.unwrap_or(Err(Unwritten::Lost));
        };
        let unstarted = {
            let mut line = queue.lock_line();
            line.writes.push(Box::new(waiting));
            if line.writer_running {
                None
            } else {
                line.writer_running = true;
                let (weak, pool) = (Arc::downgrade(queue), pool.clone());
                // A thread of its own, not a task of the worker that wrote first: a
                // worker's tasks end with its connections at shutdown, and the writes of
                // the others' requests would wait for nobody.
                let started = std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || write_batches(weak, pool));
                started.err().map(|error| {
                    line.writer_running = false;
                    (error, std::mem::take(&mut line.writes))
                })
            }
        };
        if let Some((error, writes)) = unstarted {
            let why = Unwritten::NoConnection(format!("the SQLite writer did not start: {error}"));
            for write in writes {
                write.answer(Settled::NotRun(&why));
            }
        }
        queue.arrived.notify_one();
        answer.await.unwrap_or(Err(Unwritten::Lost))
    }
}

impl Queue {
    /// The line, even after a panic while it was held: what it holds is whole after every
    /// step taken under it.
    fn lock_line(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ends a writer thread's watch over its queue when the thread ends by a panic: the
/// writes waiting are told they were not made, and the next write starts a new writer.
struct WriterGone(Weak<Queue>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Some(queue) = self.0.upgrade() else {
            return;
        };
        let writes = {
            let mut line = queue.lock_line();
            line.writer_running = false;
            std::mem::take(&mut line.writes)
        };
        for write in writes {
            write.answer(Settled::NotRun(&Unwritten::Lost));
        }
    }
}

/// The writer thread: waits for writes, takes the turn, and commits what is waiting
/// (at most [`MOST_IN_ONE_COMMIT`]); ends once the queue's server is gone.
fn write_batches(queue: Weak<Queue>, pool: DbPool) {
    let _gone = WriterGone(queue.clone());
    loop {
        let Some(queue) = queue.upgrade() else { return };
        {
            let mut line = queue.lock_line();
            while line.writes.is_empty() {
                let (waited, _) = queue
                    .arrived
                    .wait_timeout(line, IDLE_CHECK)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                line = waited;
                // Nobody but this thread holds the queue: its server is gone.
                if line.writes.is_empty() && Arc::strong_count(&queue) == 1 {
                    line.writer_running = false;
                    return;
                }
            }
        }
        // The writes that arrive while the turn is awaited join this batch.
        let turn = queue.turn.clone().blocking_lock_owned();
        let batch: Vec<Box<dyn Queued>> = {
            let mut line = queue.lock_line();
            let taken = line.writes.len().min(MOST_IN_ONE_COMMIT);
            line.writes.drain(..taken).collect()
        };
        commit_together(&pool, batch);
        drop(turn);
    }
}

/// Runs `batch` in one transaction and answers each write; the connection goes back
/// first, since one whose rollback failed may still hold SQLite's lock.
fn commit_together(pool: &DbPool, mut batch: Vec<Box<dyn Queued>>) {
    crate::instruments::write_batch(batch.len());
    let mut conn = match connection(pool) {
        Ok(conn) => conn,
        Err(unwritten) => {
            for write in batch {
                write.answer(Settled::NotRun(&unwritten));
            }
            return;
        }
    };
    let mut panicked = false;
    let committed = write_transaction(&mut conn, |conn| {
        for write in &mut batch {
            match catch_unwind(AssertUnwindSafe(|| in_savepoint(conn, write.as_mut()))) {
                Ok(Ok(())) => {}
                // The transaction itself failed: none of the batch can be kept.
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    // The others' work cannot run again; none of it is committed: the
                    // transaction is rolled back, or, where the panic left diesel's
                    // depth behind (inside a savepoint of diesel's own), the connection
                    // counts as broken and the pool closes it, which rolls it back.
                    panicked = true;
                    return Err(DieselError::RollbackTransaction);
                }
            }
        }
        Ok(())
    });
    drop(conn);
    let panic = Unwritten::Panicked;
    for write in batch {
        write.answer(match (&committed, panicked) {
            (_, true) => Settled::NotRun(&panic),
            (Ok(()), false) => Settled::Committed,
            (Err(error), false) => Settled::Failed(error),
        });
    }
}

/// Runs one write of a batch in a savepoint, kept when the write succeeds and rolled
/// back when it fails. An error here is the batch's, and nothing of the batch may
/// commit: the savepoint could not be released or rolled back (as when SQLite has ended
/// the whole transaction on an error such as a full disk: the savepoint is gone), or
/// diesel found the transaction over (it notices when a statement of its own fails
/// outside one). A write must pass the database's errors on: one that swallowed such an
/// error and wrote on would write outside the batch.
fn in_savepoint(conn: &mut DbConnection, write: &mut dyn Queued) -> Result<(), DieselError> {
    let still_the_batch = |conn: &mut DbConnection| {
        let depth = crate::on_backend!(&mut *conn, |c| {
            AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
        })?;
        match depth.map(|d| d.get()) {
            Some(1) => Ok(()),
            _ => Err(DieselError::NotInTransaction),
        }
    };
    still_the_batch(conn)?;
    conn.batch_execute("SAVEPOINT batch_write")?;
    let done = write.run(conn);
    still_the_batch(conn)?;
    conn.batch_execute(if done {
        "RELEASE batch_write"
    } else {
        "ROLLBACK TO batch_write; RELEASE batch_write"
    })?;
    still_the_batch(conn)
}

fn connection(pool: &DbPool) -> Result<super::PooledConn, Unwritten> {
    super::checkout(pool).map_err(|e| Unwritten::NoConnection(e.to_string()))
}

/// A write in the queue, its types erased so that writes of any result share a batch.
trait Queued: Send {
    /// Runs the work inside the batch's transaction; whether it succeeded.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Tells the writer how it ended.
    fn answer(self: Box<Self>, batch: Settled<'_>);
}

struct Waiting<T, E, F> {
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<Result<T, E>, Unwritten>>,
}

impl<T, E, F> Queued for Waiting<T, E, F>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<DieselError> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(conn);
        let done = outcome.is_ok();
        self.outcome = Some(outcome);
        done
    }

    fn answer(self: Box<Self>, batch: Settled<'_>) {
        let answer = match (self.outcome, batch) {
            (_, Settled::NotRun(why)) => Err(why.clone()),
            // Whatever it did, and whatever it was told by the batch's earlier writes,
            // nothing of the batch was kept.
            (_, Settled::Failed(error)) => Ok(Err(E::from(retold(error)))),
            // Its own failure: its savepoint was rolled back.
            (Some(outcome), Settled::Committed) => Ok(outcome),
            (None, Settled::Committed) => Err(Unwritten::Lost),
        };
        let _ = self.reply.send(answer);
    }
}

/// The batch's error, once for each of its writes (diesel's errors are not `Clone`);
/// the message is kept, by which a busy database is told apart.
fn retold(error: &DieselError) -> DieselError {
    DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(error.to_string()))
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// A SQLite database in a folder of its own, with one table of numbers.
    fn database() -> (tempfile::TempDir, DbPool, WriteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("queue.db").display());
        let pool = crate::db::connect(&url, 4, 5000).unwrap();
        pool.get()
            .unwrap()
            .batch_execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, pool, WriteQueue::for_url(&url))
    }

    fn stored(pool: &DbPool) -> Vec<i64> {
        diesel::sql_query("SELECT n FROM numbers ORDER BY n")
            .load::<Row>(&mut *crate::db::checkout(pool).unwrap())
            .unwrap()
            .into_iter()
            .map(|row| row.n)
            .collect()
    }

    fn insert(conn: &mut DbConnection, n: i64) -> Result<i64, DieselError> {
        diesel::sql_query("INSERT INTO numbers (n) VALUES (?)")
            .bind::<BigInt, _>(n)
            .execute(conn)?;
        Ok(n)
    }

    type Work = Box<dyn FnOnce(&mut DbConnection) -> Result<i64, DieselError> + Send>;

    /// Queues one write per closure, in order, while the turn is held, so that all of
    /// them wait in one line; then lets them go: they run as one batch.
    async fn in_one_batch(
        queue: &WriteQueue,
        pool: &DbPool,
        writes: Vec<Work>,
    ) -> Vec<Result<Result<i64, DieselError>, Unwritten>> {
        let held = queue.turn().await;
        let line = &queue.0.as_ref().unwrap().line;
        let mut answers = Vec::new();
        for (queued, work) in writes.into_iter().enumerate() {
            let (queue, pool) = (queue.clone(), pool.clone());
            answers.push(tokio::spawn(async move { queue.write(&pool, work).await }));
            while line.lock().unwrap().writes.len() <= queued {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        results
    }

    /// After a batch that kept nothing, the next write is made alone.
    async fn a_later_write_is_made(queue: &WriteQueue, pool: &DbPool) {
        let after = queue.write(pool, |conn| insert(conn, 5)).await;
        assert!(matches!(after, Ok(Ok(5))));
        assert_eq!(stored(pool), vec![5]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_commit_together_and_a_failed_one_alone_is_undone() {
        let (_dir, pool, queue) = database();
        let results = in_one_batch(
            &queue,
            &pool,
            vec![
                Box::new(|conn| insert(conn, 1)),
                // Writes, then fails: its savepoint goes, the others' work stays.
                Box::new(|conn| {
                    insert(conn, 2)?;
                    insert(conn, 1)
                }),
                // Sees the batch's earlier writes, as it would after their commits.
                Box::new(|conn| insert(conn, 3).and_then(|_| insert(conn, 1))),
                Box::new(|conn| insert(conn, 4)),
            ],
        )
        .await;
        assert!(matches!(results[0], Ok(Ok(1))));
        assert!(matches!(
            results[1],
            Ok(Err(DieselError::DatabaseError(..)))
        ));
        assert!(matches!(
            results[2],
            Ok(Err(DieselError::DatabaseError(..)))
        ));
        assert!(matches!(results[3], Ok(Ok(4))));
        assert_eq!(stored(&pool), vec![1, 4]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_a_batch_commits_none_of_it_and_the_queue_goes_on() {
        let (_dir, pool, queue) = database();
        let results = in_one_batch(
            &queue,
            &pool,
            vec![
                Box::new(|conn| insert(conn, 1)),
                Box::new(|conn| {
                    insert(conn, 2)?;
                    panic!("a bug in a write");
                }),
                Box::new(|conn| insert(conn, 3)),
            ],
        )
        .await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(Unwritten::Panicked)))
        );
        assert_eq!(stored(&pool), Vec::<i64>::new());
        a_later_write_is_made(&queue, &pool).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_that_ends_the_transaction_fails_the_whole_batch() {
        let (_dir, pool, queue) = database();
        // SQLite ends a whole transaction on some errors (a full disk, say); a trigger
        // can do the same on purpose.
        pool.get()
            .unwrap()
            .batch_execute(
                "CREATE TRIGGER ends_all BEFORE INSERT ON numbers WHEN NEW.n = 666 \
                 BEGIN SELECT RAISE(ROLLBACK, 'the transaction is over'); END",
            )
            .unwrap();
        let results = in_one_batch(
            &queue,
            &pool,
            vec![
                Box::new(|conn| insert(conn, 1)),
                // Fails, and takes the transaction with it.
                Box::new(|conn| insert(conn, 666)),
                // Must not run in a transaction of its own, nor be told it was made.
                Box::new(|conn| insert(conn, 3)),
            ],
        )
        .await;
        assert!(
            results.iter().all(|r| matches!(r, Ok(Err(_)))),
            "{results:?}"
        );
        assert_eq!(stored(&pool), Vec::<i64>::new());
        a_later_write_is_made(&queue, &pool).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_writers_at_once_are_each_answered_once_with_their_own_result() {
        let (_dir, pool, queue) = database();
        let writers: Vec<_> = (1..=100)
            .map(|n| {
                let (queue, pool) = (queue.clone(), pool.clone());
                tokio::spawn(async move {
                    // Every tenth fails after writing.
                    queue
                        .write(&pool, move |conn| {
                            insert(conn, n)?;
                            if n % 10 == 0 { insert(conn, n) } else { Ok(n) }
                        })
                        .await
                })
            })
            .collect();
        let mut made = Vec::new();
        for (n, writer) in (1..=100).zip(writers) {
            match writer.await.unwrap() {
                Ok(Ok(got)) => {
                    assert_eq!(got, n);
                    made.push(n);
                }
                Ok(Err(_)) => assert_eq!(n % 10, 0),
                Err(unwritten) => panic!("{unwritten}"),
            }
        }
        assert_eq!(made.len(), 90);
        assert_eq!(stored(&pool), made);
    }
}
