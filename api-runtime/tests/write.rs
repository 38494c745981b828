//! Writes end to end on PostgreSQL, MariaDB and SQLite: POST (single,
//! bulk, upserts), PUT, PATCH and DELETE with their `Prefer` options, one
//! transaction per request, and the errors a client gets for bad input or
//! a constraint the database enforces. What a write did is checked with
//! SQL against the same database.

mod support;

use std::time::Instant;

use dbapi_crds::config::RuntimeConfig;
use serde_json::{Value, json};
use support::Engine;
use support::api::{Api, Response};

const OBJECT: &str = "application/vnd.pgrst.object+json";
const REPRESENTATION: (&str, &str) = ("prefer", "return=representation");

on_every_engine!(
    inserts_one_row_with_status_location_and_range,
    bulk_inserts_return_every_row,
    bulk_insert_of_ten_thousand_rows,
    very_large_bulk_insert_is_batched,
    failing_row_keeps_nothing,
    columns_and_missing_default,
    upserts_merge_or_ignore_duplicates,
    ignore_duplicates_still_refuses_bad_rows,
    upsert_race_keeps_one_row,
    put_upserts_one_row,
    patch_updates_filtered_rows,
    patch_changes_primary_keys_and_returns_rows,
    delete_removes_filtered_rows,
    unfiltered_writes_are_refused_unless_configured,
    max_affected_strict_refuses_and_keeps_nothing,
    tx_rollback_returns_rows_and_keeps_nothing,
    single_object_accept_on_writes,
    single_object_accept_without_representation,
    awkward_table_and_column_names,
    json_arrays_booleans_and_bytes_round_trip,
    constraint_violations_have_one_code_on_every_engine,
    check_violations_name_the_constraint,
    request_errors_are_clear,
    wrong_typed_dates_are_refused,
    concurrent_writes_to_one_table_both_succeed,
    upsert_conflict_target_is_respected,
    location_headers_round_trip,
    request_edges,
    scalars_into_other_types,
    tables_without_a_primary_key,
    views_without_a_primary_key,
    generated_columns_without_a_primary_key,
    a_keyless_table_named_like_a_statement_alias,
);

/// The tokens of a `Preference-Applied` header.
fn applied(r: &Response) -> Vec<String> {
    r.header("preference-applied")
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[track_caller]
fn assert_applied(r: &Response, tokens: &[&str]) {
    let got = applied(r);
    for t in tokens {
        assert!(got.iter().any(|g| g == t), "Preference-Applied {got:?} lacks {t}");
    }
}

#[track_caller]
fn assert_json_content(r: &Response) {
    let ct = r.header("content-type").unwrap_or_else(|| panic!("no content-type; body: {}", r.body));
    assert!(ct.starts_with("application/json"), "content-type {ct}");
}

/// `"message details"` of an error body, for "names the column" checks.
fn error_text(e: &Value) -> String {
    format!(
        "{} {} {}",
        e["message"].as_str().unwrap_or(""),
        e["details"].as_str().unwrap_or(""),
        e["hint"].as_str().unwrap_or("")
    )
}

async fn inserts_one_row_with_status_location_and_range(engine: Engine) {
    let api = Api::fixture(engine).await;
    // Default: return=minimal, 201 without a body.
    let r =
        api.post_with("/orders", &[], r#"{"customer_id": 2, "status": "paid", "total": 12.5, "note": "first"}"#).await;
    r.expect(201);
    assert!(r.body.is_empty(), "minimal has no body: {}", r.body);
    assert_eq!(r.header("location"), None, "only return=headers-only locates the row, as in PostgREST");
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(api.count("orders").await, 13);
    assert_eq!(
        api.sql_i64("SELECT customer_id FROM orders WHERE id = 13 AND status = 'paid' AND total = 12.5").await,
        vec![2]
    );

    // headers-only: the Location of the new row, which reads it back.
    let r = api.post_with("/orders", &[("prefer", "return=headers-only")], r#"{"customer_id": 3}"#).await;
    r.expect(201);
    assert!(r.body.is_empty());
    assert_eq!(r.header("location"), Some("/orders?id=eq.14"));
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(r.header("preference-applied"), Some("return=headers-only"));
    let row = api.get(r.header("location").unwrap()).await;
    row.expect(200);
    assert_eq!(row.column_i64("id"), vec![14]);
    // Keys left out of a single object take the column's default.
    assert_eq!(api.count("orders WHERE id = 14 AND status = 'pending' AND total = 0").await, 1);

    // representation with select=, compared with SQL.
    let r = api
        .post_with(
            "/orders?select=id,customer_id,status,total",
            &[REPRESENTATION],
            r#"{"customer_id": 4, "total": "7.25", "status": "shipped"}"#,
        )
        .await;
    r.expect(201);
    assert_json_content(&r);
    assert_eq!(r.header("preference-applied"), Some("return=representation"));
    assert_eq!(r.header("content-range"), Some("*/*"));
    let v = r.json();
    let rows = v.as_array().unwrap_or_else(|| panic!("an array: {v}"));
    assert_eq!(rows.len(), 1);
    let row = rows[0].as_object().unwrap();
    assert_eq!(row.keys().collect::<Vec<_>>(), ["id", "customer_id", "status", "total"]);
    assert_eq!(row["id"], 15);
    assert_eq!(row["customer_id"], 4);
    assert_eq!(row["status"], "shipped");
    assert_eq!(row["total"].as_f64(), Some(7.25));
    assert_eq!(
        api.sql_i64("SELECT id FROM orders WHERE customer_id = 4 AND status = 'shipped' AND total = 7.25").await,
        vec![15]
    );
    // An embed in select= reaches across the new row's foreign key.
    let r = api.post_with("/orders?select=id,customers(name)", &[REPRESENTATION], r#"{"customer_id": 1}"#).await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 16, "customers": {"name": "Alice Anderson"}}]));
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE id > 12 ORDER BY id").await, vec![13, 14, 15, 16]);
}

async fn bulk_inserts_return_every_row(engine: Engine) {
    let api = Api::fixture(engine).await;
    let body = json!([
        {"name": "Gus", "email": "gus@example.com", "city": "Oslo"},
        {"name": "Hana", "email": "hana@example.com", "city": null},
        {"name": "Ivo", "email": null, "city": "Rome"}
    ]);
    let r = api.post_with("/customers?select=id,name,email,city", &[REPRESENTATION], &body.to_string()).await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(r.header("location"), None, "no Location for an array");
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, api.sql_i64("SELECT id FROM customers WHERE id > 6 ORDER BY id").await);
    assert_eq!(ids, vec![7, 8, 9]);
    for (row, sent) in rows.iter().zip(body.as_array().unwrap()) {
        for key in ["name", "email", "city"] {
            assert_eq!(row[key], sent[key], "{key} of {row}");
        }
    }
    assert_eq!(
        api.sql_text("SELECT city FROM customers WHERE id > 6 ORDER BY id").await,
        [Some("Oslo".to_string()), None, Some("Rome".to_string())]
    );
    // An empty array inserts nothing and says so.
    let r = api.post_with("/customers", &[REPRESENTATION], "[]").await;
    r.expect(201);
    assert_eq!(r.body, "[]");
    assert_eq!(r.header("content-range"), Some("*/*"));
    let r = api.post_with("/customers", &[], "[]").await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(api.count("customers").await, 9);
    // Rows of a bulk insert need the same keys unless columns= names them.
    let r = api.post_with("/customers", &[], r#"[{"name": "a"}, {"name": "b", "city": "c"}]"#).await;
    r.expect_error(400, "PGRST102");
    assert_eq!(api.count("customers").await, 9);
}

async fn bulk_insert_of_ten_thousand_rows(engine: Engine) {
    let api = Api::fixture(engine).await;
    // Four columns per row: 40,000 values, more than one statement takes.
    let rows: Vec<Value> = (0..10_000)
        .map(|i| json!({"customer_id": i % 6 + 1, "status": "paid", "total": i, "note": format!("bulk {i}")}))
        .collect();
    let started = Instant::now();
    let r = api.post_with("/orders", &[("prefer", "count=exact")], &Value::Array(rows).to_string()).await;
    eprintln!("{engine:?}: 10,000 rows inserted in {:?}", started.elapsed());
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/10000"));
    assert_eq!(api.count("orders").await, 10_012);
    assert_eq!(api.count("orders WHERE note LIKE 'bulk %'").await, 10_000);
    assert_eq!(api.count("orders WHERE note = 'bulk 9999' AND total = 9999 AND customer_id = 4").await, 1);

    // The same with the rows read back.
    let rows: Vec<Value> = (0..10_000).map(|i| json!({"customer_id": 1, "note": format!("again {i}")})).collect();
    let started = Instant::now();
    let r = api.post_with("/orders?select=id,note", &[REPRESENTATION], &Value::Array(rows).to_string()).await;
    eprintln!("{engine:?}: 10,000 rows inserted and returned in {:?}", started.elapsed());
    r.expect(201);
    let v = r.json();
    let returned = v.as_array().unwrap();
    assert_eq!(returned.len(), 10_000);
    let mut ids: Vec<i64> = returned.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, api.sql_i64("SELECT id FROM orders WHERE note LIKE 'again %' ORDER BY id").await);
}

async fn very_large_bulk_insert_is_batched(engine: Engine) {
    let api = Api::fixture(engine).await;
    // 70,000 rows: more than any engine's parameter limit, both for the
    // INSERT and for reading the rows back by key.
    let body = Value::Array((0..70_000).map(|i| json!({"order": i})).collect()).to_string();
    let started = Instant::now();
    let r = api.post_with("/user", &[("prefer", "count=exact")], &body).await;
    eprintln!("{engine:?}: 70,000 rows inserted in {:?}", started.elapsed());
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/70000"));
    assert_eq!(api.count(&format!("{} WHERE id > 3", api.q("user"))).await, 70_000);
    let started = Instant::now();
    let r = api.post_with("/user?select=id", &[REPRESENTATION, ("prefer", "count=exact")], &body).await;
    eprintln!("{engine:?}: 70,000 rows inserted and returned in {:?}", started.elapsed());
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/70000"));
    assert_eq!(r.json().as_array().map(Vec::len), Some(70_000));
    assert_eq!(api.count(&format!("{} WHERE id > 3", api.q("user"))).await, 140_000);
}

async fn failing_row_keeps_nothing(engine: Engine) {
    let api = Api::fixture(engine).await;
    // The bad row (an unknown customer) is in the second statement of the
    // batch: the first statement's rows go too.
    let rows: Vec<Value> = (0..10_000)
        .map(|i| json!({"customer_id": if i == 9_000 { 999 } else { 1 }, "status": "paid", "total": 1, "note": "doomed"}))
        .collect();
    let r = api.post_with("/orders", &[], &Value::Array(rows).to_string()).await;
    r.expect_error(409, "23503");
    assert_eq!(api.count("orders").await, 12);
    // A duplicate inside one array.
    let r = api
        .post_with(
            "/customers",
            &[],
            r#"[{"name": "A", "email": "a@example.com"}, {"name": "B", "email": "b@example.com"}, {"name": "C", "email": "a@example.com"}]"#,
        )
        .await;
    r.expect_error(409, "23505");
    assert_eq!(api.count("customers").await, 6);
    // A NOT NULL violation in the last row.
    let r = api.post_with("/customers", &[REPRESENTATION], r#"[{"name": "A"}, {"name": "B"}, {"name": null}]"#).await;
    r.expect_error(400, "23502");
    assert_eq!(api.count("customers").await, 6);
    // An update that breaks a unique key on its second row changes neither.
    let r = api.patch_with("/customers?id=in.(1,2)", &[], r#"{"email": "same@example.com"}"#).await;
    r.expect_error(409, "23505");
    assert_eq!(api.count("customers WHERE email = 'same@example.com'").await, 0);
}

async fn columns_and_missing_default(engine: Engine) {
    let api = Api::fixture(engine).await;
    let body =
        r#"[{"customer_id": 1, "status": "paid", "total": 3, "bogus": "ignored"}, {"customer_id": 2, "extra": 1}]"#;
    // columns= names the keys taken; others are ignored. missing=default
    // gives absent keys the column default.
    let r = api
        .post_with(
            "/orders?columns=customer_id,status,total&select=id,customer_id,status,total",
            &[("prefer", "return=representation, missing=default")],
            body,
        )
        .await;
    r.expect(201);
    assert_applied(&r, &["return=representation", "missing=default"]);
    let v = r.json();
    assert_eq!(v[0]["status"], "paid");
    assert_eq!(v[0]["total"].as_f64(), Some(3.0));
    assert_eq!(v[1]["customer_id"], 2);
    assert_eq!(v[1]["status"], "pending");
    assert_eq!(v[1]["total"].as_f64(), Some(0.0));
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE id > 12 AND status = 'pending' AND total = 0").await, vec![14]);
    // Without missing=default an absent key is NULL, as in PostgREST: here
    // a NOT NULL column refuses it, and nothing is kept.
    let r = api.post_with("/orders?columns=customer_id,status,total", &[], body).await;
    let e = r.expect_error(400, "23502");
    assert!(error_text(&e).contains("status"), "names the column: {e}");
    assert_eq!(api.count("orders").await, 14);
    // On a nullable column, missing=null leaves NULL.
    let r = api
        .post_with(
            "/customers?columns=name,city",
            &[("prefer", "missing=null")],
            r#"[{"name": "P", "city": "Q"}, {"name": "R"}]"#,
        )
        .await;
    r.expect(201);
    assert_eq!(api.sql_text("SELECT city FROM customers WHERE id > 6 ORDER BY id").await, [Some("Q".into()), None]);
    // columns= naming an unknown column.
    let e = api.post_with("/orders?columns=customer_id,totl", &[], body).await.expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("totl"));
}

async fn upserts_merge_or_ignore_duplicates(engine: Engine) {
    let api = Api::fixture(engine).await;
    // merge-duplicates on the primary key: id 1 is updated, id 7 inserted.
    let r = api
        .post_with(
            "/customers?select=id,name,city",
            &[("prefer", "return=representation, resolution=merge-duplicates")],
            r#"[{"id": 1, "name": "Alice A.", "email": "alice@example.com", "city": "Boston"},
                {"id": 7, "name": "Gus", "email": "gus@example.com", "city": null}]"#,
        )
        .await;
    r.expect(201);
    assert_applied(&r, &["return=representation", "resolution=merge-duplicates"]);
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(
        rows,
        vec![json!({"id": 1, "name": "Alice A.", "city": "Boston"}), json!({"id": 7, "name": "Gus", "city": null})]
    );
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 1").await, [Some("Alice A.".into())]);
    assert_eq!(api.count("customers").await, 7);

    // ignore-duplicates: the existing row is untouched, the new one added,
    // and only the new one is returned.
    let r = api
        .post_with(
            "/customers?select=id,name",
            &[("prefer", "return=representation, resolution=ignore-duplicates")],
            r#"[{"id": 2, "name": "Ignored", "email": "bob.brown@example.com", "city": "X"},
                {"id": 8, "name": "Hana", "email": "hana@example.com", "city": "Y"}]"#,
        )
        .await;
    r.expect(201);
    assert_applied(&r, &["resolution=ignore-duplicates"]);
    if engine == Engine::MySql {
        // MariaDB's upsert has no DO NOTHING: the duplicate is kept by a
        // no-op update, and RETURNING reports that (unchanged) row too.
        assert_eq!(r.json(), json!([{"id": 2, "name": "bob brown"}, {"id": 8, "name": "Hana"}]));
    } else {
        assert_eq!(r.json(), json!([{"id": 8, "name": "Hana"}]));
    }
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 2").await, [Some("bob brown".into())]);
    assert_eq!(api.sql_text("SELECT city FROM customers WHERE id = 2").await, [None]);
    assert_eq!(api.count("customers").await, 8);

    // on_conflict= on another unique key.
    let r = api
        .post_with(
            "/customers?on_conflict=email",
            &[("prefer", "resolution=merge-duplicates")],
            r#"{"name": "Bobby", "email": "bob.brown@example.com"}"#,
        )
        .await;
    // Every row merged into an existing one: 200, as in PostgREST.
    r.expect(200);
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 2").await, [Some("Bobby".into())]);
    assert_eq!(api.count("customers").await, 8);
    let r = api
        .post_with(
            "/customers?on_conflict=email",
            &[("prefer", "resolution=ignore-duplicates")],
            r#"{"name": "Not Bob", "email": "bob.brown@example.com"}"#,
        )
        .await;
    r.expect(201);
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 2").await, [Some("Bobby".into())]);
    // on_conflict= on a column that is not unique.
    let r = api
        .post_with("/customers?on_conflict=city", &[("prefer", "resolution=merge-duplicates")], r#"{"name": "Z"}"#)
        .await;
    r.expect(400);
    assert_eq!(api.count("customers").await, 8);

    // A composite primary key.
    let r = api
        .post_with(
            "/order_items",
            &[("prefer", "return=representation, resolution=merge-duplicates")],
            r#"[{"order_id": 1, "product_id": 1, "qty": 99}, {"order_id": 7, "product_id": 8, "qty": 1}]"#,
        )
        .await;
    r.expect(201);
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["order_id"].as_i64());
    assert_eq!(
        rows,
        vec![json!({"order_id": 1, "product_id": 1, "qty": 99}), json!({"order_id": 7, "product_id": 8, "qty": 1})]
    );
    assert_eq!(api.sql_i64("SELECT qty FROM order_items WHERE order_id = 1 AND product_id = 1").await, vec![99]);
    assert_eq!(api.count("order_items").await, 19);
}

async fn ignore_duplicates_still_refuses_bad_rows(engine: Engine) {
    let api = Api::fixture(engine).await;
    // Ignoring duplicates ignores duplicates only: a NULL in a NOT NULL
    // column or an unknown foreign key is still an error.
    let r = api
        .post_with("/customers", &[("prefer", "resolution=ignore-duplicates")], r#"[{"id": 9, "name": null}]"#)
        .await;
    r.expect_error(400, "23502");
    assert_eq!(api.count("customers").await, 6);
    let r = api
        .post_with("/orders", &[("prefer", "resolution=ignore-duplicates")], r#"[{"id": 20, "customer_id": 999}]"#)
        .await;
    r.expect_error(409, "23503");
    assert_eq!(api.count("orders").await, 12);
}

async fn upsert_race_keeps_one_row(engine: Engine) {
    let api = Api::fixture(engine).await;
    let user = api.q("user");
    let order = api.q("order");
    let merge = [("prefer", "resolution=merge-duplicates")];
    for id in 100..106 {
        let a = format!(r#"{{"id": {id}, "order": 1, "group": "a"}}"#);
        let b = format!(r#"{{"id": {id}, "order": 2, "group": "b"}}"#);
        let (ra, rb) = tokio::join!(api.post_with("/user", &merge, &a), api.post_with("/user", &merge, &b));
        // One inserts (201); the other merges (200), or 201 when it looked
        // before the first had inserted.
        for r in [&ra, &rb] {
            assert!([200, 201].contains(&r.status.as_u16()), "{} {}", r.status, r.body);
        }
        assert!(ra.status.as_u16() == 201 || rb.status.as_u16() == 201, "one of them inserted");
        assert_eq!(api.count(&format!("{user} WHERE id = {id}")).await, 1);
        let value = api.sql_i64(&format!("SELECT {order} FROM {user} WHERE id = {id}")).await;
        assert!(value == [1] || value == [2], "the row holds one of the two values: {value:?}");
        // Both columns come from the same request.
        let group = api.sql_text(&format!("SELECT {} FROM {user} WHERE id = {id}", api.q("group"))).await;
        assert_eq!(group, [Some(if value == [1] { "a" } else { "b" }.to_string())]);
    }
    assert_eq!(api.count(&user).await, 9);
    // The same through PUT.
    let (ra, rb) = tokio::join!(
        api.put_with("/user?id=eq.200", &[], r#"{"id": 200, "order": 1}"#),
        api.put_with("/user?id=eq.200", &[], r#"{"id": 200, "order": 2}"#)
    );
    ra.expect(204);
    rb.expect(204);
    let value = api.sql_i64(&format!("SELECT {order} FROM {user} WHERE id = 200")).await;
    assert!(value == [1] || value == [2], "{value:?}");
}

async fn put_upserts_one_row(engine: Engine) {
    let api = Api::fixture(engine).await;
    // An existing row: replaced, 204 without a body.
    let r = api
        .put_with(
            "/customers?id=eq.1",
            &[],
            r#"{"id": 1, "name": "Alice", "email": "alice@example.com", "city": "Rome"}"#,
        )
        .await;
    r.expect(204);
    assert!(r.body.is_empty());
    assert_eq!(api.sql_text("SELECT city FROM customers WHERE id = 1").await, [Some("Rome".into())]);
    // With the representation: 200 and the row.
    let r = api
        .put_with(
            "/customers?id=eq.1&select=id,name,city",
            &[REPRESENTATION],
            r#"{"id": 1, "name": "Alice B", "email": "alice@example.com", "city": null}"#,
        )
        .await;
    r.expect(200);
    assert_json_content(&r);
    assert_eq!(r.json(), json!([{"id": 1, "name": "Alice B", "city": null}]));
    assert_eq!(r.header("preference-applied"), Some("return=representation"));
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 1").await, [Some("Alice B".into())]);
    // A new key: inserted, 201 with the representation (204 without).
    let r = api.put_with("/customers?id=eq.50", &[], r#"{"id": 50, "name": "Fifty"}"#).await;
    r.expect(204);
    let r = api
        .put_with("/customers?id=eq.51&select=id,name", &[REPRESENTATION], r#"{"id": 51, "name": "Fifty-one"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 51, "name": "Fifty-one"}]));
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE id > 6 ORDER BY id").await, vec![50, 51]);
    // A string key in the URL matches a number in the body, and the
    // single-object Accept gives the row alone.
    let r = api
        .put_with(
            "/customers?id=eq.51&select=id,city",
            &[REPRESENTATION, ("accept", OBJECT)],
            r#"{"id": 51, "name": "F", "city": "Nice"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!({"id": 51, "city": "Nice"}));

    // The filter and the body disagree: 400, nothing written.
    let e =
        api.put_with("/customers?id=eq.1", &[], r#"{"id": 2, "name": "Mallory"}"#).await.expect_error(400, "PGRST115");
    assert!(!e["message"].as_str().unwrap().is_empty());
    api.put_with("/customers?id=eq.1", &[], r#"{"name": "Mallory"}"#).await.expect_error(400, "PGRST115");
    api.put_with("/customers?name=eq.Mallory", &[], r#"{"id": 1, "name": "Mallory"}"#).await.expect(400);
    api.put_with("/customers", &[], r#"{"id": 1, "name": "Mallory"}"#).await.expect(400);
    api.put_with("/customers?id=gt.1", &[], r#"{"id": 1, "name": "Mallory"}"#).await.expect(400);
    let two = r#"[{"id": 1, "name": "Mallory"}, {"id": 1, "name": "Mallory"}]"#;
    api.put_with("/customers?id=eq.1", &[], two).await.expect_error(400, "PGRST115");
    assert_eq!(api.count("customers WHERE name = 'Mallory'").await, 0);
    // An array of one row is that row, as PostgREST takes it.
    let r =
        api.put_with("/customers?id=eq.52&select=id,name", &[REPRESENTATION], r#"[{"id": 52, "name": "One"}]"#).await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 52, "name": "One"}]));
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 2").await, [Some("bob brown".into())]);

    // A composite key, and a table with awkward names.
    let r = api
        .put_with("/order_items?order_id=eq.1&product_id=eq.1", &[], r#"{"order_id": 1, "product_id": 1, "qty": 5}"#)
        .await;
    r.expect(204);
    assert_eq!(api.sql_i64("SELECT qty FROM order_items WHERE order_id = 1 AND product_id = 1").await, vec![5]);
    api.put_with("/order_items?order_id=eq.1", &[], r#"{"order_id": 1, "product_id": 1, "qty": 6}"#).await.expect(400);
    let r = api
        .put_with(
            "/user?id=eq.2",
            &[REPRESENTATION],
            r#"{"id": 2, "select": "s", "group": "g", "order": 99, "first name": "G"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 2, "select": "s", "group": "g", "order": 99, "first name": "G"}]));
}

async fn patch_updates_filtered_rows(engine: Engine) {
    let api = Api::fixture(engine).await;
    // Minimal: 204, the range of changed rows in Content-Range.
    let r = api.patch_with("/orders?status=eq.pending&customer_id=neq.1", &[], r#"{"note": "chased"}"#).await;
    r.expect(204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-range"), Some("0-1/*"));
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE note = 'chased' ORDER BY id").await, vec![3, 7]);
    // Filters, order and limit on an embedded resource shape the
    // representation's embed, not the rows written (PostgREST).
    let r = api
        .patch_with(
            "/orders?id=eq.1&select=id,order_items(product_id,qty)&order_items.qty=gt.1&order_items.order=product_id.desc&order_items.limit=5",
            &[REPRESENTATION],
            r#"{"note": "embedded"}"#,
        )
        .await;
    assert_eq!(
        r.expect(200).json(),
        json!([{"id": 1, "order_items": [{"product_id": 4, "qty": 3}, {"product_id": 1, "qty": 2}]}])
    );
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE note = 'embedded'").await, vec![1]);
    // An empty object changes nothing and touches no row (PostgREST).
    let r = api.patch_with("/orders?status=eq.pending", &[], "{}").await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));
    let r = api.patch_with("/orders?status=eq.pending", &[REPRESENTATION], "{}").await;
    assert_eq!(r.expect(200).json(), json!([]));
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE note = 'chased' ORDER BY id").await, vec![3, 7]);

    // Representation with a logic tree, negation and select=.
    let filter = "or=(total.gt.1000,and(status.eq.shipped,total.lt.20))&id=not.in.(99)";
    let expected = api
        .sql_i64("SELECT id FROM orders WHERE (total > 1000 OR (status = 'shipped' AND total < 20)) ORDER BY id")
        .await;
    assert_eq!(expected, vec![6, 8]);
    let r =
        api.patch_with(&format!("/orders?select=id,total,note&{filter}"), &[REPRESENTATION], r#"{"total": 1}"#).await;
    r.expect(200);
    assert_json_content(&r);
    assert_eq!(r.header("content-range"), Some("0-1/*"));
    assert_eq!(r.header("preference-applied"), Some("return=representation"));
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(rows.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), expected);
    assert!(rows.iter().all(|r| r["total"].as_f64() == Some(1.0)), "{rows:?}");
    assert_eq!(rows[0]["note"], "Leave at door");
    assert_eq!(rows[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "total", "note"]);
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE total = 1 ORDER BY id").await, expected);

    // is.null, a JSON path, like and any.
    let r = api.patch_with("/customers?city=is.null", &[], r#"{"city": "Unknown"}"#).await;
    r.expect(204);
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE city = 'Unknown' ORDER BY id").await, vec![2, 5]);
    api.patch_with("/products?attrs->>color=eq.red", &[], r#"{"in_stock": false}"#).await.expect(204);
    assert_eq!(api.sql_i64("SELECT id FROM products WHERE NOT in_stock ORDER BY id").await, vec![1, 3, 7]);
    let r =
        api.patch_with("/products?name=like(any).{Wid*,Giz*}&select=id", &[REPRESENTATION], r#"{"price": 2}"#).await;
    r.expect(200);
    let mut ids = r.column_i64("id");
    ids.sort();
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(api.sql_i64("SELECT id FROM products WHERE price = 2 ORDER BY id").await, vec![1, 3]);
    // The rows are returned even when the update takes them out of the
    // filter.
    let expected = api.sql_i64("SELECT id FROM orders WHERE status = 'pending' ORDER BY id").await;
    let r =
        api.patch_with("/orders?status=eq.pending&select=id,status", &[REPRESENTATION], r#"{"status": "paid"}"#).await;
    r.expect(200);
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(rows.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), expected);
    assert!(rows.iter().all(|r| r["status"] == "paid"), "{rows:?}");
    assert_eq!(api.count("orders WHERE status = 'pending'").await, 0);

    // Nothing matches.
    let r = api.patch_with("/orders?id=eq.999", &[REPRESENTATION], r#"{"note": "x"}"#).await;
    r.expect(200);
    assert_eq!(r.body, "[]");
    assert_eq!(r.header("content-range"), Some("*/*"));
    let r = api.patch_with("/orders?id=eq.999", &[], r#"{"note": "x"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));

    // A charset parameter is fine; bad bodies and filters are not.
    api.patch_with("/orders?id=eq.1", &[("content-type", "application/json; charset=utf-8")], r#"{"note": "utf8"}"#)
        .await
        .expect(204);
    assert_eq!(api.count("orders WHERE id = 1 AND note = 'utf8'").await, 1);
    api.patch_with("/orders?id=eq.1", &[], r#"[{"note": "a"}]"#).await.expect_error(400, "PGRST102");
    let e =
        api.patch_with("/orders?id=eq.1", &[], r#"{"note": "a", "notes": "b"}"#).await.expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("notes"));
    api.patch_with("/orders?id=eq.1", &[], r#"{"total": "lots"}"#).await.expect_error(400, "22P02");
    api.patch_with("/orders?totl=eq.1", &[], r#"{"note": "a"}"#).await.expect_error(400, "42703");
    api.patch_with("/customers?select=id,orders(id)&orders.id=eq.1", &[], r#"{"city": "a"}"#).await.expect(400);
    assert_eq!(api.count("orders WHERE note = 'a'").await, 0);
}

async fn patch_changes_primary_keys_and_returns_rows(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r =
        api.patch_with("/customers?id=eq.6&select=id,city", &[REPRESENTATION], r#"{"id": 60, "city": "Lyon"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 60, "city": "Lyon"}]));
    assert_eq!(api.count("customers WHERE id = 6").await, 0);
    assert_eq!(api.count("customers WHERE id = 60 AND city = 'Lyon'").await, 1);

    let r = api.patch_with("/MixedCase?Id=eq.3", &[REPRESENTATION], r#"{"Id": 30, "lowerCol": "c"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"Id": 30, "DisplayName": "Third, item", "lowerCol": "c"}]));
    assert_eq!(
        api.sql_i64(&format!("SELECT {} FROM {} ORDER BY 1", api.q("Id"), api.q("MixedCase"))).await,
        vec![1, 2, 30]
    );

    // One column of a composite key.
    let r = api
        .patch_with("/order_items?order_id=eq.12&product_id=eq.6", &[REPRESENTATION], r#"{"product_id": 8, "qty": 2}"#)
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"order_id": 12, "product_id": 8, "qty": 2}]));
    assert_eq!(api.sql_i64("SELECT product_id FROM order_items WHERE order_id = 12").await, vec![8]);

    // Several rows whose key changes by the same value cannot all be
    // read back by their new key, but a key set from another column can.
    let r = api.patch_with("/articles?id=in.(4,5)&select=id,title", &[REPRESENTATION], r#"{"title": "Same"}"#).await;
    r.expect(200);
    let mut ids = r.column_i64("id");
    ids.sort();
    assert_eq!(ids, vec![4, 5]);
}

async fn delete_removes_filtered_rows(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.delete_with("/stock?qty=lt.0", &[("prefer", "count=exact")]).await;
    r.expect(204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-range"), Some("*/2"));
    assert_eq!(api.sql_i64("SELECT id FROM stock ORDER BY id").await, vec![1, 2, 3, 5, 6]);

    // The representation is the rows as they were.
    let expected = api.sql_i64("SELECT id FROM articles WHERE title LIKE '%fox%' OR id = 4 ORDER BY id").await;
    let r = api.delete_with("/articles?select=id,title&or=(title.ilike.*FOX*,id.eq.4)", &[REPRESENTATION]).await;
    r.expect(200);
    assert_json_content(&r);
    assert_eq!(r.header("content-range"), Some("*/*"));
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(
        rows,
        vec![json!({"id": 3, "title": "The quick brown fox"}), json!({"id": 4, "title": "Running a bookshop"})]
    );
    assert_eq!(rows.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), expected);
    assert_eq!(api.sql_i64("SELECT id FROM articles ORDER BY id").await, vec![1, 2, 5]);

    // A composite key.
    let expected = api.sql_i64("SELECT product_id FROM order_items WHERE order_id = 1 ORDER BY product_id").await;
    let r = api.delete_with("/order_items?order_id=eq.1", &[REPRESENTATION]).await;
    r.expect(200);
    let mut products: Vec<i64> = r.column_i64("product_id");
    products.sort();
    assert_eq!(products, expected);
    assert_eq!(api.count("order_items WHERE order_id = 1").await, 0);

    // Nothing matches.
    let r = api.delete_with("/stock?id=eq.999", &[]).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));
    let r = api.delete_with("/stock?id=eq.999", &[REPRESENTATION]).await;
    r.expect(200);
    assert_eq!(r.body, "[]");

    // A row others refer to: 409, still there.
    let e = api.delete_with("/orders?id=eq.2", &[]).await.expect_error(409, "23503");
    if engine != Engine::Sqlite {
        assert!(error_text(&e).contains("fk_"), "names the constraint: {e}");
    }
    assert_eq!(api.count("orders WHERE id = 2").await, 1);
    // DELETE takes no limit.
    api.delete_with("/stock?limit=1", &[]).await.expect(400);
    assert_eq!(api.count("stock").await, 5);
}

async fn unfiltered_writes_are_refused_unless_configured(engine: Engine) {
    let api = Api::fixture(engine).await;
    let e = api.patch_with("/articles", &[], r#"{"title": "All"}"#).await.expect_error(400, "DBAPI104");
    assert!(e["message"].as_str().unwrap().contains("articles"));
    api.patch_with("/articles?select=id&order=id", &[], r#"{"title": "All"}"#).await.expect_error(400, "DBAPI104");
    api.delete_with("/articles", &[]).await.expect_error(400, "DBAPI104");
    api.delete_with("/articles?select=id", &[REPRESENTATION]).await.expect_error(400, "DBAPI104");
    assert_eq!(api.count("articles").await, 5);
    assert_eq!(api.count("articles WHERE title = 'All'").await, 0);

    let mut config = RuntimeConfig::default();
    config.api.allow_unfiltered_writes = vec!["art*".into()];
    let api = Api::fixture_with(engine, config).await;
    let r = api.patch_with("/articles", &[], r#"{"title": "All"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("0-4/*"));
    assert_eq!(api.count("articles WHERE title = 'All'").await, 5);
    let r = api.delete_with("/articles", &[]).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(api.count("articles").await, 0);
    // Only the tables the globs match.
    api.delete_with("/stock", &[]).await.expect_error(400, "DBAPI104");
    assert_eq!(api.count("stock").await, 7);
}

async fn max_affected_strict_refuses_and_keeps_nothing(engine: Engine) {
    let api = Api::fixture(engine).await;
    let strict3 = [("prefer", "handling=strict, max-affected=3")];
    let e =
        api.patch_with("/orders?status=eq.paid", &strict3, r#"{"note": "bulk"}"#).await.expect_error(400, "PGRST124");
    assert!(e["details"].as_str().unwrap().contains('4'), "{e}");
    assert_eq!(api.count("orders WHERE note = 'bulk'").await, 0);
    let r = api.delete_with("/stock?qty=gte.0", &[("prefer", "handling=strict, max-affected=2")]).await;
    r.expect_error(400, "PGRST124");
    assert_eq!(api.count("stock").await, 7);
    // Within the limit.
    let r = api
        .patch_with(
            "/orders?status=eq.paid",
            &[("prefer", "handling=strict, max-affected=4, return=representation")],
            r#"{"note": "bulk"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    assert_applied(&r, &["handling=strict", "max-affected=4", "return=representation"]);
    assert_eq!(api.sql_i64("SELECT id FROM orders WHERE note = 'bulk' ORDER BY id").await, vec![1, 5, 8, 11]);
    let r = api.delete_with("/stock?qty=lt.0", &[("prefer", "handling=strict, max-affected=2")]).await;
    r.expect(204);
    assert_applied(&r, &["handling=strict", "max-affected=2"]);
    assert_eq!(api.count("stock").await, 5);
    // Without handling=strict the limit is not applied (as in PostgREST)
    // and not echoed.
    let r = api.delete_with("/stock?qty=gt.50", &[("prefer", "max-affected=1")]).await;
    r.expect(204);
    assert!(!applied(&r).iter().any(|t| t.starts_with("max-affected")), "{:?}", applied(&r));
    assert_eq!(api.count("stock").await, 3);
}

async fn tx_rollback_returns_rows_and_keeps_nothing(engine: Engine) {
    let api = Api::fixture(engine).await;
    let rollback = [("prefer", "return=representation, tx=rollback")];
    let r = api
        .post_with("/orders?select=customer_id,status,note", &rollback, r#"{"customer_id": 2, "note": "never"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"customer_id": 2, "status": "pending", "note": "never"}]));
    assert_applied(&r, &["return=representation", "tx=rollback"]);
    assert_eq!(api.count("orders").await, 12);

    let r = api.patch_with("/orders?id=eq.1&select=id,total", &rollback, r#"{"total": 1}"#).await;
    r.expect(200);
    assert_eq!(r.json()[0]["total"].as_f64(), Some(1.0));
    assert_eq!(api.count("orders WHERE id = 1 AND total = 120.5").await, 1);

    let r = api.delete_with("/articles?id=eq.1&select=id", &rollback).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1}]));
    assert_eq!(api.count("articles").await, 5);

    let r = api.put_with("/customers?id=eq.40&select=id", &rollback, r#"{"id": 40, "name": "Ghost"}"#).await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 40}]));
    assert_eq!(api.count("customers").await, 6);

    // A bulk insert too, and tx=commit keeps.
    let r = api
        .post_with(
            "/articles",
            &[("prefer", "tx=rollback")],
            r#"[{"title": "a", "body": "b"}, {"title": "c", "body": "d"}]"#,
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(api.count("articles").await, 5);
    let r = api.post_with("/articles", &[("prefer", "tx=commit")], r#"{"title": "a", "body": "b"}"#).await;
    r.expect(201);
    assert_eq!(api.count("articles").await, 6);
}

async fn single_object_accept_on_writes(engine: Engine) {
    let api = Api::fixture(engine).await;
    let one = [REPRESENTATION, ("accept", OBJECT)];
    let r = api.post_with("/customers?select=id,name", &one, r#"{"name": "Solo"}"#).await;
    r.expect(201);
    assert_eq!(r.json(), json!({"id": 7, "name": "Solo"}));
    let singular_content_type = r.header("content-type").unwrap_or("").to_string();
    let r = api.patch_with("/customers?id=eq.7&select=id,city", &one, r#"{"city": "Bern"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!({"id": 7, "city": "Bern"}));
    let r = api.delete_with("/customers?id=eq.7&select=id", &one).await;
    r.expect(200);
    assert_eq!(r.json(), json!({"id": 7}));
    assert_eq!(api.count("customers").await, 6);

    // More (or fewer) than one row: 406, and nothing is kept.
    api.post_with("/customers", &one, r#"[{"name": "A"}, {"name": "B"}]"#).await.expect_error(406, "PGRST116");
    assert_eq!(api.count("customers").await, 6);
    api.patch_with("/orders?status=eq.paid", &one, r#"{"note": "many"}"#).await.expect_error(406, "PGRST116");
    assert_eq!(api.count("orders WHERE note = 'many'").await, 0);
    api.delete_with("/stock?qty=lt.0", &one).await.expect_error(406, "PGRST116");
    assert_eq!(api.count("stock").await, 7);
    // No row is not one row either.
    api.patch_with("/orders?id=eq.999", &one, r#"{"note": "none"}"#).await.expect_error(406, "PGRST116");
    api.delete_with("/orders?id=eq.999", &one).await.expect_error(406, "PGRST116");
    // The single object is labelled as one, as on reads.
    assert!(singular_content_type.starts_with(OBJECT), "content-type {singular_content_type:?}");
}

async fn single_object_accept_without_representation(engine: Engine) {
    let api = Api::fixture(engine).await;
    // The singular Accept holds whatever the return preference, as in
    // PostgREST: more than one changed row is 406 and is rolled back.
    api.post_with("/customers", &[("accept", OBJECT)], r#"[{"name": "A"}, {"name": "B"}]"#)
        .await
        .expect_error(406, "PGRST116");
    assert_eq!(api.count("customers").await, 6);
    api.patch_with("/orders?status=eq.paid", &[("accept", OBJECT)], r#"{"note": "many"}"#)
        .await
        .expect_error(406, "PGRST116");
    assert_eq!(api.count("orders WHERE note = 'many'").await, 0);
    api.delete_with("/stock?qty=lt.0", &[("accept", OBJECT)]).await.expect_error(406, "PGRST116");
    assert_eq!(api.count("stock").await, 7);
    // One row is fine.
    api.patch_with("/orders?id=eq.1", &[("accept", OBJECT)], r#"{"note": "one"}"#).await.expect(204);
    assert_eq!(api.count("orders WHERE note = 'one'").await, 1);
}

async fn awkward_table_and_column_names(engine: Engine) {
    let api = Api::fixture(engine).await;
    let user = api.q("user");
    let r = api
        .post_with(
            "/user",
            &[("prefer", "return=headers-only")],
            r#"{"select": "maybe", "group": "ops", "order": 7, "first name": "Barbara"}"#,
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("location"), Some("/user?id=eq.4"));
    let row = api.get(r.header("location").unwrap()).await;
    assert_eq!(row.json(), json!([{"id": 4, "select": "maybe", "group": "ops", "order": 7, "first name": "Barbara"}]));
    let r = api
        .post_with("/user?select=id,first name,order", &[REPRESENTATION], r#"{"first name": "Cy", "order": 1}"#)
        .await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 5, "first name": "Cy", "order": 1}]));
    // An empty object is a row of defaults.
    let r = api.post_with("/user?select=id,select", &[REPRESENTATION], "{}").await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 6, "select": null}]));
    assert_eq!(api.count(&user).await, 6);

    let r = api.patch_with("/user?and=(order.gt.5)&select=id,group", &[REPRESENTATION], r#"{"group": "senior"}"#).await;
    r.expect(200);
    let mut ids = r.column_i64("id");
    ids.sort();
    assert_eq!(ids, api.sql_i64(&format!("SELECT id FROM {user} WHERE {} > 5 ORDER BY id", api.q("order"))).await);
    assert_eq!(ids, vec![1, 2, 4]);
    api.patch_with("/user?first%20name=eq.Linus", &[], r#"{"first name": "Linus T"}"#).await.expect(204);
    assert_eq!(
        api.sql_text(&format!("SELECT {} FROM {user} WHERE id = 3", api.q("first name"))).await,
        [Some("Linus T".into())]
    );

    let r = api
        .post_with("/MixedCase", &[("prefer", "return=headers-only")], r#"{"DisplayName": "Fourth", "lowerCol": "d"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.header("location"), Some("/MixedCase?Id=eq.4"));
    let r = api.delete_with("/MixedCase?lowerCol=is.null", &[REPRESENTATION]).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"Id": 3, "DisplayName": "Third, item", "lowerCol": null}]));
    assert_eq!(
        api.sql_i64(&format!("SELECT {} FROM {} ORDER BY 1", api.q("Id"), api.q("MixedCase"))).await,
        vec![1, 2, 4]
    );
    api.post_with("/mixedcase", &[], r#"{"DisplayName": "x"}"#).await.expect_error(404, "PGRST205");
    api.post_with("/MixedCase", &[], r#"{"displayname": "x"}"#).await.expect_error(400, "PGRST204");
}

async fn json_arrays_booleans_and_bytes_round_trip(engine: Engine) {
    let api = Api::fixture(engine).await;
    let sent = json!({
        "name": "Round \"Trip\", O'Neil",
        "tags": ["a", "b c", "q\"uote", "comma,here", "{brace}", "ünï"],
        "attrs": {"nested": {"list": [1, 2.5, {"x": null}]}, "flag": true, "s": "ünï"},
        "sku": "0d5c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "image": "\\xdeadbeef00",
        "in_stock": false,
        "ratings": [1, 2, 3]
    });
    let select = "select=id,name,tags,attrs,sku,image,in_stock,ratings";
    let r = api.post_with(&format!("/products?{select}"), &[REPRESENTATION], &sent.to_string()).await;
    r.expect(201);
    let mut expected = sent.clone();
    expected["id"] = json!(10);
    assert_eq!(r.json(), json!([expected]));
    let r = api.get(&format!("/products?{select}&id=eq.10")).await;
    assert_eq!(r.json(), json!([expected]));
    assert_eq!(api.sql_i64("SELECT length(image) FROM products WHERE id = 10").await, vec![5]);
    assert_eq!(api.count("products WHERE id = 10 AND NOT in_stock").await, 1);

    // Updated to empty and other shapes.
    let patch = json!({"tags": [], "attrs": [1, "two", null], "image": "\\x", "in_stock": true, "ratings": null});
    let r = api.patch_with(&format!("/products?id=eq.10&{select}"), &[REPRESENTATION], &patch.to_string()).await;
    r.expect(200);
    let mut expected = expected.clone();
    for (k, v) in patch.as_object().unwrap() {
        expected[k] = v.clone();
    }
    assert_eq!(r.json(), json!([expected]));
    assert_eq!(api.get(&format!("/products?{select}&id=eq.10")).await.json(), json!([expected]));
    assert_eq!(api.sql_i64("SELECT length(image) FROM products WHERE id = 10").await, vec![0]);
    assert_eq!(api.count("products WHERE id = 10 AND in_stock").await, 1);

    // Values that cannot be of the column's type, each naming the column.
    let mut bad = vec![
        (r#"{"name": "x", "image": "deadbeef"}"#, "image"),
        (r#"{"name": "x", "image": "\\xabc"}"#, "image"),
        (r#"{"name": "x", "in_stock": "maybe"}"#, "in_stock"),
        (r#"{"name": "x", "price": "cheap"}"#, "price"),
        (r#"{"name": "x", "category_id": 1.5}"#, "category_id"),
    ];
    if engine == Engine::Postgres {
        // Elsewhere these columns are JSON and text stand-ins.
        bad.push((r#"{"name": "x", "tags": "not an array"}"#, "tags"));
        bad.push((r#"{"name": "x", "sku": "not-a-uuid"}"#, "sku"));
    }
    for (body, column) in bad {
        let e = api.post_with("/products", &[], body).await.expect_error(400, "22P02");
        assert!(e["message"].as_str().unwrap().contains(column), "{body}: {e}");
    }
    assert_eq!(api.count("products").await, 10);

    // A JSON string is a JSON value of a JSON column like any other, stored
    // as a JSON string (as PostgreSQL's json_populate_record does), not
    // parsed as JSON text; booleans may come as strings.
    let r = api
        .patch_with(
            "/products?id=eq.10&select=attrs,in_stock",
            &[REPRESENTATION],
            r#"{"attrs": "just text", "in_stock": "false"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"attrs": "just text", "in_stock": false}]));
    let r = api.patch_with("/products?id=eq.10&select=attrs", &[REPRESENTATION], r#"{"attrs": "{\"a\": 1}"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"attrs": "{\"a\": 1}"}]));
}

async fn scalars_into_other_types(engine: Engine) {
    let api = Api::fixture(engine).await;
    // A boolean or a number into a text column is its JSON text.
    let r = api.patch_with("/orders?id=eq.1&select=note", &[REPRESENTATION], r#"{"note": true}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"note": "true"}]));
    assert_eq!(api.sql_text("SELECT note FROM orders WHERE id = 1").await, [Some("true".into())]);
    let r = api.patch_with("/orders?id=eq.1&select=note", &[REPRESENTATION], r#"{"note": 12.5}"#).await;
    assert_eq!(r.json(), json!([{"note": "12.5"}]));
    // Integers as strings, spaces around them included (they pass the
    // type check, so the database must take them too).
    let r = api.patch_with("/orders?id=eq.1&select=customer_id", &[REPRESENTATION], r#"{"customer_id": " 2 "}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"customer_id": 2}]));
    let r = api
        .post_with("/orders?select=customer_id,total", &[REPRESENTATION], r#"{"customer_id": "3", "total": "4.5"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.json()[0]["customer_id"], 3);
    assert_eq!(r.json()[0]["total"].as_f64(), Some(4.5));
    assert_eq!(api.count("orders WHERE customer_id = 3").await, 4);
}

async fn tables_without_a_primary_key(engine: Engine) {
    let api = Api::with_sql(
        engine,
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(20));
         INSERT INTO people (id, name) VALUES (1, 'Ann'), (2, 'Bob');
         CREATE TABLE logs (msg VARCHAR(100), n INTEGER, kind VARCHAR(10) NOT NULL DEFAULT 'info', person_id INTEGER,
           FOREIGN KEY (person_id) REFERENCES people (id));
         INSERT INTO logs (msg, n) VALUES ('a', 1), ('b', 2), ('same', 3);",
        RuntimeConfig::default(),
    )
    .await;
    let r = api.post_with("/logs", &[], r#"[{"msg": "c", "n": 4}, {"msg": "d", "n": 5}]"#).await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(r.header("location"), None);
    let r = api.patch_with("/logs?n=gt.3", &[], r#"{"msg": "e"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("0-1/*"));
    // Content-Range spans the rows the filter matched, also those whose
    // value did not change.
    let r = api.patch_with("/logs?n=eq.3", &[], r#"{"msg": "same"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("0-0/*"));
    let r = api.delete_with("/logs?n=gte.3", &[("prefer", "handling=strict, max-affected=2")]).await;
    r.expect_error(400, "PGRST124");
    assert_eq!(api.count("logs").await, 5);
    let r = api.delete_with("/logs?n=gte.4", &[("prefer", "handling=strict, max-affected=2")]).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(api.count("logs").await, 3);
    // The written rows come back as PostgREST returns them, with their
    // defaults, `select=` and embeds: found again by the row identity the
    // engine has (PostgreSQL's ctid, SQLite's rowid), or, on MySQL, given
    // by the write itself.
    let r = api
        .post_with(
            "/logs?select=msg,n,kind,who:people(name)",
            &[REPRESENTATION],
            r#"[{"msg": "f", "n": 6, "person_id": 1}, {"msg": "g", "n": 7, "person_id": null}]"#,
        )
        .await;
    assert_eq!(
        r.expect(201).json(),
        json!([{"msg": "f", "n": 6, "kind": "info", "who": {"name": "Ann"}}, {"msg": "g", "n": 7, "kind": "info", "who": null}])
    );
    assert_eq!(r.header("location"), None, "a row identity is no address");
    let r = api.post_with("/logs?select=n", &[("prefer", "return=headers-only")], r#"{"msg": "h", "n": 8}"#).await;
    assert_eq!(r.expect(201).header("location"), None);
    // An update moves a PostgreSQL row (a new ctid): the rows read back are
    // the updated ones, and only those, with their new values.
    let r = api
        .patch_with(
            "/logs?n=gte.6&select=msg,n,people(id)&order=n",
            &[REPRESENTATION],
            r#"{"msg": "upd", "person_id": 2}"#,
        )
        .await;
    assert_eq!(
        r.expect(200).json(),
        json!([
            {"msg": "upd", "n": 6, "people": {"id": 2}},
            {"msg": "upd", "n": 7, "people": {"id": 2}},
            {"msg": "upd", "n": 8, "people": {"id": 2}}
        ])
    );
    assert_eq!(r.header("content-range"), Some("0-2/*"));
    // One row as an object; a PATCH matching two is refused and undone.
    let one = [("prefer", "return=representation"), ("accept", "application/vnd.pgrst.object+json")];
    let r = api.patch_with("/logs?n=eq.6&select=n,kind", &one, r#"{"kind": "warn"}"#).await;
    assert_eq!(r.expect(200).json(), json!({"n": 6, "kind": "warn"}));
    api.patch_with("/logs?n=gte.7", &one, r#"{"kind": "warn"}"#).await.expect_error(406, "PGRST116");
    assert_eq!(api.count("logs WHERE kind = 'warn'").await, 1);
    // A failing PATCH keeps nothing, and the next one still answers (on
    // MySQL the copy it left behind is replaced).
    api.patch_with("/logs?n=eq.6", &[REPRESENTATION], r#"{"kind": null}"#).await.expect_error(400, "23502");
    let r = api.patch_with("/logs?n=eq.6&select=kind", &[REPRESENTATION], r#"{"kind": "err"}"#).await;
    assert_eq!(r.expect(200).json(), json!([{"kind": "err"}]));
    let r = api.delete_with("/logs?n=gte.7&select=n,people(name)&order=n", &[REPRESENTATION]).await;
    assert_eq!(r.expect(200).json(), json!([{"n": 7, "people": {"name": "Bob"}}, {"n": 8, "people": {"name": "Bob"}}]));
    assert_eq!(api.sql_i64("SELECT n FROM logs ORDER BY n").await, [1, 2, 3, 6]);
    // Rows that are the same in every column come back each.
    api.post_with("/logs", &[], r#"[{"msg": "twin", "n": 9}, {"msg": "twin", "n": 9}]"#).await.expect(201);
    let r = api.patch_with("/logs?msg=eq.twin&select=msg,n", &[REPRESENTATION], r#"{"n": 10}"#).await;
    assert_eq!(r.expect(200).json(), json!([{"msg": "twin", "n": 10}, {"msg": "twin", "n": 10}]));
    let r = api.delete_with("/logs?msg=eq.twin&select=n", &[REPRESENTATION]).await;
    assert_eq!(r.expect(200).json(), json!([{"n": 10}, {"n": 10}]));
    assert_eq!(api.count("logs").await, 4);
}

/// The rows written to a table without a key come back with the values
/// the database computed for them: generated columns after an INSERT and
/// after a PATCH (on MySQL through the copy of the changed rows, which
/// computes them the same way).
async fn generated_columns_without_a_primary_key(engine: Engine) {
    let sql = "CREATE TABLE sizes (label VARCHAR(10), n INTEGER, twice INTEGER GENERATED ALWAYS AS (n * 2) STORED);";
    let api = Api::with_sql(engine, sql, RuntimeConfig::default()).await;
    let r = api.post_with("/sizes", &[REPRESENTATION], r#"{"label": "s", "n": 2}"#).await;
    assert_eq!(r.expect(201).json(), json!([{"label": "s", "n": 2, "twice": 4}]));
    let r = api.patch_with("/sizes?label=eq.s", &[REPRESENTATION], r#"{"n": 5}"#).await;
    assert_eq!(r.expect(200).json(), json!([{"label": "s", "n": 5, "twice": 10}]));
    let r = api.delete_with("/sizes?twice=eq.10&select=twice", &[REPRESENTATION]).await;
    assert_eq!(r.expect(200).json(), json!([{"twice": 10}]));
    assert_eq!(api.count("sizes").await, 0);
}

/// Rows that come back from the write's own `RETURNING` (MySQL) are named
/// by their table's name in the statement; a table named like an embedded
/// resource's alias (`t2`) cannot be: a clear 400 before anything is
/// written. PostgreSQL and SQLite read such rows back by their identity.
async fn a_keyless_table_named_like_a_statement_alias(engine: Engine) {
    let sql = "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(20)); INSERT INTO people VALUES (1, 'Ann');
               CREATE TABLE t2 (msg VARCHAR(10), person_id INTEGER, FOREIGN KEY (person_id) REFERENCES people (id));";
    let api = Api::with_sql(engine, sql, RuntimeConfig::default()).await;
    let r = api.post_with("/t2?select=msg,people(name)", &[REPRESENTATION], r#"{"msg": "a", "person_id": 1}"#).await;
    if engine == Engine::MySql {
        let e = r.expect_error(400, "DBAPI103");
        assert!(e["hint"].as_str().unwrap_or("").contains("return=minimal"), "{e}");
        assert_eq!(api.count("t2").await, 0);
        return;
    }
    assert_eq!(r.expect(201).json(), json!([{"msg": "a", "people": {"name": "Ann"}}]));
}

/// A view without a primary key answers `return=representation` with the
/// rows the write gave back through it (PostgREST's `RETURNING`), on every
/// engine: PostgreSQL's and MariaDB's auto-updatable views, SQLite's
/// through INSTEAD OF triggers.
async fn views_without_a_primary_key(engine: Engine) {
    let view = match engine {
        Engine::Sqlite => {
            "CREATE VIEW recent AS SELECT msg, n FROM logs WHERE n > 0;
             CREATE TRIGGER recent_insert INSTEAD OF INSERT ON recent BEGIN
               INSERT INTO logs (msg, n) VALUES (NEW.msg, NEW.n); END;
             CREATE TRIGGER recent_update INSTEAD OF UPDATE ON recent BEGIN
               UPDATE logs SET msg = NEW.msg, n = NEW.n WHERE msg IS OLD.msg AND n IS OLD.n; END;
             CREATE TRIGGER recent_delete INSTEAD OF DELETE ON recent BEGIN
               DELETE FROM logs WHERE msg IS OLD.msg AND n IS OLD.n; END;"
        }
        _ => "CREATE VIEW recent AS SELECT msg, n FROM logs WHERE n > 0;",
    };
    let sql = format!(
        "CREATE TABLE logs (msg VARCHAR(100), n INTEGER); INSERT INTO logs (msg, n) VALUES ('a', 1), ('b', 2); {view}"
    );
    let api = Api::with_sql(engine, &sql, RuntimeConfig::default()).await;
    let r = api.post_with("/recent?select=msg", &[REPRESENTATION], r#"[{"msg": "c", "n": 3}]"#).await;
    assert_eq!(r.expect(201).json(), json!([{"msg": "c"}]));
    let r = api.patch_with("/recent?n=gte.2&select=msg,n", &[REPRESENTATION], r#"{"msg": "z"}"#).await;
    let mut rows = r.expect(200).json();
    rows.as_array_mut().unwrap().sort_by_key(|row| row["n"].as_i64());
    assert_eq!(rows, json!([{"msg": "z", "n": 2}, {"msg": "z", "n": 3}]));
    let r = api.delete_with("/recent?n=eq.3", &[REPRESENTATION]).await;
    assert_eq!(r.expect(200).json(), json!([{"msg": "z", "n": 3}]));
    assert_eq!(api.sql_text("SELECT msg FROM logs ORDER BY n").await, [Some("a".to_string()), Some("z".to_string())]);
}

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

async fn upsert_conflict_target_is_respected(engine: Engine) {
    let api = Api::fixture(engine).await;
    // A conflict on another unique key than the one named is an error, not
    // an update of whichever row happens to collide.
    let r = api
        .post_with(
            "/customers?on_conflict=email",
            &[("prefer", "resolution=merge-duplicates")],
            r#"{"id": 1, "name": "Hijack", "email": "new@example.com"}"#,
        )
        .await;
    r.expect_error(409, "23505");
    assert_eq!(api.sql_text("SELECT email FROM customers WHERE id = 1").await, [Some("alice@example.com".into())]);
    let r = api
        .post_with(
            "/customers?on_conflict=email",
            &[("prefer", "resolution=ignore-duplicates")],
            r#"{"id": 2, "name": "Hijack", "email": "fresh@example.com"}"#,
        )
        .await;
    r.expect_error(409, "23505");
    assert_eq!(api.count("customers WHERE email = 'fresh@example.com'").await, 0);
    // The primary key is the target by default: a new id whose email is
    // taken does not take over the row holding that email (customer 6 has
    // no orders or addresses, so no foreign key stands in the way).
    let r = api
        .post_with(
            "/customers",
            &[("prefer", "resolution=merge-duplicates")],
            r#"{"id": 60, "name": "Hijack", "email": "zoe.zhang@example.net"}"#,
        )
        .await;
    r.expect_error(409, "23505");
    // PUT likewise.
    let r = api
        .put_with("/customers?id=eq.50", &[], r#"{"id": 50, "name": "Hijack", "email": "zoe.zhang@example.net"}"#)
        .await;
    r.expect_error(409, "23505");
    assert_eq!(api.count("customers WHERE id IN (50, 60)").await, 0);
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE email = 'alice@example.com'").await, vec![1]);
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE email = 'zoe.zhang@example.net'").await, vec![6]);
    assert_eq!(api.count("customers WHERE name = 'Hijack'").await, 0);
}

async fn location_headers_round_trip(engine: Engine) {
    let api = Api::fixture(engine).await;
    // A composite key of text and integer, with characters that need
    // encoding in a query string.
    let r = api
        .post_with(
            "/warehouses",
            &[("prefer", "return=headers-only")],
            r#"{"region": "a&b, c.d=e+f ü", "code": 3, "name": "Odd"}"#,
        )
        .await;
    r.expect(201);
    let location = r.header("location").expect("a Location").to_string();
    assert!(location.starts_with("/warehouses?"), "{location}");
    assert!(location.contains("code=eq.3"), "{location}");
    let row = api.get(&location).await;
    row.expect(200);
    assert_eq!(row.json(), json!([{"region": "a&b, c.d=e+f ü", "code": 3, "name": "Odd"}]));
    // Composite integer key.
    let r = api
        .post_with(
            "/order_items",
            &[("prefer", "return=headers-only")],
            r#"{"order_id": 7, "product_id": 8, "qty": 4}"#,
        )
        .await;
    r.expect(201);
    let location = r.header("location").unwrap().to_string();
    assert!(location.contains("order_id=eq.7") && location.contains("product_id=eq.8"), "{location}");
    assert_eq!(api.get(&location).await.json(), json!([{"order_id": 7, "product_id": 8, "qty": 4}]));
    // A column name with a space is encoded too.
    let r = api.post_with("/MixedCase", &[("prefer", "return=headers-only")], r#"{"DisplayName": "Loc"}"#).await;
    assert_eq!(api.get(r.header("location").unwrap()).await.column_i64("Id"), vec![4]);
    // A bulk insert of one row is still an array: no Location.
    let r = api.post_with("/articles", &[("prefer", "return=headers-only")], r#"[{"title": "t", "body": "b"}]"#).await;
    r.expect(201);
    assert_eq!(r.header("location"), None);
    // Upserting a key that already exists writes no new row: the header,
    // if any, still names the row.
    let r = api
        .post_with(
            "/warehouses",
            &[("prefer", "return=headers-only, resolution=merge-duplicates")],
            r#"{"region": "eu", "code": 1, "name": "Berlin"}"#,
        )
        .await;
    // A merge that inserted nothing answers 200, as in PostgREST.
    r.expect(200);
    if let Some(location) = r.header("location") {
        assert_eq!(api.get(location).await.json(), json!([{"region": "eu", "code": 1, "name": "Berlin"}]));
    }
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

/// Writes go to the schema `Content-Profile` names (PostgreSQL, the only
/// engine here with several schemas).
#[tokio::test]
async fn content_profile_selects_the_schema_written() {
    let mut config = RuntimeConfig::default();
    config.database.schemas = vec!["public".into(), "other".into()];
    let api = Api::fixture_with(Engine::Postgres, config).await;
    let r = api
        .post_with("/things", &[("content-profile", "other"), REPRESENTATION], r#"{"id": 3, "label": "three"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 3, "label": "three"}]));
    assert_eq!(r.header("content-profile"), Some("other"));
    api.patch_with("/things?id=eq.1", &[("content-profile", "other")], r#"{"label": "uno"}"#).await.expect(204);
    api.delete_with("/things?id=eq.2", &[("content-profile", "other")]).await.expect(204);
    assert_eq!(api.sql_i64("SELECT id FROM other.things ORDER BY id").await, vec![1, 3]);
    assert_eq!(api.count("other.things WHERE label = 'uno'").await, 1);
    // Without the header the first schema is meant, which has no `things`.
    api.post_with("/things", &[], r#"{"id": 4}"#).await.expect_error(404, "PGRST205");
    api.post_with("/things", &[("content-profile", "nope")], r#"{"id": 4}"#).await.expect_error(406, "PGRST106");
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

/// A PostgreSQL view showing its table's primary key has it as its own, so
/// writes through an updatable view return representations, and PUT works.
#[tokio::test]
async fn postgres_updatable_views_write_like_their_table() {
    let api = Api::fixture(Engine::Postgres).await;
    let r = api
        .patch_with("/open_orders?order_id=eq.3&select=order_id,total", &[REPRESENTATION], r#"{"total": 12.5}"#)
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"order_id": 3, "total": 12.5}]));
    assert_eq!(api.sql_text("SELECT total::text FROM orders WHERE id = 3").await, vec![Some("12.50".to_string())]);
    let r = api
        .put_with("/open_orders?order_id=eq.7", &[REPRESENTATION], r#"{"order_id": 7, "buyer": 3, "total": 1}"#)
        .await;
    r.expect(200);
    assert_eq!(r.json()[0]["total"], json!(1.0));
    // A filter that the view's own key does not match is refused as for a table.
    api.put_with("/open_orders?order_id=eq.8", &[], r#"{"order_id": 7, "buyer": 3, "total": 1}"#)
        .await
        .expect_error(400, "PGRST115");
}
