//! The runtime as a process and its operational surface: start-up errors,
//! the admin port, the docs page, the demo, configuration, database
//! outages and shutdown.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbapi_crds::config::RuntimeConfig;
use dbapi_runtime::db::Statement;
use support::Engine;
use support::api::Api;

const BIN: &str = env!("CARGO_BIN_EXE_dbapi-runtime");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the binary to completion and returns (exit success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).env_remove("DBAPI_DATABASE_URL").output().expect("the binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A running server process, killed on drop.
struct Server {
    child: Child,
    api: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let (api, admin) = (free_port(), free_port());
        let listen = format!("127.0.0.1:{api}");
        let admin_listen = format!("127.0.0.1:{admin}");
        let child = Command::new(BIN)
            .args(args)
            .args(["--listen", &listen, "--admin-listen", &admin_listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let server = Server { child, api };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http_get(admin, "/readyz") {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not become ready on port {admin}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over a plain socket: (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http(port, "GET", path, "")
}

/// A minimal HTTP/1.1 request with a JSON body over a plain socket:
/// (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

#[test]
fn start_up_errors_are_clear_and_fail() {
    let (ok, err) = run(&["serve", "--database-url", "oracle://db/x"]);
    assert!(!ok);
    assert!(err.contains("unsupported database URL scheme") && err.contains("postgres://"), "{err}");

    let port = free_port();
    let url = format!("postgres://app:topsecret@127.0.0.1:{port}/nope");
    let (ok, err) = run(&["serve", "--database-url", &url]);
    assert!(!ok);
    assert!(err.contains("could not connect to the database"), "{err}");
    assert!(!err.contains("topsecret"), "the password leaked: {err}");

    let (ok, err) = run(&["serve", "--database-url", "sqlite:///nonexistent-dir/x.db"]);
    assert!(!ok);
    assert!(err.contains("could not connect"), "{err}");

    let dir = std::env::temp_dir().join(format!("dbapi-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "database:\n  pool:\n    maxConections: 5\n").unwrap();
    let db = dir.join("db.sqlite");
    let db_url = format!("sqlite://{}?mode=rwc", db.display());
    let (ok, err) = run(&["serve", "--database-url", &db_url, "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("maxConections") && err.contains("config.yaml"), "{err}");
    std::fs::write(&config, "api:\n  pathPrefix: /rest/v1/\n").unwrap();
    let (ok, err) = run(&["serve", "--database-url", &db_url, "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("api.pathPrefix") && err.contains("must not end with"), "{err}");

    let (ok, err) = run(&["serve", "--database-url", &db_url, "--schemas", "nope"]);
    assert!(!ok);
    assert!(err.contains("\"nope\""), "{err}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, err) = run(&["serve", "--database-url", &db_url, "--listen", &addr]);
    assert!(!ok);
    assert!(err.contains("could not listen on") && err.contains("--listen"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_creates_its_database_once_and_serves_it() {
    let dir = std::env::temp_dir().join(format!("dbapi-demo-{}", std::process::id()));
    let path = dir.join("demo.sqlite");
    let p = path.to_str().unwrap();
    {
        let mut server = Server::start(&["demo", "--path", p]);
        let (status, body) = http_get(server.api, "/books?select=title,authors(name)&limit=2").unwrap();
        assert_eq!(status, 200, "{body}");
        let books: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(books.as_array().unwrap().len(), 2);
        assert!(books[0]["authors"].as_array().is_some_and(|a| !a.is_empty()));
        let (status, body) = http_get(server.api, "/book_sales?limit=1").unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, _) = http_get(server.api, "/").unwrap();
        assert_eq!(status, 200);
        // The sample is served read-only: a write is refused as PostgreSQL
        // refuses one in a read-only transaction, and nothing is written.
        let (status, body) = http(server.api, "POST", "/authors", r#"{"name": "New Author"}"#).unwrap();
        assert_eq!(status, 405, "{body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["code"], "25006", "{body}");
        assert!(error["message"].as_str().unwrap().contains("read-only"), "{body}");
        assert!(error["hint"].as_str().unwrap().contains("mode=ro"), "{body}");
        let (_, body) = http_get(server.api, "/authors?name=eq.New%20Author").unwrap();
        assert_eq!(body, "[]");
        let _ = server.child.kill();
        let stdout = BufReader::new(server.child.stdout.take().unwrap());
        let banner: Vec<String> = stdout.lines().map_while(Result::ok).collect();
        assert!(banner.iter().any(|l| l.contains("created and serving")), "{banner:?}");
        assert!(banner.iter().any(|l| l.contains("curl")), "{banner:?}");
    }
    let created = std::fs::metadata(&path).unwrap().modified().unwrap();
    {
        let mut server = Server::start(&["demo", "--path", p]);
        let _ = server.child.kill();
        let stdout = BufReader::new(server.child.stdout.take().unwrap());
        let banner: Vec<String> = stdout.lines().map_while(Result::ok).collect();
        assert!(
            banner.iter().any(|l| l.contains("serving the sample")) && !banner.iter().any(|l| l.contains("created"))
        );
    }
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), created, "the second run reuses the file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("dbapi-term-{}", std::process::id()));
    let path = dir.join("demo.sqlite");
    let mut server = Server::start(&["demo", "--path", path.to_str().unwrap()]);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // The default drain delay (5 s) and nothing in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(http_get(server.api, "/books").is_err(), "the port is closed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn openapi_command_prints_the_document() {
    let dir = std::env::temp_dir().join(format!("dbapi-oa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("x.sqlite");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{AssertSqlSafe, Connection};
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe("CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
            .execute(&mut c)
            .await
            .unwrap();
    });
    let out = Command::new(BIN).args(["openapi", "--database-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/widgets"]["get"].is_object());
    assert!(doc.get("servers").is_none(), "no prefix, no server");
    let config = dir.join("prefix.yaml");
    std::fs::write(&config, "api: {pathPrefix: /rest/v1}\n").unwrap();
    let out = Command::new(BIN)
        .args(["openapi", "--database-url", &url, "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["servers"], serde_json::json!([{"url": "/rest/v1"}]), "the paths resolve under the prefix");
    let (ok, err) = run(&["openapi", "--database-url", &url, "--profile", "nope"]);
    assert!(!ok && err.contains("nope"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn admin_port_reports_health_and_readiness() {
    use tower::ServiceExt;
    let api = Api::fixture(Engine::Postgres).await;
    let admin = dbapi_runtime::http::admin_router(api.state.clone());
    let get = |path: &'static str| {
        let admin = admin.clone();
        async move {
            let r =
                admin.oneshot(axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap()).await.unwrap();
            r.status().as_u16()
        }
    };
    assert_eq!(get("/healthz").await, 200);
    assert_eq!(get("/readyz").await, 200);
    api.state.stop_accepting();
    assert_eq!(get("/readyz").await, 503, "readiness goes false when shutdown starts");
    assert_eq!(get("/healthz").await, 200, "liveness stays true while draining");
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after() {
    let api = Api::fixture(Engine::Postgres).await;
    // Take the database away under the running server.
    let admin = support::server_url(support::PG_URL_VAR);
    {
        use sqlx::{AssertSqlSafe, Connection};
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        let sql = format!("DROP DATABASE \"{}\" WITH (FORCE)", api.db.name);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
    }
    let r = api.get("/orders").await;
    r.expect_error(503, "PGRST003");
    assert_eq!(r.header("retry-after"), Some("5"));
    let admin_router = dbapi_runtime::http::admin_router(api.state.clone());
    use tower::ServiceExt;
    let ready =
        admin_router.oneshot(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(ready.unwrap().status().as_u16(), 503);
}

/// What a database restart or failover does to the runtime: the server
/// closes every connection it holds.
async fn close_runtime_connections(api: &Api) {
    match api.engine() {
        Engine::Postgres => {
            api.db
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND application_name = 'dbapi'",
                )
                .await
        }
        Engine::MySql => {
            let ids = api
                .sql_i64(
                    "SELECT id FROM information_schema.processlist \
                     WHERE db = DATABASE() AND id <> CONNECTION_ID()",
                )
                .await;
            assert!(!ids.is_empty(), "the runtime holds connections");
            for id in ids {
                api.db.execute(&format!("KILL CONNECTION {id}")).await;
            }
        }
        Engine::Sqlite => unreachable!("SQLite has no server"),
    }
}

/// Reads that meet a connection the database closed run again on a fresh
/// one: after a restart every GET answers, sequential or concurrent, and
/// whichever connection (pipelined or pooled) it happens to take.
async fn reads_survive_the_database_closing_connections(api: Api) {
    let read = || api.get("/orders?select=id&order=id&limit=2");
    let expected = read().await.expect(200).json();
    // Open every read connection: concurrent reads spread over them.
    for r in futures_util::future::join_all((0..8).map(|_| read())).await {
        r.expect(200);
    }
    for _ in 0..2 {
        close_runtime_connections(&api).await;
        for _ in 0..3 {
            assert_eq!(read().await.expect(200).json(), expected);
        }
        close_runtime_connections(&api).await;
        for r in futures_util::future::join_all((0..16).map(|_| read())).await {
            assert_eq!(r.expect(200).json(), expected);
        }
    }
}

#[tokio::test]
async fn reads_survive_closed_connections_pipelined() {
    reads_survive_the_database_closing_connections(Api::fixture(Engine::Postgres).await).await;
}

#[tokio::test]
async fn reads_survive_closed_connections_pooled() {
    let mut config = RuntimeConfig::default();
    config.database.pool.read_connections = 0;
    reads_survive_the_database_closing_connections(Api::fixture_with(Engine::Postgres, config).await).await;
}

#[tokio::test]
async fn reads_survive_closed_connections_mysql() {
    reads_survive_the_database_closing_connections(Api::fixture(Engine::MySql).await).await;
}

/// On PostgreSQL, reads share the pipelined read connections: many at once
/// ride two connections, and each gets its own rows.
#[tokio::test]
async fn concurrent_reads_share_connections_and_each_gets_its_own_answer() {
    let api = Api::fixture(Engine::Postgres).await;
    let ids = api.sql_i64("SELECT id FROM orders ORDER BY id").await;
    let reads = ids.iter().cycle().take(64).map(|id| {
        let api = &api;
        async move { (*id, api.get(&format!("/orders?id=eq.{id}&select=id,customer_id")).await) }
    });
    for (id, r) in futures_util::future::join_all(reads).await {
        r.expect(200);
        let customer = api.sql_i64(&format!("SELECT customer_id FROM orders WHERE id = {id}")).await;
        assert_eq!(r.json(), serde_json::json!([{"id": id, "customer_id": customer[0]}]));
    }
    let connections = api
        .sql_i64(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'dbapi'",
        )
        .await;
    // The two read connections and the one pooled connection introspection
    // used; 64 reads through the pool would have opened all of its 8.
    assert!(connections[0] <= 3, "{} connections for 64 concurrent reads", connections[0]);
}

/// A slow read holds up only the reads queued behind it on its connection:
/// the next ones go to the other read connection.
#[tokio::test]
async fn a_slow_read_does_not_hold_up_the_others() {
    let sql = "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);
               CREATE FUNCTION slow() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1 FROM pg_sleep(3)';";
    let api = Api::with_sql(Engine::Postgres, sql, RuntimeConfig::default()).await;
    let slow = async {
        let r = api.get("/rpc/slow").await;
        (r, Instant::now())
    };
    let fast = async {
        tokio::time::sleep(Duration::from_millis(300)).await; // the slow read is in flight
        for _ in 0..5 {
            api.get("/t").await.expect(200);
        }
        Instant::now()
    };
    let ((slow, slow_done), fast_done) = tokio::join!(slow, fast);
    slow.expect(200);
    assert!(fast_done < slow_done, "the fast reads waited for the slow one");
}

#[tokio::test]
async fn an_exhausted_pool_is_503_with_retry_after() {
    let mut config = RuntimeConfig::default();
    config.database.pool.max_connections = 1;
    config.database.pool.acquire_timeout_seconds = 1;
    let api = Api::fixture_with(Engine::Postgres, config).await;
    let dbapi_runtime::db::Db::Postgres(pool, _) = &api.state.db else { unreachable!() };
    let held = dbapi_runtime::db::pool::lease(pool).await.unwrap();
    let r = api.get("/orders").await;
    r.expect_error(503, "PGRST003");
    assert_eq!(r.header("retry-after"), Some("5"));
    drop(held);
    api.get("/orders").await.expect(200);
}

on_every_engine!(a_transaction_left_open_is_rolled_back_at_once);

/// A request dropped inside its transaction (the client went away, or a
/// handler left early) must not leave the transaction open on a pooled
/// connection, holding its locks until someone reuses it.
async fn a_transaction_left_open_is_rolled_back_at_once(engine: Engine) {
    let api = Api::with_sql(engine, "CREATE TABLE k (id int PRIMARY KEY)", RuntimeConfig::default()).await;
    let insert = Statement { sql: "INSERT INTO k VALUES (1)".into(), ..Statement::default() };
    let mut tx = api.state.db.begin().await.unwrap();
    tx.execute(&insert).await.unwrap();
    drop(tx);
    // The same key from another connection: it would wait for the open
    // transaction's lock (on SQLite, the database's write lock).
    tokio::time::timeout(Duration::from_secs(4), api.db.execute("INSERT INTO k VALUES (1)"))
        .await
        .expect("the dropped transaction still holds its lock");
    assert_eq!(api.count("k").await, 1);
}

#[tokio::test]
async fn a_query_dropped_midway_leaves_its_connection_usable() {
    let mut config = RuntimeConfig::default();
    config.database.pool.max_connections = 1;
    let api = Api::with_sql(Engine::Postgres, "", config).await;
    let slow = Statement { sql: "SELECT 7::int8 FROM pg_sleep(1)".into(), ..Statement::default() };
    let quick = Statement { sql: "SELECT 42::int8".into(), ..Statement::default() };
    tokio::time::timeout(Duration::from_millis(100), api.state.db.fetch_i64(&slow)).await.unwrap_err();
    // The one connection is reused: the answer is the new query's, not
    // the abandoned one's.
    assert_eq!(api.state.db.fetch_i64(&quick).await.unwrap(), Some(42));
}

#[tokio::test]
async fn table_include_and_exclude_hide_tables() {
    let mut config = RuntimeConfig::default();
    config.database.tables.exclude = vec!["order_*".into(), "stock".into()];
    let api = Api::fixture_with(Engine::Sqlite, config).await;
    api.get("/orders?limit=1").await.expect(200);
    api.get("/order_items").await.expect_error(404, "PGRST205");
    api.get("/stock").await.expect_error(404, "PGRST205");
    // Relationships through a hidden table are gone too.
    api.get("/orders?select=id,products(id)").await.expect_error(400, "PGRST200");
    let doc = api.get("/").await.json();
    assert!(doc["paths"]["/orders"].is_object());
    assert!(doc["paths"]["/order_items"].is_null());

    let mut config = RuntimeConfig::default();
    config.database.tables.include = vec!["customers".into()];
    let api = Api::fixture_with(Engine::MySql, config).await;
    api.get("/customers?limit=1").await.expect(200);
    api.get("/orders").await.expect_error(404, "PGRST205");
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let api = Api::fixture(Engine::Postgres).await;
    let r = api.get("/").await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().contains("openapi+json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for table in ["orders", "customers", "customer_totals", "MixedCase"] {
        assert!(doc["paths"][format!("/{table}")]["get"].is_object(), "{table} is documented");
    }
    assert_eq!(api.get("/_/openapi.json").await.json(), doc);
    let page = api.get("/_/docs/").await;
    page.expect(200);
    assert!(page.body.to_lowercase().contains("swagger"), "{}", &page.body[..page.body.len().min(300)]);
    let script = api.get("/_/docs/swagger-ui-bundle.js").await;
    script.expect(200);
    assert!(script.body.len() > 100_000, "the UI is served from the binary");
    let init = api.get("/_/docs/swagger-initializer.js").await;
    assert!(init.body.contains("/_/openapi.json"), "{}", init.body);
}

#[test]
fn sighup_reloads_the_schema() {
    let dir = std::env::temp_dir().join(format!("dbapi-hup-{}", std::process::id()));
    let path = dir.join("demo.sqlite");
    let server = Server::start(&["demo", "--path", path.to_str().unwrap()]);
    assert_eq!(http_get(server.api, "/gadgets").unwrap().0, 404);
    let url = format!("sqlite://{}", path.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{AssertSqlSafe, Connection};
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")).execute(&mut c).await.unwrap();
    });
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(server.api, "/gadgets").unwrap().0 != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the schema");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
