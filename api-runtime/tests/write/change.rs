//! PATCH and DELETE on filtered rows, and the `Prefer` options of any write:
//! `max-affected`, `tx=rollback`, the singular response.

use super::*;

on_every_engine!(
    patch_updates_filtered_rows,
    patch_changes_primary_keys_and_returns_rows,
    delete_removes_filtered_rows,
    unfiltered_writes_are_refused_unless_configured,
    max_affected_strict_refuses_and_keeps_nothing,
    tx_rollback_returns_rows_and_keeps_nothing,
    single_object_accept_on_writes,
    single_object_accept_without_representation,
);

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
