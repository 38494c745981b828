//! Embedding as PostgREST answers it: spreads of to-many embeds, empty
//! embeds that only filter, JSON path keys, ambiguous and self-referencing
//! relationships, and limits inside embeds. Written from PostgREST's
//! "Resource Embedding", "Spread embedded resource" and "JSON Columns"
//! pages, on a schema of this file's own, on every engine.

mod support;

use dbapi_crds::config::RuntimeConfig;
use serde_json::json;
use support::Engine;
use support::api::Api;

/// Authors with books (one author has none), books with an optional
/// publisher, a tree referring to itself once, organizations referring to
/// themselves twice, shipments with two keys to addresses, JSON documents.
/// Portable SQL: named table-level keys (MySQL ignores inline REFERENCES).
const SCHEMA: &str = "
CREATE TABLE publishers (id int PRIMARY KEY, name varchar(50));
CREATE TABLE authors (id int PRIMARY KEY, name varchar(50));
CREATE TABLE books (
    id int PRIMARY KEY, title varchar(50), pages int, author_id int, publisher_id int,
    CONSTRAINT books_author_fkey FOREIGN KEY (author_id) REFERENCES authors (id),
    CONSTRAINT books_publisher_fkey FOREIGN KEY (publisher_id) REFERENCES publishers (id));
INSERT INTO publishers VALUES (1, 'Penguin'), (2, 'Vintage');
INSERT INTO authors VALUES (1, 'Ann'), (2, 'Ben'), (3, 'Cid');
INSERT INTO books VALUES (1, 'A1', 100, 1, 1), (2, 'A2', 200, 1, 2), (3, 'A3', NULL, 1, NULL), (4, 'B1', 150, 2, 1);

CREATE TABLE family_tree (
    id int PRIMARY KEY, name varchar(50), parent int,
    CONSTRAINT family_tree_parent_fkey FOREIGN KEY (parent) REFERENCES family_tree (id));
INSERT INTO family_tree VALUES (1, 'Root', NULL), (2, 'Kid One', 1), (3, 'Kid Two', 1), (4, 'Grandkid', 2);

CREATE TABLE organizations (
    id int PRIMARY KEY, name varchar(50), referee int, auditor int,
    CONSTRAINT organizations_referee_fkey FOREIGN KEY (referee) REFERENCES organizations (id),
    CONSTRAINT organizations_auditor_fkey FOREIGN KEY (auditor) REFERENCES organizations (id));
INSERT INTO organizations VALUES (1, 'Referee Org', NULL, NULL), (2, 'Auditor Org', NULL, NULL),
    (3, 'Org A', 1, 2), (4, 'Org B', 1, 2), (5, 'Org C', NULL, 2);

CREATE TABLE addresses (id int PRIMARY KEY, name varchar(50));
CREATE TABLE shipments (
    id int PRIMARY KEY, name varchar(50), billing_address_id int, shipping_address_id int,
    CONSTRAINT billing FOREIGN KEY (billing_address_id) REFERENCES addresses (id),
    CONSTRAINT shipping FOREIGN KEY (shipping_address_id) REFERENCES addresses (id));
INSERT INTO addresses VALUES (1, 'Home'), (2, 'Office');
INSERT INTO shipments VALUES (1, 'Filter', 1, 2), (2, 'Kettle', 2, 2);
";

async fn api(engine: Engine) -> Api {
    api_with(engine, RuntimeConfig::default()).await
}

async fn api_with(engine: Engine, config: RuntimeConfig) -> Api {
    let json_type = match engine {
        Engine::Postgres => "jsonb",
        Engine::MySql | Engine::Sqlite => "json",
    };
    let docs = format!(
        "CREATE TABLE docs (id int PRIMARY KEY, data {json_type});
         INSERT INTO docs VALUES (1, '{{\"a\": [10, {{\"b\": \"x\"}}], \"n\": 3}}');"
    );
    Api::with_sql(engine, &format!("{SCHEMA}{docs}"), config).await
}

async fn get_json(api: &Api, uri: &str) -> serde_json::Value {
    api.get(uri).await.expect(200).json()
}

on_every_engine!(
    to_many_spreads_give_arrays_per_column,
    spreads_nest_through_to_one_and_keep_embeds,
    empty_embeds_filter_without_being_output,
    json_path_keys_skip_array_indexes,
    ambiguous_embeds_are_refused_with_the_candidates,
    self_references_resolve_as_postgrest,
    embeds_by_foreign_key_column_or_name,
    limits_and_offsets_inside_embeds,
    max_rows_caps_embedded_arrays,
);

async fn to_many_spreads_give_arrays_per_column(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(
        get_json(&api, "/authors?select=name,...books(title)&order=id&books.order=id").await,
        json!([
            {"name": "Ann", "title": ["A1", "A2", "A3"]},
            {"name": "Ben", "title": ["B1"]},
            {"name": "Cid", "title": []},
        ])
    );
    // Renamed, several columns, in the embed's own order and limit; nulls
    // keep their place.
    assert_eq!(
        get_json(&api, "/authors?select=name,...books(titles:title,pages)&id=eq.1&books.order=id.desc&books.limit=2")
            .await,
        json!([{"name": "Ann", "titles": ["A3", "A2"], "pages": [null, 200]}])
    );
}

async fn spreads_nest_through_to_one_and_keep_embeds(engine: Engine) {
    let api = api(engine).await;
    // A to-one spread inside a to-many spread: one value per book.
    assert_eq!(
        get_json(&api, "/authors?select=name,...books(...publishers(publisher:name))&id=eq.1&books.order=id").await,
        json!([{"name": "Ann", "publisher": ["Penguin", "Vintage", null]}])
    );
    // A plain embed inside a to-many spread: its value per book.
    assert_eq!(
        get_json(&api, "/authors?select=name,...books(title,publishers(name))&id=eq.2").await,
        json!([{"name": "Ben", "title": ["B1"], "publishers": [{"name": "Penguin"}]}])
    );
    // A to-one spread stays a value, and nests.
    assert_eq!(
        get_json(&api, "/books?select=title,...authors(author:name)&id=eq.4").await,
        json!([{"title": "B1", "author": "Ben"}])
    );
    assert_eq!(
        get_json(&api, "/publishers?select=name,...books(...authors(author:name))&id=eq.1&books.order=id").await,
        json!([{"name": "Penguin", "author": ["Ann", "Ben"]}])
    );
}

async fn empty_embeds_filter_without_being_output(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(
        get_json(&api, "/authors?select=id,name,books!inner()&order=id").await,
        json!([{"id": 1, "name": "Ann"}, {"id": 2, "name": "Ben"}])
    );
    assert_eq!(
        get_json(&api, "/authors?select=name,books()&books=not.is.null&order=id").await,
        json!([{"name": "Ann"}, {"name": "Ben"}])
    );
    assert_eq!(get_json(&api, "/authors?select=name,books()&books=is.null").await, json!([{"name": "Cid"}]));
    assert_eq!(
        get_json(&api, "/authors?select=name,books()&or=(books.is.null,name.eq.Ben)&order=id").await,
        json!([{"name": "Ben"}, {"name": "Cid"}])
    );
    // Filters inside the empty embed choose the related rows that count.
    assert_eq!(get_json(&api, "/authors?select=name,books!inner()&books.title=eq.B1").await, json!([{"name": "Ben"}]));
    // Nested: the inner empty embed filters the books, and is not output.
    assert_eq!(
        get_json(
            &api,
            "/publishers?select=name,books(title,authors!inner())&books.authors.name=eq.Ann&order=id&books.order=id"
        )
        .await,
        json!([{"name": "Penguin", "books": [{"title": "A1"}]}, {"name": "Vintage", "books": [{"title": "A2"}]}])
    );
    // Counted like the rows it keeps.
    let r = api.get_with("/authors?select=name,books!inner()", &[("Prefer", "count=exact")]).await;
    assert_eq!(r.expect(200).header("content-range"), Some("0-1/2"));
}

async fn json_path_keys_skip_array_indexes(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(get_json(&api, "/docs?select=data->a->>0").await, json!([{"a": "10"}]));
    assert_eq!(get_json(&api, "/docs?select=data->a->1->b").await, json!([{"b": "x"}]));
    assert_eq!(get_json(&api, "/docs?select=data->a->1->>b").await, json!([{"b": "x"}]));
    assert_eq!(get_json(&api, "/docs?select=data->>n").await, json!([{"n": "3"}]));
    assert_eq!(get_json(&api, "/docs?select=data->a->0::int").await, json!([{"a": 10}]));
    assert_eq!(get_json(&api, "/docs?select=first:data->a->0").await, json!([{"first": 10}]));
    api.get("/docs?select=data->>--34").await.expect_error(400, "PGRST100");
}

async fn ambiguous_embeds_are_refused_with_the_candidates(engine: Engine) {
    let api = api(engine).await;
    let err = api.get("/shipments?select=*,addresses(*)").await.expect_error(300, "PGRST201");
    assert_eq!(
        err["message"],
        "Could not embed because more than one relationship was found for 'shipments' and 'addresses'"
    );
    let details = err["details"].as_array().expect("the candidates as a list");
    assert_eq!(details.len(), 2);
    for d in details {
        assert_eq!(d["cardinality"], "many-to-one");
        assert_eq!(d["embedding"], "shipments with addresses");
    }
    let relationships: Vec<&str> = details.iter().map(|d| d["relationship"].as_str().unwrap()).collect();
    assert!(relationships.contains(&"billing using shipments(billing_address_id) and addresses(id)"), "{err}");
    let hint = err["hint"].as_str().unwrap();
    assert!(hint.contains("'addresses!billing'") && hint.contains("'addresses!shipping'"), "{hint}");
    // The other direction is ambiguous too.
    api.get("/addresses?select=*,shipments(*)").await.expect_error(300, "PGRST201");
    // Picking one with ! works both ways.
    assert_eq!(
        get_json(
            &api,
            "/shipments?select=name,billing:addresses!billing(name),shipping:addresses!shipping(name)&id=eq.1"
        )
        .await,
        json!([{"name": "Filter", "billing": {"name": "Home"}, "shipping": {"name": "Office"}}])
    );
    assert_eq!(
        get_json(&api, "/addresses?select=name,shipments!shipping(name)&id=eq.2&shipments.order=id").await,
        json!([{"name": "Office", "shipments": [{"name": "Filter"}, {"name": "Kettle"}]}])
    );
    // Two keys of a table to itself: its name alone is ambiguous.
    api.get("/organizations?select=id,organizations(id)").await.expect_error(300, "PGRST201");
}

async fn self_references_resolve_as_postgrest(engine: Engine) {
    let api = api(engine).await;
    // The table's name with the key's column as hint: the rows referring
    // to this one, recursively.
    assert_eq!(
        get_json(
            &api,
            "/family_tree?select=id,name,children:family_tree!parent(id,name,children:family_tree!parent(id))\
             &id=eq.1&children.order=id"
        )
        .await,
        json!([{"id": 1, "name": "Root", "children": [
            {"id": 2, "name": "Kid One", "children": [{"id": 4}]},
            {"id": 3, "name": "Kid Two", "children": []},
        ]}])
    );
    // With the key's name as hint, or none: the same direction.
    assert_eq!(
        get_json(&api, "/family_tree?select=id,family_tree!family_tree_parent_fkey(id)&id=eq.2").await,
        json!([{"id": 2, "family_tree": [{"id": 4}]}])
    );
    assert_eq!(
        get_json(&api, "/family_tree?select=id,family_tree(id)&id=eq.2").await,
        json!([{"id": 2, "family_tree": [{"id": 4}]}])
    );
    // The key's column: the row this one refers to, recursively.
    assert_eq!(
        get_json(&api, "/family_tree?select=id,parent(id,name,parent(id,parent(id)))&id=eq.4").await,
        json!([{"id": 4, "parent": {"id": 2, "name": "Kid One", "parent": {"id": 1, "parent": null}}}])
    );
    assert_eq!(
        get_json(&api, "/organizations?select=id,refereeds:organizations!referee(id)&id=eq.1&refereeds.order=id").await,
        json!([{"id": 1, "refereeds": [{"id": 3}, {"id": 4}]}])
    );
    assert_eq!(
        get_json(&api, "/organizations?select=id,auditees:organizations!auditor(id)&id=eq.2&auditees.order=id").await,
        json!([{"id": 2, "auditees": [{"id": 3}, {"id": 4}, {"id": 5}]}])
    );
    assert_eq!(
        get_json(&api, "/organizations?select=name,referee(name),auditor(name)&id=eq.3").await,
        json!([{"name": "Org A", "referee": {"name": "Referee Org"}, "auditor": {"name": "Auditor Org"}}])
    );
}

async fn embeds_by_foreign_key_column_or_name(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(
        get_json(&api, "/books?select=title,author_id(name)&id=eq.1").await,
        json!([{"title": "A1", "author_id": {"name": "Ann"}}])
    );
    assert_eq!(
        get_json(&api, "/books?select=title,writer:books_author_fkey(name)&id=eq.4").await,
        json!([{"title": "B1", "writer": {"name": "Ben"}}])
    );
    assert_eq!(
        get_json(&api, "/authors?select=name,books_author_fkey(title)&id=eq.2").await,
        json!([{"name": "Ben", "books_author_fkey": [{"title": "B1"}]}])
    );
}

async fn limits_and_offsets_inside_embeds(engine: Engine) {
    let api = api(engine).await;
    assert_eq!(
        get_json(&api, "/authors?select=name,books(title)&books.order=id&books.limit=1&books.offset=1&order=id").await,
        json!([
            {"name": "Ann", "books": [{"title": "A2"}]},
            {"name": "Ben", "books": []},
            {"name": "Cid", "books": []},
        ])
    );
    // A to-one embed has one row: past it, null.
    assert_eq!(
        get_json(&api, "/books?select=title,authors(name)&authors.offset=1&id=eq.1").await,
        json!([{"title": "A1", "authors": null}])
    );
    assert_eq!(
        get_json(&api, "/books?select=title,authors(name)&authors.offset=0&id=eq.1").await,
        json!([{"title": "A1", "authors": {"name": "Ann"}}])
    );
}

async fn max_rows_caps_embedded_arrays(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 2;
    let api = api_with(engine, config).await;
    for uri in [
        "/authors?select=name,books(id)&id=eq.1&books.order=id",
        "/authors?select=name,books(id)&id=eq.1&books.order=id&books.limit=5",
    ] {
        assert_eq!(get_json(&api, uri).await, json!([{"name": "Ann", "books": [{"id": 1}, {"id": 2}]}]), "{uri}");
    }
    assert_eq!(
        get_json(&api, "/authors?select=name,...books(title)&id=eq.1&books.order=id").await,
        json!([{"name": "Ann", "title": ["A1", "A2"]}])
    );
}

/// Embeds in a function's result rows are capped like a table's.
#[tokio::test]
async fn max_rows_caps_arrays_embedded_in_function_results() {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 2;
    let function = "CREATE FUNCTION authors_named(who text) RETURNS SETOF authors
                    LANGUAGE sql STABLE AS 'SELECT * FROM authors WHERE name = who';";
    let api = Api::with_sql(Engine::Postgres, &format!("{SCHEMA}{function}"), config).await;
    assert_eq!(
        get_json(&api, "/rpc/authors_named?who=Ann&select=name,books(id)&books.order=id").await,
        json!([{"name": "Ann", "books": [{"id": 1}, {"id": 2}]}])
    );
}
