//! The read grammar end to end on PostgreSQL, MariaDB and SQLite: each
//! request's rows are compared with what the same query returns in SQL, or
//! with the fixture's hand-computed rows where the point is that all
//! engines agree (case-sensitive `like`, NULL ordering).

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::json;
use support::Engine;
use support::api::Api;

on_every_engine!(
    select_renames_and_casts,
    comparison_filters_match_sql,
    pattern_and_list_filters,
    logic_trees_and_negation,
    engine_specific_operators,
    ordering_places_nulls_like_postgresql,
    pages_ranges_and_counts,
    maximum_rows_applies_without_a_limit,
    embedding_follows_foreign_keys,
    embedded_filters_order_limit_and_inner,
    singular_csv_and_negotiation,
    types_round_trip_as_json,
    awkward_names_and_views,
    errors_are_clear,
    json_paths_behave_like_postgresql,
    related_order_and_stripped_nulls,
    a_read_asked_again_is_answered_as_the_first_time,
);

async fn select_renames_and_casts(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/orders?select=id,amount:total,total_text:total::text&id=eq.1").await;
    r.expect(200);
    let row = &r.json()[0];
    assert_eq!(row["id"], 1);
    assert_eq!(row["amount"].as_f64(), Some(120.5));
    let text = row["total_text"].as_str().unwrap_or_else(|| panic!("cast to text gives a string: {row}"));
    assert_eq!(text.parse::<f64>().unwrap(), 120.5);
    // Keys keep the order asked for.
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "amount", "total_text"]);
    // select=* gives every column in table order.
    let r = api.get("/customers?id=eq.1").await;
    let keys: Vec<String> = r.json()[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["id", "name", "email", "city", "created_at"]);
    // JSON paths select into JSON values.
    let r = api.get("/products?select=id,color:attrs->>color,attrs->dims->w&id=eq.2").await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 2, "color": "blue", "w": 10}]));
}

async fn comparison_filters_match_sql(engine: Engine) {
    let api = Api::fixture(engine).await;
    for (op, sql_op) in [("eq", "="), ("neq", "<>"), ("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")] {
        let r = api.get(&format!("/orders?select=id&total={op}.35&order=id")).await;
        r.expect(200);
        let expected = api.sql_i64(&format!("SELECT id FROM orders WHERE total {sql_op} 35 ORDER BY id")).await;
        assert_eq!(r.column_i64("id"), expected, "total={op}.35");
        assert!(!expected.is_empty());
    }
    let r = api.get("/orders?select=id&customer_id=eq.3&total=gte.18.75&order=id").await;
    assert_eq!(
        r.column_i64("id"),
        api.sql_i64("SELECT id FROM orders WHERE customer_id = 3 AND total >= 18.75 ORDER BY id").await
    );
    let r = api.get("/products?select=id&in_stock=is.false&order=id").await;
    assert_eq!(r.column_i64("id"), vec![3, 7]);
    let r = api.get("/products?select=id&in_stock=eq.true&price=lt.10&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 5, 6, 8]);
    let r = api.get("/orders?select=id&note=is.null&order=id").await;
    assert_eq!(r.column_i64("id"), api.sql_i64("SELECT id FROM orders WHERE note IS NULL ORDER BY id").await);
    let r = api.get("/orders?select=id&note=not.is.null&order=id").await;
    assert_eq!(r.column_i64("id"), api.sql_i64("SELECT id FROM orders WHERE note IS NOT NULL ORDER BY id").await);
    // NULLs are distinct from a value; `neq` does not match them.
    let r = api.get("/customers?select=id&city=isdistinct.Paris&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 2, 4, 5, 6]);
    let r = api.get("/customers?select=id&city=neq.Paris&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 4, 6]);
    // JSON path filters.
    let r = api.get("/products?select=id&attrs->>color=eq.red").await;
    assert_eq!(r.column_i64("id"), vec![1]);
    // Values with dots, spaces (+) and reserved characters.
    let r = api.get("/customers?select=id&name=eq.Alice+Anderson").await;
    assert_eq!(r.column_i64("id"), vec![1]);
    let r = api.get("/customers?select=id&email=eq.bob.brown@example.com").await;
    assert_eq!(r.column_i64("id"), vec![2]);
}

async fn pattern_and_list_filters(engine: Engine) {
    let api = Api::fixture(engine).await;
    // like is case-sensitive on every engine, ilike is not.
    let r = api.get("/customers?select=id&name=like.*an*&order=id").await;
    assert_eq!(r.column_i64("id"), vec![4, 6]);
    let r = api.get("/customers?select=id&name=ilike.*AN*&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 4, 6]);
    // % and _ in the value are LIKE wildcards, as in PostgREST.
    let r = api.get("/products?select=id&name=like.snake_case*").await;
    assert_eq!(r.column_i64("id"), vec![5]);
    let r = api.get("/products?select=id&name=like.100%25*").await;
    assert_eq!(r.column_i64("id"), vec![4]);
    // in with quoted values holding commas and parentheses.
    let r = api.get("/orders?select=id&status=in.(paid,shipped)&order=id").await;
    assert_eq!(
        r.column_i64("id"),
        api.sql_i64("SELECT id FROM orders WHERE status IN ('paid', 'shipped') ORDER BY id").await
    );
    let r = api.get("/products?select=id&name=in.(%22Gizmo,%20Deluxe%22,%22Gadget%20(Large)%22)&order=id").await;
    assert_eq!(r.column_i64("id"), vec![2, 3]);
    let r = api.get("/orders?select=id&id=in.()").await;
    assert_eq!(r.column_i64("id"), Vec::<i64>::new());
    // Only whitespace in the list is no values too, as PostgREST reads it.
    let r = api.get("/orders?select=id&id=in.(%20%20)").await;
    assert_eq!(r.expect(200).column_i64("id"), Vec::<i64>::new());
    let r = api.get("/orders?select=id&id=not.in.(1,2,3)&order=id").await;
    assert_eq!(r.column_i64("id"), (4..=12).collect::<Vec<_>>());
    // any / all modifiers.
    let r = api.get("/orders?select=id&total=gt(any).{1000,200}&order=id").await;
    assert_eq!(r.column_i64("id"), vec![4, 8]);
    let r = api.get("/orders?select=id&total=lt(all).{40,20}&order=id").await;
    assert_eq!(r.column_i64("id"), api.sql_i64("SELECT id FROM orders WHERE total < 20 ORDER BY id").await);
    let r = api.get("/customers?select=id&name=like(any).{A*,Z*}&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 6]);
    let r = api.get("/customers?select=id&name=ilike(all).{*a*,*e*}&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 4, 5]);
    let r = api.get("/orders?select=id&id=eq(any).{}").await;
    assert_eq!(r.column_i64("id"), Vec::<i64>::new());
}

async fn logic_trees_and_negation(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/orders?select=id&or=(total.gt.200,and(status.eq.shipped,total.lt.20))&order=id").await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), vec![4, 6, 8]);
    let r = api.get("/orders?select=id&not.or=(status.eq.paid,status.eq.pending)&order=id").await;
    assert_eq!(r.column_i64("id"), vec![2, 4, 6, 9, 10]);
    let r = api
        .get("/orders?select=id&and=(total.gte.10,total.lte.50,not.and(status.eq.paid,customer_id.eq.5))&order=id")
        .await;
    assert_eq!(
        r.column_i64("id"),
        api.sql_i64(
            "SELECT id FROM orders WHERE total >= 10 AND total <= 50 AND NOT (status = 'paid' AND customer_id = 5) ORDER BY id"
        )
        .await
    );
    let r = api.get("/orders?select=id&or=(note.is.null,note.like.*gift*)&customer_id=eq.1&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 2]);
    let r = api.get("/orders?select=id&status=not.eq.paid&total=not.lt.30&order=id").await;
    assert_eq!(r.column_i64("id"), vec![2, 4, 9]);
}

async fn engine_specific_operators(engine: Engine) {
    let api = Api::fixture(engine).await;
    let regex = api.get("/customers?select=id&name=match.^[A-Z]&order=id").await;
    let iregex = api.get("/customers?select=id&name=imatch.^B&order=id").await;
    let fts = api.get("/articles?select=id&body=fts(english).database&order=id").await;
    let wfts = api.get("/articles?select=id&body=wfts(english).quick%20fox&order=id").await;
    let (contains, contained) = match engine {
        Engine::Postgres => (
            api.get("/products?select=id&tags=cs.{tools}&order=id").await,
            api.get("/products?select=id&ratings=cd.{1,2,3,4,5}&order=id").await,
        ),
        _ => (
            api.get("/products?select=id&tags=cs.[%22tools%22]&order=id").await,
            api.get("/products?select=id&ratings=cd.[1,2,3,4,5]&order=id").await,
        ),
    };
    let overlaps = match engine {
        Engine::Postgres => api.get("/products?select=id&tags=ov.{gift,metal}&order=id").await,
        _ => api.get("/products?select=id&tags=ov.[%22gift%22,%22metal%22]&order=id").await,
    };
    match engine {
        Engine::Postgres | Engine::MySql => {
            assert_eq!(regex.column_i64("id"), vec![1, 3, 4, 5, 6]);
            assert_eq!(iregex.column_i64("id"), vec![2]);
        }
        Engine::Sqlite => {
            let e = regex.expect_error(400, "DBAPI100");
            assert!(
                e["message"].as_str().unwrap().contains("match") && e["message"].as_str().unwrap().contains("SQLite")
            );
            iregex.expect_error(400, "DBAPI100");
        }
    }
    match engine {
        Engine::Postgres => {
            assert_eq!(fts.column_i64("id"), vec![1, 2, 5]);
            assert_eq!(wfts.column_i64("id"), vec![3]);
        }
        _ => {
            let e = fts.expect_error(400, "DBAPI100");
            assert!(e["message"].as_str().unwrap().contains("fts"));
            wfts.expect_error(400, "DBAPI100");
        }
    }
    match engine {
        Engine::Sqlite => {
            contains.expect_error(400, "DBAPI100");
            contained.expect_error(400, "DBAPI100");
            overlaps.expect_error(400, "DBAPI100");
        }
        _ => {
            assert_eq!(contains.column_i64("id"), vec![1, 2]);
            // NULL ratings are not contained in anything; an empty array is.
            assert_eq!(contained.column_i64("id"), vec![1, 2, 3, 4, 5, 6, 9]);
            assert_eq!(overlaps.column_i64("id"), vec![1, 5, 9]);
        }
    }
    // Range operators exist only on PostgreSQL.
    if engine != Engine::Postgres {
        api.get("/orders?select=id&total=sl.[1,2]").await.expect_error(400, "DBAPI100");
    }
}

async fn ordering_places_nulls_like_postgresql(engine: Engine) {
    let api = Api::fixture(engine).await;
    let ids = |path: &'static str| {
        let api = &api;
        async move {
            let r = api.get(path).await;
            r.expect(200);
            r.column_i64("id")
        }
    };
    assert_eq!(ids("/products?select=id&order=price").await, vec![8, 6, 5, 1, 9, 4, 2, 3, 7]);
    assert_eq!(ids("/products?select=id&order=price.asc.nullsfirst").await, vec![7, 8, 6, 5, 1, 9, 4, 2, 3]);
    assert_eq!(ids("/products?select=id&order=price.desc").await, vec![7, 3, 2, 4, 9, 1, 5, 6, 8]);
    assert_eq!(ids("/products?select=id&order=price.desc.nullslast").await, vec![3, 2, 4, 9, 1, 5, 6, 8, 7]);
    // Several terms: ties on total broken by id descending.
    assert_eq!(
        ids("/orders?select=id&order=total.desc,id.desc&total=lt.40").await,
        api.sql_i64("SELECT id FROM orders WHERE total < 40 ORDER BY total DESC, id DESC").await
    );
    assert_eq!(ids("/products?select=id&order=attrs->>color.desc.nullslast,id&id=lt.4").await, vec![1, 2, 3]);
}

async fn pages_ranges_and_counts(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/orders?select=id&order=id&limit=3&offset=2").await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), vec![3, 4, 5]);
    assert_eq!(r.header("content-range"), Some("2-4/*"));
    assert_eq!(r.header("preference-applied"), None);

    let r = api.get_with("/orders?select=id&order=id&limit=3&offset=2", &[("prefer", "count=exact")]).await;
    r.expect(206);
    assert_eq!(r.header("content-range"), Some("2-4/12"));
    assert_eq!(r.header("preference-applied"), Some("count=exact"));

    let r = api.get_with("/orders?select=id&status=eq.paid", &[("prefer", "count=exact")]).await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("0-3/4"));

    let r = api.get_with("/orders?select=id&order=id", &[("range", "0-1")]).await;
    assert_eq!(r.column_i64("id"), vec![1, 2]);
    assert_eq!(r.header("content-range"), Some("0-1/*"));
    let r = api.get_with("/orders?select=id&order=id&limit=5", &[("range-unit", "items"), ("range", "3-10")]).await;
    assert_eq!(r.column_i64("id"), vec![4, 5]);
    api.get_with("/orders", &[("range", "5-2")]).await.expect_error(416, "PGRST103");

    let r = api.get_with("/orders?offset=20", &[("prefer", "count=exact")]).await;
    let e = r.expect_error(416, "PGRST103");
    assert!(e["details"].as_str().unwrap().contains("12 rows"));
    let r = api.get("/orders?offset=20").await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("*/*"));
    assert_eq!(r.body, "[]");

    let r = api.get_with("/orders?select=id&id=gt.100", &[("prefer", "count=exact")]).await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("*/0"));

    let planned = api.get_with("/orders?select=id&limit=2", &[("prefer", "count=planned")]).await;
    let total: i64 = planned.header("content-range").unwrap().split('/').nth(1).unwrap().parse().unwrap();
    assert!(total > 0, "a planned count is a number");
    assert_eq!(planned.header("preference-applied"), Some("count=planned"));
    if engine != Engine::Postgres {
        assert_eq!(total, 12, "engines without estimates count exactly");
    }
    let estimated = api.get_with("/orders?select=id&limit=2", &[("prefer", "count=estimated")]).await;
    assert_eq!(estimated.header("content-range"), Some("0-1/12"), "small tables are counted exactly");

    // HEAD answers the headers without a body.
    let head = api
        .request(
            axum::http::Request::head("/orders?status=eq.shipped")
                .header("prefer", "count=exact")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    head.expect(200);
    assert_eq!(head.header("content-range"), Some("0-2/3"));
    assert!(head.body.is_empty());
}

async fn maximum_rows_applies_without_a_limit(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 5;
    let api = Api::fixture_with(engine, config).await;
    let r = api.get("/orders?select=id&order=id").await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), vec![1, 2, 3, 4, 5]);
    assert_eq!(r.header("content-range"), Some("0-4/*"));
    let r = api.get_with("/orders?select=id&order=id&limit=100&offset=5", &[("prefer", "count=exact")]).await;
    r.expect(206);
    assert_eq!(r.column_i64("id"), vec![6, 7, 8, 9, 10]);
    assert_eq!(r.header("content-range"), Some("5-9/12"));
    // Embedded arrays are capped each on their own (3 rows fit under 5).
    let r = api.get("/customers?select=id,orders(id)&id=eq.1").await;
    assert_eq!(r.json()[0]["orders"].as_array().unwrap().len(), 3);
}

async fn embedding_follows_foreign_keys(engine: Engine) {
    let api = Api::fixture(engine).await;
    // many-to-one
    let r = api.get("/orders?select=id,customers(name)&id=eq.1").await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1, "customers": {"name": "Alice Anderson"}}]));
    // one-to-many, in order, empty array for none
    let r = api.get("/customers?select=id,orders(id)&orders.order=id&id=in.(1,6)&order=id").await;
    assert_eq!(r.json(), json!([{"id": 1, "orders": [{"id": 1}, {"id": 2}, {"id": 12}]}, {"id": 6, "orders": []}]));
    // many-to-many through order_items
    let r = api.get("/orders?select=id,products(id)&products.order=id&id=in.(1,7)&order=id").await;
    assert_eq!(r.json(), json!([{"id": 1, "products": [{"id": 1}, {"id": 2}, {"id": 4}]}, {"id": 7, "products": []}]));
    let r = api.get("/products?select=id,orders(id)&orders.order=id&id=eq.3").await;
    let expected = api.sql_i64("SELECT order_id FROM order_items WHERE product_id = 3 ORDER BY order_id").await;
    let got: Vec<i64> = r.json()[0]["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(got, expected);
    // two foreign keys to one table: ambiguous without a hint
    let r = api.get("/shipments?select=id,addresses(id)").await;
    let e = r.expect_error(300, "PGRST201");
    let candidates: Vec<&str> =
        e["details"].as_array().unwrap().iter().map(|d| d["relationship"].as_str().unwrap()).collect();
    assert!(candidates.iter().any(|c| c.starts_with("fk_shipments_from using")), "{e}");
    let r = api
        .get("/shipments?select=id,from:addresses!fk_shipments_from(id),to:addresses!to_address_id(id)&id=eq.1")
        .await;
    assert_eq!(r.json(), json!([{"id": 1, "from": {"id": 1}, "to": {"id": 2}}]));
    // a composite foreign key
    let r = api.get("/stock?select=id,warehouses(name)&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "warehouses": {"name": "Berlin Hub"}}]));
    let r = api.get("/warehouses?select=name,stock(id)&stock.order=id&region=eq.us&code=eq.1").await;
    assert_eq!(r.json(), json!([{"name": "Newark DC", "stock": [{"id": 2}, {"id": 5}]}]));
    // a self-reference, as PostgREST: the key's column embeds the parent,
    // the table's name with a hint the children
    let r = api.get("/categories?select=id,parent:parent_id(id)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"id": 3, "parent": {"id": 1}}]));
    for hint in ["fk_categories_parent", "parent_id"] {
        let r =
            api.get(&format!("/categories?select=id,children:categories!{hint}(id)&children.order=id&id=eq.1")).await;
        assert_eq!(r.json(), json!([{"id": 1, "children": [{"id": 3}, {"id": 4}]}]));
    }
    // nested embeds
    let r =
        api.get("/customers?select=id,orders(id,products(id))&orders.order=id&orders.products.order=id&id=eq.3").await;
    assert_eq!(
        r.json(),
        json!([{"id": 3, "orders": [
            {"id": 5, "products": [{"id": 4}, {"id": 6}]},
            {"id": 6, "products": [{"id": 9}]},
            {"id": 7, "products": []}
        ]}])
    );
    // a to-one embed with no row is null; spread moves columns up
    let r = api.get("/addresses?select=id,customers(name)&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "customers": null}]));
    let r = api.get("/orders?select=id,...customers(buyer:name,city)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"id": 3, "buyer": "bob brown", "city": null}]));
    // the embed's select=* and an empty select
    let r = api.get("/order_items?select=qty,orders(*)&order_id=eq.2").await;
    assert_eq!(r.json()[0]["orders"]["id"], 2);
    assert_eq!(r.json()[0]["orders"]["status"], "shipped");
    // no relationship
    let e = api.get("/orders?select=id,warehouses(*)").await.expect_error(400, "PGRST200");
    assert!(e["message"].as_str().unwrap().contains("warehouses"));
    api.get("/orders?select=id,cutsomers(*)").await.expect_error(400, "PGRST200");
}

async fn embedded_filters_order_limit_and_inner(engine: Engine) {
    let api = Api::fixture(engine).await;
    // filters inside an embed filter the embedded rows, not the parents
    let r = api.get("/customers?select=id,orders(id)&orders.status=eq.cancelled&order=id").await;
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(v[1], json!({"id": 2, "orders": [{"id": 4}]}));
    assert_eq!(v[0], json!({"id": 1, "orders": []}));
    // !inner drops parents without a matching child
    let r = api.get("/customers?select=id,orders!inner(id)&orders.status=eq.cancelled&order=id").await;
    assert_eq!(r.json(), json!([{"id": 2, "orders": [{"id": 4}]}, {"id": 5, "orders": [{"id": 10}]}]));
    let r = api.get("/orders?select=id,customers!inner(city)&customers.city=eq.Paris&order=id").await;
    assert_eq!(r.column_i64("id"), vec![5, 6, 7]);
    // filtering on the embed's existence
    let r = api.get("/customers?select=id,orders(id)&orders=not.is.null&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 2, 3, 4, 5]);
    let r = api.get("/customers?select=id,orders(id)&orders=is.null").await;
    assert_eq!(r.column_i64("id"), vec![6]);
    // order, limit and offset inside an embed
    let r = api.get("/customers?select=id,orders(id,total)&orders.order=total.desc&orders.limit=2&id=eq.1").await;
    assert_eq!(
        r.json()[0]["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let r = api.get("/customers?select=id,orders(id)&orders.order=id&orders.limit=1&orders.offset=1&id=eq.1").await;
    assert_eq!(r.json()[0]["orders"], json!([{"id": 2}]));
    // logic trees inside an embed
    let r = api
        .get("/customers?select=id,orders(id)&orders.or=(total.gt.100,status.eq.pending)&orders.order=id&id=eq.1")
        .await;
    assert_eq!(r.json()[0]["orders"], json!([{"id": 1}, {"id": 12}]));
    // an aliased embed is addressed by its alias
    let r = api.get("/customers?select=id,o:orders(id)&o.order=id.desc&o.limit=1&id=eq.3").await;
    assert_eq!(r.json(), json!([{"id": 3, "o": [{"id": 7}]}]));
    // a path that is not embedded
    api.get("/customers?select=id&orders.status=eq.paid").await.expect_error(400, "PGRST108");
}

async fn singular_csv_and_negotiation(engine: Engine) {
    let api = Api::fixture(engine).await;
    const OBJECT: &str = "application/vnd.pgrst.object+json";
    let r = api.get_with("/orders?select=id,status&id=eq.2", &[("accept", OBJECT)]).await;
    r.expect(200);
    assert_eq!(r.json(), json!({"id": 2, "status": "shipped"}));
    assert!(r.header("content-type").unwrap().starts_with(OBJECT));
    let e = api.get_with("/orders?status=eq.paid", &[("accept", OBJECT)]).await.expect_error(406, "PGRST116");
    assert_eq!(e["details"], "The result contains 4 rows");
    api.get_with("/orders?id=eq.999", &[("accept", OBJECT)]).await.expect_error(406, "PGRST116");

    let r = api.get_with("/orders?select=id,status,note&id=lt.3&order=id", &[("accept", "text/csv")]).await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    // Rows are separated by newlines, with none after the last (PostgREST).
    assert_eq!(r.body, "id,status,note\n1,paid,\n2,shipped,\"gift wrap, please\"");
    let r = api.get_with("/orders?select=id,status&id=eq.999", &[("accept", "text/csv")]).await;
    assert_eq!(r.body, "id,status\n");

    api.get_with("/orders", &[("accept", "image/png")]).await.expect_error(406, "PGRST107");
    let r = api.get_with("/orders?id=eq.1", &[("accept", "text/html, application/json;q=0.9")]).await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
}

async fn types_round_trip_as_json(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/products?select=id,name,price,tags,attrs,sku,image,in_stock,ratings&id=eq.2").await;
    r.expect(200);
    let p = &r.json()[0];
    assert_eq!(p["name"], "Gadget (Large)");
    assert_eq!(p["price"].as_f64(), Some(24.5));
    assert_eq!(p["tags"], json!(["tools", "electronics"]));
    assert_eq!(p["attrs"], json!({"color": "blue", "size": "L", "dims": {"w": 10, "h": 20}}));
    assert_eq!(p["sku"], "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f");
    assert_eq!(p["image"], "\\x89504e470d0a1a0a");
    assert_eq!(p["in_stock"], true);
    assert_eq!(p["ratings"], json!([3, 5]));
    let r = api.get("/products?select=id,image,price,ratings&id=eq.7").await;
    assert_eq!(r.json(), json!([{"id": 7, "image": null, "price": null, "ratings": null}]));
    let r = api.get("/products?select=in_stock&id=eq.3").await;
    assert_eq!(r.json(), json!([{"in_stock": false}]));
    // Timestamps are ISO 8601 with a T.
    let r = api.get("/orders?select=created_at&id=eq.1").await;
    let ts = r.json()[0]["created_at"].as_str().unwrap().to_string();
    assert!(ts.starts_with("2024-03-01T10:00:00"), "{ts}");
    // Unicode and quotes survive.
    let r = api.get("/orders?select=note&id=eq.12").await;
    assert_eq!(r.json(), json!([{"note": "Ünïcödé note ✓"}]));
    let r = api.get("/products?select=name&id=eq.6").await;
    assert_eq!(r.json(), json!([{"name": "O'Brien's \"Best\" Tea"}]));
    // Enums filter by label; uuids by value.
    let r = api.get("/orders?select=id&status=eq.cancelled&order=id").await;
    assert_eq!(r.column_i64("id"), vec![4, 10]);
    let r = api.get("/products?select=id&sku=eq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").await;
    assert_eq!(r.column_i64("id"), vec![1]);
}

async fn awkward_names_and_views(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/user?select=id,select,group,order,first%20name&order=id&limit=1").await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1, "select": "yes", "group": "admin", "order": 10, "first name": "Ada"}]));
    // A column named `order` is filtered inside a logic tree.
    let r = api.get("/user?select=id&and=(order.gt.5)&order=id").await;
    assert_eq!(r.column_i64("id"), vec![1, 2]);
    let r = api.get("/user?select=id&first%20name=eq.Grace").await;
    assert_eq!(r.column_i64("id"), vec![2]);
    let r = api.get("/MixedCase?select=Id,DisplayName&lowerCol=eq.B").await;
    assert_eq!(r.json(), json!([{"Id": 2, "DisplayName": "second ITEM"}]));
    api.get("/mixedcase").await.expect_error(404, "PGRST205");
    // A view reads like a table.
    let r = api.get("/customer_totals?select=customer_id,order_count&order=customer_id").await;
    let counts: Vec<i64> = r.json().as_array().unwrap().iter().map(|v| v["order_count"].as_i64().unwrap()).collect();
    assert_eq!(counts, vec![3, 2, 3, 2, 2, 0]);
    if engine == Engine::Postgres {
        let mut config = RuntimeConfig::default();
        config.database.schemas = vec!["public".into(), "other".into()];
        let two = Api::fixture_with(engine, config).await;
        let r = two.get_with("/things?select=id&order=id", &[("accept-profile", "other")]).await;
        assert_eq!(r.column_i64("id"), vec![1, 2]);
        // With several schemas every answer names the one that answered.
        assert_eq!(r.header("content-profile"), Some("other"));
        let e = two.get("/things").await;
        assert_eq!((e.status.as_u16(), e.header("content-profile")), (404, None), "errors name no schema");
        let r = two.get("/orders?select=id&id=eq.1").await;
        assert_eq!((r.status.as_u16(), r.header("content-profile")), (200, Some("public")));
    }
    // With one schema, as PostgREST, no Content-Profile.
    assert_eq!(api.get("/orders?select=id&id=eq.1").await.header("content-profile"), None);
    let e = api.get_with("/orders", &[("accept-profile", "nope")]).await.expect_error(406, "PGRST106");
    assert!(e["message"].as_str().unwrap().contains(&api.db.schema));
    // `public`, which postgrest-py sends with every request, is the default
    // schema where the engine has none of that name (and on PostgreSQL,
    // where it is the fixture's schema).
    let r = api.get_with("/orders?select=id&id=eq.1", &[("accept-profile", "public")]).await;
    assert_eq!(r.expect(200).json(), json!([{"id": 1}]));
}

async fn errors_are_clear(engine: Engine) {
    let api = Api::fixture(engine).await;
    // Unknown preferences with handling=strict: PostgREST's PGRST122.
    let e = api.get_with("/orders", &[("prefer", "handling=strict, count=sometimes")]).await;
    let e = e.expect_error(400, "PGRST122");
    assert!(e["details"].as_str().unwrap().contains("count=sometimes"), "{e}");
    // RFC 9209's Proxy-Status names the error's code, as PostgREST's does.
    assert_eq!(api.get("/oders").await.header("proxy-status"), Some("dbapi; error=PGRST205"));
    let e = api.get("/oders").await.expect_error(404, "PGRST205");
    assert!(e["hint"].as_str().unwrap().contains("orders"));
    let e = api.get("/orders?select=id,totl").await.expect_error(400, "42703");
    assert!(e["hint"].as_str().unwrap().contains("total"));
    api.get("/orders?totl=eq.1").await.expect_error(400, "42703");
    api.get("/orders?order=totl").await.expect_error(400, "42703");
    let e = api.get("/orders?id=eq1").await.expect_error(400, "PGRST100");
    assert!(e["message"].as_str().unwrap().contains("eq1"));
    let e = api.get("/orders?id=equals.1").await.expect_error(400, "PGRST100");
    assert!(e["details"].as_str().unwrap().contains("equals"));
    api.get("/orders?select=id,customers(name").await.expect_error(400, "PGRST100");
    api.get("/orders?or=(id.eq.1,total.gt.2").await.expect_error(400, "PGRST100");
    api.get("/orders?limit=ten").await.expect_error(400, "PGRST100");
    api.get("/orders?select=id::money").await.expect_error(400, "DBAPI102");
    let e = api.get("/orders?id=eq.abc").await.expect_error(400, "22P02");
    assert!(e["message"].as_str().unwrap().contains("integer"));
    api.get("/orders?total=in.(1,x)").await.expect_error(400, "22P02");
    api.get("/products?in_stock=eq.maybe").await.expect_error(400, "22P02");
    let deep = format!("/orders?select={}id{}", "a(".repeat(200), ")".repeat(200));
    api.get(&deep).await.expect_error(400, "PGRST100");
    // Past api.maxUrlBytes (8 KiB by default) a URL is refused before it
    // is parsed (the grammar's own bound is 32 KiB).
    let long = format!("/orders?note=eq.{}", "x".repeat(40_000));
    api.get(&long).await.expect_error(414, "DBAPI414");
    let e = api
        .request(axum::http::Request::builder().method("TRACE").uri("/orders").body(axum::body::Body::empty()).unwrap())
        .await;
    e.expect_error(405, "PGRST117");
    api.get("/a/b/c").await.expect_error(404, "PGRST125");
    // SQL in values is only ever a value.
    let r = api.get("/orders?select=id&note=eq.x'%20OR%20'1'='1").await;
    r.expect(200);
    assert_eq!(r.body, "[]");
    let r = api.get(r#"/orders?select=id,"x\";DROP TABLE orders;--":total&id=eq.1"#).await;
    r.expect(200);
    assert_eq!(r.json()[0]["x\";DROP TABLE orders;--"].as_f64(), Some(120.5));
    assert_eq!(api.sql_i64("SELECT COUNT(*) FROM orders").await, vec![12]);
}

async fn json_paths_behave_like_postgresql(engine: Engine) {
    let api = Api::fixture(engine).await;
    // `->` compares JSON with JSON, `->>` text with text.
    let ids = |path: &'static str| {
        let api = &api;
        async move {
            let r = api.get(path).await;
            r.expect(200);
            r.column_i64("id")
        }
    };
    assert_eq!(ids(r#"/products?select=id&attrs->color=eq."red""#).await, vec![1]);
    assert_eq!(ids("/products?select=id&attrs->dims->w=eq.10").await, vec![2]);
    assert_eq!(ids("/products?select=id&attrs->dims->>w=eq.10").await, vec![2]);
    assert_eq!(ids("/products?select=id&attrs->>weight=eq.1.5").await, vec![1]);
    assert_eq!(ids("/products?select=id&attrs->>promo=eq.true").await, vec![8]);
    // A JSON null (product 5) and a missing key are both NULL as text.
    assert_eq!(ids("/products?select=id&attrs->>color=is.null&order=id").await, vec![5, 6, 7, 8]);
    let r = api.get("/products?select=id,color:attrs->>color,w:attrs->dims->>w&id=in.(2,5)&order=id").await;
    assert_eq!(r.json(), json!([{"id": 2, "color": "blue", "w": "10"}, {"id": 5, "color": null, "w": null}]));
    // Containment takes PostgreSQL array literals on MySQL JSON columns too.
    if engine == Engine::MySql {
        assert_eq!(ids("/products?select=id&tags=cs.{tools}&order=id").await, vec![1, 2]);
        assert_eq!(ids("/products?select=id&ratings=cs.{5,4}&order=id").await, vec![1, 4, 9]);
        api.get("/products?select=id&tags=cs.notjson").await.expect_error(400, "22P02");
        assert_eq!(ids(r#"/products?select=id&attrs=cs.{"color":"red"}"#).await, vec![1]);
    }
    // Casting to an integer rounds on every engine.
    let r = api.get("/products?select=id,p:price::int&id=in.(1,2,8)&order=id").await;
    assert_eq!(r.json(), json!([{"id": 1, "p": 10}, {"id": 2, "p": 25}, {"id": 8, "p": -5}]));
}

async fn related_order_and_stripped_nulls(engine: Engine) {
    let api = Api::fixture(engine).await;
    let r = api.get("/orders?select=id,customers(name)&order=customers(name).desc,id.asc").await;
    r.expect(200);
    let expected = api
        .sql_i64(&format!(
            "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY c.name {} DESC, o.id ASC",
            if engine == Engine::Postgres { "COLLATE \"C\"" } else { "" }
        ))
        .await;
    assert_eq!(r.column_i64("id"), expected);
    api.get("/customers?select=id,orders(id)&order=orders(id)").await.expect_error(400, "PGRST118");
    api.get("/orders?select=id&order=customers(name)").await.expect_error(400, "PGRST108");

    const STRIPPED: &str = "application/vnd.pgrst.array+json;nulls=stripped";
    let r = api.get_with("/customers?select=id,city&id=in.(1,2)&order=id", &[("accept", STRIPPED)]).await;
    r.expect(200);
    assert_eq!(r.json(), json!([{"id": 1, "city": "New York"}, {"id": 2}]));
    assert!(r.header("content-type").unwrap().contains("nulls=stripped"));
}

/// Views embed through the foreign keys of the tables they show, as in
/// PostgREST: on PostgreSQL read from the view's stored query, on SQLite
/// from the columns' origins SQLite reports. Not on MySQL/MariaDB yet (see
/// README, "Views").
mod views_embed_through_the_keys_of_the_tables_they_show {
    use super::Engine;

    #[tokio::test]
    async fn postgres() {
        super::views_embed_through_the_keys_of_the_tables_they_show(Engine::Postgres).await
    }

    #[tokio::test]
    async fn mysql() {
        super::views_embed_through_the_keys_of_the_tables_they_show(Engine::MySql).await
    }

    #[tokio::test]
    async fn sqlite() {
        super::views_embed_through_the_keys_of_the_tables_they_show(Engine::Sqlite).await
    }
}

async fn views_embed_through_the_keys_of_the_tables_they_show(engine: Engine) {
    let api = Api::fixture(engine).await;
    // view -> table (many-to-one through fk_orders_customer, renamed column)
    let r = api.get("/open_orders?select=order_id,customers(name)&order=order_id").await;
    r.expect(200);
    let expected = api
        .sql_text("SELECT c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'pending' ORDER BY o.id")
        .await;
    let names: Vec<Option<String>> =
        r.json().as_array().unwrap().iter().map(|o| o["customers"]["name"].as_str().map(String::from)).collect();
    assert_eq!(names, expected);
    // table -> view (one-to-many)
    let r = api.get("/customers?select=id,open_orders(order_id)&id=eq.1").await;
    r.expect(200);
    let expected = api.sql_i64("SELECT id FROM orders WHERE customer_id = 1 AND status = 'pending' ORDER BY id").await;
    let got: Vec<i64> =
        r.json()[0]["open_orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_i64().unwrap()).collect();
    assert_eq!(got, expected);
    // view -> view: customer_totals shows customers.id as customer_id
    let r = api.get("/open_orders?select=order_id,customer_totals(order_count)&order_id=eq.3").await;
    r.expect(200);
    let count = api
        .sql_i64("SELECT count(*) FROM orders WHERE customer_id = (SELECT customer_id FROM orders WHERE id = 3)")
        .await;
    assert_eq!(r.json(), json!([{"order_id": 3, "customer_totals": {"order_count": count[0]}}]));
    let r = api.get("/customer_totals?select=customer_id,orders(id)&customer_id=eq.2").await;
    r.expect(200);
    let ids = api.sql_i64("SELECT id FROM orders WHERE customer_id = 2 ORDER BY id").await;
    let got: Vec<i64> = r.json()[0]["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(sorted(got), ids);
    // An aggregate column comes from no table: no relationship through it.
    api.get("/customer_totals?select=order_count,shipments(*)").await.expect_error(400, "PGRST200");
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

/// PostgREST's arrows step into array and composite columns too
/// (PostgreSQL): in select, filters and order.
#[tokio::test]
async fn postgres_arrows_step_into_arrays_and_composite_values() {
    let sql = "
        CREATE TYPE address AS (city text, zip text);
        CREATE TABLE people (id integer PRIMARY KEY, numbers integer[], numbers_mult integer[][], home address);
        INSERT INTO people VALUES
            (1, '{10,20,30}', '{{1,2},{3,4}}', ROW('Oslo', '0150')),
            (2, '{5}', '{{5,6}}', ROW('Rome', '00100'));";
    let api = Api::with_sql(Engine::Postgres, sql, RuntimeConfig::default()).await;
    let r = api.get("/people?select=id,a:numbers->0,b:numbers_mult->0->>1,home->>city&order=id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([{"id": 1, "a": 10, "b": "2", "city": "Oslo"}, {"id": 2, "a": 5, "b": "6", "city": "Rome"}])
    );
    let r = api.get("/people?select=id&numbers->>0=eq.5").await;
    assert_eq!(r.expect(200).json(), json!([{"id": 2}]));
    let r = api.get("/people?select=id&home->>zip=like.00*").await;
    assert_eq!(r.expect(200).json(), json!([{"id": 2}]));
    let r = api.get("/people?select=id&order=home->>city.desc").await;
    assert_eq!(r.column_i64("id"), vec![2, 1]);
    // Out of range: null, as in PostgREST.
    let r = api.get("/people?select=x:numbers->5&id=eq.2").await;
    assert_eq!(r.expect(200).json(), json!([{"x": null}]));
}

/// A GET seen before is answered from its kept plan by the gate, before
/// the router (`http::read::PlannedGet`): the second and third asking give
/// what the first gave (status, headers, body), a write in between is
/// seen, and HEAD, errors and 304s are as before.
async fn a_read_asked_again_is_answered_as_the_first_time(engine: Engine) {
    let api = Api::fixture(engine).await;
    let asked: [(&str, &[(&str, &str)]); 6] = [
        ("/orders?select=id,status&order=id&limit=3&offset=1", &[]),
        ("/orders?select=id&status=eq.paid", &[("prefer", "count=exact")]),
        ("/orders?select=id&id=eq.2", &[("accept", "application/vnd.pgrst.object+json")]),
        ("/orders?offset=20", &[("prefer", "count=exact")]),
        ("/orders?select=nope", &[]),
        ("/orders?select=id&order=id", &[("range", "0-1")]),
    ];
    let comparable = |r: &support::api::Response| {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        headers.sort();
        (r.status, headers, r.body.clone())
    };
    for (uri, headers) in asked {
        let first = comparable(&api.get_with(uri, headers).await);
        for again in 0..2 {
            assert_eq!(comparable(&api.get_with(uri, headers).await), first, "{uri}, asked again ({again})");
        }
    }
    // All but the unknown column's were kept (the 416 is the answer's, not
    // the plan's).
    assert_eq!(api.state.planned_reads(), 5);

    // A kept read still asks the database: a write in between is seen.
    let uri = "/orders?select=id,status&order=id&limit=3&offset=1";
    api.patch_with("/orders?id=eq.2", &[], r#"{"status":"cancelled"}"#).await.expect(204);
    let r = api.get(uri).await;
    r.expect(200);
    assert_eq!(r.json()[0], json!({"id": 2, "status": "cancelled"}));

    // Its validator still answers 304, and HEAD (never kept) its headers.
    let etag = r.header("etag").unwrap().to_string();
    api.get_with(uri, &[("if-none-match", &etag)]).await.expect(304);
    let head = api.request(axum::http::Request::head(uri).body(axum::body::Body::empty()).unwrap()).await;
    head.expect(200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(head.body.is_empty());
}
