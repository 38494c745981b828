//! Role rules on writes, functions and claims, on every engine: PATCH and
//! DELETE touch only rows inside the role's filter; a row that POST, PUT
//! or PATCH would leave outside it is refused 403 and nothing is kept
//! (checked with SQL); `/rpc/` functions need a rule naming them; and
//! `${claims...}` in a row filter takes the caller's claims as bound
//! values that cannot change the filter.

mod support;

use std::sync::Arc;

use dbapi_runtime::auth::Identity;
use dbapi_runtime::plan::access::Verb;
use dbapi_runtime::plan::{Page, plan_read};
use dbapi_runtime::sql::render_read;
use serde_json::json;
use support::Engine;
use support::api::Api;
use support::roles;
use support::roles::{CLERK, READER, WRITER, ids, keys, shop};

on_every_engine!(
    patch_and_delete_touch_only_filtered_rows,
    writes_that_leave_the_filter_are_refused_whole,
    put_and_upserts_stay_inside_the_filter,
    functions_need_a_rule_naming_them,
    claims_fill_row_filters_as_bound_values,
    claims_from_tokens_fill_row_filters,
    location_names_a_key_only_the_role_may_read,
    rows_are_checked_as_written_with_their_defaults,
);

const RETURN: (&str, &str) = ("prefer", "return=representation");
const HEADERS_ONLY: (&str, &str) = ("prefer", "return=headers-only");

async fn patch_and_delete_touch_only_filtered_rows(engine: Engine) {
    let api = shop(engine).await;
    let r = api.patch_with("/orders?id=in.(1,3)", &[CLERK, ("prefer", "count=exact")], r#"{"note": "x"}"#).await;
    r.expect(204);
    assert_eq!(r.header("content-range"), Some("0-0/1"));
    assert_eq!(
        api.sql_text("SELECT note FROM orders ORDER BY id").await,
        ["x", "b", "c", "d", "e"].map(|s| Some(s.into()))
    );
    // The representation is read with GET's columns.
    let r = api.patch_with("/orders?id=eq.2", &[CLERK, RETURN], r#"{"amount": 201}"#).await;
    r.expect(200);
    assert!(!keys(&r.json()).contains(&"cost".to_string()));
    assert_eq!(r.json()[0]["amount"], 201);
    // A PATCH matching only rows outside the filter changes nothing.
    api.patch_with("/orders?id=eq.3", &[CLERK], r#"{"amount": 1}"#).await.expect(204);
    assert_eq!(api.sql_i64("SELECT amount FROM orders WHERE id = 3").await, vec![300]);
    let r = api.delete_with("/orders?id=in.(4,5)", &[CLERK, RETURN]).await;
    r.expect(200);
    assert_eq!(ids(&r.json()), vec![4]);
    api.delete_with("/orders?id=eq.5", &[CLERK]).await.expect(204);
    assert_eq!(api.sql_i64("SELECT id FROM orders ORDER BY id").await, vec![1, 2, 3, 5]);
}

async fn writes_that_leave_the_filter_are_refused_whole(engine: Engine) {
    let api = shop(engine).await;
    let order = |id: i64, region: &str| {
        format!(r#"{{"id": {id}, "customer_id": 1, "region": "{region}", "is_public": false, "amount": 7}}"#)
    };
    let r = api.post_with("/orders", &[CLERK, RETURN], &order(10, "eu")).await;
    r.expect(201);
    // With a representation there is no `Location`, as in PostgREST.
    assert_eq!(r.header("location"), None);
    assert_eq!(
        r.json(),
        json!([{"id": 10, "customer_id": 1, "owner_id": null, "region": "eu", "is_public": false, "amount": 7, "note": null}])
    );
    let e = api.post_with("/orders", &[CLERK], &order(11, "us")).await.expect_error(403, "42501");
    assert!(e["message"].as_str().unwrap().contains("row-level security"), "{e}");
    // One row outside the filter undoes the whole request.
    let both = format!("[{}, {}]", order(12, "eu"), order(13, "us"));
    api.post_with("/orders", &[CLERK], &both).await.expect_error(403, "42501");
    api.post_with("/orders", &[CLERK, RETURN], &both).await.expect_error(403, "42501");
    assert_eq!(api.count("orders WHERE id >= 11").await, 0);
    // PATCH may not move a row out of the filter.
    api.patch_with("/orders?id=in.(1,2)", &[CLERK], r#"{"region": "us"}"#).await.expect_error(403, "42501");
    api.patch_with("/orders?id=eq.1", &[CLERK, RETURN], r#"{"region": "us"}"#).await.expect_error(403, "42501");
    assert_eq!(api.count("orders WHERE region = 'eu'").await, 4);
    // A table with POST only and no filter takes rows as before.
    let r = api.post_with("/tags", &[CLERK, HEADERS_ONLY], r#"{"id": 3, "order_id": 1, "label": "new"}"#).await;
    r.expect(201);
    // No `Location` for a role that may only insert, even when asked for
    // it: the key would tell it more than its rules allow.
    assert_eq!(r.header("location"), None);
    assert_eq!(api.count("tags").await, 3);
}

async fn put_and_upserts_stay_inside_the_filter(engine: Engine) {
    let api = shop(engine).await;
    let row = |id: i64, region: &str, amount: i64| {
        format!(r#"{{"id": {id}, "customer_id": 1, "region": "{region}", "is_public": true, "amount": {amount}}}"#)
    };
    // A new row and a replaced one, inside the filter.
    api.put_with("/orders?id=eq.20", &[CLERK], &row(20, "eu", 1)).await.expect(204);
    let r = api.put_with("/orders?id=eq.1", &[CLERK, RETURN], &row(1, "eu", 101)).await;
    r.expect(200);
    assert_eq!(r.json()[0]["amount"], 101);
    // Replacing a row outside the filter, or writing one outside it.
    api.put_with("/orders?id=eq.3", &[CLERK], &row(3, "eu", 1)).await.expect_error(403, "42501");
    api.put_with("/orders?id=eq.2", &[CLERK], &row(2, "us", 1)).await.expect_error(403, "42501");
    api.put_with("/orders?id=eq.21", &[CLERK], &row(21, "us", 1)).await.expect_error(403, "42501");
    assert_eq!(
        api.sql_text("SELECT region FROM orders WHERE id IN (2, 3) ORDER BY id").await,
        [Some("eu".into()), Some("us".into())]
    );
    assert_eq!(api.sql_i64("SELECT amount FROM orders WHERE id IN (2, 3) ORDER BY id").await, vec![200, 300]);
    assert_eq!(api.count("orders WHERE id = 21").await, 0);
    // An upsert may not take over a row outside the filter.
    let merge = [CLERK, ("prefer", "resolution=merge-duplicates")];
    api.post_with("/orders?on_conflict=id", &merge, &row(5, "eu", 1)).await.expect_error(403, "42501");
    assert_eq!(api.sql_text("SELECT region FROM orders WHERE id = 5").await, [Some("us".into())]);
    let r = api.post_with("/orders?on_conflict=id", &[merge[0], merge[1], RETURN], &row(4, "eu", 404)).await;
    r.expect(200);
    assert_eq!(r.json()[0]["amount"], 404);
    assert_eq!(api.sql_i64("SELECT cost FROM orders WHERE id = 4").await, vec![40], "a hidden column is kept");
}

async fn functions_need_a_rule_naming_them(engine: Engine) {
    let api = shop(engine).await;
    let functions = match engine {
        Engine::Postgres => [
            "CREATE FUNCTION order_total() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT SUM(amount) FROM orders $$",
            "CREATE FUNCTION audit_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT COUNT(*) FROM audit $$",
        ],
        Engine::MySql => [
            "CREATE FUNCTION order_total() RETURNS BIGINT READS SQL DATA RETURN (SELECT SUM(amount) FROM orders)",
            "CREATE FUNCTION audit_count() RETURNS BIGINT READS SQL DATA RETURN (SELECT COUNT(*) FROM audit)",
        ],
        // SQLite has no stored functions: every call is a missing one.
        Engine::Sqlite => {
            api.post_with("/rpc/order_total", &[CLERK], "{}").await.expect_error(404, "PGRST202");
            return;
        }
    };
    for f in functions {
        api.db.execute(f).await;
    }
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    // The clerk may POST order_* and nothing else; the result is the
    // function's own (not row-filtered: every region's orders count).
    let r = api.post_with("/rpc/order_total", &[CLERK], "{}").await;
    r.expect(200);
    assert_eq!(r.json().to_string().trim_matches('"'), "1500");
    let e = api.get_with("/rpc/order_total", &[CLERK]).await.expect_error(403, "42501");
    assert_eq!(e["message"], "permission denied for function order_total");
    api.post_with("/rpc/audit_count", &[CLERK], "{}").await.expect_error(404, "PGRST202");
    let e = api.post_with("/rpc/audit_coun", &[CLERK], "{}").await.expect_error(404, "PGRST202");
    assert!(!e.to_string().contains("audit_count"), "a hidden function is hinted: {e}");
    // The reader may GET (and HEAD) every function, and not POST.
    api.get_with("/rpc/audit_count", &[READER]).await.expect(200);
    assert_eq!(api.send("HEAD", "/rpc/audit_count", &[READER], "").await.status, 200);
    api.post_with("/rpc/audit_count", &[READER], "{}").await.expect_error(403, "42501");
    // OPTIONS and the document say the same.
    let allow = api.send("OPTIONS", "/rpc/order_total", &[CLERK], "").await;
    assert_eq!(allow.header("allow"), Some("OPTIONS,POST"));
    let doc = api.get_with("/", &[CLERK]).await.json();
    let rpc = &doc["paths"]["/rpc/order_total"];
    assert!(rpc.get("post").is_some() && rpc.get("get").is_none(), "{rpc}");
    assert!(doc["paths"].get("/rpc/audit_count").is_none());
    if engine != Engine::Postgres {
        return;
    }
    // Rows of a table type: not row-filtered, but shown with the table's
    // visible columns, and embeds from them follow the embedded rules.
    let f = "CREATE FUNCTION order_rows() RETURNS SETOF orders LANGUAGE sql STABLE AS $$ SELECT * FROM orders $$";
    api.db.execute(f).await;
    dbapi_runtime::server::reload_schema(&api.state).await.unwrap();
    let r = api.post_with("/rpc/order_rows?order=id", &[CLERK], "{}").await;
    r.expect(200);
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4, 5]);
    assert!(!keys(&r.json()).contains(&"cost".to_string()));
    api.post_with("/rpc/order_rows?select=id,cost", &[CLERK], "{}").await.expect_error(400, "42703");
    api.post_with("/rpc/order_rows?select=id,tags(id)", &[CLERK], "{}").await.expect_error(400, "PGRST200");
    api.post_with("/rpc/order_rows?select=id,customers(email)", &[CLERK], "{}").await.expect_error(400, "42703");
    let r = api.post_with("/rpc/order_rows?select=id,customers(name)&id=eq.3", &[CLERK], "{}").await;
    assert_eq!(r.json(), json!([{"id": 3, "customers": {"name": "Bob"}}]));
}

/// Tokens arrive with the JWT work; until then the claims are given to the
/// planner directly, and the read runs on the real database.
async fn claims_fill_row_filters_as_bound_values(engine: Engine) {
    let api = shop(engine).await;
    let read_as = |claims: serde_json::Value| {
        let identity = Identity { role: Some("owner".into()), claims: Arc::new(claims), ..Identity::open() };
        let scope = api.state.scope(&identity);
        let api = &api;
        async move {
            let query = dbapi_runtime::grammar::parse_query("order=id").unwrap();
            let mut plan = plan_read(
                &scope.schema,
                scope.schema.default_schema(),
                "orders",
                &query,
                Page { offset: 0, limit: None },
            )
            .unwrap();
            scope.restrict(&mut plan, Some(Verb::Get)).unwrap();
            let statement = render_read(&plan, scope.schema.engine, false);
            let output = api.state.db.fetch_read(&statement).await.unwrap();
            ids(&serde_json::from_str(&output.body).unwrap())
        }
    };
    assert_eq!(read_as(json!({"sub": "u2"})).await, vec![1, 2, 3, 5]);
    assert_eq!(read_as(json!({"sub": "u3", "role": "x"})).await, vec![1, 3, 4]);
    // Missing, null and structured claims match nothing; public rows stay.
    for claims in [json!({}), json!({"sub": null}), json!({"sub": ["u2"]}), json!({"sub": {"a": "u2"}})] {
        assert_eq!(read_as(claims.clone()).await, vec![1, 3], "{claims}");
    }
    // A claim written as grammar is one value, never more filter.
    for hostile in ["u9,is_public.is.false", "u9),or(id.gt.0", "u2' OR '1'='1", "${claims.sub}"] {
        assert_eq!(read_as(json!({ "sub": hostile })).await, vec![1, 3], "{hostile}");
    }
    // A number is used as its text.
    assert_eq!(read_as(json!({"sub": 7})).await, vec![1, 3]);
    // The open API (no role) has no filter.
    let open = dbapi_runtime::plan::access::Scope::open(api.state.schema(), Default::default());
    let query = dbapi_runtime::grammar::parse_query("").unwrap();
    let mut plan =
        plan_read(&open.schema, open.schema.default_schema(), "orders", &query, Page { offset: 0, limit: None })
            .unwrap();
    open.restrict(&mut plan, Some(Verb::Get)).unwrap();
    assert!(plan.conditions.is_empty());
}

const SECRET: &str = "a-roles-test-secret-of-at-least-32-bytes";

/// The same filter over HTTP, with the claims of real signed tokens.
async fn claims_from_tokens_fill_row_filters(engine: Engine) {
    let mut config = support::roles::config();
    config.auth = Some(dbapi_crds::config::AuthSettings {
        jwt: Some(dbapi_crds::config::JwtSettings {
            secret: Some(SECRET.into()),
            role_claim: "role".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let api = support::api::Api::with_sql(engine, support::roles::SQL, config).await;
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
    let read = |claims: serde_json::Value| {
        let mut claims = claims;
        claims["role"] = json!("owner");
        claims["exp"] = json!(exp);
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let api = &api;
        async move {
            let r = api.get_with("/orders?order=id", &[("authorization", &format!("Bearer {token}"))]).await;
            r.expect(200);
            ids(&r.json())
        }
    };
    assert_eq!(read(json!({"sub": "u2"})).await, vec![1, 2, 3, 5]);
    assert_eq!(read(json!({"sub": "u3"})).await, vec![1, 3, 4]);
    assert_eq!(read(json!({})).await, vec![1, 3]);
    for hostile in ["u9,is_public.is.false", "u9),or(id.gt.0", "u2' OR '1'='1"] {
        assert_eq!(read(json!({ "sub": hostile })).await, vec![1, 3], "{hostile}");
    }
    // A placeholder in the request's own URL is a literal value: only the
    // configuration's filters name claims.
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let claims = json!({"sub": "u2", "role": "owner", "exp": exp});
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let r = api.get_with("/orders?owner_id=eq.${claims.sub}", &[("authorization", &format!("Bearer {token}"))]).await;
    r.expect(200);
    assert_eq!(r.json(), json!([]));
    // The caller's own rows are its to read, and only those.
    let r = api.get_with("/orders?select=id,owner_id&is_public=is.false", &[support::roles::OWNER]).await;
    assert_eq!(r.json(), json!([]));
}

/// `Location` carries the new row's primary key, so a role that may read
/// the table but not its key column gets none (a role sees, and so writes,
/// only the columns it may read: the key comes from the database).
async fn location_names_a_key_only_the_role_may_read(engine: Engine) {
    let id = match engine {
        Engine::Postgres => "id SERIAL PRIMARY KEY",
        Engine::MySql => "id INTEGER AUTO_INCREMENT PRIMARY KEY",
        Engine::Sqlite => "id INTEGER PRIMARY KEY",
    };
    let sql = format!("CREATE TABLE tickets ({id}, label VARCHAR(20));");
    let mut config = roles::config();
    let clerk = config.roles.iter_mut().find(|r| r.name == "clerk").unwrap();
    clerk.rules.push(dbapi_crds::config::RoleRule {
        tables: vec!["tickets".into()],
        verbs: vec!["GET".into(), "POST".into()],
        columns: vec!["label".into()],
        ..Default::default()
    });
    let reader_writer = dbapi_crds::config::RoleRule {
        tables: vec!["tickets".into()],
        verbs: vec!["GET".into(), "POST".into()],
        ..Default::default()
    };
    config.roles.iter_mut().find(|r| r.name == "writer").unwrap().rules.push(reader_writer);
    let api = Api::with_sql(engine, &sql, config).await;
    let r = api.post_with("/tickets", &[CLERK, HEADERS_ONLY], r#"{"label": "quiet"}"#).await;
    r.expect(201);
    assert_eq!(r.header("location"), None);
    // A role that reads every column is told where its row is.
    let r = api.post_with("/tickets", &[WRITER, HEADERS_ONLY], r#"{"label": "loud"}"#).await;
    r.expect(201);
    assert_eq!(r.header("location"), Some("/tickets?id=eq.2"));
    // PostgREST sends `Location` only for return=headers-only.
    let r = api.post_with("/tickets", &[WRITER], r#"{"label": "plain"}"#).await;
    assert_eq!(r.expect(201).header("location"), None);
    assert_eq!(api.count("tickets").await, 3);
}

/// A table without a primary key is checked against the role's row filter
/// by its row identity (PostgreSQL's ctid, SQLite's rowid); MySQL has
/// none, so such writes are refused there.
async fn rows_without_a_key_are_checked_by_their_identity(engine: Engine) {
    let config: dbapi_crds::config::RuntimeConfig = serde_yaml::from_str(
        "auth: {anonymousRole: eu}
roles:
  - {name: eu, rules: [{tables: [notes], verbs: [GET, POST, PATCH], rowFilter: region=eq.eu}]}",
    )
    .unwrap();
    let sql =
        "CREATE TABLE notes (region VARCHAR(5), body VARCHAR(20)); INSERT INTO notes VALUES ('eu', 'a'), ('us', 'b');";
    let api = Api::with_sql(engine, sql, config).await;
    let r = api.post_with("/notes", &[], r#"{"region": "eu", "body": "c"}"#).await;
    if engine == Engine::MySql {
        r.expect_error(403, "42501");
        // Writing freely but reading through a filter: the rows a write
        // gives back could not be checked against it, so no representation
        // (and nothing written); without one the write goes through.
        let config: dbapi_crds::config::RuntimeConfig = serde_yaml::from_str(
            "auth: {anonymousRole: eu}
roles:
  - {name: eu, rules: [{tables: [notes], verbs: [POST]}, {tables: [notes], verbs: [GET], rowFilter: region=eq.eu}]}",
        )
        .unwrap();
        let api = Api::with_sql(engine, sql, config).await;
        let e =
            api.post_with("/notes", &[RETURN], r#"{"region": "eu", "body": "c"}"#).await.expect_error(400, "DBAPI103");
        assert!(e["details"].as_str().unwrap_or("").contains("row filter"), "{e}");
        assert_eq!(api.count("notes").await, 2);
        api.post_with("/notes", &[], r#"{"region": "eu", "body": "c"}"#).await.expect(201);
        assert_eq!(api.count("notes").await, 3);
        return;
    }
    r.expect(201);
    api.post_with("/notes", &[], r#"{"region": "us", "body": "d"}"#).await.expect_error(403, "42501");
    api.patch_with("/notes?body=eq.a", &[], r#"{"region": "us"}"#).await.expect_error(403, "42501");
    let r = api.patch_with("/notes?body=eq.a", &[RETURN], r#"{"body": "a2"}"#).await;
    assert_eq!(r.expect(200).json(), json!([{"region": "eu", "body": "a2"}]));
    assert_eq!(api.count("notes").await, 3);
    assert_eq!(api.count("notes WHERE region = 'us'").await, 1);
}

on_every_engine!(rows_without_a_key_are_checked_by_their_identity);

/// The filter holds for the row the database wrote, defaults filled in,
/// not for the body; a refused insert keeps nothing, the others are
/// located (on PostgreSQL the insert checks itself, in one statement).
async fn rows_are_checked_as_written_with_their_defaults(engine: Engine) {
    let config: dbapi_crds::config::RuntimeConfig = serde_yaml::from_str(
        "auth: {anonymousRole: eu}
roles:
  - {name: eu, rules: [{tables: [tickets], verbs: [GET, POST], rowFilter: region=eq.eu}]}",
    )
    .unwrap();
    let sql = "CREATE TABLE tickets (id INTEGER PRIMARY KEY, region VARCHAR(5) DEFAULT 'us', label VARCHAR(20));";
    let api = Api::with_sql(engine, sql, config).await;
    let e =
        api.post_with("/tickets", &[], r#"{"id": 1, "label": "left to the default"}"#).await.expect_error(403, "42501");
    assert!(e["details"].as_str().unwrap().contains("outside the caller's row filter"), "{e}");
    let both = r#"[{"id": 2, "region": "eu"}, {"id": 3}]"#;
    api.post_with("/tickets?columns=id,region", &[("prefer", "missing=default")], both)
        .await
        .expect_error(403, "42501");
    assert_eq!(api.count("tickets").await, 0);
    let r = api.post_with("/tickets", &[HEADERS_ONLY], r#"{"id": 4, "region": "eu"}"#).await;
    r.expect(201);
    assert_eq!(r.header("location"), Some("/tickets?id=eq.4"));
    let r = api
        .post_with(
            "/tickets",
            &[("prefer", "missing=default")],
            r#"[{"id": 5, "region": "eu"}, {"id": 6, "region": "eu"}]"#,
        )
        .await;
    r.expect(201);
    assert_eq!(api.sql_i64("SELECT id FROM tickets ORDER BY id").await, vec![4, 5, 6]);
}

/// A view's INSTEAD OF trigger decides what an insert gives back: a row
/// it returns is checked against the filter like a table's; rows it does
/// not return cannot be checked, so the insert is refused whole.
#[tokio::test]
async fn inserts_through_trigger_views_are_checked_or_refused() {
    let config: dbapi_crds::config::RuntimeConfig = serde_yaml::from_str(
        "auth: {anonymousRole: eu}
roles:
  - {name: eu, rules: [{tables: [returning_view, silent_view], verbs: [GET, POST], rowFilter: region=eq.eu}]}",
    )
    .unwrap();
    let sql = r#"
CREATE TABLE tickets (id integer PRIMARY KEY, region text NOT NULL, label text);
CREATE VIEW returning_view AS SELECT id, region, label FROM tickets;
CREATE VIEW silent_view AS SELECT id, region, label FROM tickets;
CREATE FUNCTION write_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tickets VALUES (NEW.id, NEW.region, NEW.label);
    IF TG_TABLE_NAME = 'silent_view' THEN RETURN NULL; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER write_ticket INSTEAD OF INSERT ON returning_view FOR EACH ROW EXECUTE FUNCTION write_ticket();
CREATE TRIGGER write_ticket INSTEAD OF INSERT ON silent_view FOR EACH ROW EXECUTE FUNCTION write_ticket();
"#;
    let api = Api::with_sql(Engine::Postgres, sql, config).await;
    api.post_with("/returning_view", &[], r#"{"id": 1, "region": "eu"}"#).await.expect(201);
    api.post_with("/returning_view", &[], r#"{"id": 2, "region": "us"}"#).await.expect_error(403, "42501");
    let e = api.post_with("/silent_view", &[], r#"{"id": 3, "region": "us"}"#).await.expect_error(403, "42501");
    assert!(e["hint"].as_str().unwrap().contains("RETURN NEW"), "{e}");
    api.post_with("/silent_view", &[], r#"{"id": 4, "region": "eu"}"#).await.expect_error(403, "42501");
    assert_eq!(api.sql_i64("SELECT id FROM tickets ORDER BY id").await, vec![1]);
}
