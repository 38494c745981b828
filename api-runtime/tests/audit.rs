//! The audit log: one JSON line per write and per refused request, with
//! who, from where, what and how many rows, and never a key, token, query
//! value or row value.

mod support;

use dbapi_crds::keys::sha256_hex;
use support::api::Api;
use support::{Engine, unique_name};

const SQL: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes VALUES (1, 'one');\n";

async fn writes_and_refusals_are_recorded(engine: Engine) {
    let dir = std::env::temp_dir().join(unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.log");
    let yaml = format!(
        "audit: {{path: '{}'}}\n\
         roles: [{{name: app, rules: [{{tables: [notes], verbs: [GET, POST, PATCH, DELETE]}}]}}, \
                 {{name: viewer, rules: [{{tables: [notes], verbs: [GET]}}]}}]\n\
         apiKeys: [{{name: writer, role: app, hashes: [{{sha256: {}}}], rateLimit: {{requestsPerMinute: 1, burst: 3}}}}, \
                   {{name: looker, role: viewer, hashes: [{{sha256: {}}}]}}]\n",
        path.display(),
        sha256_hex("dbapi_writer_key"),
        sha256_hex("dbapi_looker_key")
    );
    let api = Api::with_sql(engine, SQL, dbapi_crds::config::parse_runtime_config(&yaml).unwrap()).await;
    let key = [("apikey", "dbapi_writer_key")];
    let created = api.post_with("/notes", &key, r#"{"id":2,"body":"secret-body-value"}"#).await;
    created.expect(201);
    api.patch_with("/notes?id=eq.2", &key, r#"{"body":"other-secret"}"#).await.expect(204);
    api.get_with("/notes", &key).await.expect(200);
    api.delete_with("/notes?body=eq.query-secret", &key).await.expect(204);
    api.get_with("/notes", &key).await.expect_error(429, "DBAPI429");
    api.get_with("/notes", &[("apikey", "dbapi_guessed_key")]).await.expect_error(401, "DBAPI401");
    let looker = [("apikey", "dbapi_looker_key")];
    api.delete_with("/notes?id=eq.1", &looker).await.expect_error(403, "42501");

    let text = std::fs::read_to_string(&path).unwrap();
    for secret in ["dbapi_", "secret", sha256_hex("dbapi_writer_key").as_str()] {
        assert!(!text.contains(secret), "the audit log holds {secret:?}:\n{text}");
    }
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap(),
                l["resource"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
                l["rows"].as_u64(),
                l["principal"].as_str(),
                l["role"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "notes", 201, Some(1), Some("writer"), Some("app")),
            ("PATCH", "notes", 204, Some(1), Some("writer"), Some("app")),
            ("DELETE", "notes", 204, Some(0), Some("writer"), Some("app")),
            ("GET", "notes", 429, None, Some("writer"), Some("app")),
            ("GET", "notes", 401, None, None, None),
            ("DELETE", "notes", 403, None, Some("looker"), Some("viewer")),
        ]
    );
    for line in &lines {
        assert!(line["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{line}");
        assert_eq!(line["client_ip"], "0.0.0.0", "in-process requests have no peer: {line}");
    }
    assert_eq!(created.header("x-request-id"), lines[0]["request_id"].as_str());
    assert_ne!(lines[0]["request_id"], lines[1]["request_id"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

on_every_engine!(writes_and_refusals_are_recorded);

/// Every answer carries an `X-Request-Id`: the caller's when it is a plain
/// token, else a new one, unique per request.
async fn every_answer_carries_a_request_id(engine: Engine) {
    let api = Api::with_sql(engine, SQL, Default::default()).await;
    let ids: Vec<String> = [
        api.get("/notes").await,
        api.get("/no_such_table").await,
        api.post_with("/notes", &[], "not json").await,
        api.get_with("/notes", &[("x-request-id", "a b")]).await,
    ]
    .iter()
    .map(|r| r.header("x-request-id").expect("an id on every answer").to_string())
    .collect();
    for id in &ids {
        assert_eq!(id.len(), 36, "a UUID: {id}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let r = api.get_with("/notes", &[("x-request-id", "trace-4bf92f35.1")]).await;
    assert_eq!(r.header("x-request-id"), Some("trace-4bf92f35.1"), "the caller's id is kept");
}

on_every_engine!(every_answer_carries_a_request_id);
