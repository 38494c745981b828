//! Computed fields and relationships (issue 17, item 3), as PostgREST's
//! "Computed Fields" and "Computed Relationships" describe them: a
//! PostgreSQL function taking a table's row and returning one value is a
//! column of that table in `select`, filters and `order`, when named (never
//! part of `*`; never written); one returning rows of a table is a
//! relationship embedded by the function's name, overriding a detected one.

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
-- Computed relationships: to-many, to-one by ROWS 1, to-one by a single row.
CREATE FUNCTION pets_of(people) RETURNS SETOF pets LANGUAGE sql STABLE
    AS $$ SELECT * FROM pets WHERE owner_id = $1.id $$;
CREATE FUNCTION owner(pets) RETURNS SETOF people ROWS 1 LANGUAGE sql STABLE
    AS $$ SELECT * FROM people WHERE id = $1.owner_id $$;
CREATE FUNCTION first_pet(people) RETURNS pets LANGUAGE sql STABLE
    AS $$ SELECT * FROM pets WHERE owner_id = $1.id ORDER BY id LIMIT 1 $$;
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
    // Computed relationships are listed among what `select` can embed.
    let select = filters.iter().find(|p| p["name"] == "select").expect("a select parameter");
    let embeds = select["description"].as_str().unwrap();
    assert!(embeds.contains("`pets_of` (many, computed: `pets`)"), "{embeds}");
    assert!(embeds.contains("`first_pet` (one, computed: `pets`)"), "{embeds}");
}

#[tokio::test]
async fn a_function_returning_rows_embeds_by_its_name() {
    let api = api().await;
    let r = api.get("/people?select=id,pets_of(name)&pets_of.order=name&order=id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([
            {"id": 1, "pets_of": [{"name": "Kit"}, {"name": "Rex"}]},
            {"id": 2, "pets_of": []},
            {"id": 3, "pets_of": [{"name": "Tom"}]}
        ])
    );
    // To-one: ROWS 1 (null when there is no row), or a single row (which
    // PostgreSQL gives as a row of NULLs when the function finds none).
    let r = api.get("/pets?select=name,owner(first_name,full_name)&order=id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([
            {"name": "Rex", "owner": {"first_name": "Jane", "full_name": "Jane Doe"}},
            {"name": "Tom", "owner": {"first_name": "Ann", "full_name": "Ann Lee"}},
            {"name": "Kit", "owner": {"first_name": "Jane", "full_name": "Jane Doe"}}
        ])
    );
    let r = api.get("/people?select=id,first_pet(name)&order=id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([
            {"id": 1, "first_pet": {"name": "Rex"}},
            {"id": 2, "first_pet": {"name": null}},
            {"id": 3, "first_pet": {"name": "Tom"}}
        ])
    );
    // Filters, !inner, spreads, aliases and ordering by a to-one one.
    let r = api.get("/people?select=id,pets:pets_of!inner(name)&pets.name=eq.Tom").await;
    assert_eq!(r.expect(200).json(), json!([{"id": 3, "pets": [{"name": "Tom"}]}]));
    let r = api.get("/pets?select=name,...owner(owner_name:first_name)&order=owner(last_name).desc,id").await;
    assert_eq!(
        r.expect(200).json(),
        json!([
            {"name": "Tom", "owner_name": "Ann"},
            {"name": "Rex", "owner_name": "Jane"},
            {"name": "Kit", "owner_name": "Jane"}
        ])
    );
    // Streamed too.
    let r = api.get_with("/people?select=pets_of(count)&id=eq.1", &[("accept", "application/x-ndjson")]).await;
    assert_eq!(r.expect(200).body, "{\"pets_of\" : [{\"count\" : 2}]}\n");
}

#[tokio::test]
async fn a_computed_relationship_overrides_a_detected_one() {
    let sql = format!(
        "{SQL} CREATE FUNCTION pets(people) RETURNS SETOF pets LANGUAGE sql STABLE
            AS $$ SELECT * FROM pets WHERE owner_id = $1.id AND name <> 'Kit' $$;"
    );
    let api = Api::with_sql(Engine::Postgres, &sql, RuntimeConfig::default()).await;
    let r = api.get("/people?select=id,pets(name)&id=eq.1").await;
    assert_eq!(r.expect(200).json(), json!([{"id": 1, "pets": [{"name": "Rex"}]}]));
    // The foreign key is still followed from the other side.
    let r = api.get("/pets?select=name,people(first_name)&id=eq.3").await;
    assert_eq!(r.expect(200).json(), json!([{"name": "Kit", "people": {"first_name": "Jane"}}]));
}
