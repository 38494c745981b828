//! The response cache and HTTP validators, in process on every engine
//! (the cache without Redis: this process's own): `ETag` and 304 with and
//! without a cache, hits that never reach the database, writes through the
//! API (embedded tables included) making the next read fresh, per-table
//! TTLs and `Cache-Control`, and one role never served another's answer.
//! Sharing through Redis, Redis outages and the change feed run on the
//! built binary in `cache_shared.rs`.

mod support;

use dbapi_crds::config::{CacheSettings, RuntimeConfig, TableCacheRule};
use dbapi_crds::keys::sha256_hex;
use support::Engine;
use support::api::{Api, Response};

const SQL: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, region VARCHAR(10) NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount INTEGER NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY, what VARCHAR(50));
INSERT INTO customers VALUES (1, 'Ann', 'eu'), (2, 'Bob', 'us');
INSERT INTO orders VALUES (10, 1, 100), (11, 2, 200);
INSERT INTO audit VALUES (1, 'created');
";

fn cached(tables: &[(&str, TableCacheRule)]) -> RuntimeConfig {
    let mut settings = CacheSettings { default_ttl_seconds: 60, ..CacheSettings::default() };
    settings.tables = tables.iter().map(|(glob, rule)| (glob.to_string(), *rule)).collect();
    RuntimeConfig { cache: Some(settings), ..RuntimeConfig::default() }
}

fn cache_status(r: &Response) -> Option<&str> {
    r.header("cache-status")
}

fn etag(r: &Response) -> String {
    r.header("etag").expect("an ETag on every read").to_string()
}

/// Without a cache the `ETag` is the body's digest: a matching
/// `If-None-Match` gets 304 (the query still runs), a changed row a new tag.
async fn validators_without_a_cache(engine: Engine) {
    let api = Api::with_sql(engine, SQL, RuntimeConfig::default()).await;
    let first = api.get("/customers?order=id").await;
    first.expect(200);
    let tag = etag(&first);
    assert!(tag.starts_with('"') && tag.ends_with('"'), "a strong tag: {tag}");
    assert_eq!((first.header("cache-control"), cache_status(&first)), (None, None));
    let again = api.get_with("/customers?order=id", &[("if-none-match", &tag)]).await;
    again.expect(304);
    assert_eq!(again.body, "");
    assert_eq!(etag(&again), tag);
    let weak = api.get_with("/customers?order=id", &[("if-none-match", &format!("W/{tag}, \"x\""))]).await;
    weak.expect(304);
    api.db.execute("UPDATE customers SET name = 'Anne' WHERE id = 1").await;
    let changed = api.get_with("/customers?order=id", &[("if-none-match", &tag)]).await;
    changed.expect(200);
    assert_ne!(etag(&changed), tag);
    assert!(changed.body.contains("Anne"));
}

/// A hit never reaches the database: a row changed behind the API's back
/// (no change feed here) is not seen until the entry goes; a write through
/// the API is seen at once.
async fn hits_skip_the_database_and_api_writes_refresh_them(engine: Engine) {
    let api = Api::with_sql(engine, SQL, cached(&[])).await;
    let miss = api.get("/customers?order=id").await;
    miss.expect(200);
    assert_eq!(cache_status(&miss), Some("dbapi; fwd=miss"));
    assert_eq!(miss.header("cache-control"), Some("public, max-age=0"));
    api.db.execute("UPDATE customers SET name = 'Behind' WHERE id = 1").await;
    let hit = api.get("/customers?order=id").await;
    hit.expect(200);
    assert_eq!(cache_status(&hit), Some("dbapi; hit"));
    assert_eq!(hit.body, miss.body, "served from the cache");
    assert!(hit.header("age").is_some());
    assert_eq!(etag(&hit), etag(&miss));
    assert_eq!(hit.header("content-range"), miss.header("content-range"));
    // The length the answer keeps is the body's, on the miss and the hit.
    for answer in [&miss, &hit] {
        assert_eq!(answer.header("content-length"), Some(answer.body.len().to_string().as_str()));
    }
    // 304 for the cached tag, without a query (the row changed underneath).
    let not_modified = api.get_with("/customers?order=id", &[("if-none-match", &etag(&miss))]).await;
    not_modified.expect(304);
    assert_eq!(cache_status(&not_modified), Some("dbapi; hit"));

    // A write through the API: the next read is fresh.
    api.patch_with("/customers?id=eq.2", &[], r#"{"name": "Bea"}"#).await.expect(204);
    let fresh = api.get_with("/customers?order=id", &[("if-none-match", &etag(&miss))]).await;
    fresh.expect(200);
    assert_eq!(cache_status(&fresh), Some("dbapi; fwd=miss"));
    assert!(fresh.body.contains("Behind") && fresh.body.contains("Bea"), "{}", fresh.body);
    assert_ne!(etag(&fresh), etag(&miss));
    // A failed write changes nothing and keeps the entry.
    api.post_with("/customers", &[], r#"{"id": 1, "name": "Dup", "region": "eu"}"#).await.expect(409);
    assert_eq!(cache_status(&api.get("/customers?order=id").await), Some("dbapi; hit"));
}

/// An answer that embeds a table is stale when that table is written.
async fn a_write_to_an_embedded_table_refreshes_the_embedding_read(engine: Engine) {
    let api = Api::with_sql(engine, SQL, cached(&[])).await;
    let path = "/orders?select=id,customers(name)&order=id";
    assert_eq!(cache_status(&api.get(path).await), Some("dbapi; fwd=miss"));
    assert_eq!(cache_status(&api.get(path).await), Some("dbapi; hit"));
    // Another table's write leaves it alone.
    api.post_with("/audit", &[], r#"{"id": 2, "what": "x"}"#).await.expect(201);
    assert_eq!(cache_status(&api.get(path).await), Some("dbapi; hit"));
    api.patch_with("/customers?id=eq.1", &[], r#"{"name": "Ana"}"#).await.expect(204);
    let fresh = api.get(path).await;
    assert_eq!(cache_status(&fresh), Some("dbapi; fwd=miss"));
    assert!(fresh.body.contains("Ana"), "{}", fresh.body);
    // Requests that differ in what changes the answer are kept apart.
    // CSV is streamed from the database, never kept.
    let csv = api.get_with(path, &[("accept", "text/csv")]).await;
    assert_eq!(cache_status(&csv), Some("dbapi; fwd=bypass"));
    assert_eq!(cache_status(&api.get_with(path, &[("accept", "text/csv")]).await), Some("dbapi; fwd=bypass"));
    let counted = api.get_with(path, &[("prefer", "count=exact")]).await;
    assert_eq!(cache_status(&counted), Some("dbapi; fwd=miss"));
    assert_eq!(counted.header("content-range"), Some("0-1/2"));
}

/// Per-table rules: a TTL of 0 never caches; `maxAgeSeconds` and
/// `staleWhileRevalidateSeconds` reach `Cache-Control`.
async fn table_rules_set_ttl_and_cache_control(engine: Engine) {
    let never = TableCacheRule { ttl_seconds: Some(0), ..TableCacheRule::default() };
    let shared =
        TableCacheRule { max_age_seconds: Some(30), stale_while_revalidate_seconds: Some(10), ..Default::default() };
    let api = Api::with_sql(engine, SQL, cached(&[("aud*", never), ("customers", shared)])).await;
    for _ in 0..2 {
        let r = api.get("/audit").await;
        r.expect(200);
        assert_eq!(cache_status(&r), Some("dbapi; fwd=miss"));
    }
    let r = api.get("/customers").await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=30, stale-while-revalidate=10"));
    let vary = r.header("vary").unwrap();
    for name in ["accept", "accept-profile", "prefer", "range", "authorization", "apikey"] {
        assert!(vary.split(", ").any(|v| v == name), "{name} in {vary}");
    }
}

/// One role's answer is never served to another, though the URL is the
/// same; the same role's is, and answers to keyed callers are private.
async fn roles_never_share_answers(engine: Engine) {
    let mut config = cached(&[]);
    let yaml = "
roles:
  - {name: europe, rules: [{tables: [customers], verbs: [GET], rowFilter: region=eq.eu}]}
  - {name: everyone, rules: [{tables: [customers], verbs: [GET]}]}
auth: {anonymousRole: everyone}
";
    let access: RuntimeConfig = serde_yaml::from_str(yaml).unwrap();
    config.roles = access.roles;
    config.auth = access.auth;
    for (name, role) in [("eu1", "europe"), ("eu2", "europe")] {
        config.api_keys.push(dbapi_crds::config::ApiKey {
            name: name.into(),
            role: role.into(),
            hashes: vec![dbapi_crds::config::KeyHash { sha256: sha256_hex(&format!("dbapi_{name}")), not_after: None }],
            ..Default::default()
        });
    }
    let api = Api::with_sql(engine, SQL, config).await;
    let everyone = api.get("/customers?order=id").await;
    assert_eq!(cache_status(&everyone), Some("dbapi; fwd=miss"));
    assert!(everyone.body.contains("Bob"));
    assert_eq!(everyone.header("cache-control"), Some("public, max-age=0"));
    let europe = api.get_with("/customers?order=id", &[("apikey", "dbapi_eu1")]).await;
    assert_eq!(cache_status(&europe), Some("dbapi; fwd=miss"), "not the anonymous role's answer");
    assert!(!europe.body.contains("Bob"), "{}", europe.body);
    assert_eq!(europe.header("cache-control"), Some("private, max-age=0"));
    assert_ne!(etag(&europe), etag(&everyone));
    // Another key of the same role shares the role's answer.
    let same_role = api.get_with("/customers?order=id", &[("apikey", "dbapi_eu2")]).await;
    assert_eq!(cache_status(&same_role), Some("dbapi; hit"));
    assert_eq!(same_role.body, europe.body);
    // A wrong key is refused, never served from the cache.
    api.get_with("/customers?order=id", &[("apikey", "dbapi_nobody")]).await.expect(401);
}

/// Errors and refusals are not cached, and carry no validators.
async fn errors_are_not_cached(engine: Engine) {
    let api = Api::with_sql(engine, SQL, cached(&[])).await;
    for _ in 0..2 {
        let r = api.get("/customers?nope=eq.1").await;
        r.expect(400);
        assert_eq!((r.header("etag"), r.header("cache-status")), (None, None));
    }
    let past_the_end = api.get_with("/customers?offset=10", &[("prefer", "count=exact")]).await;
    past_the_end.expect(416);
    assert_eq!(past_the_end.header("etag"), None);
}

on_every_engine!(
    validators_without_a_cache,
    hits_skip_the_database_and_api_writes_refresh_them,
    a_write_to_an_embedded_table_refreshes_the_embedding_read,
    table_rules_set_ttl_and_cache_control,
    roles_never_share_answers,
    errors_are_not_cached,
);

/// A write through an updatable view changes the table under it: reads of
/// that table are fresh at once too.
#[tokio::test]
async fn a_write_through_a_view_refreshes_its_tables_reads() {
    let sql = format!("{SQL} CREATE VIEW eu_customers AS SELECT id, name, region FROM customers WHERE region = 'eu';");
    let api = Api::with_sql(Engine::Postgres, &sql, cached(&[])).await;
    assert_eq!(cache_status(&api.get("/customers?order=id").await), Some("dbapi; fwd=miss"));
    assert_eq!(cache_status(&api.get("/customers?order=id").await), Some("dbapi; hit"));
    api.patch_with("/eu_customers?id=eq.1", &[], r#"{"name": "Annie"}"#).await.expect(204);
    let fresh = api.get("/customers?order=id").await;
    assert_eq!(cache_status(&fresh), Some("dbapi; fwd=miss"));
    assert!(fresh.body.contains("Annie"), "{}", fresh.body);
}
