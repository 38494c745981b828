//! Media type handlers (issue 17, item 7), as PostgREST's "Media Type
//! Handlers" page describes them (PostgreSQL): a function returning a
//! domain named like a media type answers requests accepting that type
//! with its value; an aggregate of a table's rows returning one answers
//! reads of the table, replacing a built-in type it names; a `*/*` handler
//! answers every request; `response.headers` sets the answer's headers.

mod support;

use dbapi_crds::config::RuntimeConfig;
use support::Engine;
use support::api::Api;

const SQL: &str = r#"
CREATE TABLE lines (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO lines VALUES (1, 'line-1'), (2, 'line-2'), (3, 'line-3');
INSERT INTO notes VALUES (1, 'a');

CREATE DOMAIN "application/vnd.lines" AS bytea;
CREATE FUNCTION get_line(id int) RETURNS "application/vnd.lines" LANGUAGE sql STABLE
    AS $$ SELECT convert_to(name, 'UTF8')::"application/vnd.lines" FROM lines WHERE lines.id = get_line.id $$;

CREATE DOMAIN "text/plain" AS text;
CREATE FUNCTION hello(name text) RETURNS "text/plain" LANGUAGE sql IMMUTABLE
    AS $$ SELECT ('Hello, ' || name)::"text/plain" $$;
CREATE FUNCTION bad_headers() RETURNS "text/plain" LANGUAGE sql
    AS $$ SELECT set_config('response.headers', '{"not": "an array"}', true); SELECT 'x'::"text/plain" $$;

CREATE DOMAIN "text/tab-separated-values" AS text;
CREATE FUNCTION tsv_step(state "text/tab-separated-values", next lines) RETURNS "text/tab-separated-values"
    LANGUAGE sql AS $$ SELECT (state || next.id || E'\t' || next.name || E'\n')::"text/tab-separated-values" $$;
CREATE AGGREGATE tsv_agg(lines) (INITCOND = '', STYPE = "text/tab-separated-values", SFUNC = tsv_step);

CREATE FUNCTION all_lines() RETURNS SETOF lines LANGUAGE sql STABLE AS $$ SELECT * FROM lines $$;

CREATE DOMAIN "text/csv" AS text;
CREATE FUNCTION csv_step(state text, next lines) RETURNS text
    LANGUAGE sql AS $$ SELECT state || next.id || ',' || next.name || E'\n' $$;
CREATE FUNCTION csv_final(data text) RETURNS "text/csv" LANGUAGE sql AS $f$
    SELECT set_config('response.headers', '[{"Content-Disposition": "attachment; filename=\"lines.csv\""}]', true);
    SELECT (E'id,name\n' || data)::"text/csv"
$f$;
CREATE AGGREGATE csv_agg(lines) (INITCOND = '', STYPE = text, SFUNC = csv_step, FINALFUNC = csv_final);

CREATE DOMAIN "*/*" AS bytea;
CREATE VIEW lines_raw AS SELECT * FROM lines;
CREATE FUNCTION raw_step(state "*/*", next lines_raw) RETURNS "*/*"
    LANGUAGE sql AS $$ SELECT (state || convert_to(next.name || ';', 'UTF8'))::"*/*" $$;
CREATE AGGREGATE raw_agg(lines_raw) (INITCOND = '', STYPE = "*/*", SFUNC = raw_step);

-- PostgREST's XML example: an any handler that reads the request's Accept,
-- names its Content-Type for */* and refuses what is not XML.
CREATE VIEW lines_xml AS SELECT * FROM lines;
CREATE FUNCTION xml_step(state text, next lines_xml) RETURNS text
    LANGUAGE sql AS $$ SELECT state || '<line id="' || next.id || '"/>' $$;
CREATE FUNCTION xml_final(data text) RETURNS "*/*" LANGUAGE plpgsql AS $f$
DECLARE accept text := current_setting('request.headers', true)::json->>'accept';
BEGIN
    IF accept IS NULL OR accept = '*/*' THEN
        PERFORM set_config('response.headers', '[{"Content-Type": "text/xml"}]', true);
    ELSIF accept NOT IN ('application/xml', 'text/xml') THEN
        RAISE sqlstate 'PT415' USING message = 'Unsupported Media Type';
    END IF;
    RETURN convert_to(data, 'UTF8');
END $f$;
CREATE AGGREGATE xml_agg(lines_xml) (INITCOND = '', STYPE = text, SFUNC = xml_step, FINALFUNC = xml_final);
"#;

async fn api() -> Api {
    Api::with_sql(Engine::Postgres, SQL, RuntimeConfig::default()).await
}

#[tokio::test]
async fn a_function_returning_a_media_type_answers_with_its_value() {
    let api = api().await;
    let r = api.get_with("/rpc/get_line?id=1", &[("accept", "application/vnd.lines")]).await;
    assert_eq!(r.expect(200).body, "line-1");
    assert_eq!(r.header("content-type"), Some("application/vnd.lines"));
    let r = api.get_with("/rpc/hello?name=Ann", &[("accept", "text/plain")]).await;
    assert_eq!((r.expect(200).body.as_str(), r.header("content-type")), ("Hello, Ann", Some("text/plain")));
    let r = api.post_with("/rpc/hello", &[("accept", "text/plain")], r#"{"name": "Bo"}"#).await;
    assert_eq!(r.expect(200).body, "Hello, Bo");
    // Preferred after JSON, or not asked for: the built-in JSON answer.
    let r = api.get_with("/rpc/hello?name=Ann", &[("accept", "application/json, text/plain")]).await;
    assert_eq!(r.expect(200).json(), "Hello, Ann");
    assert_eq!(api.get("/rpc/hello?name=Ann").await.json(), "Hello, Ann");
    // A type no handler of the function serves.
    api.get_with("/rpc/hello?name=Ann", &[("accept", "text/xml")]).await.expect_error(406, "PGRST107");
    api.get_with("/rpc/get_line?id=1", &[("accept", "text/plain")]).await.expect_error(406, "PGRST107");
}

#[tokio::test]
async fn an_aggregate_returning_a_media_type_answers_reads_of_its_table() {
    let api = api().await;
    let tsv = [("accept", "text/tab-separated-values")];
    let r = api.get_with("/lines?order=id.desc&limit=2", &tsv).await;
    assert_eq!(r.expect(200).body, "3\tline-3\n2\tline-2\n");
    assert_eq!(r.header("content-type"), Some("text/tab-separated-values"));
    assert_eq!(api.get_with("/lines?id=eq.1", &tsv).await.body, "1\tline-1\n");
    // Another table has no such handler.
    api.get_with("/notes", &tsv).await.expect_error(406, "PGRST107");
    // A function returning the table's rows is answered by its handlers,
    // over its filtered and ordered result.
    let r = api.get_with("/rpc/all_lines?id=gt.1&order=id", &tsv).await;
    assert_eq!(r.expect(200).body, "2\tline-2\n3\tline-3\n");
    let r = api.post_with("/rpc/all_lines?order=id.desc&limit=1", &tsv, "{}").await;
    assert_eq!(r.expect(200).body, "3\tline-3\n");
}

#[tokio::test]
async fn a_handler_replaces_the_built_in_csv_of_its_table_and_sets_headers() {
    let api = api().await;
    let r = api.get_with("/lines?order=id", &[("accept", "text/csv")]).await;
    assert_eq!(r.expect(200).body, "id,name\n1,line-1\n2,line-2\n3,line-3\n");
    assert_eq!(r.header("content-type"), Some("text/csv"));
    assert_eq!(r.header("content-disposition"), Some("attachment; filename=\"lines.csv\""));
    // Other tables keep the built-in CSV.
    let r = api.get_with("/notes", &[("accept", "text/csv")]).await;
    assert_eq!(r.expect(200).body, "id,body\n1,a");
    assert_eq!(r.header("content-disposition"), None);
}

#[tokio::test]
async fn an_any_handler_answers_every_request_for_its_resource() {
    let api = api().await;
    let r = api.get("/lines_raw?order=id").await;
    assert_eq!(r.expect(200).body, "line-1;line-2;line-3;");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = api.get_with("/lines_raw?order=id&id=lt.3", &[("accept", "text/plain")]).await;
    assert_eq!((r.expect(200).body.as_str(), r.header("content-type")), ("line-1;line-2;", Some("text/plain")));
    // The handler reads the request (`request.headers`) as in PostgREST.
    let r = api.get("/lines_xml?order=id&id=lte.2").await;
    assert_eq!(
        (r.expect(200).body.as_str(), r.header("content-type")),
        (r#"<line id="1"/><line id="2"/>"#, Some("text/xml"))
    );
    let r = api.get_with("/lines_xml?id=eq.3", &[("accept", "application/xml")]).await;
    assert_eq!((r.expect(200).body.as_str(), r.header("content-type")), (r#"<line id="3"/>"#, Some("application/xml")));
    api.get_with("/lines_xml", &[("accept", "application/json")]).await.expect_error(415, "PT415");
}

#[tokio::test]
async fn the_openapi_document_lists_a_tables_handlers() {
    let api = api().await;
    let doc = api.get("/").await.json();
    let content = &doc["paths"]["/lines"]["get"]["responses"]["200"]["content"];
    assert!(content["text/tab-separated-values"]["schema"]["description"].as_str().unwrap().contains("tsv_agg"));
    assert!(content["text/csv"]["schema"]["description"].as_str().unwrap().contains("csv_agg"));
    assert!(doc["paths"]["/notes"]["get"]["responses"]["200"]["content"]["text/tab-separated-values"].is_null());
}

#[tokio::test]
async fn bad_response_headers_are_a_clear_error() {
    let api = api().await;
    api.get_with("/rpc/bad_headers", &[("accept", "text/plain")]).await.expect_error(500, "PGRST111");
}
