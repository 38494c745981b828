//! Who is calling: API keys in `apikey`, `X-API-Key` or `Authorization:
//! Bearer`, checked by hash with `notAfter` and `expiresAt`; 401 with
//! `WWW-Authenticate` otherwise; `auth.anonymousRole` for calls without
//! credentials; and `dbapi-runtime keygen`'s entries accepted as printed.

mod support;

use dbapi_crds::config::{ApiKey, AuthSettings, KeyHash, RuntimeConfig};
use dbapi_crds::keys::sha256_hex;
use support::Engine;
use support::api::Api;

const SQL: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes VALUES (1, 'one');\n";

fn key(name: &str, text: &str) -> ApiKey {
    ApiKey {
        name: name.into(),
        role: "reader".into(),
        hashes: vec![KeyHash { sha256: sha256_hex(text), not_after: None }],
        ..ApiKey::default()
    }
}

fn keyed(keys: Vec<ApiKey>, anonymous_role: Option<&str>) -> RuntimeConfig {
    RuntimeConfig {
        api_keys: keys,
        auth: anonymous_role.map(|r| AuthSettings { anonymous_role: Some(r.into()), ..AuthSettings::default() }),
        ..RuntimeConfig::default()
    }
}

async fn keys_are_required_and_checked(engine: Engine) {
    let mut rotated = key("rotated", "dbapi_old");
    rotated.hashes[0].not_after = Some("2020-01-01T00:00:00Z".into());
    rotated.hashes.push(KeyHash { sha256: sha256_hex("dbapi_new"), not_after: None });
    let mut expired = key("expired", "dbapi_gone");
    expired.expires_at = Some("2021-06-01T00:00:00+02:00".into());
    let api = Api::with_sql(engine, SQL, keyed(vec![key("app", "dbapi_app"), rotated, expired], None)).await;

    let missing = api.get("/notes").await;
    let error = missing.expect_error(401, "PGRST302");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert!(error["hint"].as_str().unwrap().contains("apikey"), "{error}");

    for headers in [
        [("apikey", "dbapi_app")],
        [("x-api-key", "dbapi_app")],
        [("authorization", "Bearer dbapi_app")],
        [("authorization", "bearer dbapi_new")],
    ] {
        let ok = api.get_with("/notes", &headers).await;
        ok.expect(200);
        assert_eq!(ok.json(), serde_json::json!([{"id": 1, "body": "one"}]), "{headers:?}");
    }
    // supabase-js sends the same key twice; two different keys are refused.
    api.get_with("/notes", &[("apikey", "dbapi_app"), ("authorization", "Bearer dbapi_app")]).await.expect(200);
    api.get_with("/notes", &[("apikey", "dbapi_app"), ("authorization", "Bearer dbapi_new")])
        .await
        .expect_error(401, "DBAPI401");

    for (headers, message) in [
        (vec![("apikey", "dbapi_wrong")], "Invalid API key"),
        (vec![("apikey", "DBAPI_APP")], "Invalid API key"),
        (vec![("x-api-key", "")], "Invalid API key"),
        (vec![("apikey", "dbapi_old")], "The API key has expired"),
        (vec![("apikey", "dbapi_gone")], "The API key has expired"),
    ] {
        let refused = api.get_with("/notes", &headers).await;
        let error = refused.expect_error(401, "DBAPI401");
        assert_eq!(error["message"], message, "{headers:?}");
        assert!(refused.header("www-authenticate").unwrap().contains("invalid_token"));
        assert!(!refused.body.contains("dbapi_"), "the key is repeated: {}", refused.body);
    }
    // A credential that is not text is refused, not ignored.
    let unreadable = axum::http::HeaderValue::from_bytes("dbapi_é".as_bytes()).unwrap();
    for name in ["apikey", "authorization"] {
        let request = axum::http::Request::get("/notes").header(name, unreadable.clone());
        api.request(request.body(axum::body::Body::empty()).unwrap()).await.expect_error(401, "DBAPI401");
    }
    // Another scheme is not a credential of ours.
    api.get_with("/notes", &[("authorization", "Basic dXNlcjpwYXNz")]).await.expect_error(401, "PGRST302");
    // Writes are refused the same way, and nothing is written.
    api.post_with("/notes", &[("apikey", "dbapi_wrong")], r#"{"id":2,"body":"two"}"#).await.expect(401);
    assert_eq!(api.count("notes").await, 1);
    // A JWT-shaped bearer is a token, which this document does not accept.
    api.get_with("/notes", &[("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")])
        .await
        .expect_error(401, "PGRST301");
}

async fn anonymous_calls_take_the_anonymous_role(engine: Engine) {
    let api = Api::with_sql(engine, SQL, keyed(vec![key("app", "dbapi_app")], Some("web_anon"))).await;
    api.get("/notes").await.expect(200);
    api.get_with("/notes", &[("apikey", "dbapi_app")]).await.expect(200);
    // A wrong key is not downgraded to anonymous.
    api.get_with("/notes", &[("apikey", "dbapi_nope")]).await.expect_error(401, "DBAPI401");
}

on_every_engine!(keys_are_required_and_checked, anonymous_calls_take_the_anonymous_role);

#[tokio::test]
async fn keygen_prints_a_key_its_entry_accepts() {
    let printed = dbapi_runtime::auth::keygen("ci", "reader").unwrap();
    let key = printed
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .find(|l| l.starts_with("dbapi_"))
        .expect("the key is printed")
        .to_string();
    assert_eq!(key.len(), "dbapi_".len() + 64);
    let config = dbapi_crds::config::parse_runtime_config(&printed).expect("the entry is a valid document");
    assert_eq!((config.api_keys[0].name.as_str(), config.api_keys[0].role.as_str()), ("ci", "reader"));
    assert!(!printed.lines().any(|l| !l.starts_with('#') && l.contains(&key)), "the key is outside a comment");
    let api = Api::with_sql(Engine::Sqlite, SQL, config).await;
    api.get_with("/notes", &[("apikey", &key)]).await.expect(200);
    api.get("/notes").await.expect(401);
}

#[tokio::test]
async fn the_docs_page_is_public_and_the_open_api_stays_open() {
    let api = Api::with_sql(Engine::Sqlite, SQL, keyed(vec![key("app", "dbapi_app")], None)).await;
    api.get("/_/docs/").await.expect(200);
    api.get("/").await.expect(401);
    let open = Api::with_sql(Engine::Sqlite, SQL, RuntimeConfig::default()).await;
    open.get("/notes").await.expect(200);
    open.get_with("/notes", &[("apikey", "anything")]).await.expect(200);
}

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn token(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn tokens_are_verified_and_name_a_defined_role() {
    let yaml = format!(
        "auth: {{anonymousRole: web, jwt: {{secret: '{SECRET}', roleClaim: app_metadata.role, audience: api}}}}\n\
         roles: [{{name: editor, rules: [{{tables: ['*'], verbs: [GET]}}]}}, {{name: web, rules: [{{tables: ['*'], verbs: [GET]}}]}}]\n\
         apiKeys: [{{name: app, role: web, hashes: [{{sha256: {}}}]}}]\n",
        sha256_hex("dbapi_app")
    );
    let config = dbapi_crds::config::parse_runtime_config(&yaml).unwrap();
    let api = Api::with_sql(Engine::Sqlite, SQL, config).await;
    let bearer = |t: &str| format!("Bearer {t}");
    let good =
        token(serde_json::json!({"sub": "u1", "aud": "api", "exp": now() + 60, "app_metadata": {"role": "editor"}}));
    api.get_with("/notes", &[("authorization", &bearer(&good))]).await.expect(200);
    // The project key beside the user's token, as supabase-js sends them.
    api.get_with("/notes", &[("apikey", "dbapi_app"), ("authorization", &bearer(&good))]).await.expect(200);
    // A wrong key beside a good token is still refused.
    api.get_with("/notes", &[("apikey", "dbapi_bad"), ("authorization", &bearer(&good))])
        .await
        .expect_error(401, "DBAPI401");

    let expired = token(serde_json::json!({"aud": "api", "exp": now() - 120, "app_metadata": {"role": "editor"}}));
    let refused = api.get_with("/notes", &[("authorization", &bearer(&expired))]).await;
    let error = refused.expect_error(401, "PGRST303");
    assert!(error["message"].as_str().unwrap().contains("expired"), "{error}");
    let challenge = refused.header("www-authenticate").unwrap();
    assert!(challenge.starts_with(r#"Bearer error="invalid_token""#), "{challenge}");
    assert!(!refused.body.contains(&expired) && !challenge.contains(&expired));

    let wrong_audience = token(serde_json::json!({"aud": "other", "app_metadata": {"role": "editor"}}));
    api.get_with("/notes", &[("authorization", &bearer(&wrong_audience))]).await.expect(401);
    let unknown_role = token(serde_json::json!({"aud": "api", "app_metadata": {"role": "postgres"}}));
    let error =
        api.get_with("/notes", &[("authorization", &bearer(&unknown_role))]).await.expect_error(401, "PGRST303");
    assert!(error["message"].as_str().unwrap().contains("postgres"), "{error}");
    // Signed with another secret: a forged role claim.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"aud": "api", "app_metadata": {"role": "editor"}}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!").unwrap(),
    )
    .unwrap();
    api.get_with("/notes", &[("authorization", &bearer(&forged))]).await.expect_error(401, "PGRST301");
    // No role claim: the anonymous role.
    let plain = token(serde_json::json!({"aud": "api", "sub": "u2"}));
    api.get_with("/notes", &[("authorization", &bearer(&plain))]).await.expect(200);
}
