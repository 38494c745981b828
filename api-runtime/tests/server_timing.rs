//! `Server-Timing` (`observability.serverTiming`): off by default; on, each
//! answer splits its time between the database and the runtime, on every
//! engine.

mod support;

use dbapi_crds::config::RuntimeConfig;
use support::Engine;
use support::api::Api;

const SQL: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR(20)); INSERT INTO items VALUES (1, 'a');";

/// The `name;dur=` metrics of a `Server-Timing` value, in milliseconds.
fn durations(value: &str) -> Vec<(String, f64)> {
    value
        .split(',')
        .map(|metric| {
            let mut parts = metric.trim().split(';');
            let name = parts.next().unwrap().to_string();
            let dur = parts.find_map(|p| p.strip_prefix("dur=")).unwrap().parse().unwrap();
            (name, dur)
        })
        .collect()
}

async fn the_answer_says_where_its_time_went(engine: Engine) {
    let off = Api::with_sql(engine, SQL, RuntimeConfig::default()).await;
    assert_eq!(off.get("/items").await.header("server-timing"), None, "off by default");

    let mut config = RuntimeConfig::default();
    config.observability.server_timing = true;
    let api = Api::with_sql(engine, SQL, config).await;
    for path in ["/items?id=eq.1", "/items?select=id,label&order=id"] {
        let r = api.get(path).await;
        r.expect(200);
        let timing = durations(r.header("server-timing").expect("a Server-Timing header"));
        let names: Vec<&str> = timing.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["db", "app", "total"], "{timing:?}");
        let (db, app, total) = (timing[0].1, timing[1].1, timing[2].1);
        assert!(db > 0.0, "the read waited on the database: {timing:?}");
        assert!(app > 0.0 && total >= db, "{timing:?}");
        assert!((db + app - total).abs() < 0.01, "db and app add up to the total: {timing:?}");
    }
    // A write's statements count too; a refusal before the database none.
    let r = api.post_with("/items", &[("content-type", "application/json")], r#"{"id": 2, "label": "b"}"#).await;
    r.expect(201);
    assert!(durations(r.header("server-timing").unwrap())[0].1 > 0.0);
    let r = api.get("/nothing").await;
    assert_eq!(durations(r.header("server-timing").unwrap())[0].1, 0.0);
}

on_every_engine!(the_answer_says_where_its_time_went);
