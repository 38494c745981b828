//! Request limits (issue 18, item 7) on every engine, in process: the URL's
//! length, filters and embeds per request, the statement timeout, the
//! request timeout, CORS and the headers of error responses. The connection
//! limits need a real socket: see `connection_limits.rs`.

mod support;

use std::time::{Duration, Instant};

use dbapi_crds::config::{CorsSettings, RuntimeConfig};
use support::Engine;
use support::api::Api;

fn schema(engine: Engine) -> String {
    let slow = match engine {
        Engine::Postgres => "CREATE VIEW slow AS SELECT pg_sleep(30)::text AS x;",
        Engine::MySql => "CREATE VIEW slow AS SELECT SLEEP(30) AS x;",
        // Counts to a billion: minutes, unless interrupted.
        Engine::Sqlite => {
            "CREATE VIEW slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) \
             SELECT count(*) AS x FROM c;"
        }
    };
    format!(
        "CREATE TABLE owners (id INTEGER PRIMARY KEY, name VARCHAR(50));
         CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50), owner_id INTEGER REFERENCES owners(id));
         INSERT INTO owners VALUES (1, 'ann');
         INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 1);
         {slow}"
    )
}

async fn api(engine: Engine, config: RuntimeConfig) -> Api {
    Api::with_sql(engine, &schema(engine), config).await
}

#[tokio::test]
async fn limit_url_length_is_414_with_the_json_error_shape() {
    let mut config = RuntimeConfig::default();
    config.api.max_url_bytes = 256;
    let api = api(Engine::Sqlite, config).await;
    let fits = format!("/items?name=neq.{}", "x".repeat(256 - "/items?name=neq.".len()));
    api.get(&fits).await.expect(200);
    let long = format!("{fits}x");
    let e = api.get(&long).await;
    let body = e.expect_error(414, "DBAPI414");
    assert!(body["message"].as_str().unwrap().contains("257"), "{body}");
    assert_eq!(e.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(e.header("cache-control"), Some("no-store"));
    // Writes too, before their body is read.
    api.send("PATCH", &format!("{long}&id=eq.1"), &[], r#"{"name":"c"}"#).await.expect_error(414, "DBAPI414");

    // The default is 8 KiB.
    let api = self::api(Engine::Sqlite, RuntimeConfig::default()).await;
    api.get(&format!("/items?name=neq.{}", "x".repeat(8000))).await.expect(200);
    api.get(&format!("/items?name=neq.{}", "x".repeat(8200))).await.expect_error(414, "DBAPI414");
}

async fn limit_filters_and_embeds(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_filters = 3;
    config.api.max_embeds = 1;
    let api = api(engine, config).await;
    api.get("/items?id=gt.0&or=(id.eq.1,name.eq.a)").await.expect(200);
    // Inside logic trees.
    let e = api.get("/items?id=gt.0&or=(id.eq.1,and(id.eq.2,name.eq.a))").await.expect_error(400, "DBAPI105");
    assert!(e["message"].as_str().unwrap().contains("4 filter conditions"), "{e}");
    // On embedded resources.
    api.get("/owners?select=*,items(*)&id=eq.1&items.id=gt.0&items.or=(id.eq.1,id.eq.2)")
        .await
        .expect_error(400, "DBAPI105");
    // Writes count their filters too.
    api.send("PATCH", "/items?id=eq.1&name=eq.a&owner_id=eq.1&id=gt.0", &[], r#"{"name":"c"}"#)
        .await
        .expect_error(400, "DBAPI105");
    assert_eq!(api.count("items WHERE name = 'c'").await, 0);

    api.get("/owners?select=*,items(*)").await.expect(200);
    let e = api.get("/items?select=*,owners(*,items(*))").await.expect_error(400, "DBAPI106");
    assert!(e["message"].as_str().unwrap().contains("embeds 2 resources"), "{e}");
}

async fn limit_statement_timeout(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.database.statement_timeout_ms = Some(300);
    let api = api(engine, config).await;
    let started = Instant::now();
    let e = api.get("/slow").await;
    let body = e.expect_error(504, "57014");
    assert!(body["message"].as_str().unwrap().contains("took longer than the database allows"), "{body}");
    assert!(body["hint"].as_str().unwrap().contains("database.statementTimeoutMs"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(20), "the database did not cancel the statement");
    // The connection it ran on serves the next request.
    assert_eq!(api.get("/items?order=id").await.expect(200).column_i64("id"), [1, 2]);
}

/// Statements still running on the test database (excluding the asking
/// one), where the engine can tell.
async fn running_reads_of_slow(api: &Api) -> Option<i64> {
    let sql = match api.engine() {
        Engine::Postgres => {
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%slow%'"
        }
        Engine::MySql => {
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') AND INFO LIKE '%slow%'"
        }
        Engine::Sqlite => return None,
    };
    Some(api.sql_i64(sql).await[0])
}

async fn limit_request_timeout(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.server.request_timeout_seconds = 1;
    // One connection: the next request needs the one the slow read held.
    config.database.pool.max_connections = 1;
    let api = api(engine, config).await;
    let started = Instant::now();
    let e = api.get("/slow").await;
    let body = e.expect_error(504, "DBAPI504");
    assert!(body["hint"].as_str().unwrap().contains("server.requestTimeoutSeconds"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.header("cache-control"), Some("no-store"));
    // The database stops the abandoned statement (a second after the
    // request's deadline), long before its 30 s are over; right after the
    // 504 it is still seen running.
    if let Some(running) = running_reads_of_slow(&api).await {
        assert_eq!(running, 1, "the check does not see the abandoned statement");
        let deadline = Instant::now() + Duration::from_secs(10);
        while running_reads_of_slow(&api).await != Some(0) {
            assert!(Instant::now() < deadline, "the timed-out statement is still running");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        // SQLite cannot be asked; its deadline is a second past the 504.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // The pool's one connection, dropped midway, serves the next request.
    assert_eq!(api.get("/items?order=id").await.expect(200).column_i64("id"), [1, 2]);
}

on_every_engine!(limit_filters_and_embeds, limit_statement_timeout, limit_request_timeout);

#[tokio::test]
async fn limit_cors_default_is_any_origin_without_credentials() {
    let api = api(Engine::Sqlite, RuntimeConfig::default()).await;
    let preflight = [("origin", "https://anyone.example"), ("access-control-request-method", "PATCH")];
    let r = api.send("OPTIONS", "/items", &preflight, "").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("PATCH"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    let r = api.get_with("/items", &[("origin", "https://anyone.example")]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-expose-headers").unwrap().contains("content-range"));
}

#[tokio::test]
async fn limit_cors_configured_origins_methods_credentials_and_max_age() {
    let mut config = RuntimeConfig::default();
    config.api.cors = CorsSettings {
        allowed_origins: vec!["https://app.example".into()],
        allowed_methods: vec!["GET".into(), "POST".into()],
        allowed_headers: vec!["authorization".into(), "prefer".into()],
        allow_credentials: true,
        max_age_seconds: Some(600),
    };
    let api = api(Engine::Sqlite, config).await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "prefer"),
    ];
    let r = api.send("OPTIONS", "/items", &preflight, "").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    let methods = r.header("access-control-allow-methods").unwrap().to_string();
    assert!(methods.contains("POST") && !methods.contains("DELETE"), "{methods}");
    assert!(r.header("access-control-allow-headers").unwrap().contains("prefer"));
    let r = api.get_with("/items", &[("origin", "https://evil.example")]).await;
    r.expect(200);
    assert_eq!(r.header("access-control-allow-origin"), None, "an origin not listed gets no CORS grant");
}

#[tokio::test]
async fn limit_settings_that_cannot_work_are_refused_at_start_up() {
    let mut config = RuntimeConfig::default();
    config.api.cors.allow_credentials = true;
    let db = support::sqlite_database("CREATE TABLE t (id INTEGER PRIMARY KEY);").await;
    let err = dbapi_runtime::server::prepare(&db.url, config).await.err().expect("refused");
    assert!(err.to_string().contains("api.cors.allowCredentials"), "{err}");
}
