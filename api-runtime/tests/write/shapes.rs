//! Tables and values of every shape: awkward names, JSON, arrays, booleans
//! and bytes, scalars into other types, tables and views without a primary
//! key, generated columns, schemas chosen by `Content-Profile`.

use super::*;

on_every_engine!(
    awkward_table_and_column_names,
    json_arrays_booleans_and_bytes_round_trip,
    scalars_into_other_types,
    tables_without_a_primary_key,
    generated_columns_without_a_primary_key,
    a_keyless_table_named_like_a_statement_alias,
    views_without_a_primary_key,
);

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
