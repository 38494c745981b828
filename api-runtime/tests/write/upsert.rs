//! Upserts: POST with `resolution=merge-duplicates` or `ignore-duplicates`
//! and `on_conflict=`, PUT of one row by key, and two upserts racing for one
//! key.

use super::*;

on_every_engine!(
    upserts_merge_or_ignore_duplicates,
    ignore_duplicates_still_refuses_bad_rows,
    upsert_race_keeps_one_row,
    put_upserts_one_row,
    upsert_conflict_target_is_respected,
);

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
