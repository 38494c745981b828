//! Throwaway databases for integration tests.
//!
//! Every test gets a database of its own, so tests run in parallel without
//! seeing each other's tables:
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test]
//! async fn reads_orders() {
//!     let t = support::pg_database("CREATE TABLE orders (id int PRIMARY KEY);").await;
//!     t.execute("INSERT INTO orders VALUES (1), (2);").await;
//!     let db = t.connect().await; // a dbapi_runtime::db::Db on the new database
//!     // ... t is dropped at the end of the test, also when it panics, and
//!     // the database goes with it.
//! }
//! ```
//!
//! The servers come from the environment (`./scripts/test.sh` starts them
//! and sets both):
//!
//! - `DBAPI_TEST_PG_URL`: a PostgreSQL superuser URL, e.g.
//!   `postgres://postgres@127.0.0.1:5432/postgres`
//! - `DBAPI_TEST_MYSQL_URL`: a MySQL/MariaDB root URL, e.g.
//!   `mysql://root@127.0.0.1:3306/mysql`
//!
//! A test that needs a server whose variable is unset panics and says so:
//! a silently skipped test is a test that never fails. SQLite needs nothing:
//! its databases are temporary files.
//!
//! Fixture SQL is run as one multi-statement script over a single
//! connection (the simple query protocol on PostgreSQL, multi-statement
//! text on MySQL). Client-side syntax such as psql's `\` commands or the
//! mysql client's `DELIMITER` is not understood; write plain SQL.

#![allow(dead_code)] // Each test binary uses its own subset of the helpers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dbapi_crds::config::PoolSettings;
use dbapi_runtime::db::Db;
use sqlx::{AssertSqlSafe, Connection};

pub const PG_URL_VAR: &str = "DBAPI_TEST_PG_URL";
/// The shared Redis the tests that need one use, each under a key prefix of its own.
pub const REDIS_URL_VAR: &str = "DBAPI_TEST_REDIS_URL";
pub const MYSQL_URL_VAR: &str = "DBAPI_TEST_MYSQL_URL";

/// Which server a [`TestDb`] lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MySql,
    Sqlite,
}

/// A database created for one test and removed when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub engine: Engine,
    /// URL of the new database, for `Db::connect` or a runtime config.
    pub url: String,
    /// Database name (PostgreSQL, MySQL) or file path (SQLite).
    pub name: String,
    /// The schema that holds the fixture's tables: `public`, the database
    /// name on MySQL, `main` on SQLite.
    pub schema: String,
    /// Server URL used to create and drop the database (not for SQLite).
    admin_url: Option<String>,
}

/// The server URL from `var`, or a panic that says how to get one.
pub fn server_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "set {var} (e.g. {}) or run ./scripts/test.sh",
            match var {
                PG_URL_VAR => "postgres://postgres@127.0.0.1:5432/postgres",
                REDIS_URL_VAR => "redis://127.0.0.1:6379",
                _ => "mysql://root@127.0.0.1:3306/mysql",
            }
        ),
    }
}

/// A name no other test (in this or a concurrent process) is using:
/// `dbapi_t_<pid>_<counter>_<nanos>`.
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("dbapi_t_{}_{}_{}", std::process::id(), n, nanos)
}

/// `url` with its database (the path) replaced by `database`; the query
/// string, if any, is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    format!("{}/{}{}", &base[..path_start], database, query)
}

/// A fresh PostgreSQL database with `fixture_sql` loaded.
pub async fn pg_database(fixture_sql: &str) -> TestDb {
    let admin_url = server_url(PG_URL_VAR);
    let name = unique_name();
    run_pg(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
    let db = TestDb {
        engine: Engine::Postgres,
        url: with_database(&admin_url, &name),
        name,
        schema: "public".into(),
        admin_url: Some(admin_url),
    };
    db.execute(fixture_sql).await;
    db
}

/// A fresh MySQL/MariaDB database with `fixture_sql` loaded.
pub async fn mysql_database(fixture_sql: &str) -> TestDb {
    let admin_url = server_url(MYSQL_URL_VAR);
    let name = unique_name();
    run_mysql(&admin_url, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await;
    let db = TestDb {
        engine: Engine::MySql,
        url: with_database(&admin_url, &name),
        schema: name.clone(),
        name,
        admin_url: Some(admin_url),
    };
    db.execute(fixture_sql).await;
    db
}

/// A fresh SQLite database file in the temp dir with `fixture_sql` loaded.
pub async fn sqlite_database(fixture_sql: &str) -> TestDb {
    let path: PathBuf = std::env::temp_dir().join(format!("{}.sqlite", unique_name()));
    let path = path.to_string_lossy().into_owned();
    let db = TestDb {
        engine: Engine::Sqlite,
        url: format!("sqlite://{path}?mode=rwc"),
        name: path,
        schema: "main".into(),
        admin_url: None,
    };
    db.execute(fixture_sql).await;
    db
}

/// Runs `sql` on a fresh connection to `url`, panicking with the statement
/// and the error on failure.
async fn run_pg(url: &str, sql: &str) {
    let mut conn =
        sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"));
    let result = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
    let _ = conn.close().await;
    if let Err(e) = result {
        panic!("PostgreSQL refused the SQL: {e}\n--- SQL ---\n{sql}");
    }
}

async fn run_mysql(url: &str, sql: &str) {
    let mut conn =
        sqlx::MySqlConnection::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to MySQL at {url}: {e}"));
    for batch in mysql_batches(sql) {
        let result = sqlx::raw_sql(AssertSqlSafe(batch.clone())).execute(&mut conn).await;
        if let Err(e) = result {
            panic!("MySQL refused the SQL: {e}\n--- SQL ---\n{batch}");
        }
    }
    let _ = conn.close().await;
}

/// A MySQL script cut where the `mysql` client would: at `DELIMITER`
/// directives (so stored routines with `;` in their bodies load from the
/// same file the command-line client loads), and after each statement
/// ended by a delimiter other than `;`. Runs of `;`-separated statements
/// stay one batch.
fn mysql_batches(sql: &str) -> Vec<String> {
    let mut batches = Vec::new();
    let mut delimiter = ";".to_string();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.trim().is_empty() {
            batches.push(std::mem::take(current));
        }
        current.clear();
    };
    for line in sql.lines() {
        if let Some(d) = line.trim().strip_prefix("DELIMITER ") {
            flush(&mut current);
            delimiter = d.trim().to_string();
            continue;
        }
        if delimiter != ";"
            && let Some(statement) = line.trim_end().strip_suffix(delimiter.as_str())
        {
            current.push_str(statement);
            flush(&mut current);
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut current);
    batches
}

async fn run_sqlite(url: &str, sql: &str) {
    let mut conn =
        sqlx::SqliteConnection::connect(url).await.unwrap_or_else(|e| panic!("cannot open SQLite database {url}: {e}"));
    let result = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
    let _ = conn.close().await;
    if let Err(e) = result {
        panic!("SQLite refused the SQL: {e}\n--- SQL ---\n{sql}");
    }
}

impl TestDb {
    /// Runs raw SQL (any number of `;`-separated statements) against this
    /// database; panics with the error and the SQL if it fails.
    pub async fn execute(&self, sql: &str) {
        if sql.trim().is_empty() {
            return;
        }
        match self.engine {
            Engine::Postgres => run_pg(&self.url, sql).await,
            Engine::MySql => run_mysql(&self.url, sql).await,
            Engine::Sqlite => run_sqlite(&self.url, sql).await,
        }
    }

    /// A runtime connection pool on this database, with default settings.
    pub async fn connect(&self) -> Db {
        self.connect_with(&PoolSettings::default()).await
    }

    pub async fn connect_with(&self, settings: &PoolSettings) -> Db {
        Db::connect(&self.url, settings)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {}: {e}", self.url))
    }

    /// Drops the database (or deletes the file). Runs on its own thread and
    /// runtime, because `Drop` may run inside a test's runtime, which cannot
    /// be blocked on. Failures are printed, not raised: a panic while
    /// unwinding from a failed assertion would abort and hide that failure.
    fn cleanup(&self) {
        match self.engine {
            Engine::Sqlite => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Engine::Postgres | Engine::MySql => {
                let Some(admin_url) = self.admin_url.clone() else { return };
                let (engine, name) = (self.engine, self.name.clone());
                let outcome = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async move {
                        match engine {
                            Engine::Postgres => {
                                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                                // FORCE ends the test's own pool connections.
                                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                                conn.close().await
                            }
                            _ => {
                                let mut conn = sqlx::MySqlConnection::connect(&admin_url).await?;
                                let sql = format!("DROP DATABASE IF EXISTS `{name}`");
                                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                                conn.close().await
                            }
                        }
                    })
                    .map_err(std::io::Error::other)
                })
                .join();
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
                    Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Reads a file under `api-runtime/tests/fixtures/`, or `None` if it does
/// not exist.
pub fn fixture(file: &str) -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(file);
    std::fs::read_to_string(path).ok()
}

pub mod api;
pub mod process;
pub mod roles;
