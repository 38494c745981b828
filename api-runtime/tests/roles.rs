//! Role rules on reads, on every engine: a table without a rule answers as
//! a missing one, a verb not granted is 403, hidden columns are unknown
//! wherever they are named, row filters narrow reads, HEAD and counts,
//! embedding follows the embedded table's rules, and the OpenAPI document
//! and `OPTIONS` show each role what it may do. Writes, functions and
//! claims are in `roles_writes.rs`.

mod support;

use serde_json::json;
use support::Engine;
use support::roles::{CLERK, EUROPE, NOBODY, OWNER, PUTTER, READER, WRITER, ids, keys, shop};

on_every_engine!(
    tables_without_a_rule_answer_as_missing,
    verbs_not_granted_are_forbidden,
    hidden_columns_are_unknown_wherever_named,
    star_and_csv_show_visible_columns_only,
    row_filters_narrow_reads_heads_and_counts,
    embedding_follows_the_embedded_tables_rules,
    openapi_shows_each_role_what_it_may_do,
    options_answer_per_role,
    without_roles_keys_have_full_access,
    views_follow_schema_and_policy_reloads,
    kept_plans_follow_schema_and_policy_reloads,
);

async fn tables_without_a_rule_answer_as_missing(engine: Engine) {
    let api = shop(engine).await;
    // The answer for a hidden table is the answer for a missing one.
    let missing = api.get_with("/no_such_table", &[CLERK]).await;
    let missing = missing.expect_error(404, "PGRST205");
    let hidden = api.get_with("/audit", &[CLERK]).await.expect_error(404, "PGRST205");
    assert_eq!(hidden["message"], missing["message"].as_str().unwrap().replace("no_such_table", "audit"));
    assert_eq!(hidden["hint"], serde_json::Value::Null, "{hidden}");
    // No "did you mean" names a hidden table, but visible ones may be named.
    for near in ["/audits", "/region", "/regionz"] {
        let e = api.get_with(near, &[CLERK]).await.expect_error(404, "PGRST205");
        let text = e.to_string();
        assert!(!text.contains("audit'") && !text.contains("regions"), "{near}: {e}");
    }
    // A table the role may only write to is visible, so it may be hinted.
    let e = api.get_with("/tag", &[CLERK]).await.expect_error(404, "PGRST205");
    assert!(e["hint"].as_str().unwrap_or_default().contains("tags"), "{e}");
    let e = api.get_with("/ordrs", &[CLERK]).await.expect_error(404, "PGRST205");
    assert!(e["hint"].as_str().unwrap_or_default().contains("orders"), "{e}");
    // Every verb, and OPTIONS.
    api.post_with("/audit", &[CLERK], r#"{"id": 9, "what": "x"}"#).await.expect_error(404, "PGRST205");
    api.patch_with("/audit?id=eq.1", &[CLERK], r#"{"what": "x"}"#).await.expect_error(404, "PGRST205");
    api.put_with("/audit?id=eq.1", &[CLERK], r#"{"id": 1, "what": "x"}"#).await.expect_error(404, "PGRST205");
    api.delete_with("/audit?id=eq.1", &[CLERK]).await.expect_error(404, "PGRST205");
    api.send("OPTIONS", "/audit", &[CLERK], "").await.expect_error(404, "PGRST205");
    assert_eq!(api.send("HEAD", "/audit", &[CLERK], "").await.status, 404);
    assert_eq!(api.sql_text("SELECT what FROM audit").await, vec![Some("created".to_string())]);
    // A role that `roles` does not define sees nothing.
    api.get_with("/orders", &[NOBODY]).await.expect_error(404, "PGRST205");
}

async fn verbs_not_granted_are_forbidden(engine: Engine) {
    let api = shop(engine).await;
    let e = api.post_with("/orders", &[READER], r#"{"id": 9, "region": "eu", "is_public": true, "amount": 1}"#).await;
    let e = e.expect_error(403, "42501");
    assert_eq!(e["message"], "permission denied for table orders");
    api.patch_with("/orders?id=eq.1", &[READER], r#"{"note": "x"}"#).await.expect_error(403, "42501");
    api.put_with("/orders?id=eq.1", &[READER], r#"{"id": 1, "region": "eu", "is_public": true, "amount": 1}"#)
        .await
        .expect_error(403, "42501");
    api.delete_with("/orders?id=eq.1", &[READER]).await.expect_error(403, "42501");
    assert_eq!(api.count("orders").await, 5);
    assert_eq!(api.sql_text("SELECT note FROM orders WHERE id = 1").await, vec![Some("a".to_string())]);
    // A view is named as one.
    let e = api.delete_with("/eu_orders?id=eq.1", &[CLERK]).await.expect_error(403, "42501");
    assert_eq!(e["message"], "permission denied for view eu_orders");
    // POST without GET: written, but neither read nor read back.
    api.get_with("/audit", &[WRITER]).await.expect_error(403, "42501");
    assert_eq!(api.send("HEAD", "/audit", &[WRITER], "").await.status, 403);
    api.post_with("/audit", &[WRITER], r#"{"id": 2, "what": "kept"}"#).await.expect(201);
    api.post_with("/audit", &[WRITER, ("prefer", "return=representation")], r#"{"id": 3, "what": "no"}"#)
        .await
        .expect_error(403, "42501");
    assert_eq!(api.sql_i64("SELECT id FROM audit ORDER BY id").await, vec![1, 2]);
}

async fn hidden_columns_are_unknown_wherever_named(engine: Engine) {
    let api = shop(engine).await;
    for uri in [
        "/orders?select=id,cost",
        "/orders?cost=eq.10",
        "/orders?order=cost.desc",
        "/orders?or=(id.eq.1,cost.gt.5)",
        "/orders?and=(id.eq.1,not.or(cost.eq.1))",
        "/customers?select=id,email",
        "/orders?select=id,customers(id,secret)",
        "/orders?select=id,customers(id)&customers.email=eq.x",
        "/orders?select=id,customers(id)&customers.order=secret",
        "/orders?select=id,...customers(email)",
    ] {
        let e = api.get_with(uri, &[CLERK]).await.expect_error(400, "42703");
        let text = e.to_string();
        assert!(!text.contains("\"cost\"") || !text.contains("Perhaps"), "{uri}: {e}");
    }
    // The same names exist for a role that may see them.
    api.get_with("/orders?select=id,cost&cost=eq.10&order=cost", &[READER]).await.expect(200);
    // Body keys, columns= and on_conflict=.
    let row = r#"{"id": 20, "region": "eu", "is_public": true, "amount": 1, "cost": 99}"#;
    api.post_with("/orders", &[CLERK], row).await.expect_error(400, "PGRST204");
    api.post_with("/orders?columns=id,region,is_public,amount,cost", &[CLERK], row).await.expect_error(400, "PGRST204");
    let upsert = [CLERK, ("prefer", "resolution=merge-duplicates")];
    let ok_row = r#"{"id": 20, "region": "eu", "is_public": true, "amount": 1}"#;
    api.post_with("/orders?on_conflict=cost", &upsert, ok_row).await.expect_error(400, "PGRST204");
    api.patch_with("/orders?id=eq.1", &[CLERK], r#"{"cost": 1}"#).await.expect_error(400, "PGRST204");
    api.put_with(
        "/orders?id=eq.1",
        &[CLERK],
        r#"{"id": 1, "region": "eu", "is_public": true, "amount": 1, "cost": 1}"#,
    )
    .await
    .expect_error(400, "PGRST204");
    // Unknown and hidden body keys answer alike, as PostgREST answers an
    // unknown one.
    api.post_with("/orders", &[CLERK], r#"{"id": 20, "nope": 1}"#).await.expect_error(400, "PGRST204");
    assert_eq!(api.count("orders").await, 5);
    assert_eq!(api.sql_i64("SELECT cost FROM orders WHERE id = 1").await, vec![10]);
}

async fn star_and_csv_show_visible_columns_only(engine: Engine) {
    let api = shop(engine).await;
    let visible = ["amount", "customer_id", "id", "is_public", "note", "owner_id", "region"];
    let r = api.get_with("/orders?order=id", &[CLERK]).await;
    r.expect(200);
    assert_eq!(keys(&r.json()), visible);
    let r = api.get_with("/orders?select=*,customers(*)&id=eq.1", &[CLERK]).await;
    r.expect(200);
    assert_eq!(r.json()[0]["customers"], json!({"id": 1, "name": "Ann", "region": "eu"}));
    let r = api.get_with("/orders?select=id,...customers(*)&id=eq.1", &[CLERK]).await;
    assert_eq!(r.json(), json!([{"id": 1, "name": "Ann", "region": "eu"}]));
    let csv = api.get_with("/customers?order=id", &[CLERK, ("accept", "text/csv")]).await;
    csv.expect(200);
    assert_eq!(csv.body, "id,name,region\n1,Ann,eu\n2,Bob,us\n3,Cid,eu");
    let empty = api.get_with("/customers?id=eq.0", &[CLERK, ("accept", "text/csv")]).await;
    assert_eq!(empty.body, "id,name,region\n");
    // The reader sees every column.
    assert_eq!(keys(&api.get_with("/customers", &[READER]).await.json()).len(), 5);
}

async fn row_filters_narrow_reads_heads_and_counts(engine: Engine) {
    let api = shop(engine).await;
    let r = api.get_with("/orders?order=id", &[CLERK]).await;
    assert_eq!(ids(&r.json()), vec![1, 2, 4]);
    // The role's filter is ANDed with the request's, never replaced.
    assert_eq!(ids(&api.get_with("/orders?or=(id.eq.3,id.eq.4)", &[CLERK]).await.json()), vec![4]);
    assert_eq!(ids(&api.get_with("/orders?region=eq.us", &[CLERK]).await.json()), Vec::<i64>::new());
    let counted = api.get_with("/orders?limit=1", &[CLERK, ("prefer", "count=exact")]).await;
    counted.expect(206);
    assert_eq!(counted.header("content-range"), Some("0-0/3"));
    let head = api.send("HEAD", "/orders", &[CLERK, ("prefer", "count=exact")], "").await;
    assert_eq!((head.status.as_u16(), head.header("content-range")), (200, Some("0-2/3")));
    for estimate in ["count=planned", "count=estimated"] {
        let r = api.get_with("/orders?limit=1", &[CLERK, ("prefer", estimate)]).await;
        let total: i64 = r.header("content-range").unwrap().rsplit('/').next().unwrap().parse().unwrap_or(-1);
        assert!(total <= 3 || engine == Engine::Postgres, "{estimate}: {total}");
    }
    // Another role, another filter; the whole table for the reader.
    assert_eq!(ids(&api.get_with("/orders?order=id", &[READER]).await.json()), vec![1, 2, 3, 4, 5]);
    // A filter naming a claim the caller lacks is false, as NULL: keys
    // carry no claims, so the owner sees the public orders only.
    assert_eq!(ids(&api.get_with("/orders?order=id", &[OWNER]).await.json()), vec![1, 3]);
    // A `*` rule's filter applies where its column exists; elsewhere the
    // rule grants no rows (never a 500, never every row).
    let r = api.get_with("/customers?order=id", &[EUROPE]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.json()), vec![1, 3]);
    assert_eq!(ids(&api.get_with("/orders?order=id", &[EUROPE]).await.json()), vec![1, 2, 4]);
    assert_eq!(api.get_with("/tags", &[EUROPE]).await.json(), json!([]));
    let counted = api.get_with("/audit", &[EUROPE, ("prefer", "count=exact")]).await;
    assert_eq!((counted.body.as_str(), counted.header("content-range")), ("[]", Some("*/0")));
    // The view has no filter of its own for the clerk.
    assert_eq!(ids(&api.get_with("/eu_orders?order=id", &[CLERK]).await.json()), vec![1, 2, 4]);
}

async fn embedding_follows_the_embedded_tables_rules(engine: Engine) {
    let api = shop(engine).await;
    // Orders embedded in customers are filtered by the orders rule.
    let r = api.get_with("/customers?select=id,orders(id)&order=id&orders.order=id", &[CLERK]).await;
    r.expect(200);
    assert_eq!(
        r.json(),
        json!([{"id": 1, "orders": [{"id": 1}, {"id": 2}]}, {"id": 2, "orders": []}, {"id": 3, "orders": [{"id": 4}]}])
    );
    let inner = api.get_with("/customers?select=id,orders!inner(id)&order=id", &[CLERK]).await;
    assert_eq!(ids(&inner.json()), vec![1, 3]);
    let exists = api.get_with("/customers?select=id,orders()&orders=not.is.null&order=id", &[CLERK]).await;
    assert_eq!(ids(&exists.json()), vec![1, 3]);
    // A table the role cannot see, or can see but not read, is not
    // embeddable: as if no relationship existed.
    for uri in ["/customers?select=id,regions(*)", "/orders?select=id,tags(id)", "/orders?select=id,...tags(label)"] {
        let e = api.get_with(uri, &[CLERK]).await.expect_error(400, "PGRST200");
        assert!(!e["hint"].as_str().unwrap_or_default().contains("regions"), "{uri}: {e}");
    }
    // The reader may embed all of them.
    let r = api.get_with("/orders?select=id,tags(label),customers(regions(name))&id=eq.1", &[READER]).await;
    assert_eq!(r.json(), json!([{"id": 1, "tags": [{"label": "red"}], "customers": {"regions": {"name": "Europe"}}}]));
}

async fn openapi_shows_each_role_what_it_may_do(engine: Engine) {
    let api = shop(engine).await;
    let open = api.get_with("/", &[READER]).await.json();
    let doc = api.get_with("/", &[CLERK]).await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/orders") && paths.contains_key("/customers") && paths.contains_key("/eu_orders"));
    assert!(!paths.contains_key("/audit") && !paths.contains_key("/regions"), "{:?}", paths.keys());
    assert!(!doc.to_string().contains("audit"), "a hidden table is named");
    let orders = &doc["paths"]["/orders"];
    for verb in ["get", "post", "patch", "put", "delete"] {
        assert!(orders.get(verb).is_some(), "clerk may {verb} orders");
    }
    let customers = &doc["paths"]["/customers"];
    assert!(customers.get("get").is_some() && customers.get("post").is_none() && customers.get("delete").is_none());
    let tags = &doc["paths"]["/tags"];
    assert!(tags.get("post").is_some() && tags.get("get").is_none(), "{tags}");
    let props = doc["components"]["schemas"]["orders"]["properties"].as_object().unwrap();
    assert!(props.contains_key("amount") && !props.contains_key("cost"), "{:?}", props.keys());
    let customer_props = doc["components"]["schemas"]["customers"]["properties"].as_object().unwrap();
    assert_eq!(customer_props.len(), 3);
    // The reader: every table, reads only.
    let reader_orders = &open["paths"]["/orders"];
    assert!(reader_orders.get("get").is_some() && reader_orders.get("post").is_none());
    assert!(open["paths"].get("/audit").is_some());
    assert!(open["components"]["schemas"]["orders"]["properties"].get("cost").is_some());
    // The writer's document has the one thing it may do.
    let writer = api.get_with("/", &[WRITER]).await.json();
    assert_eq!(writer["paths"].as_object().unwrap().keys().collect::<Vec<_>>(), ["/audit"]);
    assert!(writer["paths"]["/audit"].get("get").is_none());
}

async fn options_answer_per_role(engine: Engine) {
    let api = shop(engine).await;
    let allow = |r: &support::api::Response| r.header("allow").map(str::to_string);
    assert_eq!(allow(&api.send("OPTIONS", "/orders", &[READER], "").await).as_deref(), Some("OPTIONS,GET,HEAD"));
    assert_eq!(allow(&api.send("OPTIONS", "/tags", &[CLERK], "").await).as_deref(), Some("OPTIONS,POST"));
    assert_eq!(
        allow(&api.send("OPTIONS", "/orders", &[CLERK], "").await).as_deref(),
        Some("OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE")
    );
    // PUT alone is PUT alone, whatever POST and PATCH are.
    assert_eq!(allow(&api.send("OPTIONS", "/orders", &[PUTTER], "").await).as_deref(), Some("OPTIONS,PUT"));
}

async fn without_roles_keys_have_full_access(engine: Engine) {
    let mut config = support::roles::config();
    config.roles.clear();
    let api = support::api::Api::with_sql(engine, support::roles::SQL, config).await;
    let r = api.get_with("/orders?select=id,cost&order=id", &[NOBODY]).await;
    r.expect(200);
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4, 5]);
    api.get("/orders").await.expect_error(401, "PGRST302");
}

async fn views_follow_schema_and_policy_reloads(engine: Engine) {
    let api = shop(engine).await;
    api.get_with("/eu_regions", &[CLERK]).await.expect_error(404, "PGRST205");
    api.db.execute("CREATE VIEW eu_regions AS SELECT code FROM regions WHERE code = 'eu'").await;
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    // The clerk's `eu_*` rule takes in the new view once the schema is
    // re-read; the cached view of the old schema is not used.
    assert_eq!(api.get_with("/eu_regions", &[CLERK]).await.json(), json!([{"code": "eu"}]));
    // A new document replaces the rules for the next request.
    let mut config = support::roles::config();
    config.roles.retain(|r| r.name != "clerk");
    let policy = dbapi_runtime::policy::Policy::new(config).await.unwrap();
    api.state.replace_policy(policy);
    api.get_with("/eu_regions", &[CLERK]).await.expect_error(404, "PGRST205");
    api.get_with("/orders", &[CLERK]).await.expect_error(404, "PGRST205");
    api.get_with("/orders", &[READER]).await.expect(200);
}

/// A read seen before reuses its plan (`plan::memo`); what is kept is
/// the caller's role's, and lasts only while the schema and the document it
/// was planned under are in force.
async fn kept_plans_follow_schema_and_policy_reloads(engine: Engine) {
    let api = shop(engine).await;
    let read = |key| {
        let api = &api;
        async move {
            let r = api.get_with("/orders?order=id", &[key]).await;
            r.expect(200);
            r.json()
        }
    };
    // The same request from three roles, twice: each keeps its own rows.
    for _ in 0..2 {
        assert_eq!(ids(&read(CLERK).await), vec![1, 2, 4]);
        assert_eq!(ids(&read(READER).await), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(&read(OWNER).await), vec![1, 3]);
    }
    assert_eq!(api.state.planned_reads(), 3, "one kept plan a role");

    // A new column is read once the schema is re-read.
    api.db.execute("ALTER TABLE orders ADD COLUMN motto VARCHAR(20)").await;
    assert!(!keys(&read(READER).await).contains(&"motto".to_string()));
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    assert!(keys(&read(READER).await).contains(&"motto".to_string()));
    assert_eq!(api.state.planned_reads(), 1, "the plans of the old schema are gone");

    // A new document's rules hold for the next request: the clerk's filter
    // and columns change.
    assert_eq!(ids(&read(CLERK).await), vec![1, 2, 4]);
    let mut config = support::roles::config();
    let clerk = config.roles.iter_mut().find(|r| r.name == "clerk").unwrap();
    clerk.rules[0].row_filter = Some("region=eq.us".into());
    clerk.rules[0].columns.retain(|c| c != "note");
    api.state.replace_policy(dbapi_runtime::policy::Policy::new(config).await.unwrap());
    let rows = read(CLERK).await;
    assert_eq!(ids(&rows), vec![3, 5]);
    assert!(!keys(&rows).contains(&"note".to_string()), "{rows}");
}
