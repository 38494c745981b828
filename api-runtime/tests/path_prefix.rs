//! `api.pathPrefix`: every API route (tables, `/rpc/…`, the OpenAPI
//! document and the docs page) lives under the prefix, as Supabase serves
//! PostgREST at `/rest/v1`, so `createClient(url, key)` works unchanged;
//! every other path is 404 in the JSON error shape.

mod support;

use dbapi_crds::config::{ApiSettings, RuntimeConfig};
use serde_json::json;
use support::Engine;
use support::api::Api;

on_every_engine!(prefixed_routes_answer_and_others_are_404, prefixed_writes_locate_rows_under_the_prefix);

const PREFIX: &str = "/rest/v1";

async fn prefixed(engine: Engine) -> Api {
    let config = RuntimeConfig {
        api: ApiSettings { path_prefix: Some(PREFIX.into()), ..ApiSettings::default() },
        ..RuntimeConfig::default()
    };
    Api::fixture_with(engine, config).await
}

async fn prefixed_routes_answer_and_others_are_404(engine: Engine) {
    let api = prefixed(engine).await;
    let expected = api.sql_i64("SELECT id FROM customers ORDER BY id LIMIT 2").await;
    let r = api.get("/rest/v1/customers?select=id&order=id&limit=2").await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), expected);

    // supabase-js sends its key both ways; with no auth configured they
    // are ignored.
    let r = api
        .get_with(
            "/rest/v1/customers?select=id&order=id&limit=2",
            &[("apikey", "any-anon-key"), ("authorization", "Bearer any-anon-key")],
        )
        .await;
    r.expect(200);
    assert_eq!(r.column_i64("id"), expected);

    // The prefix's root, with or without the slash, is the OpenAPI
    // document; its paths resolve against the prefix as its server.
    let doc = api.get(PREFIX).await;
    doc.expect(200);
    let doc = doc.json();
    assert_eq!(doc["servers"], json!([{"url": PREFIX}]));
    assert!(doc["paths"]["/customers"]["get"].is_object(), "paths stay relative to the server");
    assert_eq!(api.get("/rest/v1/").await.json(), doc);
    assert_eq!(api.get("/rest/v1/_/openapi.json").await.json(), doc);

    // The docs page loads the document from the prefixed path.
    let page = api.get("/rest/v1/_/docs/").await;
    page.expect(200);
    assert!(page.body.to_lowercase().contains("swagger"), "{}", &page.body[..page.body.len().min(300)]);
    let init = api.get("/rest/v1/_/docs/swagger-initializer.js").await;
    init.expect(200);
    assert!(init.body.contains("\"/rest/v1/_/openapi.json\""), "{}", init.body);
    let redirect = api.get("/rest/v1/_/docs").await;
    assert!(redirect.status.is_redirection(), "{:?}", redirect.status);
    assert_eq!(redirect.header("location"), Some("/rest/v1/_/docs/"));

    let allow = api.send("OPTIONS", "/rest/v1/customers", &[], "").await;
    allow.expect(200);
    assert!(allow.header("allow").is_some_and(|a| a.contains("POST")), "{:?}", allow.headers);
    api.get("/rest/v1/nope").await.expect_error(404, "PGRST205");

    // Functions are under the prefix too (SQLite has none: still a
    // function's 404, not a path's).
    let call = api.post_with("/rest/v1/rpc/add_them", &[], r#"{"a": 1, "b": 2}"#).await;
    match engine {
        Engine::Sqlite => {
            call.expect_error(404, "PGRST202");
        }
        _ => assert_eq!(call.expect(200).json(), json!(3)),
    }

    // Outside the prefix nothing is served, not even by a near miss.
    for path in [
        "/",
        "/customers",
        "/_/openapi.json",
        "/_/docs/",
        "/_/docs/swagger-initializer.js",
        "/rpc/add_them",
        "/rest/customers",
        "/rest/v1x/customers",
        "/rest/v1customers",
        "/REST/V1/customers",
    ] {
        let e = api.get(path).await.expect_error(404, "PGRST125");
        assert!(e["hint"].as_str().unwrap().contains("/rest/v1/{table}"), "{e}");
    }
    api.post_with("/customers", &[], r#"{"name": "x"}"#).await.expect_error(404, "PGRST125");
}

async fn prefixed_writes_locate_rows_under_the_prefix(engine: Engine) {
    let api = prefixed(engine).await;
    let r = api
        .post_with("/rest/v1/customers", &[("prefer", "return=headers-only")], r#"{"id": 9001, "name": "Prefixed"}"#)
        .await;
    r.expect(201);
    assert_eq!(r.header("location"), Some("/rest/v1/customers?id=eq.9001"));
    let again = api.get(r.header("location").unwrap()).await;
    assert_eq!(again.expect(200).column_i64("id"), [9001]);
    let r = api
        .patch_with("/rest/v1/customers?id=eq.9001", &[("prefer", "return=representation")], r#"{"city": "Oslo"}"#)
        .await;
    assert_eq!(r.expect(200).json()[0]["city"], "Oslo");
    api.delete_with("/rest/v1/customers?id=eq.9001", &[]).await.expect(204);
    assert_eq!(api.count("customers WHERE id = 9001").await, 0);
}

/// Without a prefix nothing changes: the document has no `servers` and
/// the docs page loads `/_/openapi.json`.
#[tokio::test]
async fn without_a_prefix_the_api_is_at_the_root() {
    let api = Api::fixture(Engine::Sqlite).await;
    let doc = api.get("/").await;
    assert!(doc.expect(200).json().get("servers").is_none(), "{}", doc.body);
    let init = api.get("/_/docs/swagger-initializer.js").await;
    assert!(init.body.contains("\"/_/openapi.json\""), "{}", init.body);
    assert_eq!(api.get("/_/docs").await.header("location"), Some("/_/docs/"));
    let r = api.post_with("/customers", &[("prefer", "return=headers-only")], r#"{"id": 9001, "name": "Root"}"#).await;
    assert_eq!(r.expect(201).header("location"), Some("/customers?id=eq.9001"));
    let e = api.get("/rest/v1/customers").await.expect_error(404, "PGRST125");
    assert!(e["hint"].as_str().unwrap().contains("at /{table}"), "{e}");
}
