//! The circuit breaker on the built binary, with a throwaway PostgreSQL
//! stopped mid-test: after `failureThreshold` requests in a row find it
//! down, cached GETs keep answering (stale), uncached ones and writes get
//! 503 at once, and everything recovers when it is back.

mod support;

#[allow(dead_code)]
#[path = "read_replica/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use support::process::{Reply, Runtime, TempDir, send, wait_for};

const CONFIG: &str = "
cache: {defaultTtlSeconds: 1}
database:
  pool: {acquireTimeoutSeconds: 1}
  circuit: {failureThreshold: 2, openSeconds: 1}
";

fn post(port: u16, path: &str, body: &str) -> Reply {
    send(port, "POST", path, &[], Some(body)).expect("the API answers")
}

#[tokio::test]
async fn an_open_circuit_answers_from_the_cache_refuses_the_rest_at_once_and_closes_when_the_database_is_back() {
    let db = cluster::PgCluster::start();
    db.execute(
        false,
        "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1); CREATE TABLE other (id int); \
         CREATE FUNCTION now_id() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';",
    )
    .await;
    let dir = TempDir::new();
    let config = dir.0.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let runtime = Runtime::serve(&dir.0, &["--database-url", &db.primary_url(), "--config", config.to_str().unwrap()]);
    let cached = runtime.get("/items", &[]);
    assert_eq!((cached.status, cached.header("cache-status")), (200, Some("dbapi; fwd=miss")));
    assert_eq!(runtime.metric("dbapi_circuit_state"), 0.0);

    db.stop_primary();
    // Requests that reach the database find it down, until the circuit
    // opens (two in a row).
    for _ in 0..2 {
        let r = runtime.get("/other", &[]);
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("PGRST003"), "{}", r.body);
    }
    assert_eq!(runtime.metric("dbapi_circuit_state"), 1.0, "{}", runtime.log());
    // Open: the cached answer, past its TTL, stale; the rest refused at once.
    std::thread::sleep(Duration::from_millis(1100)); // the TTL (1 s) is over
    let stale = runtime.get("/items", &[]);
    assert_eq!((stale.status, stale.header("cache-status")), (200, Some("dbapi; hit; detail=stale")), "{}", stale.body);
    assert_eq!(stale.body, cached.body);
    assert!(stale.header("age").is_some());
    let started = Instant::now();
    let refused = runtime.get("/other", &[]);
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("PGRST003") && refused.header("retry-after").is_some(), "{:?}", refused.headers);
    assert_eq!(runtime.get("/rpc/now_id", &[]).status, 503, "a function call is not cached: refused");
    let write = post(runtime.api, "/items", r#"{"id": 2}"#);
    assert_eq!(write.status, 503, "{}", write.body);
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once: {:?}", started.elapsed());
    assert!(runtime.log().contains("circuit open"), "{}", runtime.log());
    assert!(runtime.metric("dbapi_cache_requests_total{result=\"stale\"}") >= 1.0);

    db.restart_primary();
    wait_for(
        Duration::from_secs(20),
        || format!("the circuit to close: {}", runtime.log()),
        || (runtime.get("/other", &[]).status == 200).then_some(()),
    );
    assert_eq!(runtime.metric("dbapi_circuit_state"), 0.0);
    assert_eq!(post(runtime.api, "/items", r#"{"id": 2}"#).status, 201);
    let fresh = runtime.get("/items", &[]);
    assert!(fresh.body.contains('2'), "the write made the next read fresh: {}", fresh.body);
}
