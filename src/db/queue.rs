//! Where the write transactions of one SQLite database wait their turn in this process,
//! and how the requests' writes that queued together commit together.
//!
//! SQLite admits one writer at a time, and each commit waits for the disk
//! (`synchronous=FULL`). Writers queue here in arrival order without sleeping, instead of
//! in SQLite's busy handler, whose sleeps grow to 100 ms. The requests' writes
//! ([`WriteQueue::write`]) that gather while another write holds the turn then run
//! together: one transaction, each write in its own savepoint, one commit. A write that
//! fails rolls back its savepoint alone; no writer hears of success before the commit
//! that makes it durable. PostgreSQL needs none of this: its row locks queue writers and
//! its commits already share the disk's flushes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::oneshot;

use super::{Backend, DbConnection, DbPool, write_transaction};

/// Writes committed together at most: a batch holds the turn for all of them, so a long
/// one would keep the email sender and the jobs waiting.
const MOST_IN_ONE_COMMIT: usize = 32;

#[derive(Clone, Default)]
pub struct WriteQueue(Option<Arc<Queue>>);

#[derive(Default)]
struct Queue {
    turn: Arc<tokio::sync::Mutex<()>>,
    waiting: Mutex<Line>,
}

/// The writes waiting for a batch, in arrival order, and whether a runner is already
/// on its way to them: one is enough, and more would only queue for the turn ahead of
/// the email sender to find nothing left.
#[derive(Default)]
struct Line {
    writes: Vec<Box<dyn Queued>>,
    runner_coming: bool,
}

/// One writer's turn in a [`WriteQueue`], until dropped.
pub type Turn = tokio::sync::OwnedMutexGuard<()>;

/// Why a queued write was not made: nothing of it was written.
#[derive(Debug, thiserror::Error)]
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

    /// Whether writes queue here (SQLite) rather than in the database (PostgreSQL).
    pub fn queues(&self) -> bool {
        self.0.is_some()
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
        let waiting = Waiting {
            work: Some(work),
            outcome: None,
            reply,
        };
        let Some(queue) = &self.0 else {
            let pool = pool.clone();
            let mut waiting = waiting;
            tokio::task::spawn_blocking(move || match connection(&pool) {
                Ok(mut conn) => {
                    waiting.run(&mut conn);
                    drop(conn);
                    Box::new(waiting).answer(Settled::Committed);
                }
                Err(unwritten) => Box::new(waiting).answer(Settled::NotRun(&unwritten)),
            });
            return answer.await.unwrap_or(Err(Unwritten::Lost));
        };
        let call_runner = {
            let mut line = queue.waiting.lock().expect("write queue");
            line.writes.push(Box::new(waiting));
            !std::mem::replace(&mut line.runner_coming, true)
        };
        // The runner is a task of its own, so a request that goes away leaves no write
        // queued for a later one to make.
        if call_runner {
            tokio::spawn(run_waiting(queue.clone(), pool.clone()));
        }
        answer.await.unwrap_or(Err(Unwritten::Lost))
    }
}

/// Takes the turn, then commits what is waiting (the writes that queued meanwhile);
/// again, after the others waiting for the turn, while more than a batch was waiting.
async fn run_waiting(queue: Arc<Queue>, pool: DbPool) {
    loop {
        let turn = queue.turn.clone().lock_owned().await;
        let (batch, more): (Vec<Box<dyn Queued>>, bool) = {
            let mut line = queue.waiting.lock().expect("write queue");
            let taken = line.writes.len().min(MOST_IN_ONE_COMMIT);
            let batch = line.writes.drain(..taken).collect();
            line.runner_coming = !line.writes.is_empty();
            (batch, line.runner_coming)
        };
        if !batch.is_empty() {
            let pool = pool.clone();
            let _ = tokio::task::spawn_blocking(move || {
                commit_together(&pool, batch);
                drop(turn);
            })
            .await;
        }
        if !more {
            return;
        }
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
            if catch_unwind(AssertUnwindSafe(|| write.run(conn))).is_err() {
                // The others' work cannot run again; none of it is committed. A panic
                // inside a savepoint leaves diesel's depth behind, so the connection
                // counts as broken and the pool closes it, which rolls back the rest.
                panicked = true;
                return Err(DieselError::RollbackTransaction);
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

fn connection(pool: &DbPool) -> Result<super::PooledConn, Unwritten> {
    let asked = std::time::Instant::now();
    let conn = pool.get();
    crate::instruments::pool_wait(asked.elapsed());
    conn.map_err(|e| Unwritten::NoConnection(e.to_string()))
}

/// A write in the queue, its types erased so that writes of any result share a batch.
trait Queued: Send {
    /// Runs the work, in a savepoint when a batch's transaction is open.
    fn run(&mut self, conn: &mut DbConnection);
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
    fn run(&mut self, conn: &mut DbConnection) {
        if let Some(work) = self.work.take() {
            self.outcome = Some(write_transaction(conn, work));
        }
    }

    fn answer(self: Box<Self>, batch: Settled<'_>) {
        let answer = match (self.outcome, batch) {
            (_, Settled::NotRun(why)) => Err(retold_unwritten(why)),
            // Its own failure: its savepoint was rolled back whatever the batch did.
            (Some(Err(own)), _) => Ok(Err(own)),
            (Some(Ok(value)), Settled::Committed) => Ok(Ok(value)),
            // Done, but not committed; or never begun, as when the batch could not begin.
            (Some(Ok(_)) | None, Settled::Failed(error)) => Ok(Err(E::from(retold(error)))),
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

fn retold_unwritten(why: &Unwritten) -> Unwritten {
    match why {
        Unwritten::NoConnection(message) => Unwritten::NoConnection(message.clone()),
        Unwritten::Panicked => Unwritten::Panicked,
        Unwritten::Lost => Unwritten::Lost,
    }
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
            .load::<Row>(&mut *pool.get().unwrap())
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

    /// Queues one write per closure while the turn is held, so that all of them wait in
    /// one line, then lets them go: they run as one batch.
    async fn in_one_batch(
        queue: &WriteQueue,
        pool: &DbPool,
        writes: Vec<Work>,
    ) -> Vec<Result<Result<i64, DieselError>, Unwritten>> {
        let held = queue.turn().await;
        let count = writes.len();
        let answers: Vec<_> = writes
            .into_iter()
            .map(|work| {
                let (queue, pool) = (queue.clone(), pool.clone());
                tokio::spawn(async move { queue.write(&pool, work).await })
            })
            .collect();
        let line = &queue.0.as_ref().unwrap().waiting;
        while line.lock().unwrap().writes.len() < count {
            tokio::task::yield_now().await;
        }
        drop(held);
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        results
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
        let after = queue.write(&pool, |conn| insert(conn, 5)).await;
        assert!(matches!(after, Ok(Ok(5))));
        assert_eq!(stored(&pool), vec![5]);
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
