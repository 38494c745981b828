//! Live schema reload: the new schema is read beside the old one and
//! swapped in; requests in flight are unaffected, a failed reload keeps the
//! old schema, and PostgreSQL's NOTIFY and SIGHUP trigger it.

mod support;

use std::time::{Duration, Instant};

use dbapi_crds::config::RuntimeConfig;
use dbapi_runtime::server::{reload_schema, spawn_schema_reloaders};
use support::Engine;
use support::api::Api;

on_every_engine!(a_reload_serves_new_tables_without_failing_requests_in_flight);

async fn a_reload_serves_new_tables_without_failing_requests_in_flight(engine: Engine) {
    let api = Api::fixture(engine).await;
    api.get("/gadgets").await.expect_error(404, "PGRST205");
    api.db.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name VARCHAR(50))").await;
    api.db.execute("INSERT INTO gadgets (id, name) VALUES (1, 'sprocket')").await;
    api.get("/gadgets").await.expect_error(404, "PGRST205");
    reload_schema(&api.state).await.unwrap();
    let r = api.get("/gadgets?select=id,name").await;
    r.expect(200);
    assert_eq!(r.json(), serde_json::json!([{"id": 1, "name": "sprocket"}]));
    assert!(api.get("/").await.json()["paths"]["/gadgets"].is_object(), "the OpenAPI document follows");

    // Reads keep succeeding while the schema is swapped again and again.
    let reads = async {
        for _ in 0..60 {
            api.get("/orders?select=id,customers(name)&limit=3").await.expect(200);
        }
    };
    let reloads = async {
        for _ in 0..15 {
            reload_schema(&api.state).await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(reads, reloads);
}

#[tokio::test]
async fn a_failed_reload_keeps_the_previous_schema() {
    let mut config = RuntimeConfig::default();
    config.database.schemas = vec!["public".into(), "other".into()];
    let api = Api::fixture_with(Engine::Postgres, config).await;
    api.db.execute("DROP SCHEMA other CASCADE").await;
    let err = reload_schema(&api.state).await.unwrap_err();
    assert!(err.to_string().contains("other"), "{err}");
    api.get("/orders?limit=1").await.expect(200);
    // The dropped table is still in the kept schema; the database's own
    // answer is a clear 404, not a failure of the server.
    api.get_with("/things", &[("accept-profile", "other")]).await.expect_error(404, "42P01");
}

#[tokio::test]
async fn notify_reloads_the_schema_on_postgresql() {
    let api = Api::fixture(Engine::Postgres).await;
    spawn_schema_reloaders(api.state.clone());
    // The listener starts in the background: wait until its LISTEN is in
    // place, so that exactly one NOTIFY is sent and no reload of an earlier
    // one can still be running when the next table appears.
    let deadline = Instant::now() + Duration::from_secs(20);
    let listening =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %'";
    while api.sql_i64(listening).await != [1] {
        assert!(Instant::now() < deadline, "the schema reload listener did not LISTEN");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.db.execute("CREATE TABLE gizmos (id integer PRIMARY KEY)").await;
    api.db.execute("NOTIFY dbapi, 'reload schema'").await;
    while api.get("/gizmos").await.status != 200 {
        assert!(Instant::now() < deadline, "NOTIFY did not reload the schema");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Other payloads are ignored. No reload is pending now, so the new
    // table stays unknown however slow the machine; one wrongly started by
    // the payload would show within the wait.
    api.db.execute("CREATE TABLE widgets (id integer PRIMARY KEY)").await;
    api.db.execute("NOTIFY dbapi, 'something else'").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.get("/widgets").await.expect_error(404, "PGRST205");
}
