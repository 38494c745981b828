//! Connection pools and statement execution for the three engines: the
//! bottom of the pipeline, which knows nothing of schemas or grammar.
//!
//! The `sql` module produces a [`Statement`] whose text holds only quoted
//! identifiers from the introspected schema and placeholders; values travel
//! as bound parameters. This is the one place that turns such text into a
//! query, which is why it is the one place that asserts it is safe.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use dbapi_crds::config::PoolSettings;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Database, Executor, MySql, Postgres, Row, Sqlite};

pub mod circuit;
mod deadline;
mod error;
pub mod pipeline;
pub mod pool;
pub mod position;
pub mod replica;
pub mod session;
pub use error::DbError;
use pipeline::Pipeline;
use pool::{Connector, Lease, Pool};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

/// A statement ready to run: SQL text and its bound values, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    /// Run unprepared: planned for these very values each time. For
    /// statements whose best plan depends on a long list of values (reading
    /// back written rows by key), where a cached generic plan would scan.
    pub one_off: bool,
}

/// What a read statement returns: the JSON body the database built, the
/// number of rows in it, and the total count when one was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutput {
    pub body: String,
    pub page_rows: i64,
    pub total: Option<i64>,
}

#[derive(Clone)]
pub enum Db {
    /// The pool, and the pipelined connections that carry reads (none when
    /// `readConnections` is 0).
    Postgres(Pool<Postgres>, Option<Pipeline>),
    MySql(Pool<MySql>),
    Sqlite(Pool<Sqlite>),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL scheme {0:?}: use postgres://, mysql:// (also for MariaDB) or sqlite://")]
    UnsupportedScheme(String),
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("could not connect to the database at {target}: {source}")]
    Unreachable { target: String, source: Box<dyn std::error::Error + Send + Sync> },
}

/// `"api", "public"`: the exposed schemas, quoted, then `public`; `None`
/// when that is what PostgreSQL's default path already finds.
fn search_path(schemas: &[String]) -> Option<String> {
    if schemas.is_empty() || schemas == ["public"] {
        return None;
    }
    let mut path: Vec<&str> = schemas.iter().map(String::as_str).collect();
    if !path.contains(&"public") {
        path.push("public");
    }
    let quoted: Vec<String> = path.iter().map(|s| format!("\"{}\"", s.replace('"', "\"\""))).collect();
    Some(quoted.join(", "))
}

/// The URL with any password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The same code for each engine: `$x` is the engine's pool (or
/// connection), typed by its engine in each arm.
macro_rules! per_engine {
    ($value:expr, $Enum:ident, $x:ident => $body:expr) => {
        match $value {
            $Enum::Postgres($x, ..) => $body,
            $Enum::MySql($x) => $body,
            $Enum::Sqlite($x) => $body,
        }
    };
}

// After the macro, which it uses.
mod stream;
mod tx;
pub use stream::RowStream;
pub use tx::{Conn, Tx};

impl Db {
    /// Opens a pool and checks that one connection works.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Db, ConnectError> {
        Self::connect_exposing(url, settings, &[], None).await
    }

    /// Opens a pool whose PostgreSQL connections have `schemas` (the
    /// exposed schemas) on their `search_path`, then `public`, as PostgREST
    /// runs requests (its `db-extra-search-path` defaults to `public`): a
    /// function naming a table without its schema finds it. The path is
    /// set once per connection, as a startup option that the pool and the
    /// pipelined read connections both send, because pipelined reads share
    /// a connection and cannot set it per request. MySQL routines run in
    /// their own database anyway; SQLite has none.
    ///
    /// `statement_timeout` makes the database cancel a statement running
    /// longer (57014): PostgreSQL's `statement_timeout`, also a startup
    /// option for the same reason; MariaDB's `max_statement_time`, a
    /// session variable; on SQLite a progress handler (see `deadline`).
    pub async fn connect_exposing(
        url: &str,
        settings: &PoolSettings,
        schemas: &[String],
        statement_timeout: Option<Duration>,
    ) -> Result<Db, ConnectError> {
        let db = Self::open(url, settings, schemas, statement_timeout)?;
        // The first connection, opened now so that start-up fails clearly.
        let unreachable = |source| ConnectError::Unreachable { target: redact_url(url), source };
        let first = per_engine!(&db, Db, p => pool::lease(p).await.map(drop));
        first.map_err(|e| unreachable(e.into()))?;
        if let Some(pipeline) = db.pipeline() {
            pipeline.check().await.map_err(|e| unreachable(e.into()))?;
        }
        Ok(db)
    }

    /// [`Db::connect_exposing`] without connecting: connections are opened
    /// when first needed (for a read replica, which may be down at
    /// start-up).
    pub fn open(
        url: &str,
        settings: &PoolSettings,
        schemas: &[String],
        statement_timeout: Option<Duration>,
    ) -> Result<Db, ConnectError> {
        let scheme = url.split("://").next().unwrap_or("");
        let acquire = Duration::from_secs(settings.acquire_timeout_seconds.max(1));
        let max = settings.max_connections.max(1) as usize;
        let bad_url = |e: sqlx::Error| ConnectError::BadUrl(e.to_string());
        let db = match scheme {
            "postgres" | "postgresql" => {
                let mut options = PgConnectOptions::from_str(url).map_err(bad_url)?.application_name("dbapi");
                if let Some(path) = search_path(schemas) {
                    options = options.options([("search_path", path)]);
                }
                if let Some(limit) = statement_timeout {
                    // A number the runtime formats: milliseconds.
                    options = options.options([("statement_timeout", limit.as_millis().max(1).to_string())]);
                }
                // Both kinds of connection count within `max`.
                let reads = (settings.read_connections as usize).min(max - 1);
                let pipeline = (reads > 0).then(|| Pipeline::new(&options, url, reads, acquire)).flatten();
                let pooled = if pipeline.is_some() { max - reads } else { max };
                Db::Postgres(pool::build(Connector::new(options, None), pooled, acquire), pipeline)
            }
            "mysql" | "mariadb" => {
                let url = url.replacen("mariadb://", "mysql://", 1);
                let options = MySqlConnectOptions::from_str(&url)
                    .map_err(bad_url)?
                    .charset("utf8mb4")
                    .timezone(Some("+00:00".to_string()));
                // JSON_ARRAYAGG is bounded by group_concat_max_len (1 MiB by
                // default): lift it for whole pages.
                let mut init = String::from("SET SESSION group_concat_max_len = 4294967295");
                if let Some(limit) = statement_timeout {
                    // Seconds, as a decimal the runtime formats.
                    let ms = limit.as_millis().max(1);
                    init.push_str(&format!(", max_statement_time = {}.{:03}", ms / 1000, ms % 1000));
                }
                Db::MySql(pool::build(Connector::new(options, Some(init)), max, acquire))
            }
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url).map_err(bad_url)?.foreign_keys(true);
                let connector = Connector::new(options, None).with_deadline(statement_timeout);
                Db::Sqlite(pool::build(connector, max, acquire))
            }
            other => return Err(ConnectError::UnsupportedScheme(other.to_string())),
        };
        Ok(db)
    }

    /// The engine, as messages name it.
    pub fn engine_name(&self) -> &'static str {
        match self {
            Db::Postgres(..) => "PostgreSQL",
            Db::MySql(_) => "MySQL/MariaDB",
            Db::Sqlite(_) => "SQLite",
        }
    }

    /// The pipelined read connections (PostgreSQL with `readConnections`
    /// > 0).
    fn pipeline(&self) -> Option<&Pipeline> {
        match self {
            Db::Postgres(_, pipeline) => pipeline.as_ref(),
            _ => None,
        }
    }

    /// Where a read goes: the pipelined connections, which prepare every
    /// statement once, unless it is to be planned for its values each time
    /// (`one_off`), which the pool does unprepared.
    fn pipeline_for(&self, stmt: &Statement) -> Option<&Pipeline> {
        self.pipeline().filter(|_| !stmt.one_off)
    }

    /// A write that is a whole request by itself (one INSERT … RETURNING in
    /// autocommit), its rows as text: on the pipelined connections when
    /// there are some, so that it shares their batches as reads do, else on
    /// a pooled connection.
    pub async fn write_alone(&self, stmt: &Statement) -> Result<Vec<Vec<Option<String>>>, DbError> {
        if let Some(pipeline) = self.pipeline().filter(|_| self.session().is_none()) {
            return pipeline.write(stmt).await;
        }
        let mut tx = self.autocommit().await?;
        let rows = tx.fetch_text_rows(stmt).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The request's PostgreSQL settings, when it has any.
    fn session(&self) -> Option<std::sync::Arc<session::Session>> {
        match self {
            Db::Postgres(..) => session::current(),
            _ => None,
        }
    }

    /// Runs `read` in a pooled transaction that sets the request's
    /// settings first.
    async fn in_session<T>(&self, read: impl AsyncFnOnce(&mut Tx) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut tx = self.begin().await?;
        let output = read(&mut tx).await?;
        tx.commit().await?;
        Ok(output)
    }

    /// The first column of a read's first row, as text, [`Db::in_session`].
    async fn first_value_in_session(&self, stmt: &Statement) -> Result<Option<String>, DbError> {
        let rows = self.in_session(async |tx| tx.fetch_text_rows(stmt).await).await?;
        Ok(rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()))
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        per_engine!(self, Db, p => leased(p).await?.run(|c| sqlx::query("SELECT 1").execute(c)).await.map(drop)?);
        Ok(())
    }

    /// Runs a read statement whose single row is (body, page_rows, total).
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_read(&self, stmt: &Statement) -> Result<ReadOutput, DbError> {
        let session = self.session();
        read_once_more(|| async {
            if let Some(pipeline) = self.pipeline_for(stmt) {
                return pipeline.fetch_read(stmt, session.as_deref()).await;
            }
            Box::pin(self.fetch_read_pooled(stmt, session.is_some())).await
        })
        .await
    }

    /// [`Db::fetch_read`] on a pooled connection. Boxed by its caller, as
    /// every pooled path below: their futures (sqlx's, a transaction's) are
    /// large, and a pipelined read would otherwise carry their room.
    async fn fetch_read_pooled(&self, stmt: &Statement, in_session: bool) -> Result<ReadOutput, DbError> {
        if in_session {
            return self.in_session(async |tx| tx.fetch_read(stmt).await).await;
        }
        Ok(per_engine!(self, Db, p => read_output(&leased(p).await?.run(|c| bound(stmt).fetch_one(c)).await?)?))
    }

    /// Runs a statement whose first column of the first row is an integer
    /// (counts and estimates).
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_i64(&self, stmt: &Statement) -> Result<Option<i64>, DbError> {
        let session = self.session();
        read_once_more(|| async {
            if let Some(pipeline) = self.pipeline_for(stmt) {
                return pipeline.fetch_i64(stmt, session.as_deref()).await;
            }
            Box::pin(self.fetch_i64_pooled(stmt, session.is_some())).await
        })
        .await
    }

    async fn fetch_i64_pooled(&self, stmt: &Statement, in_session: bool) -> Result<Option<i64>, DbError> {
        if in_session {
            return self
                .first_value_in_session(stmt)
                .await?
                .map(|text| text.trim().parse().map_err(|_| DbError::Other(format!("not an integer: {text}"))))
                .transpose();
        }
        let value: Option<Option<i64>> = per_engine!(self, Db, p => {
            let row = leased(p).await?.run(|c| bound(stmt).fetch_optional(c)).await?;
            row.map(|r| r.try_get_unchecked(0)).transpose()?
        });
        Ok(value.flatten())
    }

    /// Runs a statement whose first column of the first row is text (for
    /// `EXPLAIN (FORMAT JSON)`).
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_text(&self, stmt: &Statement) -> Result<Option<String>, DbError> {
        let session = self.session();
        read_once_more(|| async {
            if let Some(pipeline) = self.pipeline_for(stmt) {
                return pipeline.fetch_text(stmt, session.as_deref()).await;
            }
            Box::pin(self.fetch_text_pooled(stmt, session.is_some())).await
        })
        .await
    }

    async fn fetch_text_pooled(&self, stmt: &Statement, in_session: bool) -> Result<Option<String>, DbError> {
        if in_session {
            return self.first_value_in_session(stmt).await;
        }
        Ok(per_engine!(self, Db, p => {
            let row = leased(p).await?.run(|c| bound(stmt).fetch_optional(c)).await?;
            row.map(|r| text_at(&r, 0)).transpose()?.flatten()
        }))
    }

    /// Starts a transaction: every write of a request runs in one. The
    /// request's PostgreSQL settings, if any, are set first.
    #[tracing::instrument(level = "debug", name = "db.begin", skip_all)]
    pub async fn begin(&self) -> Result<Tx, DbError> {
        self.begin_in(Access::ReadWrite).await
    }

    /// A transaction in which the database refuses every write (PostgreSQL
    /// and MySQL: 25006), as PostgREST runs GET calls of functions.
    #[tracing::instrument(level = "debug", name = "db.begin", skip_all)]
    pub async fn begin_read_only(&self) -> Result<Tx, DbError> {
        self.begin_in(Access::ReadOnly).await
    }

    async fn begin_in(&self, access: Access) -> Result<Tx, DbError> {
        let mut tx = self.begin_plain(access).await?;
        if let Some(session) = self.session() {
            tx.fetch_text_rows(&session.statement()).await?;
        }
        Ok(tx)
    }

    async fn begin_plain(&self, access: Access) -> Result<Tx, DbError> {
        let read_only = access == Access::ReadOnly;
        Ok(match self {
            Db::Postgres(p, _) => {
                Tx::Postgres(Conn::begin(p, if read_only { "BEGIN READ ONLY" } else { "BEGIN" }).await?)
            }
            Db::MySql(p) => {
                Tx::MySql(Conn::begin(p, if read_only { "START TRANSACTION READ ONLY" } else { "BEGIN" }).await?)
            }
            // Take the write lock up front: a deferred transaction that
            // reads and then writes fails at once with "database is locked"
            // when another writer got there first, instead of waiting.
            // SQLite has no functions to call, so no read-only kind.
            Db::Sqlite(p) => Tx::Sqlite(Conn::begin(p, "BEGIN IMMEDIATE").await?),
        })
    }

    /// A connection for a request that runs exactly one statement: no
    /// transaction around it (see [`Conn::autocommit`]), unless the
    /// request's PostgreSQL settings need one.
    pub async fn autocommit(&self) -> Result<Tx, DbError> {
        if self.session().is_some() {
            return self.begin().await;
        }
        Ok(match self {
            Db::Postgres(p, _) => Tx::Postgres(Conn::autocommit(p).await?),
            Db::MySql(p) => Tx::MySql(Conn::autocommit(p).await?),
            Db::Sqlite(p) => Tx::Sqlite(Conn::autocommit(p).await?),
        })
    }

    /// The pool's connections and waiters now. PostgreSQL's pipelined read
    /// connections are held for the process's life and not counted.
    pub fn pool_status(&self) -> crate::metrics::PoolStatus {
        let status = per_engine!(self, Db, pool => pool.status());
        crate::metrics::PoolStatus {
            idle: status.available,
            busy: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        }
    }

    /// Forgets prepared statements that read through the pipeline (the
    /// schema changed under them). The pool's connections re-prepare on
    /// their own when a statement's text changes.
    pub fn forget_statements(&self) {
        if let Some(pipeline) = self.pipeline() {
            pipeline.forget_statements();
        }
    }

    /// Closes every connection; used on shutdown.
    pub async fn close(&self) {
        if let Some(pipeline) = self.pipeline() {
            pipeline.close();
        }
        per_engine!(self, Db, p => pool::close(p).await)
    }
}

/// Runs a read, and once more when the connection it ran on turned out to be
/// closed by the server: a read changes nothing, so running it again is
/// safe, and a database restart or failover then fails no read. The second
/// attempt gets a fresh or freshly vetted connection (see `pool` and
/// `pipeline`). Writes are never run twice.
async fn read_once_more<T, F: Future<Output = Result<T, DbError>>>(attempt: impl Fn() -> F) -> Result<T, DbError> {
    match attempt().await {
        Err(DbError::Lost(reason)) => {
            tracing::info!(%reason, "a read's database connection was closed; running the read again");
            attempt().await
        }
        other => other,
    }
}

/// A pooled connection; failing to get one is the database being
/// unavailable, never a lost connection (nothing ran).
async fn leased<DB>(pool: &Pool<DB>) -> Result<Lease<DB>, DbError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    pool::lease(pool).await.map_err(|e| DbError::from(e).while_connecting())
}

/// Whether a transaction may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// `name` in `quote` characters, an inner quote doubled; no allocation, as
/// this runs for every identifier of every statement.
pub(crate) fn quote_doubling(out: &mut String, name: &str, quote: char) {
    out.reserve(name.len() + 2);
    out.push(quote);
    // Most names have no quote: copied whole, not a char at a time.
    if quote.is_ascii() && !name.as_bytes().contains(&(quote as u8)) {
        out.push_str(name);
    } else {
        for c in name.chars() {
            if c == quote {
                out.push(quote);
            }
            out.push(c);
        }
    }
    out.push(quote);
}

/// The statement as a query with its values bound in order.
fn bound<DB>(stmt: &Statement) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    for<'e> &'e str: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> i64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> f64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> Option<&'e str>: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::query(AssertSqlSafe(stmt.sql.as_str())).persistent(!stmt.one_off);
    for p in &stmt.params {
        q = match p {
            Param::Text(t) => q.bind(t.as_str()),
            Param::Int(i) => q.bind(*i),
            Param::Float(f) => q.bind(*f),
            Param::Null => q.bind(None::<&str>),
        };
    }
    q
}

fn read_output<R: Row>(row: &R) -> Result<ReadOutput, sqlx::Error>
where
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(ReadOutput {
        body: text_at(row, 0)?.unwrap_or_else(|| "[]".into()),
        page_rows: row.try_get_unchecked(1)?,
        total: row.try_get_unchecked(2)?,
    })
}

/// A column as text, whatever text-like type the driver reports (MariaDB
/// sends some text as binary).
fn text_at<R: Row>(row: &R, index: usize) -> Result<Option<String>, sqlx::Error>
where
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let bytes: Option<Vec<u8>> = row.try_get_unchecked(index)?;
    // Valid UTF-8 (always, from these engines) is taken without a copy.
    Ok(bytes.map(|b| String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/shop"), "postgres://app@db:5432/shop");
        assert_eq!(redact_url("mysql://root@127.0.0.1/test"), "mysql://root@127.0.0.1/test");
        assert_eq!(redact_url("sqlite://demo.db"), "sqlite://demo.db");
    }

    #[test]
    fn the_search_path_is_the_exposed_schemas_then_public() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(search_path(&[]), None);
        assert_eq!(search_path(&v(&["public"])), None);
        assert_eq!(search_path(&v(&["api"])).as_deref(), Some(r#""api", "public""#));
        assert_eq!(search_path(&v(&["public", "other"])).as_deref(), Some(r#""public", "other""#));
        assert_eq!(search_path(&v(&["we\"ird"])).as_deref(), Some(r#""we""ird", "public""#));
    }

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        let quoted = |name: &str, quote| {
            let mut out = String::from("x.");
            quote_doubling(&mut out, name, quote);
            out
        };
        assert_eq!(quoted("orders", '"'), r#"x."orders""#);
        assert_eq!(quoted("", '"'), r#"x."""#);
        assert_eq!(quoted(r#"a"b"#, '"'), r#"x."a""b""#);
        assert_eq!(quoted(r#""a""#, '"'), r#"x."""a""""#);
        assert_eq!(quoted(r#"a""b"#, '"'), r#"x."a""""b""#);
        assert_eq!(quoted("ré`s", '`'), "x.`ré``s`");
        assert_eq!(quoted("ré`s", '"'), "x.\"ré`s\"");
    }
}
