//! The PostgreSQL change feed: `install-change-feed` makes writes from
//! outside the API (psql, other services) announce their table on
//! `dbapi_changes`, the listener turns that into events, comes back after
//! losing its connection, and `uninstall-change-feed` leaves nothing.
//!
//! No sleeps: after the writes under test, the test sends a marker
//! notification of its own and reads the events up to it. Notifications
//! arrive in commit order, so whatever the writes announced is there
//! before the marker, and anything they should not have announced would
//! be too.

mod support;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dbapi_runtime::cache::change_feed::{self, ChangeEvent, ChangeFeed};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use support::process::BIN;
use support::{TestDb, pg_database, server_url, unique_name};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const FIXTURE: &str = r#"
CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL);
CREATE TABLE "MixedCase" (id int);
CREATE TABLE "with.dot" (id int);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 10;
CREATE TABLE readings (day int NOT NULL, v int) PARTITION BY RANGE (day);
CREATE TABLE readings_early PARTITION OF readings FOR VALUES FROM (0) TO (100);
INSERT INTO orders VALUES (1, 5), (2, 20), (3, 7);
INSERT INTO "with.dot" VALUES (1), (2);
"#;

const NOTHING: [ChangeEvent; 0] = [];

/// The fixture's tables: the view is not one.
const TABLES: usize = 5;

fn table(schema: &str, table: &str) -> ChangeEvent {
    ChangeEvent::Table { schema: schema.into(), table: table.into() }
}

fn public(name: &str) -> ChangeEvent {
    table("public", name)
}

/// A listener whose events go to a channel.
struct Feed {
    events: UnboundedReceiver<ChangeEvent>,
    _feed: ChangeFeed,
}

impl Feed {
    async fn start(t: &TestDb) -> Feed {
        let (tx, events) = unbounded_channel();
        let feed = change_feed::listen(&t.url, move |event| {
            let _ = tx.send(event);
        })
        .await
        .expect("the listener starts");
        Feed { events, _feed: feed }
    }

    async fn next(&mut self) -> ChangeEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("a change event within 10 s")
            .expect("the listener is running")
    }

    /// The events that came before a marker sent now through `conn`.
    async fn until_marker(&mut self, conn: &mut PgConnection) -> Vec<ChangeEvent> {
        static MARKS: AtomicU32 = AtomicU32::new(0);
        let marker = table("(marker)", &MARKS.fetch_add(1, Ordering::Relaxed).to_string());
        let ChangeEvent::Table { schema, table } = &marker else { unreachable!() };
        sqlx::query(
            "SELECT pg_notify('dbapi_changes', json_build_object('schema', $1::text, 'table', $2::text)::text)",
        )
        .bind(schema)
        .bind(table)
        .execute(&mut *conn)
        .await
        .unwrap();
        let mut before = Vec::new();
        loop {
            match self.next().await {
                event if event == marker => return before,
                event => before.push(event),
            }
        }
    }
}

async fn run(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(conn: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

/// The built binary, run to completion.
fn cli(args: &[&str]) -> Output {
    let output = Command::new(BIN).args(args).env_remove("DBAPI_DATABASE_URL").output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "exit {:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn an_external_update_through_psql_invalidates_after_install_change_feed() {
    let t = pg_database(FIXTURE).await;
    let printed = stdout(&cli(&["install-change-feed", "--database-url", &t.url]));
    assert!(printed.contains(&format!("installed on {TABLES} tables in public")), "{printed}");
    assert!(printed.contains("dbapi.notify_change()") && printed.contains("created now"), "{printed}");
    assert!(printed.contains("run install-change-feed again"), "{printed}");
    let mut feed = Feed::start(&t).await;
    let url = t.url.clone();
    let psql = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .args([&url, "-v", "ON_ERROR_STOP=1", "-c", "UPDATE orders SET qty = 6 WHERE id = 1"])
            .output()
    })
    .await
    .unwrap()
    .expect("psql runs (install the PostgreSQL client)");
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    assert_eq!(feed.until_marker(&mut conn).await, [public("orders")]);
}

#[tokio::test]
async fn writes_announce_their_table_once_per_transaction_and_rollbacks_nothing() {
    let t = pg_database(FIXTURE).await;
    let installed = change_feed::install(&t.url, &[]).await.unwrap();
    assert_eq!((installed.tables, installed.added, installed.created_schema), (TABLES, TABLES, true));
    let mut feed = Feed::start(&t).await;
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    let mut after = async |sql: &str| {
        run(&mut conn, sql).await;
        feed.until_marker(&mut conn).await
    };
    assert_eq!(after("UPDATE orders SET qty = qty + 1 WHERE id = 1").await, [public("orders")]);
    assert_eq!(after(r#"INSERT INTO "MixedCase" VALUES (1)"#).await, [public("MixedCase")]);
    assert_eq!(after(r#"DELETE FROM "with.dot" WHERE id = 1"#).await, [public("with.dot")]);
    assert_eq!(after("TRUNCATE orders").await, [public("orders")]);
    // A statement that changes no row still announces (harmless: one
    // invalidation too many).
    assert_eq!(after("UPDATE orders SET qty = 0 WHERE false").await, [public("orders")]);
    let many = "BEGIN; INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g; \
                UPDATE orders SET qty = qty + 1; UPDATE orders SET qty = qty + 1 WHERE id < 10; COMMIT";
    assert_eq!(after(many).await, [public("orders")]);
    let two = r#"BEGIN; UPDATE orders SET qty = 1; DELETE FROM "with.dot"; COMMIT"#;
    assert_eq!(after(two).await, [public("orders"), public("with.dot")]);
    assert_eq!(
        after(r#"BEGIN; UPDATE orders SET qty = 2; INSERT INTO "MixedCase" VALUES (2); ROLLBACK"#).await,
        NOTHING
    );
    // Through an updatable view: the table under it.
    assert_eq!(after("UPDATE big_orders SET qty = 30").await, [public("orders")]);
    // Straight to a partition: the partition, and the table it is part of.
    assert_eq!(after("INSERT INTO readings_early VALUES (1, 1)").await, [public("readings_early"), public("readings")]);
    assert_eq!(after("INSERT INTO readings VALUES (2, 2)").await, [public("readings")]);
}

/// Cluster-wide roles go when the test does, its database first.
struct DropRole(String);

impl Drop for DropRole {
    fn drop(&mut self) {
        let (role, url) = (self.0.clone(), server_url(support::PG_URL_VAR));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                run(&mut conn, &format!("DROP ROLE IF EXISTS \"{role}\"")).await;
            })
        })
        .join();
    }
}

#[tokio::test]
async fn a_writer_without_rights_on_the_dbapi_schema_still_announces() {
    let role = format!("r_{}", unique_name());
    let _role = DropRole(role.clone());
    let t =
        pg_database(&format!("{FIXTURE}CREATE ROLE \"{role}\" NOLOGIN; GRANT SELECT, UPDATE ON orders TO \"{role}\";"))
            .await;
    change_feed::install(&t.url, &["public".to_string()]).await.unwrap();
    let mut feed = Feed::start(&t).await;
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    run(&mut conn, &format!("SET ROLE \"{role}\"; UPDATE orders SET qty = 9 WHERE id = 3; RESET ROLE")).await;
    assert_eq!(feed.until_marker(&mut conn).await, [public("orders")]);
}

#[tokio::test]
async fn installing_again_is_harmless_and_covers_new_tables_and_uninstall_leaves_nothing() {
    let t = pg_database(FIXTURE).await;
    change_feed::install(&t.url, &[]).await.unwrap();
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    run(&mut conn, "CREATE TABLE later (id int)").await;
    let mut feed = Feed::start(&t).await;
    run(&mut conn, "INSERT INTO later VALUES (1)").await;
    assert_eq!(feed.until_marker(&mut conn).await, NOTHING, "a table created after the install is not covered");

    let again = change_feed::install(&t.url, &[]).await.unwrap();
    assert_eq!((again.tables, again.added, again.created_schema), (TABLES + 1, 1, false));
    let triggers = "SELECT count(*) FROM pg_trigger WHERE tgname = 'dbapi_change_feed'";
    assert_eq!(count(&mut conn, triggers).await, TABLES as i64 + 1);
    run(&mut conn, "INSERT INTO later VALUES (2)").await;
    assert_eq!(feed.until_marker(&mut conn).await, [public("later")]);

    let printed = stdout(&cli(&["uninstall-change-feed", "--database-url", &t.url, "--schemas", "public"]));
    assert!(printed.contains(&format!("removed from {} tables", TABLES + 1)), "{printed}");
    assert!(printed.contains("dropped dbapi.notify_change() and the schema dbapi"), "{printed}");
    assert_eq!(count(&mut conn, triggers).await, 0);
    assert_eq!(count(&mut conn, "SELECT count(*) FROM pg_proc WHERE proname = 'notify_change'").await, 0);
    assert_eq!(count(&mut conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dbapi'").await, 0);
    run(&mut conn, "UPDATE orders SET qty = 1; INSERT INTO later VALUES (3)").await;
    assert_eq!(feed.until_marker(&mut conn).await, NOTHING, "no more announcements");
    let none = change_feed::uninstall(&t.url, &[]).await.unwrap();
    assert_eq!((none.removed, none.function_dropped, none.schema_dropped), (0, false, false));
}

#[tokio::test]
async fn uninstall_keeps_what_other_schemas_use_and_a_dbapi_schema_it_did_not_create() {
    let t = pg_database(&format!(
        "{FIXTURE}CREATE SCHEMA dbapi; CREATE SCHEMA api; CREATE TABLE api.items (id int); CREATE TABLE api.\"a.b\" (id int);"
    ))
    .await;
    let schemas = ["public".to_string(), "api".to_string()];
    let installed = change_feed::install(&t.url, &schemas).await.unwrap();
    assert_eq!((installed.tables, installed.created_schema), (TABLES + 2, false));
    let mut feed = Feed::start(&t).await;
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    run(&mut conn, r#"INSERT INTO api."a.b" VALUES (1)"#).await;
    assert_eq!(feed.until_marker(&mut conn).await, [table("api", "a.b")]);

    let partly = change_feed::uninstall(&t.url, &schemas[..1]).await.unwrap();
    assert_eq!((partly.removed, partly.function_dropped), (TABLES, false));
    assert_eq!(partly.still_in, ["api"]);
    assert!(partly.to_string().contains("tables in api still use it"), "{partly}");
    run(&mut conn, "UPDATE orders SET qty = 3; INSERT INTO api.items VALUES (1)").await;
    assert_eq!(feed.until_marker(&mut conn).await, [table("api", "items")]);

    let rest = change_feed::uninstall(&t.url, &schemas[1..]).await.unwrap();
    assert_eq!((rest.removed, rest.function_dropped, rest.schema_dropped), (2, true, false));
    assert_eq!(count(&mut conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dbapi'").await, 1);

    let missing = change_feed::install(&t.url, &["nope".to_string()]).await.unwrap_err();
    assert_eq!(missing.to_string(), r#"there is no schema "nope" in the database"#);
}

#[tokio::test]
async fn the_listener_comes_back_after_its_connection_is_killed_and_reports_everything_once() {
    let t = pg_database(FIXTURE).await;
    change_feed::install(&t.url, &[]).await.unwrap();
    let mut feed = Feed::start(&t).await;
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    run(&mut conn, "UPDATE orders SET qty = 1").await;
    assert_eq!(feed.until_marker(&mut conn).await, [public("orders")]);

    let killed: i64 = count(
        &mut conn,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
          WHERE datname = current_database() AND application_name = 'dbapi-change-feed' AND query LIKE 'LISTEN%'",
    )
    .await;
    assert_eq!(killed, 1);
    assert_eq!(feed.next().await, ChangeEvent::Everything);
    run(&mut conn, r#"UPDATE orders SET qty = 2; INSERT INTO "MixedCase" VALUES (7)"#).await;
    assert_eq!(feed.until_marker(&mut conn).await, [public("orders"), public("MixedCase")]);
}

/// The database refuses connections for a while: the listener keeps
/// trying (with backoff) and reports one `Everything` when it is back.
#[tokio::test]
async fn an_outage_longer_than_a_retry_is_reported_once_when_it_ends() {
    let t = pg_database(FIXTURE).await;
    change_feed::install(&t.url, &[]).await.unwrap();
    let mut feed = Feed::start(&t).await;
    let mut conn = PgConnection::connect(&t.url).await.unwrap();
    // ALTER DATABASE and the kill run from outside the database.
    let mut admin = PgConnection::connect(&server_url(support::PG_URL_VAR)).await.unwrap();
    let name = &t.name;
    run(&mut admin, &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
          WHERE datname = $1 AND application_name = 'dbapi-change-feed'",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    // Not a synchronization: the length of the outage, over two retries.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    run(&mut conn, "UPDATE orders SET qty = 4").await;
    run(&mut admin, &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    assert_eq!(feed.next().await, ChangeEvent::Everything);
    run(&mut conn, "UPDATE orders SET qty = 5").await;
    assert_eq!(feed.until_marker(&mut conn).await, [public("orders")]);
}

#[tokio::test]
async fn the_cli_refuses_mysql_and_sqlite_urls() {
    for url in ["mysql://root@127.0.0.1:3306/mysql", "mariadb://root@127.0.0.1:3306/x", "sqlite://demo.sqlite"] {
        for command in ["install-change-feed", "uninstall-change-feed"] {
            let output = cli(&[command, "--database-url", url]);
            assert!(!output.status.success(), "{command} {url}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(
                    "the change feed is PostgreSQL's; on MySQL/MariaDB and SQLite the cache TTL bounds staleness"
                ),
                "{command} {url}: {stderr}"
            );
        }
    }
}
