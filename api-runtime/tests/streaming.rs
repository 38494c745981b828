//! Streamed reads (issue 17, item 10): `Accept: application/x-ndjson` and
//! `text/csv` on a table are written row by row as the database produces
//! them: the same rows as the JSON answer, a role's `maxRows` lifting the
//! cap for them only, errors before the first row answered with their
//! status, a failure after it cutting the answer off, and a client that
//! goes away stopping the query on the server.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use dbapi_crds::config::RuntimeConfig;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::Engine;
use support::api::{Api, encode_uri};
use tower::ServiceExt;

const NDJSON: (&str, &str) = ("accept", "application/x-ndjson");
const CSV: (&str, &str) = ("accept", "text/csv");

/// Two authors and twenty books, one title with CSV's special characters.
fn library() -> String {
    let mut sql = String::from(
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name VARCHAR(40));
         CREATE TABLE books (id INTEGER PRIMARY KEY, title VARCHAR(80), author_id INTEGER, pages INTEGER,
             FOREIGN KEY (author_id) REFERENCES authors(id));
         INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bob');
         INSERT INTO books VALUES (1, 'Say \"hi\", then go', 1, NULL)",
    );
    for id in 2..=20 {
        sql.push_str(&format!(", ({id}, 'Book {id}', {}, {})", 1 + id % 2, id * 10));
    }
    sql.push(';');
    sql
}

/// The lines of an NDJSON body, each parsed; every line ends with `\n`.
fn lines(body: &str) -> Vec<Value> {
    assert!(body.is_empty() || body.ends_with('\n'), "each line is terminated: {body:?}");
    body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}"))).collect()
}

async fn ndjson_lines_are_the_rows_of_the_json_answer(engine: Engine) {
    let api = Api::with_sql(engine, &library(), RuntimeConfig::default()).await;
    for path in [
        "/books?select=id,title,pages,authors(name)&order=id.desc",
        "/books?select=id,title&author_id=eq.1&limit=3",
        // Rows skipped: the page is cut before the objects are built.
        "/books?select=title,writer:authors(name)&order=title&offset=4&limit=5",
        "/books?id=gt.100",
    ] {
        let json = api.get(path).await;
        let streamed = api.get_with(path, &[NDJSON]).await;
        streamed.expect(200);
        assert_eq!(streamed.header("content-type"), Some("application/x-ndjson"), "{path}");
        assert_eq!(streamed.header("content-range"), None, "the row count is known only at the end");
        assert_eq!(Value::Array(lines(&streamed.body)), json.json(), "{path}");
    }
    // A finished body polled once more stays finished.
    let request = Request::get("/books?select=id&limit=2").header(NDJSON.0, NDJSON.1).body(Body::empty()).unwrap();
    let mut body = api.router().oneshot(request).await.unwrap().into_body();
    while let Some(frame) = body.frame().await {
        frame.expect("the rows");
    }
    assert!(body.frame().await.is_none());
    // The same statement again: prepared statements run twice give the same.
    let path = "/books?select=id,authors(name)&order=id&limit=2";
    assert_eq!(api.get_with(path, &[NDJSON]).await.body, api.get_with(path, &[NDJSON]).await.body);
}

async fn csv_is_streamed_as_postgrest_writes_it(engine: Engine) {
    let api = Api::with_sql(engine, &library(), RuntimeConfig::default()).await;
    let r = api.get_with("/books?select=id,title,pages&id=lte.3&order=id", &[CSV]).await;
    r.expect(200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.body, "id,title,pages\n1,\"Say \"\"hi\"\", then go\",\n2,Book 2,20\n3,Book 3,30");
    let embedded = api.get_with("/books?select=id,authors(name)&id=eq.2", &[CSV]).await;
    assert_eq!(embedded.body, "id,authors\n2,\"{\"\"name\"\":\"\"Ann\"\"}\"");
    // No rows: the header line alone.
    assert_eq!(api.get_with("/books?select=id,title&id=gt.100", &[CSV]).await.body, "id,title\n");
}

async fn a_roles_max_rows_lifts_the_cap_of_streamed_answers_only(engine: Engine) {
    let mut config: RuntimeConfig = serde_yaml::from_str(
        "api: {maxRows: 5}
roles:
  - {name: exporter, maxRows: 15, rules: [{tables: ['*'], verbs: [GET]}]}
  - {name: sampler, maxRows: 2, rules: [{tables: ['*'], verbs: [GET]}]}
  - {name: reader, rules: [{tables: ['*'], verbs: [GET]}]}",
    )
    .unwrap();
    for role in ["exporter", "sampler", "reader"] {
        config.api_keys.push(dbapi_crds::config::ApiKey {
            name: role.into(),
            role: role.into(),
            hashes: vec![dbapi_crds::config::KeyHash {
                sha256: dbapi_crds::keys::sha256_hex(&format!("key_{role}")),
                not_after: None,
            }],
            ..Default::default()
        });
    }
    let api = Api::with_sql(engine, &library(), config).await;
    let rows = |role: &'static str, accept: &'static str| {
        let api = &api;
        async move {
            let key = format!("key_{role}");
            let r = api.get_with("/books?select=id&order=id", &[("apikey", &key), ("accept", accept)]).await;
            r.expect(200);
            match accept {
                "application/json" => r.json().as_array().unwrap().len(),
                "text/csv" => r.body.lines().count() - 1,
                _ => lines(&r.body).len(),
            }
        }
    };
    // JSON is held whole: the document's cap, or the role's where lower.
    assert_eq!(rows("exporter", "application/json").await, 5);
    assert_eq!(rows("exporter", "application/x-ndjson").await, 15);
    assert_eq!(rows("exporter", "text/csv").await, 15);
    assert_eq!(rows("sampler", "application/json").await, 2);
    assert_eq!(rows("sampler", "application/x-ndjson").await, 2);
    assert_eq!(rows("reader", "application/x-ndjson").await, 5);
    // A limit below the cap still holds.
    let r = api.get_with("/books?limit=3", &[("apikey", "key_exporter"), NDJSON]).await;
    assert_eq!(lines(&r.body).len(), 3);
}

on_every_engine!(
    ndjson_lines_are_the_rows_of_the_json_answer,
    csv_is_streamed_as_postgrest_writes_it,
    a_roles_max_rows_lifts_the_cap_of_streamed_answers_only,
);

#[tokio::test]
async fn an_error_before_the_first_row_is_answered_with_its_status() {
    let api = Api::with_sql(Engine::Postgres, &library(), RuntimeConfig::default()).await;
    api.get_with("/books?id=eq.abc", &[NDJSON]).await.expect_error(400, "22P02");
    api.get_with("/books?id=eq.abc", &[CSV]).await.expect_error(400, "22P02");
}

#[tokio::test]
async fn head_and_function_results_in_ndjson_are_written_whole() {
    let sql = format!(
        "{} CREATE FUNCTION long_books(min_pages int) RETURNS SETOF books STABLE LANGUAGE sql
            AS 'SELECT * FROM books WHERE pages >= min_pages ORDER BY id';",
        library()
    );
    let api = Api::with_sql(Engine::Postgres, &sql, RuntimeConfig::default()).await;
    let head = api.request(Request::head("/books").header(NDJSON.0, NDJSON.1).body(Body::empty()).unwrap()).await;
    head.expect(200);
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(head.body, "");
    let called = api.get_with("/rpc/long_books?min_pages=180&select=id,pages", &[NDJSON]).await;
    assert_eq!(
        lines(&called.expect(200).body),
        [json!({"id": 18, "pages": 180}), json!({"id": 19, "pages": 190}), json!({"id": 20, "pages": 200})]
    );
}

#[tokio::test]
async fn streamed_timestamps_follow_the_requested_zone() {
    let sql = "CREATE TABLE events (id int PRIMARY KEY, at timestamptz);
               INSERT INTO events VALUES (1, '2024-01-01 12:00:00+00');";
    let api = Api::with_sql(Engine::Postgres, sql, RuntimeConfig::default()).await;
    let r = api.get_with("/events?select=at", &[NDJSON, ("prefer", "timezone=Asia/Tokyo")]).await;
    assert_eq!(lines(&r.expect(200).body), [json!({"at": "2024-01-01T21:00:00+09:00"})]);
    assert_eq!(r.header("preference-applied"), Some("timezone=Asia/Tokyo"));
    let sql = "SET time_zone = '+00:00';
               CREATE TABLE events (id int PRIMARY KEY, at timestamp NULL);
               INSERT INTO events VALUES (1, '2024-01-01 12:00:00');";
    let api = Api::with_sql(Engine::MySql, sql, RuntimeConfig::default()).await;
    let r = api.get_with("/events?select=at", &[NDJSON, ("prefer", "timezone=+09:00")]).await;
    assert_eq!(lines(&r.expect(200).body), [json!({"at": "2024-01-01T21:00:00+09:00"})]);
}

/// A statement timeout that strikes after the first rows went out: the
/// answer is cut off (the client sees an incomplete body), never ended as
/// if it were complete. (Rows are wide because the server sends its output
/// in 8 KiB pieces.)
#[tokio::test]
async fn a_failure_after_the_first_rows_cuts_the_answer_off() {
    let sql = "CREATE FUNCTION slowly(n int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT pg_sleep(0.002); SELECT n';
               CREATE VIEW trickle AS SELECT slowly(g) AS n, repeat('x', 1000) AS filler FROM generate_series(1, 100000) AS g;";
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 1_000_000;
    config.database.statement_timeout_ms = Some(400);
    let api = Api::with_sql(Engine::Postgres, sql, config).await;
    let request = Request::get("/trickle").header(NDJSON.0, NDJSON.1).body(Body::empty()).unwrap();
    let response = api.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0;
    let failed = loop {
        match body.frame().await {
            Some(Ok(frame)) => received += frame.into_data().map_or(0, |d| d.len()),
            Some(Err(e)) => break e,
            None => panic!("the answer ended as if complete after {received} bytes"),
        }
    };
    assert!(received > 0, "rows went out before the timeout");
    assert!(failed.to_string().contains("took longer than the database allows"), "{failed}");
}

/// Rows of a cross join of ten digits eight times: 10^8 of them, far more
/// than a test reads.
const HUGE: &str = "CREATE TABLE digits (d INTEGER PRIMARY KEY);
    INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);
    CREATE VIEW huge AS SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n, f.d AS f, g.d AS g, h.d AS h, i.d AS i
        FROM digits a, digits b, digits c, digits e, digits f, digits g, digits h, digits i;";

/// A client that reads the first rows of an export and goes away stops the
/// query on the database server, and the API goes on serving.
async fn a_client_that_goes_away_stops_the_query(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 1_000_000_000;
    let api = Api::with_sql(engine, HUGE, config).await;
    let running = match engine {
        Engine::Postgres => {
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%\"huge\"%'"
        }
        _ => "SELECT COUNT(*) FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND info LIKE '%`huge`%'",
    };
    let request = Request::get(encode_uri("/huge")).header(NDJSON.0, NDJSON.1).body(Body::empty()).unwrap();
    let response = api.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a first chunk").expect("rows");
    assert!(first.into_data().is_ok_and(|d| !d.is_empty()));
    assert_eq!(api.sql_i64(running).await, [1], "the export runs while the client reads");
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.sql_i64(running).await != [0] {
        assert!(Instant::now() < deadline, "the export's query still runs 20 s after its client went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = api.get_with("/huge?limit=2&select=n", &[NDJSON]).await;
    assert_eq!(lines(&next.expect(200).body).len(), 2);
}

mod a_client_that_goes_away {
    #[tokio::test]
    async fn postgres() {
        super::a_client_that_goes_away_stops_the_query(super::Engine::Postgres).await
    }
    #[tokio::test]
    async fn mysql() {
        super::a_client_that_goes_away_stops_the_query(super::Engine::MySql).await
    }
}

/// SQLite has no server to stop: the abandoned statement's connection is
/// closed and the next export gets another.
#[tokio::test]
async fn sqlite_serves_on_after_an_abandoned_export() {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 1_000_000_000;
    config.database.pool.max_connections = 1;
    let api = Api::with_sql(Engine::Sqlite, HUGE, config).await;
    for _ in 0..3 {
        let request = Request::get("/huge").header(NDJSON.0, NDJSON.1).body(Body::empty()).unwrap();
        let mut body = api.router().oneshot(request).await.unwrap().into_body();
        assert!(body.frame().await.expect("a first chunk").is_ok());
    }
    let next = api.get_with("/huge?limit=2&select=n", &[NDJSON]).await;
    assert_eq!(lines(&next.expect(200).body).len(), 2);
}
