//! What writes answer, shaped as PostgREST shapes it (API reference:
//! "Tables and Views", "Prefer header", "Pagination and Count"; its
//! InsertSpec, UpdateSpec, DeleteSpec, UpsertSpec and NullsStripSpec):
//! `order=` and `nulls=stripped` on representations, the status of upserts
//! and PUT, `Content-Range` of every write, and what `columns=` means with
//! and without `Prefer: missing=default`. On PostgreSQL, MariaDB and SQLite.

mod support;

use serde_json::{Value, json};
use support::Engine;
use support::api::{Api, Response};

const REPRESENTATION: (&str, &str) = ("prefer", "return=representation");
const ARRAY_STRIPPED: &str = "application/vnd.pgrst.array+json;nulls=stripped";
const OBJECT_STRIPPED: &str = "application/vnd.pgrst.object+json;nulls=stripped";

on_every_engine!(
    representations_follow_order,
    representations_strip_nulls,
    reads_strip_nulls_from_single_objects,
    upsert_statuses,
    put_statuses_and_headers,
    content_range_of_writes,
    columns_must_name_columns,
    columns_with_missing_default_on_post,
    columns_on_patch_set_every_listed_column,
);

fn ids(r: &Response) -> Vec<i64> {
    r.column_i64("id")
}

#[track_caller]
fn assert_content_type(r: &Response, prefix: &str) {
    let ct = r.header("content-type").unwrap_or_else(|| panic!("no content-type; body: {}", r.body));
    assert!(ct.starts_with(prefix), "content-type {ct}, expected {prefix}");
}

/// Whether any object of the body, at any depth, has a null member.
fn has_null_member(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.values().any(|m| m.is_null() || has_null_member(m)),
        Value::Array(items) => items.iter().any(has_null_member),
        _ => false,
    }
}

async fn representations_follow_order(engine: Engine) {
    let api = Api::fixture(engine).await;
    // POST: the inserted rows in the requested order, not insertion order.
    let r = api
        .post_with(
            "/customers?select=id,name&order=name.desc",
            &[REPRESENTATION],
            r#"[{"name": "Anna"}, {"name": "Cleo"}, {"name": "Bert"}]"#,
        )
        .await;
    r.expect(201);
    let v = r.json();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Cleo", "Bert", "Anna"]);

    // PATCH, ordered on a column that is not selected.
    let expected = api.sql_i64("SELECT id FROM orders WHERE customer_id = 1 ORDER BY total DESC").await;
    assert_eq!(expected.len(), 3);
    let r = api
        .patch_with("/orders?customer_id=eq.1&select=id&order=total.desc", &[REPRESENTATION], r#"{"note": "n"}"#)
        .await;
    r.expect(200);
    assert_eq!(ids(&r), expected);
    let r =
        api.patch_with("/orders?customer_id=eq.1&select=id&order=id.desc", &[REPRESENTATION], r#"{"note": "m"}"#).await;
    r.expect(200);
    assert_eq!(ids(&r), [12, 2, 1]);

    // An embedded order applies to the embedded rows of the representation.
    let r = api
        .patch_with(
            "/customers?id=eq.3&select=id,orders(id)&orders.order=id.desc",
            &[REPRESENTATION],
            r#"{"city": "Lyon"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 3, "orders": [{"id": 7}, {"id": 6}, {"id": 5}]}]));

    // Upsert through POST.
    let r = api
        .post_with(
            "/customers?select=id&order=id.desc",
            &[("prefer", "return=representation, resolution=merge-duplicates")],
            r#"[{"id": 2, "name": "B"}, {"id": 5, "name": "E"}, {"id": 4, "name": "D"}]"#,
        )
        .await;
    r.expect(200);
    assert_eq!(ids(&r), [5, 4, 2]);

    // DELETE: the removed rows, ordered.
    let r = api.delete_with("/stock?select=id&order=id.desc&qty=gte.0", &[REPRESENTATION]).await;
    r.expect(200);
    let got = ids(&r);
    assert!(got.len() > 1, "several rows deleted: {got:?}");
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted);
}

async fn representations_strip_nulls(engine: Engine) {
    let api = Api::fixture(engine).await;
    // POST: null members are left out of every object.
    let r = api
        .post_with(
            "/customers?select=id,name,email,city",
            &[REPRESENTATION, ("accept", ARRAY_STRIPPED)],
            r#"[{"id": 20, "name": "Nil", "email": null, "city": null}, {"id": 21, "name": "Val", "email": null, "city": "Oslo"}]"#,
        )
        .await;
    r.expect(201);
    assert_content_type(&r, ARRAY_STRIPPED);
    assert_eq!(r.json(), json!([{"id": 20, "name": "Nil"}, {"id": 21, "name": "Val", "city": "Oslo"}]));

    // PATCH with a singular, stripped response.
    let r = api
        .patch_with(
            "/customers?id=eq.1&select=id,name,city",
            &[REPRESENTATION, ("accept", OBJECT_STRIPPED)],
            r#"{"city": null}"#,
        )
        .await;
    r.expect(200);
    assert_content_type(&r, OBJECT_STRIPPED);
    assert_eq!(r.json(), json!({"id": 1, "name": "Alice Anderson"}));

    // Nested objects of embeds are stripped too.
    let r = api
        .patch_with(
            "/orders?id=eq.3&select=id,note,customers(name,city)",
            &[REPRESENTATION, ("accept", ARRAY_STRIPPED)],
            r#"{"total": 10}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 3, "customers": {"name": "bob brown"}}]));

    // PUT and DELETE.
    let r = api
        .put_with(
            "/customers?id=eq.22&select=id,name,city",
            &[REPRESENTATION, ("accept", OBJECT_STRIPPED)],
            r#"{"id": 22, "name": "Put", "city": null}"#,
        )
        .await;
    r.expect(201);
    assert_content_type(&r, OBJECT_STRIPPED);
    assert_eq!(r.json(), json!({"id": 22, "name": "Put"}));
    let r =
        api.delete_with("/customers?id=in.(20,22)&select=id,city", &[REPRESENTATION, ("accept", ARRAY_STRIPPED)]).await;
    r.expect(200);
    let mut rows = r.json().as_array().unwrap().clone();
    rows.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(rows, [json!({"id": 20}), json!({"id": 22})]);

    // Without the parameter, nulls stay.
    let r = api.patch_with("/customers?id=eq.1&select=id,city", &[REPRESENTATION], r#"{"city": null}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1, "city": null}]));
    assert_content_type(&r, "application/json");
}

async fn reads_strip_nulls_from_single_objects(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get_with("/customers?id=eq.2&select=id,city,orders(id,note)", &[("accept", OBJECT_STRIPPED)]).await;
    r.expect(200);
    assert_content_type(&r, OBJECT_STRIPPED);
    let v = r.json();
    assert!(!has_null_member(&v), "{v}");
    assert_eq!(v["id"], 2);
    assert!(v.get("city").is_none());
    let r = api.get_with("/customers?select=id,city", &[("accept", ARRAY_STRIPPED)]).await;
    r.expect(200);
    assert_content_type(&r, ARRAY_STRIPPED);
    assert!(!has_null_member(&r.json()), "{}", r.body);
    assert_eq!(ids(&r).len(), 6);
}

async fn upsert_statuses(engine: Engine) {
    let api = Api::fixture(engine).await;
    let merge = ("prefer", "resolution=merge-duplicates");
    let merge_rep = ("prefer", "return=representation, resolution=merge-duplicates");
    // Every row exists: the merge only updated, 200 (minimal or not).
    let r = api.post_with("/customers", &[merge], r#"[{"id": 1, "name": "A1"}, {"id": 2, "name": "B1"}]"#).await;
    r.expect(200);
    assert!(r.body.is_empty());
    let r = api.post_with("/customers?select=id,name", &[merge_rep], r#"{"id": 1, "name": "A2"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1, "name": "A2"}]));
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 1").await, [Some("A2".into())]);
    // One row is new: 201.
    let r = api
        .post_with("/customers?select=id", &[merge_rep], r#"[{"id": 2, "name": "B2"}, {"id": 30, "name": "N"}]"#)
        .await;
    r.expect(201);
    assert_eq!(api.count("customers").await, 7);
    // On another unique key.
    let r = api
        .post_with("/customers?on_conflict=email", &[merge], r#"{"name": "Chloé", "email": "chloe@example.org"}"#)
        .await;
    r.expect(200);
    // A row whose key is left to its default is new.
    let r = api
        .post_with(
            "/customers?columns=id,name&select=name",
            &[("prefer", "return=representation, resolution=merge-duplicates, missing=default")],
            r#"[{"id": 1, "name": "A3"}, {"name": "Fresh"}]"#,
        )
        .await;
    r.expect(201);
    assert_eq!(api.count("customers").await, 8);
    // Nothing to insert at all: 200.
    api.post_with("/customers", &[merge_rep], "[]").await.expect(200);
    // ignore-duplicates answers 201 even when it kept every existing row.
    let r =
        api.post_with("/customers", &[("prefer", "resolution=ignore-duplicates")], r#"{"id": 1, "name": "X"}"#).await;
    r.expect(201);
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 1").await, [Some("A3".into())]);
    // A composite key that exists.
    let r = api.post_with("/order_items", &[merge], r#"{"order_id": 1, "product_id": 1, "qty": 42}"#).await;
    r.expect(200);
    assert_eq!(api.sql_i64("SELECT qty FROM order_items WHERE order_id = 1 AND product_id = 1").await, [42]);
}

async fn put_statuses_and_headers(engine: Engine) {
    let api = Api::fixture(engine).await;
    // New row with the representation: 201; replaced row: 200.
    let r =
        api.put_with("/customers?id=eq.40&select=id,name", &[REPRESENTATION], r#"{"id": 40, "name": "Forty"}"#).await;
    r.expect(201);
    assert_eq!(r.json(), json!([{"id": 40, "name": "Forty"}]));
    assert_eq!(r.header("content-range"), None, "PUT has no Content-Range");
    assert_eq!(r.header("location"), None);
    let r =
        api.put_with("/customers?id=eq.40&select=id,name", &[REPRESENTATION], r#"{"id": 40, "name": "Forty-2"}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 40, "name": "Forty-2"}]));
    // Without it: 204 either way.
    let r = api.put_with("/customers?id=eq.41", &[], r#"{"id": 41, "name": "New"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), None);
    api.put_with("/customers?id=eq.41", &[], r#"{"id": 41, "name": "Again"}"#).await.expect(204);
    assert_eq!(api.sql_text("SELECT name FROM customers WHERE id = 41").await, [Some("Again".into())]);
    // A composite key.
    let r = api
        .put_with(
            "/order_items?order_id=eq.7&product_id=eq.8",
            &[REPRESENTATION],
            r#"{"order_id": 7, "product_id": 8, "qty": 3}"#,
        )
        .await;
    r.expect(201);
    let r = api
        .put_with(
            "/order_items?order_id=eq.7&product_id=eq.8",
            &[REPRESENTATION],
            r#"{"order_id": 7, "product_id": 8, "qty": 4}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"order_id": 7, "product_id": 8, "qty": 4}]));
}

async fn content_range_of_writes(engine: Engine) {
    let api = Api::fixture(engine).await;
    let exact = ("prefer", "count=exact");
    // POST: no range; the total only when counted.
    let r = api.post_with("/articles", &[], r#"{"title": "t", "body": "b"}"#).await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/*"));
    let body = r#"[{"title": "t1", "body": "b"}, {"title": "t2", "body": "b"}, {"title": "t3", "body": "b"}]"#;
    let r = api.post_with("/articles", &[exact], body).await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/3"));
    assert_eq!(r.header("preference-applied"), Some("count=exact"));
    let r = api.post_with("/articles?select=id", &[REPRESENTATION, exact], r#"{"title": "t4", "body": "b"}"#).await;
    r.expect(201);
    assert_eq!(r.header("content-range"), Some("*/1"));
    // A planned count is no count of written rows.
    let r = api.post_with("/articles", &[("prefer", "count=planned")], r#"{"title": "t5", "body": "b"}"#).await;
    assert_eq!(r.header("content-range"), Some("*/*"));

    // PATCH: the range of changed rows.
    let matched = api.count("orders WHERE status = 'paid'").await as u64;
    assert_eq!(matched, 4);
    let r = api.patch_with("/orders?status=eq.paid", &[], r#"{"note": "p"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("0-3/*"));
    let r = api.patch_with("/orders?status=eq.paid&select=id", &[REPRESENTATION, exact], r#"{"note": "q"}"#).await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("0-3/4"));
    let r = api.patch_with("/orders?id=eq.999", &[exact], r#"{"note": "q"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/0"));
    let r = api.patch_with("/orders?id=eq.999", &[], r#"{"note": "q"}"#).await;
    assert_eq!(r.header("content-range"), Some("*/*"));

    // DELETE: like POST.
    let r = api.delete_with("/articles?title=in.(t1,t2)", &[]).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("*/*"));
    let r = api.delete_with("/articles?title=in.(t3,t4)&select=id", &[REPRESENTATION, exact]).await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("*/2"));
    let r = api.delete_with("/articles?id=eq.999", &[exact]).await;
    assert_eq!(r.header("content-range"), Some("*/0"));
}

async fn columns_must_name_columns(engine: Engine) {
    let api = Api::fixture(engine).await;
    let before = api.sql_text("SELECT note FROM orders WHERE id = 2").await;
    // PATCH with an unknown column in columns=: refused, nothing written.
    let e = api
        .patch_with("/orders?id=eq.2&columns=note,helicopter", &[], r#"{"note": "changed"}"#)
        .await
        .expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("helicopter"), "{e}");
    assert_eq!(api.sql_text("SELECT note FROM orders WHERE id = 2").await, before);
    // POST likewise, bulk or not.
    let e = api
        .post_with("/orders?columns=customer_id,helicopter", &[], r#"[{"customer_id": 1}]"#)
        .await
        .expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("helicopter"), "{e}");
    assert_eq!(api.count("orders").await, 12);

    // Keys outside columns= are ignored, even unknown or ill-typed ones.
    let r = api
        .patch_with(
            "/orders?id=eq.2&columns=note&select=id,status,note",
            &[REPRESENTATION],
            r#"{"note": "only this", "status": "no such status", "helicopter": 1}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 2, "status": "shipped", "note": "only this"}]));
}

async fn columns_with_missing_default_on_post(engine: Engine) {
    let api = Api::fixture(engine).await;
    let prefer = ("prefer", "return=representation, missing=default");
    // A single object and a bulk array: listed keys a row lacks take the
    // column default.
    let r = api
        .post_with(
            "/orders?columns=customer_id,status,total&select=id,status,total",
            &[prefer],
            r#"{"customer_id": 2}"#,
        )
        .await;
    r.expect(201);
    assert_eq!(r.json()[0]["status"], "pending");
    assert_eq!(r.json()[0]["total"].as_f64(), Some(0.0));
    let r = api
        .post_with(
            "/orders?columns=customer_id,status,total,note&select=status,total,note&order=id",
            &[prefer],
            r#"[{"customer_id": 3, "total": 5}, {"customer_id": 4, "status": "paid"}, {"customer_id": 5, "note": "x"}]"#,
        )
        .await;
    r.expect(201);
    let rows = r.json();
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[0]["total"].as_f64(), Some(5.0));
    assert_eq!(rows[0]["note"], Value::Null);
    assert_eq!(rows[1]["status"], "paid");
    assert_eq!(rows[1]["total"].as_f64(), Some(0.0));
    assert_eq!(rows[2]["status"], "pending");
    assert_eq!(rows[2]["note"], "x");
    assert_eq!(api.count("orders WHERE id > 12 AND status = 'pending'").await, 3);
}

async fn columns_on_patch_set_every_listed_column(engine: Engine) {
    let api = Api::fixture(engine).await;
    // missing=default: order 1 is 'paid'; status is listed but absent, so
    // it returns to its default, while total (not listed) is kept.
    let r = api
        .patch_with(
            "/orders?id=eq.1&columns=status,note&select=id,status,total,note",
            &[("prefer", "return=representation, missing=default")],
            r#"{"note": "reset", "total": 1}"#,
        )
        .await;
    r.expect(200);
    let row = &r.json()[0];
    assert_eq!(row["status"], "pending");
    assert_eq!(row["note"], "reset");
    assert_eq!(row["total"].as_f64(), Some(120.5));
    assert_eq!(api.count("orders WHERE id = 1 AND status = 'pending' AND total = 120.5").await, 1);
    // A default that is an expression (the time of the write).
    let r = api.patch_with("/orders?id=in.(1,2)&columns=created_at", &[("prefer", "missing=default")], "{}").await;
    r.expect(204);
    assert_eq!(api.count("orders WHERE id IN (1, 2) AND created_at > '2025-01-01'").await, 2);
    assert_eq!(api.count("orders WHERE id = 3 AND created_at > '2025-01-01'").await, 0);
    // A column without a default gets NULL.
    let r = api
        .patch_with(
            "/customers?id=eq.1&columns=name,city&select=name,city",
            &[("prefer", "return=representation, missing=default")],
            r#"{"name": "A"}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"name": "A", "city": null}]));

    // Without missing=default, a listed key the body lacks is NULL, as in
    // PostgREST: on a NOT NULL column that is refused, and nothing changes.
    let r = api.patch_with("/orders?id=eq.2&columns=status,note", &[], r#"{"note": "n"}"#).await;
    r.expect_error(400, "23502");
    assert_eq!(api.count("orders WHERE id = 2 AND status = 'shipped'").await, 1);
    let r = api
        .patch_with("/customers?id=eq.3&columns=name,city&select=name,city", &[REPRESENTATION], r#"{"name": "C"}"#)
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"name": "C", "city": null}]));
    assert_eq!(api.sql_text("SELECT city FROM customers WHERE id = 3").await, [None]);
}

/// The OpenAPI document promises what a POST sends: a 201 (or a merge's
/// 200) has a body only with `return=representation`, and a single row's
/// URL in `Location`.
#[tokio::test]
async fn openapi_says_a_created_answer_has_a_body_only_with_representation() {
    let api = Api::fixture(Engine::Sqlite).await;
    let doc = api.get("/").await.json();
    let responses = &doc["paths"]["/customers"]["post"]["responses"];
    for status in ["201", "200"] {
        let description = responses[status]["description"].as_str().unwrap();
        assert!(description.contains("only with `Prefer: return=representation`"), "{status}: {description}");
    }
    assert!(responses["201"]["headers"]["Location"].is_object(), "{}", responses["201"]);
    // As the document says: no body without representation.
    let minimal = api.post_with("/customers", &[], r#"{"id": 9101, "name": "Minimal"}"#).await;
    assert_eq!(minimal.expect(201).body, "");
    assert_eq!(minimal.header("content-type"), None);
    let full = api.post_with("/customers", &[REPRESENTATION], r#"{"id": 9102, "name": "Full"}"#).await;
    assert_eq!(full.expect(201).json()[0]["name"], "Full");
}
