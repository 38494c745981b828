//! `Prefer: timezone`, as PostgREST's "Prefer header" page describes it:
//! timestamps with a zone are written in the requested zone, the
//! preference is echoed in `Preference-Applied`, and a zone the database
//! does not know is a 400.

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::json;
use support::Engine;
use support::api::Api;

const LA: [(&str, &str); 1] = [("Prefer", "timezone=America/Los_Angeles")];

#[tokio::test]
async fn postgres_writes_timestamptz_in_the_requested_zone() {
    let sql = "CREATE TABLE events (id int PRIMARY KEY, at timestamptz, local timestamp);
               INSERT INTO events VALUES (1, '2024-01-01 12:00:00+00', '2024-01-01 12:00:00');";
    let api = Api::with_sql(Engine::Postgres, sql, RuntimeConfig::default()).await;
    let r = api.get_with("/events?select=at,local", &LA).await;
    assert_eq!(r.expect(200).json(), json!([{"at": "2024-01-01T04:00:00-08:00", "local": "2024-01-01T12:00:00"}]));
    assert_eq!(r.header("preference-applied"), Some("timezone=America/Los_Angeles"));
    let r = api.get_with("/events?select=at", &[("Prefer", "timezone=Asia/Kolkata, count=exact")]).await;
    assert_eq!(r.expect(200).json(), json!([{"at": "2024-01-01T17:30:00+05:30"}]));
    assert_eq!(r.header("preference-applied"), Some("count=exact, timezone=Asia/Kolkata"));
    // The zone stays with the request: the next read is in the server's.
    let plain = api.get("/events?select=at").await;
    assert!(plain.header("preference-applied").is_none());
    assert_ne!(plain.json()[0]["at"], "2024-01-01T04:00:00-08:00");
    let e = api.get_with("/events", &[("Prefer", "timezone=Mars/Olympus_Mons")]).await.expect_error(400, "22023");
    assert!(e["message"].as_str().unwrap().contains("Mars/Olympus_Mons"), "{e}");
}

#[tokio::test]
async fn mysql_writes_timestamp_columns_in_the_requested_zone() {
    let sql = "SET time_zone = '+00:00';
               CREATE TABLE events (id int PRIMARY KEY, at timestamp NULL, local datetime);
               INSERT INTO events VALUES (1, '2024-01-01 12:00:00', '2024-01-01 12:00:00');";
    let api = Api::with_sql(Engine::MySql, sql, RuntimeConfig::default()).await;
    let r = api.get_with("/events?select=at,local", &[("Prefer", "timezone=+09:00")]).await;
    assert_eq!(r.expect(200).json(), json!([{"at": "2024-01-01T21:00:00+09:00", "local": "2024-01-01T12:00:00"}]));
    assert_eq!(r.header("preference-applied"), Some("timezone=+09:00"));
    let r = api.get_with("/events?select=at", &[("Prefer", "timezone=-03:30")]).await;
    assert_eq!(r.expect(200).json(), json!([{"at": "2024-01-01T08:30:00-03:30"}]));
    // Zone names need the server's time zone tables.
    let known = api.sql_text("SELECT CONVERT_TZ('2024-01-01 12:00:00', '+00:00', 'America/Los_Angeles')").await;
    let r = api.get_with("/events?select=at", &LA).await;
    if known[0].is_some() {
        assert_eq!(r.expect(200).json(), json!([{"at": "2024-01-01T04:00:00-08:00"}]));
    } else {
        let e = r.expect_error(400, "22023");
        assert!(e["hint"].as_str().unwrap().contains("mysql_tzinfo_to_sql"), "{e}");
    }
    api.get_with("/events", &[("Prefer", "timezone=Mars/Olympus_Mons")]).await.expect_error(400, "22023");
    // Without the preference: UTC, as before.
    assert_eq!(api.get("/events?select=at").await.json(), json!([{"at": "2024-01-01T12:00:00"}]));
}

#[tokio::test]
async fn sqlite_refuses_a_time_zone_naming_the_engine() {
    let sql = "CREATE TABLE events (id int PRIMARY KEY, at timestamptz);";
    let api = Api::with_sql(Engine::Sqlite, sql, RuntimeConfig::default()).await;
    let e = api.get_with("/events", &LA).await.expect_error(400, "DBAPI100");
    assert!(e["message"].as_str().unwrap().contains("SQLite"), "{e}");
}
