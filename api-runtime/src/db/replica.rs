//! A read replica (`--read-replica-url`): which of a request's reads it
//! serves, and how the runtime keeps track of whether it is fit to.
//!
//! GET reads of tables and functions take a [`Reads`] from [`route`]: the
//! replica while it is in use, else the primary. Writes, POST `/rpc`, schema
//! introspection and anything in a write's transaction use the primary
//! [`Db`] directly and never come here.
//!
//! A monitor asks both servers every second how far they are (PostgreSQL:
//! the primary's flushed WAL and the standby's replayed WAL; MariaDB: their
//! GTID positions and `Seconds_Behind_Master`). The replica is in use while
//! it answers, replicates, and lags less than `database.readReplica.
//! maxLagSeconds`; a read that finds it unreachable marks it out of use at
//! once and runs again on the primary.
//!
//! Read-your-writes: a write's answer carries the primary's position right
//! after its commit (`Dbapi-Consistency-Token`); a read sending it back is
//! served by the replica only once the monitor has seen the replica replay
//! that far.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use super::position::{BadPosition, LagTracker, Position, PositionKind};
use super::{ConnectError, Db, DbError, ReadOutput, Statement, Tx, pool};

/// The request and response header of read-your-writes.
pub const CONSISTENCY_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("dbapi-consistency-token");

/// How often the monitor looks at the replica.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A server that has not answered the monitor's question by then counts as
/// unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a read replica cannot be used at all; start-up stops with it.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("--read-replica-url / DBAPI_READ_REPLICA_URL: SQLite has no replicas; remove the read replica URL")]
    Sqlite,
    #[error(
        "--read-replica-url / DBAPI_READ_REPLICA_URL is a {replica} URL but the database is {primary}: \
         give a replica of the same database, on the same engine"
    )]
    OtherEngine { primary: &'static str, replica: &'static str },
    #[error(
        "--read-replica-url / DBAPI_READ_REPLICA_URL: read replicas of MySQL/MariaDB need MariaDB's GTIDs \
         (@@gtid_current_pos), which the primary does not have ({0}); MySQL replicas are not supported"
    )]
    NoGtid(String),
    #[error("--read-replica-url / DBAPI_READ_REPLICA_URL: {0}")]
    Connect(#[from] ConnectError),
}

/// The replica's connections and what the monitor last found.
pub struct Replica {
    db: Db,
    kind: PositionKind,
    health: Arc<Health>,
    monitor: AbortHandle,
}

/// What requests read of the monitor's findings.
struct Health {
    /// [`UNKNOWN`], [`IN_USE`] or [`NOT_IN_USE`].
    state: AtomicU8,
    /// The replica's replayed position at the last check.
    replayed: Mutex<Option<Position>>,
}

const UNKNOWN: u8 = 0;
const IN_USE: u8 = 1;
const NOT_IN_USE: u8 = 2;

impl Health {
    fn in_use(&self) -> bool {
        self.state.load(Ordering::Acquire) == IN_USE
    }

    /// Puts the replica in or out of use; a change is logged once and shown
    /// by the `dbapi_read_replica_in_use` gauge.
    fn set(&self, verdict: Result<(), String>) {
        let state = if verdict.is_ok() { IN_USE } else { NOT_IN_USE };
        if self.state.swap(state, Ordering::AcqRel) == state {
            return;
        }
        crate::metrics::global().read_replica_in_use(verdict.is_ok());
        match verdict {
            Ok(()) => tracing::info!("read replica in use: GET reads go to it"),
            Err(reason) => tracing::warn!(%reason, "read replica not in use: reads go to the primary"),
        }
    }
}

impl Replica {
    /// Checks that `replica` can serve `primary`'s reads, looks at it once
    /// (it may be down: reads then go to the primary until it is up) and
    /// starts the monitor.
    pub async fn start(primary: &Db, replica: Db, max_lag: Duration) -> Result<Replica, ReplicaError> {
        let kind = match (primary, &replica) {
            (Db::Sqlite(_), _) => return Err(ReplicaError::Sqlite),
            (Db::Postgres(..), Db::Postgres(..)) => PositionKind::Lsn,
            (Db::MySql(_), Db::MySql(_)) => PositionKind::Gtid,
            (p, r) => return Err(ReplicaError::OtherEngine { primary: p.engine_name(), replica: r.engine_name() }),
        };
        if kind == PositionKind::Gtid {
            primary_position(primary).await.map_err(|e| ReplicaError::NoGtid(e.to_string()))?;
        }
        let health = Arc::new(Health { state: AtomicU8::new(UNKNOWN), replayed: Mutex::new(None) });
        let mut monitor =
            Monitor { primary: primary.clone(), replica: replica.clone(), max_lag, lag: LagTracker::default() };
        monitor.check(&health).await;
        let watched = health.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                monitor.check(&watched).await;
            }
        });
        Ok(Replica { db: replica, kind, health, monitor: task.abort_handle() })
    }

    /// Whether a read carrying `token` (if any) may be served here now.
    fn serves(&self, token: Option<&Position>) -> bool {
        if !self.health.in_use() {
            return false;
        }
        let Some(token) = token else { return true };
        self.health.replayed.lock().expect("not poisoned").as_ref().is_some_and(|done| token.reached_by(done))
    }

    /// A read failed here in a way the primary may not: out of use until
    /// the monitor finds it well again.
    fn failed(&self, error: &DbError) {
        self.health.set(Err(format!("a read failed on it: {error}")));
    }

    /// Forgets prepared statements (the schema changed).
    pub fn forget_statements(&self) {
        self.db.forget_statements();
    }

    /// Stops the monitor and closes the connections (on shutdown).
    pub async fn close(&self) {
        self.monitor.abort();
        self.db.close().await;
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

/// Where one request's reads go: the replica, falling back to the primary
/// when the replica cannot be reached, or the primary alone.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    primary: &'a Db,
    replica: Option<&'a Replica>,
}

/// The consistency token of a request is not a position of the engine.
pub type BadToken = BadPosition;

/// Where the reads of a request carrying `token` (the header's text) go.
/// Without a replica every read goes to the primary and the header is not
/// looked at.
pub fn route<'a>(primary: &'a Db, replica: Option<&'a Replica>, token: Option<&str>) -> Result<Reads<'a>, BadToken> {
    let Some(replica) = replica else { return Ok(Reads { primary, replica: None }) };
    let token = token.map(|t| Position::parse(replica.kind, t)).transpose()?;
    Ok(Reads { primary, replica: replica.serves(token.as_ref()).then_some(replica) })
}

impl<'a> Reads<'a> {
    /// The same request's reads, on the primary whatever its token.
    pub fn primary_only(self) -> Reads<'a> {
        Reads { primary: self.primary, replica: None }
    }

    pub async fn fetch_read(&self, stmt: &Statement) -> Result<ReadOutput, DbError> {
        self.run(|db| db.fetch_read(stmt)).await
    }

    pub async fn fetch_i64(&self, stmt: &Statement) -> Result<Option<i64>, DbError> {
        self.run(|db| db.fetch_i64(stmt)).await
    }

    pub async fn fetch_text(&self, stmt: &Statement) -> Result<Option<String>, DbError> {
        self.run(|db| db.fetch_text(stmt)).await
    }

    /// A transaction for reads (a time zone set first, a function called
    /// by GET); one that cannot begin on the replica begins on the primary.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        self.run(|db| db.begin()).await
    }

    /// A connection for one read statement, without a transaction unless
    /// the request's PostgreSQL settings need one (see [`Db::autocommit`]):
    /// a streamed read, which holds it for as long as its rows flow.
    pub async fn autocommit(&self) -> Result<Tx, DbError> {
        self.run(|db| db.autocommit()).await
    }

    /// [`Reads::begin`] in a transaction that may not write.
    pub async fn begin_read_only(&self) -> Result<Tx, DbError> {
        self.run(|db| db.begin_read_only()).await
    }

    /// `op` on the replica, and once more on the primary when the replica
    /// failed where the primary may not: it was unreachable (the read was
    /// already run again there once, see `read_once_more`), or it
    /// cancelled the read for a conflict with replaying the primary's
    /// changes (40001).
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, DbError>
    where
        F: Fn(&'a Db) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let Some(replica) = self.replica else { return op(self.primary).await };
        match op(&replica.db).await {
            Err(e @ (DbError::Unavailable(_) | DbError::Lost(_))) => {
                replica.failed(&e);
                op(self.primary).await
            }
            Err(DbError::Rejected { code, message, .. }) if code == "40001" => {
                tracing::info!(%message, "a read was cancelled on the replica; running it on the primary");
                op(self.primary).await
            }
            other => other,
        }
    }
}

impl Tx {
    /// [`Tx::finish`], then, when `with_token` and the effect was kept, the
    /// primary's position right after the commit, read on this connection:
    /// the consistency token of read-your-writes.
    pub async fn finish_with_token(mut self, keep: bool, with_token: bool) -> Result<Option<Position>, DbError> {
        if !(keep && with_token) {
            self.finish(keep).await?;
            return Ok(None);
        }
        match &mut self {
            Tx::Postgres(t) => t.pooled().end("COMMIT").await,
            Tx::MySql(t) => t.pooled().end("COMMIT").await,
            Tx::Sqlite(t) => t.pooled().end("COMMIT").await,
        }?;
        Ok(position_after_commit(&mut self).await)
    }
}

/// The primary's position right after a commit, read on the committing
/// connection: what a replica must have replayed to show that write.
/// PostgreSQL's insert position is at or past the end of the commit record
/// even when the commit is asynchronous (see [`record_end`]); MariaDB's
/// `@@gtid_current_pos` holds the write's GTID. `None` (and a warning) when
/// the server cannot tell: the write is committed whatever happens here.
pub(super) async fn position_after_commit(tx: &mut Tx) -> Option<Position> {
    let sql = match tx {
        Tx::Postgres(_) => {
            "SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size'), \
             current_setting('wal_segment_size')"
        }
        Tx::MySql(_) => "SELECT @@gtid_current_pos",
        Tx::Sqlite(_) => return None,
    };
    let stmt = Statement { sql: sql.into(), ..Statement::default() };
    let row = match tx.fetch_text_rows(&stmt).await {
        Ok(rows) => rows.into_iter().next().unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the primary's position after a write; no consistency token");
            return None;
        }
    };
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    match tx {
        Tx::Postgres(_) => {
            let Ok(Position::Lsn(insert)) = Position::parse(PositionKind::Lsn, &text(0)) else { return None };
            Some(Position::Lsn(record_end(insert, setting_bytes(&text(1)), setting_bytes(&text(2)))))
        }
        // MariaDB without a binary log has no GTIDs: nothing to wait for.
        _ => Some(text(0)).filter(|t| !t.trim().is_empty()).and_then(|t| Position::parse(PositionKind::Gtid, &t).ok()),
    }
}

/// The end of the last WAL record, from PostgreSQL's insert position: the
/// same, except on a fresh page, where the insert position is past the
/// page's header (24 bytes, 40 on a segment's first page) while a standby's
/// replay position stops at the page boundary; a token there would never
/// be reached on an idle primary. `block` and `segment` are the WAL's page
/// and segment sizes (0 when unknown: then nothing is taken off, which is
/// only ever late, never early).
fn record_end(insert: u64, block: u64, segment: u64) -> u64 {
    const SHORT_PAGE_HEADER: u64 = 24;
    const LONG_PAGE_HEADER: u64 = 40;
    if segment > 0 && insert % segment == LONG_PAGE_HEADER {
        insert - LONG_PAGE_HEADER
    } else if block > 0 && insert % block == SHORT_PAGE_HEADER {
        insert - SHORT_PAGE_HEADER
    } else {
        insert
    }
}

/// A PostgreSQL size setting (`8192`, `16MB`) in bytes; 0 when unreadable.
fn setting_bytes(text: &str) -> u64 {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let unit = match &text[digits..] {
        "" | "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return 0,
    };
    text[..digits].parse::<u64>().map_or(0, |n| n * unit)
}

/// The monitor's state: both servers and the primary's recent positions.
struct Monitor {
    primary: Db,
    replica: Db,
    max_lag: Duration,
    lag: LagTracker,
}

/// What the replica says of itself.
struct ReplicaView {
    replayed: Position,
    /// MariaDB's own estimate (`Seconds_Behind_Master`).
    reported_lag: Option<Duration>,
}

impl Monitor {
    /// Asks the primary, then the replica, and puts the replica in or out
    /// of use. The primary first: a replica that keeps up has then replayed
    /// at least what the primary said.
    async fn check(&mut self, health: &Health) {
        match tokio::time::timeout(CHECK_TIMEOUT, primary_position(&self.primary)).await {
            Ok(Ok(at)) => self.lag.primary_at(at, Instant::now()),
            // The replica is judged on what is known; reads that would go to
            // an unreachable primary are better served by the replica.
            Ok(Err(e)) => tracing::debug!(error = %e, "the read replica monitor could not ask the primary"),
            Err(_) => tracing::debug!("the primary did not tell its position in time"),
        }
        let view = match tokio::time::timeout(CHECK_TIMEOUT, replica_view(&self.replica)).await {
            Ok(Ok(view)) => view,
            Ok(Err(reason)) => return health.set(Err(reason)),
            Err(_) => return health.set(Err(format!("it did not answer within {CHECK_TIMEOUT:?}"))),
        };
        let lag = self.lag.lag(&view.replayed, Instant::now()).max(view.reported_lag.unwrap_or_default());
        *health.replayed.lock().expect("not poisoned") = Some(view.replayed);
        if lag > self.max_lag {
            return health.set(Err(format!(
                "it is {}s behind the primary, more than database.readReplica.maxLagSeconds ({}s)",
                lag.as_secs(),
                self.max_lag.as_secs()
            )));
        }
        health.set(Ok(()));
    }
}

/// The primary's position: PostgreSQL's flushed WAL (what a standby can
/// have received), MariaDB's GTID position.
async fn primary_position(primary: &Db) -> Result<Position, DbError> {
    let (sql, kind) = match primary {
        Db::Postgres(..) => ("SELECT pg_current_wal_flush_lsn()::text", PositionKind::Lsn),
        Db::MySql(_) => ("SELECT @@gtid_current_pos", PositionKind::Gtid),
        Db::Sqlite(_) => return Err(DbError::Other("SQLite has no replication position".into())),
    };
    let text = first_text(primary, sql).await?.unwrap_or_default();
    if kind == PositionKind::Gtid && text.trim().is_empty() {
        // No binary log yet, or none at all: the start of history.
        return Ok(Position::Gtid(Vec::new()));
    }
    Position::parse(kind, &text).map_err(|e| DbError::Other(e.to_string()))
}

/// The replica's replayed position, or why it cannot serve reads.
async fn replica_view(replica: &Db) -> Result<ReplicaView, String> {
    let unreachable = |e: DbError| format!("it cannot be reached: {e}");
    match replica {
        Db::Postgres(..) => {
            let sql = "SELECT pg_is_in_recovery()::text, pg_last_wal_replay_lsn()::text";
            let mut tx = replica.autocommit().await.map_err(unreachable)?;
            let stmt = Statement { sql: sql.into(), ..Statement::default() };
            let row = tx.fetch_text_rows(&stmt).await.map_err(unreachable)?.into_iter().next().unwrap_or_default();
            let (Some(Some(recovering)), Some(replayed)) = (row.first(), row.get(1)) else {
                return Err("it did not say whether it is a standby".into());
            };
            if recovering != "true" {
                return Err("it is not a standby (pg_is_in_recovery() is false): it may have been promoted".into());
            }
            let replayed = replayed.as_deref().ok_or("it has replayed no WAL yet")?;
            let replayed = Position::parse(PositionKind::Lsn, replayed).map_err(|e| e.to_string())?;
            Ok(ReplicaView { replayed, reported_lag: None })
        }
        Db::MySql(pool) => {
            let mut conn = pool::lease(pool).await.map_err(|e| unreachable(DbError::from(e)))?;
            let status = conn
                .run(|c| sqlx::raw_sql("SHOW SLAVE STATUS").fetch_optional(c))
                .await
                .map_err(|e| unreachable(e.into()))?
                .ok_or("it is not a replica (SHOW SLAVE STATUS is empty)")?;
            let column = |name: &str| {
                let bytes: Option<Vec<u8>> = sqlx::Row::try_get_unchecked(&status, name).ok().flatten();
                bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            let seconds = column("Seconds_Behind_Master").and_then(|s| s.trim().parse::<u64>().ok());
            let Some(seconds) = seconds else {
                let io = column("Slave_IO_Running").unwrap_or_default();
                let sql = column("Slave_SQL_Running").unwrap_or_default();
                return Err(format!("it is not replicating (Slave_IO_Running: {io}, Slave_SQL_Running: {sql})"));
            };
            drop(conn);
            let text = first_text(replica, "SELECT @@gtid_slave_pos").await.map_err(unreachable)?.unwrap_or_default();
            let replayed = if text.trim().is_empty() {
                Position::Gtid(Vec::new())
            } else {
                Position::parse(PositionKind::Gtid, &text).map_err(|e| e.to_string())?
            };
            Ok(ReplicaView { replayed, reported_lag: Some(Duration::from_secs(seconds)) })
        }
        Db::Sqlite(_) => Err("SQLite has no replicas".into()),
    }
}

/// The first column of the first row of `sql`, as text, in autocommit.
async fn first_text(db: &Db, sql: &str) -> Result<Option<String>, DbError> {
    let stmt = Statement { sql: sql.into(), ..Statement::default() };
    let rows = db.autocommit().await?.fetch_text_rows(&stmt).await?;
    Ok(rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_on_a_fresh_page_is_the_page_boundary() {
        let (block, segment) = (8192, 16 << 20);
        assert_eq!(setting_bytes("8192"), block);
        assert_eq!(setting_bytes("16MB"), segment);
        assert_eq!(setting_bytes("1GB"), 1 << 30);
        assert_eq!(setting_bytes("64kB"), 64 << 10);
        assert_eq!(setting_bytes("lots"), 0);
        // As seen on an idle PostgreSQL 15: insert 0/3000028, flush 0/3000000.
        assert_eq!(record_end(0x300_0028, block, segment), 0x300_0000);
        assert_eq!(record_end(0x300_2018, block, segment), 0x300_2000);
        // Mid-page positions are record ends already; so is offset 40 on a
        // page that does not start a segment (a short continuation).
        assert_eq!(record_end(0x300_2030, block, segment), 0x300_2030);
        assert_eq!(record_end(0x300_2028, block, segment), 0x300_2028);
        assert_eq!(record_end(0x300_2018, 0, 0), 0x300_2018, "unknown sizes: nothing taken off");
    }
}
