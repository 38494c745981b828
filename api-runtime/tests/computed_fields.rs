//! Computed fields (issue 17, item 3), as PostgREST's "Computed Fields"
//! page describes them: a PostgreSQL function taking a table's row and
//! returning one value is a column of that table in `select`, filters and
//! `order`, when named (never part of `*`); it cannot be written.

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::json;
use support::Engine;
use support::api::Api;

const SQL: &str = "
CREATE TABLE people (id int PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, born date);
CREATE TABLE pets (id int PRIMARY KEY, name text NOT NULL, owner_id int REFERENCES people(id));
INSERT INTO people VALUES (1, 'Jane', 'Doe', '1990-01-01'), (2, 'John', 'Roe', '1985-05-05'), (3, 'Ann', 'Lee', NULL);
INSERT INTO pets VALUES (1, 'Rex', 1), (2, 'Tom', 3), (3, 'Kit', 1);
-- PostgREST's example: an unnamed parameter of the table's type.
CREATE FUNCTION full_name(people) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT $1.first_name || ' ' || $1.last_name $$;
-- A named parameter works the same.
CREATE FUNCTION name_length(p pets) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT length(p.name) $$;
-- Not computed fields: two parameters, a set of values.
CREATE FUNCTION greeting(p people, word text) RETURNS text LANGUAGE sql AS $$ SELECT word || p.first_name $$;
CREATE FUNCTION letters(people) RETURNS SETOF text LANGUAGE sql AS $$ SELECT unnest(ARRAY[$1.first_name]) $$;
";

async fn api() -> Api {
    Api::with_sql(Engine::Postgres, SQL, RuntimeConfig::default()).await
}

#[tokio::test]
async fn a_computed_field_is_selected_by_name_only() {
    let api = api().await;
    let r = api.get("/people?select=id,full_name&order=id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([{"id": 1, "full_name": "Jane Doe"}, {"id": 2, "full_name": "John Roe"}, {"id": 3, "full_name": "Ann Lee"}])
    );
    // `*` is the stored columns; a computed field joins it when named.
    let star = api.get("/people?id=eq.1").await.json();
    assert!(star[0].get("full_name").is_none(), "{star}");
    let both = api.get("/people?select=*,full_name&id=eq.1").await.json();
    assert_eq!(both[0]["full_name"], "Jane Doe");
    assert_eq!(both[0]["first_name"], "Jane");
    // Renamed and cast like a column.
    let r = api.get("/people?select=name:full_name,len:full_name::text&id=eq.2").await;
    assert_eq!(r.json(), json!([{"name": "John Roe", "len": "John Roe"}]));
    // Other functions on the row are not fields.
    for other in ["greeting", "letters"] {
        api.get(&format!("/people?select={other}")).await.expect_error(400, "42703");
    }
}

#[tokio::test]
async fn computed_fields_filter_and_order() {
    let api = api().await;
    let ids = |r: support::api::Response| r.expect(200).column_i64("id");
    assert_eq!(ids(api.get("/people?select=id&full_name=eq.Jane Doe").await), [1]);
    assert_eq!(ids(api.get("/people?select=id&full_name=like.J*&order=id").await), [1, 2]);
    assert_eq!(ids(api.get("/people?select=id&order=full_name.desc").await), [2, 1, 3]);
    assert_eq!(ids(api.get("/people?select=id&or=(full_name.eq.Ann Lee,id.eq.2)&order=id").await), [2, 3]);
    // In an embed, and filtered and ordered there.
    let r = api.get("/people?select=full_name,pets(name,name_length)&pets.order=name&id=eq.1").await;
    assert_eq!(
        r.expect(200).json(),
        json!([{"full_name": "Jane Doe", "pets": [{"name": "Kit", "name_length": 3}, {"name": "Rex", "name_length": 3}]}])
    );
    let r = api.get("/pets?select=name,people(full_name)&people.full_name=eq.Ann Lee&people=not.is.null").await;
    assert_eq!(r.expect(200).json(), json!([{"name": "Tom", "people": {"full_name": "Ann Lee"}}]));
    // A page cut first (offset) and a streamed answer read it too.
    let r = api.get_with("/people?select=full_name&order=id&offset=1", &[("accept", "application/x-ndjson")]).await;
    assert_eq!(r.expect(200).body, "{\"full_name\" : \"John Roe\"}\n{\"full_name\" : \"Ann Lee\"}\n");
    let r = api.get_with("/people?select=full_name&id=eq.3", &[("accept", "text/csv")]).await;
    assert_eq!(r.body, "full_name\nAnn Lee");
}

#[tokio::test]
async fn computed_fields_come_back_from_writes_and_are_never_written() {
    let api = api().await;
    let r = api
        .post_with(
            "/people?select=id,full_name",
            &[("prefer", "return=representation")],
            r#"{"id": 4, "first_name": "Bo", "last_name": "Ek"}"#,
        )
        .await;
    assert_eq!(r.expect(201).json(), json!([{"id": 4, "full_name": "Bo Ek"}]));
    let e = api
        .post_with("/people", &[], r#"{"id": 5, "first_name": "A", "last_name": "B", "full_name": "x"}"#)
        .await
        .expect_error(400, "PGRST204");
    assert!(e["message"].as_str().unwrap().contains("full_name"), "{e}");
}

#[tokio::test]
async fn computed_fields_are_not_grouped() {
    let mut config = RuntimeConfig::default();
    config.api.aggregates = true;
    let api = Api::with_sql(Engine::Postgres, SQL, config).await;
    api.get("/people?select=full_name,count()").await.expect_error(400, "DBAPI103");
    api.get("/people?select=full_name.max()").await.expect_error(400, "DBAPI103");
}

#[tokio::test]
async fn a_roles_columns_decide_its_computed_fields_too() {
    let mut config: RuntimeConfig = serde_yaml::from_str(
        "auth: {anonymousRole: clerk}
roles:
  - {name: clerk, rules: [{tables: [people], verbs: [GET], columns: [id, first_name]}]}",
    )
    .unwrap();
    config.api.max_rows = 100;
    let api = Api::with_sql(Engine::Postgres, SQL, config).await;
    api.get("/people?select=id,full_name").await.expect_error(400, "42703");
    api.get("/people?select=id&full_name=eq.Jane Doe").await.expect_error(400, "42703");

    let config: RuntimeConfig = serde_yaml::from_str(
        "auth: {anonymousRole: clerk}
roles:
  - {name: clerk, rules: [{tables: [people], verbs: [GET], columns: [id, full_name]}]}",
    )
    .unwrap();
    let api = Api::with_sql(Engine::Postgres, SQL, config).await;
    let r = api.get("/people?select=id,full_name&id=eq.1").await;
    assert_eq!(r.expect(200).json(), json!([{"id": 1, "full_name": "Jane Doe"}]));
}

#[tokio::test]
async fn the_openapi_document_lists_computed_fields() {
    let api = api().await;
    let doc = api.get("/").await.json();
    let people = &doc["components"]["schemas"]["people"]["properties"];
    assert!(
        people["full_name"]["description"].as_str().unwrap().contains("computed by the function `full_name(people)`")
    );
    let filters = doc["paths"]["/people"]["get"]["parameters"].as_array().unwrap();
    assert!(filters.iter().any(|p| p["name"] == "full_name"));
}
