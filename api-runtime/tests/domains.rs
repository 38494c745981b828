//! PostgreSQL domain representations, as PostgREST's "Domain
//! Representations" page describes them: casts on a column's domain say
//! how its values are presented (to json), filtered (from text) and
//! written (from json).

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::json;
use support::Engine;
use support::api::Api;

/// The page's example: a uuid presented as base64.
const SCHEMA: &str = r#"
CREATE DOMAIN app_uuid AS uuid;
CREATE TABLE profiles (id app_uuid PRIMARY KEY, name text, plain app_uuid);
INSERT INTO profiles VALUES
    ('846c4ffd-92ce-4de7-8d11-8e29929f4ec4', 'John Doe', '846c4ffd-92ce-4de7-8d11-8e29929f4ec4'),
    ('cc7ec76c-5254-4dfc-bf19-9a70ba2ae9b9', 'Jane Doe', NULL);
CREATE TABLE visits (id int PRIMARY KEY, profile_id app_uuid REFERENCES profiles (id));
INSERT INTO visits VALUES (1, '846c4ffd-92ce-4de7-8d11-8e29929f4ec4');

CREATE FUNCTION json(app_uuid) RETURNS json AS $$
  SELECT to_json(encode(uuid_send($1), 'base64'));
$$ LANGUAGE sql IMMUTABLE;
CREATE CAST (app_uuid AS json) WITH FUNCTION json(app_uuid) AS IMPLICIT;

CREATE FUNCTION app_uuid(text) RETURNS app_uuid AS $$
  SELECT encode(decode($1, 'base64'), 'hex')::uuid;
$$ LANGUAGE sql IMMUTABLE;
CREATE CAST (text AS app_uuid) WITH FUNCTION app_uuid(text) AS IMPLICIT;

CREATE FUNCTION app_uuid(json) RETURNS app_uuid AS $$
  SELECT app_uuid($1 #>> '{}');
$$ LANGUAGE sql IMMUTABLE;
CREATE CAST (json AS app_uuid) WITH FUNCTION app_uuid(json) AS IMPLICIT;
"#;

const JOHN: &str = "hGxP/ZLOTeeNEY4pkp9OxA==";
const JANE: &str = "zH7HbFJUTfy/GZpwuirpuQ==";

#[tokio::test]
async fn domains_are_presented_filtered_and_written_through_their_casts() {
    let api = Api::with_sql(Engine::Postgres, SCHEMA, RuntimeConfig::default()).await;
    // Presented through the cast to json, at every level and in both forms
    // of the statement (whole records and key by key).
    assert_eq!(
        api.get("/profiles?order=name.desc").await.expect(200).json(),
        json!([
            {"id": JOHN, "name": "John Doe", "plain": JOHN},
            {"id": JANE, "name": "Jane Doe", "plain": null},
        ])
    );
    assert_eq!(
        api.get("/visits?select=id,who:profiles(key:id)").await.expect(200).json(),
        json!([{"id": 1, "who": {"key": JOHN}}])
    );
    // Filter values are read through the cast from text.
    let api = &api;
    let by_id = |q: String| async move { api.get(&format!("/profiles?select=name&{q}")).await };
    assert_eq!(by_id(format!("id=eq.{JOHN}")).await.expect(200).json(), json!([{"name": "John Doe"}]));
    assert_eq!(by_id(format!("id=neq.{JOHN}")).await.expect(200).json(), json!([{"name": "Jane Doe"}]));
    assert_eq!(
        by_id(format!("id=in.({JOHN},{JANE})&order=name")).await.expect(200).json(),
        json!([{"name": "Jane Doe"}, {"name": "John Doe"}])
    );
    assert_eq!(by_id(format!("or=(id.eq.{JANE})")).await.expect(200).json(), json!([{"name": "Jane Doe"}]));
    // Written through the cast from json; stored as the plain uuid.
    let r = api
        .post_with(
            "/profiles",
            &[("Prefer", "return=representation")],
            r#"{"id": "ESIzRFVmd4iZqrvM3e7/AA==", "name": "New"}"#,
        )
        .await;
    assert_eq!(r.expect(201).json(), json!([{"id": "ESIzRFVmd4iZqrvM3e7/AA==", "name": "New", "plain": null}]));
    let stored = api.sql_text("SELECT id::text FROM profiles WHERE name = 'New'").await;
    assert_eq!(stored, [Some("11223344-5566-7788-99aa-bbccddeeff00".to_string())]);
    // Changed rows are found and read back in the presented form too.
    let r = api
        .patch_with(
            &format!("/profiles?id=eq.{JANE}&select=id,name"),
            &[("Prefer", "return=representation")],
            r#"{"name": "Jane"}"#,
        )
        .await;
    assert_eq!(r.expect(200).json(), json!([{"id": JANE, "name": "Jane"}]));
    let r = api.delete_with(&format!("/profiles?id=eq.{JANE}&select=id"), &[("Prefer", "return=representation")]).await;
    assert_eq!(r.expect(200).json(), json!([{"id": JANE}]));
    assert_eq!(api.count("profiles").await, 2);
}

#[tokio::test]
async fn domains_without_casts_keep_their_base_type() {
    let sql = "CREATE DOMAIN code AS uuid;
               CREATE TABLE things (id code PRIMARY KEY);
               INSERT INTO things VALUES ('846c4ffd-92ce-4de7-8d11-8e29929f4ec4');";
    let api = Api::with_sql(Engine::Postgres, sql, RuntimeConfig::default()).await;
    let r = api.get("/things?id=eq.846c4ffd-92ce-4de7-8d11-8e29929f4ec4").await;
    assert_eq!(r.expect(200).json(), json!([{"id": "846c4ffd-92ce-4de7-8d11-8e29929f4ec4"}]));
    api.get("/things?id=eq.hGxP").await.expect_error(400, "22P02");
}
