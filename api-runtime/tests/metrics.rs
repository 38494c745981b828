//! The admin port's `/metrics`, on the built binary: responses counted by
//! table, method and status and timed, never served on the API port, and the rate
//! limiter's Redis outages (a throwaway `redis-server` that is absent at
//! start-up and then comes up).

mod support;

use std::time::Duration;

use support::process::{OwnRedis, Runtime, TempDir, free_port, wait_for};

async fn database() -> support::TestDb {
    support::sqlite_database("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1);").await
}

#[tokio::test]
async fn metrics_are_on_the_admin_port_only_and_count_responses_by_table() {
    let (root, db) = (TempDir::new(), database().await);
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url]);
    let requests = |labels: &str| runtime.metric(&format!("dbapi_http_requests_total{{{labels}}}"));
    let count = |labels: &str| runtime.metric(&format!("dbapi_http_request_duration_seconds_count{{{labels}}}"));
    assert_eq!(runtime.get("/items", &[]).status, 200);
    assert_eq!(runtime.get("/items?id=eq.1", &[]).status, 200);
    assert_eq!(runtime.get("/items?nope=eq.1", &[]).status, 400);
    assert_eq!(runtime.get("/nothing_here", &[]).status, 404);
    assert_eq!(runtime.get("/rpc/no_such_function", &[]).status, 404);
    // `/metrics` on the API port is a table name like any other: not found.
    let on_api = runtime.get("/metrics", &[]);
    assert_eq!(on_api.status, 404, "{}", on_api.body);
    let text = runtime.metrics();
    assert_eq!(requests("table=\"items\",method=\"GET\",status=\"200\""), 2.0, "{text}");
    assert_eq!(requests("table=\"items\",method=\"GET\",status=\"400\""), 1.0, "{text}");
    // Names the schema does not have are one series, whatever the path.
    assert_eq!(requests("table=\"\",method=\"GET\",status=\"404\""), 3.0, "{text}");
    for minted in ["nothing_here", "no_such_function", "metrics"] {
        assert!(!text.contains(minted), "{minted} became a label: {text}");
    }
    assert_eq!(count("table=\"items\",method=\"GET\",class=\"2xx\""), 2.0, "{text}");
    assert_eq!(count("table=\"items\",method=\"GET\",class=\"4xx\""), 1.0, "{text}");
    assert_eq!(count("table=\"\",method=\"GET\",class=\"4xx\""), 3.0, "{text}");
    for name in [
        "dbapi_config_last_reload_success_timestamp_seconds",
        "dbapi_rate_limit_redis_fallback_active 0",
        "dbapi_rate_limit_redis_outages_total 0",
        "dbapi_http_request_duration_seconds_bucket{le=\"0.005\",table=\"items\",method=\"GET\",class=\"2xx\"}",
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
        let runtime = Runtime::serve_with_env(&root.0, &args, &[("DBAPI_LOG", "info,dbapi_runtime::http=debug")]);
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

#[tokio::test]
async fn function_calls_are_counted_under_their_function() {
    let root = TempDir::new();
    let db =
        support::pg_database("CREATE FUNCTION add_one(n int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT n + 1';")
            .await;
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url]);
    assert_eq!(runtime.get("/rpc/add_one?n=1", &[]).status, 200);
    let post = support::process::send(runtime.api, "POST", "/rpc/add_one", &[], Some("{\"n\":2}")).unwrap();
    assert_eq!(post.status, 200, "{}", post.body);
    let text = runtime.metrics();
    for method in ["GET", "POST"] {
        let series = format!("dbapi_http_requests_total{{table=\"rpc/add_one\",method=\"{method}\",status=\"200\"}}");
        assert_eq!(runtime.metric(&series), 1.0, "{text}");
    }
}
