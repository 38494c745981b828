//! The PostgreSQL change feed: writes that do not go through the API
//! (migrations, batch jobs, other services) invalidate cached answers too.
//!
//! `install-change-feed` puts a statement-level trigger on every table of
//! the given schemas; it calls `dbapi.notify_change()`, which sends the
//! table's name on the channel [`CHANNEL`] as the JSON object
//! `{"schema": …, "table": …}` (JSON, so that a name holding a dot or a
//! quote needs no parsing rules of its own). PostgreSQL sends a payload
//! once per transaction however often it was raised, so a transaction that
//! writes a table a thousand times announces it once, and one rolled back
//! announces nothing. [`listen`] turns the notifications into
//! [`ChangeEvent`]s; after a lost connection it reconnects and reports
//! [`ChangeEvent::Everything`], since changes may have gone unannounced
//! meanwhile.
//!
//! Not covered: tables created after the install (running it again covers
//! them), and views (PostgreSQL cannot put a statement trigger on a view;
//! a view changes when its tables do, which the cache must map itself).
//! MySQL/MariaDB and SQLite have no such channel: there the cache's TTL
//! bounds staleness.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;

use crate::db::redact_url;
use crate::sql::quote_doubling;

/// The channel the trigger function notifies and [`listen`] listens on.
pub const CHANNEL: &str = "dbapi_changes";
/// The schema that holds the trigger function, created by the install
/// when absent.
pub const FUNCTION_SCHEMA: &str = "dbapi";
/// The name of the trigger on every covered table.
pub const TRIGGER: &str = "dbapi_change_feed";
/// `application_name` of the feed's connections, to find them in
/// `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "dbapi-change-feed";

/// Marks a `dbapi` schema as the install's own, so that the uninstall drops
/// it (when empty) and leaves alone one that was there before.
const SCHEMA_COMMENT: &str = "created by dbapi-runtime install-change-feed; uninstall-change-feed drops it when empty";

/// The trigger function. Schema-qualified calls throughout, as it runs with
/// the search path of whichever session wrote. A write straight to a
/// partition also changes what its partitioned ancestors return, so they
/// are announced with it (`pg_partition_ancestors` lists nothing for an
/// ordinary table).
const CREATE_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION dbapi.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM pg_catalog.pg_notify('dbapi_changes',
        pg_catalog.json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME)::text);
    PERFORM pg_catalog.pg_notify('dbapi_changes',
        pg_catalog.json_build_object('schema', n.nspname, 'table', c.relname)::text)
       FROM pg_catalog.pg_partition_ancestors(TG_RELID) AS a
       JOIN pg_catalog.pg_class AS c ON c.oid = a.relid
       JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      WHERE a.relid <> TG_RELID;
    RETURN NULL;
END
$body$;
COMMENT ON FUNCTION dbapi.notify_change() IS
    'dbapi change feed: NOTIFY dbapi_changes with {"schema", "table"} of the written table';
"#;

/// Ordinary and partitioned tables of the schemas `$1`, with the state of
/// their feed trigger (`tgenabled`; none when absent).
const TABLES: &str = r#"
SELECT n.nspname::text, c.relname::text,
       (SELECT t.tgenabled::text FROM pg_catalog.pg_trigger AS t
         WHERE t.tgrelid = c.oid AND t.tgname = 'dbapi_change_feed'
           AND t.tgfoid = 'dbapi.notify_change()'::regprocedure)
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p')
 ORDER BY 1, 2
"#;

/// Tables carrying the feed trigger, with their schema.
const TRIGGERED: &str = r#"
SELECT n.nspname::text, c.relname::text
  FROM pg_catalog.pg_trigger AS t
  JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE t.tgname = 'dbapi_change_feed' AND t.tgfoid = pg_catalog.to_regprocedure('dbapi.notify_change()')
 ORDER BY 1, 2
"#;

/// What invalidates: one table, or (after an outage of the listener, or on
/// an empty `NOTIFY dbapi_changes`) every table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEvent {
    Table { schema: String, table: String },
    Everything,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeFeedError {
    #[error("the change feed is PostgreSQL's; on MySQL/MariaDB and SQLite the cache TTL bounds staleness")]
    NotPostgres,
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("there is no schema {0:?} in the database")]
    NoSuchSchema(String),
    #[error("could not connect to the database at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("the database refused: {0}")]
    Database(#[from] sqlx::Error),
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub schemas: Vec<String>,
    /// Tables of those schemas that now have the trigger.
    pub tables: usize,
    /// Of those, the ones that did not have it (enabled) before.
    pub added: usize,
    /// Whether the `dbapi` schema was created now.
    pub created_schema: bool,
}

impl std::fmt::Display for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.tables == 1 { "" } else { "s" };
        writeln!(
            f,
            "change feed installed on {} table{plural} in {} ({} new, {} already covered)",
            self.tables,
            self.schemas.join(", "),
            self.added,
            self.tables - self.added
        )?;
        let schema = if self.created_schema { "schema dbapi, created now" } else { "schema dbapi" };
        writeln!(f, "trigger function: dbapi.notify_change() ({schema}); channel: {CHANNEL}")?;
        writeln!(f, "views are not covered; tables created from now on are not either: run install-change-feed again")
    }
}

/// What [`uninstall`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uninstalled {
    /// Tables whose trigger was dropped.
    pub removed: usize,
    pub function_dropped: bool,
    pub schema_dropped: bool,
    /// Schemas (outside those named) whose tables still have the trigger:
    /// the function stays while they use it.
    pub still_in: Vec<String>,
}

impl std::fmt::Display for Uninstalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.removed == 1 { "" } else { "s" };
        writeln!(f, "change feed trigger removed from {} table{plural}", self.removed)?;
        if !self.still_in.is_empty() {
            return writeln!(
                f,
                "dbapi.notify_change() kept: tables in {} still use it (name them with --schemas to remove it)",
                self.still_in.join(", ")
            );
        }
        match (self.function_dropped, self.schema_dropped) {
            (true, true) => writeln!(f, "dropped dbapi.notify_change() and the schema dbapi"),
            (true, false) => writeln!(
                f,
                "dropped dbapi.notify_change() (the schema dbapi stays: it was not created by the install or is not empty)"
            ),
            (false, _) => writeln!(f, "dbapi.notify_change() was not installed"),
        }
    }
}

/// Connection options for `url`, refusing the engines without a feed.
fn connect_options(url: &str) -> Result<PgConnectOptions, ChangeFeedError> {
    let scheme = url.split("://").next().unwrap_or("");
    match scheme {
        "postgres" | "postgresql" => PgConnectOptions::from_str(url)
            .map(|o| o.application_name(APPLICATION_NAME))
            .map_err(|e| ChangeFeedError::BadUrl(e.to_string())),
        "mysql" | "mariadb" => Err(ChangeFeedError::NotPostgres),
        _ if url.starts_with("sqlite:") => Err(ChangeFeedError::NotPostgres),
        other => {
            Err(ChangeFeedError::BadUrl(format!("unsupported scheme {other:?}; the change feed needs postgres://")))
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection, ChangeFeedError> {
    let options = connect_options(url)?;
    PgConnection::connect_with(&options)
        .await
        .map_err(|source| ChangeFeedError::Connect { target: redact_url(url), source })
}

/// `"schema"."table"`.
fn qualified(schema: &str, table: &str) -> String {
    let mut name = String::with_capacity(schema.len() + table.len() + 5);
    quote_doubling(&mut name, schema, '"');
    name.push('.');
    quote_doubling(&mut name, table, '"');
    name
}

/// Creates the function and triggers the tables of `schemas` (`public`
/// when empty), in one transaction. Running it again is harmless and
/// covers the tables created since.
pub async fn install(database_url: &str, schemas: &[String]) -> Result<Installed, ChangeFeedError> {
    let schemas = or_public(schemas);
    let mut conn = connect(database_url).await?;
    let mut tx = conn.begin().await?;
    let missing: Option<String> = sqlx::query_scalar(
        "SELECT s FROM unnest($1::text[]) AS s \
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = s) LIMIT 1",
    )
    .bind(&schemas)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(schema) = missing {
        return Err(ChangeFeedError::NoSuchSchema(schema));
    }
    let created_schema: bool =
        sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'dbapi')")
            .fetch_one(&mut *tx)
            .await?;
    if created_schema {
        let sql = format!("CREATE SCHEMA dbapi; COMMENT ON SCHEMA dbapi IS '{SCHEMA_COMMENT}'");
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    sqlx::raw_sql(CREATE_FUNCTION).execute(&mut *tx).await?;
    let tables: Vec<(String, String, Option<String>)> =
        sqlx::query_as(TABLES).bind(&schemas).fetch_all(&mut *tx).await?;
    let mut added = 0;
    for (schema, table, state) in &tables {
        let name = qualified(schema, table);
        let mut sql = String::new();
        match state.as_deref() {
            Some("A") => continue,
            Some(_) => {}
            None => sql.push_str(&format!(
                "CREATE TRIGGER dbapi_change_feed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {name} \
                 FOR EACH STATEMENT EXECUTE FUNCTION dbapi.notify_change();"
            )),
        }
        // ALWAYS: also when a logical replication subscription applies
        // changes (it runs with session_replication_role = replica).
        sql.push_str(&format!("ALTER TABLE {name} ENABLE ALWAYS TRIGGER dbapi_change_feed;"));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        added += 1;
    }
    tx.commit().await?;
    let _ = conn.close().await;
    Ok(Installed { schemas, tables: tables.len(), added, created_schema })
}

/// Drops the triggers of the tables of `schemas` (`public` when empty);
/// then, when no table anywhere still has one, the function, and the
/// `dbapi` schema if the install created it and nothing else is in it.
pub async fn uninstall(database_url: &str, schemas: &[String]) -> Result<Uninstalled, ChangeFeedError> {
    let schemas = or_public(schemas);
    let mut conn = connect(database_url).await?;
    let mut tx = conn.begin().await?;
    let triggered: Vec<(String, String)> = sqlx::query_as(TRIGGERED).fetch_all(&mut *tx).await?;
    let (ours, others): (Vec<_>, Vec<_>) = triggered.into_iter().partition(|(s, _)| schemas.contains(s));
    for (schema, table) in &ours {
        let sql = format!("DROP TRIGGER dbapi_change_feed ON {}", qualified(schema, table));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    let mut still_in: Vec<String> = others.into_iter().map(|(schema, _)| schema).collect();
    still_in.dedup();
    let (mut function_dropped, mut schema_dropped) = (false, false);
    if still_in.is_empty() {
        function_dropped = sqlx::query_scalar("SELECT pg_catalog.to_regprocedure('dbapi.notify_change()') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::raw_sql("DROP FUNCTION IF EXISTS dbapi.notify_change()").execute(&mut *tx).await?;
        // Objects in a schema depend on it in pg_depend: none left, empty.
        schema_dropped = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace AS n \
              WHERE n.nspname = 'dbapi' AND pg_catalog.obj_description(n.oid, 'pg_namespace') = $1 \
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend AS d \
                                 WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = n.oid))",
        )
        .bind(SCHEMA_COMMENT)
        .fetch_one(&mut *tx)
        .await?;
        if schema_dropped {
            sqlx::raw_sql("DROP SCHEMA dbapi").execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    let _ = conn.close().await;
    Ok(Uninstalled { removed: ours.len(), function_dropped, schema_dropped, still_in })
}

fn or_public(schemas: &[String]) -> Vec<String> {
    if schemas.is_empty() { vec!["public".to_string()] } else { schemas.to_vec() }
}

/// The listening task; it stops when this is dropped.
#[must_use = "the change feed stops listening when its handle is dropped"]
pub struct ChangeFeed {
    task: JoinHandle<()>,
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The first wait before reconnecting, doubled after each failure up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Listens on [`CHANNEL`] on a connection of its own and calls `on_event`
/// for each notification, in order, from one task. Returns once the
/// `LISTEN` is in effect (a write committed after that is reported), or
/// the error of that first attempt. A lost connection is re-established
/// with backoff, after which `on_event` gets [`ChangeEvent::Everything`]
/// once: the LISTEN is back before that, so nothing falls in between.
pub async fn listen(
    database_url: &str,
    on_event: impl Fn(ChangeEvent) + Send + 'static,
) -> Result<ChangeFeed, ChangeFeedError> {
    let options = connect_options(database_url)?;
    let target = redact_url(database_url);
    // sqlx's listener takes its connection from a pool: one, kept for good.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(MAX_BACKOFF)
        .connect_lazy_with(options);
    let listener =
        subscribe(&pool).await.map_err(|source| ChangeFeedError::Connect { target: target.clone(), source })?;
    tracing::info!(channel = CHANNEL, %target, "change feed listening");
    let task = tokio::spawn(relay(pool, listener, target, on_event));
    Ok(ChangeFeed { task })
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is ours to do: with backoff, and so that we know.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn relay(pool: PgPool, mut listener: PgListener, target: String, on_event: impl Fn(ChangeEvent)) {
    loop {
        let error = loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match parse_payload(notification.payload()) {
                    Some(event) => on_event(event),
                    None => tracing::debug!(payload = notification.payload(), "ignored a change feed notification"),
                },
                Ok(None) => break "the server closed the connection".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        drop(listener);
        tracing::warn!(%error, %target, "change feed lost its connection; reconnecting");
        let lost = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        listener = loop {
            match subscribe(&pool).await {
                Ok(listener) => break listener,
                Err(e) => tracing::debug!(error = %e, retry_in = ?backoff, "change feed cannot reconnect yet"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        tracing::info!(
            outage_ms = lost.elapsed().as_millis() as u64,
            "change feed reconnected; every table counts as changed"
        );
        on_event(ChangeEvent::Everything);
    }
}

#[derive(serde::Deserialize)]
struct Payload {
    schema: String,
    table: String,
}

/// `{"schema": …, "table": …}` as the trigger sends it; an empty payload
/// (a bare `NOTIFY dbapi_changes`) means every table; anything else is
/// not ours.
fn parse_payload(payload: &str) -> Option<ChangeEvent> {
    if payload.trim().is_empty() {
        return Some(ChangeEvent::Everything);
    }
    let Payload { schema, table } = serde_json::from_str(payload).ok()?;
    Some(ChangeEvent::Table { schema, table })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_one_table_however_it_is_spelled() {
        let table = |s: &str, t: &str| Some(ChangeEvent::Table { schema: s.into(), table: t.into() });
        assert_eq!(parse_payload(r#"{"schema" : "public", "table" : "orders"}"#), table("public", "orders"));
        assert_eq!(parse_payload(r#"{"schema" : "a.b", "table" : "c.\"d\""}"#), table("a.b", "c.\"d\""));
        assert_eq!(parse_payload(""), Some(ChangeEvent::Everything));
        assert_eq!(parse_payload("reload schema"), None);
        assert_eq!(parse_payload(r#"{"table": "orders"}"#), None);
    }

    #[test]
    fn only_postgres_urls_are_taken() {
        assert!(connect_options("postgres://u:p@h/db").is_ok());
        assert!(connect_options("postgresql://h/db").is_ok());
        for url in ["mysql://root@h/db", "mariadb://h/db", "sqlite://x.db", "sqlite::memory:"] {
            assert!(matches!(connect_options(url), Err(ChangeFeedError::NotPostgres)), "{url}");
        }
        assert!(matches!(connect_options("http://h"), Err(ChangeFeedError::BadUrl(_))));
    }

    #[test]
    fn names_are_quoted_with_quotes_doubled() {
        assert_eq!(qualified("public", "Odd\"Name.x"), r#""public"."Odd""Name.x""#);
    }
}
