//! PostgreSQL reads pipelined on a few shared connections.
//!
//! A pooled connection carries one request's statement at a time: one
//! write to the socket and one wake-up per request on each side, which on a
//! machine shared with the database costs more CPU than the query itself.
//! Here each connection is shared by every read that picks it: the queries
//! waiting for it go out in one write and PostgreSQL answers them in a row,
//! so both sides pay the socket and scheduling costs once per batch
//! (tokio-postgres pipelines this way by itself). bench/README.md has the
//! figures.
//!
//! Only statements that are whole requests by themselves go here: reads in
//! autocommit, whose results depend on nothing but their text and values.
//! Writes and transactions keep a pooled connection of their own.
//!
//! A read picks the connection with the fewest reads in flight, so one slow
//! read holds up only those that were queued behind it before it was
//! known to be slow; `readConnections` in the configuration sets how many
//! connections there are.
//!
//! A connection found closed by the server (a restart, a failover,
//! `pg_terminate_backend`) is replaced, and its siblings are pinged before
//! their next read, since whatever closed one has likely closed them all.
//! The read that found it is run again by [`super::Db`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::sync::Semaphore;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Row};

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use super::session::Session;
use super::{DbError, Param, ReadOutput, Statement};

/// Reads in flight on one connection beyond which others wait for a
/// place: a bound on the memory a stalled database can make requests hold.
const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

/// Prepared statements kept per connection; past this the cache starts
/// again (a schema with more distinct reads than this is rare).
const MAX_PREPARED: usize = 512;

/// Pipelined connections for PostgreSQL reads. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    config: tokio_postgres::Config,
    slots: Vec<Slot>,
    /// Places for reads in flight across all connections.
    places: Semaphore,
    acquire_timeout: Duration,
    /// How many connections were found closed by the server; one vetted
    /// before the latest loss is pinged before its next read.
    losses: AtomicU64,
}

/// One connection, opened when first needed and again when it is lost or
/// too old.
struct Slot {
    current: Mutex<Option<Arc<Shared>>>,
    /// Held while (re)connecting, so that one connection is opened at a
    /// time per slot.
    connecting: tokio::sync::Mutex<()>,
    in_flight: AtomicUsize,
}

struct Shared {
    client: Client,
    opened: Instant,
    /// `losses` when this connection was opened or last answered a ping.
    vetted_at: AtomicU64,
    /// SQL text -> its statements, one per list of parameter types (the
    /// same text may be bound with values of other types).
    /// Looked up for every statement run, by its whole text: a fast hash.
    prepared: Mutex<HashMap<String, Vec<Prepared>, foldhash::fast::RandomState>>,
    /// Reads send their messages under the shared side; a request with
    /// settings sends its transaction under the exclusive side, so no other
    /// read's messages fall inside it.
    send_order: tokio::sync::RwLock<()>,
}

/// A statement prepared for values of these types.
type Prepared = (Vec<Type>, tokio_postgres::Statement);

impl Pipeline {
    /// The pipeline for what `options` (the pool's PostgreSQL options)
    /// connects to; `None` when they ask for TLS, which the runtime is not
    /// built with (the pool then reports the error).
    pub fn new(options: &PgConnectOptions, url: &str, connections: usize, acquire_timeout: Duration) -> Option<Self> {
        if matches!(options.get_ssl_mode(), PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull) {
            return None;
        }
        let mut config = tokio_postgres::Config::new();
        match options.get_socket() {
            Some(dir) => config.host_path(dir),
            None => config.host(options.get_host()),
        };
        config
            .port(options.get_port())
            .user(options.get_username())
            .application_name(options.get_application_name().unwrap_or("dbapi"))
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .connect_timeout(acquire_timeout);
        if let Some(database) = options.get_database() {
            config.dbname(database);
        }
        if let Some(session_options) = options.get_options() {
            config.options(session_options);
        }
        // sqlx keeps the password to itself: read it where sqlx does.
        let password = url::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
            })
            .or_else(|| std::env::var("PGPASSWORD").ok());
        if let Some(password) = password {
            config.password(password);
        }
        let slots = (0..connections.max(1))
            .map(|_| Slot {
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                in_flight: AtomicUsize::new(0),
            })
            .collect::<Vec<_>>();
        let places = Semaphore::new(slots.len() * MAX_IN_FLIGHT_PER_CONNECTION);
        Some(Pipeline { inner: Arc::new(Inner { config, slots, places, acquire_timeout, losses: AtomicU64::new(0) }) })
    }

    /// Opens the first connection, so that start-up fails clearly.
    pub async fn check(&self) -> Result<(), tokio_postgres::Error> {
        self.inner.slots[0].connection(&self.inner).await.map(drop)
    }

    /// Runs a read statement whose single row is (body, page_rows, total),
    /// with the request's `session` settings when it has some.
    pub async fn fetch_read(&self, stmt: &Statement, session: Option<&Session>) -> Result<ReadOutput, DbError> {
        let row =
            self.query_opt(stmt, session).await?.ok_or_else(|| DbError::Other("a read returned no row".into()))?;
        Ok(ReadOutput {
            body: row.try_get::<_, Option<AnyText>>(0).map_err(other)?.map_or_else(|| "[]".into(), |t| t.0),
            page_rows: row.try_get::<_, Option<AnyInt>>(1).map_err(other)?.map_or(0, |n| n.0),
            total: row.try_get::<_, Option<AnyInt>>(2).map_err(other)?.map(|n| n.0),
        })
    }

    /// The first column of the first row as an integer.
    pub async fn fetch_i64(&self, stmt: &Statement, session: Option<&Session>) -> Result<Option<i64>, DbError> {
        let Some(row) = self.query_opt(stmt, session).await? else { return Ok(None) };
        Ok(row.try_get::<_, Option<AnyInt>>(0).map_err(other)?.map(|n| n.0))
    }

    /// The first column of the first row as text.
    pub async fn fetch_text(&self, stmt: &Statement, session: Option<&Session>) -> Result<Option<String>, DbError> {
        let Some(row) = self.query_opt(stmt, session).await? else { return Ok(None) };
        Ok(row.try_get::<_, Option<AnyText>>(0).map_err(other)?.map(|t| t.0))
    }

    /// Forgets every prepared statement (the schema changed); connections
    /// stay open.
    pub fn forget_statements(&self) {
        for slot in &self.inner.slots {
            if let Some(shared) = slot.current.lock().expect("not poisoned").as_ref() {
                shared.prepared.lock().expect("not poisoned").clear();
            }
        }
    }

    /// Closes every connection (on shutdown); reads still in flight finish.
    pub fn close(&self) {
        self.inner.places.close();
        for slot in &self.inner.slots {
            slot.current.lock().expect("not poisoned").take();
        }
    }

    /// Boxed: the exchange's future would otherwise be part of every future
    /// that awaits it, up to the request handler's, and be copied each time
    /// one of them is moved or boxed. Its own rare paths (connecting,
    /// preparing, a session's transaction) are boxed apart, so that what is
    /// copied here is the hot path only (~9 KB before, ~0.3 KB now).
    async fn query_opt(&self, stmt: &Statement, session: Option<&Session>) -> Result<Option<Row>, DbError> {
        crate::timing::measured(Box::pin(self.query_opt_untimed(stmt, session))).await
    }

    async fn query_opt_untimed(&self, stmt: &Statement, session: Option<&Session>) -> Result<Option<Row>, DbError> {
        self.on_a_connection(|shared| async move {
            match session {
                None => shared.query(stmt).await.map(|rows| rows.into_iter().next()),
                // Boxed: four exchanges side by side.
                Some(session) => Box::pin(shared.query_opt_in_session(session, stmt)).await,
            }
        })
        .await
    }

    /// The rows of a write that is a whole request by itself (a one-row
    /// INSERT … RETURNING in autocommit: its own implicit transaction,
    /// committed when it ends), each column as text. Unlike a read it is
    /// never run again on another connection: the lost one may have
    /// written it.
    pub async fn write(&self, stmt: &Statement) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let rows =
            crate::timing::measured(self.on_a_connection(|shared| async move { shared.query(stmt).await })).await?;
        let text = |row: &Row, i| row.try_get::<_, Option<AnyText>>(i).map(|t| t.map(|t| t.0)).map_err(other);
        rows.iter().map(|row| (0..row.len()).map(|i| text(row, i)).collect()).collect()
    }

    /// Runs `run` on the connection with the fewest statements in flight,
    /// within the bound on them; a connection found closed is replaced.
    async fn on_a_connection<T, Fut>(&self, run: impl FnOnce(Arc<Shared>) -> Fut) -> Result<T, DbError>
    where
        Fut: Future<Output = Result<T, DbError>>,
    {
        let inner = &self.inner;
        let _place = tokio::time::timeout(inner.acquire_timeout, inner.places.acquire())
            .await
            .map_err(|_| DbError::Unavailable("timed out waiting for a place on a database connection".into()))?
            .map_err(|_| DbError::Unavailable("the database connections are closed".into()))?;
        // The connection with the fewest reads in flight.
        let slot = inner.slots.iter().min_by_key(|s| s.in_flight.load(Ordering::Relaxed)).expect("at least one");
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(slot);
        let shared = slot.connection(inner).await.map_err(unavailable)?;
        let result = run(shared.clone()).await;
        if let Err(DbError::Lost(reason)) = &result {
            tracing::warn!(%reason, "a pipelined database connection was closed; replacing it and checking the others");
            slot.discard(&shared);
            inner.losses.fetch_add(1, Ordering::AcqRel);
        }
        result
    }
}

/// Polls `future` once and says what it gave.
async fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    let mut future = future;
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// The output of a future polled once already (`first`).
async fn finish<T, E, F: Future<Output = Result<T, E>>>(
    future: Pin<&mut F>,
    first: Poll<Result<T, E>>,
) -> Result<T, DbError>
where
    DbError: From<E>,
{
    match first {
        Poll::Ready(result) => result.map_err(DbError::from),
        Poll::Pending => future.await.map_err(DbError::from),
    }
}

/// Counts a read in flight on its connection until dropped.
struct InFlight<'a>(&'a Slot);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slot {
    /// The open connection, opening one if there is none, it was lost or it
    /// outlived [`super::pool::MAX_LIFETIME`], and pinging it first when a
    /// sibling was found closed since it was last known good.
    async fn connection(&self, inner: &Inner) -> Result<Arc<Shared>, tokio_postgres::Error> {
        let vetted = |s: &Shared| s.vetted_at.load(Ordering::Acquire) >= inner.losses.load(Ordering::Acquire);
        if let Some(shared) = self.live().filter(|s| vetted(s)) {
            return Ok(shared);
        }
        // Boxed: connecting is a large future, and rare.
        Box::pin(self.reconnect(inner)).await
    }

    /// [`Slot::connection`]'s slow path: vets the connection after a
    /// sibling's loss, or opens a new one.
    async fn reconnect(&self, inner: &Inner) -> Result<Arc<Shared>, tokio_postgres::Error> {
        let vetted = |s: &Shared| s.vetted_at.load(Ordering::Acquire) >= inner.losses.load(Ordering::Acquire);
        let _connecting = self.connecting.lock().await;
        if let Some(shared) = self.live() {
            if vetted(&shared) {
                return Ok(shared); // another read opened or vetted it meanwhile
            }
            let losses = inner.losses.load(Ordering::Acquire);
            if shared.client.simple_query("").await.is_ok() {
                shared.vetted_at.store(losses, Ordering::Release);
                return Ok(shared);
            }
            self.discard(&shared);
        }
        let vetted_at = AtomicU64::new(inner.losses.load(Ordering::Acquire));
        let (client, connection) = inner.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "pipelined database connection ended");
            }
        });
        let shared = Arc::new(Shared {
            client,
            opened: Instant::now(),
            vetted_at,
            prepared: Mutex::default(),
            send_order: tokio::sync::RwLock::new(()),
        });
        *self.current.lock().expect("not poisoned") = Some(shared.clone());
        Ok(shared)
    }

    /// Forgets `shared` if it is still this slot's connection, so that the
    /// next read opens another.
    fn discard(&self, shared: &Arc<Shared>) {
        let mut current = self.current.lock().expect("not poisoned");
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, shared)) {
            current.take();
        }
    }

    fn live(&self) -> Option<Arc<Shared>> {
        let current = self.current.lock().expect("not poisoned");
        current.as_ref().filter(|s| !s.client.is_closed() && s.opened.elapsed() < super::pool::MAX_LIFETIME).cloned()
    }
}

impl Shared {
    /// One statement on its own (a read, or a write in autocommit). Its
    /// messages go out under the shared side of `send_order`, so none lands
    /// inside another request's transaction.
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>, DbError> {
        let prepared = self.prepare(stmt).await?;
        let params: Vec<&(dyn ToSql + Sync)> = stmt.params.iter().map(|p| p as _).collect();
        let mut sent = pin!(self.client.query(&prepared, &params));
        // tokio-postgres sends a query's messages when it is first polled.
        let first = {
            let _order = self.send_order.read().await;
            poll_once(sent.as_mut()).await
        };
        finish(sent, first).await
    }

    /// `BEGIN; set the request's settings; the read; COMMIT`, sent back to
    /// back under the exclusive side of `send_order`: the connection runs
    /// them in a row, and the other reads it carries are pipelined before
    /// and after.
    async fn query_opt_in_session(&self, session: &Session, stmt: &Statement) -> Result<Option<Row>, DbError> {
        let settings = session.statement();
        let set = self.prepare(&settings).await?;
        let prepared = self.prepare(stmt).await?;
        let set_params: Vec<&(dyn ToSql + Sync)> = settings.params.iter().map(|p| p as _).collect();
        let params: Vec<&(dyn ToSql + Sync)> = stmt.params.iter().map(|p| p as _).collect();
        let mut begin = pin!(self.client.batch_execute("BEGIN"));
        let mut set = pin!(self.client.query(&set, &set_params));
        let mut read = pin!(self.client.query_opt(&prepared, &params));
        let mut commit = pin!(self.client.batch_execute("COMMIT"));
        let firsts = {
            let _order = self.send_order.write().await;
            (
                poll_once(begin.as_mut()).await,
                poll_once(set.as_mut()).await,
                poll_once(read.as_mut()).await,
                poll_once(commit.as_mut()).await,
            )
        };
        let begun = finish(begin, firsts.0).await;
        let set = finish(set, firsts.1).await;
        let read = finish(read, firsts.2).await;
        let committed = finish(commit, firsts.3).await;
        begun?;
        set?;
        let row = read?;
        committed?;
        Ok(row)
    }

    async fn prepare(&self, stmt: &Statement) -> Result<tokio_postgres::Statement, DbError> {
        let types = || stmt.params.iter().map(Param::pg_type);
        if let Some(found) =
            self.prepared.lock().expect("not poisoned").get(&stmt.sql).and_then(|variants| {
                variants.iter().find(|(t, _)| t.iter().cloned().eq(types())).map(|(_, s)| s.clone())
            })
        {
            return Ok(found);
        }
        let types: Vec<Type> = types().collect();
        // Boxed, as every path taken once per connection and statement:
        // tokio-postgres' prepare is a large future, and the hot path
        // would carry its room.
        let prepared = Box::pin(self.client.prepare_typed(&stmt.sql, &types)).await.map_err(DbError::from)?;
        let mut cache = self.prepared.lock().expect("not poisoned");
        if cache.len() >= MAX_PREPARED {
            cache.clear();
        }
        cache.entry(stmt.sql.clone()).or_default().push((types, prepared.clone()));
        Ok(prepared)
    }
}

impl Param {
    /// The type a value is declared with, as the pool's driver declares it;
    /// the statement casts it to the column's type.
    fn pg_type(&self) -> Type {
        match self {
            Param::Text(_) | Param::Null => Type::TEXT,
            Param::Int(_) => Type::INT8,
            Param::Float(_) => Type::FLOAT8,
        }
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(t) => t.as_str().to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
            Param::Float(f) => f.to_sql(ty, out),
            Param::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::INT8 | Type::FLOAT8)
    }

    to_sql_checked!();
}

/// A text-like column (text, json, jsonb, the plan of EXPLAIN) as text.
struct AnyText(String);

impl<'a> FromSql<'a> for AnyText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte before the text.
        let raw = if *ty == Type::JSONB { raw.get(1..).unwrap_or_default() } else { raw };
        Ok(AnyText(String::from_utf8(raw.to_vec())?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::VARCHAR | Type::JSON | Type::JSONB | Type::UNKNOWN)
    }
}

/// An integer column of any width; a bare `NULL` (typed text) reads as
/// none.
struct AnyInt(i64);

impl<'a> FromSql<'a> for AnyInt {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyInt(match *ty {
            Type::INT2 => i16::from_sql(ty, raw)?.into(),
            Type::INT4 => i32::from_sql(ty, raw)?.into(),
            Type::INT8 => i64::from_sql(ty, raw)?,
            _ => std::str::from_utf8(raw)?.trim().parse()?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8 | Type::TEXT | Type::UNKNOWN)
    }
}

fn unavailable(e: tokio_postgres::Error) -> DbError {
    DbError::Unavailable(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
}

fn other(e: tokio_postgres::Error) -> DbError {
    DbError::Other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_decode_whatever_their_type() {
        let text = |ty: &Type, raw: &[u8]| AnyText::from_sql(ty, raw).map(|t| t.0).unwrap();
        assert_eq!(text(&Type::TEXT, b"[1]"), "[1]");
        assert_eq!(text(&Type::JSON, br#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(text(&Type::JSONB, b"\x01{\"a\": 1}"), r#"{"a": 1}"#, "jsonb's version byte is dropped");
        assert!(AnyText::from_sql(&Type::TEXT, b"\xff").is_err(), "not UTF-8: an error, not a lossy body");
        assert!(!<AnyText as FromSql>::accepts(&Type::BOOL));
    }

    #[test]
    fn integer_columns_decode_from_any_width_and_from_a_bare_null() {
        let int = |ty: &Type, raw: &[u8]| AnyInt::from_sql(ty, raw).map(|n| n.0).unwrap();
        assert_eq!(int(&Type::INT2, &7i16.to_be_bytes()), 7);
        assert_eq!(int(&Type::INT4, &(-3i32).to_be_bytes()), -3);
        assert_eq!(int(&Type::INT8, &(1i64 << 40).to_be_bytes()), 1 << 40);
        assert_eq!(int(&Type::TEXT, b"42"), 42);
        // `NULL` in a select list is typed text; its value is no value.
        assert!(<Option<AnyInt> as FromSql>::from_sql_null(&Type::TEXT).unwrap().is_none());
        assert!(!<AnyInt as FromSql>::accepts(&Type::FLOAT8));
    }

    #[test]
    fn values_are_declared_as_the_pool_declares_them() {
        let types: Vec<Type> = [Param::Text("a".into()), Param::Int(1), Param::Float(0.5), Param::Null]
            .iter()
            .map(Param::pg_type)
            .collect();
        assert_eq!(types, [Type::TEXT, Type::INT8, Type::FLOAT8, Type::TEXT]);
        let mut out = BytesMut::new();
        assert!(matches!(Param::Null.to_sql(&Type::TEXT, &mut out), Ok(IsNull::Yes)));
        assert!(matches!(Param::Int(5).to_sql(&Type::INT8, &mut out), Ok(IsNull::No)));
        assert_eq!(&out[..], &5i64.to_be_bytes());
    }
}
