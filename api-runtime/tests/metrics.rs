//! The admin port's `/metrics`, on the built binary: responses counted by
//! status class and timed, never served on the API port, and the rate
//! limiter's Redis outages (a throwaway `redis-server` that is absent at
//! start-up and then comes up).

mod support;

use std::time::Duration;

use support::process::{OwnRedis, Runtime, TempDir, free_port, wait_for};

async fn database() -> support::TestDb {
    support::sqlite_database("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1);").await
}

#[tokio::test]
async fn metrics_are_on_the_admin_port_only_and_count_responses() {
    let (root, db) = (TempDir::new(), database().await);
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url]);
    let class = |c: &str| runtime.metric(&format!("dbapi_http_requests_total{{class=\"{c}\"}}"));
    let count = || runtime.metric("dbapi_http_request_duration_seconds_count");
    let (ok, missing, observed) = (class("2xx"), class("4xx"), count());
    assert_eq!(runtime.get("/items", &[]).status, 200);
    assert_eq!(runtime.get("/nothing_here", &[]).status, 404);
    // `/metrics` on the API port is a table name like any other: not found.
    let on_api = runtime.get("/metrics", &[]);
    assert_eq!(on_api.status, 404, "{}", on_api.body);
    assert_eq!(class("2xx"), ok + 1.0, "{}", runtime.metrics());
    assert_eq!(class("4xx"), missing + 2.0, "{}", runtime.metrics());
    assert_eq!(count(), observed + 3.0);
    let text = runtime.metrics();
    for name in [
        "dbapi_config_last_reload_success_timestamp_seconds",
        "dbapi_rate_limit_redis_fallback_active 0",
        "dbapi_rate_limit_redis_outages_total 0",
        "dbapi_http_request_duration_seconds_bucket{le=\"0.005\"}",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
}

#[tokio::test]
async fn a_redis_outage_is_counted_and_shown_while_it_lasts() {
    let (root, db) = (TempDir::new(), database().await);
    std::fs::write(root.0.join("config.yaml"), "rateLimit: {requestsPerMinute: 600, burst: 10}\n").unwrap();
    let port = free_port();
    let config = root.0.join("config.yaml").to_string_lossy().into_owned();
    let url = format!("redis://127.0.0.1:{port}");
    // Nothing listens on the port yet: down from start-up.
    let runtime = Runtime::serve(
        &root.0,
        &["--database-url", &db.url, "--config", &config, "--redis-url", &url, "--redis-key-prefix", "metrics:"],
    );
    assert_eq!(runtime.metric("dbapi_rate_limit_redis_outages_total"), 1.0, "{}", runtime.metrics());
    assert_eq!(runtime.metric("dbapi_rate_limit_redis_fallback_active"), 1.0);
    assert_eq!(runtime.get("/items", &[]).status, 200, "no request fails while Redis is down");

    let _redis = OwnRedis::spawn(port, &root.0);
    wait_for(
        Duration::from_secs(30),
        || format!("the limiter to return to Redis: {}", runtime.log()),
        || (runtime.metric("dbapi_rate_limit_redis_fallback_active") == 0.0).then_some(()),
    );
    assert_eq!(runtime.metric("dbapi_rate_limit_redis_outages_total"), 1.0, "still one outage");
}

/// The request's id is on the log lines written while it runs (here the
/// HTTP trace's, at debug level), as text and as JSON.
#[tokio::test]
async fn log_lines_carry_the_request_id() {
    for format in ["text", "json"] {
        let (root, db) = (TempDir::new(), database().await);
        let args = ["--database-url", &db.url, "--log-format", format];
        let runtime = Runtime::serve_with_env(&root.0, &args, &[("DBAPI_LOG", "info,tower_http=debug")]);
        let reply = runtime.get("/items", &[("X-Request-Id", "find-me-42")]);
        assert_eq!(reply.header("x-request-id"), Some("find-me-42"));
        wait_for(
            Duration::from_secs(10),
            || format!("a {format} log line with the id: {}", runtime.log()),
            || runtime.log().lines().any(|l| l.contains("find-me-42") && l.contains("/items")).then_some(()),
        );
    }
}

/// The pool at scrape time, rate-limit refusals and schema reloads, by the
/// names the README lists.
#[tokio::test]
async fn pool_refusals_and_reloads_are_counted() {
    let (root, db) = (TempDir::new(), database().await);
    let config = root.0.join("config.yaml");
    std::fs::write(&config, "rateLimit: {requestsPerMinute: 1, burst: 0}\n").unwrap();
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url, "--config", config.to_str().unwrap()]);
    assert_eq!(runtime.metric("dbapi_rate_limited_total"), 0.0);
    assert_eq!(runtime.get("/items", &[]).status, 200);
    assert_eq!(runtime.get("/items", &[]).status, 429);
    assert_eq!(runtime.metric("dbapi_rate_limited_total"), 1.0, "{}", runtime.metrics());
    // Nothing in flight: every open connection is idle, nobody waits.
    let idle = runtime.metric("dbapi_db_pool_connections{state=\"idle\"}");
    assert!(idle >= 1.0, "{}", runtime.metrics());
    assert_eq!(runtime.metric("dbapi_db_pool_connections{state=\"busy\"}"), 0.0);
    assert_eq!(runtime.metric("dbapi_db_pool_waiting"), 0.0);

    assert_eq!(runtime.metric("dbapi_schema_reloads_total{result=\"ok\"}"), 0.0);
    runtime.signal("HUP");
    wait_for(
        Duration::from_secs(10),
        || format!("a counted schema reload: {}", runtime.metrics()),
        || (runtime.metric("dbapi_schema_reloads_total{result=\"ok\"}") == 1.0).then_some(()),
    );
    assert_eq!(runtime.metric("dbapi_schema_reloads_total{result=\"error\"}"), 0.0);
}
