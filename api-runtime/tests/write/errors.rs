//! What a client gets when a write cannot be done: constraint violations with
//! one code on every engine, malformed requests, wrong types, a locked
//! database, and concurrent writes that both succeed.

use super::*;

on_every_engine!(
    constraint_violations_have_one_code_on_every_engine,
    check_violations_name_the_constraint,
    request_errors_are_clear,
    wrong_typed_dates_are_refused,
    concurrent_writes_to_one_table_both_succeed,
    request_edges,
);

async fn constraint_violations_have_one_code_on_every_engine(engine: Engine) {
    let api = Api::fixture(engine).await;
    // NOT NULL: 400 23502, naming the column.
    let e = api
        .post_with("/customers", &[], r#"{"name": null, "email": "n@example.com"}"#)
        .await
        .expect_error(400, "23502");
    assert!(error_text(&e).contains("name"), "{e}");
    let e = api.patch_with("/orders?id=eq.1", &[], r#"{"status": null}"#).await.expect_error(400, "23502");
    assert!(error_text(&e).contains("status"), "{e}");
    // UNIQUE and PRIMARY KEY: 409 23505, naming the constraint.
    let e = api
        .post_with("/customers", &[], r#"{"name": "Dup", "email": "alice@example.com"}"#)
        .await
        .expect_error(409, "23505");
    assert!(e["details"].as_str().unwrap_or("").contains("email"), "{e}");
    let e =
        api.patch_with("/customers?id=eq.2", &[], r#"{"email": "alice@example.com"}"#).await.expect_error(409, "23505");
    assert!(e["details"].as_str().unwrap_or("").contains("email"), "{e}");
    api.post_with("/customers", &[], r#"{"id": 1, "name": "Again"}"#).await.expect_error(409, "23505");
    api.post_with("/order_items", &[], r#"{"order_id": 1, "product_id": 1, "qty": 1}"#)
        .await
        .expect_error(409, "23505");
    // FOREIGN KEY: 409 23503, naming the constraint where the engine says.
    let e = api.post_with("/orders", &[], r#"{"customer_id": 999}"#).await.expect_error(409, "23503");
    if engine != Engine::Sqlite {
        assert!(e["details"].as_str().unwrap_or("").contains("fk_orders_customer"), "{e}");
    }
    let e = api.patch_with("/orders?id=eq.1", &[], r#"{"customer_id": 999}"#).await.expect_error(409, "23503");
    if engine != Engine::Sqlite {
        assert!(e["details"].as_str().unwrap_or("").contains("fk_orders_customer"), "{e}");
    }
    let e = api
        .post_with("/stock", &[], r#"{"product_id": 1, "region": "mars", "code": 1, "qty": 1}"#)
        .await
        .expect_error(409, "23503");
    if engine != Engine::Sqlite {
        assert!(e["details"].as_str().unwrap_or("").contains("fk_stock_warehouse"), "{e}");
    }
    api.delete_with("/customers?id=eq.1", &[]).await.expect_error(409, "23503");
    // Nothing changed.
    assert_eq!(api.count("customers").await, 6);
    assert_eq!(api.count("orders").await, 12);
    assert_eq!(api.count("stock").await, 7);
    assert_eq!(api.count("orders WHERE id = 1 AND customer_id = 1 AND status = 'paid'").await, 1);
    assert_eq!(api.sql_text("SELECT email FROM customers WHERE id = 2").await, [Some("bob.brown@example.com".into())]);
}

async fn check_violations_name_the_constraint(engine: Engine) {
    let sql = match engine {
        Engine::Postgres => {
            "CREATE TABLE checked (id integer PRIMARY KEY, qty integer NOT NULL, CONSTRAINT qty_positive CHECK (qty > 0));"
        }
        Engine::MySql => {
            "CREATE TABLE checked (id INT PRIMARY KEY, qty INT NOT NULL, CONSTRAINT qty_positive CHECK (qty > 0)) ENGINE=InnoDB;"
        }
        Engine::Sqlite => {
            "CREATE TABLE checked (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, CONSTRAINT qty_positive CHECK (qty > 0));"
        }
    };
    let api =
        Api::with_sql(engine, &format!("{sql} INSERT INTO checked (id, qty) VALUES (1, 5);"), RuntimeConfig::default())
            .await;
    let e = api.post_with("/checked", &[], r#"{"id": 2, "qty": 0}"#).await.expect_error(400, "23514");
    assert!(e["details"].as_str().unwrap_or("").contains("qty_positive"), "{e}");
    let e = api.patch_with("/checked?id=eq.1", &[], r#"{"qty": -1}"#).await.expect_error(400, "23514");
    assert!(e["details"].as_str().unwrap_or("").contains("qty_positive"), "{e}");
    let r = api.post_with("/checked", &[], r#"[{"id": 3, "qty": 1}, {"id": 4, "qty": -4}]"#).await;
    r.expect_error(400, "23514");
    assert_eq!(api.sql_i64("SELECT qty FROM checked ORDER BY id").await, vec![5]);
}

async fn request_errors_are_clear(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_body_bytes = 256;
    let api = Api::fixture_with(engine, config).await;
    // Unknown column.
    let e = api.post_with("/orders", &[], r#"{"customer_id": 1, "totl": 3}"#).await.expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("totl"), "{e}");
    assert!(e["hint"].as_str().unwrap_or("").contains("total"), "{e}");
    // Wrong type: column and type named.
    let e = api.post_with("/orders", &[], r#"{"customer_id": "abc"}"#).await.expect_error(400, "22P02");
    let m = e["message"].as_str().unwrap().to_lowercase();
    assert!(m.contains("customer_id") && m.contains("int"), "{e}");
    let e = api.post_with("/products", &[], r#"{"name": "x", "in_stock": "maybe"}"#).await.expect_error(400, "22P02");
    let m = e["message"].as_str().unwrap().to_lowercase();
    assert!(m.contains("in_stock") && (m.contains("bool") || m.contains("tinyint")), "{e}");
    // Malformed or misshapen JSON.
    for body in [r#"{"customer_id": "#, "", "  ", "[1, 2]", r#""text""#, "42", "null", "{} {}"] {
        api.post_with("/orders", &[], body).await.expect_error(400, "PGRST102");
    }
    api.patch_with("/orders?id=eq.1", &[], "{oops}").await.expect_error(400, "PGRST102");
    // Too large.
    let big = json!({"customer_id": 1, "note": "x".repeat(1000)}).to_string();
    api.post_with("/orders", &[], &big).await.expect_error(413, "DBAPI413");
    api.patch_with("/orders?id=eq.1", &[], &big).await.expect_error(413, "DBAPI413");
    api.put_with("/orders?id=eq.1", &[], &big).await.expect_error(413, "DBAPI413");
    // Unsupported Content-Type.
    for ct in ["application/xml", "text/plain", "multipart/form-data; boundary=x"] {
        api.post_with("/orders", &[("content-type", ct)], r#"{"customer_id": 1}"#).await.expect_error(415, "PGRST107");
    }
    api.patch_with("/orders?id=eq.1", &[("content-type", "text/plain")], r#"{"note": "x"}"#).await.expect(415);
    // A form body is one row of strings.
    api.post_with("/articles", &[("content-type", "application/x-www-form-urlencoded")], "title=Form&body=From+a+form")
        .await
        .expect(201);
    assert_eq!(api.count("articles WHERE title = 'Form' AND body = 'From a form'").await, 1);
    // Unknown table and schema.
    api.post_with("/nope", &[], r#"{"a": 1}"#).await.expect_error(404, "PGRST205");
    api.patch_with("/nope?a=eq.1", &[], r#"{"a": 1}"#).await.expect_error(404, "PGRST205");
    api.delete_with("/nope?a=eq.1", &[]).await.expect_error(404, "PGRST205");
    api.post_with("/orders", &[("content-profile", "nope")], r#"{"customer_id": 1}"#)
        .await
        .expect_error(406, "PGRST106");
    // Unknown preferences under handling=strict.
    api.post_with("/orders", &[("prefer", "handling=strict, return=everything")], r#"{"customer_id": 1}"#)
        .await
        .expect(400);
    assert_eq!(api.count("orders").await, 12);
}

async fn wrong_typed_dates_are_refused(engine: Engine) {
    let api = Api::fixture(engine).await;
    if engine == Engine::Sqlite {
        // The fixture's SQLite created_at is declared TEXT, which takes any
        // text; columns declared TIMESTAMP or DATE are checked as elsewhere.
        drop(api);
        let api = Api::with_sql(
            engine,
            "CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMP, day DATE);",
            Default::default(),
        )
        .await;
        let e = api.post_with("/events", &[], r#"{"at": "not a date"}"#).await.expect_error(400, "22P02");
        assert!(error_text(&e).contains("events.at"), "{e}");
        api.post_with("/events", &[], r#"{"day": "someday"}"#).await.expect_error(400, "22P02");
        api.post_with("/events", &[], r#"{"at": "2024-05-01T12:00:00Z", "day": "2024-05-01"}"#).await.expect(201);
        return;
    }
    // Not a timestamp: the same 400 on every engine, naming the column,
    // rather than an engine-specific code or (SQLite) a stored string.
    let e = api
        .post_with("/orders", &[], r#"{"customer_id": 1, "created_at": "not a date"}"#)
        .await
        .expect_error(400, "22P02");
    assert!(error_text(&e).contains("created_at"), "{e}");
    api.patch_with("/orders?id=eq.1", &[], r#"{"created_at": "yesterday-ish"}"#).await.expect_error(400, "22P02");
    assert_eq!(api.count("orders").await, 12);
    // A real one is fine.
    api.patch_with("/orders?id=eq.1", &[], r#"{"created_at": "2024-05-01T12:00:00"}"#).await.expect(204);
}

async fn concurrent_writes_to_one_table_both_succeed(engine: Engine) {
    let api = Api::fixture(engine).await;
    for round in 0..5 {
        let (first, second) = (format!(r#"{{"total": {}}}"#, round * 2), format!(r#"{{"total": {}}}"#, round * 2 + 1));
        let (a, b) = tokio::join!(
            api.patch_with("/orders?id=eq.1", &[], &first),
            api.patch_with("/orders?id=eq.1", &[], &second),
        );
        a.expect(204);
        b.expect(204);
        let stock = format!("/stock?id=eq.{}", round + 1);
        let (c, d) = tokio::join!(
            api.patch_with("/orders?id=eq.2", &[REPRESENTATION], r#"{"note": "c"}"#),
            api.delete_with(&stock, &[]),
        );
        c.expect(200);
        d.expect(204);
    }
    assert_eq!(api.count("stock").await, 2);
    assert_eq!(api.count("orders WHERE id = 1 AND total IN (8, 9)").await, 1);
    assert_eq!(api.count("orders WHERE id = 2 AND note = 'c'").await, 1);
}

async fn request_edges(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_body_bytes = 100;
    let api = Api::fixture_with(engine, config).await;
    // return=minimal is echoed.
    let r = api.post_with("/articles", &[("prefer", "return=minimal")], r#"{"title": "t", "body": "b"}"#).await;
    r.expect(201);
    assert_eq!(r.header("preference-applied"), Some("return=minimal"));
    // The body limit is inclusive.
    let exact = {
        let base = r#"{"title": "t", "body": ""}"#;
        let pad = 100 - base.len();
        format!(r#"{{"title": "t", "body": "{}"}}"#, "x".repeat(pad))
    };
    assert_eq!(exact.len(), 100);
    api.post_with("/articles", &[], &exact).await.expect(201);
    let over = exact.replacen("\"t\"", "\"tt\"", 1);
    assert_eq!(over.len(), 101);
    api.post_with("/articles", &[], &over).await.expect_error(413, "DBAPI413");
    // No Content-Type is JSON; media types are case-insensitive.
    let req = axum::http::Request::post("/articles")
        .body(axum::body::Body::from(r#"{"title": "none", "body": "b"}"#))
        .unwrap();
    api.request(req).await.expect(201);
    api.post_with(
        "/articles",
        &[("content-type", "Application/JSON; Charset=UTF-8")],
        r#"{"title": "upper", "body": "b"}"#,
    )
    .await
    .expect(201);
    assert_eq!(api.count("articles").await, 9);
    // A representation that cannot be read (unknown column in select=)
    // is an error, and the write is undone.
    api.post_with("/articles?select=id,nope", &[REPRESENTATION], r#"{"title": "t", "body": "b"}"#)
        .await
        .expect_error(400, "42703");
    api.patch_with("/articles?id=eq.1&select=nope", &[REPRESENTATION], r#"{"title": "gone"}"#)
        .await
        .expect_error(400, "42703");
    api.delete_with("/articles?id=eq.1&select=nope", &[REPRESENTATION]).await.expect_error(400, "42703");
    assert_eq!(api.count("articles").await, 9);
    assert_eq!(api.count("articles WHERE title = 'gone'").await, 0);
}

/// A SQLite database whose write lock another process holds past the busy
/// timeout is unavailable for the moment: 503 with Retry-After, not 500.
#[tokio::test]
async fn sqlite_locked_by_another_writer_answers_503() {
    use sqlx::{Connection, Executor};
    let api = Api::fixture(Engine::Sqlite).await;
    let mut other = sqlx::SqliteConnection::connect(&api.db.url).await.unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let r = api.post_with("/articles", &[], r#"{"title": "t", "body": "b"}"#).await;
    other.execute("ROLLBACK").await.unwrap();
    r.expect(503);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert_eq!(api.count("articles").await, 5);
    // Once the lock is gone, writes go through again.
    api.post_with("/articles", &[], r#"{"title": "t", "body": "b"}"#).await.expect(201);
}
