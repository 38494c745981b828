//! Functions as endpoints (`/rpc/{fn}`) on PostgreSQL and MariaDB, and the
//! clear 404 on SQLite, which has none. Results are compared with what the
//! same call returns in SQL; effects are checked with SQL.

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::{Value, json};
use support::Engine;
use support::api::Api;

const JSON: (&str, &str) = ("content-type", "application/json");

async fn pg() -> Api {
    Api::fixture(Engine::Postgres).await
}

#[tokio::test]
async fn postgres_scalar_functions_by_post_and_get() {
    let api = pg().await;
    let r = api.post_with("/rpc/add_them", &[JSON], r#"{"a": 1, "b": 2}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!(3));
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));

    let r = api.get("/rpc/add_them?a=40&b=2").await;
    r.expect(200);
    assert_eq!(r.json(), json!(42));

    // A parameter with a default may be left out, or given.
    assert_eq!(api.get("/rpc/greet?name=Ann").await.json(), json!("Hello, Ann!"));
    let r = api.post_with("/rpc/greet", &[JSON], r#"{"name": "Bo", "greeting": "Hej"}"#).await;
    assert_eq!(r.json(), json!("Hej, Bo!"));
    // Values are bound: quotes and SQL in them are just text.
    let r = api.get("/rpc/greet?name=x');DROP TABLE orders;--").await;
    assert_eq!(r.json(), json!("Hello, x');DROP TABLE orders;--!"));
    assert_eq!(api.count("orders").await, 12);

    // A scalar as CSV: one column named after the function.
    let r = api.get_with("/rpc/order_ids?customer=1", &[("accept", "text/csv")]).await;
    r.expect(200);
    let ids = api.sql_i64("SELECT id FROM orders WHERE customer_id = 1 ORDER BY id").await;
    let lines: Vec<String> = ids.iter().map(i64::to_string).collect();
    assert_eq!(r.body, format!("order_ids\n{}", lines.join("\n")));
    let r = api.get_with("/rpc/add_them?a=1&b=2", &[("accept", "text/csv")]).await;
    assert_eq!(r.body, "add_them\n3");

    // Mixed-case names and parameters are quoted.
    assert_eq!(api.post_with("/rpc/MixedCase Fn", &[JSON], r#"{"Value": 41}"#).await.json(), json!(42));
}

#[tokio::test]
async fn postgres_set_returning_functions_take_the_read_grammar() {
    let api = pg().await;
    let r = api.get("/rpc/orders_of?customer=3&select=id,total,customers(name)&order=id.desc&status=neq.pending").await;
    r.expect(200);
    let expected =
        api.sql_i64("SELECT id FROM orders WHERE customer_id = 3 AND status <> 'pending' ORDER BY id DESC").await;
    assert_eq!(r.column_i64("id"), expected);
    let rows = r.json();
    let name = api.sql_text("SELECT name FROM customers WHERE id = 3").await[0].clone().unwrap();
    assert!(rows.as_array().unwrap().iter().all(|o| o["customers"]["name"] == name.as_str()), "{rows}");
    assert_eq!(rows[0].as_object().unwrap().len(), 3, "only the selected members: {rows}");

    // POST takes the same grammar in the query string.
    let r = api.post_with("/rpc/orders_of?select=id&limit=2&offset=1&order=id", &[JSON], r#"{"customer": 1}"#).await;
    r.expect(200);
    let expected = api.sql_i64("SELECT id FROM orders WHERE customer_id = 1 ORDER BY id LIMIT 2 OFFSET 1").await;
    assert_eq!(r.column_i64("id"), expected);
    assert_eq!(r.header("content-range"), Some("1-2/*"));

    // Counts and ranges, as for a table.
    let r = api
        .get_with("/rpc/orders_of?customer=1&select=id&order=id", &[("prefer", "count=exact"), ("range", "0-1")])
        .await;
    r.expect(206);
    let total = api.sql_i64("SELECT count(*) FROM orders WHERE customer_id = 1").await[0];
    assert_eq!(r.header("content-range"), Some(format!("0-1/{total}").as_str()));

    // RETURNS TABLE columns filter and order like any others.
    let r = api.get("/rpc/status_counts?orders=gte.3&order=status").await;
    r.expect(200);
    let expected =
        api.sql_i64("SELECT count(*) FROM orders GROUP BY status HAVING count(*) >= 3 ORDER BY status").await;
    let got: Vec<i64> = r.json().as_array().unwrap().iter().map(|o| o["orders"].as_i64().unwrap()).collect();
    assert_eq!(got, expected);

    // A set of scalars is an array of values, filtered by the function's name.
    let r = api.get("/rpc/order_ids?customer=1&order_ids=gt.1").await;
    r.expect(200);
    let expected = api.sql_i64("SELECT id FROM orders WHERE customer_id = 1 AND id > 1 ORDER BY id").await;
    assert_eq!(r.json(), json!(expected));

    // Singular and CSV representations apply to rows of a function.
    let r = api
        .get_with("/rpc/orders_of?customer=2&select=id&id=eq.3", &[("accept", "application/vnd.pgrst.object+json")])
        .await;
    r.expect(200);
    assert_eq!(r.json(), json!({"id": 3}));
}

#[tokio::test]
async fn postgres_a_single_row_is_an_object() {
    let api = pg().await;
    let r = api.get("/rpc/order_by_id?order_id=2&select=id,note,customers(name)").await;
    r.expect(200);
    let name =
        api.sql_text("SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 2").await;
    assert_eq!(r.json(), json!({"id": 2, "note": "gift wrap, please", "customers": {"name": name[0]}}));
    // No row: PostgreSQL's composite NULL, an object of nulls (as PostgREST).
    let r = api.get("/rpc/order_by_id?order_id=999&select=id,note").await;
    assert_eq!(r.json(), json!({"id": null, "note": null}));
}

#[tokio::test]
async fn postgres_functions_that_write_need_post_and_honour_the_transaction() {
    let api = pg().await;
    // GET runs any function, read-only: the write fails in the database.
    let e = api.get("/rpc/add_customer?customer_name=Eve").await.expect_error(405, "25006");
    assert!(e["message"].as_str().unwrap().contains("read-only transaction"), "{e}");
    assert_eq!(api.count("customers WHERE name = 'Eve'").await, 0);
    api.get("/rpc/set_note?order_id=1&new_note=x").await.expect_error(405, "25006");
    assert_eq!(api.count("orders WHERE note = 'x'").await, 0);
    // A VOLATILE function that does not write answers GET and HEAD (as
    // PostgREST: only OPTIONS still lists POST alone for it).
    api.db
        .execute("CREATE FUNCTION plus_one(n integer) RETURNS integer LANGUAGE sql VOLATILE AS $$ SELECT n + 1 $$")
        .await;
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    assert_eq!(api.get("/rpc/plus_one?n=41").await.json(), json!(42));
    assert_eq!(api.send("HEAD", "/rpc/plus_one?n=41", &[], "").await.status, 200);

    let r = api.post_with("/rpc/add_customer", &[JSON], r#"{"customer_name": "Eve", "customer_city": "Oslo"}"#).await;
    r.expect(200);
    let id = r.json().as_i64().expect("the new id");
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE name = 'Eve' AND city = 'Oslo'").await, vec![id]);

    // tx=rollback: the result comes back, nothing is kept.
    let r =
        api.post_with("/rpc/add_customer", &[JSON, ("prefer", "tx=rollback")], r#"{"customer_name": "Ghost"}"#).await;
    r.expect(200);
    assert!(r.json().is_i64());
    assert_eq!(r.header("preference-applied"), Some("tx=rollback"));
    assert_eq!(api.count("customers WHERE name = 'Ghost'").await, 0);

    // A void function answers 204; its effect is kept.
    let r = api.post_with("/rpc/set_note", &[JSON], r#"{"order_id": 7, "new_note": "called"}"#).await;
    r.expect(204);
    assert_eq!(api.sql_text("SELECT note FROM orders WHERE id = 7").await, vec![Some("called".to_string())]);

    // An exception raised by the function is the client's 400, its message kept.
    let e = api.post_with("/rpc/fail_with", &[JSON], r#"{"message": "out of stock"}"#).await.expect_error(400, "P0001");
    assert_eq!(e["message"], "out of stock");
}

#[tokio::test]
async fn postgres_json_array_and_variadic_arguments() {
    let api = pg().await;
    // A single unnamed json parameter takes the whole body.
    let r = api.post_with("/rpc/echo_body", &[JSON], r#"[1, {"a": "b"}]"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!([1, {"a": "b"}]));
    // params=single-object sends the body to a named json parameter.
    let r = api.post_with("/rpc/echo_payload", &[JSON, ("prefer", "params=single-object")], r#"{"x": [1, 2]}"#).await;
    assert_eq!(r.json(), json!({"x": [1, 2]}));
    let r = api.post_with("/rpc/echo_payload", &[JSON], r#"{"payload": {"x": 1}}"#).await;
    assert_eq!(r.json(), json!({"x": 1}));
    let r = api.get(r#"/rpc/echo_payload?payload={"y":2}"#).await;
    assert_eq!(r.json(), json!({"y": 2}));

    // Arrays: a JSON array, an array literal, or a repeated query parameter.
    assert_eq!(api.post_with("/rpc/tag_count", &[JSON], r#"{"tags": ["a", "b"]}"#).await.json(), json!(2));
    assert_eq!(api.get("/rpc/tag_count?tags={a,b,c}").await.json(), json!(3));
    assert_eq!(api.get("/rpc/tag_count?tags=a&tags=b&tags=c&tags=d").await.json(), json!(4));
    assert_eq!(api.post_with("/rpc/sum_all", &[JSON], r#"{"nums": [1, 2, 3]}"#).await.json(), json!(6));
    assert_eq!(api.get("/rpc/sum_all?nums=5&nums=6").await.json(), json!(11));
}

#[tokio::test]
async fn postgres_call_errors_are_clear() {
    let api = pg().await;
    let e = api.post_with("/rpc/add_thme", &[JSON], r#"{"a": 1, "b": 2}"#).await.expect_error(404, "PGRST202");
    assert_eq!(e["message"], "Could not find the function public.add_thme(a, b) in the schema cache");
    assert!(e["hint"].as_str().unwrap().contains("public.add_them"), "{e}");
    // Arguments that fit no overload.
    let e = api.post_with("/rpc/add_them", &[JSON], r#"{"a": 1, "c": 2}"#).await.expect_error(404, "PGRST202");
    assert!(e["hint"].as_str().unwrap().contains("public.add_them(a, b)"), "{e}");
    api.post_with("/rpc/add_them", &[JSON], r#"{"a": 1}"#).await.expect_error(404, "PGRST202");
    // In a GET, a plain key is an argument whatever its name, as PostgREST
    // tells arguments from filters (by the value's form): an extra one is
    // a call no overload takes, not a filter that fails to parse.
    let e = api.get("/rpc/add_them?a=1&b=2&c=3").await.expect_error(404, "PGRST202");
    assert_eq!(e["message"], "Could not find the function public.add_them(a, b, c) in the schema cache");
    // A value written as a filter filters the result, even under a
    // parameter's name.
    let r = api.get("/rpc/orders_of?customer=1&select=id&id=gt.1&order=id").await;
    assert_eq!(r.expect(200).column_i64("id"), [2, 12]);
    api.get("/rpc/add_them?a=1&b=eq.2").await.expect_error(404, "PGRST202");
    // A value of the wrong type names parameter and type.
    let e = api.post_with("/rpc/add_them", &[JSON], r#"{"a": "one", "b": 2}"#).await.expect_error(400, "22P02");
    assert!(e["message"].as_str().unwrap().contains("add_them.a"), "{e}");
    // Two overloads fit: 300, both named.
    let e = api.post_with("/rpc/twice", &[JSON], r#"{"v": 2}"#).await.expect_error(300, "PGRST203");
    assert!(e["message"].as_str().unwrap().contains("public.twice(v), public.twice(v)"), "{e}");
    // Not an object.
    api.post_with("/rpc/add_them", &[JSON], "[1, 2]").await.expect_error(400, "PGRST102");
    api.post_with("/rpc/add_them", &[JSON], "{oops").await.expect_error(400, "PGRST102");
    // Procedures exist but cannot be called.
    let e = api.post_with("/rpc/do_nothing", &[JSON], "{}").await.expect_error(404, "PGRST202");
    assert!(e["details"].as_str().unwrap().contains("procedure"), "{e}");
    // Other verbs.
    api.delete_with("/rpc/add_them", &[]).await.expect_error(405, "PGRST101");
}

#[tokio::test]
async fn postgres_functions_follow_the_profile_the_filter_and_reloads() {
    let api = pg().await;
    api.get("/rpc/thing_count").await.expect_error(404, "PGRST202");
    let mut config = RuntimeConfig::default();
    config.database.schemas = vec!["public".into(), "other".into()];
    let api = Api::fixture_with(Engine::Postgres, config).await;
    let r = api.get_with("/rpc/thing_count", &[("accept-profile", "other")]).await;
    r.expect(200);
    assert_eq!(r.json(), json!(2));
    let r = api.post_with("/rpc/thing_count", &[JSON, ("content-profile", "other")], "").await;
    assert_eq!(r.json(), json!(2));

    // The table filter governs functions too.
    let mut config = RuntimeConfig::default();
    config.database.tables.exclude = vec!["add_*".into()];
    let api = Api::fixture_with(Engine::Postgres, config).await;
    api.get("/rpc/add_them?a=1&b=2").await.expect_error(404, "PGRST202");
    api.get("/rpc/greet?name=x").await.expect(200);

    // A function created later appears on reload.
    api.db.execute("CREATE FUNCTION answer() RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT 42 $$").await;
    api.get("/rpc/answer").await.expect_error(404, "PGRST202");
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    assert_eq!(api.get("/rpc/answer").await.json(), json!(42));
}

#[tokio::test]
async fn mysql_stored_functions() {
    let api = Api::fixture(Engine::MySql).await;
    let r = api.post_with("/rpc/add_them", &[JSON], r#"{"a": 1, "b": 2}"#).await;
    r.expect(200);
    assert_eq!(r.json(), json!(3));
    assert_eq!(api.get("/rpc/greet?name=Ann&greeting=Hi").await.json(), json!("Hi, Ann!"));
    let expected = api.sql_i64("SELECT COUNT(*) FROM orders WHERE customer_id = 3").await[0];
    assert_eq!(api.get("/rpc/order_count?customer=3").await.json(), json!(expected));
    // BOOLEAN results are JSON booleans.
    assert_eq!(api.get("/rpc/is_big?amount=120.5").await.json(), json!(true));
    assert_eq!(api.get("/rpc/is_big?amount=1").await.json(), json!(false));

    // MODIFIES SQL DATA: GET runs it read-only, where its write fails;
    // POST runs it in the request's transaction.
    api.get("/rpc/add_customer?customer_name=Eve&customer_city=Oslo").await.expect_error(405, "25006");
    assert_eq!(api.count("customers WHERE name = 'Eve'").await, 0);
    let r = api.post_with("/rpc/add_customer", &[JSON], r#"{"customer_name": "Eve", "customer_city": "Oslo"}"#).await;
    r.expect(200);
    let id = r.json().as_i64().expect("the new id");
    assert_eq!(api.sql_i64("SELECT id FROM customers WHERE name = 'Eve'").await, vec![id]);
    let r = api
        .post_with(
            "/rpc/add_customer",
            &[JSON, ("prefer", "tx=rollback")],
            r#"{"customer_name": "Ghost", "customer_city": null}"#,
        )
        .await;
    r.expect(200);
    assert_eq!(api.count("customers WHERE name = 'Ghost'").await, 0);

    // MySQL functions take every parameter.
    api.get("/rpc/greet?name=Ann").await.expect_error(404, "PGRST202");
    let e = api.post_with("/rpc/fail_with", &[JSON], r#"{"message": "out of stock"}"#).await;
    let e = e.expect_error(400, "P0001");
    assert_eq!(e["message"], "out of stock");
    let e = api.post_with("/rpc/do_nothing", &[JSON], "{}").await.expect_error(404, "PGRST202");
    assert!(e["details"].as_str().unwrap().contains("stored procedure"), "{e}");
}

#[tokio::test]
async fn sqlite_has_no_functions_to_call() {
    let api = Api::fixture(Engine::Sqlite).await;
    let e = api.post_with("/rpc/add_them", &[JSON], r#"{"a": 1}"#).await.expect_error(404, "PGRST202");
    assert!(e["hint"].as_str().unwrap().contains("SQLite"), "{e}");
    api.get("/rpc/anything").await.expect_error(404, "PGRST202");
}

#[tokio::test]
async fn functions_are_listed_in_the_openapi_document() {
    for engine in [Engine::Postgres, Engine::MySql] {
        let api = Api::fixture(engine).await;
        let doc: Value = api.get("/").await.json();
        let add = &doc["paths"]["/rpc/add_them"];
        assert!(add["post"].is_object(), "{engine:?}: {add}");
        assert!(add["get"].is_object(), "an immutable function is callable with GET");
        let a = add["get"]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "a").cloned();
        assert_eq!(a.map(|p| p["schema"]["type"].clone()), Some(json!("integer")), "{engine:?}: typed arguments");
        let props = &add["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"];
        assert!(props["a"].is_object() && props["b"].is_object(), "{props}");
        let writer = &doc["paths"]["/rpc/add_customer"];
        assert!(writer["post"].is_object() && writer["get"].is_null(), "a writing function has no GET: {writer}");
        assert!(doc["paths"]["/rpc/do_nothing"].is_null());
    }
}

/// PostgREST's `getitemrange`: a set-returning function over a table,
/// paged by `limit`/`offset` and by `Range` like a table read.
const ITEMS: &str = "
CREATE TABLE items (id bigint PRIMARY KEY);
INSERT INTO items SELECT generate_series(1, 15);
CREATE FUNCTION getitemrange(min bigint, max bigint) RETURNS SETOF items
  LANGUAGE sql STABLE AS $$ SELECT * FROM items WHERE id > min AND id <= max $$;
";

#[tokio::test]
async fn postgres_set_returning_functions_are_paged_once() {
    let api = Api::with_sql(Engine::Postgres, ITEMS, RuntimeConfig::default()).await;
    let r = api.post_with("/rpc/getitemrange?limit=2&offset=1&order=id", &[JSON], r#"{"min": 2, "max": 10}"#).await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), vec![4, 5]);
    assert_eq!(r.header("content-range"), Some("1-2/*"));
    let r = api.post_with("/rpc/getitemrange?limit=1&offset=1", &[JSON], r#"{"min": 2, "max": 4}"#).await;
    assert_eq!(r.json(), json!([{"id": 4}]));
    assert_eq!(r.header("content-range"), Some("1-1/*"));
    let r = api.get("/rpc/getitemrange?min=2&max=4&limit=1&offset=1").await;
    assert_eq!(r.json(), json!([{"id": 4}]));
    let r = api.get_with("/rpc/getitemrange?min=2&max=4", &[("range", "1-1")]).await;
    assert_eq!(r.json(), json!([{"id": 4}]));
    let r = api.post_with("/rpc/getitemrange?limit=2&offset=1", &[JSON], r#"{"min": 0, "max": 15}"#).await;
    assert_eq!(r.column_i64("id").len(), 2, "{}", r.body);
    // A set of scalars and an embed are paged alike.
    let sql = "CREATE FUNCTION item_ids(top bigint) RETURNS SETOF bigint LANGUAGE sql STABLE AS $$ SELECT id FROM items WHERE id <= top ORDER BY id $$";
    api.db.execute(sql).await;
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    let r = api.post_with("/rpc/item_ids?limit=2&offset=1", &[JSON], r#"{"top": 10}"#).await;
    assert_eq!(r.json(), json!([2, 3]));
    let r = api.get_with("/rpc/item_ids?top=10&item_ids=gt.3", &[("range", "2-3"), ("prefer", "count=exact")]).await;
    r.expect(206);
    assert_eq!(r.json(), json!([6, 7]));
    assert_eq!(r.header("content-range"), Some("2-3/7"));
    // Without an order the page is still two rows after the first.
    let r = api.get("/rpc/getitemrange?min=0&max=15&limit=3&offset=5").await;
    assert_eq!(r.column_i64("id").len(), 3, "{}", r.body);
    let r = api.get_with("/rpc/getitemrange?min=0&max=15&order=id", &[("range", "10-100")]).await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), vec![11, 12, 13, 14, 15]);
    assert_eq!(r.header("content-range"), Some("10-14/*"));
    let r = api
        .get_with("/rpc/getitemrange?min=0&max=15&order=id&offset=3", &[("range", "0-4"), ("prefer", "count=exact")])
        .await;
    r.expect(206);
    assert_eq!(r.column_i64("id"), vec![4, 5]);
    assert_eq!(r.header("content-range"), Some("3-4/15"));
    // Past the end with a count: 416 naming the total.
    let r = api.get_with("/rpc/getitemrange?min=0&max=15&offset=100", &[("prefer", "count=exact")]).await;
    let e = r.expect_error(416, "PGRST103");
    assert_eq!(e["details"], "An offset of 100 was requested, but there are only 15 rows.");
    assert_eq!(r.header("content-range"), Some("*/15"));
    let r = api.get_with("/rpc/getitemrange?min=2&max=2&offset=1", &[("prefer", "count=exact")]).await;
    r.expect_error(416, "PGRST103");
    assert_eq!(r.header("content-range"), Some("*/0"));
}

/// Functions find the exposed schema's tables without naming the schema,
/// as PostgREST sets `search_path` to the exposed schemas.
#[tokio::test]
async fn postgres_functions_run_with_the_exposed_schemas_on_the_search_path() {
    // Bodies are checked when called, not when created (the creating
    // session's search_path does not have `api`).
    let sql = "
SET check_function_bodies = off;
CREATE SCHEMA api;
CREATE TABLE api.things (id integer PRIMARY KEY, name text);
INSERT INTO api.things VALUES (1, 'one'), (2, 'two'), (3, 'three');
CREATE FUNCTION api.thing_names() RETURNS SETOF text
  LANGUAGE sql STABLE AS $$ SELECT name FROM things ORDER BY id $$;
CREATE FUNCTION api.count_things() RETURNS bigint
  LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT count(*) FROM things); END $$;
CREATE FUNCTION api.add_thing(id integer, name text) RETURNS void
  LANGUAGE sql AS $$ INSERT INTO things VALUES (id, name) $$;
";
    let mut config = RuntimeConfig::default();
    config.database.schemas = vec!["api".into()];
    let api = Api::with_sql(Engine::Postgres, sql, config.clone()).await;
    let r = api.get("/rpc/thing_names");
    let r = r.await;
    r.expect(200);
    assert_eq!(r.json(), json!(["one", "two", "three"]));
    let r = api.post_with("/rpc/count_things", &[JSON], "{}").await;
    r.expect(200);
    assert_eq!(r.json(), json!(3));
    api.post_with("/rpc/add_thing", &[JSON], r#"{"id": 4, "name": "four"}"#).await.expect(204);
    assert_eq!(api.post_with("/rpc/count_things", &[JSON], "").await.json(), json!(4));
    // Through the pool as well as the pipelined read connections.
    config.database.pool.read_connections = 0;
    let api = Api::with_sql(Engine::Postgres, sql, config).await;
    assert_eq!(api.get("/rpc/thing_names?limit=1&offset=2").await.json(), json!(["three"]));
}

#[tokio::test]
async fn csv_has_no_trailing_newline() {
    let api = pg().await;
    let r = api.get_with("/rpc/orders_of?customer=2&select=id,status&order=id", &[("accept", "text/csv")]).await;
    r.expect(200);
    assert_eq!(r.body, "id,status\n3,pending\n4,cancelled");
    let r = api.get_with("/rpc/add_them?a=1&b=2", &[("accept", "text/csv")]).await;
    assert_eq!(r.body, "add_them\n3");
    let r = api.get_with("/rpc/orders_of?customer=999&select=id,status", &[("accept", "text/csv")]).await;
    assert_eq!(r.body, "id,status\n");

    let api = Api::fixture(Engine::MySql).await;
    let r = api.get_with("/rpc/add_them?a=1&b=2", &[("accept", "text/csv")]).await;
    r.expect(200);
    assert_eq!(r.body, "add_them\n3");
}
