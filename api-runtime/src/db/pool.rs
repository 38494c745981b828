//! The connection pool: deadpool holding sqlx connections.
//!
//! sqlx's own pool pings every connection it gets back (a `Sync` and its
//! `ReadyForQuery` on PostgreSQL): one more round trip per request, which on
//! a busy server costs about as much CPU as the query itself. Here a
//! connection is pinged only when its last operation did not run to the end
//! (the request was dropped midway, or the statement failed), just before
//! it is used again; and when one connection is found closed by the
//! server, every other one is pinged before its next use, since a restart
//! or failover closes them all.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult};
use sqlx::{ConnectOptions, Connection, Database, Executor};

pub type Pool<DB> = managed::Pool<Connector<DB>>;
/// A connection taken from the pool; it goes back when dropped.
pub type Lease<DB> = managed::Object<Connector<DB>>;

/// Connections older than this are replaced when next taken, so that a
/// failover or a server's per-session memory does not live forever (sqlx's
/// default lifetime).
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Opens connections of one engine and vets them before reuse.
pub struct Connector<DB: Database> {
    pub options: <DB::Connection as Connection>::Options,
    /// Run on every new connection (session settings).
    init: Option<String>,
    /// SQLite: each operation is interrupted past this long (the
    /// statement timeout, through sqlite3's progress handler).
    deadline: Option<Duration>,
    /// Counts the connections found closed by the server; a connection
    /// vetted before the latest one is pinged before its next use.
    losses: Arc<AtomicU64>,
}

impl<DB: Database> Connector<DB> {
    pub fn new(options: <DB::Connection as Connection>::Options, init: Option<String>) -> Self {
        Connector { options, init, deadline: None, losses: Arc::default() }
    }

    /// SQLite connections interrupt an operation that runs past `limit`.
    pub fn with_deadline(mut self, limit: Option<Duration>) -> Self {
        self.deadline = limit;
        self
    }
}

/// A pooled connection and what is known of its state.
pub struct Pooled<DB: Database> {
    conn: DB::Connection,
    /// The last operation ran to the end.
    settled: bool,
    /// A BEGIN may have reached the server and no COMMIT or ROLLBACK has
    /// been seen to finish.
    in_transaction: bool,
    /// The pool's loss count when this connection was last known good.
    vetted_at: u64,
    losses: Arc<AtomicU64>,
    /// SQLite with a statement timeout: when the running operation is to
    /// be interrupted, read by the connection's progress handler.
    deadline: Option<(Duration, Arc<super::deadline::Deadline>)>,
}

/// An error that can tell whether the connection it came from is gone.
pub trait ConnectionFailure {
    fn connection_lost(&self) -> bool;
}

impl ConnectionFailure for sqlx::Error {
    fn connection_lost(&self) -> bool {
        super::error::connection_lost(self)
    }
}

impl<DB> managed::Manager for Connector<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Type = Pooled<DB>;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Pooled<DB>, sqlx::Error> {
        let mut conn = self.options.connect().await?;
        if let Some(init) = &self.init {
            sqlx::raw_sql(sqlx::AssertSqlSafe(init.as_str())).execute(&mut conn).await?;
        }
        let deadline = match self.deadline {
            Some(limit) => Some((limit, super::deadline::install(&mut conn).await?)),
            None => None,
        };
        let losses = self.losses.clone();
        Ok(Pooled {
            conn,
            settled: true,
            in_transaction: false,
            vetted_at: losses.load(Ordering::Acquire),
            losses,
            deadline,
        })
    }

    async fn recycle(&self, pooled: &mut Pooled<DB>, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.age() > MAX_LIFETIME {
            return Err(RecycleError::message("connection reached its maximum lifetime"));
        }
        if pooled.in_transaction {
            // Normally rolled back as soon as its request let go of it (see
            // `db::Conn`); this is the backstop, so that no one inherits an
            // open transaction.
            pooled.end("ROLLBACK").await?;
        } else if !pooled.settled || pooled.vetted_at < self.losses.load(Ordering::Acquire) {
            let losses = self.losses.load(Ordering::Acquire);
            pooled.conn.ping().await?;
            pooled.settled = true;
            pooled.vetted_at = losses;
        }
        Ok(())
    }
}

impl<DB: Database> Pooled<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Opens a transaction with `begin` (BEGIN, or SQLite's BEGIN
    /// IMMEDIATE). Counted as open from before it is sent, so that one
    /// dropped midway is still rolled back.
    pub async fn begin(&mut self, begin: &'static str) -> Result<(), sqlx::Error> {
        self.in_transaction = true;
        self.run(|c| sqlx::raw_sql(sqlx::AssertSqlSafe(begin)).execute(c)).await.map(drop)
    }

    /// Ends the transaction, if one is open, with COMMIT or ROLLBACK. It
    /// counts as open until the server has answered.
    pub async fn end(&mut self, end: &'static str) -> Result<(), sqlx::Error> {
        if self.in_transaction {
            self.run(|c| sqlx::raw_sql(sqlx::AssertSqlSafe(end)).execute(c)).await?;
            self.in_transaction = false;
        }
        Ok(())
    }

    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Runs one operation on the connection. Until it succeeds the
    /// connection counts as unsettled, so that one dropped midway or left
    /// after an error is pinged (which also drains what is left of the
    /// exchange) before anyone uses it again. One that the server closed
    /// makes the pool vet all the others too.
    pub async fn run<'c, T, E, F>(&'c mut self, op: impl FnOnce(&'c mut DB::Connection) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'c,
        E: ConnectionFailure,
    {
        let Pooled { conn, settled, losses, deadline, .. } = self;
        *settled = false;
        let armed = deadline.as_ref().map(|(limit, d)| d.arm(*limit));
        let out = crate::timing::measured(op(conn)).await;
        if let Some(armed) = armed {
            armed.disarm();
        }
        *settled = out.is_ok();
        if out.as_ref().err().is_some_and(E::connection_lost) {
            losses.fetch_add(1, Ordering::AcqRel);
        }
        out
    }
}

/// Takes a connection, with the pool's failures as sqlx's own errors.
pub async fn lease<DB>(pool: &Pool<DB>) -> Result<Lease<DB>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    // Boxed: the pool's future holds room for opening a connection (sqlx's
    // connect), and every future that waits for a lease would carry it.
    Box::pin(pool.get()).await.map_err(|e| match e {
        PoolError::Backend(e) => e,
        PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
        PoolError::Closed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

/// A pool of at most `max` connections; waiting for one, opening one and
/// vetting one each give up after `acquire`.
pub fn build<DB>(connector: Connector<DB>, max: usize, acquire: Duration) -> Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    managed::Pool::builder(connector)
        .max_size(max.max(1))
        .wait_timeout(Some(acquire))
        .create_timeout(Some(acquire))
        .recycle_timeout(Some(acquire))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .expect("a runtime and timeouts are set")
}

/// Closes the pool: idle connections say goodbye to the server now (no
/// "unexpected EOF" in its log); leased ones are closed when returned.
pub async fn close<DB>(pool: &Pool<DB>)
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let idle = pool.retain(|_, _| false).removed;
    pool.close();
    for pooled in idle {
        let _ = pooled.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::Sqlite;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;

    fn one_connection() -> Pool<Sqlite> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        build(Connector::new(options, Some("CREATE TABLE t (x int)".into())), 1, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn only_an_unfinished_or_failed_operation_unsettles_a_connection() {
        let pool = one_connection();
        let mut conn = lease(&pool).await.unwrap();
        conn.run(|c| sqlx::query("INSERT INTO t VALUES (1)").execute(c)).await.unwrap();
        assert!(conn.settled);
        conn.run(|c| sqlx::query("SELECT * FROM no_such_table").execute(c)).await.unwrap_err();
        assert!(!conn.settled, "a failed statement leaves the connection to be vetted");
        conn.run(|c| sqlx::query("SELECT 1").execute(c)).await.unwrap();
        assert!(conn.settled);
        let stuck = conn.run(|_| std::future::pending::<Result<(), sqlx::Error>>());
        tokio::time::timeout(Duration::from_millis(20), stuck).await.unwrap_err();
        assert!(!conn.settled, "an operation dropped midway leaves the connection to be vetted");
        drop(conn);

        // The one connection comes back vetted, with what it held.
        let mut again = lease(&pool).await.unwrap();
        assert!(again.settled);
        let n: i64 = again.run(|c| sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(c)).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn no_one_inherits_an_open_transaction() {
        let pool = one_connection();
        let mut conn = lease(&pool).await.unwrap();
        conn.begin("BEGIN").await.unwrap();
        conn.run(|c| sqlx::query("INSERT INTO t VALUES (1)").execute(c)).await.unwrap();
        assert!(conn.in_transaction());
        drop(conn); // straight back to the pool, transaction open

        let mut next = lease(&pool).await.unwrap();
        assert!(!next.in_transaction());
        let n: i64 = next.run(|c| sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(c)).await.unwrap();
        assert_eq!(n, 0, "the abandoned insert was rolled back");
        next.begin("BEGIN").await.unwrap();
        next.run(|c| sqlx::query("INSERT INTO t VALUES (2)").execute(c)).await.unwrap();
        next.end("COMMIT").await.unwrap();
        assert!(!next.in_transaction());
    }

    #[tokio::test]
    async fn a_closed_pool_gives_no_connections() {
        let pool = one_connection();
        drop(lease(&pool).await.unwrap());
        close(&pool).await;
        assert!(matches!(lease(&pool).await, Err(sqlx::Error::PoolClosed)));
    }
}
