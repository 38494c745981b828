//! Aggregate functions in `select`, from PostgREST's "Aggregate Functions"
//! page, on every engine: `count()`, `sum()`, `avg()`, `min()`, `max()`
//! with the automatic GROUP BY on the other selected columns, aliases,
//! casts of input and result, filters and order beside them, aggregates
//! inside embeds and the embedded count `books(count)`; refused 400
//! `PGRST123` unless `api.aggregates` is on (the embedded count excepted).

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::{Value, json};
use support::Engine;
use support::api::Api;

const SQL: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, region VARCHAR(10) NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status VARCHAR(10) NOT NULL,
    amount INTEGER NOT NULL,
    weight DECIMAL(6,2)
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    quantity INTEGER NOT NULL
);
INSERT INTO customers VALUES (1, 'Ann', 'eu'), (2, 'Bob', 'us'), (3, 'Cid', 'eu');
INSERT INTO orders VALUES
    (10, 1, 'shipped', 100, 1.50), (11, 1, 'pending', 50, NULL), (12, 2, 'shipped', 30, 2.25),
    (13, 2, 'shipped', 20, 0.25), (14, 1, 'shipped', 5, 1.00);
INSERT INTO order_items VALUES (1, 10, 2), (2, 10, 3), (3, 12, 1), (4, 14, 7);
";

async fn api(engine: Engine) -> Api {
    let mut config = RuntimeConfig::default();
    config.api.aggregates = true;
    Api::with_sql(engine, SQL, config).await
}

async fn json(api: &Api, path: &str) -> Value {
    let r = api.get(path).await;
    r.expect(200);
    r.json()
}

/// Numbers compared as numbers: engines write `155`, `155.0` or `"155"`
/// for a sum of decimals; integers and counts must be JSON numbers.
fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a JSON number: {v}"))
}

async fn whole_table_aggregates(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(json(&api, "/orders?select=count()").await, json!([{"count": 5}]));
    let rows = json(&api, "/orders?select=amount.sum(),amount.avg(),amount.min(),amount.max()").await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let row = &rows[0];
    assert_eq!(number(&row["sum"]), 205.0, "{row}");
    assert_eq!(number(&row["avg"]), 41.0, "{row}");
    assert_eq!(row["min"], json!(5), "{row}");
    assert_eq!(row["max"], json!(100), "{row}");
    // Aliases name them; count(column) skips NULLs; filters apply first.
    let rows = json(&api, "/orders?select=total:amount.sum(),weighed:weight.count(),n:count()&status=eq.shipped").await;
    assert_eq!(number(&rows[0]["total"]), 155.0, "{rows}");
    assert_eq!(rows[0]["weighed"], json!(4), "{rows}");
    assert_eq!(rows[0]["n"], json!(4), "{rows}");
    // No matching rows: one row, count 0 and a null sum.
    let rows = json(&api, "/orders?select=count(),amount.sum()&status=eq.lost").await;
    assert_eq!(rows, json!([{"count": 0, "sum": null}]));
}

async fn automatic_group_by(engine: Engine) {
    let api = api(engine).await;
    let rows = json(&api, "/orders?select=status,count(),amount.sum()&order=status").await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((&rows[0]["status"], &rows[0]["count"]), (&json!("pending"), &json!(1)));
    assert_eq!(number(&rows[0]["sum"]), 50.0);
    assert_eq!((&rows[1]["status"], &rows[1]["count"]), (&json!("shipped"), &json!(4)));
    assert_eq!(number(&rows[1]["sum"]), 155.0);
    // Several grouping columns, a column selected twice, limit on groups.
    let rows =
        json(&api, "/orders?select=customer_id,status,c:customer_id,count()&order=customer_id,status&limit=2").await;
    assert_eq!(
        rows,
        json!([
            {"customer_id": 1, "status": "pending", "c": 1, "count": 1},
            {"customer_id": 1, "status": "shipped", "c": 1, "count": 2}
        ])
    );
    // Casts of the input and of the result.
    let rows = json(&api, "/orders?select=status,amount.sum()::text&status=eq.shipped").await;
    assert_eq!(rows, json!([{"status": "shipped", "sum": "155"}]));
    let rows = json(&api, "/orders?select=weight::int.max()").await;
    assert_eq!(rows, json!([{"max": 2}]));
    // CSV carries the aggregates' labels.
    let r = api.get_with("/orders?select=status,count()&order=status", &[("accept", "text/csv")]).await;
    r.expect(200);
    assert_eq!(r.body, "status,count\npending,1\nshipped,4");
}

async fn aggregates_in_embeds_and_the_embedded_count(engine: Engine) {
    let api = api(engine).await;
    // supabase-js's `select=*,orders(count)`: an array of one object.
    let rows = json(&api, "/customers?select=name,orders(count)&order=id").await;
    assert_eq!(
        rows,
        json!([
            {"name": "Ann", "orders": [{"count": 3}]},
            {"name": "Bob", "orders": [{"count": 2}]},
            {"name": "Cid", "orders": [{"count": 0}]}
        ])
    );
    // Several aggregates, filtered embeds, nested below a normal embed.
    let rows =
        json(&api, "/customers?select=name,orders(total:amount.sum(),count())&orders.status=eq.shipped&id=eq.1").await;
    assert_eq!(number(&rows[0]["orders"][0]["total"]), 105.0, "{rows}");
    assert_eq!(rows[0]["orders"][0]["count"], json!(2), "{rows}");
    let rows = json(&api, "/orders?select=id,order_items(quantity.sum())&id=in.(10,11)&order=id").await;
    assert_eq!(number(&rows[0]["order_items"][0]["sum"]), 5.0, "{rows}");
    assert_eq!(rows[1]["order_items"][0]["sum"], Value::Null, "{rows}");
    // A to-one embed's aggregate is an object.
    let rows = json(&api, "/orders?select=id,customers(count())&id=eq.10").await;
    assert_eq!(rows, json!([{"id": 10, "customers": {"count": 1}}]));
}

async fn aggregates_are_off_unless_configured(engine: Engine) {
    let api = Api::with_sql(engine, SQL, RuntimeConfig::default()).await;
    for path in
        ["/orders?select=count()", "/orders?select=status,amount.sum()", "/customers?select=orders(amount.max())"]
    {
        let e = api.get(path).await.expect_error(400, "PGRST123");
        assert_eq!(e["message"], "Use of aggregate functions is not allowed", "{path}");
        assert!(e["hint"].as_str().unwrap().contains("api.aggregates"), "{e}");
    }
    // The embedded count is always there, as supabase-js relies on it.
    let rows = api.get("/customers?select=id,orders(count)&id=eq.2").await;
    rows.expect(200);
    assert_eq!(rows.json(), json!([{"id": 2, "orders": [{"count": 2}]}]));
}

async fn what_is_not_supported_is_refused_clearly(engine: Engine) {
    let api = api(engine).await;
    for (path, code) in [
        ("/customers?select=name,count(),orders(id)", "DBAPI103"),
        ("/customers?select=name,orders(status,count())", "DBAPI103"),
        ("/customers?select=name,...orders(count())", "DBAPI103"),
        ("/orders?select=nope.sum()", "42703"),
        ("/orders?select=amount.sum()::money", "DBAPI102"),
        ("/orders?select=sum()", "PGRST100"),
    ] {
        let r = api.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["code"], code, "{path}: {}", r.body);
    }
    // A table with a column named count: `orders(count)` is that column.
    api.db.execute("CREATE TABLE tallies (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), count INTEGER)").await;
    api.db.execute("INSERT INTO tallies VALUES (1, 1, 42)").await;
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    let rows = json(&api, "/customers?select=id,tallies(count)&id=eq.1").await;
    assert_eq!(rows, json!([{"id": 1, "tallies": [{"count": 42}]}]));
}

on_every_engine!(
    whole_table_aggregates,
    automatic_group_by,
    aggregates_in_embeds_and_the_embedded_count,
    aggregates_are_off_unless_configured,
    what_is_not_supported_is_refused_clearly,
);
