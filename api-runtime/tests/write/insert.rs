//! POST: one row, bulk inserts (batched past the parameter limit), `columns=`
//! and `missing=default`, and the `Location` a new row is found at.

use super::*;

on_every_engine!(
    inserts_one_row_with_status_location_and_range,
    bulk_inserts_return_every_row,
    bulk_insert_of_ten_thousand_rows,
    very_large_bulk_insert_is_batched,
    failing_row_keeps_nothing,
    columns_and_missing_default,
    location_headers_round_trip,
);

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
